"""``python -m ltx2stream.pocket``: train the pocket model's parts, resumably, and export the shipped files.

    python -m ltx2stream.pocket train video-vae   --run runs/pocket/video-vae --steps 20000
    python -m ltx2stream.pocket train audio       --run runs/pocket/audio     --steps 6000
    python -m ltx2stream.pocket train vocoder     --run runs/pocket/vocoder   --steps 20000
    python -m ltx2stream.pocket train upsampler   --run runs/pocket/upsampler --video-vae runs/pocket/video-vae
    python -m ltx2stream.pocket train transformer --run runs/pocket/transformer \\
        --video-vae runs/pocket/video-vae --audio runs/pocket/audio --text-cache runs/pocket/text
    python -m ltx2stream.pocket text-cache --out runs/pocket/text --dataset 4096
    python -m ltx2stream.pocket export --runs runs/pocket --out ltx2stream/pocket/weights [--allow-untrained]

Re-running the same ``train`` command resumes from ``<run>/state.pt``. The upsampler and transformer runs freeze
the codecs they start with into ``<run>/codecs.pt`` (later codec training does not change their latents).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from ltx2stream.pocket.spec import PocketSpec
from ltx2stream.pocket.trainer import TrainConfig, load_state, module_states, train

log = logging.getLogger("ltx2stream.pocket")
PARTS = ("video-vae", "audio", "vocoder", "upsampler", "transformer")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m ltx2stream.pocket",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train (or resume) one part")
    t.add_argument("part", choices=PARTS)
    t.add_argument("--run", required=True, type=Path, help="run directory (checkpoint, logs, plots)")
    t.add_argument("--steps", type=int, default=20000)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--lr", type=float, default=None)
    t.add_argument("--ema", type=float, default=None,
                   help="keep a moving average of the weights with this decay per step (e.g. 0.998); exports "
                        "take it. A run without one starts it from its weights now; remembered")  # fmt: skip
    t.add_argument("--batch", type=int, default=None)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--fan-in-ref", type=int, default=None,
                   help="weights with fan-in n > REF train at lr * REF / n (0: one lr; default: 200 for "
                        "video-vae, else 0; docs/pocket.md)")  # fmt: skip
    t.add_argument("--checkpoint-every", type=float, default=300.0, help="seconds between checkpoints")
    t.add_argument(
        "--time-limit", type=float, default=None, help="stop after this many seconds (checkpointed)"
    )
    t.add_argument("--video-vae", type=Path, help="video VAE run (upsampler, transformer)")
    t.add_argument("--audio", type=Path, help="audio run (transformer)")
    t.add_argument(
        "--latents-from",
        type=Path,
        default=None,
        help="upsampler: train on this transformer run's latent cache (both stage sizes of its clips, encoded "
        "once by the same frozen VAE) instead of encoding two renders every step",
    )
    t.add_argument("--text-cache", type=Path, help="Gemma hidden-state cache directory (transformer)")
    t.add_argument(
        "--gemma", type=Path, default=None, help="Gemma 3 GGUF/dir (default: the gemma3-270m package)"
    )
    t.add_argument("--dataset", type=int, default=None, help="number of distinct clips")
    t.add_argument("--cached-only", action="store_true",
                   help="transformer: draw only clips the latent cache already holds (listed again every "
                        "minute; a `latent-cache` prefill fills it meanwhile); all clips once it holds them. "
                        "The draws then depend on the prefill's progress, not on --seed alone")  # fmt: skip
    t.add_argument("--one-stage", action="store_true",
                   help="transformer: train for the one-stage preset (full-size steps draw sigma over the whole "
                        "range and take 60 %% of the steps; default: the two-stage recipe)")  # fmt: skip
    t.add_argument("--no-progress", action="store_true")
    t.add_argument("--init-from", type=Path, default=None,
                   help="warm start when the run directory has no state: shipped pocket(-codecs).safetensors "
                        "(the schedule continues at its recorded step) or another run directory of the same "
                        "part (its modules; a new schedule from step 0)")  # fmt: skip
    t.add_argument("--calibrate-clips", type=int, default=32,
                   help="with --freeze-encoder --init-from: clips (both stage sizes) the latent statistics are "
                        "measured on before the first step")  # fmt: skip
    t.add_argument("--views", default=None,
                   help="video-vae: RENDER:CROP:FRAMES,... (sizes as fractions of the native size; default "
                        "whole frames at both stage sizes + half-size crops; 'crops' = the 64-px crops of "
                        "sessions 1-3)")  # fmt: skip
    t.add_argument(
        "--fg-weight",
        type=float,
        default=None,
        help="video-vae: extra loss weight on shape pixels and their edges (default 0); transformer: extra "
        "weight on the latent cells shapes cover (default tasks_dit.FG_WEIGHT, 4); remembered by the run",
    )
    t.add_argument("--change-weight", type=float, default=None,
                   help="transformer: weight of the generated video tokens of carried-prefix samples whose clip "
                        "changes scene at or after the first generated frame (a steer over a carried tail), "
                        "against 1 for the others (default 1; remembered)")  # fmt: skip
    t.add_argument("--edge-weight", type=float, default=None,
                   help="video-vae: weight of an L1 on neighbouring-pixel differences (sharp outlines; "
                        "weighted like the pixels under --fg-weight; default 0; remembered)")  # fmt: skip
    t.add_argument("--decoder-base", type=int, default=None,
                   help="video-vae: the decoder's base width (PocketSpec's vae_decoder_base unless given; "
                        "remembered). With --init-from --freeze-encoder from a run of another width, the encoder "
                        "and statistics load and the decoder starts fresh")  # fmt: skip
    t.add_argument("--vocoder-rates", default=None,
                   help="vocoder: its upsampling rates, e.g. 20,12 (product 240; PocketSpec's 6,5,8 unless given; "
                        "remembered)")  # fmt: skip
    t.add_argument("--freeze-encoder", action="store_true",
                   help="video-vae / audio: train the decoder (and vocoder) only; the encoder and the latent "
                        "statistics stay fixed, so runs frozen on them stay valid (remembered by the run)")  # fmt: skip
    t.add_argument("--compile", action="store_true",
                   help="transformer: torch.compile the DiT for the training steps (needs a C++ compiler; the "
                        "first steps wait for the compile; checkpoints unchanged)")  # fmt: skip
    t.add_argument("--no-vocoder", action="store_true",
                   help="audio: train the audio VAE alone (the vocoder trains in a vocoder run; remembered)")  # fmt: skip
    lc = sub.add_parser(
        "latent-cache", help="encode a transformer run's clips with its frozen codecs ahead of use"
    )
    lc.add_argument("--run", required=True, type=Path, help="the transformer run directory")
    lc.add_argument("--video-vae", type=Path, help="video VAE run (when the run has no codecs.pt yet)")
    lc.add_argument("--audio", type=Path, help="audio run (when the run has no codecs.pt yet)")
    lc.add_argument("--dataset", type=int, default=1024, help="clips 0..N-1, as the transformer's --dataset")
    lc.add_argument(
        "--shard", type=int, default=0, help="this process encodes clips shard, shard + shards, ..."
    )
    lc.add_argument("--shards", type=int, default=1)
    lc.add_argument("--sizes", choices=("both", "half", "full"), default="both",
                    help="the stage sizes to encode: 'half' first fills the stage-1 entries (80 %% of the "
                         "transformer's draws, a quarter of the encode time) of the whole dataset")  # fmt: skip
    lc.add_argument("--threads", type=int, default=1)
    lc.add_argument("--no-progress", action="store_true")
    c = sub.add_parser("text-cache", help="encode the transformer run's captions with the frozen Gemma, once")
    c.add_argument("--out", required=True, type=Path, help="cache directory (the transformer's --text-cache)")
    c.add_argument("--dataset", type=int, default=1024, help="clips 0..N-1, as the transformer's --dataset")
    c.add_argument(
        "--gemma", type=Path, default=None, help="Gemma 3 GGUF/dir (default: the gemma3-270m package)"
    )
    c.add_argument("--batch", type=int, default=16, help="captions per Gemma call")
    c.add_argument("--threads", type=int, default=2)
    g = sub.add_parser(
        "text-gap",
        help="a transformer run's loss with its own, rotated and empty prompts (is the text used?)",
    )
    g.add_argument("--run", required=True, type=Path, help="the transformer run directory")
    g.add_argument("--text-cache", type=Path, help="Gemma hidden-state cache directory")
    g.add_argument("--gemma", type=Path, default=None)
    g.add_argument("--clips", type=int, default=24, help="clips 0, S, 2S, ... below --dataset")
    g.add_argument("--dataset", type=int, default=2048)
    g.add_argument("--threads", type=int, default=1)
    e = sub.add_parser("export", help="write the official-layout checkpoint + upsampler from the runs")
    e.add_argument(
        "--runs",
        required=True,
        type=Path,
        help="directory holding video-vae/, audio/, upsampler/, transformer/ and optionally vocoder/ (its "
        "vocoder replaces the audio run's)",
    )
    e.add_argument("--out", required=True, type=Path)
    e.add_argument("--allow-untrained", action="store_true", help="export missing parts at their seeded init")
    e.add_argument("--no-ema", action="store_true",
                   help="the runs' last weights, not the moving averages of those that keep one")  # fmt: skip
    e.add_argument(
        "--codecs-only", action="store_true", help="write only pocket-codecs.safetensors (VAEs + vocoder)"
    )
    return p


def codec_snapshot(
    run: Path, video_vae_run: Path | None, audio_run: Path | None
) -> dict[str, dict[str, torch.Tensor]]:
    """The frozen codec weights of ``run``: read from ``<run>/codecs.pt``, written there on the first start."""
    path = run / "codecs.pt"
    if path.is_file():
        return torch.load(path, map_location="cpu", weights_only=True)
    snap: dict[str, dict[str, torch.Tensor]] = {}
    for src, parts in ((video_vae_run, ("video_vae",)), (audio_run, ("audio_vae", "vocoder"))):
        state = load_state(src) if src else None
        if state is not None:
            snap.update({k: state["modules"][k] for k in parts if k in state["modules"]})
            snap.setdefault("_steps", {})[str(src)] = torch.tensor(int(state["step"]))  # type: ignore[index]
    if "video_vae" not in snap:
        raise SystemExit(f"--video-vae {video_vae_run}: no trained video VAE state found")
    run.mkdir(parents=True, exist_ok=True)
    torch.save(snap, path)
    return snap


def build_task(args: argparse.Namespace, spec: PocketSpec):  # type: ignore[no-untyped-def]
    from ltx2stream.pocket import tasks_codec, tasks_dit
    from ltx2stream.pocket.world_source import WorldSource

    source = WorldSource()
    opt = {k: v for k, v in (("batch", args.batch), ("dataset", args.dataset)) if v is not None}
    if args.edge_weight is not None and args.part != "video-vae":
        raise SystemExit("--edge-weight applies to video-vae only")
    if args.fg_weight is not None and args.part not in ("video-vae", "transformer"):
        raise SystemExit("--fg-weight applies to video-vae and transformer only")
    if args.fg_weight is not None and args.part == "transformer":
        opt["fg_weight"] = args.fg_weight
    if args.change_weight is not None:
        if args.part != "transformer":
            raise SystemExit("--change-weight applies to transformer only")
        opt["change_weight"] = args.change_weight
    if args.part == "video-vae":
        if args.fg_weight is not None:
            opt["fg_weight"] = args.fg_weight
        if args.edge_weight is not None:
            opt["edge_weight"] = args.edge_weight
        if args.views == "crops":
            opt["views"] = tasks_codec.CROP_VIEWS
        elif args.views is not None:
            opt["views"] = tasks_codec.parse_views(args.views)
        return tasks_codec.VideoVAETask(
            spec, source, seed=args.seed, freeze_encoder=args.freeze_encoder, **opt
        )
    if args.views is not None:
        raise SystemExit("--views applies to video-vae only")
    if args.compile and args.part != "transformer":
        raise SystemExit("--compile applies to transformer only")
    if args.cached_only and args.part != "transformer":
        raise SystemExit("--cached-only applies to transformer only")
    if args.one_stage and args.part != "transformer":
        raise SystemExit("--one-stage applies to transformer only")
    if args.no_vocoder and args.part != "audio":
        raise SystemExit("--no-vocoder applies to audio only")
    if args.part == "audio":
        return tasks_codec.AudioTask(
            spec,
            source,
            seed=args.seed,
            freeze_encoder=args.freeze_encoder,
            vocoder=not args.no_vocoder,
            **opt,
        )
    if args.part == "vocoder" and not args.freeze_encoder:
        return tasks_codec.VocoderTask(spec, source, seed=args.seed, **opt)
    if args.freeze_encoder:
        raise SystemExit("--freeze-encoder applies to video-vae and audio only")
    if args.part == "upsampler":
        snap = codec_snapshot(args.run, args.video_vae, args.audio)
        vae = spec.build("video_vae", 0)
        vae.load_state_dict(snap["video_vae"])
        latents = None
        if args.latents_from is not None:
            latents = cached_latents(args, spec, snap)
            opt.setdefault("dataset", 2048)
        return tasks_codec.UpsamplerTask(spec, source, vae, seed=args.seed, latents=latents, **opt)  # type: ignore[arg-type]
    if args.latents_from is not None:
        raise SystemExit("--latents-from applies to the upsampler only")
    from ltx2stream.pocket.text_cache import TextCache, default_gemma_path

    text = TextCache(
        args.text_cache or args.run / "text", args.gemma or default_gemma_path(), max_length=spec.text_length
    )
    latents = latent_cache(args, spec)
    task = tasks_dit.TransformerTask(
        spec, latents, text, seed=args.seed, cached_only=args.cached_only, one_stage=args.one_stage, **opt
    )
    if args.compile:
        task.denoiser = torch.compile(task.model, dynamic=False)  # type: ignore[assignment]
    return task


def cached_latents(args: argparse.Namespace, spec: PocketSpec, snap: dict[str, Any]):  # type: ignore[no-untyped-def]
    """The latent cache of the transformer run ``--latents-from``, refused unless its frozen video VAE is the
    upsampler run's (the cached latents must be the ones this VAE makes)."""
    from ltx2stream.pocket import tasks_dit
    from ltx2stream.pocket.world_source import WorldSource

    theirs = args.latents_from / "codecs.pt"
    if not theirs.is_file():
        raise SystemExit(f"--latents-from {args.latents_from}: no codecs.pt (not a transformer run?)")
    other = torch.load(theirs, map_location="cpu", weights_only=True)["video_vae"]
    mine = snap["video_vae"]
    if sorted(other) != sorted(mine) or any(not torch.equal(mine[k], other[k]) for k in mine):
        raise SystemExit(
            f"--latents-from {args.latents_from}: its frozen video VAE differs from this run's ({args.run}/codecs.pt)"
        )
    vae, audio_vae = spec.build("video_vae", 0), spec.build("audio_vae", 0)
    vae.load_state_dict(mine)
    return tasks_dit.LatentCache(args.latents_from / "latents", spec, WorldSource(), vae, audio_vae)  # type: ignore[arg-type]


