"""Presets: frozen data describing a pipeline (stages, schedules, guidance, defaults). No code paths per preset.

Real presets (``ltx2-*``, ``ltx2.3-*``) need checkpoint files given by the user; tiny presets (``tiny-*``) run on
the embedded random-weight tiny model written on first use (offline, CPU); the ``pocket`` preset runs on the
pocket model's shipped weights (``docs/pocket.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ltx2stream import codes
from ltx2stream.errors import ConfigError
from ltx2stream.pipeline.capacity import FULL_MODEL, POCKET_MODEL, TINY_MODEL, Capacity
from ltx2stream.pipeline.guidance import OFF, GuidanceParams
from ltx2stream.pipeline.schedules import DISTILLED_STAGE1, DISTILLED_STAGE2

DEFAULT_NEGATIVE_PROMPT = (
    "blurry, out of focus, overexposed, underexposed, low contrast, washed out colors, excessive noise, grainy "
    "texture, poor lighting, flickering, motion blur, distorted proportions, unnatural skin tones, deformed facial "
    "features, asymmetrical face, missing facial features, extra limbs, disfigured hands, wrong hand count, "
    "artifacts around text, inconsistent perspective, camera shake, incorrect depth of field, background too sharp, "
    "background clutter, distracting reflections, harsh shadows, inconsistent lighting direction, color banding, "
    "cartoonish rendering, 3D CGI look, unrealistic materials, uncanny valley effect, incorrect ethnicity, wrong "
    "gender, exaggerated expressions, wrong gaze direction, mismatched lip sync, silent or muted audio, distorted "
    "voice, robotic voice, echo, background noise, off-sync audio, incorrect dialogue, added dialogue, repetitive "
    "speech, jittery movement, awkward pauses, incorrect timing, unnatural transitions, inconsistent framing, tilted "
    "camera, flat lighting, inconsistent tone, cinematic oversaturation, stylized filters, or AI artifacts."
)

# LTX-2.5 (official constants at v1.2.0): the default negative prompt gained a five-item prefix. Used by the 2.5
# presets only, so LTX-2 / 2.3 presets keep their outputs bit for bit.
DEFAULT_NEGATIVE_PROMPT_25 = (
    "has_subtitles, has_blurbox, transition from black, transition to black, speech_ending_short, "
    + DEFAULT_NEGATIVE_PROMPT
)
IMAGE_CRF_24 = 18  # image-conditioning CRF from model_version 2.4 (33 before)


@dataclass(frozen=True)
class StagePreset:
    """One denoising stage: an explicit sigma list, or ``steps`` of the shifted schedule; guidance per modality."""

    sigmas: tuple[float, ...] | None = None
    steps: int | None = None
    video_guidance: GuidanceParams = OFF
    audio_guidance: GuidanceParams = OFF
    eta: float = 0.0  # ancestral Euler noise (LTX-2.5 distilled stage 1: 1.0); 0 = plain Euler

    def __post_init__(self) -> None:
        if (self.sigmas is None) == (self.steps is None):
            raise ConfigError("a stage preset needs exactly one of sigmas or steps", code=codes.CONFIG_PRESET)
        if not 0.0 <= self.eta <= 1.0:
            raise ConfigError(f"eta={self.eta} must lie in [0, 1]", code=codes.CONFIG_PRESET)

    @property
    def guided(self) -> bool:
        g = (self.video_guidance, self.audio_guidance)
        return any(p.uses_text or p.uses_perturbed or p.uses_isolated for p in g)


@dataclass(frozen=True)
class Preset:
    name: str
    flavour: str  # "ltx2" | "ltx2.3" | "ltx2.5"
    stage1: StagePreset
    stage2: StagePreset | None = None  # None: one-stage pipeline at full resolution
    refine_lora_strength: float = 1.0  # applied in stage 2 when a refine LoRA file is given
    add_noise: bool = True  # stage-2 re-noising at the first stage-2 sigma
    tiny: bool = False  # runs on an embedded random-weight model (written on first use)
    embedded: str = "tiny"  # which one (``EMBEDDED_SIZES``): "tiny", or "bench" (a larger transformer)
    pocket: bool = False  # runs on the pocket model's shipped files (or an export given as --checkpoint)
    height: int = 1024
    width: int = 1536
    frames: int = 121
    fps: float = 24.0
    image_crf: int = 33
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT
    capacity: Capacity = FULL_MODEL  # what one segment may cost (pipeline/capacity.py)
    notes: str = field(default="", compare=False)

    @property
    def two_stage(self) -> bool:
        return self.stage2 is not None

    @property
    def size_multiple(self) -> int:
        return 64 if self.two_stage else 32


def _dev_guidance(stg_block: int) -> tuple[GuidanceParams, GuidanceParams]:
    video = GuidanceParams(cfg=3.0, stg=1.0, modality=3.0, rescale=0.7, stg_blocks=(stg_block,))
    audio = GuidanceParams(cfg=7.0, stg=1.0, modality=3.0, rescale=0.7, stg_blocks=(stg_block,))
    return video, audio


_DISTILLED = StagePreset(sigmas=DISTILLED_STAGE1)
_REFINE = StagePreset(sigmas=DISTILLED_STAGE2)
_V2, _A2 = _dev_guidance(29)
_V23, _A23 = _dev_guidance(28)
_DISTILLED_25 = StagePreset(sigmas=DISTILLED_STAGE1, eta=1.0)  # ancestral Euler from model_version 2.5
_LTX25: dict[str, Any] = {"image_crf": IMAGE_CRF_24, "negative_prompt": DEFAULT_NEGATIVE_PROMPT_25}
_TINY_GUIDED = StagePreset(
    steps=4,
    video_guidance=GuidanceParams(cfg=3.0, stg=1.0, modality=2.0, rescale=0.7, stg_blocks=(1,)),
    audio_guidance=GuidanceParams(cfg=4.0, stg=1.0, modality=2.0, rescale=0.7, stg_blocks=(1,)),
)
_TINY = {
    "height": 64,
    "width": 64,
    "frames": 17,
    "fps": 12.0,
    "tiny": True,
    "negative_prompt": "blurry, static",
    "capacity": TINY_MODEL,
}

# The pocket model (docs/pocket.md): trained here on the procedural world with rectified flow (stage 1 at
# 128x128 with a logit-normal sigma of shift 1, stage 2 at 256x256 with shift 2). Stage 1: the shifted 8-step
# schedule (shifted_schedule(8, tokens=1024), rounded); stage 2 refines the upsampled latent from 0.6 in 3 steps.
# The negative prompt is empty: the trainer drops 10 % of captions to "" (what guidance needs).
POCKET_STAGE1: tuple[float, ...] = (1.0, 0.9355, 0.8593, 0.7679, 0.6563, 0.517, 0.3381, 0.1, 0.0)
POCKET_STAGE2: tuple[float, ...] = (0.6, 0.4, 0.2, 0.0)
# One stage at 256x256 (session 16: the shapes' colours survive where the 4x4-token stage 1 mixes them): the
# shifted 8-step schedule at the official token count (shifted_schedule(8), rounded), which spends more of its
# steps at high sigma than POCKET_STAGE1.
POCKET_ONE_STAGE: tuple[float, ...] = (1.0, 0.9657, 0.9219, 0.8639, 0.7834, 0.6646, 0.471, 0.1, 0.0)
_POCKET = {
    "height": 256,
    "width": 256,
    "frames": 25,
    "fps": 12.0,
    "pocket": True,
    "negative_prompt": "",
    "capacity": POCKET_MODEL,
}

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "ltx2-distilled",
            "ltx2",
            _DISTILLED,
            _REFINE,
            notes="LTX-2 19B distilled, 8 + 3 sigmas, no guidance",
        ),
        Preset(
            "ltx2-dev",
            "ltx2",
            StagePreset(steps=40, video_guidance=_V2, audio_guidance=_A2),
            _REFINE,
            notes="LTX-2 19B dev, guided stage 1, distilled LoRA for stage 2",
        ),
        Preset(
            "ltx2-dev-one-stage",
            "ltx2",
            StagePreset(steps=40, video_guidance=_V2, audio_guidance=_A2),
            height=512,
            width=768,
            notes="LTX-2 19B dev, one guided stage at full resolution",
        ),
        Preset(
            "ltx2.3-distilled", "ltx2.3", _DISTILLED, _REFINE, notes="LTX-2.3 22B distilled, 8 + 3 sigmas"
        ),
        Preset(
            "ltx2.3-dev",
            "ltx2.3",
            StagePreset(steps=30, video_guidance=_V23, audio_guidance=_A23),
            _REFINE,
            notes="LTX-2.3 22B dev, guided stage 1, distilled LoRA for stage 2",
        ),
        Preset(
            "ltx2.5-distilled",
            "ltx2.5",
            _DISTILLED_25,
            _REFINE,
            **_LTX25,
            notes="LTX-2.5 22B distilled (split files), ancestral 8 + 3 sigmas",
        ),
        Preset(
            "ltx2.5-dev",
            "ltx2.5",
            StagePreset(steps=30, video_guidance=_V23, audio_guidance=_A23),
            _REFINE,
            **_LTX25,
            notes="LTX-2.5 22B dev (split files), guided stage 1, distilled LoRA for stage 2",
        ),
        Preset("tiny-ltx2", "ltx2", _DISTILLED, _REFINE, **_TINY, notes="embedded tiny LTX-2, two stages"),
        Preset(
            "tiny-ltx2.5",
            "ltx2.5",
            _DISTILLED_25,
            _REFINE,
            **(_TINY | {"image_crf": IMAGE_CRF_24}),
            notes="embedded tiny LTX-2.5 (split layout), ancestral stage 1, two stages",
        ),
        Preset(
            "tiny-ltx2.3", "ltx2.3", _DISTILLED, _REFINE, **_TINY, notes="embedded tiny LTX-2.3, two stages"
        ),
        Preset("tiny-ltx2-one-stage", "ltx2", _DISTILLED, **_TINY, notes="embedded tiny LTX-2, one stage"),
        Preset(
            "bench",
            "ltx2",
            _DISTILLED,
            _REFINE,
            **(_TINY | {"height": 128, "width": 128, "frames": 33}),
            embedded="bench",
            notes="embedded LTX-2 with an 8-layer 384-wide transformer that dominates a segment as on a GPU "
            "(random weights; bench/)",
        ),
        Preset(
            "tiny-ltx2-dev",
            "ltx2",
            _TINY_GUIDED,
            _REFINE,
            **_TINY,
            notes="embedded tiny LTX-2, guided stage 1",
        ),
        Preset(
            "pocket",
            "ltx2.3",
            StagePreset(sigmas=POCKET_STAGE1),
            StagePreset(sigmas=POCKET_STAGE2),
            **_POCKET,
            notes="the pocket model (12 M parameters, trained here), 256x256 at 12 fps, 8 + 3 sigmas",
        ),
        Preset(
            "pocket-one-stage",
            "ltx2.3",
            StagePreset(sigmas=POCKET_ONE_STAGE),
            **_POCKET,
            notes="the pocket model in one stage at 256x256, 8 sigmas (shape colour 0.85 against 0.61, session 16; docs/pocket.md)",
        ),
    )
}

# The shipped pocket model (docs/pocket.md), in one stage: on the quality bench it draws the shapes' colours
# (0.85-0.86 over 32 scenes against 0.60-0.62 in two stages, session 16's file) at the same speed and seams
# (docs/pocket.md, session 16; session 17 shipped a one-stage fine-tune); the two-stage `pocket` stays. The tiny-*
# presets (random weights) are for tests.
DEFAULT_PRESET = "pocket-one-stage"


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}", code=codes.CONFIG_UNKNOWN_PRESET
        ) from None
