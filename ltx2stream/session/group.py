"""One model host over a sequence-parallel group of N processes (``serve --sp N``).

Rank 0 is the server's worker: it holds a :class:`GroupHost` (a ``ModelHost``). Ranks 1..N-1 are follower
processes spawned by it, each running :func:`follow` over the same kind of ``PipelineHost`` (transformer wrapped in
``SequenceParallelTransformer``, text encoded on rank 0 and broadcast). Every turn on rank 0 (warm-up, opening a
session, one segment) is first sent to every follower as a :class:`Command` over its pipe, then run by all ranks
in lockstep, so each collective of the turn is entered by every rank in the same order. Followers run the same
controller code (they decode too: the continuation anchor comes from the decoded frames); they discard media.

* Cancellation: the cancel flag is reduced over the group at every check (``GroupCancel``), so all ranks stop at
  the same denoising step and the group stays in step.
* A follower that dies or stalls makes the turn's collectives fail (the peer's socket closes, or the group timeout
  runs out): the segment fails with ``server.rank_lost`` and the host reports itself unhealthy (``/readyz`` 503),
  every later turn fails at once instead of hanging.
* Followers exit when rank 0 says ``stop`` or when their parent process is gone.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import multiprocessing as mp
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import timedelta
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import torch
import torch.distributed as dist

from ltx2stream import codes
from ltx2stream.errors import LTX2StreamError, SessionError
from ltx2stream.pipeline.components import ModelPaths
from ltx2stream.session.api import (
    CancelToken,
    ImageCondition,
    NullSink,
    SegmentReport,
    SegmentRequest,
    SegmentSink,
    SessionSettings,
)
from ltx2stream.session.continuation import ContinuationOptions
from ltx2stream.session.controller import SessionController
from ltx2stream.session.host import PipelineHost

logger = logging.getLogger(__name__)

STOP, WARM_UP, OPEN, SEGMENT, READY = "stop", "warm_up", "open", "segment", "ready"


@dataclass(frozen=True)
class GroupSpec:
    """How to build the group: ranks, devices (one per rank), collective timeout, host arguments."""

    world: int
    presets: tuple[str, ...]
    paths: ModelPaths | None = None
    devices: tuple[str, ...] = ()  # default: cuda:0..N-1 when CUDA is available, else cpu for every rank
    dtype: torch.dtype | None = None
    options: ContinuationOptions = field(default_factory=ContinuationOptions)
    timeout_s: float = 60.0  # a collective that waits longer fails the turn (server.rank_lost)
    threads_per_rank: int = 0  # CPU threads per rank (0: torch's default)

    def device(self, rank: int) -> str:
        if self.devices:
            return self.devices[rank]
        return f"cuda:{rank}" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class Command:
    """One turn, sent to every follower before rank 0 runs it. ``closed``: sessions dropped since the last one."""

    kind: str
    key: int = -1
    settings: SessionSettings | None = None
    image: ImageCondition | None = None
    state: bytes | None = None
    request: SegmentRequest | None = None
    closed: tuple[int, ...] = ()


class GroupCancel(CancelToken):
    """A cancel token whose answer is the maximum over the group (every rank polls it at the same points)."""

    def __init__(self, local: CancelToken | None, group: Any) -> None:
        super().__init__()
        self.local, self.group = local, group

    @property
    def cancelled(self) -> bool:
        flag = torch.tensor([1 if self.local is not None and self.local.cancelled else 0])
        dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self.group)
        return bool(flag.item())

    @property
    def finishing(self) -> bool:
        """Rank 0's own answer (no collective): only rank 0 sends media; the followers take its state next turn."""
        return self.local is not None and self.local.finishing


def _load(spec: GroupSpec, rank: int) -> PipelineHost:
    """This rank's host with every preset's models loaded (before the group forms: loading times differ)."""
    if spec.threads_per_rank:
        torch.set_num_threads(spec.threads_per_rank)
    device = spec.device(rank)
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    host = PipelineHost(spec.presets, spec.paths, device=device, dtype=spec.dtype, options=spec.options)
    host.load()
    return host


