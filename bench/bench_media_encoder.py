"""Benchmark the session media encoder: per-frame encode cost, time to first media bytes, segment sizes.

    python bench/bench_media_encoder.py                      # 768x512 and 1536x1024, gradient + noise
    python bench/bench_media_encoder.py --sizes 768x512 --content noise --segments 3

Per size and content: the encoder is built (init probe included), then ``--segments`` segments of
``--frames`` frames are fed in chunks of ``--chunk`` (as the progressive decoder would) with 24 fps worth of
48 kHz stereo audio per segment. Reported: construction time, ms per frame for ``add_video`` (RGB->YUV +
x264) and realtime factor, time from a segment's first ``add_video`` call to its first media bytes out of
``drain()`` (the latency this layer adds), ``flush_segment`` time and the bitrate. Frames are generated before
timing. ``gradient`` is a moving colour gradient (smooth, easy); ``noise`` is uniform noise (worst case).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from ltx2stream.media import SessionEncoder

FPS, SR = 24, 48000


def make_frames(kind: str, n: int, height: int, width: int, offset: int) -> np.ndarray:
    """uint8 [n, height, width, 3]: a gradient drifting 3 px per frame, or uniform noise."""
    if kind == "noise":
        return np.random.default_rng(offset).integers(0, 256, (n, height, width, 3), dtype=np.uint8)
    y, x = np.mgrid[0:height, 0:width]
    frames = np.empty((n, height, width, 3), np.uint8)
    for i in range(n):
        t = 3 * (offset + i)
        frames[i, ..., 0] = (x + t) * 255 // width % 256
        frames[i, ..., 1] = (y + t) * 255 // height % 256
        frames[i, ..., 2] = ((x + y) // 4 + t) % 256
    return frames


def run(width: int, height: int, kind: str, frames: int, chunk: int, segments: int) -> dict[str, float]:
    start = time.perf_counter()
    enc = SessionEncoder(width, height, FPS, SR)
    setup_s = time.perf_counter() - start
    per_frame, first_bytes, flush, total_bytes = [], [], [], 0
    audio = np.zeros((2, frames * SR // FPS), np.float32)
    for index in range(segments):
        clip = make_frames(kind, frames, height, width, index * frames)
        seg_start = time.perf_counter()
        got_first = False
        for i in range(0, frames, chunk):
            t0 = time.perf_counter()
            enc.add_video(clip[i : i + chunk])
            per_frame.append((time.perf_counter() - t0) / len(clip[i : i + chunk]))
            data = enc.drain()
            if data and not got_first:
                first_bytes.append(time.perf_counter() - seg_start)
                got_first = True
        enc.add_audio(audio)
        t0 = time.perf_counter()
        total_bytes += len(enc.flush_segment(index).data)
        flush.append(time.perf_counter() - t0)
    enc.close()
    ms = statistics.median(per_frame) * 1000
    return {
        "setup_ms": setup_s * 1000,
        "ms_per_frame": ms,
        "fps": 1000 / ms,
        "realtime_x": 1000 / ms / FPS,
        "first_bytes_ms": statistics.median(first_bytes) * 1000,
        "flush_ms": statistics.median(flush) * 1000,
        "mbit_s": total_bytes * 8 / (segments * frames / FPS) / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", nargs="+", default=["768x512", "1536x1024"], help="WIDTHxHEIGHT")
    parser.add_argument("--content", nargs="+", default=["gradient", "noise"], choices=["gradient", "noise"])
    parser.add_argument("--frames", type=int, default=49, help="frames per segment")
    parser.add_argument("--chunk", type=int, default=8, help="frames per add_video call")
    parser.add_argument("--segments", type=int, default=2)
    args = parser.parse_args()
    print(
        f"{'size':>10} {'content':>8} {'setup ms':>9} {'ms/frame':>9} {'fps':>7} {'x rt':>6} "
        f"{'1st bytes ms':>12} {'flush ms':>9} {'Mbit/s':>7}"
    )
    for size in args.sizes:
        width, height = (int(v) for v in size.split("x"))
        for kind in args.content:
            r = run(width, height, kind, args.frames, args.chunk, args.segments)
            print(
                f"{size:>10} {kind:>8} {r['setup_ms']:9.1f} {r['ms_per_frame']:9.2f} {r['fps']:7.1f} "
                f"{r['realtime_x']:6.2f} {r['first_bytes_ms']:12.1f} {r['flush_ms']:9.2f} {r['mbit_s']:7.2f}"
            )


if __name__ == "__main__":
    main()
