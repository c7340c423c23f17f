"""Session scripts and long-form rendering: continuous MP4, resume after a kill, branching, script errors."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from ltx2stream.errors import InputError
from ltx2stream.media import Mp4Parts
from ltx2stream.session.render import Renderer
from ltx2stream.session.script import load_script, parse_script

SCRIPT = """
[session]
preset = "tiny-ltx2"
width = 64
height = 64
fps = 12
frames = 25
overlap = 1
seed = 5

[[segment]]
prompt = "a ball bounces"
repeat = 2

[[segment]]
prompt = "waves at night"
transition = "blend"
blend_segments = 1
"""


def write_script(tmp: Path, text: str = SCRIPT) -> Path:
    p = tmp / "s.toml"
    p.write_text(text)
    return p


def decode(path: Path) -> tuple[np.ndarray, np.ndarray, list[float], float]:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames, pts = [], []
        for f in c.decode(video=0):
            frames.append(f.to_ndarray(format="rgb24"))
            pts.append(float(f.time))
        fps = float(v.average_rate)
    with av.open(str(path)) as c:
        audio = np.concatenate([f.to_ndarray() for f in c.decode(audio=0)], axis=1)
    return np.stack(frames), audio, pts, fps


def test_script_expansion_and_errors(tmp_path: Path) -> None:
    s = load_script(write_script(tmp_path))
    assert [r.prompt for r in s.segments] == ["a ball bounces", "a ball bounces", "waves at night"]
    assert [r.seed for r in s.segments] == [5, 6, 7]
    assert s.segments[2].transition == "blend" and s.segments[2].blend_from == "a ball bounces"
    assert s.segments[2].blend_weight == 0.5
    bad = {
        "session": {"preset": "tiny-ltx2", "width": 64, "height": 64, "fps": 12, "frames": 25},
        "segment": [],
    }
    with pytest.raises(InputError):
        parse_script(bad, tmp_path / "x.toml")
    bad["segment"] = [{"prompt": "x", "colour": "red"}]
    with pytest.raises(InputError) as e:
        parse_script(bad, tmp_path / "x.toml")
    assert "colour" in e.value.message
    with pytest.raises(InputError) as e:
        load_script(tmp_path / "missing.toml")
    assert e.value.code == "input.script_not_found"


def test_examples_in_sessions_dir_parse() -> None:
    root = Path(__file__).resolve().parents[1] / "sessions"
    for path in sorted(root.glob("*.toml")):
        text = path.read_text()
        if "image =" in text and not (path.parent / "images").is_dir():
            continue
        assert load_script(path).segments


def test_render_three_segments_is_continuous(tiny_host: Any, tmp_path: Path) -> None:
    script = load_script(write_script(tmp_path))
    r = Renderer(tiny_host.pipeline("tiny-ltx2"), script, tmp_path / "work", Mp4Parts())
    assert r.run(r.start_state(resume=False, from_segment=None)) == 3
    out = r.assemble(tmp_path / "out.mp4")
    frames, audio, pts, fps = decode(out)
    assert frames.shape == (25 + 2 * (25 - 1 - 8), 64, 64, 3) and fps == 12.0
    assert np.allclose(np.diff(pts), 1 / 12.0, atol=1e-3)  # continuous timestamps
    video_s, audio_s = frames.shape[0] / fps, audio.shape[1] / tiny_host.pipeline("tiny-ltx2").sample_rate
    assert abs(video_s - audio_s) < 1 / fps
    # branching from segment 2 (same script) re-renders it identically
    r2 = Renderer(tiny_host.pipeline("tiny-ltx2"), script, tmp_path / "work", Mp4Parts())
    state = r2.start_state(resume=False, from_segment=2)
    assert state is not None and state.next_index == 2
    assert not (tmp_path / "work" / "parts" / "00000002.mp4").exists()
    assert r2.run(state) == 1
    frames2, audio2, _, _ = decode(r2.assemble(tmp_path / "out2.mp4"))
    assert np.array_equal(frames, frames2) and np.array_equal(audio, audio2)


def _render_cmd(script: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "ltx2stream.cli",
        "render",
        str(script),
        "-o",
        str(out),
        "--no-progress",
        *extra,
    ]


def _files(directory: Path) -> dict[str, tuple[int, int, str]]:
    """name -> (inode, mtime in ns, sha256) of every file in ``directory``: a rewrite changes the inode."""
    return {
        p.name: (p.stat().st_ino, p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(directory.iterdir())
        if p.is_file()
    }


@pytest.mark.slow
@pytest.mark.timeout(1800)  # three renders in subprocesses: minutes on a loaded 2-core machine
def test_killed_render_resumes_without_loss_or_duplication(tmp_path: Path) -> None:
    """SIGKILL mid-render, then --resume: the output equals an uninterrupted render, and every part and state
    written before the kill (up to the last state) is reused as it is (same inode, mtime and bytes); only the
    segments after the last state are rendered again."""
    script = write_script(tmp_path, SCRIPT.replace("repeat = 2", "repeat = 3"))
    env = dict(os.environ)
    subprocess.run(
        _render_cmd(script, tmp_path / "full.mp4"), check=True, env=env, capture_output=True, timeout=600
    )
    out = tmp_path / "killed.mp4"
    proc = subprocess.Popen(
        _render_cmd(script, out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    first_state = tmp_path / "killed.mp4.session" / "states" / "render-session" / "seg-00000001.ltxstate"
    deadline = time.time() + 300
    while not first_state.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists(), "killed before assembling"
    work = tmp_path / "killed.mp4.session"
    states_before, parts_before = _files(first_state.parent), _files(work / "parts")
    last = max(int(name[4:12]) for name in states_before if name.endswith(".ltxstate"))
    assert 1 <= last < 3, f"killed after segment {last}: nothing (or everything) left to resume"
    kept = {name: v for name, v in parts_before.items() if int(name.split(".")[0]) <= last}
    assert len(kept) == 2 * (last + 1)  # .mp4 and .npy of each segment up to the last state

    subprocess.run(
        _render_cmd(script, out, "--resume"), check=True, env=env, capture_output=True, timeout=600
    )
    parts_after, states_after = _files(work / "parts"), _files(first_state.parent)
    assert {name: parts_after[name] for name in kept} == kept  # reused, not rewritten
    assert {name: states_after.get(name) for name in states_before} == states_before
    rendered_again = sorted(name for name in parts_after if parts_after[name] != parts_before.get(name))
    assert rendered_again == sorted(f"{i:08d}.{ext}" for i in range(last + 1, 4) for ext in ("mp4", "npy"))
    full, killed = decode(tmp_path / "full.mp4"), decode(out)
    assert full[0].shape == killed[0].shape == (25 + 3 * 16, 64, 64, 3)
    assert np.array_equal(full[0], killed[0]) and np.array_equal(full[1], killed[1])
