// Runs inside a jail under node: the official SDKs (@anthropic-ai/sdk, openai), configured only by
// the environment viv run sets (ANTHROPIC_BASE_URL, OPENAI_BASE_URL and placeholder keys), make one
// scripted kind of request against the jail's model endpoint and print one line of JSON with what
// came back. Used by test/bats/model.bats. usage: node model-sdk-client.mjs CASE [N]
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";

const [, , which, nArg] = process.argv;
const anthropic = () => new Anthropic();
const openai = () => new OpenAI();
const CLAUDE = "claude-sonnet-4-5";
const GPT = "gpt-4o-mini";
const user = (content) => [{ role: "user", content }];
const out = (v) => process.stdout.write(`${JSON.stringify(v)}\n`);
const failure = (e) => ({ error: e.constructor.name, status: e.status ?? null, type: e.error?.error?.type ?? e.error?.type ?? null, message: e.error?.error?.message ?? e.error?.message ?? e.message });

const cases = {
  async "anthropic"() {
    const m = await anthropic().messages.create({ model: CLAUDE, max_tokens: 200, messages: user("hello") });
    out({ text: m.content[0].text, stop: m.stop_reason, usage: m.usage });
  },
  async "anthropic-stream"() {
    const deltas = [];
    const s = anthropic().messages.stream({ model: CLAUDE, max_tokens: 200, messages: user("stream please") });
    s.on("text", (t) => deltas.push(t));
    const m = await s.finalMessage();
    out({ deltas, text: m.content[0].text, usage: m.usage });
  },
  async "anthropic-denied"() {
    try {
      await anthropic().messages.create({ model: "claude-opus-4", max_tokens: 10, messages: user("x") });
      out({ ok: true });
    } catch (e) {
      out(failure(e));
    }
  },
  async "openai-chat"() {
    const c = await openai().chat.completions.create({ model: GPT, messages: user("hello") });
    out({ text: c.choices[0].message.content, finish: c.choices[0].finish_reason, usage: c.usage });
  },
  async "openai-chat-stream"() {
    const deltas = [];
    let usage = null;
    const s = await openai().chat.completions.create({ model: GPT, max_tokens: 100, stream: true, messages: user("stream please") });
    for await (const chunk of s) {
      if (chunk.choices[0]?.delta?.content) deltas.push(chunk.choices[0].delta.content);
      if (chunk.usage) usage = chunk.usage;
    }
    out({ deltas, usage });
  },
  async "openai-responses"() {
    const r = await openai().responses.create({ model: GPT, input: "hello", max_output_tokens: 100 });
    out({ text: r.output_text, usage: r.usage });
  },
  async "openai-responses-stream"() {
    const types = [];
    let text = "";
    const s = await openai().responses.create({ model: GPT, input: "stream please", stream: true });
    for await (const e of s) {
      types.push(e.type);
      if (e.type === "response.output_text.delta") text += e.delta;
    }
    out({ text, last: types.at(-1), count: types.length });
  },
  async "compatible-chat"() {
    // An openai-compatible provider (vLLM, llama.cpp's server, Ollama) under its own prefix of the endpoint.
    const local = new OpenAI({ baseURL: process.env.OPENAI_BASE_URL.replace(/\/[^/]+\/v1$/, "/local/v1") });
    const c = await local.chat.completions.create({ model: "llama-3.1-8b", max_tokens: 50, messages: user("hello") });
    const deltas = [];
    const s = await local.chat.completions.create({ model: "llama-3.1-8b", max_tokens: 50, stream: true, messages: user("stream please") });
    for await (const chunk of s) if (chunk.choices[0]?.delta?.content) deltas.push(chunk.choices[0].delta.content);
    let responses;
    try {
      await local.responses.create({ model: "llama-3.1-8b", input: "hi" });
      responses = "forwarded";
    } catch (e) {
      responses = e.status;
    }
    out({ text: c.choices[0].message.content, deltas, responses });
  },
  async "openai-denied"() {
    try {
      await openai().chat.completions.create({ model: "o3", messages: user("x") });
      out({ ok: true });
    } catch (e) {
      out(failure(e));
    }
  },
  async "anthropic-tools"() {
    const tools = [{ name: "fs-file-write", description: "Write a file", input_schema: { type: "object", properties: { path: { type: "string" } }, required: ["path"] } }];
    const messages = user('call fs-file-write {"path":"/srv/a.md"}');
    const first = await anthropic().messages.create({ model: CLAUDE, max_tokens: 200, tools, messages });
    const streamed = await anthropic().messages.stream({ model: CLAUDE, max_tokens: 200, tools, messages }).finalMessage();
    const use = first.content.find((b) => b.type === "tool_use");
    const done = await anthropic().messages.create({
      model: CLAUDE, max_tokens: 200, tools,
      messages: [...messages, { role: "assistant", content: first.content }, { role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: "written" }] }],
    });
    out({ stop: first.stop_reason, call: [use.name, use.input], streamed: streamed.content.map((b) => [b.type, b.name, b.input]), answer: done.content[0].text });
  },
  async "openai-tools"() {
    const tools = [{ type: "function", function: { name: "fs-file-write", parameters: { type: "object", properties: { path: { type: "string" } } } } }];
    const messages = user('call fs-file-write {"path":"/srv/a.md"}');
    const first = await openai().chat.completions.create({ model: GPT, tools, messages });
    const call = first.choices[0].message.tool_calls[0];
    let streamedArgs = "";
    let streamedName = null;
    for await (const c of await openai().chat.completions.create({ model: GPT, tools, messages, stream: true })) {
      for (const t of c.choices[0]?.delta?.tool_calls ?? []) {
        streamedName ??= t.function?.name ?? null;
        streamedArgs += t.function?.arguments ?? "";
      }
    }
    const done = await openai().chat.completions.create({ model: GPT, tools, messages: [...messages, first.choices[0].message, { role: "tool", tool_call_id: call.id, content: "written" }] });
    const rTools = [{ type: "function", name: "fs-file-write", parameters: { type: "object", properties: { path: { type: "string" } } } }];
    const r1 = await openai().responses.create({ model: GPT, tools: rTools, input: 'call fs-file-write {"path":"/srv/a.md"}' });
    const fc = r1.output.find((i) => i.type === "function_call");
    const r2 = await openai().responses.create({ model: GPT, tools: rTools, input: [{ role: "user", content: 'call fs-file-write {"path":"/srv/a.md"}' }, fc, { type: "function_call_output", call_id: fc.call_id, output: "written" }] });
    out({ finish: first.choices[0].finish_reason, call: [call.function.name, JSON.parse(call.function.arguments)], streamed: [streamedName, JSON.parse(streamedArgs)], answer: done.choices[0].message.content, responses: [fc.name, JSON.parse(fc.arguments), r2.output_text] });
  },
  async "anthropic-many"() {
    const n = Number(nArg ?? 10);
    const all = await Promise.allSettled(Array.from({ length: n }, () => anthropic().messages.stream({ model: CLAUDE, max_tokens: 500, messages: user("slow") }).finalMessage()));
    out({
      ok: all.filter((r) => r.status === "fulfilled").length,
      refused: all.filter((r) => r.status === "rejected" && r.reason.status === 429).length,
      other: all.filter((r) => r.status === "rejected" && r.reason.status !== 429).map((r) => failure(r.reason)),
      types: [...new Set(all.filter((r) => r.status === "rejected").map((r) => r.reason.error?.error?.type))],
    });
  },
};

if (!cases[which]) {
  process.stderr.write(`model-sdk-client: unknown case '${which}'\n`);
  process.exit(64);
}
await cases[which]();
