"""ContinuationState: everything the next segment needs, as typed data, and its (de)serialisation.

The carry (``Carry``) holds float32 latents, kept exactly: per stage the last k latent frames of the denoised video
latents (``tail`` [1, 128, k, h, w]) and the frame before the carried span encoded as a one-frame latent at that
stage's size (``anchor`` [1, 128, 1, h, w]); stage 2 only for two-stage presets (one-stage presets carry stage 1 at
full size); and the audio latents of the carried span plus extra context (``audio_tail`` [1, 8, c, 16]). Around it:
the session settings, the continuation options, the segment index, what was delivered, the prompt history and
the seeds.

The on-disk layout (schema 1, unchanged since the first release) is written and read only by
:func:`state_to_serialized` / :func:`state_from_serialized` at the end of this module: the tensor and meta key
names appear nowhere else.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch

from ltx2stream import codes
from ltx2stream.errors import InputError, StateError
from ltx2stream.session.api import SegmentRequest, SessionSettings
from ltx2stream.session.state import SerializedState

SCHEMES = ("latent_carry", "keyframe_carry", "reencode")


@dataclass(frozen=True)
class ContinuationOptions:
    """Settings of the carry: strength of the carried latents (mask 1 − strength), extra audio context latents,
    optional conditioning noise (std of Gaussian noise mixed into the carried latents; 0 keeps them exact), and the
    scheme: ``latent_carry`` (default) writes the tail into canvas frames 1..k; ``keyframe_carry`` appends it as
    extra tokens at the same positions (docs/continuation.md), so canvas frames 1..k are regenerated while
    attending to it; ``reencode`` (the decode -> re-encode baseline) VAE-encodes the carried span's decoded pixels
    again and writes those latents in place.

    Where the cut falls (docs/continuation.md, "The hold"): ``hold_frames`` (at most the carried span's 8k frames)
    of each segment's end are shown by the next segment instead, decoded with their future; ``decode_context``
    latent frames of the previous segment before its carried tail stand in front of the next segment's latents
    when it is decoded (in place of its re-encoded anchor). A resumed session keeps the two values its state was
    written with (states written before them: 0 and 0, the cut at the segment's end)."""

    carry_strength: float = 1.0
    audio_context: int = 0
    carry_noise: float = 0.0
    scheme: str = "latent_carry"
    hold_frames: int = 8
    decode_context: int = 2

    def __post_init__(self) -> None:
        if not (0.0 <= self.carry_strength <= 1.0 and 0.0 <= self.carry_noise <= 1.0):
            raise InputError("carry_strength and carry_noise must be in [0, 1]", code=codes.INPUT_CARRY)
        for name in ("hold_frames", "decode_context"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InputError(f"{name} must be an integer >= 0; got {value!r}", code=codes.INPUT_CARRY)
        if self.scheme not in SCHEMES:
            raise InputError(
                f"continuation scheme {self.scheme!r} is not one of {SCHEMES}", code=codes.INPUT_CARRY
            )


DEFAULT_OPTIONS = ContinuationOptions()
# The cut of states written before the hold (their options lack the two keys): at the segment's end.
LEGACY_CUT: dict[str, Any] = {"hold_frames": 0, "decode_context": 0}


@dataclass(frozen=True)
class StageCarry:
    """One stage's carried video latents at that stage's size.

    shape: anchor = (1, C, 1, h, w), tail = (1, C, k, h, w)."""

    anchor: torch.Tensor
    tail: torch.Tensor

    def map(self, fn: Callable[[torch.Tensor, int], torch.Tensor], salts: tuple[int, int]) -> StageCarry:
        """``fn(tensor, salt)`` applied to the anchor (first salt) and the tail (second salt)."""
        return StageCarry(fn(self.anchor, salts[0]), fn(self.tail, salts[1]))


@dataclass(frozen=True)
class CarrySalts:
    """Salt of each carried tensor's optional conditioning noise (``ContinuationOptions.carry_noise``).

    The values are those schema-1 releases used (they numbered the tensors in the sorted order of their names), so
    sessions resumed across releases stay bit-identical."""

    stage1: tuple[int, int]  # anchor, tail
    audio: int
    stage2: tuple[int, int] | None  # anchor, tail; None for one-stage carries


ONE_STAGE_SALTS = CarrySalts(stage1=(0, 2), audio=1, stage2=None)
TWO_STAGE_SALTS = CarrySalts(stage1=(0, 3), audio=2, stage2=(1, 4))


@dataclass(frozen=True)
class Carry:
    """The latents segment n hands to segment n + 1. ``stage2`` None means a one-stage preset. ``decode_context``:
    the final video latent frames just before the carried tail (the next segment's decoder context; None when the
    options ask for none), never noised.

    shape: audio_tail = (1, 8, c, 16), decode_context = (1, C, c', H, W) at the final stage's size."""

    stage1: StageCarry
    stage2: StageCarry | None
    audio_tail: torch.Tensor
    decode_context: torch.Tensor | None = None

    @property
    def salts(self) -> CarrySalts:
        return ONE_STAGE_SALTS if self.stage2 is None else TWO_STAGE_SALTS

    def map(self, fn: Callable[[torch.Tensor, int], torch.Tensor]) -> Carry:
        """A carry with ``fn(tensor, salt)`` applied to every tensor, each with its own fixed salt."""
        salts = self.salts
        stage2 = None
        if self.stage2 is not None and salts.stage2 is not None:
            stage2 = self.stage2.map(fn, salts.stage2)
        return Carry(
            self.stage1.map(fn, salts.stage1), stage2, fn(self.audio_tail, salts.audio), self.decode_context
        )


@dataclass(frozen=True)
class ContinuationState:
    """A session after its segment ``segment_index`` (−1: before the first one); ``carry`` None when nothing is
    carried (overlap 0, or no segment yet)."""

    settings: SessionSettings
    options: ContinuationOptions
    segment_index: int  # last finished segment
    frames_delivered: int
    samples_delivered: int
    sample_rate: int
    carry: Carry | None = None
    prompt_history: tuple[SegmentRequest, ...] = ()  # the request of every finished segment, in order
    seeds: tuple[int, ...] = ()
    model: str = ""  # the preset's model family ("ltx2", "ltx2.3", "ltx2.5"); "" in states written before it

    @property
    def next_index(self) -> int:
        return self.segment_index + 1

    @property
    def last_prompt(self) -> str | None:
        return self.prompt_history[-1].prompt if self.prompt_history else None

    def check_fits(self, settings: SessionSettings, options: ContinuationOptions) -> None:
        """Refuse a state made for other settings or options.

        Raises:
            StateError: ``state.incompatible``, naming every difference as ``name: state=..., session=...``.
        """
        diffs = [
            f"{name}: state={mine!r}, session={theirs!r}"
            for name, mine, theirs in _fit_values(self.settings, self.options, settings, options)
            if not _same(mine, theirs)
        ]
        if diffs:
            raise StateError(
                "continuation state does not fit this session: " + "; ".join(diffs),
                code=codes.STATE_INCOMPATIBLE,
            )

    def to_serialized(self) -> SerializedState:
        return state_to_serialized(self)

    def to_bytes(self) -> bytes:
        return self.to_serialized().to_bytes()

    @classmethod
    def from_serialized(cls, state: SerializedState) -> ContinuationState:
        return state_from_serialized(state)

    @classmethod
    def from_bytes(cls, data: bytes) -> ContinuationState:
        """Parse bytes written by :meth:`to_bytes` (this or an earlier schema-1 release).

        Raises:
            StateError: ``state.corrupt`` / ``state.foreign`` / ``state.future_version`` (see ``session/state.py``),
                ``state.incompatible`` for a state of another continuation format family.
        """
        return state_from_serialized(SerializedState.from_bytes(data))


_SETTINGS_FIT = ("preset", "width", "height", "fps", "frames", "overlap")


def _fit_values(
    s_a: SessionSettings, o_a: ContinuationOptions, s_b: SessionSettings, o_b: ContinuationOptions
) -> list[tuple[str, object, object]]:
    out: list[tuple[str, object, object]] = [(n, getattr(s_a, n), getattr(s_b, n)) for n in _SETTINGS_FIT]
    out += [
        (f.name, getattr(o_a, f.name), getattr(o_b, f.name))
        for f in fields(ContinuationOptions)
        if f.name not in LEGACY_CUT  # where the cut falls: the state's own values win (SessionController)
    ]
    return out


def _same(a: object, b: object) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    return a == b


# -- schema-1 layout: the only place that knows the key names ---------------------------------------------------
# meta "scheme": the continuation family every schema-1 state belongs to
FAMILY = "frame_aligned_latent_carry"
_TWO_STAGE_TENSORS = frozenset({"anchor1", "stage1_tail", "anchor2", "stage2_tail", "audio_tail"})
_ONE_STAGE_TENSORS = frozenset({"anchor1", "stage1_tail", "audio_tail"})
_PROMPT_KEYS = ("segment", "prompt", "seed", "transition", "blend_from", "blend_weight")


def state_to_serialized(state: ContinuationState) -> SerializedState:
    """The schema-1 container: tensors by name, settings and options flat in meta (what resuming must match)."""
    s, options = state.settings, asdict(state.options)
    # the cut's keys are additive: written only where they differ from what states without them mean, so a state
    # of an earlier release reads and writes back unchanged
    options = {k: v for k, v in options.items() if not (k in LEGACY_CUT and v == LEGACY_CUT[k])}
    meta: dict[str, Any] = {
        "preset": s.preset,
        "width": s.width,
        "height": s.height,
        "fps": s.fps,
        "frames": s.frames,
        "overlap": s.overlap,
        "scheme": FAMILY,
        **{f"option.{k}": v for k, v in options.items()},
        "seed": s.seed,
        "segment_index": state.segment_index,
        "timeline_position": state.frames_delivered / s.fps,
        "frames_delivered": state.frames_delivered,
        "samples_delivered": state.samples_delivered,
        "sample_rate": state.sample_rate,
        "prompt_history": [_prompt_entry(r) for r in state.prompt_history],
        "seeds": list(state.seeds),
        "options": options,
    }
    if state.model:
        meta["model"] = state.model
    return SerializedState(tensors=_carry_tensors(state.carry), meta=meta)


def state_from_serialized(state: SerializedState) -> ContinuationState:
    """Rebuild the typed state from a schema-1 container.

    Raises:
        StateError: ``state.incompatible`` for another continuation family; ``state.corrupt`` for missing or
            mistyped metadata, unknown or incomplete tensor sets and tensors of the wrong rank or frame count.
    """
    m = state.meta
    if m.get("scheme") != FAMILY:
        raise StateError(f"state scheme {m.get('scheme')!r} is not {FAMILY!r}", code=codes.STATE_INCOMPATIBLE)
    try:
        settings = SessionSettings(
            preset=str(m["preset"]),
            width=int(m["width"]),
            height=int(m["height"]),
            fps=float(m["fps"]),
            frames=int(m["frames"]),
            overlap=int(m["overlap"]),
            seed=int(m["seed"]),
        )
        options = _options(m.get("options", {}))
        return ContinuationState(
            settings,
            options,
            int(m["segment_index"]),
            int(m["frames_delivered"]),
            int(m["samples_delivered"]),
            int(m["sample_rate"]),
            _carry(state.tensors, settings.overlap),
            tuple(_prompt_request(e) for e in m["prompt_history"]),
            tuple(int(x) for x in m["seeds"]),
            model=_model(m.get("model", "")),
        )
    except (KeyError, TypeError, ValueError, InputError) as e:
        raise StateError(f"state metadata is incomplete or invalid: {e}", code=codes.STATE_CORRUPT) from e


def _model(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"meta model is {value!r}, not a string")
    return value


def _carry_tensors(carry: Carry | None) -> dict[str, torch.Tensor]:
    if carry is None:
        return {}
    tensors = {
        "stage1_tail": carry.stage1.tail,
        "anchor1": carry.stage1.anchor,
        "audio_tail": carry.audio_tail,
    }
    if carry.stage2 is not None:
        tensors |= {"stage2_tail": carry.stage2.tail, "anchor2": carry.stage2.anchor}
    if carry.decode_context is not None:
        tensors["decode_context"] = carry.decode_context
    return tensors


def _carry(tensors: Mapping[str, torch.Tensor], overlap: int) -> Carry | None:
    names = frozenset(tensors) - {"decode_context"}
    if not names:
        return None
    if names not in (_ONE_STAGE_TENSORS, _TWO_STAGE_TENSORS):
        raise StateError(
            f"state tensors {sorted(names)} are neither the one-stage set {sorted(_ONE_STAGE_TENSORS)} nor the "
            f"two-stage set {sorted(_TWO_STAGE_TENSORS)}",
            code=codes.STATE_CORRUPT,
        )
    stage1 = _stage(tensors["anchor1"], tensors["stage1_tail"], overlap, 1)
    stage2 = _stage(tensors["anchor2"], tensors["stage2_tail"], overlap, 2) if "anchor2" in names else None
    audio = tensors["audio_tail"]
    if audio.ndim != 4:
        raise StateError(
            f"state audio tail has shape {tuple(audio.shape)}; expected 4 dims", code=codes.STATE_CORRUPT
        )
    context = tensors.get("decode_context")
    final = (stage2 or stage1).tail
    if context is not None and (
        context.ndim != 5 or context.shape[:2] != final.shape[:2] or context.shape[3:] != final.shape[3:]
    ):
        raise StateError(
            f"state decode context has shape {tuple(context.shape)}; expected (1, C, c, h, w) like the final "
            f"stage's tail {tuple(final.shape)}",
            code=codes.STATE_CORRUPT,
        )
    return Carry(stage1, stage2, audio, context)


def _stage(anchor: torch.Tensor, tail: torch.Tensor, overlap: int, stage: int) -> StageCarry:
    a, t = tuple(anchor.shape), tuple(tail.shape)
    if len(a) != 5 or len(t) != 5 or a[2] != 1 or t[2] != overlap or a[:2] + a[3:] != t[:2] + t[3:]:
        raise StateError(
            f"state stage-{stage} anchor {a} / tail {t} do not match (expected (1, C, 1, h, w) / "
            f"(1, C, {overlap}, h, w) for overlap {overlap})",
            code=codes.STATE_CORRUPT,
        )
    return StageCarry(anchor, tail)


def _options(raw: object) -> ContinuationOptions:
    if not isinstance(raw, dict):
        raise StateError(f"state options is a {type(raw).__name__}, not an object", code=codes.STATE_CORRUPT)
    known = {f.name for f in fields(ContinuationOptions)}
    if set(raw) - known:
        raise StateError(
            f"state has unknown continuation options {sorted(set(raw) - known)}", code=codes.STATE_CORRUPT
        )
    return ContinuationOptions(**(LEGACY_CUT | raw))


def _prompt_entry(r: SegmentRequest) -> dict[str, Any]:
    return dict(zip(_PROMPT_KEYS, (r.index, r.prompt, r.seed, r.transition, r.blend_from, r.blend_weight)))


def _prompt_request(entry: object) -> SegmentRequest:
    if not isinstance(entry, dict) or set(entry) - set(_PROMPT_KEYS):
        raise StateError(
            f"state prompt history entry {entry!r} is not an object with keys from {_PROMPT_KEYS}",
            code=codes.STATE_CORRUPT,
        )
    transition = entry.get("transition", "cut")
    if transition not in ("cut", "blend"):
        raise StateError(
            f"state prompt history transition {transition!r} is not 'cut' or 'blend'",
            code=codes.STATE_CORRUPT,
        )
    blend_from = entry.get("blend_from")
    return SegmentRequest(
        index=int(entry["segment"]),
        prompt=str(entry["prompt"]),
        seed=int(entry["seed"]),
        transition=transition,
        blend_from=None if blend_from is None else str(blend_from),
        blend_weight=float(entry.get("blend_weight", 1.0)),
    )
