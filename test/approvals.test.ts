// Approval gates in tables: the binding digest (what one approval is good for, and nothing
// else), the queue's bound, single use and verdicts, and the policy nodes (approval, max-risk,
// the critical default and its opt-out warning) against a catalog with a critical capability.
import { describe, expect, test } from "bun:test";
import { ApprovalQueue, requestDigest } from "../broker/approvals.ts";
import { loadPolicyText } from "../policy/load.ts";
import type { Catalog } from "../policy/model.ts";
import { problemsOf } from "./policy-problems.ts";

describe("requestDigest binds an approval to one exact request", () => {
  const nonce = new Uint8Array(32).fill(7);
  const base = requestDigest(nonce, "alpha", "fs-file-write", { path: "/srv/a", content: "x" });
  const cases: Array<[string, string]> = [
    ["another agent", requestDigest(nonce, "beta", "fs-file-write", { path: "/srv/a", content: "x" })],
    ["another capability", requestDigest(nonce, "alpha", "fs-file-read", { path: "/srv/a", content: "x" })],
    ["another argument value", requestDigest(nonce, "alpha", "fs-file-write", { path: "/srv/b", content: "x" })],
    ["one more argument", requestDigest(nonce, "alpha", "fs-file-write", { path: "/srv/a", content: "x", encoding: "base64" })],
    ["another broker run", requestDigest(new Uint8Array(32).fill(8), "alpha", "fs-file-write", { path: "/srv/a", content: "x" })],
  ];
  for (const [what, digest] of cases) test(`differs for ${what}`, () => expect(digest).not.toBe(base));
  test("is the same for the same request, whatever the key order", () => {
    expect(requestDigest(nonce, "alpha", "fs-file-write", { content: "x", path: "/srv/a" })).toBe(base);
  });
});

describe("ApprovalQueue", () => {
  const call = (conn: number, agent = "alpha") => ({ agent, cap: "fs-file-write", risk: "medium", target: "-", args: { path: "/srv/a" }, argsDigest: "d", conn });

  test("a decision is single-use, and an unknown id decides nothing", async () => {
    const q = new ApprovalQueue();
    const { view, decided } = q.request(call(1), { timeoutMs: 60_000 });
    expect(q.count("alpha")).toBe(1);
    expect(q.settle(view.id, { decision: "approve", by: "operator" })).toBe(true);
    expect(q.settle(view.id, { decision: "approve", by: "operator" })).toBe(false);
    expect(q.settle("nope", { decision: "approve", by: "operator" })).toBe(false);
    expect((await decided).decision).toBe("approve");
    expect(q.list()).toEqual([]);
  });

  test("no decision in time is a timeout with exit 75", async () => {
    const q = new ApprovalQueue();
    const { decided } = q.request(call(1), { timeoutMs: 20 });
    const v = await decided;
    expect(v).toMatchObject({ decision: "timeout", exit: 75 });
  });

  test("a hang-up withdraws only that connection's call; the kill switch only that agent's", async () => {
    const q = new ApprovalQueue();
    const a = q.request(call(1), { timeoutMs: 60_000 });
    const b = q.request(call(2), { timeoutMs: 60_000 });
    const c = q.request(call(3, "beta"), { timeoutMs: 60_000 });
    q.withdraw(1);
    expect((await a.decided).decision).toBe("withdrawn");
    q.settleAll("alpha", { decision: "kill", by: "operator", reason: "k", exit: 77 });
    expect((await b.decided).decision).toBe("kill");
    expect(q.list().map((p) => p.id)).toEqual([c.view.id]);
    q.settleAll(undefined, { decision: "stopping", by: "broker", reason: "s", exit: 75 });
    expect((await c.decided).decision).toBe("stopping");
  });
});

describe("approval, max-risk and risk tiers in a policy", () => {
  const catalog: Catalog = new Map([
    ["low-cap", { scopes: [], risk: "low", credential: false, providerKinds: new Map() }],
    ["crit-cap", { scopes: [], risk: "critical", credential: false, providerKinds: new Map() }],
  ]);
  const load = (body: string) => loadPolicyText([{ file: "p.kdl", text: `agent "a" {\n${body}\n}\n` }], catalog);
  const problems = (body: string) => problemsOf(() => load(body));

  test("approval takes a timeout and a via program", () => {
    const g = load(`grant "low-cap" { approval timeout="2m" via="/usr/local/bin/ask"; }`).agents.get("a")!.grants.get("low-cap")!;
    expect(g.approval).toEqual({ timeoutMs: 120_000, via: "/usr/local/bin/ask" });
  });
  test("a critical capability requires approval by default", () => {
    expect(load(`grant "crit-cap"`).agents.get("a")!.grants.get("crit-cap")!.approval).toEqual({ timeoutMs: 300_000 });
  });
  test('approval "never" opts out, with a warning for viv policy check', () => {
    const p = load(`grant "crit-cap" { approval "never"; }`);
    expect(p.agents.get("a")!.grants.get("crit-cap")!.approval).toBeUndefined();
    expect(p.warnings).toEqual(["p.kdl:2: grant 'crit-cap' (risk critical) opts out of approval: its calls run without an operator"]);
  });
  test("max-risk refuses a grant above it that needs no approval, and allows one that does", () => {
    expect(problems(`max-risk "low"\ngrant "crit-cap" { approval "never"; }`)).toEqual([
      `p.kdl:3: grant 'crit-cap' (risk critical) is above max-risk "low" of agent 'a' and does not require approval`,
    ]);
    expect(load(`max-risk "low"\ngrant "crit-cap"`).agents.get("a")!.maxRisk).toBe("low");
  });
  const bad: Array<[string, string]> = [
    [`grant "low-cap" { approval timeout="forever"; }`, `p.kdl:2: approval timeout 'forever' is not a duration from "1s" to "24h"`],
    [`grant "low-cap" { approval via="ask"; }`, `p.kdl:2: approval via 'ask' must be an absolute path to a program`],
    [`grant "low-cap" { approval "always"; }`, `p.kdl:2: 'approval' takes timeout= (and via=), or the one value "never"`],
    [`grant "low-cap" { approval; approval; }`, `p.kdl:2: 'approval' is given twice`],
    [`grant "low-cap" { approval when="now"; }`, `p.kdl:2: unknown property 'when' on 'approval' (expected 'timeout', 'via')`],
    [`max-risk "severe"`, `p.kdl:2: max-risk 'severe' is not one of "low", "medium", "high", "critical"`],
  ];
  for (const [body, message] of bad) test(`refuses: ${body}`, () => expect(problems(body)).toEqual([message]));
});
