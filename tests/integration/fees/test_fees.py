"""Non-tax fees end to end, on both backends: a department issues a payment notice (缴款码), a citizen
pays it by number in the sandbox and another from the inbox, the fiscal-system double receives one signed
notification per payment (a failed delivery is retried, and only one is ever accepted), the day's
statement lists the payments, a reconciliation finds the differences planted in the fiscal file, and bad
input is a clean problem+json. On PostgreSQL two citizens paying one notice at once make one payment.

One app for the module, on a frozen clock the tests move forward (the back-off, a minute of lookups, and
last, three days past a due date): every test issues notices of its own."""

import asyncio
import csv
import io
import secrets
from datetime import timedelta

import httpx
import pytest

from backend.clock import FrozenClock
from fees.numbers import luhn_digit, well_formed
from fees.services import china_day
from fees.tables import FeeNotice, FiscalAttempt, FiscalDelivery
from payments.channels.base import channel_busy
from tests.conftest import basic_auth
from tests.doubles.fiscal import FiscalDouble
from tests.integration.messages.citizen import approve, inbox

pytestmark = pytest.mark.storage
LOOKUPS = 30


@pytest.fixture(scope="module")
async def world(make_module_client):
    clock = FrozenClock()
    async with make_module_client(
        clock=clock,
        fiscal_url="http://fiscal.test/notify",
        fiscal_interval=0,
        fiscal_base_delay=5,
        fee_lookups_per_minute=LOOKUPS,
        access_token_ttl=30 * 86400,
    ) as client:
        jwks = (await client.get("/api/v1/fees/fiscal-keys")).json()
        double = FiscalDouble(jwks, clock.time)
        client.services.fees.fiscal.use_transport(double)
        dept = basic_auth(
            await client.services.auth.machines.create(
                "department", name="沈阳市公安局交通警察支队", app_id="210100101"
            )
        )
        operator = basic_auth(await client.services.auth.machines.create("operator", name="fees desk"))
        await approve(client, "platform.fee_notice")
        yield client, clock, double, dept, operator


async def citizen(client, login, new_phone, phone=None):
    phone = phone or new_phone()
    pair = await login(client, phone)
    return phone, {"Authorization": f"Bearer {pair['access_token']}"}


_refs = iter(range(10**6))


async def issue(client, clock, dept, *, phone="13800000000", amount=20000, days=10, **extra):
    body = {
        "reference": f"JJ-{next(_refs)}-{int(clock.time())}",
        "item_code": "103050101",
        "item_name": "交通违法罚没收入",
        "amount": amount,
        "payer_name": "张三丰",
        **({"payer_phone": phone} if phone else {}),
        "due_date": (china_day(clock.now()) + timedelta(days=days)).isoformat(),
        "description": "沈A12345 违停",
        **extra,
    }
    r = await client.post("/api/v1/fees/notices", json=body, headers=dept)
    assert r.status_code == 201, r.text
    return r.json(), body


async def settle(client):
    """One round of the payment centre's event queue (the order's event reaches the fee centre)."""
    await client.services.payments.webhooks.tick()
    await client.services.payments.webhooks.drain()


async def tell_fiscal(client):
    await client.services.fees.fiscal.tick()
    await client.services.fees.fiscal.drain()


async def pay(client, me, notice_no, channel="sandbox"):
    r = await client.post(f"/api/v1/fees/{notice_no}/pay", json={"channel": channel}, headers=me)
    assert r.status_code == 200, r.text
    paying = r.json()
    paid = await client.post(f"/api/v1/payments/sandbox/orders/{paying['order_id']}/pay", headers=me)
    assert paid.json()["state"] == "paid", paid.text
    await settle(client)
    return paying


