"""QR rendering with segno: ECC level M, alphanumeric mode (base45 is in its alphabet), quiet zone 4."""

from __future__ import annotations

import io

import segno

from backend.i18n import pick

ERROR_LEVEL = "m"
QUIET_ZONE = 4


def make(token: str) -> segno.QRCode:
    # boost_error=False keeps level M as specified instead of silently raising it
    return segno.make_qr(token, error=ERROR_LEVEL, mode="alphanumeric", boost_error=False)


def svg(token: str, scale: int = 6, *, inline: bool = False) -> bytes:
    """An SVG document, or (``inline``) an ``<svg>`` element to place in an HTML page."""
    buf = io.BytesIO()
    make(token).save(
        buf,
        kind="svg",
        scale=scale,
        border=QUIET_ZONE,
        xmldecl=not inline,
        svgns=True,
        title=pick("市民码", "Citizen code"),  # the request's language
        svgclass="qr",
        lineclass=None,
        omitsize=inline,  # inline: a viewBox instead of a fixed size, so CSS can scale it
    )
    return buf.getvalue()


def png(token: str, scale: int = 6) -> bytes:
    buf = io.BytesIO()
    make(token).save(buf, kind="png", scale=scale, border=QUIET_ZONE)
    return buf.getvalue()


def version_of(token: str) -> tuple[int, int]:
    """(QR version, modules per side) for this token at level M."""
    code = make(token)
    return int(code.version), int(code.symbol_size(border=0)[0])
