// messaging-message-send and its provider kind "twilio" against a loopback server that speaks
// Twilio's documented Messages API (test/fake-twilio.ts): the scope check on canonicalized
// numbers, the request Twilio receives (path, form fields, basic auth), and each way a provider
// can fail, mapped to one error line with exit 69, or 65 for a reply that makes no sense. The
// examples of the generated man page are loaded as a policy.
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { CATALOG } from "../../capabilities/registry.ts";
import { Exit, VivError } from "../../lib/exit.ts";
import { Secret } from "../../lib/secret.ts";
import { loadPolicyText } from "../../policy/load.ts";
import { httpRequest } from "../../providers/http.ts";
import { startFakeTwilio } from "../../test/fake-twilio.ts";
import { messagingMessageSend as cap } from "./index.ts";

const ACCOUNT = "AC0123456789abcdef0123456789abcdef";
const TOKEN = "canary-token-5f4e3d2c1b0a";
const fake = startFakeTwilio({ account: ACCOUNT, token: TOKEN });
afterAll(() => fake.stop());

const scopes = { contact: ["+1 (555) 010-0000", "+44 7700 900123"], provider: ["family-sms", "backup"] };
const provider = (over: Partial<{ url: string; from: string }> = {}) => ({
  name: "family-sms",
  kind: "twilio",
  url: over.url ?? fake.url,
  settings: { account: ACCOUNT, from: over.from ?? "+1 555 010 0001" },
});
const send = async (body: string, opts: { token?: string; url?: string; to?: string } = {}) =>
  await cap.run({ to: opts.to ?? "+15550100000", body }, scopes, { provider: provider({ url: opts.url }), secret: new Secret(opts.token ?? TOKEN, "twilio-main") });

async function failure(p: Promise<unknown>): Promise<[number, string]> {
  try {
    await p;
  } catch (e) {
    if (e instanceof VivError) return [e.code, e.message];
    throw e;
  }
  throw new Error("no error");
}

describe("authorize", () => {
  const cases: [string, Record<string, string>, string | null][] = [
    ["a granted number as written in the grant", { to: "+1 (555) 010-0000" }, null],
    ["the same number in E.164", { to: "+15550100000" }, null],
    ["the same number with dots", { to: "+1.555.010.0000" }, null],
    ["another granted number", { to: "+447700900123" }, null],
    ["a granted provider by name", { to: "+15550100000", provider: "backup" }, null],
    ["a number not granted", { to: "+15550100009" }, "cannot send to '+15550100009': +15550100009 is not a granted contact"],
    ["a granted number with one more digit", { to: "+155501000001" }, "cannot send to '+155501000001': not a possible phone number"],
    ["a UK number close to a granted one", { to: "+447700900124" }, "cannot send to '+447700900124': +447700900124 is not a granted contact"],
    ["a number without its country code", { to: "5550100000" }, "cannot send to '5550100000': not a phone number in international form (+ and the country code)"],
    ["a number with letters", { to: "+1-800-FLOWERS" }, "cannot send to '+1-800-FLOWERS': not a phone number in international form (+ and the country code)"],
    ["a WhatsApp address", { to: "whatsapp:+15550100000" }, "cannot send to 'whatsapp:+15550100000': not a phone number in international form (+ and the country code)"],
    ["an impossible number", { to: "+1555" }, "cannot send to '+1555': not a possible phone number"],
    ["a provider not granted", { to: "+15550100000", provider: "other" }, "cannot send through provider 'other': not granted"],
  ];
  for (const [name, args, why] of cases) {
    test(name, () => expect(cap.authorize({ body: "hi", ...args } as never, scopes)).toBe(why));
  }
});

test("a message reaches the provider as Twilio documents it, with the credential as basic auth", async () => {
  const before = fake.received.length;
  const r = await send("hello there", { to: "+1 (555) 010-0000" });
  expect(r).toEqual({ message_id: expect.stringMatching(/^SM[0-9a-f]{32}$/), status: "queued" });
  expect(fake.received.slice(before)).toEqual([
    { method: "POST", path: `/2010-04-01/Accounts/${ACCOUNT}/Messages.json`, account: ACCOUNT, auth_ok: true, to: "+15550100000", from: "+15550100001", body: "hello there" },
  ]);
});

