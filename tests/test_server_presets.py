"""GET /presets: the presets a server runs, with the defaults the web player prefills its form with."""

from __future__ import annotations

import asyncio
import json
import time

from server_doubles import ToyHost, running
from test_server_http import get


def test_presets_lists_what_the_hosts_serve(tmp_path) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        host = ToyHost(presets=("tiny-ltx2", "toy"))
        async with running(tmp_path, host) as (app, _):
            deadline = time.monotonic() + 10
            while not app.ready and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            status, kind, body = await get(app.port, "/presets")
            assert status == 200 and kind.startswith("application/json")
            presets = json.loads(body)
            assert [p["preset"] for p in presets] == ["tiny-ltx2"]  # unknown ids ("toy") have no defaults
            assert presets[0] | {"notes": ""} == {
                "preset": "tiny-ltx2",
                "width": 64,
                "height": 64,
                "fps": 12.0,
                "frames": 17,
                "overlap": 1,
                "notes": "",
            }

    asyncio.run(main())
