// The governed model endpoint (broker/model-gateway.ts) on its real Unix socket, with a real audit
// store, against the loopback Anthropic and OpenAI servers (test/fake-anthropic.ts,
// test/fake-openai.ts): the client's key is dropped and the vault's injected, streams pass
// through event by event, usage settles the token budget, a model outside the grant and a request
// past the ceiling are refused in the API's own error shape and recorded, concurrent requests
// never overrun, and a restarted gateway rebuilds the budget from the log. The key is never in a
// reply or a record. The jail and the official SDKs are tested in test/bats/model.bats.
import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AuditStore } from "../broker/audit.ts";
import type { SecretSource } from "../broker/credentials.ts";
import { MODEL_CAP, ModelGateway } from "../broker/model-gateway.ts";
import { CATALOG } from "../capabilities/registry.ts";
import { Exit, VivError } from "../lib/exit.ts";
import { stateLayout } from "../lib/paths.ts";
import { Secret } from "../lib/secret.ts";
import { loadPolicyText } from "../policy/load.ts";
import { startFakeAnthropic } from "./fake-anthropic.ts";
import { FAKE_INPUT_TOKENS, FAKE_OUTPUT_TOKENS } from "./fake-model-common.ts";
import { startFakeOpenAI } from "./fake-openai.ts";

const KEY = `canary-model-key-${crypto.randomUUID()}`;
const anthropic = startFakeAnthropic({ key: KEY });
const openai = startFakeOpenAI({ key: KEY });
/** The state directories of this file's tests, removed after them. */
const states: string[] = [];
afterAll(() => {
  anthropic.stop();
  openai.stop();
  for (const d of states) rmSync(d, { recursive: true, force: true });
});

const BUDGET = 20000;
function setup(budget = BUDGET) {
  const state = mkdtempSync(join(tmpdir(), "mdl-gw-"));
  states.push(state);
  const policy = loadPolicyText([{
    file: "p.kdl",
    text: `
provider "claude" { kind "anthropic"; url "${anthropic.url}"; credential "anthropic-key"; }
provider "gpt" { kind "openai"; url "${openai.url}"; credential "openai-key"; }
provider "local" { kind "openai-compatible"; url "${openai.url}"; credential "openai-key"; }
provider "other" { kind "anthropic"; url "${anthropic.url}"; credential "anthropic-key"; }
agent "mdl-a" {
    grant "model-complete" { provider "claude"; provider "gpt"; provider "local"; model "claude-*"; model "gpt-4o*"; model "llama"; tokens max=${budget} per="day"; }
}
agent "mdl-none" { grant "fs-file-write" { path "/srv/reports"; } }`,
  }], CATALOG);
  const secrets: SecretSource = {
    get(id) {
      if (id !== "anthropic-key" && id !== "openai-key") throw new VivError(Exit.unavailable, `secret '${id}' is not in the vault`);
      return new Secret(KEY, id);
    },
    markUsed() {},
  };
  const audit = new AuditStore(stateLayout(state).audit);
  let conn = 1;
  const make = () => new ModelGateway({ state, audit, policy: () => policy, secrets: () => secrets, nextConn: () => conn++ });
  const gw = make();
  const { mkdirSync } = require("node:fs");
  mkdirSync(stateLayout(state).agentRun("mdl-a"), { recursive: true });
  gw.listen(policy.agents.get("mdl-a")!);
  const sock = stateLayout(state).agentModelSocket("mdl-a");
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`http://localhost${path}`, { unix: sock, method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) } as RequestInit);
  return { state, policy, audit, gw, post, make, sock };
}

const records = (audit: AuditStore) => audit.recentRecords("1970-01-01T00:00:00Z").filter((r) => r.cap === MODEL_CAP);

let env: ReturnType<typeof setup>;
beforeEach(() => {
  anthropic.received.length = 0;
  openai.received.length = 0;
});

