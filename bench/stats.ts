// Reads the timing files the loops wrote (durations in µs, one a line, and OUT.meta with the
// timed window) and prints one figure line: n, p50, p90, p99 and calls/s. Several files are
// merged, as for concurrent agents: percentiles over every call, calls/s over the window from
// the first start to the last end. With BENCH_FIGURES set, the figure also goes there as a JSON
// line, for bench/summary.ts.
// usage: bun bench/stats.ts LABEL OUT...
import { appendFileSync, readFileSync } from "node:fs";

const [label, ...files] = process.argv.slice(2);
if (!label || files.length === 0) {
  process.stderr.write("usage: bun bench/stats.ts LABEL OUT...\n");
  process.exit(64);
}

const durations: number[] = [];
let start = Infinity;
let end = -Infinity;
let bad = 0;
const errors: string[] = [];
for (const f of files) {
  for (const line of readFileSync(f, "utf8").split("\n")) if (line) durations.push(Number(line));
  const meta = Object.fromEntries(
    readFileSync(`${f}.meta`, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
  // Seconds with a decimal part, from $EPOCHREALTIME or the Bun loop; µs as integers.
  const us = (v: string) => {
    const [s, frac = ""] = v.replace(",", ".").split(".");
    return Number(s) * 1e6 + Number(frac.padEnd(6, "0").slice(0, 6));
  };
  start = Math.min(start, us(meta.start));
  end = Math.max(end, us(meta.end));
  bad += Number(meta.bad);
  if (meta.first_error) errors.push(meta.first_error);
}

durations.sort((a, b) => a - b);
/** Nearest-rank percentile. */
const pct = (p: number) => durations[Math.max(0, Math.ceil((p / 100) * durations.length) - 1)]!;
const ms = (us: number) => `${(us / 1000).toFixed(3)}ms`;
const rate = durations.length / ((end - start) / 1e6);
let line = `${label.padEnd(52)} n=${String(durations.length).padEnd(5)} p50=${ms(pct(50))}  p90=${ms(pct(90))}  p99=${ms(pct(99))}  calls/s=${Math.round(rate)}`;
if (bad) line += `  UNEXPECTED EXIT: ${bad} calls (first: ${errors[0]})`;
console.log(line);
// With BENCH_FIGURES, the figure is also appended there as JSON (tag = the label's first word).
const figures = process.env.BENCH_FIGURES;
if (figures) {
  const fig = { tag: label.split(/\s+/)[0], n: durations.length, p50_us: pct(50), p90_us: pct(90), p99_us: pct(99), calls_s: Math.round(rate), bad };
  appendFileSync(figures, `${JSON.stringify(fig)}\n`);
}