def latent_cache(args: argparse.Namespace, spec: PocketSpec):  # type: ignore[no-untyped-def]
    """The transformer run's latent cache on the codecs it froze (``<run>/codecs.pt``)."""
    from ltx2stream.pocket import tasks_dit
    from ltx2stream.pocket.world_source import WorldSource

    snap = codec_snapshot(args.run, args.video_vae, args.audio)
    if "audio_vae" not in snap:
        raise SystemExit(f"--audio {args.audio}: no trained audio state found")
    vae, audio_vae = spec.build("video_vae", 0), spec.build("audio_vae", 0)
    vae.load_state_dict(snap["video_vae"])
    audio_vae.load_state_dict(snap["audio_vae"])
    return tasks_dit.LatentCache(args.run / "latents", spec, WorldSource(), vae, audio_vae)  # type: ignore[arg-type]


def prefill(args: argparse.Namespace, spec: PocketSpec) -> int:
    """Encode clips ``shard, shard + shards, ...`` below ``--dataset`` into the transformer run's latent cache
    (both stage sizes, or the one ``--sizes`` names), so the training process finds them there instead of
    encoding them on first use."""
    torch.set_num_threads(args.threads)
    cache = latent_cache(args, spec)
    done = 0
    indices = range(args.shard, args.dataset, args.shards)
    halves = {"both": (True, False), "half": (True,), "full": (False,)}[args.sizes]
    for index in tqdm(indices, desc="latent-cache", disable=args.no_progress):
        for half in halves:
            cache.get(index, half)
        done += 1
    print(json.dumps({"clips": done, "dir": str(args.run / "latents")}))
    return 0


