"""Database work of 扫码门禁 doors that both the scan path and the routes need: the places' offline keys,
residents, visitor passes, the code's keyed claims and the doors' offline lists."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from piccolo.columns.combination import WhereRaw

from miniapps.contract import Conflict, InvalidInput, NotFound, Platform
from miniapps.doors import rules
from miniapps.doors.tables import Building, Door, Place, Resident, VisitorPass

LIST_TYPE = "shengshitong-door-list"
LIST_TYP = "door-list+json"


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def new_handle() -> str:
    return secrets.token_bytes(rules.HANDLE_LEN).hex()


class Keys:
    """Each place's offline key K_c (32 random bytes), sealed at rest with the platform's key-encryption
    key; unsealed keys are kept in memory by (place, key id).

    Rotation publishes ahead, as the code's issuer keys do (docs/citizen-code.md, "Rotation"): the next
    key is in every door's list from the rotation on, and masks codes only ``lead`` seconds later (a
    door's refresh period and a minute), so no door meets a code masked with a key it does not hold."""

    def __init__(self, platform: Platform, lead: Callable[[], int]) -> None:
        self.platform = platform
        self._lead = lead
        self._open: dict[tuple[int, int], bytes] = {}

    @staticmethod
    def _context(place_id: int, key_id: int) -> str:
        return f"place:{place_id}:{key_id}"

    def key(self, place_id: int, key_id: int, sealed: str) -> bytes:
        got = self._open.get((place_id, key_id))
        if got is None:
            got = self.platform.unseal(sealed, self._context(place_id, key_id))
            if len(self._open) > 4096:
                self._open.clear()
            self._open[(place_id, key_id)] = got
        return got

    def masking(self, place: dict[str, Any], now: datetime) -> tuple[int, bytes] | None:
        """The key that masks codes minted at ``now``: the next one once its time has come."""
        if place["key_next_sealed"] and place["key_next_at"] is not None and place["key_next_at"] <= now:
            kid = place["key_id"] + 1
            return kid, self.key(place["id"], kid, place["key_next_sealed"])
        if not place["key_sealed"]:
            return None
        return place["key_id"], self.key(place["id"], place["key_id"], place["key_sealed"])

    async def ensure(self, place: dict[str, Any]) -> dict[str, Any]:
        """The place's row with a key (the first is made when a door first syncs: no code needs one
        before), and a next key that has begun masking promoted to current. Concurrent callers: one
        update wins, the others read it."""
        now = self.platform.now()
        if not place["key_sealed"]:
            sealed = self.platform.seal(secrets.token_bytes(32), self._context(place["id"], 1))
            await (
                Place.update({Place.key_sealed: sealed, Place.key_id: 1, Place.key_rotated_at: now})
                .where((Place.id == place["id"]) & (Place.key_sealed == ""))  # type: ignore[attr-defined]
                .run()
            )
        elif place["key_next_sealed"] and place["key_next_at"] is not None and place["key_next_at"] <= now:
            await (
                Place.update(
                    {
                        Place.key_id: place["key_id"] + 1,
                        Place.key_prev_sealed: place["key_sealed"],
                        Place.key_sealed: place["key_next_sealed"],
                        Place.key_next_sealed: "",
                        Place.key_next_at: None,
                        Place.key_rotated_at: place["key_next_at"],
                    }
                )
                .where((Place.id == place["id"]) & (Place.key_id == place["key_id"]))  # type: ignore[attr-defined]
                .run()
            )
        else:
            return place
        row = await Place.select().where(Place.id == place["id"]).first().run()  # type: ignore[attr-defined]
        assert row is not None
        return row

    async def rotate(self, code: str) -> dict[str, Any]:
        """Publish the place's next key now; it masks codes from ``active_from`` on. 409 while one is
        already waiting."""
        place = await Place.select().where(Place.code == code).first().run()
        if place is None:
            raise NotFound("no such place", code="unknown_place")
        place = await self.ensure(place)
        if place["key_next_sealed"]:
            raise Conflict("a new key is waiting to take over already", code="key_rotation_pending")
        new_id = place["key_id"] + 1
        active_from = self.platform.now() + timedelta(seconds=self._lead())
        sealed = self.platform.seal(secrets.token_bytes(32), self._context(place["id"], new_id))
        done = await (
            Place.update({Place.key_next_sealed: sealed, Place.key_next_at: active_from})
            .where(
                (Place.id == place["id"])  # type: ignore[attr-defined]
                & (Place.key_id == place["key_id"])
                & (Place.key_next_sealed == "")
            )
            .returning(Place.id)  # type: ignore[attr-defined]
            .run()
        )
        if not done:
            raise Conflict("the key was rotated at the same moment", code="key_rotation_pending")
        return {"place": code, "key_id": new_id, "active_from": active_from}

    def listed(self, place: dict[str, Any]) -> list[tuple[int, bytes]]:
        """The keys a door of the place holds: the current one, the next one (waiting to take over) and
        the previous one, each that exists."""
        kid = place["key_id"]
        out = [(kid, self.key(place["id"], kid, place["key_sealed"]))]
        if place["key_next_sealed"]:
            out.append((kid + 1, self.key(place["id"], kid + 1, place["key_next_sealed"])))
        if place["key_prev_sealed"]:
            out.append((kid - 1, self.key(place["id"], kid - 1, place["key_prev_sealed"])))
        return out


