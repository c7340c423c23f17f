"""``ltx2stream client``: stream a session from a server into an MP4 file, steering it on the way.

    ltx2stream client ws://127.0.0.1:8765/ws --prompt "a red fox in snow" --segments 4 -o fox.mp4 \\
        --steer-after 2 "the fox looks up at falling snow" --transition blend --blend-segments 2
    ltx2stream client ws://127.0.0.1:8765/ws --prompt "a red fox in snow" --segments 0 -o fox.mp4 \\
        --interactive --play      # type prompts to steer, watch in mpv/ffplay, /stop to end

``register(subparsers)`` adds the subcommand to the main CLI. The file is fragmented MP4 written as media arrives
(playable while it grows); it holds exactly ``--segments`` segments (``0``: until ``/stop`` or Ctrl-C). A lost connection is resumed by session id
(``--reconnects``). A summary (JSON) goes to stdout; progress goes to the log.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from websockets.exceptions import InvalidHandshake

from ltx2stream import codes
from ltx2stream import protocol as P
from ltx2stream.client.interactive import read_lines, run_interactive
from ltx2stream.client.plan import Plan, stream, summary
from ltx2stream.client.player import Player, find_player
from ltx2stream.client.session import StreamClient
from ltx2stream.errors import InputError, SessionError
from ltx2stream.pipeline.presets import DEFAULT_PRESET, PRESETS
from ltx2stream.types import latent_frames_of

TOKEN_ENV = "LTX2STREAM_TOKEN"


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``client`` subcommand to an ``add_subparsers()`` object; returns its parser."""
    p = subparsers.add_parser(
        "client",
        help="stream a session from a server into an MP4 file",
        description="Open a streaming session, record it to fragmented MP4, steer it (docs/clients.md).",
    )
    p.add_argument("url", help="server WebSocket URL, e.g. ws://127.0.0.1:8765/ws")
    p.add_argument("--prompt", required=True, help="the first prompt")
    p.add_argument("-o", "--output", type=Path, required=True, help="fragmented MP4 file to write")
    p.add_argument(
        "--segments",
        type=int,
        default=3,
        help="segments to generate, then stop (default %(default)s; 0: until stopped with /stop or Ctrl-C)",
    )
    p.add_argument(
        "--interactive",
        action="store_true",
        help="read prompts from the terminal while streaming: each line steers the next segment "
        "(/blend N, /seed [S], /snapshot, /stop)",
    )
    p.add_argument(
        "--play", action="store_true", help="watch the stream live in mpv or ffplay (when installed)"
    )
    p.add_argument("--token", default=None, help=f"bearer token (or env {TOKEN_ENV})")
    s = p.add_argument_group("settings (defaults: the preset's, when this installation knows it)")
    s.add_argument("--preset", default=None, help="preset id (default: the pipeline's default preset)")
    s.add_argument("--width", type=int)
    s.add_argument("--height", type=int)
    s.add_argument("--fps", type=float)
    s.add_argument("--frames", type=int, help="pixel frames per segment (1 + 8k)")
    s.add_argument(
        "--overlap",
        type=int,
        default=None,
        help="latent frames carried into the next segment (default 1 when a segment has >= 3 latent "
        "frames, else 0)",
    )
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--lookahead", type=int, default=1, help="segments generated ahead of delivery")
    s.add_argument("--image", type=Path, help="conditioning image (PNG/JPEG/WebP) for the first segment")
    s.add_argument("--image-strength", type=float, default=1.0)
    s.add_argument("--image-frame", type=int, default=0)
    st = p.add_argument_group("steering")
    st.add_argument(
        "--steer-after",
        nargs=2,
        action="append",
        default=[],
        metavar=("N", "PROMPT"),
        help="after N segments were delivered, steer to PROMPT (repeatable)",
    )
    st.add_argument("--transition", choices=("cut", "blend"), default="cut")
    st.add_argument("--blend-segments", type=int, default=1)
    r = p.add_argument_group("resuming")
    r.add_argument("--resume", metavar="SESSION_ID", help="continue a stored session instead of starting one")
    r.add_argument("--resume-segment", type=int, help="stored segment to continue after (default: latest)")
    r.add_argument("--reconnects", type=int, default=3, help="resume attempts after a lost connection")
    p.set_defaults(func=run_client)
    parser: argparse.ArgumentParser = p
    return parser


