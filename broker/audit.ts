// The audit store: STATE/audit.db, one append-only hash chain of every frame and security event.
// WAL with synchronous=FULL; triggers refuse UPDATE and DELETE. append() resolves only once the
// record is durable. The broker's store checkpoints the WAL in a worker (broker/checkpointer.ts),
// off the call path. Records queued in one event-loop turn share one transaction (group commit),
// which is how concurrent agents stay fast while forming a single chain. verifyChain() re-walks
// the chain for viv-log. rotate() moves the log into STATE/archive and carries its head into the
// new file's first record (kind=rotate), so one chain runs across files and verifies as one.
import { Database } from "bun:sqlite";
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";
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

/** Commits between two checkpoint requests to the worker. */
const CHECKPOINT_EVERY = 256;
/** SQLite's own checkpoint, inline, only when the worker falls this far behind (pages of 4 KiB). */
const BACKSTOP_PAGES = 16384;

/** The checkpointer worker: in the compiled executable, entry points are named from the root. */
function startCheckpointer(): Worker {
  const spec = import.meta.url.includes("$bunfs") ? "./broker/checkpointer.ts" : new URL("./checkpointer.ts", import.meta.url).href;
  return new Worker(spec);
}

/** The kind of a log's first record when it continues an archived log. */
export const ROTATE_KIND = "rotate";
const ARCHIVE_NAME = /^audit-([0-9]+)-([0-9]+)\.db$/;

