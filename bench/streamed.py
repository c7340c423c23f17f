"""Shared by the streaming benches: one session through a real in-process server, timed at the client.

``stream_session`` starts a ``StreamingServer`` on a loopback port around a ``PipelineHost`` (the thread budget
of ``server/threads.py`` applied unless given), opens one session with a WebSocket client, and records, per
segment, the client's arrival times of: the progress message of the last denoising step (the end of
denoising), the first and the last ``media`` piece, and ``segment_done`` (with its timings). ``in_process``
runs the same segments through the ``SessionController`` alone (no server, no encoder), with the same torch
threads, for the overhead ratio. The client is a separate process (``python bench/streamed.py client ...``).
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from websockets.asyncio.client import connect

from ltx2stream import protocol as P
from ltx2stream.media.fmp4 import fragment_runs, parse_boxes, track_timescales

if TYPE_CHECKING:
    from ltx2stream.server.threads import ThreadBudget
    from ltx2stream.session.api import SessionSettings
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
    import torch

    from ltx2stream.server.threads import available_cores, plan_threads

    return plan_threads(available_cores(), 1, cpu_workers=not torch.cuda.is_available())


def host_for(preset: str, checkpoint: Path | None = None) -> PipelineHost:
    """A warm host of ``preset``; ``checkpoint``: its weights (with the packaged Gemma 3 270M) instead of the
    preset's own (e.g. an intermediate pocket export)."""
    import torch

    from ltx2stream.session.host import PipelineHost

    paths = None
    if checkpoint is not None:
        from ltx2stream.models.pocket_files import packaged_gemma_270m
        from ltx2stream.pipeline.components import ModelPaths

        paths = ModelPaths(checkpoint, packaged_gemma_270m())
    host = PipelineHost((preset,), device="cuda" if torch.cuda.is_available() else "cpu", paths=paths)
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
    host: PipelineHost,
    settings: SessionSettings,
    segments: int,
    threads: ThreadBudget | None = None,
    *,
    encoder_processes: bool = True,
    encode_during_decode: str | None = None,
    progress_interval_s: float | None = None,
    switch_interval_s: float | None = None,
) -> tuple[list[SegmentTimes], float]:
    """Run ``segments`` segments of one session through a real server; per-segment client times + wall time."""
    return stream_sessions(
        host,
        settings,
        segments,
        1,
        threads,
        encoder_processes=encoder_processes,
        encode_during_decode=encode_during_decode,
        progress_interval_s=progress_interval_s,
        switch_interval_s=switch_interval_s,
    )[0]


def stream_sessions(
    host: PipelineHost,
    settings: SessionSettings,
    segments: int,
    sessions: int,
    threads: ThreadBudget | None = None,
    sampler: RssSampler | None = None,
    *,
    encoder_processes: bool = True,
    encode_during_decode: str | None = None,
    progress_interval_s: float | None = None,
    switch_interval_s: float | None = None,
) -> list[tuple[list[SegmentTimes], float]]:
    """``sessions`` concurrent sessions of ``segments`` segments each through one real server (one worker).

    The clients run in a separate process (as real ones would: their decoding does not take the server's GIL);
    both clocks are ``time.perf_counter`` (CLOCK_MONOTONIC, shared by the processes). ``sampler`` (optional)
    records this process's RSS while the sessions run. ``encoder_processes``: the session encoders in child
    processes, as ``serve`` runs them (False: threads of this process). ``encode_during_decode``: the server's
    setting (None: "all", ``serve``'s default); ``progress_interval_s`` likewise (None: the server's
    default); ``switch_interval_s`` the GIL switch interval while serving (None: the thread budget's).
    """
    from ltx2stream.server.app import StreamingServer
    from ltx2stream.server.config import ServerConfig

    b = threads or budget()

    async def main() -> list[tuple[list[SegmentTimes], float]]:
        with tempfile.TemporaryDirectory() as store:
            config = ServerConfig(port=0, store_dir=Path(store), web_root=None, ping_interval_s=None,
                                  torch_threads=b.torch, encode_threads=b.encode, x264_threads=b.x264,
                                  encoder_processes=encoder_processes,
                                  encode_during_decode=encode_during_decode or "all",
                                  switch_interval_s=switch_interval_s or b.switch_interval_s,
                                  **({} if progress_interval_s is None else {"progress_interval_s": progress_interval_s}),
                                  max_active_per_worker=max(sessions, 2))  # fmt: skip
            app = StreamingServer(config, lambda: host)
            await app.start()
            try:
                cmd = client_command(app.port, settings, segments, sessions)
                proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE)
                if sampler is not None:
                    sampler.start()
                try:
                    out, _ = await proc.communicate()
                finally:
                    if sampler is not None:
                        sampler.stop()
                if proc.returncode != 0:
                    raise RuntimeError(f"bench client exited with {proc.returncode}")
                result = json.loads(out.decode().strip().splitlines()[-1])
                return [([SegmentTimes(**t) for t in r["times"]], float(r["wall"])) for r in result]
            finally:
                await app.shutdown()

    return asyncio.run(main())


