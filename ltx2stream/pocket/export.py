"""Trained parts -> the shipped files: one official-layout single-file checkpoint and one upsampler file.

Floating tensors are stored as float16 (the loaders cast to float32 at load: ``load_components(...,
dtype=torch.float32)``). Metadata: ``model_version`` "pocket", ``pocket_spec`` (JSON of the sizes),
``pocket_text_length`` (Gemma tokens per prompt, needed by ``load_components(text_max_length=...)``),
``pocket_training`` (per part: steps and training seconds, or "untrained" for a part exported at its seeded
initialisation).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from ltx2stream import codes
from ltx2stream.errors import ConfigError
from ltx2stream.models.audio import audio_vae_checkpoint_tensors, vocoder_checkpoint_tensors
from ltx2stream.models.loading import save_checkpoint
from ltx2stream.models.pocket_files import CHECKPOINT_NAME, TEXT_LENGTH_KEY, UPSAMPLER_NAME, PocketFiles
from ltx2stream.models.text import text_path_checkpoint_tensors
from ltx2stream.models.transformer import transformer_checkpoint_tensors
from ltx2stream.models.upsampler import upsampler_checkpoint_tensors
from ltx2stream.models.video_vae import video_vae_checkpoint_tensors
from ltx2stream.pocket.spec import PocketSpec
from ltx2stream.pocket.trainer import load_state, module_states

# training run -> the modules it holds
RUN_PARTS: dict[str, tuple[str, ...]] = {
    "video-vae": ("video_vae",),
    "audio": ("audio_vae", "vocoder"),
    "upsampler": ("upsampler",),
    "transformer": ("transformer", "text"),
}
# runs that, when they hold a trained state, replace a part of a run above: a vocoder trained on its own
OVERRIDE_RUNS: dict[str, tuple[str, ...]] = {"vocoder": ("vocoder",)}


def spec_from_json(text: str) -> PocketSpec:
    data = json.loads(text)
    data.pop("extra", None)
    return PocketSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def source_vocoder_rates(source: str | os.PathLike[str]) -> str | None:
    """The vocoder rates ("20,12") a warm-start source was built with, where they are not ``PocketSpec``'s: a run
    directory's remembered ``--vocoder-rates``, or a shipped file's ``pocket_spec``. None: the default."""
    path = Path(source)
    if path.is_dir():
        state = load_state(path)
        rates = state.get("extra", {}).get("vocoder_rates") if state else None
        return str(rates) if rates else None
    from ltx2stream.models.loading import open_checkpoint

    text = open_checkpoint(path).metadata.get("pocket_spec")
    if text is None:
        return None
    shipped = tuple(json.loads(text).get("vocoder_rates", PocketSpec().vocoder_rates))
    return None if shipped == PocketSpec().vocoder_rates else ",".join(map(str, shipped))


def spec_for_runs(spec: PocketSpec, runs: Mapping[str, str | os.PathLike[str] | None]) -> PocketSpec:
    """``spec`` with the vocoder rates of the run that supplies the exported vocoder (a vocoder run trained with
    ``--vocoder-rates``); the shipped config and ``pocket_spec`` then describe that vocoder."""
    for run_name in ("vocoder", "audio"):  # the vocoder run overrides the audio run's vocoder
        run = runs.get(run_name)
        state = load_state(Path(run)) if run else None
        if state is None or "vocoder" not in state["modules"]:
            continue
        rates = state.get("extra", {}).get("vocoder_rates")
        return replace(spec, vocoder_rates=tuple(int(r) for r in str(rates).split(","))) if rates else spec
    return spec


def load_parts(
    spec: PocketSpec,
    runs: Mapping[str, str | os.PathLike[str] | None],
    *,
    allow_untrained: bool = False,
    seed: int = 0,
    ema: bool = True,
) -> tuple[dict[str, torch.nn.Module], dict[str, Any]]:
    """Modules of every part from the runs' ``state.pt`` (or a codec snapshot file); untrained parts are the
    seeded initialisation when ``allow_untrained``, else a ConfigError. A run that keeps a moving average of its
    weights gives the average unless ``ema`` is False."""
    modules: dict[str, torch.nn.Module] = {}
    training: dict[str, Any] = {}
    for run_name, parts in OVERRIDE_RUNS.items():
        run = runs.get(run_name)
        state = load_state(Path(run)) if run else None
        if state is not None:
            states = module_states(state, ema=ema)
            for i, part in enumerate(parts):
                module = spec.build(part, seed + i)
                _load(module, states[part], run_name, run, part)
                modules[part] = module.eval()
            training[run_name] = _record(state, ema)
    for run_name, parts in RUN_PARTS.items():
        run = runs.get(run_name)
        state = load_state(Path(run)) if run else None
        states = module_states(state, ema=ema) if state is not None else {}
        if state is None and not allow_untrained:
            raise ConfigError(
                f"no trained state for {run_name} (run dir {run!r}); train it or pass --allow-untrained",
                code=codes.CONFIG_POCKET_UNTRAINED,
            )
        for i, part in enumerate(parts):
            if part in modules:  # from an override run
                continue
            module = spec.build(part, seed + i)
            if state is not None:
                if part not in state["modules"]:
                    raise ConfigError(
                        f"the {run_name} run ({run}) holds no {part} (trained without it): give a run that "
                        f"does ({', '.join(k for k, v in OVERRIDE_RUNS.items() if part in v)}/)",
                        code=codes.CONFIG_POCKET_UNTRAINED,
                    )
                _load(module, states[part], run_name, run, part)
            modules[part] = module.eval()
        training[run_name] = _record(state, ema) if state else "untrained"
    for run_name in ("upsampler", "transformer"):
        run = runs.get(run_name)
        if run is not None and (Path(run) / "codecs.pt").is_file():
            check_frozen_codecs(modules, Path(run) / "codecs.pt", run_name)
    return modules, training


def _load(module: torch.nn.Module, state: Mapping[str, Any], run_name: str, run: object, part: str) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:  # missing / unexpected keys or shapes: trained on another structure
        first = str(e).strip().splitlines()[-1].strip()[:200]
        raise ConfigError(
            f"the {part} of the {run_name} run ({run}) does not fit the current PocketSpec (trained with an "
            f"earlier structure: {first}); retrain it or give a run of the current one",
            code=codes.CONFIG_POCKET_CODEC_MISMATCH,
        ) from None


def _record(state: Mapping[str, Any], ema: bool = True) -> dict[str, Any]:
    """What the shipped metadata says about a run: its steps and seconds, where it started from (a decoder-only
    run's ``init_from``, ``freeze_encoder`` and measured latent statistics), and the decay of the moving average
    of its weights when that is what was exported."""
    extra = state.get("extra", {})
    record = {"steps": int(state["step"]), "seconds": round(float(state["elapsed_s"]))}
    if ema and state.get("ema"):
        record["ema"] = extra.get("config", {}).get("ema")
    return record | {k: extra[k] for k in ("init_from", "freeze_encoder", "calibrated") if extra.get(k)}


def encoder_keys(part: str, key: str) -> bool:
    """Whether ``key`` of ``part``'s state dict defines its latent space (encoder weights, latent statistics):
    what a run frozen on that codec depends on. Decoders and the vocoder may change after the freeze."""
    return part in ("video_vae", "audio_vae") and key.startswith(("encoder.", "per_channel_statistics."))


def check_frozen_codecs(modules: Mapping[str, torch.nn.Module], snapshot: Path, run_name: str) -> None:
    """Refuse an export whose codec encoders are not the ones ``run_name`` was trained on (``codecs.pt``)."""
    frozen = torch.load(snapshot, map_location="cpu", weights_only=True)
    for part in ("video_vae", "audio_vae"):
        if part not in frozen or part not in modules:
            continue
        current = modules[part].state_dict()
        changed = [k for k, v in frozen[part].items()
                   if encoder_keys(part, k) and not torch.equal(current[k].float(), v.float())]  # fmt: skip
        if changed:
            raise ConfigError(
                f"the {part} being exported has a different encoder than the one the {run_name} run was "
                f"trained on ({snapshot}; first changed tensor {changed[0]!r}, {len(changed)} in all): export "
                f"the codec run it froze, a decoder-only (--freeze-encoder) continuation of it, or retrain "
                f"{run_name}",
                code=codes.CONFIG_POCKET_CODEC_MISMATCH,
            )


def checkpoint_tensors(modules: Mapping[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    return {
        **transformer_checkpoint_tensors(modules["transformer"]),  # type: ignore[arg-type]
        **text_path_checkpoint_tensors(modules["text"]),  # type: ignore[arg-type]
        **video_vae_checkpoint_tensors(modules["video_vae"]),  # type: ignore[arg-type]
        **audio_vae_checkpoint_tensors(modules["audio_vae"]),  # type: ignore[arg-type]
        **vocoder_checkpoint_tensors(modules["vocoder"]),  # type: ignore[arg-type]
    }


def _storage(tensors: Mapping[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {
        k: (v.detach().to(dtype) if v.is_floating_point() else v.detach()).contiguous()
        for k, v in tensors.items()
    }


def export(
    spec: PocketSpec,
    modules: Mapping[str, torch.nn.Module],
    out_dir: str | os.PathLike[str],
    *,
    training: Mapping[str, Any] | None = None,
    dtype: torch.dtype = torch.float16,
) -> PocketFiles:
    """Write ``pocket.safetensors`` and ``pocket-upsampler-x2.safetensors`` into ``out_dir`` (atomically)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metadata = {
        "model_version": "pocket",
        "pocket_spec": json.dumps(asdict(spec) | {"extra": {}}, sort_keys=True),
        TEXT_LENGTH_KEY: str(spec.text_length),
        "pocket_training": json.dumps(dict(training or {}), sort_keys=True),
    }
    files = PocketFiles(out / CHECKPOINT_NAME, out / UPSAMPLER_NAME)
    tmp_ckpt, tmp_up = out / f".{CHECKPOINT_NAME}.tmp", out / f".{UPSAMPLER_NAME}.tmp"
    save_checkpoint(
        tmp_ckpt,
        _storage(checkpoint_tensors(modules), dtype),
        config=spec.checkpoint_config(),
        metadata=metadata,
    )
    up = modules["upsampler"]
    save_checkpoint(
        tmp_up,
        _storage(upsampler_checkpoint_tensors(up), dtype),
        config=up.config.to_metadata(),
        metadata={"pocket_training": metadata["pocket_training"]},
    )  # type: ignore[union-attr,operator]
    os.replace(tmp_ckpt, files.checkpoint)
    os.replace(tmp_up, files.upsampler)
    return files


CODECS_NAME = "pocket-codecs.safetensors"


def export_codecs(
    spec: PocketSpec,
    modules: Mapping[str, torch.nn.Module],
    out_dir: str | os.PathLike[str],
    *,
    training: Mapping[str, Any] | None = None,
    dtype: torch.dtype = torch.float16,
) -> Path:
    """Intermediate weights of the codecs only (``vae.*``, ``audio_vae.*``, ``vocoder.*`` with their config
    sections) as ``pocket-codecs.safetensors``: what a warm start of the codec runs (and the latents of a later
    transformer run) need, without shipping an untrained transformer."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {
        **video_vae_checkpoint_tensors(modules["video_vae"]),  # type: ignore[arg-type]
        **audio_vae_checkpoint_tensors(modules["audio_vae"]),  # type: ignore[arg-type]
        **vocoder_checkpoint_tensors(modules["vocoder"]),  # type: ignore[arg-type]
    }
    config = {k: v for k, v in spec.checkpoint_config().items() if k != "transformer"}
    metadata = {
        "model_version": "pocket-codecs",
        "pocket_spec": json.dumps(asdict(spec) | {"extra": {}}, sort_keys=True),
        "pocket_training": json.dumps(
            {k: v for k, v in (training or {}).items() if k in ("video-vae", "audio")}, sort_keys=True
        ),
    }
    tmp = out / f".{CODECS_NAME}.tmp"
    save_checkpoint(tmp, _storage(tensors, dtype), config=config, metadata=metadata)
    os.replace(tmp, out / CODECS_NAME)
    return out / CODECS_NAME


def read_shipped(
    checkpoint: str | os.PathLike[str], run_name: str
) -> tuple[dict[str, dict[str, torch.Tensor]], int]:
    """State dicts of ``run_name``'s modules from shipped files (through the normal strict loaders, float32) and
    the steps recorded for that run (0 when it was exported untrained): a warm start when a run directory is
    gone (fresh optimiser; the learning-rate schedule continues from the recorded step)."""
    from ltx2stream.models.audio import load_audio_vae, load_vocoder
    from ltx2stream.models.loading import open_checkpoint
    from ltx2stream.models.text.loading import load_text_projection, text_path_config
    from ltx2stream.models.transformer import load_transformer
    from ltx2stream.models.upsampler import load_upsampler
    from ltx2stream.models.video_vae import load_video_vae

    ckpt = open_checkpoint(checkpoint)
    f32 = torch.float32
    if run_name == "video-vae":
        states = {"video_vae": load_video_vae(ckpt, dtype=f32).state_dict()}
    elif run_name == "audio":
        states = {
            "audio_vae": load_audio_vae(ckpt, dtype=f32).state_dict(),
            "vocoder": load_vocoder(ckpt, dtype=f32).state_dict(),
        }
    elif run_name == "vocoder":
        states = {"vocoder": load_vocoder(ckpt, dtype=f32).state_dict()}
    elif run_name == "upsampler":
        states = {
            "upsampler": load_upsampler(Path(checkpoint).parent / UPSAMPLER_NAME, dtype=f32).state_dict()
        }
    else:
        length = int(ckpt.metadata.get(TEXT_LENGTH_KEY, "64"))
        text = load_text_projection(ckpt, text_path_config(ckpt, max_length=length), dtype=f32)
        states = {"transformer": load_transformer(ckpt, dtype=f32).state_dict(), "text": text.state_dict()}
    record = json.loads(ckpt.metadata.get("pocket_training", "{}")).get(run_name)
    return states, int(record["steps"]) if isinstance(record, dict) else 0
