"""Pocket training machinery at test sizes: loss goes down on a fixed batch, resume is bit-identical, and the
exported files load through the normal loaders with zero missing / unexpected keys."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ltx2stream.pocket.data import Clip
from ltx2stream.pocket.spec import PocketSpec
from ltx2stream.pocket.trainer import TrainConfig, load_state, make_optimizer, read_log, train
from ltx2stream.world import first_frame_at

CAPTIONS = ("a red square on grey", "a blue disc on white", "a green triangle on black")


class StripeSource:
    """Test clips: a coloured square sliding over a plain background, a tone whose pitch follows the colour;
    the caption names the colour (changes at ``change_at``)."""

    def __init__(self, pitch: float = 220.0) -> None:
        self.pitch = pitch

    @property
    def sound_key(self) -> str:
        return f"stripes at {self.pitch} Hz"

    @property
    def clip_key(self) -> str:
        return "stripes"

    def clip(
        self, index: int, *, frames: int, height: int, width: int, fps: float, change_at: float | None = None
    ) -> Clip:
        rng = np.random.default_rng(index)
        video = np.full((frames, height, width, 3), 40 * (index % 3), dtype=np.uint8)
        colours = np.array([[220, 30, 30], [30, 30, 220], [30, 200, 30]], dtype=np.uint8)
        c0 = int(rng.integers(3))
        c1 = (c0 + 1) % 3
        side = height // 4
        switch = frames if change_at is None else int(np.ceil(change_at * fps))
        for f in range(frames):
            x = (f * 3 + int(rng.integers(width - side))) % (width - side)
            video[f, height // 3 : height // 3 + side, x : x + side] = colours[c0 if f < switch else c1]
        sr = 16000
        t = np.arange(int(frames / fps * sr)) / sr
        tone = 0.3 * np.sin(2 * np.pi * (self.pitch + 110 * c0) * t).astype(np.float32)
        captions = [(0.0, CAPTIONS[c0])] + ([(switch / fps, CAPTIONS[c1])] if switch < frames else [])
        return Clip(video, np.stack([tone, tone]), sr, fps, tuple(captions))


@pytest.fixture(scope="module")
def gemma_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ltx2stream.models.text import write_tiny_gemma

    path = tmp_path_factory.mktemp("pocket-gemma") / "gemma"
    write_tiny_gemma(path, 0)
    return path


def _spec() -> PocketSpec:
    return PocketSpec.test(gemma_hidden=32, gemma_states=3)


def _transformer_task(tmp: Path, gemma: Path, seed: int = 0, frames: int | None = None):  # type: ignore[no-untyped-def]
    from ltx2stream.pocket.tasks_dit import LatentCache, TransformerTask
    from ltx2stream.pocket.text_cache import TextCache

    spec = _spec() if frames is None else replace(_spec(), frames=frames)
    vae, audio_vae = spec.build("video_vae", 5).eval(), spec.build("audio_vae", 6).eval()
    latents = LatentCache(tmp / "latents", spec, StripeSource(), vae, audio_vae)  # type: ignore[arg-type]
    text = TextCache(tmp / "text", gemma, max_length=spec.text_length)
    return TransformerTask(spec, latents, text, batch=2, dataset=4, seed=seed)


def _codec_tasks(name: str):  # type: ignore[no-untyped-def]
    from ltx2stream.pocket import tasks_codec

    spec = _spec()
    if name == "video-vae":
        return tasks_codec.VideoVAETask(
            spec, StripeSource(), batch=1, views=((1.0, 1.0, 1), (1.0, 1.0, 9)), dataset=2
        )
    if name == "audio":
        return tasks_codec.AudioTask(spec, StripeSource(), batch=1, seconds=0.7, vocoder_frames=16, dataset=2)
    if name == "vocoder":
        return tasks_codec.VocoderTask(
            spec, StripeSource(), batch=1, seconds=0.7, vocoder_frames=16, dataset=2
        )
    big = replace(spec, height=128, width=128)  # GroupNorm needs more than one half-size latent cell
    return tasks_codec.UpsamplerTask(
        big, StripeSource(), big.build("video_vae", 1).eval(), batch=1, frames=1, dataset=2
    )  # type: ignore[arg-type]


def _train_cli(run: Path, part: str, task_class: str, small, *args: str) -> int:  # type: ignore[no-untyped-def]
    """``python -m ltx2stream.pocket train PART --run RUN ARGS`` through the CLI's own code path, on the test-size
    spec and the stripe source; ``tasks_codec.<task_class>`` is built by ``small(spec, **kwargs)``."""
    from unittest import mock

    from ltx2stream.pocket import __main__ as cli
    from ltx2stream.pocket import tasks_codec, world_source

    with (
        mock.patch.object(tasks_codec, task_class, lambda spec, source, **kw: small(spec, **kw)),
        mock.patch.object(cli, "PocketSpec", _spec),
        mock.patch.object(world_source, "WorldSource", StripeSource),
    ):
        return cli.main(["train", part, "--run", str(run), "--threads", "1", "--no-progress", *args])


def _fixed_batch_losses(task, steps: int, lr: float, fan_in_ref: int = 0) -> list[float]:  # type: ignore[no-untyped-def]
    """Train on the batch of one fixed generator seed; the loss of that batch before each step."""
    opt = make_optimizer(task, TrainConfig(steps=steps, lr=lr, fan_in_ref=fan_in_ref))
    for group in opt.param_groups:  # what the training loop does each step (without the schedule)
        group["lr"] = lr * group["lr_scale"]
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss, _ = task.loss(0, torch.Generator().manual_seed(123))
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


@pytest.mark.parametrize(
    ("name", "steps", "lr"),
    [("video-vae", 6, 1e-3), ("audio", 8, 1e-3), ("vocoder", 8, 1e-3), ("upsampler", 6, 5e-3)],
)
def test_codec_steps_reduce_loss_on_a_fixed_batch(name: str, steps: int, lr: float) -> None:
    torch.manual_seed(0)
    losses = _fixed_batch_losses(_codec_tasks(name), steps, lr, 200 if name == "video-vae" else 0)
    assert losses[-1] < 0.9 * losses[0], losses


def test_transformer_steps_reduce_loss_on_a_fixed_batch(tmp_path: Path, gemma_dir: Path) -> None:
    losses = _fixed_batch_losses(_transformer_task(tmp_path, gemma_dir), 8, 3e-3)
    assert losses[-1] < 0.85 * losses[0], losses


def test_transformer_conditioning_cases_and_clean_tokens_carry_no_loss(
    tmp_path: Path, gemma_dir: Path
) -> None:
    task = _transformer_task(tmp_path, gemma_dir)
    g = torch.Generator().manual_seed(0)
    cases = {task.conditioning(g) for _ in range(400)}
    frames = {c[0] for c in cases}
    assert frames == {0, 1, 2, 3}  # text only, image, anchor + 1, anchor + 2 carried frames
    assert any(c[1] > 0 for c in cases) and any(c[0] == 3 and c[1] == 0 for c in cases)
    # the loss ignores clean tokens: a model output changed only on clean tokens leaves the loss unchanged
    from ltx2stream.pocket.tasks_dit import _token_mse, _weighted_mean

    pred, target = torch.randn(1, 6, 4), torch.randn(1, 6, 4)
    mask = torch.tensor([[0.0, 0.0, 1, 1, 1, 1]])
    changed = pred.clone()
    changed[:, :2] += 100.0
    assert _weighted_mean(_token_mse(pred, target), mask) == _weighted_mean(_token_mse(changed, target), mask)


def test_cached_only_draws_the_clips_the_cache_holds(tmp_path: Path, gemma_dir: Path) -> None:
    """``train transformer --cached-only``: batches come from clips with a cache entry at the step's stage size
    (a prefill fills the cache meanwhile); with nothing cached it encodes as before."""
    task = _transformer_task(tmp_path, gemma_dir)
    task.dataset, task.cached_only = 6, True
    for i in (1, 4):
        for half in (True, False):
            task.latents.get(i, half)
    assert task.latents.cached(True, 6) == [1, 4] and task.latents.cached(False, 3) == [1]
    drawn: set[int] = set()
    real_get = task.latents.get

    def get(index: int, half: bool):  # type: ignore[no-untyped-def]
        drawn.add(index)
        return real_get(index, half)

    task.latents.get = get  # type: ignore[method-assign]
    g = torch.Generator().manual_seed(0)
    for step in range(4):
        loss, _ = task.loss(step, g)
        assert torch.isfinite(loss)
    assert drawn == {1, 4}
    empty = _transformer_task(tmp_path / "empty", gemma_dir)
    empty.cached_only = True
    empty.loss(0, torch.Generator().manual_seed(0))
    assert empty.latents.cached(True, 4, max_age_s=0) or empty.latents.cached(False, 4, max_age_s=0)


def test_text_gap_compares_own_rotated_and_empty_prompts(tmp_path: Path, gemma_dir: Path) -> None:
    """``text_gap``: one noise draw, three prompt sets; a model whose text reaches its output scores them apart."""
    import math

    task = _transformer_task(tmp_path, gemma_dir)
    untrained = task.text_gap([0, 1, 2], sigmas=(0.9,))["0.9"]
    assert (
        untrained["own"] == untrained["rotated"]
    )  # the text path's output starts at zero (zero-initialised)
    _fixed_batch_losses(task, 3, 3e-3)
    gap = task.text_gap([0, 1, 2], sigmas=(0.9,))
    row = gap["0.9"]
    assert sorted(row) == ["empty", "own", "rotated"]
    assert all(math.isfinite(v[k]) and v[k] > 0 for v in row.values() for k in ("video", "audio"))
    assert row["own"]["video"] != row["empty"]["video"]  # the prompt changes the prediction
    assert task.text_gap([0, 1, 2], sigmas=(0.9,)) == gap  # deterministic: the same noise every call


def test_transformer_checkpoints_log_the_text_gap(tmp_path: Path, gemma_dir: Path) -> None:
    """Each checkpoint appends the text gap (sigma 0.95, own vs rotated prompts) to ``eval.jsonl``."""
    task = _transformer_task(tmp_path, gemma_dir)
    train(task, tmp_path / "run", TrainConfig(steps=2, checkpoint_every_s=0.0), progress=False)
    rows = [json.loads(ln) for ln in (tmp_path / "run" / "eval.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    r = rows[-1]
    assert r["text_gap_video"] == pytest.approx(r["rotated_video"] - r["own_video"], abs=1e-4)
    assert r["text_gap_audio_1"] == pytest.approx(r["rotated_audio_1"] - r["own_audio_1"], abs=1e-4)
    assert {"own_video_1", "rotated_video_1", "empty_video_1", "text_gap_video_1"} <= set(r)  # sigma 1
    # training clips against clips no dataset holds, at the same sigmas and noise
    from ltx2stream.pocket.tasks_dit import HELDOUT_CLIPS, HELDOUT_SIGMAS

    for name in ("train", "heldout"):
        for sigma in HELDOUT_SIGMAS:
            assert all(math.isfinite(r[f"{name}_{s}_{sigma:g}"]) for s in ("video", "audio"))
    assert min(HELDOUT_CLIPS) >= 1_000_000 and task.latents.get(HELDOUT_CLIPS[0], True).caption
    assert r["train_video_0.95"] != r["heldout_video_0.95"]
    assert all(m.training for m in task.modules().values())  # back in training mode


def test_scene_change_clips_use_the_new_caption(tmp_path: Path, gemma_dir: Path) -> None:
    from ltx2stream.pocket.tasks_dit import change_time

    task = _transformer_task(tmp_path, gemma_dir)
    s = task.spec
    idx = next(i for i in range(50) if change_time(i, s.fps, s.frames) is not None)
    change = change_time(idx, s.fps, s.frames)
    clip = StripeSource().clip(
        idx, frames=s.frames, height=s.height, width=s.width, fps=s.fps, change_at=change
    )
    sample = task.latents.get(idx, half=False)
    assert len(clip.captions) == 2 and sample.caption == clip.captions[-1][1]


@pytest.mark.parametrize("kind", ["transformer", "video-vae"])
def test_resume_continues_bit_identically(tmp_path: Path, gemma_dir: Path, kind: str) -> None:
    def task():  # type: ignore[no-untyped-def]
        return (
            _transformer_task(tmp_path / "cache", gemma_dir)
            if kind == "transformer"
            else _codec_tasks("video-vae")
        )

    cfg = TrainConfig(steps=4, seed=3, lr=1e-3, warmup=2, ema=0.9)  # the moving average resumes with them
    straight = task()
    train(straight, tmp_path / "straight", cfg, progress=False)
    first = task()
    train(first, tmp_path / "resumed", cfg, progress=False, stop_at=2)
    second = task()  # a fresh process: new modules, state from disk
    summary = train(second, tmp_path / "resumed", cfg, progress=False)
    assert summary["resumed_from"] == 2 and summary["step"] == 4
    for name, module in straight.modules().items():
        other = second.modules()[name].state_dict()
        for key, value in module.state_dict().items():
            assert torch.equal(value, other[key]), f"{name}.{key}"
    a, b = read_log(tmp_path / "straight"), read_log(tmp_path / "resumed")
    assert [r["loss"] for r in a] == [r["loss"] for r in b]
    averages = [load_state(tmp_path / run)["ema"] for run in ("straight", "resumed")]  # type: ignore[index]
    for name, params in averages[0].items():
        for key, value in params.items():
            assert torch.equal(value, averages[1][name][key]), f"ema {name}.{key}"
    assert (tmp_path / "resumed" / "loss.csv").is_file() and (tmp_path / "resumed" / "loss.png").is_file()


def test_the_moving_average_of_the_weights_is_what_the_export_takes(tmp_path: Path) -> None:
    """``TrainConfig.ema``: after each step ``average = decay * average + (1 - decay) * weights``, from the
    weights the run had when it started keeping one; ``module_states`` and the export give the average, or the
    last weights with ``ema=False``, and the shipped record names the decay."""
    from ltx2stream.pocket.export import load_parts
    from ltx2stream.pocket.trainer import module_states

    task = _codec_tasks("video-vae")
    vae = task.modules()["video_vae"]
    start = {k: p.detach().clone() for k, p in vae.named_parameters()}
    run = tmp_path / "runs" / "video-vae"
    train(task, run, TrainConfig(steps=1, lr=1e-3, warmup=1, ema=0.25), progress=False)
    state = load_state(run)
    assert state is not None
    weights, average = state["modules"]["video_vae"], state["ema"]["video_vae"]
    assert set(average) == set(start) and any(not torch.equal(start[k], weights[k]) for k in start)
    for k, before in start.items():
        torch.testing.assert_close(average[k], 0.25 * before + 0.75 * weights[k])
    averaged, last = module_states(state)["video_vae"], module_states(state, ema=False)["video_vae"]
    assert set(averaged) == set(weights) and last is weights  # buffers (latent statistics) from the weights
    moved = next(k for k in start if not torch.equal(average[k], weights[k]))
    assert torch.equal(averaged[moved], average[moved])
    runs = {"video-vae": run}
    for ema, expected in ((True, average[moved]), (False, weights[moved])):
        modules, training = load_parts(_spec(), runs, allow_untrained=True, ema=ema)
        assert torch.equal(modules["video_vae"].state_dict()[moved], expected)
        assert training["video-vae"].get("ema") == (0.25 if ema else None)
    from ltx2stream.pocket.__main__ import warm_start_states  # --init-from the run: the average, as exported

    assert torch.equal(warm_start_states(run, "video-vae")[0]["video_vae"][moved], average[moved])
    # a run without one keeps none; a run given one later starts it from its weights at that step
    plain = tmp_path / "plain"
    train(_codec_tasks("video-vae"), plain, TrainConfig(steps=1, lr=1e-3, warmup=1), progress=False)
    first = load_state(plain)
    assert first is not None and "ema" not in first
    train(_codec_tasks("video-vae"), plain, TrainConfig(steps=2, lr=1e-3, warmup=1, ema=0.5), progress=False)
    later = load_state(plain)
    assert later is not None and later["step"] == 2
    w1, w2 = first["modules"]["video_vae"], later["modules"]["video_vae"]
    for k, value in later["ema"]["video_vae"].items():
        torch.testing.assert_close(value, 0.5 * w1[k] + 0.5 * w2[k])


def test_fan_in_learning_rates(tmp_path: Path) -> None:
    from ltx2stream.pocket.trainer import learning_rate, lr_scale

    task = _codec_tasks("video-vae")
    cfg = TrainConfig(steps=1, lr=1e-3, warmup=1, fan_in_ref=64)
    opt = make_optimizer(task, cfg)
    assert len(opt.param_groups) > 2
    for group in opt.param_groups:
        assert all(lr_scale(p, 64) == group["lr_scale"] for p in group["params"])
    conv_in = task.vae.encoder.conv_in.conv  # type: ignore[attr-defined]
    assert lr_scale(conv_in.weight, 64) == pytest.approx(64 / conv_in.weight[0].numel())
    assert lr_scale(conv_in.bias, 64) == 1.0 and lr_scale(conv_in.weight, 0) == 1.0
    train(task, tmp_path / "run", cfg, progress=False)
    groups = torch.load(tmp_path / "run" / "state.pt", weights_only=False)["optimizer"]["param_groups"]
    assert sorted(g["lr"] for g in groups) == sorted(learning_rate(cfg, 0) * g["lr_scale"] for g in groups)
    assert min(g["lr"] for g in groups) < learning_rate(cfg, 0) / 10


def test_every_parameter_is_initialised() -> None:
    spec = _spec()
    for part in ("transformer", "text", "video_vae", "audio_vae", "vocoder", "upsampler"):
        for name, p in spec.build(part, 0).named_parameters():
            assert torch.isfinite(p).all() and p.abs().max() < 100, f"{part}.{name}"


def test_export_loads_through_the_normal_loaders(tmp_path: Path, gemma_dir: Path) -> None:
    from ltx2stream.models.loading import open_checkpoint
    from ltx2stream.pipeline.components import ModelPaths, load_components
    from ltx2stream.pocket.export import export, load_parts

    spec = _spec()
    train(_codec_tasks("video-vae"), tmp_path / "runs" / "video-vae", TrainConfig(steps=1), progress=False)
    runs = {n: tmp_path / "runs" / n for n in ("video-vae", "audio", "upsampler", "transformer")}
    modules, training = load_parts(spec, runs, allow_untrained=True)
    assert training["video-vae"]["steps"] == 1 and training["transformer"] == "untrained"
    files = export(spec, modules, tmp_path / "out", training=training)
    ckpt = open_checkpoint(files.checkpoint)
    assert all(v.dtype == torch.float16 for v in ckpt.read("vae.").values() if v.is_floating_point())
    # strict loaders: any missing / unexpected / wrong-shape key raises CheckpointError
    comps = load_components(ModelPaths(files.checkpoint, gemma_dir, files.upsampler), dtype=torch.float32,
                            text_max_length=int(ckpt.metadata["pocket_text_length"]))  # fmt: skip
    assert next(comps.transformer.parameters()).dtype == torch.float32
    trained = modules["video_vae"].state_dict()
    loaded = comps.vae.state_dict()
    assert set(trained) == set(loaded)
    key = "decoder.conv_in.conv.weight"
    assert torch.equal(loaded[key], trained[key].half().float())
    # warm start of a run from the shipped files (when its run directory is gone)
    from ltx2stream.pocket.export import read_shipped

    states, steps = read_shipped(files.checkpoint, "video-vae")
    assert steps == 1 and torch.equal(states["video_vae"][key], loaded[key])
    assert read_shipped(files.checkpoint, "transformer")[1] == 0
    from ltx2stream.pocket.export import export_codecs

    codecs = export_codecs(spec, modules, tmp_path / "codecs", training=training)
    states, steps = read_shipped(codecs, "video-vae")
    assert steps == 1 and torch.equal(states["video_vae"][key], loaded[key])
    assert not open_checkpoint(codecs).has_prefix("model.diffusion_model.")
    emb = comps.text_encoder.encode(["a red square on grey"])
    assert emb.video.shape[-1] == spec.heads * spec.video_head_dim


def test_dataset_captions_are_what_the_transformer_task_draws(tmp_path: Path, gemma_dir: Path) -> None:
    """The text-cache command's caption list: every caption the latent cache stores for clips 0..N-1, and ""."""
    from ltx2stream.pocket.tasks_dit import dataset_captions

    task = _transformer_task(tmp_path, gemma_dir)
    from ltx2stream.pocket.tasks_dit import HELDOUT_CLIPS

    captions = dataset_captions(_spec(), StripeSource(), 6, size=16)
    clips = (*range(6), *HELDOUT_CLIPS)  # the evaluation's held-out clips too
    stored = {task.latents.get(i, half).caption for i in clips for half in (False, True)}
    assert "" in captions and stored == set(captions) - {""}
    assert task.text.ensure(captions) == len(captions) and task.text.ensure(captions) == 0


