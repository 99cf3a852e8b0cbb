// Crash reconciliation. A broker killed between a call's intent record and its outcome record
// leaves the intent open: the effect may or may not have happened. At start the broker finds
// every such intent of the previous run and closes it with a record of its own
// (`kind=interrupted`), after letting the capability clean up what an interrupted call can leave
// behind (fs-file-write's temporary file). openIntents() is pure; the broker's start does the I/O.

/** What reconciliation reads of a record. */
export interface RunRecord {
  seq: number;
  agent: string;
  kind: string;
  cap: string;
  fields: Record<string, unknown>;
}

/** A record that closes the intent before it on the same connection. */
function isOutcome(r: RunRecord): boolean {
  return r.kind === "result" || r.kind === "interrupted" || (r.kind === "deny" && r.fields.stage === "execute");
}

/**
 * The intents (`kind=call`) of a run that no outcome follows. A connection carries one call at a
 * time, so an intent's outcome is the next outcome record on its connection.
 */
export function openIntents(records: readonly RunRecord[]): RunRecord[] {
  const open = new Map<unknown, RunRecord>();
  for (const r of records) {
    if (r.kind === "call") open.set(r.fields.conn, r);
    else if (isOutcome(r)) open.delete(r.fields.conn);
  }
  return [...open.values()].sort((a, b) => a.seq - b.seq);
}

/** The approval requests of a run that no decision follows (the broker died while they waited). */
export function openApprovals(records: readonly RunRecord[]): RunRecord[] {
  const open = new Map<unknown, RunRecord>();
  for (const r of records) {
    if (r.kind === "approval-request") open.set(r.fields.id, r);
    else if (r.kind === "approval") open.delete(r.fields.id);
  }
  return [...open.values()].sort((a, b) => a.seq - b.seq);
}

export const RESTART_REASON = "the broker restarted while the call waited; approvals do not carry over to another run";

export const INTERRUPTED_REASON = "the broker stopped before this call's outcome was recorded; whether its effect happened is unknown";
