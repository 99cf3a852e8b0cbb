// A Chrome DevTools Protocol client with no I/O of its own: its owner feeds it the messages that
// arrive (`receive`) and gives it a function that sends one (the browser's DevTools pipe, where
// messages are JSON separated by NUL). Commands carry an optional session id (one per tab) and
// a deadline; events are delivered to listeners by method and session. Shared by the broker,
// which owns the browser process, and the web-page-read capability, which drives its tabs.

export class CdpError extends Error {
  override name = "CdpError";
}

type Pending = { resolve: (v: any) => void; reject: (e: Error) => void; timer: ReturnType<typeof setTimeout> | null };
type Listener = (params: any) => void;

export class Cdp {
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private listeners = new Map<string, Set<Listener>>();
  private closedBy: string | null = null;

  constructor(private readonly write: (message: string) => void) {}

  get closed(): string | null {
    return this.closedBy;
  }

  /** Sends a command and resolves with its result; rejects on a protocol error, close or deadline. */
  send<T = any>(method: string, params: object = {}, sessionId?: string, timeoutMs?: number): Promise<T> {
    if (this.closedBy) return Promise.reject(new CdpError(`browser connection closed: ${this.closedBy}`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = timeoutMs === undefined ? null : setTimeout(() => {
        this.pending.delete(id);
        reject(new CdpError(`${method} got no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.write(JSON.stringify(sessionId ? { id, method, params, sessionId } : { id, method, params }));
    });
  }

  /** Calls `fn` on each `method` event of a session (or of the browser, without one); returns the unsubscribe. */
  on(method: string, sessionId: string | undefined, fn: Listener): () => void {
    const key = `${sessionId ?? ""}\0${method}`;
    let set = this.listeners.get(key);
    if (!set) this.listeners.set(key, (set = new Set()));
    set.add(fn);
    return () => {
      set!.delete(fn);
      if (set!.size === 0) this.listeners.delete(key);
    };
  }

  /** One message from the browser. Malformed messages are dropped: the browser is not trusted to be well-formed. */
  receive(text: string) {
    let msg: { id?: number; method?: string; params?: unknown; sessionId?: string; result?: unknown; error?: { message?: string } };
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (typeof msg.id === "number") {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (p.timer) clearTimeout(p.timer);
      if (msg.error) p.reject(new CdpError(msg.error.message ?? "protocol error"));
      else p.resolve(msg.result ?? {});
      return;
    }
    if (typeof msg.method !== "string") return;
    const set = this.listeners.get(`${msg.sessionId ?? ""}\0${msg.method}`);
    if (set) for (const fn of [...set]) fn(msg.params ?? {});
  }

  /** The connection is gone: every pending command fails with `reason`. */
  close(reason: string) {
    if (this.closedBy) return;
    this.closedBy = reason;
    for (const [, p] of this.pending) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(new CdpError(`browser connection closed: ${reason}`));
    }
    this.pending.clear();
  }
}
