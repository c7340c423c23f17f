"""Request bodies of the Videos API: JSON, ``multipart/form-data`` (what the ``openai`` package sends) or
URL-encoded forms, all read into one flat shape: text fields and uploaded files by name.

Nested form names in the brackets style (``video[id]``) become dotted names (``video.id``), and so do nested
JSON objects, so a route reads ``video.id`` whichever encoding the client chose.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import re
from dataclasses import dataclass, field
from email.message import Message
from typing import Any
from urllib.parse import parse_qsl

from ltx2stream import codes
from ltx2stream.errors import ProtocolError

BRACKETS = re.compile(r"\[([^\]]*)\]")


@dataclass(frozen=True)
class Upload:
    """An uploaded file part."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Form:
    """The fields of one request body: text values and uploads, by (dotted) name."""

    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, Upload] = field(default_factory=dict)

    def text(self, name: str) -> str | None:
        return self.fields.get(name)


def parse_body(content_type: str, body: bytes) -> Form:
    """Read a request body by its ``Content-Type``; an empty body is an empty form.

    Raises:
        ProtocolError: ``protocol.malformed`` for bodies that cannot be read, naming what was wrong.
    """
    kind = content_type.split(";", 1)[0].strip().lower()
    if not body:
        return Form()
    if kind == "application/json":
        return _json(body)
    if kind == "multipart/form-data":
        return _multipart(content_type, body)
    if kind == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError) as e:
            raise _malformed(f"the form body cannot be read: {e}") from e
        return Form({_dotted(k): v for k, v in pairs})
    raise _malformed(
        f"Content-Type {kind or '(none)'!r} is not application/json, multipart/form-data or "
        "application/x-www-form-urlencoded"
    )


def _json(body: bytes) -> Form:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _malformed(f"the JSON body cannot be read: {e}") from e
    if not isinstance(data, dict):
        raise _malformed("the JSON body must be an object")
    fields: dict[str, str] = {}
    _flatten(data, "", fields)
    return Form(fields)


def _flatten(value: Any, prefix: str, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(inner, f"{prefix}.{key}" if prefix else str(key), out)
    elif value is None:
        return
    elif isinstance(value, bool):
        out[prefix] = "true" if value else "false"
    elif isinstance(value, str | int | float):
        out[prefix] = str(value)
    else:
        raise _malformed(f"field {prefix!r}: lists are not accepted here")


def _multipart(content_type: str, body: bytes) -> Form:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart() or message.defects:
        raise _malformed("the multipart body cannot be read (boundary missing or malformed)")
    fields: dict[str, str] = {}
    files: dict[str, Upload] = {}
    for part in message.iter_parts():
        assert isinstance(part, Message)
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            raise _malformed("a multipart part without a name")
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            files[_dotted(name)] = Upload(filename, part.get_content_type(), data)
        else:
            try:
                fields[_dotted(name)] = data.decode(part.get_content_charset() or "utf-8")
            except (UnicodeDecodeError, LookupError) as e:
                raise _malformed(f"field {name!r} is not UTF-8 text") from e
    return Form(fields, files)


def _dotted(name: str) -> str:
    """``video[id]`` -> ``video.id``."""
    return BRACKETS.sub(lambda m: "." + m.group(1), name)


def _malformed(message: str) -> ProtocolError:
    return ProtocolError(message, code=codes.PROTOCOL_MALFORMED)
