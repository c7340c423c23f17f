"""Guidance on x0 predictions, per modality (CFG, STG, modality isolation, rescale).

pred = c + (cfg − 1)(c − u_text) + stg·(c − u_perturbed) + (mod − 1)(c − u_isolated);
rescale r: pred ← pred · (r·std(c)/std(pred) + (1 − r)).
Which extra forward passes a step needs follows from the parameters of both modalities: none when guidance is off.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ltx2stream import codes
from ltx2stream.errors import ConfigError, InputError


@dataclass(frozen=True)
class GuidanceParams:
    """Guidance of one modality. Defaults are "off": one forward per step."""

    cfg: float = 1.0
    stg: float = 0.0
    modality: float = 1.0
    rescale: float = 0.0
    stg_blocks: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 <= self.rescale <= 1.0:
            raise InputError(
                f"guidance rescale must be in [0, 1]; got {self.rescale}", code=codes.INPUT_GUIDANCE
            )
        if self.stg and not self.stg_blocks:
            raise InputError("STG needs at least one block in stg_blocks", code=codes.INPUT_GUIDANCE)

    @property
    def uses_text(self) -> bool:
        return self.cfg != 1.0

    @property
    def uses_perturbed(self) -> bool:
        return self.stg != 0.0

    @property
    def uses_isolated(self) -> bool:
        return self.modality != 1.0

    def with_cfg(self, cfg: float) -> GuidanceParams:
        return GuidanceParams(cfg, self.stg, self.modality, self.rescale, self.stg_blocks)


OFF = GuidanceParams()


@dataclass(frozen=True)
class Predictions:
    """One step's x0 predictions for one modality: the conditional one and the extra passes guidance asked for
    (None where no modality's guidance needs that pass). All float32, same shape."""

    cond: torch.Tensor
    uncond_text: torch.Tensor | None = None
    perturbed: torch.Tensor | None = None
    isolated: torch.Tensor | None = None

    def guided(self, params: GuidanceParams) -> torch.Tensor:
        return guide(
            self.cond, params, uncond_text=self.uncond_text, perturbed=self.perturbed, isolated=self.isolated
        )


def guide(
    cond: torch.Tensor,
    params: GuidanceParams,
    *,
    uncond_text: torch.Tensor | None = None,
    perturbed: torch.Tensor | None = None,
    isolated: torch.Tensor | None = None,
) -> torch.Tensor:
    """Combine x0 predictions (all float32, same shape) into the guided prediction."""
    pred = cond
    if params.uses_text:
        pred = pred + (params.cfg - 1.0) * (cond - _need(uncond_text, "uncond_text"))
    if params.uses_perturbed:
        pred = pred + params.stg * (cond - _need(perturbed, "perturbed"))
    if params.uses_isolated:
        pred = pred + (params.modality - 1.0) * (cond - _need(isolated, "isolated"))
    if params.rescale > 0.0 and pred is not cond:
        factor = params.rescale * cond.std() / pred.std() + (1.0 - params.rescale)
        pred = pred * factor
    return pred


def _need(t: torch.Tensor | None, name: str) -> torch.Tensor:
    if t is None:
        raise ConfigError(f"guidance needs the {name} prediction", code=codes.CONFIG_GUIDANCE_PASS)
    return t
