"""Video jobs: sessions rendered offline through the same workers and queue as live sessions.

A job is a :class:`~ltx2stream.server.job.Job` like a live session's (same scheduler, so the two share a
worker round-robin), with a schedule that ends after the requested segments and events that collect the
encoded fMP4 instead of sending it. When the encoder's audio tail is out, the MP4 is written, the continuation
state after the last segment is stored under the job's id (what an extension continues from), and the job
leaves its worker. All methods run on the event loop; worker and encoder threads reach a run only through
:class:`RunEvents`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
from collections.abc import Coroutine
from typing import Any, Protocol

from ltx2stream import codes
from ltx2stream.errors import LTX2StreamError, SessionError
from ltx2stream.server.job import Fragment, Job, JobSpec, PostedEvents, SegmentResult
from ltx2stream.server.scheduler import Scheduler
from ltx2stream.server.videos.records import (
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    VideoFiles,
    VideoRecord,
    now,
)
from ltx2stream.server.videos.requests import VideoPlan
from ltx2stream.session.state_machine import SegmentPlan, SteeringSchedule
from ltx2stream.session.store import StateStore

logger = logging.getLogger(__name__)
STAGE_SHARE = {
    "stage1": 0.0,
    "upsample": 0.55,
    "stage2": 0.6,
    "decode": 0.85,
}  # where a stage starts in a segment


class JobServer(Protocol):
    """What video jobs need from the server (``StreamingServer`` implements it)."""

    def submit(self, job: Job) -> tuple[Scheduler, int | None]:
        """Queue ``job`` on the least busy worker serving its preset; (its scheduler, queue position)."""
        ...

    def detach_job(self, removed: Job) -> bool:
        """Remove ``job`` from its worker; True while the worker is still inside a turn of it."""
        ...

    def session_live(self, session_id: str) -> bool:
        """Whether a live WebSocket session with this id runs now."""
        ...


class BoundedSchedule(SteeringSchedule):
    """A steering schedule that starts no segment at or after ``end``."""

    def __init__(self, prompt: str, seed: int, *, start_index: int, end: int) -> None:
        super().__init__(prompt, seed, lookahead=1, start_index=start_index)
        self.end = end

    def may_start(self) -> bool:
        return self.next_index < self.end and super().may_start()

    def plan_for(self, index: int) -> SegmentPlan:
        """The job's last segment is final: the video shows every frame it generated (an extension, resumed
        from its state, starts after them)."""
        plan = super().plan_for(index)
        return dataclasses.replace(plan, final=True) if index == self.end - 1 else plan


class VideoRun:
    """One job from queued to completed / failed / cancelled (loop side)."""

    def __init__(self, owner: VideoJobs, record: VideoRecord, plan: VideoPlan, state: bytes | None) -> None:
        self.owner, self.record = owner, record
        schedule = BoundedSchedule(
            plan.prompt,
            plan.settings.seed,
            start_index=record.first_segment,
            end=record.first_segment + record.segments,
        )
        spec = JobSpec(record.id, plan.settings, plan.image, state)
        self.job = Job(spec, schedule, RunEvents(asyncio.get_running_loop(), self))
        self.scheduler: Scheduler | None = None
        self.pieces: list[bytes] = []
        self.state: bytes | None = None
        self.released = asyncio.Event()
        self.done = asyncio.Event()  # completed, failed or cancelled
        self.cancelled = False
        self._fraction = 0.0

    # ---- worker events -------------------------------------------------------------------------------------

    def on_opening(self) -> None:
        self._update(status=IN_PROGRESS)

    def on_segment_started(self, plan: SegmentPlan) -> None:
        self._update(status=IN_PROGRESS)

    def on_progress(self, index: int, stage: str, step: int, total: int) -> None:
        if stage not in STAGE_SHARE or total < 1:
            return
        shares = sorted(STAGE_SHARE.values()) + [1.0]
        start = STAGE_SHARE[stage]
        end = shares[shares.index(start) + 1]
        within = start + (end - start) * min(step, total) / total
        done = index - self.record.first_segment + within
        self._fraction = max(self._fraction, done / self.record.segments)
        self._update(progress=min(99, int(self._fraction * 100)))

    def on_media_init(self, mime: str, data: bytes) -> None:
        if not self.pieces:
            self.pieces.append(data)

    def on_media(self, fragment: Fragment) -> None:
        self.pieces.append(fragment.data)

    def on_segment_encoded(self, result: SegmentResult) -> None:
        index = result.report.index
        self.state = result.state
        self.job.delivered(index)
        done = (index - self.record.first_segment + 1) / self.record.segments
        self._fraction = max(self._fraction, done)
        self._update(progress=min(99, int(self._fraction * 100)))
        if index == self.record.last_segment:
            self.job.end_media()  # the encoder's audio tail follows, then media_ended
        elif self.scheduler is not None:
            self.scheduler.poke()

    def on_media_ended(self) -> None:
        self.owner.spawn(self._complete())

    def on_cancelled(self, index: int) -> None:
        pass

    def on_failed(self, error: BaseException) -> None:
        self.owner.spawn(self.fail(error))

    def on_released(self) -> None:
        self.released.set()

    # ---- outcomes ------------------------------------------------------------------------------------------

    async def _complete(self) -> None:
        if self.done.is_set() or self.state is None:
            return
        record, state, data = self.record, self.state, b"".join(self.pieces)
        self.pieces = []
        try:
            await asyncio.to_thread(self.owner.store.save, record.id, record.last_segment, state)
            await asyncio.to_thread(self.owner.files.write_video, record.id, data)
        except (LTX2StreamError, OSError, ValueError) as e:
            logger.exception("video %s: storing its result failed", record.id)
            await self.fail(e)
            return
        self._leave_worker()
        finished = now()
        self._update(
            sha256=hashlib.sha256(data).hexdigest(),
            status=COMPLETED,
            progress=100,
            completed_at=finished,
            expires_at=finished + int(self.owner.ttl_s),
        )
        self.done.set()
        await self.owner.persist(self.record)
        logger.info("video %s completed (%d segment(s))", record.id, record.segments)

    async def fail(self, error: BaseException) -> None:
        """End the job as failed (the worker lets go within a denoising step)."""
        if self.done.is_set():
            return
        self.job.cancel.cancel()
        self._leave_worker()
        code = error.code if isinstance(error, LTX2StreamError) else codes.SERVER_INTERNAL
        message = str(error) if isinstance(error, LTX2StreamError) else "the job failed; see the server log"
        if not isinstance(error, LTX2StreamError):
            logger.error("video %s failed", self.record.id, exc_info=error)
        finished = now()
        self._update(
            status=FAILED,
            completed_at=finished,
            expires_at=finished + int(self.owner.ttl_s),
            error_code=code,
            error_message=message,
        )
        self.done.set()
        await self.owner.persist(self.record)

    def cancel(self) -> None:
        """DELETE: stop at the next denoising step and leave the worker."""
        self.cancelled = True
        self.job.cancel.cancel()
        self._leave_worker()
        self.done.set()

    def _leave_worker(self) -> None:
        if self.scheduler is None:
            return
        self.scheduler = None
        if not self.owner.server.detach_job(self.job):
            self.job.release()
            self.released.set()

    def _update(self, **changes: object) -> None:
        if self.done.is_set():
            return
        self.record = dataclasses.replace(self.record, **changes)  # type: ignore[arg-type]


class VideoJobs:
    """The registry of video jobs of one server: submit, look up, cancel, expire."""

    def __init__(self, server: JobServer, store: StateStore, files: VideoFiles, ttl_s: float) -> None:
        self.server, self.store, self.files, self.ttl_s = server, store, files, ttl_s
        self.records: dict[str, VideoRecord] = {}
        self.runs: dict[str, VideoRun] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loaded = False

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def load(self) -> None:
        """Read the records of earlier runs once (unfinished ones failed with the process that ran them)."""
        if self._loaded:
            return
        self._loaded = True
        for record in await asyncio.to_thread(self.files.load_records):
            if not record.finished:
                record = dataclasses.replace(
                    record,
                    status=FAILED,
                    completed_at=now(),
                    expires_at=now() + int(self.ttl_s),
                    error_code=codes.SERVER_SHUTDOWN,
                    error_message="the server stopped while this job ran; extend its parent again",
                )
            self.records.setdefault(record.id, record)

    def get(self, video_id: str) -> VideoRecord | None:
        run = self.runs.get(video_id)
        if run is not None:
            self.records[video_id] = run.record
        return self.records.get(video_id)

    def find_file(self, data: bytes) -> str | None:
        """The id of the completed video whose MP4 is ``data`` (an uploaded copy of a download)."""
        digest = hashlib.sha256(data).hexdigest()
        return next((r.id for r in self.records.values() if r.sha256 == digest), None)

    async def submit(self, record: VideoRecord, plan: VideoPlan, state: bytes | None) -> VideoRecord:
        """Queue a job (raises ``server.queue_full`` like a WebSocket session when every queue is full)."""
        run = VideoRun(self, record, plan, state)
        run.scheduler, position = self.server.submit(run.job)
        self.runs[record.id], self.records[record.id] = run, record
        self.spawn(self._watch(run))
        await self.persist(record)
        logger.info(
            "video %s queued (%s, %d segment(s) from %d%s)",
            record.id,
            plan.settings.preset,
            record.segments,
            record.first_segment,
            f", queue position {position}" if position is not None else "",
        )
        return record

    async def _watch(self, run: VideoRun) -> None:
        await run.done.wait()
        if not run.cancelled:
            self.records[run.record.id] = run.record
        self.runs.pop(run.record.id, None)

    async def persist(self, record: VideoRecord) -> None:
        if record.id in self.records or record.id in self.runs:
            self.records[record.id] = record
            try:
                await asyncio.to_thread(self.files.write_record, record)
            except OSError:
                logger.exception("video %s: writing its record failed", record.id)

    async def delete(self, video_id: str) -> bool:
        """Cancel (if running) and remove a job and its files; False if there is no such job."""
        run = self.runs.pop(video_id, None)
        record = self.records.pop(video_id, None)
        if run is None and record is None:
            return False
        if run is not None:
            run.cancel()
        await asyncio.to_thread(self._remove_files, video_id)
        return True

    def _remove_files(self, video_id: str) -> None:
        self.files.remove(video_id)
        try:
            self.store.delete(video_id)
        except (LTX2StreamError, OSError):
            logger.exception("video %s: removing its state failed", video_id)

    async def expire(self, at: int) -> None:
        """Drop finished jobs whose ``expires_at`` passed (their files and state with them)."""
        for video_id, record in list(self.records.items()):
            if record.finished and record.expires_at is not None and record.expires_at <= at:
                await self.delete(video_id)

    async def shutdown(self) -> None:
        """Fail every unfinished job (``server.shutdown``): its worker is about to stop."""
        error = SessionError("the server shut down while this job ran", code=codes.SERVER_SHUTDOWN)
        for run in list(self.runs.values()):
            await run.fail(error)
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5.0)


class RunEvents(PostedEvents):
    """The thread-safe JobEvents of a video job: each call is posted to the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, run: VideoRun) -> None:
        super().__init__(loop)
        self._run = run

    def target(self) -> object:
        return self._run