@pytest.mark.parametrize("name", ["video-vae", "audio"])
def test_decoder_only_run_keeps_the_latent_space(tmp_path: Path, name: str) -> None:
    """``--freeze-encoder``: a run started from another codec run trains its decoder (and vocoder) only; the
    encoder and the latent statistics, which later runs are frozen on, stay bit for bit, and the run resumes as
    a decoder-only run without the flag."""
    from ltx2stream.pocket.export import encoder_keys

    first = _codec_tasks(name)
    train(first, tmp_path / "full", TrainConfig(steps=2, lr=1e-3, warmup=1), progress=False)
    before = {n: {k: v.clone() for k, v in m.state_dict().items()} for n, m in first.modules().items()}
    part = "video_vae" if name == "video-vae" else "audio_vae"

    from ltx2stream.pocket import tasks_codec

    cls = "VideoVAETask" if name == "video-vae" else "AudioTask"
    original = getattr(tasks_codec, cls)
    sizes = (
        {"batch": 1, "views": ((1.0, 1.0, 1), (1.0, 1.0, 9))}
        if name == "video-vae"
        else {"batch": 1, "seconds": 0.7, "vocoder_frames": 16}
    )

    def small(spec, **kw):  # type: ignore[no-untyped-def]
        return original(spec, StripeSource(), dataset=2, freeze_encoder=kw["freeze_encoder"], **sizes)

    def run(*extra: str) -> None:  # the CLI's own path: warm start from a run directory, the flag remembered
        assert _train_cli(tmp_path / "dec", name, cls, small, *extra) == 0

    start = ["--init-from", str(tmp_path / "full"), "--freeze-encoder", "--calibrate-clips", "2"]
    run("--steps", "2", "--lr", "1e-2", *start)
    calibrated = torch.load(tmp_path / "dec" / "state.pt", weights_only=False)
    run("--steps", "3", "--lr", "1e-2")  # resumed without the flag: still decoder-only
    state = torch.load(tmp_path / "dec" / "state.pt", weights_only=False)
    assert state["step"] == 3 and state["extra"]["freeze_encoder"] is True
    assert state["extra"]["calibrated"]["clips"] == 2
    assert state["extra"]["init_from"] == f"{tmp_path / 'full'} (step 2)"  # kept across the resume
    after = state["modules"][part]
    frozen = [k for k in after if encoder_keys(part, k)]
    assert frozen and any(k.startswith("per_channel_statistics.") for k in frozen)
    for k in frozen:
        if k.startswith("encoder."):  # the encoder is the run it started from
            assert torch.equal(after[k], before[part][k]), k
        assert torch.equal(after[k], calibrated["modules"][part][k]), (
            k
        )  # the statistics: measured, then fixed
    stat = "per_channel_statistics.std-of-means"
    assert not torch.equal(after[stat], before[part][stat])
    assert any(not torch.equal(after[k], before[part][k]) for k in after if k.startswith("decoder."))


