"""The documented fleet on loopback: Debian's redis-server and haproxy (deploy/haproxy.cfg as shipped) in front of
three ``ltx2stream serve --store redis://…`` replicas. Twelve sessions spread over the replicas; one replica gets
SIGTERM mid-session (drain: checkpoint, close 1001), another ``kill -9``; every session resumes by id through
HAProxy on a survivor and continues, no segment index is skipped, and every state stored after a segment (the
carried latents) equals the uninterrupted one-process run's. Every process is stopped at the end."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
import torch
from fleet import ROOT, http_get, start_serve, stop, wait_ready
from redis_server import free_port, redis_server, wait_port
from websockets.exceptions import InvalidHandshake, InvalidStatus

from ltx2stream import protocol as P
from ltx2stream.client import StreamClient
from ltx2stream.errors import SessionError
from ltx2stream.session.api import NullSink, SegmentRequest, SessionSettings
from ltx2stream.session.host import PipelineHost
from ltx2stream.session.state import SerializedState
from ltx2stream.session.store_redis import RedisSessionStore

PRESET, PROMPT, SESSIONS, REPLICAS = "tiny-ltx2-one-stage", "a red ball bouncing", 12, 3
RETRYABLE = {"session.busy", "server.shutdown", "server.queue_full", "client.closed", "store.unavailable"}


def _settings(i: int) -> P.Settings:
    return P.Settings(preset=PRESET, width=64, height=64, fps=12.0, frames=9, overlap=1, seed=100 + i)


async def _resume(client: StreamClient, last: int | None, deadline_s: float = 120.0) -> None:
    """Reconnect by id through the proxy until a replica accepts (busy while a dead replica's lease runs out)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while True:
        try:
            await client.reconnect(segment_index=last)
        except SessionError as e:
            if e.code == "session.segment_not_found":  # killed before it stored the last segment: latest
                last = None
            elif e.code not in RETRYABLE or loop.time() > end:
                raise
        except (OSError, InvalidHandshake, InvalidStatus, TimeoutError):
            if loop.time() > end:
                raise
        else:
            return
        await asyncio.sleep(0.5)


async def _session(
    i: int, url: str, first: asyncio.Event, killed: asyncio.Event, out: dict[int, Any]
) -> None:
    client = StreamClient(url)
    await client.open(PROMPT, _settings(i))
    got: set[int] = set()
    target: int | None = None
    reconnects = 0
    while True:
        async for msg in client.events():
            if isinstance(msg, P.SegmentDone):
                got.add(msg.index)
                first.set()
            if killed.is_set() and target is None and got:
                target = max(got) + 2  # at least one segment after any resume
            if target is not None and got and max(got) >= target:
                break
        if target is not None and got and max(got) >= target:
            break
        reconnects += 1
        await _resume(client, max(got) if got else None)
    await client.stop()
    async for _ in client.events():
        pass
    await client.close()
    out[i] = (client.session_id, sorted(got), reconnects)


def _sessions_on(port: int) -> int:
    status, text = http_get(port, "/metrics")
    assert status == 200
    found = re.findall(r'^ltx2stream_sessions\{state="(?:active|queued)"\} ([0-9.]+)$', text, re.MULTILINE)
    return int(sum(float(v) for v in found))


async def _run_fleet(proxy: int, ports: list[int], procs: list[subprocess.Popen[bytes]]) -> dict[int, Any]:
    url = f"ws://127.0.0.1:{proxy}/"
    firsts = [asyncio.Event() for _ in range(SESSIONS)]
    killed = asyncio.Event()
    out: dict[int, Any] = {}
    tasks = [asyncio.create_task(_session(i, url, firsts[i], killed, out)) for i in range(SESSIONS)]
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in firsts)), 600)
    spread = [await asyncio.to_thread(_sessions_on, p) for p in ports]
    assert sum(spread) == SESSIONS and all(n > 0 for n in spread), spread
    os.killpg(procs[0].pid, signal.SIGTERM)  # drain
    os.killpg(procs[1].pid, signal.SIGKILL)  # crash
    killed.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 1200)
    out[-1] = spread
    return out


def _reference(seed: int, last: int) -> dict[int, dict[str, torch.Tensor]]:
    host = PipelineHost((PRESET,))
    gen = host.open_session(SessionSettings(PRESET, 64, 64, 12.0, 9, 1, seed))
    states = {}
    for k in range(last + 1):
        gen.run_segment(SegmentRequest(k, PROMPT, seed + k), NullSink())
        states[k] = dict(SerializedState.from_bytes(gen.snapshot()).tensors)
    return states


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_fleet_survives_drain_and_crash(tmp_path: Path) -> None:
    haproxy = shutil.which("haproxy")
    if haproxy is None:
        pytest.skip("haproxy is not installed (apt-get install haproxy)")
    from ltx2stream.models.tiny import ensure_tiny_model

    ensure_tiny_model("ltx2")  # written once, before three replicas read the shared cache
    with redis_server(tmp_path) as redis_url:
        ports = [free_port() for _ in range(REPLICAS)]
        proxy = free_port()
        args = ["--preset", PRESET, "--store", redis_url, "--lease-ttl", "3", "--max-active", "6"]
        procs = [
            start_serve(p, args + ["--device", "cpu"], tmp_path / f"r{i}.log") for i, p in enumerate(ports)
        ]
        env = {**os.environ, "LTX2_BIND": f"127.0.0.1:{proxy}"}
        env |= {f"LTX2_R{i + 1}": f"127.0.0.1:{p}" for i, p in enumerate(ports)}
        lb = subprocess.Popen(
            [haproxy, "-db", "-f", str(ROOT / "deploy" / "haproxy.cfg")],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "haproxy.log").open("ab"),
            start_new_session=True,
        )
        try:
            for p, proc in zip(ports, procs, strict=True):
                wait_ready(p, proc, 1500)  # three replicas load and warm up at once
            wait_port(proxy)
            out = asyncio.run(_run_fleet(proxy, ports, procs))
        finally:
            for proc in procs:
                stop(proc)
            stop(lb)
        assert all(proc.poll() is not None for proc in [*procs, lb])
        spread = out.pop(-1)
        store = RedisSessionStore(redis_url)
        moved = 0
        for i, (sid, got, reconnects) in sorted(out.items()):
            assert got == list(range(len(got))), f"session {i}: segments {got} (a gap: something was lost)"
            moved += reconnects > 0
            stored = [s.segment_index for s in store.list(sid)]
            assert stored and stored[-1] >= got[-1], (i, stored, got)
            want = _reference(100 + i, stored[-1])
            for k in stored:
                state = store.load(sid, k).tensors
                for name, tensor in want[k].items():
                    assert torch.equal(state[name], tensor), f"session {i} segment {k} {name} differs"
        assert moved >= spread[0] + spread[1], (moved, spread)  # every session of both victims resumed
        store.close()
