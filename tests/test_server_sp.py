"""``ltx2stream serve --sp 2`` on CPU (two gloo ranks, rank 0 serving): a streamed session, steered, dropped and
resumed by id, produces the states (carried latents of both stages, anchors, audio tail) the one-process host
produces for the same segments, prompts and seeds. States come from the server's store (saved after every
segment); the reference runs in this process."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import torch
from fleet import start_serve, stop, wait_ready
from redis_server import free_port

from ltx2stream import protocol as P
from ltx2stream.client import StreamClient
from ltx2stream.session.api import NullSink, SegmentRequest, SessionSettings
from ltx2stream.session.host import PipelineHost
from ltx2stream.session.state import SerializedState
from ltx2stream.session.store import SessionStore

SETTINGS = P.Settings(preset="tiny-ltx2", width=64, height=64, fps=12.0, frames=17, overlap=1, seed=3)
FIRST, SECOND = "a red ball bouncing", "rain on a window"


async def _stream(port: int) -> tuple[str, int, int]:
    """Steer after segment 1, read until the steered segment is done, drop the connection, resume by id after the
    last segment received, read one more, stop. Returns (session id, the steer's applies_at, last index)."""
    client = StreamClient(f"ws://127.0.0.1:{port}/")
    await client.open(FIRST, SETTINGS, lookahead=0)
    applies_at: int | None = None
    steered = False
    async for msg in client.events():
        if isinstance(msg, P.SegmentDone) and msg.index == 1 and not steered:
            await client.steer(SECOND)
            steered = True
        elif isinstance(msg, P.SteerAck):
            applies_at = msg.applies_at
        if applies_at is not None and client.done and max(client.done) >= applies_at:
            break
    assert applies_at is not None
    await client.reconnect(segment_index=max(client.done))
    async for msg in client.events():
        if isinstance(msg, P.SegmentDone):
            break
    await client.stop()
    async for _ in client.events():
        pass
    await client.close()
    assert client.session_id is not None
    return client.session_id, applies_at, max(client.done)


def _reference(applies_at: int, last: int) -> dict[int, dict[str, torch.Tensor]]:
    torch.set_num_threads(1)
    host = PipelineHost(("tiny-ltx2",))
    gen = host.open_session(SessionSettings("tiny-ltx2", 64, 64, 12.0, 17, 1, 3))
    out = {}
    for i in range(last + 1):
        gen.run_segment(SegmentRequest(i, FIRST if i < applies_at else SECOND, 3 + i), NullSink())
        out[i] = dict(SerializedState.from_bytes(gen.snapshot()).tensors)
    return out


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_sp2_server_session_equals_one_process(tmp_path: Path) -> None:
    port = free_port()
    store = tmp_path / "states"
    proc = start_serve(
        port,
        ["--preset", "tiny-ltx2", "--sp", "2", "--device", "cpu", "--device", "cpu", "--store", str(store)],
        tmp_path / "serve.log",
        env={"OMP_NUM_THREADS": "1"},  # one thread per rank, as the reference below: same GEMM splits
    )
    try:
        wait_ready(port, proc, 600)
        sid, applies_at, last = asyncio.run(_stream(port))
    finally:
        stop(proc)
    assert applies_at >= 2 and last >= 3
    want = _reference(applies_at, last)
    stored = SessionStore(store)
    indices = [s.segment_index for s in stored.list(sid)]
    assert indices and indices[-1] == last
    for i in indices:
        got = stored.load(sid, i).tensors
        for name, tensor in want[i].items():
            # within 1e-3, not bit for bit: on an Intel Xeon a rank's shorter GEMMs round differently in the last
            # bits (docs/deploy.md); a wrong shard, gather or broadcast moves the latents by O(0.1-1)
            torch.testing.assert_close(got[name], tensor, rtol=1e-3, atol=1e-3,
                                       msg=f"segment {i} {name} differs from the one-process host")  # fmt: skip
