"""Bad input and refused access: each gets its documented error code and close code, and a healthy session
running at the same time is not disturbed."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses

import msgpack
import pytest
from server_doubles import SETTINGS, Client, running
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed

from ltx2stream import protocol as P
from ltx2stream.server.auth import AccessDenied, check_access, select_subprotocol
from ltx2stream.session.state import SerializedState

TOKEN = "s3cret-token"
OPEN = P.Open(protocol_version=1, settings=SETTINGS, prompt="x")


async def _refused(port: int, first: bytes | str | None, **connect: object) -> tuple[P.Error, P.Final, int]:
    """Connect, send ``first`` (if any), and collect the error, the final and the close code."""
    client = await Client.connect(port, **connect)
    if first is not None:
        with contextlib.suppress(ConnectionClosed):  # the server may have refused us already
            await client.ws.send(first)
    code, _ = await client.drain_to_close()
    (error,), (final,) = client.of_type("error"), client.of_type("final")
    assert error.fatal and final.reason in ("failed", "timeout") and final.error_code == error.code
    return error, final, code


def _raw_open(**changes: object) -> bytes:
    fields = msgpack.unpackb(P.encode(OPEN), raw=False)
    fields.update(changes)
    return msgpack.packb(fields, use_bin_type=True)


@pytest.fixture
def healthy_session():
    """Runs a normal session for the whole test; asserts it kept delivering and ends cleanly."""

    class Witness:
        async def start(self, port: int) -> None:
            self.client = await Client.connect(port, additional_headers={"Authorization": f"Bearer {TOKEN}"})
            await self.client.open("the witness")
            self.task = asyncio.create_task(self._read())

        async def _read(self) -> None:
            try:
                while True:
                    await self.client.recv(timeout=30)
            except (ConnectionClosed, TimeoutError):
                return

        async def finish(self) -> None:
            before = len(self.client.of_type("segment_done"))
            for _ in range(300):  # still delivering: two more segments within 3 s
                if len(self.client.of_type("segment_done")) >= before + 2:
                    break
                await asyncio.sleep(0.01)
            assert len(self.client.of_type("segment_done")) >= before + 2
            await self.client.send(P.Stop())
            await asyncio.wait_for(self.task, 10)
            assert not self.client.of_type("error") and self.client.received[-1].type == "final"
            assert self.client.ws.close_code == 1000

    return Witness()


def test_bad_input_gets_documented_codes_and_other_sessions_are_unaffected(tmp_path, healthy_session):
    """Malformed msgpack, text frames, wrong first message, unknown fields, bad versions, oversized frames,
    an open timeout and bad resume requests: error + final + close code from the error table."""
    limits = P.ProtocolLimits(max_message_bytes=64 * 1024)

    async def main() -> None:
        async with running(tmp_path, token=TOKEN, limits=limits, open_timeout_s=0.3) as (app, _host):
            await healthy_session.start(app.port)
            auth = {"additional_headers": {"Authorization": f"Bearer {TOKEN}"}}
            cases = [
                (b"\xc1", "protocol.malformed", 4400),
                (b"\x93\x01\x02\x03", "protocol.malformed", 4400),
                ("a text frame", "protocol.malformed", 4400),
                (P.encode(P.Stop()), "protocol.unexpected", 4400),
                (msgpack.packb({"type": "dance"}), "protocol.unknown_type", 4400),
                (_raw_open(colour="red"), "protocol.unknown_field", 4400),
                (_raw_open(prompt=7), "protocol.bad_type", 4400),
                (_raw_open(protocol_version=2), "protocol.unsupported_version", 4426),
                (
                    _raw_open(settings={**dataclasses.asdict(SETTINGS), "width": 70}),
                    "protocol.out_of_range",
                    4400,
                ),
                (
                    _raw_open(settings={**dataclasses.asdict(SETTINGS), "preset": "huge"}),
                    "protocol.out_of_range",
                    4400,
                ),
                (
                    P.encode(dataclasses.replace(OPEN, resume_from=P.ResumeFrom(session_id="nosuchsession"))),
                    "session.not_found",
                    4404,
                ),
                (
                    P.encode(dataclasses.replace(OPEN, resume_from=P.ResumeFrom(state=b"\x00" * 64))),
                    "state.corrupt",
                    4422,
                ),
                (
                    _raw_open(image={"data": b"\xff\xd8\xff" + b"\x00" * 20, "mime": "image/png"}),
                    "protocol.bad_image",
                    4400,
                ),
                (
                    _raw_open(prompt="x" * (P.ProtocolLimits().max_prompt_chars + 1)),
                    "protocol.too_large",  # every over-size field, as the error table says
                    1009,
                ),
                (_raw_open(lookahead=9), "protocol.out_of_range", 4400),
                (None, "session.timeout", 4408),
            ]
            for first, code, close in cases:
                error, final, got = await _refused(app.port, first, **auth)
                assert (error.code, got) == (code, close), (first, error)
                assert final.resumable_session_id is None and final.segments == 0
            client = await Client.connect(app.port, **auth)  # websockets itself refuses frames over max_size
            await client.ws.send(b"\x00" * (limits.max_message_bytes + 1))
            assert (await client.drain_to_close())[0] == 1009
            assert app.metrics.errors.value(code="protocol.malformed") == 3
            await healthy_session.finish()

    asyncio.run(main())


def test_errors_after_accepted_are_fatal_or_not_as_documented(tmp_path):
    """After accepted: unknown types and wrong field types are non-fatal; malformed msgpack ends the session
    with 4400 and a resumable id once a segment was delivered."""

    async def main() -> None:
        async with running(tmp_path) as (app, _host):
            client = await Client.connect(app.port)
            accepted = await client.open()
            await client.ws.send(msgpack.packb({"type": "dance"}))
            assert (await client.expect("error")).code == "protocol.unknown_type"
            await client.ws.send(msgpack.packb({"type": "steer", "prompt": 12}))
            bad = await client.expect("error")
            assert bad.code == "protocol.bad_type" and not bad.fatal and "steer.prompt" in bad.message
            await client.expect("segment_done", index=0)
            await client.ws.send(b"\xc1")
            code, reason = await client.drain_to_close()
            final = client.received[-1]
            assert (code, reason) == (4400, "protocol.malformed")
            assert (
                final.type == "final"
                and final.reason == "failed"
                and final.error_code == "protocol.malformed"
            )
            assert final.resumable_session_id == accepted.session_id
            assert client.of_type("state")[-1].state == "failed"
            assert app.store.list(accepted.session_id)

    asyncio.run(main())


def test_incompatible_state_is_refused(tmp_path):
    """A state made for another size is refused before accepted with state.incompatible (4409)."""

    async def main() -> None:
        async with running(tmp_path) as (app, _host):
            client = await Client.connect(app.port)
            await client.open(lookahead=0)
            await client.expect("segment_done", index=0)
            await client.send(P.Snapshot())
            blob = (await client.expect("snapshot_result")).data
            await client.send(P.Stop())
            await client.drain_to_close()
            other = dataclasses.replace(SETTINGS, width=128)
            msg = P.encode(dataclasses.replace(OPEN, settings=other, resume_from=P.ResumeFrom(state=blob)))
            error, _, code = await _refused(app.port, msg)
            assert (error.code, code) == ("state.incompatible", 4409) and "width" in error.message
            assert SerializedState.from_bytes(blob).meta["width"] == SETTINGS.width

    asyncio.run(main())


def test_token_and_origin_checks(tmp_path):
    """Token by header, query or subprotocol; a missing/wrong token gets auth.failed (4401), a foreign Origin
    gets origin.forbidden (4403)."""

    async def main() -> None:
        async with running(tmp_path, token=TOKEN, origins=("http://good.example",)) as (app, _host):
            for first, connect in [
                (P.encode(OPEN), {}),
                (P.encode(OPEN), {"additional_headers": {"Authorization": "Bearer nope"}}),
                (None, {"subprotocols": ["ltx2stream", "bearer.nope"]}),
            ]:
                error, _, code = await _refused(app.port, first, **connect)
                assert (error.code, code) == ("auth.failed", 4401) and "nope" not in error.message
            error, _, code = await _refused(
                app.port,
                None,
                origin="http://evil.example",
                additional_headers={"Authorization": f"Bearer {TOKEN}"},
            )
            assert (error.code, code) == ("origin.forbidden", 4403)
            ways = [
                ({"additional_headers": {"Authorization": f"Bearer {TOKEN}"}}, "/ws"),
                ({"origin": "http://good.example"}, f"/ws?token={TOKEN}"),
                ({"subprotocols": ["ltx2stream", f"bearer.{TOKEN}"]}, "/"),
            ]
            for connect, path in ways:
                client = await Client.connect(app.port, path=path, **connect)
                await client.open()
                if "subprotocols" in connect:
                    assert client.ws.subprotocol == "ltx2stream"
                await client.send(P.Stop())
                assert (await client.drain_to_close())[0] == 1000

    asyncio.run(main())


def test_origin_rules_without_a_list_allow_programs_and_same_host_pages():
    """No allow-list: no Origin (programs) and the page's own host pass; other hosts are refused."""
    check_access("/ws", Headers(), token=None, origins=())
    check_access(
        "/ws", Headers({"Origin": "http://127.0.0.1:8765", "Host": "127.0.0.1:8765"}), token=None, origins=()
    )
    with pytest.raises(AccessDenied) as info:
        check_access(
            "/ws",
            Headers({"Origin": "http://evil.example", "Host": "127.0.0.1:8765"}),
            token=None,
            origins=(),
        )
    assert info.value.code == "origin.forbidden"
    assert (
        select_subprotocol(["bearer.x", "ltx2stream"]) == "ltx2stream" and select_subprotocol(["x"]) is None
    )


