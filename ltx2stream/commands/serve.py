"""``ltx2stream serve``: the argparse subcommand; ``register(subparsers)`` adds it to the main CLI.

The model host is built by a factory named ``module:function`` (``--host-factory``), called once per
``--device`` on that worker's thread as ``factory(args, device) -> ModelHost``; model options such as
``--checkpoint`` and ``--preset`` are parsed here and passed through in ``args``.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ltx2stream import codes
from ltx2stream.commands.common import DTYPES, dtype_of, model_paths
from ltx2stream.errors import ConfigError
from ltx2stream.pipeline.presets import DEFAULT_PRESET
from ltx2stream.protocol import ProtocolLimits
from ltx2stream.server.config import ServerConfig
from ltx2stream.server.threads import ThreadBudget, available_cores, plan_threads
from ltx2stream.session.api import ModelHost

logger = logging.getLogger(__name__)
DEFAULT_HOST_FACTORY = "ltx2stream.commands.serve:pipeline_host"
TOKEN_ENV = "LTX2STREAM_TOKEN"


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``serve`` subcommand to an ``add_subparsers()`` object; returns its parser."""
    p = subparsers.add_parser(
        "serve",
        help="run the WebSocket streaming server",
        description="Serve streaming sessions over WebSocket + msgpack (docs/server.md).",
    )
    d = ServerConfig()
    net = p.add_argument_group("network and security")
    net.add_argument("--host", default=d.host, help="address to bind (default %(default)s: localhost only)")
    net.add_argument("--port", type=int, default=d.port, help="port (0 = any free port; default %(default)s)")
    net.add_argument("--token", default=None, help=f"bearer token clients must present (or env {TOKEN_ENV})")
    net.add_argument(
        "--origin",
        action="append",
        default=[],
        dest="origins",
        help="allowed browser Origin (repeatable; default: same host only)",
    )
    sched = p.add_argument_group("sessions")
    sched.add_argument(
        "--max-active",
        type=int,
        default=d.max_active_per_worker,
        help="sessions sharing one worker round-robin (default %(default)s)",
    )
    sched.add_argument("--max-queue", type=int, default=d.max_queue, help="waiting sessions per worker")
    sched.add_argument(
        "--slow-client-timeout",
        type=float,
        default=d.slow_client_timeout_s,
        help="seconds a blocked send may take before the client is closed",
    )
    sched.add_argument(
        "--progress-interval",
        type=float,
        default=d.progress_interval_s,
        help="least seconds between two progress messages of one stage (0: one per denoising step)",
    )
    sched.add_argument("--max-message-bytes", type=int, default=ProtocolLimits().max_message_bytes)
    store = p.add_argument_group("storage and web client")
    store.add_argument("--store-dir", type=Path, default=d.store_dir, help="continuation states directory")
    store.add_argument(
        "--store-ttl", type=float, default=d.store_ttl_s, help="seconds a stored session is kept"
    )
    store.add_argument(
        "--store",
        default=None,
        help="redis://host:port/db: a session store shared by replicas (default: --store-dir); docs/deploy.md",
    )
    store.add_argument(
        "--lease-ttl",
        type=float,
        default=d.lease_ttl_s,
        help="seconds a dead replica keeps its sessions' leases",
    )
    store.add_argument(
        "--persist-every-segment",
        action=argparse.BooleanOptionalAction,
        default=d.persist_every_segment,
        help="store every delivered segment's state at once, so a crash loses at most the segment in flight "
        "(default on; --no-persist-every-segment stores only when a session ends)",
    )
    store.add_argument("--web-root", type=Path, default=d.web_root, help="directory served at / (if present)")
    model = p.add_argument_group("model host (passed to the host factory)")
    model.add_argument(
        "--host-factory", default=DEFAULT_HOST_FACTORY, help="module:function (default %(default)s)"
    )
    model.add_argument(
        "--device",
        action="append",
        default=None,
        dest="devices",
        help="one worker per device (repeatable; default: cuda if available, else cpu)",
    )
    model.add_argument(
        "--preset",
        action="append",
        default=None,
        dest="presets",
        help=f"preset(s) to offer (repeatable; default {DEFAULT_PRESET})",
    )
    model.add_argument("--checkpoint", type=Path, help="official single-file checkpoint (.safetensors)")
    model.add_argument("--gemma", type=Path, help="Gemma 3 directory (Hugging Face layout) or .gguf file")
    model.add_argument("--upsampler", type=Path, help="latent upsampler file (two-stage presets)")
    model.add_argument("--lora", type=Path, help="refine LoRA for stage 2")
    model.add_argument("--dtype", choices=sorted(DTYPES), help="weights dtype (default: the preset's)")
    model.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the transformer (CUDA graphs on CUDA; needs a C++ compiler on the CPU)",
    )
    model.add_argument(
        "--sp",
        type=int,
        default=1,
        help="sequence-parallel ranks of the one worker (rank 0 serves; --device names each rank's device)",
    )
    model.add_argument(
        "--sp-timeout", type=float, default=60.0, help="seconds a collective may wait before the turn fails"
    )
    threads = p.add_argument_group("thread budget (docs/performance.md; default: derived from the cores)")
    threads.add_argument("--cores", type=int, default=None, help="cores to budget (default: this process's)")
    threads.add_argument("--torch-threads", type=int, default=None, help="torch intra-op threads per worker")
    threads.add_argument(
        "--encode-threads", type=int, default=None, help="threads of the shared encoder pool"
    )
    threads.add_argument("--x264-threads", type=int, default=None, help="threads of each x264 encoder")
    threads.add_argument(
        "--encode-during-decode",
        choices=("all", "first"),
        default=None,
        help="pieces encoded while the worker decodes a segment (default: all; first: the rest after the decode)",
    )
    threads.add_argument(
        "--encoder-processes",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the session encoders in --encode-threads child processes, off the model worker's GIL",
    )
    carry = p.add_argument_group("continuation (docs/continuation.md)")
    carry.add_argument(
        "--carry-scheme", choices=("latent_carry", "keyframe_carry", "reencode"), default="latent_carry"
    )
    carry.add_argument("--carry-strength", type=float, default=1.0, help="strength of the carried latents")
    carry.add_argument("--audio-context", type=int, default=0, help="extra audio latents carried")
    carry.add_argument(
        "--hold-frames",
        type=int,
        default=8,
        help="frames at each segment's end shown by the next segment instead (at most the carried span; 0: the cut "
        "at the segment's end)",
    )
    carry.add_argument(
        "--decode-context",
        type=int,
        default=2,
        help="latent frames of the previous segment the next one's decoder sees in front (0: its anchor)",
    )
    p.set_defaults(func=run_serve)
    return p


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    """The ServerConfig the parsed arguments describe."""
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV) or None
    return ServerConfig(
        host=args.host,
        port=args.port,
        token=token,
        origins=tuple(args.origins),
        max_active_per_worker=args.max_active,
        max_queue=args.max_queue,
        slow_client_timeout_s=args.slow_client_timeout,
        progress_interval_s=args.progress_interval,
        store_dir=args.store_dir,
        store_url=args.store,
        store_ttl_s=args.store_ttl,
        lease_ttl_s=args.lease_ttl,
        persist_every_segment=args.persist_every_segment,
        encoder_processes=args.encoder_processes,
        web_root=args.web_root,
        limits=ProtocolLimits(max_message_bytes=args.max_message_bytes, presets=_known_presets(args)),
    )


