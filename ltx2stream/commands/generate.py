"""``ltx2stream generate``: one prompt (optional images) -> one MP4 with H.264 video and AAC audio."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ltx2stream import codes
from ltx2stream.commands.common import StageBars, add_model_args, dtype_of, model_paths
from ltx2stream.errors import InputError
from ltx2stream.pipeline.request import GenerationRequest, ImageInput

log = logging.getLogger(__name__)


def parse_image(spec: str) -> ImageInput:
    """``PATH[@LATENT_FRAME[@STRENGTH]]`` -> ImageInput."""
    parts = spec.split("@")
    try:
        frame = int(parts[1]) if len(parts) > 1 else 0
        strength = float(parts[2]) if len(parts) > 2 else 1.0
    except ValueError:
        raise InputError(
            f"--image {spec!r}: expected PATH[@LATENT_FRAME[@STRENGTH]]", code=codes.INPUT_IMAGE_SPEC
        ) from None
    return ImageInput(path=parts[0], latent_frame=frame, strength=strength)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("generate", help="generate one video with sound into an MP4")
    p.add_argument("prompt")
    p.add_argument("-o", "--output", type=Path, default=Path("output.mp4"))
    p.add_argument("--negative-prompt", default="")
    p.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="PATH[@FRAME[@STRENGTH]]",
        help="conditioning image at a latent frame (repeatable)",
    )
    p.add_argument("--height", type=int)
    p.add_argument("--width", type=int)
    p.add_argument("--frames", type=int, help="pixel frames, 1 + 8k")
    p.add_argument("--fps", type=float)
    p.add_argument("--seed", type=int, default=10)
    p.add_argument("--steps", type=int, help="num_inference_steps_override for stage 1")
    p.add_argument("--guidance", type=float, help="force_guidance_scale (CFG) for stage 1")
    p.add_argument(
        "--image-crf", type=int, help="H.264 CRF of the conditioning-image round trip (0 disables)"
    )
    p.add_argument("--no-progress", action="store_true")
    add_model_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ltx2stream.media import write_mp4
    from ltx2stream.pipeline.components import components_for_preset
    from ltx2stream.pipeline.pipeline import LTX2Pipeline
    from ltx2stream.pipeline.presets import get_preset
    from ltx2stream.pipeline.request import validate_request

    preset = get_preset(args.preset)
    request = GenerationRequest(
        args.prompt,
        args.height or preset.height,
        args.width or preset.width,
        args.frames or preset.frames,
        args.fps or preset.fps,
        args.seed,
        negative_prompt=args.negative_prompt,
        images=tuple(parse_image(s) for s in args.image),
        image_crf=preset.image_crf if args.image_crf is None else args.image_crf,
    )
    validate_request(request, two_stage=preset.two_stage)  # before loading anything
    components = components_for_preset(
        args.preset, model_paths(args), device=args.device, dtype=dtype_of(args)
    )
    if args.compile:
        from ltx2stream.pipeline.compile import compile_transformer

        compile_transformer(components.transformer, args.device)
    pipeline = LTX2Pipeline(
        components, preset, num_inference_steps_override=args.steps, force_guidance_scale=args.guidance
    )
    bars = StageBars(disable=args.no_progress)
    try:
        frames, audio, _ = pipeline.generate(request, progress=bars)
    finally:
        bars.close()
    wave = audio.waveform[0].clamp(-1, 1).cpu().numpy()
    out = write_mp4(args.output, frames, request.fps, wave, audio.sample_rate)
    log.info(
        "wrote %s: %d frames %dx%d @ %g fps, %.2f s audio at %d Hz",
        out,
        frames.shape[0],
        frames.shape[2],
        frames.shape[1],
        request.fps,
        wave.shape[1] / audio.sample_rate,
        audio.sample_rate,
    )
    return 0
