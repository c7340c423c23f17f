"""Wire protocol: every message round-trips; every kind of bad input is refused with its stable code."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import msgpack
import pytest

from ltx2stream import codes as registry
from ltx2stream import protocol as P
from ltx2stream.errors import ConfigError, ProtocolError, SessionError, StateError
from ltx2stream.protocol import catalogue
from ltx2stream.protocol.schema import field_specs
from ltx2stream.server.messages import segment_started, state_message
from ltx2stream.session import state_machine as sm_mod

SERVER_SIDE = P.ProtocolLimits()  # decodes what clients send
CLIENT_SIDE = P.ProtocolLimits.for_client()  # decodes what the server sends
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(40))
SETTINGS = P.Settings(preset="ltx2-distilled", width=768, height=512, fps=24.0, frames=121, overlap=2, seed=7)
TIMINGS = P.SegmentTimings(text=0.1, stage1=2.0, upsample=0.2, stage2=1.5, decode=0.4, encode=0.3, send=0.05)

SAMPLES: list[P.Message] = [
    P.Open(
        protocol_version=P.PROTOCOL_VERSION,
        settings=SETTINGS,
        prompt="a red fox in snow",
        image=P.Image(data=PNG, mime="image/png", strength=0.8),
        lookahead=2,
    ),
    P.Open(
        protocol_version=1,
        settings=SETTINGS,
        prompt="x",
        resume_from=P.ResumeFrom(session_id="abcdEFGH_-12", segment_index=3),
    ),
    P.Open(protocol_version=1, settings=SETTINGS, prompt="x", resume_from=P.ResumeFrom(state=b"\x00" * 64)),
    P.Steer(prompt="now it rains", transition="blend", blend_segments=3, seed=2**63 - 1, request_id=4),
    P.Pause(),
    P.Resume(),
    P.Snapshot(store=True, request_id=9),
    P.Stop(),
    P.Accepted(
        session_id="abcdEFGH_-12",
        protocol_version=1,
        settings=SETTINGS,
        limits=P.LimitsInfo.from_limits(SERVER_SIDE),
        mime='video/mp4; codecs="avc1.64001e,mp4a.40.2"',
    ),
    P.Queued(position=2),
    P.State(state="running", previous="starting", reason="resume"),
    P.SegmentStarted(index=4, prompt="b", seed=11, previous_prompt="a", weight=0.5),
    P.Progress(segment=4, stage="stage1", step=3, total=8),
    P.MediaInit(mime="video/mp4", data=b"\x00\x00\x00\x18ftypiso6"),
    P.Media(segment=4, seq=17, t0=20.0, duration=5.041666, data=bytes(range(256)) * 4, last=False),
    P.SegmentDone(index=4, media_duration=5.0, timings=TIMINGS),
    P.SteerAck(applies_at=5, request_id=4),
    P.SnapshotResult(
        session_id="abcdEFGH_-12", segment_index=4, stored=False, data=b"\x01" * 32, request_id=9
    ),
    P.Error(code="protocol.out_of_range", message="m", retryable=False, fatal=False),
    P.Final(reason="stopped", segments=5, resumable_session_id="abcdEFGH_-12"),
]


def _limits_for(msg: P.Message) -> P.ProtocolLimits:
    return SERVER_SIDE if msg.sender == "client" else CLIENT_SIDE


def _raw(**fields: object) -> bytes:
    return msgpack.packb(fields, use_bin_type=True)


def _open_map(**overrides: object) -> dict:
    base = msgpack.unpackb(P.encode(SAMPLES[0]), raw=False)
    base.update(overrides)
    return base


def _settings_map(**overrides: object) -> dict:
    settings = dict(_open_map()["settings"])
    settings.update(overrides)
    return _open_map(settings=settings)


def _code(data: bytes, limits: P.ProtocolLimits = SERVER_SIDE) -> str:
    with pytest.raises(ProtocolError) as info:
        P.decode(data, limits=limits)
    return info.value.code


def test_every_message_type_has_a_sample():
    """The round-trip samples cover every registered message type."""
    assert {type(m).type for m in SAMPLES} == set(P.MESSAGE_TYPES)


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: type(m).__name__)
def test_round_trip(msg):
    """decode(encode(m)) == m for every message type, with its sender's limits."""
    assert P.decode(P.encode(msg), limits=_limits_for(msg)) == msg


def test_binary_fields_are_msgpack_bin_and_decode_to_bytes():
    """Media, images and states travel as msgpack bin (never base64 text) and come back as bytes."""
    media = SAMPLES[[type(m) for m in SAMPLES].index(P.Media)]
    raw = msgpack.unpackb(P.encode(media), raw=True)  # raw=True keeps str as bytes too: check the wire marker
    packed = P.encode(media)
    assert bytes([0xC5]) + len(media.data).to_bytes(2, "big") + media.data in packed  # bin16 header + payload
    assert raw[b"data"] == media.data
    decoded = P.decode(packed, limits=CLIENT_SIDE)
    assert type(decoded.data) is bytes and decoded.data == media.data
    image = P.decode(P.encode(SAMPLES[0]), limits=SERVER_SIDE).image
    assert type(image.data) is bytes and image.data == PNG