def _join(spec: GroupSpec, host: PipelineHost, rank: int, port: int) -> Any:
    """Form the group (NCCL on CUDA devices, else gloo), split the host's transformer; returns the control group."""
    cuda = spec.device(rank).startswith("cuda")
    timeout = timedelta(seconds=spec.timeout_s)
    dist.init_process_group(
        "nccl" if cuda else "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=spec.world,
        timeout=timeout,
    )
    control = dist.new_group(backend="gloo", timeout=timeout) if cuda else dist.group.WORLD
    host.join_group(dist.group.WORLD)
    return control


class GroupHost:
    """``ModelHost`` of rank 0: mirrors every turn to the followers, then runs it."""

    def __init__(self, spec: GroupSpec) -> None:
        if spec.world < 2:
            raise ValueError(f"a sequence-parallel group needs at least 2 ranks, got {spec.world}")
        self.spec = spec
        self.presets = spec.presets
        self.broken: str | None = None  # why the group is unusable
        self._keys = itertools.count()
        self._closed: list[int] = []
        if (
            not spec.threads_per_rank
        ):  # every rank computes with the same thread count (same kernels, same bits)
            spec = dataclasses.replace(spec, threads_per_rank=torch.get_num_threads())
            self.spec = spec
        _write_tiny_models(spec.presets)  # before the followers start: one writer for the shared cache
        port = _free_port()
        ctx = mp.get_context("spawn")
        self._links: list[Connection] = []
        self._procs: list[BaseProcess] = []
        for rank in range(1, spec.world):
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(
                target=_follower_main,
                args=(spec, rank, port, theirs, os.getpid()),
                name=f"ltx2stream-sp{rank}",
            )
            proc.start()
            self._links.append(mine)
            self._procs.append(proc)
        try:
            self.host = _load(spec, 0)
            self._await_followers()
            for link in self._links:
                link.send(READY)
            self.control = _join(spec, self.host, 0, port)
        except BaseException:
            for follower in self._procs:  # never leave followers waiting for a group that will not form
                follower.terminate()
            raise
        logger.info("sequence-parallel group of %d ranks ready (%s)", spec.world, dist.get_backend())

    def _await_followers(self, timeout_s: float = 3600.0) -> None:
        """Wait until every follower has loaded its models (loading is not bounded by the collective timeout)."""
        deadline = time.monotonic() + timeout_s
        for link, proc in zip(self._links, self._procs, strict=True):
            while not link.poll(0.5):
                if not proc.is_alive() or time.monotonic() > deadline:
                    self.close()
                    raise SessionError(
                        f"{proc.name} did not load its models (exit code {proc.exitcode})",
                        code=codes.SERVER_RANK_LOST,
                    )
            if link.recv() != READY:
                raise SessionError(f"{proc.name} sent an unexpected greeting", code=codes.SERVER_RANK_LOST)

    @property
    def healthy(self) -> bool:
        """False once a rank died or a turn's collectives failed (``/readyz`` answers 503)."""
        if self.broken is None:
            dead = [p.name for p in self._procs if not p.is_alive()]
            if dead:
                self.broken = f"rank process(es) {', '.join(str(d) for d in dead)} exited"
        return self.broken is None

    def warm_up(self) -> None:
        self._turn(Command(WARM_UP), self.host.warm_up)

    def open_session(
        self, settings: SessionSettings, *, image: ImageCondition | None = None, state: bytes | None = None
    ) -> GroupGenerator:
        key = next(self._keys)
        cmd = Command(OPEN, key, settings=settings, image=image, state=state)
        controller = self._turn(cmd, lambda: self.host.open_session(settings, image=image, state=state))
        return GroupGenerator(self, key, controller)

    def close(self) -> None:
        """Tell the followers to exit and wait for them (server shutdown)."""
        if self.broken is None and dist.is_initialized():
            self._send(Command(STOP))
        for proc in self._procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
        if dist.is_initialized():
            dist.destroy_process_group()

    def _turn(self, cmd: Command, run: Any) -> Any:
        """Send ``cmd`` to every follower, then run it here; collective failures break the group."""
        if not self.healthy:
            raise SessionError(
                f"the sequence-parallel group is broken: {self.broken}", code=codes.SERVER_RANK_LOST
            )
        self._send(cmd)
        try:
            return run()
        except LTX2StreamError:
            raise
        except (RuntimeError, OSError) as e:  # gloo/NCCL: peer gone, or the collective timeout ran out
            self.broken = f"{type(e).__name__}: {e}"
            logger.exception("sequence-parallel group broken during %s", cmd.kind)
            raise SessionError(
                f"a rank of the sequence-parallel group failed during {cmd.kind}: {e}",
                code=codes.SERVER_RANK_LOST,
            ) from e

    def _send(self, cmd: Command) -> None:
        closed, self._closed = tuple(self._closed), []
        cmd = Command(cmd.kind, cmd.key, cmd.settings, cmd.image, cmd.state, cmd.request, closed)
        try:
            for link in self._links:
                link.send(cmd)
        except OSError as e:
            self.broken = f"follower pipe: {e}"
            raise SessionError(
                f"a rank of the sequence-parallel group is gone: {e}", code=codes.SERVER_RANK_LOST
            ) from e


class GroupGenerator:
    """A session on rank 0 of a group; its twins on the followers are driven by the same commands."""

    def __init__(self, host: GroupHost, key: int, controller: SessionController) -> None:
        self._host, self.key, self.controller = host, key, controller
        self.settings = controller.settings
        self.sample_rate = controller.sample_rate

    @property
    def next_index(self) -> int:
        return self.controller.next_index

    def run_segment(
        self, request: SegmentRequest, sink: SegmentSink, cancel: CancelToken | None = None
    ) -> SegmentReport:
        token = GroupCancel(cancel, self._host.control)
        state = self.controller.snapshot() if self.controller.state is not None else None
        cmd = Command(
            SEGMENT, self.key, request=request, state=state
        )  # followers continue rank 0's exact state
        report: SegmentReport = self._host._turn(
            cmd, lambda: self.controller.run_segment(request, sink, token)
        )
        return report

    def snapshot(self) -> bytes:
        return self.controller.snapshot()

    def __del__(self) -> None:  # the followers drop their twin with the next command
        self._host._closed.append(self.key)


def _follower_main(spec: GroupSpec, rank: int, port: int, link: Connection, parent: int) -> None:
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s sp{rank} %(levelname)s %(name)s: %(message)s"
    )
    host = _load(spec, rank)
    link.send(READY)
    if link.recv() != READY:
        return
    control = _join(spec, host, rank, port)
    follow(host, control, link, parent)


def follow(host: PipelineHost, control: Any, link: Connection, parent: int) -> None:
    """Run rank 0's commands until ``stop`` (or until the parent process is gone)."""
    sessions: dict[int, SessionController] = {}
    opened: dict[int, Command] = {}
    while True:
        if not link.poll(1.0):
            if os.getppid() != parent:
                logger.warning("parent process %d is gone; leaving the group", parent)
                return
            continue
        try:
            cmd: Command = link.recv()
        except EOFError:
            return
        for key in cmd.closed:
            sessions.pop(key, None)
            opened.pop(key, None)
        if cmd.kind == STOP:
            return
        try:
            _run(host, control, sessions, opened, cmd)
        except LTX2StreamError as e:  # rank 0 raises the same error (same inputs, same code)
            logger.info("command %s failed like on rank 0: %s", cmd.kind, e.code)


def _run(
    host: PipelineHost,
    control: Any,
    sessions: dict[int, SessionController],
    opened: dict[int, Command],
    cmd: Command,
) -> None:
    if cmd.kind == WARM_UP:
        host.warm_up()
    elif cmd.kind == OPEN:
        assert cmd.settings is not None
        opened[cmd.key] = cmd
        sessions[cmd.key] = host.open_session(cmd.settings, image=cmd.image, state=cmd.state)
    elif cmd.kind == SEGMENT:
        assert cmd.request is not None
        if (
            cmd.state is not None
        ):  # rank 0's state after its last segment: conditioning identical on every rank
            settings = opened[cmd.key].settings
            assert settings is not None
            sessions[cmd.key] = host.open_session(settings, state=cmd.state)
        sessions[cmd.key].run_segment(cmd.request, NullSink(), GroupCancel(None, control))
    else:
        raise ValueError(f"unknown group command {cmd.kind!r}")


def _write_tiny_models(presets: tuple[str, ...]) -> None:
    from ltx2stream.models.tiny import ensure_tiny_model
    from ltx2stream.pipeline.presets import get_preset

    for name in presets:
        preset = get_preset(name)
        if preset.tiny:
            ensure_tiny_model(preset.flavour, size=preset.embedded)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
