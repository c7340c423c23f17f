"""The web client (``clients/web``): its MessagePack and message builders under node, the page in Chromium.

* ``node`` (skipped when absent) loads the vendored ``@msgpack/msgpack`` build as the page does (a classic script
  making the global ``MessagePack``), then runs ``protocol.js``'s codec profile against fixtures packed by Python's
  msgpack (every type and size class the protocol can use, and every server message), encodes them back for
  Python to unpack, refuses malformed input, and builds each client message with ``protocol.js`` for the Python
  protocol decoder to accept.
* Headless ``chromium`` (skipped when absent) loads the page from a real server (tiny LTX-2 host), which opens a
  session from its query string: the video element plays (currentTime advances, buffered media grows), a steer
  sent from the page's form is acknowledged and applied at the announced segment, and stop ends the session.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import math
import re
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import msgpack
import pytest
from headless_chromium import launch
from server_doubles import running
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from ltx2stream import protocol as P

WEB = Path(__file__).resolve().parent.parent / "clients" / "web"
NODE = shutil.which("node")

# ---- msgpack codec and message builders under node ---------------------------------------------------------

HARNESS = r"""
import { readFileSync } from "node:fs";
import { runInThisContext } from "node:vm";

runInThisContext(readFileSync("vendor/msgpack/msgpack.js", "utf8"), { filename: "msgpack.js" });  // as <script>
const proto = await import("./protocol.js");
const { decode, encode, DecodeError } = proto;

const hex = (b) => Buffer.from(b).toString("hex");
const unhex = (s) => new Uint8Array(Buffer.from(s, "hex"));
function tag(v) {  // JS value -> tagged JSON (the fixtures' notation)
  if (v instanceof Uint8Array) return { $bin: Buffer.from(v).toString("base64") };
  if (typeof v === "bigint") return { $int: v.toString() };
  if (typeof v === "number" && !Number.isFinite(v)) return { $float: String(v) };
  if (Array.isArray(v)) return v.map(tag);
  if (v !== null && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, tag(x)]));
  return v;
}
function untag(v) {
  if (Array.isArray(v)) return v.map(untag);
  if (v !== null && typeof v === "object") {
    if ("$bin" in v) return new Uint8Array(Buffer.from(v.$bin, "base64"));
    if ("$int" in v) return BigInt(v.$int);
    if ("$float" in v) return Number(v.$float);
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, untag(x)]));
  }
  return v;
}
const fixtures = JSON.parse(readFileSync(process.argv[2], "utf8"));
const out = { decoded: {}, encoded: {}, refused: {}, messages: {} };
for (const [name, f] of Object.entries(fixtures.values)) {
  out.decoded[name] = tag(decode(unhex(f.packed)));
  out.encoded[name] = hex(encode(untag(f.value)));
}
for (const [name, h] of Object.entries(fixtures.malformed)) {
  try { decode(unhex(h)); out.refused[name] = "accepted"; }
  catch (e) { out.refused[name] = e instanceof DecodeError ? "DecodeError" : `${e.name}: ${e.message}`; }
}
const image = { data: new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0, 1, 2]),
                mime: "image/png", strength: 0.5, frame: 0 };