def test_a_decoder_of_another_width_trains_on_the_frozen_encoder(tmp_path: Path) -> None:
    """``train video-vae --decoder-base N --init-from RUN --freeze-encoder``: the encoder and statistics of RUN
    load, the decoder (another width) starts fresh and trains; the width is remembered on resume."""
    from ltx2stream.pocket import __main__ as cli
    from ltx2stream.pocket import tasks_codec

    first = _codec_tasks("video-vae")
    train(first, tmp_path / "full", TrainConfig(steps=1, lr=1e-3, warmup=1), progress=False)
    source = first.vae.state_dict()
    original = tasks_codec.VideoVAETask

    def small(spec, **kw):  # type: ignore[no-untyped-def]
        return original(spec, StripeSource(), dataset=2, freeze_encoder=kw["freeze_encoder"], batch=1,
                        views=((1.0, 1.0, 1),))  # fmt: skip

    def run(*extra: str) -> None:
        assert _train_cli(tmp_path / "d16", "video-vae", "VideoVAETask", small, *extra) == 0

    start = ["--init-from", str(tmp_path / "full"), "--freeze-encoder", "--calibrate-clips", "0"]
    run("--steps", "1", "--decoder-base", "16", *start)
    run("--steps", "2")
    state = torch.load(tmp_path / "d16" / "state.pt", weights_only=False)
    assert state["step"] == 2 and state["extra"]["decoder_base"] == 16
    after = state["modules"]["video_vae"]
    for k, v in source.items():
        if not k.startswith("decoder."):
            assert torch.equal(after[k], v), k
    assert any(after[k].shape != v.shape for k, v in source.items() if k.startswith("decoder."))
    wider = replace(_spec(), vae_decoder_base=16).build("video_vae", 0)
    wider.load_state_dict(after)  # the run's decoder is the wider one
    narrow = _spec().build("video_vae", 0)
    with pytest.raises(RuntimeError):
        cli.load_encoder(narrow, {k: v for k, v in after.items() if not k.startswith("encoder.conv_in")})
    assert cli.load_encoder(narrow, source) is True


