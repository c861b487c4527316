"""The audit log: who did what to which subject, with no secrets and personal data masked."""

from __future__ import annotations

import logging
from typing import Any

from backend.context import request_id_var
from backend.logs import mask_text
from backend.tables import AuditEvent

log = logging.getLogger("shengshitong.audit")


async def record(
    action: str, *, actor_kind: str, actor_id: str = "", subject: str = "", ip: str = "", **data: Any
) -> None:
    """Append one event. Values go through the same masking as log lines (defence in depth)."""
    clean = {k: mask_text(v) if isinstance(v, str) else v for k, v in data.items()}
    await AuditEvent.insert(
        AuditEvent(
            action=action,
            actor_kind=actor_kind,
            actor_id=actor_id,
            subject=mask_text(subject),
            ip=ip,
            request_id=request_id_var.get() or "",
            data=clean,
        )
    ).run()
    log.info(
        "audit %s",
        action,
        extra={"actor_kind": actor_kind, "actor_id": actor_id, "subject": mask_text(subject)},
    )
