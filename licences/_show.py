"""亮证: the citizen's device shows chosen fields of a licence to an inspector. The platform checks a
presentation is the citizen's own, logs the use, and says how to show it: inline in a QR when it fits one
a handheld scanner reads, else as a one-time reference an inspector's device fetches online."""

from __future__ import annotations

import base64
import io
import json
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import segno

from auth.principals import MachinePrincipal
from backend.clock import Clock
from backend.crypto import unb64u
from backend.errors import Forbidden, InvalidInput, NotFound
from backend.store import Store
from licences.services import NONCE_SECONDS, LicenceBook
from licences.tables import Licence, LicenceCredential, LicenceStatusList
from licences.verifier import (
    IssuerTrustList,
    PresentationError,
    StatusList,
    jwk_thumbprint,
    verify_presentation,
)

INSPECT_AUDIENCE = "urn:shengshitong:inspect"  # the audience of a presentation shown to any inspector
# The densest QR shown inline: version 35 (157 modules, ECC L, up to 2,132 bytes), which an inspector's
# handheld 2D imager reads off a phone screen at full brightness; a presentation of up to about six
# fields of a driving licence fits (docs/licences.md, "Sizes"). A larger one is handed over by reference.
QR_MAX_VERSION = 35
HANDOVER_PREFIX = "SSTL1:"  # a QR holding a handover reference, not the presentation itself
HANDOVER_SECONDS = 120
_LIST_NUMBER = re.compile(r"[0-9]{1,10}")  # ASCII digits only ("²".isdigit() is true; int("²") fails)


@dataclass(frozen=True)
class Shown:
    mode: str  # inline | reference
    qr: str
    qr_version: int
    qr_png: str  # the QR as a data: URL the app shows as it is
    fields: list[str]
    expires_in: int


