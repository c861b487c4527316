"""Demo hospital: 中国医科大学附属盛京医院 (Shengjing Hospital of China Medical University, 沈阳 Shenyang),
four departments with a doctor each (the doctors are made up), and half-hour appointment slots for today
and the next days, China time — made afresh on every ``seed-demo`` so the demo works next week too."""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta

from miniapps.contract import DemoScanner, tally, upsert_by_code
from miniapps.hospital.rules import CHINA
from miniapps.hospital.tables import Department, Doctor, Hospital, Slot

DAYS = 7  # today and the six days after it
# (code, Chinese name, English name (the hospital's own), administrative region: 沈阳市)
HOSPITAL = (
    "H-SHENGJING",
    "中国医科大学附属盛京医院",
    "Shengjing Hospital of China Medical University",
    "210100",
)
# (department code, Chinese name, English name, [(doctor code, name, title)]): a doctor's name is the
# same in every language
DEPARTMENTS = [
    ("D-CARDIO", "心血管内科", "Cardiology", [("DR-ZHAO", "赵医生", "主任医师")]),
    ("D-PED", "小儿内科", "Paediatrics", [("DR-LI", "李医生", "副主任医师")]),
    ("D-GASTRO", "消化内科", "Gastroenterology", [("DR-SUN", "孙医生", "主治医师")]),
    ("D-OBGYN", "妇产科", "Obstetrics and Gynaecology", [("DR-CHEN", "陈医生", "主任医师")]),
]
# surgery hours: 08:00-11:30 and 13:30-16:00, one patient per half hour
TIMES = [time(m // 60, m % 60) for m in [*range(8 * 60, 12 * 60, 30), *range(13 * 60 + 30, 16 * 60 + 30, 30)]]


def slot_times(now: datetime, days: int = DAYS) -> list[datetime]:
    """Every slot start from today (China time) for ``days`` days, past hours of today included."""
    today = now.astimezone(CHINA).date()
    return [datetime.combine(today + timedelta(days=d), t, CHINA) for d in range(days) for t in TIMES]


async def seed(now: datetime) -> list[str]:
    code, name, name_en, region = HOSPITAL
    done = [await upsert_by_code(Hospital, code, {"name": name, "name_en": name_en, "region": region})]
    hospital = await Hospital.select(Hospital.id).where(Hospital.code == code).first().run()  # type: ignore[attr-defined]
    assert hospital is not None
    starts = slot_times(now)
    made = doctors = 0
    for dcode, dname, dname_en, staff in DEPARTMENTS:
        values = {"hospital": hospital["id"], "name": dname, "name_en": dname_en}
        done.append(await upsert_by_code(Department, dcode, values))
        dep = await Department.select(Department.id).where(Department.code == dcode).first().run()  # type: ignore[attr-defined]
        assert dep is not None
        for doc_code, doc_name, title in staff:
            doctors += 1
            values = {"department": dep["id"], "name": doc_name, "title": title}
            done.append(await upsert_by_code(Doctor, doc_code, values))
            doc = await Doctor.select(Doctor.id).where(Doctor.code == doc_code).first().run()  # type: ignore[attr-defined]
            assert doc is not None
            have = {
                r["starts_at"]
                for r in await Slot.select(Slot.starts_at).where(
                    (Slot.doctor == doc["id"]) & (Slot.starts_at >= starts[0])
                )
            }
            new = [
                Slot(id=uuid.uuid4(), doctor=doc["id"], capacity=1, starts_at=t)
                for t in starts
                if t not in have
            ]
            if new:
                await Slot.insert(*new).run()
            made += len(new)
    first, last = starts[0].date(), starts[-1].date()
    return [
        f"hospital: {name_en}, {len(DEPARTMENTS)} departments, {doctors} doctors {tally(done)}; "
        f"slots {first} to {last}: {made} new"
    ]


# The scanners `shengshi seed-demo` enrols, one at each kind of gate (their names are in Chinese, the
# console's language; ``formerly``: the name an earlier version gave them, both languages in one).
SCANNERS = (
    DemoScanner(
        "hospital-checkin",
        "H-SHENGJING",
        "演示：盛京医院 自助签到机",
        formerly="demo: 盛京医院 check-in kiosk",
    ),
)
