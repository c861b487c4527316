"""The non-tax fee centre's services, built once in the composition root: the notices, the fiscal
system's notifier (its signing key in the platform's key store), the inbox template, and its handler of
the payment centre's events for orders of ``department:`` owners."""

from __future__ import annotations

from dataclasses import dataclass

from auth.services import AuthServices
from backend.crypto import Keyring
from backend.keystore import KeyStore
from backend.runtime import Runtime, Slot
from fees.fiscal import FiscalNotifier
from fees.services import FeeCentre
from messages.services import PLATFORM
from messages.setup import MessageServices
from messages.templates import Template
from payments.services import PaymentServices

TEMPLATES: dict[str, Template] = {
    "fee_notice": Template(
        category="transactional",
        title_zh="缴费通知：{item}",
        title_en="To pay: {item}",
        body_zh="{department}向您开具{item}缴款通知，金额 {amount}，请于{due}前缴纳。缴款码 {notice_no}。",
        body_en="{department} asks you to pay {amount} for {item} by {due}. Payment notice {notice_no}.",
        placeholders={
            "department": "text",
            "item": "text",
            "amount": "amount",
            "due": "date",
            "notice_no": "text",
        },
        link="/wallet#fees",
        description="执收单位开具非税缴款通知时告知缴款人 / tells the payer of a non-tax payment notice",
    ),
}


@dataclass
class FeeServices:
    centre: FeeCentre
    fiscal: FiscalNotifier
    background: bool = True
    interval: float = 1.0

    async def start(self) -> None:
        await self.fiscal.start(self.interval if self.background else 0)

    async def stop(self) -> None:
        await self.fiscal.stop()


FEES = Slot[FeeServices]("fees")


def build_fee_services(
    runtime: Runtime, *, auth: AuthServices, payments: PaymentServices, messages: MessageServices
) -> FeeServices:
    s = runtime.settings
    messages.templates.declare(PLATFORM, TEMPLATES)
    centre = FeeCentre(
        runtime.clock,
        runtime.store,
        Keyring(s.pii_keyring()),
        payments.orders,
        messages.centre,
        id_number_index=auth.realname.id_number_index,
        phone_index=auth.otp.phone_index,
        lookups_per_minute=s.fee_lookups_per_minute,
    )
    fiscal = FiscalNotifier(
        runtime.clock,
        KeyStore("fiscal", s.secret_bytes("key_encryption_key"), runtime.clock, default_alg="ES256"),
        url=s.fiscal_url,
        # the deployment's prefix, like every Redis key: deployments sharing a Redis keep their jobs
        queue_name=f"{s.store_prefix}fiscal",
        redis_url=s.redis_url,
        base_delay=s.fiscal_base_delay,
        max_attempts=s.fiscal_max_attempts,
    )
    payments.subscribers.subscribe("department", centre.on_order_event)
    return FeeServices(
        centre=centre, fiscal=fiscal, background=runtime.background, interval=s.fiscal_interval
    )
