"""Soak: many bad frames and aborted connections against one live server while a healthy session streams.

    .venv/bin/python bench/soak/soak.py [--frames 10000] [--aborts 150] [--seed 0] [--preset tiny-ltx2]

One in-process server (real ``PipelineHost`` on the tiny preset, real encoder, a temp store) on a loopback port.
After a warm-up round (so thread pools and caches exist) the process's RSS, thread count and open file
descriptors are taken as the baseline. A witness session then streams while

* ``--frames`` generated frames are sent (seeded: random msgpack values, maps with a known ``type`` and random
  fields, valid messages with one field replaced, truncated and bit-flipped messages, garbage bytes, text
  frames), half as the first frame of a connection, half inside a running session; every answer must be an
  ``error`` with a code of the docs/protocol.md table and, when fatal, the table's close code;
* ``--aborts`` connections are dropped without a closing handshake: after the TCP connect, after the upgrade,
  after ``accepted``, and mid-stream.

Then, with every attacker gone: the witness must have no error and contiguous segments; RSS may grow by at
most --max-rss-mib, threads by --max-threads, descriptors by --max-fds over the baseline. Prints the figures and
exits non-zero on any failure. Takes a few minutes on a busy 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import re
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import msgpack
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from ltx2stream import protocol as P
from ltx2stream.codes import error_spec

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTED = set(
    re.findall(r"^\| `([a-z_.0-9]+)` \| \d+ `", (ROOT / "docs" / "protocol.md").read_text(), re.MULTILINE)
)
CLIENT = P.ProtocolLimits.for_client()


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def usage() -> tuple[float, int, int]:
    gc.collect()
    return rss_mib(), threading.active_count(), fds()


def inventory() -> tuple[list[str], list[str]]:
    """Thread names and descriptor targets (printed when they grew, to say what grew)."""
    targets = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            targets.append(re.sub(r"\[\d+\]", "[]", os.readlink(f"/proc/self/fd/{fd}")))
    return sorted(re.sub(r"\d+", "N", t.name) for t in threading.enumerate()), sorted(targets)


# ---- generated frames -------------------------------------------------------------------------------------


class Frames:
    """Seeded bad frames (the soak's counterpart of tests/test_reliability_fuzz.py's strategies)."""

    def __init__(self, seed: int, settings: P.Settings) -> None:
        self.rng = random.Random(seed)
        self.valid = [
            P.encode(P.Open(protocol_version=1, settings=settings, prompt="attacker", lookahead=0)),
            P.encode(P.Steer(prompt="rain", transition="blend", blend_segments=2, request_id=3)),
            P.encode(P.Snapshot(store=False, request_id=9)),
            P.encode(P.Pause()),
            P.encode(P.Resume()),
        ]

    def value(self, depth: int = 0) -> Any:
        r = self.rng
        kind = r.randrange(8 if depth < 3 else 6)
        if kind == 0:
            return None
        if kind == 1:
            return r.choice([True, False])
        if kind == 2:
            return r.choice([0, -1, 1, 2**31, 2**63 - 1, -(2**63), 2**64 - 1, r.randrange(-1000, 1000)])
        if kind == 3:
            return r.choice([0.0, -0.0, float("nan"), float("inf"), 1e308, r.random() * 100])
        if kind == 4:
            return "".join(chr(r.randrange(32, 0x2FF)) for _ in range(r.randrange(0, 20)))
        if kind == 5:
            return r.randbytes(r.randrange(0, 40))
        if kind == 6:
            return [self.value(depth + 1) for _ in range(r.randrange(0, 5))]
        return {str(self.value(depth + 1))[:8]: self.value(depth + 1) for _ in range(r.randrange(0, 5))}

    def frame(self) -> bytes | str:
        r = self.rng
        kind = r.randrange(6)
        if kind == 0:
            return msgpack.packb(self.value(), use_bin_type=True)
        if kind == 1:
            fields = {"type": r.choice(sorted(P.MESSAGE_TYPES) + ["dance", ""])}
            names = ["prompt", "settings", "request_id", "store", "seed", "transition", "blend_segments", "x"]
            fields.update({r.choice(names): self.value() for _ in range(r.randrange(0, 4))})
            return msgpack.packb(fields, use_bin_type=True)
        if kind == 2:
            fields = msgpack.unpackb(r.choice(self.valid), raw=False)
            fields[r.choice(sorted(fields))] = self.value()
            return msgpack.packb(fields, use_bin_type=True)
        if kind == 3:
            data = bytearray(r.choice(self.valid))
            if r.random() < 0.5:
                return bytes(data[: r.randrange(len(data))])
            for _ in range(r.randrange(1, 4)):
                data[r.randrange(len(data))] ^= r.randrange(1, 256)
            return bytes(data)
        if kind == 4:
            return r.randbytes(r.randrange(0, 64))
        return "".join(chr(r.randrange(32, 127)) for _ in range(r.randrange(0, 64)))


# ---- the server -------------------------------------------------------------------------------------------


class Server:
    def __init__(self, preset: str, store: Path) -> None:
        from ltx2stream.server.app import StreamingServer
        from ltx2stream.server.config import ServerConfig
        from ltx2stream.session.host import PipelineHost

        config = ServerConfig(
            port=0, store_dir=store, web_root=None, max_active_per_worker=8, open_timeout_s=5.0
        )
        self.app = StreamingServer(config, lambda: PipelineHost((preset,)))
        self.loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        started = threading.Event()

        async def main() -> None:
            await self.app.start()
            started.set()
            await self._stop.wait()
            await self.app.shutdown()

        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(main(),), daemon=True)
        self.thread.start()
        assert started.wait(60)
        while not self.app.ready:
            time.sleep(0.1)
        self.url = f"ws://127.0.0.1:{self.app.port}/ws"

    def settle(self, timeout: float = 60.0) -> None:
        """Wait until only the witness is left (sessions and connections), plus the open timeout's worth."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.app.sessions) <= 1 and self.app.metrics.connections.value() <= 1:
                break
            time.sleep(0.1)
        time.sleep(1.0)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(60)


