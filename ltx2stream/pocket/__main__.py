"""``python -m ltx2stream.pocket``: train the pocket model's parts, resumably, and export the shipped files.

    python -m ltx2stream.pocket train video-vae   --run runs/pocket/video-vae --steps 20000
    python -m ltx2stream.pocket train audio       --run runs/pocket/audio     --steps 6000
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
import sys
from pathlib import Path

import torch

from ltx2stream.pocket.spec import PocketSpec
from ltx2stream.pocket.trainer import TrainConfig, load_state, train

log = logging.getLogger("ltx2stream.pocket")
PARTS = ("video-vae", "audio", "upsampler", "transformer")


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
    t.add_argument("--text-cache", type=Path, help="Gemma hidden-state cache directory (transformer)")
    t.add_argument(
        "--gemma", type=Path, default=None, help="Gemma 3 GGUF/dir (default: the gemma3-270m package)"
    )
    t.add_argument("--dataset", type=int, default=None, help="number of distinct clips")
    t.add_argument("--no-progress", action="store_true")
    t.add_argument("--init-from", type=Path, default=None,
                   help="shipped pocket.safetensors to warm-start from when the run directory has no state")  # fmt: skip
    c = sub.add_parser("text-cache", help="encode the transformer run's captions with the frozen Gemma, once")
    c.add_argument("--out", required=True, type=Path, help="cache directory (the transformer's --text-cache)")
    c.add_argument("--dataset", type=int, default=1024, help="clips 0..N-1, as the transformer's --dataset")
    c.add_argument(
        "--gemma", type=Path, default=None, help="Gemma 3 GGUF/dir (default: the gemma3-270m package)"
    )
    c.add_argument("--batch", type=int, default=16, help="captions per Gemma call")
    c.add_argument("--threads", type=int, default=2)
    e = sub.add_parser("export", help="write the official-layout checkpoint + upsampler from the runs")
    e.add_argument(
        "--runs",
        required=True,
        type=Path,
        help="directory holding video-vae/, audio/, upsampler/, transformer/",
    )
    e.add_argument("--out", required=True, type=Path)
    e.add_argument("--allow-untrained", action="store_true", help="export missing parts at their seeded init")
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
            snap.update({k: state["modules"][k] for k in parts})
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
    if args.part == "video-vae":
        return tasks_codec.VideoVAETask(spec, source, seed=args.seed, **opt)
    if args.part == "audio":
        return tasks_codec.AudioTask(spec, source, seed=args.seed, **opt)
    snap = codec_snapshot(args.run, args.video_vae, args.audio)
    vae = spec.build("video_vae", 0)
    vae.load_state_dict(snap["video_vae"])
    if args.part == "upsampler":
        return tasks_codec.UpsamplerTask(spec, source, vae, seed=args.seed, **opt)  # type: ignore[arg-type]
    if "audio_vae" not in snap:
        raise SystemExit(f"--audio {args.audio}: no trained audio state found")
    audio_vae = spec.build("audio_vae", 0)
    audio_vae.load_state_dict(snap["audio_vae"])
    from ltx2stream.pocket.text_cache import TextCache, default_gemma_path

    text = TextCache(
        args.text_cache or args.run / "text", args.gemma or default_gemma_path(), max_length=spec.text_length
    )
    latents = tasks_dit.LatentCache(args.run / "latents", spec, source, vae, audio_vae)  # type: ignore[arg-type]
    return tasks_dit.TransformerTask(spec, latents, text, seed=args.seed, **opt)


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


DEFAULT_LR = {"video-vae": 1e-3, "audio": 3e-4, "upsampler": 3e-4, "transformer": 2e-4}
# the norm-free video VAE needs the fan-in rule (one lr of 1e-3 for every weight diverges; docs/pocket.md)
DEFAULT_FAN_IN_REF = {"video-vae": 200, "audio": 0, "upsampler": 0, "transformer": 0}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    spec = PocketSpec()
    if args.command == "text-cache":
        return text_cache(args, spec)
    if args.command == "export":
        from ltx2stream.pocket.export import export, export_codecs, load_parts

        runs = {name: args.runs / name for name in PARTS}
        untrained = args.allow_untrained or args.codecs_only
        modules, training = load_parts(spec, runs, allow_untrained=untrained)
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
    task = build_task(args, spec)
    initial_step = 0
    if args.init_from is not None and load_state(args.run) is None:
        from ltx2stream.pocket.export import read_shipped

        states, initial_step = read_shipped(args.init_from, args.part)
        for name, module in task.modules().items():
            module.load_state_dict(states[name], strict=True)
        log.info("%s: warm start from %s at step %d", args.part, args.init_from, initial_step)
    cfg = TrainConfig(steps=args.steps, seed=args.seed, lr=args.lr or DEFAULT_LR[args.part], fan_in_ref=DEFAULT_FAN_IN_REF[args.part] if args.fan_in_ref is None else args.fan_in_ref,
                      checkpoint_every_s=args.checkpoint_every, time_limit_s=args.time_limit)  # fmt: skip
    summary = train(
        task,
        args.run,
        cfg,
        extra={"argv": sys.argv, "threads": args.threads},
        progress=not args.no_progress,
        initial_step=initial_step,
    )
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
