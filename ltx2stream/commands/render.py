"""``ltx2stream render sessions/x.toml -o out.mp4``: a scripted long session into one continuous MP4."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from tqdm import tqdm

from ltx2stream.commands.common import StageBars, add_model_args, dtype_of, model_paths

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("render", help="render a session script (sessions/*.toml) into one MP4")
    p.add_argument("script", type=Path)
    p.add_argument("-o", "--output", type=Path, default=Path("render.mp4"))
    p.add_argument("--work-dir", type=Path, help="states and parts (default: <output>.session)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted render from its last state")
    p.add_argument(
        "--from-segment", type=int, help="branch: re-render from segment N using the state before it"
    )
    p.add_argument("--no-progress", action="store_true")
    add_model_args(p)
    p.set_defaults(func=run, preset=None)


def run(args: argparse.Namespace) -> int:
    from ltx2stream.media import Mp4Parts
    from ltx2stream.pipeline.components import components_for_preset
    from ltx2stream.pipeline.pipeline import LTX2Pipeline
    from ltx2stream.pipeline.presets import get_preset
    from ltx2stream.session.render import Renderer
    from ltx2stream.session.script import load_script

    script = load_script(args.script)
    name = args.preset or script.settings.preset
    preset = get_preset(name)
    components = components_for_preset(name, model_paths(args), device=args.device, dtype=dtype_of(args))
    if args.compile:
        from ltx2stream.pipeline.compile import compile_transformer

        compile_transformer(components.transformer, args.device)
    work = args.work_dir or args.output.with_name(args.output.name + ".session")
    renderer = Renderer(LTX2Pipeline(components, preset), script, work, Mp4Parts())
    state = renderer.start_state(resume=args.resume, from_segment=args.from_segment)
    start = 0 if state is None else state.next_index
    bars = StageBars(disable=args.no_progress)
    with tqdm(
        total=len(script.segments), initial=start, desc="segments", unit="seg", disable=args.no_progress
    ) as bar:
        renderer.run(state, progress=bars, on_segment=lambda r: (bars.close(), bar.update(1)))
    out = renderer.assemble(args.output)
    log.info("wrote %s (%d segments)", out, len(script.segments))
    return 0
