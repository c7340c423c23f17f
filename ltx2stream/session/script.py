"""Session scripts (``sessions/*.toml``): session settings, then segments with prompt, seed, image, transition, repeat.

    [session]                  # preset, width, height, fps, frames (1 + 8k per segment), overlap (k), seed
    [continuation]             # optional: carry_strength, audio_context, carry_noise, scheme
    [[segment]]                # prompt (required), repeat (1), seed, transition ("cut" | "blend"),
                               # blend_segments (1), image (first segment only; path relative to the script),
                               # image_strength (1.0)

Seeds: a segment entry's ``seed`` applies to its first repetition and counts up by one per repetition; without
one, segment i uses ``session.seed + i``. A ``blend`` entry mixes the previous entry's prompt into its first
``blend_segments`` segments with weights (j + 1) / (blend_segments + 1).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ltx2stream import codes
from ltx2stream.errors import InputError
from ltx2stream.session.api import ImageCondition, SegmentRequest, SessionSettings
from ltx2stream.session.continuation import ContinuationOptions
from ltx2stream.types import MAX_SEED

SESSION_KEYS = {"preset", "width", "height", "fps", "frames", "overlap", "seed"}
SEGMENT_KEYS = {"prompt", "repeat", "seed", "transition", "blend_segments", "image", "image_strength"}
CONTINUATION_KEYS = {
    "carry_strength",
    "audio_context",
    "carry_noise",
    "scheme",
    "hold_frames",
    "decode_context",
}


@dataclass(frozen=True)
class SessionScript:
    settings: SessionSettings
    options: ContinuationOptions
    segments: tuple[SegmentRequest, ...]
    image: ImageCondition | None
    path: Path


def load_script(path: str | Path) -> SessionScript:
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"session script not found: {p}", code=codes.INPUT_SCRIPT_NOT_FOUND) from None
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{p}: not valid TOML: {e}", code=codes.INPUT_SCRIPT_SYNTAX) from None
    return parse_script(data, p)


def parse_script(data: dict[str, Any], path: Path) -> SessionScript:
    session = _table(data, "session", SESSION_KEYS, path)
    try:
        settings = SessionSettings(
            preset=str(session["preset"]),
            width=int(session["width"]),
            height=int(session["height"]),
            fps=float(session["fps"]),
            frames=int(session["frames"]),
            overlap=int(session.get("overlap", 1)),
            seed=int(session.get("seed", 0)),
        )
    except KeyError as e:
        raise InputError(f"{path}: [session] needs {e.args[0]}", code=codes.INPUT_SCRIPT_FIELD) from None
    options = ContinuationOptions(**_table(data, "continuation", CONTINUATION_KEYS, path, required=False))
    entries = data.get("segment")
    if not isinstance(entries, list) or not entries:
        raise InputError(f"{path}: add at least one [[segment]] with a prompt", code=codes.INPUT_SCRIPT_FIELD)
    segments, image = _expand(entries, settings.seed, path)
    return SessionScript(settings, options, tuple(segments), image, path)


def _table(
    data: dict[str, Any], name: str, keys: set[str], path: Path, required: bool = True
) -> dict[str, Any]:
    table = data.get(name)
    if table is None and not required:
        return {}
    if not isinstance(table, dict):
        raise InputError(f"{path}: missing [{name}] table", code=codes.INPUT_SCRIPT_FIELD)
    unknown = sorted(set(table) - keys)
    if unknown:
        raise InputError(
            f"{path}: unknown keys in [{name}]: {unknown}; known: {sorted(keys)}",
            code=codes.INPUT_SCRIPT_FIELD,
        )
    return table


def _expand(
    entries: list[Any], session_seed: int, path: Path
) -> tuple[list[SegmentRequest], ImageCondition | None]:
    out: list[SegmentRequest] = []
    image: ImageCondition | None = None
    previous: str | None = None
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or not isinstance(e.get("prompt"), str) or not e["prompt"].strip():
            raise InputError(f"{path}: segment {i} needs a non-empty prompt", code=codes.INPUT_SCRIPT_FIELD)
        unknown = sorted(set(e) - SEGMENT_KEYS)
        if unknown:
            raise InputError(f"{path}: unknown keys in segment {i}: {unknown}", code=codes.INPUT_SCRIPT_FIELD)
        repeat, transition, blend = (
            int(e.get("repeat", 1)),
            e.get("transition", "cut"),
            int(e.get("blend_segments", 1)),
        )
        if repeat < 1 or transition not in ("cut", "blend") or blend < 1:
            raise InputError(
                f"{path}: segment {i}: repeat >= 1, transition cut|blend, blend_segments >= 1",
                code=codes.INPUT_SCRIPT_FIELD,
            )
        if "image" in e:
            if i != 0:
                raise InputError(
                    f"{path}: only the first segment may have an image", code=codes.INPUT_SCRIPT_FIELD
                )
            image = ImageCondition(
                (path.parent / e["image"]).read_bytes(), float(e.get("image_strength", 1.0))
            )
        for j in range(repeat):
            index = len(out)
            seed = (int(e["seed"]) + j if "seed" in e else session_seed + index) & MAX_SEED
            if transition == "blend" and previous is not None and j < blend:
                out.append(SegmentRequest(index, e["prompt"], seed, "blend", previous, (j + 1) / (blend + 1)))
            else:
                out.append(SegmentRequest(index, e["prompt"], seed))
        previous = e["prompt"]
    if out:  # the script's session ends with its last segment: it shows what it would otherwise hold
        out[-1] = replace(out[-1], final=True)
    return out, image