def test_bin_given_as_base64_string_is_refused():
    """A base64 string where bin is expected is a type error, not silently decoded."""
    image = {"data": "iVBORw0KGgo=", "mime": "image/png"}
    assert _code(_raw(**_open_map(image=image))) == "protocol.bad_type"


@pytest.mark.parametrize("data", [b"", b"\xc1", b"\x92\x01", b"\x81\xa4type", _raw(type="stop") + b"\x00"])
def test_malformed_msgpack(data):
    """Empty, reserved-byte, truncated and trailing-garbage input is protocol.malformed."""
    assert _code(data) == "protocol.malformed"


@pytest.mark.parametrize("obj", [[1, 2], "stop", 3, {"kind": "stop"}, {"type": 5}, {1: 2}])
def test_not_a_typed_map(obj):
    """Anything but a map with a string 'type' (and str keys) is protocol.malformed."""
    assert _code(msgpack.packb(obj, use_bin_type=True)) == "protocol.malformed"


def test_text_frame_and_ext_types_refused():
    """A text frame (str) and msgpack ext values are protocol.malformed."""
    assert _code('{"type": "stop"}') == "protocol.malformed"  # type: ignore[arg-type]
    ext = msgpack.packb({"type": "stop", "x": msgpack.ExtType(5, b"abcd")}, use_bin_type=True)
    assert _code(ext) == "protocol.malformed"


def test_unknown_type_and_wrong_sender():
    """Unknown types, and server messages sent by a client (and vice versa), are protocol.unknown_type."""
    assert _code(_raw(type="hello")) == "protocol.unknown_type"
    assert _code(P.encode(P.Queued(position=1))) == "protocol.unknown_type"
    assert _code(P.encode(P.Stop()), CLIENT_SIDE) == "protocol.unknown_type"


def test_unknown_fields_top_level_and_nested():
    """Extra keys are refused at every level (no extra='allow')."""
    assert _code(_raw(type="stop", now=True)) == "protocol.unknown_field"
    assert _code(_raw(**_settings_map(turbo=1))) == "protocol.unknown_field"


def test_missing_required_field():
    """A required field left out (or sent as nil) is protocol.missing_field."""
    m = _open_map()
    del m["prompt"]
    assert _code(_raw(**m)) == "protocol.missing_field"
    assert _code(_raw(**_settings_map(width=None))) == "protocol.missing_field"
    assert _code(_raw(type="steer")) == "protocol.missing_field"


@pytest.mark.parametrize(
    "overrides",
    [
        {"width": "768"},
        {"width": 768.0},
        {"width": True},
        {"fps": "24"},
        {"fps": False},
        {"preset": 3},
        {"seed": [1]},
    ],
)
def test_wrong_field_types(overrides):
    """Strings for numbers, floats or bools for ints, and containers for scalars are protocol.bad_type."""
    assert _code(_raw(**_settings_map(**overrides))) == "protocol.bad_type"


def test_nested_map_wrong_type():
    """A scalar where a nested map is expected is protocol.bad_type."""
    assert _code(_raw(**_open_map(settings=[1, 2]))) == "protocol.bad_type"
    assert _code(_raw(type="snapshot", store="yes")) == "protocol.bad_type"


def test_float_field_accepts_msgpack_int():
    """fps sent as an int (what JS encoders do for 24.0) decodes to a float."""
    msg = P.decode(_raw(**_settings_map(fps=24)), limits=SERVER_SIDE)
    assert msg.settings.fps == 24.0 and isinstance(msg.settings.fps, float)


@pytest.mark.parametrize(
    "overrides",
    [
        {"width": 770},
        {"width": 0},
        {"width": 3872},
        {"height": 16},
        {"frames": 120},
        {"frames": 0},
        {"frames": 489},
        {"fps": 0.5},
        {"fps": 61},
        {"fps": float("nan")},
        {"fps": float("inf")},
        {"seed": -1},
        {"seed": 2**63},
        {"overlap": 16},
        {"overlap": -1},
        {"preset": "Bad Preset"},
        {"preset": ""},
    ],
)
def test_out_of_range_settings(overrides):
    """Sizes off the 32-pixel grid, frames not 1+8k, fps/seed/overlap out of bounds are protocol.out_of_range."""
    assert _code(_raw(**_settings_map(**overrides))) == "protocol.out_of_range"


