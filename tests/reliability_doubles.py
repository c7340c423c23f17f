"""Test-only host factories for the crash tests (loaded by ``ltx2stream serve --host-factory`` in a subprocess).

``stalling_store_host``: the real tiny pipeline host, in a server whose store write of one segment stops
half-way (the temp file holds half the bytes) and announces it with a marker file, so a test can ``kill -9``
the server exactly during the state write. Everything else is the product's code.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from ltx2stream.commands.serve import pipeline_host
from ltx2stream.session import store
from ltx2stream.session.api import ModelHost

STALL_SEGMENT_ENV = "LTX2STREAM_TEST_STALL_SEGMENT"  # the segment index whose write stalls
MARKER = "WRITING"  # created in the store root once the stalled write is half done


def stalling_store_host(args: argparse.Namespace, device: str) -> ModelHost:
    """``pipeline_host`` after patching the store so the write of segment ``$LTX2STREAM_TEST_STALL_SEGMENT``
    stalls forever half-way (after its first half reached the temp file)."""
    stall = f"seg-{int(os.environ[STALL_SEGMENT_ENV]):08d}.ltxstate"
    write_all = store._write_all

    def stalling(fd: int, data: bytes) -> None:
        target = os.readlink(f"/proc/self/fd/{fd}")
        if f"{store._TEMP_PREFIX}{stall}." not in target:
            write_all(fd, data)
            return
        write_all(fd, data[: len(data) // 2])
        os.fsync(fd)
        (Path(args.store_dir) / MARKER).write_text(target)
        time.sleep(3600)  # until the test kills the process

    store._write_all = stalling  # type: ignore[assignment]
    return pipeline_host(args, device)
