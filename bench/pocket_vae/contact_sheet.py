"""Pocket video VAE contact sheet: 4 world frames (256x256, frame 8 of 9) beside their reconstructions.

    PYTHONPATH=$PWD python bench/pocket_vae/contact_sheet.py runs/pocket/video-vae-nonorm/state.pt out.png

Prints the L1 of each reconstruction and, beside it, the L1 of the frame's mean colour (the baseline).
"""

import sys

import numpy as np
import torch
from PIL import Image

from ltx2stream.pocket.spec import PocketSpec
from ltx2stream.pocket.tasks_codec import encoder_moments
from ltx2stream.pocket.world_source import WorldSource

torch.set_num_threads(1)
vae = PocketSpec().build("video_vae", 0).float().eval()
state = torch.load(sys.argv[1], map_location="cpu", weights_only=False)
vae.load_state_dict(state["modules"]["video_vae"])
print("step", state["step"])
source = WorldSource()
rows, errors = [], []
for i in range(4):
    x = source.clip(100000 + i * 7, frames=9, height=256, width=256, fps=12.0).video()
    with torch.no_grad():
        means, _ = encoder_moments(vae, x)
        recon = vae.decoder(means)
    errors.append(
        (
            round((recon - x).abs().mean().item(), 4),
            round((x - x.mean(dim=(2, 3, 4), keepdim=True)).abs().mean().item(), 4),
        )
    )
    rows.append(torch.cat([x[0, :, 8], recon[0, :, 8].clamp(-1, 1)], dim=2))
print("L1 (reconstruction, mean colour) per frame:", errors)
img = ((torch.cat(rows, dim=1) + 1) * 127.5).byte().permute(1, 2, 0).numpy()
Image.fromarray(np.ascontiguousarray(img)).save(sys.argv[2])
