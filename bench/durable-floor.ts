// b0: the durable work of one governed fs-file-write and nothing else, in one process, serial:
// the hello and the intent committed together, the confined replace of the file, the outcome
// committed; through the broker's own code (AuditStore with its checkpointer worker, and
// writeFileConfined), with records of a's sizes. No jail, no socket, no process per call, no
// policy. Its time is what a's latency cannot fall below on this disk while keeping the
// durability promise, and its CPU what the broker's CPU per call cannot fall below. Writes the
// same files as loop.sh, for stats.ts, and the CPU per call to BENCH_FIGURES (tag "cpu b0").
// usage: bun bench/durable-floor.ts DIR OUT WARMUP N CONTENT
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AuditStore } from "../broker/audit.ts";
import { writeFileConfined } from "../lib/confined-fs.ts";

const [dir, out, warmArg, nArg, content] = process.argv.slice(2);
if (!dir || !out || !warmArg || !nArg || content === undefined) {
  process.stderr.write("usage: bun bench/durable-floor.ts DIR OUT WARMUP N CONTENT\n");
  process.exit(64);
}
mkdirSync(join(dir, "files"), { recursive: true });
const audit = new AuditStore(join(dir, "audit.db"), undefined, { checkpointInWorker: true });
const data = Buffer.from(content);
const root = join(dir, "files");
const args = { path: join(root, "out.txt"), content };
// Frames of about the sizes a's records keep (HELLO+WELCOME, CALL, RESULT).
const hello = new Uint8Array(18);
const call = new Uint8Array(60 + root.length + content.length);
const result = new Uint8Array(80 + root.length);

let conn = 0;
async function governedWrite() {
  conn++;
  await Promise.all([
    audit.append({ agent: "bench1", kind: "hello", fields: { conn, version: 1 }, raw: hello }),
    audit.append({ agent: "bench1", kind: "call", cap: "fs-file-write", fields: { conn, args, args_sha256: "0".repeat(64) }, raw: call }),
  ]);
  const bytes = await writeFileConfined(root, ["out.txt"], data);
  await audit.append({ agent: "bench1", kind: "result", cap: "fs-file-write", fields: { conn, exit: 0, bytes_written: bytes, target: args.path }, raw: result });
}

const now = () => performance.timeOrigin + performance.now(); // ms since the epoch
for (let i = 0; i < Number(warmArg); i++) await governedWrite();
const n = Number(nArg);
const d = new Array<string>(n);
const cpu0 = process.cpuUsage();
const start = now();
for (let i = 0; i < n; i++) {
  const s = performance.now();
  await governedWrite();
  d[i] = ((performance.now() - s) * 1000).toFixed(1);
}
const end = now();
const cpu = process.cpuUsage(cpu0);
audit.close();
writeFileSync(out, `${d.join("\n")}\n`);
writeFileSync(`${out}.meta`, `start=${(start / 1000).toFixed(6)}\nend=${(end / 1000).toFixed(6)}\nbad=0\nfirst_error=\n`);
const user = Math.round(cpu.user / n);
const sys = Math.round(cpu.system / n);
console.log(`b0 CPU per call: ${user + sys}µs  (user ${user}µs + sys ${sys}µs; the durable work alone, n=${n})`);
if (process.env.BENCH_FIGURES) appendFileSync(process.env.BENCH_FIGURES, `${JSON.stringify({ tag: "cpu b0", user_us: user, sys_us: sys, busy: 0 })}\n`);
