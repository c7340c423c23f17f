"""Pocket video VAE diagnosis (docs/pocket.md, "Video VAE recipe"): single 64x64 frames, 1 thread."""

import argparse
import time

import torch

from ltx2stream.models.video_vae.blocks import ResnetBlock3D
from ltx2stream.models.video_vae.sampling import DepthToSpaceUpsample, SpaceToDepthDownsample
from ltx2stream.pocket.spec import PocketSpec
from ltx2stream.pocket.tasks_codec import VideoVAETask, encoder_moments
from ltx2stream.pocket.world_source import WorldSource

torch.set_num_threads(1)

p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, default=1e-4)
p.add_argument("--fanin", type=int, default=0)  # ref fan-in; 0=off
p.add_argument("--wd", type=float, default=0.0)
p.add_argument("--zero", default="")  # d(own) u(p) r(es)
p.add_argument("--bias", type=float, default=0.0)
p.add_argument("--noise", type=float, default=0.05)
p.add_argument("--base", type=int, default=8)
p.add_argument("--norm", default="pixel_norm")
p.add_argument("--steps", type=int, default=200)
p.add_argument("--batch", type=int, default=4)
p.add_argument("--warm", type=int, default=20)
p.add_argument("--png", default="")
a = p.parse_args()
spec = PocketSpec(vae_decoder_base=a.base)
src = WorldSource()
task = VideoVAETask(spec, src, views=((1.0, 0.25, 1),), batch=a.batch)
if a.norm != "pixel_norm":
    import ltx2stream.models.video_vae as VV

    md = spec.vae_metadata()
    md["norm_layer"] = a.norm
    from ltx2stream.models.video_vae.config import VideoVAEConfig

    torch.manual_seed(0)
    task.vae = VV.VideoVAE(VideoVAEConfig.from_metadata(md)).float().train()
vae = task.vae
with torch.no_grad():
    for m in vae.modules():
        if "d" in a.zero and isinstance(m, SpaceToDepthDownsample):
            m.conv.conv.weight.zero_()
            m.conv.conv.bias.zero_()
        if "u" in a.zero and isinstance(m, DepthToSpaceUpsample) and m.residual:
            m.conv.conv.weight.zero_()
            m.conv.conv.bias.zero_()
        if "r" in a.zero and isinstance(m, ResnetBlock3D):
            m.conv2.conv.weight.zero_()
            m.conv2.conv.bias.zero_()
if a.bias:
    with torch.no_grad():
        vae.encoder.conv_in.conv.bias.normal_(0, a.bias)
        vae.decoder.conv_in.conv.bias.normal_(0, a.bias)
groups = {}
for n, q in vae.named_parameters():
    lr = a.lr
    if a.fanin and q.dim() > 1:
        fi = q[0].numel()
        lr = a.lr * min(1.0, a.fanin / fi)
    groups.setdefault(lr, []).append(q)
opt = torch.optim.AdamW(
    [{"params": v, "lr": k, "base": k} for k, v in groups.items()], betas=(0.9, 0.99), weight_decay=a.wd
)
cols = torch.tensor([[-1.0, -1, -1], [1, 1, 1], [1, -1, -1], [-1, 1, -1], [0, 0, 0], [0.5, 0.2, -0.3]])
flat = cols[:, :, None, None, None].expand(6, 3, 1, 64, 64).contiguous()
world = VideoVAETask(PocketSpec(), src, views=((1.0, 0.25, 1),), batch=6).pixels(
    torch.Generator().manual_seed(777)
)
mc = (world - world.mean(dim=(2, 3, 4), keepdim=True)).abs().mean().item()


def ev():
    with torch.no_grad():
        r = []
        for x in (flat, world):
            m, _ = encoder_moments(vae, x)
            r.append(round((vae.decoder(m) - x).abs().mean().item(), 4))
        return r


print(vars(a), "world meancolour", round(mc, 4), "eval0", ev(), flush=True)
t = time.time()
h = []
for i in range(a.steps):
    for g in opt.param_groups:
        g["lr"] = g["base"] * min(1, (i + 1) / a.warm)
    gen = torch.Generator().manual_seed(1000 + i)
    px = task.pixels(gen)
    m, _ = encoder_moments(vae, px)
    z = m + a.noise * torch.randn(m.shape, generator=gen)
    r = vae.decoder(z)
    l1 = (r - px).abs().mean()
    l = l1 + (r - px).pow(2).mean()
    opt.zero_grad()
    l.backward()
    torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
    opt.step()
    h.append(l1.item())
    if (i + 1) % 25 == 0:
        with torch.no_grad():
            mag = m.abs().mean().item()
        print(
            i + 1,
            "train",
            round(sum(h[-25:]) / 25, 4),
            "eval flat,world",
            ev(),
            "|z|",
            round(mag, 3),
            round(time.time() - t),
            "s",
            flush=True,
        )

if a.png:
    import numpy as np
    from PIL import Image

    with torch.no_grad():
        m, _ = encoder_moments(vae, world)
        rec = vae.decoder(m)
    mean_err = (rec.mean(dim=(2, 3, 4)) - world.mean(dim=(2, 3, 4))).abs().mean().item()
    print("mean-colour error of the reconstruction", round(mean_err, 4), flush=True)
    grid = torch.cat([torch.cat(list(world[:, :, 0]), dim=2), torch.cat(list(rec[:, :, 0]), dim=2)], dim=1)
    img = ((grid.clamp(-1, 1) + 1) * 127.5).byte().permute(1, 2, 0).numpy()
    Image.fromarray(np.ascontiguousarray(img)).resize((img.shape[1] * 2, img.shape[0] * 2)).save(a.png)
