"""Finding what installed packages plug in: the entries of one entry-point group, checked and keyed.

Mini-apps (``shengshitong.miniapps``) and payment channels (``shengshitong.payment_channels``) are found
the same way: every entry point of the group is loaded and checked, tests and embedders may add more,
and two of them claiming one key (an app id, a channel name) stop start-up naming both.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, TypeVar

T = TypeVar("T")


def discover(
    group: str,
    *,
    what: str,
    extra: list[tuple[Any, str]],
    check: Callable[[Any, str], T],
    key: Callable[[T], str],
    key_name: str,
    error: type[Exception],
) -> dict[str, T]:
    """Every entry of ``group`` and ``extra`` (each with where it comes from), checked by ``check``
    (which raises ``error`` naming where), by ``key``; ``what`` and ``key_name`` name an entry and its key
    in errors ("mini-app", "id")."""
    candidates: list[tuple[Any, str]] = []
    for ep in entry_points(group=group):
        try:
            loaded = ep.load()
        except Exception as exc:
            raise error(f"{what} entry point {ep.name} = {ep.value} cannot be loaded: {exc}") from exc
        candidates.append((loaded, f"entry point {ep.name} = {ep.value}"))
    found: dict[str, tuple[T, str]] = {}
    for candidate, where in [*candidates, *extra]:
        checked = check(candidate, where)
        name = key(checked)
        if name in found and found[name][0] is not checked:
            raise error(f"two {what}s claim the {key_name} {name!r}: {found[name][1]} and {where}")
        found[name] = (checked, where)
    return {name: entry for name, (entry, _) in found.items()}
