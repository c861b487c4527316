"""The e-licence tests' cast: an operator, a traffic police issuer, a citizen with a verified real name and
a phone holding a device key, and what an inspector's device keeps (the trust list, status lists)."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from licences import holder, verifier
from tests.conftest import basic_auth, bearer

DRIVING = {
    "name": "王小明",
    "sex": "男",
    "nationality": "中国",
    "birth_date": "1991-04-02",
    "address": "辽宁省沈阳市沈河区北京街9号",
    "licence_class": "C1",
    "first_issued": "2012-06-18",
    "valid_from": "2022-06-18",
    "valid_until": "2032-06-18",
    "issuing_authority": "沈阳市公安局交通警察支队",
}


@dataclass
class Citizen:
    pair: dict[str, Any]
    id_number: str
    key: ec.EllipticCurvePrivateKey = field(default_factory=holder.device_key)

    @property
    def me(self) -> dict[str, str]:
        return bearer(self.pair)


class Office:
    def __init__(
        self, client: Any, login: Any, new_phone: Any, new_id_number: Any, verify_real_name: Any
    ) -> None:
        self.client = client
        self._login = login
        self._new_phone = new_phone
        self._new_id_number = new_id_number
        self._verify = verify_real_name
        self.operator: dict[str, str] = {}
        self.issuer: dict[str, str] = {}

    async def setup(self) -> Office:
        machines = self.client.services.auth.machines
        self.operator = basic_auth(await machines.create("operator", name="证照办"))
        r = await self.client.post(
            "/api/v1/admin/licences/issuers",
            json={
                "code": "sy-traffic",
                "name_zh": "沈阳市公安局交通警察支队",
                "name_en": "Shenyang Traffic Police",
                "department": "traffic_police",
                "types": ["driving_licence", "vehicle_licence"],
            },
            headers=self.operator,
        )
        assert r.status_code == 201, r.text
        self.issuer = basic_auth(r.json())
        return self

    async def citizen(self, *, verified: bool = True, name: str = "王小明") -> Citizen:
        pair = await self._login(self.client, self._new_phone())
        id_number = self._new_id_number()
        if verified:
            await self._verify(self.client, pair, name, id_number)
        return Citizen(pair, id_number)

    async def verify(self, citizen: Citizen, name: str, id_number: str) -> None:
        """The citizen's real name verified (again, or for the first time) as ``name`` / ``id_number``."""
        await self._verify(self.client, citizen.pair, name, id_number)
        citizen.id_number = id_number

    async def issue(self, citizen: Citizen, **changes: Any) -> dict[str, Any]:
        fields = {**DRIVING, "licence_number": citizen.id_number, **changes}
        r = await self.client.post(
            "/api/v1/licences/issued",
            json={"type": "driving_licence", "id_number": citizen.id_number, "fields": fields},
            headers=self.issuer,
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def credential(self, citizen: Citizen, licence_id: str) -> str:
        r = await self.client.post("/api/v1/me/licences/nonce", headers=citizen.me)
        assert r.status_code == 200, r.text
        nonce = r.json()
        proof = holder.proof(
            citizen.key,
            audience=nonce["audience"],
            nonce=nonce["c_nonce"],
            iat=int(self.client.runtime.clock.time()),
        )
        r = await self.client.post(
            f"/api/v1/me/licences/{licence_id}/credential", json={"proof": proof}, headers=citizen.me
        )
        assert r.status_code == 200, r.text
        return str(r.json()["credential"])

    def present(self, citizen: Citizen, credential: str, fields: list[str], **kw: Any) -> str:
        return holder.present(
            credential,
            fields,
            citizen.key,
            audience=kw.pop("audience", "urn:shengshitong:inspect"),
            iat=int(self.client.runtime.clock.time()),
            **kw,
        )

    # ---- what an inspector's device fetched while online ----------------------------------------
    async def inspector_trust(self) -> verifier.IssuerTrustList:
        root = (await self.client.get("/api/v1/licences/trust-root")).json()["keys"][0]
        signed = (await self.client.get("/api/v1/licences/trust-list")).json()
        doc = verifier.verify_trust_list(signed, verifier.public_key_from_jwk(root))
        return verifier.IssuerTrustList.from_document(doc)

    async def inspector_statuses(
        self, presentation: str, trust: verifier.IssuerTrustList
    ) -> dict[str, verifier.StatusList]:
        uri = claims_of(presentation)["status"]["status_list"]["uri"]
        path = uri.split("://", 1)[1].split("/", 1)[1]
        r = await self.client.get("/" + path)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/statuslist+jwt")
        return {uri: verifier.StatusList.from_token(r.text, trust)}


def _unb64u(text: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def claims_of(presentation: str) -> dict[str, Any]:
    return dict(json.loads(_unb64u(presentation.split("~")[0].split(".")[1])))


def disclosed(presentation: str) -> dict[str, Any]:
    out = {}
    for part in presentation.split("~")[1:-1]:
        _, name, value = json.loads(_unb64u(part))
        out[name] = value
    return out


def fresh_nonce() -> str:
    return secrets.token_urlsafe(16)
