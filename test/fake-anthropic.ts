// A loopback server that speaks Anthropic's Messages API for tests: POST /v1/messages with the key
// in x-api-key and an anthropic-version header. It answers as the API documents: a Message object
// ({id, type:"message", role, content:[{type:"text",text}], model, stop_reason, stop_sequence,
// usage:{input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens}}), or
// with stream:true the event stream message_start, content_block_start, ping,
// content_block_delta (text_delta, or input_json_delta of a tool_use block), content_block_stop,
// message_delta (stop_reason and cumulative usage), message_stop; errors as {type:"error",error:{type,message}} with a request-id header.
// Scripts and records: test/fake-model-common.ts; a caller may give a script of its own (test/scripts-claude.ts),
// whose answer may also name the usage a reply reports.
// As a program: bun test/fake-anthropic.ts --key-file FILE [--log FILE] [--pause-ms N] [--plan FILE].
import { FAKE_INPUT_TOKENS, FAKE_OUTPUT_TOKENS, json, lastUserText, main, record, script, sse, type FakeModel, type PlanStep, type Received, type Script } from "./fake-model-common.ts";

/** What a script answers: a text or a tool call, and optionally the token counts the reply reports. */
export type AnthropicScript = (body: any, key: string) => Script & { usage?: { input_tokens: number; output_tokens: number } };

const error = (status: number, type: string, message: string) => json(status, { type: "error", error: { type, message } }, { "request-id": "req_fake_error" });

export function startFakeAnthropic(opts: { key: string; log?: string; pauseMs?: number; plan?: PlanStep[]; script?: AnthropicScript }): FakeModel {
  const received: Received[] = [];
  let n = 0;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const url = new URL(req.url);
      const body: any = await req.json().catch(() => null);
      const key = req.headers.get("x-api-key") ?? "";
      const headers: Record<string, string> = {};
      for (const h of ["anthropic-version", "anthropic-beta", "authorization"]) if (req.headers.get(h)) headers[h] = h === "authorization" ? "(present)" : req.headers.get(h)!;
      const r: Received = { api: "anthropic", path: url.pathname, query: url.search, key_ok: key === opts.key, placeholder_seen: key.startsWith("vivary-") || (req.headers.get("authorization") ?? "").includes("vivary-"), headers, model: body?.model ?? null, stream: body?.stream === true, body };
      record(received, opts.log, r);
      if (url.pathname !== "/v1/messages" || req.method !== "POST") return error(404, "not_found_error", "Not found");
      if (!r.key_ok) return error(401, "authentication_error", "invalid x-api-key");
      if (!req.headers.get("anthropic-version")) return error(400, "invalid_request_error", "anthropic-version: header is required");
      if (!body || typeof body.model !== "string" || !Number.isInteger(body.max_tokens) || !Array.isArray(body.messages)) return error(400, "invalid_request_error", "model, max_tokens and messages are required");
      const id = `msg_fake${String(++n).padStart(6, "0")}`;
      const said: ReturnType<AnthropicScript> = opts.script ? opts.script(body, opts.key) : script(body, opts.key, opts.plan);
      const output = said.usage ? Math.min(body.max_tokens, said.usage.output_tokens) : Math.min(body.max_tokens, FAKE_OUTPUT_TOKENS);
      const stop = said.kind === "tool" ? "tool_use" : output < (said.usage?.output_tokens ?? FAKE_OUTPUT_TOKENS) ? "max_tokens" : "end_turn";
      const usage = { input_tokens: said.usage?.input_tokens ?? FAKE_INPUT_TOKENS, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: output };
      const hdr = { "request-id": `req_fake${n}` };
      const toolId = `toolu_fake${String(n).padStart(6, "0")}`;
      const block = said.kind === "tool" ? { type: "tool_use", id: toolId, name: said.name, input: said.input } : { type: "text", text: said.text };
      if (!body.stream) {
        return json(200, { id, type: "message", role: "assistant", model: body.model, content: [block], stop_reason: stop, stop_sequence: null, usage }, hdr);
      }
      const whole = said.kind === "tool" ? JSON.stringify(said.input) : said.text;
      const half = Math.ceil(whole.length / 2);
      const delta = (piece: string) => (said.kind === "tool" ? { type: "input_json_delta", partial_json: piece } : { type: "text_delta", text: piece });
      return sse(
        [
          { event: "message_start", data: { type: "message_start", message: { id, type: "message", role: "assistant", model: body.model, content: [], stop_reason: null, stop_sequence: null, usage: { ...usage, output_tokens: 1 } } } },
          { event: "content_block_start", data: { type: "content_block_start", index: 0, content_block: said.kind === "tool" ? { ...block, input: {} } : { type: "text", text: "" } } },
          { event: "ping", data: { type: "ping" } },
          { event: "content_block_delta", data: { type: "content_block_delta", index: 0, delta: delta(whole.slice(0, half)) } },
          { event: "content_block_delta", data: { type: "content_block_delta", index: 0, delta: delta(whole.slice(half)) } },
          { event: "content_block_stop", data: { type: "content_block_stop", index: 0 } },
          { event: "message_delta", data: { type: "message_delta", delta: { stop_reason: stop, stop_sequence: null }, usage: { output_tokens: output } } },
          { event: "message_stop", data: { type: "message_stop" } },
        ],
        lastUserText(body) === "slow" ? Math.max(opts.pauseMs ?? 0, 100) : (opts.pauseMs ?? 0),
        hdr,
      );
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, received, stop: () => server.stop(true) };
}

if (import.meta.main) main("fake-anthropic", startFakeAnthropic);
