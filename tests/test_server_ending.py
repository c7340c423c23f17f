"""How a session's end reaches the client and the store: the audio tail after ``stop``, and a resume by id
that races the old connection's ending."""

from __future__ import annotations

import asyncio
import io

import av
import pytest
from server_doubles import SETTINGS, Client, ToyHost, running

from ltx2stream import protocol as P
from ltx2stream.client.recorder import Fmp4Recorder
from ltx2stream.media.codecs import AAC_FRAME

PRIMING = AAC_FRAME  # the AAC encoder delay, documented in ltx2stream/media/encoder.py


def _durations(data: bytes) -> tuple[float, float, int]:
    """(video seconds, audio seconds, audio sample rate) of an fMP4 stream, from its decoded frames."""
    with av.open(io.BytesIO(data)) as c:
        frames = sum(1 for _ in c.decode(video=0))
    with av.open(io.BytesIO(data)) as c:
        rate = c.streams.audio[0].rate
        samples = sum(f.samples for f in c.decode(audio=0))
    return frames / SETTINGS.fps, samples / rate, rate


def _assert_audio_matches(video_s: float, audio_s: float, rate: int) -> None:
    """Decoded audio = the encoder's priming (one AAC frame, decoded too) + every fed sample + the last frame's
    padding (< one AAC frame): so it covers the video and ends less than one frame after it."""
    content_s = audio_s - PRIMING / rate
    assert video_s - 1e-9 <= content_s < video_s + AAC_FRAME / rate, (video_s, audio_s, rate)


async def _stop(client: Client, *, when: str) -> None:
    """Stop while the last segment is still generating (``generating``) or after it was delivered, with
    generation paused (``paused``); then read until the server closes."""
    await client.open("a red fox", lookahead=0)
    if when == "generating":
        await client.expect("segment_done", index=0, timeout=10)
        await client.expect("progress", segment=1, step=1, timeout=10)  # 3 steps of 0.1 s still to go
    else:
        await client.expect("segment_started", index=1, timeout=10)
        await client.send(P.Pause())
        await client.expect("segment_done", index=1, timeout=10)
    await client.send(P.Stop())
    assert (await client.drain_to_close()) == (1000, "stopped")


@pytest.mark.parametrize("when", ["generating", "paused"])
def test_stopped_session_audio_lasts_as_long_as_its_video(tmp_path, when):
    """After stop, the encoder's audio tail (FIFO remainder + the AAC frame inside the encoder) reaches the
    client before ``final``, so the recorded stream's audio covers its video (within one AAC frame of padding
    plus the priming). Stopped while the last segment generates: the tail is in that segment's last piece,
    before its ``segment_done``. Stopped after it was encoded: one more piece of it (``last``, duration 0)."""

    async def main() -> Client:
        async with running(tmp_path, host=ToyHost(steps=4, step_s=0.1)) as (app, _):
            client = await Client.connect(app.port)
            await _stop(client, when=when)
            return client

    client = asyncio.run(main())
    final, received = client.received[-1], client.received
    assert isinstance(final, P.Final) and final.reason == "stopped" and final.segments == 2
    media, done = client.of_type("media"), client.of_type("segment_done")
    assert [d.index for d in done] == [0, 1] and media[-1].segment == 1 and media[-1].last
    if when == "generating":
        assert [m.segment for m in media if m.last] == [0, 1]
        assert received.index(media[-1]) < received.index(done[-1])
    else:
        tail = media[-1]
        assert tail.duration == 0 and tail.t0 == pytest.approx(2 * SETTINGS.frames / SETTINGS.fps)
        assert received.index(done[-1]) < received.index(tail) < received.index(final)
    init = client.of_type("media_init")[0].data
    video_s, audio_s, rate = _durations(init + b"".join(m.data for m in media))
    assert video_s == pytest.approx(2 * SETTINGS.frames / SETTINGS.fps)
    _assert_audio_matches(video_s, audio_s, rate)

    # The same through the Python client's recorder (it writes every media message until final).
    out = tmp_path / "rec.mp4"
    recorder = Fmp4Recorder(out, segment_limit=2)
    for msg in received:
        if isinstance(msg, P.MediaInit):
            recorder.write_init(msg)
        elif isinstance(msg, P.Media):
            recorder.write_media(msg)
    recorder.close()
    assert _durations(out.read_bytes()) == (video_s, audio_s, rate)
    assert recorder.complete_segments == [0, 1]


def test_resume_waits_for_the_old_connection_checkpoint_when_a_step_outlasts_close_timeout(tmp_path):
    """The client drops mid-step and reconnects at once; the worker needs longer than close_timeout_s to
    notice the cancel. The resume waits for the old session's checkpoint and continues under the same id."""

    async def main() -> None:
        host = ToyHost(steps=3, step_s=0.4)
        async with running(tmp_path, host=host, close_timeout_s=0.1) as (app, _):
            client = await Client.connect(app.port)
            accepted = await client.open("a heron", lookahead=0)
            await client.expect("segment_done", index=0, timeout=10)
            await client.expect("progress", segment=1, step=1, timeout=10)  # the worker is inside step 2 of 3
            await client.ws.close()

            resumed = await Client.connect(app.port)
            again = await resumed.open(
                "a heron", lookahead=0, resume_from=P.ResumeFrom(session_id=accepted.session_id)
            )
            assert again.session_id == accepted.session_id and again.resumed_from_segment == 0
            assert host.cancels and host.cancels[-1][0] == 1
            started = await resumed.expect("segment_started", timeout=10)
            assert (started.index, started.seed) == (1, SETTINGS.seed + 1)
            await resumed.send(P.Stop())
            assert (await resumed.drain_to_close(timeout=10))[0] == 1000

    asyncio.run(main())


def test_resume_of_a_live_session_without_stored_state_is_busy_and_retryable(tmp_path):
    """Resuming by the id of a session that is still live on its own connection and has nothing stored yet:
    ``session.busy`` (retryable), not ``session.not_found``; the live session goes on. (Nothing is stored
    only without the per-segment save, so it is off here.)"""

    async def main() -> None:
        async with running(tmp_path, close_timeout_s=0.1, persist_every_segment=False) as (app, _):
            client = await Client.connect(app.port)
            accepted = await client.open("a heron", lookahead=0)
            await client.expect("segment_done", index=0, timeout=10)

            other = await Client.connect(app.port)
            await other.send(
                P.Open(
                    protocol_version=P.PROTOCOL_VERSION,
                    prompt="a heron",
                    settings=SETTINGS,
                    resume_from=P.ResumeFrom(session_id=accepted.session_id),
                )
            )
            err = await other.expect("error")
            assert (err.code, err.retryable, err.fatal) == ("session.busy", True, True)
            assert accepted.session_id in err.message
            assert (await other.drain_to_close())[0] == 4409

            await client.expect("segment_done", index=1, timeout=10)
            await client.send(P.Stop())
            assert (await client.drain_to_close())[0] == 1000

    asyncio.run(main())
