// The vivary wire protocol: frames between a jailed client (viv-stub, or anything the agent
// writes) and the broker. Pure encode/decode, no I/O, so it can be table-tested and fuzzed.
// This header is the wire spec; man/vivary-protocol.7 repeats it for operators.
//
//   frame    = length:u32be body        length = bytes in body, 1 ..= MAX_FRAME
//   body     = type:u8 payload          the payload must be consumed exactly: trailing bytes,
//                                       an unknown type or invalid UTF-8 are protocol errors
//   str      = len:u32be utf8-bytes     valid UTF-8 with no NUL
//   bytes    = len:u32be raw-bytes
//
//   HELLO    0x01  magic:"VIVR" version:u16be        client -> broker, first frame
//   WELCOME  0x02  version:u16be                     broker -> client, after HELLO is recorded
//   CALL     0x10  cap:str argc:u16be arg:str*argc   client -> broker, one call at a time
//   RESULT   0x11  exit:u8 stdout:bytes stderr:bytes broker -> client, ends the call
//   ERROR    0x7f  exit:u8 message:str               broker -> client, then the broker closes
//
// The broker reads the 4-byte length first and refuses a frame over MAX_FRAME before buffering
// any of it. A client may send HELLO and CALL back to back without waiting for WELCOME. The broker
// takes no effect of a CALL before it sent WELCOME, so a connection that ends before WELCOME may
// be opened again and the call sent anew.

export const PROTOCOL_VERSION = 1;
export const MAGIC = "VIVR";
export const MAX_FRAME = 2 * 1024 * 1024;
export const MAX_ARGS = 4096;

export const FrameType = {
  hello: 0x01,
  welcome: 0x02,
  call: 0x10,
  result: 0x11,
  error: 0x7f,
} as const;

export type Frame =
  | { type: "hello"; version: number }
  | { type: "welcome"; version: number }
  | { type: "call"; cap: string; args: string[] }
  | { type: "result"; exit: number; stdout: Uint8Array; stderr: Uint8Array }
  | { type: "error"; exit: number; message: string };

export class FrameError extends Error {
  override name = "FrameError";
}

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** A frame's bytes, written into one buffer sized beforehand: length prefix, then the body. */
class Writer {
  readonly out: Uint8Array;
  private view: DataView;
  private at = 4;
  constructor(size: number) {
    if (size > MAX_FRAME) throw new FrameError(`frame of ${size} bytes exceeds ${MAX_FRAME}`);
    this.out = new Uint8Array(4 + size);
    this.view = new DataView(this.out.buffer);
    this.view.setUint32(0, size);
  }
  u8(v: number) {
    this.out[this.at++] = v;
  }
  u16(v: number) {
    this.view.setUint16(this.at, v);
    this.at += 2;
  }
  bytes(v: Uint8Array) {
    this.view.setUint32(this.at, v.length);
    this.out.set(v, this.at + 4);
    this.at += 4 + v.length;
  }
  raw(v: Uint8Array) {
    this.out.set(v, this.at);
    this.at += v.length;
  }
}

const MAGIC_BYTES = utf8.encode(MAGIC);

export function encodeFrame(f: Frame): Uint8Array {
  let w: Writer;
  switch (f.type) {
    case "hello":
      w = new Writer(1 + MAGIC_BYTES.length + 2);
      w.u8(FrameType.hello);
      w.raw(MAGIC_BYTES);
      w.u16(f.version);
      break;
    case "welcome":
      w = new Writer(3);
      w.u8(FrameType.welcome);
      w.u16(f.version);
      break;
    case "call": {
      if (f.args.length > MAX_ARGS) throw new FrameError(`more than ${MAX_ARGS} arguments`);
      const cap = utf8.encode(f.cap);
      const args = f.args.map((a) => utf8.encode(a));
      w = new Writer(args.reduce((n, a) => n + 4 + a.length, 1 + 4 + cap.length + 2));
      w.u8(FrameType.call);
      w.bytes(cap);
      w.u16(args.length);
      for (const a of args) w.bytes(a);
      break;
    }
    case "result":
      w = new Writer(2 + 4 + f.stdout.length + 4 + f.stderr.length);
      w.u8(FrameType.result);
      w.u8(f.exit);
      w.bytes(f.stdout);
      w.bytes(f.stderr);
      break;
    case "error": {
      const message = utf8.encode(f.message);
      w = new Writer(2 + 4 + message.length);
      w.u8(FrameType.error);
      w.u8(f.exit);
      w.bytes(message);
      break;
    }
  }
  return w.out;
}

