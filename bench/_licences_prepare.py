"""The e-licence benchmark's cast, made in-process on the scratch database with the app's own services
(bench/licences.py runs it as ``python -m bench._licences_prepare <command> <in.json> <out.json>``):

- ``setup``: the issuers (traffic police departments, each with its signing key and credential), a
  relying party's credential, verified citizens (their real name as a provider would have verified it),
  a full status list of licences as an issuer's first year leaves it (some revoked, some suspended), and
  citizens each holding a licence with a standing consent to the relying party;
- ``indexes``: the holder index (HMAC) of ID numbers, to read the books by.

Also the generators bench/licences.py shares: ID numbers (valid check digits) and a driving licence's
fields.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from auth._profile import DISTRICTS
from auth.pii import id_check_digit

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉兰萍红鹏飞宇浩然欣怡子涵"
STREETS = ["北京街", "中街路", "青年大街", "三好街", "太原街", "北陵大街", "长江北街", "浑河大道", "兴华街"]
CLASSES = ["C1"] * 14 + ["C2"] * 3 + ["B2", "A2", "C1E", "D"]
AUTHORITY = "沈阳市公安局交通警察支队"
SHARED_FIELDS = ["name", "licence_number", "licence_class", "valid_until"]
PURPOSE = "办理机动车登记业务，核验驾驶资格"


class IdNumbers:
    """Distinct, valid resident ID numbers of Shenyang's districts (GB 11643 check digit)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.seen: set[str] = set()
        self.codes = list(DISTRICTS)

    def next(self) -> str:
        while True:
            born = date(1955, 1, 1) + timedelta(days=self.rng.randrange(50 * 365))
            first = f"{self.rng.choice(self.codes)}{born:%Y%m%d}{self.rng.randrange(1000):03d}"
            number = first + id_check_digit(first)
            if number not in self.seen:
                self.seen.add(number)
                return number


def driving_fields(rng: random.Random, id_number: str) -> dict[str, str]:
    """A driving licence as a traffic police department keeps it; its number is the ID number (as a
    Chinese driving licence's is)."""
    born = date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
    first = date(min(born.year + 18 + rng.randrange(20), 2025), born.month, min(born.day, 28))
    valid_from = first.replace(year=min(first.year + rng.choice((0, 6, 16)), 2025))
    district = DISTRICTS[id_number[:6]][0]
    return {
        "name": rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2)))),
        "sex": "男" if int(id_number[16]) % 2 else "女",
        "nationality": "中国",
        "birth_date": born.isoformat(),
        "address": f"辽宁省沈阳市{district}{rng.choice(STREETS)}{rng.randrange(1, 300)}号",
        "licence_number": id_number,
        "licence_class": rng.choice(CLASSES),
        "first_issued": first.isoformat(),
        "valid_from": valid_from.isoformat(),
        "valid_until": valid_from.replace(year=valid_from.year + 10).isoformat(),
        "issuing_authority": AUTHORITY,
    }


