"""Session encoders in child processes, so that encoding never takes the model worker's GIL.

On a CPU server the worker thread runs the model as many small torch ops with the GIL held between them; an
encoder thread in the same process needs the GIL for PyAV's per-frame and per-packet Python (frame wrapping,
AAC's 1024-sample frames, box building), and every time it takes it the worker waits. ``EncoderProcesses``
runs the :class:`~ltx2stream.media.SessionEncoder` objects in ``n`` child processes
(``python -m ltx2stream.media.process``: PyAV and numpy, no torch; started with ``subprocess``, not
``multiprocessing``, so a child never re-imports the server's main module) and hands out :class:`RemoteEncoder` proxies that implement the same interface. The
proxy's calls cost the worker one pipe write each.

Protocol (two pipes per child, ``multiprocessing.connection`` framing of pickled tuples, in order): ``(op, key, *args)``. ``add_video`` and
``add_audio`` are not answered (the caller does not wait for x264); every other op is answered with
``("ok", value)`` or ``("error", exception)`` (our errors pickle with their code). An error in an unanswered op is kept by the child and
raised by the session's next answered call, so nothing is lost and the order of failures is the order of calls.

A child that dies (killed, out of memory) fails the calls of its sessions with ``media.encoder_process_died``;
the next session placed on that slot starts a fresh child. A child whose parent dies sees its pipe close and
exits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from ltx2stream import codes, errors

logger = logging.getLogger(__name__)

_ANSWERED = frozenset({"open", "drain", "flush_segment", "close", "ping"})


class EncoderProcessError(errors.LTX2StreamError):
    """An encoder child process failed or died."""

    default_code = codes.MEDIA_ENCODER_PROCESS_DIED


def _error_reply(e: BaseException) -> tuple[str, errors.LTX2StreamError]:
    """An error as it travels back: ours pickle with their code; anything else becomes one of ours."""
    if isinstance(e, errors.LTX2StreamError):
        return ("error", e)
    return (
        "error",
        EncoderProcessError(f"{type(e).__name__}: {e}", code=codes.MEDIA_ENCODER_PROCESS_FAILED),
    )


def _child_main(conn: _Pipes) -> None:
    """The child's loop: encoders by key, one request at a time, until ``exit`` or the parent's end."""
    from ltx2stream.media.encoder import SessionEncoder

    encoders: dict[int, Any] = {}
    pending: dict[int, BaseException] = {}  # the first error of an unanswered call, per session
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            break
        op, key, args = message[0], message[1], message[2:]
        if op == "exit":
            break
        try:
            if key in pending and op != "close":
                raise pending.pop(key)
            if op == "open":
                width, height, fps, sample_rate, threads = args
                enc = SessionEncoder(width, height, fps, sample_rate, threads=threads)
                encoders[key] = enc
                value: Any = (bytes(enc.init_segment), enc.mime)
            elif op == "ping":
                value = None
            else:
                enc = encoders[key]
                if op == "add_video":
                    enc.add_video(args[0])
                elif op == "add_audio":
                    enc.add_audio(args[0])
                elif op == "drain":
                    value = enc.drain()
                elif op == "flush_segment":
                    value = enc.flush_segment(args[0])
                elif op == "close":
                    pending.pop(key, None)
                    value = encoders.pop(key).close()
                else:
                    raise ValueError(f"unknown encoder op {op!r}")
        except BaseException as e:  # noqa: BLE001 - every failure goes back to the session that caused it
            if op in _ANSWERED:
                conn.send(_error_reply(e))
            else:
                pending.setdefault(key, e)
            continue
        if op in _ANSWERED:
            conn.send(("ok", value))
    for enc in encoders.values():
        with contextlib.suppress(Exception):  # exiting anyway
            enc.close()


class _Pipes:
    """The parent's ends of a child's two pipes as one connection-like object."""

    def __init__(self, reader: Connection, writer: Connection) -> None:
        self.reader, self.writer = reader, writer

    def send(self, message: Any) -> None:
        self.writer.send(message)

    def recv(self) -> Any:
        return self.reader.recv()

    def close(self) -> None:
        self.reader.close()
        self.writer.close()


class _Child:
    """One child process and its pipes; calls from several threads are serialised by a lock."""

    def __init__(self) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ltx2stream.media.process", str(to_child_r), str(from_child_w)],
                pass_fds=(to_child_r, from_child_w),
                stdin=subprocess.DEVNULL,
            )
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self.conn = _Pipes(Connection(from_child_r, writable=False), Connection(to_child_w, readable=False))
        self.lock = threading.Lock()
        self.dead = False
        self.sessions = 0

    def send(self, message: tuple[Any, ...]) -> None:
        with self.lock:
            self._send(message)

    def call(self, message: tuple[Any, ...]) -> Any:
        with self.lock:
            self._send(message)
            try:
                reply = self.conn.recv()
            except (EOFError, OSError) as e:
                self._died(e)
        if reply[0] == "error":
            raise reply[1]
        return reply[1]

    def _send(self, message: tuple[Any, ...]) -> None:
        if self.dead:
            self._died(None)
        try:
            self.conn.send(message)
        except (BrokenPipeError, EOFError, OSError) as e:
            self._died(e)

    def _died(self, cause: BaseException | None) -> None:
        self.dead = True
        raise EncoderProcessError(
            f"the encoder process (pid {self.process.pid}) exited with {self.process.poll()}",
            code=codes.MEDIA_ENCODER_PROCESS_DIED,
        ) from cause

    def stop(self, timeout_s: float) -> None:
        if not self.dead:
            try:
                with self.lock:
                    self.conn.send(("exit", 0))
            except (BrokenPipeError, EOFError, OSError):
                pass
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout_s)
        self.conn.close()

    @property
    def alive(self) -> bool:
        return not self.dead and self.process.poll() is None


class RemoteEncoder:
    """A ``SessionEncoder`` living in an encoder process: the same methods, the work done over there."""

    def __init__(self, child: _Child, key: int, init: bytes, mime: str) -> None:
        self._child, self._key = child, key
        self._init, self._mime = init, mime
        self._closed = False

    @property
    def init_segment(self) -> bytes:
        return self._init

    @property
    def mime(self) -> str:
        return self._mime

    def add_video(self, frames: np.ndarray) -> None:
        self._child.send(("add_video", self._key, frames))

    def add_audio(self, samples: np.ndarray) -> None:
        self._child.send(("add_audio", self._key, samples))

    def drain(self) -> bytes:
        return bytes(self._child.call(("drain", self._key)))

    def flush_segment(self, index: int) -> Any:
        return self._child.call(("flush_segment", self._key, index))

    def close(self) -> Any:
        if self._closed:
            return b""
        self._closed = True
        self._child.sessions -= 1
        if self._child.dead:
            return b""
        return self._child.call(("close", self._key))


class EncoderProcesses:
    """``n`` encoder child processes; :meth:`open` places a session's encoder on the least used one.

    Children start on first use (``start()`` starts them ahead, off the critical path of the first session)
    and are replaced when they die; ``close()`` stops them.
    """

    def __init__(self, n: int = 1) -> None:
        if n < 1:
            raise errors.ConfigError(
                f"encoder processes must be >= 1; got {n}", code=codes.CONFIG_OUT_OF_RANGE
            )
        self._slots: list[_Child | None] = [None] * n
        self._lock = threading.Lock()
        self._next_key = 0
        self._closed = False

    def start(self) -> None:
        """Start every child now and wait until each answers."""
        for i in range(len(self._slots)):
            self._slot(i).call(("ping", 0))

    def _slot(self, i: int) -> _Child:
        with self._lock:
            if self._closed:
                raise EncoderProcessError("the encoder processes are closed", code=codes.MEDIA_CLOSED)
            child = self._slots[i]
            if child is None or not child.alive:
                if child is not None:
                    logger.warning("encoder process %s exited (%s); starting a new one", child.process.pid,
                                   child.process.poll())  # fmt: skip
                    child.stop(1.0)
                child = self._slots[i] = _Child()
            return child

    def open(
        self, width: int, height: int, fps: float, sample_rate: int, *, threads: int | None = None
    ) -> RemoteEncoder:
        """A new session encoder (H.264 + AAC fMP4) in the least used child."""
        with self._lock:
            i = min(range(len(self._slots)), key=lambda j: (s.sessions if (s := self._slots[j]) else 0, j))
            key = self._next_key = self._next_key + 1
        child = self._slot(i)
        init, mime = child.call(("open", key, width, height, fps, sample_rate, threads))
        child.sessions += 1
        return RemoteEncoder(child, key, init, mime)

    @property
    def pids(self) -> list[int | None]:
        """The children's process ids (None where none is running)."""
        return [c.process.pid if c is not None else None for c in self._slots]

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop every child (their open encoders are dropped)."""
        with self._lock:
            self._closed = True
            slots, self._slots = self._slots, [None] * len(self._slots)
        for child in slots:
            if child is not None:
                child.stop(timeout_s)


def main(argv: list[str]) -> None:
    """The child: ``python -m ltx2stream.media.process READ_FD WRITE_FD``."""
    reader, writer = Connection(int(argv[0]), writable=False), Connection(int(argv[1]), readable=False)
    _child_main(_Pipes(reader, writer))


if __name__ == "__main__":
    main(sys.argv[1:])
