// A small MessagePack codec for the ltx2stream wire protocol (docs/protocol.md), no dependencies.
//
// Covers what the protocol uses: nil, bool, int (up to 64 bit; BigInt outside the safe-integer range),
// float32/64, str (UTF-8), bin (-> Uint8Array), array, map with string keys. Ext types, non-string map keys,
// invalid UTF-8 and truncated input raise a DecodeError. `undefined` map values are left out when encoding,
// so optional protocol fields can be written as `field: maybeValue`.

export class DecodeError extends Error {
  constructor(message) {
    super(message);
    this.name = "DecodeError";
  }
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });
const MAX_DEPTH = 64;

// ---- encoding ----------------------------------------------------------------------------------------------

class Writer {
  constructor(size = 256) {
    this.buf = new Uint8Array(size);
    this.view = new DataView(this.buf.buffer);
    this.pos = 0;
  }

  reserve(n) {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const bigger = new Uint8Array(size);
    bigger.set(this.buf.subarray(0, this.pos));
    this.buf = bigger;
    this.view = new DataView(bigger.buffer);
  }

  u8(v) { this.reserve(1); this.view.setUint8(this.pos, v); this.pos += 1; }
  u16(v) { this.reserve(2); this.view.setUint16(this.pos, v); this.pos += 2; }
  u32(v) { this.reserve(4); this.view.setUint32(this.pos, v); this.pos += 4; }
  u64(v) { this.reserve(8); this.view.setBigUint64(this.pos, v); this.pos += 8; }
  i64(v) { this.reserve(8); this.view.setBigInt64(this.pos, v); this.pos += 8; }
  f64(v) { this.reserve(8); this.view.setFloat64(this.pos, v); this.pos += 8; }
  bytes(b) { this.reserve(b.length); this.buf.set(b, this.pos); this.pos += b.length; }

  result() { return this.buf.slice(0, this.pos); }
}

function writeInt(w, v) {
  // v: a safe integer Number or a BigInt within 64 bits
  if (typeof v === "number") {
    if (v >= 0) {
      if (v < 0x80) return w.u8(v);
      if (v < 0x100) { w.u8(0xcc); return w.u8(v); }
      if (v < 0x10000) { w.u8(0xcd); return w.u16(v); }
      if (v < 0x100000000) { w.u8(0xce); return w.u32(v); }
      w.u8(0xcf); return w.u64(BigInt(v));
    }
    if (v >= -32) return w.u8(v & 0xff);
    if (v >= -128) { w.u8(0xd0); return w.u8(v & 0xff); }
    if (v >= -32768) { w.u8(0xd1); return w.u16(v & 0xffff); }
    if (v >= -2147483648) { w.u8(0xd2); return w.u32(v >>> 0); }
    w.u8(0xd3); return w.i64(BigInt(v));
  }
  if (v >= 0n) {
    if (v <= BigInt(Number.MAX_SAFE_INTEGER)) return writeInt(w, Number(v));
    if (v > 0xffffffffffffffffn) throw new RangeError(`integer ${v} does not fit in 64 bits`);
    w.u8(0xcf); return w.u64(v);
  }
  if (v >= -BigInt(Number.MAX_SAFE_INTEGER)) return writeInt(w, Number(v));
  if (v < -0x8000000000000000n) throw new RangeError(`integer ${v} does not fit in 64 bits`);
  w.u8(0xd3); return w.i64(v);
}

function writeLength(w, n, fix, fixMax, c8, c16, c32) {
  if (n <= fixMax && fix !== null) return w.u8(fix | n);
  if (n < 0x100 && c8 !== null) { w.u8(c8); return w.u8(n); }
  if (n < 0x10000) { w.u8(c16); return w.u16(n); }
  w.u8(c32); return w.u32(n);
}

function writeValue(w, v, depth) {
  if (depth > MAX_DEPTH) throw new RangeError("value nested too deeply");
  if (v === null || v === undefined) return w.u8(0xc0);
  if (v === false) return w.u8(0xc2);
  if (v === true) return w.u8(0xc3);
  if (typeof v === "bigint") return writeInt(w, v);
  if (typeof v === "number") {
    if (Number.isSafeInteger(v) && !Object.is(v, -0)) return writeInt(w, v);
    w.u8(0xcb); return w.f64(v);  // non-integers, NaN, infinities and unsafe integers as float64
  }
  if (typeof v === "string") {
    const b = utf8Encoder.encode(v);
    writeLength(w, b.length, 0xa0, 31, 0xd9, 0xda, 0xdb);
    return w.bytes(b);
  }
  if (v instanceof Uint8Array || v instanceof ArrayBuffer || ArrayBuffer.isView(v)) {
    const b = v instanceof Uint8Array ? v
      : v instanceof ArrayBuffer ? new Uint8Array(v) : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    writeLength(w, b.length, null, -1, 0xc4, 0xc5, 0xc6);
    return w.bytes(b);
  }
  if (Array.isArray(v)) {
    writeLength(w, v.length, 0x90, 15, null, 0xdc, 0xdd);
    for (const item of v) writeValue(w, item, depth + 1);
    return;
  }
  if (typeof v === "object") {
    const entries = (v instanceof Map ? [...v.entries()] : Object.entries(v)).filter(([, x]) => x !== undefined);
    writeLength(w, entries.length, 0x80, 15, null, 0xde, 0xdf);
    for (const [key, item] of entries) {
      if (typeof key !== "string") throw new TypeError("map keys must be strings");
      writeValue(w, key, depth + 1);
      writeValue(w, item, depth + 1);
    }
    return;
  }
  throw new TypeError(`cannot encode a value of type ${typeof v}`);
}

