"""Markdown tables for docs/protocol.md, generated from the schemas so the docs cannot drift from the code.

``python -m ltx2stream.protocol.catalogue`` prints them; a test checks the docs contain each one verbatim.
"""

from __future__ import annotations

import dataclasses
import re

from ltx2stream.protocol.client_messages import CLIENT_MESSAGES, Image, ResumeFrom, Settings
from ltx2stream.protocol.codes import ERRORS, CloseCode
from ltx2stream.protocol.limits import ProtocolLimits
from ltx2stream.protocol.schema import field_specs
from ltx2stream.protocol.server_messages import SERVER_MESSAGES, LimitsInfo, SegmentTimings

CLIENT_MAPS: tuple[type, ...] = (Settings, Image, ResumeFrom)
SERVER_MAPS: tuple[type, ...] = (LimitsInfo, SegmentTimings)


def schema_section(cls: type) -> str:
    """Heading, first docstring paragraph and field table of one message or nested map."""
    name = getattr(cls, "type", None)
    title = f"#### `{name}`" if name else f"#### map `{cls.__name__}`"
    first = (cls.__doc__ or "").strip().split("\n\n")[0]
    summary = " ".join(line.strip() for line in first.splitlines())
    if not dataclasses.fields(cls):
        return f"{title}\n\n{summary}\n\nNo fields besides `type`.\n"
    rows = ["| field | wire type and range | required |", "|---|---|---|"]
    specs = field_specs(cls)
    for f in dataclasses.fields(cls):
        spec, required = specs[f.name]
        note = "yes" if required else ("no" if f.default is None else f"no (default `{f.default!r}`)")
        rows.append(f"| `{f.name}` | {spec.describe()} | {note} |")
    return f"{title}\n\n{summary}\n\n" + "\n".join(rows) + "\n"


def message_sections(sender: str) -> str:
    """Every message one side sends, then the maps nested in them."""
    classes = CLIENT_MESSAGES + CLIENT_MAPS if sender == "client" else SERVER_MESSAGES + SERVER_MAPS
    return "\n".join(schema_section(cls) for cls in classes)


def limits_table() -> str:
    """ProtocolLimits fields, server-side defaults and the meaning from the class docstring."""
    doc = ProtocolLimits.__doc__ or ""
    defaults = ProtocolLimits()
    rows = ["| limit | server-side default | meaning |", "|---|---|---|"]
    for f in dataclasses.fields(ProtocolLimits):
        match = re.search(
            rf"^\s+(?:\w+, )?{f.name}(?:, \w+)?: (.*?)(?=^\s+\w+(?:, \w+)?: |\Z)",
            doc,
            re.DOTALL | re.MULTILINE,
        )
        meaning = " ".join(match.group(1).split()) if match else ""
        rows.append(f"| `{f.name}` | `{getattr(defaults, f.name)!r}` | {meaning} |")
    return "\n".join(rows) + "\n"


def error_table() -> str:
    """The error table: code, close code, flags, meaning."""
    rows = ["| code | close code | retryable | fatal | meaning |", "|---|---|---|---|---|"]
    for s in ERRORS.values():
        rows.append(
            f"| `{s.code}` | {int(s.close_code)} `{s.close_code.name}` | {'yes' if s.retryable else 'no'} | "
            f"{'yes' if s.fatal else 'no'} | {s.summary} |"
        )
    return "\n".join(rows) + "\n"


def close_code_list() -> str:
    """All close codes on one line."""
    return ", ".join(f"{int(c)} `{c.name}`" for c in CloseCode) + "."


def all_blocks() -> list[str]:
    """Every generated block, in document order."""
    return [
        message_sections("client"),
        message_sections("server"),
        limits_table(),
        error_table(),
        close_code_list(),
    ]


if __name__ == "__main__":
    import sys

    sys.stdout.write("\n\n".join(all_blocks()) + "\n")