async def test_a_department_issues_a_notice_once_with_the_payer_masked(world):
    client, clock, _, dept, _ = world
    notice, body = await issue(client, clock, dept)
    no = notice["notice_no"]
    assert len(no) == 20 and no.startswith("21012026") and well_formed(no)
    assert (notice["payer_name"], notice["payer"], notice["state"]) == ("张**", "138****0000", "open")
    assert (notice["department"], notice["amount_due"], notice["receipt_no"]) == ("210100101", 20000, "")
    again = await client.post("/api/v1/fees/notices", json=body, headers=dept)
    assert again.status_code == 200 and again.json()["notice_no"] == no
    other = await client.post("/api/v1/fees/notices", json={**body, "amount": 1}, headers=dept)
    assert other.status_code == 409 and other.json()["code"] == "notice_reference_reused"
    row = await FeeNotice.select().where(FeeNotice.notice_no == no).first().run()
    assert "13800000000" not in str(row) and "张三丰" not in str(row)  # sealed and indexed, never in clear
    listed = (await client.get("/api/v1/fees/notices", params={"state": "open"}, headers=dept)).json()
    assert no in [n["notice_no"] for n in listed["items"]]
    assert (await client.get(f"/api/v1/fees/notices/{no}", headers=dept)).json()["notice_no"] == no


async def test_a_citizen_pays_by_number_and_the_fiscal_system_is_told_once(world, login, new_phone):
    client, clock, double, dept, operator = world
    notice, _ = await issue(client, clock, dept, amount=15000)
    no = notice["notice_no"]
    _, me = await citizen(client, login, new_phone)
    shown = await client.get(f"/api/v1/fees/{no}", headers=me)
    assert shown.status_code == 200, shown.text
    assert {k: shown.json()[k] for k in ("amount_due", "payer_name", "department_name", "state")} == {
        "amount_due": 15000,
        "payer_name": "张**",
        "department_name": "沈阳市公安局交通警察支队",
        "state": "open",
    }
    double.fail_next = 1
    paying = await pay(client, me, no)
    assert (paying["amount"], paying["late_fee"], paying["channel"]) == (15000, 0, "sandbox")
    await settle(client)  # the event delivered again changes nothing
    paid = (await client.get(f"/api/v1/fees/notices/{no}", headers=dept)).json()
    assert (paid["state"], paid["paid_amount"] if "paid_amount" in paid else paid["amount_due"]) == (
        "paid",
        15000,
    )

    await tell_fiscal(client)  # the first attempt: the fiscal system answers 503
    assert double.received == [] and double.refused[-1] == "unavailable"
    await tell_fiscal(client)  # not due again before its back-off
    clock.advance(5)
    await tell_fiscal(client)
    [told] = [p for p in double.received if p["notice_no"] == no]
    assert (told["amount"], told["principal"], told["item_code"], told["payer_name"]) == (
        15000,
        15000,
        "103050101",
        "张**",
    )
    clock.advance(3600)
    await tell_fiscal(client)
    assert [p["notice_no"] for p in double.received].count(no) == 1  # once in total
    assert "bad signature" not in double.refused
    delivery = await FiscalDelivery.select().where(FiscalDelivery.notice_no == no).first().run()
    assert (delivery["state"], delivery["attempts"]) == ("delivered", 2)
    attempts = (
        await FiscalAttempt.select()
        .where(FiscalAttempt.delivery == delivery["id"])
        .order_by(FiscalAttempt.attempt)
        .run()
    )
    assert [(a["status_code"], a["ok"]) for a in attempts] == [(503, False), (200, True)]
    log = (await client.get(f"/api/v1/fees/fiscal-deliveries/{no}", headers=operator)).json()
    assert (log["state"], [a["status_code"] for a in log["log"]]) == ("delivered", [503, 200])
    resent = await client.post(f"/api/v1/fees/fiscal-deliveries/{no}/resend", headers=operator)
    assert resent.json() == {"notice_no": no, "resent": False}  # delivered: nothing to send again
    receipt = (await client.get(f"/api/v1/fees/{no}", headers=me)).json()
    assert receipt["state"] == "paid" and receipt["receipt_no"] == double.receipts[no]

    day = china_day(clock.now()).isoformat()
    statement = (await client.get(f"/api/v1/fees/statements/{day}", headers=operator)).json()
    [line] = [i for i in statement["items"] if i["notice_no"] == no]
    assert (line["amount"], line["receipt_no"], line["channel"]) == (15000, double.receipts[no], "sandbox")
    as_csv = await client.get(f"/api/v1/fees/statements/{day}", params={"format": "csv"}, headers=dept)
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert no in [r["notice_no"] for r in csv.DictReader(io.StringIO(as_csv.text))]
    # paid: it can be neither paid nor cancelled again
    again = await client.post(f"/api/v1/fees/{no}/pay", json={"channel": "sandbox"}, headers=me)
    assert again.status_code == 409 and again.json()["code"] == "notice_paid"
    cancel = await client.post(f"/api/v1/fees/notices/{no}/cancel", headers=dept)
    assert cancel.status_code == 409 and cancel.json()["code"] == "notice_paid"


