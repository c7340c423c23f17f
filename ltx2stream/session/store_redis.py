"""RedisSessionStore: continuation states in Redis, shared by several server replicas, plus session leases.

Same contract as the directory :class:`~ltx2stream.session.store.SessionStore` (``save`` / ``load`` /
``load_latest`` / ``list`` / ``delete`` / ``cleanup``), so a replica resumes what another one stored:

* **Atomic**: a state is verified (checksum, schema) before it is sent, and one server-side Lua script writes it
  and updates the session's index (drop rewound states above it, keep the ``keep_last`` highest) in one step; a
  reader sees the old set of states or the new one. Loads verify the checksum again (``state.corrupt``).
* **TTL**: every save sets ``ttl_s`` on the session's index and all its states, so a session expires ``ttl_s``
  after its last save (Redis removes it; ``cleanup`` has nothing to do).
* **Lease**: ``acquire_lease(session_id, owner, ttl_s)`` is ``SET NX PX``; ``renew_lease`` and
  ``release_lease`` only act while ``owner`` still holds it (compare-and-set scripts). A replica holds the lease of
  every session it runs and renews it while it runs; a replica that dies loses it after ``ttl_s``, so another
  one can take the session over (``session.busy`` until then).

Keys (``prefix`` default ``ltx2stream:``): ``<p>idx:<sid>`` sorted set of segment indices, ``<p>st:<sid>:<index>``
state bytes, ``<p>lease:<sid>`` owner string. One Redis (or a primary with replicas); not Redis Cluster (the
script touches keys it derives itself).

Needs the ``redis`` pip package (``pip install 'ltx2stream[store]'``); imported only when a ``redis://`` store is
configured. Redis unreachable or failing: ``store.unavailable`` (retryable).
"""

from __future__ import annotations

import builtins
import logging
import time
from pathlib import Path
from typing import Any

from ltx2stream import codes
from ltx2stream.errors import ConfigError, SessionError
from ltx2stream.session.state import SerializedState
from ltx2stream.session.store import CleanupReport, StoredState, check_session_id

logger = logging.getLogger(__name__)

