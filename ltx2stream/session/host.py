"""PipelineHost: the ModelHost of one device — models loaded once, shared by every session on the worker.

Pipelines are built per preset on top of components shared per model (tiny presets of one flavour share the tiny
model; real presets share the files given by the operator).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import torch

from ltx2stream import codes
from ltx2stream.errors import ConfigError
from ltx2stream.pipeline.compile import compile_transformer
from ltx2stream.pipeline.components import Components, ModelPaths, components_for_preset
from ltx2stream.pipeline.pipeline import LTX2Pipeline
from ltx2stream.pipeline.presets import get_preset
from ltx2stream.pipeline.request import GenerationRequest
from ltx2stream.session.api import ImageCondition, SessionSettings
from ltx2stream.session.continuation import DEFAULT_OPTIONS, ContinuationOptions, ContinuationState
from ltx2stream.session.controller import SessionController
from ltx2stream.types import VIDEO_SPACE_SCALE

log = logging.getLogger(__name__)


class PipelineHost:
    """Implements ``ModelHost`` for a fixed list of presets on one device."""

    def __init__(
        self,
        presets: tuple[str, ...],
        paths: ModelPaths | None = None,
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype | None = None,
        options: ContinuationOptions = DEFAULT_OPTIONS,
        group: Any = None,
        compile: bool = False,
    ) -> None:
        if not presets:
            raise ConfigError("a host needs at least one preset", code=codes.CONFIG_NO_PRESET)
        for name in presets:
            get_preset(name)
        self.presets = tuple(presets)
        self.paths = paths
        self.device = device
        self.dtype = dtype
        self.options = options
        self.group = group  # a sequence-parallel process group (session/group.py), or None
        self.compile = compile  # torch.compile the transformer (pipeline/compile.py)
        self._components: dict[str, Components] = {}
        self._pipelines: dict[str, LTX2Pipeline] = {}
        self._lock = threading.Lock()

    def pipeline(self, preset_name: str) -> LTX2Pipeline:
        with self._lock:
            if preset_name not in self.presets:
                raise ConfigError(
                    f"preset {preset_name!r} is not served here; available: {', '.join(self.presets)}",
                    code=codes.CONFIG_UNKNOWN_PRESET,
                )
            if preset_name not in self._pipelines:
                preset = get_preset(preset_name)
                key = (
                    f"{preset.embedded}-{preset.flavour}"
                    if preset.tiny
                    else "pocket"
                    if preset.pocket
                    else "files"
                )
                if key not in self._components:
                    components = components_for_preset(
                        preset_name, self.paths, device=self.device, dtype=self.dtype
                    )
                    if self.compile:
                        compile_transformer(components.transformer, self.device)
                    self._components[key] = self._parallel(components)
                self._pipelines[preset_name] = LTX2Pipeline(self._components[key], preset)
            return self._pipelines[preset_name]

    def join_group(self, group: Any) -> None:
        """Split the transformer of every loaded (and later loaded) model over ``group``'s ranks."""
        with self._lock:
            self.group = group
            for key, components in self._components.items():
                self._components[key] = self._parallel(components)
            self._pipelines.clear()  # rebuilt on next use around the wrapped transformer

    def load(self) -> None:
        """Load every preset's models now (no generation)."""
        for name in self.presets:
            self.pipeline(name)

    def _parallel(self, components: Components) -> Components:
        """With a group: the transformer split over its ranks, the text encoded on its first rank."""
        if self.group is None:
            return components
        from ltx2stream.parallel import SequenceParallelTransformer

        model: Any = components.transformer  # an LTXAVModel
        components.transformer = SequenceParallelTransformer(model, self.group)
        components.group = self.group
        return components

    def warm_up(self) -> None:
        """Load every preset's models and run one smallest generation + decode through every stage, so kernels,
        allocators and caches are warm before /readyz turns green and the first session starts fast."""
        for name in self.presets:
            self.warm_up_preset(name)
        log.info("host ready: %s", ", ".join(self.presets))

    def warm_up_preset(self, name: str) -> None:
        """One preset's part of ``warm_up``: its smallest generation at the smallest size it can decode."""
        pipeline = self.pipeline(name)
        side = _warm_up_side(pipeline.preset.size_multiple)
        request = GenerationRequest(
            "warm up", height=side, width=side, frames=9, fps=pipeline.preset.fps, seed=0
        )
        result = pipeline.generate_latents(request)
        for _ in pipeline.decode_video(result.video_latent):
            pass
        pipeline.decode_audio(result.audio_latent)

    def open_session(
        self, settings: SessionSettings, *, image: ImageCondition | None = None, state: bytes | None = None
    ) -> SessionController:
        pipeline = self.pipeline(settings.preset)
        resumed = (
            None if state is None else ContinuationState.from_bytes(state)
        )  # the controller checks the fit
        return SessionController(pipeline, settings, options=self.options, image=image, state=resumed)


def _warm_up_side(size_multiple: int) -> int:
    """The smallest frame side a preset can generate *and* decode: a multiple of its size rule, and at least two
    latent pixels, which the VAE decoder's reflect padding needs (a one-stage preset's 32 px would be refused)."""
    least = 2 * VIDEO_SPACE_SCALE
    return -(-least // size_multiple) * size_multiple
