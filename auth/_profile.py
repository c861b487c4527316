"""The citizen's real-name profile: ID number sealed at rest, only ever shown masked; set only through
real-name verification (``auth/_realname.py``)."""

from __future__ import annotations

import uuid
from typing import Any

from auth._realname import RealNameService
from auth.pii import mask_id_number, mask_name
from auth.tables import Citizen
from backend.crypto import Keyring
from backend.errors import InvalidInput, NotFound

# Shenyang's districts and counties (沈阳市辖区、县、县级市), by their administrative division codes
DISTRICTS: dict[str, tuple[str, str]] = {
    "210102": ("和平区", "Heping"),
    "210103": ("沈河区", "Shenhe"),
    "210104": ("大东区", "Dadong"),
    "210105": ("皇姑区", "Huanggu"),
    "210106": ("铁西区", "Tiexi"),
    "210111": ("苏家屯区", "Sujiatun"),
    "210112": ("浑南区", "Hunnan"),
    "210113": ("沈北新区", "Shenbei"),
    "210114": ("于洪区", "Yuhong"),
    "210115": ("辽中区", "Liaozhong"),
    "210123": ("康平县", "Kangping"),
    "210124": ("法库县", "Faku"),
    "210181": ("新民市", "Xinmin"),
}


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
            "district": row["district"],
        }

    async def phone_of(self, citizen_id: str) -> str | None:
        """The citizen's mobile number, for a message the platform sends them (an SMS fallback); None
        for an account deleted or blocked. Never shown or logged: callers mask it."""
        row = (
            await Citizen.select(Citizen.phone_sealed)
            .where((Citizen.id == uuid.UUID(citizen_id)) & (Citizen.status == "active"))
            .first()
            .run()
        )
        if row is None or not row["phone_sealed"]:
            return None
        return str(self._pii.decrypt(row["phone_sealed"], f"citizen:{citizen_id}:phone"))

    async def update(
        self,
        citizen_id: str,
        *,
        real_name: str | None,
        id_number: str | None,
        liveness_token: str | None = None,
        district: str | None = None,
        ip: str,
    ) -> dict[str, Any]:
        """Set the real name and ID number: through verification, as ``POST /api/v1/me/real-name``; and
        the district the citizen lives in (one of :data:`DISTRICTS`)."""
        if district is not None:
            if district and district not in DISTRICTS:
                raise InvalidInput(
                    "district must be one of Shenyang's district codes (GET /api/v1/districts)",
                    code="invalid_district",
                )
            await (
                Citizen.update({Citizen.district: district}).where(Citizen.id == uuid.UUID(citizen_id)).run()
            )
        if real_name is not None or id_number is not None or liveness_token is not None:
            await self._realname.verify(
                citizen_id, real_name=real_name, id_number=id_number, liveness_token=liveness_token, ip=ip
            )
        return await self.get(citizen_id)
