"""The Videos API on the real generator (tiny LTX-2, CPU), driven by the official ``openai`` package: a video,
two extensions, their MP4s, and the proof that an extension is what a live session steered at that segment
produces (the same continuation latents), with audio within one frame of video in every file."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import av
import numpy as np
import pytest
import torch
from openai import AsyncOpenAI, omit
from server_doubles import Client, running

from ltx2stream import protocol as P
from ltx2stream.session.state import SerializedState

PRESET = "tiny-ltx2"
FPS = 12.0
LIVE = P.Settings(preset=PRESET, width=64, height=64, fps=FPS, frames=17, overlap=1, seed=0)
PROMPTS = ("a red fox in snow", "the fox looks up", "snow starts to fall")


@pytest.fixture(scope="module")
def pipeline_host(tiny_cache):  # type: ignore[no-untyped-def]
    from ltx2stream.session.host import PipelineHost

    return PipelineHost((PRESET,))


def decode(data: bytes) -> tuple[np.ndarray, int, int]:
    """(frames [F, H, W, 3], audio samples, sample rate) of an MP4."""
    with av.open(io.BytesIO(data), "r") as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    with av.open(io.BytesIO(data), "r") as container:
        rate = int(container.streams.audio[0].rate)
        samples = sum(f.samples for f in container.decode(audio=0))
    return frames, samples, rate


def assert_in_sync(data: bytes) -> np.ndarray:
    frames, samples, rate = decode(data)
    assert abs(samples / rate - len(frames) / FPS) <= 1 / FPS, (samples / rate, len(frames) / FPS)
    return frames


async def live_reference(port: int) -> tuple[dict[int, SerializedState], bytes]:
    """A live session that starts with PROMPTS[0] and is steered to PROMPTS[1] at segment 1 and PROMPTS[2] at
    segment 2: its states after segments 1 and 2, and its stream."""
    client = await Client.connect(port)
    await client.open(PROMPTS[0], settings=LIVE, lookahead=0)
    states: dict[int, SerializedState] = {}
    for index in (1, 2):
        await client.expect("segment_started", index=index - 1, timeout=300)
        await client.send(P.Steer(prompt=PROMPTS[index], request_id=index))
        ack = await client.expect("steer_ack", request_id=index, timeout=60)
        assert ack.applies_at == index  # segment index - 1 runs (lookahead 0): the steer takes the next one
    for index in (1, 2):
        await client.expect("segment_done", index=index, timeout=300)
        await client.send(P.Snapshot(request_id=10 + index))
        result = await client.expect("snapshot_result", request_id=10 + index, timeout=60)
        assert result.segment_index == index
        states[index] = SerializedState.from_bytes(result.data)
    await client.send(P.Stop())
    await client.drain_to_close(timeout=120)
    media = [m for m in client.of_type("media") if m.segment <= 2]  # a segment 3 may have started before stop
    stream = client.of_type("media_init")[0].data + b"".join(m.data for m in media)
    return states, stream


def test_openai_client_extends_a_video_twice_like_a_steered_live_session(tmp_path, pipeline_host):
    async def main() -> None:
        async with running(tmp_path, host=pipeline_host) as (app, _):
            async with AsyncOpenAI(
                base_url=f"http://127.0.0.1:{app.port}/v1", api_key="unused", max_retries=0
            ) as client:
                video = await client.videos.create(prompt=PROMPTS[0], seconds="1", size="64x64", model=PRESET)
                video = await client.videos.poll(video.id, poll_interval_ms=100)
                assert (video.status, video.progress) == ("completed", 100), video
                original = (await client.videos.download_content(video.id)).content
                chain: list[Any] = [video]
                for prompt in PROMPTS[1:]:
                    ext = await client.videos.extend(
                        video=omit,  # type: ignore[arg-type]
                        prompt=prompt,
                        seconds="0.5",
                        extra_body={"video": {"id": chain[-1].id}},
                    )
                    chain.append(await client.videos.poll(ext.id, poll_interval_ms=100))
                    assert chain[-1].status == "completed", chain[-1]
                parts = [original] + [(await client.videos.download_content(v.id)).content for v in chain[1:]]
                whole = (
                    await client.videos.download_content(chain[-1].id, extra_query={"stitched": "1"})
                ).content
            assert float(chain[-1].seconds) == pytest.approx((17 + 8 + 8) / FPS, abs=1e-3)

            states, stream = await live_reference(app.port)

        # same continuation latents as the live session steered at segments 1 and 2
        for index, ext in ((1, chain[1]), (2, chain[2])):
            mine = app.store.load(ext.id, index)
            theirs = states[index]
            assert sorted(mine.tensors) == sorted(theirs.tensors)
            for name in theirs.tensors:
                assert torch.equal(mine.tensors[name], theirs.tensors[name]), (index, name)
            assert [h["prompt"] for h in mine.meta["prompt_history"]] == list(PROMPTS[: index + 1])

        # the parts play as one continuous video: 17 + 8 + 8 frames, each file with its audio within a frame
        frames = [assert_in_sync(p) for p in parts]
        assert [len(f) for f in frames] == [17, 8, 8]
        stitched = assert_in_sync(whole)
        live = assert_in_sync(stream)
        # each job's last segment is final (it shows every frame); the live session, stopped after segment 2
        # was done, held segment 2's last 7 frames for a next segment (the hold: 8 frames, less than a segment's 8
        # new ones)
        assert len(stitched) == 33 and len(live) == 33 - 7

        # the extension's pictures are the live session's pictures of those segments (two lossy encodings of
        # the same decoded frames): much closer to them than to the frames one step earlier — on the frames both
        # took from the same segment's decode (a job's final segment shows from its own decode what the live
        # session shows from the next segment's)
        def source(counts: list[int]) -> np.ndarray:
            return np.repeat(np.arange(len(counts)), counts)

        live_counts = [17 - 7, 8, 8]
        assert sum(live_counts) == len(live)
        both = np.flatnonzero(source([17, 8, 8])[: len(live)] == source(live_counts))[
            1:
        ]  # 0 has no frame before
        assert len(both) == 10 - 1 + 1 + 1
        joined = np.concatenate(frames).astype(np.float32)
        same = np.abs(joined[both] - live[both].astype(np.float32)).mean()
        shifted = np.abs(joined[both] - live[both - 1].astype(np.float32)).mean()
        assert same < 0.5 * shifted, (same, shifted)

    asyncio.run(main())
