"""The citizen's medical insurance card (医保电子凭证) linked to the hospital through the platform's consent
sharing (:meth:`Platform.ask_licence`, standing): asked for when the citizen links it, settled when they
look at it, and read at each bill (each read is in the citizen's use log)."""

from __future__ import annotations

import uuid
from typing import Any

from miniapps.contract import Conflict, NotFound, Platform
from miniapps.hospital.rules import CARD_ASK_AGAIN, CARD_FIELDS, CARD_PURPOSE, INSURANCE_CARD, card_unshared
from miniapps.hospital.tables import InsuranceCard


def _card_fields(fields: dict[str, Any]) -> dict[Any, Any]:
    """What the card said, for its row (each within its column)."""
    return {
        InsuranceCard.name: str(fields.get("name", ""))[:64],
        InsuranceCard.insurance_number: str(fields.get("insurance_number", ""))[:64],
        InsuranceCard.insurance_type: str(fields.get("insurance_type", ""))[:64],
        InsuranceCard.region: str(fields.get("region", ""))[:64],
    }


class InsuranceCards:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    async def link(self, openid: str) -> tuple[dict[str, Any], bool]:
        """Ask the citizen to link their card (``True``), or the card as it stands when it is linked or
        asked for already (``False``). A card refused, withdrawn or lapsed is asked for anew."""
        now = self.platform.now()
        async with self.platform.transaction():  # the row and the request to the citizen, or neither
            made = (
                await InsuranceCard.insert(InsuranceCard(id=uuid.uuid4(), openid=openid, asked_at=now))
                .on_conflict(action="DO NOTHING")
                .returning(InsuranceCard.id)
                .run()
            )
            if not made:  # linked before: again only when that one ended (one of two at once wins)
                made = (
                    await InsuranceCard.update(
                        {
                            InsuranceCard.state: "pending",
                            InsuranceCard.reason: "",
                            InsuranceCard.asked_at: now,
                            InsuranceCard.linked_at: None,
                            **_card_fields({}),
                        }
                    )
                    .where((InsuranceCard.openid == openid) & InsuranceCard.state.is_in(list(CARD_ASK_AGAIN)))
                    .returning(InsuranceCard.id)
                    .run()
                )
            if made:
                # a new key each time it is asked (an earlier request may be spent); a retry of the
                # same link finds the card pending and asks nothing
                ask = await self.platform.ask_licence(
                    openid,
                    INSURANCE_CARD,
                    list(CARD_FIELDS),
                    CARD_PURPOSE,
                    key=f"card:{uuid.uuid4().hex}",
                    standing=True,
                )
                if ask is None:  # not a citizen of this app (a citizen's route never gets here)
                    raise NotFound("no such citizen", code="citizen_not_found")
                await (
                    InsuranceCard.update({InsuranceCard.request: ask.id})
                    .where(InsuranceCard.id == made[0]["id"])
                    .run()
                )
        card = await self._row(openid)
        assert card is not None  # made here, or there already
        return card, bool(made)

    async def _row(self, openid: str) -> dict[str, Any] | None:
        return await InsuranceCard.select().where(InsuranceCard.openid == openid).first().run()

    async def card(self, openid: str) -> dict[str, Any] | None:
        """The citizen's card as it stands (a pending one settled first), or None when never linked."""
        row, _ = await self._settle(openid)
        return row

    async def for_bill(self, openid: str) -> dict[str, Any] | None:
        """The card's fields now, read with the standing consent for a bill (the platform logs the use),
        or None when no card is linked or the consent gives nothing now (the card then says why).
        Inside the bill's transaction: a bill that fails logs no use."""
        row, fields = await self._settle(openid)
        if fields is not None or row is None or row["state"] != "linked":
            return fields
        async with self.platform.transaction():
            try:
                shared = await self.platform.licence_fields(row["request"])
            except Conflict as exc:
                await self._ended(row["id"], "linked", exc.code)
                return None
            # the card may have changed since it was linked (a new type, another region): kept as read
            await InsuranceCard.update(_card_fields(shared.fields)).where(InsuranceCard.id == row["id"]).run()
        return dict(shared.fields)

    async def _settle(self, openid: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The card, and its fields when settling it read them (an approved request is read at once, so
        the citizen sees it linked with the card's details)."""
        row = await self._row(openid)
        if row is None or row["state"] != "pending":
            return row, None
        fields = None
        async with self.platform.transaction():  # read and linked together: no read without the link
            # the card's row held for this transaction (an UPDATE that changes nothing takes its lock on
            # PostgreSQL; SQLite's write transaction holds the database): two settling at once read the
            # card once, the second finds it settled
            held = (
                await InsuranceCard.update({InsuranceCard.state: "pending"})
                .where((InsuranceCard.id == row["id"]) & (InsuranceCard.state == "pending"))
                .returning(InsuranceCard.id)
                .run()
            )
            if not held:
                return await self._row(openid), None
            try:
                ask = await self.platform.licence_request(row["request"])
                if ask.state == "approved":
                    shared = await self.platform.licence_fields(ask.id)
                    fields = dict(shared.fields)
                    await (
                        InsuranceCard.update(
                            {
                                InsuranceCard.state: "linked",
                                InsuranceCard.linked_at: self.platform.now(),
                                **_card_fields(fields),
                            }
                        )
                        .where((InsuranceCard.id == row["id"]) & (InsuranceCard.state == "pending"))
                        .run()
                    )
                elif ask.state != "pending":
                    await self._ended(row["id"], "pending", f"consent_{ask.state}")
            except Conflict as exc:
                await self._ended(row["id"], "pending", exc.code)
            except NotFound as exc:  # the request is gone (the citizen's account was deleted)
                await self._ended(row["id"], "pending", exc.code)
        return await self._row(openid), fields

    async def _ended(self, card_id: Any, was: str, reason: str) -> None:
        state = card_unshared(reason)
        if state is None:
            return
        await (
            InsuranceCard.update({InsuranceCard.state: state, InsuranceCard.reason: reason[:32]})
            .where((InsuranceCard.id == card_id) & (InsuranceCard.state == was))
            .run()
        )
