"""Alipay's trade bill as downloaded (a zip of GBK CSVs with GBK names), read by parse_bill."""

import io
import zipfile
from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payments.channels.alipay import BillProblem, parse_bill

DAY = date(2026, 11, 28)
HEADER = (
    "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,"
    "订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,"
    "券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注"
)
EXAMPLE = (
    "#支付宝业务明细查询\r\n"
    "#账号：[20881234567890120156]\r\n"
    "#起始日期：[2026年11月28日 00:00:00]   终止日期：[2026年11月29日 00:00:00]\r\n"
    "#-----------------------------------------业务明细列表----------------------------------------\r\n"
    f"{HEADER}\r\n"
    "2026112822001411111111111111\t,3f1c0000-0000-4000-8000-000000000001\t,交易,停车费  ,2026-11-28 09:00:01,"
    "2026-11-28 09:00:09,,,,,138****0000,12.34,12.34,0.00,0.00,0.00,0.00,0.00,,0.00,0.00,,-0.07,0.00,\r\n"
    "2026112822001422222222222222\t,3f1c0000-0000-4000-8000-000000000002\t,交易,门票,2026-11-28 10:00:00,"
    "2026-11-28 10:00:05,,,,,139****1111,100.00,100.00,0.00,0.00,0.00,0.00,0.00,,0.00,0.00,,-0.60,0.00,\r\n"
    "2026112822001422222222222222\t,3f1c0000-0000-4000-8000-000000000002\t,退款,门票,2026-11-28 10:00:00,"
    "2026-11-28 23:59:59,,,,,139****1111,-20.00,-20.00,0.00,0.00,0.00,0.00,0.00,,0.00,0.00,"
    "5a9e0000-0000-4000-8000-00000000000a\t,0.12,0.00,\r\n"
    "#-----------------------------------------业务明细列表结束------------------------------------\r\n"
    "#交易合计：2笔，商家实收共112.34元，商家优惠共0.00元，服务费共0.67元\r\n"
    "#退款合计：1笔，商家实收退款共-20.00元，商家优惠退款共0.00元，服务费退款共0.12元\r\n"
    "#导出时间：[2026年11月29日 09:12:30]\r\n"
)
SUMMARY = "#支付宝业务汇总查询\r\n门店编号,门店名称,交易订单总笔数\r\n合计,,3\r\n"


def gbk_zip(files):
    """A zip whose member names are GBK bytes with no UTF-8 flag, as Alipay's are: each name is written as
    an ASCII placeholder of the same byte length, then the placeholder's bytes are replaced."""
    buffer = io.BytesIO()
    names = {}
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for i, (name, text) in enumerate(files.items()):
            raw = name.encode("gbk")
            placeholder = (f"~{i}~" + "x" * len(raw))[: len(raw)].encode()
            names[placeholder] = raw
            archive.writestr(placeholder.decode(), text.encode("gbk"))
    data = buffer.getvalue()
    for placeholder, raw in names.items():
        assert data.count(placeholder) == 2  # the local header and the central directory
        data = data.replace(placeholder, raw)
    return data


def bill(detail, summary=SUMMARY):
    return gbk_zip(
        {
            "20881234567890120156_20261128_业务明细.csv": detail,
            "20881234567890120156_20261128_业务明细(汇总).csv": summary,
        }
    )


def test_the_example_bill():
    data = bill(EXAMPLE)
    assert not data.startswith(b"\xef\xbb\xbf")
    statement = parse_bill(data, DAY)
    assert statement.channel == "alipay" and statement.day == DAY and statement.raw == data
    assert [(r.type, r.order_id[-2:], r.amount, r.fee, r.refund_ref[-2:]) for r in statement.rows] == [
        ("payment", "01", 1234, 7, ""),
        ("payment", "02", 10000, 60, ""),
        ("refund", "02", 2000, 12, "0a"),
    ]
    refund = statement.rows[2]
    assert refund.txn_id == "2026112822001422222222222222/5a9e0000-0000-4000-8000-00000000000a"
    assert refund.channel_time == datetime(2026, 11, 28, 15, 59, 59, tzinfo=UTC)  # China time, in UTC
    assert statement.totals == {"count": 3, "payments": 11234, "refunds": 2000, "fees": 79}


def test_a_bill_whose_rows_do_not_add_up_is_refused():
    with pytest.raises(BillProblem, match="交易"):
        parse_bill(bill(EXAMPLE.replace("商家实收共112.34元", "商家实收共112.35元")), DAY)
    with pytest.raises(BillProblem, match="退款"):
        parse_bill(bill(EXAMPLE.replace("#退款合计：1笔", "#退款合计：2笔")), DAY)


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"PK\x03\x04 not really", "zip"),
        (gbk_zip({"20881234567890120156_20261128_业务明细(汇总).csv": SUMMARY}), "detail"),
        (gbk_zip({"20881234567890120156_20261128_业务明细.csv": "#只有注释\r\n"}), "no header"),
        (bill(EXAMPLE.replace("交易,停车费", "转账,停车费")), "business type"),
        (bill(EXAMPLE.replace("12.34,12.34", "12.345,12.34")), "amount"),
        (bill(EXAMPLE.replace(",备注", "")), "fields"),
        (bill(EXAMPLE.replace("服务费（元）,", "")), "服务费"),
    ],
)
def test_an_unreadable_bill_is_refused(data, reason):
    with pytest.raises(BillProblem, match=reason):
        parse_bill(data, DAY)


def test_a_detail_file_that_is_not_gbk_is_refused():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a_业务明细.csv", b"\xff\xfe\xff")  # a UTF-8-flagged name, a body that is not GBK
    with pytest.raises(BillProblem, match="GBK"):
        parse_bill(buffer.getvalue(), DAY)


