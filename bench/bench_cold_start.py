"""Cold start: ``ltx2stream serve`` from process start to ``/readyz`` 200, then a new session's first media byte.

    python bench/bench_cold_start.py --preset tiny-ltx2 --repeats 3
    python bench/bench_cold_start.py --preset tiny-ltx2 --repeats 1     # smoke

Each repeat starts a fresh server process (``python -c "from ltx2stream.cli import main; main()" serve``, the
same as the ``ltx2stream`` command), polls ``GET /readyz`` every 50 ms, then runs one session with the bench
client (a separate process) and records ``open`` -> first ``media`` piece and ``open`` -> first
``segment_done``. The server is stopped with SIGTERM between repeats. Page cache: the first repeat may read the
Python packages from disk; later ones find them cached (both are reported).
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import DEFAULT_OUT, Plot, Report, header, median, write_report
from streamed import SegmentTimes, client_command, load, settings_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, ConnectionError, OSError):
        return False


def one(preset: str, timeout_s: float) -> dict[str, Any]:
    port = free_port()
    settings = settings_for(preset)
    with tempfile.TemporaryDirectory() as store:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", "from ltx2stream.cli import main; main()", "serve", "--preset", preset,
             "--port", str(port), "--store-dir", store, "--web-root", "none"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            while not ready(port):
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"serve exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}"
                    )
                if time.perf_counter() - t0 > timeout_s:
                    raise TimeoutError(f"/readyz not 200 after {timeout_s} s")
                time.sleep(0.05)
            ready_s = time.perf_counter() - t0
            t_open = time.perf_counter()
            out = subprocess.run(
                client_command(port, settings, 1, 1),
                capture_output=True,
                text=True,
                check=True,
                timeout=timeout_s,
            ).stdout
            result = json.loads(out.strip().splitlines()[-1])[0]
            seg = SegmentTimes(**result["times"][0])
            opened = float(result["opened"])
            return {
                "ready_s": ready_s,
                "first_media_s": seg.first_media - opened,
                "first_segment_done_s": seg.done - opened,
                "client_start_s": opened - t_open,
            }
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="tiny-ltx2")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    settings = settings_for(args.preset)
    load_before = load()
    rows = []
    for r in range(args.repeats):
        row = {"repeat": r, **one(args.preset, args.timeout), "load_1m": load()[0]}
        rows.append(row)
        print(row, flush=True)
    summary = {
        "median_ready_s": round(median([r["ready_s"] for r in rows]), 3),
        "median_first_media_s": round(median([r["first_media_s"] for r in rows]), 3),
        "median_first_segment_done_s": round(median([r["first_segment_done_s"] for r in rows]), 3),
        "first_repeat_ready_s": round(rows[0]["ready_s"], 3),
        "load_before_after": f"{load_before} / {load()}",
    }
    report = Report(
        f"cold-start-{args.preset}",
        header(preset=args.preset, size=f"{settings.width}x{settings.height}", frames=settings.frames,
               fps=settings.fps, steps="preset", warmup="none (a fresh process per repeat)",
               repeats=args.repeats, server="ltx2stream serve (default thread budget)"),
        rows,
        summary,
    )  # fmt: skip

    def draw(ax: Any) -> None:
        xs = [r["repeat"] for r in rows]
        ax.plot(xs, [r["ready_s"] for r in rows], "o-", label="start -> /readyz 200")
        ax.plot(xs, [r["first_media_s"] for r in rows], "s-", label="open -> first media byte")
        ax.legend()

    report.plots.append(Plot("cold-start", "cold start per repeat", draw, "repeat", "s"))
    write_report(report, args.out)


if __name__ == "__main__":
    main()
