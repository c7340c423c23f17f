"""Test doubles and helpers for the server tests (test code only, never imported by the product).

``ToyHost`` / ``ToyGenerator`` implement ``ModelHost`` / ``SessionGenerator`` without a model: each segment
runs ``steps`` "denoising steps" (a sleep to emulate compute, a deterministic update of a small latent tensor,
a cancel check between steps), then emits procedural frames in two chunks and a tone. The state is the latent
tensor in a real ``SerializedState``, so resume is bit-exact exactly when the server resumes the right state
with the right seed. ``Client`` is a small protocol client over a real WebSocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from websockets.asyncio.client import ClientConnection, connect

from ltx2stream import protocol as P
from ltx2stream.errors import InputError
from ltx2stream.server.app import StreamingServer
from ltx2stream.server.config import ServerConfig
from ltx2stream.session.api import (
    CancelToken,
    ImageCondition,
    SegmentCancelled,
    SegmentReport,
    SegmentRequest,
    SegmentSink,
    SessionSettings,
)
from ltx2stream.session.state import SerializedState

CLIENT_LIMITS = P.ProtocolLimits.for_client()
SETTINGS = P.Settings(preset="toy", width=64, height=64, fps=8.0, frames=9, overlap=0, seed=7)


def _digest(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "little")


class ToyGenerator:
    """A deterministic SessionGenerator double: latent_{k} = f(latent_{k-1}, prompt, seed)."""

    def __init__(self, host: ToyHost, settings: SessionSettings, state: bytes | None) -> None:
        self.host, self.settings, self.sample_rate = host, settings, host.sample_rate
        self.latent = torch.zeros(8, dtype=torch.float32)
        self._next, self.seeds, self.history = 0, [], []
        if state is not None:
            parsed = SerializedState.from_bytes(state)
            self.latent = parsed.tensors["latent"].clone()
            self._next = parsed.segment_index + 1
            self.seeds, self.history = list(parsed.meta["seeds"]), list(parsed.meta["prompt_history"])

    @property
    def next_index(self) -> int:
        return self._next

    def run_segment(
        self, request: SegmentRequest, sink: SegmentSink, cancel: CancelToken | None = None
    ) -> SegmentReport:
        assert request.index == self._next, (request.index, self._next)
        t0 = time.perf_counter()
        latent = self.latent.clone()
        for step in range(self.host.steps):
            self.host.step_boundary(request.index, step, cancel)
            if cancel is not None and cancel.cancelled:
                self.host.note_cancel(request.index)
                raise SegmentCancelled(request.index)
            time.sleep(self.host.step_s)
            gen = torch.Generator().manual_seed(_digest(request.prompt, request.seed, step) & ((1 << 62) - 1))
            latent = 0.5 * latent + torch.rand(8, generator=gen)
            self.host.note_step(request.index, step + 1)
            sink.progress("stage1", step + 1, self.host.steps)
        frames = self._frames(latent, request.index)
        half = len(frames) // 2
        sink.video(frames[:half])
        sink.video(frames[half:])
        audio = self._tone(latent, len(frames))
        sink.audio(audio)
        self.latent, self._next = latent, self._next + 1
        self.seeds.append(request.seed)
        self.history.append({"segment": request.index, "prompt": request.prompt, "seed": request.seed})
        self.host.record(request, latent)
        return SegmentReport(
            request.index,
            request.prompt,
            request.seed,
            len(frames),
            audio.shape[1],
            {"stage1": time.perf_counter() - t0},
        )

    def _frames(self, latent: torch.Tensor, index: int) -> np.ndarray:
        s = self.settings
        if self.host.noise:
            rng = np.random.default_rng(_digest(latent.tolist()) & 0xFFFFFFFF)
            return rng.integers(0, 256, (s.frames, s.height, s.width, 3), dtype=np.uint8)
        y, x = np.mgrid[0 : s.height, 0 : s.width]
        out = np.empty((s.frames, s.height, s.width, 3), dtype=np.uint8)
        for f in range(s.frames):  # a gradient moving with time, tinted by the latent
            base = (x + y + 4 * (index * s.frames + f)) % 256
            for ch in range(3):
                out[f, :, :, ch] = (base + int(latent[ch] * 60)) % 256
        return out

    def _tone(self, latent: torch.Tensor, frames: int) -> np.ndarray:
        n = round(frames / self.settings.fps * self.sample_rate)
        t = np.arange(n, dtype=np.float32) / self.sample_rate
        tone = 0.2 * np.sin(2 * np.pi * (220 + 100 * float(latent[0])) * t)
        return np.stack([tone, tone]).astype(np.float32)  # [2, n]

    def snapshot(self) -> bytes:
        s = self.settings
        meta = {
            "preset": s.preset,
            "width": s.width,
            "height": s.height,
            "fps": s.fps,
            "segment_index": self._next - 1,
            "timeline_position": self._next * s.frames / s.fps,
            "prompt_history": self.history,
            "seeds": self.seeds,
        }
        return SerializedState(tensors={"latent": self.latent}, meta=meta).to_bytes()


class ToyHost:
    """A ModelHost double with a configurable step time, warm-up time and a log of generated segments."""

    def __init__(
        self,
        *,
        steps: int = 4,
        step_s: float = 0.02,
        warm_s: float = 0.0,
        noise: bool = False,
        presets: tuple[str, ...] = ("toy",),
        sample_rate: int = 16000,
    ) -> None:
        self.presets, self.steps, self.step_s, self.warm_s = presets, steps, step_s, warm_s
        self.noise, self.sample_rate = noise, sample_rate
        self.release_warm_up = threading.Event()
        if warm_s <= 0:
            self.release_warm_up.set()
        self._lock = threading.Lock()
        self.segments: list[tuple[int, str, int, bytes]] = []  # (index, prompt, seed, latent bytes)
        self.cancels: list[tuple[int, float]] = []  # (index, time.monotonic() of the cancel check)
        self.steps_done: list[tuple[int, int]] = []  # (segment index, denoising step done), in order
        # hold_at = (index, step): the generator waits at that step boundary (before its cancel check) until
        # `release` is set; `held` is set once it waits there, `held_token` is the segment's CancelToken.
        self.hold_at: tuple[int, int] | None = None
        self.held, self.release = threading.Event(), threading.Event()
        self.held_token: CancelToken | None = None

    def warm_up(self) -> None:
        self.release_warm_up.wait(self.warm_s if self.warm_s > 0 else None)

    def open_session(
        self, settings: SessionSettings, *, image: ImageCondition | None = None, state: bytes | None = None
    ) -> ToyGenerator:
        if settings.width > 512:  # a preset rule only the generator knows, like two-stage multiples of 64
            raise InputError(f"width {settings.width} is above this preset's 512", code="input.size_rule")
        return ToyGenerator(self, settings, state)

    def record(self, request: SegmentRequest, latent: torch.Tensor) -> None:
        with self._lock:
            self.segments.append((request.index, request.prompt, request.seed, latent.numpy().tobytes()))

    def step_boundary(self, index: int, step: int, cancel: CancelToken | None) -> None:
        if self.hold_at == (index, step):
            self.held_token = cancel
            self.held.set()
            self.release.wait(60)

    def note_step(self, index: int, step: int) -> None:
        with self._lock:
            self.steps_done.append((index, step))

    def note_cancel(self, index: int) -> None:
        with self._lock:
            self.cancels.append((index, time.monotonic()))


def host_from_args(args: Any, device: str) -> ToyHost:
    """A ``--host-factory`` for subprocess tests: ``server_doubles:host_from_args``."""
    return ToyHost(step_s=0.05)


def make_config(tmp_path: Path, **overrides: Any) -> ServerConfig:
    base: dict[str, Any] = {
        "port": 0,
        "store_dir": tmp_path / "store",
        "web_root": None,
        "ping_interval_s": None,
        "close_timeout_s": 1.0,
        "shutdown_timeout_s": 5.0,
    }
    base.update(overrides)
    return ServerConfig(**base)


@contextlib.asynccontextmanager
async def running(
    tmp_path: Path, host: ToyHost | None = None, **overrides: Any
) -> AsyncIterator[tuple[StreamingServer, ToyHost]]:
    """A started server on an ephemeral loopback port with one ToyHost worker; shut down on exit."""
    host = host or ToyHost()
    factory = overrides.pop("encoder_factory", None)
    extra = {"encoder_factory": factory} if factory is not None else {}
    app = StreamingServer(make_config(tmp_path, **overrides), lambda: host, **extra)
    await app.start()
    try:
        yield app, host
    finally:
        await app.shutdown()


class Client:
    """A protocol client: typed send, typed receive, and a record of everything received."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.received: list[P.Message] = []

    @classmethod
    async def connect(cls, port: int, path: str = "/ws", **kwargs: Any) -> Client:
        kwargs.setdefault("max_size", CLIENT_LIMITS.max_message_bytes)
        return cls(await connect(f"ws://127.0.0.1:{port}{path}", **kwargs))

    async def send(self, msg: P.Message) -> None:
        await self.ws.send(P.encode(msg))

    async def open(self, prompt: str = "a red fox", **fields: Any) -> P.Accepted:
        fields.setdefault("settings", SETTINGS)
        await self.send(P.Open(protocol_version=P.PROTOCOL_VERSION, prompt=prompt, **fields))
        accepted = await self.expect("accepted")
        assert isinstance(accepted, P.Accepted)
        return accepted

    async def recv(self, timeout: float = 5.0) -> P.Message:
        msg = P.decode(await asyncio.wait_for(self.ws.recv(), timeout), limits=CLIENT_LIMITS)
        self.received.append(msg)
        return msg

    async def expect(self, kind: str, timeout: float = 5.0, **match: Any) -> Any:
        """Receive until a message of type ``kind`` (with the given field values) arrives."""
        deadline = time.monotonic() + timeout
        while True:
            msg = await self.recv(max(deadline - time.monotonic(), 0.01))
            if msg.type == "error" and kind != "error" and getattr(msg, "fatal", False):
                raise AssertionError(f"fatal error while waiting for {kind}: {msg}")
            if msg.type == kind and all(getattr(msg, k) == v for k, v in match.items()):
                return msg

    async def drain_to_close(self, timeout: float = 5.0) -> tuple[int | None, str]:
        """Receive until the server closes; returns (close code, reason)."""
        with contextlib.suppress(Exception):
            while True:
                await self.recv(timeout)
        await asyncio.wait_for(self.ws.wait_closed(), timeout)
        return self.ws.close_code, self.ws.close_reason or ""

    def of_type(self, kind: str) -> list[Any]:
        return [m for m in self.received if m.type == kind]
