"""Which tokens get the LTX-2.5 keyframe embedding: the canvas' first latent frame, never appended tokens.

Decision for continued segments (tested here): the mask follows the official rule by canvas *position*. The
carried anchor is written in place at latent frame 0 (one encoded pixel frame, like an I2V image) and is marked;
the carried tail sits in place at frames 1.. (8 pixel frames per latent) and is not; the keyframe-carry tail and
every ``KeyframeCondition`` are appended tokens and are never marked.
"""

from __future__ import annotations

import torch

from ltx2stream.models.transformer import LTXAVModel
from ltx2stream.models.transformer.tiny import randomize_, tiny_transformer_config
from ltx2stream.pipeline.conditioning import KeyframeCondition, VideoLatentCondition
from ltx2stream.pipeline.presets import StagePreset
from ltx2stream.pipeline.stages.conditioning import condition
from ltx2stream.pipeline.stages.denoise import LTX2DenoisingStage
from ltx2stream.pipeline.stages.latents import LTX2LatentPreparationStage
from ltx2stream.pipeline.state import PromptContexts, StageGrid

GRID = StageGrid(height=64, width=96, frames=25, fps=24.0)  # latent 4 frames x 2 x 3 -> 6 tokens per frame


def _latent(frames: int, seed: int) -> torch.Tensor:
    return torch.randn(1, 128, frames, 2, 3, generator=torch.Generator().manual_seed(seed))


def _continued_state() -> torch.Tensor:
    state = LTX2LatentPreparationStage()(GRID)
    items = (
        VideoLatentCondition(_latent(1, 1), 0, 1.0),  # anchor
        VideoLatentCondition(_latent(2, 2), 1, 0.9),  # carried tail, in place
        KeyframeCondition(_latent(2, 3), pixel_frame=8, fps=24.0, from_single_image=False),  # keyframe carry
        KeyframeCondition(_latent(1, 4), pixel_frame=24, fps=24.0),  # an appended image keyframe
    )
    video = condition(state, items).video
    assert video.keyframes_mask is not None
    return video.keyframes_mask


def test_fresh_canvas_marks_exactly_the_first_latent_frame() -> None:
    """A new canvas marks the h·w tokens of latent frame 0 and nothing else (audio is never marked)."""
    state = LTX2LatentPreparationStage()(GRID)
    mask = state.video.keyframes_mask
    assert mask is not None and mask.shape == (1, GRID.video_tokens)
    assert mask[0, :6].tolist() == [1.0] * 6 and mask[0, 6:].abs().sum() == 0
    assert state.audio.keyframes_mask is None


def test_continued_segment_marks_the_anchor_not_the_tail_nor_appended_tokens() -> None:
    """Anchor at frame 0 marked; in-place tail, keyframe-carry tail and appended keyframes unmarked."""
    mask = _continued_state()
    assert mask.shape == (1, 24 + 12 + 6)
    assert mask[0, :6].tolist() == [1.0] * 6
    assert mask[0, 6:].abs().sum() == 0
    trimmed = LTX2LatentPreparationStage()(GRID).video.appended(
        _latent(1, 5).flatten(2).transpose(1, 2), torch.zeros(1, 3, 6, 2), 1.0
    )
    assert trimmed.target_only().keyframes_mask.shape == (1, 24)  # type: ignore[union-attr]


def test_denoise_stage_passes_the_mask_to_the_model() -> None:
    """The transformer receives the state's keyframes mask with every call."""
    cfg = tiny_transformer_config("ltx2.5")
    model = randomize_(LTXAVModel(cfg), 0).eval()
    seen: list[torch.Tensor | None] = []
    model.register_forward_pre_hook(lambda _m, args: seen.append(args[0].keyframes_mask))
    state = LTX2LatentPreparationStage()(GRID)
    ctx = PromptContexts(video=torch.randn(1, 8, 32), audio=torch.randn(1, 8, 16))
    LTX2DenoisingStage(model)(state, ctx, StagePreset(sigmas=(1.0, 0.5, 0.0)))
    assert len(seen) == 2
    assert all(m is not None and torch.equal(m, state.video.keyframes_mask) for m in seen)
