// model-complete: the grant's checks (model patterns, providers) as a table, and run() through the
// broker's model access (broker/model-gateway.ts) against the loopback Anthropic and
// OpenAI-compatible servers: the completion, its usage, the budget's refusal (75), a provider's
// refusal (69) and a reply that is not JSON (65), and the key never in a result. The path through a real jail is in test/bats/model.bats.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AuditStore } from "../../broker/audit.ts";
import { ModelGateway } from "../../broker/model-gateway.ts";
import { CATALOG } from "../registry.ts";
import { Exit, VivError } from "../../lib/exit.ts";
import { stateLayout } from "../../lib/paths.ts";
import { Secret } from "../../lib/secret.ts";
import { loadPolicyText } from "../../policy/load.ts";
import { startFakeAnthropic } from "../../test/fake-anthropic.ts";
import { FAKE_INPUT_TOKENS, FAKE_OUTPUT_TOKENS } from "../../test/fake-model-common.ts";
import { startFakeOpenAI } from "../../test/fake-openai.ts";
import { modelComplete } from "./index.ts";

const KEY = `canary-${crypto.randomUUID()}`;
const anthropic = startFakeAnthropic({ key: KEY });
const openai = startFakeOpenAI({ key: KEY });
/** The state directories of this file's tests, removed after them. */
const states: string[] = [];
afterAll(() => {
  anthropic.stop();
  openai.stop();
  for (const d of states) rmSync(d, { recursive: true, force: true });
});

const scopes = { provider: ["claude", "local"], model: ["claude-*", "llama"] };

test.each([
  [{ model: "claude-haiku", prompt: "x" }, null],
  [{ model: "llama", prompt: "x", provider: "local" }, null],
  [{ model: "llama2", prompt: "x" }, "model 'llama2' is not granted"],
  [{ model: "Claude-haiku", prompt: "x" }, "model 'Claude-haiku' is not granted"],
  [{ model: "claude-haiku", prompt: "x", provider: "gpt" }, "provider 'gpt' is not granted"],
])("authorize %j", (args, expected) => {
  expect(modelComplete.authorize(args, scopes)).toBe(expected);
});

test("run without the broker's model access is unavailable (69)", async () => {
  expect(modelComplete.run({ model: "claude-x", prompt: "x" }, scopes, {})).rejects.toMatchObject({ code: Exit.unavailable });
});

function access(budget: number, { key = KEY, claudeUrl = anthropic.url } = {}) {
  const state = mkdtempSync(join(tmpdir(), "mdl-cap-"));
  states.push(state);
  const policy = loadPolicyText([{ file: "p.kdl", text: `
provider "claude" { kind "anthropic"; url "${claudeUrl}"; credential "k"; }
provider "local" { kind "openai-compatible"; url "${openai.url}"; credential "k"; }
agent "mdl-cap" { grant "model-complete" { provider "claude"; provider "local"; model "claude-*"; model "llama"; tokens max=${budget} per="hour"; } }` }], CATALOG);
  const gw = new ModelGateway({ state, audit: new AuditStore(stateLayout(state).audit), policy: () => policy, secrets: () => ({ get: (id) => new Secret(KEY, id), markUsed() {} }), nextConn: () => 1 });
  const grant = policy.agents.get("mdl-cap")!.grants.get("model-complete")!;
  const ctx = (name: string) => {
    const p = policy.providers.get(name)!;
    return gw.access("mdl-cap", grant, { provider: { name: p.name, kind: p.kind, url: p.url, settings: p.settings }, secret: new Secret(key, "k") });
  };
  return { grant, ctx };
}

test("a completion through an anthropic and an openai-compatible provider, with usage; the fields carry the amounts", async () => {
  const { grant, ctx } = access(100_000);
  const a = ctx("claude");
  const r = await modelComplete.run({ model: "claude-x", prompt: "hello", max_tokens: 64 }, grant.scopes, { model: a.model });
  expect(r).toEqual({ provider: "claude", model: "claude-x", text: "scripted reply to: hello", stop_reason: "end_turn", input_tokens: FAKE_INPUT_TOKENS, output_tokens: FAKE_OUTPUT_TOKENS });
  expect(a.fields).toEqual({ reserved: 64 + 5, input_tokens: FAKE_INPUT_TOKENS, output_tokens: FAKE_OUTPUT_TOKENS, tokens: FAKE_INPUT_TOKENS + FAKE_OUTPUT_TOKENS });
  const o = ctx("local");
  const r2 = await modelComplete.run({ model: "llama", prompt: "hi", provider: "local", max_tokens: 3 }, grant.scopes, { model: o.model });
  expect(r2).toMatchObject({ provider: "local", text: "scripted reply to: hi", stop_reason: "length", output_tokens: 3 });
  expect((openai.received.at(-1)!.body as any).max_tokens).toBe(3);
});

test("a prompt the budget cannot cover is refused with 75 before anything is sent", async () => {
  const { grant, ctx } = access(100);
  const before = anthropic.received.length;
  const a = ctx("claude");
  const err = await Promise.resolve()
    .then(() => modelComplete.run({ model: "claude-x", prompt: "hello", max_tokens: 96 }, grant.scopes, { model: a.model }))
    .then(() => null, (e: VivError) => e);
  expect(err).toBeInstanceOf(VivError);
  expect(err?.code).toBe(Exit.temporary);
  expect(err?.message).toBe("token budget of 100 per hour would be exceeded: 0 used or reserved, this request needs 101");
  expect(anthropic.received.length).toBe(before);
});

test("a provider's refusal is 69 with the API's own message, in either wire format; a reply that is not JSON is 65", async () => {
  const failure = (run: () => unknown) => Promise.resolve().then(run).then(() => null, (e: VivError) => [e.code, e.message]);
  const { grant, ctx } = access(100_000, { key: "not-the-key" });
  const claude = await failure(() => modelComplete.run({ model: "claude-x", prompt: "hi" }, grant.scopes, { model: ctx("claude").model }));
  expect(claude).toEqual([Exit.unavailable, "provider 'claude' refused the request: HTTP 401: invalid x-api-key"]);
  const local = await failure(() => modelComplete.run({ model: "llama", prompt: "hi", provider: "local" }, grant.scopes, { model: ctx("local").model }));
  expect(local).toMatchObject([Exit.unavailable, expect.stringMatching(/^provider 'local' refused the request: HTTP 401: \S/)]);
  // A proxy's error page in place of the API.
  const page = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("<html>502 Bad Gateway</html>", { status: 502 }) });
  try {
    const proxied = access(100_000, { claudeUrl: `http://127.0.0.1:${page.port}` });
    const r = await failure(() => modelComplete.run({ model: "claude-x", prompt: "hi" }, proxied.grant.scopes, { model: proxied.ctx("claude").model }));
    expect(r).toEqual([Exit.data, "provider 'claude' sent a reply that is not JSON (HTTP 502)"]);
  } finally {
    page.stop(true);
  }
});
