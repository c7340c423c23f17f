"""Writes the schema-1 continuation-state fixtures of tests/test_continuation_compat.py.

The committed files were written by release commit 14784c3 (before ContinuationState got typed fields) with
``LTX2STREAM_CACHE=$(mktemp -d) PYTHONPATH=. python tests/data/make_state_fixtures.py tests/data``. Re-running it on
a later release checks that the writer still produces what older releases wrote; it is not run by the suite.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ltx2stream.session.api import NullSink, SegmentRequest, SessionSettings
from ltx2stream.session.controller import ContinuationOptions, SessionController
from ltx2stream.session.host import PipelineHost

# name -> settings, options, requests (the state after the last request is written)
FIXTURES = {
    "two_stage_seg1": (
        SessionSettings("tiny-ltx2", 64, 64, 12.0, 25, 1, 5),
        ContinuationOptions(carry_strength=0.8, audio_context=2, carry_noise=0.1),
        (SegmentRequest(0, "prompt 0", 100), SegmentRequest(1, "prompt 1", 101, "blend", "prompt 9", 0.5)),
    ),
    "one_stage_seg1": (
        SessionSettings("tiny-ltx2-one-stage", 64, 64, 12.0, 17, 1, 3),
        ContinuationOptions(carry_noise=0.2, audio_context=1),
        (SegmentRequest(0, "prompt 0", 100), SegmentRequest(1, "prompt 1", 101)),
    ),
}


def main(out: Path) -> None:
    host = PipelineHost(("tiny-ltx2", "tiny-ltx2-one-stage"))
    for name, (settings, options, requests) in FIXTURES.items():
        controller = SessionController(host.pipeline(settings.preset), settings, options=options)
        for request in requests:
            controller.run_segment(request, NullSink())
        (out / f"state_v1_{name}.ltxstate").write_bytes(controller.snapshot())


if __name__ == "__main__":
    main(Path(sys.argv[1]))