async def setup(spec: dict[str, Any]) -> dict[str, Any]:
    from auth.tables import Citizen
    from backend import db
    from backend.app import create_app, services_of
    from backend.runtime import build_runtime
    from backend.settings import load_settings
    from licences._consent import Requester
    from licences._issuers import LIST_SIZE
    from licences.rules import TYPES, status_index
    from licences.setup import LICENCES
    from licences.tables import Licence, LicenceStatusList

    rng = random.Random(spec["seed"])
    ids = IdNumbers(rng)
    ids.seen.update(spec["reserved"])  # the ID numbers the issuing rounds will send
    runtime = build_runtime(load_settings())
    runtime.background = False
    app = create_app(runtime=runtime)
    out: dict[str, Any] = {}
    async with app.lifespan():
        lic = LICENCES.of(app)
        machines = services_of(app).auth.machines
        book = lic.book
        now = runtime.clock.now()
        issuers = []
        for i in range(1, spec["issuers"] + 1):
            code = "sy-traffic" if i == 1 else f"sy-traffic-{i}"
            made = await lic.issuers.create(
                code,
                AUTHORITY if i == 1 else f"{AUTHORITY}第{i}车管所",
                "Shenyang Traffic Police" if i == 1 else f"Shenyang Traffic Police, office {i}",
                "traffic_police",
                ["driving_licence", "vehicle_licence"],
                actor="bench",
            )
            issuers.append({k: made[k] for k in ("code", "name_zh", "client_id", "client_secret")})
        out["issuers"] = issuers
        rp = await machines.create("relying_party", name="沈阳市车辆管理所 (bench)", actor="bench")
        out["relying_party"] = {k: rp[k] for k in ("client_id", "client_secret")}

        # verified citizens: the holders among the issuing rounds' ID numbers, and the sharers
        sharers = [ids.next() for _ in range(spec["sharers"])]
        verified = list(spec["holders"]) + sharers
        citizen_of: dict[str, str] = {}
        rows = []
        for number in verified:
            cid = uuid.uuid4()
            citizen_of[number] = str(cid)
            rows.append(
                {
                    "id": cid,
                    "status": "active",
                    "phone_masked": "",
                    "id_number_index": book.holder_index(number),
                    "real_name_verified_at": now,
                    "real_name_provider": "bench",
                    "real_name_level": "two_factor",
                    "real_name_reference": "",
                    "district": number[:6],
                    "created_at": now,
                    "updated_at": now,
                }
            )
        for i in range(0, len(rows), 2000):
            await db.bulk_insert(Citizen, rows[i : i + 2000])

        # a full status list of the first issuer: licences written as book.issue writes them
        kind = TYPES["driving_licence"]
        code = issuers[0]["code"]
        n = spec["list_licences"]
        listed: dict[str, int] = {"valid": 0, "revoked": 0, "suspended": 0}
        if n:
            async with db.transaction():
                await LicenceStatusList.raw(
                    "INSERT INTO licence_status_list (issuer, number, size, bits, used, changed_at)"
                    " VALUES ({}, 1, {}, 2, {}, {})",
                    code,
                    LIST_SIZE,
                    n,
                    now,
                ).run()
                [row] = await LicenceStatusList.select(LicenceStatusList.id).where(
                    (LicenceStatusList.issuer == code) & (LicenceStatusList.number == 1)
                )
                list_id = row["id"]
                batch: list[dict[str, Any]] = []
                for counter in range(n):
                    number = ids.next()
                    fields = driving_fields(rng, number)
                    lid = uuid.uuid4()
                    r = rng.random()
                    status = (
                        "revoked"
                        if r < spec["revoked"]
                        else "suspended"
                        if r < spec["revoked"] + spec["suspended"]
                        else "valid"
                    )
                    listed[status] += 1
                    issued = now - timedelta(seconds=rng.uniform(0, 365 * 86400))
                    batch.append(
                        {
                            "id": lid,
                            "issuer": code,
                            "type": kind.code,
                            "number_index": book._number_index(code, kind.code, number),
                            "holder_index": book.holder_index(number),
                            "fields_sealed": book._seal(lid, fields),
                            "summary": book._summary(kind, fields),
                            "status": status,
                            "reason": {"valid": "", "revoked": "驾驶证被吊销", "suspended": "记满12分，暂扣"}[
                                status
                            ],
                            "version": 1,
                            "status_list": list_id,
                            "status_idx": status_index(counter, LIST_SIZE),
                            "valid_until": None,
                            "issued_at": issued,
                            "updated_at": issued,
                        }
                    )
                    if len(batch) == 2000:
                        await db.bulk_insert(Licence, batch)
                        batch = []
                await db.bulk_insert(Licence, batch)
        out["list"] = {"issuer": code, "number": 1, "licences": n, **listed}

        # the sharers: a licence each (issued the app's way) and a standing consent to the relying party
        requester = Requester("relying_party", rp["client_id"], "沈阳市车辆管理所 (bench)")
        issuer = await lic.issuers.get(code)
        requests = []
        for number in sharers:
            await book.issue(issuer, kind.code, number, driving_fields(rng, number), None)
            asked, _ = await lic.consents.request(
                requester, citizen_of[number], kind.code, SHARED_FIELDS, PURPOSE, "standing"
            )
            decided = await lic.consents.decide(citizen_of[number], asked["id"], True)
            assert decided["state"] == "approved", decided
            requests.append(asked["id"])
        out["requests"] = requests
    return out


async def indexes(spec: dict[str, Any]) -> dict[str, Any]:
    from backend.app import create_app
    from backend.runtime import build_runtime
    from backend.settings import load_settings
    from licences.setup import LICENCES

    runtime = build_runtime(load_settings())
    runtime.background = False
    app = create_app(runtime=runtime)
    async with app.lifespan():
        book = LICENCES.of(app).book
        return {n: book.holder_index(n) for n in spec["id_numbers"]}


def main() -> None:
    command, given, answer = sys.argv[1:4]
    spec = json.loads(Path(given).read_text())
    run = {"setup": setup, "indexes": indexes}[command]
    started = datetime.now(UTC)
    out = asyncio.run(run(spec))
    out["_seconds"] = (datetime.now(UTC) - started).total_seconds()
    Path(answer).write_text(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
