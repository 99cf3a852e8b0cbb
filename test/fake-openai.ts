// A loopback server that speaks OpenAI's Chat Completions and Responses APIs for tests, with the key
// as Authorization: Bearer. POST /v1/chat/completions answers a chat.completion object ({id,
// object, created, model, choices:[{index, message:{role, content, refusal}, logprobs,
// finish_reason}], usage:{prompt_tokens, completion_tokens, total_tokens}}), or with stream:true
// chat.completion.chunk events ending in data: [DONE] (tool calls as tool_calls deltas, finish_reason
// "tool_calls"), the last chunk before it carrying usage
// (with empty choices) only when stream_options.include_usage is set, as the API does. POST
// /v1/responses answers a response object (output:[{type:"message", content:[{type:"output_text"}]}],
// usage:{input_tokens, output_tokens, total_tokens}) or the events response.created,
// response.in_progress, response.output_item.added, response.content_part.added,
// response.output_text.delta, response.output_text.done, response.content_part.done,
// response.output_item.done, response.completed, each with a sequence_number (a function_call item
// streams as response.function_call_arguments.delta and .done; a call of a tool offered inside a
// tool namespace names it in its "namespace" member). Errors are
// {error:{message,type,param,code}}. Scripts and records: test/fake-model-common.ts; a caller may
// pass a script of its own (test/scripts-codex.ts).
// As a program: bun test/fake-openai.ts --key-file FILE [--log FILE] [--pause-ms N] [--plan FILE].
import { FAKE_INPUT_TOKENS, FAKE_OUTPUT_TOKENS, json, lastUserText, main, record, script, sse, type FakeModel, type PlanStep, type Received, type Script } from "./fake-model-common.ts";

const error = (status: number, type: string, code: string | null, message: string) => json(status, { error: { message, type, param: null, code } }, { "x-request-id": "req_fake_error" });

