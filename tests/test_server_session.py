"""A whole session over a real loopback WebSocket: media, steering, pause/resume, snapshot, stop."""

from __future__ import annotations

import asyncio
import io
import itertools
import logging

import av
import pytest
from server_doubles import SETTINGS, Client, ToyHost, running

from ltx2stream import protocol as P
from ltx2stream.media import fragment_runs, parse_boxes, track_timescales
from ltx2stream.session.state import SerializedState

FPS, FRAMES = SETTINGS.fps, SETTINGS.frames


def _decoded_video_times(data: bytes) -> list[float]:
    with av.open(io.BytesIO(data)) as container:
        return [float(f.time) for f in container.decode(video=0)]


def test_full_session_streams_decodable_fmp4_and_steer_lands_at_announced_segment(tmp_path, caplog):
    """open -> 3 segments of decodable fMP4 with continuous timestamps -> steer applies at
    steer_ack.applies_at -> stop -> state closed, final, close 1000; the event loop never blocks for 100
    ms."""
    caplog.set_level(logging.WARNING, logger="asyncio")

    async def main() -> None:
        asyncio.get_running_loop().slow_callback_duration = 0.1
        async with running(tmp_path) as (app, host):
            client = await Client.connect(app.port)
            accepted = await client.open("a red fox", lookahead=1)
            assert accepted.mime.startswith('video/mp4; codecs="avc1.') and "mp4a.40.2" in accepted.mime
            await client.expect("segment_started", index=0)
            await client.send(P.Steer(prompt="the fox looks up", request_id=5))
            ack = await client.expect("steer_ack")
            assert ack.request_id == 5 and ack.applies_at >= 1
            for index in range(max(3, ack.applies_at + 1)):
                await client.expect("segment_done", index=index, timeout=10)
            await client.send(P.Stop())
            code, reason = await client.drain_to_close()
            assert (code, reason) == (1000, "stopped")
            return client, ack, host

    client, ack, host = asyncio.run(main(), debug=True)
    started = {m.index: m for m in client.of_type("segment_started")}
    for index, msg in started.items():
        assert msg.prompt == ("the fox looks up" if index >= ack.applies_at else "a red fox"), index
        assert msg.seed == SETTINGS.seed + index
    assert [(i, p) for i, p, _, _ in host.segments][: len(started)] == [
        (i, started[i].prompt) for i in sorted(started)
    ]

    inits = client.of_type("media_init")
    assert len(inits) == 1 and inits[0].mime == client.received[0].mime
    media = client.of_type("media")
    assert [m.seq for m in media] == list(range(len(media)))
    done = client.of_type("segment_done")
    final = client.received[-1]
    assert isinstance(final, P.Final) and final.reason == "stopped" and final.segments == len(done) >= 3
    assert final.resumable_session_id == client.received[0].session_id
    states = [(m.previous, m.state) for m in client.of_type("state")]
    assert states == [
        ("queued", "starting"),
        ("starting", "running"),
        ("running", "stopping"),
        ("stopping", "closed"),
    ]

    # Media: per segment, pieces are contiguous in time and the last one is marked; the stream decodes.
    for seg in range(len(done)):
        pieces = [m for m in media if m.segment == seg]
        if seg == len(done) - 1 and len(pieces) > 1 and pieces[-2].last:  # audio tail after stop (4.3)
            pieces = pieces[:-1]
        assert pieces[-1].last and not any(p.last for p in pieces[:-1])
        assert pieces[0].t0 == pytest.approx(seg * FRAMES / FPS)
        assert sum(p.duration for p in pieces) == pytest.approx(FRAMES / FPS)
        assert done[seg].media_duration == pytest.approx(FRAMES / FPS)
        alone = _decoded_video_times(inits[0].data + b"".join(p.data for p in pieces))
        assert alone[0] == pytest.approx(seg * FRAMES / FPS) and len(alone) == FRAMES
    stream = inits[0].data + b"".join(m.data for m in media)
    times = _decoded_video_times(stream)
    assert times == pytest.approx([i / FPS for i in range(len(done) * FRAMES)])
    scales = track_timescales(parse_boxes(inits[0].data))
    video_track = next(t for t, (kind, _) in scales.items() if kind == "vide")
    runs = [r for m in media for r in fragment_runs(m.data) if r.track_id == video_track]
    for a, b in itertools.pairwise(runs):
        assert b.base_decode_time == a.end_decode_time  # tfdt continuous across pieces and segments
    assert not [r for r in caplog.records if "took" in r.getMessage()], "event loop blocked"


