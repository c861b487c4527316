"""Demo network for the embedded default: Shenyang (沈阳) buses and metro lines 1 and 2.

Station names and their order are the real ones (line 1's first phase, 十三号街–黎明广场, 27.8 km; line 2's
first phase, 三台子–全运路); the distances from each line's first station are rounded approximations
(metro fares go by distance). The two lines meet at 青年大街. Bus fares are flat. Every name comes in
Chinese and in English: Shenyang Metro's English names are the stations' pinyin, generic words apart
(十三号街 Shisanhao Jie), but for the railway stations (沈阳站 Shenyang Railway Station).
"""

from __future__ import annotations

from miniapps.contract import DemoScanner, tally, upsert_by_code
from miniapps.transit.tables import TransitLine, TransitStation

# (code, Chinese name, English name, kind, flat fare in fen): buses are enrolled with their line code as
# the place
LINES = [
    ("B113", "113路", "Bus 113", "bus", 200),
    ("B136", "136路", "Bus 136", "bus", 200),
    ("B237", "237路", "Bus 237", "bus", 200),
    ("M1", "地铁1号线", "Metro Line 1", "metro", 0),
    ("M2", "地铁2号线", "Metro Line 2", "metro", 0),
]
# metro stations in line order: (Chinese name, English name, metres from the line's first station);
# codes are M1-01, M1-02, ...
METRO = {
    "M1": [
        ("十三号街", "Shisanhao Jie", 0),
        ("中央大街", "Zhongyang Dajie", 1300),
        ("七号街", "Qihao Jie", 2500),
        ("四号街", "Sihao Jie", 3800),
        ("张士", "Zhangshi", 5200),
        ("开发大道", "Kaifa Dadao", 6700),
        ("于洪广场", "Yuhong Guangchang", 8100),
        ("迎宾路", "Yingbin Lu", 9400),
        ("重工街", "Zhonggong Jie", 10600),
        ("启工街", "Qigong Jie", 11700),
        ("保工街", "Baogong Jie", 12800),
        ("铁西广场", "Tiexi Guangchang", 13900),
        ("云峰北街", "Yunfeng Beijie", 15200),
        ("沈阳站", "Shenyang Railway Station", 16600),
        ("太原街", "Taiyuan Jie", 17600),
        ("南市场", "Nanshichang", 18700),
        ("青年大街", "Qingnian Dajie", 20000),
        ("怀远门", "Huaiyuanmen", 21300),
        ("中街", "Zhongjie", 22300),
        ("东中街", "Dongzhongjie", 23400),
        ("滂江街", "Pangjiang Jie", 25400),
        ("黎明广场", "Liming Guangchang", 27800),
    ],
    "M2": [
        ("三台子", "Santaizi", 0),
        ("陵西", "Lingxi", 1200),
        ("新乐遗址", "Xinle Yizhi", 2300),
        ("北陵公园", "Beiling Gongyuan", 3400),
        ("中医药大学", "Zhongyiyao Daxue", 4400),
        ("岐山路", "Qishan Lu", 5400),
        ("沈阳北站", "Shenyang North Railway Station", 6800),
        ("金融中心", "Jinrong Zhongxin", 7900),
        ("市府广场", "Shifu Guangchang", 8900),
        ("青年大街", "Qingnian Dajie", 10100),
        ("青年公园", "Qingnian Gongyuan", 11300),
        ("工业展览馆", "Gongye Zhanlanguan", 12200),
        ("市图书馆", "Shi Tushuguan", 13100),
        ("五里河", "Wulihe", 14300),
        ("奥体中心", "Aoti Zhongxin", 15800),
        ("营盘街", "Yingpan Jie", 17300),
        ("世纪大厦", "Shiji Dasha", 18600),
        ("白塔河路", "Baitahe Lu", 20100),
        ("全运路", "Quanyun Lu", 21600),
    ],
}


def station_code(line: str, index: int) -> str:
    """``M1-01`` for the first station of line M1."""
    return f"{line}-{index + 1:02d}"


def station(line: str, name: str) -> str:
    """The code of a named station, e.g. ``station("M1", "中街")`` → ``M1-19``."""
    return station_code(line, [n for n, _, _ in METRO[line]].index(name))


async def seed() -> list[str]:
    done: list[str] = []
    for code, name, name_en, kind, fare in LINES:
        values = {"name": name, "name_en": name_en, "kind": kind, "flat_fare": fare}
        done.append(await upsert_by_code(TransitLine, code, values))
    stations = 0
    for line, names in METRO.items():
        row = await TransitLine.select(TransitLine.id).where(TransitLine.code == line).first().run()  # type: ignore[attr-defined]
        assert row is not None
        for i, (name, name_en, meters) in enumerate(names):
            values = {"line": row["id"], "name": name, "name_en": name_en, "meters": meters}
            done.append(await upsert_by_code(TransitStation, station_code(line, i), values))
            stations += 1
    return [f"transit: {len(LINES)} lines, {stations} metro stations in Shenyang {tally(done)}"]


# The scanners `shengshi seed-demo` enrols, one at each kind of gate (their names are in Chinese, the
# console's language; ``formerly``: the name an earlier version gave them, both languages in one).
SCANNERS = (
    DemoScanner("bus", "B113", "演示：113路公交 前门", formerly="demo: 113路 bus front door"),
    DemoScanner(
        "metro-entry",
        "M1-14",
        "演示：地铁1号线 沈阳站 进站闸机",
        formerly="demo: 地铁1号线 沈阳站 entry gate",
    ),
    DemoScanner(
        "metro-exit", "M1-19", "演示：地铁1号线 中街 出站闸机", formerly="demo: 地铁1号线 中街 exit gate"
    ),
)