/** Encode a value to MessagePack bytes (a Uint8Array). */
export function encode(value) {
  const w = new Writer();
  writeValue(w, value, 0);
  return w.result();
}

// ---- decoding ----------------------------------------------------------------------------------------------

class Reader {
  constructor(bytes) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 0;
  }

  need(n) {
    if (this.pos + n > this.bytes.length) {
      throw new DecodeError(`truncated input: need ${n} byte(s) at offset ${this.pos} of ${this.bytes.length}`);
    }
    const at = this.pos;
    this.pos += n;
    return at;
  }

  u8() { return this.view.getUint8(this.need(1)); }
  i8() { return this.view.getInt8(this.need(1)); }
  u16() { return this.view.getUint16(this.need(2)); }
  i16() { return this.view.getInt16(this.need(2)); }
  u32() { return this.view.getUint32(this.need(4)); }
  i32() { return this.view.getInt32(this.need(4)); }
  u64() { return smallest(this.view.getBigUint64(this.need(8))); }
  i64() { return smallest(this.view.getBigInt64(this.need(8))); }
  f32() { return this.view.getFloat32(this.need(4)); }
  f64() { return this.view.getFloat64(this.need(8)); }
  take(n) { const at = this.need(n); return this.bytes.subarray(at, at + n); }
}

function smallest(big) {
  // a Number when it is exact, else the BigInt (seeds go up to 2^63 - 1)
  const n = Number(big);
  return Number.isSafeInteger(n) ? n : big;
}

function readString(r, n) {
  try {
    return utf8Decoder.decode(r.take(n));
  } catch (e) {
    if (e instanceof DecodeError) throw e;
    throw new DecodeError(`invalid UTF-8 in a string at offset ${r.pos - n}`);
  }
}

function readArray(r, n, depth) {
  const out = new Array(n);
  for (let i = 0; i < n; i++) out[i] = readValue(r, depth + 1);
  return out;
}

function readMap(r, n, depth) {
  const out = {};
  for (let i = 0; i < n; i++) {
    const key = readValue(r, depth + 1);
    if (typeof key !== "string") throw new DecodeError(`map key of type ${typeof key}; only strings are allowed`);
    // defineProperty: a key named "__proto__" stays a plain own property
    Object.defineProperty(out, key, { value: readValue(r, depth + 1), enumerable: true, writable: true,
                                      configurable: true });
  }
  return out;
}

function readValue(r, depth) {
  if (depth > MAX_DEPTH) throw new DecodeError("input nested too deeply");
  const c = r.u8();
  if (c <= 0x7f) return c;
  if (c >= 0xe0) return c - 0x100;
  if ((c & 0xf0) === 0x80) return readMap(r, c & 0x0f, depth);
  if ((c & 0xf0) === 0x90) return readArray(r, c & 0x0f, depth);
  if ((c & 0xe0) === 0xa0) return readString(r, c & 0x1f);
  switch (c) {
    case 0xc0: return null;
    case 0xc2: return false;
    case 0xc3: return true;
    case 0xc4: return r.take(r.u8());
    case 0xc5: return r.take(r.u16());
    case 0xc6: return r.take(r.u32());
    case 0xca: return r.f32();
    case 0xcb: return r.f64();
    case 0xcc: return r.u8();
    case 0xcd: return r.u16();
    case 0xce: return r.u32();
    case 0xcf: return r.u64();
    case 0xd0: return r.i8();
    case 0xd1: return r.i16();
    case 0xd2: return r.i32();
    case 0xd3: return r.i64();
    case 0xd9: return readString(r, r.u8());
    case 0xda: return readString(r, r.u16());
    case 0xdb: return readString(r, r.u32());
    case 0xdc: return readArray(r, r.u16(), depth);
    case 0xdd: return readArray(r, r.u32(), depth);
    case 0xde: return readMap(r, r.u16(), depth);
    case 0xdf: return readMap(r, r.u32(), depth);
    case 0xc1: throw new DecodeError(`byte 0xc1 is never used (offset ${r.pos - 1})`);
    default: throw new DecodeError(`ext types are not accepted (0x${c.toString(16)} at offset ${r.pos - 1})`);
  }
}

/** Decode exactly one MessagePack value from a Uint8Array or ArrayBuffer; bin values are Uint8Array views. */
export function decode(data) {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  const r = new Reader(bytes);
  const value = readValue(r, 0);
  if (r.pos !== bytes.length) throw new DecodeError(`${bytes.length - r.pos} trailing byte(s) after the value`);
  return value;
}
