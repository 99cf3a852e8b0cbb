// Table tests of the wire codec (lib/frame.ts) and the bounded frame reader
// (broker/frame-reader.ts), plus a seeded fuzz loop: decoding random bytes must either yield a
// frame that re-encodes to the same bytes or throw FrameError, never anything else.
import { describe, expect, test } from "bun:test";
import { FrameReader } from "../broker/frame-reader.ts";
import { decodeBody, decodeFrames, encodeFrame, FrameError, MAX_FRAME, type Frame } from "../lib/frame.ts";
import * as wire from "./wire.mjs";

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const body = (f: Frame) => encodeFrame(f).subarray(4);

describe("encodeFrame / decodeBody round trip", () => {
  const frames: Frame[] = [
    { type: "hello", version: 1 },
    { type: "welcome", version: 1 },
    { type: "call", cap: "fs-file-write", args: ["--path", "/srv/r/a", "--content", "héllo\n"] },
    { type: "call", cap: "x", args: [] },
    { type: "result", exit: 77, stdout: new Uint8Array(), stderr: new TextEncoder().encode("no\n") },
    { type: "error", exit: 76, message: "frame too large" },
  ];
  for (const f of frames) {
    test(`${f.type} ${JSON.stringify("args" in f ? f.args : "")}`, () => {
      expect(decodeBody(body(f))).toEqual(f);
    });
  }
});

test("hello has the documented bytes", () => {
  expect(Buffer.from(encodeFrame({ type: "hello", version: 1 })).toString("hex")).toBe("00000007" + "01" + "56495652" + "0001");
});

describe("strict decoding refuses", () => {
  const cases: [string, string, string][] = [
    ["an empty body", "", "empty frame"],
    ["an unknown type", "42", "unknown frame type 0x42"],
    ["a bad hello magic", "01 58585858 0001", "bad hello magic"],
    ["trailing bytes", "01 56495652 0001 00", "1 trailing bytes"],
    ["a truncated string", "10 00000005 6162", "truncated frame body"],
    ["invalid UTF-8", "10 00000001 ff 0000", "string is not valid UTF-8"],
    ["a NUL in a string", "10 00000003 610062 0000", "string contains NUL"],
    ["argc beyond the arguments", "10 00000001 61 0002 00000001 62", "truncated frame body"],
    ["argc over the limit", "10 00000001 61 ffff", "more than 4096 arguments"],
    ["a string length past the end", "10 ffffffff", "truncated frame body"],
  ];
  for (const [what, bytes, message] of cases) {
    test(what, () => {
      expect(() => decodeBody(hex(bytes))).toThrow(new FrameError(message));
    });
  }
});

test("encoding refuses a frame over MAX_FRAME", () => {
  expect(() => encodeFrame({ type: "call", cap: "x", args: ["a".repeat(MAX_FRAME)] })).toThrow(FrameError);
});

test("decodeFrames splits frames kept back to back", () => {
  const a = encodeFrame({ type: "hello", version: 1 });
  const b = encodeFrame({ type: "welcome", version: 1 });
  expect(decodeFrames(Buffer.concat([a, b]))).toEqual([{ type: "hello", version: 1 }, { type: "welcome", version: 1 }]);
  expect(() => decodeFrames(Buffer.concat([a, b.subarray(0, 5)]))).toThrow("truncated frame body");
});

describe("FrameReader", () => {
  const call = encodeFrame({ type: "call", cap: "c", args: ["--a", "b"] });

  test("reassembles a frame fed one byte at a time", () => {
    const r = new FrameReader();
    const got = [];
    for (const b of call) got.push(...r.push(Uint8Array.of(b)));
    expect(got).toHaveLength(1);
    expect(Buffer.from(got[0]!.type === "frame" ? got[0]!.raw : [])).toEqual(Buffer.from(call));
    expect(r.midFrame).toBe(false);
  });

  test("returns several frames from one chunk and keeps a partial one", () => {
    const r = new FrameReader();
    const got = r.push(Buffer.concat([call, call, call.subarray(0, 3)]));
    expect(got.map((e) => e.type)).toEqual(["frame", "frame"]);
    expect(r.midFrame).toBe(true);
  });

  test("refuses an oversized length before buffering any body", () => {
    const r = new FrameReader();
    const head = new Uint8Array(4);
    new DataView(head.buffer).setUint32(0, MAX_FRAME + 1);
    expect(r.push(head)).toEqual([{ type: "bad-length", length: MAX_FRAME + 1, header: head }]);
    expect(r.push(call)).toEqual([]);
  });

  test("refuses a zero length", () => {
    expect(new FrameReader().push(new Uint8Array(4))[0]!.type).toBe("bad-length");
  });
});

test("fuzz: random bodies decode to a canonical frame or throw FrameError", () => {
  let seed = 0x2545f491;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) & 0xff;
  const types = [0x01, 0x02, 0x10, 0x11, 0x7f, 0x00, 0x42];
  for (let i = 0; i < 20000; i++) {
    const len = rand() % 40;
    const b = new Uint8Array(len + 1);
    b[0] = types[rand() % types.length]!;
    for (let j = 1; j <= len; j++) b[j] = rand() < 200 ? rand() % 8 : rand();
    let f: Frame;
    try {
      f = decodeBody(b);
    } catch (e) {
      expect(e).toBeInstanceOf(FrameError);
      continue;
    }
    expect(Buffer.from(body(f))).toEqual(Buffer.from(b));
  }
});

// test/wire.mjs is the codec of the clients run under the host's Node (test/raw-client.mjs,
// bench/persist.mjs); it must write and read exactly what lib/frame.ts specifies.
describe("test/wire.mjs agrees with lib/frame.ts", () => {
  test("HELLO and CALL are the same bytes", () => {
    expect(wire.helloFrame().equals(encodeFrame({ type: "hello", version: 1 }))).toBe(true);
    for (const args of [[], ["--path", "/srv/r/a", "--content", "héllo\n"], ["", "x".repeat(70000)]]) {
      expect(wire.callFrame("fs-file-write", args).equals(encodeFrame({ type: "call", cap: "fs-file-write", args }))).toBe(true);
    }
  });

  test("WELCOME, RESULT and ERROR decode to lib/frame.ts's meaning, and a cut frame waits", () => {
    const enc = new TextEncoder();
    const sent = Buffer.concat([
      encodeFrame({ type: "welcome", version: 1 }),
      encodeFrame({ type: "result", exit: 77, stdout: enc.encode("out ü\n"), stderr: enc.encode("no\n") }),
      encodeFrame({ type: "error", exit: 76, message: "frame too large" }),
    ]);
    const cut = encodeFrame({ type: "result", exit: 0, stdout: enc.encode("later"), stderr: new Uint8Array() });
    const { frames, rest } = wire.decodeFrames(Buffer.concat([sent, cut.subarray(0, 9)]));
    expect(frames).toEqual([
      { type: "welcome", version: 1 },
      { type: "result", exit: 77, stdout: "out ü\n", stderr: "no\n" },
      { type: "error", exit: 76, message: "frame too large" },
    ]);
    expect(rest.equals(cut.subarray(0, 9))).toBe(true);
  });
});
