"""Finding payment channels (the ``shengshitong.payment_channels`` entry-point group) and building the
enabled ones from their settings.

The built-in channels (sandbox, wechatpay, alipay) are declared in that group like any other package's.
``SHENGSHI_PAYMENT_CHANNELS`` names the enabled ones in order; each reads its own settings
(``SHENGSHI_<NAME>_<FIELD>``) and start-up stops with one :class:`SettingsError` naming every bad or
missing value of every enabled channel at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from backend import plugins
from backend.crypto import keyed_hash
from backend.i18n import add_terms
from backend.settings import PREFIX, Settings, SettingsError, load_section
from payments.channels.base import NAME_PATTERN, Channel, ChannelContext, ChannelPlugin, SettingsProblem

ENTRY_POINT_GROUP = "shengshitong.payment_channels"
NOTIFY_PATH = "/api/v1/payments/notify"


class ChannelError(Exception):
    """A channel package cannot be loaded (a packaging mistake, not a setting); start-up stops."""


def _check(plugin: Any, where: str) -> ChannelPlugin[Any]:
    if not isinstance(plugin, ChannelPlugin):
        raise ChannelError(f"{where} is not a ChannelPlugin")
    channel = plugin.channel
    if not (isinstance(channel, type) and issubclass(channel, Channel)):
        raise ChannelError(f"{where}: its channel is not a Channel subclass")
    name = getattr(channel, "name", None)
    if not isinstance(name, str) or not re.match(NAME_PATTERN, name):
        raise ChannelError(f"{where}: the channel's name must match {NAME_PATTERN} (got {name!r})")
    return plugin


def discover(extra: list[ChannelPlugin[Any]] | None = None) -> dict[str, ChannelPlugin[Any]]:
    """Every installed channel by name. Two packages claiming one name is an error naming both."""
    return plugins.discover(
        ENTRY_POINT_GROUP,
        what="payment channel",
        extra=[(p, f"{p.channel.__module__}.{p.channel.__qualname__}") for p in extra or []],
        check=_check,
        key=lambda plugin: plugin.name,
        key_name="name",
        error=ChannelError,
    )


def add_channel_terms(installed: dict[str, ChannelPlugin[Any]]) -> None:
    """Each installed channel's Chinese name, for the errors that name a channel (``{channel:channel}``)."""
    add_terms("channel", {name: p.channel.title_zh for name, p in installed.items() if p.channel.title_zh})


def wanted(settings: Settings) -> list[str]:
    return [c.strip() for c in settings.payment_channels.split(",") if c.strip()]


def channel_context(settings: Settings, name: str, now: Callable[[], float]) -> ChannelContext:
    public_url = settings.public_url.rstrip("/")
    return ChannelContext(
        name=name,
        public_url=public_url,
        notify_url=f"{public_url}{NOTIFY_PATH}/{name}",
        now=now,
        derived_key=bytes.fromhex(keyed_hash(settings.secret_bytes("secret_key"), f"{name}-channel", "v1")),
        env=settings.env,
    )


def build_channels(
    settings: Settings,
    now: Callable[[], float],
    *,
    installed: dict[str, ChannelPlugin[Any]] | None = None,
) -> dict[str, Channel]:
    """The enabled channels, in the configured order, each built from its own settings. Raises
    :class:`SettingsError` naming every problem of every enabled channel (an unknown name lists the
    installed ones; a development-only channel is refused in prod)."""
    installed = discover() if installed is None else installed
    add_channel_terms(installed)
    names = wanted(settings)
    var = f"{PREFIX}PAYMENT_CHANNELS"
    problems: list[str] = []
    if len(set(names)) != len(names):
        problems.append(f"{var} names a channel twice: {', '.join(names)}")
    channels: dict[str, Channel] = {}
    for name in names:
        plugin = installed.get(name)
        if plugin is None:
            known = ", ".join(sorted(installed)) or "-"
            problems.append(f"{var} names {name!r}, which is not installed (installed: {known})")
            continue
        if settings.env == "prod" and not plugin.channel.for_production:
            problems.append(f"{var} names {name}: anyone could 'pay' through it; not in prod")
            continue
        own, bad = load_section(
            plugin.settings, plugin.env_prefix, settings.plugin_env, hidden=plugin.secret_settings
        )
        if own is None:
            problems += bad
            continue
        try:
            channels[name] = plugin.build(own, channel_context(settings, name, now))
        except SettingsProblem as exc:
            problems += exc.problems
    if problems:
        raise SettingsError(problems)
    return channels