async def test_the_payer_is_told_in_the_inbox_and_pays_from_there(world, login, new_phone):
    client, clock, double, dept, _ = world
    phone, me = await citizen(client, login, new_phone)
    notice, _ = await issue(client, clock, dept, phone=phone, amount=5000)
    no = notice["notice_no"]
    assert notice["payer_known"] is True
    [message] = [m for m in await inbox(client, me) if no in m["body"]]
    assert message["title"] == "缴费通知：交通违法罚没收入" and message["link"] == "/wallet#fees"
    assert "50.00 元" in message["body"]
    mine = (await client.get("/api/v1/me/fees", headers=me)).json()["items"]
    assert [n["notice_no"] for n in mine] == [no]
    await pay(client, me, no)
    await tell_fiscal(client)
    assert [p["notice_no"] for p in double.received].count(no) == 1


async def test_a_payer_named_by_id_number_is_told_once_verified(
    world, login, new_phone, new_id_number, verify_real_name
):
    """By ID number, the notice reaches the citizen whose real name a provider verified with it; one
    who verifies later finds it under their fees."""
    client, clock, _, dept, _ = world
    number, later = new_id_number(), new_id_number()
    pair = await login(client, new_phone())
    me = {"Authorization": f"Bearer {pair['access_token']}"}
    await verify_real_name(client, pair, "张三丰", number)
    told, _ = await issue(client, clock, dept, phone=None, payer_id_number=number)
    assert told["payer_known"] is True and told["payer"] == number[:4] + "*" * 10 + number[-4:]
    assert [m for m in await inbox(client, me) if told["notice_no"] in m["body"]]
    untold, _ = await issue(client, clock, dept, phone=None, payer_id_number=later)
    assert untold["payer_known"] is False
    pair2 = await login(client, new_phone())
    await verify_real_name(client, pair2, "张三丰", later)
    mine = (
        await client.get("/api/v1/me/fees", headers={"Authorization": f"Bearer {pair2['access_token']}"})
    ).json()
    assert [n["notice_no"] for n in mine["items"]] == [untold["notice_no"]]


async def test_a_reconciliation_lists_the_planted_differences(world, login, new_phone):
    client, clock, _, dept, operator = world
    _, me = await citizen(client, login, new_phone)
    paid = []
    for amount in (1000, 2000, 3000):
        notice, _ = await issue(client, clock, dept, amount=amount)
        await pay(client, me, notice["notice_no"])
        paid.append(notice["notice_no"])
    day = china_day(clock.now())
    ours = (await client.get(f"/api/v1/fees/statements/{day}", headers=operator)).json()["items"]
    open_one, _ = await issue(client, clock, dept)
    body = (
        "\ufeff"
        + "notice_no,amount,paid_at,receipt_no\n"
        + "".join(
            f"{r['notice_no']},{r['amount'] + (r['notice_no'] == paid[0])},{r['paid_at']},R1\n"
            for r in ours
            if r["notice_no"] != paid[1]  # missing there
        )
        + f"{open_one['notice_no']},200.00,,R2\n"
    )  # missing here (an open notice), in yuan
    r = await client.post(
        "/api/v1/fees/reconciliations", json={"date": day.isoformat(), "csv": body}, headers=operator
    )
    assert r.status_code == 200, r.text
    differences = {d["notice_no"]: d for d in r.json()["differences"]}
    assert len(differences) == 3, differences
    assert (differences[paid[0]]["kind"], differences[paid[0]]["ours"], differences[paid[0]]["theirs"]) == (
        "amount_differs",
        1000,
        1001,
    )
    assert (differences[paid[1]]["kind"], differences[paid[1]]["ours"]) == ("missing_theirs", 2000)
    missing = differences[open_one["notice_no"]]
    assert (missing["kind"], missing["theirs"], missing["note"]) == ("missing_ours", 20000, "open")
    bad = await client.post(
        "/api/v1/fees/reconciliations",
        json={"date": day.isoformat(), "csv": "no,amount\n1,2\n"},
        headers=operator,
    )
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_fiscal_file"
    refused = await client.post(
        "/api/v1/fees/reconciliations", json={"date": day.isoformat(), "csv": body}, headers=dept
    )
    assert refused.status_code in (401, 403)


