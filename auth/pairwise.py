"""Pairwise subject ids (OIDC-style): what a mini-app knows a citizen by.

``openid = HMAC(secret, app id, citizen id)``: stable for the pair, different in every mini-app, and not
reversible by a mini-app. The platform remembers which citizen an openid stands for, so a mini-app can
name the citizen by openid (an order, a check that it knows the citizen). The pair never changes, so a
worker keeps the pairs it made or read in memory: the scan that makes an openid and the order the
mini-app creates for it in the same scan cost one database write between them, not a read back.
"""

from __future__ import annotations

import base64
from collections import OrderedDict

from auth.tables import PairwiseSubject
from backend.crypto import keyed_hash

# pairs a worker keeps (each ~150 bytes): a day's distinct riders at one worker fit many times over
REMEMBERED = 200_000


class Pairwise:
    def __init__(self, secret: bytes, *, remembered: int = REMEMBERED) -> None:
        self._key = secret
        self._limit = remembered
        # "<app_id>/<openid>" -> citizen id; a pair in here is stored in the database too
        self._known: OrderedDict[str, str] = OrderedDict()

    def openid(self, app_id: str, citizen_id: str) -> str:
        digest = bytes.fromhex(keyed_hash(self._key, "pairwise-sub", f"{app_id}:{citizen_id}"))
        return "o_" + base64.urlsafe_b64encode(digest[:18]).decode()

    def _remember(self, key: str, citizen_id: str) -> None:
        self._known[key] = citizen_id
        self._known.move_to_end(key)
        while len(self._known) > self._limit:
            self._known.popitem(last=False)

    async def issue(self, app_id: str, citizen_id: str) -> str:
        """The openid of ``citizen_id`` in ``app_id``, stored for :meth:`citizen` (one insert per pair)."""
        openid = self.openid(app_id, citizen_id)
        key = f"{app_id}/{openid}"
        if key not in self._known:
            await (
                PairwiseSubject.insert(PairwiseSubject(app_openid=key, citizen_id=citizen_id))
                .on_conflict(target=PairwiseSubject.app_openid, action="DO NOTHING")
                .run()
            )
        self._remember(key, citizen_id)
        return openid

    def remember(self, app_id: str, openid: str, citizen_id: str) -> None:
        """A pair stored by the caller (written behind a gate's decision)."""
        self._remember(f"{app_id}/{openid}", citizen_id)

    async def citizens(self, app_id: str, openids: list[str]) -> dict[str, str]:
        """The citizens of several openids of ``app_id`` (unknown ones left out), one query at most."""
        out = {o: c for o in openids if (c := self._known.get(f"{app_id}/{o}")) is not None}
        if rest := [f"{app_id}/{o}" for o in set(openids) - out.keys()]:
            rows = (
                await PairwiseSubject.select(PairwiseSubject.app_openid, PairwiseSubject.citizen_id)
                .where(PairwiseSubject.app_openid.is_in(rest))
                .run()
            )
            for r in rows:
                self._remember(r["app_openid"], str(r["citizen_id"]))
                out[r["app_openid"].partition("/")[2]] = str(r["citizen_id"])
        return out

    async def citizen(self, app_id: str, openid: str) -> str | None:
        """The citizen ``openid`` stands for in ``app_id``, or None (made up, or another app's)."""
        key = f"{app_id}/{openid}"
        known = self._known.get(key)
        if known is not None:
            return known
        row = (
            await PairwiseSubject.select(PairwiseSubject.citizen_id)
            .where(PairwiseSubject.app_openid == key)
            .first()
            .run()
        )
        if row is None:
            return None
        self._remember(key, str(row["citizen_id"]))
        return str(row["citizen_id"])
