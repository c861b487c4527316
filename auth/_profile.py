"""The citizen's real-name profile: ID number sealed at rest, only ever shown masked; set only through
real-name verification (``auth/_realname.py``)."""

from __future__ import annotations

import uuid
from typing import Any

from auth._realname import RealNameService
from auth.pii import mask_id_number, mask_name
from auth.tables import Citizen
from backend.crypto import Keyring
from backend.errors import NotFound


class ProfileService:
    def __init__(self, pii: Keyring, realname: RealNameService) -> None:
        self._pii = pii
        self._realname = realname

    async def get(self, citizen_id: str) -> dict[str, Any]:
        row = (
            await Citizen.select()
            .where((Citizen.id == uuid.UUID(citizen_id)) & (Citizen.status != "deleted"))
            .first()
            .run()
        )
        if row is None:
            raise NotFound("no such account", code="account_not_found")
        context = f"citizen:{citizen_id}"
        name = self._pii.decrypt(row["name_sealed"], f"{context}:name") if row["name_sealed"] else None
        id_number = (
            self._pii.decrypt(row["id_number_sealed"], f"{context}:id_number")
            if row["id_number_sealed"]
            else None
        )
        verified_at = row["real_name_verified_at"]
        return {
            "id": citizen_id,
            "phone": row["phone_masked"],
            "real_name": mask_name(name) if name else None,
            "id_number": mask_id_number(id_number) if id_number else None,
            # only a provider's "matched" counts; self-typed data never did (docs/identity.md)
            "real_name_verified": verified_at is not None,
            "real_name_verification": None
            if verified_at is None
            else {
                "provider": row["real_name_provider"],
                "level": row["real_name_level"],
                "verified_at": verified_at,
            },
            "status": row["status"],
            "created_at": row["created_at"],
        }

    async def update(
        self,
        citizen_id: str,
        *,
        real_name: str | None,
        id_number: str | None,
        liveness_token: str | None = None,
        ip: str,
    ) -> dict[str, Any]:
        """Set the real name and ID number: through verification, as ``POST /api/v1/me/real-name``."""
        if real_name is not None or id_number is not None or liveness_token is not None:
            await self._realname.verify(
                citizen_id, real_name=real_name, id_number=id_number, liveness_token=liveness_token, ip=ip
            )
        return await self.get(citizen_id)
