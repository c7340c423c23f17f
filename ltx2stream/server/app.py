"""The streaming server: workers (one per device), the WebSocket endpoint, HTTP routes, and graceful shutdown.

Threads: the event loop moves bytes only; each worker thread runs model work for its sessions; a shared pool
of ``encode_threads`` runs the encoders. ``StreamingServer(config, host_factories)`` with ``await start()`` /
``await shutdown()``; ``ltx2stream.server.serve`` adds signal handling. See docs/server.md.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from websockets.asyncio.server import Server, ServerConnection, serve

from ltx2stream import codes
from ltx2stream import protocol as P
from ltx2stream.errors import LTX2StreamError, ProtocolError, SessionError
from ltx2stream.media.codecs import aac_options
from ltx2stream.media.process import EncoderProcesses
from ltx2stream.pipeline.presets import DEFAULT_PRESET, PRESETS
from ltx2stream.server.admission import (
    MimeCache,
    check_cost,
    image_condition,
    load_resume,
    session_settings,
)
from ltx2stream.server.auth import select_subprotocol
from ltx2stream.server.config import MiB, ServerConfig
from ltx2stream.server.connection import Connection
from ltx2stream.server.ending import Checkpoint, EndReason
from ltx2stream.server.http import HttpRoutes
from ltx2stream.server.job import Job, JobSpec
from ltx2stream.server.live import LiveSession, LoopEvents, Services
from ltx2stream.server.metrics import ServerMetrics
from ltx2stream.server.outbox import Outbox
from ltx2stream.server.scheduler import Scheduler
from ltx2stream.server.streaming import (
    EncoderFactory,
    budgeted_encoder_factory,
    default_encoder_factory,
    process_encoder_factory,
)
from ltx2stream.server.videos import FrontBinding, VideoFiles, VideoJobs, VideosApi, front_connection
from ltx2stream.server.worker import HostFactory, Worker
from ltx2stream.session.state_machine import SteeringSchedule
from ltx2stream.session.store import StateStore, new_session_id, open_store

logger = logging.getLogger(__name__)


class StreamingServer:
    """One server process: ``len(host_factories)`` workers behind one WebSocket + HTTP port."""

    def __init__(
        self,
        config: ServerConfig,
        host_factories: HostFactory | Sequence[HostFactory],
        *,
        encoder_factory: EncoderFactory = default_encoder_factory,
    ) -> None:
        factories = [host_factories] if callable(host_factories) else list(host_factories)
        if not factories:
            raise ValueError("StreamingServer needs at least one host factory (one per device)")
        aac_options()  # an unusable LTX2STREAM_AAC_CODER stops the server here, not each session's encoder
        self.config = config
        self.metrics = ServerMetrics()
        self.store: StateStore = open_store(
            config.store_url or config.store_dir, keep_last=config.store_keep_last, ttl_s=config.store_ttl_s
        )
        persist = config.persist_every_segment or config.store_url is not None
        self.services = Services(self.store, self.metrics, config.limits, persist)
        self.encode_pool = ThreadPoolExecutor(config.encode_threads, thread_name_prefix="ltx2stream-encode")
        self.encoder_processes: EncoderProcesses | None = None
        if encoder_factory is default_encoder_factory and config.encoder_processes:
            self.encoder_processes = EncoderProcesses(config.encode_threads)
            encoder_factory = process_encoder_factory(self.encoder_processes, config.x264_threads)
        elif encoder_factory is default_encoder_factory and config.x264_threads is not None:
            encoder_factory = budgeted_encoder_factory(config.x264_threads)
        self.workers = [
            Worker(
                f"worker{i}",
                f,
                Scheduler(config.max_active_per_worker, config.max_queue),
                self.encode_pool,
                encoder_factory,
                torch_threads=config.torch_threads,
                encode_during_decode=config.encode_during_decode,
            )
            for i, f in enumerate(factories)
        ]
        self.mimes = MimeCache(encoder_factory, self.encode_pool)
        self.sessions: dict[str, LiveSession] = {}
        self.videos = VideoJobs(self, self.store, VideoFiles(videos_dir(config)), config.store_ttl_s)
        self._by_job: dict[Job, LiveSession] = {}
        self._worker_of: dict[Job, Worker] = {}
        self.closing = asyncio.Event()  # set when shutdown begins
        self._server: Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._switch_interval: float | None = None  # Python's GIL switch interval before start (restored)
        self._releases: set[asyncio.Task[None]] = set()  # lease releases after endings (awaited on shutdown)

    # ---- lifecycle -----------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the workers (loading happens in their threads) and listen."""
        if self.config.switch_interval_s is not None:  # process-wide; given back at shutdown
            self._switch_interval = sys.getswitchinterval()
            sys.setswitchinterval(self.config.switch_interval_s)
        for worker in self.workers:
            worker.start()
        if self.encoder_processes is not None:  # started now, not on the first session's critical path
            await asyncio.get_running_loop().run_in_executor(self.encode_pool, self.encoder_processes.start)
        c = self.config
        self._server = await serve(
            self._handle,
            c.host,
            c.port,
            process_request=HttpRoutes(self).process_request,
            create_connection=front_connection(  # /v1/ (the Videos API) is served there, the rest as before
                FrontBinding(
                    VideosApi(c, self.videos, self.served_presets).handle,
                    max_body_bytes=c.limits.max_image_bytes + MiB,
                )
            ),
            open_timeout=None,  # applied by the connection to the WebSocket handshake only
            select_subprotocol=lambda _conn, offered: select_subprotocol(offered),
            compression=None,
            max_size=c.limits.max_message_bytes,
            max_queue=4,
            write_limit=c.write_limit,
            ping_interval=c.ping_interval_s,
            ping_timeout=c.ping_timeout_s,
            close_timeout=c.close_timeout_s,
        )
        self._tasks = [asyncio.create_task(self._watch_loading(w)) for w in self.workers]
        self._tasks.append(asyncio.create_task(self._cleanup_store()))
        self._tasks.append(asyncio.create_task(self._renew_leases()))
        logger.info("listening on %s:%d (%d worker(s))", c.host, self.port, len(self.workers))

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def ready(self) -> bool:
        """True once every worker's host is loaded and warmed, and healthy; False while draining (``/readyz``)."""
        return not self.closing.is_set() and all(w.ready for w in self.workers)

    @property
    def not_ready_reason(self) -> str:
        """Why ``/readyz`` answers 503: draining, unhealthy (a lost rank, a failed host) or loading."""
        if self.closing.is_set():
            return "draining"
        if any(w.error is not None or (w.host is not None and not w.ready) for w in self.workers):
            return "unhealthy"
        return "loading"

    async def shutdown(self) -> None:
        """Stop accepting, checkpoint and close every session (``final`` reason ``shutdown``), stop
        workers."""
        if self.closing.is_set():
            return
        self.closing.set()
        deadline = self.config.shutdown_timeout_s
        if self._server is not None:
            self._server.close(close_connections=False)
        await self.videos.shutdown()
        sessions = list(self.sessions.values())
        for session in sessions:
            session.end.request(EndReason.SHUTDOWN)
        if sessions:
            _done, pending = await asyncio.wait(
                [asyncio.create_task(s.end.ended.wait()) for s in sessions], timeout=deadline
            )
            if pending:
                logger.warning("shutdown: %d session(s) did not finish in %.0f s", len(pending), deadline)
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), deadline)
            except TimeoutError:
                self._server.close(close_connections=True)
        if self._releases:  # drained sessions' leases go back before we exit: survivors resume them at once
            await asyncio.wait(set(self._releases), timeout=deadline)
        for task in self._tasks:
            task.cancel()
        stopped = await asyncio.gather(*(asyncio.to_thread(w.stop, deadline) for w in self.workers))
        self.encode_pool.shutdown(wait=False, cancel_futures=True)
        if self.encoder_processes is not None:
            await asyncio.to_thread(self.encoder_processes.close)
        if self._switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)
        logger.info("shutdown complete (workers stopped: %s)", all(stopped))

    async def _watch_loading(self, worker: Worker) -> None:
        await asyncio.to_thread(worker.loaded.wait)
        self.metrics.ready.set(1.0 if self.ready else 0.0)
        if worker.error is not None:
            error = SessionError(
                f"the model host of {worker.name} failed to load", code=codes.SERVER_INTERNAL
            )
            for job, session in list(self._by_job.items()):
                if self._worker_of.get(job) is worker:
                    session.end.request(EndReason.FAILED, error)

    async def _cleanup_store(self) -> None:
        while True:
            await asyncio.sleep(self.config.store_cleanup_interval_s)
            try:
                await asyncio.to_thread(self.store.cleanup, time.time())
            except OSError:
                logger.exception("store cleanup failed")

    async def _renew_leases(self) -> None:
        """Keep the lease of every live session (a third of the lease TTL between renewals)."""
        while True:
            await asyncio.sleep(self.config.lease_ttl_s / 3)
            for session_id in list(self.sessions):
                try:
                    kept = await asyncio.to_thread(
                        self.store.renew_lease, session_id, self.config.replica, self.config.lease_ttl_s
                    )
                except LTX2StreamError:
                    logger.exception("lease renewal of %s failed", session_id)
                    continue
                if not kept and session_id in self.sessions:
                    logger.warning("session %s: lease lost; taking it again", session_id)
                    await self._take_lease(session_id)

    async def _take_lease(self, session_id: str) -> bool:
        return await asyncio.to_thread(
            self.store.acquire_lease, session_id, self.config.replica, self.config.lease_ttl_s
        )

    async def release_lease(self, session_id: str) -> None:
        """Give the session's lease back once its checkpoint is stored (another replica may resume it)."""
        try:
            await asyncio.to_thread(self.store.release_lease, session_id, self.config.replica)
        except LTX2StreamError:
            logger.exception("releasing the lease of %s failed (it runs out by itself)", session_id)

    async def _handle(self, ws: ServerConnection) -> None:
        self.metrics.connections.inc()
        try:
            await Connection(self, ws).run()
        finally:
            self.metrics.connections.inc(-1)

    # ---- sessions ------------------------------------------------------------------------------------------

    async def admit(self, msg: P.Open, outbox: Outbox) -> LiveSession:
        """Turn a valid ``open`` into a queued or active session and queue ``accepted`` (+ ``queued``).

        Raises:
            LTX2StreamError: every refusal, with its code (fatal: the session never started).
        """
        settings = session_settings(msg.settings)
        worker = self._pick_worker(settings.preset)
        check_cost(settings.preset, settings.width, settings.height, settings.frames, settings.fps)
        wanted = msg.resume_from.session_id if msg.resume_from else None
        still_live = await self._wait_until_ended(wanted)  # its checkpoint must be written before we load
        if wanted is not None and not still_live and not await self._take_lease(wanted):
            raise _busy(wanted, "runs on another replica")  # its lease runs out if that replica died
        try:
            resume = await load_resume(msg.resume_from, settings, self.store)
        except LTX2StreamError as e:
            if wanted is not None and not still_live:
                await self.release_lease(wanted)
            if not isinstance(e, SessionError):
                raise
            if (
                still_live and e.code == codes.SESSION_NOT_FOUND
            ):  # nothing stored to branch from: not "not found"
                raise _busy(wanted, "is still live on another connection") from e
            raise
        mime = await self.mimes.mime_for(settings)
        if self.closing.is_set():
            raise SessionError("the server is shutting down", code=codes.SERVER_SHUTDOWN)
        session_id = wanted if wanted is not None and not still_live else new_session_id()
        if session_id != wanted:
            await self._take_lease(session_id)  # a fresh id: nobody else holds it
        start = resume.segment_index + 1 if resume else 0
        seed = resume.next_seed if resume else settings.seed
        schedule = SteeringSchedule(msg.prompt, seed, lookahead=msg.lookahead, start_index=start)
        events = LoopEvents(asyncio.get_running_loop(), progress_interval_s=self.config.progress_interval_s)
        job = Job(
            JobSpec(session_id, settings, image_condition(msg.image), resume.state if resume else None),
            schedule,
            events,
        )
        session = LiveSession(
            job,
            worker.scheduler,
            outbox,
            self.services,
            Checkpoint(resume.segment_index, resume.state, stored=resume.stored_id == session_id)
            if resume
            else None,
        )
        events.session = session
        position = worker.scheduler.add(job)  # raises server.queue_full
        self.sessions[session_id], self._by_job[job], self._worker_of[job] = session, session, worker
        outbox.put(
            P.Accepted(
                session_id=session_id,
                protocol_version=P.PROTOCOL_VERSION,
                settings=msg.settings,
                limits=P.LimitsInfo.from_limits(self.config.limits),
                mime=mime,
                resumed_from_segment=resume.segment_index if resume else None,
            )
        )
        if position is not None:
            session.queue_position = position
            session.on_queued(position)
        self._update_gauges()
        logger.info(
            "session %s accepted (%s %dx%d, %s)",
            session_id,
            settings.preset,
            settings.width,
            settings.height,
            f"queued at {position}" if position is not None else "active",
        )
        return session

    def submit(self, job: Job) -> tuple[Scheduler, int | None]:
        """Queue a video job like a session (same workers, same round-robin; raises server.queue_full)."""
        if self.closing.is_set():
            raise SessionError("the server is shutting down", code=codes.SERVER_SHUTDOWN)
        worker = self._pick_worker(job.spec.settings.preset)
        position = worker.scheduler.add(job)
        self._worker_of[job] = worker
        self._update_gauges()
        return worker.scheduler, position

    def session_live(self, session_id: str) -> bool:
        return session_id in self.sessions

    def served_presets(self) -> tuple[str, ...]:
        """The presets the workers serve (before they loaded: the configured list, else every preset, the default
        first: a request's preset is then checked by the worker that loads it)."""
        served = [p for w in self.workers if w.host is not None for p in w.host.presets]
        return (
            tuple(dict.fromkeys(served))
            or self.config.limits.presets
            or tuple(dict.fromkeys((DEFAULT_PRESET, *PRESETS)))
        )

    def _pick_worker(self, preset: str) -> Worker:
        usable = [w for w in self.workers if w.error is None]
        if not usable:
            raise SessionError(
                "no model host could be loaded; see the server log", code=codes.SERVER_INTERNAL
            )
        worker = min(usable, key=lambda w: sum(w.scheduler.counts()))
        if worker.host is not None and preset not in worker.host.presets:
            raise ProtocolError(
                f"open.settings.preset: {preset!r} is not one of {', '.join(map(repr, worker.host.presets))}",
                code=codes.PROTOCOL_OUT_OF_RANGE,
            )
        return worker

    async def _wait_until_ended(self, session_id: str | None) -> bool:
        """Wait for a live session with this id to end; True if it is still live (not ending) afterwards.

        A client that reconnects right after losing its connection races the server noticing the loss: waiting
        here makes the resume see the checkpoint of the old connection. Up to ``close_timeout_s`` for the server
        to notice; once the old session is ending, its worker may still be inside a denoising step, so up to
        ``shutdown_timeout_s`` more (the bound of the ending sequence) for its checkpoint to land. Still live
        and not ending afterwards: resume as a branch.

        Raises:
            SessionError: ``session.busy`` (retryable) when the old session's ending outlasts both bounds.
        """
        live = self.sessions.get(session_id) if session_id is not None else None
        if live is None:
            return False
        if await _ended_within(live, self.config.close_timeout_s):
            return False
        if live.end.outcome is None:  # its connection is alive: a branch
            return True
        logger.info("resume of %s waits for its previous connection's checkpoint", session_id)
        if await _ended_within(live, self.config.shutdown_timeout_s):
            return False
        raise _busy(live.session_id, "is still ending on its previous connection")

    @property
    def shutdown_timeout_s(self) -> float:
        """How long an ending session waits for its worker (the bound of the end sequence)."""
        return self.config.shutdown_timeout_s

    def detach(self, session: LiveSession) -> bool:
        """Remove the session's job from its worker (telling the waiting ones their new positions); returns
        whether the worker is busy with it now."""
        return self.detach_job(session.job)

    def detach_job(self, removed: Job) -> bool:
        """Remove a live session's or a video's job from its worker; True while the worker is inside a turn of
        it (it releases the job itself then)."""
        worker = self._worker_of.pop(removed)
        in_use, admission = worker.scheduler.remove(removed)
        self._by_job.pop(removed, None)
        for job, position in admission.positions:
            waiting = self._by_job.get(job)
            if waiting is not None and waiting.queue_position != position:
                waiting.queue_position = position
                waiting.on_queued(position)
        for job in admission.admitted:
            if job in self._by_job:
                self._by_job[job].queue_position = None
        self._update_gauges()
        return in_use

    def forget(self, session: LiveSession) -> None:
        """Drop an ended session from the live registry (after its checkpoint: resumes wait for that)."""
        if self.sessions.get(session.session_id) is session:
            del self.sessions[session.session_id]
        # after its checkpoint: another replica may take the session over now
        task = asyncio.get_running_loop().create_task(self.release_lease(session.session_id))
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    def _update_gauges(self) -> None:
        active = waiting = 0
        for worker in self.workers:
            a, w = worker.scheduler.counts()
            active, waiting = active + a, waiting + w
        self.metrics.sessions.set(active, state="active")
        self.metrics.sessions.set(waiting, state="queued")
        self.metrics.queue_length.set(waiting)


def videos_dir(config: ServerConfig) -> Path:
    """Where video jobs keep their MP4s and records: next to the state store (``<store_dir>-videos``)."""
    return config.store_dir.with_name(config.store_dir.name + "-videos")


async def _ended_within(session: LiveSession, timeout: float) -> bool:
    try:
        await asyncio.wait_for(session.end.ended.wait(), timeout)
    except TimeoutError:
        return False
    return True


def _busy(session_id: str | None, why: str) -> SessionError:
    return SessionError(
        f"resume_from.session_id: session {session_id} {why} and its state is not stored yet; "
        "retry in a few seconds",
        code=codes.SESSION_BUSY,
    )