test("a run outside the scope is refused before any request", async () => {
  const before = fake.received.length;
  expect(await failure(send("hi", { to: "+15550100009" }))).toEqual([Exit.denied, "cannot send to '+15550100009': +15550100009 is not a granted contact"]);
  expect(fake.received.length).toBe(before);
});

test("a run without a provider in its context (not through the broker) is unavailable", async () => {
  expect(await failure(Promise.resolve().then(() => cap.run({ to: "+15550100000", body: "x" }, scopes)))).toEqual([Exit.unavailable, "no provider configured for this call (run it through the broker)"]);
});

describe("provider errors are one line", () => {
  const cases: [string, () => Promise<unknown>, number, string | RegExp][] = [
    ["a wrong credential", () => send("hi", { token: "wrong-token-123" }), 69, "provider 'family-sms' refused the message: Twilio error 20003: Authenticate (HTTP 401)"],
    ["a server error without JSON", () => send("server-error"), 69, "provider 'family-sms' failed: HTTP 500"],
    ["a reply that is not JSON", () => send("garbage"), 65, "provider 'family-sms' sent a reply that is not JSON (HTTP 201)"],
    ["a reply without a message sid", () => send("no-sid"), 65, "provider 'family-sms' sent a reply without a valid message sid"],
    ["a redirect", () => send("redirect"), 69, "provider 'family-sms' failed: redirect (HTTP 302) refused; redirects are never followed"],
    ["a reply over the size cap", () => send("big"), 69, "provider 'family-sms' failed: reply larger than 262144 bytes"],
    ["a provider that is not listening", () => send("hi", { url: "http://127.0.0.1:1" }), 69, /^provider 'family-sms' failed: cannot reach http:\/\/127\.0\.0\.1:1: /],
    ["a provider path that does not exist", () => send("hi", { url: `${fake.url}/nowhere` }), 69, "provider 'family-sms' refused the message: Twilio error 20404: The requested resource was not found (HTTP 404)"],
  ];
  for (const [name, call, code, message] of cases) {
    test(name, async () => {
      const [c, m] = await failure(call());
      expect(c).toBe(code);
      if (typeof message === "string") expect(m).toBe(message);
      else expect(m).toMatch(message);
      expect(m).not.toContain("\n");
    });
  }

  test("a provider that never answers times out", async () => {
    const silent = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Promise<Response>(() => {}) });
    try {
      const r = await failure(httpRequest("slow", `http://127.0.0.1:${silent.port}/`, { method: "GET", headers: {} }, { timeoutMs: 200, maxReplyBytes: 1024 }));
      expect(r).toEqual([Exit.unavailable, "provider 'slow' failed: no reply within 200 ms"]);
    } finally {
      silent.stop(true);
    }
  });

  test("an error that echoes the credential is passed on for the broker to scrub, on one line", async () => {
    const [c, m] = await failure(send("echo-secret"));
    expect(c).toBe(69);
    expect(m).toStartWith("provider 'family-sms' refused the message: Twilio error 20003: token ");
    expect(m).not.toContain("\n");
  });
});

test("the examples of man/messaging-message-send.1 form a valid policy", () => {
  const page = readFileSync(join(import.meta.dir, "..", "..", "man", "messaging-message-send.1"), "utf8");
  const examples = [...page.matchAll(/^\.EX\n([\s\S]*?)^\.EE$/gm)].map((m) => m[1]!.replace(/\\-/g, "-"));
  const grant = examples.find((e) => e.startsWith("grant "))!;
  const prov = examples.find((e) => e.startsWith("provider "))!;
  expect(grant).toBeDefined();
  expect(prov).toBeDefined();
  const p = loadPolicyText([{ file: "man.kdl", text: `${prov}\nagent "assistant" {\n${grant}\n}\n` }], CATALOG);
  expect(p.providers.get("family-sms")!.kind).toBe("twilio");
  expect(p.agents.get("assistant")!.grants.get("messaging-message-send")!.scopes.provider).toEqual(["family-sms"]);
});