describe("anthropic", () => {
  test("a message goes out with the vault's key, not the client's, and headers pass; usage is recorded", async () => {
    env = setup();
    const res = await env.post("/claude/v1/messages", { model: "claude-sonnet-4-5", max_tokens: 100, messages: [{ role: "user", content: "hello" }] }, { "x-api-key": "client-key", "anthropic-version": "2023-06-01", "anthropic-beta": "tools-2024-04-04" });
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(body.content[0].text).toBe("scripted reply to: hello");
    expect(anthropic.received[0]!.key_ok).toBe(true);
    expect(anthropic.received[0]!.headers["anthropic-beta"]).toBe("tools-2024-04-04");
    const rs = records(env.audit);
    expect(rs.map((r) => r.kind)).toEqual(["call", "result"]);
    expect(rs[1]!.fields).toMatchObject({ exit: 0, status: 200, input_tokens: FAKE_INPUT_TOKENS, output_tokens: FAKE_OUTPUT_TOKENS, tokens: FAKE_INPUT_TOKENS + FAKE_OUTPUT_TOKENS });
    expect(rs[0]!.fields).toMatchObject({ via: "endpoint", provider: "claude", model: "claude-sonnet-4-5", max_tokens: 100 });
    expect(env.gw.tokens.used(`mdl-a\0${MODEL_CAP}`, env.policy.agents.get("mdl-a")!.grants.get(MODEL_CAP)!.tokenBudget!)).toBe(FAKE_INPUT_TOKENS + FAKE_OUTPUT_TOKENS);
  });

  test("beta=true, which Anthropic's SDKs add, reaches the API and the record; other query parameters do not", async () => {
    env = setup();
    const res = await env.post("/claude/v1/messages?beta=true&key=agent-chosen", { model: "claude-sonnet-4-5", max_tokens: 10, messages: [{ role: "user", content: "hi" }] }, { "anthropic-version": "2023-06-01" });
    expect(res.status).toBe(200);
    expect(anthropic.received[0]!.query).toBe("?beta=true");
    expect(records(env.audit)[0]!.fields).toMatchObject({ api: "/v1/messages", query: "beta=true" });
    // Without a query, none is added.
    await env.post("/claude/v1/messages", { model: "claude-sonnet-4-5", max_tokens: 10, messages: [{ role: "user", content: "hi" }] }, { "anthropic-version": "2023-06-01" });
    expect(anthropic.received[1]!.query).toBe("");
    expect(records(env.audit)[2]!.fields.query).toBeUndefined();
  });

  test("a stream passes event by event and its usage settles the budget", async () => {
    env = setup();
    const res = await env.post("/claude/v1/messages", { model: "claude-x", max_tokens: 50, stream: true, messages: [{ role: "user", content: "hi" }] });
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const text = await res.text();
    expect(text).toContain("event: message_start");
    expect(text).toContain("event: message_stop");
    await Bun.sleep(20);
    const result = records(env.audit).find((r) => r.kind === "result")!;
    expect(result.fields).toMatchObject({ status: 200, input_tokens: FAKE_INPUT_TOKENS, output_tokens: FAKE_OUTPUT_TOKENS });
  });

  test("a model outside the grant gets Anthropic's permission_error and reaches nobody", async () => {
    env = setup();
    const res = await env.post("/claude/v1/messages", { model: "mistral-large", max_tokens: 10, messages: [{ role: "user", content: "x" }] });
    expect(res.status).toBe(403);
    expect(res.headers.get("x-should-retry")).toBe("false");
    expect(await res.json()).toEqual({ type: "error", error: { type: "permission_error", message: "vivary: model 'mistral-large' is not granted (granted: claude-*, gpt-4o*, llama)" } });
    expect(anthropic.received.length).toBe(0);
    expect(records(env.audit).map((r) => [r.kind, r.fields.stage, r.fields.exit])).toEqual([["deny", "authorize", 77]]);
  });

  test("a provider not granted, a path not forwarded and a request without max_tokens are refused", async () => {
    env = setup();
    expect((await env.post("/other/v1/messages", { model: "claude-x", max_tokens: 10, messages: [] })).status).toBe(404);
    expect((await env.post("/claude/v1/complete", { model: "claude-x", max_tokens: 10 })).status).toBe(404);
    const r = await env.post("/claude/v1/messages", { model: "claude-x", messages: [] });
    expect(r.status).toBe(400);
    expect(((await r.json()) as any).error.type).toBe("invalid_request_error");
    expect(anthropic.received.length).toBe(0);
  });

  test("the key the provider echoes is scrubbed from the reply and the record", async () => {
    env = setup();
    const res = await env.post("/claude/v1/messages", { model: "claude-x", max_tokens: 50, messages: [{ role: "user", content: "echo-key" }] });
    const text = await res.text();
    expect(text).not.toContain(KEY);
    expect(text).toContain("[secret scrubbed]");
    const raw = readFileSync(stateLayout(env.state).audit);
    expect(raw.includes(Buffer.from(KEY))).toBe(false);
  });
});

