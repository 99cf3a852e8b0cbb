// Table tests of the policy loader (policy/load.ts): what a valid policy becomes, and each way a
// policy is refused, with the exact file:line message. Nothing invalid ever yields a policy.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CATALOG } from "../capabilities/registry.ts";
import { agentUid, loadPolicy, loadPolicyText } from "../policy/load.ts";
import { problemsOf } from "./policy-problems.ts";

const load = (text: string) => loadPolicyText([{ file: "p.kdl", text }], CATALOG);
const problems = (text: string) => problemsOf(() => load(text));

const GOOD = `// header
agent "researcher" {
    workspace "/srv/agents/researcher"
    backend "bwrap"
    limits memory="512M" pids=128 timeout="1h"
    grant "fs-file-write" {
        path "/srv/reports"
        path "/srv/notes/daily"
        rate 30 per="minute"
    }
    /- grant "web-page-read" { url "https://example.org/*"; }
}
agent "b" {
}
`;

test("a valid policy loads into the grant model", () => {
  const p = load(GOOD);
  expect([...p.agents.keys()]).toEqual(["researcher", "b"]);
  const a = p.agents.get("researcher")!;
  expect(a.workspace).toBe("/srv/agents/researcher");
  expect(a.limits).toEqual({ memoryBytes: 512 << 20, pids: 128, timeoutMs: 3_600_000 });
  expect(load(`agent "c" {\n  limits cpu=0.5 tmp="16M"\n}`).agents.get("c")!.limits).toEqual({ cpu: 0.5, tmpBytes: 16 << 20 });
  const g = a.grants.get("fs-file-write")!;
  expect(g.scopes).toEqual({ path: ["/srv/reports", "/srv/notes/daily"] });
  expect(g.rate).toEqual({ count: 30, per: "minute", perMs: 60_000 });
  expect(g.where).toBe("p.kdl:6");
  expect(p.agents.get("b")!.grants.size).toBe(0);
  expect(p.digest).toMatch(/^[0-9a-f]{64}$/);
});

test("agent uids are stable, unprivileged and distinct per name", () => {
  expect(agentUid("researcher")).toBe(agentUid("researcher"));
  expect(agentUid("researcher")).not.toBe(agentUid("researchers"));
  expect(agentUid("x")).toBeGreaterThanOrEqual(200_000);
});