def test_a_vocoder_run_with_other_rates_remembers_them(tmp_path: Path) -> None:
    """``train vocoder --vocoder-rates 20,12``: the vocoder is built with those rates (kernels 2r), the run
    remembers them on resume; rates of another product (another samples-per-frame) are refused."""
    from ltx2stream.pocket import tasks_codec

    original = tasks_codec.VocoderTask

    def small(spec, **kw):  # type: ignore[no-untyped-def]
        return original(spec, StripeSource(), batch=1, vocoder_frames=16, dataset=2)

    def run(*extra: str) -> int:
        return _train_cli(tmp_path / "v", "vocoder", "VocoderTask", small, *extra)

    with pytest.raises(SystemExit, match="product of 240"):
        run("--steps", "1", "--vocoder-rates", "10,12")
    assert run("--steps", "1", "--vocoder-rates", "20,12") == 0
    assert run("--steps", "2") == 0
    state = torch.load(tmp_path / "v" / "state.pt", weights_only=False)
    assert state["step"] == 2 and state["extra"]["vocoder_rates"] == "20,12"
    built = replace(_spec(), vocoder_rates=(20, 12)).build("vocoder", 0)
    built.load_state_dict(state["modules"]["vocoder"])
    assert [u.stride[0] for u in built.ups] == [20, 12] and [u.kernel_size[0] for u in built.ups] == [40, 24]
    # the export builds the vocoder its run trained (the shipped config and pocket_spec say so), and a warm start
    # from the run or from the shipped file keeps those rates without the flag
    from ltx2stream.models.audio import load_vocoder
    from ltx2stream.models.loading import open_checkpoint
    from ltx2stream.pocket.export import (
        export,
        load_parts,
        source_vocoder_rates,
        spec_for_runs,
        spec_from_json,
    )

    runs = {"vocoder": tmp_path / "v"}
    spec = spec_for_runs(_spec(), runs)
    assert spec.vocoder_rates == (20, 12) and spec_for_runs(_spec(), {}) == _spec()
    files = export(spec, load_parts(spec, runs, allow_untrained=True)[0], tmp_path / "out", training={})
    ckpt = open_checkpoint(files.checkpoint)
    assert spec_from_json(ckpt.metadata["pocket_spec"]) == spec
    shipped = load_vocoder(ckpt, dtype=torch.float32)
    assert [u.stride[0] for u in shipped.ups] == [20, 12]
    assert source_vocoder_rates(tmp_path / "v") == source_vocoder_rates(files.checkpoint) == "20,12"
    for source in (tmp_path / "v", files.checkpoint):
        target = tmp_path / f"w-{source.name}"
        assert (
            _train_cli(target, "vocoder", "VocoderTask", small, "--steps", "1", "--init-from", str(source))
            == 0
        )
        assert torch.load(target / "state.pt", weights_only=False)["extra"]["vocoder_rates"] == "20,12"


