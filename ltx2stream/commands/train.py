"""``ltx2stream train``: train the pocket model's parts or export its files (``python -m ltx2stream.pocket``).

    ltx2stream train video-vae --run runs/pocket/video-vae --steps 30000
    ltx2stream train text-cache --out runs/pocket/text --dataset 4096
    ltx2stream train export --runs runs/pocket --out DIR

Everything after ``train`` goes to the pocket trainer (``ltx2stream train video-vae -h`` prints its options).
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "train",
        help="train the pocket model (PART: video-vae | audio | upsampler | transformer), `text-cache`, `export`",
        add_help=False,
    )
    p.add_argument("args", nargs=argparse.REMAINDER)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from ltx2stream.pocket.__main__ import main

    rest = list(args.args)
    if rest and rest[0] not in ("export", "text-cache", "-h", "--help"):
        rest = ["train", *rest]
    return main(rest)
