"""Shared by the streaming benches: one session through a real in-process server, timed at the client.

``stream_session`` starts a ``StreamingServer`` on a loopback port around a ``PipelineHost`` (the thread budget
of ``server/threads.py`` applied unless given), opens one session with a WebSocket client, and records, per
segment, the client's arrival times of: the progress message of the last denoising step (the end of
denoising), the first and the last ``media`` piece, and ``segment_done`` (with its timings). ``in_process``
runs the same segments through the ``SessionController`` alone (no server, no encoder), with the same torch
threads, for the overhead ratio.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from websockets.asyncio.client import connect

from ltx2stream import protocol as P
from ltx2stream.media.fmp4 import fragment_runs, parse_boxes, track_timescales
from ltx2stream.server.app import StreamingServer
from ltx2stream.server.config import ServerConfig
from ltx2stream.server.threads import ThreadBudget, available_cores, plan_threads
from ltx2stream.session.api import NullSink, SegmentRequest, SessionSettings
from ltx2stream.session.host import PipelineHost

LIMITS = P.ProtocolLimits.for_client()


@dataclass
class SegmentTimes:
    index: int
    end_denoise: float = float("nan")  # client clock, seconds
    first_media: float = float("nan")
    last_media: float = float("nan")
    done: float = float("nan")
    pieces: int = 0
    first_piece_audio_samples: int = 0
    timings: dict[str, float] = field(default_factory=dict)


def budget() -> ThreadBudget:
    return plan_threads(available_cores(), 1, cpu_workers=not torch.cuda.is_available())


def host_for(preset: str) -> PipelineHost:
    host = PipelineHost((preset,), device="cuda" if torch.cuda.is_available() else "cpu")
    host.warm_up()
    return host


def _audio_samples(init: bytes, data: bytes) -> int:
    kinds = {tid: kind for tid, (kind, _) in track_timescales(parse_boxes(init)).items()}
    return sum(r.sample_count for r in fragment_runs(data) if kinds.get(r.track_id) == "soun")


async def _session(port: int, settings: P.Settings, segments: int) -> tuple[list[SegmentTimes], float]:
    times: dict[int, SegmentTimes] = {}
    init = b""
    async with connect(f"ws://127.0.0.1:{port}/ws", max_size=LIMITS.max_message_bytes) as ws:
        t0 = time.perf_counter()
        await ws.send(P.encode(P.Open(protocol_version=P.PROTOCOL_VERSION, settings=settings,
                                      prompt="a red fox runs through snow", lookahead=1)))  # fmt: skip
        stopped, wall = False, float("nan")
        while True:
            msg = P.decode(await asyncio.wait_for(ws.recv(), 600), limits=LIMITS)
            now = time.perf_counter()
            if isinstance(msg, P.MediaInit):
                init = msg.data
            elif isinstance(msg, P.Progress) and msg.stage in ("stage1", "stage2") and msg.step == msg.total:
                times.setdefault(
                    msg.segment, SegmentTimes(msg.segment)
                ).end_denoise = now  # stage2 overwrites
            elif isinstance(msg, P.Media):
                s = times.setdefault(msg.segment, SegmentTimes(msg.segment))
                if s.pieces == 0:
                    s.first_media, s.first_piece_audio_samples = now, _audio_samples(init, msg.data)
                s.pieces += 1
                if msg.last:
                    s.last_media = now
            elif isinstance(msg, P.SegmentDone):
                s = times[msg.index]
                s.done, s.timings = now, {k: float(getattr(msg.timings, k)) for k in P.STAGES}
                if msg.index >= segments - 1 and not stopped:
                    wall = now - t0  # open -> the last wanted segment_done
                    await ws.send(P.encode(P.Stop()))
                    stopped = True
            elif isinstance(msg, P.Error) and msg.fatal:
                raise RuntimeError(f"session failed: {msg}")
            elif isinstance(msg, P.Final):
                break
    return [times[i] for i in sorted(times) if i < segments], wall


def stream_session(
    host: PipelineHost, settings: SessionSettings, segments: int, threads: ThreadBudget | None = None
) -> tuple[list[SegmentTimes], float]:
    """Run ``segments`` segments of one session through a real server; per-segment client times + wall time."""
    b = threads or budget()

    async def main() -> tuple[list[SegmentTimes], float]:
        with tempfile.TemporaryDirectory() as store:
            config = ServerConfig(port=0, store_dir=Path(store), web_root=None, ping_interval_s=None,
                                  torch_threads=b.torch, encode_threads=b.encode, x264_threads=b.x264)  # fmt: skip
            app = StreamingServer(config, lambda: host)
            await app.start()
            try:
                wire = P.Settings(preset=settings.preset, width=settings.width, height=settings.height,
                                  fps=settings.fps, frames=settings.frames, overlap=settings.overlap,
                                  seed=settings.seed)  # fmt: skip
                return await _session(app.port, wire, segments)
            finally:
                await app.shutdown()

    return asyncio.run(main())


def in_process(host: PipelineHost, settings: SessionSettings, segments: int, torch_threads: int) -> float:
    """Wall seconds for ``segments`` segments of one session through the controller alone."""
    before = torch.get_num_threads()
    torch.set_num_threads(torch_threads)
    try:
        controller = host.open_session(settings)
        t0 = time.perf_counter()
        for i in range(segments):
            controller.run_segment(SegmentRequest(i, "a red fox runs through snow", i), NullSink())
        return time.perf_counter() - t0
    finally:
        torch.set_num_threads(before)


def settings_for(preset: str, frames: int | None = None, size: int | None = None) -> SessionSettings:
    from ltx2stream.pipeline.presets import get_preset

    p = get_preset(preset)
    return SessionSettings(preset, size or p.width, size or p.height, p.fps, frames or p.frames, 1, 0)


def load() -> list[float]:
    import os

    return [round(x, 2) for x in os.getloadavg()]


def summary_times(rows: list[dict[str, Any]], key: str) -> list[float]:
    return [float(r[key]) for r in rows if r.get(key) == r.get(key)]
