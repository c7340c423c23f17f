"""The session media encoder: one persistent H.264 + AAC encoder pair turning a session's segments into fMP4.

Timeline. Video frame k has decode/presentation time k / fps (track timescale from the init segment, 90 kHz);
AAC packets keep the encoder's own pts shifted by the priming delay (+1024 samples), so the first ``tfdt`` is 0
and never negative. Both counters run for the whole session, so segment N+1 starts exactly where N ended: the
``tfdt`` of every fragment equals the previous fragment's ``tfdt`` plus the sum of its sample durations.

Segments. The first frame after ``flush_segment`` (and the very first frame) is forced to an IDR, so every
segment's bytes start with a keyframe fragment that decodes after the init segment alone. ``drain()`` hands out
whatever is encoded so far (one ``moof``+``mdat`` per keyframe-started run), so the first bytes of a segment
exist right after its first chunk of frames. Audio goes through a FIFO and is encoded in whole 1024-sample
frames as it arrives; samples never get lost or duplicated at segment edges, but up to 2047 samples (the FIFO
remainder plus one frame inside the encoder) travel in the next segment's bytes.

Threading: every public method takes an internal lock, so calls from different threads are serialised; the
intended use is one worker thread driving the encoder (PyAV releases the GIL while encoding).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import av
import numpy as np

from ltx2stream import codes
from ltx2stream.errors import ConfigError, InputError
from ltx2stream.media import codecs as c
from ltx2stream.media.fmp4 import codec_string as read_codec_string
from ltx2stream.media.fragments import (
    NAL_PPS,
    NAL_SPS,
    Run,
    Sample,
    build_fragment,
    length_prefixed,
    probe_init_segment,
    split_annexb,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MediaFragment:
    """The fMP4 media bytes of one segment (``moof``+``mdat`` pairs, init segment not included).

    ``data`` is every byte produced for the segment (so ``init + data`` decodes alone); ``remainder`` is the
    suffix of ``data`` that ``drain()`` had not handed out yet (a progressive sender sends only that).
    ``start_s``/``duration_s`` are the segment's video span on the absolute session timeline;
    ``audio_start_s``/``audio_samples`` describe the AAC frames carried in ``data`` (priming shift included).
    """

    index: int
    start_s: float
    duration_s: float
    data: bytes
    remainder: bytes
    video_frames: int
    audio_samples: int
    audio_start_s: float | None


class SessionEncoder:
    """Persistent H.264 (libx264, zerolatency) + AAC-LC encoders producing fragmented MP4 for one session.

    ``crf``/``preset`` set x264 quality and speed; ``max_bitrate`` (bit/s) adds a VBV cap (buffer = 2 s of it);
    ``gop_frames`` forces an extra IDR every n frames inside a segment (None: only at segment starts);
    ``threads`` sets x264's threads (None: x264's default, 1.5 per core; the server's thread budget sets it).
    """

    def __init__(
        self,
        width: int,
        height: int,
        fps: float,
        sample_rate: int,
        *,
        audio_channels: int = 2,
        crf: int = 23,
        preset: str = "veryfast",
        audio_bitrate: int = 128_000,
        gop_frames: int | None = None,
        max_bitrate: int | None = None,
        threads: int | None = None,
    ) -> None:
        c.check_video_size(width, height)
        layout = c.check_audio_config(sample_rate, audio_channels)
        if not 0 <= crf <= 51:
            raise InputError(f"crf must be in [0, 51]; got {crf}", code=codes.MEDIA_BAD_CRF)
        if gop_frames is not None and gop_frames < 1:
            raise InputError(f"gop_frames must be >= 1 or None; got {gop_frames}", code=codes.MEDIA_BAD_GOP)
        self.width, self.height, self.sample_rate, self.channels = width, height, sample_rate, audio_channels
        self.fps = c.as_fraction(fps)
        self.gop_frames = gop_frames
        if max_bitrate is not None and max_bitrate < 10_000:
            raise InputError(
                f"max_bitrate must be >= 10000 bit/s or None; got {max_bitrate}", code=codes.MEDIA_BAD_BITRATE
            )
        if threads is not None and threads < 1:
            raise ConfigError(f"threads must be >= 1 or None; got {threads}", code=codes.CONFIG_OUT_OF_RANGE)
        options = c.stream_video_options(crf, preset, gop_frames, max_bitrate)
        if threads is not None:
            options["threads"] = str(threads)
        self._lock = threading.RLock()
        self._init = probe_init_segment(width, height, self.fps, options, sample_rate, layout, audio_bitrate)
        if self._init.audio_timescale != sample_rate:
            raise ConfigError(
                f"audio timescale {self._init.audio_timescale} != {sample_rate}",
                code=codes.MEDIA_PROBE_FAILED,
            )
        self._codecs = read_codec_string(self._init.data)
        self._venc = c.open_video_encoder(width, height, self.fps, options)
        self._aenc = c.open_audio_encoder(sample_rate, layout, audio_bitrate)
        if bytes(self._aenc.extradata or b"") != self._init.audio_config:
            raise ConfigError(
                "AAC encoder config differs from the init segment's", code=codes.MEDIA_INIT_MISMATCH
            )
        self._feeder = c.AudioFeeder(sample_rate, layout)
        self._next_frame = 0  # pts of the next video frame (frames since session start)
        self._frames_since_idr = 0
        self._force_idr = True
        self._checked_parameter_sets = False
        self._priming: int | None = (
            None  # -(first AAC pts): the shift that makes the audio timeline start at 0
        )
        self._video: list[tuple[int, Sample]] = []  # (decode tick, sample) encoded but not yet written
        self._video_packets = 0  # packets received from x264 (== frames sent: zerolatency has no delay)
        self._audio: list[tuple[int, Sample]] = []
        self._sequence = 0
        self._segment_parts: list[bytes] = []
        self._drained = 0  # how many of _segment_parts drain() already returned
        self._segment_start = 0  # first frame of the current segment
        self._segment_audio: list[int] = []  # decode ticks of the audio samples written for this segment
        self._segment_audio_samples = 0
        self._last_index: int | None = None
        self._closed = False

    # -- properties ----------------------------------------------------------------------------------------

    @property
    def init_segment(self) -> bytes:
        """``ftyp`` + ``moov`` for this session (identical for its whole life; send it once per client)."""
        return self._init.data

    @property
    def codec_string(self) -> str:
        """RFC 6381 codecs read from the init segment's avcC and esds, e.g. ``'avc1.64001f, mp4a.40.2'``."""
        return self._codecs

    @property
    def mime(self) -> str:
        """MIME type for ``MediaSource.addSourceBuffer``."""
        return f'video/mp4; codecs="{self._codecs}"'

    @property
    def frames_encoded(self) -> int:
        return self._next_frame

    @property
    def samples_fed(self) -> int:
        return self._feeder.written

    def video_ticks(self, frame: int) -> int:
        """Decode time of video frame ``frame`` in video-track ticks (floor of the exact rational time)."""
        return frame * self._init.video_timescale * self.fps.denominator // self.fps.numerator

    # -- input ---------------------------------------------------------------------------------------------

    def add_video(self, frames: np.ndarray) -> None:
        """Encode a chunk of frames, shape = (f, height, width, 3), uint8 RGB, in display order."""
        with self._lock:
            self._check_open()
            frames = c.check_frames(frames, self.width, self.height)
            for frame in frames:
                keyframe = self._force_idr or (
                    self.gop_frames is not None and self._frames_since_idr >= self.gop_frames
                )
                packets = self._venc.encode(c.rgb_to_yuv(frame, self._next_frame, keyframe))
                self._force_idr = False
                self._frames_since_idr = 1 if keyframe else self._frames_since_idr + 1
                self._next_frame += 1
                self._take_video(packets)

    def add_audio(self, samples: np.ndarray, sample_rate: int | None = None) -> None:
        """Queue audio, shape = (channels, n), float32 in [-1, 1]; whole AAC frames are encoded at once."""
        with self._lock:
            self._check_open()
            if sample_rate is not None and sample_rate != self.sample_rate:
                raise InputError(
                    f"audio sample rate {sample_rate} != session rate {self.sample_rate}",
                    code=codes.MEDIA_SAMPLE_RATE,
                )
            self._feeder.write(c.check_audio(samples, self.channels))
            for frame in self._feeder.frames():
                self._take_audio(self._aenc.encode(frame))

    # -- output --------------------------------------------------------------------------------------------

    def drain(self) -> bytes:
        """Media bytes encoded since the last drain/flush (b'' if none): one fragment per keyframe-started run."""
        with self._lock:
            self._write_pending()
            out = b"".join(self._segment_parts[self._drained :])
            self._drained = len(self._segment_parts)
            return out

    def flush_segment(self, index: int) -> MediaFragment:
        """Close segment ``index`` (indices go up by one): write what is pending and start the next on an IDR."""
        with self._lock:
            self._check_open()
            if self._last_index is not None and index != self._last_index + 1:
                raise InputError(
                    f"segment {index} flushed after {self._last_index}", code=codes.MEDIA_SEGMENT_ORDER
                )
            # zerolatency: every frame sent so far has come out, so the next segment starts on its own IDR
            assert self._video_packets == self._next_frame, (self._video_packets, self._next_frame)
            self._write_pending()
            fragment = self._segment_fragment(index)
            self._last_index = index
            self._segment_parts, self._drained = [], 0
            self._segment_start = self._next_frame
            self._segment_audio, self._segment_audio_samples = [], 0
            self._force_idr = True
            return fragment

    def close(self) -> bytes:
        """Flush the FIFO's short tail and both encoders; the final media bytes not yet handed out."""
        with self._lock:
            if self._closed:
                return b""
            for frame in self._feeder.frames(final=True):
                self._take_audio(self._aenc.encode(frame))
            self._take_audio(self._aenc.encode(None))
            self._take_video(self._venc.encode(None))
            out = self.drain()
            self._closed = True
            return out

    # -- internals -----------------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise InputError("the session encoder is closed", code=codes.MEDIA_CLOSED)

    def _take_video(self, packets: list[av.Packet[Any]]) -> None:
        for packet in packets:
            nals = split_annexb(bytes(packet))
            if packet.is_keyframe and not self._checked_parameter_sets:
                self._check_parameter_sets(nals)
            pts = packet.pts
            assert pts is not None, "x264 packets carry a pts"
            dts = packet.dts if packet.dts is not None else pts
            tick = self.video_ticks(dts)
            sample = Sample(
                length_prefixed(nals),
                duration=self.video_ticks(dts + 1) - tick,
                sync=packet.is_keyframe,
                composition_offset=self.video_ticks(pts) - tick,
            )
            self._video.append((tick, sample))
            self._video_packets += 1

    def _check_parameter_sets(self, nals: list[bytes]) -> None:
        """The in-band SPS/PPS of the first real IDR must be the ones the init segment's avcC announced."""
        sps = tuple(n for n in nals if n[0] & 0x1F == NAL_SPS)
        pps = tuple(n for n in nals if n[0] & 0x1F == NAL_PPS)
        if sps != self._init.sps or pps != self._init.pps:
            raise ConfigError(
                "x264 parameter sets differ from the init segment's avcC", code=codes.MEDIA_INIT_MISMATCH
            )
        self._checked_parameter_sets = True

    def _take_audio(self, packets: list[av.Packet[Any]]) -> None:
        for packet in packets:
            pts = packet.pts
            assert pts is not None, "AAC packets carry a pts"
            if self._priming is None:
                self._priming = max(0, -pts)
            duration = packet.duration or c.AAC_FRAME
            self._audio.append((pts + self._priming, Sample(bytes(packet), duration, sync=True)))

    def _write_pending(self) -> None:
        """Turn pending packets into fragments: one per keyframe-started video run, audio interleaved by time."""
        runs: list[list[tuple[int, Sample]]] = []
        for tick, sample in self._video:
            if sample.sync or not runs:
                runs.append([])
            runs[-1].append((tick, sample))
        self._video = []
        for i, run in enumerate(runs or [[]]):
            last = i == len(runs) - 1 or not runs
            audio = self._audio if last else self._audio_before(run[-1][0] + run[-1][1].duration)
            self._audio = [] if last else self._audio[len(audio) :]
            self._emit(run, audio)

    def _audio_before(self, video_end_tick: int) -> list[tuple[int, Sample]]:
        """Pending audio samples that start before a video tick (compared in seconds, exactly)."""
        limit = video_end_tick * self.sample_rate / self._init.video_timescale
        return [item for item in self._audio if item[0] < limit]

    def _emit(self, video: list[tuple[int, Sample]], audio: list[tuple[int, Sample]]) -> None:
        runs = []
        if video:
            runs.append(
                Run(self._init.video_track, video[0][0], tuple(s for _, s in video), per_sample_flags=True)
            )
        if audio:
            runs.append(
                Run(self._init.audio_track, audio[0][0], tuple(s for _, s in audio), per_sample_flags=False)
            )
            self._segment_audio.append(audio[0][0])
            self._segment_audio_samples += sum(s.duration for _, s in audio)
        if runs:
            self._sequence += 1
            self._segment_parts.append(build_fragment(self._sequence, runs))

    def _segment_fragment(self, index: int) -> MediaFragment:
        frames = self._next_frame - self._segment_start
        audio_start = min(self._segment_audio) / self.sample_rate if self._segment_audio else None
        return MediaFragment(
            index=index,
            start_s=self._segment_start / float(self.fps),
            duration_s=frames / float(self.fps),
            data=b"".join(self._segment_parts),
            remainder=b"".join(self._segment_parts[self._drained :]),
            video_frames=frames,
            audio_samples=self._segment_audio_samples,
            audio_start_s=audio_start,
        )
