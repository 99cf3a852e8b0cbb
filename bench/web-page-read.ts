// web-page-read benchmark: p50/p99 of a warm governed call (a CALL frame on the agent's socket,
// decided, recorded durably, read by the agent's browser through the proxy, recorded, answered)
// next to the same small loopback page read by a raw DevTools client on the same warm browser
// (new tab, navigate, wait for load, read the text, close). Both wait for the load event. It
// asserts nothing. Run as root after a build: sudo node_modules/.bin/bun bench/web-page-read.ts
// BENCH_N (calls per figure, default 200), BENCH_WARMUP (default 20).
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AuditStore } from "../broker/audit.ts";
import { Broker } from "../broker/server.ts";
import { stubBinary } from "../lib/install.ts";
import { decodeFrames, encodeFrame, PROTOCOL_VERSION } from "../lib/frame.ts";
import { stateLayout } from "../lib/paths.ts";
import { CATALOG } from "../capabilities/registry.ts";
import { loadPolicyText } from "../policy/load.ts";

const N = Number(process.env.BENCH_N ?? 200);
const WARM = Number(process.env.BENCH_WARMUP ?? 20);
if (process.getuid?.() !== 0) {
  process.stderr.write("bench: must run as root (the browser gets a uid and a network namespace of its own)\n");
  process.exit(77);
}

const page = `<!doctype html><html><head><title>Bench</title></head><body><article><h1>Bench</h1><p>${"A small page for the benchmark, a few sentences long. ".repeat(8)}</p></article></body></html>`;
const site = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response(page, { headers: { "content-type": "text/html" } }) });
const url = `http://127.0.0.1:${site.port}/`;

const state = mkdtempSync(join(tmpdir(), "vivary-bench-web-"));
// As viv-broker does: the browser's uid must be able to reach its directory below the state.
chmodSync(state, 0o711);
const policy = loadPolicyText([{ file: "bench.kdl", text: `agent "bench" {\n    grant "web-page-read" {\n        url "http://127.0.0.1:${site.port}/*"\n    }\n}\n` }], CATALOG);
const audit = new AuditStore(stateLayout(state).audit);
const broker = new Broker(policy, state, audit, stubBinary());
broker.start();

/** One connection to the agent's socket, one call in flight at a time. */
async function connect() {
  let buf = new Uint8Array(0);
  let want: ((f: any) => void) | null = null;
  const queue: any[] = [];
  const sock = await Bun.connect({
    unix: stateLayout(state).agentSocket("bench"),
    socket: {
      data(_s, chunk) {
        const merged = new Uint8Array(buf.length + chunk.length);
        merged.set(buf);
        merged.set(chunk, buf.length);
        buf = merged;
        // Whole frames only: a frame is a u32 length and its body.
        let off = 0;
        while (buf.length - off >= 4) {
          const len = new DataView(buf.buffer, buf.byteOffset + off).getUint32(0);
          if (buf.length - off < 4 + len) break;
          queue.push(...decodeFrames(buf.subarray(off, off + 4 + len)));
          off += 4 + len;
        }
        buf = buf.slice(off);
        while (want && queue.length) {
          const w = want;
          want = null;
          w(queue.shift());
        }
      },
    },
  });
  const next = () => new Promise<any>((r) => (queue.length ? r(queue.shift()) : (want = r)));
  sock.write(encodeFrame({ type: "hello", version: PROTOCOL_VERSION }));
  await next();
  return async (args: string[]) => {
    sock.write(encodeFrame({ type: "call", cap: "web-page-read", args }));
    const f = await next();
    if (f.type !== "result" || f.exit !== 0) throw new Error(`call failed: ${JSON.stringify(f.type === "result" ? new TextDecoder().decode(f.stderr) : f)}`);
  };
}

const call = await connect();
const governed = () => call(["--url", url, "--wait-for", "load"]);

const lease = broker.browsers.lease("bench", policy.agents.get("bench")!.uid, [`http://127.0.0.1:${site.port}/*`]);
const session = await lease.open({ maxLoadBytes: 32 << 20 });
const cdp = session.cdp;
async function raw() {
  const { targetId } = await cdp.send("Target.createTarget", { url: "about:blank", browserContextId: session.browserContextId });
  const { sessionId } = await cdp.send("Target.attachToTarget", { targetId, flatten: true });
  await cdp.send("Page.enable", {}, sessionId);
  const loaded = new Promise<void>((r) => {
    const off = cdp.on("Page.loadEventFired", sessionId, () => (off(), r()));
  });
  await cdp.send("Page.navigate", { url }, sessionId);
  await loaded;
  await cdp.send("Runtime.evaluate", { expression: "document.body.innerText", returnByValue: true }, sessionId);
  await cdp.send("Target.closeTarget", { targetId });
}

async function measure(label: string, fn: () => Promise<void>) {
  for (let i = 0; i < WARM; i++) await fn();
  const t: number[] = [];
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    await fn();
    t.push(performance.now() - t0);
  }
  t.sort((a, b) => a - b);
  const p = (q: number) => t[Math.min(t.length - 1, Math.floor(q * t.length))]!.toFixed(1);
  console.log(`${label.padEnd(34)} n=${N} p50=${p(0.5)}ms p90=${p(0.9)}ms p99=${p(0.99)}ms`);
  return Number(p(0.5));
}

try {
  const rawP50 = await measure("raw CDP read, same warm browser", raw);
  const govP50 = await measure("governed web-page-read, warm", governed);
  console.log(`governed/raw p50 ratio: ${(govP50 / rawP50).toFixed(2)}`);
} finally {
  lease.end();
  await broker.drain();
  broker.close();
  audit.close();
  site.stop(true);
  rmSync(state, { recursive: true, force: true });
}
process.exit(0);
