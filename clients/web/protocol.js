// The client side of the ltx2stream wire protocol (docs/protocol.md): message builders, code tables, and the
// protocol's MessagePack profile on top of the vendored @msgpack/msgpack library.
//
// The schema itself lives in Python (ltx2stream/protocol/); the builders only name the fields, leave
// optional ones out when unset, and are checked against the Python decoder in tests/test_client_web.py.
//
// The library (vendor/msgpack/msgpack.js, `make vendor-msgpack`) is a UMD build: index.html loads it as a classic
// script before this module, which makes the global `MessagePack`.

const MessagePack = globalThis.MessagePack;
if (!MessagePack) throw new Error("vendor/msgpack/msgpack.js must be loaded before protocol.js (index.html does)");

// ---- the protocol's MessagePack profile ----------------------------------------------------------------------
// nil, bool, int (a Number when exact, else a BigInt: seeds go up to 2^63 - 1), float32/64, str (strict UTF-8),
// bin (Uint8Array views), array, map with string keys. Ext types, other map keys (and "__proto__"), invalid
// UTF-8, truncated input and trailing bytes raise DecodeError. `undefined` map values are left out when
// encoding, so optional fields can be written as `field: maybeValue`. Ints are written in their smallest form,
// byte for byte as Python's msgpack packs them.

export const DecodeError = MessagePack.DecodeError;
const MAX_DEPTH = 64;
const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;
const fatalUtf8 = new TextDecoder("utf-8", { fatal: true });

class NoExtensions extends MessagePack.ExtensionCodec {
  decode(_data, type) {
    throw new DecodeError(`ext types are not accepted (type ${type})`);
  }
}

class ProtocolDecoder extends MessagePack.Decoder {
  // The library replaces invalid UTF-8; the protocol refuses it. `pos` and `bytes` are the reader's fields in
  // the pinned library version (tests/test_client_web.py feeds invalid UTF-8 to catch a change on refresh).
  decodeUtf8String(byteLength, headerOffset) {
    const start = this.pos + headerOffset;
    const text = super.decodeUtf8String(byteLength, headerOffset);
    try {
      fatalUtf8.decode(this.bytes.subarray(start, start + byteLength));
    } catch {
      throw new DecodeError(`invalid UTF-8 in a string at offset ${start}`);
    }
    return text;
  }
}

const decoder = new ProtocolDecoder({
  useBigInt64: true,
  extensionCodec: new NoExtensions(),
  mapKeyConverter: (key) => {
    if (typeof key !== "string") throw new DecodeError(`map key of type ${typeof key}; only strings are allowed`);
    return key;
  },
});
const encoder = new MessagePack.Encoder({ useBigInt64: true, ignoreUndefined: true, maxDepth: MAX_DEPTH });

function fromWire(v, depth) {  // 64-bit ints as Numbers when exact
  if (depth > MAX_DEPTH) throw new DecodeError("input nested too deeply");
  if (typeof v === "bigint") return Number.isSafeInteger(Number(v)) ? Number(v) : v;
  if (v === null || typeof v !== "object" || v instanceof Uint8Array) return v;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = fromWire(v[i], depth + 1);
  } else {
    for (const key of Object.keys(v)) v[key] = fromWire(v[key], depth + 1);
  }
  return v;
}

function toWire(v, depth) {  // ints beyond 32 bits as BigInt: the library writes those as uint64/int64
  if (depth > MAX_DEPTH) throw new RangeError("value nested too deeply");
  if (typeof v === "bigint") {
    if (v < INT64_MIN || v > UINT64_MAX) throw new RangeError(`integer ${v} does not fit in 64 bits`);
    return Number.isSafeInteger(Number(v)) ? toWire(Number(v), depth) : v;
  }
  if (typeof v === "number") {
    return Number.isSafeInteger(v) && !Object.is(v, -0) && (v >= 2 ** 32 || v < -(2 ** 31)) ? BigInt(v) : v;
  }
  if (v === null || typeof v !== "object" || ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return v;
  if (Array.isArray(v)) return v.map((x) => toWire(x, depth + 1));
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toWire(x, depth + 1)]));
}

/** Decode exactly one MessagePack value (Uint8Array or ArrayBuffer); anything malformed raises DecodeError. */
export function decode(data) {
  let value;
  try {
    value = decoder.decode(data);
  } catch (e) {
    throw e instanceof DecodeError ? e : new DecodeError(`malformed MessagePack: ${e.message}`);
  }
  return fromWire(value, 0);
}

/** Encode a value to MessagePack bytes (a Uint8Array). */
export function encode(value) {
  return encoder.encode(toWire(value, 0));
}

// ---- messages --------------------------------------------------------------------------------------------------

