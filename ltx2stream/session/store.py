"""On-disk store of continuation states: one directory per session, one file per segment, atomic writes.

Layout: ``<root>/<session_id>/seg-<index:08d>.ltxstate`` (safetensors, see :mod:`ltx2stream.session.state`).
Writes go to a ``.tmp-*`` file in the same directory, are flushed and fsynced, renamed over the target with
``os.replace`` and the directory is fsynced, so a reader sees the old file or the new one, never a torn one;
a failed write leaves the previous states untouched. Temp files are invisible to readers and removed by
:meth:`SessionStore.cleanup` once older than ``temp_grace_s``.

Timeline rule: saving segment k drops stored states with an index above k (they belong to a timeline this
session has rewound; resume under a new session id to branch and keep both). Then only the ``keep_last``
highest indices are kept.
"""

from __future__ import annotations

import builtins
import logging
import os
import re
import secrets
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ltx2stream import codes
from ltx2stream.errors import ConfigError, SessionError
from ltx2stream.session.state import SerializedState

logger = logging.getLogger(__name__)

SESSION_ID_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")
_STATE_RE = re.compile(r"seg-(\d{8})\.ltxstate")
_TEMP_PREFIX = ".tmp-"
_CHUNK = 1 << 20


def new_session_id() -> str:
    """A fresh random id (22 URL-safe characters, 128 bits)."""
    return secrets.token_urlsafe(16)


def check_session_id(session_id: object) -> str:
    """Return ``session_id`` if it is 8-64 characters of ``[A-Za-z0-9_-]``.

    Raises:
        SessionError: ``session.bad_id`` (this is what keeps ``../`` and absolute paths out of the store).
    """
    if not isinstance(session_id, str) or SESSION_ID_RE.fullmatch(session_id) is None:
        raise SessionError(
            f"session id {session_id!r} must be 8-64 characters of [A-Za-z0-9_-]", code=codes.SESSION_BAD_ID
        )
    return session_id


@dataclass(frozen=True)
class StoredState:
    """One stored state file."""

    session_id: str
    segment_index: int
    path: Path
    size: int
    mtime: float


@dataclass(frozen=True)
class CleanupReport:
    """What :meth:`SessionStore.cleanup` removed."""

    sessions: tuple[str, ...]
    files: int
    bytes_freed: int


class StateStore(Protocol):
    """What the server needs of a store: :class:`SessionStore` (a directory) or
    :class:`~ltx2stream.session.store_redis.RedisSessionStore` (shared by replicas)."""

    def save(self, session_id: str, segment_index: int, state: SerializedState | bytes) -> StoredState: ...
    def list(self, session_id: str) -> builtins.list[StoredState]: ...
    def load_latest(self, session_id: str) -> SerializedState: ...
    def load(self, session_id: str, segment_index: int) -> SerializedState: ...
    def delete(self, session_id: str) -> None: ...
    def cleanup(self, now: float) -> CleanupReport: ...
    def acquire_lease(self, session_id: str, owner: str, ttl_s: float) -> bool: ...
    def renew_lease(self, session_id: str, owner: str, ttl_s: float) -> bool: ...
    def release_lease(self, session_id: str, owner: str) -> bool: ...


def open_store(spec: str | Path, *, keep_last: int = 4, ttl_s: float = 24 * 3600.0) -> StateStore:
    """``redis://...`` / ``rediss://...`` -> :class:`RedisSessionStore`; anything else is a directory."""
    text = str(spec)
    if text.startswith(("redis://", "rediss://", "unix://")):
        from ltx2stream.session.store_redis import RedisSessionStore

        return RedisSessionStore(text, keep_last=keep_last, ttl_s=ttl_s)
    if "://" in text:
        raise ConfigError(
            f"--store {text!r} is neither a directory nor a redis:// URL", code=codes.CONFIG_STORE
        )
    return SessionStore(text, keep_last=keep_last, ttl_s=ttl_s)


