"""Shared bench output: a header (machine, preset, size, frames, steps, warm-up), JSON, markdown and PNG plots.

Every scenario in bench/ ends with ``write_report(name, header, rows, plots)``. It writes, under ``--out``
(default ``bench/results``):

* ``<name>.json``: ``{"header": {...}, "rows": [...], "summary": {...}}``;
* ``<name>.md``: the header as a list, then the rows as a table, then the summary;
* ``<name>*.png``: one file per plot when matplotlib (the ``bench`` extra) is installed; skipped otherwise
  (the JSON and markdown are always written).

Timings on a shared CPU are noisy: scenarios interleave their variants (A, B, A, B, ...) and report medians.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """What ran the bench: CPU model, core count, load, torch build and threads, git commit."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "commit": commit,
        "utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
    }


def header(**fields: Any) -> dict[str, Any]:
    """The report header: the scenario's own fields (preset, size, frames, steps, warm-up, ...) + machine."""
    return {**fields, "machine": machine(), "argv": " ".join(sys.argv)}


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


def median_interval(xs: Sequence[float], level: float = 0.95, resamples: int = 2000) -> tuple[float, float]:
    """A bootstrap percentile interval of the median of ``xs`` (seeded: the same data give the same interval).
    Per-repeat ratios on a shared 2-core machine scatter by ±10 %; this says what a median of a few repeats can
    and cannot resolve."""
    import numpy as np

    if len(xs) < 2:
        return (float("nan"), float("nan"))
    data = np.asarray(xs, dtype=np.float64)
    rng = np.random.default_rng(0)
    meds = np.median(data[rng.integers(0, len(data), (resamples, len(data)))], axis=1)
    lo, hi = np.quantile(meds, [(1 - level) / 2, (1 + level) / 2])
    return (float(lo), float(hi))


@dataclass
class Plot:
    """One PNG: ``draw(ax)`` fills a matplotlib Axes; the file is ``<name>-<suffix>.png``."""

    suffix: str
    title: str
    draw: Callable[[Any], None]
    xlabel: str = ""
    ylabel: str = ""


@dataclass
class Report:
    name: str
    header: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    plots: list[Plot] = field(default_factory=list)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def markdown(report: Report) -> str:
    lines = [f"# {report.name}", ""]
    for k, v in report.header.items():
        if isinstance(v, dict):
            lines.append(f"- **{k}**: " + ", ".join(f"{a}={_fmt(b)}" for a, b in v.items()))
        else:
            lines.append(f"- **{k}**: {_fmt(v)}")
    if report.rows:
        cols = list(dict.fromkeys(k for r in report.rows for k in r))
        lines += ["", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |" for r in report.rows]
    if report.summary:
        lines += ["", "## Summary", ""]
        lines += [f"- **{k}**: {_fmt(v)}" for k, v in report.summary.items()]
    return "\n".join(lines) + "\n"


def write_report(report: Report, out: Path = DEFAULT_OUT) -> list[Path]:
    """Write JSON + markdown (+ PNGs when matplotlib is installed); returns the written paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / f"{report.name}.json", out / f"{report.name}.md"]
    payload = {"header": report.header, "rows": report.rows, "summary": report.summary}
    written[0].write_text(json.dumps(payload, indent=2, default=str) + "\n")
    written[1].write_text(markdown(report))
    written += _plots(report, out)
    for p in written:
        print(f"wrote {p}")
    return written


def _plots(report: Report, out: Path) -> list[Path]:
    if not report.plots:
        return []
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed (pip install -e '.[bench]'): PNG plots skipped")
        return []
    paths = []
    m = report.header.get("machine", {})
    sub = f"{m.get('cpu', '')} · {m.get('cores', '?')} cores · load {m.get('load_avg_1m', '?')}"
    for plot in report.plots:
        fig, ax = plt.subplots(figsize=(7, 4))
        plot.draw(ax)
        ax.set_title(f"{plot.title}\n{sub}", fontsize=9)
        ax.set_xlabel(plot.xlabel)
        ax.set_ylabel(plot.ylabel)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = out / f"{report.name}-{plot.suffix}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths
