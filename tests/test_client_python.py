"""The Python client (``ltx2stream.client``): StreamClient against a real server, the fMP4 recorder, the CLI.

The streaming tests run the real server on a loopback port with the tiny LTX-2 PipelineHost; error and token
tests use the server's ToyHost double (no model). Written files are decoded with PyAV.
"""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import av
import numpy as np
import pytest
from server_doubles import SETTINGS as TOY_SETTINGS
from server_doubles import running

from ltx2stream import protocol as P
from ltx2stream.cli import main as cli_main
from ltx2stream.client import Fmp4Recorder, StreamClient, shift_decode_times
from ltx2stream.errors import SessionError
from ltx2stream.media import SessionEncoder
from ltx2stream.media.fmp4 import fragment_runs

TINY = P.Settings(preset="tiny-ltx2", width=64, height=64, fps=12.0, frames=17, overlap=1, seed=3)


@pytest.fixture(scope="module")
def pipeline_host(tiny_cache):  # type: ignore[no-untyped-def]
    from ltx2stream.session.host import PipelineHost

    return PipelineHost(("tiny-ltx2",))


def video_times(path: Path | bytes) -> list[float]:
    """Presentation times (s) of every decoded video frame of an MP4 file or bytes."""
    source = io.BytesIO(path) if isinstance(path, bytes) else str(path)
    with av.open(source) as container:
        return [float(frame.time) for frame in container.decode(video=0)]


def frames_of(client: StreamClient, segments) -> int:  # type: ignore[no-untyped-def]
    """Video frames the given delivered segments hold (continuation segments are shorter by the overlap)."""
    return round(sum(client.done[i].media_duration for i in segments) * TINY.fps)


async def until(client: StreamClient, predicate, timeout: float = 120.0) -> P.Message:  # type: ignore[no-untyped-def]
    """Iterate the client's events until ``predicate(msg)``; fail on the session ending first."""
    async with asyncio.timeout(timeout):
        async for msg in client.events():
            if predicate(msg):
                return msg
    raise AssertionError(f"session ended first: final={client.final}, close={client.close_code}")


async def drain(client: StreamClient, timeout: float = 120.0) -> None:
    """Iterate the events to the end of the session (``final`` or close)."""
    async with asyncio.timeout(timeout):
        async for _ in client.events():
            pass


def test_open_two_segments_steer_applied_at_announced_index_then_stop(tmp_path, pipeline_host):
    """Open, receive 2 segments, steer: the ack's index is the first segment with the new prompt; stop ends with
    final 'stopped' and close 1000; the recorded file decodes with every delivered frame, at i/fps."""
    out = tmp_path / "session.mp4"

    async def main() -> StreamClient:
        async with running(tmp_path, host=pipeline_host) as (app, _):
            async with StreamClient(f"ws://127.0.0.1:{app.port}/ws", output=out) as client:
                accepted = await client.open("a red fox in snow", TINY, lookahead=0)
                assert accepted.settings == TINY and 'codecs="avc1' in accepted.mime
                await until(client, lambda m: isinstance(m, P.SegmentDone) and m.index == 1)
                request = await client.steer("the fox looks up at falling snow")
                ack = await until(client, lambda m: isinstance(m, P.SteerAck))
                assert ack.request_id == request and ack.applies_at in (2, 3)
                started = await until(
                    client, lambda m: isinstance(m, P.SegmentStarted) and m.index == ack.applies_at
                )
                await client.stop()
                await drain(client)
                assert started.prompt == "the fox looks up at falling snow"
                assert all(client.started[i].prompt == "a red fox in snow" for i in range(ack.applies_at))
            return client

    client = asyncio.run(main())
    assert client.final is not None and client.final.reason == "stopped" and client.close_code == 1000
    assert client.final.segments == len(client.done) >= 3
    assert client.recorder is not None and client.recorder.complete_segments == sorted(client.done)
    times = video_times(out)
    assert len(times) == frames_of(client, client.done)
    assert times == pytest.approx([i / TINY.fps for i in range(len(times))], abs=1e-6)


def test_reconnect_resumes_by_id_and_the_file_continues_on_one_timeline(tmp_path, pipeline_host):
    """Drop the connection after 2 segments, reconnect by id: the server resumes after the last delivered segment
    and the recorder rebases the new stream, so the file is gap-free with continuous frame times."""
    out = tmp_path / "resumed.mp4"

    async def main() -> tuple[StreamClient, P.Accepted]:
        # close_timeout_s: how long a resume waits for the old connection's checkpoint (the worker finishes the
        # denoising step it is in first; slow on a loaded 2-core machine)
        async with running(tmp_path, host=pipeline_host, close_timeout_s=15.0) as (app, _):
            async with StreamClient(f"ws://127.0.0.1:{app.port}/ws", output=out) as client:
                first = await client.open("a lighthouse at dusk", TINY, lookahead=0)
                await until(client, lambda m: isinstance(m, P.Progress) and m.segment == 2)
                delivered = max(client.done)
                again = await client.reconnect()
                assert again.session_id == first.session_id
                # the server may have delivered one more segment the client did not read before leaving
                assert again.resumed_from_segment in (delivered, delivered + 1)
                await until(client, lambda m: isinstance(m, P.SegmentDone) and m.index == delivered + 1)
                await client.stop()
                await drain(client)
            return client, again

    client, again = asyncio.run(main())
    assert client.final is not None and client.final.reason == "stopped"
    assert client.recorder is not None
    segments = client.recorder.complete_segments
    assert segments[:2] == [0, 1] and segments[-1] >= again.resumed_from_segment + 1
    times = video_times(out)
    assert len(times) == frames_of(client, segments)
    assert times == pytest.approx([i / TINY.fps for i in range(len(times))], abs=1e-6)


def test_cli_records_exactly_the_requested_segments_and_steers(tmp_path, pipeline_host, capsys):
    """``ltx2stream client URL --segments 2 --steer-after 1 ...``: exit 0, a JSON summary, a file of 2 segments."""
    out = tmp_path / "cli.mp4"

    async def main() -> int:
        async with running(tmp_path, host=pipeline_host) as (app, _):
            argv = [
                "client",
                f"ws://127.0.0.1:{app.port}/ws",
                "--prompt",
                "waves on a beach",
                "-o",
                str(out),
                "--preset",
                "tiny-ltx2",
                "--overlap",
                "1",
                "--seed",
                "5",
                "--lookahead",
                "0",
                "--segments",
                "2",
                "--steer-after",
                "1",
                "a storm rolls in",
            ]
            return await asyncio.to_thread(cli_main, argv)

    assert asyncio.run(main()) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["final"] == "stopped" and summary["segments_recorded"] == [0, 1]
    assert list(summary["steers"]) == ["1"] and summary["steers"]["1"] >= 1
    assert [s["seed"] for s in summary["segments"][:2]] == [5, 6]
    assert len(video_times(out)) == round(sum(s["media_s"] for s in summary["segments"][:2]) * TINY.fps)


def test_refusals_raise_with_the_server_code_and_token_is_sent(tmp_path):
    """A refused open raises SessionError with the server's code (close code kept); a token server accepts the
    client's bearer header and refuses a client without it (auth.failed, 4401)."""

    async def main() -> None:
        async with running(tmp_path, token="s3cret") as (app, _):
            url = f"ws://127.0.0.1:{app.port}/ws"
            async with StreamClient(url, token="s3cret") as client:
                bad = P.Settings(preset="toy", width=96, height=64, fps=8.0, frames=10)  # frames not 1 + 8k
                with pytest.raises(SessionError) as refused:
                    await client.open("x", bad)
                assert refused.value.code == "protocol.out_of_range" and client.close_code == 4400
                assert client.final is not None and client.final.error_code == "protocol.out_of_range"
                accepted = await client.open("x", TOY_SETTINGS)
                assert accepted.session_id and client.final is None
            async with StreamClient(url) as anonymous:
                with pytest.raises(SessionError) as denied:
                    await anonymous.open("x", TOY_SETTINGS)
                assert denied.value.code == "auth.failed" and anonymous.close_code == 4401

    asyncio.run(main())


def _encode(enc: SessionEncoder, first_frame: int, frames: int) -> np.ndarray:
    """A moving gradient, [frames, H, W, 3] uint8."""
    t = (first_frame + np.arange(frames))[:, None, None]  # [f, 1, 1]
    y, x = np.mgrid[0 : enc.height, 0 : enc.width]
    return np.stack([(x + 4 * t) % 256, (y + 2 * t) % 256, np.full_like(x + t, 90)], -1).astype(np.uint8)


def test_recorder_drops_a_partial_segment_and_rebases_a_resumed_stream(tmp_path):
    """Without a server: segment 0 complete, segment 1 half received, then a new stream (t=0) resumes after
    segment 0; the file holds segments 0, 1 (new), 2 with continuous times and tfdt shifted by 1 s exactly."""
    fps, n = 16.0, 16
    first, second = SessionEncoder(64, 64, fps, 48000), SessionEncoder(64, 64, fps, 48000)
    rec = Fmp4Recorder(tmp_path / "r.mp4")
    rec.write_init(P.MediaInit(mime=first.mime, data=first.init_segment))
    rec.begin_connection(None)
    first.add_video(_encode(first, 0, n))
    first.add_audio(np.zeros((2, 48000), np.float32))
    frag = first.flush_segment(0)
    rec.write_media(P.Media(segment=0, seq=0, t0=0.0, duration=1.0, data=frag.data, last=True))
    first.add_video(_encode(first, n, n // 2))
    rec.write_media(P.Media(segment=1, seq=1, t0=1.0, duration=0.5, data=first.drain(), last=False))

    rec.write_init(P.MediaInit(mime=second.mime, data=second.init_segment))  # identical: not written again
    rec.begin_connection(0)
    for index in (1, 2):
        start = (index - 1) * n
        second.add_video(_encode(second, start + n, n))
        second.add_audio(np.zeros((2, 48000), np.float32))
        frag = second.flush_segment(index - 1)
        shifted = shift_decode_times(frag.data, {1: 90000})
        assert [r.base_decode_time for r in fragment_runs(shifted) if r.track_id == 1] == [
            r.base_decode_time + 90000 for r in fragment_runs(frag.data) if r.track_id == 1
        ]
        rec.write_media(
            P.Media(segment=index, seq=index, t0=start / fps, duration=1.0, data=frag.data, last=True)
        )
    rec.close()
    assert rec.complete_segments == [0, 1, 2]
    times = video_times(tmp_path / "r.mp4")
    assert times == pytest.approx([i / fps for i in range(3 * n)], abs=1e-6)
