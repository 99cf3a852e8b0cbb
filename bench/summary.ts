// The closing table of bench/run.sh: every figure the performance goals name, each with its ratio
// to b2 (the durable write, one host process per call) and c (the bare stub spawn) of the same
// run, and its goal. Beside a goal it misses, what bounds the figure, measured in the same run: b0
// (the durable work of one call alone, the floor of a's added latency and of the broker's CPU)
// and c4 (bare stub spawns in 4 jails at once, the ceiling of d4). Reads the JSON lines
// bench/stats.ts, durable-floor.ts and run.sh's CPU sampling appended to BENCH_FIGURES. A figure
// whose scenario did not run is printed as '-'.
// usage: bun bench/summary.ts FIGURES.ndjson
import { readFileSync } from "node:fs";

interface Latency {
  tag: string;
  n: number;
  p50_us: number;
  p90_us: number;
  p99_us: number;
  calls_s: number;
  bad: number;
}
interface Cpu {
  tag: string;
  user_us: number;
  sys_us: number;
  busy: number;
}

const file = process.argv[2];
if (!file) {
  process.stderr.write("usage: bun bench/summary.ts FIGURES.ndjson\n");
  process.exit(64);
}
const figs = new Map<string, Latency & Cpu>();
for (const line of readFileSync(file, "utf8").split("\n")) if (line) figs.set(JSON.parse(line).tag, JSON.parse(line));

const lat = (t: string) => figs.get(t) as Latency | undefined;
const cpu = (t: string) => figs.get(`cpu ${t}`) as Cpu | undefined;
const ms = (us: number) => `${(us / 1000).toFixed(3)} ms`;
const x = (v: number | undefined, base: number | undefined) => (v === undefined || !base ? "-" : `${(v / base).toFixed(2)}×`);

const [a, b0, b2, c, c4, d4] = [lat("a"), lat("b0"), lat("b2"), lat("c"), lat("c4"), lat("d4")];
type Row = [figure: string, value: string, vsB2: string, vsC: string, goal: string];
const rows: Row[] = [];
const p50Row = (what: string, f: Latency | undefined, goal: string): Row => [what, f ? ms(f.p50_us) : "-", x(f?.p50_us, b2?.p50_us), x(f?.p50_us, c?.p50_us), goal];
const rateRow = (what: string, f: Latency | undefined, goal: string): Row => [what, f ? `${f.calls_s}` : "-", x(f?.calls_s, b2?.calls_s), x(f?.calls_s, c?.calls_s), goal];
const cpuUs = (f: Cpu | undefined) => (f ? f.user_us + f.sys_us : undefined);
const cpuRow = (what: string, f: Cpu | undefined, goal: string, floor?: Cpu): Row => [
  what,
  f ? `${f.user_us + f.sys_us} µs (${f.user_us} user + ${f.sys_us} sys)${floor ? `, ${x(cpuUs(f), cpuUs(floor))} b0` : ""}` : "-",
  "",
  "",
  goal,
];
const b0Cpu = cpu("b0");

rows.push(p50Row("a: governed durable fs-file-write from a jail, p50", a, "≤ 1.15× b2"));
rows.push(p50Row("b2: the same durable write, a host process per call, p50", b2, "—"));
rows.push(p50Row("c: bare stub spawn, no broker, p50", c, "—"));
rows.push(p50Row("b0: the durable work of a's call alone, p50", b0, "—"));
const added = a && c ? a.p50_us - c.p50_us : undefined;
rows.push(["a − c: what the call adds to its spawn, p50", added === undefined ? "-" : `${ms(added)}, ${x(added, b0?.p50_us)} b0`, "", "", "—"]);
const spread = (f: Latency | undefined) => (f ? `${(f.p99_us / f.p50_us).toFixed(2)}×` : "-");
rows.push(["p99 / p50 of a", a ? `${spread(a)}, b0's own ${spread(b0)}` : "-", "", "", "≤ 1.6×"]);
rows.push(cpuRow("b0: CPU of the durable work alone, per call", b0Cpu, "—"));
rows.push(cpuRow("broker CPU per call, a (1 agent)", cpu("a"), "≤ 250 µs, ≤ 60 user", b0Cpu));
rows.push(cpuRow("broker CPU per call, d4 (4 agents)", cpu("d4"), "≤ 250 µs, ≤ 60 user", b0Cpu));
rows.push(rateRow("c4: bare stub spawns, 4 jails at once, calls/s", c4, "—"));
const d4Row = rateRow("d4: 4 agents at once, calls/s", d4, "≥ 1,400");
if (d4 && c4) d4Row[1] += `, ${x(d4.calls_s, c4.calls_s)} c4`;
rows.push(d4Row);
for (const [t, what] of [
  ["p1", "p1: fs-file-read, 8 persistent connections"],
  ["p2", "p2: denied call, 8 persistent connections"],
] as const) {
  const f = lat(t);
  rows.push(rateRow(`${what}, calls/s`, f, "≥ 5,000"));
  rows.push(p50Row(`${t}: per-call p50 (p90 ${f ? ms(f.p90_us) : "-"}, p99 ${f ? ms(f.p99_us) : "-"})`, f, "—"));
  rows.push(cpuRow(`broker CPU per call, ${t}`, cpu(t), "—"));
}

const width = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length), ["figure", "value", "÷ b2", "÷ c", "goal"][i]!.length));
const fmt = (r: readonly string[]) => r.map((v, i) => v.padEnd(width[i]!)).join("  ").trimEnd();
console.log("summary (ratios to b2 and c of this run; calls/s ratios are to their calls/s)");
console.log(fmt(["figure", "value", "÷ b2", "÷ c", "goal"]));
for (const r of rows) console.log(fmt(r));
const bad = [...figs.values()].filter((f) => "bad" in f && f.bad > 0).map((f) => f.tag);
if (bad.length) console.log(`UNEXPECTED EXITS in: ${bad.join(", ")} (their figures do not measure what they say)`);
