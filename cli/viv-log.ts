// viv-log: prints the audit log one record per line (or NDJSON), verifies its hash chain, and
// exports a checkpoint to keep elsewhere so that a truncated tail is detected later.
import { Database } from "bun:sqlite";
import { existsSync, openSync, readFileSync } from "node:fs";
import { Command, Option } from "clipanion";
import { archivePath, AuditStore, openAuditReadOnly, parseCheckpoint, verifyChain } from "../broker/audit.ts";
import { formatJson, formatLine, GENESIS, toHex, type AuditRecord } from "../lib/audit-format.ts";
import { runCli, stateOption } from "../lib/cli.ts";
import { Exit, VivError } from "../lib/exit.ts";
import { tryLockExclusive } from "../lib/libc.ts";
import { brokerAlive, operatorRequest } from "../lib/operator-client.ts";
import { resolveStateDir, stateLayout } from "../lib/paths.ts";

const FOLLOW_POLL_MS = 200;
const PAGE = 1000;

function openLog(state: string | undefined): Database {
  const path = stateLayout(resolveStateDir(state)).audit;
  if (!existsSync(path)) throw new VivError(Exit.unavailable, `no audit log at '${path}'`);
  try {
    return openAuditReadOnly(path);
  } catch (e) {
    throw new VivError(Exit.unavailable, `cannot open audit log '${path}': ${(e as Error).message}`);
  }
}

/** --since: an ISO-8601 time, or a duration back from now such as 30s, 10m, 2h, 1d. */
export function parseSince(v: string, now = Date.now()): string {
  const rel = /^([0-9]+)([smhd])$/.exec(v);
  if (rel) return new Date(now - Number(rel[1]) * { s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7 }[rel[2] as "s"]).toISOString();
  const t = Date.parse(v);
  if (!/^\d{4}-\d{2}-\d{2}/.test(v) || Number.isNaN(t)) throw new VivError(Exit.usage, `--since '${v}' is not an ISO-8601 time or a duration like 10m`);
  return new Date(t).toISOString();
}

class PrintCommand extends Command {
  static override paths = [Command.Default];
  static override usage = Command.Usage({
    description: "print audit records, one per line",
    details: "Each line starts with an ISO-8601 timestamp, then key=value fields: always seq, agent, kind and cap. The format is a versioned contract: fields are added, never renamed.",
    examples: [
      ["Show every denial", "$0 | grep kind=deny"],
      ["Follow one agent's calls as NDJSON", "$0 --agent researcher --follow --json"],
    ],
  });
  agent = Option.String("--agent", { description: "only this agent's records" });
  cap = Option.String("--cap", { description: "only records of this capability" });
  since = Option.String("--since", { description: "only records at or after TIME (ISO-8601, or 10m, 2h, 1d ago)" });
  follow = Option.Boolean("--follow", false, { description: "keep printing new records as they are written" });
  json = Option.Boolean("--json", false, { description: "print NDJSON records" });
  state = stateOption();

  async execute() {
    const db = openLog(this.state);
    const where = ["seq > $after"];
    const params: Record<string, string | number> = { after: 0 };
    if (this.agent) (where.push("agent = $agent"), (params.agent = this.agent));
    if (this.cap) (where.push("cap = $cap"), (params.cap = this.cap));
    if (this.since) {
      const since = parseSince(this.since);
      where.push("ts >= $since");
      params.since = since;
      // Start at the lowest seq of that time (found on the ts index), so no filter scans the log
      // before it: no earlier record can match. With none yet, start after the head (--follow).
      const first = db.query("SELECT min(seq) AS seq FROM records WHERE ts >= ?").get(since) as { seq: number | null };
      const head = db.query("SELECT max(seq) AS seq FROM records").get() as { seq: number | null };
      params.after = first.seq !== null ? first.seq - 1 : (head.seq ?? 0);
    }
    const q = db.query(`SELECT * FROM records WHERE ${where.join(" AND ")} ORDER BY seq LIMIT ${PAGE}`);
    const out = this.context.stdout;
    for (;;) {
      const rows = q.all(params) as AuditRecord[];
      for (const r of rows) out.write(`${this.json ? formatJson(r) : formatLine(r)}\n`);
      if (rows.length) params.after = rows[rows.length - 1]!.seq;
      if (rows.length === PAGE) continue;
      if (!this.follow) break;
      await Bun.sleep(FOLLOW_POLL_MS);
    }
  }
}

function readCheckpoint(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    throw new VivError(Exit.usage, `cannot read checkpoint '${path}': ${(e as NodeJS.ErrnoException).code}`);
  }
}

class VerifyCommand extends Command {
  static override paths = [["verify"]];
  static override usage = Command.Usage({
    description: "verify the hash chain; exits 65 naming the first broken record",
    examples: [["Verify against a kept checkpoint", "$0 verify --checkpoint /root/vivary.checkpoint"]],
  });
  checkpoint = Option.String("--checkpoint", { description: "a file from 'viv-log checkpoint': also detects a truncated tail" });
  state = stateOption();

