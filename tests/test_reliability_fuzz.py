"""Property-based attacks on a live loopback server while a healthy session streams (hypothesis, bounded).

Generated frames: random msgpack values, maps with a known ``type`` and random fields, valid messages with one
field replaced by a random value, truncated and bit-flipped valid messages, garbage bytes, text frames, and
valid commands in random order. Properties: the server stays up; every refusal is an ``error`` whose code is in
the docs/protocol.md table and whose close code is the table's (fatal ones end with ``final``); a session that
was not refused keeps answering; the healthy session's media arrives complete and unchanged (its segments are
exactly the deterministic chain, and its first bytes equal a fresh run's).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_doubles import SETTINGS, ToyGenerator, ToyHost, running
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from ltx2stream import protocol as P
from ltx2stream.codes import error_spec
from ltx2stream.session.api import NullSink, SegmentRequest, SessionSettings

DOCS = Path(__file__).resolve().parents[1] / "docs" / "protocol.md"
DOCUMENTED = set(re.findall(r"^\| `([a-z_.0-9]+)` \| \d+ `", DOCS.read_text(encoding="utf-8"), re.MULTILINE))
CLIENT = P.ProtocolLimits.for_client()
EXAMPLES = int(
    os.environ.get("FUZZ_EXAMPLES", "120")
)  # per property; the whole module stays well under a minute on a busy machine
OPEN = P.Open(protocol_version=1, settings=SETTINGS, prompt="an attacker", lookahead=0)
WITNESS_PROMPT = "the witness"

# ---- frame strategies ------------------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.binary(max_size=40),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
)
TYPES = sorted(P.MESSAGE_TYPES) + ["", "OPEN", "dance"]
VALID = [
    P.encode(m)
    for m in (
        OPEN,
        P.Steer(prompt="rain", transition="blend", blend_segments=2, request_id=3),
        P.Pause(),
        P.Resume(),
        P.Snapshot(store=True, request_id=9),
        P.Open(
            protocol_version=1, settings=SETTINGS, prompt="x", resume_from=P.ResumeFrom(session_id="abcdefgh")
        ),
    )
]


def _pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


@st.composite
def typed_maps(draw: st.DrawFn) -> bytes:
    """A map with a (mostly known) ``type`` and random fields, some of them the real field names."""
    kind = draw(st.sampled_from(TYPES))
    names = [f.name for f in dataclasses.fields(P.MESSAGE_TYPES[kind])] if kind in P.MESSAGE_TYPES else []
    keys = st.sampled_from(names) | st.text(max_size=10) if names else st.text(max_size=10)
    return _pack({"type": kind, **draw(st.dictionaries(keys, values, max_size=6))})


@st.composite
def one_field_wrong(draw: st.DrawFn) -> bytes:
    """A valid message with one field (nested ones too) replaced by a random value."""
    fields = msgpack.unpackb(draw(st.sampled_from(VALID)), raw=False)
    key = draw(st.sampled_from(sorted(fields)))
    if isinstance(fields[key], dict) and fields[key] and draw(st.booleans()):
        inner = dict(fields[key])
        inner[draw(st.sampled_from(sorted(inner)))] = draw(values)
        fields[key] = inner
    else:
        fields[key] = draw(values)
    return _pack(fields)


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    """A valid message truncated, or with a few bytes flipped."""
    data = bytearray(draw(st.sampled_from(VALID)))
    if draw(st.booleans()):
        return bytes(data[: draw(st.integers(0, len(data) - 1))])
    for _ in range(draw(st.integers(1, 4))):
        data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
    return bytes(data)


frames = st.one_of(
    values.map(_pack),
    typed_maps(),
    one_field_wrong(),
    damaged(),
    st.binary(max_size=64),
    st.text(max_size=64),
)

# ---- a live server in its own thread, and a witness session ------------------------------------------------


class LiveServer:
    """A started server (ToyHost, real encoder) running in a background event loop."""

    def __init__(self, tmp_path: Path) -> None:
        self.host = ToyHost(step_s=0.01, noise=True)
        self.port = 0
        self._ready, self._stop = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(tmp_path),), daemon=True)
        self._thread.start()
        assert self._ready.wait(30), "server did not start"

    async def _main(self, tmp_path: Path) -> None:
        async with running(tmp_path, host=self.host, max_active_per_worker=8, open_timeout_s=5.0) as (app, _):
            self.app, self.port = app, app.port
            self._ready.set()
            await asyncio.to_thread(self._stop.wait)

    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(30)


def _decode(data: bytes | str) -> P.Message:
    assert isinstance(data, bytes), "the server sends binary frames only"
    return P.decode(data, limits=CLIENT)


def _check_error(error: P.Message) -> P.Error:
    assert isinstance(error, P.Error) and error.code in DOCUMENTED, error
    return error


def _drain(ws: ClientConnection, timeout: float = 10.0) -> list[P.Message]:
    out = []
    with contextlib.suppress(ConnectionClosed):
        while True:
            out.append(_decode(ws.recv(timeout)))
    return out


def _check_refusal(ws: ClientConnection, received: list[P.Message]) -> None:
    """A fatal error: ``error`` (documented), ``final`` naming it, close with the table's close code."""
    errors = [m for m in received if m.type == "error"]
    assert errors, received
    error = _check_error(errors[-1])
    final = received[-1]
    assert final.type == "final" and final.error_code == error.code, received[-3:]
    assert ws.close_code == int(error_spec(error.code).close_code), (error, ws.close_code)


