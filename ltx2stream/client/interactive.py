"""Steering a live session from a terminal (``ltx2stream client … --interactive``).

Each line typed steers the next segment that has not started. Slash commands::

    /blend N     the following prompts blend in over N segments (/blend 0: cut again)
    /seed [S]    the next prompt uses seed S (a random one without S)
    /snapshot    store the state after the last delivered segment (prints the id to resume from)
    /stop        finish the segments in flight, then end (also Ctrl-D)
    /help        this list

Lines are read by a thread (a blocking ``readline`` on the terminal) and handed to the event loop, so the
stream keeps recording while nobody types. The client layer stays torch-free.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TextIO

from ltx2stream import codes
from ltx2stream import protocol as P
from ltx2stream.client.plan import Plan, stream
from ltx2stream.client.session import StreamClient
from ltx2stream.errors import InputError, LTX2StreamError
from ltx2stream.types import MAX_SEED

HELP = (
    "type a prompt and Enter to steer the next segment; /blend N (blend over N segments, 0 = cut), "
    "/seed [S], /snapshot, /stop (or Ctrl-D), /help"
)


@dataclass(frozen=True)
class Command:
    """One typed line: ``steer`` (``text`` is the prompt), ``blend`` / ``seed`` (``value``), ``snapshot``,
    ``stop`` or ``help``."""

    kind: str
    text: str = ""
    value: int | None = None


def parse_line(line: str, max_blend: int = 8) -> Command | None:
    """A typed line as a command (None for an empty line).

    Raises:
        InputError: ``client.bad_option`` for an unknown command or a bad argument (shown, not fatal).
    """
    text = line.strip()
    if not text:
        return None
    if not text.startswith("/"):
        return Command("steer", text)
    name, _, arg = text[1:].partition(" ")
    arg = arg.strip()
    if name in ("stop", "snapshot", "help") and not arg:
        return Command(name)
    if name == "blend" and arg.isdigit() and int(arg) <= max_blend:
        return Command("blend", value=int(arg))
    if name == "seed" and (not arg or (arg.isdigit() and int(arg) <= MAX_SEED)):
        return Command("seed", value=int(arg) if arg else None)
    raise InputError(f"not a command: {text[:60]!r}; {HELP}", code=codes.CLIENT_BAD_OPTION)


async def read_lines(source: TextIO) -> AsyncIterator[str]:
    """Lines of ``source`` (a terminal) as they are typed; ends at end of input."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def reader() -> None:
        while True:
            try:
                line = source.readline()
            except (OSError, ValueError):
                line = ""
            with contextlib.suppress(RuntimeError):  # the loop is gone: the session ended
                loop.call_soon_threadsafe(queue.put_nowait, line or None)
            if not line:
                return

    threading.Thread(target=reader, name="ltx2stream-console", daemon=True).start()
    while (line := await queue.get()) is not None:
        yield line


class Steering:
    """Turns typed commands into session commands; keeps the blend and seed settings between lines."""

    def __init__(self, client: StreamClient, out: TextIO, *, blend_segments: int = 0) -> None:
        self.client, self.out = client, out
        self.blend_segments = blend_segments
        self.seed: int | None = None
        self.stopped = False

    def say(self, text: str) -> None:
        print(f"» {text}", file=self.out, flush=True)

    async def apply(self, command: Command) -> None:
        if command.kind == "steer":
            blend = self.blend_segments
            request = await self.client.steer(
                command.text,
                transition="blend" if blend >= 1 else "cut",
                blend_segments=max(blend, 1),
                seed=self.seed,
            )
            self.seed = None
            self.say(f"steer #{request}: {command.text!r}" + (f" (blend over {blend})" if blend else ""))
        elif command.kind == "blend":
            self.blend_segments = command.value or 0
            self.say(
                f"next prompts blend over {self.blend_segments} segment(s)" if self.blend_segments else "cut"
            )
        elif command.kind == "seed":
            self.seed = command.value if command.value is not None else random.randint(0, MAX_SEED)
            self.say(f"the next prompt uses seed {self.seed}")
        elif command.kind == "snapshot":
            request = await self.client.snapshot(store=True)
            self.say(
                f"snapshot #{request} requested (stored on the server; resume with --resume {self.client.session_id})"
            )
        elif command.kind == "stop":
            self.stopped = True
            await self.client.stop()
            self.say("stopping after the segments in flight")
        else:
            self.say(HELP)


async def steer_from(lines: AsyncIterator[str], steering: Steering) -> None:
    """Apply every typed line until ``/stop`` or the end of input (which also stops)."""
    async for line in lines:
        try:
            command = parse_line(line)
            if command is not None:
                await steering.apply(command)
        except LTX2StreamError as e:  # a bad command, or the connection is down for a moment: say so, go on
            steering.say(str(e))
        if steering.stopped:
            return
    if not steering.stopped:
        await steering.apply(Command("stop"))


async def run_interactive(
    client: StreamClient,
    plan: Plan,
    lines: AsyncIterator[str],
    out: TextIO = sys.stderr,
    *,
    reconnects: int = 3,
) -> P.Final | None:
    """Stream the plan while the terminal steers it; returns ``final`` like :func:`stream`."""
    steering = Steering(client, out, blend_segments=plan.blend_segments if plan.transition == "blend" else 0)
    steering.say(HELP)
    session = asyncio.create_task(stream(client, plan, reconnects=reconnects))
    console = asyncio.create_task(_console(lines, steering, session))
    try:
        return await session
    finally:
        console.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await console


async def _console(
    lines: AsyncIterator[str], steering: Steering, session: asyncio.Task[P.Final | None]
) -> None:
    while steering.client.accepted is None and not session.done():  # commands need an open session
        await asyncio.sleep(0.05)
    await steer_from(lines, steering)
