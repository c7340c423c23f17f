"""Error codes and WebSocket close codes of the wire protocol: the one registry lives in ``ltx2stream.codes``."""

from ltx2stream.codes import ERRORS, CloseCode, ErrorSpec, error_spec, is_fatal

__all__ = ["ERRORS", "CloseCode", "ErrorSpec", "error_spec", "is_fatal"]