function syncDir(dir: string) {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The archive holding the highest sequence numbers, or null. */
function newestArchive(dir: string): string | null {
  let best: { last: number; name: string } | null = null;
  for (const name of existsSync(dir) ? readdirSync(dir) : []) {
    const m = ARCHIVE_NAME.exec(name);
    if (m && (!best || Number(m[2]) > best.last)) best = { last: Number(m[2]), name };
  }
  return best ? join(dir, best.name) : null;
}

/** The path of an archive a rotate record names, if the name is one rotate() would write. */
export function archivePath(dir: string, name: unknown): string | null {
  return typeof name === "string" && ARCHIVE_NAME.test(name) ? join(dir, name) : null;
}

/** Opens the log read-only, for viv-log. */
export function openAuditReadOnly(path: string): Database {
  const db = new Database(path, { readonly: true, strict: true });
  db.exec("PRAGMA query_only = ON");
  return db;
}

export class AuditStore {
  private db: Database;
  private insert: ReturnType<Database["prepare"]>;
  /** Writes a batch in one transaction (made once per open file, not per flush). */
  private commit!: (batch: Pending[], seqs: number[]) => void;
  private queue: Pending[] = [];
  private scheduled = false;
  private headSeq = 0;
  private headHash: Uint8Array = GENESIS;
  private closed = false;
  private checkpointer: Worker | null = null;
  private commitsSinceCheckpoint = 0;

  /**
   * Opens (or creates) the log at `path`. Given the archive directory, a new, empty log whose
   * predecessor was rotated away (by rotate(), by hand, or by a rotation cut short by a crash)
   * continues the newest archive's chain instead of starting a new one.
   */
  constructor(private path: string, private archiveDir?: string, opts: { checkpointInWorker?: boolean } = {}) {
    if (opts.checkpointInWorker) this.checkpointer = startCheckpointer();
    this.db = this.open();
    this.insert = this.prepareInsert();
    const head = this.db.query("SELECT * FROM records ORDER BY seq DESC LIMIT 1").get() as AuditRecord | null;
    if (head) {
      const expect = chainHash(head);
      if (Buffer.compare(Buffer.from(expect), Buffer.from(head.hash)) !== 0) {
        throw new Error(`audit log head (seq ${head.seq}) does not match its hash; run viv-log verify`);
      }
      this.headSeq = head.seq;
      this.headHash = new Uint8Array(head.hash);
    } else if (archiveDir) {
      const newest = newestArchive(archiveDir);
      if (newest) this.continueFrom(newest);
    }
  }

  private open(): Database {
    const db = new Database(this.path, { create: true, strict: true });
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = FULL");
    db.exec("PRAGMA busy_timeout = 5000");
    if (this.checkpointer) db.exec(`PRAGMA wal_autocheckpoint = ${BACKSTOP_PAGES}`);
    db.exec(SCHEMA);
    return db;
  }

  private prepareInsert() {
    this.commit = this.db.transaction((batch: Pending[], seqs: number[]) => {
      for (const p of batch) seqs.push(this.write(p.event));
    });
    return this.db.prepare("INSERT INTO records (seq, ts, agent, kind, cap, fields, raw, prev, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
  }

  /** Writes the first record of a log that continues `archive`: its head, carried over. */
  private continueFrom(archive: string) {
    const old = openAuditReadOnly(archive);
    const head = old.query("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").get() as { seq: number; hash: Uint8Array } | null;
    old.close();
    if (!head) throw new Error(`archived log '${archive}' has no records`);
    this.headSeq = head.seq;
    this.headHash = new Uint8Array(head.hash);
    this.db.transaction(() => this.write({ agent: "-", kind: ROTATE_KIND, fields: { archive: basename(archive), previous_seq: head.seq, previous_hash: toHex(head.hash) } }))();
  }

  /**
   * Moves the log to ARCHIVE/audit-FIRST-LAST.db and starts a new one at `path` whose first
   * record carries the head (kind=rotate). Synchronous, so no record falls between the two.
   * Refused while a reader keeps the WAL from being folded into the file.
   */
  rotate(): { archive: string; first: number; last: number } {
    if (!this.archiveDir) throw new VivError(Exit.internal, "this log has no archive directory");
    if (this.closed) throw new VivError(Exit.unavailable, "the log is closed");
    this.flush();
    const range = this.db.query("SELECT min(seq) AS first, max(seq) AS last FROM records").get() as { first: number | null; last: number | null };
    if (range.first === null || range.last === null) throw new VivError(Exit.data, "the log has no records to rotate");
    const cp = this.db.query("PRAGMA wal_checkpoint(TRUNCATE)").get() as { busy: number; log: number; checkpointed: number };
    if (cp.busy !== 0) throw new VivError(Exit.temporary, "a reader holds the log; try again");
    mkdirSync(this.archiveDir, { recursive: true, mode: 0o700 });
    const archive = join(this.archiveDir, `audit-${range.first}-${range.last}.db`);
    if (existsSync(archive)) throw new VivError(Exit.data, `'${archive}' exists already`);
    this.insert.finalize();
    this.db.close();
    renameSync(this.path, archive);
    for (const side of ["-wal", "-shm"]) rmSync(this.path + side, { force: true });
    syncDir(this.archiveDir);
    syncDir(dirname(this.path));
    this.db = this.open();
    this.insert = this.prepareInsert();
    this.continueFrom(archive);
    return { archive, first: range.first, last: range.last };
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
      this.commit(batch, seqs);
    } catch (e) {
      this.headSeq = startSeq;
      this.headHash = startHash;
      const err = new Error(`audit log write failed: ${(e as Error).message}`);
      for (const p of batch) p.reject(err);
      return;
    }
    batch.forEach((p, i) => p.resolve(seqs[i]!));
    if (this.checkpointer && ++this.commitsSinceCheckpoint >= CHECKPOINT_EVERY) {
      this.commitsSinceCheckpoint = 0;
      this.checkpointer.postMessage(this.path);
    }
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

  /**
   * The records written at or after `sinceIso`, oldest first, only of `kinds` when given. Starts
   * at the lowest seq of that time (the ts index finds it), so older records are never read.
   */
  recentRecords(sinceIso: string, kinds?: readonly string[]): Array<{ ts: string; agent: string; kind: string; cap: string; fields: Record<string, unknown> }> {
    const first = this.db.query("SELECT min(seq) AS seq FROM records WHERE ts >= ?").get(sinceIso) as { seq: number | null };
    if (first.seq === null) return [];
    const only = kinds ? ` AND kind IN (${kinds.map(() => "?").join(", ")})` : "";
    const rows = this.db.query(`SELECT ts, agent, kind, cap, fields FROM records WHERE seq >= ? AND ts >= ?${only} ORDER BY seq`).all(first.seq, sinceIso, ...(kinds ?? [])) as Array<{ ts: string; agent: string; kind: string; cap: string; fields: string }>;
    return rows.map((r) => ({ ...r, fields: JSON.parse(r.fields) as Record<string, unknown> }));
  }

  close() {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.checkpointer?.terminate();
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

/** Where a log that begins with a rotate record continues from. */
export interface Continuation {
  archive: string;
  seq: number;
  hash: string;
}

export type ChainResult = { ok: true; first: number; seq: number; hash: string; continues: Continuation | null } | { ok: false; seq: number; why: string };

/**
 * Walks the chain from the first record; returns the first problem, or the head. A log may begin
 * past seq 1 only with a rotate record that names the head it continues (its own prev).
 */
export function verifyChain(db: Database): ChainResult {
  let prev: Uint8Array = GENESIS;
  let expect = 1;
  let first = 1;
  let continues: Continuation | null = null;
  for (const r of db.query("SELECT * FROM records ORDER BY seq").iterate() as Iterable<AuditRecord>) {
    if (r.seq !== expect && expect === 1 && r.kind === ROTATE_KIND) {
      const f = JSON.parse(r.fields) as { archive?: unknown; previous_seq?: unknown; previous_hash?: unknown };
      if (f.previous_seq !== r.seq - 1 || f.previous_hash !== toHex(r.prev) || typeof f.archive !== "string") {
        return { ok: false, seq: r.seq, why: "rotate record does not name the head it continues" };
      }
      continues = { archive: f.archive, seq: f.previous_seq, hash: f.previous_hash };
      prev = new Uint8Array(r.prev);
      expect = first = r.seq;
    }
    if (r.seq !== expect) return { ok: false, seq: expect, why: r.seq > expect ? `missing (next is seq ${r.seq})` : `out of order (found seq ${r.seq})` };
    if (Buffer.compare(Buffer.from(r.prev), Buffer.from(prev)) !== 0) return { ok: false, seq: r.seq, why: "does not follow the record before it (reordered or replaced)" };
    const h = chainHash(r);
    if (Buffer.compare(Buffer.from(h), Buffer.from(r.hash)) !== 0) return { ok: false, seq: r.seq, why: "content does not match its hash (edited)" };
    prev = h;
    expect++;
  }
  return { ok: true, first, seq: expect - 1, hash: toHex(prev), continues };
}
