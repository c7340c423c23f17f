"""The session timeline of the frame-aligned latent carry: which frames and audio each segment owns.

With F pixel frames per segment (L = 1 + (F−1)/8 latent frames) and k carried latent frames:

* segment n ≥ 1 starts at session frame ``n·(F − 1 − 8k)``: its frame 0 is the *anchor* (the frame just before the
  carried span) and its frames 1..8k repeat the carried span; those ``1 + 8k`` frames are trimmed, so every
  segment after the first adds ``F − 1 − 8k`` new frames and n segments show ``F + (n−1)(F − 1 − 8k)`` frames;
* a **hold** of h ≤ 8k frames (``ContinuationOptions.hold_frames``) moves every cut h frames back into the carried
  span: segment n shows its frames up to ``F − h`` (all F when it is the session's final segment) and segment
  n + 1 shows from its frame ``1 + 8k − h``. The video decoder is non-causal in time, so a segment's last frames
  are decoded without their future; the next segment decodes the same carried latents with it (continuation.md,
  "The hold"). Per segment after the first the count is still ``F − 1 − 8k``; the session is h frames behind
  until its final segment;
* audio lives on a global grid of 25 latents per second. Segment n's audio canvas starts at global latent
  ``round(t_n · 25) − context`` (t_n = its start time, ``context`` = extra carried audio latents) and is long enough
  to cover the segment plus a small margin; the latents that segment n−1 produced for the carried span (and the
  extra context before it) are its clean prefix;
* audio samples delivered after segment n are exactly ``round(frames_delivered / fps · sample_rate)``, so audio and
  video never drift apart by more than one sample of rounding, however long the session runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ltx2stream import codes
from ltx2stream.errors import InputError
from ltx2stream.types import (
    AUDIO_LATENTS_PER_SECOND,
    AUDIO_MARGIN_LATENTS,
    VIDEO_TIME_SCALE,
    is_frames_rule,
    latent_frames_of,
)


@dataclass(frozen=True)
class Timeline:
    frames: int  # pixel frames per generated segment (1 + 8m)
    fps: float
    overlap: int  # k: carried latent frames
    audio_context: int = 0  # extra audio latents carried before the overlap span
    hold: int = 0  # h: frames at a segment's end shown by the next segment instead (0..8k)

    def __post_init__(self) -> None:
        latent = latent_frames_of(self.frames)
        if not is_frames_rule(self.frames):
            raise InputError(f"frames must be 1 + 8k; got {self.frames}", code=codes.INPUT_FRAMES_RULE)
        if not 0 <= self.overlap <= latent - 2:
            raise InputError(
                f"overlap must be in [0, {max(latent - 2, 0)}] latent frames for {self.frames}-frame "
                f"segments (at least one new latent frame per segment); got {self.overlap}",
                code=codes.INPUT_OVERLAP,
            )
        if not 0 <= self.hold <= self.max_hold:
            raise InputError(
                f"the hold must be in [0, {self.max_hold}] frames (within the carried span, and less than a "
                f"segment's new frames) for {self.frames}-frame segments with overlap {self.overlap}; got {self.hold}",
                code=codes.INPUT_CARRY,
            )
        if self.audio_context < 0:
            raise InputError(
                f"audio_context must be >= 0; got {self.audio_context}", code=codes.INPUT_AUDIO_CONTEXT
            )

    @property
    def max_hold(self) -> int:
        """The largest hold: within the carried span (8k frames), and a segment after a final one still shows one
        new frame (step − 1)."""
        return min(VIDEO_TIME_SCALE * self.overlap, max(self.step - 1, 0)) if self.overlap else 0

    @property
    def latent_frames(self) -> int:
        return latent_frames_of(self.frames)

    @property
    def trimmed(self) -> int:
        """Frames at the start of segment n ≥ 1 that repeat segment n−1 (anchor + carried span)."""
        return 1 + VIDEO_TIME_SCALE * self.overlap if self.overlap else 0

    @property
    def step(self) -> int:
        """New frames per segment after the first."""
        return self.frames - self.trimmed

    @property
    def anchor_index(self) -> int:
        """Frame index, within a segment, of the next segment's anchor (just before the carried span)."""
        return self.frames - 1 - VIDEO_TIME_SCALE * self.overlap

    def start_frame(self, n: int) -> int:
        """Session frame of segment n's pixel frame 0."""
        return n * self.step

    def delivered_frames(self, n: int, final: bool = False) -> int:
        """Frames delivered once segments 0..n are done (``final``: segment n ended the session, nothing held)."""
        return self.frames + n * self.step - (0 if final else self.hold)

    def first_new_frame(self, n: int, after_final: bool = False) -> int:
        """Frame index within segment n of its first delivered frame (``after_final``: segment n − 1 was final
        and held nothing back, as when an ended session is extended)."""
        return 0 if n == 0 else self.trimmed - (0 if after_final else self.hold)

    def shown_end(self, final: bool = False) -> int:
        """Frame index within a segment after its last delivered frame."""
        return self.frames - (0 if final else self.hold)

    def start_time(self, n: int) -> float:
        return self.start_frame(n) / self.fps

    def audio_start(self, n: int) -> int:
        """Global audio latent index at segment n's start time."""
        return round(self.start_time(n) * AUDIO_LATENTS_PER_SECOND)

    def audio_canvas_start(self, n: int) -> int:
        """Global audio latent index of segment n's first audio token (extra context included)."""
        if not self.overlap:
            # Independent segments carry no audio prefix: start on the grid at or before the segment's start
            # time, so its audio slice never begins before its canvas (rounding up would lose the slice).
            return math.floor(self.start_time(n) * AUDIO_LATENTS_PER_SECOND + 1e-9)
        if n == 0:
            return self.audio_start(n)
        return max(0, self.audio_start(n) - self.audio_context)

    def audio_latents(self, n: int) -> int:
        """Length of segment n's audio canvas."""
        body = math.ceil(self.frames / self.fps * AUDIO_LATENTS_PER_SECOND) + AUDIO_MARGIN_LATENTS
        return self.audio_start(n) - self.audio_canvas_start(n) + body

    def audio_carry_end(self, n: int) -> int:
        """Global audio latent index where segment n's carried audio prefix ends (end of the carried video span)."""
        if n == 0 or not self.overlap:
            return self.audio_canvas_start(n)
        end_frame = self.start_frame(n) + self.trimmed
        return round(end_frame / self.fps * AUDIO_LATENTS_PER_SECOND)

    def audio_carry_count(self, n: int) -> int:
        return self.audio_carry_end(n) - self.audio_canvas_start(n)

    def delivered_samples(self, n: int, sample_rate: int, final: bool = False) -> int:
        """Audio samples delivered once segments 0..n are done (tied to the delivered video frames)."""
        return round(self.delivered_frames(n, final) / self.fps * sample_rate)

    def audio_slice(
        self, n: int, sample_rate: int, final: bool = False, after_final: bool = False
    ) -> tuple[int, int]:
        """[start, stop) sample offsets into segment n's decoded audio (which starts at its canvas start)."""
        before = self.delivered_samples(n - 1, sample_rate, after_final) if n > 0 else 0
        origin = round(self.audio_canvas_start(n) / AUDIO_LATENTS_PER_SECOND * sample_rate)
        return before - origin, self.delivered_samples(n, sample_rate, final) - origin
