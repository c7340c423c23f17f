"""Admission and fair sharing of one worker: a cap of active sessions, a FIFO queue, round-robin turns.

Thread-safe, no I/O. The event loop adds and removes jobs; the worker thread blocks in :meth:`next_turn` until
some active job has something to do, runs that turn (opening a generator or one segment), then calls
:meth:`finish_turn`. The job that just had a turn goes to the back of the line, so no session starves.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

from ltx2stream import codes
from ltx2stream.errors import SessionError
from ltx2stream.server.job import Job
from ltx2stream.session.state_machine import SegmentPlan


@dataclass(frozen=True)
class Admission:
    """What changed when a job was added or removed: newly active jobs and the new position of every
    waiter."""

    admitted: tuple[Job, ...] = ()
    positions: tuple[tuple[Job, int], ...] = ()


class Scheduler:
    """The active list (at most ``cap`` jobs, round-robin order) and the waiting queue of one worker."""

    def __init__(self, cap: int, max_queue: int) -> None:
        if cap < 1 or max_queue < 0:
            raise ValueError(f"Scheduler needs cap >= 1 and max_queue >= 0; got {cap}, {max_queue}")
        self.cap, self.max_queue = cap, max_queue
        self._cond = threading.Condition()
        self._active: list[Job] = []
        self._waiting: deque[Job] = deque()
        self._current: Job | None = None
        self._stopped = False

    # ---- loop side -----------------------------------------------------------------------------------------

    def add(self, job: Job) -> int | None:
        """Make ``job`` active (returns None) or queue it (returns its position, 0 = next).

        Raises:
            SessionError: ``server.queue_full`` when ``max_queue`` jobs already wait.
        """
        with self._cond:
            if len(self._active) < self.cap:
                self._active.append(job)
                self._cond.notify_all()
                return None
            if len(self._waiting) >= self.max_queue:
                raise SessionError(
                    f"all {self.cap} slots are busy and {len(self._waiting)} sessions wait "
                    f"(queue limit {self.max_queue}); try again later",
                    code=codes.SERVER_QUEUE_FULL,
                )
            self._waiting.append(job)
            return len(self._waiting) - 1

    def remove(self, job: Job) -> tuple[bool, Admission]:
        """Forget ``job``; returns (whether the worker is running a turn of it now, the admission changes)."""
        with self._cond:
            in_use = self._current is job
            if job in self._waiting:
                self._waiting.remove(job)
            elif job in self._active:
                self._active.remove(job)
            admitted = []
            while self._waiting and len(self._active) < self.cap:
                admitted.append(self._waiting.popleft())
                self._active.append(admitted[-1])
            self._cond.notify_all()
            return in_use, Admission(tuple(admitted), tuple((j, i) for i, j in enumerate(self._waiting)))

    def poke(self) -> None:
        """Something a job's ``take_turn`` depends on changed: let the worker look again."""
        with self._cond:
            self._cond.notify_all()

    def stop(self) -> None:
        """Make :meth:`next_turn` return None from now on."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def counts(self) -> tuple[int, int]:
        """(active, waiting)."""
        with self._cond:
            return len(self._active), len(self._waiting)

    @property
    def current(self) -> Job | None:
        """The job whose turn the worker is running, if any."""
        with self._cond:
            return self._current

    # ---- worker side ---------------------------------------------------------------------------------------

    def next_turn(self, timeout: float | None = None) -> tuple[Job, SegmentPlan | str] | None:
        """Block until an active job has a turn (first in round-robin order), or stop / timeout (None)."""
        with self._cond:
            while not self._stopped:
                for job in self._active:
                    turn = job.take_turn()
                    if turn is not None:
                        self._active.remove(job)
                        self._active.append(job)
                        self._current = job
                        return job, turn
                if not self._cond.wait(timeout):
                    return None
            return None

    def finish_turn(self, job: Job) -> bool:
        """End the current turn; returns True when ``job`` was removed meanwhile (it must be released)."""
        with self._cond:
            self._current = None
            self._cond.notify_all()
            return job not in self._active and job not in self._waiting
