"""The embedded tiny LTX-2.5 (split layout, Gemma 4, diffusion decoder) through render and a streamed session."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import av
import pytest
from server_doubles import Client, running

from ltx2stream import protocol as P
from ltx2stream.media import Mp4Parts
from ltx2stream.session.render import Renderer
from ltx2stream.session.script import load_script

SETTINGS = P.Settings(preset="tiny-ltx2.5", width=64, height=64, fps=12.0, frames=17, overlap=1, seed=3)
SCRIPT = """
[session]
preset = "tiny-ltx2.5"
width = 64
height = 64
fps = 12
frames = 17
overlap = 1
seed = 5

[[segment]]
prompt = "a ball bounces"
repeat = 2

[[segment]]
prompt = "waves at night"
"""


@pytest.fixture(scope="module")
def host(tiny_cache):  # type: ignore[no-untyped-def]
    from ltx2stream.session.host import PipelineHost

    return PipelineHost(("tiny-ltx2.5",))


def test_render_three_segments_from_the_split_layout(host: Any, tmp_path: Path) -> None:
    """A 3-segment script renders one continuous MP4 (17 + 2·(17 − 1 − 8) frames at 12 fps, audio as long)."""
    script_path = tmp_path / "s.toml"
    script_path.write_text(SCRIPT)
    r = Renderer(host.pipeline("tiny-ltx2.5"), load_script(script_path), tmp_path / "work", Mp4Parts())
    assert r.run(r.start_state(resume=False, from_segment=None)) == 3
    out = r.assemble(tmp_path / "out.mp4")
    with av.open(str(out)) as c:
        frames = sum(1 for _ in c.decode(video=0))
    with av.open(str(out)) as c:
        samples = sum(f.samples for f in c.decode(audio=0))
        rate = c.streams.audio[0].rate
    assert frames == 17 + 2 * (17 - 1 - 8)
    assert rate == 48000 and abs(samples / rate - frames / 12.0) < 1 / 12.0


def test_streamed_steered_session(host: Any, tmp_path: Path) -> None:
    """Through the server: 3 segments stream as one continuous fMP4; a steer lands at its announced segment."""

    async def main() -> Client:
        async with running(tmp_path, host=host) as (app, _):
            client = await Client.connect(app.port)
            await client.open("a red fox in snow", settings=SETTINGS, lookahead=0)
            await client.expect("segment_started", index=0, timeout=120)
            await client.send(P.Steer(prompt="the fox looks up", request_id=1))
            ack = await client.expect("steer_ack", timeout=60)
            await client.expect("segment_done", index=max(2, ack.applies_at), timeout=300)
            await client.send(P.Stop())
            assert (await client.drain_to_close(timeout=120))[0] == 1000
            return client

    client = asyncio.run(main())
    ack = client.of_type("steer_ack")[0]
    for msg in client.of_type("segment_started"):
        assert msg.prompt == ("the fox looks up" if msg.index >= ack.applies_at else "a red fox in snow")
    media = client.of_type("media")
    stream = client.of_type("media_init")[0].data + b"".join(m.data for m in media)
    with av.open(io.BytesIO(stream)) as container:
        times = [float(f.time) for f in container.decode(video=0)]
    assert len(times) >= 3 * SETTINGS.frames - 2 * 9 - 7 and times == pytest.approx(  # 7: the hold
        [i / SETTINGS.fps for i in range(len(times))]
    )


def test_a_state_of_another_model_release_is_refused_with_its_code(host: Any, tmp_path: Path) -> None:
    """States carry the model family; an LTX-2.3 state offered to an LTX-2.5 session is state.model_version,
    and a state written before the field (no ``model`` in meta) falls back to the ordinary fit check."""
    import dataclasses

    from ltx2stream.errors import StateError
    from ltx2stream.session.api import SessionSettings
    from ltx2stream.session.continuation import ContinuationState
    from ltx2stream.session.controller import SessionController

    pipeline = host.pipeline("tiny-ltx2.5")
    settings = SessionSettings(preset="tiny-ltx2.5", width=64, height=64, fps=12.0, frames=17, overlap=1)
    fresh = ContinuationState.from_bytes(SessionController(pipeline, settings).snapshot())
    assert fresh.model == "ltx2.5"
    back = ContinuationState.from_bytes(fresh.to_bytes())
    assert back.model == "ltx2.5"
    SessionController(pipeline, settings, state=back)  # its own release's state fits
    foreign = dataclasses.replace(back, model="ltx2.3")
    with pytest.raises(StateError) as e:
        SessionController(pipeline, settings, state=ContinuationState.from_bytes(foreign.to_bytes()))
    assert e.value.code == "state.model_version" and "ltx2.3" in str(e.value)
    older = dataclasses.replace(back, model="")
    assert "model" not in older.to_serialized().meta
    SessionController(pipeline, settings, state=ContinuationState.from_bytes(older.to_bytes()))
