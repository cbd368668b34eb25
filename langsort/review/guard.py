"""Who may use the review app.

Bound to loopback (the default) it answers only this machine, and only under a loopback
host name, so a web page elsewhere cannot reach it through DNS rebinding. Bound to any other
address it needs a token, printed in the URL `langsort review` shows (as Jupyter does); the
first request with `?token=` gets it back as a cookie, so links and the audio player work
without it. Requests that change something must not come from another site's page: a
browser always sends Origin on them, and it must be the app's own.
"""

from __future__ import annotations

import hmac
import ipaddress
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse

COOKIE = "langsort_review_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = frozenset({"localhost"})


def is_loopback(host: str) -> bool:
    """True for loopback addresses and the name localhost."""
    host = host.strip("[]")
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(host_header: str) -> str:
    """The name part of a Host header ("[::1]:8765" -> "::1")."""
    if host_header.startswith("["):
        return host_header[1 : host_header.find("]")]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def refusal(method: str, scheme: str, host_header: str, origin: str | None, client_host: str | None,
            token: str | None, offered: list[str]) -> str | None:
    """Why a request is refused (403), or None to let it through."""
    if token is None:
        if client_host is None or not is_loopback(client_host):
            return "this review app answers only this machine"
        if not is_loopback(host_name(host_header)):
            return "unexpected Host: open the app through 127.0.0.1 or localhost"
    elif not any(hmac.compare_digest(token, t) for t in offered):
        return "a token is needed: open the URL that langsort review printed"
    if method not in SAFE_METHODS and origin is not None and origin != f"{scheme}://{host_header}":
        return "request from another site refused"
    return None


class Guard:
    """ASGI middleware applying `refusal` to every HTTP request."""

    def __init__(self, app, token: str | None):
        self.app = app
        self.token = token

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        from_query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [])
        cookie = SimpleCookie(headers.get("cookie", ""))
        offered = from_query + ([cookie[COOKIE].value] if COOKIE in cookie else [])
        client = scope.get("client")
        why = refusal(scope["method"], scope["scheme"], headers.get("host", ""), headers.get("origin"),
                      client[0] if client else None, self.token, offered)
        if why:
            return await PlainTextResponse(why, status_code=403)(scope, receive, send)
        if self.token and from_query and COOKIE not in cookie:
            send = _with_cookie(send, f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict")
        await self.app(scope, receive, send)


def _with_cookie(send, cookie: str):
    async def sending(message):
        if message["type"] == "http.response.start":
            message = dict(message, headers=[*message.get("headers", []), (b"set-cookie", cookie.encode())])
        await send(message)

    return sending
