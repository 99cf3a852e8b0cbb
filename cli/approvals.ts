// viv approvals: the operator's view of calls waiting for a decision. pendingLine() is the one
// escaped line format of a pending call (the same escaping as viv-log, so control characters,
// ANSI/OSC sequences and bidi marks are shown, never interpreted, and long values are shortened
// visibly). watchApprovals() follows the queue: as lines when not on a terminal.
import { formatFields } from "../lib/audit-format.ts";
import { Exit, VivError } from "../lib/exit.ts";
import { operatorRequest } from "../lib/operator-client.ts";

export interface Pending {
  id: string;
  agent: string;
  cap: string;
  risk: string;
  target: string;
  args: Record<string, unknown>;
  request_sha256: string;
  expires_at: string;
  via: string | null;
}

const POLL_MS = 250;

export function secondsLeft(p: Pending, now = Date.now()): number {
  return Math.max(0, Math.round((Date.parse(p.expires_at) - now) / 1000));
}

/** One pending call as escaped key=value fields. */
export function pendingLine(p: Pending, now = Date.now()): string {
  return formatFields({ id: p.id, agent: p.agent, cap: p.cap, risk: p.risk, expires_in: `${secondsLeft(p, now)}s`, target: p.target, args: p.args, request_sha256: p.request_sha256, ...(p.via ? { via: p.via } : {}) }).join(" ");
}

export async function fetchPending(sock: string): Promise<Pending[]> {
  const r = await operatorRequest(sock, { op: "approvals" });
  if (!r.ok) throw new VivError(r.exit ?? Exit.internal, r.error);
  return r.pending as Pending[];
}

/**
 * Follows the queue until the broker goes away (exit 69) or the process is stopped. Not on a
 * terminal it prints `pending FIELDS` when a call starts waiting and `settled id=ID` when it
 * stops, and reads no input at all: nothing piped in can approve anything.
 */
export async function watchApprovals(sock: string, opts: { json: boolean; operator: string }): Promise<number> {
  if (process.stdin.isTTY && process.stdout.isTTY && !opts.json) {
    const { runConsole } = await import("./approvals-console.ts");
    return runConsole(sock, opts.operator);
  }
  const shown = new Map<string, Pending>();
  for (;;) {
    let pending: Pending[];
    try {
      pending = await fetchPending(sock);
    } catch (e) {
      if (e instanceof VivError && e.code === Exit.unavailable) throw new VivError(Exit.unavailable, "the broker went away");
      throw e;
    }
    const now = new Set(pending.map((p) => p.id));
    for (const p of pending) {
      if (shown.has(p.id)) continue;
      shown.set(p.id, p);
      process.stdout.write(opts.json ? `${JSON.stringify({ event: "pending", ...p })}\n` : `pending ${pendingLine(p)}\n`);
    }
    for (const id of [...shown.keys()]) {
      if (now.has(id)) continue;
      shown.delete(id);
      process.stdout.write(opts.json ? `${JSON.stringify({ event: "settled", id })}\n` : `settled id=${id}\n`);
    }
    await Bun.sleep(POLL_MS);
  }
}
