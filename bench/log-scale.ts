// How the audit log behaves at scale: builds a log of BENCH_RECORDS records (default 1,000,000)
// through the broker's own append path (AuditStore.append, group commit), shaped like real
// traffic (a hello, an intent with its raw frame and an outcome per call, four agents, several
// capabilities), then prints what an operator pays on it: bytes per record, `viv-log verify`,
// the time to the first line of `viv-log --agent A --since T` and `--cap C`, a broker's start,
// and one record's durable append on the big log next to an empty one. It asserts nothing.
// usage: node_modules/.bin/bun bench/log-scale.ts   (after `node_modules/.bin/bun run build.ts`)
// BENCH_RECORDS, BENCH_APPENDS (timed single appends, default 500), BENCH_TMPDIR, BENCH_KEEP=1.
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { AuditStore } from "../broker/audit.ts";
import { stateLayout } from "../lib/paths.ts";
import { Database } from "bun:sqlite";

const RECORDS = Number(process.env.BENCH_RECORDS ?? 1_000_000);
const APPENDS = Number(process.env.BENCH_APPENDS ?? 500);
const ROOT = resolve(import.meta.dir, "..");
const VIV_LOG = join(ROOT, "dist/bin/viv-log");
const BROKER = join(ROOT, "dist/bin/viv-broker");
const AGENTS = ["bench1", "bench2", "bench3", "bench4"];
const CAPS = ["fs-file-write", "fs-file-write", "web-page-read", "messaging-message-send"];
const RARE_CAP = "calendar-event-create";
const BATCH = 2000;
/** When the build passed 99% of its records: `--since` it selects the last 1% of the log. */
let lastPercentAt = "";

const tmp = mkdtempSync(join(process.env.BENCH_TMPDIR ?? tmpdir(), "vivary-logscale-"));
const say = (s: string) => console.log(s);

/** Nearest-rank percentiles, as bench/stats.ts computes them. */
function percentiles(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.max(0, Math.ceil(q * s.length) - 1)]!;
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99) };
}
const ms = (t: number) => `${t.toFixed(t < 10 ? 2 : 0)} ms`;

/** The records of one call, as the broker writes them: hello, intent (with its frame), outcome. */
function* callRecords(i: number) {
  const agent = AGENTS[i % AGENTS.length]!;
  // One call in a thousand is of a rare capability, so a filter for it must skip most of the log.
  const cap = i % 1000 === 999 ? RARE_CAP : CAPS[i % CAPS.length]!;
  const conn = i + 1;
  const path = `/srv/reports/${agent}/report-${i}.md`;
  const frame = new TextEncoder().encode(JSON.stringify({ type: "call", cap, argv: ["--path", path, "--content", `report number ${i}`] }));
  yield { agent, kind: "hello", cap: "-", fields: { conn, pid: 1000 + (i % 30000) } };
  yield { agent, kind: "call", cap, fields: { conn, intent: true, args: { path, content: `report number ${i}` }, args_sha256: "ab".repeat(32) }, raw: frame };
  yield { agent, kind: "result", cap, fields: { conn, exit: 0, ms: 1.2 } };
}

async function build(path: string, n: number): Promise<number> {
  const store = new AuditStore(path);
  const t0 = performance.now();
  let written = 0;
  let call = 0;
  while (written < n) {
    const pending: Promise<number>[] = [];
    while (pending.length < BATCH && written < n) {
      for (const r of callRecords(call)) {
        if (written >= n) break;
        pending.push(store.append(r));
        written++;
      }
      call++;
    }
    await Promise.all(pending);
    if (!lastPercentAt && written >= n * 0.99) lastPercentAt = new Date().toISOString();
  }
  // One broker start record, as a real log has them, so a start reads back only to it.
  await store.append({ agent: "-", kind: "broker", fields: { event: "start" } });
  store.close();
  return performance.now() - t0;
}

async function timeAppends(path: string): Promise<number[]> {
  const store = new AuditStore(path);
  const times: number[] = [];
  for (let i = 0; i < APPENDS; i++) {
    const t = performance.now();
    for (const r of callRecords(i)) {
      await store.append(r);
      break;
    }
    times.push(performance.now() - t);
  }
  store.close();
  return times;
}