async def place_by_code(code: str) -> dict[str, Any]:
    place = await Place.select().where(Place.code == code).first().run()
    if place is None:
        raise NotFound("no such place", code="unknown_place")
    return place


async def building_of(place: dict[str, Any], code: str | None) -> int | None:
    if not code:
        return None
    row = await (
        Building.select(Building.id)  # type: ignore[attr-defined]
        .where((Building.code == code) & (Building.place == place["id"]))
        .first()
        .run()
    )
    if row is None:
        raise InvalidInput("no such building in this place", code="unknown_building")
    return int(row["id"])


class Residents:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    async def add(
        self, place: dict[str, Any], openid: str, building: int | None, *, source: str, state: str
    ) -> dict[str, Any]:
        """Make ``openid`` a resident (``state`` active) or ask for it (pending); a citizen already
        active there stays so (the building is updated). One row per citizen and place."""
        now = self.platform.now()
        key = f"{place['id']}:{openid}"
        async with self.platform.transaction():
            row = await Resident.select().where(Resident.key == key).first().run()
            if row is None:
                await (
                    Resident.insert(
                        Resident(
                            key=key,
                            place=place["id"],
                            building=building,
                            openid=openid,
                            state=state,
                            source=source,
                            handle=new_handle(),
                            created_at=now,
                            decided_at=now if state == "active" else None,
                        )
                    )
                    .on_conflict(action="DO NOTHING")
                    .run()
                )
            elif row["state"] == "active":
                if state == "active":
                    await Resident.update({Resident.building: building}).where(Resident.id == row["id"]).run()
            elif row["state"] == "pending" and state == "pending":
                await Resident.update({Resident.building: building}).where(Resident.id == row["id"]).run()
            else:  # refused, removed, or pending and now added: anew, with a new handle
                await (
                    Resident.update(
                        {
                            Resident.state: state,
                            Resident.building: building,
                            Resident.source: source,
                            Resident.handle: new_handle(),
                            Resident.created_at: now,
                            Resident.decided_at: now if state == "active" else None,
                            Resident.removed_at: None,
                        }
                    )
                    .where(Resident.id == row["id"])
                    .run()
                )
            out = await Resident.select().where(Resident.key == key).first().run()
        assert out is not None
        if out["state"] == "active":
            await self.platform.entitlement_changed(openid)  # the next code carries the claim
        return out

    async def decide(self, place: dict[str, Any], resident_id: uuid.UUID, approve: bool) -> dict[str, Any]:
        now = self.platform.now()
        done = await (
            Resident.update({Resident.state: "active" if approve else "refused", Resident.decided_at: now})
            .where(
                (Resident.id == resident_id) & (Resident.place == place["id"]) & (Resident.state == "pending")
            )
            .returning(Resident.openid)
            .run()
        )
        row = await self._row(place, resident_id)
        if not done:
            raise Conflict(f"the request is {row['state']}, not pending", code="not_pending")
        if approve:
            await self.platform.entitlement_changed(row["openid"])
        return row

    async def remove(self, place: dict[str, Any], resident_id: uuid.UUID) -> dict[str, Any]:
        """Stop the resident at once online; their next code drops the claim (the platform is told) and
        the door's next list drops their handle. The visitor passes they issued here are cancelled with
        it: a pass is a resident's invitation, and one issued ahead (to a second phone of their own) must
        not keep a removed resident coming in."""
        now = self.platform.now()
        async with self.platform.transaction():
            done = await (
                Resident.update({Resident.state: "removed", Resident.removed_at: now})
                .where(
                    (Resident.id == resident_id)
                    & (Resident.place == place["id"])
                    & Resident.state.is_in(["active", "pending"])
                )
                .returning(Resident.openid)
                .run()
            )
            if done:
                await (
                    VisitorPass.update({VisitorPass.state: "cancelled", VisitorPass.cancelled_at: now})
                    .where(
                        (VisitorPass.host == done[0]["openid"])
                        & (VisitorPass.place == place["id"])
                        & (VisitorPass.state == "active")
                    )
                    .run()
                )
        row = await self._row(place, resident_id)
        if not done:
            raise Conflict(f"the resident is {row['state']}", code="not_resident")
        await self.platform.entitlement_changed(row["openid"])
        return row

    @staticmethod
    async def _row(place: dict[str, Any], resident_id: uuid.UUID) -> dict[str, Any]:
        row = await (
            Resident.select()
            .where((Resident.id == resident_id) & (Resident.place == place["id"]))
            .first()
            .run()
        )
        if row is None:
            raise NotFound("no such resident here", code="unknown_resident")
        return row


