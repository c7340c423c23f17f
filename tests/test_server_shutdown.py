"""Graceful shutdown: sessions are checkpointed and told they can resume; a restarted server resumes them."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from pathlib import Path

import pytest
from server_doubles import Client, ToyHost, running

from ltx2stream import protocol as P

TESTS = Path(__file__).parent


def test_shutdown_checkpoints_sessions_and_a_new_server_resumes_them(tmp_path):
    """shutdown(): active and queued clients get server.shutdown, final 'shutdown' (resumable id when a
    segment was delivered) and close 1001; a new server on the same store continues after the delivered
    segment."""

    async def main() -> None:
        host = ToyHost(step_s=0.05)
        async with running(tmp_path, host=host, max_active_per_worker=1) as (app, _):
            active, queued = await Client.connect(app.port), await Client.connect(app.port)
            accepted = await active.open("a lighthouse", lookahead=1)
            await queued.open("waiting")
            await active.expect("segment_done", index=1)
            await app.shutdown()
            for client in (active, queued):
                code, reason = await client.drain_to_close()
                error, final = client.of_type("error")[-1], client.received[-1]
                assert (code, reason) == (1001, "server.shutdown")
                assert error.code == "server.shutdown" and error.retryable and error.fatal
                assert final.type == "final" and final.reason == "shutdown"
            delivered = len(active.of_type("segment_done"))
            assert active.received[-1].resumable_session_id == accepted.session_id
            assert queued.received[-1].resumable_session_id is None
            assert app.store.load_latest(accepted.session_id).segment_index == delivered - 1
            assert not app.workers[0]._thread.is_alive()

        async with running(tmp_path) as (app2, _host2):
            client = await Client.connect(app2.port)
            again = await client.open(
                "a lighthouse", resume_from=P.ResumeFrom(session_id=accepted.session_id)
            )
            assert again.resumed_from_segment == delivered - 1
            started = await client.expect("segment_started")
            assert started.index == delivered and started.seed == 7 + delivered
            await client.expect("segment_done", index=delivered)
            await client.send(P.Stop())
            assert (await client.drain_to_close())[0] == 1000

    asyncio.run(main())


async def _start_server(tmp_path: Path, log: Path) -> tuple[asyncio.subprocess.Process, int]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ltx2stream.cli",
        "serve",
        "--port",
        "0",
        "--store-dir",
        str(tmp_path / "store"),
        "--host-factory",
        "server_doubles:host_from_args",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=log.open("ab"),
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", log.read_text())
        if match:
            return proc, int(match.group(1))
        assert proc.returncode is None, log.read_text()
        await asyncio.sleep(0.05)
    proc.kill()
    raise AssertionError("server did not start: " + log.read_text())


@pytest.mark.slow
def test_sigterm_in_a_subprocess_saves_states_and_a_restart_resumes(tmp_path):
    """`ltx2stream serve` in a subprocess: SIGTERM mid-session -> final 'shutdown' + 1001, exit code 0;
    a restarted process resumes the session by id after its last delivered segment."""

    async def main() -> None:
        proc, port = await _start_server(tmp_path, tmp_path / "first.log")
        client = await Client.connect(port)
        accepted = await client.open("a comet")
        await client.expect("segment_done", index=0, timeout=10)
        proc.send_signal(signal.SIGTERM)
        code, _ = await client.drain_to_close(timeout=10)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
        final = client.received[-1]
        assert code == 1001 and final.type == "final" and final.reason == "shutdown"
        assert final.resumable_session_id == accepted.session_id
        delivered = len(client.of_type("segment_done"))

        proc, port = await _start_server(tmp_path, tmp_path / "second.log")
        try:
            client = await Client.connect(port)
            again = await client.open("a comet", resume_from=P.ResumeFrom(session_id=accepted.session_id))
            assert again.resumed_from_segment == delivered - 1
            assert (await client.expect("segment_started", timeout=10)).index == delivered
            await client.send(P.Stop())
            assert (await client.drain_to_close(timeout=10))[0] == 1000
        finally:
            proc.send_signal(signal.SIGINT)
            assert await asyncio.wait_for(proc.wait(), 20) == 0

    asyncio.run(main())