class Showing:
    def __init__(self, book: LicenceBook, store: Store, clock: Clock) -> None:
        self._book = book
        self._store = store
        self._clock = clock

    async def own_trust(self) -> IssuerTrustList:
        return IssuerTrustList.from_document(await self._book.issuers.trust_document())

    async def status_lists_for(self, uri: str, trust: IssuerTrustList) -> dict[str, StatusList]:
        prefix = f"{self._book.issuers.s.public_url}/api/v1/licences/status/"
        if not uri.startswith(prefix):
            return {}
        code, _, number = uri[len(prefix) :].partition("/")
        if not _LIST_NUMBER.fullmatch(number):  # read before the signature is checked: anyone wrote it
            return {}
        try:
            token, _, _ = await self._book.statuses.token(code, int(number))
        except NotFound:
            return {}
        return {uri: StatusList.from_token(token, trust)}

    async def check(self, text: str, *, audience: str | tuple[str, ...], nonce: str | None = None) -> Any:
        """Verify a presentation as an inspector would, with the server's own trust list and statuses."""
        trust = await self.own_trust()
        uri = _status_uri_of(text)
        statuses = await self.status_lists_for(uri, trust) if uri else {}
        return verify_presentation(
            text, trust, statuses, now=int(self._clock.time()), audience=audience, nonce=nonce
        )

    async def show(self, citizen_id: str, presentation: str, *, handover: bool) -> Shown:
        """The citizen's device made a presentation to show: check it is theirs and still good, log the
        use, and say how to show it: inline in the QR when it fits one a handheld scanner reads, else (or
        when asked) as a one-time reference an inspector fetches within two minutes."""
        try:
            verified = await self.check(presentation, audience=INSPECT_AUDIENCE)
        except PresentationError as exc:
            raise InvalidInput(
                f"the presentation does not verify: {exc.detail}",
                code="presentation_invalid",
                reason=exc.code,
            ) from None
        row = await self._licence_of_presentation(citizen_id, presentation)
        fields = list(verified.fields)
        qr_version = _qr_version(presentation)
        inline = not handover and qr_version <= QR_MAX_VERSION
        if inline:
            await self._book.uses.record(citizen_id, row, "shown", "self", "", "", fields, "亮证")
            return Shown("inline", presentation, qr_version, _qr_png(presentation), fields, NONCE_SECONDS)
        ref = secrets.token_urlsafe(18)
        await self._store.set(
            f"licences:handover:{ref}",
            json.dumps({"citizen": citizen_id, "licence": str(row["id"]), "presentation": presentation}),
            ttl=HANDOVER_SECONDS,
        )
        text = f"{HANDOVER_PREFIX}{self._book.issuers.s.public_url}/api/v1/licences/handover/{ref}"
        await self._book.uses.record(citizen_id, row, "shown", "self", "", "", fields, "亮证（在线交接）")
        return Shown("reference", text, _qr_version(text), _qr_png(text), fields, HANDOVER_SECONDS)

    async def _licence_of_presentation(self, citizen_id: str, presentation: str) -> dict[str, Any]:
        """The citizen's licence a presentation is of, by its status entry; its key must be one of the
        citizen's devices (a presentation of someone else's licence is not theirs to show)."""
        try:
            payload = json.loads(unb64u(presentation.split("~")[0].split(".")[1]))
            ref = payload["status"]["status_list"]
            jkt = jwk_thumbprint(payload["cnf"]["jwk"])
            prefix = f"{self._book.issuers.s.public_url}/api/v1/licences/status/"
            code, _, number = str(ref["uri"])[len(prefix) :].partition("/")
        except (ValueError, KeyError, TypeError, IndexError, RecursionError, PresentationError):
            raise InvalidInput(
                "not a presentation of a licence", code="presentation_invalid", reason="malformed"
            ) from None
        lists = (
            await LicenceStatusList.select(LicenceStatusList.id)
            .where((LicenceStatusList.issuer == code) & (LicenceStatusList.number == int(number or 0)))
            .first()
            .run()
        )
        index = await self._book.index_of_citizen(citizen_id)
        row = None
        if lists is not None and index is not None:
            row = (
                await Licence.select()
                .where(
                    (Licence.status_list == lists["id"])
                    & (Licence.status_idx == ref["idx"])
                    & (Licence.holder_index == index)
                )
                .first()
                .run()
            )
        held = (
            row is not None
            and await LicenceCredential.exists()
            .where(
                (LicenceCredential.licence == row["id"])
                & (LicenceCredential.device_jkt == jkt)
                & LicenceCredential.withdrawn_at.is_null()
            )
            .run()
        )
        if not held:
            raise Forbidden(
                "this presentation is not of your licence on one of your devices",
                code="presentation_not_yours",
            )
        assert row is not None
        return dict(row)

    async def fetch_handover(self, inspector: MachinePrincipal, ref: str) -> dict[str, Any]:
        """An inspector's device fetches a handed-over presentation, once; the citizen's log names it."""
        key = f"licences:handover:{ref}"
        raw = await self._store.get(key) if 8 <= len(ref) <= 64 else None
        if raw is None or not await self._store.delete_if_equal(key, raw):
            raise NotFound(
                "no such presentation: it was fetched already or has lapsed", code="handover_not_found"
            )
        held = json.loads(raw)
        row = await Licence.select().where(Licence.id == uuid.UUID(held["licence"])).first().run()
        if row is not None:
            fields = [name for name in _disclosed_names(held["presentation"])]
            await self._book.uses.record(
                held["citizen"],
                dict(row),
                "handover",
                "inspector",
                inspector.client_id,
                inspector.name,
                fields,
                "亮证",
            )
        return {"presentation": held["presentation"], "audience": INSPECT_AUDIENCE}


def _status_uri_of(text: str) -> str | None:
    try:
        payload = json.loads(unb64u(text.split("~")[0].split(".")[1]))
        return str(payload["status"]["status_list"]["uri"])
    except (ValueError, KeyError, TypeError, IndexError, RecursionError):  # JSON nested past the parser
        return None


def _disclosed_names(text: str) -> list[str]:
    names = []
    for part in text.split("~")[1:-1]:
        try:
            names.append(str(json.loads(unb64u(part))[1]))
        except (ValueError, KeyError, TypeError, IndexError, RecursionError):
            continue
    return names


def _qr_png(text: str) -> str:
    buffer = io.BytesIO()
    segno.make(text, error="l", boost_error=False, micro=False).save(buffer, kind="png", scale=4, border=4)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _qr_version(text: str) -> int:
    try:
        return int(segno.make(text, error="l", boost_error=False, micro=False).version)
    except segno.DataOverflowError:
        return 41
