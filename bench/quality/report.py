"""Outputs of a quality run: results.json, results.md (one table, schemes side by side), PNG plots (drift per
segment, seam ratios per boundary, time per segment) and a contact sheet of the frames around every seam."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

DRIFT_PLOTTED = ("luma", "saturation", "contrast", "loudness_db")


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def markdown(results: dict[str, Any]) -> str:
    rows = results["sessions"]
    head = (
        "| session | kind | colour | motion | background | sound | hum | seam pixel mean / max | seam warp mean "
        "| seam audio mean | steer seam pixel | steer latency (frames / segments) | drift max abs t (stat) | A/V offset (frames, pairs) "
        "| s / segment | carry s / segment |"
    )
    lines = [head, "|" + "---|" * 16]
    for name, r in rows.items():
        m = r["measures"]
        a = m["adherence"]
        s = m["seams"]
        st = m["steering"]
        d = m["drift"]
        worst = max(d, key=lambda k: abs(d[k]["t"] or 0.0)) if d else None
        t = r.get("timing", {})
        lines.append(
            f"| {name} | {_fmt(a['kind'])} | {_fmt(a['colour'])} | {_fmt(a['motion'])} | {_fmt(a['background'])} "
            f"| {_fmt(a['sound'])} | {_fmt(a['hum'])} | {_fmt(s['pixel_mean'])} / {_fmt(s['pixel_max'])} "
            f"| {_fmt(s['warp_mean'])} | {_fmt(s['audio_spectral_mean'])} | {_fmt(s['steer_boundary']['pixel'])} "
            f"| {_fmt(st['latency_frames'])} / {_fmt(st['latency_segments'])} "
            f"| {_fmt(d[worst]['t'] if worst else None, 1)} ({worst}) "
            f"| {_fmt(m['av_offset']['offset_frames'])} ({m['av_offset']['pairs']}) "
            f"| {_fmt(t.get('wall_mean_s'))} | {_fmt(t.get('carry_mean_s'), 3)} |"
        )
    cfg = results["config"]
    intro = (
        f"# Quality bench\n\npreset `{cfg['preset']}`, {cfg['width']}x{cfg['height']}, {cfg['frames']} frames per "
        f"segment at {cfg['fps']} fps, overlap {cfg['overlap']}, {cfg['segments']} segments, steer at segment "
        f"{cfg['steer_segment']} ({cfg['announcement']}), seed {cfg['seed']}, device {cfg['device']}; "
        f"wall {results['wall_s']:.0f} s.\n\n"
        "Adherence is per attribute (fraction of windows); seam ratios: change across a boundary over the median "
        "change inside segments (1 = invisible), over every boundary but the steer's (`steer seam`: that one); drift: the largest |t| of the per-segment slopes (|t| < 2 is "
        "noise); `reference` is the world's own rendering of the same script (an ideal continuous output); "
        "carry s / segment is the time spent building the next segment's conditioning (the re-encode scheme's "
        "extra cost shows here). Formulas: docs/quality.md.\n\n"
    )
    return intro + "\n".join(lines) + "\n"


def _plots(results: dict[str, Any], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    sessions = results["sessions"]
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for ax, stat in zip(axes.ravel(), DRIFT_PLOTTED, strict=True):
        for name, r in sessions.items():
            v = r["measures"]["drift"].get(stat, {}).get("values", [])
            ax.plot(range(len(v)), v, marker="o", label=name)
        ax.set_title(stat)
        ax.set_xlabel("segment")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "drift.png", dpi=90)
    plt.close(fig)
    files.append("drift.png")

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, key in zip(axes, ("pixel", "warp", "audio_spectral"), strict=True):
        for name, r in sessions.items():
            v = r["measures"]["seams"][key]
            ax.plot(range(1, len(v) + 1), v, marker="o", label=name)
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.set_yscale("log")
        ax.set_title(f"seam ratio: {key}")
        ax.set_xlabel("boundary (before segment)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "seams.png", dpi=90)
    plt.close(fig)
    files.append("seams.png")

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, r in sessions.items():
        if "timing" in r:
            ax.plot(r["timing"]["wall_s"], marker="o", label=name)
    ax.set_xlabel("segment")
    ax.set_ylabel("wall seconds")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "timing.png", dpi=90)
    plt.close(fig)
    files.append("timing.png")
    return files


def contact_sheet(video: np.ndarray, boundaries: list[int], path: Path, title: str) -> None:
    """Rows: one per seam, frames b-2, b-1 | b, b+1 (a red bar marks the seam), scaled to >= 96 px high."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h, w = video.shape[1:3]
    k = max(1, -(-96 // h))
    bar = np.zeros((h * k, max(2, k), 3), dtype=np.uint8)
    bar[..., 0] = 255
    gap = np.full((h * k, max(1, k // 2), 3), 255, dtype=np.uint8)
    rows = []
    for b in boundaries:
        frames = [
            video[min(max(i, 0), len(video) - 1)].repeat(k, 0).repeat(k, 1) for i in (b - 2, b - 1, b, b + 1)
        ]
        rows.append(np.concatenate([frames[0], gap, frames[1], bar, frames[2], gap, frames[3]], axis=1))
        rows.append(np.full((max(2, k), rows[-1].shape[1], 3), 255, dtype=np.uint8))
    sheet = np.concatenate(rows[:-1] or [np.zeros((h, w, 3), np.uint8)], axis=0)
    fig = plt.figure(figsize=(sheet.shape[1] / 80 + 0.5, sheet.shape[0] / 80 + 0.8))
    ax = fig.add_axes((0.0, 0.0, 1.0, 0.92))
    ax.imshow(sheet)
    ax.set_axis_off()
    fig.suptitle(f"{title}: frames b-2, b-1 | b, b+1 at seams {boundaries}", fontsize=8)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def write(results: dict[str, Any], videos: dict[str, np.ndarray], out: Path) -> list[str]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1, sort_keys=False))
    (out / "results.md").write_text(markdown(results))
    files = ["results.json", "results.md", *_plots(results, out)]
    for name, video in videos.items():
        bounds = results["sessions"][name]["measures"]["seams"]["boundaries"]
        contact_sheet(video, bounds, out / f"seams_{name}.png", name)
        files.append(f"seams_{name}.png")
    return files
