// Agent uids, and the uids of their browsers, must belong to nobody else on the host
// (broker/host-ids.ts), checked against a made-up /etc.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CATALOG } from "../capabilities/registry.ts";
import { browserUid } from "../broker/browser.ts";
import { hostIdConflict } from "../broker/host-ids.ts";
import { agentUid, loadPolicyText } from "../policy/load.ts";

const etc = mkdtempSync(join(tmpdir(), "viv-etc-"));
afterAll(() => rmSync(etc, { recursive: true, force: true }));
const policy = loadPolicyText([{ file: "p.kdl", text: `agent "scribe"\n` }], CATALOG);
const uid = agentUid("scribe");

function etcWith(files: Record<string, string>) {
  for (const f of ["passwd", "group", "subuid", "subgid"]) writeFileSync(join(etc, f), files[f] ?? "");
}

test("no conflict on a host that does not use the uid", () => {
  etcWith({ passwd: "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n", subuid: "alice:100000:65536\n" });
  expect(hostIdConflict(policy, etc)).toBeNull();
});

test("a user with the agent's uid is a conflict", () => {
  etcWith({ passwd: `bob:x:${uid}:100::/home/bob:/bin/sh\n` });
  expect(hostIdConflict(policy, etc)).toBe(`p.kdl:1: agent 'scribe' would run as host uid ${uid}, which is user 'bob'; rename the agent`);
});

test("a subordinate uid range that holds the agent's uid is a conflict", () => {
  etcWith({ subuid: `carol:${uid - 10}:65536\n` });
  expect(hostIdConflict(policy, etc)).toBe(`p.kdl:1: agent 'scribe' would run as host uid ${uid}, which is the subuid range of 'carol'; rename the agent`);
  etcWith({ subgid: `dave:${uid}:1\n` });
  expect(hostIdConflict(policy, etc)).toContain("the subgid range of 'dave'");
});

test("the real host has no conflict for the example policy", () => {
  expect(hostIdConflict(loadPolicyText([{ file: "demo", text: `agent "scribe"\n` }], CATALOG))).toBeNull();
});

test("the uid of an agent's browser is checked too, when it may read the web", () => {
  const web = loadPolicyText([{ file: "w.kdl", text: `agent "scribe" {\n    grant "web-page-read" {\n        url "https://example.com/*"\n    }\n}\n` }], CATALOG);
  etcWith({ subuid: `erin:${browserUid(uid)}:1\n` });
  expect(hostIdConflict(web, etc)).toBe(`w.kdl:1: the browser of agent 'scribe' would run as host uid ${browserUid(uid)}, which is the subuid range of 'erin'; rename the agent`);
  expect(hostIdConflict(policy, etc)).toBeNull();
});