  async execute() {
    const cp = this.checkpoint ? parseCheckpoint(readCheckpoint(this.checkpoint)) : null;
    const L = stateLayout(resolveStateDir(this.state));
    const db = openLog(this.state);
    const head = verifyChain(db);
    if (!head.ok) throw new VivError(Exit.data, `verify: record seq=${head.seq}: ${head.why}`);
    // Newest first: the live log, then each archive its first record continues, while present.
    const files: Array<{ db: Database; first: number; last: number }> = [{ db, first: head.first, last: head.seq }];
    let next = head.continues;
    while (next) {
      const path = archivePath(L.archive, next.archive);
      if (!path || !existsSync(path)) break;
      const adb = openAuditReadOnly(path);
      const r = verifyChain(adb);
      if (!r.ok) throw new VivError(Exit.data, `verify: archive '${next.archive}': record seq=${r.seq}: ${r.why}`);
      if (r.seq !== next.seq || r.hash !== next.hash) throw new VivError(Exit.data, `verify: archive '${next.archive}' ends at seq=${r.seq}, not at the head seq=${next.seq} the log continues (archive replaced or truncated)`);
      files.push({ db: adb, first: r.first, last: r.seq });
      next = r.continues;
    }
    if (cp) {
      if (head.seq < cp.seq) throw new VivError(Exit.data, `verify: log ends at seq=${head.seq} but the checkpoint names seq=${cp.seq} (truncated)`);
      const file = files.find((f) => cp.seq >= f.first - 1 && cp.seq <= f.last);
      if (!file) throw new VivError(Exit.data, `verify: the checkpoint names seq=${cp.seq}, which is in archive '${next!.archive}', not in '${L.archive}'`);
      const row = file.db.query("SELECT hash FROM records WHERE seq = ?").get(cp.seq) as { hash: Uint8Array } | null;
      const first = file.db.query("SELECT prev FROM records ORDER BY seq LIMIT 1").get() as { prev: Uint8Array } | null;
      const hash = row ? toHex(row.hash) : cp.seq === file.first - 1 && first ? toHex(first.prev) : toHex(GENESIS);
      if (hash !== cp.hash) throw new VivError(Exit.data, `verify: record seq=${cp.seq}: hash differs from the checkpoint (log rewritten)`);
    }
    const count = files.reduce((n, f) => n + f.last - f.first + 1, 0);
    const archives = files.length > 1 ? ` across ${files.length - 1} archive${files.length > 2 ? "s" : ""} and the live log` : "";
    const earlier = next ? `; records up to seq=${next.seq} are in archive '${next.archive}', not in '${L.archive}': verify it where it is kept, against a checkpoint 'seq=${next.seq} hash=${next.hash}'` : "";
    this.context.stdout.write(`ok: ${count} records${archives}, head seq=${head.seq} hash=${head.hash}${cp ? `, checkpoint seq=${cp.seq} matches` : ""}${earlier}\n`);
  }
}

class RotateCommand extends Command {
  static override paths = [["rotate"]];
  static override usage = Command.Usage({
    description: "move the log to STATE/archive and continue its chain in a new file",
    details:
      "The log becomes STATE/archive/audit-FIRST-LAST.db and a new STATE/audit.db begins with a kind=rotate record that carries the archived head, so verify walks both as one chain. Asks the running broker; with none running, does it under the broker's lock.",
    examples: [["Rotate, then move the archive off the host", "$0 rotate && $0 checkpoint"]],
  });
  state = stateOption();

  async execute() {
    const L = stateLayout(resolveStateDir(this.state));
    let r: { archive: string; first: number; last: number };
    if (await brokerAlive(L.operatorSocket)) {
      const reply = await operatorRequest(L.operatorSocket, { op: "rotate" });
      if (!reply.ok) throw new VivError(reply.exit ?? Exit.internal, String(reply.error));
      r = reply as typeof r;
    } else {
      if (!existsSync(L.audit)) throw new VivError(Exit.unavailable, `no audit log at '${L.audit}'`);
      const lock = openSync(L.brokerLock, "a", 0o600);
      if (!tryLockExclusive(lock)) throw new VivError(Exit.temporary, `a broker is starting on '${L.root}'; try again`);
      const store = new AuditStore(L.audit, L.archive);
      try {
        r = store.rotate();
      } finally {
        store.close();
      }
    }
    this.context.stdout.write(`rotated: records ${r.first}..${r.last} to ${r.archive}; the log continues at seq=${r.last + 1}\n`);
  }
}

class CheckpointCommand extends Command {
  static override paths = [["checkpoint"]];
  static override usage = Command.Usage({
    description: "print the head's sequence number and hash, to keep elsewhere",
    examples: [["Keep a checkpoint off the host", "$0 checkpoint | ssh backup 'cat >> vivary.checkpoints'"]],
  });
  state = stateOption();

  async execute() {
    const db = openLog(this.state);
    const row = db.query("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").get() as { seq: number; hash: Uint8Array } | null;
    this.context.stdout.write(row ? `seq=${row.seq} hash=${toHex(row.hash)}\n` : `seq=0 hash=${toHex(GENESIS)}\n`);
  }
}

export const main = (argv: string[]) => runCli("viv-log", [PrintCommand, VerifyCommand, CheckpointCommand, RotateCommand], argv);
