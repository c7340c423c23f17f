"""``ltx2stream client --interactive``: typed lines steer the next segment; slash commands; ``--segments 0``;
``--play`` without a player. The terminal test runs the real command in a pseudo-terminal against a ToyHost
server whose segments wait at a step boundary while the test types, so "the next segment" is exact."""

from __future__ import annotations

import asyncio
import io
import json
import os
import pty
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest
from server_doubles import ToyGenerator, ToyHost, running

from ltx2stream import codes
from ltx2stream import protocol as P
from ltx2stream.client.interactive import Command, parse_line
from ltx2stream.client.player import find_player
from ltx2stream.errors import InputError
from ltx2stream.session.api import SessionSettings

ROOT = Path(__file__).resolve().parents[1]
PRESET = "tiny-ltx2"
SETTINGS = SessionSettings(PRESET, 64, 64, 12.0, 17, 1, 0)
PROMPTS = ("a red fox", "the fox looks up", "snow falls", "the fox runs")


def test_typed_lines_become_commands():
    assert parse_line("  the fox looks up \n") == Command("steer", "the fox looks up")
    assert parse_line("\n") is None
    assert parse_line("/blend 2") == Command("blend", value=2)
    assert parse_line("/seed 42") == Command("seed", value=42)
    assert parse_line("/seed") == Command("seed", value=None)
    assert parse_line("/snapshot") == Command("snapshot")
    assert parse_line("/stop") == Command("stop")
    for bad in ("/blend", "/blend x", "/blend 99", "/seed -1", "/jump", "/stop now"):
        with pytest.raises(InputError) as info:
            parse_line(bad)
        assert info.value.code == codes.CLIENT_BAD_OPTION and "/stop" in str(info.value)


def test_play_without_a_player_says_what_to_install(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(InputError) as info:
        find_player()
    assert info.value.code == codes.CLIENT_NO_PLAYER and "mpv" in str(info.value)


class Typist:
    """The test's side of a pseudo-terminal: type lines, wait for text in what the program printed."""

    def __init__(self, master: int) -> None:
        self.master, self.text, self._lock = master, "", threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                self.text += data.decode(errors="replace")

    def type(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode())

    def wait_for(self, pattern: str, timeout: float = 120.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                found = re.search(pattern, self.text)
            if found:
                return found
            time.sleep(0.05)
        raise AssertionError(f"{pattern!r} not printed within {timeout} s; got:\n{self.text[-3000:]}")


def hold_next(host: ToyHost, index: int) -> None:
    """Let the held segment go on and hold segment ``index`` at its first step boundary instead."""
    release, host.release, host.held = host.release, threading.Event(), threading.Event()
    host.hold_at = (index, 1)
    release.set()


@pytest.mark.slow
def test_three_typed_prompts_steer_three_consecutive_segments_in_a_terminal(tmp_path):
    """The real ``ltx2stream client --interactive --segments 0`` in a pseudo-terminal: while segment n runs
    (held at a step boundary), the test types a prompt; the three prompts apply at three consecutive segments,
    ``/stop`` ends the session, and the recording holds those segments in order."""
    host = ToyHost(presets=(PRESET,), step_s=0.0)
    host.hold_at = (1, 1)  # segment 1 (the first prompt) waits while we type the prompt for segment 2
    output = tmp_path / "steered.mp4"

    async def main() -> tuple[str, str]:
        async with running(tmp_path, host) as (app, _):
            master, slave = pty.openpty()
            env = dict(os.environ, PYTHONPATH=str(ROOT))
            proc = subprocess.Popen(  # noqa: ASYNC220 - started once; the waits below run in threads
                [sys.executable, "-m", "ltx2stream.cli", "client", f"ws://127.0.0.1:{app.port}/ws"]
                + ["--prompt", PROMPTS[0], "--preset", PRESET, "--segments", "0", "--lookahead", "0"]
                + ["--interactive", "-o", str(output)],
                stdin=slave,
                stdout=subprocess.PIPE,
                stderr=slave,
                env=env,
                cwd=tmp_path,
            )
            os.close(slave)
            typist = Typist(master)
            try:
                for n, prompt in enumerate(PROMPTS[1:], start=2):
                    assert await asyncio.to_thread(host.held.wait, 180), typist.text[-2000:]
                    typist.type(prompt)  # segment n - 1 is running: the prompt steers segment n
                    await asyncio.to_thread(typist.wait_for, rf"applies at segment {n}\b")
                    hold_next(host, n)
                assert await asyncio.to_thread(host.held.wait, 180)
                typist.type("/stop")
                await asyncio.to_thread(typist.wait_for, "stopping after the segments in flight")
                host.hold_at = None
                host.release.set()
                stdout, _ = await asyncio.to_thread(proc.communicate, timeout=180)
            finally:
                if proc.poll() is None:
                    proc.kill()
                os.close(master)
            return stdout.decode(), typist.text

    stdout, printed = asyncio.run(main())
    summary = json.loads(stdout)
    assert summary["final"] == "stopped", printed[-2000:]
    steered = [s["prompt"] for s in summary["segments"]]
    assert steered == [PROMPTS[0], PROMPTS[0], *PROMPTS[1:]]  # segments 0-4: three consecutive steers
    assert summary["segments_recorded"] == [0, 1, 2, 3, 4]
    assert sorted(summary["steers"].values()) == [2, 3, 4]
    assert [(i, p) for i, p, _, _ in host.segments] == list(enumerate(steered))

    # the recording shows the segments in order: each decoded segment matches the frames the host made for it
    with av.open(io.BytesIO(output.read_bytes()), "r") as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)]).astype(
            np.float32
        )
    generator = ToyGenerator(host, SETTINGS, None)
    expected = [
        generator._frames(np.frombuffer(latent, np.float32), index).astype(np.float32)
        for index, _, _, latent in host.segments
    ]
    assert len(frames) == sum(len(e) for e in expected)
    segments = np.split(frames, np.cumsum([len(e) for e in expected])[:-1])
    for i, got in enumerate(segments):
        errors = [np.abs(got - e).mean() for e in expected]
        assert int(np.argmin(errors)) == i, (i, errors)


