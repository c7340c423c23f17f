"""Where a latent-carry seam comes from: the model's latents, or the decoder's view of them at a segment's end.

The video decoder is non-causal in time (LTX-2's ``causal_decoder`` False): the last frames of segment N are
decoded with replicated padding where the future would be, while segment N+1 decodes the same carried latents
(bit-identical at stage 2) with their real future. This probe runs ``latent_carry`` sessions on world scenes
(one prompt, no steering), decodes every segment's whole latent, and measures, per boundary, frame differences
D = mean |a − b| (0..255) as seam ratios (D + 0.5) / (median inside D + 0.5), the bench's pixel formula:

* ``shown``: the seam the session shows today (N's last frame → N+1's first new frame);
* ``at_carry``: a cut at the start of the carried span (N shown up to its anchor frame, N+1 from its frame 1:
  the carried span comes from N+1's decode, which sees the span's future);
* ``joint``: N's latents and N+1's new latents decoded as one sequence (the decoder's best case);
* ``tail_gap``: mean |N's decode − N+1's decode| over the carried span's frames (same latents, other context).

    python -m bench.pocket_seams --checkpoint /tmp/pocket-now/pocket.safetensors --scenes 4 --out out/seams
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch


def diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


def inside_median(frames: np.ndarray) -> float:
    return float(np.median([diff(frames[i], frames[i + 1]) for i in range(len(frames) - 1)]))


def ratio(d: float, med: float) -> float:
    return (d + 0.5) / (med + 0.5)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--scenes", type=int, default=4)
    p.add_argument("--segments", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from bench.quality.run import _Sink
    from bench.quality.script import world_script
    from ltx2stream.models.pocket_files import packaged_gemma_270m
    from ltx2stream.pipeline.components import ModelPaths
    from ltx2stream.pipeline.presets import get_preset
    from ltx2stream.session.api import SegmentRequest, SessionSettings
    from ltx2stream.session.continuation import ContinuationOptions
    from ltx2stream.session.controller import SessionController
    from ltx2stream.session.host import PipelineHost

    preset = get_preset("pocket")
    host = PipelineHost(
        ("pocket",), ModelPaths(args.checkpoint, packaged_gemma_270m(), None, None), device="cpu"
    )
    host.warm_up()
    pipe = host.pipeline("pocket")
    k = 1
    settings = SessionSettings("pocket", preset.width, preset.height, preset.fps, preset.frames, k, args.seed)
    span = 8 * k
    rows = []
    for s in range(args.scenes):
        prompt = world_script(args.seed + s, 2, 1, None).prompts[0]
        # the cut before the hold (N+1 decoded from its anchor): the variants below are computed from its latents
        legacy = ContinuationOptions(scheme="latent_carry", hold_frames=0, decode_context=0)
        ctrl = SessionController(pipe, settings, options=legacy)
        sink = _Sink()
        latents, decoded, shown = [], [], []
        for i in range(args.segments):
            before = len(sink.frame_chunks)
            ctrl.run_segment(SegmentRequest(i, prompt, args.seed + i), sink)
            shown.append(np.concatenate(sink.frame_chunks[before:]))
            lat = ctrl.last_result.video_latent
            latents.append(lat)
            decoded.append(np.concatenate(list(pipe.decode_video(lat, 0))))
        for i in range(args.segments - 1):
            a, b = decoded[i], decoded[i + 1]
            f = a.shape[0]
            med = float(np.median([inside_median(x) for x in shown]))
            joint_lat = torch.cat([latents[i], latents[i + 1][:, :, 1 + k :]], dim=2)
            joint = np.concatenate(list(pipe.decode_video(joint_lat, f - 1)))  # frames f-1, f, ...
            row = {
                "scene": s,
                "boundary": i + 1,
                "inside_median_D": med,
                "shown": ratio(diff(a[-1], b[1 + span]), med),
                "at_carry": ratio(diff(a[f - 1 - span], b[1]), med),
                "joint": ratio(diff(joint[0], joint[1]), med),
                "tail_gap_D": float(np.mean([diff(a[f - span + j], b[1 + j]) for j in range(span)])),
                "tail_gap_last_D": diff(a[-1], b[span]),
                "anchor_gap_D": diff(a[f - 1 - span], b[0]),
                "check_shown_is_decode": diff(shown[i + 1][0], b[1 + span]),
            }
            # N+1 decoded with C of N's latents before the tail as its left context (instead of its anchor), and
            # the last h frames of N held back and shown from that decode: seam between N's frame f-1-h and it
            n_lat = latents[i].shape[2]
            for c in range(1, n_lat - k + 1):
                m = n_lat - k - c  # the context starts at N's latent m: J's frame j is N's pixel frame j + 8m
                ctx_lat = torch.cat([latents[i][:, :, m:], latents[i + 1][:, :, 1 + k :]], dim=2)
                J = np.concatenate(list(pipe.decode_video(ctx_lat, 0)))
                for h in (0, span // 2, span, span + 4, span + 8):
                    if f - h - 8 * m < 1:
                        continue
                    row[f"ctx{c}_hold{h}"] = ratio(diff(a[f - 1 - h], J[f - h - 8 * m]), med)
                row[f"ctx{c}_new_vs_joint_D"] = diff(J[f - 8 * m :], joint[1:])
            rows.append(row)
            print(
                json.dumps({key: round(v, 3) if isinstance(v, float) else v for key, v in row.items()}),
                flush=True,
            )
    summary = {
        key: float(np.mean([r[key] for r in rows])) for key in rows[0] if key not in ("scene", "boundary")
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "seams.json").write_text(json.dumps({"rows": rows, "mean": summary}, indent=1))
    print("mean:", json.dumps({key: round(v, 3) for key, v in summary.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
