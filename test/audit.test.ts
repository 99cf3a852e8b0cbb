// The audit store against a real SQLite file: records chain, group commit keeps one chain under
// concurrent appends, the triggers refuse UPDATE and DELETE, and verifyChain names the first
// record of an edited, deleted or reordered copy.
import { Database } from "bun:sqlite";
import { afterAll, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AuditStore, parseCheckpoint, verifyChain } from "../broker/audit.ts";
import { chainHash, decodeRaw, formatLine, GENESIS, showValue } from "../lib/audit-format.ts";
import { encodeFrame } from "../lib/frame.ts";

const dir = mkdtempSync(join(tmpdir(), "viv-audit-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(dir, `a${n++}.db`);

async function filled(records = 10): Promise<string> {
  const path = fresh();
  const a = new AuditStore(path);
  await Promise.all(Array.from({ length: records }, (_, i) => a.append({ agent: `ag${i % 3}`, kind: "call", cap: "fs-file-write", fields: { i }, raw: Uint8Array.of(i) })));
  a.close();
  return path;
}

/** A tamperer with write access: drops the triggers first, as anyone owning the file can. */
function tamper(path: string, sql: string): string {
  const copy = fresh();
  copyFileSync(path, copy);
  if (existsSync(`${path}-wal`)) copyFileSync(`${path}-wal`, `${copy}-wal`);
  const db = new Database(copy);
  db.exec("DROP TRIGGER records_append_only_update; DROP TRIGGER records_append_only_delete;");
  db.exec(sql);
  db.close();
  return copy;
}

const verify = (path: string) => verifyChain(new Database(path, { readonly: true }));

test("concurrent appends form one gap-free chain that verifies", async () => {
  const path = await filled(50);
  const r = verify(path);
  expect(r.ok).toBe(true);
  if (r.ok) expect(r.seq).toBe(50);
  const rows = new Database(path).query("SELECT seq, prev, hash FROM records ORDER BY seq").all() as { seq: number; prev: Uint8Array; hash: Uint8Array }[];
  expect(Buffer.from(rows[0]!.prev)).toEqual(Buffer.from(GENESIS));
  for (let i = 1; i < rows.length; i++) expect(Buffer.from(rows[i]!.prev)).toEqual(Buffer.from(rows[i - 1]!.hash));
});

test("the chain continues across a reopen", async () => {
  const path = await filled(3);
  const a = new AuditStore(path);
  expect(await a.append({ agent: "x", kind: "broker" })).toBe(4);
  a.close();
  expect(verify(path)).toMatchObject({ ok: true, seq: 4 });
});

test("the triggers refuse UPDATE and DELETE", async () => {
  const db = new Database(await filled(2));
  expect(() => db.exec("UPDATE records SET agent = 'x' WHERE seq = 1")).toThrow("audit log is append-only");
  expect(() => db.exec("DELETE FROM records WHERE seq = 2")).toThrow("audit log is append-only");
});

test("verify names the first edited record", async () => {
  const path = await filled();
  expect(verify(tamper(path, "UPDATE records SET fields = '{\"i\":99}' WHERE seq = 4"))).toEqual({ ok: false, seq: 4, why: "content does not match its hash (edited)" });
  expect(verify(tamper(path, "UPDATE records SET raw = x'ff' WHERE seq = 7"))).toEqual({ ok: false, seq: 7, why: "content does not match its hash (edited)" });
});

test("verify names a deleted record", async () => {
  expect(verify(tamper(await filled(), "DELETE FROM records WHERE seq = 5"))).toEqual({ ok: false, seq: 5, why: "missing (next is seq 6)" });
});

test("verify names reordered records", async () => {
  const path = await filled();
  const swapped = tamper(path, `
    UPDATE records SET seq = -3 WHERE seq = 3; UPDATE records SET seq = 3 WHERE seq = 6; UPDATE records SET seq = 6 WHERE seq = -3;`);
  expect(verify(swapped)).toEqual({ ok: false, seq: 3, why: "does not follow the record before it (reordered or replaced)" });
});

test("a record rewritten with a fresh hash is caught by the next record's link", async () => {
  const path = await filled();
  const db = new Database(path, { readonly: true });
  const r = db.query("SELECT * FROM records WHERE seq = 2").get() as any;
  const forged = { ...r, fields: '{"i":"forged"}' };
  const hash = Buffer.from(chainHash(forged)).toString("hex");
  const copy = tamper(path, `UPDATE records SET fields = '{"i":"forged"}', hash = x'${hash}' WHERE seq = 2`);
  expect(verify(copy)).toEqual({ ok: false, seq: 3, why: "does not follow the record before it (reordered or replaced)" });
});

test("checkpoints parse strictly", () => {
  expect(parseCheckpoint(`seq=12 hash=${"ab".repeat(32)}\n`)).toEqual({ seq: 12, hash: "ab".repeat(32) });
  expect(() => parseCheckpoint("seq=12")).toThrow("checkpoint is not 'seq=N hash=HEX'");
});

test("the line format quotes, escapes and shortens visibly", () => {
  expect(showValue("plain")).toBe("plain");
  expect(showValue("two words")).toBe('"two words"');
  expect(showValue("a=b")).toBe('"a=b"');
  expect(showValue("")).toBe('""');
  expect(showValue('say "hi"\n\x1b[31m')).toBe('"say \\"hi\\"\\n\\x1b[31m"');
  expect(showValue("x".repeat(200))).toBe(`"${"x".repeat(120)}…(200 chars)"`);
  expect(formatLine({ seq: 3, ts: "2026-01-01T00:00:00.000Z", agent: "a", kind: "deny", cap: "fs-file-write", fields: '{"reason":"no way","args":{"path":"/x"}}' }))
    .toBe("2026-01-01T00:00:00.000Z seq=3 agent=a kind=deny cap=fs-file-write reason=\"no way\" args.path=/x");
});

test("the JSON form decodes the raw frames, and says why when they do not decode", () => {
  const call = encodeFrame({ type: "call", cap: "fs-file-write", args: ["--path", "/srv/r/a"] });
  const reply = encodeFrame({ type: "result", exit: 0, stdout: new TextEncoder().encode("{}\n"), stderr: Uint8Array.of(0xff) });
  expect(decodeRaw(Buffer.concat([call, reply]))).toEqual({
    frames: [
      { type: "call", cap: "fs-file-write", args: ["--path", "/srv/r/a"] },
      { type: "result", exit: 0, stdout: "{}\n", stderr: { base64: "/w==" } },
    ],
  });
  expect(decodeRaw(Uint8Array.of(0, 0, 0, 1, 0x42))).toEqual({ frames_error: "unknown frame type 0x42" });
  expect(decodeRaw(new Uint8Array(0))).toEqual({ frames: [] });
});

/** A live log in its own state-like directory, with an archive directory beside it. */
async function rotatable(records: number) {
  const home = mkdtempSync(join(dir, "rot-"));
  const path = join(home, "audit.db");
  const archive = join(home, "archive");
  const a = new AuditStore(path, archive);
  for (let i = 0; i < records; i++) await a.append({ agent: "ag", kind: "call", cap: "fs-file-write", fields: { i } });
  return { home, path, archive, a };
}

test("rotate archives the log and the new file's first record continues its chain", async () => {
  const { path, archive, a } = await rotatable(5);
  const head = a.head;
  expect(a.rotate()).toEqual({ archive: join(archive, "audit-1-5.db"), first: 1, last: 5 });
  expect(await a.append({ agent: "ag", kind: "call" })).toBe(7);
  a.close();
  const live = verify(path);
  expect(live).toMatchObject({ ok: true, first: 6, seq: 7, continues: { archive: "audit-1-5.db", seq: 5, hash: Buffer.from(head.hash).toString("hex") } });
  expect(verify(join(archive, "audit-1-5.db"))).toMatchObject({ ok: true, first: 1, seq: 5, continues: null });
  const first = new Database(path).query("SELECT kind, prev FROM records ORDER BY seq LIMIT 1").get() as { kind: string; prev: Uint8Array };
  expect(first.kind).toBe("rotate");
  expect(Buffer.from(first.prev)).toEqual(Buffer.from(head.hash));
});

test("a log whose first records were removed does not pass for a rotated one", async () => {
  const { path, a } = await rotatable(4);
  a.close();
  expect(verify(tamper(path, "DELETE FROM records WHERE seq <= 2"))).toEqual({ ok: false, seq: 1, why: "missing (next is seq 3)" });
});

test("a rotate record that does not name its own predecessor fails verification", async () => {
  const { path, a } = await rotatable(3);
  a.rotate();
  a.close();
  const forged = tamper(path, `UPDATE records SET fields = '{"archive":"audit-1-3.db","previous_seq":2,"previous_hash":"00"}' WHERE seq = 4`);
  expect(verify(forged)).toEqual({ ok: false, seq: 4, why: "rotate record does not name the head it continues" });
});

test("a rotation cut short after the move continues the newest archive at the next open", async () => {
  const { path, archive, a } = await rotatable(3);
  a.rotate();
  await a.append({ agent: "ag", kind: "call" });
  a.close();
  // As if the broker died between moving the log and writing the new file's first record.
  const { renameSync, mkdirSync } = await import("node:fs");
  mkdirSync(archive, { recursive: true });
  renameSync(path, join(archive, "audit-4-5.db"));
  rmSync(`${path}-wal`, { force: true });
  rmSync(`${path}-shm`, { force: true });
  const b = new AuditStore(path, archive);
  expect(b.head.seq).toBe(6);
  b.close();
  expect(verify(path)).toMatchObject({ ok: true, first: 6, seq: 6, continues: { archive: "audit-4-5.db", seq: 5 } });
});

test("an empty log refuses to rotate", async () => {
  const { a } = await rotatable(0);
  expect(() => a.rotate()).toThrow("the log has no records to rotate");
  a.close();
});

test("the broker's store folds the WAL into the file from its worker, not inline", async () => {
  const { statSync } = await import("node:fs");
  const path = fresh();
  const a = new AuditStore(path, undefined, { checkpointInWorker: true });
  const initial = statSync(path).size;
  // 300 commits pass the worker's request point (256) but stay far below SQLite's inline backstop.
  for (let i = 0; i < 300; i++) await a.append({ agent: "ag", kind: "call", cap: "fs-file-write", fields: { i } });
  let grown = false;
  for (let t = 0; t < 500 && !grown; t++) {
    grown = statSync(path).size > initial;
    if (!grown) await Bun.sleep(10);
  }
  a.close();
  expect(grown).toBe(true);
  expect(verify(path)).toMatchObject({ ok: true, seq: 300 });
});

/** The chain's preimage written out the long way (DESIGN's canonical encoding), to check chainHash against. */
function referenceHash(r: { seq: number; ts: string; agent: string; kind: string; cap: string; fields: string; raw: Uint8Array; prev: Uint8Array }): string {
  const u64 = (n: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(n));
    return b;
  };
  const parts: Buffer[] = [Buffer.from(r.prev), u64(r.seq)];
  for (const s of [r.ts, r.agent, r.kind, r.cap, r.fields]) {
    const b = Buffer.from(new TextEncoder().encode(s));
    parts.push(u64(b.length), b);
  }
  parts.push(u64(r.raw.length), Buffer.from(r.raw));
  return new Bun.CryptoHasher("sha256").update(Buffer.concat(parts)).digest("hex");
}

test("chainHash is sha256 of the canonical encoding, record after record", () => {
  const prev = new Uint8Array(32).fill(7);
  const records = [
    { seq: 1, ts: "2026-01-01T00:00:00.000Z", agent: "a", kind: "call", cap: "fs-file-read", fields: "{}", raw: new Uint8Array(0), prev: GENESIS },
    { seq: 2 ** 32 + 5, ts: "t", agent: "ägent", kind: "result", cap: "-", fields: JSON.stringify({ s: "€ 😀 \u202e" }), raw: Uint8Array.of(0, 255, 10), prev },
    { seq: 2 ** 53 - 1, ts: "", agent: "", kind: "", cap: "", fields: "", raw: new Uint8Array(70_000).fill(1), prev },
    // A lone surrogate is hashed as U+FFFD, as TextEncoder encodes it.
    { seq: 3, ts: "x", agent: "b", kind: "deny", cap: "c", fields: "\ud800", raw: Uint8Array.of(1), prev },
  ];
  for (const r of records) expect(Buffer.from(chainHash(r)).toString("hex")).toBe(referenceHash(r));
  // A record that cannot be hashed leaves nothing behind for the next one.
  expect(() => chainHash({ ...records[0]!, raw: null as unknown as Uint8Array })).toThrow();
  expect(Buffer.from(chainHash(records[1]!)).toString("hex")).toBe(referenceHash(records[1]!));
});
