"""End to end with the real generator: PipelineHost + SessionController on the embedded tiny LTX-2 model."""

from __future__ import annotations

import asyncio
import io

import av
import pytest
import torch
from server_doubles import Client, running

from ltx2stream import protocol as P
from ltx2stream.session.state import SerializedState

SETTINGS = P.Settings(preset="tiny-ltx2", width=64, height=64, fps=12.0, frames=17, overlap=1, seed=3)


@pytest.fixture(scope="module")
def pipeline_host(tiny_cache):  # type: ignore[no-untyped-def]
    from ltx2stream.session.host import PipelineHost

    return PipelineHost(("tiny-ltx2",))


def test_real_sessions_stream_fmp4_and_resume_after_disconnect_bit_exactly(tmp_path, pipeline_host):
    """Tiny LTX-2 through the server: 3 segments decode as one continuous fMP4 stream; a client that leaves
    during segment 2 and resumes by id ends with the same continuation latents as an uninterrupted session."""

    async def main() -> None:
        async with running(tmp_path, host=pipeline_host) as (app, _):
            ref = await Client.connect(app.port)
            await ref.open("a red fox in snow", settings=SETTINGS, lookahead=0)
            await ref.expect("segment_done", index=2, timeout=120)
            await ref.send(P.Snapshot(request_id=1))
            reference = await ref.expect("snapshot_result", request_id=1, timeout=30)
            await ref.send(P.Stop())
            assert (await ref.drain_to_close(timeout=60))[0] == 1000

            media = [m for m in ref.of_type("media") if m.segment <= 2]
            stream = ref.of_type("media_init")[0].data + b"".join(m.data for m in media)
            with av.open(io.BytesIO(stream)) as container:
                times = [float(f.time) for f in container.decode(video=0)]
            frames = sum(m.duration for m in media) * SETTINGS.fps
            assert len(times) == round(frames) and times == pytest.approx(
                [i / SETTINGS.fps for i in range(len(times))]
            )

            client = await Client.connect(app.port)
            accepted = await client.open("a red fox in snow", settings=SETTINGS, lookahead=0)
            await client.expect("segment_done", index=1, timeout=120)
            await client.expect("progress", segment=2, timeout=60)
            await (
                client.ws.close()
            )  # and reconnect at once: the server waits for the old session's checkpoint
            resumed = await Client.connect(app.port)
            again = await resumed.open(
                "a red fox in snow",
                settings=SETTINGS,
                lookahead=0,
                resume_from=P.ResumeFrom(session_id=accepted.session_id),
            )
            assert again.resumed_from_segment in (1, 2)
            await resumed.expect("segment_done", index=2, timeout=120)
            await resumed.send(P.Snapshot(request_id=2))
            result = await resumed.expect("snapshot_result", request_id=2, timeout=30)
            await resumed.send(P.Stop())
            await resumed.drain_to_close(timeout=60)
            assert result.segment_index == reference.segment_index == 2
            mine, theirs = SerializedState.from_bytes(result.data), SerializedState.from_bytes(reference.data)
            assert sorted(mine.tensors) == sorted(theirs.tensors)
            for name in theirs.tensors:
                assert torch.equal(mine.tensors[name], theirs.tensors[name]), name

    asyncio.run(main())
