"""``ltx2stream demo``: the main job on the embedded default — a live, steered streaming session, end to end.

Starts the streaming server on a free localhost port with the default preset (``DEFAULT_PRESET``: the pocket
model shipped in the package, with the packaged Gemma 3 270M; no downloads, CPU), connects the
Python client, opens a session, steers it twice (blended transitions) while it
streams, stops it, and records everything it received — fragmented MP4, H.264 + AAC, continuous across segments —
to ``demo.mp4``. ``--serve`` keeps the server running afterwards so the browser player can be opened at the
printed address. ``--offline`` renders the same session from a script instead (no server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
# Captions in the procedural world's training vocabulary (docs/quality.md), the scene the pocket model was trained
# on: a scene, then the same scene recoloured, then its backdrop darkened (each prompt describes the whole scene).
PROMPTS = (
    "a crimson disc glides left and right over a pale blue backdrop",
    "a cobalt disc glides left and right over a pale blue backdrop",
    "a cobalt disc glides left and right over a dark pale blue backdrop",
)
FRAMES, FPS, SEED = 25, 12.0, 7


def demo_preset() -> tuple[str, int]:
    """The default preset and the demo's frame side: the preset's native size (64 px for the tiny presets)."""
    from ltx2stream.pipeline.presets import DEFAULT_PRESET, get_preset

    preset = get_preset(DEFAULT_PRESET)
    return preset.name, 64 if preset.tiny else preset.width


def demo_script() -> str:
    name, side = demo_preset()
    return f"""\
[session]
preset = "{name}"
width = {side}
height = {side}
fps = {FPS:g}
frames = {FRAMES}
overlap = 1
seed = {SEED}

[[segment]]
prompt = "{PROMPTS[0]}"
repeat = 2

[[segment]]
prompt = "{PROMPTS[1]}"
repeat = 2

[[segment]]
prompt = "{PROMPTS[2]}"
transition = "blend"
repeat = 2
"""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("demo", help="stream a steered session from a local server on the default preset")
    p.add_argument("-o", "--output", type=Path, default=Path("demo.mp4"))
    p.add_argument("--segments", type=int, default=6)
    p.add_argument("--port", type=int, default=0, help="server port (default: any free port)")
    p.add_argument("--serve", action="store_true", help="keep serving afterwards (browser player at /)")
    p.add_argument(
        "--offline", action="store_true", help="render the session from a script, without a server"
    )
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    args.output.parent.mkdir(parents=True, exist_ok=True)
    if args.offline:
        return _offline(args)
    summary = asyncio.run(_live(args))
    print(json.dumps(summary, indent=2))
    print(
        f"demo: wrote {args.output} — {len(summary['segments_recorded'])} segments streamed live and steered "
        "twice; play it with any video player"
    )
    return 0 if summary.get("final") == "stopped" else 1


async def _live(args: argparse.Namespace) -> dict[str, Any]:
    from ltx2stream import protocol as P
    from ltx2stream.client.plan import Plan, stream, summary
    from ltx2stream.client.session import StreamClient
    from ltx2stream.server.app import StreamingServer
    from ltx2stream.server.config import ServerConfig
    from ltx2stream.session.host import PipelineHost

    web = Path(__file__).resolve().parents[2] / "clients" / "web"
    with tempfile.TemporaryDirectory(prefix="ltx2stream-demo-") as store:
        config = ServerConfig(
            port=args.port,
            store_dir=Path(store),
            web_root=web if web.is_dir() else None,
            encoder_processes=True,
        )
        name, side = demo_preset()
        app = StreamingServer(config, lambda: PipelineHost((name,)))
        await app.start()
        try:
            url = f"ws://127.0.0.1:{app.port}/ws"
            log.info("server on %s (loading %s)", url, name)
            settings = P.Settings(
                preset=name, width=side, height=side, fps=FPS, frames=FRAMES, overlap=1, seed=SEED
            )
            third = max(1, args.segments // 3)
            plan = Plan(
                PROMPTS[0],
                settings,
                None,
                1,
                None,
                ((third, PROMPTS[1]), (2 * third, PROMPTS[2])),
                "blend",
                2,
                args.segments,
            )
            async with StreamClient(url, output=args.output) as client:
                final = await stream(client, plan, reconnects=1)
            result = summary(client, final, args.output)
            if args.serve:
                print(f"serving: open http://127.0.0.1:{app.port}/ in a browser (Ctrl-C to stop)", flush=True)
                await asyncio.Event().wait()
            return result
        finally:
            await app.shutdown()


def _offline(args: argparse.Namespace) -> int:
    from ltx2stream.commands import render

    script = args.output.with_name(args.output.stem + ".toml")
    script.write_text(demo_script(), encoding="utf-8")
    parser = argparse.ArgumentParser(prog="ltx2stream")
    render.register(parser.add_subparsers())
    ns = parser.parse_args(
        ["render", str(script), "-o", str(args.output), *(["--no-progress"] if args.no_progress else [])]
    )  # the render command's own defaults, so an option it gains reaches the demo too
    code = render.run(ns)
    print(f"demo: wrote {args.output} (rendered offline from {script})")
    return code
