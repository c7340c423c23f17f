"""Access checks on the opening handshake: bearer token (header, query or subprotocol) and Origin allow-list.

Pure functions of the HTTP request, so they are unit-testable and shared by the WebSocket and HTTP paths.
A failed check is reported *after* the handshake as an ``error`` + ``final`` and a close with the documented
code (4401 / 4403): a browser never sees the HTTP status of a refused handshake, but it does see a close code.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from urllib.parse import parse_qs, urlsplit

from websockets.datastructures import Headers
from websockets.typing import Subprotocol

from ltx2stream import codes
from ltx2stream.errors import LTX2StreamError

SUBPROTOCOL = Subprotocol("ltx2stream")
BEARER_SUBPROTOCOL_PREFIX = "bearer."

__all__ = [
    "SUBPROTOCOL",
    "AccessDenied",
    "check_access",
    "check_origin",
    "check_token",
    "offered_subprotocols",
    "select_subprotocol",
]


class AccessDenied(LTX2StreamError):
    """A handshake that failed the token or origin check (code ``auth.failed`` or ``origin.forbidden``)."""

    default_code = codes.AUTH_FAILED


def offered_subprotocols(headers: Headers) -> list[str]:
    """The subprotocols a client offered (``Sec-WebSocket-Protocol``, comma separated, possibly repeated)."""
    return [
        p.strip()
        for value in headers.get_all("Sec-WebSocket-Protocol")
        for p in value.split(",")
        if p.strip()
    ]


def presented_tokens(path: str, headers: Headers) -> list[str]:
    """Every token the request carries: ``Authorization: Bearer``, ``?token=``, subprotocol ``bearer.<t>``.

    The subprotocol token counts only when offered next to ``ltx2stream`` (as docs/protocol.md says): the server
    answers ``ltx2stream``, and a browser that offered only ``bearer.<t>`` would fail the handshake anyway.
    """
    tokens: list[str] = []
    auth = headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        tokens.append(value.strip())
    tokens += parse_qs(urlsplit(path).query).get("token", [])
    offered = offered_subprotocols(headers)
    if SUBPROTOCOL in offered:
        tokens += [
            p[len(BEARER_SUBPROTOCOL_PREFIX) :] for p in offered if p.startswith(BEARER_SUBPROTOCOL_PREFIX)
        ]
    return tokens


def check_token(path: str, headers: Headers, token: str | None) -> None:
    """Pass when no token is configured or one presented token matches (constant-time compare).

    Raises:
        AccessDenied: ``auth.failed`` (the message says which ways of sending a token exist, never the token).
    """
    if token is None:
        return
    expected = token.encode()
    if any(hmac.compare_digest(t.encode(), expected) for t in presented_tokens(path, headers)):
        return
    raise AccessDenied(
        "missing or wrong bearer token: send 'Authorization: Bearer <token>', the query parameter "
        "'token', or the subprotocol 'bearer.<token>' next to 'ltx2stream'",
        code=codes.AUTH_FAILED,
    )


def check_origin(headers: Headers, allowed: Sequence[str]) -> None:
    """Pass requests without ``Origin`` (programs), listed origins, or, with no list, same-host pages.

    Raises:
        AccessDenied: ``origin.forbidden`` naming the refused origin.
    """
    origin = headers.get("Origin")
    if origin is None:
        return
    if allowed:
        if origin in allowed:
            return
    elif _netloc(origin) == headers.get("Host", "").lower():
        return
    shown = origin[:200]
    raise AccessDenied(
        f"origin {shown!r} is not allowed; allowed: {', '.join(allowed) or 'same host only'}",
        code=codes.ORIGIN_FORBIDDEN,
    )


def _netloc(url: str) -> str | None:
    """The lower-cased host[:port] of a URL, or None when it does not parse (``http://[x``)."""
    try:
        return urlsplit(url).netloc.lower()
    except ValueError:
        return None


def check_access(path: str, headers: Headers, *, token: str | None, origins: Sequence[str]) -> None:
    """Origin first (a foreign page must not learn whether its token was right), then the token."""
    check_origin(headers, origins)
    check_token(path, headers, token)


def select_subprotocol(offered: Sequence[str]) -> Subprotocol | None:
    """Answer ``ltx2stream`` when offered (browsers require an answer once they offer any subprotocol)."""
    return SUBPROTOCOL if SUBPROTOCOL in offered else None