def settings_from_args(args: argparse.Namespace) -> P.Settings:
    """Settings from the options, filling size, rate and length from the preset when it is known here.

    Raises:
        InputError: ``client.missing_setting`` when a value is neither given nor known from the preset.
    """
    name = args.preset or DEFAULT_PRESET
    preset = PRESETS.get(name)
    values: dict[str, Any] = {}
    for key in ("width", "height", "fps", "frames"):
        value = getattr(args, key)
        if value is None and preset is not None:
            value = getattr(preset, key)
        if value is None:
            raise InputError(
                f"--{key} is required for preset {name!r} (not known to this installation)",
                code=codes.CLIENT_MISSING_SETTING,
            )
        values[key] = value
    return P.Settings(
        preset=name,
        width=values["width"],
        height=values["height"],
        fps=float(values["fps"]),
        frames=values["frames"],
        overlap=args.overlap
        if args.overlap is not None
        else (1 if latent_frames_of(values["frames"]) >= 3 else 0),
        seed=args.seed,
    )


def plan_from_args(args: argparse.Namespace) -> Plan:
    """Validate the options into a Plan (raises InputError naming the option)."""
    if args.segments < 0:
        raise InputError(
            f"--segments must be >= 0 (0: until stopped); got {args.segments}", code=codes.CLIENT_BAD_OPTION
        )
    steers = []
    for count, prompt in args.steer_after:
        if not count.isdigit():
            raise InputError(
                f"--steer-after N must be a segment count; got {count!r}", code=codes.CLIENT_BAD_OPTION
            )
        steers.append((int(count), prompt))
    image = None
    if args.image is not None:
        data = args.image.read_bytes()
        mime = P.sniff_image(data)
        if mime is None:
            raise InputError(
                f"--image {args.image} is not a PNG, JPEG or WebP file", code=codes.CLIENT_BAD_OPTION
            )
        image = P.Image(data=data, mime=mime, strength=args.image_strength, frame=args.image_frame)
    resume = P.ResumeFrom(session_id=args.resume, segment_index=args.resume_segment) if args.resume else None
    return Plan(
        args.prompt,
        settings_from_args(args),
        image,
        args.lookahead,
        resume,
        tuple(sorted(steers)),
        args.transition,
        args.blend_segments if args.transition == "blend" else 1,
        args.segments,
    )


def stop_on_interrupt(client: StreamClient) -> None:
    """Ctrl-C once: ``stop`` (the segments in flight are still recorded); twice: quit at once."""
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[None]] = set()

    def interrupted() -> None:
        loop.remove_signal_handler(signal.SIGINT)  # the next Ctrl-C raises KeyboardInterrupt as usual
        print("stopping after the segments in flight (Ctrl-C again to quit now)", file=sys.stderr)
        task = loop.create_task(client.stop())
        pending.add(task)
        task.add_done_callback(pending.discard)

    with contextlib.suppress(NotImplementedError, RuntimeError):  # not on this platform / not the main thread
        loop.add_signal_handler(signal.SIGINT, interrupted)


def run_client(args: argparse.Namespace) -> int:
    """The ``client`` command; exit status 0 when the session ended with ``final`` ``stopped``."""
    plan = plan_from_args(args)
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV) or None
    player = Player(find_player()) if getattr(args, "play", False) else None  # refused before connecting

    async def main() -> tuple[StreamClient, P.Final | None]:
        async with StreamClient(args.url, token=token, output=args.output) as client:
            if player is not None:
                await player.start()
                client.taps.append(player.feed)
            stop_on_interrupt(client)
            try:
                if getattr(args, "interactive", False):
                    final = await run_interactive(
                        client, plan, read_lines(sys.stdin), reconnects=args.reconnects
                    )
                else:
                    final = await stream(client, plan, reconnects=args.reconnects)
            finally:
                if player is not None:
                    await player.close()
            return client, final

    try:
        client, final = asyncio.run(main())
    except (OSError, InvalidHandshake, TimeoutError) as e:
        raise SessionError(f"cannot connect to {args.url}: {e}", code=codes.CLIENT_CONNECT_FAILED) from e
    print(json.dumps(summary(client, final, args.output), indent=2))
    return 0 if final is not None and final.reason == "stopped" else 1