class Reader {
  private at = 0;
  private view: DataView;
  constructor(private buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  private need(n: number) {
    if (this.at + n > this.buf.length) throw new FrameError("truncated frame body");
  }
  u8() {
    this.need(1);
    return this.buf[this.at++]!;
  }
  u16() {
    this.need(2);
    const v = this.view.getUint16(this.at);
    this.at += 2;
    return v;
  }
  u32() {
    this.need(4);
    const v = this.view.getUint32(this.at);
    this.at += 4;
    return v;
  }
  fixed(n: number) {
    this.need(n);
    const v = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return v;
  }
  bytes() {
    return this.fixed(this.u32());
  }
  str() {
    const b = this.bytes();
    let s: string;
    try {
      s = strictUtf8.decode(b);
    } catch {
      throw new FrameError("string is not valid UTF-8");
    }
    if (s.includes("\0")) throw new FrameError("string contains NUL");
    return s;
  }
  end() {
    if (this.at !== this.buf.length) throw new FrameError(`${this.buf.length - this.at} trailing bytes`);
  }
}

/** Decodes one frame body (without its length prefix). Throws FrameError on anything off. */
export function decodeBody(body: Uint8Array): Frame {
  if (body.length === 0) throw new FrameError("empty frame");
  if (body.length > MAX_FRAME) throw new FrameError(`frame of ${body.length} bytes exceeds ${MAX_FRAME}`);
  const r = new Reader(body);
  const type = r.u8();
  let f: Frame;
  switch (type) {
    case FrameType.hello: {
      const magic = r.fixed(4);
      if (String.fromCharCode(...magic) !== MAGIC) throw new FrameError("bad hello magic");
      f = { type: "hello", version: r.u16() };
      break;
    }
    case FrameType.welcome:
      f = { type: "welcome", version: r.u16() };
      break;
    case FrameType.call: {
      const cap = r.str();
      const argc = r.u16();
      if (argc > MAX_ARGS) throw new FrameError(`more than ${MAX_ARGS} arguments`);
      const args: string[] = [];
      for (let i = 0; i < argc; i++) args.push(r.str());
      f = { type: "call", cap, args };
      break;
    }
    case FrameType.result:
      f = { type: "result", exit: r.u8(), stdout: r.bytes(), stderr: r.bytes() };
      break;
    case FrameType.error:
      f = { type: "error", exit: r.u8(), message: r.str() };
      break;
    default:
      throw new FrameError(`unknown frame type 0x${type.toString(16).padStart(2, "0")}`);
  }
  r.end();
  return f;
}

/** Splits a byte string holding whole frames back to back (as the audit log keeps them). */
export function decodeFrames(buf: Uint8Array): Frame[] {
  const out: Frame[] = [];
  let at = 0;
  while (at < buf.length) {
    if (at + 4 > buf.length) throw new FrameError("truncated length prefix");
    const len = new DataView(buf.buffer, buf.byteOffset + at, 4).getUint32(0);
    if (len > MAX_FRAME) throw new FrameError(`frame of ${len} bytes exceeds ${MAX_FRAME}`);
    if (at + 4 + len > buf.length) throw new FrameError("truncated frame body");
    out.push(decodeBody(buf.subarray(at + 4, at + 4 + len)));
    at += 4 + len;
  }
  return out;
}
