"""The network layer: the wire protocol (``server.protocol``) and the asyncio WebSocket server built on it.

Layering: ``server`` imports ``session`` and below, never the other way round.
"""
