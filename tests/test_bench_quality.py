"""bench/quality's measuring and reporting on world clips (no model), and its script."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.quality.measure import measure
from bench.quality.report import write
from bench.quality.script import reference, world_script


def test_reference_scores_like_an_ideal_session(tmp_path: Path) -> None:
    """The world's rendering of a bench script adheres, has no seams, steers at once; all outputs are written."""
    script = world_script(seed=1, segments=4, steer_segment=2, change="recolour")
    assert script.prompts[1] != script.prompts[2] and script.old_state != script.new_state
    frames = [17, 8, 8, 8]
    bounds = list(np.cumsum(frames)[:-1])
    video, audio = reference(script, bounds, sum(frames), 64, 64, 12.0, 24000)
    m = measure(video, audio, 24000, 12.0, frames, script)
    assert min(v for v in m["adherence"].values() if v is not None) >= 0.9
    assert m["seams"]["pixel_max"] <= 1.2 and m["steering"]["latency_frames"] == 0
    cut = np.concatenate([video[:25], 255 - video[25:]])  # a hard cut at the second boundary
    assert measure(cut, audio, 24000, 12.0, frames, script)["seams"]["pixel"][1] > 3
    assert m["seams"]["steer_boundary"]["pixel"] > 1.5  # the recolour itself
    results = {
        "config": {
            "preset": "none",
            "width": 64,
            "height": 64,
            "frames": 17,
            "fps": 12.0,
            "overlap": 1,
            "segments": 4,
            "steer_segment": 2,
            "announcement": script.announcement,
            "seed": 1,
            "device": "cpu",
        },
        "wall_s": 0.0,
        "sessions": {"reference": {"measures": m}},
    }
    files = write(results, {"reference": video}, tmp_path)
    assert set(files) >= {"results.json", "results.md", "drift.png", "seams.png", "seams_reference.png"}
    assert json.loads((tmp_path / "results.json").read_text())["sessions"]["reference"]["measures"]
    assert "| reference |" in (tmp_path / "results.md").read_text()


def test_script_refuses_a_steer_outside_the_session() -> None:
    """A steer segment must lie inside the session."""
    with pytest.raises(ValueError, match="steer segment 4"):
        world_script(seed=0, segments=4, steer_segment=4, change=None)


@pytest.mark.slow
def test_scheme_names_take_continuation_options_after_an_at_sign() -> None:
    """``latent_carry@carry_strength=0.9@hold_frames=4`` runs latent_carry with those options; unknown schemes,
    unknown options and bad numbers are refused with the known names."""
    from bench.quality.run import options_for, scheme_names, scheme_of

    names = scheme_names("latent_carry, independent,latent_carry@carry_strength=0.9@hold_frames=4")
    assert names == ["latent_carry", "independent", "latent_carry@carry_strength=0.9@hold_frames=4"]
    scheme, carries, other = scheme_of(names[2])
    options = options_for(scheme, **other)
    assert carries and (options.carry_strength, options.hold_frames, options.decode_context) == (0.9, 4, 2)
    assert scheme_of("latent_carry_cut_at_end@hold_frames=2")[2] == {"hold_frames": 2, "decode_context": 0}
    for bad in ("nope", "latent_carry@boost=2", "latent_carry@carry_strength=much", ""):
        with pytest.raises(ValueError, match="latent_carry_cut_at_end"):
            scheme_names(bad)


def test_bench_runs_end_to_end_on_the_tiny_preset(tmp_path: Path) -> None:
    """`python -m bench.quality` runs sessions through the SessionController and writes every output."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    cmd = [
        sys.executable,
        "-m",
        "bench.quality",
        "--preset",
        "tiny-ltx2",
        "--segments",
        "2",
        "--steer-at",
        "1",
        "--out",
        str(tmp_path),
    ]
    subprocess.run(
        [*cmd, "--schemes", "latent_carry,independent"], check=True, cwd=root, env=env, timeout=1200
    )
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["sessions"]) == {"latent_carry", "independent", "reference"}
    # segment 0 holds its last 7 frames (the hold: 8, less than a 17-frame segment's 8 new ones); the session's
    # last segment is final and shows them with its own
    assert results["sessions"]["latent_carry"]["frames"] == [17 - 7, 8 + 7]
    assert (tmp_path / "seams_latent_carry.png").stat().st_size > 0


def test_scene_pool_sums_hits_and_trials_over_scenes() -> None:
    """``bench.quality.scenes``: adherence pools hits / trials over scenes (not a mean of per-scene fractions),
    with a Wilson interval that narrows as trials grow; unseen steers count in the share but not the latency."""
    from bench.quality.scenes import Pool, wilson

    def m(score: float, trials: int, latency: float | None) -> dict:  # type: ignore[type-arg]
        attrs = ("kind", "colour", "motion", "background", "sound", "hum")
        return {
            "adherence": dict.fromkeys(attrs, score),
            "adherence_trials": dict.fromkeys(attrs, trials),
            "seams": {"pixel_mean": 1.2},
            "steering": {"latency_segments": latency},
            "av_offset": {"pairs": 0, "offset_frames": None},
        }

    pool = Pool()
    pool.add(m(1.0, 2, 0.5))
    pool.add(m(0.25, 8, None))
    s = pool.summary()
    assert s["adherence"]["kind"]["score"] == pytest.approx(4 / 10)  # (2 + 2) / (2 + 8), not (1 + 0.25) / 2
    assert s["adherence"]["kind"]["trials"] == 10 and s["steer_seen"] == 0.5
    assert s["steer_latency_segments_median"] == 0.5 and s["av_scenes"] == 0
    lo, hi = wilson(4, 10)
    assert 0.1 < lo < 0.4 < hi < 0.75
    lo2, hi2 = wilson(40, 100)
    assert hi2 - lo2 < hi - lo


def test_scene_bench_runs_on_the_tiny_preset(tmp_path: Path) -> None:
    """``python -m bench.quality.scenes`` end to end: sessions per scene, the reference scores 1, outputs written."""
    from bench.quality.scenes import main

    assert main(["--preset", "tiny-ltx2", "--scenes", "2", "--segments", "2", "--steer-at", "1",
                 "--schemes", "latent_carry", "--threads", "1", "--out", str(tmp_path)]) == 0  # fmt: skip
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["sessions"]) == {"latent_carry", "reference"} and len(results["prompts"]) == 2
    ref = results["sessions"]["reference"]
    assert all(ref["adherence"][a]["score"] == 1.0 for a in ref["adherence"])
    trials = results["sessions"]["latent_carry"]["adherence"]["background"]["trials"]
    assert trials == ref["adherence"]["background"]["trials"] >= 4  # both scenes' windows
    assert (tmp_path / "results.md").read_text().startswith("# Quality over scenes")
    assert (tmp_path / "adherence.png").stat().st_size > 0
    assert main(["--scenes", "0", "--out", str(tmp_path)]) == 2
    assert main(["--schemes", "latent_carry,nope", "--out", str(tmp_path)]) == 2  # before any model loads