_SAVE = """
local idx_key, st_prefix = KEYS[1], ARGV[1]
local index, ttl, keep = tonumber(ARGV[2]), tonumber(ARGV[4]), tonumber(ARGV[5])
local function st(i) return st_prefix .. string.format('%08d', tonumber(i)) end
redis.call('SET', st(index), ARGV[3], 'PX', ttl)
for _, m in ipairs(redis.call('ZRANGEBYSCORE', idx_key, '(' .. index, '+inf')) do redis.call('DEL', st(m)) end
redis.call('ZREMRANGEBYSCORE', idx_key, '(' .. index, '+inf')
redis.call('ZADD', idx_key, index, index)
local n = redis.call('ZCARD', idx_key)
if n > keep then
  for _, m in ipairs(redis.call('ZRANGE', idx_key, 0, n - keep - 1)) do redis.call('DEL', st(m)) end
  redis.call('ZREMRANGEBYRANK', idx_key, 0, n - keep - 1)
end
redis.call('PEXPIRE', idx_key, ttl)
for _, m in ipairs(redis.call('ZRANGE', idx_key, 0, -1)) do redis.call('PEXPIRE', st(m), ttl) end
return n
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisSessionStore:
    """Continuation states and leases in one Redis database (``redis://host:port/db``)."""

    def __init__(
        self, url: str, *, keep_last: int = 4, ttl_s: float = 24 * 3600.0, prefix: str = "ltx2stream:"
    ) -> None:
        if keep_last < 1 or ttl_s <= 0:
            raise ConfigError(
                f"RedisSessionStore needs keep_last >= 1, ttl_s > 0; got {keep_last}, {ttl_s}",
                code=codes.CONFIG_OUT_OF_RANGE,
            )
        try:
            import redis
        except ImportError as e:
            raise ConfigError(
                f"--store {url} needs the 'redis' package (pip install 'ltx2stream[store]')",
                code=codes.CONFIG_STORE,
            ) from e
        self.url = url
        self.keep_last = keep_last
        self.ttl_s = ttl_s
        self.prefix = prefix
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._redis = redis.Redis.from_url(url, socket_timeout=10.0, socket_connect_timeout=5.0)
        self._save = self._redis.register_script(_SAVE)
        self._renew = self._redis.register_script(_RENEW)
        self._release = self._redis.register_script(_RELEASE)

    # ------------------------------------------------------------------ states
    def save(self, session_id: str, segment_index: int, state: SerializedState | bytes) -> StoredState:
        """Store the state after ``segment_index`` (verified first); see the module docstring for atomicity.

        Raises:
            SessionError: ``session.bad_id``; ``store.unavailable`` (nothing changed, or the whole write did).
            StateError: bytes that are corrupt, foreign or from a future schema.
            ValueError: ``segment_index`` < 0 or different from the state's own ``segment_index``.
        """
        check_session_id(session_id)
        parsed = state if isinstance(state, SerializedState) else SerializedState.from_bytes(state)
        if segment_index < 0 or parsed.segment_index != segment_index:
            raise ValueError(
                f"segment_index {segment_index} does not match the state's {parsed.segment_index}"
            )
        data = state if isinstance(state, bytes) else state.to_bytes()
        args = [self._state_prefix(session_id), segment_index, data, self._ttl_ms(), self.keep_last]
        self._call(
            f"saving {session_id} segment {segment_index}",
            self._save,
            keys=[self._idx(session_id)],
            args=args,
        )
        return StoredState(
            session_id, segment_index, self._where(session_id, segment_index), len(data), time.time()
        )

    def list(self, session_id: str) -> builtins.list[StoredState]:
        """Stored states of a session, by segment index (empty if it has none)."""
        check_session_id(session_id)
        indices = self._call(f"listing {session_id}", self._redis.zrange, self._idx(session_id), 0, -1)
        out = []
        for raw in indices:
            i = int(raw)
            size = self._call("size", self._redis.strlen, self._state_key(session_id, i))
            if size:
                out.append(StoredState(session_id, i, self._where(session_id, i), int(size), time.time()))
        return out

    def load_latest(self, session_id: str) -> SerializedState:
        """The state with the highest segment index (``session.not_found`` when there is none)."""
        stored = self.list(session_id)
        if not stored:
            raise SessionError(
                f"session {session_id} has no stored state (never saved, or expired)",
                code=codes.SESSION_NOT_FOUND,
            )
        return self._read(session_id, stored[-1].segment_index)

    def load(self, session_id: str, segment_index: int) -> SerializedState:
        """The state stored after ``segment_index`` (``session.segment_not_found`` names the stored ones)."""
        stored = [s.segment_index for s in self.list(session_id)]
        if not stored:
            raise SessionError(
                f"session {session_id} has no stored state (never saved, or expired)",
                code=codes.SESSION_NOT_FOUND,
            )
        if segment_index not in stored:
            raise SessionError(
                f"session {session_id} has no state at segment {segment_index}; stored: {stored}",
                code=codes.SESSION_SEGMENT_NOT_FOUND,
            )
        return self._read(session_id, segment_index)

    def delete(self, session_id: str) -> None:
        """Remove every stored state of a session (its lease stays with its holder)."""
        check_session_id(session_id)
        keys = [self._state_key(session_id, s.segment_index) for s in self.list(session_id)]
        self._call(f"deleting {session_id}", self._redis.delete, self._idx(session_id), *keys)

    def cleanup(self, now: float) -> CleanupReport:
        """Nothing to do: Redis expires sessions ``ttl_s`` after their last save."""
        return CleanupReport((), 0, 0)

    # ------------------------------------------------------------------ leases
    def acquire_lease(self, session_id: str, owner: str, ttl_s: float) -> bool:
        """Take the session's lease for ``owner`` if nobody holds it (or ``owner`` already does)."""
        key = self._lease(session_id)
        if self._call("lease", self._redis.set, key, owner, nx=True, px=_ms(ttl_s)):
            return True
        return self.renew_lease(session_id, owner, ttl_s)

    def renew_lease(self, session_id: str, owner: str, ttl_s: float) -> bool:
        """Extend the lease to ``ttl_s`` from now; False when ``owner`` no longer holds it."""
        return bool(
            self._call("lease", self._renew, keys=[self._lease(session_id)], args=[owner, _ms(ttl_s)])
        )

    def release_lease(self, session_id: str, owner: str) -> bool:
        """Drop the lease if ``owner`` holds it."""
        return bool(self._call("lease", self._release, keys=[self._lease(session_id)], args=[owner]))

    def lease_owner(self, session_id: str) -> str | None:
        raw = self._call("lease", self._redis.get, self._lease(session_id))
        return None if raw is None else raw.decode()

    def ping(self) -> bool:
        try:
            return bool(self._redis.ping())
        except self._errors:
            return False

    def close(self) -> None:
        self._redis.close()

    # ------------------------------------------------------------------ helpers
    def _read(self, session_id: str, index: int) -> SerializedState:
        data = self._call(f"loading {session_id}", self._redis.get, self._state_key(session_id, index))
        if data is None:  # expired or rewound between list() and get()
            raise SessionError(
                f"session {session_id}: state of segment {index} was removed while loading",
                code=codes.SESSION_SEGMENT_NOT_FOUND,
            )
        return SerializedState.from_bytes(bytes(data))

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except self._errors as e:
            raise SessionError(
                f"session store {self._safe_url()} failed while {what}: {e}", code=codes.STORE_UNAVAILABLE
            ) from e

    def _safe_url(self) -> str:
        """The URL without a password."""
        _, sep, tail = self.url.rpartition("@")
        return f"redis://***@{tail}" if sep else self.url

    def _ttl_ms(self) -> int:
        return _ms(self.ttl_s)

    def _idx(self, sid: str) -> str:
        return f"{self.prefix}idx:{sid}"

    def _state_prefix(self, sid: str) -> str:
        return f"{self.prefix}st:{sid}:"

    def _state_key(self, sid: str, index: int) -> str:
        return f"{self._state_prefix(sid)}{index:08d}"

    def _lease(self, sid: str) -> str:
        return f"{self.prefix}lease:{check_session_id(sid)}"

    def _where(self, sid: str, index: int) -> Path:
        return Path(self._state_key(sid, index))  # a key, not a file: for messages and logs


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))
