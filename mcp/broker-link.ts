// The MCP bridge's one connection to the broker: HELLO once, then each tool call as a CALL frame
// on the same connection, one at a time (the protocol allows one call in flight), answered by its
// RESULT. Calls that arrive together wait their turn. The broker ends a connection that stays
// idle (vivary-protocol(7)), so a connection idle for nearly that long is replaced before the next
// call, and one the broker closed is reopened. Like viv-stub, it waits a bounded time for a broker
// to listen, and resends a call only when its connection ended before WELCOME (the broker takes
// no effect of a call before WELCOME, vivary-protocol(7)): once WELCOME is in, a connection that
// ends before the result fails the call, since it may have taken effect. Plain node:net, so it
// runs on the host's Node.
import { createConnection, type Socket } from "node:net";
import { decodeBody, encodeFrame, FrameError, MAX_FRAME, PROTOCOL_VERSION } from "../lib/frame.ts";
import type { CallOutcome } from "./tools.ts";

export const CONNECT_WAIT_MS = 10_000;
/** Below the broker's idle time (60 s in vivary-protocol(7)): replaced before the broker ends it. */
export const REFRESH_IDLE_MS = 50_000;

/** A call that got no result: the one line to show, with `viv-mcp:` first. */
export class LinkError extends Error {
  override name = "LinkError";
}

interface Pending {
  resolve: (o: CallOutcome) => void;
  reject: (e: LinkError) => void;
}

/** The connection ended before WELCOME: the call had no effect and may be sent again. */
class NotWelcomed extends Error {}

const dec = new TextDecoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class BrokerLink {
  private sock: Socket | null = null;
  private buf: Buffer = Buffer.alloc(0);
  private welcomed = false;
  private pending: Pending | null = null;
  private turn: Promise<unknown> = Promise.resolve();
  private idleSince = 0;
  private closed = false;

  private readonly connectWaitMs: number;
  private readonly refreshIdleMs: number;

  constructor(
    private readonly socketPath: string,
    timing: { connectWaitMs?: number; refreshIdleMs?: number } = {},
  ) {
    this.connectWaitMs = timing.connectWaitMs ?? CONNECT_WAIT_MS;
    this.refreshIdleMs = timing.refreshIdleMs ?? REFRESH_IDLE_MS;
  }

  /** Sends one call and resolves with its result; calls run one after another, in order. */
  call(cap: string, argv: string[]): Promise<CallOutcome> {
    const run = this.turn.then(() => this.callNow(cap, argv));
    this.turn = run.catch(() => undefined);
    return run;
  }

  close() {
    this.closed = true;
    this.sock?.destroy();
    this.sock = null;
  }

  private async callNow(cap: string, argv: string[]): Promise<CallOutcome> {
    if (this.closed) throw new LinkError("viv-mcp: shutting down");
    if (this.sock && performance.now() - this.idleSince >= this.refreshIdleMs) this.drop();
    let frame: Uint8Array;
    try {
      frame = encodeFrame({ type: "call", cap, args: argv });
    } catch (e) {
      throw new LinkError(`viv-mcp: cannot send the call: ${(e as Error).message}`);
    }
    const deadline = performance.now() + this.connectWaitMs;
    for (;;) {
      const sock = this.sock ?? (await this.open(deadline));
      try {
        return await new Promise<CallOutcome>((resolve, reject) => {
          this.pending = {
            resolve: (o) => ((this.pending = null), (this.idleSince = performance.now()), resolve(o)),
            reject: (e) => ((this.pending = null), reject(e)),
          };
          sock.write(frame);
        });
      } catch (e) {
        if (!(e instanceof NotWelcomed)) throw e;
        if (performance.now() >= deadline) throw new LinkError(`viv-mcp: the broker closed every connection before its welcome for ${this.connectWaitMs / 1000} s`);
        await sleep(50);
      }
    }
  }

  /** Connects (retrying while no broker listens, up to the deadline) and sends HELLO. */
  private async open(deadline: number): Promise<Socket> {
    for (;;) {
      try {
        const sock = await connect(this.socketPath);
        this.attach(sock);
        sock.write(encodeFrame({ type: "hello", version: PROTOCOL_VERSION }));
        return sock;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        const retry = code === "ENOENT" || code === "ECONNREFUSED" || code === "EAGAIN";
        if (!retry || performance.now() >= deadline) throw new LinkError(`viv-mcp: cannot connect to the broker: ${(e as Error).message}`);
        await sleep(50);
      }
    }
  }

  private attach(sock: Socket) {
    this.sock = sock;
    this.welcomed = false;
    this.buf = Buffer.alloc(0);
    this.idleSince = performance.now();
    sock.on("data", (chunk: Buffer) => this.onData(sock, chunk));
    // The broker half-closes an idle connection: let it go now rather than write into it.
    sock.on("end", () => this.lost(sock, "the broker closed the connection before the call's result; it may or may not have taken effect"));
    sock.on("close", () => this.lost(sock, "the broker closed the connection before the call's result; it may or may not have taken effect"));
    sock.on("error", (e) => this.lost(sock, `the connection to the broker failed before the call's result (${e.message}); it may or may not have taken effect`));
  }

  private drop() {
    const s = this.sock;
    this.sock = null;
    s?.destroy();
  }

  /** The connection is gone; its call, if any, fails, or is sent again when nothing was welcomed. */
  private lost(sock: Socket, why: string, mayResend = !this.welcomed) {
    if (this.sock !== sock) return;
    this.drop();
    this.pending?.reject(mayResend ? new NotWelcomed() : new LinkError(`viv-mcp: ${why}`));
  }

  private onData(sock: Socket, chunk: Buffer) {
    if (this.sock !== sock) return;
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    while (this.buf.length >= 4) {
      const len = this.buf.readUInt32BE(0);
      if (len === 0 || len > MAX_FRAME) return this.broken(sock, `a frame of ${len} bytes`);
      if (this.buf.length < 4 + len) return;
      const body = this.buf.subarray(4, 4 + len);
      this.buf = this.buf.subarray(4 + len);
      let f;
      try {
        f = decodeBody(body);
      } catch (e) {
        if (!(e instanceof FrameError)) throw e;
        return this.broken(sock, e.message);
      }
      if (f.type === "welcome") {
        if (f.version !== PROTOCOL_VERSION) return this.broken(sock, `protocol version ${f.version}`);
        this.welcomed = true;
      } else if (f.type === "result" && this.pending) {
        this.pending.resolve({ exit: f.exit, stdout: dec.decode(f.stdout), stderr: dec.decode(f.stderr) });
      } else if (f.type === "error") {
        const p = this.pending;
        this.drop();
        p?.reject(new LinkError(`viv-mcp: the broker ended the connection: ${f.message}`));
        return;
      } else return this.broken(sock, `an unexpected ${f.type} frame`);
    }
  }

  private broken(sock: Socket, what: string) {
    this.lost(sock, `the broker sent ${what}; the call may or may not have taken effect`, false);
  }
}

function connect(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path);
    s.once("connect", () => (s.removeListener("error", reject), resolve(s)));
    s.once("error", reject);
  });
}
