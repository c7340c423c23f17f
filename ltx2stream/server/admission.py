"""What ``open`` turns into before ``accepted``: effective settings, the resume state, the seed, the MIME
type.

These checks run before a session takes a queue slot, so a bad request costs the server no worker time:
the stored or uploaded state is parsed and checked against the requested settings here (off the loop).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from ltx2stream import protocol as P
from ltx2stream.pipeline.capacity import SegmentCost
from ltx2stream.pipeline.capacity import check_cost as check_capacity
from ltx2stream.pipeline.presets import PRESETS
from ltx2stream.server.streaming import EncoderFactory
from ltx2stream.session.api import ImageCondition, SessionSettings
from ltx2stream.session.state import SerializedState
from ltx2stream.session.store import StateStore
from ltx2stream.types import MAX_SEED

PROBE_SAMPLE_RATE = (
    48_000  # only the video codec string depends on the settings; audio is mp4a.40.2 at any rate
)


@dataclass(frozen=True)
class ResumePoint:
    """A continuation state to start from: its bytes, the segment it ends with, and where it came from."""

    state: bytes
    segment_index: int
    next_seed: int  # the seed the next segment would have had in the uninterrupted session
    stored_id: str | None  # the store session id it was loaded from (None: uploaded blob)


def session_settings(settings: P.Settings) -> SessionSettings:
    """The wire settings as the generator's settings (same fields, one to one)."""
    return SessionSettings(**dataclasses.asdict(settings))


def check_cost(preset: str, width: int, height: int, frames: int, fps: float) -> SegmentCost | None:
    """Refuse a segment beyond what ``preset`` can serve, before any compute (cheap: call it on the loop).

    Returns the segment's cost, or None for a preset this package does not define (a host factory's own
    presets: their host decides). Used by ``open`` here and by the HTTP video API.

    Raises:
        InputError: ``cost.resolution`` / ``cost.frames`` / ``cost.tokens`` / ``cost.memory`` (the message names
            the limit and the requested value).
    """
    known = PRESETS.get(preset)
    if known is None:
        return None
    return check_capacity(known.capacity, width, height, frames, fps)


def image_condition(image: P.Image | None) -> ImageCondition | None:
    return None if image is None else ImageCondition(image.data, image.strength, image.frame)


async def load_resume(
    resume: P.ResumeFrom | None, settings: SessionSettings, store: StateStore
) -> ResumePoint | None:
    """Load and check the state named by ``open.resume_from`` (in a thread: disk, checksum).

    Raises:
        SessionError: ``session.not_found`` / ``session.segment_not_found``.
        StateError: ``state.corrupt`` / ``state.foreign`` / ``state.future_version`` / ``state.incompatible``.
    """
    if resume is None:
        return None
    return await asyncio.to_thread(_load_resume, resume, settings, store)


def _load_resume(resume: P.ResumeFrom, settings: SessionSettings, store: StateStore) -> ResumePoint:
    if resume.session_id is not None:
        parsed = (
            store.load_latest(resume.session_id)
            if resume.segment_index is None
            else store.load(resume.session_id, resume.segment_index)
        )
        data = parsed.to_bytes()
    else:
        assert resume.state is not None
        data = resume.state
        parsed = SerializedState.from_bytes(data)
    parsed.check_compatible(
        {"preset": settings.preset, "width": settings.width, "height": settings.height, "fps": settings.fps}
    )
    seeds = parsed.meta["seeds"]
    next_seed = (int(seeds[-1]) + 1) & MAX_SEED if seeds else settings.seed
    return ResumePoint(data, parsed.segment_index, next_seed, resume.session_id)


class MimeCache:
    """The MSE MIME type (with codec string) a session's encoder will produce, probed once per size and
    rate."""

    def __init__(self, encoder_factory: EncoderFactory, pool: Executor) -> None:
        self._factory, self._pool = encoder_factory, pool
        self._known: dict[tuple[int, int, float], str] = {}

    async def mime_for(self, settings: SessionSettings) -> str:
        key = (settings.width, settings.height, settings.fps)
        if key not in self._known:
            loop = asyncio.get_running_loop()
            self._known[key] = await loop.run_in_executor(self._pool, _probe, self._factory, settings)
        return self._known[key]


def _probe(factory: Callable[[SessionSettings, int], object], settings: SessionSettings) -> str:
    encoder = factory(settings, PROBE_SAMPLE_RATE)
    try:
        return str(encoder.mime)  # type: ignore[attr-defined]
    finally:
        encoder.close()  # type: ignore[attr-defined]
