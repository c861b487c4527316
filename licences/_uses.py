"""The use log: every time a licence's fields were shown or shared, who saw which fields, when and for
what. The citizen reads it (``GET /api/v1/me/licence-uses``); nobody else does."""

from __future__ import annotations

import json
import uuid
from typing import Any

from backend.clock import Clock
from licences.rules import TYPES
from licences.tables import LicenceUse


class Uses:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    async def record(
        self,
        citizen_id: str,
        licence: dict[str, Any] | None,
        kind: str,
        by_kind: str,
        by_id: str,
        by_name: str,
        fields: list[str],
        purpose: str,
        *,
        type_code: str = "",
        request: uuid.UUID | None = None,
    ) -> None:
        await LicenceUse.insert(
            LicenceUse(
                id=uuid.uuid4(),
                citizen_id=citizen_id,
                licence=licence["id"] if licence else None,
                type=licence["type"] if licence else type_code,
                kind=kind,
                by_kind=by_kind,
                by_id=by_id,
                by_name=by_name,
                fields=fields,
                purpose=purpose,
                request=request,
                at=self._clock.now(),
            )
        ).run()

    async def of(
        self, citizen_id: str, *, licence: str | None, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        where: Any = LicenceUse.citizen_id == citizen_id
        if licence:
            try:
                where &= LicenceUse.licence == uuid.UUID(licence)
            except ValueError:
                return []
        rows = (
            await LicenceUse.select()
            .where(where)
            .order_by(LicenceUse.at, ascending=False)
            .limit(limit)
            .offset(offset)
            .run()
        )
        return [_view(r) for r in rows]

    async def forget(self, citizen_id: str) -> None:
        await LicenceUse.delete().where(LicenceUse.citizen_id == citizen_id).run()


def _view(row: dict[str, Any]) -> dict[str, Any]:
    kind = TYPES.get(row["type"])
    fields = row["fields"]
    names = list(json.loads(fields)) if isinstance(fields, str) else list(fields or [])
    labels = {f.name: (f.zh, f.en) for f in kind.fields} if kind else {}
    return {
        "id": str(row["id"]),
        "at": row["at"],
        "licence": str(row["licence"]) if row["licence"] else None,
        "type": row["type"],
        "type_zh": kind.zh if kind else "",
        "type_en": kind.en if kind else "",
        "kind": row["kind"],
        "by_kind": row["by_kind"],
        "by_id": row["by_id"],
        "by_name": row["by_name"],
        "fields": [
            {"name": n, "zh": labels.get(n, (n, n))[0], "en": labels.get(n, (n, n))[1]} for n in names
        ],
        "purpose": row["purpose"],
        "request": str(row["request"]) if row["request"] else None,
    }
