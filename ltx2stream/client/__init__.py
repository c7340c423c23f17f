"""Python client of the ltx2stream WebSocket server: ``StreamClient`` (asyncio) and the fMP4 ``Fmp4Recorder``.

The CLI is ``ltx2stream client URL --prompt ...`` (``ltx2stream.client.cli``); see docs/clients.md.
"""

from ltx2stream.client.recorder import Fmp4Recorder, shift_decode_times
from ltx2stream.client.session import StreamClient

__all__ = ["Fmp4Recorder", "StreamClient", "shift_decode_times"]