def test_interactive_steering_in_process(tmp_path):
    """The same loop without a terminal (fast): lines from a queue, ``--segments 0``, /seed, /blend, /stop."""
    from ltx2stream.client.interactive import run_interactive
    from ltx2stream.client.plan import Plan
    from ltx2stream.client.session import StreamClient

    host = ToyHost(presets=(PRESET,), step_s=0.0)
    host.hold_at = (1, 1)
    settings = P.Settings(preset=PRESET, width=64, height=64, fps=12.0, frames=17, overlap=1, seed=0)
    plan = Plan(PROMPTS[0], settings, None, 0, None, (), "cut", 1, 0)

    async def main() -> tuple[StreamClient, P.Final | None, str]:
        lines: asyncio.Queue[str | None] = asyncio.Queue()

        async def typed():  # type: ignore[no-untyped-def]
            while (line := await lines.get()) is not None:
                yield line

        out = io.StringIO()
        async with (
            running(tmp_path, host) as (app, _),
            StreamClient(f"ws://127.0.0.1:{app.port}/ws", output=tmp_path / "o.mp4") as client,
        ):
            session = asyncio.create_task(run_interactive(client, plan, typed(), out))
            for n, line in ((2, "/seed 99"), (2, PROMPTS[1]), (3, "/blend 2"), (3, PROMPTS[2])):
                assert await asyncio.to_thread(host.held.wait, 60)
                lines.put_nowait(line)
                if not line.startswith("/"):
                    while not any(a.applies_at == n for a in client.acks.values()):
                        await asyncio.sleep(0.01)
                    hold_next(host, n)
            assert await asyncio.to_thread(host.held.wait, 60)  # segment 3 runs: stop finishes it
            lines.put_nowait("/bogus")
            lines.put_nowait(None)  # end of input (Ctrl-D) stops
            host.hold_at = None
            host.release.set()
            final = await asyncio.wait_for(session, 60)
            return client, final, out.getvalue()

    client, final, printed = asyncio.run(main())
    assert final is not None and final.reason == "stopped"
    assert "not a command: '/bogus'" in printed
    started = {i: s for i, s in client.started.items()}
    assert (started[2].prompt, started[2].seed) == (PROMPTS[1], 99)
    assert started[3].prompt == PROMPTS[2] and started[3].previous_prompt == PROMPTS[1]  # blending in


def test_play_pipes_the_live_stream_into_the_player(tmp_path, monkeypatch):
    """``--play`` with a stand-in ``mpv`` on the PATH (a script that saves its stdin): the player receives the
    same fMP4 bytes the recording holds, while the session streams."""
    from ltx2stream.client.plan import Plan, stream
    from ltx2stream.client.player import Player
    from ltx2stream.client.session import StreamClient

    bin_dir, seen = tmp_path / "bin", tmp_path / "played.mp4"
    bin_dir.mkdir()
    fake = bin_dir / "mpv"
    fake.write_text(
        f"#!{sys.executable}\nimport shutil, sys\nshutil.copyfileobj(sys.stdin.buffer, open({str(seen)!r}, 'wb'))\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    argv = find_player()
    assert argv[0] == str(fake) and argv[-1] == "-"
    settings = P.Settings(preset=PRESET, width=64, height=64, fps=12.0, frames=17, overlap=1, seed=0)

    async def main() -> None:
        async with running(tmp_path, ToyHost(presets=(PRESET,))) as (app, _):
            player = Player(argv)
            async with StreamClient(f"ws://127.0.0.1:{app.port}/ws", output=tmp_path / "rec.mp4") as client:
                await player.start()
                client.taps.append(player.feed)
                final = await stream(
                    client, Plan("a fox", settings, None, 0, None, (), "cut", 1, 2)
                )  # lookahead 0
                await player.close()
            assert final is not None and final.reason == "stopped"

    asyncio.run(main())
    assert seen.read_bytes() == (tmp_path / "rec.mp4").read_bytes()
