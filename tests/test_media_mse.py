"""The fragments play in a real browser: Chromium's Media Source Extensions, driven over the DevTools protocol.

Skipped when no ``chromium`` binary is installed. One SessionEncoder stream (3 segments x 48 frames, fed in
chunks of 8 with drain() after each, audio appended after each segment's video) is appended piece by piece to a
SourceBuffer and played to the end; a late joiner appends only init + segments 1 and 2 and seeks to
``buffered.start(0)``. Asserts: every frame decoded, audio decoded, one gap-free buffered range, no errors. Playback runs at 2x.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from headless_chromium import CHROMIUM, launch
from websockets.asyncio.client import connect

from ltx2stream.media import SessionEncoder

pytestmark = [pytest.mark.slow, pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")]
W, H, FPS, SR, SEGMENT, CHUNK = 128, 96, 24, 48000, 48, 8

PAGE = """<html><body><video id=v muted></video><script>
const pieces = PIECES.map(s => Uint8Array.from(atob(s), c => c.charCodeAt(0)));
const v = document.getElementById('v'), ms = new MediaSource(), log = [];
window.result = null;
v.src = URL.createObjectURL(ms);
const ranges = r => Array.from({length: r.length}, (_, i) => [r.start(i), r.end(i)]);
const done = why => { const q = v.getVideoPlaybackQuality(); window.result = {why, error: v.error && v.error.message,
  buffered: ranges(v.buffered), time: v.currentTime, frames: q.totalVideoFrames, dropped: q.droppedVideoFrames,
  video_bytes: v.webkitVideoDecodedByteCount, audio_bytes: v.webkitAudioDecodedByteCount, log}; };
ms.addEventListener('sourceopen', () => {
  const sb = ms.addSourceBuffer(MIME);
  let i = 0;
  sb.addEventListener('error', () => log.push('sourcebuffer error at ' + i));
  sb.addEventListener('updateend', () => {
    if (i < pieces.length) { sb.appendBuffer(pieces[i++]); return; }
    ms.endOfStream();
    if (v.buffered.start(0) > 0) v.currentTime = v.buffered.start(0);  // a late joiner
    v.playbackRate = 2;  // keep the test short
    v.play().catch(e => log.push('play: ' + e));
  });
  sb.appendBuffer(pieces[i++]);
});
v.addEventListener('ended', () => done('ended'));
v.addEventListener('error', () => done('error'));
</script></body></html>"""


def _stream() -> tuple[str, list[bytes], list[bytes]]:
    """(mime, progressive pieces of the whole session, init + whole segments 1..2)."""
    enc = SessionEncoder(W, H, FPS, SR)
    progressive, late = [enc.init_segment], [enc.init_segment]
    y, x = np.mgrid[0:H, 0:W]
    for index in range(3):
        for start in range(0, SEGMENT, CHUNK):
            t = index * SEGMENT + start + np.arange(CHUNK)[:, None, None]  # [f, 1, 1] frame numbers
            frames = np.stack([(x + 3 * t) % 256, (2 * y + t) % 256, np.full_like(x + t, 80 * index)], -1)
            enc.add_video(frames.astype(np.uint8))  # [f, H, W, 3]
            progressive.append(enc.drain())
        seconds = (np.arange(SEGMENT * SR // FPS) + index * SEGMENT * SR // FPS) / SR
        enc.add_audio(np.repeat(0.3 * np.sin(2 * np.pi * 440 * seconds)[None], 2, 0).astype(np.float32))
        fragment = enc.flush_segment(index)
        progressive.append(fragment.remainder)
        if index:
            late.append(fragment.data)
    progressive.append(enc.close())
    return enc.mime, [p for p in progressive if p], late


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A headless Chromium with DevTools on a free port: yields (page websocket url, scratch dir)."""
    root = tmp_path_factory.mktemp("chromium")
    with launch(root) as url:
        yield url, root


async def _play(ws_url: str, page: Path, timeout_s: float = 40) -> dict:
    async with connect(ws_url, max_size=None, compression=None) as ws:
        ids = iter(range(1, 1_000_000))

        async def call(method: str, **params: object) -> dict:
            request_id = next(ids)
            await ws.send(json.dumps({"id": request_id, "method": method, "params": params}))
            while True:
                message = json.loads(await ws.recv())
                if message.get("id") == request_id:
                    return message

        await call("Page.navigate", url=page.as_uri())
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            reply = await call(
                "Runtime.evaluate", expression="JSON.stringify(window.result)", returnByValue=True
            )
            value = reply.get("result", {}).get("result", {}).get("value")
            if value and value != "null":
                return json.loads(value)
    raise AssertionError("the page did not finish playing in time")


def _write_page(root: Path, name: str, mime: str, pieces: list[bytes]) -> Path:
    encoded = json.dumps([base64.b64encode(p).decode() for p in pieces])
    path = root / name
    path.write_text(PAGE.replace("PIECES", encoded).replace("MIME", json.dumps(mime)))
    return path


def test_progressive_and_late_join_playback(browser: tuple[str, Path]) -> None:
    ws_url, root = browser
    mime, progressive, late = _stream()
    full = asyncio.run(_play(ws_url, _write_page(root, "full.html", mime, progressive)))
    assert (full["why"], full["error"], full["log"]) == ("ended", None, [])
    # every frame decoded; a few may be dropped by the compositor at 2x on a loaded machine
    assert full["frames"] == 3 * SEGMENT and full["dropped"] <= SEGMENT // 10, full
    assert full["video_bytes"] > 0 and full["audio_bytes"] > 0
    assert len(full["buffered"]) == 1 and full["buffered"][0][0] == 0
    assert full["buffered"][0][1] == pytest.approx(3 * SEGMENT / FPS, abs=0.05)
    joined = asyncio.run(_play(ws_url, _write_page(root, "late.html", mime, late)))
    assert (joined["why"], joined["error"], joined["log"]) == ("ended", None, [])
    assert joined["frames"] == 2 * SEGMENT and joined["buffered"][0][0] == pytest.approx(SEGMENT / FPS)
