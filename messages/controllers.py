"""HTTP handlers (thin) of the message centre: the citizen's inbox, subscriptions, preferences and
browsers; a mini-app backend's send; operators' template approvals and announcements."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from auth.guards import citizen_only, miniapp_only, operator_only
from auth.principals import CitizenPrincipal, MachinePrincipal
from backend.i18n import current_locale, pick
from backend.pagination import DEFAULT_LIMIT, Limit, Offset, page_parts
from messages.schemas import (
    AnnouncementCreate,
    AnnouncementPage,
    AnnouncementView,
    Cancelled,
    Consent,
    ConsentUpdate,
    DeliveryEntry,
    MessagePage,
    MessageView,
    NoticeView,
    NotifyBody,
    PreferencesBody,
    PushKey,
    PushSubscriptionCreate,
    PushSubscriptionView,
    TemplateDecision,
    TemplateView,
    Unread,
)
from messages.services import Prefs
from messages.setup import MessageServices

NO_STORE = {"Cache-Control": "no-store"}


class InboxController(Controller):
    path = "/api/v1/me/messages"
    tags = ["citizens: messages"]
    guards = [citizen_only]

    @get("", summary="The inbox, newest first, in the request's language (unread=true: only unread)")
    async def list_messages(
        self,
        request: Request[Any, Any, Any],
        citizen: NamedDependency[CitizenPrincipal],
        messages: NamedDependency[MessageServices],
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
        unread: FromQuery[bool] = False,
    ) -> Response[MessagePage]:
        rows = await messages.inbox.page(
            citizen.citizen_id, locale=current_locale(), limit=limit, offset=offset, unread=unread
        )
        items, after, link = page_parts(request, rows, limit=limit, offset=offset)
        count = await messages.inbox.unread(citizen.citizen_id)
        body = MessagePage(
            items=[msgspec.convert(i, MessageView) for i in items], next_offset=after, next=link, unread=count
        )
        return Response(body, headers=NO_STORE)

    @get("/unread-count", summary="How many messages are unread (the badge)")
    async def unread_count(
        self, citizen: NamedDependency[CitizenPrincipal], messages: NamedDependency[MessageServices]
    ) -> Response[Unread]:
        return Response(Unread(await messages.inbox.unread(citizen.citizen_id)), headers=NO_STORE)

    @post("/read-all", status_code=HTTP_200_OK, summary="Mark every message read")
    async def read_all(
        self, citizen: NamedDependency[CitizenPrincipal], messages: NamedDependency[MessageServices]
    ) -> Unread:
        return Unread(await messages.inbox.mark_read(citizen.citizen_id, None))

    @get("/{message_id:str}", summary="One message")
    async def get_message(
        self,
        message_id: FromPath[str],
        citizen: NamedDependency[CitizenPrincipal],
        messages: NamedDependency[MessageServices],
    ) -> Response[MessageView]:
        row = await messages.inbox.get(citizen.citizen_id, message_id, locale=current_locale())
        return Response(msgspec.convert(row, MessageView), headers=NO_STORE)

    @post("/{message_id:str}/read", status_code=HTTP_200_OK, summary="Mark a message read; the unread count")
    async def read(
        self,
        message_id: FromPath[str],
        citizen: NamedDependency[CitizenPrincipal],
        messages: NamedDependency[MessageServices],
    ) -> Unread:
        return Unread(await messages.inbox.mark_read(citizen.citizen_id, message_id))

    @delete("/{message_id:str}", status_code=HTTP_204_NO_CONTENT, summary="Delete a message from the inbox")
    async def remove(
        self,
        message_id: FromPath[str],
        citizen: NamedDependency[CitizenPrincipal],
        messages: NamedDependency[MessageServices],
    ) -> None:
        await messages.inbox.delete(citizen.citizen_id, message_id)

    @get("/{message_id:str}/deliveries", summary="Where the message went: inbox, live, each browser, SMS")
    async def deliveries(
        self,
        message_id: FromPath[str],
        citizen: NamedDependency[CitizenPrincipal],
        messages: NamedDependency[MessageServices],
    ) -> list[DeliveryEntry]:
        return [
            msgspec.convert(e, DeliveryEntry)
            for e in await messages.inbox.log(citizen.citizen_id, message_id)
        ]


class MyMessageSettingsController(Controller):
    path = "/api/v1/me"
    tags = ["citizens: messages"]
    guards = [citizen_only]

    @get("/message-subscriptions", summary="Reminders a citizen may subscribe to, and their subscriptions")
    async def subscriptions(
        self, citizen: NamedDependency[CitizenPrincipal], messages: NamedDependency[MessageServices]
    ) -> list[Consent]:
        return [_consent(messages, c) for c in await messages.consents.of_citizen(citizen.citizen_id)]

    @put(
        "/message-subscriptions/{template_id:str}",
        summary="Subscribe to a reminder: once (one message) or standing (until withdrawn)",
    )
    async def subscribe(
        self,
        template_id: FromPath[str],
        data: JSONBody[ConsentUpdate],
        citizen: NamedDependency[CitizenPrincipal],
        messages: NamedDependency[MessageServices],
    ) -> Consent:
        return _consent(
            messages, await messages.consents.subscribe(citizen.citizen_id, template_id, data.mode)
        )

    @delete(
        "/message-subscriptions/{template_id:str}",
        status_code=HTTP_200_OK,
        summary="Withdraw a subscription (standing and one-time alike)",
    )
    async def withdraw(
        self,
        template_id: FromPath[str],
        citizen: NamedDependency[CitizenPrincipal],
        messages: NamedDependency[MessageServices],
    ) -> Consent:
        return _consent(messages, await messages.consents.withdraw(citizen.citizen_id, template_id))

    @get("/message-preferences", summary="Channels per category and quiet hours")
    async def preferences(
        self, citizen: NamedDependency[CitizenPrincipal], messages: NamedDependency[MessageServices]
    ) -> PreferencesBody:
        return msgspec.convert(
            msgspec.to_builtins(await messages.preferences.get(citizen.citizen_id)), PreferencesBody
        )

    @put("/message-preferences", summary="Choose channels per category and quiet hours")
    async def set_preferences(
        self,
        data: JSONBody[PreferencesBody],
        citizen: NamedDependency[CitizenPrincipal],
        messages: NamedDependency[MessageServices],
    ) -> PreferencesBody:
        prefs = Prefs(
            channels={k: msgspec.to_builtins(v) for k, v in data.channels.items()},
            quiet=data.quiet,
            quiet_start=data.quiet_start,
            quiet_end=data.quiet_end,
        )
        saved = await messages.preferences.put(citizen.citizen_id, prefs)
        return msgspec.convert(msgspec.to_builtins(saved), PreferencesBody)

    @get("/push-subscriptions", summary="Browsers that receive Web Push")
    async def push_subscriptions(
        self, citizen: NamedDependency[CitizenPrincipal], messages: NamedDependency[MessageServices]
    ) -> list[PushSubscriptionView]:
        return [
            msgspec.convert(s, PushSubscriptionView)
            for s in await messages.subscriptions.of_citizen(citizen.citizen_id)
        ]

    @post(
        "/push-subscriptions",
        summary="This browser's PushSubscription (as PushSubscription.toJSON() gives it)",
    )
    async def add_push_subscription(
        self,
        data: JSONBody[PushSubscriptionCreate],
        citizen: NamedDependency[CitizenPrincipal],
        messages: NamedDependency[MessageServices],
    ) -> PushSubscriptionView:
        added = await messages.subscriptions.add(
            citizen.citizen_id, citizen.device_id, data.endpoint, data.keys.p256dh, data.keys.auth
        )
        return msgspec.convert(added, PushSubscriptionView)

    @delete(
        "/push-subscriptions/{subscription_id:str}", status_code=HTTP_204_NO_CONTENT, summary="Stop Web Push"
    )
    async def remove_push_subscription(
        self,
        subscription_id: FromPath[str],
        citizen: NamedDependency[CitizenPrincipal],
        messages: NamedDependency[MessageServices],
    ) -> None:
        await messages.subscriptions.remove(citizen.citizen_id, subscription_id)


def _consent(messages: MessageServices, row: dict[str, Any]) -> Consent:
    template = messages.templates.declared.get(row["template_id"])
    title = pick(template.title_zh, template.title_en) if template else ""
    return Consent(**row, title=title, description=template.description if template else "")


class PushKeyController(Controller):
    path = "/api/v1/push"
    tags = ["citizens: messages"]

    @get("/key", summary="The VAPID public key browsers subscribe with (applicationServerKey)")
    async def key(self, messages: NamedDependency[MessageServices]) -> PushKey:
        return PushKey(application_server_key=await messages.application_server_key(), enabled=True)


class SendController(Controller):
    path = "/api/v1/messages"
    tags = ["mini-apps: messages"]
    guards = [miniapp_only]

    @post(
        "",
        status_code=HTTP_202_ACCEPTED,
        summary="Send a message with one of the mini-app's approved templates (idempotent by key)",
        opt={"problems": [404, 409, 429]},
    )
    async def notify(
        self,
        data: JSONBody[NotifyBody],
        machine: NamedDependency[MachinePrincipal],
        messages: NamedDependency[MessageServices],
    ) -> NoticeView:
        notice = (
            await messages.centre.notify_app(
                machine.app_id, [(data.openid, data.template, data.data, data.idempotency_key, data.at)]
            )
        )[0]
        return NoticeView(outcome=notice.outcome, message_id=notice.message_id, reason=notice.reason)

    @delete(
        "/{idempotency_key:str}",
        status_code=HTTP_200_OK,
        summary="Withdraw a scheduled message not shown yet (by the key it was sent with)",
    )
    async def cancel(
        self,
        idempotency_key: FromPath[str],
        machine: NamedDependency[MachinePrincipal],
        messages: NamedDependency[MessageServices],
    ) -> Cancelled:
        return Cancelled(await messages.centre.cancel(machine.app_id, idempotency_key))


class OperatorMessagesController(Controller):
    path = "/api/v1/admin"
    tags = ["operators: messages"]
    guards = [operator_only]

    @get("/message-templates", summary="Declared message templates and their approval")
    async def templates(
        self, messages: NamedDependency[MessageServices], status: FromQuery[str | None] = None
    ) -> list[TemplateView]:
        return [msgspec.convert(t, TemplateView) for t in await messages.templates.all(status)]

    @post(
        "/message-templates/{template_id:str}/decision",
        status_code=HTTP_200_OK,
        summary="Approve, reject or suspend a template's current text (audited)",
    )
    async def decide(
        self,
        template_id: FromPath[str],
        data: JSONBody[TemplateDecision],
        machine: NamedDependency[MachinePrincipal],
        messages: NamedDependency[MessageServices],
    ) -> TemplateView:
        row = await messages.templates.decide(
            template_id, data.decision, operator=f"{machine.client_id}:{machine.name}", note=data.note
        )
        return msgspec.convert(row, TemplateView)

    @post(
        "/announcements",
        status_code=HTTP_202_ACCEPTED,
        summary="Send an approved announcement to a segment",
        opt={"problems": [404]},
    )
    async def announce(
        self,
        data: JSONBody[AnnouncementCreate],
        machine: NamedDependency[MachinePrincipal],
        messages: NamedDependency[MessageServices],
    ) -> AnnouncementView:
        row = await messages.announcements.create(
            data.template,
            data.data,
            data.segment,
            rate=data.rate,
            operator=f"{machine.client_id}:{machine.name}",
        )
        return msgspec.convert(row, AnnouncementView)

    @get("/announcements", summary="Announcements, newest first, with their progress")
    async def announcements(
        self,
        request: Request[Any, Any, Any],
        messages: NamedDependency[MessageServices],
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> AnnouncementPage:
        rows = await messages.announcements.recent(limit, offset)
        items, after, link = page_parts(request, rows, limit=limit, offset=offset)
        return AnnouncementPage(
            items=[msgspec.convert(r, AnnouncementView) for r in items], next_offset=after, next=link
        )

    @get("/announcements/{announcement_id:str}", summary="One announcement's progress")
    async def announcement(
        self, announcement_id: FromPath[str], messages: NamedDependency[MessageServices]
    ) -> AnnouncementView:
        return msgspec.convert(await messages.announcements.get(announcement_id), AnnouncementView)

    @post(
        "/announcements/{announcement_id:str}/cancel",
        status_code=HTTP_200_OK,
        summary="Stop an announcement before its next batch (what was sent stays sent)",
    )
    async def cancel(
        self,
        announcement_id: FromPath[str],
        machine: NamedDependency[MachinePrincipal],
        messages: NamedDependency[MessageServices],
    ) -> AnnouncementView:
        row = await messages.announcements.cancel(
            announcement_id, operator=f"{machine.client_id}:{machine.name}"
        )
        return msgspec.convert(row, AnnouncementView)
