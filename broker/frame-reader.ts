// Reassembles frames from a byte stream with every bound enforced up front: the 4-byte length is
// checked against MAX_FRAME before any of the body is buffered, and exactly that many bytes are
// then allocated. Pure state, no timers or sockets, so it is table-tested on its own.
import { MAX_FRAME } from "../lib/frame.ts";

export type ReadEvent =
  | { type: "frame"; raw: Uint8Array; body: Uint8Array }
  | { type: "bad-length"; length: number; header: Uint8Array };

export class FrameReader {
  private header = new Uint8Array(4);
  private headerFill = 0;
  private body: Uint8Array | null = null;
  private bodyFill = 0;
  private failed = false;

  /** True while a frame has started but not completed (the deadline applies). */
  get midFrame(): boolean {
    return this.headerFill > 0 || this.body !== null;
  }

  /** Feeds bytes; returns whole frames in order. After "bad-length" the reader is dead. */
  push(chunk: Uint8Array): ReadEvent[] {
    const out: ReadEvent[] = [];
    let at = 0;
    while (at < chunk.length && !this.failed) {
      if (this.body === null) {
        const take = Math.min(4 - this.headerFill, chunk.length - at);
        this.header.set(chunk.subarray(at, at + take), this.headerFill);
        this.headerFill += take;
        at += take;
        if (this.headerFill < 4) break;
        const length = new DataView(this.header.buffer).getUint32(0);
        if (length === 0 || length > MAX_FRAME) {
          this.failed = true;
          out.push({ type: "bad-length", length, header: this.header.slice() });
          break;
        }
        this.body = new Uint8Array(4 + length);
        this.body.set(this.header);
        this.bodyFill = 4;
      }
      const take = Math.min(this.body.length - this.bodyFill, chunk.length - at);
      this.body.set(chunk.subarray(at, at + take), this.bodyFill);
      this.bodyFill += take;
      at += take;
      if (this.bodyFill === this.body.length) {
        out.push({ type: "frame", raw: this.body, body: this.body.subarray(4) });
        this.body = null;
        this.headerFill = 0;
      }
    }
    return out;
  }
}
