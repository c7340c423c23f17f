"""The README's main job: ``ltx2stream demo`` streams a steered session from a local server into an MP4."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from ltx2stream.cli import main


@pytest.mark.timeout(1800)  # the pocket default: its Gemma's first load converts it (~2 min busy)
def test_demo_streams_a_steered_session(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "demo.mp4"
    assert main(["demo", "-o", str(out), "--segments", "3", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert '"final": "stopped"' in printed and '"steers"' in printed
    with av.open(str(out)) as c:
        frames = sum(1 for _ in c.decode(video=0))
    # the client stops as the last segment starts: that segment is final (shows the 8 frames it would hold for a
    # next one) when the stop reaches the server before its decode does, as it does unless the box stalls
    assert frames in (25 + 2 * (25 - 1 - 8), 25 + 2 * (25 - 1 - 8) - 8)
    with av.open(str(out)) as c:
        samples = sum(f.samples for f in c.decode(audio=0))
        rate = c.streams.audio[0].rate
    assert abs(samples / rate - frames / 12.0) < 1 / 12.0


def test_demo_offline_renders_the_same_session_from_a_script(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """``demo --offline``: the demo's session as a script through the ``render`` command (on the tiny preset here,
    to keep it quick: the script follows DEFAULT_PRESET); six segments, continuous, with sound."""
    from ltx2stream.pipeline import presets

    monkeypatch.setattr(presets, "DEFAULT_PRESET", "tiny-ltx2")
    out = tmp_path / "demo.mp4"
    assert main(["demo", "--offline", "-o", str(out), "--no-progress"]) == 0
    assert 'preset = "tiny-ltx2"' in (tmp_path / "demo.toml").read_text()
    with av.open(str(out)) as c:
        frames = sum(1 for _ in c.decode(video=0))
    # each segment holds its last 8 frames for the next one to show; the script's last one is final: it shows them
    assert frames == (25 - 8) + 4 * (25 - 1 - 8) + (25 - 1)
