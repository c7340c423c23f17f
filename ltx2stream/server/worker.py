"""One worker per device: a thread that owns the model host and runs its sessions' turns, one at a time.

The host is built and warmed on the worker's own thread (so CUDA state lives on the thread that uses it and
the event loop stays free while weights load). A turn is either opening a session's generator or one segment;
between turns the scheduler picks the next session round-robin. Cancellation is the generator's job: it checks
the job's ``CancelToken`` between denoising steps and between decoded chunks, so a removed session frees the
worker within one step or one decode chunk.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor

from ltx2stream import codes
from ltx2stream.errors import SessionError
from ltx2stream.server.job import OPEN, Job
from ltx2stream.server.scheduler import Scheduler
from ltx2stream.server.streaming import EncoderFactory, SegmentStreamer
from ltx2stream.session.api import ModelHost, SegmentCancelled, SegmentRequest
from ltx2stream.session.state_machine import SegmentPlan

logger = logging.getLogger(__name__)

HostFactory = Callable[[], ModelHost]
"""Builds one device's model host (called once, on that worker's thread)."""


class Worker:
    """A device, its host, its scheduler and the thread that runs turns."""

    def __init__(
        self,
        name: str,
        host_factory: HostFactory,
        scheduler: Scheduler,
        encode_pool: Executor,
        encoder_factory: EncoderFactory,
        *,
        torch_threads: int | None = None,
        encode_during_decode: str = "all",
    ) -> None:
        self.name = name
        self.scheduler = scheduler
        self.host: ModelHost | None = None
        self.error: BaseException | None = None  # set when building or warming the host failed
        self.loaded = threading.Event()  # set when loading ended, successfully or not
        self._host_factory = host_factory
        self._pool = encode_pool
        self._encoder_factory = encoder_factory
        self._torch_threads = torch_threads  # the thread budget's share of this worker (server/threads.py)
        self._encode_during_decode = encode_during_decode  # pieces encoded during the decode (streaming.py)
        self._thread = threading.Thread(target=self._run, name=f"ltx2stream-{name}", daemon=True)

    @property
    def ready(self) -> bool:
        """True once the host is loaded and warmed, and while it reports itself healthy (a sequence-parallel
        host stops being healthy when a rank is lost)."""
        return self.loaded.is_set() and self.error is None and bool(getattr(self.host, "healthy", True))

    @property
    def current_session_id(self) -> str | None:
        """The session whose turn is running now (None when idle)."""
        job = self.scheduler.current
        return job.session_id if job is not None else None

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> bool:
        """Ask the thread to exit after its current turn; returns whether it did within ``timeout``."""
        self.scheduler.stop()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        if self._torch_threads is not None:
            import torch

            torch.set_num_threads(self._torch_threads)
        if not self._load():
            return
        while (turn := self.scheduler.next_turn()) is not None:
            job, what = turn
            try:
                if what == OPEN:
                    self._open(job)
                else:
                    assert isinstance(what, SegmentPlan)
                    self._segment(job, what)
            finally:
                if self.scheduler.finish_turn(job):
                    job.release()
                    job.events.released()

    def _load(self) -> bool:
        t0 = time.perf_counter()
        try:
            host = self._host_factory()
            host.warm_up()
        except BaseException as e:  # reported by /healthz and to every session of this worker
            logger.exception("worker %s: loading the model host failed", self.name)
            self.error = e
            self.loaded.set()
            return False
        self.host = host
        self.loaded.set()
        logger.info(
            "worker %s: host ready in %.2f s (presets: %s)",
            self.name,
            time.perf_counter() - t0,
            ", ".join(host.presets),
        )
        return True

    def _open(self, job: Job) -> None:
        assert self.host is not None
        spec = job.spec
        job.events.opening()
        try:
            generator = self.host.open_session(spec.settings, image=spec.image, state=spec.state)
            expected = job.schedule.next_index
            if generator.next_index != expected:
                raise SessionError(
                    f"generator starts at segment {generator.next_index}, the session expects {expected}",
                    code=codes.SERVER_INTERNAL,
                )
        except BaseException as e:  # noqa: BLE001 - the worker thread's boundary: any failure ends the session
            job.events.failed(e)
            return
        job.generator = generator
        job.streamer = SegmentStreamer(
            lambda: self._encoder_factory(spec.settings, generator.sample_rate),
            spec.settings.fps,
            self._pool,
            job.events,
            self._encode_during_decode,
        )

    def _segment(self, job: Job, plan: SegmentPlan) -> None:
        assert job.generator is not None and job.streamer is not None
        job.events.segment_started(plan)
        request = SegmentRequest(
            index=plan.index,
            prompt=plan.prompt,
            seed=plan.seed,
            transition="blend" if plan.previous_prompt is not None else "cut",
            blend_from=plan.previous_prompt,
            blend_weight=plan.weight,
            final=plan.final,
        )
        t0 = time.perf_counter()
        try:
            report = job.generator.run_segment(request, job.streamer.sink(plan.index), job.cancel)
            state = job.generator.snapshot()
        except SegmentCancelled:
            logger.info(
                "worker %s: session %s segment %d cancelled after %.3f s",
                self.name,
                job.session_id,
                plan.index,
                time.perf_counter() - t0,
            )
            job.events.cancelled(plan.index)
            return
        except BaseException as e:  # noqa: BLE001 - the worker thread's boundary: any failure ends the session
            job.events.failed(e)
            return
        job.segments_generated += 1
        job.streamer.finish(report, state, time.perf_counter() - t0)
