"""Python client of the ltx2stream WebSocket server: ``StreamClient`` (asyncio) and the fMP4 ``Fmp4Recorder``.

``Plan``/``stream`` run a scripted session (steers by segment count, stop, resume on loss); the CLI command
``ltx2stream client URL --prompt ...`` lives in ``ltx2stream.commands.client``. See docs/clients.md.
"""

from ltx2stream.client.plan import Plan, stream, summary
from ltx2stream.client.recorder import Fmp4Recorder, shift_decode_times
from ltx2stream.client.session import StreamClient

__all__ = ["Fmp4Recorder", "Plan", "StreamClient", "shift_decode_times", "stream", "summary"]