class SessionStore:
    """Continuation states on disk, bounded by count per session, age and total size.

    One writer per session at a time (the session controller serialises its own saves); readers and
    :meth:`cleanup` may run concurrently with it: they never see a partial file, at worst a state removed
    under them (reported as ``session.not_found`` / ``store.write_failed``).
    """

    def __init__(
        self,
        root: str | Path,
        *,
        keep_last: int = 4,
        ttl_s: float = 24 * 3600.0,
        max_total_bytes: int = 8 << 30,
        temp_grace_s: float = 600.0,
    ) -> None:
        if keep_last < 1 or ttl_s <= 0 or max_total_bytes <= 0 or temp_grace_s < 0:
            raise ConfigError(
                f"SessionStore needs keep_last >= 1, ttl_s > 0, max_total_bytes > 0, temp_grace_s >= 0; "
                f"got {keep_last}, {ttl_s}, {max_total_bytes}, {temp_grace_s}",
                code=codes.CONFIG_OUT_OF_RANGE,
            )
        self.root = Path(root)
        self.keep_last = keep_last
        self.ttl_s = ttl_s
        self.max_total_bytes = max_total_bytes
        self.temp_grace_s = temp_grace_s
        self.root.mkdir(parents=True, exist_ok=True)
        self._leases: dict[str, tuple[str, float]] = {}  # session id -> (owner, monotonic expiry)
        self._lease_lock = threading.Lock()

    def save(self, session_id: str, segment_index: int, state: SerializedState | bytes) -> StoredState:
        """Store the state after ``segment_index`` atomically; bytes are verified before anything is written.

        Raises:
            SessionError: ``session.bad_id``; ``store.write_failed`` (the previous states are intact).
            StateError: bytes that are corrupt, foreign or from a future schema.
            ValueError: ``segment_index`` < 0 or different from the state's own ``segment_index``.
        """
        directory = self._dir(session_id)
        parsed = state if isinstance(state, SerializedState) else SerializedState.from_bytes(state)
        if segment_index < 0 or parsed.segment_index != segment_index:
            raise ValueError(
                f"segment_index {segment_index} does not match the state's {parsed.segment_index}"
            )
        data = state if isinstance(state, bytes) else state.to_bytes()
        target = directory / _state_name(segment_index)
        try:
            directory.mkdir(exist_ok=True)
            _atomic_write(directory, target, data)
        except OSError as e:
            raise SessionError(
                f"session {session_id}: writing segment {segment_index} failed ({e}); previous "
                f"states are intact",
                code=codes.STORE_WRITE_FAILED,
            ) from e
        self._prune(session_id, segment_index)
        st = target.stat()
        return StoredState(session_id, segment_index, target, st.st_size, st.st_mtime)

    def list(self, session_id: str) -> builtins.list[StoredState]:
        """Stored states of a session, by segment index (empty if the session has none)."""
        directory = self._dir(session_id)
        out = []
        for path in directory.glob("seg-*.ltxstate") if directory.is_dir() else ():
            match = _STATE_RE.fullmatch(path.name)
            if match is None:
                continue
            try:
                st = path.stat()
            except FileNotFoundError:  # removed by a concurrent cleanup
                continue
            out.append(StoredState(session_id, int(match.group(1)), path, st.st_size, st.st_mtime))
        return sorted(out, key=lambda s: s.segment_index)

    def load_latest(self, session_id: str) -> SerializedState:
        """The state with the highest segment index.

        Raises:
            SessionError: ``session.bad_id``, ``session.not_found``.
            StateError: the stored file is corrupt, foreign or from a future schema.
        """
        stored = self.list(session_id)
        if not stored:
            raise SessionError(
                f"session {session_id} has no stored state (never saved, or expired)",
                code=codes.SESSION_NOT_FOUND,
            )
        return _read(stored[-1])

    def load(self, session_id: str, segment_index: int) -> SerializedState:
        """The state stored after ``segment_index``.

        Raises:
            SessionError: ``session.bad_id``, ``session.not_found``, ``session.segment_not_found`` (names the
                stored indices).
            StateError: the stored file is corrupt, foreign or from a future schema.
        """
        stored = {s.segment_index: s for s in self.list(session_id)}
        if not stored:
            raise SessionError(
                f"session {session_id} has no stored state (never saved, or expired)",
                code=codes.SESSION_NOT_FOUND,
            )
        if segment_index not in stored:
            raise SessionError(
                f"session {session_id} has no state at segment {segment_index}; stored: {sorted(stored)}",
                code=codes.SESSION_SEGMENT_NOT_FOUND,
            )
        return _read(stored[segment_index])

    def delete(self, session_id: str) -> None:
        """Remove every stored state of a session (no error if there is none)."""
        shutil.rmtree(self._dir(session_id), ignore_errors=True)

    def cleanup(self, now: float) -> CleanupReport:
        """Drop sessions idle longer than ``ttl_s``, stale temp files, then the oldest sessions over the size bound.

        A session's age is that of its newest state file; ``now`` is a ``time.time()`` value.
        """
        removed: builtins.list[str] = []
        files = freed = 0
        sessions = self._sessions()
        for sid, (newest, size, count) in sorted(sessions.items(), key=lambda kv: kv[1][0]):
            total = sum(s[1] for s in sessions.values())
            if now - newest > self.ttl_s or total > self.max_total_bytes:
                self.delete(sid)
                removed.append(sid)
                files, freed = files + count, freed + size
                del sessions[sid]
        freed += self._remove_stale_temps(now)
        if removed:
            logger.info(
                "store cleanup: removed %d session(s), %d file(s), %d bytes", len(removed), files, freed
            )
        return CleanupReport(tuple(removed), files, freed)

    # A directory serves one server process: leases live in this process (same semantics as Redis's).
    def acquire_lease(self, session_id: str, owner: str, ttl_s: float) -> bool:
        """Take (or extend) the session's lease for ``owner`` unless another owner holds an unexpired one."""
        check_session_id(session_id)
        with self._lease_lock:
            held = self._leases.get(session_id)
            if held is not None and held[0] != owner and held[1] > time.monotonic():
                return False
            self._leases[session_id] = (owner, time.monotonic() + ttl_s)
            return True

    def renew_lease(self, session_id: str, owner: str, ttl_s: float) -> bool:
        with self._lease_lock:
            held = self._leases.get(session_id)
            if held is None or held[0] != owner or held[1] <= time.monotonic():
                return False
            self._leases[session_id] = (owner, time.monotonic() + ttl_s)
            return True

    def release_lease(self, session_id: str, owner: str) -> bool:
        with self._lease_lock:
            held = self._leases.get(session_id)
            if held is None or held[0] != owner:
                return False
            del self._leases[session_id]
            return True

    def _dir(self, session_id: str) -> Path:
        return self.root / check_session_id(session_id)

    def _prune(self, session_id: str, newest: int) -> None:
        stored = self.list(session_id)
        rewound = [s for s in stored if s.segment_index > newest]
        kept = [s for s in stored if s.segment_index <= newest]
        for s in rewound + kept[: max(len(kept) - self.keep_last, 0)]:
            s.path.unlink(missing_ok=True)
            logger.debug("store: dropped %s segment %d", session_id, s.segment_index)

    def _sessions(self) -> dict[str, tuple[float, int, int]]:
        """session id -> (newest mtime, bytes, file count) for every session with at least one state."""
        out: dict[str, tuple[float, int, int]] = {}
        for entry in self.root.iterdir():
            if not entry.is_dir() or SESSION_ID_RE.fullmatch(entry.name) is None:
                continue
            stored = self.list(entry.name)
            if stored:
                out[entry.name] = (max(s.mtime for s in stored), sum(s.size for s in stored), len(stored))
            elif not any(entry.iterdir()):
                entry.rmdir()
        return out

    def _remove_stale_temps(self, now: float) -> int:
        freed = 0
        for temp in self.root.glob(f"*/{_TEMP_PREFIX}*"):
            try:
                st = temp.stat()
                if now - st.st_mtime > self.temp_grace_s:
                    temp.unlink()
                    freed += st.st_size
            except FileNotFoundError:
                continue
        return freed


def _read(stored: StoredState) -> SerializedState:
    try:
        return SerializedState.load(stored.path)
    except FileNotFoundError as e:  # removed by cleanup or a rewind between list() and the read
        raise SessionError(
            f"session {stored.session_id}: state of segment {stored.segment_index} was removed while loading",
            code=codes.SESSION_SEGMENT_NOT_FOUND,
        ) from e


def _state_name(segment_index: int) -> str:
    return f"seg-{segment_index:08d}.ltxstate"


def _atomic_write(directory: Path, target: Path, data: bytes) -> None:
    """Temp file in ``directory`` → write → flush/fsync → os.replace → fsync(directory)."""
    temp = directory / f"{_TEMP_PREFIX}{target.name}.{secrets.token_hex(4)}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, target)
    except BaseException:
        _discard_temp(temp)
        raise
    _fsync_dir(directory)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view[:_CHUNK])
        view = view[written:]


def _discard_temp(temp: Path) -> None:
    try:
        temp.unlink(missing_ok=True)
    except OSError:
        logger.warning("store: could not remove temp file %s", temp.name)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
