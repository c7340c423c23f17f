"""Real processes for the scale-out tests: ``ltx2stream serve`` replicas, readiness polling, clean stops."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def http_get(port: int, path: str, timeout: float = 2.0) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def start_serve(
    port: int, args: list[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``python -m ltx2stream.cli serve --port <port> <args>`` with this checkout on PYTHONPATH; stderr to ``log``
    (``wait_ready`` quotes it when the replica fails)."""
    base = {**os.environ, **(env or {})}
    env = {**base, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "ltx2stream.cli", "serve", "--port", str(port), "--web-root", "/nonexistent"]
    proc = subprocess.Popen(
        cmd + args, env=env, stdout=subprocess.DEVNULL, stderr=log.open("ab"), start_new_session=True
    )
    _LOGS[proc.pid] = log
    return proc


_LOGS: dict[int, Path] = {}


def ready_budget_s(processes: int, per_process_s: float = 90.0) -> float:
    """Seconds to allow ``processes`` replicas that load and warm up at once: ``per_process_s`` each (a tiny
    preset warms up in ~25 s on one loaded core), times how oversubscribed the machine is right now (1-minute
    load per core, at least 1). A replica that *fails* is reported at once by ``wait_ready``; this budget
    only bounds a slow one."""
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    return per_process_s * processes * max(1.0, load)


def _log_tail(proc: subprocess.Popen[bytes], lines: int = 25) -> str:
    log = _LOGS.get(proc.pid)
    if log is None or not log.exists():
        return ""
    kept = [ln for ln in log.read_text(errors="replace").splitlines() if "websockets.server" not in ln]
    return "\n--- " + str(log) + " (tail) ---\n" + "\n".join(kept[-lines:])


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout_s: float) -> float:
    """Until ``/readyz`` answers 200; returns the seconds it took. Raises at once when the process exits or
    ``/readyz`` says ``unhealthy`` (its model host failed to load or warm up: it would never turn ready), and
    when the deadline passes; the error quotes the replica's log."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if proc.poll() is not None:
            raise RuntimeError(f"serve on port {port} exited with {proc.returncode}{_log_tail(proc)}")
        try:
            status, body = http_get(port, "/readyz")
        except OSError:
            status, body = 0, ""
        if status == 200:
            return time.monotonic() - t0
        if status == 503 and body.strip() == "unhealthy":
            raise RuntimeError(f"serve on port {port} is unhealthy (its host failed){_log_tail(proc)}")
        time.sleep(0.25)
    raise TimeoutError(f"serve on port {port} not ready after {timeout_s:.0f} s{_log_tail(proc)}")


def stop(proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    """SIGTERM, then SIGKILL of the whole process group (followers included) if it lingers."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout_s)
    with contextlib.suppress(
        ProcessLookupError
    ):  # leftover children of the group (sequence-parallel followers)
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
