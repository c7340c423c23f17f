"""From generator output to fMP4 fragments, off the worker thread and off the event loop.

The generator pushes frames and audio into a :class:`StreamSink` on the worker thread. The sink only queues
encoder calls on the session's :class:`SerialExecutor` (a slice of the shared encoder pool that runs one job
at a time, in order), so the device never waits for x264 and a fragment goes out as soon as it is muxed.

Pieces leave as soon as they are encoded (``last`` False); the segment's flush sends what the encoder still
held (the audio pushed after the last frames) as its ``last`` piece, or, when nothing is left, a marker piece
holding one empty ``free`` box (a valid top-level ISO-BMFF box that players and files skip).

``encode_during_decode`` says which pieces are encoded while the generator still decodes the segment: ``"all"``
(each as it comes) or ``"first"`` (the first piece, media and sound, at once; the rest are queued and handed to
the encoder when the segment's media is complete). On a CPU worker the decode already keeps the cores busy (the
video decode and the audio thread), and x264 beside them lengthens the decode; with ``"first"`` the rest of the
encoding runs beside the next segment's denoising instead. Measured on 2 cores it shortens the decode stage by
~12 % without an earlier first byte and without a throughput gain beyond the noise (docs/performance.md,
session 11), so ``"all"`` is the default.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ltx2stream.server.job import Fragment, JobEvents, SegmentResult
from ltx2stream.session.api import SegmentReport, SessionSettings

if TYPE_CHECKING:
    from ltx2stream.media.process import EncoderProcesses

logger = logging.getLogger(__name__)
END_MARKER = b"\x00\x00\x00\x08free"  # an empty ``free`` box: the segment's last piece when no bytes remain


class MediaEncoder(Protocol):
    """The session encoder (``ltx2stream.media.SessionEncoder``): persistent x264/AAC with absolute
    timestamps, the same init segment for the whole session, progressive ``drain()`` and one ``flush_segment``
    per segment."""

    @property
    def init_segment(self) -> bytes: ...

    @property
    def mime(self) -> str: ...

    def add_video(self, frames: np.ndarray) -> None: ...

    def add_audio(self, samples: np.ndarray) -> None: ...

    def drain(self) -> bytes:
        """fMP4 bytes (moof+mdat) encoded since the last drain or flush; b'' if none."""

    def flush_segment(self, index: int) -> Any:
        """A MediaFragment: ``start_s``, ``duration_s`` and ``remainder`` (bytes not drained yet)."""

    def close(self) -> Any:
        """Flush the audio FIFO and both encoders; the media bytes not handed out yet (the audio tail)."""


EncoderFactory = Callable[[SessionSettings, int], MediaEncoder]
"""Builds a session's encoder from its settings and the generator's audio sample rate."""


def default_encoder_factory(
    settings: SessionSettings, sample_rate: int, x264_threads: int | None = None
) -> MediaEncoder:
    """The real encoder: H.264 + AAC in fragmented MP4 (``ltx2stream.media``)."""
    from ltx2stream.media import SessionEncoder

    encoder: MediaEncoder = SessionEncoder(
        settings.width, settings.height, settings.fps, sample_rate, threads=x264_threads
    )
    return encoder


def budgeted_encoder_factory(x264_threads: int) -> EncoderFactory:
    """The real encoder with ``x264_threads`` threads per x264 encoder (the server's thread budget)."""
    return lambda settings, sample_rate: default_encoder_factory(settings, sample_rate, x264_threads)


def process_encoder_factory(processes: EncoderProcesses, x264_threads: int | None) -> EncoderFactory:
    """The real encoder, run in one of the server's encoder child processes (``media/process.py``): its
    per-frame and per-packet Python then never takes the model worker's GIL."""

    def make(settings: SessionSettings, sample_rate: int) -> MediaEncoder:
        encoder: MediaEncoder = processes.open(
            settings.width, settings.height, settings.fps, sample_rate, threads=x264_threads
        )
        return encoder

    return make


class SerialExecutor:
    """Runs submitted callables one at a time, in submission order, on a shared pool."""

    def __init__(self, pool: Executor, on_error: Callable[[BaseException], None]) -> None:
        self._pool, self._on_error = pool, on_error
        self._lock = threading.Lock()
        self._jobs: deque[Callable[[], None]] = deque()
        self._running = False
        self._failed = False

    def submit(self, fn: Callable[[], None]) -> None:
        """Queue ``fn``; after a failure nothing more runs (the session is failing anyway)."""
        with self._lock:
            if self._failed:
                return
            self._jobs.append(fn)
            if self._running:
                return
            self._running = True
        self._pool.submit(self._drain)

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._jobs or self._failed:
                    self._running = False
                    return
                fn = self._jobs.popleft()
            try:
                fn()
            except BaseException as e:  # reported to the session, which fails with server.internal
                logger.exception("encoder job failed")
                with self._lock:
                    self._failed = True
                self._on_error(e)


ENCODE_DURING_DECODE = ("all", "first")


class SegmentStreamer:
    """One session's encoder, fed in order on a :class:`SerialExecutor`; reports fragments to the job
    events."""

    def __init__(
        self,
        make_encoder: Callable[[], MediaEncoder],
        fps: float,
        pool: Executor,
        events: JobEvents,
        encode_during_decode: str = "all",
    ) -> None:
        if encode_during_decode not in ENCODE_DURING_DECODE:
            raise ValueError(
                f"encode_during_decode must be one of {ENCODE_DURING_DECODE}; got {encode_during_decode!r}"
            )
        self.events = events
        self._fps = float(fps)
        self._serial = SerialExecutor(pool, events.failed)
        self._defer = encode_during_decode == "first"
        # worker thread only: the segment whose first piece was submitted, and its later jobs held until the
        # segment's media is complete (``encode_during_decode="first"``)
        self._first_sent: int | None = None
        self._held: list[Callable[[], None]] = []
        self._encoder: MediaEncoder | None = None
        self._init_sent = False
        self._encode_s = 0.0  # encoder thread only: seconds spent on the current segment
        self._frames = 0  # frames added so far (encoder thread only)
        self._sent_end = 0.0  # session time where the last piece sent ends (encoder thread only)
        self._flush_queued: int | None = None  # the newest segment whose flush is queued (worker thread only)
        self._flushed: tuple[int, float] | None = None  # (index, end in seconds) of the last flushed segment
        self._final: int | None = None  # the segment whose last piece also carries the encoder's tail
        self._serial.submit(lambda: self._create(make_encoder))

    def _create(self, make_encoder: Callable[[], MediaEncoder]) -> None:
        self._encoder = make_encoder()

    def _timed(self, fn: Callable[[MediaEncoder], None]) -> Callable[[], None]:
        def run() -> None:
            assert self._encoder is not None, "encoder creation failed earlier"
            t0 = time.perf_counter()
            fn(self._encoder)
            self._encode_s += time.perf_counter() - t0

        return run

    def sink(self, index: int) -> StreamSink:
        """The SegmentSink for segment ``index`` (called on the worker thread)."""
        return StreamSink(self, index)

    def add_video(self, index: int, frames: np.ndarray) -> None:
        self._submit(index, self._timed(lambda enc: self._encode_video(enc, index, frames)))
        if self._first_sent is None or self._first_sent < index:
            self._first_sent = index  # the first piece is queued: with "first", what follows waits

    def add_audio(self, samples: np.ndarray, index: int | None = None) -> None:
        self._submit(index, self._timed(lambda enc: enc.add_audio(samples)))

    def _submit(self, index: int | None, job: Callable[[], None]) -> None:
        """Queue an encoder job of segment ``index`` (worker thread); held back after the segment's first piece
        when encoding only the first piece during the decode."""
        if self._defer and index is not None and self._first_sent == index:
            self._held.append(job)
        else:
            self._release()
            self._serial.submit(job)

    def _release(self) -> None:
        held, self._held = self._held, []
        for job in held:
            self._serial.submit(job)

    def media_done(self, index: int) -> None:
        """Every frame and sample of segment ``index`` was added: encode what was held back, then flush it (its
        last piece leaves)."""
        self._release()
        if self._flush_queued is None or self._flush_queued < index:
            self._flush_queued = index
            self._serial.submit(self._timed(lambda enc: self._flush(enc, index)))

    def finish(self, report: SegmentReport, state: bytes, generate_s: float) -> None:
        """The segment is complete: flush it (unless its sink already did), then report it with the state
        after it."""
        self.media_done(report.index)
        self._serial.submit(lambda: self._report(report, state, generate_s))

    def end_after(self, index: int) -> None:
        """Segment ``index`` is the session's last (after ``stop``, called on the loop): hand out the encoder's
        audio tail with it, then report ``media_ended``.

        The encoder keeps up to 2047 audio samples that would travel in the next segment's bytes. If ``index``
        is not flushed yet, they go into its last piece (before its ``segment_done``); if it was, they go out as
        one more piece of it (``last``, duration 0, after its ``segment_done``).
        """
        self._serial.submit(lambda: self._end(index))

    def close(self) -> None:
        """Release the encoder after everything queued before."""
        self._release()
        self._serial.submit(self._close)

    def _encode_video(self, encoder: MediaEncoder, index: int, frames: np.ndarray) -> None:
        """Encode a chunk and send at once what the muxer produced (with the audio queued before it)."""
        start = self._frames
        encoder.add_video(frames)
        self._frames += len(frames)
        data = encoder.drain()
        if data:
            self._sent_end = self._frames / self._fps
            self._emit(encoder, Fragment(index, data, start / self._fps, len(frames) / self._fps, last=False))

    def _flush(self, encoder: MediaEncoder, index: int) -> None:
        """Close the segment: its ``last`` piece is what the encoder still held, or the end marker."""
        fragment = encoder.flush_segment(index)
        end = float(fragment.start_s) + float(fragment.duration_s)
        self._flushed = (index, end)
        data = bytes(fragment.remainder)
        final = index == self._final
        if final:
            data += self._take_tail()
        t0 = min(self._sent_end, end)  # where the pieces sent so far end (the segment's start if none was)
        self._sent_end = end
        self._emit(encoder, Fragment(index, data or END_MARKER, t0, max(end - t0, 0.0), last=True))
        if final:
            self.events.media_ended()

    def _end(self, index: int) -> None:
        if self._flushed is None or self._flushed[0] < index:
            self._final = index  # its flush is still to come
            return
        _, end = self._flushed
        encoder = self._encoder
        tail = self._take_tail()
        if tail and encoder is not None:
            self._emit(encoder, Fragment(index, tail, end, 0.0, last=True))
        self.events.media_ended()

    def _take_tail(self) -> bytes:
        """Close the encoder and return its remaining bytes (the audio it still held)."""
        encoder, self._encoder = self._encoder, None
        return bytes(encoder.close() or b"") if encoder is not None else b""

    def _emit(self, encoder: MediaEncoder, fragment: Fragment) -> None:
        if not self._init_sent:
            self.events.media_init(encoder.mime, bytes(encoder.init_segment))
            self._init_sent = True
        self.events.media(fragment)

    def _report(self, report: SegmentReport, state: bytes, generate_s: float) -> None:
        encode_s, self._encode_s = self._encode_s, 0.0
        self.events.segment_encoded(SegmentResult(report, state, generate_s, encode_s))

    def _close(self) -> None:
        if self._encoder is not None:
            self._encoder.close()
            self._encoder = None


class StreamSink:
    """The ``SegmentSink`` a generator writes one segment into; never blocks on encoding."""

    def __init__(self, streamer: SegmentStreamer, index: int) -> None:
        self._streamer, self.index = streamer, index

    def progress(self, stage: str, step: int, total: int) -> None:
        self._streamer.events.progress(self.index, stage, step, total)

    def video(self, frames: np.ndarray) -> None:
        # A copy: the generator may reuse its buffers once this call returns.
        self._streamer.add_video(self.index, np.array(frames, dtype=np.uint8, copy=True))

    def audio(self, samples: np.ndarray) -> None:
        chunk = np.array(samples, dtype=np.float32, copy=True)
        if chunk.ndim == 2 and chunk.shape[0] == 1:  # the session encoder is stereo: [1, n] -> [2, n]
            chunk = np.repeat(chunk, 2, axis=0)
        self._streamer.add_audio(chunk, self.index)

    def media_complete(self) -> None:
        self._streamer.media_done(self.index)
