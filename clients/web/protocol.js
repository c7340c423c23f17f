// The client side of the ltx2stream wire protocol (docs/protocol.md): message builders and code tables.
//
// The schema itself lives in Python (ltx2stream/protocol/); the builders only name the fields, leave
// optional ones out when unset, and are checked against the Python decoder in tests/test_client_web.py.

import { decode, encode } from "./msgpack.js";

export const PROTOCOL_VERSION = 1;
export const STAGES = ["text", "stage1", "upsample", "stage2", "decode", "encode", "send"];
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
