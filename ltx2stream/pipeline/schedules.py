"""Sigma schedules: the distilled lists, the non-distilled shifted LTX-2 schedule, and step-count subsets.

All schedules are plain Python float lists ending in 0.0; the denoising loop turns them into steps
(σ_i → σ_{i+1}), so N sigmas give N − 1 model evaluations.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from ltx2stream import codes
from ltx2stream.errors import InputError

DISTILLED_STAGE1: tuple[float, ...] = (1.0, 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875, 0.0)
DISTILLED_STAGE2: tuple[float, ...] = (0.909375, 0.725, 0.421875, 0.0)

# Shift line of LTX2Scheduler: s(tokens) passes through (1024, 0.95) and (4096, 2.05).
BASE_SHIFT_TOKENS, BASE_SHIFT = 1024, 0.95
MAX_SHIFT_TOKENS, MAX_SHIFT = 4096, 2.05
TERMINAL_SIGMA = 0.1


def shifted_schedule(
    steps: int, tokens: int = MAX_SHIFT_TOKENS, *, terminal: float = TERMINAL_SIGMA, stretch: bool = True
) -> list[float]:
    """The non-distilled LTX2Scheduler sigmas (``steps + 1`` values from 1.0 to 0.0).

    σ_lin = linspace(1, 0, N+1); shift s = tokens·m + b; σ = eˢ / (eˢ + (1/σ_lin − 1)) (σ = 0 kept); then stretched
    so the last non-zero σ equals ``terminal``. Official pipelines call it with no latent, i.e. tokens = 4096.
    """
    if steps < 1:
        raise InputError(f"steps must be >= 1; got {steps}", code=codes.INPUT_STEPS)
    slope = (MAX_SHIFT - BASE_SHIFT) / (MAX_SHIFT_TOKENS - BASE_SHIFT_TOKENS)
    shift = BASE_SHIFT + slope * (tokens - BASE_SHIFT_TOKENS)
    lin = [1.0 - i / steps for i in range(steps + 1)]
    sig = [0.0 if s == 0.0 else math.exp(shift) / (math.exp(shift) + (1.0 / s - 1.0)) for s in lin]
    if stretch:
        last = sig[-2]
        factor = (1.0 - last) / (1.0 - terminal)
        sig = [0.0 if s == 0.0 else 1.0 - (1.0 - s) / factor for s in sig]
    return sig


def subset_schedule(sigmas: Sequence[float], steps: int) -> list[float]:
    """``steps`` model evaluations taken from a longer list, keeping both ends (the first σ and the final 0).

    Picks evenly spaced indices over the list; ``steps`` equal to the list's step count returns it unchanged.
    """
    total = len(sigmas) - 1
    if not (1 <= steps <= total):
        raise InputError(
            f"num_inference_steps must be in [1, {total}] for this schedule; got {steps}",
            code=codes.INPUT_STEPS,
        )
    idx = sorted({round(i * total / steps) for i in range(steps + 1)})
    return [float(sigmas[i]) for i in idx]


def check_schedule(sigmas: Sequence[float]) -> list[float]:
    """Validate a user-given schedule: at least two values, strictly decreasing, in [0, 1], ending at 0."""
    out = [float(s) for s in sigmas]
    ok = len(out) >= 2 and out[-1] == 0.0 and all(0.0 <= s <= 1.0 for s in out)
    ok = ok and all(a > b for a, b in itertools.pairwise(out))
    if not ok:
        raise InputError(
            f"sigmas must be strictly decreasing values in [0, 1] ending with 0; got {out}",
            code=codes.INPUT_SIGMAS,
        )
    return out
