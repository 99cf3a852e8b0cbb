// The wire frames for the clients that tests and the bench run under the host's Node, inside jails
// where neither Bun nor lib/frame.ts can be loaded: test/raw-client.mjs and bench/persist.mjs.
// lib/frame.ts is the spec; test/wire.test.ts checks these bytes against its encoder and decoder.
// Plain JavaScript with no imports but Node's Buffer, so a copy works beside the file using it.

/** length:u32be, type:u8, payload. */
export function frame(type, payload) {
  const b = Buffer.alloc(5 + payload.length);
  b.writeUInt32BE(1 + payload.length, 0);
  b[4] = type;
  payload.copy(b, 5);
  return b;
}

/** str = len:u32be utf8-bytes. */
function str(s) {
  const d = Buffer.from(s, "utf8");
  const l = Buffer.alloc(4);
  l.writeUInt32BE(d.length);
  return Buffer.concat([l, d]);
}

/** HELLO: magic "VIVR", version 1. */
export function helloFrame() {
  return frame(0x01, Buffer.from([0x56, 0x49, 0x56, 0x52, 0, 1]));
}

/** CALL of `cap` with `args`. */
export function callFrame(cap, args) {
  const argc = Buffer.alloc(2);
  argc.writeUInt16BE(args.length);
  return frame(0x10, Buffer.concat([str(cap), argc, ...args.map(str)]));
}

/**
 * The whole frames at the start of `buf`, decoded (WELCOME, RESULT, ERROR; any other type as
 * hex), and the bytes after them, which are the start of a frame still to come.
 */
export function decodeFrames(buf) {
  const frames = [];
  let at = 0;
  while (buf.length - at >= 4) {
    const len = buf.readUInt32BE(at);
    if (buf.length - at - 4 < len) break;
    const b = buf.subarray(at + 4, at + 4 + len);
    at += 4 + len;
    const t = b[0];
    if (t === 0x02) frames.push({ type: "welcome", version: b.readUInt16BE(1) });
    else if (t === 0x11) {
      const ol = b.readUInt32BE(2);
      const stdout = b.subarray(6, 6 + ol).toString();
      const stderr = b.subarray(10 + ol, 10 + ol + b.readUInt32BE(6 + ol)).toString();
      frames.push({ type: "result", exit: b[1], stdout, stderr });
    } else if (t === 0x7f) frames.push({ type: "error", exit: b[1], message: b.subarray(6).toString() });
    else frames.push({ type: "unknown", hex: b.toString("hex") });
  }
  return { frames, rest: buf.subarray(at) };
}
