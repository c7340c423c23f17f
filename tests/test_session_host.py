"""PipelineHost.warm_up: the smallest generation + decode it runs must be one every preset can decode."""

from __future__ import annotations

import pytest

from ltx2stream.pipeline.presets import PRESETS
from ltx2stream.session.host import PipelineHost, _warm_up_side
from ltx2stream.types import VIDEO_SPACE_SCALE


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_warm_up_side_fits_every_preset(name: str) -> None:
    """A multiple of the preset's size rule, and >= 2 latent pixels (the VAE decoder's reflect padding)."""
    multiple = PRESETS[name].size_multiple
    side = _warm_up_side(multiple)
    assert side % multiple == 0 and side // VIDEO_SPACE_SCALE >= 2
    assert side <= max(multiple, 2 * VIDEO_SPACE_SCALE)  # and no larger than needed


@pytest.mark.timeout(300)
def test_one_stage_preset_warms_up(tiny_host: PipelineHost) -> None:
    """A one-stage preset (size rule 32 px) warmed up at 32 px was refused by the VAE, so a replica serving it
    never turned ready (/readyz: unhealthy; tests/test_deploy.py waited for it in vain); it warms up at 64 px."""
    tiny_host.warm_up_preset("tiny-ltx2-one-stage")
