// Table tests of the policy loader for providers and credentials: a provider node becomes
// configuration the grants that name it can use, and every mistake (unknown kind or setting, a
// missing one, a bad value, a grant naming what does not exist) is refused with file:line.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CATALOG } from "../capabilities/registry.ts";
import { loadPolicyText } from "../policy/load.ts";
import { PROVIDER_KINDS } from "../providers/registry.ts";
import { problemsOf } from "./policy-problems.ts";

/** Every provider kind, as the loader lists them in its messages. */
const KINDS = [...PROVIDER_KINDS.keys()].map((k) => `'${k}'`).join(", ");

const ACCOUNT = "AC0123456789abcdef0123456789abcdef";
const provider = (body: string, name = "family-sms") => `provider "${name}" {\n${body}\n}\n`;
const TWILIO = `    kind "twilio"\n    url "https://api.twilio.com/"\n    account "${ACCOUNT}"\n    from "+1 555 010 0001"\n    credential "twilio-main"`;
const grant = (body: string) => `agent "assistant" {\n    grant "messaging-message-send" {\n${body}\n    }\n}\n`;
const GRANT = `        provider "family-sms"\n        contact "+15550100000"`;

const load = (...texts: string[]) => loadPolicyText(texts.map((text, i) => ({ file: `p${i || ""}.kdl`, text })), CATALOG);
const problems = (...texts: string[]) => problemsOf(() => load(...texts));

test("a provider and a grant that names it load into the model", () => {
  const p = load(provider(TWILIO) + grant(GRANT));
  expect(p.providers.get("family-sms")).toEqual({
    name: "family-sms",
    kind: "twilio",
    url: "https://api.twilio.com",
    credential: "twilio-main",
    settings: { account: ACCOUNT, from: "+1 555 010 0001" },
    where: "p.kdl:1",
  });
  const g = p.agents.get("assistant")!.grants.get("messaging-message-send")!;
  expect(g.scopes).toEqual({ provider: ["family-sms"], contact: ["+15550100000"] });
  expect(g.credentials).toEqual([]);
});

test("a provider may be defined in another file of the policy, and named with the grant's credential", () => {
  const p = load(grant(`${GRANT}\n        credential "twilio-main"`), provider(TWILIO));
  expect(p.agents.get("assistant")!.grants.get("messaging-message-send")!.credentials).toEqual(["twilio-main"]);
});

test("plain http is allowed to a loopback provider", () => {
  for (const url of ["http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:9/base"]) {
    expect(load(provider(TWILIO.replace("https://api.twilio.com/", url))).providers.size).toBe(1);
  }
});

