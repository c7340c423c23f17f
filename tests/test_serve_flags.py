"""``serve``'s continuation flags: they reach the sessions' options, and bad values stop it before it serves."""

from __future__ import annotations

import argparse

import pytest

from ltx2stream.cli import main
from ltx2stream.commands.serve import _options, register


def _args(*flags: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return parser.parse_args(["serve", *flags])


def test_the_cut_flags_reach_the_continuation_options() -> None:
    default = _options(_args())
    assert (default.hold_frames, default.decode_context) == (8, 2)
    mine = _options(_args("--hold-frames", "4", "--decode-context", "0", "--carry-scheme", "reencode"))
    assert (mine.hold_frames, mine.decode_context, mine.scheme) == (4, 0, "reencode")


@pytest.mark.parametrize(
    "flags", [("--hold-frames", "-1"), ("--decode-context", "-2"), ("--carry-strength", "2")]
)
def test_bad_continuation_flags_stop_serve_with_their_code(flags: tuple[str, str], capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["serve", "--port", "0", *flags]) != 0
    assert "[input.carry]" in capsys.readouterr().err