def text_cache(args: argparse.Namespace, spec: PocketSpec) -> int:
    """Fill ``--out`` with the Gemma hidden states of every caption of clips 0..dataset-1 (resumable: cached
    captions are skipped) and write its ``index.json``."""
    from ltx2stream.pocket.tasks_dit import dataset_captions
    from ltx2stream.pocket.text_cache import TextCache, default_gemma_path
    from ltx2stream.pocket.world_source import WorldSource

    torch.set_num_threads(args.threads)
    captions = dataset_captions(spec, WorldSource(), args.dataset)
    cache = TextCache(args.out, args.gemma or default_gemma_path(), max_length=spec.text_length)
    encoded = cache.ensure(captions, batch=args.batch)
    cache.write_index()
    print(json.dumps({"captions": len(captions), "encoded": encoded, "dir": str(args.out)}))
    return 0


def warm_start_states(source: Path, part: str) -> tuple[dict[str, dict[str, torch.Tensor]], int]:
    """Module states to start ``part`` from: another run directory of the same part (step 0: a new schedule; the
    moving average of its weights where it keeps one, as its export would take) or shipped files (the schedule
    continues at their recorded step)."""
    if source.is_dir():
        state = load_state(source)
        if state is None:
            raise SystemExit(f"--init-from {source}: no state.pt in that run directory")
        if state.get("extra", {}).get("task") not in (None, part):
            raise SystemExit(f"--init-from {source}: a {state['extra']['task']} run, not {part}")
        return module_states(state), 0
    from ltx2stream.pocket.export import read_shipped

    return read_shipped(source, part)