describe("openai", () => {
  test("a chat completion goes out with the vault's key as Bearer; a default bound is set when none is given", async () => {
    env = setup();
    const res = await env.post("/gpt/v1/chat/completions", { model: "gpt-4o-mini", messages: [{ role: "user", content: "hello" }] }, { authorization: "Bearer client-key" });
    expect(res.status).toBe(200);
    expect(((await res.json()) as any).choices[0].message.content).toBe("scripted reply to: hello");
    expect(openai.received[0]!.key_ok).toBe(true);
    expect((openai.received[0]!.body as any).max_completion_tokens).toBe(4096);
    expect(records(env.audit).find((r) => r.kind === "call")!.fields.max_tokens).toBe(4096);
  });

  test("a streamed chat completion asks for usage and settles it", async () => {
    env = setup();
    const res = await env.post("/local/v1/chat/completions", { model: "llama", max_tokens: 20, stream: true, messages: [{ role: "user", content: "hi" }] });
    const text = await res.text();
    expect(text).toContain("data: [DONE]");
    expect((openai.received[0]!.body as any).stream_options).toEqual({ include_usage: true });
    await Bun.sleep(20);
    expect(records(env.audit).find((r) => r.kind === "result")!.fields).toMatchObject({ input_tokens: FAKE_INPUT_TOKENS, output_tokens: FAKE_OUTPUT_TOKENS });
  });

  test("the Responses API, whole and streamed, is forwarded for kind openai only", async () => {
    env = setup();
    const whole = await env.post("/gpt/v1/responses", { model: "gpt-4o", input: "hi", max_output_tokens: 30 });
    expect(((await whole.json()) as any).output[0].content[0].text).toBe("scripted reply to: hi");
    const streamed = await env.post("/gpt/v1/responses", { model: "gpt-4o", input: "hi", stream: true });
    expect(await streamed.text()).toContain("event: response.completed");
    await Bun.sleep(20);
    const results = records(env.audit).filter((r) => r.kind === "result");
    expect(results.map((r) => r.fields.tokens)).toEqual([FAKE_INPUT_TOKENS + FAKE_OUTPUT_TOKENS, FAKE_INPUT_TOKENS + FAKE_OUTPUT_TOKENS]);
    expect((await env.post("/local/v1/responses", { model: "llama", input: "hi" })).status).toBe(404);
  });

  test("a model outside the grant gets OpenAI's error shape", async () => {
    env = setup();
    const res = await env.post("/gpt/v1/chat/completions", { model: "o3", messages: [] });
    expect(res.status).toBe(403);
    expect(((await res.json()) as any).error).toMatchObject({ type: "permission_error", code: "model_not_allowed" });
  });
});

describe("token budget", () => {
  test("the request whose reservation would cross the ceiling is refused with 429 and recorded as exit 75", async () => {
    env = setup(600);
    const body = { model: "claude-x", max_tokens: 400, messages: [{ role: "user", content: "hi" }] };
    expect((await env.post("/claude/v1/messages", body)).status).toBe(200);
    const res = await env.post("/claude/v1/messages", { ...body, max_tokens: 590 });
    expect(res.status).toBe(429);
    expect(res.headers.get("x-should-retry")).toBe("false");
    expect(((await res.json()) as any).error.type).toBe("rate_limit_error");
    expect(anthropic.received.length).toBe(1);
    const deny = records(env.audit).find((r) => r.kind === "deny")!;
    expect(deny.fields).toMatchObject({ stage: "budget", exit: 75 });
  });

  test("concurrent streamed requests never reserve past the ceiling", async () => {
    env = setup(2000);
    const body = JSON.stringify({ model: "claude-x", max_tokens: 300, stream: true, messages: [{ role: "user", content: "slow" }] });
    const each = 300 + Buffer.byteLength(body);
    const all = await Promise.all(Array.from({ length: 12 }, () => env.post("/claude/v1/messages", JSON.parse(body))));
    const ok = all.filter((r) => r.status === 200).length;
    await Promise.all(all.map((r) => r.text()));
    expect(ok).toBe(Math.floor(2000 / each));
    expect(all.filter((r) => r.status === 429).length).toBe(12 - ok);
    expect(anthropic.received.length).toBe(ok);
  });

  test("a restarted gateway rebuilds the budget from the log", async () => {
    env = setup(600);
    expect((await env.post("/claude/v1/messages", { model: "claude-x", max_tokens: 100, messages: [{ role: "user", content: "hi" }] })).status).toBe(200);
    const rate = env.policy.agents.get("mdl-a")!.grants.get(MODEL_CAP)!.tokenBudget!;
    const before = env.gw.tokens.used(`mdl-a\0${MODEL_CAP}`, rate);
    await env.gw.drain();
    const again = env.make();
    again.restore();
    expect(before).toBe(FAKE_INPUT_TOKENS + FAKE_OUTPUT_TOKENS);
    expect(again.tokens.used(`mdl-a\0${MODEL_CAP}`, rate)).toBe(before);
    const fresh = new ModelGateway({ state: env.state, audit: env.audit, policy: () => env.policy, secrets: () => ({ get: () => new Secret("x", "x"), markUsed() {} }), nextConn: () => 999 });
    expect(fresh.tokens.used(`mdl-a\0${MODEL_CAP}`, rate)).toBe(0); // negative control: without restore() nothing is known
  });
});