def test_a_day_without_trades_is_an_empty_statement():
    empty = (
        EXAMPLE.split(HEADER)[0]
        + HEADER
        + "\r\n#交易合计：0笔，商家实收共0.00元\r\n#退款合计：0笔，商家实收退款共0.00元\r\n"
    )
    statement = parse_bill(bill(empty), DAY)
    assert statement.rows == [] and statement.totals["count"] == 0


fen = st.integers(min_value=1, max_value=10**8)
movement = st.tuples(st.sampled_from(["交易", "退款"]), fen, st.integers(min_value=0, max_value=999))


def yuan(f):
    return f"{'-' if f < 0 else ''}{abs(f) // 100}.{abs(f) % 100:02d}"


@settings(max_examples=40, deadline=None)
@given(st.lists(movement, max_size=12), st.sampled_from(["", " ", "\t", " \t"]))
def test_any_bill_reads_back_its_rows_and_totals(movements, pad):
    lines = ["#支付宝业务明细查询", "#账号：[20880000000000000000]", HEADER]
    sums = {"交易": [0, 0], "退款": [0, 0]}
    for i, (kind, amount, fee) in enumerate(movements):
        signed = amount if kind == "交易" else -amount
        request_no = f"rf-{i}" if kind == "退款" else ""
        fields = [
            f"2026{i:024d}",
            f"order-{i}",
            kind,
            "商品，名称",
            "2026-11-28 08:00:00",
            "2026-11-28 08:00:01",
        ]
        fields += ["", "", "", "", "", yuan(signed), yuan(signed)] + ["0.00"] * 5 + ["", "0.00", "0.00"]
        fields += [request_no, yuan(fee if kind == "退款" else -fee), "0.00", ""]
        lines.append(",".join(f'"{f}"' if "，" in f else f + pad for f in fields))
        sums[kind][0] += 1
        sums[kind][1] += amount
    lines.append(f"#交易合计：{sums['交易'][0]}笔，商家实收共{yuan(sums['交易'][1])}元，服务费共0.00元")
    lines.append(f"#退款合计：{sums['退款'][0]}笔，商家实收退款共{yuan(-sums['退款'][1])}元")
    statement = parse_bill(bill("\r\n".join(lines) + "\r\n"), DAY)
    assert [(r.type, r.amount, r.fee) for r in statement.rows] == [
        ("payment" if kind == "交易" else "refund", amount, fee) for kind, amount, fee in movements
    ]
    assert [r.refund_ref for r in statement.rows] == [
        f"rf-{i}" if kind == "退款" else "" for i, (kind, _, _) in enumerate(movements)
    ]
    assert statement.totals["payments"] == sums["交易"][1] and statement.totals["refunds"] == sums["退款"][1]


# ---- files no bill is: refused as BillProblem, never another exception, never unpacked whole ----------
def test_a_zip_bomb_is_refused_before_it_is_unpacked(monkeypatch):
    """A detail file that unpacks past the cap (a few kilobytes of zip, megabytes of text) is refused from
    its stated size; one whose stated size lies is cut at the cap while it is read."""
    import payments.channels.alipay as alipay

    monkeypatch.setattr(alipay, "BILL_MAX_BYTES", 1 << 20)
    name = "20881234567890120156_20261128_业务明细.csv"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, b"#" + b"0" * (4 << 20))
    assert len(buffer.getvalue()) < 16 << 10
    with pytest.raises(BillProblem, match="larger"):
        parse_bill(buffer.getvalue(), DAY)
    # the same member whose headers claim 100 bytes: zipfile stops at the stated size and then the CRC
    # does not match, so nothing past the cap is ever produced
    data = buffer.getvalue()
    size = (4 << 20) + 1
    lied = data.replace(size.to_bytes(4, "little"), (100).to_bytes(4, "little"))
    assert lied != data
    with pytest.raises(BillProblem):
        parse_bill(lied, DAY)


def _member_bytes(method, flags=0):
    """A zip with one detail member, then its compression method or flags changed in both headers."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a_业务明细.csv", EXAMPLE.encode("gbk"))
    data = bytearray(buffer.getvalue())
    local = data.index(b"PK\x03\x04")
    central = data.index(b"PK\x01\x02")
    data[local + 8 : local + 10] = method.to_bytes(2, "little")
    data[central + 10 : central + 12] = method.to_bytes(2, "little")
    if flags:
        data[local + 6 : local + 8] = flags.to_bytes(2, "little")
        data[central + 8 : central + 10] = flags.to_bytes(2, "little")
    return bytes(data)


@pytest.mark.parametrize(
    "data",
    [
        _member_bytes(99),  # an unknown compression method (AES)
        _member_bytes(8, flags=0x1),  # encrypted: zipfile asks for a password
        _member_bytes(0),  # stored, though the bytes are deflated: garbage text or a CRC mismatch
    ],
    ids=["unknown-method", "encrypted", "mislabelled"],
)
def test_a_zip_zipfile_cannot_read_is_a_bill_problem(data):
    with pytest.raises(BillProblem):
        parse_bill(data, DAY)


def test_a_corrupt_deflate_stream_is_a_bill_problem():
    data = bytearray(bill(EXAMPLE))
    local = data.index(b"PK\x03\x04")
    start = local + 30 + int.from_bytes(data[local + 26 : local + 28], "little")
    data[start : start + 8] = b"\xff" * 8  # the compressed bytes are no deflate stream now
    with pytest.raises(BillProblem):
        parse_bill(bytes(data), DAY)


def test_a_field_past_the_csv_modules_limit_is_a_bill_problem():
    huge = EXAMPLE.replace("停车费  ", '"' + "停" * 200_000 + '"', 1)
    with pytest.raises(BillProblem, match="CSV"):
        parse_bill(bill(huge), DAY)
