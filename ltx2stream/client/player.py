"""``--play``: pipe the live fMP4 stream into a local player (mpv, else ffplay) as it arrives.

The player reads the stream from its stdin; a feeder task writes each ``media_init`` / ``media`` payload there
in order (the event loop never blocks on the pipe). Closing the player window only stops the feed; the
session and the recording go on. When the session ends, stdin is closed and the player plays to the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil

from ltx2stream import codes
from ltx2stream import protocol as P
from ltx2stream.errors import InputError

logger = logging.getLogger(__name__)
PLAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("mpv", ("--really-quiet", "--cache=no", "--force-window=yes", "-")),
    ("ffplay", ("-loglevel", "error", "-autoexit", "-fflags", "nobuffer", "-i", "-")),
)


def find_player() -> list[str]:
    """The command line of the first installed player.

    Raises:
        InputError: ``client.no_player`` naming what to install.
    """
    for name, args in PLAYERS:
        path = shutil.which(name)
        if path is not None:
            return [path, *args]
    raise InputError(
        "--play needs mpv or ffplay on the PATH (e.g. `apt install mpv` or `apt install ffmpeg`); "
        "without --play the stream is still recorded to --output",
        code=codes.CLIENT_NO_PLAYER,
    )


class Player:
    """A player process fed from the session's media messages (use :meth:`feed` as a ``StreamClient`` tap)."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._process: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task[None] | None = None
        self._init_seen = False

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        self._pump = asyncio.create_task(self._feed_loop())
        logger.info("playing with %s", self.argv[0])

    def feed(self, msg: P.Message) -> None:
        if isinstance(msg, P.MediaInit) and not self._init_seen:
            self._init_seen = True
            self._queue.put_nowait(msg.data)
        elif isinstance(msg, P.Media) and self._init_seen:
            self._queue.put_nowait(msg.data)

    async def _feed_loop(self) -> None:
        process = self._process
        assert process is not None and process.stdin is not None
        while (data := await self._queue.get()) is not None:
            try:
                process.stdin.write(data)
                await process.stdin.drain()
            except (BrokenPipeError, ConnectionResetError):
                logger.info("the player was closed; the session goes on (still recording)")
                return

    async def close(self) -> None:
        """End the stream and let the player finish playing it."""
        self._queue.put_nowait(None)
        if self._pump is not None:
            await self._pump
        process = self._process
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                process.stdin.close()
        await process.wait()
