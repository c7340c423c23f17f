"""The native AAC encoder's two coders side by side: CPU per second of audio and waveform SNR (issue #13).

    python bench/bench_aac.py                       # 24 and 48 kHz stereo, 128 kbit/s, 12 interleaved repeats
    python bench/bench_aac.py --rates 24000 --repeats 5

The server's audio (the vocoder's 24 kHz stereo at 128 kbit/s) goes through FFmpeg's native AAC-LC encoder in
the encoder process, on the same cores as the model on a CPU host. Per repeat and sample rate each coder
(``fast``, the media layer's choice, and ``twoloop``, FFmpeg's default) encodes the same 2.75 s signal (one
bench-preset segment: tones of 110, 440 and 1 230 Hz, the last gated, plus faint noise) in 1 024-sample frames;
the order alternates between repeats. Reported: CPU milliseconds (``time.process_time``) per second of audio,
and the SNR of the decoded waveform against the input after the best alignment (a waveform measure, not a
perceptual one).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import DEFAULT_OUT, Report, header, median, write_report

from ltx2stream.media import codecs

CODERS = codecs.AAC_CODERS
SECONDS = 2.75  # one bench-preset segment: 33 frames at 12 fps


def signal(rate: int) -> np.ndarray:
    t = np.arange(int(rate * SECONDS)) / rate
    gate = (t % 0.5) < 0.25
    noise = 0.02 * np.random.default_rng(0).standard_normal(t.size)
    x = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 1230 * t) * gate
    x = (x + 0.1 * np.sin(2 * np.pi * 110 * t) + noise).astype(np.float32)
    return np.stack([x, 0.8 * x])


def encode(x: np.ndarray, rate: int, coder: str | None, bit_rate: int = 128_000) -> tuple[float, np.ndarray]:
    """CPU seconds of the encode through the media layer's encoder (``coder`` None: its default), and the
    decoded waveform."""
    enc = codecs.open_audio_encoder(rate, "stereo", bit_rate, coder)
    frames = []
    for i in range(0, x.shape[1] - 1024 + 1, 1024):
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(x[:, i : i + 1024]), format="fltp", layout="stereo"
        )
        frame.sample_rate, frame.pts = rate, i
        frames.append(frame)
    t0 = time.process_time()
    packets = [p for f in frames for p in enc.encode(f)] + list(enc.encode(None))
    cpu = time.process_time() - t0
    dec = av.CodecContext.create("aac", "r")
    dec.extradata = enc.extradata
    return cpu, np.concatenate([f.to_ndarray() for p in packets for f in dec.decode(p)], axis=1)


def snr_db(x: np.ndarray, y: np.ndarray) -> float:
    m = x.shape[1] - 4096
    errs = [float(((y[:, d : d + m] - x[:, :m]) ** 2).sum()) for d in range(2049)]
    return 10 * math.log10(float((x[:, :m] ** 2).sum()) / max(min(errs), 1e-12))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", type=int, nargs="+", default=[24000, 48000])
    ap.add_argument("--bit-rate", type=int, default=128_000)
    ap.add_argument("--repeats", type=int, default=12)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    rows: list[dict[str, Any]] = []
    for rate in args.rates:
        x = signal(rate)
        encode(x, rate, "fast", args.bit_rate)  # warm-up: the codec's tables
        snr = {c: snr_db(x, encode(x, rate, c, args.bit_rate)[1]) for c in CODERS}
        for r in range(args.repeats):
            for coder in CODERS if r % 2 == 0 else CODERS[::-1]:
                cpu, _ = encode(x, rate, coder, args.bit_rate)
                rows.append({"rate": rate, "repeat": r, "coder": coder, "cpu_ms_per_s": 1000 * cpu / SECONDS,
                             "snr_db": snr[coder]})  # fmt: skip
    summary: dict[str, Any] = {}
    for rate in args.rates:
        per = {
            c: median([r["cpu_ms_per_s"] for r in rows if r["rate"] == rate and r["coder"] == c])
            for c in CODERS
        }
        for c in CODERS:
            summary[f"{rate}_{c}_cpu_ms_per_s"] = per[c]
            summary[f"{rate}_{c}_snr_db"] = next(
                r["snr_db"] for r in rows if r["rate"] == rate and r["coder"] == c
            )
        summary[f"{rate}_twoloop_over_fast"] = per["twoloop"] / per["fast"]
    report = Report(
        "aac-coders",
        header(rates=args.rates, bit_rate=args.bit_rate, channels=2, seconds=SECONDS, repeats=args.repeats,
               warmup="one encode per rate"),
        rows,
        summary,
    )  # fmt: skip
    write_report(report, args.out)
    for k, v in summary.items():
        print(f"{k}: {v:.2f}")


if __name__ == "__main__":
    main()