def _decode(data: bytes | str) -> P.Message:
    assert isinstance(data, bytes), "text frame from the server"
    return P.decode(data, limits=CLIENT)


class Checker:
    def __init__(self) -> None:
        self.errors: dict[str, int] = {}
        self.problems: list[str] = []

    def error(self, msg: P.Message, ws: ClientConnection | None = None) -> None:
        if not isinstance(msg, P.Error) or msg.code not in DOCUMENTED:
            self.problems.append(f"undocumented answer {msg!r}"[:300])
            return
        self.errors[msg.code] = self.errors.get(msg.code, 0) + 1

    def close_code(self, ws: ClientConnection, code: str) -> None:
        expected = int(error_spec(code).close_code)
        if ws.close_code != expected:
            self.problems.append(f"{code}: close {ws.close_code}, table says {expected}")


def first_frame(url: str, frame: bytes | str, check: Checker) -> None:
    with connect(url, max_size=CLIENT.max_message_bytes) as ws:
        ws.send(frame)
        received: list[P.Message] = []
        with contextlib.suppress(ConnectionClosed, TimeoutError):
            while True:
                received.append(_decode(ws.recv(10)))
                if received[0].type == "accepted":
                    return
    errors = [m for m in received if m.type == "error"]
    if not errors:
        check.problems.append(f"no error for a refused first frame {frame[:40]!r}")
        return
    check.error(errors[-1])
    check.close_code(ws, errors[-1].code)


def in_session(url: str, frames: list[bytes | str], opener: bytes, check: Checker) -> None:
    ws: ClientConnection | None = None
    for i, frame in enumerate(frames):
        if ws is None:
            ws = connect(url, max_size=CLIENT.max_message_bytes)
            ws.send(opener)
            if _decode(ws.recv(30)).type != "accepted":
                check.problems.append("attacker session refused")
                return
        probe = 2_000_000 + i
        try:
            ws.send(frame)
            ws.send(P.encode(P.Snapshot(request_id=probe)))
            while True:
                msg = _decode(ws.recv(30))
                if msg.type == "error":
                    check.error(msg)
                    if msg.fatal or msg.request_id == probe:
                        break
                if (msg.type == "snapshot_result" and msg.request_id == probe) or msg.type == "final":
                    break
        except (ConnectionClosed, TimeoutError):
            pass
        if (msg.type == "error" and msg.fatal) or msg.type == "final":
            with contextlib.suppress(ConnectionClosed, TimeoutError):
                while True:
                    ws.recv(10)
            if msg.type == "error":
                check.close_code(ws, msg.code)
            ws = None
    if ws is not None:
        ws.close()


def abort(url: str, port: int, opener: bytes, how: int) -> None:
    """Drop a connection without a closing handshake at one of four points."""
    if how == 0:
        sock = socket.create_connection(("127.0.0.1", port))
        sock.close()
        return
    ws = connect(url, max_size=CLIENT.max_message_bytes)
    if how >= 2:
        ws.send(opener)
        ws.recv(30)  # accepted
    if how == 3:
        for _ in range(3):
            with contextlib.suppress(TimeoutError):
                ws.recv(0.2)
    ws.socket.shutdown(socket.SHUT_RDWR)
    ws.socket.close()


