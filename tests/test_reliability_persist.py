"""The state of every delivered segment is stored right after delivery (no snapshot asked), by a thread of its own:
a write that hangs delays neither the worker nor the next segments, and an older state never lands last."""

from __future__ import annotations

import asyncio
import threading
import time

from server_doubles import Client, running

from ltx2stream import protocol as P
from ltx2stream.session.store import SessionStore


async def _until_stored(store: SessionStore, session_id: str, index: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not any(s.segment_index == index for s in store.list(session_id)):
        assert time.monotonic() < deadline, f"segment {index} of {session_id} was not stored"
        await asyncio.sleep(0.01)


def test_every_delivered_segment_is_stored_without_a_snapshot(tmp_path):
    """By default each delivered segment's state reaches the store while the session runs; a new server on the
    same store resumes the session by id after the last of them (as after a crash: nothing ended it)."""

    async def main() -> None:
        async with running(tmp_path) as (app, _):
            client = await Client.connect(app.port)
            accepted = await client.open("a kite", lookahead=0)
            for index in range(3):
                await client.expect("segment_done", index=index)
                await _until_stored(app.store, accepted.session_id, index)
            assert app.services.persist_every_segment
            assert not client.of_type("snapshot_result")
            stored = app.store.load_latest(accepted.session_id)
            assert stored.segment_index >= 2

    asyncio.run(main())


class HangingStore(SessionStore):
    """A directory store whose write of segment ``hang_at`` blocks until ``release`` is set."""

    hang_at = 1

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.hanging, self.release = threading.Event(), threading.Event()
        self.saved: list[int] = []

    def save(self, session_id, segment_index, state):  # type: ignore[no-untyped-def]
        if segment_index == self.hang_at:
            self.hanging.set()
            assert self.release.wait(30)
        out = super().save(session_id, segment_index, state)
        self.saved.append(segment_index)
        return out


def test_a_hanging_write_delays_no_segment_and_the_newest_state_lands_last(tmp_path):
    """Segment 1's write hangs: segments 2, 3, 4 are still generated and delivered meanwhile (the write is not
    on the worker's path); once it returns, the newest delivered state is written after it (not an older one)
    and is what the store's latest holds."""

    async def main() -> None:
        async with running(tmp_path) as (app, _):
            store = HangingStore(tmp_path / "hanging")
            app.store = store
            app.services = type(app.services)(store, app.metrics, app.config.limits, True)
            client = await Client.connect(app.port)
            accepted = await client.open("a kite", lookahead=0)
            await client.expect("segment_done", index=4, timeout=20)
            assert store.hanging.is_set() and store.saved == [0]  # 2..4 were delivered during the hung write
            store.release.set()
            for _ in range(1000):  # until a state >= 4 was saved (``saved`` is appended after the write)
                if store.saved and store.saved[-1] >= 4:
                    break
                await asyncio.sleep(0.01)
            assert store.saved[:2] == [0, 1] and store.saved[-1] >= 4  # intermediate states may be skipped
            assert sorted(store.saved) == store.saved  # never an older state after a newer one
            await client.send(P.Stop())
            await client.drain_to_close()
            assert (
                store.load_latest(accepted.session_id).segment_index
                == len(client.of_type("segment_done")) - 1
            )

    asyncio.run(main())
