// Provider kind "anthropic": Anthropic's Messages API (POST {url}/v1/messages), whole or streamed as
// server-sent events. The key from the vault goes in x-api-key; the client's anthropic-version and
// anthropic-beta headers pass through (a default version when it sent none). Errors have the API's
// shape {type:"error",error:{type,message}}. completeAnthropic is the one-shot call of
// model-complete; the jail's endpoint forwards requests unchanged through the wire facts.
import type { ProviderConfig } from "../lib/capability.ts";
import { Exit, VivError } from "../lib/exit.ts";
import type { Completion, CompletionRequest } from "../lib/model.ts";
import type { Secret } from "../lib/secret.ts";
import { httpRequest } from "./http.ts";
import type { ProviderKind } from "./kind.ts";
import { COMPLETION_LIMITS, completionJson, usageIn, type ModelWire } from "./model-wire.ts";

export const ANTHROPIC_VERSION = "2023-06-01";

export const anthropic: ProviderKind = {
  name: "anthropic",
  exampleName: "claude",
  api: "Anthropic Messages API (POST /v1/messages, whole or streamed)",
  urlExample: "https://api.anthropic.com",
  credentialDoc: "an Anthropic API key, sent as the x-api-key header",
  settings: {},
};

const ERROR_TYPES: Record<number, string> = { 400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 502: "api_error", 503: "overloaded_error" };

export const anthropicWire: ModelWire = {
  family: "anthropic",
  paths: [{ path: "/v1/messages", maxFields: ["max_tokens"], query: ["beta"] }],
  headers(secret, client) {
    const h: Record<string, string> = { "content-type": "application/json", "x-api-key": secret.reveal(), "anthropic-version": client.get("anthropic-version") ?? ANTHROPIC_VERSION };
    const beta = client.get("anthropic-beta");
    if (beta) h["anthropic-beta"] = beta;
    const accept = client.get("accept");
    if (accept) h.accept = accept;
    return h;
  },
  error: (status, message) => JSON.stringify({ type: "error", error: { type: ERROR_TYPES[status] ?? "api_error", message } }),
};

/** One non-streamed message with a single user turn. */
export async function completeAnthropic(p: ProviderConfig, secret: Secret, req: CompletionRequest): Promise<Completion> {
  const body = { model: req.model, max_tokens: req.maxTokens, messages: [{ role: "user", content: req.prompt }], ...(req.system ? { system: req.system } : {}) };
  const reply = await httpRequest(p.name, `${p.url}/v1/messages`, { method: "POST", headers: anthropicWire.headers(secret, new Headers()), body: JSON.stringify(body) }, COMPLETION_LIMITS);
  const json = completionJson(p.name, reply);
  const usage = usageIn(json);
  if (!usage || !Array.isArray(json.content)) throw new VivError(Exit.data, `provider '${p.name}' sent a message without content or usage`);
  const text = json.content.filter((b: any) => b?.type === "text" && typeof b.text === "string").map((b: any) => b.text).join("");
  return { provider: p.name, model: String(json.model ?? req.model), text, stop_reason: String(json.stop_reason ?? ""), input_tokens: usage.input, output_tokens: usage.output };
}
