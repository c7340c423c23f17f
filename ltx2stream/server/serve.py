"""Run a server until SIGTERM/SIGINT, then shut it down gracefully (every session checkpointed and told)."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence

from ltx2stream.server.app import StreamingServer
from ltx2stream.server.config import ServerConfig
from ltx2stream.server.streaming import EncoderFactory, default_encoder_factory
from ltx2stream.server.worker import HostFactory

logger = logging.getLogger(__name__)
SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def serve(
    config: ServerConfig,
    host_factories: HostFactory | Sequence[HostFactory],
    *,
    encoder_factory: EncoderFactory = default_encoder_factory,
    stop: asyncio.Event | None = None,
    on_started: Callable[[StreamingServer], None] | None = None,
) -> None:
    """Start a server, wait for ``stop`` (set by SIGTERM/SIGINT when running in the main thread), shut
    down."""
    stop = stop or asyncio.Event()
    app = StreamingServer(config, host_factories, encoder_factory=encoder_factory)
    loop = asyncio.get_running_loop()
    installed = []
    for sig in SIGNALS:
        try:
            loop.add_signal_handler(sig, _on_signal, sig, stop)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals here
            logger.debug("cannot install a handler for %s", sig.name)
    try:
        await app.start()
        if on_started is not None:
            on_started(app)
        await stop.wait()
    finally:
        await app.shutdown()
        for sig in installed:
            loop.remove_signal_handler(sig)


def _on_signal(sig: signal.Signals, stop: asyncio.Event) -> None:
    logger.info("received %s: shutting down gracefully", sig.name)
    stop.set()


def run(
    config: ServerConfig,
    host_factories: HostFactory | Sequence[HostFactory],
    *,
    encoder_factory: EncoderFactory = default_encoder_factory,
) -> int:
    """Blocking entry point for the CLI (the app logs ``listening on HOST:PORT``); returns the exit code."""
    asyncio.run(serve(config, host_factories, encoder_factory=encoder_factory))
    return 0