@pytest.mark.parametrize(
    "text",
    [
        'notice_no,amount\n"' + "1" * 200_000 + '",1\n',  # a field past the csv module's limit
        "notice_no,amount\n21012026000000000000,１２\n",  # full-width digits are no amount
        "notice_no,amount\n21012026000000000000,1.²\n",
    ],
    ids=["huge-field", "full-width-amount", "superscript-cents"],
)
async def test_a_fiscal_file_that_is_no_fiscal_file_is_a_clean_problem(world, text):
    client, _, _, _, operator = world
    r = await client.post(
        "/api/v1/fees/reconciliations", json={"date": "2026-11-28", "csv": text}, headers=operator
    )
    assert r.status_code == 422 and r.json()["code"] == "invalid_fiscal_file", r.text


async def test_bad_input_is_a_clean_problem(world, login, new_phone):
    client, clock, _, dept, operator = world
    _, me = await citizen(client, login, new_phone)
    notice, body = await issue(client, clock, dept)
    no = notice["notice_no"]
    typo = no[:-1] + str((int(no[-1]) + 1) % 10)
    for path in (f"/api/v1/fees/{typo}", "/api/v1/fees/12345"):
        r = await client.get(path, headers=me)
        assert r.status_code == 422 and r.json()["code"] == "invalid_notice_no", r.text
        assert r.headers["content-type"].startswith("application/problem+json")
    unknown = "2101202600000000000"
    unknown += luhn_digit(unknown)
    r = await client.post(f"/api/v1/fees/{unknown}/pay", json={"channel": "sandbox"}, headers=me)
    assert r.status_code == 404 and r.json()["code"] == "notice_not_found"
    r = await client.post(f"/api/v1/fees/notices/{no}/cancel", headers=dept)
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    r = await client.post(f"/api/v1/fees/{no}/pay", json={"channel": "sandbox"}, headers=me)
    assert r.status_code == 409 and r.json()["code"] == "notice_cancelled"
    open_one, _ = await issue(client, clock, dept)
    r = await client.post(f"/api/v1/fees/{open_one['notice_no']}/pay", json={"channel": "nope"}, headers=me)
    assert r.status_code == 422 and r.json()["code"] == "unknown_channel", r.text
    row = await FeeNotice.select().where(FeeNotice.notice_no == open_one["notice_no"]).first().run()
    assert (row["order_id"], row["order_seq"]) == (None, 0)  # no order made for it
    for change, code in (
        ({"payer_id_number": "210102199001011234"}, "notice_payer_required"),  # both a phone and an ID number
        ({"payer_phone": None}, "notice_payer_required"),
        ({"due_date": (china_day(clock.now()) - timedelta(days=1)).isoformat()}, "due_date_passed"),
        ({"payer_phone": "12"}, "invalid_phone"),
    ):
        r = await client.post(
            "/api/v1/fees/notices",
            json={**body, "reference": "X" + body["reference"], **change},
            headers=dept,
        )
        assert r.status_code == 422 and r.json()["code"] == code, r.text
    r = await client.post("/api/v1/fees/notices", json={**body, "amount": -5}, headers=dept)
    assert r.status_code == 400 and r.json()["code"] == "invalid_body"
    r = await client.post("/api/v1/fees/notices", json=body, headers=me)
    assert r.status_code == 401
    r = await client.get(f"/api/v1/fees/notices/{unknown}", headers=dept)
    assert r.status_code == 404 and r.json()["code"] == "notice_not_found"
    r = await client.get(f"/api/v1/fees/fiscal-deliveries/{no}", headers=operator)
    assert r.status_code == 404 and r.json()["code"] == "fiscal_delivery_not_found"


