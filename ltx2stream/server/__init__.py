"""The network layer: the asyncio WebSocket + HTTP server built on the wire protocol (``ltx2stream.protocol``).

Layering: ``server`` imports ``session``, ``media``, ``protocol`` and below, never the other way round.
"""
