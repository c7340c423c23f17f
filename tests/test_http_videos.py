"""The Videos API (/v1/videos) driven by the official ``openai`` package, on the ToyHost worker (fast): the job
lifecycle, extensions (by id, by uploaded file, of a live session), the documented errors, DELETE freeing the
worker within a step, and jobs sharing the worker with live sessions. The real-model check of "extension ==
steered live session" is tests/test_http_videos_tiny.py."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import av
import openai
import pytest
from openai import AsyncOpenAI, omit
from server_doubles import Client, ToyHost, running

from ltx2stream import codes
from ltx2stream import protocol as P
from ltx2stream.errors import InputError
from ltx2stream.server.videos.records import RECORD_FILE

PRESET = (
    "tiny-ltx2"  # a preset the API knows (64x64, 17 frames at 12 fps); the ToyHost serves it without a model
)
LIVE = P.Settings(preset=PRESET, width=64, height=64, fps=12.0, frames=17, overlap=1, seed=5)


def toy(**kwargs: Any) -> ToyHost:
    return ToyHost(presets=(PRESET,), **kwargs)


OPEN_CLIENTS: list[AsyncOpenAI] = []


def client_for(port: int, token: str = "none") -> AsyncOpenAI:
    """An official client pointed at the server (closed when its ``serving`` block ends)."""
    client = AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=token, max_retries=0)
    OPEN_CLIENTS.append(client)
    return client


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, host: ToyHost, **overrides: Any) -> AsyncIterator[tuple[Any, ToyHost]]:
    """``running`` plus closing the clients made meanwhile (before the loop closes)."""
    async with running(tmp_path, host, **overrides) as (app, _):
        try:
            yield app, host
        finally:
            while OPEN_CLIENTS:
                await OPEN_CLIENTS.pop().close()


def frame_count(data: bytes) -> int:
    with av.open(io.BytesIO(data), "r") as container:
        return sum(1 for _ in container.decode(video=0))


async def raw_http(
    port: int, method: str, path: str, body: bytes, content_type: str, token: str
) -> tuple[int, Any]:
    """One request over a plain socket (bodies the official client would not send)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    writer.write(head.encode() + body)
    data = await reader.read()
    writer.close()
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2])


async def extend(client: AsyncOpenAI, video_id: str, prompt: str, seconds: str) -> Any:
    """The official client sends ``video`` only as a file; the id goes as ``video[id]`` through extra_body."""
    return await client.videos.extend(
        video=omit,
        prompt=prompt,
        seconds=seconds,
        extra_body={"video": {"id": video_id}},  # type: ignore[arg-type]
    )


