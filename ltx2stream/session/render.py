"""Long-form rendering of a session script into one MP4, resumable and branchable.

Layout of the work directory (default ``<output>.session/``)::

    states/render-session/seg-NNNNNNNN.ltxstate   continuation state after segment N (SessionStore, atomic)
    parts/NNNNNNNN.mp4, parts/NNNNNNNN.npy        segment N's new frames (video file) and audio (float32 [C, n])

A part is written (temp file + rename) before the state of its segment, so "state N exists" implies "part N
exists": a render killed at any moment resumes from the last state without losing or repeating a frame.
The output MP4 is assembled from the parts at the end, one part at a time (memory stays flat).
Encoding and decoding are the caller's: it injects a ``PartMedia`` (``commands/render.py`` passes
``media.Mp4Parts``), so this layer never imports the media layer.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ltx2stream import codes
from ltx2stream.errors import SessionError
from ltx2stream.pipeline.pipeline import LTX2Pipeline
from ltx2stream.session.api import CancelToken, NullSink, SegmentReport
from ltx2stream.session.continuation import ContinuationState
from ltx2stream.session.controller import SessionController
from ltx2stream.session.script import SessionScript
from ltx2stream.session.store import SessionStore

log = logging.getLogger(__name__)
SESSION_ID = "render-session"


class PartMedia(Protocol):
    """The media work of a render: write one part's video, and concatenate parts into the output."""

    def write_video(self, path: Path, frames: np.ndarray, fps: float) -> None:
        """Write uint8 frames [F, H, W, 3] as a video file at ``path`` (a temp name; the renderer renames it)."""

    def assemble(
        self,
        output: Path,
        parts: Iterable[tuple[Path, np.ndarray]],
        *,
        width: int,
        height: int,
        fps: float,
        sample_rate: int,
    ) -> None:
        """Write ``output`` from ``(part video path, its audio float32 [C, n])`` pairs, in order."""


@dataclass(frozen=True)
class RenderPaths:
    root: Path

    @property
    def states(self) -> Path:
        return self.root / "states"

    def part(self, index: int, ext: str) -> Path:
        return self.root / "parts" / f"{index:08d}.{ext}"


class Renderer:
    def __init__(
        self, pipeline: LTX2Pipeline, script: SessionScript, work_dir: Path, media: PartMedia
    ) -> None:
        self.pipeline = pipeline
        self.script = script
        self.media = media
        self.paths = RenderPaths(work_dir)
        self.store = SessionStore(
            self.paths.states, keep_last=1 << 30, ttl_s=10 * 365 * 86400.0, max_total_bytes=1 << 62
        )

    def start_state(self, *, resume: bool, from_segment: int | None) -> ContinuationState | None:
        """Fresh (work dir cleared), resumed from the latest state, or branched from the state before a segment."""
        if from_segment is not None:
            if from_segment == 0:
                self._clear_from(0)
                return None
            branched = ContinuationState.from_serialized(self.store.load(SESSION_ID, from_segment - 1))
            self._clear_from(from_segment)
            return branched
        if resume and self.store.list(SESSION_ID):
            resumed = ContinuationState.from_serialized(self.store.load_latest(SESSION_ID))
            self._clear_from(resumed.next_index)
            return resumed
        self.store.delete(SESSION_ID)
        self._clear_from(0)
        return None

    def _clear_from(self, index: int) -> None:
        parts = self.paths.root / "parts"
        for p in parts.glob("*") if parts.is_dir() else ():
            stem = p.name.split(".")[0]
            if not stem.isdigit() or int(stem) >= index:
                p.unlink()

    def run(
        self,
        state: ContinuationState | None,
        *,
        progress: Callable[[str, int, int], None] | None = None,
        on_segment: Callable[[SegmentReport], None] | None = None,
        cancel: CancelToken | None = None,
    ) -> int:
        """Render the remaining segments; returns the number rendered."""
        s = self.script
        controller = SessionController(
            self.pipeline, s.settings, options=s.options, image=s.image, state=state
        )
        done = 0
        for req in s.segments[controller.next_index :]:
            sink = _ProgressSink(progress)
            report = controller.run_segment(req, sink, cancel)
            self._write_part(req.index, sink, controller.sample_rate)
            assert controller.state is not None
            self.store.save(SESSION_ID, req.index, controller.state.to_serialized())
            done += 1
            if on_segment is not None:
                on_segment(report)
        return done

    def _write_part(self, index: int, sink: NullSink, sample_rate: int) -> None:
        video, audio = self.paths.part(index, "mp4"), self.paths.part(index, "npy")
        video.parent.mkdir(parents=True, exist_ok=True)
        frames = np.concatenate(sink.frames, axis=0)
        wave = np.concatenate(sink.samples, axis=1).astype(np.float32)
        tmp_v, tmp_a = video.with_suffix(".mp4.tmp"), audio.with_suffix(".npy.tmp")
        self.media.write_video(tmp_v, frames, self.script.settings.fps)
        with open(tmp_a, "wb") as f:
            np.save(f, wave)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_v, video)
        os.replace(tmp_a, audio)

    def assemble(self, output: Path) -> Path:
        """Concatenate every part into ``output`` (through the injected ``PartMedia``)."""
        n = len(self.script.segments)
        missing = [i for i in range(n) if not self.paths.part(i, "mp4").is_file()]
        if missing:
            raise SessionError(
                f"cannot assemble: segments {missing} are not rendered yet", code=codes.RENDER_INCOMPLETE
            )
        s = self.script.settings
        self.media.assemble(
            output,
            self._parts(n),
            width=s.width,
            height=s.height,
            fps=s.fps,
            sample_rate=self.pipeline.sample_rate,
        )
        return output

    def _parts(self, n: int) -> Iterator[tuple[Path, np.ndarray]]:
        for i in range(n):  # lazily: one part's audio in memory at a time
            yield self.paths.part(i, "mp4"), np.load(self.paths.part(i, "npy"))


class _ProgressSink(NullSink):
    def __init__(self, progress: Callable[[str, int, int], None] | None) -> None:
        super().__init__()
        self._progress = progress

    def progress(self, stage: str, step: int, total: int) -> None:
        if self._progress is not None:
            self._progress(stage, step, total)