const settings = { preset: "tiny-ltx2", width: 64, height: 64, fps: 12, frames: 17, overlap: 1, seed: 3 };
const built = {
  open: proto.openMessage({ prompt: "a fox", settings, image, lookahead: 0 }),
  open_resume: proto.openMessage({ prompt: "a fox", settings: { ...settings, overlap: undefined, seed: undefined },
                                   resumeFrom: { session_id: "abcdefgh12" } }),
  steer_cut: proto.steerMessage({ prompt: "snow", requestId: 1 }),
  steer_blend: proto.steerMessage({ prompt: "snow", transition: "blend", blendSegments: 3,
                                    seed: proto.parseSeed("9223372036854775807"), requestId: 2 }),
  pause: proto.pauseMessage(), resume: proto.resumeMessage(), stop: proto.stopMessage(),
  snapshot: proto.snapshotMessage({ store: true, requestId: 3 }),
};
for (const [name, msg] of Object.entries(built)) out.messages[name] = hex(proto.encodeMessage(msg));
out.sniff = proto.sniffImage(image.data);
out.target = proto.connectionTarget("ws://h:1/ws", "tok.en_1");
out.target_query = proto.connectionTarget("ws://h:1/ws", "a/b=c");
out.polluted = ({}).polluted !== undefined || Object.prototype.polluted !== undefined;
process.stdout.write(JSON.stringify(out));
"""


def _tag(value: Any) -> Any:
    """Python value -> the tagged JSON notation the harness shares (bin, big ints, non-finite floats)."""
    if isinstance(value, bytes):
        return {"$bin": base64.b64encode(value).decode()}
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if abs(value) <= 2**53 - 1 else {"$int": str(value)}
    if isinstance(value, float):
        return (
            value
            if math.isfinite(value)
            else {"$float": "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")}
        )
    if isinstance(value, list):
        return [_tag(v) for v in value]
    return {k: _tag(v) for k, v in value.items()}


def _has_whole_float(value: Any) -> bool:
    if isinstance(value, float):
        return value.is_integer() or not math.isfinite(value)
    if isinstance(value, list):
        return any(_has_whole_float(v) for v in value)
    if isinstance(value, dict):
        return any(_has_whole_float(v) for v in value.values())
    return False


def _values() -> dict[str, Any]:
    ints = [
        0,
        1,
        127,
        128,
        255,
        256,
        65535,
        65536,
        2**32 - 1,
        2**32,
        2**53 - 1,
        2**53 + 1,
        2**63 - 1,
        2**64 - 1,
        -1,
        -32,
        -33,
        -128,
        -129,
        -32768,
        -32769,
        -(2**31),
        -(2**31) - 1,
        -(2**53) + 1,
        -(2**63),
    ]
    values: dict[str, Any] = {f"int_{i}": v for i, v in enumerate(ints)}
    values |= {
        "nil": None,
        "true": True,
        "false": False,
        "float": 0.1,
        "float_neg": -1.25e300,
        "float_whole": 24.0,
        "nan": float("nan"),
        "inf": float("-inf"),
    }
    values |= {
        "str_empty": "",
        "str_fix": "a" * 31,
        "str8": "b" * 32,
        "str16": "c" * 300,
        "str32": "d" * 70000,
        "str_utf8": "é漢🦊 snow",
        "bin_empty": b"",
        "bin8": bytes(range(255)),
        "bin16": bytes(300),
        "bin32": bytes(range(256)) * 300,
        "arr_empty": [],
        "arr_fix": list(range(15)),
        "arr16": list(range(16)),
        "arr32": [1] * 70000,
        "map_empty": {},
        "map_fix": {f"k{i}": i for i in range(15)},
        "map16": {f"k{i}": [i, None] for i in range(16)},
        "nested": {"a": [{"b": [b"\x00\x01", 2.5, "z"]}]},
    }
    return values


def _server_messages() -> dict[str, bytes]:
    settings = P.Settings(preset="tiny-ltx2", width=64, height=64, fps=12.0, frames=17, overlap=1, seed=3)
    limits = P.LimitsInfo.from_limits(P.ProtocolLimits())
    timings = P.SegmentTimings(
        text=0.2, stage1=3.9, upsample=0.0, stage2=2.6, decode=0.8, encode=0.6, send=0.02
    )
    msgs: list[P.Message] = [
        P.Accepted(
            session_id="Qm8f3kTzR1a0bXy2cV9wLg",
            protocol_version=1,
            settings=settings,
            limits=limits,
            mime='video/mp4; codecs="avc1.64001e, mp4a.40.2"',
            resumed_from_segment=4,
        ),
        P.Queued(position=3),
        P.State(state="running", previous="starting", reason="first segment"),
        P.SegmentStarted(index=2, prompt="snow", seed=2**63 - 1, previous_prompt="fox", weight=0.5),
        P.Progress(segment=2, stage="stage1", step=3, total=8),
        P.MediaInit(mime="video/mp4", data=bytes(range(200)) * 6),
        P.Media(segment=2, seq=7, t0=5.0417, duration=4.6667, data=bytes(range(256)) * 1000, last=False),
        P.SegmentDone(index=2, media_duration=4.6667, timings=timings),
        P.SteerAck(applies_at=3, request_id=1),
        P.SnapshotResult(
            session_id="Qm8f3kTzR1a0bXy2cV9wLg", segment_index=2, stored=False, data=b"state" * 10
        ),
        P.Error(code="session.rate_limited", message="retry in 2 s", retryable=True, fatal=False),
        P.Final(reason="stopped", segments=3, resumable_session_id="Qm8f3kTzR1a0bXy2cV9wLg"),
    ]
    return {f"msg_{m.type}": P.encode(m) for m in msgs}


MALFORMED = {
    "truncated_str": "a5616263",  # fixstr of 5 with 3 bytes
    "truncated_bin": "c40a0102",
    "ext": "d40102",
    "never_used": "c1",
    "int_key": "810102",  # {1: 2}
    "bad_utf8": "a2c328",
    "trailing": "0101",
    "empty": "",
    "proto_key": msgpack.packb({"__proto__": {"polluted": True}, "x": 1}).hex(),  # refused, nothing polluted
    "too_deep": "91" * 70 + "c0",  # 70 nested arrays
}


def test_vendored_msgpack_is_one_pinned_file_with_its_licence() -> None:
    """clients/web/vendor/msgpack: the UMD build whose header names the Makefile's pinned version, its licence
    beside it, loaded by index.html before the modules; the hand-written codec is gone."""
    vendor = WEB / "vendor" / "msgpack"
    assert sorted(p.name for p in vendor.iterdir()) == ["LICENSE", "msgpack.js"]
    pinned = re.search(
        r"^MSGPACK_VERSION \?= (\S+)$", (WEB.parent.parent / "Makefile").read_text(), re.MULTILINE
    )
    assert pinned is not None
    header = (vendor / "msgpack.js").read_text().splitlines()[0]
    assert header.startswith(f"// @msgpack/msgpack {pinned.group(1)}: package/dist.umd/msgpack.js"), header
    assert (
        "ISC" in (vendor / "msgpack.js").read_text()[:400]
        and "MessagePack" in (vendor / "LICENSE").read_text()
    )
    html = (WEB / "index.html").read_text()
    assert html.index('src="vendor/msgpack/msgpack.js"') < html.index('type="module"')
    assert not (WEB / "msgpack.js").exists()


@pytest.mark.slow
@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_msgpack_codec_and_message_builders_agree_with_python(tmp_path: Path) -> None:
    """The page's MessagePack (vendored @msgpack/msgpack under protocol.js's profile) decodes what Python packs
    (all size classes, 64-bit ints, bin as bytes, every server message), what it encodes unpacks to the same
    values in Python, malformed input raises DecodeError (a ``__proto__`` key too, polluting nothing), and every
    message protocol.js builds is accepted by the Python protocol decoder."""
    shutil.copy(WEB / "protocol.js", tmp_path / "protocol.js")
    shutil.copytree(WEB / "vendor", tmp_path / "vendor")
    (tmp_path / "package.json").write_text('{"type": "module"}')
    (tmp_path / "harness.js").write_text(HARNESS)
    values = {name: v for name, v in _values().items()}
    packed = {name: msgpack.packb(v, use_bin_type=True) for name, v in values.items()}
    for name, data in _server_messages().items():
        values[name] = msgpack.unpackb(data, raw=False)
        packed[name] = data
    packed["float32"] = msgpack.packb(0.5, use_single_float=True)
    values["float32"] = 0.5
    fixtures = {
        "values": {n: {"packed": packed[n].hex(), "value": _tag(v)} for n, v in values.items()},
        "malformed": MALFORMED,
    }
    (tmp_path / "fixtures.json").write_text(json.dumps(fixtures))
    run = subprocess.run(
        [NODE, "harness.js", "fixtures.json"],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)

    for name, value in values.items():
        if name in ("nan",):
            assert out["decoded"][name] == {"$float": "NaN"}
            continue
        assert out["decoded"][name] == _tag(value), name
        again = msgpack.unpackb(bytes.fromhex(out["encoded"][name]), raw=False, strict_map_key=True)
        assert again == value, name
    # byte for byte the same as Python's packing (smallest int/str/bin/array/map forms), except whole floats,
    # which JS cannot tell from ints (the protocol accepts ints for float fields) and float32
    exact = [n for n, v in values.items() if not _has_whole_float(v) and n not in ("float32", "nan")]
    assert len(exact) > 50
    assert {n: out["encoded"][n] for n in exact} == {n: packed[n].hex() for n in exact}
    assert out["refused"] == {name: "DecodeError" for name in MALFORMED}
    assert out["polluted"] is False

    limits = P.ProtocolLimits()
    decoded = {name: P.decode(bytes.fromhex(h), limits=limits) for name, h in out["messages"].items()}
    assert decoded["open"].image.mime == "image/png" and decoded["open"].lookahead == 0
    assert decoded["open"].settings == P.Settings("tiny-ltx2", 64, 64, 12.0, 17, 1, 3)
    assert decoded["open_resume"].resume_from == P.ResumeFrom(session_id="abcdefgh12")
    assert decoded["open_resume"].settings.overlap == 0 and decoded["open_resume"].lookahead == 1
    assert decoded["steer_cut"] == P.Steer(prompt="snow", request_id=1)
    assert decoded["steer_blend"] == P.Steer(
        prompt="snow", transition="blend", blend_segments=3, seed=2**63 - 1, request_id=2
    )
    assert decoded["snapshot"] == P.Snapshot(store=True, request_id=3)
    assert [decoded[k].type for k in ("pause", "resume", "stop")] == ["pause", "resume", "stop"]
    assert out["sniff"] == "image/png"
    assert out["target"] == {"url": "ws://h:1/ws", "protocols": ["ltx2stream", "bearer.tok.en_1"]}
    assert out["target_query"] == {"url": "ws://h:1/ws?token=a%2Fb%3Dc", "protocols": ["ltx2stream"]}


# ---- the page in headless Chromium -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A headless Chromium with DevTools on a free port; yields the page target's DevTools WebSocket URL."""
    with launch(tmp_path_factory.mktemp("chromium")) as url:
        yield url