export const PROTOCOL_VERSION = 1;
export const STAGES = ["text", "stage1", "upsample", "stage2", "decode", "carry", "encode", "send"];
export const SUBPROTOCOL = "ltx2stream";
export const BEARER_PREFIX = "bearer.";

// WebSocket close codes the server uses (section 6 of docs/protocol.md).
export const CLOSE_CODES = {
  1000: "NORMAL", 1001: "GOING_AWAY", 1005: "NO_STATUS", 1006: "ABNORMAL (connection lost)",
  1008: "POLICY_VIOLATION", 1009: "MESSAGE_TOO_BIG", 1011: "INTERNAL_ERROR", 4400: "BAD_REQUEST",
  4401: "UNAUTHORIZED", 4403: "FORBIDDEN", 4404: "NOT_FOUND", 4408: "TIMEOUT", 4409: "CONFLICT",
  4422: "BAD_STATE", 4426: "UNSUPPORTED_VERSION", 4429: "RATE_LIMITED", 4503: "UNAVAILABLE",
};

/** Encode one client message (a plain object with a string `type`) to the bytes of one binary frame. */
export function encodeMessage(msg) {
  return encode(msg);
}

/** Decode one server frame; throws DecodeError (or Error) unless it is a map with a string `type`. */
export function decodeMessage(data) {
  const msg = decode(data);
  if (msg === null || typeof msg !== "object" || Array.isArray(msg) || typeof msg.type !== "string") {
    throw new Error("server message is not a map with a string 'type'");
  }
  return msg;
}

/** A seed from user text: Number when exact, BigInt above 2^53 (seeds go up to 2^63 - 1); undefined if blank. */
export function parseSeed(text) {
  const t = String(text ?? "").trim();
  if (t === "") return undefined;
  if (!/^\d+$/.test(t)) throw new RangeError(`seed ${JSON.stringify(t)} is not a non-negative integer`);
  const big = BigInt(t);
  if (big > 0x7fffffffffffffffn) throw new RangeError(`seed ${t} is above 2^63 - 1`);
  return big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
}

/**
 * The `open` message.
 * settings: {preset, width, height, fps, frames, overlap?, seed?}; image: {data: Uint8Array, mime, strength?,
 * frame?} or undefined; resumeFrom: {session_id, segment_index?} or {state: Uint8Array} or undefined.
 */
export function openMessage({ prompt, settings, image, resumeFrom, lookahead }) {
  return {
    type: "open",
    protocol_version: PROTOCOL_VERSION,
    settings: {
      preset: settings.preset, width: settings.width, height: settings.height, fps: settings.fps,
      frames: settings.frames, overlap: settings.overlap, seed: settings.seed,
    },
    prompt,
    image: image ? { data: image.data, mime: image.mime, strength: image.strength, frame: image.frame } : undefined,
    resume_from: resumeFrom
      ? { session_id: resumeFrom.session_id, segment_index: resumeFrom.segment_index, state: resumeFrom.state }
      : undefined,
    lookahead,
  };
}

/** The `steer` message; blendSegments only with transition "blend". */
export function steerMessage({ prompt, transition = "cut", blendSegments, seed, requestId }) {
  return {
    type: "steer", prompt, transition,
    blend_segments: transition === "blend" ? blendSegments : undefined,
    seed, request_id: requestId,
  };
}

export const pauseMessage = () => ({ type: "pause" });
export const resumeMessage = () => ({ type: "resume" });
export const stopMessage = () => ({ type: "stop" });
export const snapshotMessage = ({ store = false, requestId } = {}) =>
  ({ type: "snapshot", store, request_id: requestId });

/** The image MIME type told by the magic bytes, as the server checks it (PNG, JPEG, WebP), or null. */
export function sniffImage(bytes) {
  const starts = (sig) => sig.every((b, i) => bytes[i] === b);
  if (starts([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return "image/png";
  if (starts([0xff, 0xd8, 0xff])) return "image/jpeg";
  const ascii = (a, b) => String.fromCharCode(...bytes.subarray(a, b));
  if (bytes.length >= 12 && ascii(0, 4) === "RIFF" && ascii(8, 12) === "WEBP") return "image/webp";
  return null;
}

/**
 * The WebSocket URL and subprotocols for a server URL and an optional token. A token that is a valid
 * subprotocol token travels as `bearer.<token>` (it stays out of URLs and access logs); others as `?token=`.
 */
export function connectionTarget(serverUrl, token) {
  const url = new URL(serverUrl);
  const protocols = [SUBPROTOCOL];
  if (token) {
    if (/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(token)) protocols.push(BEARER_PREFIX + token);
    else url.searchParams.set("token", token);
  }
  return { url: url.toString(), protocols };
}
