"""What storing the state after every delivered segment costs, next to the segment itself (tiny model, CPU).

    .venv/bin/python bench/bench_persist.py [--segments 12] [--preset tiny-ltx2] [--size 64] [--frames 17]
        [--store-dir DIR]

The server stores each delivered segment's continuation state in a thread of its own (``persist_every_segment``),
so the worker never waits for it; what the write can take from the stream is its own time and the CPU it
competes for. Measured side by side on one session, after one warm-up segment, segments alternating (interleaved
repeats) between two arms:

* ``off``: the segment alone (``run_segment`` + ``snapshot``, as the worker does);
* ``on``: the same, and the previous segment's state written by ``SessionStore.save`` in a background thread
  started as the segment starts (what the server does: atomic temp file, fsync, rename, directory fsync, the
  parse and checksum check before writing).

Prints per-segment times, the write's own wall time, and the overhead: median write time / median segment time
(the bound the issue sets: <= 2 %), and the median segment time of ``on`` over ``off`` (interference; noisy on a
shared machine — state the load). Exits non-zero when the write/segment ratio exceeds --max-ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--segments", type=int, default=12, help="timed segments (half per arm), after 1 warm-up")
    ap.add_argument("--preset", default="tiny-ltx2")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--frames", type=int, default=17)
    ap.add_argument("--fps", type=float, default=12.0)
    ap.add_argument("--overlap", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--store-dir", type=Path, default=None, help="store root (default: a temp dir in cwd)")
    ap.add_argument("--max-ratio", type=float, default=0.02)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from ltx2stream.session.api import NullSink, SegmentRequest, SessionSettings
    from ltx2stream.session.host import PipelineHost
    from ltx2stream.session.store import SessionStore

    host = PipelineHost((args.preset,))
    host.warm_up()
    settings = SessionSettings(args.preset, args.size, args.size, args.fps, args.frames, args.overlap, 1)
    controller = host.open_session(settings)
    root = args.store_dir or Path(tempfile.mkdtemp(prefix="bench-persist-", dir=os.getcwd()))
    store = SessionStore(root)

    def segment(i: int) -> tuple[float, bytes]:
        t0 = time.perf_counter()
        controller.run_segment(SegmentRequest(i, "waves on a pier", 100 + i), NullSink())
        state = controller.snapshot()
        return time.perf_counter() - t0, state

    _, state = segment(0)  # warm-up
    seg = {"on": [], "off": []}
    writes: list[float] = []
    sizes: list[int] = []
    for i in range(1, args.segments + 1):
        arm = "on" if i % 2 else "off"
        writer = None
        if arm == "on":
            index, data = i - 1, state

            def write(index: int = index, data: bytes = data) -> None:
                t0 = time.perf_counter()
                store.save("bench-persist-session", index, data)
                writes.append(time.perf_counter() - t0)
                sizes.append(len(data))

            writer = threading.Thread(target=write)
            writer.start()
        seconds, state = segment(i)
        if writer is not None:
            writer.join()
        seg[arm].append(seconds)
        print(
            f"segment {i:3d} {arm:>3}: {seconds * 1e3:8.1f} ms"
            + (f"   write {writes[-1] * 1e3:6.2f} ms" if arm == "on" else "")
        )

    med_on, med_off = statistics.median(seg["on"]), statistics.median(seg["off"])
    med_write = statistics.median(writes)
    ratio = med_write / statistics.median(seg["on"] + seg["off"])
    print(
        f"\npreset {args.preset} {args.size}x{args.size}x{args.frames} overlap {args.overlap}, threads {args.threads}, "
        f"load {os.getloadavg()[0]:.2f}"
    )
    print(
        f"state {statistics.median(sizes) / 1024:.1f} KiB; write median {med_write * 1e3:.2f} ms (max {max(writes) * 1e3:.2f})"
    )
    print(
        f"segment median: off {med_off * 1e3:.1f} ms, on {med_on * 1e3:.1f} ms (on/off {med_on / med_off:.3f})"
    )
    print(f"write / segment = {ratio * 100:.2f} % (bound {args.max_ratio * 100:.0f} %)")
    return 0 if ratio <= args.max_ratio else 1


if __name__ == "__main__":
    raise SystemExit(main())
