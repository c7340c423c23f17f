"""Does the pocket transformer read the words of its caption? (docs/pocket.md, session 12)

    python bench/pocket_word_gap.py --run runs/pocket/transformer --clips 48

For training clips 0, 61, 122, ... (their half-size latents from the run's latent cache), the video loss of the
run's current transformer at sigma 0.95 / 0.7 / 0.4 with each clip's own caption, with one shape's colour word
swapped for another colour's (``colour``), and with the background's colour word swapped (``background``); the
same noise for all. Reported separately on the latent cells a shape covers (foreground share > 0.05) and on the
rest. A caption word the model reads raises the loss when it is wrong. The swapped captions are encoded by the
packaged Gemma into ``--text-dir`` (a scratch text cache, not the run's).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import torch

from ltx2stream.models.transformer.positions import (
    patchify_audio,
    patchify_video,
)
from ltx2stream.pocket import __main__ as cli
from ltx2stream.pocket.spec import PocketSpec
from ltx2stream.pocket.trainer import load_state
from ltx2stream.world import words as W


def swap(caption: str, table: W.Words, salt: int) -> str | None:
    """The first word of ``table``'s training synonyms found in ``caption``, replaced by the synonym at the same
    position of another entry (which one: ``salt``); None if no entry's word is in the caption."""
    for name, (train, _) in table.items():
        for i, word in sorted(enumerate(train), key=lambda x: -len(x[1])):
            m = re.search(r"\b" + re.escape(word) + r"\b", caption)
            if m:
                others = [n for n in table if n != name]
                other = table[others[salt % len(others)]][0]
                return caption[: m.start()] + other[min(i, len(other) - 1)] + caption[m.end() :]
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, default=Path("runs/pocket/transformer"))
    ap.add_argument("--clips", type=int, default=48)
    ap.add_argument("--dataset", type=int, default=4096)
    ap.add_argument("--text-dir", type=Path, default=Path("/tmp/pocket-word-gap-text"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    spec = PocketSpec()
    parsed = cli._parser().parse_args(["train", "transformer", "--run", str(args.run), "--text-cache",
                                       str(args.text_dir), "--dataset", str(args.dataset)])  # fmt: skip
    task = cli.build_task(parsed, spec)
    state = load_state(args.run)
    if state is None:
        print(f"error: no state.pt in {args.run}", file=sys.stderr)
        return 2
    for name, module in task.modules().items():
        module.load_state_dict(state["modules"][name], strict=True)
    samples = [task.latents.get(i, True) for i in range(0, args.dataset, 61)[: args.clips]]
    rows = [(x, x.caption, swap(x.caption, W.COLOUR, k), swap(x.caption, W.BACKGROUND, k))
            for k, x in enumerate(samples)]  # fmt: skip
    rows = [r for r in rows if r[2] and r[3]]
    samples = [r[0] for r in rows]
    b = len(samples)
    print(f"step {state['step']}, {b} clips; e.g. {rows[0][1]!r} -> {rows[0][2]!r} / {rows[0][3]!r}")
    x0v = patchify_video(torch.stack([x.video for x in samples]))
    x0a = patchify_audio(torch.stack([x.audio for x in samples]))
    fg = torch.stack([x.fg for x in samples if x.fg is not None]).reshape(b, -1) > 0.05
    _, frames, h, w = samples[0].video.shape
    gen = torch.Generator().manual_seed(0)
    ev, ea = torch.randn(x0v.shape, generator=gen), torch.randn(x0a.shape, generator=gen)
    contexts = {name: task.projection(*task.text.batch([r[j] for r in rows]))
                for j, name in ((1, "own"), (2, "colour"), (3, "background"))}  # fmt: skip
    print("| sigma | caption | loss on shape cells | loss elsewhere |\n|---|---|---|---|")
    with torch.no_grad():
        for sig in (0.95, 0.7, 0.4):
            xv, xa = x0v + sig * (ev - x0v), x0a + sig * (ea - x0a)
            for name, ctx in contexts.items():
                vv, _ = task.predict_text_only(xv, xa, sig, ctx, (frames, h, w))
                err = (vv - (ev - x0v)).pow(2).mean(-1)
                print(f"| {sig} | {name} | {float(err[fg].mean()):.4f} | {float(err[~fg].mean()):.4f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