async def code_claims(keys: Keys, openid: str, cti: bytes) -> list[tuple[int, bytes]]:
    """The keyed claims for a resident's code: for each place they live in (the two they joined first),
    (the place's number, their handle masked under the place's key for this cti)."""
    rows = await (
        Resident.select(
            Resident.handle,
            Resident.place.id.as_alias("id"),  # type: ignore[attr-defined]
            Resident.place.number.as_alias("number"),
            Resident.place.key_id.as_alias("key_id"),
            Resident.place.key_sealed.as_alias("key_sealed"),
            Resident.place.key_next_sealed.as_alias("key_next_sealed"),
            Resident.place.key_next_at.as_alias("key_next_at"),
        )
        .where((Resident.openid == openid) & (Resident.state == "active"))
        .order_by(Resident.decided_at)
        .limit(2)
        .run()
    )
    out = []
    now = keys.platform.now()
    for r in rows:
        masking = keys.masking(r, now)
        if masking is None:
            continue  # no door of the place has synced yet: no door could read a claim
        out.append((int(r["number"]), rules.mask(bytes.fromhex(r["handle"]), masking[1], cti)))
    return out


async def door_list(
    keys: Keys, door_code: str, now: int, *, refresh: int, validity: int
) -> tuple[dict[str, Any], str]:
    """The offline list of one door (no personal data: handles, door codes and the place's keys) and its
    ETag, the same all through one refresh period unless a resident or key changed."""
    door = await Door.select().where(Door.code == door_code).first().run()
    if door is None:
        raise NotFound("no such door", code="unknown_door")
    place = await Place.select().where(Place.id == door["place"]).first().run()  # type: ignore[attr-defined]
    assert place is not None
    place = await keys.ensure(place)
    residents = await (
        Resident.select(Resident.handle, Resident.building)
        .where((Resident.place == place["id"]) & (Resident.state == "active"))
        .order_by(Resident.handle)
        .run()
    )
    issued, expires = rules.list_window(now, refresh=refresh, validity=validity)
    opening = [r["handle"] for r in residents if rules.opens(r["building"], door["building"])]
    others = [r["handle"] for r in residents if not rules.opens(r["building"], door["building"])]
    doc = {
        "type": LIST_TYPE,
        "format": 1,
        "place": place["code"],
        "community": place["number"],
        "door": door["code"],
        "issued_at": issued,
        "expires_at": expires,
        "refresh_after": refresh,
        "keys": [{"id": kid, "k": b64u(k)} for kid, k in keys.listed(place)],
        "handles": [b64u(bytes.fromhex(h)) for h in opening],
        "other_handles": [b64u(bytes.fromhex(h)) for h in others],
    }
    etag = 'W/"' + hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32] + '"'
    return doc, etag


def pass_view(row: dict[str, Any]) -> rules.PassView:
    return rules.PassView(
        id=str(row["id"]),
        doors=frozenset(json.loads(row["doors"])),
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        entries=row["entries"],
        used=row["used"],
        cancelled=row["state"] == "cancelled",
    )


async def use_pass(pass_id: str) -> bool:
    """Take one entry of a pass: one conditional UPDATE (two doors at once cannot exceed the count)."""
    done = await (
        VisitorPass.update({VisitorPass.used: VisitorPass.used + 1})
        .where(
            (VisitorPass.id == uuid.UUID(pass_id))
            & (VisitorPass.state == "active")
            & WhereRaw("used < entries")
        )
        .returning(VisitorPass.id)
        .run()
    )
    return bool(done)
