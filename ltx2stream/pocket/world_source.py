"""The procedural world (``ltx2stream.world``) as the pocket trainers' clip source.

Clip ``index`` is a window of a 12-second world clip with seed ``index`` (the window start also follows from
``index``), so windows continue scenes mid-motion; with ``change_at`` it is a steered clip whose scene changes
at that time. Captions use the world's training vocabulary (the held-out wording is kept for the bench's
paraphrase test). Audio is stereo at 24 kHz (the vocoder's output rate).
"""

from __future__ import annotations

import json

import numpy as np

from ltx2stream.pocket.data import Clip, mix_seed

SAMPLE_RATE = 24000
CLIP_SECONDS = 12.0


class WorldSource:
    def __init__(self, *, sample_rate: int = SAMPLE_RATE, vocabulary: str = "train") -> None:
        self.sample_rate, self.vocabulary = sample_rate, vocabulary

    @property
    def clip_key(self) -> str:
        """What a clip index draws: the world's sampler version."""
        from ltx2stream.world import SPEC_VERSION

        return f"world specs {SPEC_VERSION}"

    @property
    def sound_key(self) -> str:
        """The world's sound constants (pitches, levels, clicks) and the sample rate."""
        from ltx2stream.world import palette as p

        return json.dumps(
            [self.sample_rate, sorted(p.KIND_PITCH_HZ.items()), sorted(p.BACKGROUND_HUM_HZ.items()),
             p.TONE_AMPLITUDE, p.HUM_AMPLITUDE, p.CLICK_AMPLITUDE, p.CLICK_DECAY_S, p.CLICK_LENGTH_S]
        )  # fmt: skip

    def clip(
        self,
        index: int,
        *,
        frames: int,
        height: int,
        width: int,
        fps: float,
        change_at: float | None = None,
    ) -> Clip:
        from ltx2stream import world

        kw = {"sample_rate": self.sample_rate, "channels": 2, "vocabulary": self.vocabulary}
        if change_at is not None:
            change = max(1, min(frames - 1, world.first_frame_at(change_at, fps)))
            r = world.make_steered_clip(index, frames, height, width, fps, change, **kw)
        else:
            spec = world.sample_clip_spec(index, duration_s=CLIP_SECONDS)
            room = max(0, int(CLIP_SECONDS * fps) - frames)
            start = int(np.random.default_rng(mix_seed(index, 0x5EED)).integers(room + 1))
            r = world.render_clip(spec, frames, height, width, fps, start_frame=start, **kw)
        audio = np.asarray(r.audio, dtype=np.float32)
        if audio.ndim == 1:
            audio = np.stack([audio, audio])
        captions = tuple((span.start / fps, span.text) for span in r.captions)
        return Clip(np.ascontiguousarray(r.video), audio, self.sample_rate, fps, captions)
