"""The server does what docs/protocol.md and docs/server.md say at the edges found by an independent client:
bad HTTP paths are 4xx, every over-size field is ``protocol.too_large``, a malformed resume id is
``session.bad_id``, every error echoes the ``request_id`` of the command it answers, and the bearer
subprotocol counts only next to ``ltx2stream``."""

from __future__ import annotations

import asyncio
import contextlib

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_doubles import SETTINGS, Client, running
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request

from ltx2stream import codes
from ltx2stream import protocol as P
from ltx2stream.server.http import HttpRoutes

OPEN = P.Open(protocol_version=1, settings=SETTINGS, prompt="x")
PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)


def _raw_open(**changes: object) -> bytes:
    fields = msgpack.unpackb(P.encode(OPEN), raw=False)
    fields.update(changes)
    return msgpack.packb(fields, use_bin_type=True)


async def _first_error(port: int, first: bytes, **connect: object) -> tuple[P.Error, int | None]:
    client = await Client.connect(port, **connect)
    with contextlib.suppress(ConnectionClosed):
        await client.ws.send(first)
    code, _ = await client.drain_to_close()
    return client.of_type("error")[0], code


async def _http_status(port: int, raw_path: str) -> int:
    """Send a GET with ``raw_path`` exactly as given (no client-side quoting) and return the status."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {raw_path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode("latin-1"))
    await writer.drain()
    line = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    return int(line.split()[1])


def _web_root(tmp_path):  # type: ignore[no-untyped-def]
    root = tmp_path / "web"
    root.mkdir()
    (root / "index.html").write_text("<!doctype html><p>hi</p>")
    (root / "app.js").write_text("console.log(1)")
    return root


def test_bad_http_paths_answer_4xx(tmp_path):
    """``/index.html%00.js`` (was 500: embedded null byte), control characters, a bracketed netloc, a name too
    long for the OS, traversal: 400 or 404; the real files still 200."""

    async def main() -> None:
        async with running(tmp_path, web_root=_web_root(tmp_path)) as (app, _):
            expected = {
                "/index.html%00.js": 400,
                "/app.js%00": 400,
                "/%0a.js": 400,
                "//[x/app.js": 400,
                "/" + "a" * 5000 + ".js": 400,
                "/" + "a" * 300 + ".js": 404,  # within our limit, over the OS's 255-byte name
                "/%2e%2e/%2e%2e/etc/passwd": 404,
                "/../index.html": 404,  # outside the root
                "/app.js": 200,
                "/": 200,
            }
            got = {path: await _http_status(app.port, path) for path in expected}
            assert got == expected

    asyncio.run(main())


def test_http_routes_answer_every_path_below_500(tmp_path):
    """Property: any request path (random text, percent-encoded bytes) gets a 2xx/4xx answer, never a 5xx or
    an exception (the routes are called directly, as websockets' process_request does)."""
    segment = st.one_of(
        st.text(max_size=40),
        st.binary(max_size=20).map(lambda b: "".join(f"%{x:02x}" for x in b)),
        st.sampled_from(["..", ".", "index.html", "app.js", "%00", "[", "//", "?token=x", "#", "%", "%zz"]),
    )
    paths = st.lists(segment, max_size=6).map(lambda parts: "/" + "/".join(parts))

    async def build() -> HttpRoutes:
        async with running(tmp_path, web_root=_web_root(tmp_path)) as (app, _):
            return HttpRoutes(app)

    routes = asyncio.run(build())

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(paths, st.booleans())
    def check(path: str, upgrade: bool) -> None:
        headers = Headers({"Upgrade": "websocket"} if upgrade else {})
        response = asyncio.run(routes.process_request(None, Request(path, headers)))  # type: ignore[arg-type]
        assert response is None or 200 <= response.status_code < 500, (path, response.status_code)

    check()


def test_docs_and_server_agree_on_codes_and_request_id(tmp_path):
    """A malformed resume id is session.bad_id; an over-size image, a 4097-character and a 1M-character prompt
    are all protocol.too_large (1009); a schema error echoes the command's request_id (non-fatal and fatal)."""
    limits = P.ProtocolLimits(max_image_bytes=1024)

    async def main() -> None:
        async with running(tmp_path, limits=limits) as (app, _):
            cases = [
                (_raw_open(resume_from={"session_id": "../../etc/passwd"}), codes.SESSION_BAD_ID, 4400),
                (_raw_open(resume_from={"session_id": "short"}), codes.SESSION_BAD_ID, 4400),
                (
                    _raw_open(image={"data": PNG + bytes(1024), "mime": "image/png"}),
                    codes.PROTOCOL_TOO_LARGE,
                    1009,
                ),
                (_raw_open(prompt="x" * 4097), codes.PROTOCOL_TOO_LARGE, 1009),
                (_raw_open(prompt="x" * 1_000_000), codes.PROTOCOL_TOO_LARGE, 1009),
            ]
            for first, code, close in cases:
                error, got = await _first_error(app.port, first)
                assert (error.code, got) == (code, close), error

            client = await Client.connect(app.port)
            await client.open("a river")
            bad_steer = {"type": "steer", "prompt": "x", "blend_segments": 99, "request_id": 41}
            await client.ws.send(msgpack.packb(bad_steer))
            error = await client.expect("error")
            assert (error.code, error.request_id, error.fatal) == (codes.PROTOCOL_OUT_OF_RANGE, 41, False)
            await client.ws.send(msgpack.packb({"type": "snapshot", "colour": 1, "request_id": 42}))
            error = await client.expect("error")
            assert (error.code, error.request_id) == (codes.PROTOCOL_UNKNOWN_FIELD, 42)
            await client.ws.send(msgpack.packb({"type": "steer", "prompt": "y" * 5000, "request_id": 43}))
            code, _ = await client.drain_to_close()
            error = client.of_type("error")[-1]
            assert (error.code, error.request_id, error.fatal, code) == (
                codes.PROTOCOL_TOO_LARGE,
                43,
                True,
                1009,
            )

    asyncio.run(main())


def test_bearer_subprotocol_counts_only_next_to_ltx2stream(tmp_path):
    """``bearer.<t>`` alone is not a credential (auth.failed, 4401); next to ``ltx2stream`` it is."""

    async def main() -> None:
        async with running(tmp_path, token="tok-3n") as (app, _):
            client = await Client.connect(app.port, subprotocols=["bearer.tok-3n"])
            with contextlib.suppress(ConnectionClosed):
                await client.send(OPEN)
            assert (await client.recv()).type == "error"  # not accepted
            code, _ = await client.drain_to_close()
            assert (client.of_type("error")[0].code, code) == (codes.AUTH_FAILED, 4401)
            ok = await Client.connect(app.port, subprotocols=["ltx2stream", "bearer.tok-3n"])
            await ok.open()
            await ok.send(P.Stop())
            assert (await ok.drain_to_close())[0] == 1000

    asyncio.run(main())