test("after a crash, a call with no outcome counts at its reservation; a model-complete call's follows from its arguments", async () => {
  env = setup(10_000);
  const rate = env.policy.agents.get("mdl-a")!.grants.get(MODEL_CAP)!.tokenBudget!;
  await env.audit.append({ agent: "mdl-a", kind: "call", cap: MODEL_CAP, fields: { conn: 500, via: "endpoint", reserved: 700 } });
  await env.audit.append({ agent: "mdl-a", kind: "call", cap: MODEL_CAP, fields: { conn: 501, args: { model: "claude-x", prompt: "hello", max_tokens: 100 } } });
  await env.audit.append({ agent: "mdl-a", kind: "call", cap: MODEL_CAP, fields: { conn: 502, args: { model: "claude-x", prompt: "hi", max_tokens: 1000 } } });
  await env.audit.append({ agent: "mdl-a", kind: "result", cap: MODEL_CAP, fields: { conn: 502, exit: 75, tokens: 0 } });
  const again = env.make();
  again.restore();
  expect(again.tokens.used(`mdl-a\0${MODEL_CAP}`, rate)).toBe(700 + 105);
});

/** Posts over a raw connection and hangs up once the reply holds `until` ("": its first bytes); resolves to what was read. */
async function leaveAt(sock: string, path: string, body: string, until: string): Promise<string> {
  const { connect } = await import("node:net");
  return new Promise<string>((resolve, reject) => {
    let got = "";
    const c = connect(sock, () => c.write(`POST ${path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`));
    c.on("data", (d) => {
      got += d.toString();
      if (got.includes(until)) {
        c.destroy();
        resolve(got);
      }
    });
    c.once("error", reject);
    c.once("close", () => resolve(got));
  });
}

async function resultRecord(audit: AuditStore) {
  for (let i = 0; i < 100; i++) {
    const r = records(audit).find((x) => x.kind === "result");
    if (r) return r;
    await Bun.sleep(20);
  }
  throw new Error("no result record");
}

// A client may hang up as soon as it has the final event (Codex does), before the upstream stream
// ends: the reply was whole, so the record is not cut short and the budget spends what was used.
// The loopback servers pause after each event of a "slow" reply, the final one too.
test.each([
  ["anthropic", "/claude/v1/messages", { model: "claude-x", max_tokens: 300 }, "message_stop"],
  ["chat completions", "/gpt/v1/chat/completions", { model: "gpt-4o", max_tokens: 300 }, "[DONE]"],
  ["responses", "/gpt/v1/responses", { model: "gpt-4o", max_output_tokens: 300 }, "response.completed"],
])("%s: a client that leaves right after the final event has a whole reply, settled at its usage", async (_, path, fields, final) => {
  env = setup(100_000);
  const input = path.endsWith("responses") ? { input: "slow" } : { messages: [{ role: "user", content: "slow" }] };
  const got = await leaveAt(env.sock, path, JSON.stringify({ ...fields, ...input, stream: true }), final);
  expect(got).toContain(final);
  const result = await resultRecord(env.audit);
  expect(result.fields.reason).toBeUndefined();
  expect(result.fields.tokens).toBe(FAKE_INPUT_TOKENS + FAKE_OUTPUT_TOKENS);
  expect(result.fields.exit).toBe(Exit.ok);
});

test("a stream the client leaves midway is recorded as cut short and spends its whole reservation", async () => {
  env = setup(100_000);
  // A raw connection, closed after the first bytes of the reply: the client goes away.
  const body = JSON.stringify({ model: "claude-x", max_tokens: 300, stream: true, messages: [{ role: "user", content: "slow" }] });
  await leaveAt(env.sock, "/claude/v1/messages", body, "");
  const result = await resultRecord(env.audit);
  const call = records(env.audit).find((r) => r.kind === "call")!;
  expect(result.fields.reason).toBe("the client closed the stream");
  expect(result.fields.tokens).toBe(call.fields.reserved);
  expect(result.fields.tokens as number).toBeGreaterThan(300);
});
