"""Many sessions on one worker: fair round-robin, FIFO queue with positions, cancel on disconnect, resume,
and flow control for a client that stops reading."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import time

import pytest
from server_doubles import SETTINGS, Client, ToyHost, running
from websockets.exceptions import ConnectionClosed

from ltx2stream import protocol as P


async def _reader(client: Client) -> None:
    """Keep reading (and recording) until the connection closes."""
    try:
        while True:
            await client.recv(timeout=30)
    except (ConnectionClosed, TimeoutError):
        return


@pytest.mark.parametrize("sessions", [2, 4])
def test_concurrent_sessions_share_one_worker_fairly(tmp_path, sessions):
    """N sessions on one worker with cap N: generated segment counts never differ by more than one."""

    async def main() -> None:
        host = ToyHost(step_s=0.02, warm_s=30)  # the model "loads" until every client has opened
        async with running(tmp_path, max_active_per_worker=4, host=host) as (app, _):
            clients = [await Client.connect(app.port) for _ in range(sessions)]
            ids = [(await c.open(prompt=f"session {i}")).session_id for i, c in enumerate(clients)]
            readers = [asyncio.create_task(_reader(c)) for c in clients]
            host.release_warm_up.set()
            spreads = []
            while min(app.sessions[i].job.segments_generated for i in ids) < 4:
                counts = [app.sessions[i].job.segments_generated for i in ids]
                spreads.append(max(counts) - min(counts))
                await asyncio.sleep(0.01)
            for c in clients:
                await c.send(P.Stop())
            await asyncio.wait_for(asyncio.gather(*readers), 10)
            done = [len(c.of_type("segment_done")) for c in clients]
            assert max(spreads) <= 1, spreads
            assert min(done) >= 4 and max(done) - min(done) <= 1 + 1, done  # + the in-flight segment at stop
            assert all(c.received[-1].type == "final" for c in clients)

    asyncio.run(main())


def test_queue_positions_beyond_the_cap_and_admission_in_order(tmp_path):
    """cap 2: the 3rd and 4th clients are queued at 0 and 1; when a slot frees the 3rd starts and the 4th
    moves to 0; a 5th beyond max_queue gets server.queue_full (4503)."""

    async def main() -> None:
        async with running(tmp_path, max_active_per_worker=2, max_queue=2) as (app, _host):
            clients = [await Client.connect(app.port) for _ in range(4)]
            for c in clients:
                await c.open()
            assert not clients[0].of_type("queued") and not clients[1].of_type("queued")
            assert (await clients[2].expect("queued")).position == 0
            assert (await clients[3].expect("queued")).position == 1
            assert app.metrics.queue_length.value() == 2
            extra = await Client.connect(app.port)
            await extra.send(P.Open(protocol_version=1, settings=SETTINGS, prompt="late"))
            err = await extra.expect("error")
            assert err.code == "server.queue_full" and err.retryable and err.fatal
            assert (await extra.drain_to_close())[0] == 4503

            await clients[0].send(P.Stop())
            await clients[2].expect("state", state="starting")
            assert (await clients[3].expect("queued")).position == 0
            await clients[2].expect("segment_done", index=0)
            await clients[1].send(P.Stop())
            await clients[3].expect("segment_done", index=0)
            for c in clients[2:]:
                await c.send(P.Stop())
            for c in clients:
                assert (await c.drain_to_close())[0] == 1000

    asyncio.run(main())


def test_disconnect_frees_worker_within_one_step_and_resume_is_bit_exact(tmp_path):
    """A client leaving mid-segment: the server cancels the segment, and the worker stops at the next step
    boundary (no denoising step runs after the cancel) and is free; resuming by id produces exactly the segment
    an uninterrupted session produces (same latent bytes, prompt and seed). Bounds are events, not timings."""

    async def main() -> None:
        host = ToyHost(steps=4, step_s=0.02)
        async with running(tmp_path, host=host) as (app, _):
            # Reference: an uninterrupted session, two segments.
            ref = await Client.connect(app.port)
            await ref.open("a heron", lookahead=0)
            await ref.expect("segment_done", index=1, timeout=10)
            await ref.send(P.Stop())
            await ref.drain_to_close()
            reference = {i: latent for i, _, _, latent in host.segments}
            host.segments.clear()
            host.steps_done.clear()

            host.hold_at = (1, 2)  # segment 1 waits after its second step, until the client has left
            client = await Client.connect(app.port)
            accepted = await client.open("a heron", lookahead=0)
            await client.expect("segment_done", index=0)
            await client.expect("progress", segment=1, step=2)
            assert await asyncio.to_thread(host.held.wait, 30)
            token = host.held_token
            assert token is not None and not token.cancelled
            await client.ws.close()
            for _ in range(3000):  # the server notices the disconnect and cancels the running segment
                if token.cancelled:
                    break
                await asyncio.sleep(0.01)
            assert token.cancelled
            assert app.workers[0].current_session_id is not None  # still held at the step boundary
            host.release.set()
            for _ in range(3000):
                if app.workers[0].current_session_id is None:
                    break
                await asyncio.sleep(0.01)
            assert app.workers[0].current_session_id is None
            # stopped at the first step boundary after the cancel: no step of segment 1 ran after it
            assert [s for i, s in host.steps_done if i == 1] == [1, 2]
            assert host.cancels and host.cancels[-1][0] == 1
            assert [i for i, *_ in host.segments] == [0]
            host.hold_at = None

            resumed = await Client.connect(app.port)
            again = await resumed.open(
                "a heron", lookahead=0, resume_from=P.ResumeFrom(session_id=accepted.session_id)
            )
            assert again.session_id == accepted.session_id and again.resumed_from_segment == 0
            started = await resumed.expect("segment_started")
            assert (started.index, started.seed) == (1, SETTINGS.seed + 1)
            await resumed.expect("segment_done", index=1)
            await resumed.send(P.Stop())
            await resumed.drain_to_close()
            after_resume = [entry for entry in host.segments if entry[0] == 1]
            assert len(after_resume) == 1 and after_resume[0][3] == reference[1]
            assert after_resume[0][1:3] == ("a heron", SETTINGS.seed + 1)

    asyncio.run(main())


def test_never_reading_client_pauses_its_session_with_bounded_memory_then_is_closed(tmp_path):
    """A client that stops reading: its session stops generating, the queued bytes stay bounded, another
    session keeps going, and after the timeout the server closes it (client.too_slow) and keeps its state."""
    big = dataclasses.replace(SETTINGS, width=256, height=256)

    async def main() -> None:
        host = ToyHost(step_s=0.01, noise=True)
        async with running(
            tmp_path, host=host, send_high_water=256 * 1024, write_limit=32 * 1024, slow_client_timeout_s=1.5
        ) as (app, _):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", app.port))
            stuck = await Client.connect(app.port, sock=sock, max_queue=1)
            sid = (await stuck.open(settings=big)).session_id
            other = await Client.connect(app.port)
            await other.open()
            reader = asyncio.create_task(_reader(other))
            session = app.sessions[sid]
            held, since = -1, time.monotonic()  # wait until generation stops (OS socket buffers fill first)
            while time.monotonic() - since < 0.6:
                if session.job.segments_generated != held:
                    held, since = session.job.segments_generated, time.monotonic()
                await asyncio.sleep(0.05)
            other_before = len(other.of_type("segment_done"))
            await asyncio.sleep(0.5)
            assert session.job.segments_generated == held, "the stuck session kept generating"
            assert len(other.of_type("segment_done")) > other_before, "the other session starved"
            assert session.job.in_flight() <= 2  # 1 + lookahead segments started and undelivered, no more
            # Queued bytes: at most the high-water mark plus the undelivered segments (~300 kB each here),
            # although the session generated far more than that (~3 MB went into the OS socket buffers).
            assert session.outbox.peak_bytes < 1.5 * 2**20 < app.metrics.bytes_sent.value()
            await asyncio.wait_for(session.end.ended.wait(), 5)
            assert app.metrics.errors.value(code="client.too_slow") == 1
            assert sid not in app.sessions
            if session.delivered:
                assert app.store.list(sid)
            await other.send(P.Stop())
            await asyncio.wait_for(reader, 10)
            assert other.received[-1].type == "final"

    asyncio.run(main())


def test_sessions_spread_over_workers(tmp_path):
    """Two workers (devices) with one slot each: two sessions run at once, one per worker, nobody queues."""
    from server_doubles import make_config

    from ltx2stream.server.app import StreamingServer

    async def main() -> None:
        hosts = [ToyHost(), ToyHost()]
        app = StreamingServer(make_config(tmp_path, max_active_per_worker=1), [lambda h=h: h for h in hosts])
        await app.start()
        try:
            clients = [await Client.connect(app.port) for _ in hosts]
            for c in clients:
                await c.open()
            for c in clients:
                await c.expect("segment_done", index=1)
                await c.send(P.Stop())
                assert (await c.drain_to_close())[0] == 1000
            assert not any(c.of_type("queued") for c in clients)
            assert all(len(h.segments) >= 2 for h in hosts)
        finally:
            await app.shutdown()

    asyncio.run(main())
