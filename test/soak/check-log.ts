// Checks what a crash loop (test/soak/crash-loop.sh) leaves, from the outside, as an investigator
// would: every acknowledged write has its intent and an exit=0 outcome and its content on disk;
// no file exists without an intent; every intent is closed (by an outcome, or as interrupted);
// no temporary is left in a granted directory; the chain verifies. Prints the figures; exits 1
// on the first kind of violation found, naming it.
//
//   bun test/soak/check-log.ts STATE AGENT:HOSTDIR:ACKEDFILE...
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { openAuditReadOnly, verifyChain } from "../../broker/audit.ts";

const [state, ...agents] = process.argv.slice(2);
if (!state || agents.length === 0) {
  process.stderr.write("usage: check-log.ts STATE AGENT:HOSTDIR:ACKEDFILE...\n");
  process.exit(64);
}
const db = openAuditReadOnly(join(state, "audit.db"));
const problems: string[] = [];
const fail = (what: string) => problems.length < 20 && problems.push(what);

type Row = { seq: number; agent: string; kind: string; fields: string };
const intents = new Map<number, { seq: number; agent: string; path: string; content: string }>();
const intentByPath = new Map<string, number[]>();
const outcome = new Map<number, { kind: string; exit: number | null }>();
let open = new Map<number, number>(); // conn -> intent seq
const counts: Record<string, number> = {};
for (const r of db.query("SELECT seq, agent, kind, fields FROM records ORDER BY seq").iterate() as Iterable<Row>) {
  counts[r.kind] = (counts[r.kind] ?? 0) + 1;
  const f = JSON.parse(r.fields);
  if (r.kind === "call") {
    intents.set(r.seq, { seq: r.seq, agent: r.agent, path: f.args.path, content: f.args.content });
    intentByPath.set(f.args.path, [...(intentByPath.get(f.args.path) ?? []), r.seq]);
    if (open.has(f.conn)) fail(`connection ${f.conn} has a second intent (seq ${r.seq}) before the outcome of seq ${open.get(f.conn)}`);
    open.set(f.conn, r.seq);
  } else if (r.kind === "result" || r.kind === "interrupted" || (r.kind === "deny" && f.stage === "execute")) {
    const i = open.get(f.conn);
    if (i === undefined) continue;
    if (r.kind === "interrupted" && f.intent !== i) fail(`interrupted record seq ${r.seq} names intent ${f.intent}, not ${i}`);
    outcome.set(i, { kind: r.kind, exit: r.kind === "interrupted" ? null : f.exit });
    open.delete(f.conn);
  }
}
open = new Map([...open].filter(([, seq]) => !outcome.has(seq)));
for (const [conn, seq] of open) fail(`intent seq ${seq} (connection ${conn}) has no outcome`);

let acked = 0;
let files = 0;
let temporaries = 0;
for (const spec of agents) {
  const [agent, dir, ackedFile] = spec.split(":") as [string, string, string];
  for (const name of readFileSync(ackedFile, "utf8").split("\n").filter(Boolean)) {
    acked++;
    const path = join(dir, name);
    const seqs = intentByPath.get(path) ?? [];
    if (!seqs.some((s) => outcome.get(s)?.kind === "result" && outcome.get(s)?.exit === 0)) fail(`acknowledged write '${path}' has no intent with an exit=0 outcome`);
    let body: string | null = null;
    try {
      body = readFileSync(path, "utf8");
    } catch {
      /* reported below */
    }
    if (body !== name) fail(`acknowledged write '${path}' holds ${body === null ? "nothing" : `'${body.slice(0, 40)}'`}`);
  }
  for (const name of readdirSync(dir)) {
    if (/^\.viv-.*\.tmp$/.test(name)) {
      temporaries++;
      fail(`temporary '${join(dir, name)}' was left behind`);
      continue;
    }
    files++;
    const seqs = intentByPath.get(join(dir, name)) ?? [];
    if (!seqs.some((s) => intents.get(s)!.agent === agent)) fail(`'${join(dir, name)}' exists with no intent of agent '${agent}'`);
  }
}

const chain = verifyChain(db);
if (!chain.ok) fail(`the chain is broken at seq ${chain.seq}: ${chain.why}`);

const n = (k: string) => counts[k] ?? 0;
process.stdout.write(
  `records=${chain.ok ? chain.seq : "?"} starts=${(db.query("SELECT count(*) AS c FROM records WHERE kind = 'broker' AND fields LIKE '%\"event\":\"start\"%'").get() as { c: number }).c} ` +
    `intents=${intents.size} results=${n("result")} interrupted=${n("interrupted")} acked=${acked} files=${files} temporaries=${temporaries} open=${open.size} verify=${chain.ok ? "ok" : "broken"}\n`,
);
for (const p of problems) process.stderr.write(`check-log: ${p}\n`);
process.exit(problems.length ? 1 : 0);
