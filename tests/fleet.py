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
    """``python -m ltx2stream.cli serve --port <port> <args>`` with this checkout on PYTHONPATH."""
    base = {**os.environ, **(env or {})}
    env = {**base, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "ltx2stream.cli", "serve", "--port", str(port), "--web-root", "/nonexistent"]
    return subprocess.Popen(
        cmd + args, env=env, stdout=subprocess.DEVNULL, stderr=log.open("ab"), start_new_session=True
    )


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Until ``/readyz`` answers 200 (raises if the process exits or the deadline passes)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve on port {port} exited with {proc.returncode}")
        try:
            if http_get(port, "/readyz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"serve on port {port} not ready after {timeout_s} s")


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