export function startFakeOpenAI(opts: { key: string; log?: string; pauseMs?: number; plan?: PlanStep[]; script?: (body: any, key: string) => Script & { namespace?: string } }): FakeModel {
  const received: Received[] = [];
  let n = 0;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const url = new URL(req.url);
      const body: any = await req.json().catch(() => null);
      const auth = req.headers.get("authorization") ?? "";
      const r: Received = { api: "openai", path: url.pathname, query: url.search, key_ok: auth === `Bearer ${opts.key}`, placeholder_seen: auth.includes("vivary-"), headers: {}, model: body?.model ?? null, stream: body?.stream === true, body };
      record(received, opts.log, r);
      if (req.method !== "POST" || (url.pathname !== "/v1/chat/completions" && url.pathname !== "/v1/responses")) return error(404, "invalid_request_error", "unknown_url", `Unknown request URL: ${req.method} ${url.pathname}.`);
      if (!r.key_ok) return error(401, "invalid_request_error", "invalid_api_key", "Incorrect API key provided.");
      if (!body || typeof body.model !== "string") return error(400, "invalid_request_error", null, "you must provide a model parameter");
      const prompt = lastUserText(body);
      const said: Script & { namespace?: string } = opts.script ? opts.script(body, opts.key) : script(body, opts.key, opts.plan);
      const text = said.kind === "text" ? said.text : "";
      const args = said.kind === "tool" ? JSON.stringify(said.input) : "";
      const halfArgs = Math.ceil(args.length / 2);
      const pause = prompt === "slow" ? Math.max(opts.pauseMs ?? 0, 100) : (opts.pauseMs ?? 0);
      const created = 1_700_000_000 + ++n;
      const hdr = { "x-request-id": `req_fake${n}` };
      const half = Math.ceil(text.length / 2);
      if (url.pathname === "/v1/chat/completions") {
        const max = body.max_completion_tokens ?? body.max_tokens ?? Infinity;
        const output = Math.min(max, FAKE_OUTPUT_TOKENS);
        const finish = said.kind === "tool" ? "tool_calls" : output < FAKE_OUTPUT_TOKENS ? "length" : "stop";
        const usage = { prompt_tokens: FAKE_INPUT_TOKENS, completion_tokens: output, total_tokens: FAKE_INPUT_TOKENS + output };
        const id = `chatcmpl-fake${n}`;
        const callId = `call_fake${n}`;
        if (!body.stream) {
          const message = said.kind === "tool"
            ? { role: "assistant", content: null, refusal: null, tool_calls: [{ id: callId, type: "function", function: { name: said.name, arguments: args } }] }
            : { role: "assistant", content: text, refusal: null };
          return json(200, { id, object: "chat.completion", created, model: body.model, choices: [{ index: 0, message, logprobs: null, finish_reason: finish }], usage }, hdr);
        }
        const includeUsage = body.stream_options?.include_usage === true;
        const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) => ({ data: { id, object: "chat.completion.chunk", created, model: body.model, system_fingerprint: null, choices, ...(includeUsage ? { usage: null } : {}), ...extra } });
        const pieces = said.kind === "tool"
          ? [
              { tool_calls: [{ index: 0, id: callId, type: "function", function: { name: said.name, arguments: "" } }] },
              { tool_calls: [{ index: 0, function: { arguments: args.slice(0, halfArgs) } }] },
              { tool_calls: [{ index: 0, function: { arguments: args.slice(halfArgs) } }] },
            ]
          : [{ content: text.slice(0, half) }, { content: text.slice(half) }];
        return sse(
          [
            chunk([{ index: 0, delta: { role: "assistant", content: said.kind === "tool" ? null : "", refusal: null }, logprobs: null, finish_reason: null }]),
            ...pieces.map((delta) => chunk([{ index: 0, delta, logprobs: null, finish_reason: null }])),
            chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: finish }]),
            ...(includeUsage ? [chunk([], { usage })] : []),
            { data: "[DONE]" },
          ],
          pause,
          hdr,
        );
      }
      const max = body.max_output_tokens ?? Infinity;
      const output = Math.min(max, FAKE_OUTPUT_TOKENS);
      const id = `resp_fake${n}`;
      const msgId = `msg_fake${n}`;
      const usage = { input_tokens: FAKE_INPUT_TOKENS, input_tokens_details: { cached_tokens: 0 }, output_tokens: output, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: FAKE_INPUT_TOKENS + output };
      const part = { type: "output_text", text, annotations: [], logprobs: [] };
      const item = said.kind === "tool"
        ? { id: `fc_fake${n}`, type: "function_call", status: "completed", call_id: `call_fake${n}`, name: said.name, ...("namespace" in said && said.namespace ? { namespace: said.namespace } : {}), arguments: args }
        : { id: msgId, type: "message", status: "completed", role: "assistant", content: [part] };
      const base = { id, object: "response", created_at: created, model: body.model, instructions: null, max_output_tokens: body.max_output_tokens ?? null, parallel_tool_calls: true, previous_response_id: null, temperature: 1, tool_choice: "auto", tools: body.tools ?? [], top_p: 1, error: null, incomplete_details: null, metadata: {} };
      const done = { ...base, status: "completed", output: [item], usage };
      if (!body.stream) return json(200, done, hdr);
      let seq = 0;
      const ev = (type: string, data: Record<string, unknown>) => ({ event: type, data: { type, sequence_number: seq++, ...data } });
      const middle = said.kind === "tool"
        ? [
            ev("response.output_item.added", { output_index: 0, item: { ...item, status: "in_progress", arguments: "" } }),
            ev("response.function_call_arguments.delta", { item_id: item.id, output_index: 0, delta: args.slice(0, halfArgs) }),
            ev("response.function_call_arguments.delta", { item_id: item.id, output_index: 0, delta: args.slice(halfArgs) }),
            ev("response.function_call_arguments.done", { item_id: item.id, output_index: 0, arguments: args }),
          ]
        : [
            ev("response.output_item.added", { output_index: 0, item: { ...item, status: "in_progress", content: [] } }),
            ev("response.content_part.added", { item_id: msgId, output_index: 0, content_index: 0, part: { ...part, text: "" } }),
            ev("response.output_text.delta", { item_id: msgId, output_index: 0, content_index: 0, delta: text.slice(0, half), logprobs: [] }),
            ev("response.output_text.delta", { item_id: msgId, output_index: 0, content_index: 0, delta: text.slice(half), logprobs: [] }),
            ev("response.output_text.done", { item_id: msgId, output_index: 0, content_index: 0, text, logprobs: [] }),
            ev("response.content_part.done", { item_id: msgId, output_index: 0, content_index: 0, part }),
          ];
      return sse(
        [
          ev("response.created", { response: { ...base, status: "in_progress", output: [], usage: null } }),
          ev("response.in_progress", { response: { ...base, status: "in_progress", output: [], usage: null } }),
          ...middle,
          ev("response.output_item.done", { output_index: 0, item }),
          ev("response.completed", { response: done }),
        ],
        pause,
        hdr,
      );
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, received, stop: () => server.stop(true) };
}

if (import.meta.main) main("fake-openai", startFakeOpenAI);
