"""Progressive output (issue #13): decode chunks aligned to the trim, pieces sent while the segment is still
being decoded, audio in the first piece, the last piece marked without holding one back, the carry timed."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from typing import Any

import numpy as np
import pytest

from ltx2stream.media.fmp4 import fragment_runs, parse_boxes, track_timescales
from ltx2stream.pipeline.stages.decode import align_chunks
from ltx2stream.server.job import Fragment, SegmentResult
from ltx2stream.server.live import wire_timings
from ltx2stream.server.streaming import END_MARKER, SegmentStreamer, default_encoder_factory
from ltx2stream.session.api import SegmentRequest, SessionSettings

SETTINGS = SessionSettings("tiny-ltx2", 64, 64, 12.0, 33, 1, 5)  # 5 latent frames, k = 1: 9 trimmed frames


class InlineExecutor(Executor):
    """Runs every job at once on the submitting thread, so the event order below is exact."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_result(fn(*args, **kwargs))
        return future


class Recorder:
    """JobEvents that log media pieces and segment ends in order (plus the decoder's end, see below)."""

    def __init__(self) -> None:
        self.log: list[tuple[str, Any]] = []
        self.init = b""

    def media_init(self, mime: str, data: bytes) -> None:
        self.init = data

    def media(self, fragment: Fragment) -> None:
        self.log.append(("media", fragment))

    def segment_encoded(self, result: SegmentResult) -> None:
        self.log.append(("done", result))

    def progress(self, index: int, stage: str, step: int, total: int) -> None:
        pass

    def failed(self, error: BaseException) -> None:
        raise error

    def media_ended(self) -> None:
        self.log.append(("ended", None))


@pytest.mark.parametrize(
    ("sizes", "skip"), [([2] * 8 + [1], 9), ([16, 16, 1], 9), ([9, 8, 8], 9), ([3, 3, 3], 0), ([5], 2)]
)
def test_chunks_never_straddle_the_trim_and_keep_every_frame(sizes: list[int], skip: int) -> None:
    frames = np.arange(sum(sizes))
    pieces = np.split(frames, np.cumsum(sizes)[:-1])
    chunks = list(align_chunks(iter(pieces), skip, 8))
    assert np.array_equal(np.concatenate(chunks), frames)
    edges = np.cumsum([len(c) for c in chunks])
    assert all(not (e - len(c) < skip < e) for c, e in zip(chunks, edges, strict=True))
    if 0 < skip < len(frames):
        assert skip in edges  # the first chunk after the trim starts exactly at it


def test_a_piece_crossing_the_trim_sends_its_new_frames_at_once() -> None:
    pulled: list[int] = []

    def pieces() -> Iterator[np.ndarray]:
        for i, n in enumerate([16, 16, 1]):
            pulled.append(i)
            yield np.zeros((n, 1))

    gen = align_chunks(pieces(), 9, 8)
    assert len(next(gen)) == 9 and len(next(gen)) == 7 and pulled == [0]  # no wait for the second piece


def _from_segment(events: Recorder, n: int) -> list[tuple[str, Any]]:
    """The event log from segment ``n``'s start (segment 0: all of it; else after segment 0's ``done``)."""
    kinds = [k for k, _ in events.log]
    return events.log[0 if n == 0 else kinds.index("done") + 1 :]


def _audio_samples(init: bytes, data: bytes) -> int:
    tracks = {tid: kind for tid, (kind, _) in track_timescales(parse_boxes(init)).items()}
    return sum(r.sample_count for r in fragment_runs(data) if tracks[r.track_id] == "soun")


def _two_segments(tiny_host: Any, during: str) -> Recorder:
    """Two segments through a streamer (``encode_during_decode=during``, one x264 thread), the decoder's end and
    the carry logged among the pieces."""
    controller = tiny_host.open_session(SETTINGS)
    events = Recorder()
    pipeline = controller.pipeline
    real_decode = pipeline.decode_video

    def decode_video(latent: Any, skip: int = 0) -> Iterator[np.ndarray]:
        yield from real_decode(latent, skip)
        events.log.append(("decode_end", None))

    real_next_state = controller._next_state

    def next_state(*args: Any) -> Any:  # the carry stage
        events.log.append(("carry", None))
        return real_next_state(*args)

    pipeline.decode_video = decode_video  # type: ignore[method-assign]
    controller._next_state = next_state
    try:
        make = lambda: default_encoder_factory(SETTINGS, controller.sample_rate, 1)  # noqa: E731
        streamer = SegmentStreamer(make, SETTINGS.fps, InlineExecutor(), events, during)  # type: ignore[arg-type]
        for n in range(2):
            report = controller.run_segment(SegmentRequest(n, "a red ball", 10 + n), streamer.sink(n))
            streamer.finish(report, b"", 0.0)
            assert report.timings["carry"] > 0.0 and wire_timings(report.timings)["carry"] > 0.0
    finally:
        del pipeline.decode_video
    return events


