"""The scanner simulator (/admin/scanner): an operator picks an enrolled scanner and shows it a code, as
text or as a photo of the QR, and sees what that gate would show. It is a real scan through the same
path as a gate's (single use, routing to the scanner's mini-app), made in the scanner's name, marked
in the record's metadata and in the audit log with the operator who made it."""

from __future__ import annotations

import io
import uuid
from typing import Any

import msgspec
import zxingcpp
from PIL import Image, UnidentifiedImageError

from auth.principals import MachinePrincipal
from auth.tables import MachineClient
from backend import audit
from backend.errors import InvalidInput, NotFound
from console.operators import Operator
from miniapps.gate import Gate
from miniapps.schemas import ScanRequest, ScanResult

MAX_PIXELS = 16_000_000  # a phone photo; larger images are refused before decoding


class ScannerSimulator:
    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    async def scanners(self) -> list[dict[str, Any]]:
        return await (
            MachineClient.select(
                MachineClient.client_id,
                MachineClient.name,
                MachineClient.app_id,
                MachineClient.context,
                MachineClient.place,
            )
            .where((MachineClient.kind == "scanner") & MachineClient.revoked_at.is_null())
            .order_by(MachineClient.app_id)
            .order_by(MachineClient.client_id)
            .run()
        )

    async def scan(self, operator: Operator, scanner_id: str, code: str, *, ip: str = "") -> ScanResult:
        row = (
            await MachineClient.select()
            .where(
                (MachineClient.client_id == scanner_id)
                & (MachineClient.kind == "scanner")
                & MachineClient.revoked_at.is_null()
            )
            .first()
            .run()
        )
        if row is None:
            raise NotFound("no active scanner with this id", code="scanner_not_found")
        try:
            request = msgspec.convert(
                {
                    "token": code.strip(),
                    "record_id": "sim-" + uuid.uuid4().hex[:24],
                    "meta": {"simulated_by": operator.username[:60]},
                },
                ScanRequest,
            )
        except msgspec.ValidationError as exc:
            raise InvalidInput(f"this is not a citizen code: {exc}", code="not_a_citizen_code") from exc
        scanner = MachinePrincipal(
            id=str(row["id"]),
            client_id=row["client_id"],
            kind="scanner",
            name=row["name"],
            app_id=row["app_id"],
            place=row["place"],
            context=row["context"],
        )
        decision = await self.gate.scan(scanner, request)
        await audit.record(
            "console.simulated_scan",
            actor_kind="operator",
            actor_id=operator.username,
            subject=f"scanner:{scanner_id}",
            ip=ip,
            result=decision.result,
            reason=decision.reason,
        )
        return decision

    @staticmethod
    def decode(image: bytes) -> str:
        """The text of the QR code in an image (PNG, JPEG, ...)."""
        try:
            with Image.open(io.BytesIO(image)) as img:
                if img.width * img.height > MAX_PIXELS:
                    raise InvalidInput(
                        "the image is too large (at most 16 megapixels)", code="image_too_large"
                    )
                found = zxingcpp.read_barcodes(
                    img.convert("L"), formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
                )
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
            raise InvalidInput("this is not an image that can be read", code="unreadable_image") from exc
        if not found:
            raise InvalidInput("no QR code found in the image", code="no_qr_code")
        return str(found[0].text)
