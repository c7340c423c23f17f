"""The thread budget: torch threads per worker, encoder pool threads and x264 threads per encoder, from the cores.

A CPU worker's model work and the encoders compete for the same cores; oversubscribing them (torch's default
of one thread per core plus x264's default of 1.5 threads per core per session) makes every segment slower
than running them one after another. The budget gives each CPU worker ``torch`` threads and the shared encoder
pool ``encode × x264`` threads, with ``workers × torch + encode × x264 ≤ cores``:

* CPU workers: the encoders get ``encode = max(1, cores // 8)`` pool threads of one x264 thread each (x264 on
  one thread keeps up with a CPU model at the sizes a CPU can generate), the rest of the cores go to torch,
  split evenly over the workers (at least one each).
* GPU workers: torch needs one thread per worker (it launches kernels); the encoders get the other cores,
  ``encode = min(2 × workers, free cores)`` pool threads sharing them as x264 threads.

``switch_interval_s`` follows from the same question: 1 ms with CPU workers instead of Python's 5 ms (the
worker's torch thread waits less for the GIL behind the event loop and the encoder threads).

Any of the three can be given explicitly (``serve --torch-threads/--encode-threads/--x264-threads``,
``--cores`` for the core count); the others are then derived from what is left. A budget whose total exceeds
the cores is allowed when asked for explicitly, and reported (``ThreadBudget.oversubscribed``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ltx2stream import codes
from ltx2stream.errors import ConfigError


@dataclass(frozen=True)
class ThreadBudget:
    """Threads per role; ``total`` = what runs at once when every worker and encoder is busy."""

    cores: int
    workers: int  # model workers (devices) in this process
    cpu_workers: bool  # the workers run the model on the CPU (their torch threads do the work)
    torch: int  # intra-op threads of each worker
    encode: int  # threads of the shared encoder pool (sessions encoding at once)
    x264: int  # threads of each x264 encoder

    @property
    def total(self) -> int:
        model = self.workers * self.torch if self.cpu_workers else self.workers
        return model + self.encode * self.x264

    @property
    def oversubscribed(self) -> bool:
        return self.total > self.cores

    @property
    def switch_interval_s(self) -> float | None:
        """The GIL switch interval while serving: 1 ms with CPU workers (their torch thread takes the GIL back
        after every op; with Python's 5 ms it waits up to that long behind the event loop), else Python's."""
        return 0.001 if self.cpu_workers else None


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def plan_threads(
    cores: int,
    workers: int,
    *,
    cpu_workers: bool,
    torch: int | None = None,
    encode: int | None = None,
    x264: int | None = None,
) -> ThreadBudget:
    """The budget for ``workers`` model workers on ``cores`` cores; explicit values win (module docstring)."""
    for name, value in (("cores", cores), ("workers", workers), ("torch", torch), ("encode", encode),
                        ("x264", x264)):  # fmt: skip
        if value is not None and value < 1:
            raise ConfigError(f"threads.{name} must be >= 1; got {value}", code=codes.CONFIG_OUT_OF_RANGE)
    if cpu_workers:
        enc = encode or max(1, cores // 8)
        x = x264 or 1
        t = torch or max(1, (cores - enc * x) // workers)
    else:
        t = torch or 1
        free = max(1, cores - workers)
        enc = encode or max(1, min(2 * workers, free))
        x = x264 or max(1, free // enc)
    return ThreadBudget(cores, workers, cpu_workers, t, enc, x)
