"""Plain HTTP on the WebSocket port (websockets ``process_request``): health, readiness, metrics, the web
client.

Routes: ``GET /healthz`` (200 while the process and its workers live, 500 when a model host failed to load),
``GET /readyz`` (503 until every worker loaded and warmed its host, then 200), ``GET /metrics`` (Prometheus
text; needs the bearer token when one is configured), ``GET /presets`` (JSON: the presets served and their
default settings), ``GET /`` and static files of ``web_root`` (when present). A WebSocket upgrade on ``/`` or
``/ws`` continues to the handshake; on any other path it gets 404. The routes see the server only through
:class:`HttpServer`.
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
from collections.abc import Sequence
from http import HTTPStatus
from typing import Protocol
from urllib.parse import unquote, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from ltx2stream.server.auth import AccessDenied, check_token
from ltx2stream.server.config import ServerConfig
from ltx2stream.server.metrics import CONTENT_TYPE as METRICS_TYPE
from ltx2stream.server.metrics import ServerMetrics
from ltx2stream.server.worker import Worker
from ltx2stream.types import latent_frames_of

WS_PATHS = ("/", "/ws")
STATIC_TYPES = {".html", ".js", ".mjs", ".css", ".json", ".png", ".svg", ".ico", ".wasm", ".map"}
MAX_STATIC_BYTES = 16 << 20
MAX_PATH_CHARS = 1024


def response(status: int, body: bytes | str, content_type: str = "text/plain; charset=utf-8") -> Response:
    """A complete HTTP response with length, type and no caching."""
    data = body.encode() if isinstance(body, str) else body
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(data))),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
        ]
    )
    return Response(status, HTTPStatus(status).phrase, headers, data)


class HttpServer(Protocol):
    """What the routes read from the server (``StreamingServer`` implements it)."""

    @property
    def config(self) -> ServerConfig: ...

    @property
    def metrics(self) -> ServerMetrics: ...

    @property
    def workers(self) -> Sequence[Worker]: ...

    @property
    def ready(self) -> bool:
        """Every worker loaded and warmed its host, all healthy, not draining."""
        ...

    @property
    def not_ready_reason(self) -> str:
        """``loading``, ``draining`` or ``unhealthy`` (the body of a 503 ``/readyz``)."""
        ...


class HttpRoutes:
    """The ``process_request`` hook of one server."""

    def __init__(self, app: HttpServer) -> None:
        self.app = app
        root = app.config.web_root
        self.web_root = root.resolve() if root is not None and (root / "index.html").is_file() else None

    async def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """None lets a WebSocket handshake proceed; anything else is answered here."""
        try:
            path = urlsplit(request.path).path
        except ValueError:  # e.g. "//[x": an unbalanced IPv6 bracket in what parses as a network location
            return response(400, "bad path\n")
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None if path in WS_PATHS else response(404, f"no WebSocket endpoint at {path[:100]}\n")
        if path == "/healthz":
            return self._healthz()
        if path == "/readyz":
            return (
                response(200, "ready\n")
                if self.app.ready
                else response(503, f"{self.app.not_ready_reason}\n")
            )
        if path == "/metrics":
            return self._metrics(request)
        if path == "/presets":
            return self._presets()
        return await asyncio.to_thread(self._static, path)  # disk reads stay off the loop

    def _healthz(self) -> Response:
        failed = [f"{w.name}: {type(w.error).__name__}" for w in self.app.workers if w.error is not None]
        return (
            response(500, "model host failed: " + "; ".join(failed) + "\n")
            if failed
            else response(200, "ok\n")
        )

    def _presets(self) -> Response:
        """The presets this server offers with their default settings (the web player prefills its form)."""
        from ltx2stream.pipeline.presets import PRESETS

        served = {p for w in self.app.workers if w.host is not None for p in w.host.presets}
        names = sorted(served or set(self.app.config.limits.presets))
        out = []
        for name in names:
            p = PRESETS.get(name)
            if p is None:
                continue
            latent_frames = latent_frames_of(p.frames)
            out.append(
                {
                    "preset": name,
                    "width": p.width,
                    "height": p.height,
                    "fps": p.fps,
                    "frames": p.frames,
                    "overlap": 1 if latent_frames >= 3 else 0,
                    "notes": p.notes,
                }
            )
        return response(200, json.dumps(out), "application/json")

    def _metrics(self, request: Request) -> Response:
        try:
            check_token(request.path, request.headers, self.app.config.token)
        except AccessDenied as e:
            return response(401, e.message + "\n")
        return response(200, self.app.metrics.render(), METRICS_TYPE)

    def _static(self, path: str) -> Response:
        if self.web_root is None:
            return response(404, "not found\n")
        relative = unquote(path).lstrip("/") or "index.html"
        if len(relative) > MAX_PATH_CHARS or any(ord(c) < 32 or c == "\x7f" for c in relative):
            return response(400, "bad path\n")  # NUL and control characters never name a file
        try:
            target = (self.web_root / relative).resolve()
            if (
                not target.is_relative_to(self.web_root)
                or target.suffix not in STATIC_TYPES
                or not target.is_file()
                or target.stat().st_size > MAX_STATIC_BYTES
            ):
                return response(404, "not found\n")
            data = target.read_bytes()
        except (OSError, ValueError):  # a name the OS refuses (too long, not encodable), a file gone
            return response(404, "not found\n")
        kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind in ("application/javascript", "application/json"):
            kind += "; charset=utf-8"
        return response(200, data, kind)