async def test_one_reference_sent_at_once_issues_one_notice(world):
    client, clock, _, dept, _ = world
    _, body = await issue(client, clock, dept)
    body = {**body, "reference": body["reference"] + "-twin"}
    answers = await asyncio.gather(
        *(client.post("/api/v1/fees/notices", json=body, headers=dept) for _ in range(4))
    )
    assert sorted(r.status_code for r in answers) == [200, 200, 200, 201], [r.text for r in answers]
    assert len({r.json()["notice_no"] for r in answers}) == 1
    count = (
        await FeeNotice.count()
        .where(FeeNotice.department_reference == f"210100101/{body['reference']}")
        .run()
    )
    assert count == 1


async def test_two_citizens_paying_one_notice_at_once_make_one_payment(world, login, new_phone):
    client, clock, _, dept, _ = world
    notice, _ = await issue(client, clock, dept, amount=777)
    no = notice["notice_no"]
    (_, a), (_, b) = [await citizen(client, login, new_phone) for _ in range(2)]
    answers = await asyncio.gather(
        *(client.post(f"/api/v1/fees/{no}/pay", json={"channel": "sandbox"}, headers=h) for h in (a, b, a, b))
    )
    statuses = sorted(r.status_code for r in answers)
    assert statuses.count(200) in (1, 2) and set(statuses) <= {200, 409}, [r.text for r in answers]
    winners = [h for h, r in zip((a, b, a, b), answers, strict=True) if r.status_code == 200]
    assert all(w is winners[0] for w in winners)  # the same citizen, if twice
    assert len({r.json()["order_id"] for r in answers if r.status_code == 200}) == 1
    losers = [r.json()["code"] for r in answers if r.status_code == 409]
    assert set(losers) <= {"order_claimed"}, losers
    order_id = next(r.json()["order_id"] for r in answers if r.status_code == 200)
    both = await asyncio.gather(
        *(client.post(f"/api/v1/payments/sandbox/orders/{order_id}/pay", headers=h) for h in (a, b))
    )
    assert sorted(r.status_code for r in both)[0] == 200
    await settle(client)
    row = await FeeNotice.select().where(FeeNotice.notice_no == no).first().run()
    assert (row["state"], row["order_seq"], row["paid_amount"]) == ("paid", 1, 777)
    assert await FiscalDelivery.count().where(FiscalDelivery.notice_no == no).run() == 1


async def test_a_cancelled_notice_cannot_be_paid_through_its_open_order(world, login, new_phone, monkeypatch):
    """The citizen's payment attempt did not reach the channel (the order is claimed, still ``created``),
    the department then cancels the notice: the order the citizen holds is closed with it, so the money
    for a withdrawn notice is never taken through ``/payments/orders/{id}/pay``."""
    client, clock, _, dept, _ = world
    notice, _ = await issue(client, clock, dept, amount=4321)
    no = notice["notice_no"]
    _, me = await citizen(client, login, new_phone)
    sandbox = client.services.payments.channels["sandbox"]

    async def unreachable(order):
        raise channel_busy("sandbox", "timed out")

    monkeypatch.setattr(sandbox, "start_payment", unreachable)
    r = await client.post(f"/api/v1/fees/{no}/pay", json={"channel": "sandbox"}, headers=me)
    assert r.status_code == 503, r.text
    monkeypatch.undo()
    row = await FeeNotice.select().where(FeeNotice.notice_no == no).first().run()
    order_id = str(row["order_id"])
    r = await client.post(f"/api/v1/fees/notices/{no}/cancel", headers=dept)
    assert r.status_code == 200 and r.json()["state"] == "cancelled", r.text
    paid = await client.post(f"/api/v1/payments/sandbox/orders/{order_id}/pay", headers=me)
    assert paid.status_code == 409 and paid.json()["code"] == "order_not_payable", paid.text
    await settle(client)
    row = await FeeNotice.select().where(FeeNotice.notice_no == no).first().run()
    assert row["state"] == "cancelled"
    assert await FiscalDelivery.count().where(FiscalDelivery.notice_no == no).run() == 0


async def test_lookups_by_number_are_rate_limited(world, login, new_phone):
    client, clock, _, dept, _ = world
    clock.advance(60)  # a minute of its own
    notice, _ = await issue(client, clock, dept)
    _, me = await citizen(client, login, new_phone)
    codes = [
        (await client.get(f"/api/v1/fees/{notice['notice_no']}", headers=me)).status_code
        for _ in range(LOOKUPS + 1)
    ]
    assert codes[:LOOKUPS] == [200] * LOOKUPS and codes[-1] == 429


