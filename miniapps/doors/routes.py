"""扫码门禁 doors' routes under /api/v1/apps/doors: citizens (their residences, visitor passes and
entries), the property manager's backend (residents, entries, the offline key) and the doors themselves
(their offline list)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from miniapps.contract import (
    DEFAULT_LIMIT,
    AppCaller,
    Conflict,
    Forbidden,
    InvalidInput,
    Limit,
    NotFound,
    Offset,
    Platform,
    RateLimited,
    ScannerCaller,
    app_backend,
    citizen_caller,
    names,
    page,
    scanner_caller,
)
from miniapps.doors import rules, services
from miniapps.doors.tables import Building, Door, Entry, Place, Resident, VisitorPass

DoorCode = Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]
# a path's constraints are not checked by the framework: a place's code is checked here (its column is 24)
PLACE_CODE = re.compile(r"[A-Za-z0-9_-]{1,24}")


class ResidenceRequest(msgspec.Struct, forbid_unknown_fields=True):
    place: DoorCode
    building: DoorCode | None = None


class ResidentCreate(msgspec.Struct, forbid_unknown_fields=True):
    phone: Annotated[str, msgspec.Meta(min_length=5, max_length=20)] | None = None
    id_number: Annotated[str, msgspec.Meta(min_length=15, max_length=18)] | None = None
    building: DoorCode | None = None


Label = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class BuildingIn(msgspec.Struct, forbid_unknown_fields=True):
    code: DoorCode
    name: Label
    name_en: Annotated[str, msgspec.Meta(max_length=128)] = ""


class DoorIn(msgspec.Struct, forbid_unknown_fields=True):
    code: DoorCode
    name: Label
    name_en: Annotated[str, msgspec.Meta(max_length=128)] = ""
    building: DoorCode | None = None  # None: a gate every resident of the place opens


class PlaceIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Label  # Chinese
    name_en: Annotated[str, msgspec.Meta(max_length=128)] = ""
    kind: Literal["community", "office", "public"] = "community"
    district: Annotated[str, msgspec.Meta(max_length=32)] = ""
    buildings: Annotated[list[BuildingIn], msgspec.Meta(max_length=200)] = []
    doors: Annotated[list[DoorIn], msgspec.Meta(max_length=500)] = []


class PassCreate(msgspec.Struct, forbid_unknown_fields=True):
    place: DoorCode
    phone: Annotated[str, msgspec.Meta(min_length=5, max_length=20)]
    doors: Annotated[list[DoorCode], msgspec.Meta(min_length=1, max_length=20)]
    starts_at: datetime
    ends_at: datetime
    entries: Annotated[int, msgspec.Meta(ge=1, le=100)] = 1


def _aware(value: datetime, field: str) -> datetime:
    if value.tzinfo is None:
        raise InvalidInput(f"{field} needs a time zone (e.g. +08:00)", code="naive_time")
    return value


def _state(row: dict[str, Any], now: datetime) -> str:
    if row["state"] == "cancelled":
        return "cancelled"
    if now >= row["ends_at"]:
        return "expired"
    if row["used"] >= row["entries"]:
        return "used_up"
    if now < row["starts_at"]:
        return "upcoming"
    return "active"


async def _door_names(codes: list[str]) -> dict[str, dict[str, Any]]:
    if not codes:
        return {}
    rows = await Door.select(Door.code, Door.name, Door.name_en).where(Door.code.is_in(codes)).run()
    return {r["code"]: {"code": r["code"], **names(r["name"], r["name_en"] or r["code"])} for r in rows}


def handlers(
    platform: Platform, keys: services.Keys, residents: services.Residents, setting: Callable[[str], int]
) -> list[Any]:
    """The routes, with the app's key store, resident service and settings."""

    async def place_names(place_id: int) -> dict[str, Any]:
        p = (
            await Place.select(Place.code, Place.name, Place.name_en, Place.kind)
            .where(Place.id == place_id)  # type: ignore[attr-defined]
            .first()
            .run()
        )
        assert p is not None
        return {"code": p["code"], "kind": p["kind"], **names(p["name"], p["name_en"] or p["code"])}

    async def pass_out(row: dict[str, Any], *, host_view: bool) -> dict[str, Any]:
        codes = json.loads(row["doors"])
        doors = await _door_names(codes)
        out = {
            "id": str(row["id"]),
            "place": await place_names(row["place"]),
            "doors": [doors.get(c, {"code": c}) for c in codes],
            "starts_at": row["starts_at"],
            "ends_at": row["ends_at"],
            "entries": row["entries"],
            "used": row["used"],
            "left": max(0, row["entries"] - row["used"]),
            "state": _state(row, platform.now()),
            "role": "issued" if host_view else "held",
        }
        if host_view:
            out["visitor"] = row["visitor_label"]
        return out

    async def entries_out(rows: list[dict[str, Any]], *, manager: bool) -> list[dict[str, Any]]:
        """A page of entries, their doors' names read in one query."""
        ids = list({r["door"] for r in rows})
        doors = {
            d["id"]: d
            for d in await Door.select(Door.id, Door.code, Door.name, Door.name_en)  # type: ignore[attr-defined]
            .where(Door.id.is_in(ids or [0]))  # type: ignore[attr-defined]
            .run()
        }
        out = []
        for row in rows:
            door = doors[row["door"]]
            item = {
                "at": row["at"],
                "door": {"code": door["code"], **names(door["name"], door["name_en"] or door["code"])},
                "allowed": row["allowed"],
                "reason": row["reason"],
                "kind": row["kind"],
                "offline": row["offline"],
                "pass_id": str(row["visitor_pass"]) if row["visitor_pass"] else None,
            }
            if manager:
                item["who"] = rules.masked(row["openid"])
            out.append(item)
        return out

    # ---- places, for everyone signed in -------------------------------------------------------------
    @get(
        "/places",
        guards=[citizen_caller],
        summary="Places (communities, offices, public buildings) with buildings and doors",
    )
    async def list_places(
        request: Request[Any, Any, Any],
        kind: FromQuery[str | None] = None,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        q = Place.select().order_by(Place.code).limit(limit + 1).offset(offset)
        if kind:
            q = q.where(Place.kind == kind)
        rows = await q.run()
        items = []
        for p in rows[:limit]:
            buildings = await Building.select().where(Building.place == p["id"]).order_by(Building.code).run()
            doors = await Door.select().where(Door.place == p["id"]).order_by(Door.code).run()
            by_id = {b["id"]: b["code"] for b in buildings}
            items.append(
                {
                    "code": p["code"],
                    "kind": p["kind"],
                    "district": p["district"],
                    **names(p["name"], p["name_en"] or p["code"]),
                    "buildings": [
                        {"code": b["code"], **names(b["name"], b["name_en"] or b["code"])} for b in buildings
                    ],
                    "doors": [
                        {
                            "code": d["code"],
                            "building": by_id.get(d["building"]),
                            **names(d["name"], d["name_en"] or d["code"]),
                        }
                        for d in doors
                    ],
                }
            )
        return page(request, items + rows[limit:], limit=limit, offset=offset)

    # ---- a citizen's residences ---------------------------------------------------------------------
    @post(
        "/residence-requests",
        guards=[citizen_caller],
        status_code=HTTP_201_CREATED,
        summary="Ask to be registered as a resident of a place (its manager approves)",
    )
    async def request_residence(
        data: JSONBody[ResidenceRequest], caller: NamedDependency[AppCaller]
    ) -> dict[str, Any]:
        place = await services.place_by_code(data.place)
        building = await services.building_of(place, data.building)
        row = await residents.add(place, caller.openid, building, source="request", state="pending")
        return await residence_out(row)

    async def residence_out(row: dict[str, Any]) -> dict[str, Any]:
        building = None
        if row["building"]:
            b = await Building.select().where(Building.id == row["building"]).first().run()  # type: ignore[attr-defined]
            if b is not None:
                building = {"code": b["code"], **names(b["name"], b["name_en"] or b["code"])}
        doors = []
        if row["state"] == "active":
            rows = await Door.select().where(Door.place == row["place"]).order_by(Door.code).run()
            doors = [
                {"code": d["code"], **names(d["name"], d["name_en"] or d["code"])}
                for d in rows
                if rules.opens(row["building"], d["building"])
            ]
        return {
            "id": str(row["id"]),
            "place": await place_names(row["place"]),
            "building": building,
            "state": row["state"],
            "source": row["source"],
            "doors": doors,
            "since": row["decided_at"] or row["created_at"],
        }

    @get(
        "/residences",
        guards=[citizen_caller],
        summary="The caller's residences (pending, active, refused, removed) and the doors they open",
    )
    async def my_residences(
        request: Request[Any, Any, Any],
        caller: NamedDependency[AppCaller],
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        rows = await (
            Resident.select()
            .where(Resident.openid == caller.openid)
            .order_by(Resident.created_at, ascending=False)
            .limit(limit + 1)
            .offset(offset)
            .run()
        )
        return page(
            request, [await residence_out(r) for r in rows[:limit]] + rows[limit:], limit=limit, offset=offset
        )

    @delete(
        "/residences/{rid:str}",
        guards=[citizen_caller],
        status_code=HTTP_200_OK,
        summary="The citizen moves out (or withdraws a request): their doors stop opening at once",
    )
    async def leave(rid: FromPath[str], caller: NamedDependency[AppCaller]) -> dict[str, Any]:
        try:
            key = uuid.UUID(rid)
        except ValueError:
            raise NotFound("no such residence of yours", code="unknown_residence") from None
        row = (
            await Resident.select()
            .where((Resident.id == key) & (Resident.openid == caller.openid))
            .first()
            .run()
        )
        if row is None:
            raise NotFound("no such residence of yours", code="unknown_residence")
        place = await Place.select().where(Place.id == row["place"]).first().run()  # type: ignore[attr-defined]
        assert place is not None
        return await residence_out(await residents.remove(place, key))

    # ---- visitor passes -----------------------------------------------------------------------------
    @post(
        "/passes",
        guards=[citizen_caller],
        status_code=HTTP_201_CREATED,
        opt={"problems": [429]},
        summary="A resident invites a visitor (by phone) through named doors, in a window, for n entries",
    )
    async def create_pass(data: JSONBody[PassCreate], caller: NamedDependency[AppCaller]) -> dict[str, Any]:
        place = await services.place_by_code(data.place)
        host = await (
            Resident.select(Resident.building)
            .where(
                (Resident.place == place["id"])
                & (Resident.openid == caller.openid)
                & (Resident.state == "active")
            )
            .first()
            .run()
        )
        if host is None:
            raise Forbidden("only a resident of this place may invite visitors", code="not_a_resident")
        now = platform.now()
        starts, ends = _aware(data.starts_at, "starts_at"), _aware(data.ends_at, "ends_at")
        problem = rules.window_problem(
            starts, ends, now, max_hours=setting("pass_max_hours"), ahead_days=setting("pass_ahead_days")
        )
        if problem:
            raise InvalidInput(f"the pass's window is not valid ({problem})", code=problem)
        if data.entries > setting("pass_max_entries"):
            raise InvalidInput(
                "too many entries for one pass", code="too_many_entries", limit=setting("pass_max_entries")
            )
        codes = list(dict.fromkeys(data.doors))
        rows = (
            await Door.select(Door.code, Door.building)
            .where((Door.place == place["id"]) & Door.code.is_in(codes))
            .run()
        )
        found = {r["code"]: r for r in rows}
        if missing := [c for c in codes if c not in found]:
            raise InvalidInput("doors not of this place: " + ", ".join(missing), code="unknown_door")
        if closed := [c for c in codes if not rules.opens(host["building"], found[c]["building"])]:
            raise Forbidden(
                "a resident invites through the doors they open: " + ", ".join(closed), code="not_your_door"
            )
        # a day's invitations per resident are bounded: each looks a phone up (no probing of who uses it).
        # Counted and issued in one transaction holding the host's first residence row (an UPDATE that
        # changes nothing locks it on PostgreSQL; SQLite's write transaction holds the database): the
        # host's requests at once, on any worker, are counted one after another, never past the limit
        digits = "".join(ch for ch in data.phone if ch.isdigit())[-11:]
        pass_id = uuid.uuid4()
        async with platform.transaction():
            first = await (
                Resident.select(Resident.id)  # type: ignore[attr-defined]
                .where((Resident.openid == caller.openid) & (Resident.state == "active"))
                .order_by(Resident.id)  # type: ignore[attr-defined]
                .first()
                .run()
            )
            if first is not None:
                await (
                    Resident.update({Resident.openid: caller.openid})
                    .where(Resident.id == first["id"])  # type: ignore[attr-defined]
                    .run()
                )
            since = now - timedelta(days=1)
            issued = await VisitorPass.count().where(
                (VisitorPass.host == caller.openid) & (VisitorPass.created_at > since)
            )
            if issued >= setting("passes_per_day"):
                raise RateLimited("too many visitor passes today", code="too_many_passes", retry_after=3600)
            # every look-up counts, found or not: a phone nobody uses costs as much as one somebody does
            # (the shared store's counter, not rolled back with the refusal), so no resident probes
            # more than a day's passes' worth of numbers
            looked = await platform.kv_incr(f"lookups:{caller.openid}:{now:%Y%m%d}", 2 * 86400)
            if looked > setting("passes_per_day"):
                raise RateLimited("too many phone look-ups today", code="too_many_passes", retry_after=3600)
            visitor = await platform.find_citizen(phone=data.phone)
            if visitor is None:
                raise InvalidInput("no citizen with this phone uses the app", code="visitor_not_found")
            if visitor == caller.openid:
                raise InvalidInput("a resident needs no pass of their own", code="visitor_is_host")
            await VisitorPass.insert(
                VisitorPass(
                    id=pass_id,
                    place=place["id"],
                    host=caller.openid,
                    visitor=visitor,
                    visitor_label=f"{digits[:3]}****{digits[-4:]}",
                    doors=json.dumps(codes),
                    starts_at=starts,
                    ends_at=ends,
                    entries=data.entries,
                    created_at=now,
                )
            ).run()
            await platform.notify(
                visitor,
                "visitor_pass",
                {
                    "place": place["name"],
                    "place_en": place["name_en"] or place["code"],
                    "starts_at": starts.isoformat(),
                    "ends_at": ends.isoformat(),
                    "entries": data.entries,
                },
                key=f"pass:{pass_id}",
            )
        row = await VisitorPass.select().where(VisitorPass.id == pass_id).first().run()
        assert row is not None
        return await pass_out(row, host_view=True)

    @get(
        "/passes",
        guards=[citizen_caller],
        summary="Visitor passes the caller issued (role=issued) or holds (role=held)",
    )
    async def list_passes(
        request: Request[Any, Any, Any],
        caller: NamedDependency[AppCaller],
        role: FromQuery[str] = "held",
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        if role not in ("held", "issued"):
            raise InvalidInput("role is held or issued", code="invalid_role_filter")
        column = VisitorPass.host if role == "issued" else VisitorPass.visitor
        rows = await (
            VisitorPass.select()
            .where(column == caller.openid)
            .order_by(VisitorPass.starts_at, ascending=False)
            .limit(limit + 1)
            .offset(offset)
            .run()
        )
        items = [await pass_out(r, host_view=role == "issued") for r in rows[:limit]]
        return page(request, items + rows[limit:], limit=limit, offset=offset)

    async def own_pass(pass_id: str, openid: str, *, host_only: bool) -> dict[str, Any]:
        try:
            pid = uuid.UUID(pass_id)
        except ValueError:
            raise NotFound("no such pass", code="unknown_pass") from None
        row = await VisitorPass.select().where(VisitorPass.id == pid).first().run()
        if row is None or (row["host"] != openid and (host_only or row["visitor"] != openid)):
            raise NotFound("no such pass of yours", code="unknown_pass")
        return row

    @delete(
        "/passes/{pass_id:str}",
        guards=[citizen_caller],
        status_code=HTTP_200_OK,
        summary="The resident who issued a pass cancels it (at once)",
    )
    async def cancel_pass(pass_id: FromPath[str], caller: NamedDependency[AppCaller]) -> dict[str, Any]:
        row = await own_pass(pass_id, caller.openid, host_only=True)
        done = await (
            VisitorPass.update({VisitorPass.state: "cancelled", VisitorPass.cancelled_at: platform.now()})
            .where((VisitorPass.id == row["id"]) & (VisitorPass.state == "active"))
            .returning(VisitorPass.id)
            .run()
        )
        if not done:
            raise Conflict("the pass is cancelled already", code="pass_cancelled")
        row = await own_pass(pass_id, caller.openid, host_only=True)
        return await pass_out(row, host_view=True)

    @get(
        "/passes/{pass_id:str}/entries",
        guards=[citizen_caller],
        summary="The entries made with a pass (its host or its visitor)",
    )
    async def pass_entries(
        request: Request[Any, Any, Any],
        pass_id: FromPath[str],
        caller: NamedDependency[AppCaller],
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        row = await own_pass(pass_id, caller.openid, host_only=False)
        rows = await (
            Entry.select()
            .where(Entry.visitor_pass == row["id"])
            .order_by(Entry.at, ascending=False)
            .limit(limit + 1)
            .offset(offset)
            .run()
        )
        return page(
            request,
            await entries_out(rows[:limit], manager=False) + rows[limit:],
            limit=limit,
            offset=offset,
        )

    @get(
        "/entries",
        guards=[citizen_caller],
        summary="The caller's own entries (allowed and refused, online and offline)",
    )
    async def my_entries(
        request: Request[Any, Any, Any],
        caller: NamedDependency[AppCaller],
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        rows = await (
            Entry.select()
            .where(Entry.openid == caller.openid)
            .order_by(Entry.at, ascending=False)
            .limit(limit + 1)
            .offset(offset)
            .run()
        )
        return page(
            request,
            await entries_out(rows[:limit], manager=False) + rows[limit:],
            limit=limit,
            offset=offset,
        )

    # ---- the property manager's backend (the app's own credential) ----------------------------------
    def resident_out(row: dict[str, Any], buildings: dict[int, str]) -> dict[str, Any]:
        return {
            "id": str(row["id"]),
            "who": rules.masked(row["openid"]),
            "building": buildings.get(row["building"]) if row["building"] else None,
            "state": row["state"],
            "source": row["source"],
            "created_at": row["created_at"],
            "decided_at": row["decided_at"],
            "removed_at": row["removed_at"],
        }

    async def buildings_of(place: dict[str, Any]) -> dict[int, str]:
        rows = await Building.select(Building.id, Building.code).where(Building.place == place["id"]).run()  # type: ignore[attr-defined]
        return {r["id"]: r["code"] for r in rows}

    def resident_id(value: str) -> uuid.UUID:
        try:
            return uuid.UUID(value)
        except ValueError:
            raise NotFound("no such resident here", code="unknown_resident") from None

    @put(
        "/places/{code:str}",
        guards=[app_backend],
        summary="The manager registers or renames a place with its buildings and doors (none is removed)",
    )
    async def save_place(code: FromPath[str], data: JSONBody[PlaceIn]) -> dict[str, Any]:
        if not PLACE_CODE.fullmatch(code):
            raise InvalidInput(
                "a place's code is 1-24 letters, digits, '-' or '_'", code="invalid_place_code"
            )
        building_codes = [b.code for b in data.buildings]
        if len(set(building_codes)) != len(building_codes) or len({d.code for d in data.doors}) != len(
            data.doors
        ):
            raise InvalidInput("a building or door code is given twice", code="duplicate_code")
        # the codes are checked again inside the transaction (another place may take one meanwhile); a
        # unique index that refuses a write (two new places drawing the same number, or the same new
        # code) is tried again, checks first: registering places side by side is not an error
        for _ in range(4):
            try:
                return await _save_place(code, data)
            except Exception as exc:
                if type(exc).__name__ not in ("UniqueViolationError", "IntegrityError"):
                    raise
        raise Conflict("the place was registered at the same moment; try again", code="place_busy")

    async def codes_elsewhere(code: str, data: PlaceIn) -> None:
        building_codes = [b.code for b in data.buildings]
        taken = (
            await Door.select(Door.code, Door.place.code.as_alias("place"))
            .where(  # type: ignore[attr-defined]
                Door.code.is_in([d.code for d in data.doors] or [""])
            )
            .run()
        )
        taken += (
            await Building.select(Building.code, Building.place.code.as_alias("place"))
            .where(  # type: ignore[attr-defined]
                Building.code.is_in(building_codes or [""])
            )
            .run()
        )
        if elsewhere := sorted(r["code"] for r in taken if r["place"] != code):
            raise Conflict("codes of another place: " + ", ".join(elsewhere), code="code_of_another_place")

    async def _save_place(code: str, data: PlaceIn) -> dict[str, Any]:
        async with platform.transaction():
            await codes_elsewhere(code, data)
            place = await Place.select().where(Place.code == code).first().run()
            values: dict[Any, Any] = {
                "name": data.name,
                "name_en": data.name_en,
                "kind": data.kind,
                "district": data.district,
            }
            if place is None:
                # new places take numbers one after another: the first place's row is held (an UPDATE
                # that changes nothing locks it on PostgreSQL; every new place waits for the same row),
                # then the highest number read
                first = await Place.select(Place.number).order_by(Place.number).first().run()
                if first is not None:
                    await (
                        Place.update({Place.number: first["number"]})
                        .where(Place.number == first["number"])
                        .run()
                    )
                top = await Place.select(Place.number).order_by(Place.number, ascending=False).first().run()
                await Place.insert(Place(code=code, number=(top["number"] if top else 0) + 1, **values)).run()
            else:
                await Place.update(values).where(Place.id == place["id"]).run()  # type: ignore[attr-defined]
            place = await services.place_by_code(code)
            known = {
                r["code"]
                for r in await Building.select(Building.code).where(Building.place == place["id"]).run()
            }
            buildings = set(known)
            for b in data.buildings:
                row: dict[Any, Any] = {"name": b.name, "name_en": b.name_en}
                if b.code in known:
                    await (
                        Building.update(row)
                        .where((Building.code == b.code) & (Building.place == place["id"]))
                        .run()
                    )
                else:
                    await Building.insert(Building(code=b.code, place=place["id"], **row)).run()
                buildings.add(b.code)
            for d in data.doors:
                if d.building is not None and d.building not in buildings:
                    raise InvalidInput(
                        f"door {d.code}: no building {d.building} here", code="unknown_building"
                    )
                bid = await services.building_of(place, d.building)
                door_row: dict[Any, Any] = {"name": d.name, "name_en": d.name_en, "building": bid}
                mine = (Door.code == d.code) & (Door.place == place["id"])  # never another place's door
                if await Door.exists().where(mine).run():
                    await Door.update(door_row).where(mine).run()
                else:
                    await Door.insert(Door(code=d.code, place=place["id"], **door_row)).run()
        rows = await Door.select(Door.code).where(Door.place == place["id"]).order_by(Door.code).run()
        return {"code": code, "number": place["number"], "doors": [r["code"] for r in rows]}

    @post(
        "/places/{code:str}/residents",
        guards=[app_backend],
        status_code=HTTP_201_CREATED,
        summary="The manager adds a resident by phone or ID number (the platform finds the citizen)",
    )
    async def add_resident(code: FromPath[str], data: JSONBody[ResidentCreate]) -> dict[str, Any]:
        if (data.phone is None) == (data.id_number is None):
            raise InvalidInput("give phone or id_number, one of them", code="invalid_citizen_query")
        place = await services.place_by_code(code)
        building = await services.building_of(place, data.building)
        openid = await platform.find_citizen(phone=data.phone, id_number=data.id_number)
        if openid is None:
            raise NotFound("no citizen with this phone or verified ID number", code="no_such_citizen")
        row = await residents.add(place, openid, building, source="manager", state="active")
        return resident_out(row, await buildings_of(place))

    @get(
        "/places/{code:str}/residents",
        guards=[app_backend],
        summary="The place's residents and requests (pairwise ids masked)",
    )
    async def list_residents(
        request: Request[Any, Any, Any],
        code: FromPath[str],
        wanted: Annotated[str | None, QueryParameter(name="state")] = None,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        place = await services.place_by_code(code)
        q = Resident.select().where(Resident.place == place["id"])
        if wanted:
            q = q.where(Resident.state == wanted)
        rows = await q.order_by(Resident.created_at, ascending=False).limit(limit + 1).offset(offset).run()
        b = await buildings_of(place)
        return page(
            request, [resident_out(r, b) for r in rows[:limit]] + rows[limit:], limit=limit, offset=offset
        )

    @post(
        "/places/{code:str}/residents/{rid:str}/approve",
        guards=[app_backend],
        status_code=HTTP_200_OK,
        summary="Approve a citizen's request to be a resident",
    )
    async def approve(code: FromPath[str], rid: FromPath[str]) -> dict[str, Any]:
        place = await services.place_by_code(code)
        row = await residents.decide(place, resident_id(rid), True)
        return resident_out(row, await buildings_of(place))

    @post(
        "/places/{code:str}/residents/{rid:str}/refuse",
        guards=[app_backend],
        status_code=HTTP_200_OK,
        summary="Refuse a citizen's request to be a resident",
    )
    async def refuse(code: FromPath[str], rid: FromPath[str]) -> dict[str, Any]:
        place = await services.place_by_code(code)
        row = await residents.decide(place, resident_id(rid), False)
        return resident_out(row, await buildings_of(place))

    @delete(
        "/places/{code:str}/residents/{rid:str}",
        guards=[app_backend],
        status_code=HTTP_200_OK,
        summary="Remove a resident: refused online at once, offline after the door's next sync",
    )
    async def remove(code: FromPath[str], rid: FromPath[str]) -> dict[str, Any]:
        place = await services.place_by_code(code)
        row = await residents.remove(place, resident_id(rid))
        return resident_out(row, await buildings_of(place))

    @get(
        "/places/{code:str}/entries",
        guards=[app_backend],
        summary="Entries at the place's doors, newest first (pairwise ids masked, no personal data)",
    )
    async def place_entries(
        request: Request[Any, Any, Any],
        code: FromPath[str],
        door: FromQuery[str | None] = None,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        place = await services.place_by_code(code)
        q = Entry.select().where(Entry.place == place["id"])
        if door:
            q = q.where(Entry.door.code == door)
        rows = await q.order_by(Entry.at, ascending=False).limit(limit + 1).offset(offset).run()
        return page(
            request,
            await entries_out(rows[:limit], manager=True) + rows[limit:],
            limit=limit,
            offset=offset,
        )

    @post(
        "/places/{code:str}/key",
        guards=[app_backend],
        status_code=HTTP_200_OK,
        summary="Rotate the place's offline key: published to the doors now, masking codes a refresh later",
    )
    async def rotate_key(code: FromPath[str]) -> dict[str, Any]:
        return await keys.rotate(code)

    # ---- the doors ----------------------------------------------------------------------------------
    @get(
        "/door-list",
        guards=[scanner_caller],
        summary="A door's signed offline list (ETag; 304 while unchanged)",
    )
    async def door_list(
        request: Request[Any, Any, Any], scanner: NamedDependency[ScannerCaller]
    ) -> Response[Any]:
        if scanner.context != "door":
            raise Forbidden("only a door's controller fetches a door list", code="not_a_door")
        doc, etag = await services.door_list(
            keys,
            scanner.place,
            int(platform.now().timestamp()),
            refresh=setting("list_refresh_seconds"),
            validity=setting("list_validity_hours") * 3600,
        )
        headers = {"ETag": etag, "Cache-Control": "no-store"}
        candidates = [t.strip() for t in request.headers.get("if-none-match", "").split(",")]
        if etag in candidates or etag.removeprefix("W/") in candidates:
            return Response(content=b"", status_code=304, headers=headers)
        return Response(content=await platform.sign_document(doc, services.LIST_TYP), headers=headers)

    return [
        list_places,
        request_residence,
        my_residences,
        leave,
        create_pass,
        list_passes,
        cancel_pass,
        pass_entries,
        my_entries,
        add_resident,
        list_residents,
        approve,
        refuse,
        remove,
        place_entries,
        rotate_key,
        save_place,
        door_list,
    ]