class Witness:
    """A healthy session reading everything it is sent, in a thread."""

    def __init__(self, server: LiveServer) -> None:
        self.ws = connect(server.url(), max_size=CLIENT.max_message_bytes)
        self.ws.send(P.encode(P.Open(protocol_version=1, settings=SETTINGS, prompt=WITNESS_PROMPT)))
        self.received: list[P.Message] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed, TimeoutError):
            while True:
                self.received.append(_decode(self.ws.recv(30)))

    def stop(self) -> None:
        self.ws.send(P.encode(P.Stop()))
        self._thread.join(30)

    def media(self) -> dict[int, bytes]:
        """Bytes of every delivered segment (segment_done received), by segment index."""
        done = {m.index for m in self.received if m.type == "segment_done"}
        out: dict[int, bytes] = {}
        for m in self.received:
            if m.type == "media" and m.segment in done:
                out[m.segment] = out.get(m.segment, b"") + m.data
        return out


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Witness]]:
    """One server for the module, with a witness streaming from before the first attack to after the last."""
    server = LiveServer(tmp_path_factory.mktemp("fuzz"))
    witness = Witness(server)
    try:
        yield server, witness
    finally:
        server.close()


# ---- the properties ---------------------------------------------------------------------------------------------


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(frame=frames)
@pytest.mark.filterwarnings(
    "ignore::hypothesis.errors.HypothesisDeprecationWarning"
)  # the server thread's RNG
def test_any_first_frame_gets_a_documented_answer(
    live: tuple[LiveServer, Witness], frame: bytes | str
) -> None:
    """As a connection's first frame, anything is either a valid ``open`` (accepted) or refused with a
    documented code, ``final`` and the table's close code."""
    server, _ = live
    with connect(server.url(), max_size=CLIENT.max_message_bytes) as ws:
        ws.send(frame)
        try:
            first = _decode(ws.recv(10))
        except ConnectionClosed:
            first = None
        if first is not None and first.type == "accepted":
            return  # a valid open (its stream never ends by itself); closing the socket ends it ('gone')
        _check_refusal(ws, ([first] if first is not None else []) + _drain(ws))


