"""Encoder construction, input checks and the audio FIFO shared by the streaming and the file writers.

Video is H.264 (libx264, yuv420p, BT.709 signalled and used for the RGB -> YUV matrix); audio is AAC-LC (FFmpeg's
native ``aac`` with its ``fast`` coder, ``AAC_CODER``). The streaming encoder uses ``tune=zerolatency`` (no
B-frames, no lookahead: one packet per frame, so nothing of segment N is held back into segment N+1) and an
effectively infinite GOP with IDRs forced on demand; the file writer uses ordinary x264 settings.
"""

from __future__ import annotations

import logging
import os
from fractions import Fraction

import av
import numpy as np
from av.audio.fifo import AudioFifo
from av.video.frame import PictureType

from ltx2stream import codes
from ltx2stream.errors import ConfigError, InputError

logger = logging.getLogger(__name__)

AAC_FRAME = 1024  # samples per AAC-LC access unit
AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)
_BT709 = 1  # AVCOL_PRI_BT709 == AVCOL_TRC_BT709 == AVCOL_SPC_BT709
_LAYOUTS = {1: "mono", 2: "stereo"}


def as_fraction(fps: float | Fraction) -> Fraction:
    """Frame rate as an exact fraction (23.976 -> 24000/1001); InputError unless 0 < fps <= 240."""
    rate = fps if isinstance(fps, Fraction) else Fraction(fps).limit_denominator(1001)
    if not 0 < rate <= 240:
        raise InputError(f"fps must be in (0, 240]; got {fps}", code=codes.MEDIA_BAD_FPS)
    return rate


def check_video_size(width: int, height: int) -> None:
    """yuv420p needs even sizes; H.264 level limits cap them at 8192."""
    if not (2 <= width <= 8192 and 2 <= height <= 8192) or width % 2 or height % 2:
        raise InputError(
            f"width and height must be even and in [2, 8192]; got {width}x{height}", code=codes.MEDIA_ODD_SIZE
        )


def check_audio_config(sample_rate: int, channels: int) -> str:
    """The channel layout name; InputError for rates AAC cannot carry or unsupported channel counts."""
    if sample_rate not in AAC_RATES:
        raise InputError(
            f"sample_rate {sample_rate} is not an AAC rate; supported: {AAC_RATES}",
            code=codes.MEDIA_SAMPLE_RATE,
        )
    if channels not in _LAYOUTS:
        raise InputError(f"audio_channels must be 1 or 2; got {channels}", code=codes.MEDIA_AUDIO_CHANNELS)
    return _LAYOUTS[channels]


