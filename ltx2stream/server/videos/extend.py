"""``POST /v1/videos/extensions``: continue a completed video, or a live session that ended resumably, from its
stored continuation state (latents, not pixels).

The extension is a new job whose first segment is the parent's next one, with the seed the parent's next
segment would have had: exactly what a live session does when it is steered to the new prompt at that segment,
so both produce the same latents. Its settings are the parent's (read from the state for a live session).
"""

from __future__ import annotations

import asyncio

from ltx2stream import codes
from ltx2stream import protocol as P
from ltx2stream.errors import ConfigError, LTX2StreamError, SessionError
from ltx2stream.pipeline.presets import PRESETS
from ltx2stream.server.videos.forms import Form
from ltx2stream.server.videos.jobs import VideoJobs
from ltx2stream.server.videos.records import COMPLETED, VideoRecord, now
from ltx2stream.server.videos.requests import VideoPlan, extension_plan, parent_id, seconds_of
from ltx2stream.session.api import SessionSettings
from ltx2stream.session.state import SerializedState
from ltx2stream.session.store import check_session_id, new_session_id
from ltx2stream.types import MAX_SEED, latent_frames_of


async def extension_record(
    form: Form, jobs: VideoJobs, served: tuple[str, ...], limits: P.ProtocolLimits
) -> tuple[VideoRecord, VideoPlan, bytes]:
    """The new job's record, plan and starting state.

    Raises:
        SessionError: ``video.not_found`` (no such video or stored session), ``video.not_completed`` (the
            parent failed or still runs), ``session.busy`` (a live session that has not ended).
        ProtocolError / ConfigError: bad fields, a preset no longer served.
    """
    parent = parent_id(form, jobs.find_file)
    record = jobs.get(parent)
    if record is not None and record.status != COMPLETED:
        raise SessionError(
            f"video {parent} is {record.status}; only a completed video can be extended"
            + (" (wait for it to complete)" if not record.finished else ""),
            code=codes.VIDEO_NOT_COMPLETED,
        )
    if record is None and jobs.server.session_live(parent):
        raise SessionError(
            f"session {parent} is still live; stop it first (its state is stored when it ends)",
            code=codes.SESSION_BUSY,
        )
    state = await asyncio.to_thread(_load, jobs, parent, record)
    settings = _settings(state, record)
    if settings.preset not in served:
        raise ConfigError(
            f"model {settings.preset} of video {parent} is not served here; models: {', '.join(served)}",
            code=codes.CONFIG_UNKNOWN_PRESET,
        )
    plan = extension_plan(form, settings, limits)
    seconds = seconds_of(settings, plan.segments, first=False)
    start = state.segment_index + 1
    parent_seconds = record.total_seconds if record is not None else seconds_of(settings, start, first=True)
    new = VideoRecord(
        id=f"video_{new_session_id()}",
        prompt=plan.prompt,
        settings=settings,
        first_segment=start,
        segments=plan.segments,
        seconds=seconds,
        total_seconds=parent_seconds + seconds,
        created_at=now(),
        extends=parent,
    )
    return new, plan, state.to_bytes()


def _load(jobs: VideoJobs, parent: str, record: VideoRecord | None) -> SerializedState:
    try:
        check_session_id(parent)
        if record is not None:
            return jobs.store.load(parent, record.last_segment)
        return jobs.store.load_latest(parent)
    except LTX2StreamError as e:
        if e.code in (codes.SESSION_NOT_FOUND, codes.SESSION_BAD_ID, codes.SESSION_SEGMENT_NOT_FOUND):
            raise SessionError(
                f"no video or stored session {parent[:64]!r} to extend (never created, deleted or expired)",
                code=codes.VIDEO_NOT_FOUND,
            ) from e
        raise


def _settings(state: SerializedState, record: VideoRecord | None) -> SessionSettings:
    """The parent's settings, with the seed its next segment would have had."""
    seeds = state.meta.get("seeds") or []
    if record is not None:
        base = record.settings
    else:
        m = state.meta
        try:
            preset = PRESETS[str(m["preset"])]
            frames = int(m.get("frames", preset.frames))  # states of test doubles may leave these out
            overlap = int(m.get("overlap", 1 if latent_frames_of(frames) >= 3 else 0))
            base = SessionSettings(
                str(m["preset"]), int(m["width"]), int(m["height"]), float(m["fps"]), frames, overlap
            )
        except (KeyError, TypeError, ValueError) as e:
            raise SessionError(
                f"the stored session's state does not name its settings ({e}); resume it over the WebSocket",
                code=codes.VIDEO_NOT_COMPLETED,
            ) from e
    seed = (int(seeds[-1]) + 1) & MAX_SEED if seeds else base.seed
    return SessionSettings(base.preset, base.width, base.height, base.fps, base.frames, base.overlap, seed)
