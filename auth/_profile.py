"""The citizen's real-name profile: ID number sealed at rest, only ever shown masked."""

from __future__ import annotations

import uuid
from typing import Any

from auth.pii import mask_id_number, mask_name, normalise_id_number, normalise_name
from auth.tables import Citizen
from backend import audit, db
from backend.clock import Clock
from backend.crypto import Keyring, keyed_hash
from backend.errors import Conflict, NotFound
from backend.settings import Settings


class ProfileService:
    def __init__(self, settings: Settings, clock: Clock, pii: Keyring) -> None:
        self._clock = clock
        self._pii = pii
        self._key = settings.secret_bytes("secret_key")

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
        return {
            "id": citizen_id,
            "phone": row["phone_masked"],
            "real_name": mask_name(name) if name else None,
            "id_number": mask_id_number(id_number) if id_number else None,
            "real_name_verified": bool(name and id_number),
            "status": row["status"],
            "created_at": row["created_at"],
        }

    async def update(
        self, citizen_id: str, *, real_name: str | None, id_number: str | None, ip: str
    ) -> dict[str, Any]:
        cid = uuid.UUID(citizen_id)
        context = f"citizen:{citizen_id}"
        values: dict[Any, Any] = {Citizen.updated_at: self._clock.now()}
        changed = []
        if real_name is not None:
            values[Citizen.name_sealed] = self._pii.encrypt(normalise_name(real_name), f"{context}:name")
            changed.append("real_name")
        if id_number is not None:
            number = normalise_id_number(id_number)
            index = keyed_hash(self._key, "id_number", number)
            values[Citizen.id_number_sealed] = self._pii.encrypt(number, f"{context}:id_number")
            values[Citizen.id_number_index] = index
            changed.append("id_number")
        async with db.transaction():
            if id_number is not None:
                other = (
                    await Citizen.exists()
                    .where((Citizen.id_number_index == values[Citizen.id_number_index]) & (Citizen.id != cid))
                    .run()
                )
                if other:
                    raise Conflict("this ID number belongs to another account", code="id_number_taken")
            updated = (
                await Citizen.update(values)
                .where((Citizen.id == cid) & (Citizen.status != "deleted"))
                .returning(Citizen.id)
                .run()
            )
            if not updated:
                raise NotFound("no such account", code="account_not_found")
        if changed:
            await audit.record(
                "profile_updated", actor_kind="citizen", actor_id=citizen_id, ip=ip, fields=changed
            )
        return await self.get(citizen_id)