def test_openai_client_creates_polls_downloads_extends_lists_and_deletes(tmp_path):
    async def main() -> None:
        async with serving(tmp_path, toy()) as (app, host):
            client = client_for(app.port)
            video = await client.videos.create(prompt="a red fox", seconds="2", size="64x64", model=PRESET)
            assert (video.object, video.status, video.model, video.size) == (
                "video",
                "queued",
                PRESET,
                "64x64",
            )
            assert video.created_at > 0 and video.completed_at is None
            video = await client.videos.poll(video.id, poll_interval_ms=20)
            assert (video.status, video.progress, video.error) == ("completed", 100, None)
            assert video.completed_at is not None and video.expires_at == video.completed_at + 24 * 3600
            assert float(video.seconds) >= 2 and video.segments == 2  # type: ignore[attr-defined]
            first = (await client.videos.download_content(video.id)).content
            assert frame_count(first) == 2 * 17  # the ToyHost shows every frame of every segment

            by_id = await client.videos.poll(
                (await extend(client, video.id, "it jumps", "1")).id, poll_interval_ms=20
            )
            upload = await client.videos.extend(
                video=("fox.mp4", first, "video/mp4"), prompt="it sleeps", seconds="1"
            )
            by_file = await client.videos.poll(upload.id, poll_interval_ms=20)
            for ext in (by_id, by_file):
                assert ext.status == "completed" and ext.extended_from_video_id == video.id  # type: ignore[attr-defined]
                assert float(ext.seconds) > float(video.seconds)  # the stitched total
            # both continue after segment 1 with the seed segment 2 would have had: a branch each
            assert [(i, p, s) for i, p, s, _ in host.segments] == [
                (0, "a red fox", 0),
                (1, "a red fox", 1),
                (2, "it jumps", 2),
                (3, "it jumps", 3),
                (2, "it sleeps", 2),
                (3, "it sleeps", 3),
            ]
            whole = (await client.videos.download_content(by_id.id, extra_query={"stitched": "true"})).content
            part = (await client.videos.download_content(by_id.id)).content
            assert frame_count(whole) == frame_count(first) + frame_count(part)

            listed = await client.videos.list(order="asc")
            assert [v.id for v in listed.data] == [video.id, by_id.id, by_file.id]
            page = await client.videos.list(order="asc", limit=1, after=video.id)
            assert [v.id for v in page.data] == [by_id.id] and page.has_more  # type: ignore[attr-defined]

            deleted = await client.videos.delete(by_file.id)
            assert (deleted.id, deleted.deleted, deleted.object) == (by_file.id, True, "video.deleted")
            assert not (app.videos.files.root / by_file.id).exists()
            with pytest.raises(openai.NotFoundError):
                await client.videos.retrieve(by_file.id)
            assert (
                json.loads((app.videos.files.root / video.id / RECORD_FILE).read_text())["status"]
                == "completed"
            )

    asyncio.run(main())


class FailingHost(ToyHost):
    """A ToyHost whose sessions with seed 13 fail to open (a job that fails on its worker)."""

    def open_session(self, settings, *, image=None, state=None):  # type: ignore[no-untyped-def]
        if settings.seed == 13:
            raise InputError("seed 13 is refused by this host", code=codes.INPUT_SEED)
        return super().open_session(settings, image=image, state=state)


def _error(exc: openai.APIStatusError) -> tuple[int, str]:
    body = exc.body
    assert isinstance(body, dict) and "code" in body, body
    return exc.status_code, str(body["code"])


