"""``kill -9`` loses at most the segment in flight: a real ``ltx2stream serve`` subprocess on the embedded tiny
LTX-2 model is killed during a state write and mid-segment; a restarted server on the same store resumes the
session by id (it never asked for a snapshot) and its next segment equals the uninterrupted run's bit for bit
(the continuation state after it: carried latents of both stages, the anchor encoded from the decoded pixels,
the audio tail, the prompt and seed history)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from reliability_doubles import MARKER, STALL_SEGMENT_ENV
from server_doubles import Client

from ltx2stream import protocol as P
from ltx2stream.session.state import SerializedState

TESTS = Path(__file__).parent
ROOT = TESTS.parent
SETTINGS = P.Settings(preset="tiny-ltx2", width=64, height=64, fps=12.0, frames=17, overlap=1, seed=11)
PROMPT = "a lighthouse at dusk, waves"
SEGMENT_TIMEOUT = 120.0  # one tiny segment on a busy 2-core machine (plus model loading for the first)


async def _serve(store: Path, log: Path, *, stall_segment: int | None = None) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    env["OMP_NUM_THREADS"] = "1"  # the same thread count in every server process: the same float sums
    factory = (
        ["--host-factory", "reliability_doubles:stalling_store_host"] if stall_segment is not None else []
    )
    if stall_segment is not None:
        env[STALL_SEGMENT_ENV] = str(stall_segment)
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ltx2stream.cli",
        "serve",
        "--port",
        "0",
        "--store-dir",
        str(store),
        "--preset",
        "tiny-ltx2",
        "--device",
        "cpu",
        *factory,
        cwd=log.parent,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=log.open("ab"),
    )


async def _port(proc: asyncio.subprocess.Process, log: Path) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", log.read_text())
        if match:
            return int(match.group(1))
        assert proc.returncode is None, log.read_text()
        await asyncio.sleep(0.05)
    proc.kill()
    raise AssertionError("server did not start: " + log.read_text())


async def _until(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def _state(store: Path, session_id: str, index: int) -> SerializedState:
    return SerializedState.load(store / session_id / f"seg-{index:08d}.ltxstate")


def _same(a: SerializedState, b: SerializedState) -> bool:
    """Bit for bit: the same tensors (dtype, shape, every element) and the same metadata (the safetensors
    header may order its keys differently, so the file bytes are not compared)."""
    return (
        a.meta == b.meta
        and a.tensors.keys() == b.tensors.keys()
        and all(
            a.tensors[k].dtype == b.tensors[k].dtype and torch.equal(a.tensors[k], b.tensors[k])
            for k in a.tensors
        )
        and a.checksum == b.checksum
    )


async def _kill(proc: asyncio.subprocess.Process) -> None:
    proc.send_signal(signal.SIGKILL)
    assert await asyncio.wait_for(proc.wait(), 20) == -signal.SIGKILL


@pytest.mark.slow
def test_kill9_during_a_state_write_and_mid_segment_then_resume_is_bit_exact(tmp_path):
    """Crash 1: kill -9 while segment 1's state is half written (a temp file with half the bytes): the restart
    resumes after segment 0, the last complete state. Crash 2: kill -9 during segment 2, after segment 1 was
    delivered: the restart resumes after segment 1. No snapshot was ever asked for. Each next segment's state
    equals, byte for byte, the state an uninterrupted session of the same prompt and seed reaches."""
    store = tmp_path / "store"

    async def main() -> None:
        # server 1: segment 1's state write stalls half-way; kill -9 there
        log = tmp_path / "server1.log"
        proc = await _serve(store, log, stall_segment=1)
        client = await Client.connect(await _port(proc, log))
        victim = (await client.open(PROMPT, settings=SETTINGS, lookahead=0)).session_id
        await client.expect("segment_done", index=1, timeout=2 * SEGMENT_TIMEOUT)
        await _until((store / MARKER).exists, "the stalled write of segment 1")
        temp = Path((store / MARKER).read_text())
        assert temp.exists() and temp.name.startswith(".tmp-seg-00000001.ltxstate.")
        await _kill(proc)
        assert [p.name for p in (store / victim).glob("seg-*")] == ["seg-00000000.ltxstate"]

        # server 2: resume after segment 0 (the torn temp file is invisible), run segment 1, kill -9 in segment 2
        log = tmp_path / "server2.log"
        proc = await _serve(store, log)
        client = await Client.connect(await _port(proc, log))
        again = await client.open(
            PROMPT, settings=SETTINGS, lookahead=0, resume_from=P.ResumeFrom(session_id=victim)
        )
        assert (again.session_id, again.resumed_from_segment) == (victim, 0)
        await client.expect("segment_done", index=1, timeout=2 * SEGMENT_TIMEOUT)
        await client.expect("progress", segment=2, timeout=SEGMENT_TIMEOUT)  # segment 2 is in flight
        await _until((store / victim / "seg-00000001.ltxstate").exists, "segment 1's state")
        resumed_1 = _state(store, victim, 1)
        await _kill(proc)

        # server 3: resume after segment 1; then an uninterrupted session of the same prompt and seed
        log = tmp_path / "server3.log"
        proc = await _serve(store, log)
        try:
            port = await _port(proc, log)
            client = await Client.connect(port)
            again = await client.open(
                PROMPT, settings=SETTINGS, lookahead=0, resume_from=P.ResumeFrom(session_id=victim)
            )
            assert again.resumed_from_segment == 1
            started = await client.expect("segment_started", timeout=2 * SEGMENT_TIMEOUT)
            assert (started.index, started.seed) == (2, SETTINGS.seed + 2)
            await client.expect("segment_done", index=2, timeout=SEGMENT_TIMEOUT)
            await client.send(P.Stop())
            await client.drain_to_close(timeout=SEGMENT_TIMEOUT)
            resumed_2 = _state(store, victim, 2)

            reference = await Client.connect(port)
            ref = (await reference.open(PROMPT, settings=SETTINGS, lookahead=0)).session_id
            await reference.expect("segment_done", index=2, timeout=3 * SEGMENT_TIMEOUT)
            await reference.send(P.Stop())
            await reference.drain_to_close(timeout=SEGMENT_TIMEOUT)
            assert _same(resumed_1, _state(store, ref, 1)), (
                "segment 1 after the crash during the write differs"
            )
            assert _same(resumed_2, _state(store, ref, 2)), "segment 2 after the crash mid-segment differs"
            assert not _same(_state(store, ref, 1), _state(store, ref, 2))  # the comparison can fail
        finally:
            proc.send_signal(signal.SIGINT)
            assert await asyncio.wait_for(proc.wait(), 30) == 0

    asyncio.run(main())
