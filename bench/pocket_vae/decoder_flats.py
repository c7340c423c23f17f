"""Pocket video VAE diagnosis (docs/pocket.md, "Video VAE recipe"): single 64x64 frames, 1 thread."""

import sys

import torch

from ltx2stream.pocket.spec import PocketSpec

torch.set_num_threads(1)

lr = float(sys.argv[1])
base = int(sys.argv[2])
outmul = float(sys.argv[3])
fan = int(sys.argv[4])
vae = PocketSpec(vae_decoder_base=base).build("video_vae", 0)
dec = vae.decoder
cols = torch.tensor([[-1.0, -1, -1], [1, 1, 1], [1, -1, -1], [-1, 1, -1], [0, 0, 0], [0.5, 0.2, -0.3]])
flat = cols[:, :, None, None, None].expand(6, 3, 1, 64, 64).contiguous()
z = torch.randn(6, 128, 1, 2, 2, generator=torch.Generator().manual_seed(0)) * 0.25
with torch.no_grad():
    dec.conv_out.conv.weight.mul_(outmul)
gr = {}
for p in dec.parameters():
    gr.setdefault(lr * min(1, fan / p[0].numel()) if (fan and p.dim() > 1) else lr, []).append(p)
opt = torch.optim.AdamW([{"params": v, "lr": k} for k, v in gr.items()], betas=(0.9, 0.99), weight_decay=0)
for i in range(150):
    r = dec(z)
    l1 = (r - flat).abs().mean()
    l = l1 + (r - flat).pow(2).mean()
    opt.zero_grad()
    l.backward()
    torch.nn.utils.clip_grad_norm_(dec.parameters(), 1.0)
    opt.step()
    if (i + 1) % 25 == 0:
        print(
            sys.argv[1:],
            i + 1,
            round(l1.item(), 4),
            [round((r[k].mean(dim=(1, 2, 3)) - cols[k]).abs().mean().item(), 3) for k in range(6)],
            flush=True,
        )
