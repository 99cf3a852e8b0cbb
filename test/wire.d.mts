// Types of test/wire.mjs, for the bun tests that check it against lib/frame.ts.
export type WireFrame =
  | { type: "welcome"; version: number }
  | { type: "result"; exit: number; stdout: string; stderr: string }
  | { type: "error"; exit: number; message: string }
  | { type: "unknown"; hex: string };
export function frame(type: number, payload: Buffer): Buffer;
export function helloFrame(): Buffer;
export function callFrame(cap: string, args: string[]): Buffer;
export function decodeFrames(buf: Buffer): { frames: WireFrame[]; rest: Buffer };