def test_overlap_must_be_shorter_than_segment():
    """overlap >= latent frames of the segment is refused (cross-field rule)."""
    assert _code(_raw(**_settings_map(frames=9, overlap=2))) == "protocol.out_of_range"
    assert P.decode(_raw(**_settings_map(frames=9, overlap=1)), limits=SERVER_SIDE).settings.overlap == 1


def test_preset_allow_list_from_limits():
    """With limits.presets set, only those preset ids are accepted."""
    limits = dataclasses.replace(SERVER_SIDE, presets=("ltx2-distilled",))
    assert P.decode(P.encode(SAMPLES[0]), limits=limits).settings.preset == "ltx2-distilled"
    assert _code(_raw(**_settings_map(preset="ltx23-dev")), limits) == "protocol.out_of_range"


@pytest.mark.parametrize(
    "fields",
    [
        {"prompt": ""},
        {"prompt": "x", "transition": "fade"},
        {"prompt": "x", "blend_segments": 0},
        {"prompt": "x", "transition": "blend", "blend_segments": 9},
        {"prompt": "x", "blend_segments": 2},
        {"prompt": "x", "request_id": -3},
    ],
)
def test_out_of_range_steer(fields):
    """Empty prompts, unknown transitions, blend lengths out of range or with a cut are protocol.out_of_range."""
    assert _code(_raw(type="steer", **fields)) == "protocol.out_of_range"


def test_image_strength_and_magic_bytes():
    """Image strength must lie in [0, 1]; bytes must be PNG/JPEG/WebP and agree with the declared mime."""
    strong = {"data": PNG, "mime": "image/png", "strength": 1.5}
    assert _code(_raw(**_open_map(image=strong))) == "protocol.out_of_range"
    assert _code(_raw(**_open_map(image={"data": PNG, "mime": "image/jpeg"}))) == "protocol.bad_image"
    gif = {"data": b"GIF89a" + b"\0" * 20, "mime": "image/png"}
    assert _code(_raw(**_open_map(image=gif))) == "protocol.bad_image"
    assert _code(_raw(**_open_map(image={"data": PNG, "mime": "image/gif"}))) == "protocol.out_of_range"
    webp = b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\0" * 8
    jpeg = b"\xff\xd8\xff\xe0" + b"\0" * 20
    assert P.sniff_image(webp) == "image/webp" and P.sniff_image(jpeg) == "image/jpeg"
    decoded = P.decode(_raw(**_open_map(image={"data": webp, "mime": "image/webp"})), limits=SERVER_SIDE)
    assert decoded.image.data == webp


def test_resume_from_needs_exactly_one_source():
    """resume_from with neither or both of session_id/state, or a bad id, is refused."""
    assert _code(_raw(**_open_map(resume_from={}))) == "protocol.out_of_range"
    both = {"session_id": "abcdEFGH_-12", "state": b"\0" * 16}
    assert _code(_raw(**_open_map(resume_from=both))) == "protocol.out_of_range"
    assert (
        _code(_raw(**_open_map(resume_from={"session_id": "../../etc/passwd"}))) == "session.bad_id"
    )  # documented code


def test_unsupported_protocol_version():
    """open with another protocol version is protocol.unsupported_version (fatal)."""
    assert _code(_raw(**_open_map(protocol_version=P.PROTOCOL_VERSION + 1))) == "protocol.unsupported_version"
    newer = _open_map(protocol_version=P.PROTOCOL_VERSION + 1, new_v2_field=1)
    assert _code(_raw(**newer)) == "protocol.unsupported_version"  # version is checked before fields
    assert P.ERRORS["protocol.unsupported_version"].fatal


def test_oversized_message_bin_and_str():
    """Messages over max_message_bytes and bin/str over msgpack's own limits are protocol.too_large."""
    small = dataclasses.replace(SERVER_SIDE, max_message_bytes=1000)
    assert _code(_raw(type="steer", prompt="x" * 2000), small) == "protocol.too_large"
    tight = dataclasses.replace(SERVER_SIDE, max_image_bytes=64, max_state_bytes=64, max_prompt_chars=10)
    big_image = _raw(**_open_map(image={"data": b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "mime": "image/png"}))
    assert _code(big_image, tight) == "protocol.too_large"
    assert _code(_raw(type="steer", prompt="y" * 2000), tight) == "protocol.too_large"
    deep_array = msgpack.packb({"type": "steer", "prompt": list(range(300))}, use_bin_type=True)
    assert _code(deep_array) == "protocol.too_large"


def test_prompt_longer_than_limit_in_chars():
    """A prompt within msgpack's byte limit but over max_prompt_chars is protocol.too_large (every over-size
    field is, as the error table says)."""
    limits = dataclasses.replace(SERVER_SIDE, max_prompt_chars=300)
    assert _code(_raw(type="steer", prompt="é" * 301), limits) == "protocol.too_large"
    assert P.decode(_raw(type="steer", prompt="é" * 300), limits=limits).prompt == "é" * 300


