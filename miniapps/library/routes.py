"""一码借阅's routes under /api/v1/apps/library: the catalogue (anyone), a reader's loans, holds, fines and
deposit (the citizen), and the library's backend (its mini-app credential): titles, copies, loans, the
book drop's returns and blocking a reader."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT
from piccolo.query import OrderByRaw

from miniapps.contract import (
    DEFAULT_LIMIT,
    AppCaller,
    AppError,
    Conflict,
    InvalidInput,
    Limit,
    NotFound,
    Offset,
    Platform,
    app_backend,
    citizen_caller,
    names,
    page,
)
from miniapps.library.rules import REFUSALS, isbn13
from miniapps.library.services import Lending, Refused, rule_of
from miniapps.library.tables import Branch, Copy, Hold, Library, Loan, Reader, Title

Code = Annotated[str, msgspec.Meta(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9-]+$")]
Barcode = Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9-]+$")]
Isbn = Annotated[str, msgspec.Meta(min_length=10, max_length=17)]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class HoldCreate(msgspec.Struct, forbid_unknown_fields=True):
    library: Code
    isbn: Isbn


class LibraryRef(msgspec.Struct, forbid_unknown_fields=True):
    library: Code


class TitleCreate(msgspec.Struct, forbid_unknown_fields=True):
    library: Code
    isbn: Isbn
    title: Text
    author: Annotated[str, msgspec.Meta(max_length=120)] = ""
    publisher: Annotated[str, msgspec.Meta(max_length=120)] = ""
    year: Annotated[int, msgspec.Meta(ge=0, le=2100)] = 0


class CopyCreate(msgspec.Struct, forbid_unknown_fields=True):
    library: Code
    isbn: Isbn
    branch: Code
    barcode: Barcode


class Return(msgspec.Struct, forbid_unknown_fields=True):
    barcode: Barcode


class Block(msgspec.Struct, forbid_unknown_fields=True):
    blocked: bool


def refused(exc: Refused) -> AppError:
    """A refusal of the lending as the API's problem: 404 for what does not exist, else 409."""
    en = REFUSALS.get(exc.code, ("", exc.code))[1]
    if exc.code.startswith("unknown_") or exc.code in ("not_your_loan", "hold_not_found"):
        return NotFound(en, code=exc.code)
    if exc.code == "invalid_isbn":
        return InvalidInput(en, code=exc.code, field="isbn")
    return Conflict(en, code=exc.code)


def _isbn(text: str) -> str:
    isbn = isbn13(text)
    if isbn is None:
        raise InvalidInput("not a valid ISBN-13", code="invalid_isbn", field="isbn")
    return isbn


def _loan(r: dict[str, Any], now: Any) -> dict[str, Any]:
    return {
        "loan_id": str(r["id"]),
        "barcode": r["copy.barcode"],
        "isbn": r["copy.title.isbn"],
        "title": r["copy.title.title"],
        "author": r["copy.title.author"],
        "library": r["library.code"],
        **names(r["library.name"], r["library.name_en"], "library_name"),
        "borrowed_at": r["borrowed_at"],
        "due_at": r["due_at"],
        "overdue": r["returned_at"] is None and r["due_at"] < now,
        "renewals": r["renewals"],
        "max_renewals": r["library.max_renewals"],
        "returned_at": r["returned_at"],
        "fine": r["fine"],
        "fine_paid": r["fine_paid"],
        "fine_order": r["fine_order"],
    }


_LOAN_COLUMNS = (
    Loan.copy.barcode,
    Loan.copy.title.isbn,  # type: ignore[union-attr]
    Loan.copy.title.title,  # type: ignore[union-attr]
    Loan.copy.title.author,  # type: ignore[union-attr]
    Loan.library.code,
    Loan.library.name,
    Loan.library.name_en,
    Loan.library.max_renewals,
)


