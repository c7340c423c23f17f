"""Command line: ``ltx2stream <command>``."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from ltx2stream.errors import LTX2StreamError


def _cmd_info(args: argparse.Namespace) -> int:
    from ltx2stream.models.identify import describe

    print(json.dumps(describe(args.checkpoint), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ltx2stream", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)
    info = sub.add_parser(
        "info", help="describe checkpoint files: which model (LTX-2 / 2.3 / 2.5) and components they hold"
    )
    info.add_argument(
        "checkpoint", nargs="+", help="single-file checkpoint(s), split component files or a split directory"
    )
    info.set_defaults(func=_cmd_info)
    presets = sub.add_parser("presets", help="list the pipeline presets")
    presets.set_defaults(func=_cmd_presets)
    from ltx2stream.commands import client, demo, generate, render, serve, train

    for module in (demo, generate, render, serve, client, train):
        module.register(sub)
    return p


def _cmd_presets(args: argparse.Namespace) -> int:
    from ltx2stream.pipeline.presets import PRESETS

    for p in PRESETS.values():
        stages = "two-stage" if p.two_stage else "one-stage"
        print(
            f"{p.name:22s} {p.flavour:7s} {stages:9s} {p.width}x{p.height} {p.frames}f@{p.fps:g}  {p.notes}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args))
    except LTX2StreamError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
