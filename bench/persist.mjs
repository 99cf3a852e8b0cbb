// The persistent-connection loop, run with the host's node inside an agent's jail (copied into
// its workspace, like loop.sh): opens CONNS connections to the agent's own socket, sends HELLO
// once on each, then issues the same CALL back to back on every connection (one in flight per
// connection, as the protocol allows), as an MCP bridge or an SDK does. Each call is timed from
// its CALL frame written to its RESULT frame read; durations (µs, one a line) go to OUT and the
// window and error count to OUT.meta, in loop.sh's format, for bench/stats.ts.
//
// usage: node persist.mjs OUT WARMUP N CONNS WANT_EXIT SYNC_DIR|- -- CAP [ARG...]
// WARMUP and N are calls per connection. With SYNC_DIR, it meets the host at the FIFOs there as
// loop.sh does: 'ready' after every connection's warm-up, then it waits for 'go', and writes
// 'done' after the last timed call.
import { closeSync, openSync, readSync, writeFileSync } from "node:fs";
import net from "node:net";

const [out, warmS, nS, connsS, wantS, sync, sep, cap, ...args] = process.argv.slice(2);
if (sep !== "--" || !cap) {
  process.stderr.write("usage: node persist.mjs OUT WARMUP N CONNS WANT_EXIT SYNC_DIR|- -- CAP [ARG...]\n");
  process.exit(64);
}
const [warm, n, conns, want] = [warmS, nS, connsS, wantS].map(Number);
const socketPath = process.env.VIVARY_SOCKET || "/run/vivary/broker.sock";

// The frames (lib/frame.ts is the spec): length:u32be, type:u8, payload.
function frame(type, payload) {
  const b = Buffer.alloc(5 + payload.length);
  b.writeUInt32BE(1 + payload.length, 0);
  b[4] = type;
  payload.copy(b, 5);
  return b;
}
const str = (s) => {
  const d = Buffer.from(s, "utf8");
  const l = Buffer.alloc(4);
  l.writeUInt32BE(d.length);
  return Buffer.concat([l, d]);
};
const HELLO = frame(0x01, Buffer.from([0x56, 0x49, 0x56, 0x52, 0, 1]));
const argc = Buffer.alloc(2);
argc.writeUInt16BE(args.length);
const CALL = frame(0x10, Buffer.concat([str(cap), argc, ...args.map(str)]));

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
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const len = buf.readUInt32BE(0);
        const body = buf.subarray(4, 4 + len);
        buf = buf.subarray(4 + len);
        if (body[0] === 0x02) continue; // WELCOME
        const w = waiting;
        waiting = null;
        if (body[0] === 0x11) {
          const ol = body.readUInt32BE(2);
          w?.({ exit: body[1], stderr: body.subarray(10 + ol).toString() });
        } else if (body[0] === 0x7f) w?.({ exit: -1, stderr: `broker error: ${body.subarray(6).toString()}` });
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