def thread_budget(args: argparse.Namespace, devices: list[str]) -> ThreadBudget:
    """The thread budget of ``devices`` workers (``server/threads.py``), with the flags' explicit values."""
    cpu = all(str(d).startswith("cpu") for d in devices)
    return plan_threads(
        args.cores or available_cores(),
        len(devices),
        cpu_workers=cpu,
        torch=args.torch_threads,
        encode=args.encode_threads,
        x264=args.x264_threads,
    )


def with_budget(config: ServerConfig, budget: ThreadBudget, during: str | None = None) -> ServerConfig:
    """``config`` with the budget's threads and ``encode_during_decode`` (``during``, else the config's); logs
    it (and warns when explicit values oversubscribe)."""
    log = logger.warning if budget.oversubscribed else logger.info
    log(
        "thread budget: %d core(s), %d worker(s) x %d torch + %d encoder(s) x %d x264 = %d",
        budget.cores,
        budget.workers,
        budget.torch,
        budget.encode,
        budget.x264,
        budget.total,
    )
    return config.replace(
        torch_threads=budget.torch,
        encode_threads=budget.encode,
        x264_threads=budget.x264,
        encode_during_decode=during or config.encode_during_decode,
        switch_interval_s=budget.switch_interval_s,
    )


def _known_presets(args: argparse.Namespace) -> tuple[str, ...]:
    """The presets the default host will serve (known before it loads); a custom host factory decides its own."""
    if args.host_factory != DEFAULT_HOST_FACTORY:
        return ()
    return tuple(args.presets or [DEFAULT_PRESET])


