"""Admission by cost: each preset declares what one segment may cost; an ``open`` beyond it is refused before
any compute, with a code that names the limit (ltx2stream/pipeline/capacity.py)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from server_doubles import SETTINGS, Client, ToyHost, running

from ltx2stream import codes
from ltx2stream.errors import InputError
from ltx2stream.pipeline.capacity import TINY_MODEL, Capacity, check_cost, segment_cost
from ltx2stream.pipeline.presets import PRESETS
from ltx2stream.server import admission

MAXIMAL = {"width": 3840, "height": 3840, "frames": 481, "fps": 1.0}  # every wire limit at its worst


def _code(capacity: Capacity, width: int, height: int, frames: int, fps: float) -> str:
    with pytest.raises(InputError) as info:
        check_cost(capacity, width, height, frames, fps)
    return info.value.code


def test_every_preset_declares_a_capacity_that_serves_its_defaults():
    """Each preset's default size and frames fit its own capacity (a preset never refuses its defaults)."""
    for preset in PRESETS.values():
        cost = check_cost(preset.capacity, preset.width, preset.height, preset.frames, preset.fps)
        assert cost.tokens > 0 and cost.memory_bytes > 0, preset.name
    assert PRESETS["tiny-ltx2"].capacity == TINY_MODEL


def test_each_limit_is_named_by_its_own_code():
    """Side, area, frames, tokens and memory: each one over its limit gives its own cost.* code and message."""
    tiny = TINY_MODEL
    assert _code(tiny, **MAXIMAL) == codes.COST_RESOLUTION
    assert _code(tiny, 544, 64, 17, 12.0) == codes.COST_RESOLUTION  # longer side
    area = dataclasses.replace(tiny, max_pixels=256 * 256)
    assert _code(area, 512, 256, 17, 12.0) == codes.COST_RESOLUTION  # area, both sides within max_side
    assert _code(tiny, 64, 64, 129, 12.0) == codes.COST_FRAMES
    few_tokens = dataclasses.replace(tiny, max_tokens=100)
    assert _code(few_tokens, 256, 256, 17, 12.0) == codes.COST_TOKENS  # 3 x 8 x 8 video + 39 audio
    small_memory = dataclasses.replace(tiny, max_memory_bytes=1 << 20)
    assert _code(small_memory, 256, 256, 17, 12.0) == codes.COST_MEMORY
    with pytest.raises(InputError, match=r"129 frames per segment is over this preset's limit of 121"):
        check_cost(tiny, 64, 64, 129, 12.0)


def test_cost_counts_tokens_and_memory_as_documented():
    """Video tokens per latent frame and 32 px cell, audio latents at 25/s plus the margin, fp32 pixels."""
    cost = segment_cost(TINY_MODEL, 256, 128, 17, 12.0)
    assert cost.video_tokens == 3 * 4 * 8
    assert cost.audio_tokens == 36 + 3  # ceil(17 / 12 * 25) + margin
    assert cost.memory_bytes == 17 * 128 * 256 * 3 * 4 + cost.tokens * TINY_MODEL.bytes_per_token
    # the request of the report: ~85 GB of decoded pixels alone
    assert segment_cost(TINY_MODEL, **MAXIMAL).memory_bytes > 85e9


def test_server_admission_helper_skips_presets_it_does_not_define():
    """A host factory's own preset (here the test double's ``toy``) is left to its host; known ones are checked."""
    assert admission.check_cost("toy", **MAXIMAL) is None
    with pytest.raises(InputError) as info:
        admission.check_cost("tiny-ltx2", **MAXIMAL)
    assert info.value.code == codes.COST_RESOLUTION


class CountingHost(ToyHost):
    """A ToyHost serving ``tiny-ltx2`` that counts generator opens (the first compute of a session)."""

    def __init__(self) -> None:
        super().__init__(presets=("tiny-ltx2",))
        self.opened = 0

    def open_session(self, settings, *, image=None, state=None):  # type: ignore[no-untyped-def]
        self.opened += 1
        return super().open_session(settings, image=image, state=state)


def test_maximal_cost_open_is_refused_before_compute(tmp_path):
    """An ``open`` at every wire limit on the tiny preset: error cost.resolution (4400, fatal), final 'failed',
    no session registered, the generator never opened, the worker idle; a fitting open then streams."""

    async def main() -> None:
        host = CountingHost()
        async with running(tmp_path, host=host) as (app, _):
            client = await Client.connect(app.port)
            huge = dataclasses.replace(SETTINGS, preset="tiny-ltx2", **MAXIMAL)
            await client.send(admission.P.Open(protocol_version=1, prompt="everything", settings=huge))
            code, reason = await client.drain_to_close()
            error = client.of_type("error")[0]
            assert (code, reason) == (4400, codes.COST_RESOLUTION)
            assert error.code == codes.COST_RESOLUTION and error.fatal and not error.retryable
            assert "3840x3840" in error.message and "512" in error.message
            assert client.received[-1].type == "final" and client.received[-1].reason == "failed"
            assert host.opened == 0 and not app.sessions and app.workers[0].scheduler.counts() == (0, 0)

            ok = await Client.connect(app.port)
            await ok.open("fits", settings=dataclasses.replace(SETTINGS, preset="tiny-ltx2"))
            await ok.expect("segment_done", index=0)
            assert host.opened == 1

    asyncio.run(main())