def handlers(platform: Platform, lending: Lending) -> list[Any]:
    @get("/libraries", summary="Libraries, their branches and lending rules")
    async def libraries(
        request: Request[Any, Any, Any], limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
    ) -> dict[str, Any]:
        rows = await Library.select().order_by(Library.code).limit(limit + 1).offset(offset).run()
        branches = await Branch.select().order_by(Branch.code).run()
        items = [
            {
                "code": r["code"],
                **names(r["name"], r["name_en"]),
                "rule": dataclasses.asdict(rule_of(r)),
                "branches": [
                    {
                        "code": b["code"],
                        **names(b["name"], b["name_en"]),
                        **names(b["district"], b["district_en"], "district"),
                    }
                    for b in branches
                    if b["library"] == r["id"]
                ],
            }
            for r in rows
        ]
        return page(request, items, limit=limit, offset=offset)

    @get("/titles", summary="A library's catalogue, with how many copies are on the shelf")
    async def titles(
        request: Request[Any, Any, Any],
        library: FromQuery[str],
        q: FromQuery[str | None] = None,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        try:
            lib = await lending.library(library)
        except Refused as exc:
            raise refused(exc) from None
        query = Title.select().where(Title.library == lib["id"]).order_by(Title.isbn)
        if q:
            query = query.where(
                (Title.title.ilike(f"%{q}%"))
                | (Title.author.ilike(f"%{q}%"))
                | (Title.isbn == (isbn13(q) or q))
            )
        rows = await query.limit(limit + 1).offset(offset).run()
        copies = await Copy.select(Copy.title, Copy.state).where(
            Copy.title.is_in([r["id"] for r in rows] or [uuid.uuid4()])
        )
        return page(
            request,
            [
                {
                    "isbn": r["isbn"],
                    "title": r["title"],
                    "author": r["author"],
                    "publisher": r["publisher"],
                    "year": r["year"],
                    "copies": sum(1 for c in copies if c["title"] == r["id"]),
                    "available": sum(
                        1 for c in copies if c["title"] == r["id"] and c["state"] == "available"
                    ),
                }
                for r in rows
            ],
            limit=limit,
            offset=offset,
        )

    @get("/loans", guards=[citizen_caller], summary="The caller's loans: open ones first, then by date")
    async def loans(
        request: Request[Any, Any, Any],
        caller: NamedDependency[AppCaller],
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        rows = (
            await Loan.select(Loan.all_columns(), *_LOAN_COLUMNS)  # type: ignore[arg-type]
            .where(Loan.openid == caller.openid)
            # open loans first across pages, not only within one: a loan borrowed before the last 50
            # returns (the wallet's page) was left out of the wallet, overdue or not
            .order_by(OrderByRaw("returned_at IS NOT NULL"))
            .order_by(Loan.borrowed_at, ascending=False)
            .order_by(Loan.id)
            .limit(limit + 1)
            .offset(offset)
            .run()
        )
        now = platform.now()
        return page(request, [_loan(r, now) for r in rows], limit=limit, offset=offset)

    @post(
        "/loans/{loan_id:str}/renew",
        status_code=HTTP_200_OK,
        guards=[citizen_caller],
        summary="Renew one of the caller's loans (refused when another reader holds the title)",
    )
    async def renew(loan_id: FromPath[str], caller: NamedDependency[AppCaller]) -> dict[str, Any]:
        try:
            lid = uuid.UUID(loan_id)
        except ValueError:
            raise NotFound("no such loan of yours", code="not_your_loan") from None
        row = (
            await Loan.select(Loan.copy.barcode)
            .where((Loan.id == lid) & (Loan.openid == caller.openid))
            .first()
        )
        if row is None:
            raise NotFound("no such loan of yours", code="not_your_loan")
        try:
            return await lending.renew(caller.openid, row["copy.barcode"])
        except Refused as exc:
            raise refused(exc) from None

    @get("/holds", guards=[citizen_caller], summary="The caller's holds, newest first")
    async def holds(
        request: Request[Any, Any, Any],
        caller: NamedDependency[AppCaller],
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        await lending.expire_holds()
        rows = (
            await Hold.select(
                Hold.all_columns(),  # type: ignore[arg-type]
                Hold.title.isbn,
                Hold.title.title,
                Hold.title.library.code,  # type: ignore[union-attr]
            )
            .where(Hold.openid == caller.openid)
            .order_by(Hold.placed_at, ascending=False)
            .order_by(Hold.id)
            .limit(limit + 1)
            .offset(offset)
            .run()
        )
        return page(
            request,
            [
                {
                    "hold_id": str(r["id"]),
                    "isbn": r["title.isbn"],
                    "title": r["title.title"],
                    "library": r["title.library.code"],
                    "state": r["state"],
                    "placed_at": r["placed_at"],
                    "ready_until": r["ready_until"],
                }
                for r in rows
            ],
            limit=limit,
            offset=offset,
        )

    @post("/holds", guards=[citizen_caller], summary="Place a hold on a title none of whose copies is in")
    async def place_hold(data: JSONBody[HoldCreate], caller: NamedDependency[AppCaller]) -> dict[str, Any]:
        try:
            return await lending.place_hold(caller.openid, data.library, _isbn(data.isbn))
        except Refused as exc:
            raise refused(exc) from None

    @delete(
        "/holds/{hold_id:str}",
        status_code=HTTP_204_NO_CONTENT,
        guards=[citizen_caller],
        summary="Cancel a hold (a copy kept for it goes to the next reader)",
    )
    async def cancel_hold(hold_id: FromPath[str], caller: NamedDependency[AppCaller]) -> None:
        if not await lending.cancel_hold(caller.openid, hold_id):
            raise NotFound("no such hold of yours", code="hold_not_found")

    @get("/standing", guards=[citizen_caller], summary="The caller's standing at a library (信用免押)")
    async def standing(library: FromQuery[str], caller: NamedDependency[AppCaller]) -> dict[str, Any]:
        try:
            return await lending.standing(await lending.library(library), caller.openid)
        except Refused as exc:
            raise refused(exc) from None

    @post(
        "/fines/pay",
        status_code=HTTP_200_OK,
        guards=[citizen_caller],
        summary="Pay every unpaid fine against the payment agreement",
    )
    async def pay_fines(caller: NamedDependency[AppCaller]) -> dict[str, Any]:
        paid = await lending.pay_fines(caller.openid)
        return {**paid, "unpaid": await platform.payments.unpaid_total(caller.openid)}

    @post(
        "/deposit",
        status_code=HTTP_201_CREATED,
        guards=[citizen_caller],
        summary="Ask for the deposit order (only a reader not in good standing needs one)",
    )
    async def deposit(data: JSONBody[LibraryRef], caller: NamedDependency[AppCaller]) -> dict[str, Any]:
        try:
            return await lending.ask_deposit(caller.openid, data.library)
        except Refused as exc:
            raise refused(exc) from None

    @delete(
        "/deposit",
        status_code=HTTP_200_OK,
        guards=[citizen_caller],
        summary="Leave: the deposit is refunded when nothing is borrowed and nothing owed",
    )
    async def refund(library: FromQuery[str], caller: NamedDependency[AppCaller]) -> dict[str, Any]:
        try:
            return await lending.refund_deposit(caller.openid, library)
        except Refused as exc:
            raise refused(exc) from None

    # ---- the library's backend -----------------------------------------------------------------
    @post(
        "/titles", guards=[app_backend], summary="Add a title to a library's catalogue (idempotent by ISBN)"
    )
    async def add_title(data: JSONBody[TitleCreate]) -> dict[str, Any]:
        isbn = _isbn(data.isbn)
        try:
            lib = await lending.library(data.library)
        except Refused as exc:
            raise refused(exc) from None
        values = {"title": data.title, "author": data.author, "publisher": data.publisher, "year": data.year}
        async with platform.transaction():
            # insert-or-nothing, then update: the same title sent twice at once (a catalogue sync retried,
            # two workers) waits on the unique index instead of failing on it
            await (
                Title.insert(
                    Title(
                        id=uuid.uuid4(),
                        library=lib["id"],
                        isbn=isbn,
                        title=data.title,
                        author=data.author,
                        publisher=data.publisher,
                        year=data.year,
                    )
                )
                .on_conflict(action="DO NOTHING")
                .run()
            )
            await (
                Title.update(values)  # type: ignore[arg-type]
                .where((Title.library == lib["id"]) & (Title.isbn == isbn))
                .run()
            )
        return {"library": data.library, "isbn": isbn, **values}

    @post("/copies", guards=[app_backend], summary="Add a copy of a catalogued title at a branch")
    async def add_copy(data: JSONBody[CopyCreate]) -> dict[str, Any]:
        isbn = _isbn(data.isbn)
        try:
            lib = await lending.library(data.library)
            branch = await lending.branch(data.branch)
        except Refused as exc:
            raise refused(exc) from None
        if branch["library"] != lib["id"]:
            raise Conflict("the branch is another library's", code="other_library")
        title = (
            await Title.select(Title.id)
            .where((Title.library == lib["id"]) & (Title.isbn == isbn))
            .first()
            .run()
        )
        if title is None:
            raise NotFound("no such title in the catalogue", code="unknown_title")
        made = (
            await Copy.insert(Copy(barcode=data.barcode, title=title["id"], branch=branch["id"]))
            .on_conflict(action="DO NOTHING")
            .returning(Copy.barcode)
            .run()
        )
        if not made:
            raise Conflict("a copy with that barcode exists", code="barcode_taken")
        return {"barcode": data.barcode, "isbn": isbn, "branch": data.branch, "state": "available"}

    @get(
        "/libraries/{code:str}/loans",
        guards=[app_backend],
        summary="A library's loans (open ones only by default), newest first; readers by openid",
    )
    async def library_loans(
        request: Request[Any, Any, Any],
        code: FromPath[str],
        open_only: FromQuery[bool] = True,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        try:
            lib = await lending.library(code)
        except Refused as exc:
            raise refused(exc) from None
        query = Loan.select(Loan.all_columns(), *_LOAN_COLUMNS).where(Loan.library == lib["id"])  # type: ignore[arg-type]
        if open_only:
            query = query.where(Loan.returned_at.is_null())
        rows = (
            await query.order_by(Loan.borrowed_at, ascending=False)
            .order_by(Loan.id)
            .limit(limit + 1)
            .offset(offset)
        )
        now = platform.now()
        return page(
            request,
            [{**_loan(r, now), "openid": r["openid"], "branch": r["branch"], "via": r["via"]} for r in rows],
            limit=limit,
            offset=offset,
        )

    @post("/checkin", status_code=HTTP_200_OK, guards=[app_backend], summary="Return a copy (the book drop)")
    async def checkin(data: JSONBody[Return]) -> dict[str, Any]:
        try:
            done = await lending.checkin(data.barcode)
        except Refused as exc:
            raise refused(exc) from None
        done.pop("openid")
        return done

    @post(
        "/libraries/{code:str}/readers/{openid:str}/block",
        status_code=HTTP_200_OK,
        guards=[app_backend],
        summary="Suspend or restore a reader's borrowing at the library",
    )
    async def block(code: FromPath[str], openid: FromPath[str], data: JSONBody[Block]) -> dict[str, Any]:
        try:
            lib = await lending.library(code)
        except Refused as exc:
            raise refused(exc) from None
        if len(openid) > 40 or not await platform.knows(openid):
            raise NotFound("no such reader", code="unknown_reader")
        reader = await lending.reader(lib["id"], openid)
        await Reader.update({Reader.blocked: data.blocked}).where(Reader.id == reader["id"]).run()
        return {"library": code, "openid": openid, "blocked": data.blocked}

    return [
        libraries,
        titles,
        loans,
        renew,
        holds,
        place_hold,
        cancel_hold,
        standing,
        pay_fines,
        deposit,
        refund,
        add_title,
        add_copy,
        library_loans,
        checkin,
        block,
    ]
