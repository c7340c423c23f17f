"""RedisSessionStore against a real redis-server on loopback: round trips, timeline rules, checksum and
compatibility refusals, TTL, leases, and a clear error when Redis is gone."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from redis_server import free_port, redis_server
from test_store import _state

from ltx2stream.errors import SessionError, StateError
from ltx2stream.session.store import SessionStore, open_store
from ltx2stream.session.store_redis import RedisSessionStore

SID = "sessionR_0001"


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def store(redis_url: str, request: pytest.FixtureRequest) -> Iterator[RedisSessionStore]:
    s = RedisSessionStore(redis_url, keep_last=3, prefix=f"t{request.node.name[-40:]}:")
    yield s
    s._redis.flushdb()
    s.close()


def test_round_trip_is_exact_and_latest_wins(store: RedisSessionStore) -> None:
    for i in range(2):
        store.save(SID, i, _state(i))
    assert [s.segment_index for s in store.list(SID)] == [0, 1]
    for got, want in ((store.load_latest(SID), _state(1)), (store.load(SID, 0), _state(0))):
        assert got.meta == want.meta and set(got.tensors) == set(want.tensors)
        for name, t in want.tensors.items():
            assert got.tensors[name].dtype == t.dtype and torch.equal(got.tensors[name], t)


def test_keep_last_and_rewind_follow_the_directory_store(store: RedisSessionStore, tmp_path: Path) -> None:
    """Same sequence of saves on both backends leaves the same stored indices."""
    disk = SessionStore(tmp_path, keep_last=3)
    for i in (0, 1, 2, 3, 4, 2):  # keep 3 -> [2, 3, 4]; the last save rewinds: 3 and 4 go
        store.save(SID, i, _state(i))
        disk.save(SID, i, _state(i))
        assert [s.segment_index for s in store.list(SID)] == [s.segment_index for s in disk.list(SID)]
    assert [s.segment_index for s in store.list(SID)] == [2]
    assert len(store._redis.keys(f"{store.prefix}st:*")) == 1  # no orphaned state keys


def test_missing_session_and_segment_are_named(store: RedisSessionStore) -> None:
    with pytest.raises(SessionError) as e:
        store.load_latest("nobody_here_1")
    assert e.value.code == "session.not_found"
    store.save(SID, 0, _state(0))
    with pytest.raises(SessionError) as e:
        store.load(SID, 5)
    assert e.value.code == "session.segment_not_found" and "[0]" in str(e.value)
    with pytest.raises(SessionError) as e:
        store.save("../etc", 0, _state(0))
    assert e.value.code == "session.bad_id"


def test_corrupt_bytes_are_refused_on_save_and_on_load(store: RedisSessionStore) -> None:
    data = bytearray(_state(0).to_bytes())
    data[-3] ^= 0xFF
    with pytest.raises(StateError):
        store.save(SID, 0, bytes(data))
    assert store.list(SID) == []
    store.save(SID, 0, _state(0))
    store._redis.set(store._state_key(SID, 0), bytes(data))  # damaged inside Redis
    with pytest.raises(StateError) as e:
        store.load_latest(SID)
    assert e.value.code == "state.corrupt"


def test_compatibility_is_checked_as_with_the_directory_store(store: RedisSessionStore) -> None:
    store.save(SID, 0, _state(0))
    loaded = store.load_latest(SID)
    loaded.check_compatible({"preset": "ltx2-distilled", "width": 768})
    with pytest.raises(StateError) as e:
        loaded.check_compatible({"preset": "ltx2-distilled", "width": 512})
    assert e.value.code == "state.incompatible"


def test_sessions_expire_ttl_after_their_last_save(redis_url: str) -> None:
    store = RedisSessionStore(redis_url, ttl_s=0.6, prefix="ttl:")
    try:
        store.save(SID, 0, _state(0))
        time.sleep(0.4)
        store.save(SID, 1, _state(1))  # refreshes segment 0 too
        time.sleep(0.4)
        assert [s.segment_index for s in store.list(SID)] == [0, 1]
        time.sleep(0.5)
        assert store.list(SID) == [] and store._redis.keys("ttl:*") == []
    finally:
        store.close()


def test_lease_is_exclusive_renewable_and_expires(store: RedisSessionStore) -> None:
    assert store.acquire_lease(SID, "replica-a", 5.0)
    assert not store.acquire_lease(SID, "replica-b", 5.0)
    assert store.acquire_lease(SID, "replica-a", 5.0)  # the holder may take it again
    assert store.renew_lease(SID, "replica-a", 0.3) and not store.renew_lease(SID, "replica-b", 5.0)
    assert not store.release_lease(SID, "replica-b") and store.lease_owner(SID) == "replica-a"
    time.sleep(0.5)  # replica-a died without releasing: the lease runs out
    assert store.acquire_lease(SID, "replica-b", 5.0)
    assert not store.renew_lease(SID, "replica-a", 5.0)
    assert store.release_lease(SID, "replica-b") and store.lease_owner(SID) is None


def test_directory_store_leases_have_the_same_rules(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    assert store.acquire_lease(SID, "a", 5.0) and not store.acquire_lease(SID, "b", 5.0)
    assert store.renew_lease(SID, "a", 0.05) and not store.release_lease(SID, "b")
    time.sleep(0.1)
    assert store.acquire_lease(SID, "b", 5.0) and store.release_lease(SID, "b")


def test_open_store_picks_the_backend(redis_url: str, tmp_path: Path) -> None:
    assert isinstance(open_store(redis_url), RedisSessionStore)
    assert isinstance(open_store(tmp_path / "states"), SessionStore)
    with pytest.raises(Exception) as e:
        open_store("s3://bucket/x")
    assert getattr(e.value, "code", None) == "config.store"


def test_unreachable_redis_is_a_retryable_store_error() -> None:
    store = RedisSessionStore(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(SessionError) as e:
        store.save(SID, 0, _state(0))
    assert e.value.code == "store.unavailable" and not store.ping()
