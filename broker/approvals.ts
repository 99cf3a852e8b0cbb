// The approval gate's queue: calls held for a decision, bounded per agent. Each pending call is
// bound to its exact canonical request (requestDigest: this broker run's nonce, the agent, the
// capability and the validated arguments), holds those arguments itself, and is decided once:
// by an operator over the operator socket, by the grant's `via` program, by its timeout, or by
// the broker (a stop, the kill switch, the agent hanging up). No decision outlives the broker
// run, so an approval is useless for any other call, agent or run. The connection loop
// (server.ts) records each request and decision; this module only keeps the queue.
import { randomBytes } from "node:crypto";
import type { Args } from "../lib/capability.ts";
import { Exit } from "../lib/exit.ts";
import type { Approval } from "../policy/model.ts";

/** Pending calls per agent; the next one is refused (exit 75) and recorded. */
export const MAX_PENDING_PER_AGENT = 8;

export type Verdict =
  | { decision: "approve"; by: string; who?: string }
  | { decision: "deny" | "timeout" | "withdrawn" | "stopping" | "kill"; by: string; who?: string; reason: string; exit: number };

/** What the operator sees of a pending call: the broker's canonical view of it. */
export interface PendingView {
  id: string;
  agent: string;
  cap: string;
  risk: string;
  target: string;
  args: Args;
  args_sha256: string;
  request_sha256: string;
  requested_at: string;
  expires_at: string;
  via: string | null;
}

interface Entry {
  view: PendingView;
  conn: number;
  timer: ReturnType<typeof setTimeout>;
  settle: (v: Verdict) => void;
  program: Bun.Subprocess | null;
}

/** Sorts object keys, so the same arguments always serialize the same way. */
function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === "object") return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]));
  return v;
}

/** sha256 over the run's nonce, agent, capability and canonical arguments: what an approval is for. */
export function requestDigest(nonce: Uint8Array, agent: string, cap: string, args: Args): string {
  return new Bun.CryptoHasher("sha256").update(nonce).update(JSON.stringify([agent, cap, canonical(args)])).digest("hex");
}

export class ApprovalQueue {
  private pending = new Map<string, Entry>();
  /** Fresh for each broker run: a digest of one run matches no request of another. */
  readonly nonce = randomBytes(32);

  count(agent: string): number {
    let n = 0;
    for (const e of this.pending.values()) if (e.view.agent === agent) n++;
    return n;
  }

  list(): PendingView[] {
    return [...this.pending.values()].map((e) => e.view);
  }

  /**
   * Queues a call; `decided` settles once with its verdict. The caller checks the bound first
   * (count), so that the refusal is its to record.
   */
  request(call: { agent: string; cap: string; risk: string; target: string; args: Args; argsDigest: string; conn: number }, approval: Approval) {
    const id = randomBytes(6).toString("hex");
    const now = Date.now();
    const view: PendingView = {
      id,
      agent: call.agent,
      cap: call.cap,
      risk: call.risk,
      target: call.target,
      args: call.args,
      args_sha256: call.argsDigest,
      request_sha256: requestDigest(this.nonce, call.agent, call.cap, call.args),
      requested_at: new Date(now).toISOString(),
      expires_at: new Date(now + approval.timeoutMs).toISOString(),
      via: approval.via ?? null,
    };
    let settle!: (v: Verdict) => void;
    const decided = new Promise<Verdict>((resolve) => (settle = resolve));
    const timer = setTimeout(() => {
      this.settle(id, { decision: "timeout", by: "broker", reason: `no decision within ${approval.timeoutMs / 1000} s`, exit: Exit.temporary });
    }, approval.timeoutMs);
    const entry: Entry = { view, conn: call.conn, timer, settle, program: null };
    this.pending.set(id, entry);
    if (approval.via) entry.program = this.ask(id, approval.via, view);
    return { view, decided };
  }

  /** Decides a pending call; false when there is none with that id (decided, expired, unknown). */
  settle(id: string, verdict: Verdict): boolean {
    const e = this.pending.get(id);
    if (!e) return false;
    this.pending.delete(id);
    clearTimeout(e.timer);
    e.program?.kill("SIGKILL");
    e.settle(verdict);
    return true;
  }

  /** Settles every pending call of `agent` (all agents when undefined) with the same verdict. */
  settleAll(agent: string | undefined, verdict: Verdict) {
    for (const [id, e] of [...this.pending]) if (agent === undefined || e.view.agent === agent) this.settle(id, verdict);
  }

  /** The agent hung up: its pending call is withdrawn. */
  withdraw(conn: number) {
    for (const [id, e] of [...this.pending]) {
      if (e.conn === conn) this.settle(id, { decision: "withdrawn", by: "agent", reason: "the connection closed while the call waited", exit: Exit.temporary });
    }
  }

  /** Runs the grant's program with the request as JSON on stdin; its exit status is its answer. */
  private ask(id: string, program: string, view: PendingView): Bun.Subprocess | null {
    let proc: Bun.Subprocess;
    try {
      proc = Bun.spawn([program], { stdin: new TextEncoder().encode(`${JSON.stringify(view)}\n`), stdout: "ignore", stderr: "ignore", env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" } });
    } catch (e) {
      queueMicrotask(() => this.settle(id, { decision: "deny", by: "program", who: program, reason: `approval program '${program}' cannot run: ${(e as Error).message}`, exit: Exit.denied }));
      return null;
    }
    proc.exited.then((code) => {
      if (!this.pending.has(id)) return;
      if (code === 0) this.settle(id, { decision: "approve", by: "program", who: program });
      else this.settle(id, { decision: "deny", by: "program", who: program, reason: `denied by approval program '${program}' (exit ${code})`, exit: Exit.denied });
    });
    return proc;
  }
}