def test_calibrated_statistics_give_unit_latents() -> None:
    """After calibration the normalised latents of the calibration clips have mean 0 and std 1 per channel."""
    from ltx2stream.pocket.calibrate import calibrate_audio, calibrate_video

    spec, source = _spec(), StripeSource()
    vae = spec.build("video_vae", 3).eval()
    record = calibrate_video(vae, spec, source, 3)
    assert record["positions"] > 0 and record["rms_before"] > 0
    from ltx2stream.pocket.tasks_dit import change_time

    latents = []  # encoded the way the transformer's latent cache encodes them
    for index in range(3):
        for size in (spec.height // 2, spec.height):
            change = change_time(index, spec.fps, spec.frames)
            x = source.clip(
                index, frames=spec.frames, height=size, width=size, fps=spec.fps, change_at=change
            )
            with torch.no_grad():
                latents.append(vae.encode(x.video()).transpose(0, 1).flatten(1))
    z = torch.cat(latents, dim=1)
    assert z.mean(1).abs().max() < 1e-3 and (z.std(1, unbiased=False) - 1).abs().max() < 1e-3
    audio = spec.build("audio_vae", 4).eval()
    record = calibrate_audio(audio, spec, source, 3)
    assert record["positions"] > 0


def test_export_refuses_a_codec_encoder_the_transformer_was_not_trained_on(tmp_path: Path) -> None:
    from ltx2stream import codes
    from ltx2stream.errors import ConfigError
    from ltx2stream.pocket.__main__ import codec_snapshot
    from ltx2stream.pocket.export import load_parts

    spec = _spec()
    runs = {n: tmp_path / "runs" / n for n in ("video-vae", "audio", "upsampler", "transformer")}
    vae_task = _codec_tasks("video-vae")
    train(vae_task, runs["video-vae"], TrainConfig(steps=1), progress=False)
    codec_snapshot(
        runs["transformer"], runs["video-vae"], None
    )  # what a transformer run freezes at its start
    load_parts(spec, runs, allow_untrained=True)  # same codec: fine
    state = torch.load(runs["video-vae"] / "state.pt", weights_only=False)
    state["modules"]["video_vae"]["decoder.conv_in.conv.weight"] += 0.1  # a decoder-only change: fine
    torch.save(state, runs["video-vae"] / "state.pt")
    load_parts(spec, runs, allow_untrained=True)
    state["modules"]["video_vae"]["encoder.conv_in.conv.weight"] += 0.1
    torch.save(state, runs["video-vae"] / "state.pt")
    with pytest.raises(ConfigError) as err:
        load_parts(spec, runs, allow_untrained=True)
    assert err.value.code == codes.CONFIG_POCKET_CODEC_MISMATCH and "encoder.conv_in" in str(err.value)


def test_latent_cache_prefill_writes_what_the_transformer_reads(tmp_path: Path) -> None:
    """``latent-cache --shard i --shards n``: each process encodes its clips at both stage sizes with the run's
    frozen codecs; together they cover the dataset, and the files equal what a training process encodes."""
    from unittest import mock

    from ltx2stream.pocket import __main__ as cli
    from ltx2stream.pocket import world_source
    from ltx2stream.pocket.tasks_dit import LatentCache

    runs = tmp_path / "runs"
    for name in ("video-vae", "audio"):
        train(_codec_tasks(name), runs / name, TrainConfig(steps=1), progress=False)
    with (
        mock.patch.object(cli, "PocketSpec", _spec),
        mock.patch.object(world_source, "WorldSource", StripeSource),
    ):
        for shard in (0, 1):
            argv = ["latent-cache", "--run", str(runs / "transformer"), "--video-vae", str(runs / "video-vae"),
                    "--audio", str(runs / "audio"), "--dataset", "3", "--shard", str(shard), "--shards", "2",
                    "--no-progress"]  # fmt: skip
            assert cli.main(argv) == 0
        names = sorted(p.name for p in (runs / "transformer" / "latents").iterdir())
        assert names == sorted(f"{s}-{i}.pt" for s in ("half", "full") for i in range(3))
        # --sizes half: the stage-1 entries alone (what a prefill fills first)
        argv = ["latent-cache", "--run", str(tmp_path / "halves"), "--video-vae", str(runs / "video-vae"),
                "--audio", str(runs / "audio"), "--dataset", "2", "--sizes", "half", "--no-progress"]  # fmt: skip
        assert cli.main(argv) == 0
        halves = sorted(p.name for p in (tmp_path / "halves" / "latents").iterdir())
        assert halves == ["half-0.pt", "half-1.pt"]
    snap = torch.load(runs / "transformer" / "codecs.pt", weights_only=True)
    spec = _spec()
    vae, audio_vae = spec.build("video_vae", 0), spec.build("audio_vae", 0)
    vae.load_state_dict(snap["video_vae"])
    audio_vae.load_state_dict(snap["audio_vae"])
    fresh = LatentCache(tmp_path / "fresh", spec, StripeSource(), vae, audio_vae)  # type: ignore[arg-type]
    cached = LatentCache(runs / "transformer" / "latents", spec, StripeSource(), vae, audio_vae)  # type: ignore[arg-type]
    for half in (True, False):
        a, b = fresh.get(2, half), cached.get(2, half)
        assert torch.equal(a.video, b.video) and torch.equal(a.audio, b.audio) and a.caption == b.caption


def test_upsampler_trains_on_the_transformer_cache_of_the_same_vae(tmp_path: Path) -> None:
    """``train upsampler --latents-from RUN``: the cached (normalised) latents, denormalised, are the raw encoder
    means the upsampler would have encoded itself; a run whose frozen VAE differs is refused."""
    from unittest import mock

    from ltx2stream.pocket import __main__ as cli
    from ltx2stream.pocket import world_source
    from ltx2stream.pocket.tasks_codec import UpsamplerTask, encoder_moments

    runs = tmp_path / "runs"
    for name in ("video-vae", "audio"):
        train(_codec_tasks(name), runs / name, TrainConfig(steps=1), progress=False)
    common = ["--video-vae", str(runs / "video-vae"), "--dataset", "2", "--no-progress"]
    with (
        mock.patch.object(cli, "PocketSpec", _spec),
        mock.patch.object(world_source, "WorldSource", StripeSource),
    ):
        argv = ["latent-cache", "--run", str(runs / "transformer"), "--audio", str(runs / "audio"), *common]
        assert cli.main(argv) == 0
        up = ["train", "upsampler", "--run", str(runs / "upsampler"), "--latents-from", str(runs / "transformer"),
              "--steps", "1", "--threads", "1", "--batch", "2", *common]  # fmt: skip
        assert cli.main(up) == 0
        task = cli.build_task(cli._parser().parse_args(up), _spec())
        assert isinstance(task, UpsamplerTask) and task.latents is not None
        s = task.spec
        clip = StripeSource().clip(1, frames=s.frames, height=s.height // 2, width=s.width // 2, fps=s.fps)
        with torch.no_grad():
            raw = encoder_moments(task.vae, clip.video())[0]
        cached = task.vae.denormalize(task.latents.get(1, True).video[None])
        torch.testing.assert_close(cached, raw, atol=1e-4, rtol=1e-4)
        # another VAE for the upsampler run: the cache is refused
        state = torch.load(runs / "video-vae" / "state.pt", weights_only=False)
        state["modules"]["video_vae"]["encoder.conv_in.conv.weight"] += 0.1
        torch.save(state, runs / "video-vae" / "state.pt")
        other = [a if a != str(runs / "upsampler") else str(runs / "upsampler2") for a in up]
        with pytest.raises(SystemExit, match="differs"):
            cli.main(other)


def test_training_sigmas_follow_the_preset_schedules() -> None:
    from ltx2stream.pocket.tasks_dit import HALF_SIGMA_MU, STAGE2_SIGMA_CEILING, sample_sigma

    gen = torch.Generator().manual_seed(0)
    full = sample_sigma(gen, 20000, 0.0, STAGE2_SIGMA_CEILING)
    half = sample_sigma(gen, 20000, HALF_SIGMA_MU)
    unshifted = sample_sigma(gen, 20000)
    # full size: 90 % below the ceiling + 10 % uniform over (0, 1), of which 70 % below it
    assert 0.95 < float((full <= STAGE2_SIGMA_CEILING).float().mean()) < 0.99
    assert float(full.min()) >= 1e-3 and float(half.max()) <= 1.0
    # half size: shifted toward the high sigmas where the stage-1 schedule spends half of its steps
    high = float((half > 0.85).float().mean())
    assert 0.15 < high < 0.25 and float((unshifted > 0.85).float().mean()) < 0.1


def test_half_size_steps_train_on_pure_noise(tmp_path: Path, gemma_dir: Path) -> None:
    """About ``P_PURE_NOISE`` of the half-size samples are at sigma 1 exactly (the first sampling step)."""
    from ltx2stream.pocket import tasks_dit

    task = _transformer_task(tmp_path, gemma_dir)
    seen: list[torch.Tensor] = []
    real = tasks_dit.Modality

    def spy(x: torch.Tensor, timesteps: torch.Tensor, sigma: torch.Tensor, *rest: object) -> object:
        seen.append(sigma.clone())
        return real(x, timesteps, sigma, *rest)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tasks_dit, "Modality", spy)
        mp.setattr(tasks_dit, "P_HALF", 1.0)
        with torch.no_grad():
            for step in range(40):
                task.loss(step, torch.Generator().manual_seed(step))
    sigmas = torch.cat(seen[::2])  # video modality of each step
    share = float((sigmas == 1.0).float().mean())
    assert 0.04 < share < 0.2, share


def test_one_stage_training_draws_full_size_sigmas_over_the_whole_range(
    tmp_path: Path, gemma_dir: Path
) -> None:
    """``--one-stage``: full-size steps sample sigma as half-size ones do (the one-stage preset starts at 1), and
    take P_ONE_STAGE_FULL of the steps; the two-stage recipe keeps full size below the refine ceiling."""
    from ltx2stream.pocket import tasks_dit
    from ltx2stream.pocket.__main__ import main

    task = _transformer_task(tmp_path, gemma_dir)
    gen = torch.Generator().manual_seed(0)
    two = torch.cat([task.sample_sigmas(gen, half=False) for _ in range(500)])
    full_two = sum(not task.draws_half(gen) for _ in range(4000)) / 4000
    task.one_stage = True
    one = torch.cat([task.sample_sigmas(gen, half=False) for _ in range(500)])
    full_one = sum(not task.draws_half(gen) for _ in range(4000)) / 4000
    assert float((two > 0.85).float().mean()) < 0.03 and float((two == 1.0).float().mean()) == 0.0
    assert 0.15 < float((one > 0.85).float().mean()) < 0.4 and 0.04 < float((one == 1.0).float().mean()) < 0.2
    assert abs(full_two - (1.0 - tasks_dit.P_HALF)) < 0.03
    assert abs(full_one - tasks_dit.P_ONE_STAGE_FULL) < 0.03
    with pytest.raises(SystemExit, match="--one-stage applies to transformer only"):
        main(["train", "upsampler", "--run", str(tmp_path / "u"), "--one-stage", "--steps", "1"])


def test_vocoder_loss_resolves_hums_15_hz_apart() -> None:
    """The hums of neighbouring background colours (70 and 85 Hz) differ most at the 4096-point resolution."""
    from ltx2stream.pocket import tasks_codec

    t = torch.arange(15360) / 24000
    a, b = (0.06 * torch.sin(2 * torch.pi * f * t)[None, None] for f in (70.0, 85.0))
    assert (4096, 1024) in tasks_codec.STFT_RESOLUTIONS
    assert float(tasks_codec.stft_loss(a, a)) == 0.0
    per_resolution = {}
    for r in tasks_codec.STFT_RESOLUTIONS:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(tasks_codec, "STFT_RESOLUTIONS", (r,))
            per_resolution[r] = float(tasks_codec.stft_loss(a, b))
    assert max(per_resolution, key=lambda r: per_resolution[r]) == (4096, 1024)


def test_vocoder_loss_charges_a_centred_sound_in_anti_phase() -> None:
    """A sound both channels share (the world's hums) rendered in anti-phase has the right magnitude in each
    channel, so the per-channel STFT terms cannot see it; it is silent in any mix of the channels, and the mid
    term charges for it (session 10: vocoder-v4's hums)."""
    from ltx2stream.pocket.tasks_codec import stft_loss, vocoder_loss

    t = torch.arange(24000) / 24000
    hum = 0.06 * torch.sin(2 * torch.pi * 900.0 * t)
    target = torch.stack([hum, hum])[None]  # centred: the same in both channels
    anti = torch.stack([hum, -hum])[None]
    assert float(stft_loss(anti, target)) < 1e-4  # per channel: indistinguishable
    front_end = _codec_tasks("vocoder").front_end
    same, _ = vocoder_loss(front_end, target.clone(), target, 24000)
    loss, parts = vocoder_loss(front_end, anti, target, 24000)
    assert float(same) < 1e-4 and parts["vocoder_mid"] > 1.0 and float(loss) > 1.0


def test_foreground_weights_cover_a_shape_and_its_edge_only() -> None:
    from ltx2stream.pocket.tasks_codec import foreground_weights

    pixels = torch.full((1, 3, 1, 32, 32), 0.2)
    pixels[:, 0, :, 10:16, 8:14] = 0.9  # a red square on a flat ground
    w = foreground_weights(pixels, 9.0)[0, 0, 0]
    assert w.shape == (32, 32)
    assert bool((w[10:16, 8:14] == 10.0).all())  # the shape
    assert float(w[9, 10]) == 10.0 and float(w[16, 13]) == 10.0  # its one-pixel ring
    assert float(w[8, 10]) == 1.0 and float(w[0, 0]) == 1.0 and int((w > 1).sum()) == 8 * 8


def test_edge_loss_charges_a_rounded_outline_more_than_a_colour_shift_of_the_same_pixel_error() -> None:
    """``--edge-weight``: a blurred square (its corners rounded) and the same square with its whole frame shifted
    in colour cost about the same pixel L1, but only the blur changes the outline, and only it pays the edge
    term; weights (``foreground_weights``) count the shape's neighbourhood only."""
    import torch.nn.functional as F

    from ltx2stream.pocket.tasks_codec import edge_loss, foreground_weights

    pixels = torch.full((1, 3, 1, 32, 32), 0.2)
    pixels[:, 0, :, 10:18, 8:16] = 0.9
    blurred = F.avg_pool3d(pixels, (1, 5, 5), stride=1, padding=(0, 2, 2), count_include_pad=False)
    l1 = float((blurred - pixels).abs().mean())
    shifted = pixels + l1  # the same mean absolute error, spread evenly
    assert float((shifted - pixels).abs().mean()) == pytest.approx(l1)
    assert float(edge_loss(pixels, pixels)) == 0.0
    assert float(edge_loss(shifted, pixels)) < 1e-6 < float(edge_loss(blurred, pixels))
    w = foreground_weights(pixels, 10.0)
    assert float(edge_loss(blurred, pixels, w)) > float(
        edge_loss(blurred, pixels)
    )  # concentrated on the shape
    far = pixels.clone()
    far[..., 28:, 28:] += 0.5  # an error away from any shape weighs 1, the shape's neighbourhood 11
    assert float(edge_loss(far, pixels, w)) < float(edge_loss(far, pixels))


def test_edge_weight_is_remembered_by_a_video_vae_run(tmp_path: Path) -> None:
    from ltx2stream.pocket import tasks_codec
    from ltx2stream.pocket.trainer import load_state

    original, seen = tasks_codec.VideoVAETask, []

    def small(spec, **kw):  # type: ignore[no-untyped-def]
        seen.append(kw.get("edge_weight"))
        return original(spec, StripeSource(), dataset=2, batch=1, views=((1.0, 1.0, 1),), **kw)

    run = tmp_path / "run"
    assert _train_cli(run, "video-vae", "VideoVAETask", small, "--edge-weight", "2", "--steps", "1") == 0
    assert (
        _train_cli(run, "video-vae", "VideoVAETask", small, "--steps", "2") == 0
    )  # resumed without the flag
    state = load_state(run)
    assert seen == [2.0, 2.0] and state is not None and state["extra"]["edge_weight"] == 2.0
    assert all("edge" in json.loads(line) for line in (run / "log.jsonl").read_text().splitlines())


def test_video_vae_kind_evaluation_reads_shapes_back() -> None:
    from ltx2stream.pocket import tasks_codec
    from ltx2stream.pocket.spec import PocketSpec
    from ltx2stream.pocket.world_source import WorldSource

    task = tasks_codec.VideoVAETask(PocketSpec.test(), WorldSource(), fg_weight=4.0)
    row = task.evaluate()
    assert set(row) == {"l1", "kind_match", "shapes"} and row["shapes"] > 0
    assert 0.0 <= row["kind_match"] <= 1.0 and row["l1"] > 0.0
    loss, parts = task.loss(0, torch.Generator().manual_seed(0))
    assert torch.isfinite(loss) and parts["l1"] > 0


def test_stft_loss_is_not_won_by_silence() -> None:
    """Against pure tones over digital silence, the right tones with a noise floor 80 dB under them must score far
    better than silence, and a third of their level still better (with a 1e-5 magnitude floor the first scored
    3.1 against silence's 3.4, so the vocoder learned to be quiet: docs/pocket.md "The vocoder")."""
    from ltx2stream.pocket.tasks_codec import stft_loss

    t = torch.arange(12000) / 24000
    target = (0.08 * torch.sin(2 * torch.pi * 400.0 * t) + 0.08 * torch.sin(2 * torch.pi * 700.0 * t))[
        None, None
    ]
    noise = 1e-4 * torch.randn(target.shape, generator=torch.Generator().manual_seed(0))
    silence = float(stft_loss(torch.zeros_like(target), target))
    assert float(stft_loss(target + noise, target)) < 0.1 * silence
    assert float(stft_loss(0.3 * target + noise, target)) < silence
    assert float(stft_loss(target, target)) == pytest.approx(0.0, abs=1e-6)


def test_latent_cache_re_encodes_only_the_audio_when_the_sound_changes(tmp_path: Path) -> None:
    """Cached entries carry the source's ``sound_key`` and a digest of the audio encoder and statistics; when either
    changes the audio latents are re-encoded (from a small render: the audio does not depend on the size) and
    saved, the video latents and caption kept."""
    from ltx2stream.pocket.tasks_dit import LatentCache

    spec = _spec()
    vae, audio_vae = spec.build("video_vae", 5).eval(), spec.build("audio_vae", 6).eval()
    old = LatentCache(tmp_path, spec, StripeSource(220.0), vae, audio_vae).get(1, False)  # type: ignore[arg-type]
    fresh = LatentCache(tmp_path / "fresh", spec, StripeSource(330.0), vae, audio_vae).get(1, False)  # type: ignore[arg-type]
    cache = LatentCache(tmp_path, spec, StripeSource(330.0), vae, audio_vae)  # type: ignore[arg-type]
    for got in (cache.get(1, False), cache.get(1, False)):  # re-encoded, then read back
        assert torch.equal(got.video, old.video) and got.caption == old.caption
        assert not torch.allclose(got.audio, old.audio)
        torch.testing.assert_close(got.audio, fresh.audio)
    stored = torch.load(tmp_path / "full-1.pt", weights_only=True)
    assert stored["audio_key"] == cache.audio_key and torch.equal(stored["fg"], old.fg)
    del stored["fg"]  # an entry of an earlier session: the foreground cells are added once
    torch.save(stored, tmp_path / "full-1.pt")
    assert torch.equal(cache.get(1, False).fg, old.fg)
    assert "fg" in torch.load(tmp_path / "full-1.pt", weights_only=True)
    assert cache.audio_key.startswith("stripes at 330.0 Hz")
    audio_vae.per_channel_statistics.get_buffer("std-of-means").mul_(2.0)  # recalibrated: the audio is stale
    halved = LatentCache(tmp_path, spec, StripeSource(330.0), vae, audio_vae).get(1, False)  # type: ignore[arg-type]
    assert torch.equal(halved.video, old.video)
    torch.testing.assert_close(halved.audio, fresh.audio / 2.0)


def test_foreground_cells_mark_the_shape_and_its_latent_frames() -> None:
    """The share of shape pixels per latent cell: the stripe source's square (one colour over a plain ground)
    lands in the cells it covers, nothing elsewhere; latent frame 0 is pixel frame 0 alone, frame k the max over
    pixel frames 8k-7..8k."""
    from ltx2stream.pocket.tasks_dit import foreground_cells

    frames = np.full((17, 32, 32, 3), 200, dtype=np.uint8)
    frames[0, 0:8, 0:8] = (220, 30, 30)  # frame 0: top-left cell, full
    frames[5, 24:28, 8:16] = (30, 30, 220)  # inside latent frame 1: half of cell (3, 1)
    frames[16, 8:16, 24:32] = (30, 200, 30)  # last pixel frame of latent frame 2: cell (1, 3)
    cells = foreground_cells(frames, 4, 4, 3)
    assert cells.shape == (3, 4, 4)
    assert cells[0, 0, 0] == 1.0 and cells[0].sum() == 1.0
    assert cells[1, 3, 1] == 0.5 and cells[1].sum() == 0.5
    assert cells[2, 1, 3] == 1.0 and cells[2].sum() == 1.0


def test_the_video_loss_weighs_shape_cells(tmp_path: Path, gemma_dir: Path) -> None:
    """The training loss weighs the video error on latent cells with shape pixels by 1 + fg_weight (a weighted
    mean); the logged ``video`` stays the plain mean and ``video_fg`` is the shape cells' own."""
    task = _transformer_task(tmp_path, gemma_dir)
    sample = task.latents.get(0, True)
    assert sample.fg is not None and sample.fg.shape == sample.video.shape[1:] and float(sample.fg.max()) > 0
    cached = task.latents.get

    def some_cells_plain(index: int, half: bool):  # type: ignore[no-untyped-def]
        # at the test size the square touches every cell of its 1-4 cell latents: clear every other cell
        x = cached(index, half)
        fg = x.fg.clone()
        fg.view(-1)[::2] = 0.0
        return replace(x, fg=fg)

    task.latents.get = some_cells_plain  # type: ignore[method-assign]
    losses = {}
    for weight in (0.0, 4.0):
        task.fg_weight = weight
        losses[weight] = task.loss(0, torch.Generator().manual_seed(3))
    (plain_total, plain), (weighted_total, weighted) = losses[0.0], losses[4.0]
    assert plain["video"] == weighted["video"] and plain["video_fg"] == weighted["video_fg"] > 0
    assert float(plain_total.detach()) == pytest.approx(plain["video"] + plain["audio"], rel=1e-5)
    assert float(weighted_total.detach()) != pytest.approx(float(plain_total.detach()), rel=1e-4)


def test_the_change_weight_weighs_the_steers_over_a_carried_tail(
    tmp_path: Path, gemma_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``change_weight`` multiplies the video loss of the carried-prefix samples whose clip changes scene at or
    after their first generated latent frame, and of no other sample; the logged ``video`` stays the plain mean."""
    from ltx2stream.pocket import tasks_dit

    task = _transformer_task(tmp_path, gemma_dir, frames=17)  # an anchor, a carried and a generated frame
    assert task.latents.get(0, True).video.shape[1] == 3
    for index in range(task.dataset):  # the cache renders before ``change_latent_frame`` is replaced below
        task.latents.get(index, True), task.latents.get(index, False)

    def totals(clean: int, change: int | None) -> dict[float, tuple[float, float]]:
        # the batch's first sample keeps its scene, the second changes from latent frame ``change``
        monkeypatch.setattr(task, "conditioning", lambda gen: (clean, 0))
        out = {}
        for weight in (1.0, 4.0):
            calls = iter((None, change))
            monkeypatch.setattr(tasks_dit, "change_latent_frame", lambda index, n, calls=calls: next(calls))
            task.change_weight = weight
            total, logged = task.loss(0, torch.Generator().manual_seed(11))
            out[weight] = (float(total.detach()), logged["video"])
        return out

    steered = totals(2, 2)  # the first generated frame shows the new scene: a steer over the carried tail
    assert steered[1.0][1] == steered[4.0][1]
    assert steered[1.0][0] != pytest.approx(steered[4.0][0], rel=1e-4)
    for clean, change in ((2, None), (3, 1), (1, 1), (0, 1)):  # no change; inside the carried span; no carry
        out = totals(clean, change)
        assert out[1.0] == out[4.0], (clean, change)
    monkeypatch.undo()
    with_change = [i for i in range(40) if tasks_dit.change_time(i, 24.0, 25) is not None]
    for i in with_change:  # the change lands in the latent frame named, 7 of its 8 pixel frames after
        latent = tasks_dit.change_latent_frame(i, 25)
        assert latent is not None and 1 <= latent <= 3
        first = first_frame_at(tasks_dit.change_time(i, 24.0, 25) or 0.0, 24.0)
        assert first == 8 * (latent - 1) + 2
    assert 10 < len(with_change) < 30


def test_a_steady_mel_vocodes_to_one_period_per_frame_so_the_world_pitches_sit_on_that_grid() -> None:
    """The vocoder is time-invariant: fed the same mel frame over and over (a steady sound) its output repeats every
    ``hop_product`` samples, so it can only hold multiples of rate / hop_product (100 Hz). Every tone and hum of
    the world is such a multiple (world.palette; the first pitches came out as a 100 Hz buzz)."""
    from ltx2stream.world.palette import BACKGROUND_HUM_HZ, KIND_PITCH_HZ

    cfg = PocketSpec().vocoder_config().vocoder
    grid = cfg.output_sampling_rate / cfg.hop_product
    assert grid == 100.0
    for f in (*KIND_PITCH_HZ.values(), *BACKGROUND_HUM_HZ.values()):
        assert (f / grid).is_integer(), f
    vocoder = _spec().build("vocoder", 0).eval()
    frame = torch.randn(1, 2, 1, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = vocoder(frame.expand(-1, -1, 24, -1).contiguous())[0]
    hop = vocoder.hop_product
    middle = y[:, 8 * hop : 16 * hop]
    assert float(middle.abs().max()) > 1e-4
    torch.testing.assert_close(middle[:, hop:], middle[:, :-hop], rtol=0, atol=1e-5)


def test_vocoder_run_replaces_the_audio_runs_vocoder_in_the_export(tmp_path: Path) -> None:
    from ltx2stream.errors import ConfigError
    from ltx2stream.pocket import tasks_codec
    from ltx2stream.pocket.export import load_parts

    spec = _spec()
    runs = {n: tmp_path / n for n in ("video-vae", "audio", "vocoder", "upsampler", "transformer")}
    audio = tasks_codec.AudioTask(spec, StripeSource(), batch=1, seconds=0.7, dataset=2, vocoder=False)
    assert set(audio.modules()) == {"audio_vae"}
    train(audio, runs["audio"], TrainConfig(steps=1), progress=False)
    with pytest.raises(ConfigError, match="holds no vocoder"):
        load_parts(spec, runs, allow_untrained=True)
    task = _codec_tasks("vocoder")
    train(task, runs["vocoder"], TrainConfig(steps=2), progress=False)
    modules, training = load_parts(spec, runs, allow_untrained=True)
    assert training["vocoder"]["steps"] == 2 and training["audio"]["steps"] == 1
    trained = task.modules()["vocoder"].state_dict()
    assert all(torch.equal(v, trained[k]) for k, v in modules["vocoder"].state_dict().items())
    # a vocoder of another structure (the audio run of an earlier spec): a clear error, not a torch traceback
    from ltx2stream.models.audio.config import GeneratorConfig
    from ltx2stream.models.audio.hifigan import Generator
    from ltx2stream.pocket.trainer import load_state

    state = load_state(runs["vocoder"])
    assert state is not None
    cfg = GeneratorConfig(
        upsample_initial_channel=32, resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1, 3, 5),)
    )
    state["modules"]["vocoder"] = Generator(cfg).state_dict()
    torch.save(state, runs["vocoder"] / "state.pt")
    with pytest.raises(ConfigError, match="does not fit the current PocketSpec"):
        load_parts(spec, runs, allow_untrained=True)
    row = json.loads((runs["vocoder"] / "eval.jsonl").read_text().splitlines()[-1])
    assert (
        0.0 <= row["tones_match"] <= 1.0 and 0.0 <= row["hum_match"] <= 1.0 and math.isfinite(row["level_db"])
    )
    assert 0.0 <= row["pitches_rendered"] <= 1.0 and sum(k.startswith("pitch_") for k in row) == 9


def test_pitch_response_reads_what_the_vocoder_renders() -> None:
    """``VocoderTask.pitch_response``: a stand-in vocoder that always answers the circle's tone at the input's
    level renders that pitch (~1) and none of the other eight (~0)."""
    from ltx2stream.pocket.tasks_codec import VocoderTask
    from ltx2stream.world.palette import BACKGROUND_HUM_HZ, KIND_PITCH_HZ

    class Circle(torch.nn.Module):
        output_sampling_rate, hop_product = 24000, 240

        def forward(self, mel: torch.Tensor) -> torch.Tensor:
            t = torch.arange(mel.shape[2] * 240) / 24000
            return (0.06 * torch.sin(2 * torch.pi * KIND_PITCH_HZ["circle"] * t)).expand(mel.shape[0], 2, -1)

    task = VocoderTask(_spec(), StripeSource())
    task.vocoder = Circle()
    response = task.pitch_response()
    assert set(response) == {*KIND_PITCH_HZ.values(), *BACKGROUND_HUM_HZ.values()}
    for f, r in response.items():
        assert r == pytest.approx(1.0, abs=0.05) if f == KIND_PITCH_HZ["circle"] else r < 0.05, (f, r)


def test_transformer_loss_runs_through_the_denoiser(tmp_path: Path, gemma_dir: Path) -> None:
    """``--compile`` swaps ``denoiser`` for a compiled wrapper; the loss must call it, checkpoints the model."""
    task = _transformer_task(tmp_path, gemma_dir)
    calls: list[int] = []

    def spy(video, audio):  # type: ignore[no-untyped-def]
        calls.append(1)
        return task.model(video, audio)

    task.denoiser = spy
    task.loss(0, torch.Generator().manual_seed(0))
    assert calls == [1]
    assert task.modules()["transformer"] is task.model


def test_warm_start_from_another_structure_is_a_clear_error(tmp_path: Path) -> None:
    from ltx2stream.models.audio.config import GeneratorConfig
    from ltx2stream.models.audio.hifigan import Generator
    from ltx2stream.pocket.__main__ import main

    old = GeneratorConfig(
        upsample_initial_channel=64,
        resblock_kernel_sizes=(3, 5),
        resblock_dilation_sizes=((1, 3, 5), (1, 3, 5)),
    )  # the released 5 upsampling stages
    source = tmp_path / "old-vocoder"
    source.mkdir()
    state = {"step": 10, "elapsed_s": 1.0, "modules": {"vocoder": Generator(old).state_dict()},
             "optimizer": {}, "extra": {"task": "vocoder"}}  # fmt: skip
    torch.save(state, source / "state.pt")
    argv = ["train", "vocoder", "--run", str(tmp_path / "new"), "--init-from", str(source), "--steps", "1"]
    with pytest.raises(SystemExit, match="does not fit the current PocketSpec"):
        main(argv)


def test_committed_weights_warm_start_every_part_they_hold() -> None:
    """The committed weights are how training resumes on a new machine (docs/pocket.md, session 9): the shipped
    ``pocket.safetensors`` (every run's last exported state, the frozen encoders among them) and, while a run
    goes on past it, ``wip/`` a snapshot of every run. Each part they are kept for loads strictly into the
    current ``PocketSpec``'s module, and the schedule continues from the step the file records."""
    from ltx2stream.models.loading import open_checkpoint
    from ltx2stream.pocket.export import OVERRIDE_RUNS, RUN_PARTS, read_shipped, source_vocoder_rates

    weights = Path(__file__).parent.parent / "ltx2stream" / "pocket" / "weights"
    kept_for = {
        p: RUN_PARTS | OVERRIDE_RUNS
        for p in (weights, weights / "wip")
        if (p / "pocket.safetensors").is_file()
    }
    assert weights in kept_for  # the shipped model
    for directory, runs in kept_for.items():
        path = directory / "pocket.safetensors"
        training = json.loads(open_checkpoint(path).metadata["pocket_training"])
        rates = source_vocoder_rates(path)  # a vocoder trained with --vocoder-rates keeps them
        spec = (
            replace(PocketSpec(), vocoder_rates=tuple(int(r) for r in rates.split(",")))
            if rates
            else PocketSpec()
        )
        for run, parts in runs.items():
            states, step = read_shipped(path, run)
            record = training.get(run)
            assert step == (record["steps"] if isinstance(record, dict) else 0), (path, run)
            for part in parts:
                spec.build(part, 0).load_state_dict(states[part], strict=True)


def test_latent_cache_encodes_again_what_another_sampler_drew(tmp_path: Path) -> None:
    """An entry carries its source's ``clip_key``; read through a source whose key differs (the world's sampler
    changed what an index draws) it is encoded again as a whole and saved with the new key. Entries without a
    key are the world's first sampler's."""
    from ltx2stream.pocket.tasks_dit import LEGACY_CLIP_KEY, LatentCache
    from ltx2stream.pocket.world_source import WorldSource

    class Shifted(StripeSource):  # another picture for the same index
        clip_key = "stripes, shifted"  # type: ignore[assignment]

        def clip(self, index: int, **kw: Any) -> Clip:  # type: ignore[override]
            return super().clip(index + 1, **kw)

    spec = _spec()
    vae, audio_vae = spec.build("video_vae", 5).eval(), spec.build("audio_vae", 6).eval()
    old = LatentCache(tmp_path, spec, StripeSource(), vae, audio_vae).get(1, True)  # type: ignore[arg-type]
    assert torch.load(tmp_path / "half-1.pt", weights_only=True)["clip_key"] == "stripes"
    again = LatentCache(tmp_path, spec, StripeSource(), vae, audio_vae).get(1, True)  # type: ignore[arg-type]
    assert torch.equal(again.video, old.video)  # same key: read back
    new = LatentCache(tmp_path, spec, Shifted(), vae, audio_vae).get(1, True)  # type: ignore[arg-type]
    fresh = LatentCache(tmp_path / "fresh", spec, Shifted(), vae, audio_vae).get(1, True)  # type: ignore[arg-type]
    assert not torch.equal(new.video, old.video) and torch.equal(new.video, fresh.video)
    assert torch.load(tmp_path / "half-1.pt", weights_only=True)["clip_key"] == "stripes, shifted"
    assert WorldSource().clip_key == "world specs 2" != LEGACY_CLIP_KEY  # session 14 changed the sampler: the
    # entries of sessions 1-13 are stale


def test_fg_weight_is_a_video_vae_and_transformer_option(tmp_path: Path) -> None:
    """``train ... --fg-weight``: taken by the video VAE and the transformer (the extra weight on latent cells
    shapes cover), refused for the other parts before anything is built."""
    from ltx2stream.pocket import __main__ as cli

    for part in ("audio", "vocoder", "upsampler"):
        args = cli._parser().parse_args(["train", part, "--run", str(tmp_path / part), "--fg-weight", "8"])
        with pytest.raises(SystemExit, match="--fg-weight applies to video-vae and transformer only"):
            cli.build_task(args, _spec())
    args = cli._parser().parse_args(
        ["train", "upsampler", "--run", str(tmp_path / "u"), "--edge-weight", "2"]
    )
    with pytest.raises(SystemExit, match="--edge-weight applies to video-vae only"):
        cli.build_task(args, _spec())
