"""ContinuationState: everything the next segment needs, as typed data, and its (de)serialisation.

Tensors (float32 latents, kept exactly): ``stage1_tail`` [1, 128, k, h/2, w/2] and ``stage2_tail`` [1, 128, k, h, w]
(the last k latent frames of the denoised stage-1 / stage-2 video latents), ``anchor1`` / ``anchor2`` [1, 128, 1, ·, ·]
(the frame before the carried span encoded as a one-frame latent at each stage's size) and ``audio_tail``
[1, 8, c, 16] (the audio latents of the carried span, plus extra context). One-stage presets keep only the
stage-1 tensors (at full size). Metadata: settings, segment index, timeline position, prompt history, seeds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from ltx2stream import codes
from ltx2stream.errors import StateError
from ltx2stream.session.api import SessionSettings
from ltx2stream.session.state import SerializedState

SCHEME = "frame_aligned_latent_carry"
TENSOR_NAMES = ("stage1_tail", "stage2_tail", "anchor1", "anchor2", "audio_tail")


def compatibility(settings: SessionSettings, options: Mapping[str, Any]) -> dict[str, Any]:
    """What must match between a state and the session that resumes it."""
    s = settings
    return {
        "preset": s.preset,
        "width": s.width,
        "height": s.height,
        "fps": s.fps,
        "frames": s.frames,
        "overlap": s.overlap,
        "scheme": SCHEME,
        **{f"option.{k}": v for k, v in options.items()},
    }


@dataclass(frozen=True)
class ContinuationState:
    settings: SessionSettings
    segment_index: int  # last finished segment
    frames_delivered: int
    samples_delivered: int
    sample_rate: int
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    prompt_history: tuple[dict[str, Any], ...] = ()
    seeds: tuple[int, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def next_index(self) -> int:
        return self.segment_index + 1

    @property
    def last_prompt(self) -> str | None:
        return self.prompt_history[-1]["prompt"] if self.prompt_history else None

    def compatibility(self) -> dict[str, Any]:
        return compatibility(self.settings, self.options)

    def check_compatible(self, expected: dict[str, Any]) -> None:
        """Refuse (StateError ``state.incompatible``, naming every difference) a state made for other settings."""
        self.to_serialized().check_compatible(expected)

    def to_serialized(self) -> SerializedState:
        s = self.settings
        meta = {
            **self.compatibility(),
            "seed": s.seed,
            "segment_index": self.segment_index,
            "timeline_position": self.frames_delivered / s.fps,
            "frames_delivered": self.frames_delivered,
            "samples_delivered": self.samples_delivered,
            "sample_rate": self.sample_rate,
            "prompt_history": list(self.prompt_history),
            "seeds": list(self.seeds),
            "options": self.options,
        }
        return SerializedState(tensors=dict(self.tensors), meta=meta)

    def to_bytes(self) -> bytes:
        return self.to_serialized().to_bytes()

    @classmethod
    def from_serialized(
        cls, state: SerializedState, expected: dict[str, Any] | None = None
    ) -> ContinuationState:
        """Rebuild; with ``expected`` (a session's ``compatibility()``) refuse a state made for other settings."""
        if expected is not None:
            state.check_compatible(expected)
        m = state.meta
        try:
            settings = SessionSettings(
                preset=m["preset"],
                width=int(m["width"]),
                height=int(m["height"]),
                fps=float(m["fps"]),
                frames=int(m["frames"]),
                overlap=int(m["overlap"]),
                seed=int(m["seed"]),
            )
            if m.get("scheme") != SCHEME:
                raise StateError(
                    f"state scheme {m.get('scheme')!r} is not {SCHEME!r}", code=codes.STATE_INCOMPATIBLE
                )
            unknown = sorted(set(state.tensors) - set(TENSOR_NAMES))
            if unknown:
                raise StateError(f"state has unknown tensors {unknown}", code=codes.STATE_CORRUPT)
            return cls(
                settings,
                int(m["segment_index"]),
                int(m["frames_delivered"]),
                int(m["samples_delivered"]),
                int(m["sample_rate"]),
                dict(state.tensors),
                tuple(m["prompt_history"]),
                tuple(int(x) for x in m["seeds"]),
                dict(m.get("options", {})),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise StateError(f"state metadata is incomplete: {e}", code=codes.STATE_CORRUPT) from e

    @classmethod
    def from_bytes(cls, data: bytes, expected: dict[str, Any] | None = None) -> ContinuationState:
        return cls.from_serialized(SerializedState.from_bytes(data), expected)