describe("refused, with file:line", () => {
  const cases: [string, string[], string][] = [
    ["an unknown provider kind", [provider(TWILIO.replace('"twilio"', '"twillio"'))], `p.kdl:2: unknown provider kind 'twillio' (expected ${KINDS})`],
    ["a provider without a kind", [provider(`    url "https://x.example"`)], `p.kdl:1: provider 'family-sms' needs 'kind' (one of ${KINDS})`],
    ["an unknown setting", [provider(`${TWILIO}\n    region "us1"`)], "p.kdl:7: unknown setting 'region' for provider kind 'twilio' (expected 'kind', 'url', 'credential', 'account', 'from')"],
    ["a missing kind setting", [provider(TWILIO.replace(/\n    from .*/, ""))], "p.kdl:1: provider 'family-sms' needs 'from'"],
    ["a missing credential", [provider(TWILIO.replace(/\n    credential .*/, ""))], "p.kdl:1: provider 'family-sms' needs 'credential'"],
    ["a bad account SID", [provider(TWILIO.replace(ACCOUNT, "AC123"))], "p.kdl:4: account 'AC123' refused: is not an account SID (AC and 32 lowercase hexadecimal digits)"],
    ["a sender that is not a phone number", [provider(TWILIO.replace("+1 555 010 0001", "5550100001"))], "p.kdl:5: from '5550100001' refused: not a phone number in international form (+ and the country code)"],
    ["a bad credential id", [provider(TWILIO.replace('"twilio-main"', '"Twilio Main"'))], "p.kdl:6: credential 'Twilio Main' refused: must match ^[a-z0-9][a-z0-9._-]{0,63}$"],
    ["plain http to another host", [provider(TWILIO.replace("https://api.twilio.com/", "http://api.twilio.com"))], "p.kdl:3: url 'http://api.twilio.com' refused: plain http is allowed to loopback addresses only; use https"],
    ["a URL with a password", [provider(TWILIO.replace("https://api.twilio.com/", "https://AC1:tok@api.twilio.com"))], "p.kdl:3: url 'https://AC1:tok@api.twilio.com' refused: has a user name or password; credentials come from the vault"],
    ["a URL with a query", [provider(TWILIO.replace("https://api.twilio.com/", "https://api.twilio.com/?x=1"))], "p.kdl:3: url 'https://api.twilio.com/?x=1' refused: has a query or fragment"],
    ["a URL of another scheme", [provider(TWILIO.replace("https://api.twilio.com/", "file:///etc/passwd"))], "p.kdl:3: url 'file:///etc/passwd' refused: scheme 'file' is not https"],
    ["a setting given twice", [provider(`${TWILIO}\n    from "+15550100002"`)], "p.kdl:7: 'from' is given twice for provider 'family-sms'"],
    ["a provider defined twice", [provider(TWILIO), provider(TWILIO)], "p1.kdl:1: provider 'family-sms' is already defined at p.kdl:1"],
    ["a bad provider name", [provider(TWILIO, "Family SMS")], "p.kdl:1: provider name 'Family SMS' must match ^[a-z][a-z0-9-]{0,63}$"],
    ["a grant naming an undefined provider", [grant(GRANT)], "p.kdl:2: provider 'family-sms' of grant 'messaging-message-send' is not defined"],
    ["a grant without a provider", [provider(TWILIO) + grant(`        contact "+15550100000"`)], "p.kdl:9: grant 'messaging-message-send' needs at least one 'provider'"],
    ["a grant without a contact", [provider(TWILIO) + grant(`        provider "family-sms"`)], "p.kdl:9: grant 'messaging-message-send' needs at least one 'contact'"],
    ["a contact that is not a phone number", [provider(TWILIO) + grant(`${GRANT}\n        contact "alice"`)], "p.kdl:12: contact 'alice' refused: not a phone number in international form (+ and the country code)"],
    ["a contact that is too short", [provider(TWILIO) + grant(`${GRANT}\n        contact "+1555"`)], "p.kdl:12: contact '+1555' refused: not a possible phone number"],
    ["a grant's credential that its provider does not use", [provider(TWILIO) + grant(`${GRANT}\n        credential "other"`)], "p.kdl:9: provider 'family-sms' uses credential 'twilio-main', which grant 'messaging-message-send' does not name"],
    ["a credential on a capability that needs none", [`agent "a" {\n    grant "fs-file-write" {\n        path "/srv/r"\n        credential "x-secret"\n    }\n}`], "p.kdl:4: 'credential' is not used by 'fs-file-write', which needs no secret"],
    ["an unknown node in a grant lists credential among the expected", [provider(TWILIO) + grant(`${GRANT}\n        path "/srv/x"`)], "p.kdl:12: unknown node 'path' in grant 'messaging-message-send' (expected 'contact', 'provider', 'credential', 'messages', 'rate', 'approval')"],
  ];
  for (const [name, texts, expected] of cases) {
    test(name, () => expect(problems(...texts)).toContain(expected));
  }
});

test("viv policy check exits 78 with file:line for an unknown provider kind or setting", () => {
  const dir = mkdtempSync(join(tmpdir(), "viv-providers-"));
  try {
    const file = join(dir, "p.kdl");
    writeFileSync(file, provider(`${TWILIO.replace('"twilio"', '"twillio"')}`) + provider(`${TWILIO}\n    region "us1"`, "other"));
    const p = Bun.spawnSync([join(import.meta.dir, "..", "dist", "bin", "viv"), "policy", "check", file], { env: { PATH: "/usr/bin:/bin" }, stdin: "ignore" });
    expect(p.exitCode).toBe(78);
    expect(p.stdout.toString()).toBe("");
    expect(p.stderr.toString()).toBe(
      `viv: ${file}:2: unknown provider kind 'twillio' (expected ${KINDS})\n` +
      `viv: ${file}:14: unknown setting 'region' for provider kind 'twilio' (expected 'kind', 'url', 'credential', 'account', 'from')\n`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