def load_factory(spec: str) -> Callable[..., Any]:
    """Import ``module:function``.

    Raises:
        ConfigError: a malformed spec, a module that does not import, or a missing attribute.
    """
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"--host-factory {spec!r} must be 'module:function'", code=codes.CONFIG_BAD_FACTORY)
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ConfigError(
            f"--host-factory {spec!r} cannot be loaded: {e}", code=codes.CONFIG_BAD_FACTORY
        ) from e
    if not callable(factory):
        raise ConfigError(f"--host-factory {spec!r} is not callable", code=codes.CONFIG_BAD_FACTORY)
    return factory  # type: ignore[no-any-return]


def _options(args: argparse.Namespace) -> Any:
    from ltx2stream.session.controller import ContinuationOptions

    return ContinuationOptions(
        carry_strength=getattr(args, "carry_strength", 1.0),
        audio_context=getattr(args, "audio_context", 0),
        scheme=getattr(args, "carry_scheme", "latent_carry"),
        hold_frames=getattr(args, "hold_frames", 8),
        decode_context=getattr(args, "decode_context", 2),
    )


def group_host(args: argparse.Namespace, devices: list[str]) -> ModelHost:
    """``--sp N``: one ``GroupHost`` over N ranks (this process is rank 0; followers are spawned)."""
    from ltx2stream.session.group import GroupHost, GroupSpec

    spec = GroupSpec(
        world=args.sp,
        presets=tuple(args.presets or [DEFAULT_PRESET]),
        paths=model_paths(args),
        devices=tuple(devices),
        dtype=dtype_of(args),
        options=_options(args),
        timeout_s=args.sp_timeout,
    )
    return GroupHost(spec)


def pipeline_host(args: argparse.Namespace, device: str) -> ModelHost:
    """The default host factory: a ``PipelineHost`` for ``--preset`` on ``device`` (tiny presets need no
    files)."""
    from ltx2stream.session.host import PipelineHost

    return PipelineHost(
        tuple(args.presets or [DEFAULT_PRESET]),
        model_paths(args),
        device=device,
        dtype=dtype_of(args),
        options=_options(args),
        compile=getattr(args, "compile", False),
    )


def run_serve(args: argparse.Namespace) -> int:
    """The ``serve`` command: build the config and one host factory per device, serve until SIGTERM."""
    import torch

    from ltx2stream.server.serve import run

    config = config_from_args(args)
    _options(args)  # bad continuation options are refused here, with their code, not inside a starting worker
    factory = load_factory(args.host_factory)
    if args.sp > 1:
        if args.host_factory != DEFAULT_HOST_FACTORY:
            raise ConfigError(
                "--sp builds its own host; it cannot be combined with --host-factory",
                code=codes.CONFIG_BAD_FACTORY,
            )
        cuda = torch.cuda.is_available()
        devices = args.devices or [f"cuda:{r}" if cuda else "cpu" for r in range(args.sp)]
        if len(devices) != args.sp:
            raise ConfigError(
                f"--sp {args.sp} needs {args.sp} --device values, got {len(devices)}",
                code=codes.CONFIG_OUT_OF_RANGE,
            )
        config = with_budget(config, thread_budget(args, devices[:1]), args.encode_during_decode)
        return run(config, [functools.partial(group_host, args, devices)])
    devices = args.devices or ["cuda" if torch.cuda.is_available() else "cpu"]
    config = with_budget(config, thread_budget(args, devices), args.encode_during_decode)
    return run(config, [functools.partial(factory, args, device) for device in devices])
