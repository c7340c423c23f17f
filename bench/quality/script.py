"""The session script a quality run follows: a world scene for the first segments, then a steer to a changed
scene (the world's announced change), plus the world's own rendering of the same script as a reference."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ltx2stream.world import ClipSpec, SceneState, render_clip, steered_clip_spec


@dataclass(frozen=True)
class Script:
    spec: ClipSpec  # the world clip: scene A, then the change at the steer
    prompts: tuple[str, ...]  # per segment
    states: tuple[SceneState, ...]  # per segment: the scene its prompt describes
    steer_segment: int  # first segment generated under the new prompt
    announcement: str

    @property
    def old_state(self) -> SceneState:
        return self.states[self.steer_segment - 1]

    @property
    def new_state(self) -> SceneState:
        return self.states[self.steer_segment]


def world_script(
    seed: int, segments: int, steer_segment: int, change: str | None, vocabulary: str = "train"
) -> Script:
    """Prompts for ``segments`` segments: scene A before ``steer_segment``, the changed scene B from it."""
    if not 0 < steer_segment < segments:
        raise ValueError(f"steer segment {steer_segment} must lie in 1..{segments - 1}")
    # The change time only matters for the reference rendering; captions are words for the two scene states.
    # The first scene with a moving shape from seed on (bounces give the A/V offset something to measure).
    spec = next(
        s
        for s in (steered_clip_spec(seed + 7919 * j, 1.0, change) for j in range(100))
        if any(x.motion != "still" for x in s.shapes)
    )
    clip = render_clip(spec, 24, 32, 32, 12.0, vocabulary=vocabulary)
    a, b = clip.captions
    prompts = tuple(a.text if i < steer_segment else b.text for i in range(segments))
    states = tuple(a.state if i < steer_segment else b.state for i in range(segments))
    return Script(spec, prompts, states, steer_segment, b.announcement or "")


def reference(
    script: Script, boundaries: list[int], frames: int, height: int, width: int, fps: float, sample_rate: int
) -> tuple[np.ndarray, np.ndarray]:
    """The world's own rendering of the script with the change exactly at the steer boundary: video (F, H, W, 3)
    and audio (2, S) — what an ideal continuous model would show under these prompts."""
    at = boundaries[script.steer_segment - 1] / fps
    spec = replace(script.spec, events=tuple(replace(e, at=at) for e in script.spec.events))
    clip = render_clip(spec, frames, height, width, fps, sample_rate=sample_rate, channels=2)
    return clip.video, clip.audio
