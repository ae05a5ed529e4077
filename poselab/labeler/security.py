"""Who may talk to the labeler: loopback-only by default, a URL token on any other address.

`Guard` is a plain ASGI middleware in front of every route:
- Bound to a loopback address (the default) it needs no token but answers only requests
  whose Host header is a loopback name, which defeats DNS-rebinding pages.
- Bound to anything else it needs the random token printed in the URL (query `?token=`,
  then a cookie it sets, or an `X-Poselab-Token` header); without it: 401.
- State-changing requests must come from the page's own origin (no cross-site writes).
- Every response carries a Content-Security-Policy that lets the page load only from its
  own origin, so nothing is fetched from the internet even by mistake.

Extending: a new header for every response goes into `SECURITY_HEADERS`.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from urllib.parse import parse_qs

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TOKEN_HEADER = "x-poselab-token"
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
        "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'; form-action 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}


def is_loopback(host: str) -> bool:
    """Whether a bind address or Host-header name only reaches this machine."""
    host = host.strip().strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(host_header: str) -> str:
    """The name part of a Host header ('127.0.0.1:8765' -> '127.0.0.1', '[::1]:80' -> '::1')."""
    if host_header.startswith("["):
        return host_header[1 : host_header.find("]")] if "]" in host_header else host_header
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def new_token() -> str:
    return secrets.token_urlsafe(18)


class Guard:
    """ASGI middleware: token / Host / Origin checks and security headers (see module doc)."""

    def __init__(self, app: ASGIApp, token: str | None = None):
        self.app = app
        self.token = token

    @staticmethod
    def cookie_name(scope: Scope) -> str:
        # Cookies ignore ports: name it per port so two servers on one host do not clash.
        port = (scope.get("server") or (None, 0))[1]
        return f"poselab_token_{port}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        set_cookie = False
        if self.token is None:
            if not is_loopback(host_name(headers.get("host", ""))):
                await _deny(send, 403, "this poselab server only answers requests "
                                       "addressed to localhost / 127.0.0.1")
                return
        else:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            from_query = (query.get("token") or [""])[0]
            given = (from_query or headers.get(TOKEN_HEADER, "")
                     or _cookie(headers, self.cookie_name(scope)))
            if not given or not secrets.compare_digest(given.encode(), self.token.encode()):
                await _deny(send, 401, "missing or wrong token: open the URL that "
                                       "`poselab label` or `poselab app` printed (it ends "
                                       "in ?token=...)")
                return
            set_cookie = bool(from_query)
        if scope["method"] not in ("GET", "HEAD"):
            origin = headers.get("origin")
            own = f"{scope.get('scheme', 'http')}://{headers.get('host', '')}"
            if origin is not None and origin != own:
                await _deny(send, 403, f"cross-origin request from {origin} refused")
                return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                for key, value in SECURITY_HEADERS.items():
                    if key not in out:
                        out[key] = value
                if set_cookie:
                    out.append("set-cookie", f"{self.cookie_name(scope)}={self.token}; Path=/; "
                                             "HttpOnly; SameSite=Strict")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _cookie(headers: Headers, name: str) -> str:
    for part in headers.get("cookie", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return ""


async def _deny(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