def test_generator_and_encoder_failures_end_only_their_session(tmp_path):
    """A settings rule refused by the generator when it opens (after accepted) ends that session with a fatal
    input.* error (4400); an encoder crash ends its session with server.internal (1011); the worker goes
    on."""
    from ltx2stream.media import SessionEncoder

    class Exploding(SessionEncoder):
        def add_video(self, frames):  # type: ignore[no-untyped-def]
            if self.width == 96:
                raise RuntimeError("x264 fell over")
            super().add_video(frames)

    def factory(settings, sample_rate):  # type: ignore[no-untyped-def]
        return Exploding(settings.width, settings.height, settings.fps, sample_rate)

    async def main() -> None:
        async with running(tmp_path, encoder_factory=factory) as (app, _host):
            for width, code, close in ((1024, "input.size_rule", 4400), (96, "server.internal", 1011)):
                client = await Client.connect(app.port)
                await client.open(settings=dataclasses.replace(SETTINGS, width=width))
                got, _ = await client.drain_to_close()
                error, final = client.of_type("error")[-1], client.received[-1]
                assert (error.code, error.fatal, got) == (code, True, close)
                assert final.type == "final" and final.reason == "failed" and final.error_code == code
            client = await Client.connect(app.port)
            await client.open()
            await client.expect("segment_done", index=1)
            await client.send(P.Stop())
            assert (await client.drain_to_close())[0] == 1000

    asyncio.run(main())
