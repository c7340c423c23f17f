"""From Videos API fields to a session: ``model`` → preset, ``size`` → width × height, ``seconds`` → segments,
``input_reference`` → image conditioning; checked by the same protocol limits as a WebSocket ``open``.

The fields go through the wire schema of ``open`` (``protocol.from_wire`` with the server's limits), so a prompt,
an image or a setting that a WebSocket client could not send is refused here with the same code.
:func:`admit` adds the cost admission of ``open`` (the preset's declared capacity).
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable
from dataclasses import dataclass

from ltx2stream import codes
from ltx2stream import protocol as P
from ltx2stream.errors import ConfigError, InputError, ProtocolError, SessionError
from ltx2stream.pipeline.presets import PRESETS
from ltx2stream.protocol.schema import from_wire
from ltx2stream.server.admission import check_cost
from ltx2stream.server.videos.forms import Form
from ltx2stream.session.api import ImageCondition, SessionSettings
from ltx2stream.session.timeline import Timeline
from ltx2stream.types import latent_frames_of

DEFAULT_SECONDS = 4.0  # the OpenAI default
MAX_SEGMENTS = 512  # segments one request may ask for (a job holds its worker slot this long)
OPENAI_SIZES = ("1280x720", "720x1280", "1792x1024", "1024x1792")  # what OpenAI clients send
CREATE_FIELDS = ("prompt", "model", "seconds", "size", "input_reference", "seed")
EXTEND_FIELDS = ("prompt", "seconds", "video", "video.id")


@dataclass(frozen=True)
class VideoPlan:
    """A checked request: what to generate and how many segments."""

    prompt: str
    settings: SessionSettings
    segments: int
    image: ImageCondition | None = None

    @property
    def size(self) -> str:
        return f"{self.settings.width}x{self.settings.height}"


def supported_sizes(preset: str) -> tuple[str, ...]:
    """The sizes a preset serves: its own, the transposed one, and the OpenAI sizes that fit its spatial rule
    (multiples of 32, or 64 for two stages) and its declared capacity (``cost.*`` admission)."""
    p = PRESETS[preset]
    out = []
    for size in dict.fromkeys((f"{p.width}x{p.height}", f"{p.height}x{p.width}", *OPENAI_SIZES)):
        width, height = (int(v) for v in size.split("x"))
        if width % p.size_multiple or height % p.size_multiple:
            continue
        try:
            check_cost(preset, width, height, p.frames, p.fps)
        except InputError:
            continue
        out.append(size)
    return tuple(out)


def timeline_of(settings: SessionSettings) -> Timeline:
    return Timeline(settings.frames, settings.fps, settings.overlap)


def seconds_of(settings: SessionSettings, segments: int, *, first: bool) -> float:
    """Media seconds of ``segments`` segments (the first of a session shows all its frames)."""
    t = timeline_of(settings)
    frames = t.delivered_frames(segments - 1) if first else segments * t.step
    return frames / settings.fps


def segments_for(settings: SessionSettings, seconds: float, *, first: bool) -> int:
    """The fewest segments that show at least ``seconds`` of new media."""
    t = timeline_of(settings)
    frames = seconds * settings.fps - 1e-6
    if first:
        return 1 + max(0, math.ceil((frames - settings.frames) / t.step))
    return max(1, math.ceil(frames / t.step))


def create_plan(form: Form, served: tuple[str, ...], limits: P.ProtocolLimits) -> VideoPlan:
    """``POST /v1/videos`` fields as a plan.

    Raises:
        ProtocolError: unknown or malformed fields, sizes, seconds, prompts and images (``protocol.*``).
        ConfigError: ``config.unknown_preset`` for a ``model`` this server does not serve.
    """
    _known(form, CREATE_FIELDS + ("input_reference.image_url", "input_reference.file_id"))
    preset = form.text("model") or served[0]
    if preset not in served or preset not in PRESETS:
        raise ConfigError(
            f"model: {preset[:64]!r} is not served here; models: {', '.join(served)}",
            code=codes.CONFIG_UNKNOWN_PRESET,
        )
    p = PRESETS[preset]
    sizes = supported_sizes(preset)
    size = form.text("size") or sizes[0]
    if size not in sizes:
        raise ProtocolError(
            f"size: {size[:32]!r} is not served by model {preset}; sizes: {', '.join(sizes)}",
            code=codes.PROTOCOL_OUT_OF_RANGE,
        )
    width, height = (int(v) for v in size.split("x"))
    seed = _int(form.text("seed"), "seed", 0)
    settings = {
        "preset": preset,
        "width": width,
        "height": height,
        "fps": float(p.fps),
        "frames": p.frames,
        "overlap": 1 if latent_frames_of(p.frames) >= 3 else 0,
        "seed": seed,
    }
    msg = _open(form.text("prompt"), settings, _image(form), limits)
    session = SessionSettings(**settings)  # type: ignore[arg-type]
    seconds = _seconds(form.text("seconds"))
    plan = VideoPlan(
        msg.prompt,
        session,
        _bounded(segments_for(session, seconds, first=True)),
        None if msg.image is None else ImageCondition(msg.image.data, msg.image.strength, msg.image.frame),
    )
    admit(plan, limits)
    return plan


def extension_plan(form: Form, settings: SessionSettings, limits: P.ProtocolLimits) -> VideoPlan:
    """``POST /v1/videos/extensions`` fields (the parent's settings already known) as a plan."""
    _known(form, EXTEND_FIELDS)
    msg = _open(form.text("prompt"), _wire_settings(settings), None, limits)
    seconds = _seconds(form.text("seconds"))
    plan = VideoPlan(msg.prompt, settings, _bounded(segments_for(settings, seconds, first=False)))
    admit(plan, limits)
    return plan


def admit(plan: VideoPlan, limits: P.ProtocolLimits) -> None:
    """Admission beyond the per-field limits: the preset's declared capacity, as for a WebSocket ``open``.

    Raises:
        InputError: ``cost.resolution`` / ``cost.frames`` / ``cost.tokens`` / ``cost.memory``.
    """
    s = plan.settings
    check_cost(s.preset, s.width, s.height, s.frames, s.fps)


def parent_id(form: Form, find_file: Callable[[bytes], str | None]) -> str:
    """The id of the video to extend: ``video.id``, ``video`` as a plain string, or ``video`` uploaded as the
    MP4 file this server made (found by its SHA-256)."""
    upload = form.files.get("video")
    if upload is not None:
        found = find_file(upload.data)
        if found is None:
            raise SessionError(
                f"video: the uploaded file ({len(upload.data)} bytes) is not a video this server made; "
                "upload the MP4 from /content (not a stitched one) or give video[id]",
                code=codes.VIDEO_NOT_FOUND,
            )
        return found
    value = form.text("video.id") or form.text("video")
    if not value:
        raise ProtocolError(
            'video: give the video to extend: video[id], {"video": {"id": ...}} or the MP4 file',
            code=codes.PROTOCOL_MISSING_FIELD,
        )
    return value


def _open(
    prompt: str | None, settings: dict[str, object], image: dict[str, object] | None, limits: P.ProtocolLimits
) -> P.Open:
    data: dict[str, object] = {"protocol_version": P.PROTOCOL_VERSION, "settings": settings}
    if prompt is not None:
        data["prompt"] = prompt
    if image is not None:
        data["image"] = image
    msg: P.Open = from_wire(P.Open, data, "request", limits)
    return msg


def _wire_settings(s: SessionSettings) -> dict[str, object]:
    return {
        "preset": s.preset,
        "width": s.width,
        "height": s.height,
        "fps": s.fps,
        "frames": s.frames,
        "overlap": s.overlap,
        "seed": s.seed,
    }


def _image(form: Form) -> dict[str, object] | None:
    upload = form.files.get("input_reference")
    if upload is not None:
        data = upload.data
    elif (url := form.text("input_reference.image_url")) is not None:
        data = _data_url(url)
    elif form.text("input_reference.file_id") is not None:
        raise ProtocolError(
            "input_reference.file_id: this server has no file store; upload the image or send a data: URL",
            code=codes.PROTOCOL_OUT_OF_RANGE,
        )
    else:
        return None
    return {"data": data, "mime": P.sniff_image(data) or "image/png"}


def _data_url(url: str) -> bytes:
    head, sep, payload = url.partition(",")
    if not url.startswith("data:") or not sep or not head.endswith(";base64"):
        raise ProtocolError(
            "input_reference.image_url: only base64 data: URLs (nothing is downloaded)",
            code=codes.PROTOCOL_OUT_OF_RANGE,
        )
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ProtocolError(
            "input_reference.image_url: the base64 payload cannot be read", code=codes.PROTOCOL_BAD_IMAGE
        ) from e


def _known(form: Form, names: tuple[str, ...]) -> None:
    unknown = sorted(n for n in (*form.fields, *form.files) if n not in names)
    if unknown:
        raise ProtocolError(
            f"unknown field(s) {', '.join(repr(n[:64]) for n in unknown[:5])}; known: "
            f"{', '.join(n for n in names if '.' not in n)}",
            code=codes.PROTOCOL_UNKNOWN_FIELD,
        )


def _seconds(text: str | None) -> float:
    if text is None:
        return DEFAULT_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ProtocolError(
            f"seconds: {text[:32]!r} is not a positive number of seconds", code=codes.PROTOCOL_OUT_OF_RANGE
        )
    return value


def _int(text: str | None, name: str, default: int) -> int:
    if text is None:
        return default
    try:
        return int(text)
    except ValueError as e:
        raise ProtocolError(f"{name}: {text[:32]!r} is not an integer", code=codes.PROTOCOL_BAD_TYPE) from e


def _bounded(segments: int) -> int:
    if segments > MAX_SEGMENTS:
        raise ProtocolError(
            f"seconds: {segments} segments asked; at most {MAX_SEGMENTS} per request",
            code=codes.PROTOCOL_OUT_OF_RANGE,
        )
    return segments
