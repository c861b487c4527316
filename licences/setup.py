"""The e-licence centre's services, built once in the composition root: its messages (a licence issued,
suspended or revoked; a request for fields awaiting the citizen), and what an account's deletion takes
with it."""

from __future__ import annotations

from dataclasses import dataclass

from auth.pairwise import Pairwise
from auth.principals import MachinePrincipal
from auth.services import AuthServices
from backend.crypto import Keyring
from backend.errors import InvalidInput, NotFound
from backend.keystore import KeyStore
from backend.runtime import Runtime, Slot
from licences._consent import Consents, ConsentSettings, Requester
from licences._issuers import Issuers, StatusLists
from licences._show import Showing
from licences._uses import Uses
from licences.services import LicenceBook
from messages.services import PLATFORM
from messages.setup import MessageServices
from messages.templates import PlaceholderType, Template

_LICENCE: dict[str, PlaceholderType] = {
    "licence": "text",
    "licence_en": "text",
    "issuer": "text",
    "issuer_en": "paragraph",  # a department's English name runs to 96 characters (a text holds 64)
}
TEMPLATES: dict[str, Template] = {
    "licence_issued": Template(
        category="transactional",
        title_zh="您的{licence}已签发",
        title_en="Your {licence_en} is in the wallet",
        body_zh="{issuer}为您签发了电子{licence}，可在盛事通中查看、亮证和授权使用。",
        body_en="{issuer_en} issued your electronic {licence_en}: view it, show it and share it in the app.",
        placeholders=_LICENCE,
        link="/wallet#licences",
        description="部门签发电子证照后通知持证人 / tells the holder a department issued a licence",
    ),
    "licence_suspended": Template(
        category="transactional",
        title_zh="您的{licence}已被暂停",
        title_en="Your {licence_en} is suspended",
        body_zh="{issuer}暂停了您的电子{licence}，暂停期间无法亮证或授权。如有疑问请联系发证机关。",
        body_en="{issuer_en} suspended your electronic {licence_en}: it cannot be shown or shared meanwhile.",
        placeholders=_LICENCE,
        link="/wallet#licences",
        description="发证机关暂停证照 / the issuer suspended a licence",
    ),
    "licence_revoked": Template(
        category="transactional",
        title_zh="您的{licence}已被注销",
        title_en="Your {licence_en} is revoked",
        body_zh="{issuer}注销了您的电子{licence}，此后无法再亮证或授权。",
        body_en="{issuer_en} revoked your electronic {licence_en}: it can no longer be shown or shared.",
        placeholders=_LICENCE,
        link="/wallet#licences",
        description="发证机关注销证照 / the issuer revoked a licence",
    ),
    "licence_request": Template(
        category="transactional",
        title_zh="{requester}申请使用您的{licence}",
        title_en="{requester} asks for your {licence_en}",
        body_zh="用途：{purpose}。请在盛事通中查看申请的字段并授权或拒绝。",
        body_en="For: {purpose}. See which fields it asks for, and approve or refuse, in the app.",
        placeholders={"requester": "text", "licence": "text", "licence_en": "text", "purpose": "paragraph"},
        link="/wallet#licences",
        description="机构申请使用证照字段，待持证人授权 / a request for licence fields awaits the citizen",
    ),
}


@dataclass
class LicenceServices:
    issuers: Issuers
    statuses: StatusLists
    book: LicenceBook
    showing: Showing
    consents: Consents
    uses: Uses
    pairwise: Pairwise

    def requester(self, machine: MachinePrincipal) -> Requester:
        if machine.kind == "miniapp":
            return Requester("miniapp", machine.app_id, machine.name or machine.app_id)
        return Requester("relying_party", machine.client_id, machine.name or machine.client_id)

    async def subject(
        self, machine: MachinePrincipal, *, openid: str | None, id_number: str | None
    ) -> tuple[Requester, str]:
        """Who asks, and the citizen asked: a mini-app names its user by openid, a relying party (a
        government service handling the citizen's case) by ID number."""
        requester = self.requester(machine)
        citizen: str | None
        if requester.kind == "miniapp":
            if not openid or id_number:
                raise InvalidInput("a mini-app names the citizen by openid", code="invalid_subject")
            citizen = (await self.pairwise.citizens(machine.app_id, [openid])).get(openid)
        else:
            if not id_number or openid:
                raise InvalidInput("a relying party names the citizen by id_number", code="invalid_subject")
            citizen = await self.book.citizen_of_id_number(id_number)
        if citizen is None:
            raise NotFound("no verified citizen answers to that", code="citizen_not_found")
        return requester, citizen

    async def departed(self, citizen_id: str, device_id: str | None) -> None:
        """An erased account takes its requests and its use log (its licences stay with their issuers,
        addressed by ID number, as the paper ones do)."""
        if device_id is None:
            await self.consents.forget(citizen_id)
            await self.uses.forget(citizen_id)


LICENCES = Slot[LicenceServices]("licences")


def build_licence_services(
    runtime: Runtime, *, auth: AuthServices, messages: MessageServices, trust_root: KeyStore
) -> LicenceServices:
    s = runtime.settings
    messages.templates.declare(PLATFORM, TEMPLATES)
    issuers = Issuers(s, runtime.clock, runtime.store, auth.machines, trust_root)
    statuses = StatusLists(issuers, runtime.clock, runtime.store)
    uses = Uses(runtime.clock)
    book = LicenceBook(
        runtime.clock,
        runtime.store,
        Keyring(s.pii_keyring()),
        s.secret_bytes("secret_key"),
        issuers,
        statuses,
        uses,
        messages.centre,
    )
    consents = Consents(runtime.clock, book, messages.centre, ConsentSettings())
    services = LicenceServices(
        issuers=issuers,
        statuses=statuses,
        book=book,
        showing=Showing(book, runtime.store, runtime.clock),
        consents=consents,
        uses=uses,
        pairwise=auth.pairwise,
    )
    auth.sessions.departures.append(services.departed)
    return services