class Attacker:
    """One session that receives random frames; re-opened whenever a frame ended it."""

    def __init__(self, server: LiveServer) -> None:
        self.server, self.ws, self.probe = server, None, 0

    def session(self) -> ClientConnection:
        if self.ws is None:
            self.ws = connect(self.server.url(), max_size=CLIENT.max_message_bytes)
            self.ws.send(P.encode(OPEN))
            assert _decode(self.ws.recv(10)).type == "accepted"
        return self.ws

    def send_and_probe(self, frame: bytes | str) -> None:
        """Send ``frame``, then a snapshot probe; every error seen is documented; the session either answers
        the probe or ends with a documented refusal (or ``stopped`` after a valid ``stop``)."""
        ws = self.session()
        self.probe += 1
        probe = self.probe + 1_000_000
        seen: list[P.Message] = []
        try:
            ws.send(frame)
            ws.send(P.encode(P.Snapshot(request_id=probe)))
            while True:
                msg = _decode(ws.recv(10))
                seen.append(msg)
                if msg.type == "error":
                    _check_error(msg)
                    if msg.fatal:
                        break
                    if msg.request_id == probe:
                        return
                if msg.type == "snapshot_result" and msg.request_id == probe:
                    return
                if msg.type == "final":
                    break
        except ConnectionClosed:
            pass
        seen += _drain(ws)
        self.ws = None
        if not any(m.type == "error" for m in seen) and ws.close_code == 1000:
            return  # a valid stop (or pause + stop) ended it normally
        _check_refusal(ws, seen)


@pytest.fixture(scope="module")
def attacker(live: tuple[LiveServer, Witness]) -> Attacker:
    return Attacker(live[0])


commands = st.sampled_from(VALID + [P.encode(P.Stop()), P.encode(P.Resume()), P.encode(P.Pause())])


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(frame=frames | commands)
@pytest.mark.filterwarnings(
    "ignore::hypothesis.errors.HypothesisDeprecationWarning"
)  # the server thread's RNG
def test_any_frame_in_a_session_is_answered_and_the_session_survives_non_fatal_ones(
    attacker: Attacker, frame: bytes | str
) -> None:
    """In a running session, any frame or out-of-order command is applied, refused non-fatally (the probe is
    still answered), or ends the session with a documented refusal."""
    attacker.send_and_probe(frame)


def test_the_server_stayed_up_and_the_witness_media_is_unchanged(live: tuple[LiveServer, Witness]) -> None:
    """After the attacks (this test runs last in the module): a new session is accepted; the witness got every
    segment it started, in order, each exactly the deterministic chain's, and its first bytes equal those of a
    fresh session with the same prompt and seed."""
    server, witness = live
    witness.stop()
    received = witness.received
    assert not [m for m in received if m.type == "error"], "the witness was disturbed"
    assert received[-1].type == "final" and received[-1].reason == "stopped"
    done = [m.index for m in received if m.type == "segment_done"]
    assert done == list(range(len(done))) and len(done) >= 2, done
    seqs = [m.seq for m in received if m.type == "media"]
    assert seqs == list(range(len(seqs)))  # no media piece lost or reordered

    # the chain: every delivered segment's latent equals an undisturbed generator's
    host = ToyHost(step_s=0.0, noise=True)
    generator = ToyGenerator(host, SessionSettings(**dataclasses.asdict(SETTINGS)), None)
    for i in done:
        generator.run_segment(SegmentRequest(i, WITNESS_PROMPT, SETTINGS.seed + i), NullSink())
    served = {(i, s, lat) for i, p, s, lat in server.host.segments if p == WITNESS_PROMPT}
    assert {(i, s, lat) for i, _, s, lat in host.segments} <= served

    # the bytes: a fresh session's first segments are byte-identical to what the witness got
    fresh = Witness(server)
    first = min(len(done), 5)
    for _ in range(600):
        if sum(m.type == "segment_done" for m in fresh.received) >= first:
            break
        fresh._thread.join(0.05)
    fresh.stop()
    media, again = witness.media(), fresh.media()
    assert [media[i] for i in range(first)] == [again[i] for i in range(first)]