def run_attack(args: argparse.Namespace) -> int:
    """Child mode: send the frames and drop the connections, print the checker's findings as JSON."""
    url, port = args.attack, int(args.attack.rsplit(":", 1)[1].split("/")[0])
    settings = P.Settings(preset=args.preset, width=64, height=64, fps=12.0, frames=17, overlap=1, seed=5)
    opener = P.encode(P.Open(protocol_version=1, settings=settings, prompt="attacker", lookahead=0))
    frames, check = Frames(args.seed, settings), Checker()
    half = args.frames // 2
    for i in range(half):
        first_frame(url, frames.frame(), check)
        if i and i % 1000 == 0:
            print(f"first frames: {i}/{half}", file=sys.stderr, flush=True)
    in_session(url, [frames.frame() for _ in range(args.frames - half)], opener, check)
    for i in range(args.aborts):
        abort(url, port, opener, i % 4)
    print(json.dumps({"errors": check.errors, "problems": check.problems}))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=10_000)
    ap.add_argument("--aborts", type=int, default=150)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--preset", default="tiny-ltx2")
    ap.add_argument("--max-rss-mib", type=float, default=64.0)
    ap.add_argument("--max-threads", type=int, default=2)
    ap.add_argument("--max-fds", type=int, default=8)
    ap.add_argument("--attack", metavar="URL", help=argparse.SUPPRESS)  # child mode: the attacking clients
    args = ap.parse_args()
    if args.attack:
        return run_attack(args)
    import torch

    torch.set_num_threads(2)
    settings = P.Settings(preset=args.preset, width=64, height=64, fps=12.0, frames=17, overlap=1, seed=5)
    check = Checker()
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        server = Server(args.preset, Path(tmp))
        url = server.url
        witness = connect(url, max_size=CLIENT.max_message_bytes)
        witness.send(P.encode(P.Open(protocol_version=1, settings=settings, prompt="the witness")))
        seen: list[P.Message] = []

        def read() -> None:
            with contextlib.suppress(ConnectionClosed, TimeoutError):
                while True:
                    seen.append(_decode(witness.recv(120)))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()

        def attack(n_frames: int, n_aborts: int, seed: int) -> None:
            """The attacking clients run in a child process, so this process's figures are the server's."""
            cmd = [
                sys.executable,
                __file__,
                "--attack",
                url,
                "--frames",
                str(n_frames),
                "--aborts",
                str(n_aborts),
            ]
            out = subprocess.run([*cmd, "--seed", str(seed)], capture_output=True, text=True, check=False)
            result = json.loads(out.stdout.strip().splitlines()[-1]) if out.stdout.strip() else {}
            if out.returncode != 0 or not result:
                check.problems.append(f"attacker failed: {out.stderr[-500:]}")
            for code, n in result.get("errors", {}).items():
                check.errors[code] = check.errors.get(code, 0) + n
            check.problems += result.get("problems", [])
            server.settle()

        attack(
            max(args.frames // 20, 40), 8, args.seed + 1
        )  # warm-up: pools, caches and buffers reach their working size
        base, base_inv = usage(), inventory()
        attack(args.frames, args.aborts, args.seed)
        half = args.frames // 2
        after, after_inv = usage(), inventory()
        witness.send(P.encode(P.Stop()))
        reader.join(120)
        server.close()

    done = [m.index for m in seen if m.type == "segment_done"]
    witness_errors = [m for m in seen if m.type == "error"]
    if witness_errors or done != list(range(len(done))) or not done:
        check.problems.append(f"witness: errors {witness_errors[:2]}, segments {done}")
    growth = (after[0] - base[0], after[1] - base[1], after[2] - base[2])
    if growth[0] > args.max_rss_mib or growth[1] > args.max_threads or growth[2] > args.max_fds:
        check.problems.append(
            f"resources grew: rss {growth[0]:+.1f} MiB, threads {growth[1]:+d}, fds {growth[2]:+d}"
        )
    print(
        f"\nframes {args.frames} ({half} first-frame, {args.frames - half} in-session), aborted {args.aborts}, "
        f"{time.perf_counter() - t_start:.0f} s, load {os.getloadavg()[0]:.2f}"
    )
    print("errors by code: " + ", ".join(f"{k} {v}" for k, v in sorted(check.errors.items())))
    print(
        f"baseline rss {base[0]:.1f} MiB, threads {base[1]}, fds {base[2]}; after rss {after[0]:.1f} MiB, "
        f"threads {after[1]}, fds {after[2]}"
    )
    print(f"witness: {len(done)} segments, {len(witness_errors)} errors")
    if check.problems:
        for name, b, a in (("threads", base_inv[0], after_inv[0]), ("fds", base_inv[1], after_inv[1])):
            grew = {x: a.count(x) - b.count(x) for x in set(a) if a.count(x) > b.count(x)}
            print(f"{name} grown: {grew}")
    for problem in check.problems[:20]:
        print("PROBLEM", problem)
    return 1 if check.problems else 0


if __name__ == "__main__":
    sys.exit(main())