class DevTools:
    """A minimal Chrome DevTools Protocol client: commands by id, events collected, page JS evaluation."""

    def __init__(self, ws: Any) -> None:
        self.ws, self.events, self._ids, self._waiting = ws, [], iter(range(1, 1 << 30)), {}
        self._reader = asyncio.create_task(self._read())
        self.port = 0  # the server's port, set by page_session

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in self.ws:
                message = json.loads(raw)
                future = self._waiting.pop(message.get("id"), None)
                if future is not None:
                    future.set_result(message)
                else:
                    self.events.append(message)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        request_id = next(self._ids)
        future = self._waiting[request_id] = asyncio.get_running_loop().create_future()
        await self.ws.send(json.dumps({"id": request_id, "method": method, "params": params}))
        reply = await asyncio.wait_for(future, 30)
        assert "error" not in reply, reply
        return reply["result"]

    async def evaluate(self, expression: str) -> Any:
        result = await self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    async def status(self) -> dict[str, Any] | None:
        return await self.evaluate("window.ltx2 ? window.ltx2.status() : null")

    async def wait_for(self, predicate: Any, what: str, timeout: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        status = None
        while time.monotonic() < deadline:
            status = await self.status()
            if status is not None and predicate(status):
                return status
            await asyncio.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; page status: {json.dumps(status)[:3000]}")

    def exceptions(self) -> list[str]:
        return [
            json.dumps(e["params"])[:500] for e in self.events if e.get("method") == "Runtime.exceptionThrown"
        ]


@pytest.fixture(scope="module")
def pipeline_host(tiny_cache):  # type: ignore[no-untyped-def]
    from ltx2stream.session.host import PipelineHost

    return PipelineHost(("tiny-ltx2",))


QUERY = urlencode(
    {
        "autostart": 1,
        "prompt": "a red fox in snow",
        "preset": "tiny-ltx2",
        "width": 64,
        "height": 64,
        "fps": 12,
        "frames": 17,
        "overlap": 1,
        "seed": 3,
        "lookahead": 0,
    }
)


@contextlib.asynccontextmanager
async def page_session(
    tmp_path: Path, chromium: str, host: Any, query: str = QUERY, **overrides: Any
) -> AsyncIterator[DevTools]:
    """A real server serving clients/web, and the Chromium page navigated to it with ``query`` (autostart)."""
    async with (
        running(tmp_path, host=host, web_root=WEB, **overrides) as (app, _),
        connect(chromium, max_size=None, compression=None) as ws,
    ):
        page = DevTools(ws)
        await page.call("Runtime.enable")
        page.port = app.port
        await page.call("Page.navigate", url=f"http://127.0.0.1:{app.port}/?{query}")
        yield page


@pytest.mark.slow
def test_page_plays_the_stream_and_a_steer_from_the_page_is_acknowledged_and_applied(
    tmp_path, chromium, pipeline_host
):
    """The page served at / opens a session (autostart), plays it through MSE (currentTime advances, buffered
    media grows as one range from 0), steers from its form (ack with an index, then that segment starts with the
    new prompt), and stops (final 'stopped', close 1000) without errors."""

    async def main() -> None:
        async with page_session(tmp_path, chromium, pipeline_host) as page:
            first = await page.wait_for(
                lambda s: s["lastDone"] is not None and s["player"]["currentTime"] > 0,
                "the first segment to play",
            )
            later = await page.wait_for(
                lambda s: (
                    s["player"]["currentTime"] > first["player"]["currentTime"] + 0.5
                    and s["player"]["buffered"]
                    and first["player"]["buffered"]
                    and s["player"]["buffered"][-1][1] > first["player"]["buffered"][-1][1]
                ),
                "playback to advance and the buffer to grow",
            )
            assert later["player"]["decodedFrames"] > 0 and later["player"]["mediaError"] is None

            await page.evaluate("""(() => {
                document.getElementById('steer-prompt').value = 'the fox looks up at falling snow';
                document.getElementById('steer-send').click(); })()""")
            acked = await page.wait_for(
                lambda s: s["steers"] and s["steers"][0]["appliesAt"] is not None, "steer_ack"
            )
            applies_at = acked["steers"][0]["appliesAt"]
            # (lastDone is polled after the ack arrived, so tiny fast segments may already have passed applies_at;
            # that the steer lands exactly at applies_at is checked on the segment itself below)
            assert isinstance(applies_at, int) and applies_at >= 1 and acked["lastDone"] >= 0
            applied = await page.wait_for(
                lambda s: s["steers"][0]["status"] != "scheduled", "the steer to apply"
            )
            assert applied["steers"][0]["status"] == "applied"
            segment = next(x for x in applied["segments"] if x["index"] == applies_at)
            assert segment["prompt"] == "the fox looks up at falling snow"

            await page.evaluate("document.getElementById('stop').click()")
            done = await page.wait_for(lambda s: s["finals"] and s["closes"], "final and close")
            assert done["finals"][0]["reason"] == "stopped" and done["closes"][0]["code"] == 1000
            assert done["state"] == "closed" and done["errors"] == []
            player = done["player"]
            assert player["errors"] == [] and player["mediaError"] is None
            assert len(player["buffered"]) == 1 and player["buffered"][0][0] == pytest.approx(0, abs=0.05)
            media = sum(x["duration"] for x in done["segments"] if x["duration"] is not None)
            assert player["buffered"][0][1] == pytest.approx(media, abs=0.1)
            assert page.exceptions() == []

            bad = QUERY.replace("frames=17", "frames=10")  # not 1 + 8k: refused before accepted
            await page.call("Page.navigate", url=f"http://127.0.0.1:{page.port}/?{bad}")
            refused = await page.wait_for(lambda s: s["closes"], "the refusal")
            assert [e["code"] for e in refused["errors"]] == ["protocol.out_of_range"]
            assert refused["errors"][0]["fatal"] and "frames" in refused["errors"][0]["message"]
            assert refused["closes"][0]["code"] == 4400 and refused["state"] == "failed"

    asyncio.run(main())


@pytest.mark.slow
def test_page_reconnects_after_a_lost_connection_and_resumes_on_one_timeline(
    tmp_path, chromium, pipeline_host
):
    """The page's socket drops mid-session: it reconnects by itself, the server resumes after the last delivered
    segment, and the player continues the same timeline (the partial segment is replaced; a short audio hole at
    the resume point is jumped)."""

    async def main() -> None:
        # close_timeout_s: how long a resume waits for the old connection's checkpoint
        # with a token: the page sends it (subprotocol bearer.<token>) on the first and the resumed connection
        query = f"{QUERY}&token=s3cret"
        async with page_session(
            tmp_path, chromium, pipeline_host, query, close_timeout_s=15.0, token="s3cret"
        ) as page:
            before = await page.wait_for(
                lambda s: s["lastDone"] is not None and s["lastDone"] >= 1, "two segments"
            )
            await page.evaluate("window.ltx2.page.conn.ws.close(3001, 'test: connection lost')")
            resumed = await page.wait_for(
                lambda s: len(s["closes"]) == 1 and s["state"] == "running" and s["lastDone"] >= 3,
                "the resumed session to deliver two more segments",
            )
            assert resumed["sessionId"] == before["sessionId"] and resumed["closes"][0]["code"] == 3001
            await page.evaluate("document.getElementById('stop').click()")
            done = await page.wait_for(lambda s: s["finals"] and len(s["closes"]) == 2, "final and close")
            assert done["finals"][0]["reason"] == "stopped" and done["errors"] == []
            player = done["player"]
            assert player["errors"] == [] and player["mediaError"] is None
            # the AAC frames the old connection's encoder still held are lost with it: at most a short audio
            # gap at the resume point, which the player jumps (the video continues without one)
            ranges = player["buffered"]
            assert ranges[0][0] == pytest.approx(0, abs=0.05) and len(ranges) <= 2
            assert all(b[0] - a[1] < 0.15 for a, b in itertools.pairwise(ranges))
            media = sum(x["duration"] for x in done["segments"] if x["duration"] is not None)
            assert ranges[-1][1] == pytest.approx(media, abs=0.1)
            assert [x["index"] for x in done["segments"]] == list(range(len(done["segments"])))
            # past the resume point: beyond the audio hole where there is one; where the resumed media joined
            # without one (one range), the resume point lies well inside it (two segments of four or more in)
            target = ranges[0][1] + 0.3 if len(ranges) > 1 else ranges[-1][1] - 0.3
            played = await page.wait_for(
                lambda s: s["player"]["currentTime"] > target, "playback past the resume point"
            )
            assert played["player"]["errors"] == [] and page.exceptions() == []

    asyncio.run(main())


# ---- the MSE player's policies under node, with fake MediaSource / SourceBuffer / video -----------------------

PLAYER_HARNESS = r"""
// Fakes: a SourceBuffer whose "media" is JSON {start, end} (seconds before timestampOffset), a quota in bytes,
// asynchronous updateend; a video element whose buffered ranges are the SourceBuffer's.
const enc = (o) => new TextEncoder().encode(JSON.stringify(o));
class Ranges {
  constructor(list) { this.list = list; this.length = list.length; }
  start(i) { return this.list[i][0]; }
  end(i) { return this.list[i][1]; }
}
function subtract(list, a, b) {
  const out = [];
  for (const [s, e] of list) {
    if (e <= a || s >= b) out.push([s, e]);
    else { if (s < a) out.push([s, a]); if (e > b) out.push([b, e]); }
  }
  return out;
}
function add(list, s, e) {
  const all = [...subtract(list, s, e), [s, e]].sort((x, y) => x[0] - y[0]);
  const out = [];
  for (const r of all) {
    if (out.length && r[0] <= out[out.length - 1][1] + 1e-9) out[out.length - 1][1] = Math.max(out[out.length - 1][1], r[1]);
    else out.push([...r]);
  }
  return out;
}
let pending = 0;  // timers the fakes scheduled and that have not fired yet
const later = (fn) => { pending++; setTimeout(() => { pending--; fn(); }, 1); };
class FakeSourceBuffer extends EventTarget {
  constructor() { super(); this.updating = false; this.timestampOffset = 0; this.mode = "segments"; this.ranges = [];
                  this.log = []; this.quota = Infinity; this.bytes = 0; }
  appendBuffer(data) {
    const m = JSON.parse(new TextDecoder().decode(data));
    const size = m.init ? 0 : (m.end - m.start);
    if (this.bytes + size > this.quota) { const e = new Error("quota"); e.name = "QuotaExceededError"; throw e; }
    this.updating = true;
    this.log.push(m.init ? ["init"] : ["append", m.start + this.timestampOffset, m.end + this.timestampOffset]);
    later(() => {
      if (!m.init) { this.ranges = add(this.ranges, m.start + this.timestampOffset, m.end + this.timestampOffset);
                     this.bytes += size; }
      this.updating = false; this.dispatchEvent(new Event("updateend"));
    });
  }
  remove(a, b) {
    this.updating = true;
    this.log.push(["remove", a, b]);
    later(() => {
      const before = this.ranges.reduce((n, [s, e]) => n + e - s, 0);
      this.ranges = subtract(this.ranges, a, b);
      this.bytes -= before - this.ranges.reduce((n, [s, e]) => n + e - s, 0);
      this.updating = false; this.dispatchEvent(new Event("updateend"));
    });
  }
  changeType() {}
}
class FakeMediaSource extends EventTarget {
  static isTypeSupported() { return true; }
  constructor() { super(); this.readyState = "closed"; this.sourceBuffers = []; this.duration = Infinity;
                  later(() => { this.readyState = "open"; this.dispatchEvent(new Event("sourceopen")); }); }
  addSourceBuffer() { const sb = new FakeSourceBuffer(); this.sourceBuffers.push(sb); return sb; }
  endOfStream() { this.readyState = "ended"; }
}
class FakeVideo extends EventTarget {
  constructor() { super(); this.currentTime = 0; this.paused = true; this.ended = false; this.readyState = 4;
                  this.muted = false; this.error = null; this.source = null; }
  set src(url) { this.source = objects.get(url); }
  get buffered() { const sb = this.source && this.source.sourceBuffers[0]; return new Ranges(sb ? sb.ranges : []); }
  play() { this.paused = false; return Promise.resolve(); }
}
const objects = new Map();
let nextUrl = 0;
globalThis.window = globalThis;
globalThis.MediaSource = FakeMediaSource;
globalThis.HTMLMediaElement = { HAVE_FUTURE_DATA: 3 };
URL.createObjectURL = (o) => { const u = `blob:${nextUrl++}`; objects.set(u, o); return u; };
URL.revokeObjectURL = (u) => objects.delete(u);

const { MsePlayer } = await import("./player.js");
// settled: every timer the fakes scheduled has fired and the player scheduled no new one (events, not a delay)
const settle = async () => {
  for (let quiet = 0; quiet < 3;) {
    await new Promise((r) => setTimeout(r, 1));
    quiet = pending === 0 ? quiet + 1 : 0;
  }
};
const results = {};
const frag = (segment, t0, duration, last = true) =>
  ({ segment, t0, duration, last, data: enc({ start: t0, end: t0 + duration }) });

{ // order, resume rebase (partial segment dropped), end of stream
  const v = new FakeVideo();
  const p = new MsePlayer(v, { catchUp: false });
  p.beginConnection(null);
  p.init("video/mp4", enc({ init: true }));
  p.media(frag(0, 0, 1)); p.media(frag(1, 1, 1)); p.media(frag(2, 2, 0.5, false));
  await settle();
  const sb = v.source.sourceBuffers[0];
  const first = JSON.parse(JSON.stringify(sb.ranges));
  p.beginConnection(1);                        // resumed after segment 1: segment 2 comes again, from t0 = 0
  p.init("video/mp4", enc({ init: true }));
  p.media(frag(2, 0, 1)); p.media(frag(3, 1, 1));
  p.end();
  await settle();
  results.resume = { first, ranges: sb.ranges, log: sb.log, offset: sb.timestampOffset, playing: !v.paused,
                     ready: v.source.readyState, segStart: [...p.segStart.entries()] };
}
{ // quota: evict behind the playhead at a keyframe, retry; nothing evictable -> wait for the playhead
  const v = new FakeVideo();
  const p = new MsePlayer(v, { catchUp: false, keepBehindS: 1000 });
  p.beginConnection(null);
  p.init("video/mp4", enc({ init: true }));
  for (let i = 0; i < 4; i++) p.media(frag(i, i, 1));
  await settle();
  const sb = v.source.sourceBuffers[0];
  sb.quota = 4;
  v.currentTime = 2.5;
  p.media(frag(4, 4, 1));                      // full: remove [0, 1) (the keyframe at or before 2.5 - 1), retry
  await settle();
  const evicted = { ranges: sb.ranges, log: sb.log.slice(-2), stats: { ...p.stats } };
  v.currentTime = 2.5; sb.quota = 3;
  p.media(frag(5, 5, 1));                      // full again, nothing before the keyframe at 1: wait
  await settle();
  const waited = { ranges: sb.ranges, waiting: p.waitingForRoom };
  v.currentTime = 4.2; v.dispatchEvent(new Event("timeupdate"));   // playhead moved: evict to 3, append
  await settle();
  results.quota = { evicted, waited, ranges: sb.ranges, stats: { ...p.stats, errors: undefined } };
}
{ // catch-up to the live edge; gap jump near a range end; trimming far behind
  const v = new FakeVideo();
  const p = new MsePlayer(v, { catchUp: true, maxLagS: 10, targetLagS: 1, keepBehindS: 5 });
  p.beginConnection(null);
  p.init("video/mp4", enc({ init: true }));
  for (let i = 0; i < 20; i++) p.media(frag(i, 2 * i, 2));
  await settle();
  const caughtUp = v.currentTime;
  v.source.sourceBuffers[0].ranges = [[0, 2], [2.08, 40]];
  v.currentTime = 1.95; v.readyState = 2;
  p.jumpGap();
  const jumped = v.currentTime;
  v.currentTime = 1.0; p.jumpGap();
  const stayed = v.currentTime;
  v.readyState = 4; v.currentTime = 39; v.source.sourceBuffers[0].ranges = [[0, 40]];
  p.media(frag(20, 40, 2));
  await settle();
  results.policy = { caughtUp, jumped, stayed, ranges: v.source.sourceBuffers[0].ranges, stats: { ...p.stats } };
}
process.stdout.write(JSON.stringify(results));
process.exit(0);
"""


@pytest.mark.slow
@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_player_queue_resume_quota_catch_up_and_gaps_with_fake_mse(tmp_path: Path) -> None:
    """player.js with fake MediaSource/SourceBuffer/video under node: init before media, a resumed connection
    drops the partial segment and continues at the resumed segment's end (timestampOffset), QuotaExceededError
    evicts behind the playhead at a keyframe and retries (or waits for the playhead), the player catches up to
    the live edge, jumps a hole near a range end, and trims media far behind."""
    shutil.copy(WEB / "player.js", tmp_path / "player.js")
    (tmp_path / "package.json").write_text('{"type": "module"}')
    (tmp_path / "harness.js").write_text(PLAYER_HARNESS)
    run = subprocess.run(
        [NODE, "harness.js"], check=False, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)

    resume = out["resume"]
    assert resume["first"] == [[0, 2.5]] and resume["log"][0] == ["init"]
    assert ["remove", 2, None] in resume["log"]  # Infinity is null in JSON
    assert resume["offset"] == 2 and resume["ranges"] == [[0, 4]]
    assert resume["log"][-2:] == [["append", 2, 3], ["append", 3, 4]]
    assert resume["playing"] and resume["ready"] == "ended"
    assert resume["segStart"] == [[0, 0], [1, 1], [2, 2], [3, 3]]

    quota = out["quota"]
    assert quota["evicted"]["log"] == [["remove", 0, 1], ["append", 4, 5]]
    assert quota["evicted"]["ranges"] == [[1, 5]]
    assert quota["waited"] == {"ranges": [[1, 5]], "waiting": True}
    assert quota["ranges"] == [[3, 6]]
    assert quota["stats"]["quotaErrors"] == 3 and quota["stats"]["evictions"] == 2

    policy = out["policy"]
    # media arrives 40 s at once; whenever the lag passed 10 s the playhead jumped to 1 s behind the newest end
    assert 30 <= policy["caughtUp"] < 40 and policy["caughtUp"] % 2 == 1
    assert policy["jumped"] == pytest.approx(2.09) and policy["stayed"] == 1.0
    # trimmed at keyframes (segment starts, every 2 s) far behind the playhead: without trimming the range would
    # start at 0; when the last trim ran depends on where catch-up left the playhead, so only the bounds are fixed
    ((start, end),) = policy["ranges"]
    assert end == 42 and start % 2 == 0 and 39 - 5 - 10 - 2 <= start <= 39 - 5
    assert policy["stats"]["catchUps"] >= 1 and policy["stats"]["gapJumps"] == 1


@pytest.mark.slow
def test_page_prefills_its_form_from_the_servers_presets(tmp_path, chromium):  # type: ignore[no-untyped-def]
    """Without a preset in the query, the page takes the served preset and its defaults from GET /presets."""
    from server_doubles import ToyHost

    async def main() -> None:
        async with page_session(tmp_path, chromium, ToyHost(presets=("tiny-ltx2",)), query="") as page:
            deadline = time.monotonic() + 30
            values: dict[str, Any] = {}
            while time.monotonic() < deadline:
                values = (
                    await page.evaluate(
                        "({preset: document.getElementById('preset')?.value, width: document.getElementById('width')"
                        "?.value, frames: document.getElementById('frames')?.value, overlap: document"
                        ".getElementById('overlap')?.value})"
                    )
                    or {}
                )
                if values.get("preset") == "tiny-ltx2":
                    break
                await asyncio.sleep(0.2)
            assert values == {"preset": "tiny-ltx2", "width": "64", "frames": "17", "overlap": "1"}

    asyncio.run(main())
