// What the credential stage, the approval gate and the scrubber add to one call, measured
// in-process: resolving a call's provider and secret (open and authenticate the vault file, note
// the use), queueing a call for approval and settling it (the broker's own work; the operator's
// time is not counted), and scrubbing a typical result and error line of every spelling of the
// secret. A grant without approval or credential skips those stages: one branch each. The vault lives in a temporary
// directory on the filesystem of BENCH_TMPDIR (default the system's); nothing is left behind.
// usage: node_modules/.bin/bun bench/credential-stage.ts   (BENCH_N calls, default 5000)
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveCredentials } from "../broker/credentials.ts";
import { decide } from "../broker/pipeline.ts";
import { RateLimiter } from "../broker/rate-limit.ts";
import { scrubOutput } from "../broker/scrub.ts";
import { Vault } from "../broker/vault.ts";
import { CATALOG } from "../capabilities/registry.ts";
import { ApprovalQueue } from "../broker/approvals.ts";
import { loadPolicyText } from "../policy/load.ts";

const N = Number(process.env.BENCH_N ?? 5000);
const dir = mkdtempSync(join(process.env.BENCH_TMPDIR ?? tmpdir(), "viv-bench-cred-"));
const state = join(dir, "state");
const key = join(dir, "keys", "vault.key");
const ACCOUNT = "AC0123456789abcdef0123456789abcdef";
const TOKEN = "0123456789abcdef0123456789abcdef";
try {
  const vault = new Vault(state, key);
  vault.set("twilio-main", TOKEN);
  const policy = loadPolicyText([{ file: "bench.kdl", text: `
provider "sms" { kind "twilio"; url "https://api.twilio.com"; account "${ACCOUNT}"; from "+15550100001"; credential "twilio-main"; }
agent "a" { grant "messaging-message-send" { provider "sms"; contact "+15550100000"; } }` }], CATALOG);
  const agent = policy.agents.get("a")!;
  const limiter = new RateLimiter();
  const argv = ["--to", "+15550100000", "--body", "hello"];
  const stdout = `${JSON.stringify({ message_id: `SM${"0".repeat(32)}`, status: "queued" })}\n`;
  const stderr = `messaging-message-send: provider 'sms' refused the message: Twilio error 21211: The 'To' number is not a valid phone number (HTTP 400)\n`;

  const measure = (name: string, fn: () => void) => {
    for (let i = 0; i < Math.min(200, N); i++) fn();
    const t: number[] = [];
    for (let i = 0; i < N; i++) {
      const s = performance.now();
      fn();
      t.push(performance.now() - s);
    }
    t.sort((a, b) => a - b);
    const p = (q: number) => `${(t[Math.min(t.length - 1, Math.ceil(q * t.length) - 1)]! * 1000).toFixed(1)}µs`;
    console.log(`${name}: n=${N} p50=${p(0.5)} p90=${p(0.9)} p99=${p(0.99)}`);
  };

  measure("decide (resolve, parse, authorize, rate)", () => void decide(agent, "messaging-message-send", argv, limiter));
  const d = decide(agent, "messaging-message-send", argv, limiter);
  if (d.type !== "run") throw new Error("bench policy does not allow the call");
  measure("credential stage (vault read, decrypt, last-used)", () => {
    const r = resolveCredentials(policy, d, () => new Vault(state, key));
    if (r.type !== "ready") throw new Error(r.refusal.reason);
  });
  const queue = new ApprovalQueue();
  measure("approval gate (digest the request, queue it, settle it)", () => {
    const { view } = queue.request({ agent: "a", cap: "messaging-message-send", risk: "high", target: "+15550100000", args: d.args, argsDigest: "0".repeat(64), conn: 1 }, { timeoutMs: 60_000 });
    queue.settle(view.id, { decision: "approve", by: "operator", who: "bench" });
  });
  measure("scrub a result and an error line", () => void scrubOutput(stdout, stderr, TOKEN, [ACCOUNT, "+15550100001"]));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