/** Runs a command; resolves with the ms to its first line of stdout and to its exit. */
async function firstLine(argv: string[]): Promise<{ first: number; total: number; lines: number }> {
  const t0 = performance.now();
  const p = Bun.spawn(argv, { stdout: "pipe", stderr: "inherit" });
  let first = Number.NaN;
  let lines = 0;
  const decoder = new TextDecoder();
  for await (const chunk of p.stdout) {
    const text = decoder.decode(chunk);
    if (Number.isNaN(first) && text.includes("\n")) first = performance.now() - t0;
    lines += text.split("\n").length - 1;
  }
  const code = await p.exited;
  if (code !== 0) throw new Error(`${argv.join(" ")} exited ${code}`);
  return { first, total: performance.now() - t0, lines };
}

/** A broker's start on this state: spawn to its operator socket answering, then a stop. */
async function brokerStart(state: string): Promise<number> {
  const policy = join(tmp, "policy.kdl");
  writeFileSync(policy, AGENTS.map((a) => `agent "${a}" {\n  grant "fs-file-write" {\n    path "/srv/reports/${a}"\n    rate 100000 per="day"\n  }\n}\n`).join(""));
  const t0 = performance.now();
  const p = Bun.spawn([BROKER, "--state", state, "--policy", policy], { stdout: "ignore", stderr: "pipe" });
  const sock = stateLayout(state).operatorSocket;
  let up = Number.NaN;
  while (performance.now() - t0 < 120_000) {
    try {
      statSync(sock);
      up = performance.now() - t0;
      break;
    } catch {
      await Bun.sleep(5);
    }
  }
  p.kill("SIGTERM");
  await p.exited;
  if (Number.isNaN(up)) throw new Error(`broker did not start: ${await new Response(p.stderr).text()}`);
  return up;
}

try {
  const big = join(tmp, "big");
  const empty = join(tmp, "empty");
  for (const d of [big, empty]) Bun.spawnSync(["mkdir", "-p", d]);
  say(`log-scale: ${RECORDS} records in ${tmp}`);
  const buildMs = await build(stateLayout(big).audit, RECORDS);
  say(`build: ${ms(buildMs)} (${Math.round(RECORDS / (buildMs / 1000))} records/s through AuditStore.append, ${BATCH} per commit)`);
  // Checkpoint the WAL into the main file so the size is the log's own.
  const db = new Database(stateLayout(big).audit);
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  db.close();
  const bytes = statSync(stateLayout(big).audit).size;
  say(`size: ${(bytes / 1048576).toFixed(1)} MiB, ${(bytes / RECORDS).toFixed(0)} bytes per record`);

  const verify = await firstLine([VIV_LOG, "verify", "--state", big]);
  say(`viv-log verify: ${ms(verify.total)} (goal <= 10000 ms)`);
  for (const [name, args] of [
    ["--agent bench2 --since (the last 1%)", ["--agent", "bench2", "--since", lastPercentAt]],
    [`--cap ${RARE_CAP} (0.1% of calls)`, ["--cap", RARE_CAP]],
    ["--cap web-page-read (25% of calls)", ["--cap", "web-page-read"]],
  ] as const) {
    const r = await firstLine([VIV_LOG, "--state", big, ...args]);
    say(`viv-log ${name}: first line ${ms(r.first)}, all ${r.lines} lines ${ms(r.total)} (goal <= 500 ms to the first line)`);
  }
  say(`broker start on the big log (rate budgets rebuilt from a day): ${ms(await brokerStart(big))}; on an empty log: ${ms(await brokerStart(empty))}`);
  const onBig = percentiles(await timeAppends(stateLayout(big).audit));
  const onEmpty = percentiles(await timeAppends(join(empty, "append-only.db")));
  const line = (p: ReturnType<typeof percentiles>) => `p50=${ms(p.p50)} p90=${ms(p.p90)} p99=${ms(p.p99)}`;
  say(`one durable append, ${APPENDS} in a row: big log ${line(onBig)}; empty log ${line(onEmpty)}`);
} finally {
  if (process.env.BENCH_KEEP === "1") say(`kept ${tmp}`);
  else rmSync(tmp, { recursive: true, force: true });
}
