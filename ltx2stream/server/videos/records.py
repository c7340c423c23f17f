"""One video job as the API shows it (the OpenAI ``video`` object) and its files on disk.

Layout (``<store_dir>-videos/``)::

    <video id>/video.json   the record (rewritten atomically on every status change)
    <video id>/video.mp4    the MP4 of this job's segments (fragmented MP4: H.264 + AAC), once completed

The continuation state after a job's last segment lives in the session store under the same id, so an
extension (or a WebSocket ``resume_from``) continues from it. Everything expires with the store's TTL.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ltx2stream.session.api import SessionSettings

QUEUED, IN_PROGRESS, COMPLETED, FAILED = "queued", "in_progress", "completed", "failed"
VIDEO_FILE, RECORD_FILE = "video.mp4", "video.json"


@dataclass(frozen=True)
class VideoRecord:
    """A video job. ``first_segment``..``last_segment`` are its session segment indices; ``extends`` is the
    id it continues (a video or a live session), ``total_seconds`` the stitched length up to its end."""

    id: str
    prompt: str
    settings: SessionSettings
    first_segment: int
    segments: int
    seconds: float
    total_seconds: float
    created_at: int
    status: str = QUEUED
    progress: int = 0
    completed_at: int | None = None
    expires_at: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    extends: str | None = None
    sha256: str | None = None  # of video.mp4: an uploaded copy of the file names this video in an extension
    # creation order within one second (``created_at`` is whole seconds, as in the OpenAI shape): the list order
    created_ns: int = dataclasses.field(default_factory=time.time_ns)

    @property
    def last_segment(self) -> int:
        return self.first_segment + self.segments - 1

    @property
    def finished(self) -> bool:
        return self.status in (COMPLETED, FAILED)

    def to_api(self) -> dict[str, Any]:
        """The OpenAI ``video`` object (plus ``extended_from_video_id`` and ``segments``)."""
        s = self.settings
        return {
            "id": self.id,
            "object": "video",
            "model": s.preset,
            "status": self.status,
            "progress": self.progress,
            "created_at": self.created_at,
            "completed_at": self.completed_at,
            "expires_at": self.expires_at,
            "prompt": self.prompt,
            "seconds": f"{self.total_seconds:g}",
            "size": f"{s.width}x{s.height}",
            "remixed_from_video_id": None,
            "extended_from_video_id": self.extends,
            "segments": self.segments,
            "error": None
            if self.error_code is None
            else {"code": self.error_code, "message": self.error_message or ""},
        }

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> VideoRecord:
        data = json.loads(text)
        data["settings"] = SessionSettings(**data["settings"])
        return cls(**data)


def now() -> int:
    return int(time.time())


class VideoFiles:
    """The on-disk side of video jobs (blocking: call from a thread)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def video_path(self, video_id: str) -> Path:
        return self.root / video_id / VIDEO_FILE

    def write_record(self, record: VideoRecord) -> None:
        folder = self.root / record.id
        folder.mkdir(parents=True, exist_ok=True)
        temp = folder / f".{RECORD_FILE}.tmp"
        temp.write_text(record.to_json(), encoding="utf-8")
        os.replace(temp, folder / RECORD_FILE)

    def write_video(self, video_id: str, data: bytes) -> None:
        folder = self.root / video_id
        folder.mkdir(parents=True, exist_ok=True)
        temp = folder / f".{VIDEO_FILE}.tmp"
        temp.write_bytes(data)
        os.replace(temp, folder / VIDEO_FILE)

    def read_video(self, video_id: str) -> bytes:
        return self.video_path(video_id).read_bytes()

    def remove(self, video_id: str) -> None:
        shutil.rmtree(self.root / video_id, ignore_errors=True)

    def load_records(self) -> list[VideoRecord]:
        """Every readable record (unreadable folders are left alone)."""
        out: list[VideoRecord] = []
        if not self.root.is_dir():
            return out
        for path in sorted(self.root.glob(f"*/{RECORD_FILE}")):
            try:
                out.append(VideoRecord.from_json(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, TypeError, KeyError):
                continue
        return out
