"""Session layer (Sans-I/O): lifecycle state machine, steering schedule, continuation-state container and store.

Nothing here opens sockets; the asyncio server drives these classes. Submodules:
``state_machine`` (SessionState, transitions, steering, rate limit), ``state`` (SerializedState, the
safetensors container) and ``store`` (SessionStore, atomic on-disk states per session).
"""
