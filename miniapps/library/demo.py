"""Demo libraries of Shenyang (沈阳): 辽宁省图书馆 and 沈阳市图书馆 with branches, a few titles with valid
ISBN-13s and copies. Idempotent (``upsert_by_code``; titles and copies by ISBN and barcode)."""

from __future__ import annotations

import uuid

from miniapps.contract import DemoScanner, tally, upsert_by_code
from miniapps.library.rules import isbn13
from miniapps.library.tables import Branch, Copy, Library, Title

# (code, (Chinese, English), rule overrides)
LIBRARIES = [
    ("LNLIB", ("辽宁省图书馆", "Liaoning Provincial Library"), {"loan_days": 30, "max_loans": 10}),
    ("SYLIB", ("沈阳市图书馆", "Shenyang Library"), {"loan_days": 28, "max_loans": 8, "fine_per_day": 20}),
]
# (code, library, (Chinese, English), (district, district_en))
BRANCHES = [
    (
        "LN-MAIN",
        "LNLIB",
        ("辽宁省图书馆 总馆", "Liaoning Provincial Library, main"),
        ("沈河区", "Shenhe District"),
    ),
    ("SY-MAIN", "SYLIB", ("沈阳市图书馆 总馆", "Shenyang Library, main"), ("皇姑区", "Huanggu District")),
    (
        "SY-TIEXI",
        "SYLIB",
        ("沈阳市图书馆 铁西分馆", "Shenyang Library, Tiexi branch"),
        ("铁西区", "Tiexi District"),
    ),
]
# (isbn, title, author, publisher, year)
BOOKS = [
    ("9787020002207", "红楼梦", "曹雪芹", "人民文学出版社", 1996),
    ("9787544253994", "百年孤独", "加西亚·马尔克斯", "南海出版公司", 2011),
    ("9787536692930", "三体", "刘慈欣", "重庆出版社", 2008),
    ("9787020024759", "围城", "钱锺书", "人民文学出版社", 1991),
    ("9787506365437", "活着", "余华", "作家出版社", 2012),
]
# (barcode, library, isbn, branch)
COPIES = [
    ("LN0000001", "LNLIB", "9787020002207", "LN-MAIN"),
    ("LN0000002", "LNLIB", "9787020002207", "LN-MAIN"),
    ("LN0000003", "LNLIB", "9787536692930", "LN-MAIN"),
    ("LN0000004", "LNLIB", "9787544253994", "LN-MAIN"),
    ("SY0000001", "SYLIB", "9787536692930", "SY-MAIN"),
    ("SY0000002", "SYLIB", "9787020024759", "SY-MAIN"),
    ("SY0000003", "SYLIB", "9787506365437", "SY-TIEXI"),
    ("SY0000004", "SYLIB", "9787536692930", "SY-TIEXI"),
]


async def seed() -> list[str]:
    done = []
    for code, (name, name_en), rule in LIBRARIES:
        done.append(await upsert_by_code(Library, code, {"name": name, "name_en": name_en, **rule}))
    ids = {r["code"]: r["id"] for r in await Library.select(Library.id, Library.code)}  # type: ignore[attr-defined]
    for code, lib, (name, name_en), (district, district_en) in BRANCHES:
        done.append(
            await upsert_by_code(
                Branch,
                code,
                {
                    "library": ids[lib],
                    "name": name,
                    "name_en": name_en,
                    "district": district,
                    "district_en": district_en,
                },
            )
        )
    branches = {r["code"]: r["id"] for r in await Branch.select(Branch.id, Branch.code)}  # type: ignore[attr-defined]
    titles: dict[tuple[str, str], uuid.UUID] = {}
    for lib in ids:
        for isbn, title, author, publisher, year in BOOKS:
            assert isbn13(isbn) == isbn, isbn
            row = (
                await Title.select(Title.id).where((Title.library == ids[lib]) & (Title.isbn == isbn)).first()
            )
            if row is None:
                tid = uuid.uuid4()
                await Title.insert(
                    Title(
                        id=tid,
                        library=ids[lib],
                        isbn=isbn,
                        title=title,
                        author=author,
                        publisher=publisher,
                        year=year,
                    )
                ).run()
            else:
                tid = row["id"]
            titles[(lib, isbn)] = tid
    for barcode, lib, isbn, branch in COPIES:
        await (
            Copy.insert(Copy(barcode=barcode, title=titles[(lib, isbn)], branch=branches[branch]))
            .on_conflict(action="DO NOTHING")
            .run()
        )
    return [
        f"library: {len(LIBRARIES)} libraries, {len(BRANCHES)} branches in Shenyang {tally(done)},"
        f" {len(BOOKS)} titles each, {len(COPIES)} copies"
    ]


SCANNERS = (
    DemoScanner("library-desk", "LN-MAIN", "演示：辽宁省图书馆 总馆 借还服务台"),
    DemoScanner("library-kiosk", "SY-MAIN", "演示：沈阳市图书馆 总馆 自助借还机"),
)
