"""Demo hospital with departments, doctors and a week of slots."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from miniapps.hospital.tables import Department, Doctor, Hospital, Slot

CHINA = timezone(timedelta(hours=8))


async def seed(now: datetime) -> list[str]:
    if await Hospital.exists().where(Hospital.code == "H-CITY1").run():
        return ["hospital: demo data present"]
    await Hospital.insert(Hospital(code="H-CITY1", name="市第一医院", region="110000")).run()
    h = await Hospital.select(Hospital.id).where(Hospital.code == "H-CITY1").first().run()  # type: ignore[attr-defined]
    assert h is not None
    slots = 0
    for dcode, dname, doctors in (
        ("D-IM", "内科", [("DR-WANG", "王医生", "主任医师")]),
        ("D-PED", "儿科", [("DR-LI", "李医生", "副主任医师")]),
    ):
        await Department.insert(Department(hospital=h["id"], code=dcode, name=dname)).run()
        dep = await Department.select(Department.id).where(Department.code == dcode).first().run()  # type: ignore[attr-defined]
        assert dep is not None
        for code, name, title in doctors:
            await Doctor.insert(Doctor(department=dep["id"], code=code, name=name, title=title)).run()
            doc = await Doctor.select(Doctor.id).where(Doctor.code == code).first().run()  # type: ignore[attr-defined]
            assert doc is not None
            first = now.astimezone(CHINA).replace(hour=9, minute=0, second=0, microsecond=0)
            for day in range(7):
                for half_hour in range(6):
                    await Slot.insert(
                        Slot(
                            doctor=doc["id"],
                            capacity=1,
                            starts_at=first + timedelta(days=day, minutes=30 * half_hour),
                        )
                    ).run()
                    slots += 1
    return [f"hospital: 1 hospital, 2 departments, 2 doctors, {slots} slots"]