async def test_paying_by_number_counts_against_the_lookup_limit(world, login, new_phone):
    """POST /fees/{no}/pay answers 404 for a number nobody was issued and 200 (with the order claimed) for
    one that was: without the lookup limit it is the way to find numbers by trying them."""
    client, clock, _, dept, _ = world
    clock.advance(60)  # a minute of its own
    _, me = await citizen(client, login, new_phone)
    guesses = [random_number(clock) for _ in range(LOOKUPS + 1)]
    codes = [
        (await client.post(f"/api/v1/fees/{no}/pay", json={"channel": "sandbox"}, headers=me)).status_code
        for no in guesses
    ]
    assert codes[:LOOKUPS] == [404] * LOOKUPS and codes[-1] == 429
    # and the budget is shared with lookups: the same citizen cannot look up either
    notice, _ = await issue(client, clock, dept)
    assert (await client.get(f"/api/v1/fees/{notice['notice_no']}", headers=me)).status_code == 429


def random_number(clock):
    """A well-formed notice number (its Luhn digit right) that was almost surely never issued."""
    no = f"2101{china_day(clock.now()).year}{secrets.randbelow(10**11):011d}"
    return no + luhn_digit(no)


async def test_a_late_notice_costs_its_daily_late_fee(world, login, new_phone):
    """Last: moves the clock three days past a due date."""
    client, clock, double, dept, _ = world
    notice, _ = await issue(client, clock, dept, amount=10000, days=0, late_fee_bp=30)  # 3‰ a day
    assert notice["late_fee"] == 0
    clock.advance(3 * 86400)
    _, me = await citizen(client, login, new_phone)
    shown = (await client.get(f"/api/v1/fees/{notice['notice_no']}", headers=me)).json()
    assert (shown["late_fee"], shown["amount_due"]) == (90, 10090)
    paying = await pay(client, me, notice["notice_no"])
    assert (paying["amount"], paying["late_fee"]) == (10090, 90)
    await tell_fiscal(client)
    [told] = [p for p in double.received if p["notice_no"] == notice["notice_no"]]
    assert (told["amount"], told["principal"], told["late_fee"]) == (10090, 10000, 90)


class _Altered(FiscalDouble):
    """The fiscal double behind a network that changes the notification after it was signed."""

    async def handle_async_request(self, request):
        body = (await request.aread()).replace(b'"amount":3300', b'"amount":33')
        altered = httpx.Request(request.method, request.url, headers=request.headers, content=body)
        return await super().handle_async_request(altered)


async def test_a_notification_the_fiscal_system_cannot_verify_is_refused_and_sent_again(
    world, login, new_phone
):
    """The fiscal double checks each notification's signature: one changed on the way, or signed by a key
    the fiscal system does not hold (a rotation it has not fetched yet), is refused (401), and the
    platform keeps it and sends it again until it is accepted, once."""
    client, clock, double, dept, _ = world
    notice, _ = await issue(client, clock, dept, amount=3300)
    no = notice["notice_no"]
    _, me = await citizen(client, login, new_phone)
    fiscal = client.services.fees.fiscal
    altered = _Altered({"keys": []}, clock.time)
    altered.keys = double.keys
    fiscal.use_transport(altered)
    try:
        await pay(client, me, no)
        await tell_fiscal(client)
    finally:
        fiscal.use_transport(double)
    assert altered.refused == ["bad signature"] and altered.received == []
    held, double.keys = double.keys, {}
    try:
        clock.advance(3600)
        await tell_fiscal(client)
    finally:
        double.keys = held
    assert double.refused[-1] == "bad signature"
    assert no not in [p["notice_no"] for p in double.received]
    delivery = await FiscalDelivery.select().where(FiscalDelivery.notice_no == no).first().run()
    assert delivery["state"] != "delivered"
    clock.advance(3600)
    await tell_fiscal(client)
    assert [p["amount"] for p in double.received if p["notice_no"] == no] == [3300]
    delivery = await FiscalDelivery.select().where(FiscalDelivery.notice_no == no).first().run()
    assert (delivery["state"], delivery["attempts"]) == ("delivered", 3)