@pytest.mark.parametrize("during", ["all", "first"])
def test_first_piece_leaves_before_the_decode_ends_with_audio_and_the_last_is_marked(
    tiny_host: Any, during: str
) -> None:
    events = _two_segments(tiny_host, during)
    for n in range(2):
        log = _from_segment(events, n)
        seg = [k for k, _ in log]
        pieces = [f for k, f in log if k == "media" and f.segment == n]
        # the first piece goes out while the decoder is still running, and it carries sound; the last one
        # goes out before the carry runs
        assert seg.index("media") < seg.index("decode_end")
        last_at = max(i for i, (k, f) in enumerate(log) if k == "media" and f.segment == n)
        assert last_at < seg.index("carry") < seg.index("done")
        assert _audio_samples(events.init, pieces[0].data) > 0
        assert pieces[0].duration > 0
        # one last piece, after every other; nothing was held back to find it
        assert [p.last for p in pieces] == [False] * (len(pieces) - 1) + [True]
        assert len(pieces) >= 3
        assert pieces[-1].data != END_MARKER  # the audio after the last frames travels in it
        # the last 8 frames of a segment are held for the next one (the default hold)
        assert pieces[-1].t0 + pieces[-1].duration == pytest.approx((33 - 8 + n * 24) / 12.0)
        assert sum(p.duration for p in pieces) == pytest.approx((33 - 8 if n == 0 else 24) / 12.0)
        # "first": only the first piece is encoded during the decode, the others once the media is complete
        during_decode = [k for k in seg[: seg.index("decode_end")] if k == "media"]
        assert len(during_decode) == 1 if during == "first" else len(during_decode) > 1


def test_encoding_only_the_first_piece_during_the_decode_sends_the_same_media(tiny_host: Any) -> None:
    """Holding the later pieces back changes when they are encoded, not what: per segment the same frames and
    audio packets, ending at the same time (how the audio splits over the later pieces follows the audio
    thread's progress, in either mode)."""
    sent = {}
    for during in ("all", "first"):
        events = _two_segments(tiny_host, during)
        tracks = {tid: kind for tid, (kind, _) in track_timescales(parse_boxes(events.init)).items()}
        per: dict[tuple[int, str], int] = {}
        for k, f in events.log:
            if k == "media":
                for r in fragment_runs(f.data):
                    key = (f.segment, tracks[r.track_id])
                    per[key] = per.get(key, 0) + r.sample_count
        sent[during] = per
    assert sent["first"] == sent["all"]
    assert (
        sent["all"][(0, "vide")] == 33 - 8 and sent["all"][(1, "vide")] == 24 and sent["all"][(1, "soun")] > 0
    )


def test_first_piece_does_not_wait_for_the_whole_audio_decode(tiny_host: Any) -> None:
    """The first frames' share of the audio is decoded ahead of the rest (from the causal latent prefix it
    needs): with the rest made slow, the first piece of every segment still leaves before it is done and carries
    sound, and what the segment pushed is the whole decode's new audio (spans decoded from the latents and mel
    frames they need equal it)."""
    import threading
    import time

    controller = tiny_host.open_session(SETTINGS)
    events = Recorder()
    pipeline = controller.pipeline
    real_vocode, real_span = pipeline.vocode, pipeline.decode_audio_span
    lock = threading.Lock()
    calls: list[tuple[str, int, int]] = []

    def span(latent: Any, start: int, stop: int) -> Any:  # the first frames' share
        calls.append(("span", start, stop))
        return real_span(latent, start, stop)

    def vocode(mel: Any, start: int, stop: int) -> Any:  # the rest of the segment's audio
        calls.append(("vocode", start, stop))
        time.sleep(0.4)
        out = real_vocode(mel, start, stop)
        with lock:
            events.log.append(("audio_end", None))
        return out

    pipeline.vocode = vocode  # type: ignore[method-assign]
    pipeline.decode_audio_span = span  # type: ignore[method-assign]
    try:
        make = lambda: default_encoder_factory(SETTINGS, controller.sample_rate)  # noqa: E731
        streamer = SegmentStreamer(make, SETTINGS.fps, InlineExecutor(), events)  # type: ignore[arg-type]
        for n in range(2):
            sink = streamer.sink(n)
            sent: list[np.ndarray] = []
            real_sink_audio = sink.audio

            def audio(samples: np.ndarray, real: Any = real_sink_audio, sent: Any = sent) -> None:
                sent.append(samples.copy())
                real(samples)

            sink.audio = audio  # type: ignore[method-assign]
            report = controller.run_segment(SegmentRequest(n, "a red ball", 10 + n), sink)
            streamer.finish(report, b"", 0.0)
            wave = pipeline.decode_audio(controller.last_result.audio_latent).waveform[0].numpy()
            a, b = controller.timeline.audio_slice(n, pipeline.sample_rate)
            # the vocoder runs up to the final cut (the held frames' sound, sent if the segment turns out final)
            b_all = controller.timeline.audio_slice(n, pipeline.sample_rate, final=True)[1]
            mid = calls[-2][2]
            assert calls[-2:] == [("span", a, mid), ("vocode", mid, b_all)] and a < mid < b < b_all
            np.testing.assert_allclose(
                np.concatenate(sent, axis=1), np.clip(wave[:, a:b], -1, 1), atol=1e-5, rtol=0
            )
    finally:
        del pipeline.vocode
        del pipeline.decode_audio_span
    for n in range(2):
        log = _from_segment(events, n)
        seg = [k for k, _ in log]
        first = next(f for k, f in log if k == "media" and f.segment == n)
        assert seg.index("media") < seg.index("audio_end")
        assert _audio_samples(events.init, first.data) > 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness is a Linux feature")
def test_the_audio_thread_yields_the_cpu_once_the_first_share_is_out() -> None:
    """``Progressive``: the thread decodes the first share at the caller's priority, then the rest at
    ``AUDIO_REST_NICE`` more niceness (the first piece's encoding goes first); the caller's own is untouched."""
    import os
    import threading

    from ltx2stream.session.controller import AUDIO_REST_NICE, Progressive

    def nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    before = nice()
    seen: list[int] = []

    def parts() -> Iterator[np.ndarray]:
        seen.append(nice())
        yield np.zeros((1, 1), np.float32)
        seen.append(nice())
        yield np.zeros((1, 2), np.float32)

    assert Progressive(parts).result().shape == (1, 2)
    assert seen == [before, min(before + AUDIO_REST_NICE, 19)] and AUDIO_REST_NICE > 0
    assert nice() == before
