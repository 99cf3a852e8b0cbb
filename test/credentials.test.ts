// Tables for the credential stage (broker/credentials.ts): which provider and vault id a call
// uses, what its context holds, and each way it refuses (a missing secret, an unreadable vault, a
// provider not granted), always with the id and never the value in the reason or the fields.
import { describe, expect, test } from "bun:test";
import { resolveCredentials, type SecretSource } from "../broker/credentials.ts";
import { decide } from "../broker/pipeline.ts";
import { RateLimiter } from "../broker/rate-limit.ts";
import { CATALOG } from "../capabilities/registry.ts";
import { Exit, VivError } from "../lib/exit.ts";
import { Secret } from "../lib/secret.ts";
import { loadPolicyText } from "../policy/load.ts";

const ACCOUNT = "AC0123456789abcdef0123456789abcdef";
const SECRET = "canary-credential-value-0123";
const policy = loadPolicyText([{
  file: "p.kdl",
  text: `
provider "sms" { kind "twilio"; url "http://127.0.0.1:9"; account "${ACCOUNT}"; from "+15550100001"; credential "twilio-main"; }
provider "backup" { kind "twilio"; url "http://127.0.0.1:9"; account "${ACCOUNT}"; from "+15550100002"; credential "twilio-backup"; }
agent "a" {
    grant "messaging-message-send" { provider "sms"; provider "backup"; contact "+15550100000"; }
    grant "fs-file-write" { path "/srv/reports"; }
}`,
}], CATALOG);
const agent = policy.agents.get("a")!;

/** A secret source over a table; records which ids were opened and marked used. */
function table(values: Record<string, string>, fail?: Error) {
  const opened: string[] = [];
  const used: string[] = [];
  const source: SecretSource = {
    get(id) {
      opened.push(id);
      if (fail) throw fail;
      if (!(id in values)) throw new VivError(Exit.unavailable, `secret '${id}' is not in the vault`);
      return new Secret(values[id]!, id);
    },
    markUsed: (id) => void used.push(id),
  };
  return { source, opened, used };
}

function run(cap: string, argv: string[], t: ReturnType<typeof table>) {
  const d = decide(agent, cap, argv, new RateLimiter());
  if (d.type !== "run") throw new Error(`not run: ${JSON.stringify(d)}`);
  return resolveCredentials(policy, d, () => t.source);
}

test("a call through the first granted provider gets that provider and its secret", () => {
  const t = table({ "twilio-main": SECRET });
  const r = run("messaging-message-send", ["--to", "+15550100000", "--body", "hi"], t);
  if (r.type !== "ready") throw new Error(JSON.stringify(r));
  expect(r.context.provider).toEqual({ name: "sms", kind: "twilio", url: "http://127.0.0.1:9", settings: { account: ACCOUNT, from: "+15550100001" } });
  expect(r.context.secret!.reveal()).toBe(SECRET);
  expect(r.fields).toEqual({ provider: "sms", credential: "twilio-main" });
  expect(r.basicUsers).toContain(ACCOUNT);
  expect(t.used).toEqual(["twilio-main"]);
  expect(JSON.stringify(r)).not.toContain(SECRET);
});

test("--provider picks another granted provider and its own credential", () => {
  const t = table({ "twilio-backup": SECRET });
  const r = run("messaging-message-send", ["--to", "+15550100000", "--body", "hi", "--provider", "backup"], t);
  expect(r.type === "ready" && r.fields).toEqual({ provider: "backup", credential: "twilio-backup" });
});

test("a capability that needs no secret never opens the vault", () => {
  const t = table({}, new Error("vault must not be opened"));
  const r = run("fs-file-write", ["--path", "/srv/reports/a", "--content", "x"], t);
  expect(r).toEqual({ type: "ready", context: {}, fields: {}, basicUsers: [] });
  expect(t.opened).toEqual([]);
});

describe("refusals name the id, never the value", () => {
  const cases: [string, ReturnType<typeof table>, string][] = [
    ["a secret missing from the vault", table({}), "credential 'twilio-main' unavailable: secret 'twilio-main' is not in the vault"],
    ["an unreadable vault", table({}, new VivError(Exit.unavailable, "vault key '/k' cannot be read: EACCES")), "credential 'twilio-main' unavailable: vault key '/k' cannot be read: EACCES"],
    ["a vault that fails authentication", table({}, new VivError(Exit.data, "secret 'twilio-main' cannot be opened: authentication failed (the vault file was altered)")),
      "credential 'twilio-main' unavailable: secret 'twilio-main' cannot be opened: authentication failed (the vault file was altered)"],
  ];
  for (const [name, t, reason] of cases) {
    test(name, () => {
      const r = run("messaging-message-send", ["--to", "+15550100000", "--body", "hi"], t);
      expect(r).toEqual({ type: "refuse", refusal: { exit: Exit.unavailable, kind: "deny", stage: "credential", reason } });
      expect(t.used).toEqual([]);
    });
  }
});