def client_command(port: int, settings: SessionSettings, segments: int, sessions: int) -> list[str]:
    """The bench client process: ``sessions`` sessions of ``segments`` segments against ``port``; it prints one
    JSON line (per session: the segment times, the wall time, and the clock just before connecting)."""
    wire = {"preset": settings.preset, "width": settings.width, "height": settings.height, "fps": settings.fps,
            "frames": settings.frames, "overlap": settings.overlap, "seed": settings.seed}  # fmt: skip
    here = str(Path(__file__).resolve())
    return [sys.executable, here, "client", str(port), str(segments), json.dumps(wire), str(sessions)]


class RssSampler:
    """The server's resident set size every ``period_s`` on a daemon thread: ``samples`` = [(clock, bytes)].

    The server is this process plus its encoder child processes (``media/process.py``), summed; the bench
    client (also a child) is not counted."""

    def __init__(self, period_s: float = 0.25) -> None:
        import threading

        self.period_s, self.samples = period_s, []  # type: list[tuple[float, int]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    @staticmethod
    def rss() -> int:
        import glob
        import os

        def statm(pid: str) -> int:
            try:
                with open(f"/proc/{pid}/statm") as f:
                    return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            except OSError:  # it exited meanwhile
                return 0

        total = statm("self")
        for path in glob.glob("/proc/self/task/*/children"):
            with open(path) as f:
                for pid in f.read().split():
                    try:
                        with open(f"/proc/{pid}/cmdline", "rb") as c:
                            encoder = b"ltx2stream.media.process" in c.read()
                    except OSError:
                        continue
                    total += statm(pid) if encoder else 0
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.perf_counter(), self.rss()))
            self._stop.wait(self.period_s)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def at(self, clock: float) -> int:
        """The last sample taken at or before ``clock`` (the first one if none)."""
        before = [rss for t, rss in self.samples if t <= clock]
        return before[-1] if before else self.samples[0][1]


def _client_main(port: int, segments: int, wire: dict[str, Any], sessions: int) -> None:
    async def run() -> list[tuple[list[SegmentTimes], float]]:
        return list(
            await asyncio.gather(*(_session(port, P.Settings(**wire), segments) for _ in range(sessions)))
        )

    opened = time.perf_counter()  # just before the first connect ("open" for the cold-start bench)
    results = asyncio.run(run())
    print(
        json.dumps(
            [{"times": [asdict(t) for t in times], "wall": wall, "opened": opened} for times, wall in results]
        )
    )


def in_process(
    host: PipelineHost, settings: SessionSettings, segments: int, torch_threads: int
) -> list[float]:
    """Clock (perf_counter) at the return of each of ``segments`` segments through the controller alone.

    The clock starts at element 0 = the first ``run_segment`` call (the session is opened before it).
    """
    import torch

    from ltx2stream.session.api import NullSink, SegmentRequest

    before = torch.get_num_threads()
    torch.set_num_threads(torch_threads)
    try:
        controller = host.open_session(settings)
        ends = [time.perf_counter()]
        for i in range(segments):
            controller.run_segment(SegmentRequest(i, "a red fox runs through snow", i), NullSink())
            ends.append(time.perf_counter())
        return ends
    finally:
        torch.set_num_threads(before)


def steady_interval(ends: list[float]) -> float:
    """Mean seconds per segment after the first: (last - first segment end) / (n - 1)."""
    return (ends[-1] - ends[0]) / max(1, len(ends) - 1)


def settings_for(preset: str, frames: int | None = None, size: int | None = None) -> SessionSettings:
    from ltx2stream.pipeline.presets import get_preset
    from ltx2stream.session.api import SessionSettings

    p = get_preset(preset)
    return SessionSettings(preset, size or p.width, size or p.height, p.fps, frames or p.frames, 1, 0)


def load() -> list[float]:
    import os

    return [round(x, 2) for x in os.getloadavg()]


def summary_times(rows: list[dict[str, Any]], key: str) -> list[float]:
    return [float(r[key]) for r in rows if r.get(key) == r.get(key)]


if __name__ == "__main__" and sys.argv[1:2] == ["client"]:
    _client_main(int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4]), int(sys.argv[5]))