def check_frames(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    """Validate a chunk of RGB frames, shape = (f, height, width, 3), dtype uint8; returns it C-contiguous."""
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
        kind = frames.dtype if isinstance(frames, np.ndarray) else type(frames).__name__
        raise InputError(f"frames must be a uint8 numpy array; got {kind}", code=codes.MEDIA_FRAME_DTYPE)
    if frames.ndim != 4 or frames.shape[1:] != (height, width, 3):
        raise InputError(
            f"frames must have shape [f, {height}, {width}, 3]; got {list(frames.shape)}",
            code=codes.MEDIA_FRAME_SHAPE,
        )
    return np.ascontiguousarray(frames)


def check_audio(samples: np.ndarray, channels: int) -> np.ndarray:
    """Validate audio, shape = (channels, n), float32, finite; values beyond [-1, 1] are clipped."""
    if not isinstance(samples, np.ndarray) or samples.dtype != np.float32:
        kind = samples.dtype if isinstance(samples, np.ndarray) else type(samples).__name__
        raise InputError(f"audio must be a float32 numpy array; got {kind}", code=codes.MEDIA_AUDIO_DTYPE)
    if samples.ndim != 2 or samples.shape[0] != channels:
        raise InputError(
            f"audio must have shape [{channels}, n]; got {list(samples.shape)}", code=codes.MEDIA_AUDIO_SHAPE
        )
    if not np.isfinite(samples).all():
        raise InputError("audio contains NaN or infinite samples", code=codes.MEDIA_AUDIO_NOT_FINITE)
    return np.ascontiguousarray(np.clip(samples, -1.0, 1.0))


def require_encoder(name: str) -> None:
    """ConfigError when this FFmpeg build lacks an encoder (e.g. an LGPL PyAV build without libx264)."""
    try:
        av.codec.Codec(name, "w")
    except Exception as e:  # PyAV raises UnknownCodecError (a ValueError) or FFmpegError
        raise ConfigError(
            f"encoder {name!r} is not available in this PyAV/FFmpeg build", code=codes.MEDIA_NO_ENCODER
        ) from e


def stream_video_options(
    crf: int, preset: str, gop_frames: int | None, max_bitrate: int | None = None
) -> dict[str, str]:
    """x264 options for low-latency streaming: zerolatency, forced IDRs only (no scene cuts), CRF, optional VBV cap."""
    cap = {"maxrate": str(max_bitrate), "bufsize": str(2 * max_bitrate)} if max_bitrate else {}
    return cap | {
        "preset": preset,
        "tune": "zerolatency",
        "crf": str(crf),
        "g": str(gop_frames or 100_000),
        "keyint_min": "1",
        "sc_threshold": "0",
        "forced-idr": "1",
    }


def open_video_encoder(
    width: int, height: int, fps: Fraction, options: dict[str, str]
) -> av.VideoCodecContext:
    """A libx264 context with in-band SPS/PPS (no global header), so every IDR carries its parameter sets."""
    require_encoder("libx264")
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.time_base, ctx.framerate = 1 / fps, fps
    set_bt709(ctx)
    ctx.options = options
    ctx.open()
    return ctx


def set_bt709(ctx: av.VideoCodecContext) -> None:
    """Signal BT.709 limited range in the SPS VUI (matches the matrix ``rgb_to_yuv`` converts with)."""
    ctx.color_primaries = ctx.color_trc = ctx.colorspace = _BT709
    ctx.color_range = 1  # AVCOL_RANGE_MPEG


AAC_CODERS = ("fast", "twoloop")
AAC_CODER = os.environ.get("LTX2STREAM_AAC_CODER", "fast")
"""The native AAC encoder's quantisation search: ``fast`` here, where FFmpeg defaults to ``twoloop``, which took
2.9x the CPU on the server's audio (24 kHz stereo at 128 kbit/s: 30 against 10 ms per second of audio on an AMD
EPYC core, more than x264 spends on the bench preset's 128x128 video), CPU taken from the model on 2 cores;
``fast`` also gave the higher waveform SNR (``bench/bench_aac.py``, docs/media.md). ``LTX2STREAM_AAC_CODER``
overrides it (read at import, so an encoder process takes its server's)."""


def aac_options(coder: str | None = None) -> dict[str, str]:
    """The native AAC encoder's options with ``coder`` (None: ``AAC_CODER``), checked."""
    coder = coder or AAC_CODER
    if coder not in AAC_CODERS:
        raise ConfigError(
            f"the AAC coder (LTX2STREAM_AAC_CODER) must be one of {', '.join(AAC_CODERS)}; got {coder!r}",
            code=codes.CONFIG_UNSUPPORTED_VALUE,
        )
    return {"aac_coder": coder}


def open_audio_encoder(
    sample_rate: int, layout: str, bit_rate: int, coder: str | None = None
) -> av.AudioCodecContext:
    """FFmpeg's native AAC-LC encoder (``coder``, None: ``AAC_CODER``), planar float input, time base
    1/sample_rate."""
    require_encoder("aac")
    ctx = av.CodecContext.create("aac", "w")
    ctx.sample_rate, ctx.layout, ctx.format = sample_rate, layout, "fltp"
    ctx.time_base = Fraction(1, sample_rate)
    ctx.bit_rate = bit_rate
    ctx.options = aac_options(coder)
    ctx.open()
    return ctx


def rgb_to_yuv(frame: np.ndarray, pts: int, keyframe: bool) -> av.VideoFrame:
    """One uint8 [H, W, 3] RGB frame -> a yuv420p VideoFrame (BT.709) with ``pts``; optionally forced I."""
    out = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(
        format="yuv420p", dst_colorspace="itu709"
    )
    out.pts = pts
    if keyframe:
        out.pict_type = PictureType.I
    return out


class AudioFeeder:
    """Float [C, n] chunks in, whole 1024-sample AAC frames out with continuous pts; the remainder waits.

    ``frames()`` only ever yields complete frames, so splitting the input anywhere (segment edges included)
    neither drops nor repeats a sample; ``frames(final=True)`` also yields the short last frame.
    """

    def __init__(self, sample_rate: int, layout: str) -> None:
        self.sample_rate = sample_rate
        self.layout = layout
        self._fifo = AudioFifo()
        self.written = 0  # samples accepted so far

    def write(self, samples: np.ndarray) -> None:
        """Queue float32 samples, shape = (channels, n)."""
        if samples.shape[1] == 0:
            return
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout=self.layout)
        frame.sample_rate = self.sample_rate
        frame.pts = self.written
        frame.time_base = Fraction(1, self.sample_rate)
        self._fifo.write(frame)
        self.written += samples.shape[1]

    def frames(self, final: bool = False) -> list[av.AudioFrame]:
        """Every whole AAC frame now available (and the partial tail when ``final``)."""
        out = list(self._fifo.read_many(AAC_FRAME))
        tail = self._fifo.read(self._fifo.samples) if final and self._fifo.samples else None
        if tail is not None:
            out.append(tail)
        return out

    @property
    def pending(self) -> int:
        """Samples written but not yet handed out as frames."""
        return self._fifo.samples
