// The persistent-connection loop, run with the host's node inside an agent's jail (copied into
// its workspace with test/wire.mjs, like loop.sh): opens CONNS connections to the agent's own
// socket, sends HELLO once on each, then issues the same CALL back to back on every connection
// (one in flight per connection, as the protocol allows), as an MCP bridge or an SDK does. Each
// call is timed from its CALL frame written to its RESULT frame read; durations (µs, one a line)
// go to OUT and the window and error count to OUT.meta, in loop.sh's format, for bench/stats.ts.
//
// usage: node persist.mjs OUT WARMUP N CONNS WANT_EXIT SYNC_DIR|- -- CAP [ARG...]
// WARMUP and N are calls per connection. With SYNC_DIR, it meets the host at the FIFOs there as
// loop.sh does: 'ready' after every connection's warm-up, then it waits for 'go', and writes
// 'done' after the last timed call.
import { closeSync, openSync, readSync, writeFileSync } from "node:fs";
import net from "node:net";
import { callFrame, decodeFrames, helloFrame } from "./wire.mjs";

const [out, warmS, nS, connsS, wantS, sync, sep, cap, ...args] = process.argv.slice(2);
if (sep !== "--" || !cap) {
  process.stderr.write("usage: node persist.mjs OUT WARMUP N CONNS WANT_EXIT SYNC_DIR|- -- CAP [ARG...]\n");
  process.exit(64);
}
const [warm, n, conns, want] = [warmS, nS, connsS, wantS].map(Number);
const socketPath = process.env.VIVARY_SOCKET || "/run/vivary/broker.sock";

const HELLO = helloFrame();
const CALL = callFrame(cap, args);

let bad = 0;
let firstError = "";
const durations = [];

/** One connection: resolves each RESULT (exit and stderr) in turn. */
function connect() {
  return new Promise((resolve, reject) => {
    const s = net.createConnection(socketPath);
    let buf = Buffer.alloc(0);
    let waiting = null;
    s.on("data", (d) => {
      const r = decodeFrames(buf.length ? Buffer.concat([buf, d]) : d);
      buf = r.rest;
      for (const f of r.frames) {
        if (f.type === "welcome") continue;
        const w = waiting;
        waiting = null;
        if (f.type === "result") w?.(f);
        else w?.({ exit: -1, stderr: f.type === "error" ? `broker error: ${f.message}` : `unexpected frame ${f.hex}` });
      }
    });
    const lost = () => waiting?.({ exit: -1, stderr: "connection closed" });
    s.on("close", lost);
    s.once("error", (e) => (waiting ? lost() : reject(e)));
    s.once("connect", () => {
      s.write(HELLO);
      resolve({
        call: () => new Promise((r) => ((waiting = r), s.write(CALL))),
        end: () => s.end(),
      });
    });
  });
}

function check(r) {
  if (r.exit === want) return;
  bad++;
  if (!firstError) firstError = `exit ${r.exit}: ${r.stderr.split("\n")[0]}`;
}

async function loop(c, calls, timed) {
  for (let i = 0; i < calls; i++) {
    const s = performance.now();
    const r = await c.call();
    if (timed) durations.push(Math.round((performance.now() - s) * 1000));
    check(r);
  }
}

/** Seconds since the epoch with µs, as bash's $EPOCHREALTIME prints them. */
const epoch = () => ((performance.timeOrigin + performance.now()) / 1000).toFixed(6);

const cs = await Promise.all(Array.from({ length: conns }, connect));
await Promise.all(cs.map((c) => loop(c, warm, false)));
const warmBad = bad;
if (sync !== "-") {
  writeFileSync(`${sync}/ready`, "ready\n");
  const fd = openSync(`${sync}/go`, "r");
  readSync(fd, Buffer.alloc(16));
  closeSync(fd);
}
const start = epoch();
await Promise.all(cs.map((c) => loop(c, n, true)));
const end = epoch();
if (sync !== "-") writeFileSync(`${sync}/done`, "finished\n");
for (const c of cs) c.end();
writeFileSync(out, durations.join("\n") + "\n");
writeFileSync(`${out}.meta`, `start=${start}\nend=${end}\nbad=${bad}\nfirst_error=${firstError}\n`);
if (warmBad) process.stderr.write(`persist: ${warmBad} warm-up calls exited otherwise than ${want} (first: ${firstError})\n`);
process.exit(0);
