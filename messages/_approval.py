"""Templates as declared (by the platform and each mini-app) and operators' approval of their exact text:
a template is usable only while its current text is the approved one."""

from __future__ import annotations

import time
from typing import Any, Literal

import msgspec

from backend import audit, db
from backend.clock import Clock
from backend.errors import Conflict, NotFound
from messages.tables import MessageTemplate
from messages.templates import Template

APPROVED_CACHE = 10.0  # seconds a worker trusts an approval it read (a suspension reaches all within it)


class Templates:
    """Templates as declared (by the platform and each enabled mini-app), and operators' approvals."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.declared: dict[str, Template] = {}
        self._approved: dict[str, tuple[float, Template]] = {}

    def declare(self, owner: str, templates: dict[str, Template]) -> None:
        for name, template in templates.items():
            template_id = f"{owner}.{name}"
            if problems := template.problems():
                raise ValueError(f"message template {template_id}: {'; '.join(problems)}")
            self.declared[template_id] = template

    async def sync(self) -> None:
        """Record the declared templates: a new one, or one whose text changed, waits for an operator."""
        rows = {r["template_id"]: r for r in await MessageTemplate.select().run()}
        now = self._clock.now()
        for template_id, template in self.declared.items():
            digest = template.digest()
            row = rows.get(template_id)
            declared = msgspec.to_builtins(template)
            if row is None:
                await (
                    MessageTemplate.insert(
                        MessageTemplate(
                            template_id=template_id,
                            owner=template_id.partition(".")[0],
                            category=template.category,
                            declared=declared,
                            digest=digest,
                            declared_at=now,
                        )
                    )
                    .on_conflict(target=MessageTemplate.template_id, action="DO NOTHING")
                    .run()
                )
            elif row["digest"] != digest:
                status = row["status"] if row["status"] in ("rejected", "suspended") else "pending"
                if row["approved_digest"] == digest:  # back to a text that was approved
                    status = "approved"
                await (
                    MessageTemplate.update(
                        {
                            MessageTemplate.declared: declared,
                            MessageTemplate.digest: digest,
                            MessageTemplate.category: template.category,
                            MessageTemplate.status: status,
                            MessageTemplate.declared_at: now,
                        }
                    )
                    .where(MessageTemplate.template_id == template_id)
                    .run()
                )

    async def all(self, status: str | None = None) -> list[dict[str, Any]]:
        query = MessageTemplate.select().order_by(MessageTemplate.template_id)
        if status:
            query = query.where(MessageTemplate.status == status)
        return [self._view(r) for r in await query.run()]

    def _view(self, row: dict[str, Any]) -> dict[str, Any]:
        declared = db.json_value(row["declared"])
        return {
            "template_id": row["template_id"],
            "owner": row["owner"],
            "category": row["category"],
            "status": row["status"],
            "usable": row["status"] == "approved" and row["approved_digest"] == row["digest"],
            "declared": declared,
            "in_use": row["template_id"] in self.declared,
            "decided_by": row["decided_by"],
            "decided_at": row["decided_at"],
            "note": row["note"],
        }

    async def decide(
        self, template_id: str, decision: Literal["approve", "reject", "suspend"], *, operator: str, note: str
    ) -> dict[str, Any]:
        """An operator's decision on the template's current text (audited)."""
        now = self._clock.now()
        async with db.transaction():
            row = (
                await db.for_update(
                    MessageTemplate.select().where(MessageTemplate.template_id == template_id)
                )
                .first()
                .run()
            )
            if row is None:
                raise NotFound("no such message template", code="template_not_found", template=template_id)
            values: dict[Any, Any] = {
                MessageTemplate.status: {"approve": "approved", "reject": "rejected", "suspend": "suspended"}[
                    decision
                ],
                MessageTemplate.decided_by: operator[:64],
                MessageTemplate.decided_at: now,
                MessageTemplate.note: note[:256],
            }
            if decision == "approve":
                values[MessageTemplate.approved_digest] = row["digest"]
            await MessageTemplate.update(values).where(MessageTemplate.template_id == template_id).run()
            await audit.record(
                f"message_template_{decision}d" if decision != "suspend" else "message_template_suspended",
                actor_kind="operator",
                actor_id=operator,
                subject=template_id,
                detail={"digest": row["digest"], "note": note[:256]},
            )
        self._approved.pop(template_id, None)
        got = await MessageTemplate.select().where(MessageTemplate.template_id == template_id).first().run()
        assert got is not None  # templates are never deleted
        return self._view(got)

    async def usable_ids(self) -> set[str]:
        """The declared templates whose current text an operator approved."""
        rows = await MessageTemplate.select(
            MessageTemplate.template_id, MessageTemplate.status, MessageTemplate.approved_digest
        ).run()
        return {
            r["template_id"]
            for r in rows
            if r["status"] == "approved"
            and (t := self.declared.get(r["template_id"])) is not None
            and r["approved_digest"] == t.digest()
        }

    async def usable(self, template_id: str) -> Template:
        """The template if an operator approved its current text; Conflict (or NotFound) otherwise."""
        cached = self._approved.get(template_id)
        if cached is not None and time.monotonic() - cached[0] < APPROVED_CACHE:
            return cached[1]
        template = self.declared.get(template_id)
        if template is None:
            raise NotFound(
                f"no message template {template_id!r}", code="template_not_found", template=template_id
            )
        row = (
            await MessageTemplate.select(MessageTemplate.status, MessageTemplate.approved_digest)
            .where(MessageTemplate.template_id == template_id)
            .first()
            .run()
        )
        if row is None or row["status"] != "approved" or row["approved_digest"] != template.digest():
            self._approved.pop(template_id, None)
            raise Conflict(
                f"message template {template_id} is not approved for use (an operator approves it"
                " in the console)",
                code="template_not_approved",
                template=template_id,
            )
        self._approved[template_id] = (time.monotonic(), template)
        return template