describe("refused, with file:line", () => {
  const grant = (body: string) => `agent "a" {\n    grant "fs-file-write" {\n        ${body}\n    }\n}\n`;
  const cases: [string, string, string][] = [
    ["a syntax error", `agent "a" {\n  workspace "/srv/x\n}`, `p.kdl:2: KDL syntax error: unexpected '\\n'`],
    ["an unknown top-level node", `agnet "a"`, "p.kdl:1: unknown node 'agnet' (expected 'agent', 'provider', 'capability')"],
    ["an unknown node in an agent", `agent "a" {\n  workspce "/srv/x"\n}`, "p.kdl:2: unknown node 'workspce' in agent 'a' (expected 'workspace', 'backend', 'limits', 'max-risk', 'grant')"],
    ["an unknown capability", `agent "a" {\n  grant "fs-file-wrte" { path "/srv/x"; }\n}`, "p.kdl:2: unknown capability 'fs-file-wrte'"],
    ["an unknown scope node", grant(`path "/srv/r"\n        url "https://x"`), "p.kdl:4: unknown node 'url' in grant 'fs-file-write' (expected 'path', 'rate', 'approval')"],
    ["an unknown property", `agent "a" {\n  limits memroy="1G"\n}`, "p.kdl:2: unknown property 'memroy' on 'limits' (expected 'memory', 'pids', 'cpu', 'tmp', 'timeout')"],
    ["a grant of the root", grant(`path "/"`), "p.kdl:3: path '/' refused: grants the whole filesystem"],
    ["a top-level directory", grant(`path "/srv"`), "p.kdl:3: path '/srv' refused: is a top-level directory; name a directory at least two levels deep"],
    ["a system tree", grant(`path "/etc/cron.d"`), "p.kdl:3: path '/etc/cron.d' refused: overlaps the system tree '/etc'"],
    ["/proc", grant(`path "/proc/self"`), "p.kdl:3: path '/proc/self' refused: overlaps the system tree '/proc'"],
    ["a relative path", grant(`path "srv/r"`), "p.kdl:3: path 'srv/r' refused: not an absolute path"],
    ["a '..' component", grant(`path "/srv/r/../../etc"`), "p.kdl:3: path '/srv/r/../../etc' refused: has a '..' component"],
    ["a trailing slash", grant(`path "/srv/r/"`), "p.kdl:3: path '/srv/r/' refused: has an empty component (// or a trailing /)"],
    ["a grant with no scope", `agent "a" {\n  grant "fs-file-write"\n}`, "p.kdl:2: grant 'fs-file-write' needs at least one 'path'"],
    ["a bad rate", grant(`path "/srv/r"\n        rate 0 per="minute"`), "p.kdl:4: 'rate' takes one whole number of calls from 1 to 1000000"],
    ["a bad rate unit", grant(`path "/srv/r"\n        rate 5 per="week"`), `p.kdl:4: 'rate' needs per="second", "minute", "hour" or "day"`],
    ["approval with a relative program", grant(`path "/srv/r"\n        approval via="ask"`), "p.kdl:4: approval via 'ask' must be an absolute path to a program"],
    ["a duplicate grant", `agent "a" {\n  grant "fs-file-write" { path "/srv/r"; }\n  grant "fs-file-write" { path "/srv/s"; }\n}`, "p.kdl:3: capability 'fs-file-write' is granted twice to agent 'a'"],
    ["a duplicate agent", `agent "a"\nagent "a"`, "p.kdl:2: agent 'a' is already defined at p.kdl:1"],
    ["a bad agent name", `agent "Bad Name"`, "p.kdl:1: agent name 'Bad Name' must match ^[a-z][a-z0-9-]{0,31}$"],
    ["a bad backend", `agent "a" {\n  backend "docker"\n}`, `p.kdl:2: backend 'docker' is not "bwrap" or "nspawn"`],
    ["a bad memory size", `agent "a" {\n  limits memory="lots"\n}`, `p.kdl:2: memory 'lots' is not a size like "512M"`],
    ["a bad timeout", `agent "a" {\n  limits timeout="1 hour"\n}`, `p.kdl:2: timeout '1 hour' is not a duration like "30s", "5m" or "1h"`],
    ["a cpu limit given as text", `agent "a" {\n  limits cpu="50%"\n}`, "p.kdl:2: cpu '50%' is not a number of CPUs from 0.01 to 1024 (0.5 is half of one CPU)"],
    ["a cpu limit of zero", `agent "a" {\n  limits cpu=0\n}`, "p.kdl:2: cpu '0' is not a number of CPUs from 0.01 to 1024 (0.5 is half of one CPU)"],
    ["a bad /tmp size", `agent "a" {\n  limits tmp="64MB"\n}`, `p.kdl:2: tmp '64MB' is not a size like "64M"`],
    ["a workspace of a system tree", `agent "a" {\n  workspace "/usr/local/agent"\n}`, "p.kdl:2: workspace '/usr/local/agent' refused: overlaps the system tree '/usr'"],
    ["a repeated workspace", `agent "a" {\n  workspace "/srv/a"\n  workspace "/srv/b"\n}`, "p.kdl:3: 'workspace' is given twice for agent 'a'"],
    ["an agent with arguments of the wrong type", `agent 5`, "p.kdl:1: 'agent' takes one agent name"],
  ];
  for (const [what, text, first] of cases) {
    test(what, () => {
      expect(problems(text)[0]).toBe(first);
    });
  }
});

test("every problem is reported, not just the first", () => {
  expect(problems(`agent "a" {\n  bogus 1\n  grant "nope"\n}\nthing`)).toEqual([
    "p.kdl:2: unknown node 'bogus' in agent 'a' (expected 'workspace', 'backend', 'limits', 'max-risk', 'grant')",
    "p.kdl:3: unknown capability 'nope'",
    "p.kdl:5: unknown node 'thing' (expected 'agent', 'provider', 'capability')",
  ]);
});

describe("loadPolicy from disk", () => {
  const dir = mkdtempSync(join(tmpdir(), "viv-policy-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("a directory of *.kdl merges files in name order", () => {
    mkdirSync(join(dir, "ok"));
    writeFileSync(join(dir, "ok", "10-a.kdl"), `agent "a"\n`);
    writeFileSync(join(dir, "ok", "20-b.kdl"), `agent "b"\n`);
    writeFileSync(join(dir, "ok", "notes.txt"), `not policy`);
    expect([...loadPolicy(join(dir, "ok"), CATALOG).agents.keys()]).toEqual(["a", "b"]);
  });

  test("an agent defined in two files names both places", () => {
    mkdirSync(join(dir, "dup"));
    writeFileSync(join(dir, "dup", "a.kdl"), `agent "a"\n`);
    writeFileSync(join(dir, "dup", "b.kdl"), `\nagent "a"\n`);
    expect(() => loadPolicy(join(dir, "dup"), CATALOG)).toThrow(`${join(dir, "dup", "b.kdl")}:2: agent 'a' is already defined at ${join(dir, "dup", "a.kdl")}:1`);
  });

  test("an unreadable or missing policy is an error, never an empty policy", () => {
    expect(() => loadPolicy(join(dir, "missing.kdl"), CATALOG)).toThrow(`${join(dir, "missing.kdl")}: cannot read policy: ENOENT`);
    mkdirSync(join(dir, "empty"));
    expect(() => loadPolicy(join(dir, "empty"), CATALOG)).toThrow("no *.kdl files in policy directory");
  });
});
