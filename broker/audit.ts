// The audit store: STATE/audit.db, one append-only hash chain of every frame and security event.
// WAL with synchronous=FULL; triggers refuse UPDATE and DELETE. append() resolves only once the
// record is durable. Records queued in one event-loop turn share one transaction (group commit),
// which is how concurrent agents stay fast while forming a single chain. verifyChain() re-walks
// the chain for viv-log.
import { Database } from "bun:sqlite";
import { chainHash, GENESIS, toHex, type AuditRecord } from "../lib/audit-format.ts";
import { Exit, VivError } from "../lib/exit.ts";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS records (
  seq    INTEGER PRIMARY KEY,
  ts     TEXT NOT NULL,
  agent  TEXT NOT NULL,
  kind   TEXT NOT NULL,
  cap    TEXT NOT NULL,
  fields TEXT NOT NULL,
  raw    BLOB NOT NULL,
  prev   BLOB NOT NULL,
  hash   BLOB NOT NULL
) STRICT;
-- viv-log's filters: an agent's or a capability's records in order, and where a time begins.
CREATE INDEX IF NOT EXISTS records_agent ON records (agent, seq);
CREATE INDEX IF NOT EXISTS records_cap ON records (cap, seq);
CREATE INDEX IF NOT EXISTS records_ts ON records (ts);
CREATE TRIGGER IF NOT EXISTS records_append_only_update BEFORE UPDATE ON records
  BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS records_append_only_delete BEFORE DELETE ON records
  BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
`;

export interface AuditEvent {
  agent: string;
  kind: string;
  cap?: string;
  fields?: Record<string, unknown>;
  raw?: Uint8Array;
}

interface Pending {
  event: AuditEvent;
  resolve: (seq: number) => void;
  reject: (e: Error) => void;
}

const NO_BYTES = new Uint8Array(0);

/** Opens the log read-only, for viv-log. */
export function openAuditReadOnly(path: string): Database {
  const db = new Database(path, { readonly: true, strict: true });
  db.exec("PRAGMA query_only = ON");
  return db;
}

export class AuditStore {
  private db: Database;
  private insert;
  private queue: Pending[] = [];
  private scheduled = false;
  private headSeq = 0;
  private headHash: Uint8Array = GENESIS;
  private closed = false;

  constructor(path: string) {
    this.db = new Database(path, { create: true, strict: true });
    this.db.exec("PRAGMA journal_mode = WAL");
    this.db.exec("PRAGMA synchronous = FULL");
    this.db.exec("PRAGMA busy_timeout = 5000");
    this.db.exec(SCHEMA);
    this.insert = this.db.prepare(
      "INSERT INTO records (seq, ts, agent, kind, cap, fields, raw, prev, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    );
    const head = this.db.query("SELECT * FROM records ORDER BY seq DESC LIMIT 1").get() as AuditRecord | null;
    if (head) {
      const expect = chainHash(head);
      if (Buffer.compare(Buffer.from(expect), Buffer.from(head.hash)) !== 0) {
        throw new Error(`audit log head (seq ${head.seq}) does not match its hash; run viv-log verify`);
      }
      this.headSeq = head.seq;
      this.headHash = new Uint8Array(head.hash);
    }
  }

  get head() {
    return { seq: this.headSeq, hash: this.headHash };
  }

  /** Queues a record; resolves with its sequence number once it is durable. */
  append(event: AuditEvent): Promise<number> {
    if (this.closed) return Promise.reject(new Error("audit log write failed: the log is closed"));
    return new Promise((resolve, reject) => {
      this.queue.push({ event, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Writes every queued record in one transaction: one fsync for the whole batch. */
  flush() {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    const startSeq = this.headSeq;
    const startHash = this.headHash;
    const seqs: number[] = [];
    try {
      this.db.transaction(() => {
        for (const p of batch) seqs.push(this.write(p.event));
      })();
    } catch (e) {
      this.headSeq = startSeq;
      this.headHash = startHash;
      const err = new Error(`audit log write failed: ${(e as Error).message}`);
      for (const p of batch) p.reject(err);
      return;
    }
    batch.forEach((p, i) => p.resolve(seqs[i]!));
  }

  private write(e: AuditEvent): number {
    const r = {
      seq: this.headSeq + 1,
      ts: new Date().toISOString(),
      agent: e.agent,
      kind: e.kind,
      cap: e.cap ?? "-",
      fields: JSON.stringify(e.fields ?? {}),
      raw: e.raw ?? NO_BYTES,
      prev: this.headHash,
    };
    const hash = chainHash(r);
    this.insert.run(r.seq, r.ts, r.agent, r.kind, r.cap, r.fields, r.raw, r.prev, hash);
    this.headSeq = r.seq;
    this.headHash = hash;
    return r.seq;
  }

  /**
   * The records of the previous run: everything after the last `broker event=start` record, in
   * order (all records when there is none). Read backwards from the head, so only that run is read.
   */
  previousRun(): Array<{ seq: number; agent: string; kind: string; cap: string; fields: Record<string, unknown> }> {
    const out = [];
    for (const r of this.db.query("SELECT seq, agent, kind, cap, fields FROM records ORDER BY seq DESC").iterate() as Iterable<{ seq: number; agent: string; kind: string; cap: string; fields: string }>) {
      const fields = JSON.parse(r.fields) as Record<string, unknown>;
      if (r.kind === "broker" && fields.event === "start") break;
      out.push({ ...r, fields });
    }
    return out.reverse();
  }

  /** The records written at or after `sinceIso`, oldest first; read backwards from the head. */
  recentRecords(sinceIso: string): Array<{ ts: string; agent: string; kind: string; cap: string; fields: Record<string, unknown> }> {
    const out = [];
    for (const r of this.db.query("SELECT ts, agent, kind, cap, fields FROM records ORDER BY seq DESC").iterate() as Iterable<{ ts: string; agent: string; kind: string; cap: string; fields: string }>) {
      if (r.ts < sinceIso) break;
      out.push({ ...r, fields: JSON.parse(r.fields) as Record<string, unknown> });
    }
    return out.reverse();
  }

  close() {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.insert.finalize();
    this.db.close();
  }
}

export interface Checkpoint {
  seq: number;
  hash: string;
}

export function parseCheckpoint(text: string): Checkpoint {
  const m = /^seq=([0-9]+) hash=([0-9a-f]{64})\s*$/.exec(text.trim());
  if (!m) throw new VivError(Exit.data, "checkpoint is not 'seq=N hash=HEX'");
  return { seq: Number(m[1]), hash: m[2]! };
}

/** Walks the chain from the first record; returns the first problem, or the head. */
export function verifyChain(db: Database): { ok: true; seq: number; hash: string } | { ok: false; seq: number; why: string } {
  let prev: Uint8Array = GENESIS;
  let expect = 1;
  for (const r of db.query("SELECT * FROM records ORDER BY seq").iterate() as Iterable<AuditRecord>) {
    if (r.seq !== expect) return { ok: false, seq: expect, why: r.seq > expect ? `missing (next is seq ${r.seq})` : `out of order (found seq ${r.seq})` };
    if (Buffer.compare(Buffer.from(r.prev), Buffer.from(prev)) !== 0) return { ok: false, seq: r.seq, why: "does not follow the record before it (reordered or replaced)" };
    const h = chainHash(r);
    if (Buffer.compare(Buffer.from(h), Buffer.from(r.hash)) !== 0) return { ok: false, seq: r.seq, why: "content does not match its hash (edited)" };
    prev = h;
    expect++;
  }
  return { ok: true, seq: expect - 1, hash: toHex(prev) };
}
