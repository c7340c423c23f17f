"""Session encoders in child processes (``media/process.py``): the same bytes, errors that name their cause,
a dead child that fails only its sessions, and a server that streams through them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from server_doubles import SETTINGS, Client, running

from ltx2stream import protocol as P
from ltx2stream.errors import InputError
from ltx2stream.media import SessionEncoder
from ltx2stream.media.process import EncoderProcessError, EncoderProcesses


@pytest.fixture
def processes():  # type: ignore[no-untyped-def]
    procs = EncoderProcesses(1)
    yield procs
    procs.close()


def _session(encoder, rng: np.random.Generator) -> bytes:  # type: ignore[no-untyped-def]
    out = b""
    for seg in range(2):
        encoder.add_audio(rng.standard_normal((2, 12000)).astype(np.float32) * 0.1)
        encoder.add_video(rng.integers(0, 255, (9, 64, 64, 3), dtype=np.uint8))
        out += encoder.drain()
        out += bytes(encoder.flush_segment(seg).remainder)
    return out + bytes(encoder.close())


def test_remote_encoder_gives_the_bytes_of_the_local_one(processes):  # type: ignore[no-untyped-def]
    remote = processes.open(64, 64, 12, 16000, threads=1)
    local = SessionEncoder(64, 64, 12, 16000, threads=1)
    assert (remote.mime, remote.init_segment) == (local.mime, local.init_segment)
    got, want = _session(remote, np.random.default_rng(1)), _session(local, np.random.default_rng(1))
    assert len(got) > 1000 and got == want


def test_an_error_in_an_unanswered_call_surfaces_at_the_next_answered_one(processes):  # type: ignore[no-untyped-def]
    bad, good = processes.open(64, 64, 12, 16000), processes.open(64, 64, 12, 16000)
    bad.add_video(np.zeros((3, 32, 32, 3), np.uint8))  # not answered: the caller does not wait
    good.add_video(np.zeros((3, 64, 64, 3), np.uint8))
    with pytest.raises(InputError) as info:
        bad.drain()
    assert info.value.code == "media.frame_shape" and "[3, 32, 32, 3]" in info.value.message
    assert good.drain()  # another session on the same child is untouched
    with pytest.raises(InputError):  # a bad size is refused where the encoder is made, with its code
        processes.open(63, 64, 12, 16000)


def test_a_killed_child_fails_its_sessions_and_the_next_open_starts_a_new_one(processes):  # type: ignore[no-untyped-def]
    processes.start()
    encoder = processes.open(64, 64, 12, 16000)
    (pid,) = processes.pids
    os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(EncoderProcessError):  # a write may land in the pipe's buffer or fail at once
        encoder.add_video(np.zeros((1, 64, 64, 3), np.uint8))
    with pytest.raises(EncoderProcessError) as info:
        encoder.drain()
    assert info.value.code == "media.encoder_process_died"
    assert encoder.close() == b""
    again = processes.open(64, 64, 12, 16000)
    assert processes.pids[0] != pid and again.mime.startswith("video/mp4")


def test_a_child_exits_when_its_parent_is_gone() -> None:
    """The child's pipe closes with its parent: no orphan encoders after a crashed server."""
    code = (
        "import sys; from ltx2stream.media.process import EncoderProcesses; p = EncoderProcesses(1); "
        "p.start(); print(p.pids[0], flush=True); import os; os._exit(0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    pid = int(out.stdout.split()[0])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    pytest.fail(f"encoder child {pid} outlived its parent")


def test_closed_processes_refuse_new_encoders() -> None:
    procs = EncoderProcesses(2)
    procs.start()
    assert all(procs.pids)
    procs.close()
    with pytest.raises(EncoderProcessError) as info:
        procs.open(64, 64, 12, 16000)
    assert info.value.code == "media.closed"


def _stream(tmp_path, encoder_processes: bool) -> tuple[bytes, bytes]:  # type: ignore[no-untyped-def]
    async def main() -> tuple[bytes, bytes]:
        async with running(tmp_path, encoder_processes=encoder_processes) as (app, _host):
            assert (app.encoder_processes is not None) == encoder_processes
            client = await Client.connect(app.port)
            await client.open("a red fox", settings=SETTINGS, lookahead=0)
            await client.expect("segment_done", index=2, timeout=60)
            await client.send(P.Stop())
            assert (await client.drain_to_close(timeout=60))[0] == 1000
            init = client.of_type("media_init")[0].data
            # segments 0 and 1: the encoder's audio tail goes with the last one, which depends on when stop lands
            return init, b"".join(m.data for m in client.of_type("media") if m.segment <= 1)

    return asyncio.run(main())


def test_the_server_streams_the_same_media_through_encoder_processes(tmp_path):  # type: ignore[no-untyped-def]
    through_children = _stream(tmp_path / "p", True)
    in_process = _stream(tmp_path / "t", False)
    assert len(through_children[1]) > 1000 and through_children == in_process


def test_a_dead_encoder_child_ends_only_its_session(tmp_path):  # type: ignore[no-untyped-def]
    async def main() -> None:
        async with running(tmp_path, encoder_processes=True) as (app, host):
            host.hold_at = (1, 1)  # segment 1 waits until the child is gone
            client = await Client.connect(app.port)
            await client.open("a red fox", settings=SETTINGS, lookahead=0)
            await client.expect("segment_done", index=0, timeout=60)
            await asyncio.to_thread(host.held.wait, 30)
            assert app.encoder_processes is not None
            os.kill(app.encoder_processes.pids[0], signal.SIGKILL)
            host.release.set()
            got, _ = await client.drain_to_close(timeout=60)
            error = client.of_type("error")[-1]
            assert (error.code, error.fatal, got) == ("media.encoder_process_died", True, 1011)
            client = await Client.connect(app.port)  # the next session gets a new child
            await client.open("a red fox", settings=SETTINGS, lookahead=0)
            await client.expect("segment_done", index=1, timeout=60)
            await client.send(P.Stop())
            assert (await client.drain_to_close(timeout=60))[0] == 1000

    asyncio.run(main())
