"""Static HTML pages served by the app: the headers they go out with.

Our pages load nothing from elsewhere (they must work with no internet) and run no inline script: a
strict Content-Security-Policy says so to the browser (the console's pages use the same policy).
"""

from __future__ import annotations

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; worker-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
