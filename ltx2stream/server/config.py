"""Server settings: one frozen dataclass, validated once, grouped like the websockets ``serve()`` options."""

from __future__ import annotations

import dataclasses
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from ltx2stream import codes
from ltx2stream.errors import ConfigError
from ltx2stream.protocol import ProtocolLimits

MiB = 1 << 20


@dataclass(frozen=True)
class ServerConfig:
    """Everything the server needs besides the model host factory.

    Network and security: host, port: where to listen (localhost by default; port 0 picks a free port). token:
    optional bearer token; clients send ``Authorization: Bearer <t>``, ``?token=<t>`` or the subprotocol
    ``bearer.<t>`` (next to ``ltx2stream``). ``/metrics`` needs it too. origins: allowed ``Origin`` values;
    empty = only requests without ``Origin`` (programs) or whose ``Origin`` host equals the ``Host`` header
    (the page served at ``/``). Scheduling: max_active_per_worker: sessions sharing one worker round-robin;
    more wait in a FIFO queue. max_queue: waiting sessions per worker before ``server.queue_full``. Flow
    control and timeouts: send_high_water: queued bytes per connection above which its session stops starting
    segments. slow_client_timeout_s: a send blocked this long closes the connection (``client.too_slow``).
    open_timeout_s: time to send ``open`` after the handshake (``session.timeout``). write_limit: websockets
    transport write buffer (bytes) above which ``send`` waits. ping_interval_s, ping_timeout_s,
    close_timeout_s: websockets keepalive and closing handshake. shutdown_timeout_s: how long a graceful
    shutdown waits for sessions to checkpoint and close. Storage and media: store_dir: where continuation
    states are kept (``SessionStore``); store_ttl_s, store_keep_last as there. store_cleanup_interval_s: how
    often expired states are removed. store_url: ``redis://`` URL of a store shared by several replicas (then
    states are also saved after every delivered segment, and each session holds a lease of ``lease_ttl_s``
    renewed while it runs, owner ``replica``); persist_every_segment: save the state of every delivered segment
    at once (default; off the worker thread), so a crash or ``kill -9`` loses at most the segment in flight.
    Always on with ``store_url``. encode_threads: threads of the shared encoder pool (PyAV releases the GIL);
    torch_threads, x264_threads: the rest of the thread budget (``server/threads.py``; ``serve`` derives all
    three from the cores). encoder_processes: run the session encoders in ``encode_threads`` child processes
    (``media/process.py``) instead of this process, so their Python never takes the model worker's GIL
    (``serve`` turns it on; off here so that embedding programs and tests start no processes unasked).
    encode_during_decode: which of a segment's pieces are encoded while the worker still decodes it, ``"all"``
    or only the ``"first"`` (``server/streaming.py``; ``serve --encode-during-decode``).
    progress_interval_s: the least time between two ``progress`` messages of one stage of a session (the first
    step of each stage goes at once, the newest held step when the interval is over; 0: one per step).
    switch_interval_s: Python's GIL switch interval (``sys.setswitchinterval``) from ``start`` to ``shutdown``
    (process-wide; None leaves it). A CPU worker's torch thread gives the GIL up around every op and waits up to
    this long to get it back from the event loop or an encoder thread (``serve`` sets 1 ms for CPU workers). web_root: directory served at ``/`` (``index.html``) when it exists.
    """

    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None
    origins: tuple[str, ...] = ()
    max_active_per_worker: int = 2
    max_queue: int = 16
    send_high_water: int = 8 * MiB
    slow_client_timeout_s: float = 30.0
    open_timeout_s: float = 10.0
    write_limit: int = 256 * 1024
    ping_interval_s: float | None = 20.0
    ping_timeout_s: float | None = 20.0
    close_timeout_s: float = 5.0
    shutdown_timeout_s: float = 15.0
    store_dir: Path = Path("ltx2stream-sessions")
    store_url: str | None = None  # redis://host:port/db: a store shared by replicas (docs/deploy.md)
    persist_every_segment: bool = True  # save after every delivered segment (always with store_url)
    lease_ttl_s: float = 15.0  # session leases (one replica per session); a dead replica's run out after this
    replica: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    store_ttl_s: float = 24 * 3600.0
    store_keep_last: int = 4
    store_cleanup_interval_s: float = 300.0
    encode_threads: int = 2
    torch_threads: int | None = None  # intra-op threads of each worker (None: leave torch's setting)
    x264_threads: int | None = None  # threads of each x264 encoder (None: x264's default)
    encoder_processes: bool = False  # encoders in child processes (serve's default: on)
    encode_during_decode: str = "all"  # "all" pieces or only the "first" (serve --encode-during-decode)
    progress_interval_s: float = 0.05  # least time between two progress messages of one stage (0: every step)
    switch_interval_s: float | None = None  # the GIL's switch interval while serving (None: Python's, 5 ms)
    web_root: Path | None = Path("clients/web")
    limits: ProtocolLimits = field(default_factory=ProtocolLimits)

    def __post_init__(self) -> None:
        positive = (
            "max_active_per_worker",
            "send_high_water",
            "slow_client_timeout_s",
            "open_timeout_s",
            "write_limit",
            "close_timeout_s",
            "shutdown_timeout_s",
            "store_ttl_s",
            "lease_ttl_s",
            "store_keep_last",
            "store_cleanup_interval_s",
            "encode_threads",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(
                    f"server.{name} must be > 0; got {getattr(self, name)!r}", code=codes.CONFIG_OUT_OF_RANGE
                )
        for name in ("torch_threads", "x264_threads"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(
                    f"server.{name} must be >= 1 or None; got {getattr(self, name)!r}",
                    code=codes.CONFIG_OUT_OF_RANGE,
                )
        if self.switch_interval_s is not None and not 0 < self.switch_interval_s <= 1:
            raise ConfigError(
                f"server.switch_interval_s must be in (0, 1] or None; got {self.switch_interval_s!r}",
                code=codes.CONFIG_OUT_OF_RANGE,
            )
        if not self.progress_interval_s >= 0:
            raise ConfigError(
                f"server.progress_interval_s must be >= 0; got {self.progress_interval_s!r}",
                code=codes.CONFIG_OUT_OF_RANGE,
            )
        if self.encode_during_decode not in ("all", "first"):
            raise ConfigError(
                f"server.encode_during_decode must be 'all' or 'first'; got {self.encode_during_decode!r}",
                code=codes.CONFIG_OUT_OF_RANGE,
            )
        if self.max_queue < 0 or not 0 <= self.port <= 65535:
            raise ConfigError(
                f"server.max_queue must be >= 0 and port in [0, 65535]; got {self.max_queue}, {self.port}",
                code=codes.CONFIG_OUT_OF_RANGE,
            )
        if self.token is not None and (
            not self.token or not self.token.isascii() or not self.token.isprintable() or " " in self.token
        ):
            raise ConfigError(
                "server.token must be non-empty printable ASCII without spaces",
                code=codes.CONFIG_OUT_OF_RANGE,
            )
        if self.limits.sender != "client":
            raise ConfigError(
                "server.limits must decode client messages (sender='client')", code=codes.CONFIG_OUT_OF_RANGE
            )

    def replace(self, **changes: object) -> ServerConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
