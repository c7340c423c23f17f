"""Model release from checkpoint metadata: ``model_version`` parsing and the Gemma pairing check (spec §1.2).

``parse_model_version``: ``-`` becomes ``.`` (pipelines do this, so ``"2.4-rc2"`` -> (2, 4)), then dot-separated
integers up to the first part that is not one; unset -> ``()``. Releases: LTX-2 stamps nothing or 2.0, LTX-2.3
stamps 2.3.x, LTX-2.5 at least 2.5. From (2, 4) a transformer must name its text encoder in
``gemma_source_checkpoint.gemma_version``, which must equal the text-encoder file's ``gemma_version``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ltx2stream import codes
from ltx2stream.errors import CheckpointError

ANCESTRAL_DISTILLED_FROM = (2, 5)  # distilled stage 1 uses ancestral Euler (eta 1)
CRF18_FROM = (2, 4)  # image conditioning CRF 18 (33 before)
GEMMA_SOURCE_REQUIRED_FROM = (2, 4)


def parse_model_version(value: str | None) -> tuple[int, ...]:
    if not value:
        return ()
    out: list[int] = []
    for part in str(value).replace("-", ".").split("."):
        if not part.isdigit():
            break
        out.append(int(part))
    return tuple(out)


def release_name(version: tuple[int, ...], *, ltx25_architecture: bool, ltx23_architecture: bool) -> str:
    """``LTX-2``, ``LTX-2.3`` or ``LTX-2.5`` from the stamp and the architecture switches."""
    if version >= (2, 5) or ltx25_architecture:
        return "LTX-2.5"
    if version >= (2, 3) or ltx23_architecture:
        return "LTX-2.3"
    return "LTX-2"


def gemma_source_version(metadata: Mapping[str, str]) -> str | None:
    """``gemma_source_checkpoint.gemma_version`` of a transformer file's metadata (JSON object), or None."""
    raw = metadata.get("gemma_source_checkpoint")
    if raw is None:
        return None
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError as e:
        raise CheckpointError(
            f"gemma_source_checkpoint={raw!r} is not a JSON object", code=codes.CHECKPOINT_BAD_CONFIG
        ) from e
    if not isinstance(value, dict) or not isinstance(value.get("gemma_version"), str):
        raise CheckpointError(
            f"gemma_source_checkpoint={raw!r} needs a string 'gemma_version'",
            code=codes.CHECKPOINT_BAD_CONFIG,
        )
    return str(value["gemma_version"])


def check_gemma_pairing(
    metadata: Mapping[str, str], te_model_type: str, te_gemma_version: str | None
) -> None:
    """Refuse a text encoder that is not the one the transformer names (or a Gemma 4 with an old transformer)."""
    version = parse_model_version(metadata.get("model_version"))
    source = gemma_source_version(metadata)
    if source is None:
        if version >= GEMMA_SOURCE_REQUIRED_FROM:
            raise CheckpointError(
                f"model_version={metadata.get('model_version')!r} requires gemma_source_checkpoint metadata "
                "naming its text encoder",
                code=codes.CHECKPOINT_GEMMA_VERSION,
            )
        if te_model_type != "gemma3":
            raise CheckpointError(
                f"the transformer names no gemma_source_checkpoint, so its text encoder is Gemma 3; got "
                f"model_type={te_model_type!r}",
                code=codes.CHECKPOINT_GEMMA_VERSION,
            )
        return
    if te_gemma_version != source:
        raise CheckpointError(
            f"the transformer was trained with gemma_version={source!r} but the text encoder is "
            f"gemma_version={te_gemma_version!r}",
            code=codes.CHECKPOINT_GEMMA_VERSION,
        )
