"""HTTP on the WebSocket port: /healthz, /readyz (503 while loading), /metrics (Prometheus text), the web
client."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families
from server_doubles import SETTINGS, Client, ToyHost, make_config, running
from websockets.exceptions import InvalidStatus

from ltx2stream import protocol as P
from ltx2stream.server.app import StreamingServer


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


async def get(port: int, path: str, **headers: str) -> tuple[int, str, str]:
    return await asyncio.to_thread(_get, port, path, headers)


def parse_prometheus(text: str) -> dict[str, float]:
    """Parse with ``prometheus_client``'s parser (it raises on anything malformed); ``series -> value``, the
    series written ``name{label="value",...}`` with the labels sorted by name."""
    series = {}
    for family in text_string_to_metric_families(text):
        assert family.type in ("counter", "gauge", "histogram"), family
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            series[sample.name + (f"{{{labels}}}" if labels else "")] = sample.value
    return series


def test_readyz_is_503_while_loading_then_200_and_metrics_count_segments(tmp_path):
    """/readyz answers 503 until warm_up finished; /metrics parses and counts delivered segments."""

    async def main() -> None:
        host = ToyHost(warm_s=30)
        async with running(tmp_path, host=host) as (app, _):
            assert (await get(app.port, "/healthz"))[0] == 200
            status, _, body = await get(app.port, "/readyz")
            assert (status, body) == (503, "loading\n")
            client = await Client.connect(app.port)
            await client.open()  # accepted while loading: it waits for the model
            host.release_warm_up.set()
            for _ in range(200):
                if (await get(app.port, "/readyz"))[0] == 200:
                    break
                await asyncio.sleep(0.01)
            assert (await get(app.port, "/readyz"))[:3] == (200, "text/plain; charset=utf-8", "ready\n")
            await client.expect("segment_done", index=1)
            await client.send(P.Stop())
            await client.drain_to_close()
            status, content_type, text = await get(app.port, "/metrics")
            assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
            series = parse_prometheus(text)
            delivered = len(client.of_type("segment_done"))
            assert series["ltx2stream_segments_total"] == delivered >= 2
            assert series["ltx2stream_ready"] == 1
            assert series['ltx2stream_segment_stage_seconds_count{stage="stage1"}'] == delivered
            assert series['ltx2stream_segment_stage_seconds_bucket{le="+Inf",stage="encode"}'] == delivered
            assert series["ltx2stream_media_seconds_total"] == pytest.approx(delivered * 9 / 8)
            assert series["ltx2stream_realtime_factor"] > 0
            assert series['ltx2stream_sessions{state="active"}'] == 0
            # every delivered segment is stored (writes coalesce when a segment lands during a write)
            assert 1 <= series["ltx2stream_states_saved_total"] <= delivered
            assert series["ltx2stream_bytes_sent_total"] > 0

    asyncio.run(main())


def test_metrics_need_the_token_and_web_client_is_served(tmp_path):
    """With a token /metrics answers 401 without it; / serves clients/web/index.html; paths cannot escape."""
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<!doctype html><title>ltx2stream</title>")
    (web / "app.js").write_text("console.log('hi')")
    (web / "vendor" / "msgpack").mkdir(parents=True)
    (web / "vendor" / "msgpack" / "msgpack.js").write_text("var MessagePack = {};")
    (tmp_path / "secret.html").write_text("no")

    async def main() -> None:
        async with running(tmp_path, token="tok", web_root=web) as (app, _):
            assert (await get(app.port, "/metrics"))[0] == 401
            assert (await get(app.port, "/metrics", Authorization="Bearer tok"))[0] == 200
            status, content_type, body = await get(app.port, "/")
            assert (status, content_type) == (200, "text/html; charset=utf-8") and "<title>ltx2stream" in body
            assert (await get(app.port, "/app.js"))[0] == 200
            assert (await get(app.port, "/vendor/msgpack/msgpack.js"))[:2] == (
                200,
                "text/javascript; charset=utf-8",
            )
            assert (await get(app.port, "/%2e%2e/secret.html"))[0] == 404
            assert (await get(app.port, "/nothing-here"))[0] == 404
            with pytest.raises(InvalidStatus) as info:
                await Client.connect(app.port, path="/elsewhere")
            assert info.value.response.status_code == 404

    asyncio.run(main())


def test_a_host_that_fails_to_load_is_reported(tmp_path):
    """A failing host factory: /healthz 500, /readyz 503, sessions get server.internal (1011)."""

    def broken() -> ToyHost:
        raise RuntimeError("no weights here")

    async def main() -> None:
        app = StreamingServer(make_config(tmp_path), broken)
        await app.start()
        try:
            await asyncio.to_thread(app.workers[0].loaded.wait, 5)
            assert (await get(app.port, "/healthz"))[0] == 500
            assert (await get(app.port, "/readyz"))[0] == 503
            client = await Client.connect(app.port)
            await client.send(P.Open(protocol_version=1, settings=SETTINGS, prompt="x"))
            code, _ = await client.drain_to_close()
            assert code == 1011 and client.of_type("error")[0].code == "server.internal"
        finally:
            await app.shutdown()

    asyncio.run(main())