def test_encode_rejects_non_messages():
    """encode() only takes protocol messages."""
    with pytest.raises(TypeError):
        P.encode({"type": "stop"})  # type: ignore[arg-type]


def test_every_field_has_a_declared_spec():
    """Validation is declarative: every field of every message (and nested map) carries a wire spec."""
    nested = {P.Settings, P.Image, P.ResumeFrom, P.LimitsInfo, P.SegmentTimings}
    for cls in set(P.MESSAGE_TYPES.values()) | nested:
        assert len(field_specs(cls)) == len(dataclasses.fields(cls))  # raises TypeError on a bare field


def test_error_table_covers_every_code_and_uses_allowed_close_codes():
    """Every code constant of the registry is in the wire table, with an allowed close code."""
    constants = {
        v
        for k, v in vars(registry).items()
        if k.isupper() and isinstance(v, str) and re.fullmatch(r"[a-z_]+\.[a-z_0-9]+", v)
    }
    assert constants <= set(P.ERRORS), constants - set(P.ERRORS)
    for spec in P.ERRORS.values():
        assert spec.close_code in (1000, 1001, 1008, 1009, 1011) or 4000 <= spec.close_code <= 4999


def test_error_from_maps_exceptions_to_wire_errors():
    """error_from uses the table flags, makes everything fatal before accepted, and hides internal text."""
    err = P.error_from(SessionError("slow down", code="session.rate_limited"), request_id=3)
    assert (err.code, err.retryable, err.fatal, err.request_id) == ("session.rate_limited", True, False, 3)
    assert P.error_from(ProtocolError("bad", code="protocol.bad_type"), accepted=False).fatal
    assert P.error_from(StateError("x", code="state.future_version")).fatal
    internal = P.error_from(RuntimeError("secret path /x"))
    assert (internal.code, internal.message, internal.fatal) == (
        "server.internal",
        "internal server error",
        True,
    )
    assert P.error_spec("input.frames_rule").close_code == P.CloseCode.BAD_REQUEST
    assert P.error_spec("something.new").code == "something.new"


def test_docs_list_every_message_field_and_error_code():
    """docs/protocol.md names every message type, every field and every error code of the table."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "protocol.md").read_text(encoding="utf-8")
    fields = [f.name for cls in P.MESSAGE_TYPES.values() for f in dataclasses.fields(cls)]
    for name in list(P.MESSAGE_TYPES) + list(P.ERRORS) + fields:
        assert f"`{name}`" in doc, name


def test_docs_tables_match_the_schemas():
    """The catalogue, limits and error tables in docs/protocol.md are exactly what the schemas generate."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "protocol.md").read_text(encoding="utf-8")
    for block in catalogue.all_blocks():
        assert block in doc, block[:200]


def test_messages_built_from_session_objects():
    """State and SegmentStarted are built straight from the state machine's StateChange and SegmentPlan."""
    change = sm_mod.SessionStateMachine("abcdEFGH").transition(
        sm_mod.SessionState.STARTING, reason="assigned"
    )
    state = state_message(change)
    assert (state.previous, state.state, state.reason) == ("queued", "starting", "assigned")
    plan = sm_mod.SegmentPlan(3, "b", 9, previous_prompt="a", weight=0.5)
    started = segment_started(plan)
    assert P.decode(P.encode(started), limits=CLIENT_SIDE) == started and started.weight == 0.5


def test_wire_session_states_are_the_state_machine_states():
    """The protocol's state names (it does not import the session layer) are exactly SessionState's values."""
    assert tuple(s.value for s in sm_mod.SessionState) == P.SESSION_STATES


def test_resume_from_state_blob_rejects_segment_index_and_limits_validate():
    """resume_from.segment_index only goes with session_id; bad ProtocolLimits and non-bytes input are refused."""
    blob = {"state": b"\0" * 16, "segment_index": 2}
    assert _code(_raw(**_open_map(resume_from=blob))) == "protocol.out_of_range"
    assert _code(b"\xc0") == "protocol.malformed"  # nil is not a map
    with pytest.raises(ProtocolError):
        P.decode(12345, limits=SERVER_SIDE)  # type: ignore[arg-type]
    for bad in ({"sender": "browser"}, {"max_frames": 0}, {"min_fps": 30.0, "max_fps": 24.0}):
        with pytest.raises(ConfigError, match="ProtocolLimits") as info:
            P.ProtocolLimits(**bad)  # type: ignore[arg-type]
        assert info.value.code == "config.out_of_range"
    assert P.decode(bytearray(P.encode(P.Stop())), limits=SERVER_SIDE) == P.Stop()