def load_encoder(vae: torch.nn.Module, state: dict[str, torch.Tensor]) -> bool:
    """Load ``state`` into ``vae``; where only the decoder differs in shape (another ``--decoder-base``), load
    the encoder and latent statistics and keep ``vae``'s seeded decoder. Returns whether the decoder loaded too.
    Raises RuntimeError on any other mismatch."""
    mine = vae.state_dict()
    if all(k in state and state[k].shape == v.shape for k, v in mine.items() if k.startswith("decoder.")):
        vae.load_state_dict(state, strict=True)
        return True
    kept = {k: v for k, v in state.items() if not k.startswith("decoder.")}
    missing, unexpected = vae.load_state_dict(kept, strict=False)
    if unexpected or any(not k.startswith("decoder.") for k in missing):
        raise RuntimeError(f"encoder keys differ: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return False


DEFAULT_LR = {"video-vae": 1e-3, "audio": 3e-4, "vocoder": 3e-4, "upsampler": 3e-4, "transformer": 3e-4}
# the norm-free video VAE needs the fan-in rule (one lr of 1e-3 for every weight diverges; docs/pocket.md)
DEFAULT_FAN_IN_REF = {"video-vae": 200, "audio": 0, "vocoder": 0, "upsampler": 0, "transformer": 0}


def text_gap(args: argparse.Namespace, spec: PocketSpec) -> int:
    """Print (JSON) the run's text gap at its last checkpoint: ``TransformerTask.text_gap``."""
    from ltx2stream.pocket import tasks_dit
    from ltx2stream.pocket.text_cache import TextCache, default_gemma_path

    torch.set_num_threads(args.threads)
    state = load_state(args.run)
    if state is None:
        raise SystemExit(f"--run {args.run}: no state.pt")
    args.video_vae = args.audio = None  # the run's codecs.pt
    text = TextCache(
        args.text_cache or args.run / "text", args.gemma or default_gemma_path(), max_length=spec.text_length
    )
    task = tasks_dit.TransformerTask(spec, latent_cache(args, spec), text, dataset=args.dataset)
    for name, module in task.modules().items():
        module.load_state_dict(state["modules"][name])
        module.eval()
    stride = max(1, args.dataset // args.clips)
    gap = task.text_gap(list(range(0, stride * args.clips, stride))[: args.clips])
    print(f"step {int(state['step'])}: video / audio loss with the clips' own, rotated and empty prompts")
    for sigma, row in gap.items():
        cells = "  ".join(f"{k} {v['video']:.4f} / {v['audio']:.4f}" for k, v in row.items())
        print(f"  sigma {sigma}: {cells}")
    print(json.dumps({"step": int(state["step"]), "loss": gap}))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    spec = PocketSpec()
    if args.command == "text-cache":
        return text_cache(args, spec)
    if args.command == "latent-cache":
        return prefill(args, spec)
    if args.command == "text-gap":
        return text_gap(args, spec)
    if args.command == "export":
        from ltx2stream.pocket.export import export, export_codecs, load_parts, spec_for_runs

        runs = {name: args.runs / name for name in PARTS}
        spec = spec_for_runs(spec, runs)  # the vocoder as its run built it (``--vocoder-rates``)
        untrained = args.allow_untrained or args.codecs_only
        modules, training = load_parts(spec, runs, allow_untrained=untrained, ema=not args.no_ema)
        if args.codecs_only:
            if "untrained" in (training["video-vae"], training["audio"]):
                raise SystemExit(f"--codecs-only needs trained video-vae and audio runs; found {training}")
            path = export_codecs(spec, modules, args.out, training=training)
            print(json.dumps({"codecs": str(path), "training": training}))
            return 0
        files = export(spec, modules, args.out, training=training)
        print(
            json.dumps(
                {"checkpoint": str(files.checkpoint), "upsampler": str(files.upsampler), "training": training}
            )
        )
        return 0
    torch.set_num_threads(args.threads)
    existing = load_state(args.run)
    if existing is not None and existing.get("extra", {}).get("freeze_encoder"):
        args.freeze_encoder = True  # a decoder-only run stays one when resumed
    if existing is not None and existing.get("extra", {}).get("no_vocoder"):
        args.no_vocoder = True  # an audio-VAE-only run stays one
    if existing is not None and args.fg_weight is None and "fg_weight" in existing.get("extra", {}):
        args.fg_weight = existing["extra"]["fg_weight"]  # and a foreground-weighted one stays one
    if existing is not None and args.change_weight is None and "change_weight" in existing.get("extra", {}):
        args.change_weight = existing["extra"]["change_weight"]
    if existing is not None and args.ema is None:  # a run that keeps an average goes on keeping it
        args.ema = existing.get("extra", {}).get("config", {}).get("ema")
    if existing is not None and args.edge_weight is None and "edge_weight" in existing.get("extra", {}):
        args.edge_weight = existing["extra"]["edge_weight"]
    if existing is not None and args.decoder_base is None and "decoder_base" in existing.get("extra", {}):
        args.decoder_base = existing["extra"]["decoder_base"]  # and a decoder of another width keeps it
    if existing is not None and args.vocoder_rates is None and "vocoder_rates" in existing.get("extra", {}):
        args.vocoder_rates = existing["extra"]["vocoder_rates"]
    if (
        existing is None
        and args.init_from is not None
        and args.part == "vocoder"
        and args.vocoder_rates is None
    ):
        from ltx2stream.pocket.export import source_vocoder_rates

        args.vocoder_rates = source_vocoder_rates(args.init_from)  # a warm start keeps its source's structure
    if args.vocoder_rates is not None:
        rates = tuple(int(r) for r in str(args.vocoder_rates).split(","))
        if args.part != "vocoder" or math.prod(rates) != math.prod(spec.vocoder_rates):
            raise SystemExit(f"--vocoder-rates applies to vocoder runs, with a product of "
                             f"{math.prod(spec.vocoder_rates)}; got {args.vocoder_rates} for {args.part}")  # fmt: skip
        args.vocoder_rates = ",".join(map(str, rates))
        spec = replace(spec, vocoder_rates=rates)
    if args.decoder_base is not None:
        if args.part != "video-vae":
            raise SystemExit("--decoder-base applies to video-vae only")
        spec = replace(spec, vae_decoder_base=args.decoder_base)
    task = build_task(args, spec)
    initial_step = 0
    if args.init_from is not None and existing is None:
        states, initial_step = warm_start_states(args.init_from, args.part)
        for name, module in task.modules().items():
            try:
                if name == "video_vae" and args.freeze_encoder and args.decoder_base is not None:
                    if not load_encoder(module, states[name]):
                        log.info("video-vae: encoder from %s, a fresh decoder of base %d", args.init_from,
                                 args.decoder_base)  # fmt: skip
                    continue
                module.load_state_dict(states[name], strict=True)
            except RuntimeError as e:  # another structure (an earlier PocketSpec)
                raise SystemExit(
                    f"--init-from {args.init_from}: its {name} does not fit the current PocketSpec "
                    f"({str(e).strip().splitlines()[-1].strip()[:200]})"
                ) from None
        log.info("%s: warm start from %s at step %d", args.part, args.init_from, initial_step)
    cfg = TrainConfig(steps=args.steps, seed=args.seed, lr=args.lr or DEFAULT_LR[args.part], fan_in_ref=DEFAULT_FAN_IN_REF[args.part] if args.fan_in_ref is None else args.fan_in_ref,
                      checkpoint_every_s=args.checkpoint_every, time_limit_s=args.time_limit, ema=args.ema or 0.0)  # fmt: skip
    extra: dict[str, object] = {
        "argv": sys.argv,
        "threads": args.threads,
        "freeze_encoder": args.freeze_encoder,
        "no_vocoder": args.no_vocoder,
    }
    if args.fg_weight is not None:
        extra["fg_weight"] = args.fg_weight
    if args.change_weight is not None:
        extra["change_weight"] = args.change_weight
    if args.edge_weight is not None:
        extra["edge_weight"] = args.edge_weight
    if args.decoder_base is not None:
        extra["decoder_base"] = args.decoder_base
    if args.vocoder_rates is not None:
        extra["vocoder_rates"] = args.vocoder_rates
    for key in ("calibrated", "init_from"):  # the record of a run's origin and frozen latent space stays
        if existing is not None and key in existing.get("extra", {}):
            extra[key] = existing["extra"][key]
    if args.init_from is not None and existing is None:
        source = load_state(args.init_from) if args.init_from.is_dir() else None
        extra["init_from"] = f"{args.init_from} (step {source['step']})" if source else str(args.init_from)
    if args.freeze_encoder and existing is None and args.calibrate_clips > 0:
        # the latent space is fixed from here on: measure its statistics on whole clips and write the state
        # at once, so that upsampler / transformer runs can freeze it before this run's first checkpoint
        from ltx2stream.pocket import calibrate
        from ltx2stream.pocket.trainer import make_optimizer, save_state
        from ltx2stream.pocket.world_source import WorldSource

        if args.part == "video-vae":
            record = calibrate.calibrate_video(task.vae, spec, WorldSource(), args.calibrate_clips)
        else:
            record = calibrate.calibrate_audio(task.vae, spec, WorldSource(), args.calibrate_clips)
        log.info("%s: latent statistics measured: %s", args.part, record)
        extra["calibrated"] = record
        meta = {"task": task.name, "config": asdict(cfg), **extra}
        save_state(args.run, task, make_optimizer(task, cfg), initial_step, 0.0, meta)
    summary = train(
        task,
        args.run,
        cfg,
        extra=extra,
        progress=not args.no_progress,
        initial_step=initial_step,
    )
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
