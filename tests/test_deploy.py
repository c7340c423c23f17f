"""The documented fleet on loopback: Debian's redis-server and haproxy (deploy/haproxy.cfg as shipped) in front of
three ``ltx2stream serve --store redis://…`` replicas. Twelve sessions spread over the replicas; one replica gets
SIGTERM mid-session (drain: checkpoint, close 1001), another ``kill -9``; every session resumes by id through
HAProxy on a survivor and continues, no segment index is skipped, and every state stored after a segment (the
carried latents) equals the uninterrupted one-process run's. Every process is stopped at the end."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from fleet import ROOT, http_get, ready_budget_s, start_serve, stop, wait_ready
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
FRAMES, OVERLAP = 17, 1  # three latent frames, one carried into the next segment
RETRYABLE = {"session.busy", "server.shutdown", "server.queue_full", "client.closed", "store.unavailable"}
ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # replicas and reference alike: the same GEMM splits, bit-equal results


def _settings(i: int) -> P.Settings:
    return P.Settings(
        preset=PRESET, width=64, height=64, fps=12.0, frames=FRAMES, overlap=OVERLAP, seed=100 + i
    )


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
    i: int, url: str, first: asyncio.Event, killed: asyncio.Event
) -> tuple[str, list[int], int]:
    """One client: stream, reconnect by id whenever the connection ends, stop two segments after the kills.
    Returns (session id, segment indices received, reconnects); a non-retryable server error fails it."""
    client = StreamClient(url)
    await client.open(PROMPT, _settings(i))
    got: set[int] = set()
    target: int | None = None
    reconnects = 0
    while target is None or not got or max(got) < target:
        async for msg in client.events():
            if isinstance(msg, P.Error) and not msg.retryable:
                raise SessionError(f"session {i}: {msg.message}", code=msg.code)
            if isinstance(msg, P.SegmentDone):
                got.add(msg.index)
                first.set()
            if killed.is_set() and target is None and got:
                target = max(got) + 2  # at least one segment after any resume
            if target is not None and got and max(got) >= target:
                break
        else:
            reconnects += 1
            await _resume(client, max(got) if got else None)
    await client.stop()
    async for _ in client.events():
        pass
    await client.close()
    assert client.session_id is not None
    return client.session_id, sorted(got), reconnects


def _sessions_on(port: int) -> int:
    status, text = http_get(port, "/metrics")
    assert status == 200
    found = re.findall(r'^ltx2stream_sessions\{state="(?:active|queued)"\} ([0-9.]+)$', text, re.MULTILINE)
    return int(sum(float(v) for v in found))


async def _until(events: list[asyncio.Event], tasks: list[asyncio.Task[Any]], timeout_s: float) -> None:
    """Until every event is set; a session task that fails meanwhile is raised at once (not after the timeout)."""
    waiting = asyncio.ensure_future(asyncio.gather(*(e.wait() for e in events)))
    done, _ = await asyncio.wait([waiting, *tasks], timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    for task in done:
        if task is not waiting:
            task.result()  # raises the session's error (a task cannot end cleanly before the kills)
    if waiting not in done:
        waiting.cancel()
        raise TimeoutError(
            f"{sum(not e.is_set() for e in events)} session(s) without a segment after {timeout_s} s"
        )


async def _run_fleet(
    proxy: int, ports: list[int], procs: list[subprocess.Popen[bytes]]
) -> tuple[list[tuple[str, list[int], int]], list[int]]:
    url = f"ws://127.0.0.1:{proxy}/"
    firsts = [asyncio.Event() for _ in range(SESSIONS)]
    killed = asyncio.Event()
    tasks = [asyncio.create_task(_session(i, url, firsts[i], killed)) for i in range(SESSIONS)]
    try:
        await _until(firsts, tasks, 600)
        spread = [await asyncio.to_thread(_sessions_on, p) for p in ports]
        assert sum(spread) == SESSIONS and all(n > 0 for n in spread), spread
        os.killpg(procs[0].pid, signal.SIGTERM)  # drain
        os.killpg(procs[1].pid, signal.SIGKILL)  # crash
        killed.set()
        results = await asyncio.wait_for(asyncio.gather(*tasks), 1200)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return results, spread


def _wait_all_up(stats: int, timeout_s: float) -> None:
    """Until HAProxy's own health checks have every replica UP (``rise 2`` checks after /readyz turned 200):
    sessions opened before that would all land on the replicas HAProxy saw first."""
    deadline = time.monotonic() + timeout_s
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            status, text = http_get(stats, "/stats;csv")
            rows = [line.split(",") for line in text.splitlines() if line.startswith("replicas,r")]
            states = {row[1]: row[17] for row in rows}  # svname, status
            if status == 200 and len(states) == REPLICAS and set(states.values()) == {"UP"}:
                return
        time.sleep(0.25)
    raise TimeoutError(f"HAProxy does not see every replica UP after {timeout_s} s: {states}")


def _reference(seed: int, last: int) -> dict[int, dict[str, torch.Tensor]]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        host = PipelineHost((PRESET,))
        gen = host.open_session(SessionSettings(PRESET, 64, 64, 12.0, FRAMES, OVERLAP, seed))
        states = {}
        for k in range(last + 1):
            gen.run_segment(SegmentRequest(k, PROMPT, seed + k), NullSink())
            states[k] = dict(SerializedState.from_bytes(gen.snapshot()).tensors)
        return states
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_fleet_survives_drain_and_crash(tmp_path: Path) -> None:
    haproxy = shutil.which("haproxy")
    if haproxy is None:
        pytest.skip("haproxy is not installed (apt-get install haproxy)")
    from ltx2stream.models.tiny import ensure_tiny_model

    ensure_tiny_model("ltx2")  # written once, before three replicas read the shared cache
    with redis_server(tmp_path) as redis_url:
        ports = [free_port() for _ in range(REPLICAS)]
        proxy, stats = free_port(), free_port()
        args = ["--preset", PRESET, "--store", redis_url, "--lease-ttl", "3", "--max-active", "6"]
        procs = [
            start_serve(p, [*args, "--device", "cpu"], tmp_path / f"r{i}.log", env=ONE_THREAD)
            for i, p in enumerate(ports)
        ]
        env = {**os.environ, "LTX2_BIND": f"127.0.0.1:{proxy}", "LTX2_STATS": f"127.0.0.1:{stats}"}
        env |= {f"LTX2_R{i + 1}": f"127.0.0.1:{p}" for i, p in enumerate(ports)}
        lb = subprocess.Popen(
            [haproxy, "-db", "-f", str(ROOT / "deploy" / "haproxy.cfg")],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "haproxy.log").open("ab"),
            start_new_session=True,
        )
        try:
            budget = ready_budget_s(REPLICAS)  # three replicas load and warm up at once
            for p, proc in zip(ports, procs, strict=True):
                wait_ready(p, proc, budget)
            wait_port(proxy)
            _wait_all_up(stats, 60)
            results, spread = asyncio.run(_run_fleet(proxy, ports, procs))
        finally:
            for proc in procs:
                stop(proc)
            stop(lb)
        assert all(proc.poll() is not None for proc in [*procs, lb])
        store = RedisSessionStore(redis_url)
        moved = 0
        for i, (sid, got, reconnects) in enumerate(results):
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