def test_bad_requests_get_the_documented_errors(tmp_path):
    async def main() -> None:
        async with serving(tmp_path, FailingHost(presets=(PRESET,)), token="s3cret") as (app, _):
            client = client_for(app.port, "s3cret")

            async def refused(call: Any) -> tuple[int, str, str]:
                with pytest.raises(openai.APIStatusError) as info:
                    await call
                status, code = _error(info.value)
                return status, code, str(info.value)

            status, code, message = await refused(client.videos.create(prompt="a fox", size="1280x720"))
            assert (status, code) == (400, codes.PROTOCOL_OUT_OF_RANGE) and "sizes: 64x64" in message
            status, code, message = await refused(client.videos.create(prompt="a fox", model="sora-2"))
            assert (status, code) == (400, codes.CONFIG_UNKNOWN_PRESET) and PRESET in message
            status, code, message = await refused(client.videos.create(prompt="x" * 5000))
            assert (status, code) == (413, codes.PROTOCOL_TOO_LARGE) and "request.prompt" in message
            assert (await refused(client.videos.create(prompt="a fox", seconds="-1")))[:2] == (
                400,
                codes.PROTOCOL_OUT_OF_RANGE,
            )
            assert (await refused(client.videos.retrieve("video_missing")))[:2] == (
                404,
                codes.VIDEO_NOT_FOUND,
            )
            assert (await refused(client.videos.delete("video_missing")))[:2] == (404, codes.VIDEO_NOT_FOUND)
            assert (await refused(extend(client, "video_missing", "on", "1")))[:2] == (
                404,
                codes.VIDEO_NOT_FOUND,
            )
            assert (await refused(client_for(app.port, "wrong").videos.list()))[:2] == (
                401,
                codes.AUTH_FAILED,
            )

            # a job that fails on its worker cannot be extended, nor downloaded
            failing = await client.videos.create(prompt="a fox", extra_body={"seed": 13})
            failed = await client.videos.poll(failing.id, poll_interval_ms=20)
            assert failed.status == "failed" and failed.error is not None
            assert failed.error.code == codes.INPUT_SEED and "seed 13" in failed.error.message
            assert (await refused(extend(client, failing.id, "more", "1")))[:2] == (
                409,
                codes.VIDEO_NOT_COMPLETED,
            )
            assert (await refused(client.videos.download_content(failing.id)))[:2] == (
                409,
                codes.VIDEO_NOT_COMPLETED,
            )
            queued = await client.videos.create(prompt="a slow fox", seconds="30")
            assert (await refused(client.videos.download_content(queued.id)))[:2] == (
                409,
                codes.VIDEO_NOT_READY,
            )
            await client.videos.delete(queued.id)

            raw = client.with_options(max_retries=0)
            for method, path, want in (
                ("get", "/nowhere", codes.VIDEO_NO_ROUTE),
                ("put", "/videos", codes.VIDEO_METHOD),
            ):
                with pytest.raises(openai.APIStatusError) as info:
                    await getattr(raw, method)(path, cast_to=dict)
                assert _error(info.value)[1] == want
            for content_type, body in (("text/csv", b"a,b"), ("application/json", b"{not json")):
                status, reply = await raw_http(app.port, "POST", "/v1/videos", body, content_type, "s3cret")
                assert (status, reply["error"]["code"]) == (400, codes.PROTOCOL_MALFORMED)

    asyncio.run(main())


def test_delete_cancels_a_running_job_and_frees_its_worker_within_a_step(tmp_path):
    async def main() -> None:
        host = toy(steps=4, step_s=0.0)
        host.hold_at = (0, 2)  # segment 0 waits at its step-2 boundary (before the cancel check)
        async with serving(tmp_path, host, max_active_per_worker=1) as (app, _):
            client = client_for(app.port)
            doomed = await client.videos.create(prompt="a doomed fox", seconds="1")
            assert await asyncio.to_thread(host.held.wait, 30)
            assert (await client.videos.retrieve(doomed.id)).status == "in_progress"
            deleted = await client.videos.delete(doomed.id)
            assert deleted.deleted
            assert (
                host.held_token is not None and host.held_token.cancelled
            )  # cancelled before the step ran on
            waiting = await client.videos.create(prompt="the next fox", seconds="1")
            host.release.set()
            done = await client.videos.poll(waiting.id, poll_interval_ms=20)
            assert done.status == "completed"
            # the doomed segment stopped at the boundary it was held at: no step after it, one cancel there
            assert [s for s in host.steps_done if s[0] == 0][:2] == [(0, 1), (0, 2)]
            assert [i for i, _ in host.cancels] == [0]
            assert [p for _, p, _, _ in host.segments] == ["the next fox"]

    asyncio.run(main())


