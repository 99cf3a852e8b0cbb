// Provider kinds "openai" (OpenAI's Chat Completions and Responses APIs: POST {url}/v1/chat/completions
// and {url}/v1/responses) and "openai-compatible" (any server speaking Chat Completions: vLLM,
// llama.cpp's server, Ollama), whole or streamed as server-sent events. The key from the vault
// goes in Authorization: Bearer. Errors have the API's shape {error:{message,type,code}}. A
// streamed Chat Completions request gets stream_options.include_usage, so that its last chunk
// reports the tokens it used. completeChat is the one-shot call of model-complete.
import type { ProviderConfig } from "../lib/capability.ts";
import { Exit, VivError } from "../lib/exit.ts";
import type { Completion, CompletionRequest } from "../lib/model.ts";
import type { Secret } from "../lib/secret.ts";
import { httpRequest } from "./http.ts";
import type { ProviderKind } from "./kind.ts";
import { COMPLETION_LIMITS, completionJson, usageIn, type ModelPath, type ModelWire } from "./model-wire.ts";

export const openai: ProviderKind = {
  name: "openai",
  exampleName: "gpt",
  api: "OpenAI Chat Completions API (POST /v1/chat/completions) and Responses API (POST /v1/responses), whole or streamed",
  urlExample: "https://api.openai.com",
  credentialDoc: "an OpenAI API key, sent as Authorization: Bearer",
  settings: {},
};

export const openaiCompatible: ProviderKind = {
  name: "openai-compatible",
  exampleName: "local-llm",
  api: "OpenAI Chat Completions API as other servers speak it (POST /v1/chat/completions, whole or streamed: vLLM, llama.cpp's server, Ollama)",
  urlExample: "http://127.0.0.1:8000",
  credentialDoc: "the server's API key, sent as Authorization: Bearer",
  settings: {},
};

const ERROR_TYPES: Record<number, [string, string]> = {
  400: ["invalid_request_error", "invalid_request"],
  403: ["permission_error", "model_not_allowed"],
  404: ["invalid_request_error", "not_found"],
  413: ["invalid_request_error", "request_too_large"],
  429: ["insufficient_quota", "token_budget_exhausted"],
  502: ["api_error", "upstream_failed"],
  503: ["api_error", "unavailable"],
};

const chat = (defaultField: string): ModelPath => ({ path: "/v1/chat/completions", maxFields: ["max_completion_tokens", "max_tokens"], defaultField, streamUsage: { stream_options: { include_usage: true } } });

const headers = (secret: Secret, client: Headers) => {
  const h: Record<string, string> = { "content-type": "application/json", authorization: `Bearer ${secret.reveal()}` };
  const accept = client.get("accept");
  if (accept) h.accept = accept;
  return h;
};
const error = (status: number, message: string) => {
  const [type, code] = ERROR_TYPES[status] ?? ["api_error", "error"];
  return JSON.stringify({ error: { message, type, param: null, code } });
};

export const openaiWire: ModelWire = {
  family: "openai",
  paths: [chat("max_completion_tokens"), { path: "/v1/responses", maxFields: ["max_output_tokens"], defaultField: "max_output_tokens" }],
  headers,
  error,
};

export const openaiCompatibleWire: ModelWire = { family: "openai", paths: [chat("max_tokens")], headers, error };

/** One non-streamed chat completion with a single user message. */
export async function completeChat(p: ProviderConfig, secret: Secret, req: CompletionRequest): Promise<Completion> {
  const messages = [...(req.system ? [{ role: "system", content: req.system }] : []), { role: "user", content: req.prompt }];
  const bound = p.kind === "openai" ? { max_completion_tokens: req.maxTokens } : { max_tokens: req.maxTokens };
  const reply = await httpRequest(p.name, `${p.url}/v1/chat/completions`, { method: "POST", headers: headers(secret, new Headers()), body: JSON.stringify({ model: req.model, messages, ...bound }) }, COMPLETION_LIMITS);
  const json = completionJson(p.name, reply);
  const usage = usageIn(json);
  const choice = json?.choices?.[0];
  if (!usage || !choice) throw new VivError(Exit.data, `provider '${p.name}' sent a completion without choices or usage`);
  return { provider: p.name, model: String(json.model ?? req.model), text: String(choice.message?.content ?? ""), stop_reason: String(choice.finish_reason ?? ""), input_tokens: usage.input, output_tokens: usage.output };
}