def test_pause_holds_generation_and_resume_continues(tmp_path):
    """pause: the segment in flight is delivered, nothing new starts; resume: generation continues."""

    async def main() -> None:
        async with running(tmp_path) as (app, host):
            client = await Client.connect(app.port)
            await client.open(lookahead=0)
            await client.expect("segment_started", index=0)
            await client.send(P.Pause())
            await client.expect("state", state="paused")
            await client.expect("segment_done", index=0)
            count = len(host.segments)
            await asyncio.sleep(0.4)  # about 5 segment times
            assert len(host.segments) == count == 1
            await client.send(P.Pause())
            err = await client.expect("error")
            assert err.code == "session.invalid_transition" and not err.fatal
            await client.send(P.Resume())
            await client.expect("state", state="running")
            await client.expect("segment_done", index=1)
            await client.send(P.Stop())
            assert (await client.drain_to_close())[0] == 1000

    asyncio.run(main())


def test_snapshot_returns_state_blob_and_stores_it(tmp_path):
    """snapshot answers with the state after the last delivered segment, as bytes or stored under the id."""

    async def main() -> None:
        async with running(tmp_path) as (app, _host):
            client = await Client.connect(app.port)
            accepted = await client.open(lookahead=0)
            await client.send(P.Snapshot(request_id=1))
            early = await client.expect("error")
            assert (
                early.code in ("session.command_not_allowed",) and early.request_id == 1 and not early.fatal
            )
            await client.expect("segment_done", index=1)
            await client.send(P.Snapshot(request_id=2))
            blob = await client.expect("snapshot_result", request_id=2)
            state = SerializedState.from_bytes(blob.data)
            assert blob.stored is False and state.segment_index == blob.segment_index >= 1
            await client.send(P.Snapshot(store=True, request_id=3))
            stored = await client.expect("snapshot_result", request_id=3)
            assert stored.stored and stored.data is None and stored.session_id == accepted.session_id
            assert (
                app.store.load(accepted.session_id, stored.segment_index).segment_index
                == stored.segment_index
            )
            await client.send(P.Stop())
            assert (await client.drain_to_close())[0] == 1000

    asyncio.run(main())


def test_steer_rate_limit_and_second_open_are_non_fatal(tmp_path):
    """Steering beyond the burst gets session.rate_limited; a second open gets protocol.unexpected; the
    session goes on."""

    async def main() -> None:
        async with running(tmp_path, host=ToyHost(step_s=0.05)) as (app, _host):
            client = await Client.connect(app.port)
            await client.open()
            for i in range(P.ProtocolLimits().steer_burst + 1):
                await client.send(P.Steer(prompt=f"p{i}", request_id=i))
            acks = [
                await client.expect("steer_ack", request_id=i) for i in range(P.ProtocolLimits().steer_burst)
            ]
            assert len({a.applies_at for a in acks}) >= 1
            limited = await client.expect("error")
            assert limited.code == "session.rate_limited" and limited.retryable and not limited.fatal
            await client.send(P.Open(protocol_version=1, settings=SETTINGS, prompt="again"))
            unexpected = await client.expect("error")
            assert unexpected.code == "protocol.unexpected" and not unexpected.fatal
            await client.expect("segment_done", index=0)
            await client.send(P.Stop())
            assert (await client.drain_to_close())[0] == 1000

    asyncio.run(main())
