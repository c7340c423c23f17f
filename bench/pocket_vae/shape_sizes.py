"""What the pocket video VAE keeps of a shape, by the shape's size (docs/pocket.md, session 12).

    PYTHONPATH=$PWD python bench/pocket_vae/shape_sizes.py --codecs runs/pocket/transformer/codecs.pt \
        --radii 0.09,0.12,0.16,0.2,0.25 --clips 16

World clips (``sample_clip_spec(5000 + i)``, no events, 9 frames at 256x256) with every shape's radius forced to
each value, encoded and decoded by the VAE the transformer run froze (``codecs.pt``), both the clip and its
reconstruction read by the quality scorer (``read_video``). Per radius: the share of shapes whose kind the scorer
reads (most frames) in the original and in the reconstruction, and the share still found by colour in at least
half of the reconstructed frames. The world draws radii of 0.09-0.14 frame heights; one latent cell is 32 px,
0.125 frame heights at 256 px.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ltx2stream import world
from ltx2stream.pocket.spec import PocketSpec
from ltx2stream.quality import read_video


def _kind(readings: Sequence[Any], colour: str) -> str | None:
    kinds = [f.by_colour()[colour].kind for f in readings if colour in f.by_colour()]
    return Counter(kinds).most_common(1)[0][0] if kinds else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--codecs", type=Path, required=True, help="a transformer run's codecs.pt")
    ap.add_argument("--radii", default="0.09,0.12,0.16,0.2,0.25")
    ap.add_argument("--clips", type=int, default=16)
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args()
    torch.set_num_threads(1)
    vae = PocketSpec().build("video_vae", 0).eval()
    vae.load_state_dict(torch.load(args.codecs, map_location="cpu", weights_only=True)["video_vae"])
    print(
        "| radius (frame heights) | shapes | kind read, original | kind read, reconstruction | found by colour |"
    )
    print("|---|---|---|---|---|")
    for r in (float(x) for x in args.radii.split(",")):
        n = kind_truth = kind_rec = found = 0
        for i in range(args.clips):
            spec = world.sample_clip_spec(5000 + i, duration_s=3.0, max_events=0)
            spec = replace(spec, shapes=tuple(replace(s, radius=r) for s in spec.shapes))
            clip = world.render_clip(spec, 9, args.size, args.size, 12.0)
            x = torch.from_numpy(np.ascontiguousarray(clip.video)).float().div(127.5).sub(1.0)
            with torch.no_grad():
                rec = vae.decode(vae.encode(x.permute(3, 0, 1, 2)[None]))
            pixels = ((rec[0].permute(1, 2, 3, 0).clamp(-1, 1) + 1) * 127.5).round().byte().numpy()
            truth, recon = read_video(clip.video), read_video(pixels)
            for s in spec.shapes:
                n += 1
                kind_truth += _kind(truth, s.colour) == s.kind
                kind_rec += _kind(recon, s.colour) == s.kind
                found += 2 * sum(s.colour in f.by_colour() for f in recon) >= len(recon)
        print(f"| {r:.2f} | {n} | {kind_truth / n:.2f} | {kind_rec / n:.2f} | {found / n:.2f} |", flush=True)


if __name__ == "__main__":
    main()