def test_video_jobs_share_the_worker_with_live_sessions_and_queue_behind_them(tmp_path):
    async def main() -> None:
        async with serving(tmp_path, toy(), max_active_per_worker=1) as (app, host):
            live = await Client.connect(app.port)
            await live.open("a live fox", settings=LIVE)
            await live.expect("segment_done", index=0)
            client = client_for(app.port)
            video = await client.videos.create(prompt="a queued fox", seconds="1")
            await asyncio.sleep(0.2)
            assert (
                await client.videos.retrieve(video.id)
            ).status == "queued"  # the one slot is the live one's
            await live.send(P.Stop())
            final = await live.expect("final")
            done = await client.videos.poll(video.id, poll_interval_ms=20)
            assert done.status == "completed"

            # the live session ended resumably: extend it over HTTP from its stored state
            assert final.resumable_session_id is not None
            ext = await client.videos.poll(
                (await extend(client, final.resumable_session_id, "the fox wakes", "1")).id,
                poll_interval_ms=20,
            )
            assert ext.status == "completed"
            live_segments = [s for s in host.segments if s[1] == "a live fox"]
            follow = [s for s in host.segments if s[1] == "the fox wakes"]
            assert follow[0][0] == live_segments[-1][0] + 1 and follow[0][2] == live_segments[-1][2] + 1

        async with serving(tmp_path / "two", toy(step_s=0.01), max_active_per_worker=2) as (app, host):
            live = await Client.connect(app.port)
            await live.open("a live fox", settings=LIVE, lookahead=0)
            client = client_for(app.port)
            video = await client.videos.create(prompt="a shared fox", seconds="3")
            done = await client.videos.poll(video.id, poll_interval_ms=20)
            order = [p for _, p, _, _ in host.segments]
            first, last = order.index("a shared fox"), len(order) - 1 - order[::-1].index("a shared fox")
            assert "a live fox" in order[first:last], order  # round-robin: the live session ran in between
            assert done.status == "completed"
            await live.send(P.Stop())
            await live.expect("final")

    asyncio.run(main())


class RecordingHost(ToyHost):
    """A ToyHost that keeps the image each session was opened with."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.images: list[Any] = []

    def open_session(self, settings, *, image=None, state=None):  # type: ignore[no-untyped-def]
        self.images.append(image)
        return super().open_session(settings, image=image, state=state)


PNG = bytes.fromhex(  # a 1x1 PNG
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201a3a1c8e30000000049454e44ae426082"
)


def test_input_reference_conditions_the_first_segment(tmp_path):
    async def main() -> None:
        host = RecordingHost(presets=(PRESET,))
        async with serving(tmp_path, host) as (app, _):
            client = client_for(app.port)
            video = await client.videos.create(
                prompt="a fox from a picture", seconds="1", input_reference=("ref.png", PNG, "image/png")
            )
            assert (await client.videos.poll(video.id, poll_interval_ms=20)).status == "completed"
            assert host.images[-1] is not None and host.images[-1].data == PNG
            assert (host.images[-1].strength, host.images[-1].frame) == (1.0, 0)
            with pytest.raises(openai.BadRequestError) as info:
                await client.videos.create(
                    prompt="x", input_reference=("ref.png", b"GIF89a" + bytes(20), "image/gif")
                )
            assert _error(info.value) == (400, codes.PROTOCOL_BAD_IMAGE)

    asyncio.run(main())


def test_jobs_outlive_a_restart_and_expire_with_the_store_ttl(tmp_path):
    async def main() -> None:
        async with serving(tmp_path, toy()) as (app, _):
            client = client_for(app.port)
            video = await client.videos.poll(
                (await client.videos.create(prompt="a fox", seconds="1")).id, poll_interval_ms=20
            )
            first = (await client.videos.download_content(video.id)).content
        async with serving(tmp_path, toy(), store_ttl_s=2.0) as (app, host):  # the same store, a new process
            client = client_for(app.port)
            again = await client.videos.retrieve(video.id)
            assert (
                again.status == "completed"
                and (await client.videos.download_content(video.id)).content == first
            )
            ext = await client.videos.poll(
                (await extend(client, video.id, "it jumps", "1")).id, poll_interval_ms=20
            )
            assert ext.status == "completed" and host.segments[0][:2] == (1, "it jumps")
            assert ext.expires_at is not None and ext.expires_at - ext.completed_at == 2
            await asyncio.sleep(3.1)  # past expires_at: the next request drops it, with its files and state
            with pytest.raises(openai.NotFoundError):
                await client.videos.retrieve(ext.id)
            assert not (app.videos.files.root / ext.id).exists() and not app.store.list(ext.id)

    asyncio.run(main())
