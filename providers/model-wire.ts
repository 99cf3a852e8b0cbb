// What the governed model endpoint needs to know of a model API's wire format, for the kinds that
// speak one (providers/anthropic.ts, providers/openai.ts): which request paths it forwards, how a
// request names its model and bounds its output, the headers the upstream request carries (the
// vault's key, never the client's), the API's own error shape, and the token usage a reply reports,
// whole or as server-sent events; and what model-complete makes of a reply. Pure: the broker's
// gateway and model-complete do the I/O.
import { Exit, VivError } from "../lib/exit.ts";
import type { Secret } from "../lib/secret.ts";
import { oneLine, type HttpReply } from "./http.ts";

export type ModelFamily = "anthropic" | "openai";

/** One forwarded API path: how its requests bound their output. */
export interface ModelPath {
  /** Under the provider's base URL, e.g. /v1/messages. */
  path: string;
  /** The request member that bounds the reply's tokens, in the order it is looked for. */
  maxFields: readonly string[];
  /** The member set when a request gives none (absent: the request is refused). */
  defaultField?: string;
  /** For a streamed request: members to add so that the stream reports usage. */
  streamUsage?: Record<string, unknown>;
  /** Query parameters passed on to the API (Anthropic's SDKs add beta=true); any other is dropped. */
  query?: readonly string[];
}

export interface ModelWire {
  family: ModelFamily;
  paths: readonly ModelPath[];
  /** Headers of the upstream request: the client's that the API needs (versions, betas), and the key. */
  headers(secret: Secret, client: Headers): Record<string, string>;
  /** The API's own error body for a refusal. */
  error(status: number, message: string): string;
}

/** Output tokens allowed to a request that names no bound, where the API lets it omit one. */
export const DEFAULT_MAX_TOKENS = 4096;

export interface Usage {
  input: number;
  output: number;
}

const n = (v: unknown) => (typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : 0);

/** The bounds of one completion that model-complete asks for: it may take minutes, and its reply is JSON. */
export const COMPLETION_LIMITS = { timeoutMs: 600_000, maxReplyBytes: 4 << 20 };

/**
 * The JSON of a model API's reply to model-complete, or the one-line error: a reply that is not
 * JSON is bad data (65); one that is not 200 a refusal (69) with the API's own message, which
 * both APIs put at error.message.
 */
export function completionJson(provider: string, reply: HttpReply): any {
  let json: any;
  try {
    json = JSON.parse(reply.text);
  } catch {
    throw new VivError(Exit.data, `provider '${provider}' sent a reply that is not JSON (HTTP ${reply.status})`);
  }
  if (reply.status !== 200) {
    const m = typeof json?.error?.message === "string" ? `: ${oneLine(json.error.message)}` : "";
    throw new VivError(Exit.unavailable, `provider '${provider}' refused the request: HTTP ${reply.status}${m}`);
  }
  return json;
}

/**
 * Token usage in any of the shapes the APIs report it: Anthropic's usage (input_tokens plus the
 * cache's creation and read tokens, output_tokens), Chat Completions' (prompt_tokens,
 * completion_tokens) and the Responses API's (input_tokens, output_tokens); found on the object,
 * its message (Anthropic's message_start event) or its response (Responses API events).
 */
export function usageIn(obj: unknown): Usage | null {
  if (!obj || typeof obj !== "object") return null;
  const o = obj as Record<string, any>;
  const u = o.usage ?? o.message?.usage ?? o.response?.usage;
  if (!u || typeof u !== "object") return null;
  return {
    input: n(u.input_tokens ?? u.prompt_tokens) + n(u.cache_creation_input_tokens) + n(u.cache_read_input_tokens),
    output: n(u.output_tokens ?? u.completion_tokens),
  };
}

/** Combines usage seen over a stream: each count is the largest reported (Anthropic's are cumulative). */
export function mergeUsage(a: Usage | null, b: Usage | null): Usage | null {
  if (!a) return b;
  if (!b) return a;
  return { input: Math.max(a.input, b.input), output: Math.max(a.output, b.output) };
}

/** The event types that end a whole reply: Anthropic's, and the Responses API's (one that stopped at its bound is whole too). */
const FINAL_EVENTS = new Set(["message_stop", "response.completed", "response.incomplete"]);

/**
 * The complete server-sent events in `text`, read once: the JSON data of each (comments, ids and
 * [DONE] skipped), and whether one of them ends a whole reply in its API (Anthropic's
 * message_stop, Chat Completions' [DONE], the Responses API's response.completed or
 * response.incomplete). After that event the usage is final, so a client that leaves then has cut
 * nothing short.
 */
export function sseEvents(text: string): { data: unknown[]; final: boolean } {
  const out: unknown[] = [];
  let final = false;
  for (const event of text.split(/\r?\n\r?\n/)) {
    const data = event
      .split(/\r?\n/)
      .filter((l) => l.startsWith("data:"))
      .map((l) => l.slice(5).replace(/^ /, ""))
      .join("\n");
    if (!data) continue;
    if (data === "[DONE]") {
      final = true;
      continue;
    }
    try {
      const d = JSON.parse(data);
      out.push(d);
      if (FINAL_EVENTS.has(d?.type)) final = true;
    } catch {
      /* not JSON: carries no usage */
    }
  }
  return { data: out, final };
}

/** The JSON data of each complete server-sent event in `text` (comments, ids and [DONE] skipped). */
export const sseData = (text: string): unknown[] => sseEvents(text).data;

/** The most characters of a prompt or reply a record's fields keep; the full bodies are its raw bytes. */
export const MAX_TEXT_FIELD = 4000;

const cutText = (s: string) => (s.length > MAX_TEXT_FIELD ? `${s.slice(0, MAX_TEXT_FIELD)}…(${s.length} chars)` : s);

const partsText = (c: unknown): string =>
  typeof c === "string" ? c : Array.isArray(c) ? c.map((p: any) => (typeof p === "string" ? p : typeof p?.text === "string" ? p.text : "")).join("") : "";

/** A tool's result as the agent fed it back: [result] TEXT, or [error] TEXT for a failure. */
const toolResult = (content: unknown, error: boolean) => `[${error ? "error" : "result"}] ${partsText(content) || str(content)}`;

/** A user turn's content as text: its text parts, and each tool result it carries (Anthropic's tool_result blocks). */
const userText = (c: unknown): string =>
  Array.isArray(c) ? c.map((p: any) => (p?.type === "tool_result" ? toolResult(p.content, p.is_error === true) : typeof p === "string" ? p : typeof p?.text === "string" ? p.text : "")).join(" ") : partsText(c);

/**
 * What the agent said last in a Messages, Chat Completions or Responses request: its last user
 * message, or the tool results it fed back after it (a Chat Completions "tool" message, a
 * Responses function_call_output), so the log shows what the model was told.
 */
export function promptOf(body: Record<string, unknown>): string {
  if (typeof body.input === "string") return cutText(body.input);
  const list = (Array.isArray(body.messages) ? body.messages : Array.isArray(body.input) ? body.input : []) as any[];
  let i = list.length - 1;
  while (i >= 0 && (list[i]?.role === "tool" || list[i]?.type === "function_call_output")) i--;
  const results = list.slice(i + 1).map((m) => toolResult(m.role === "tool" ? m.content : m.output, false));
  if (results.length) return cutText(results.join(" "));
  const last = [...list].reverse().find((m: any) => m?.role === "user");
  return cutText(userText(last?.content));
}

const str = (v: unknown) => (typeof v === "string" ? v : v === undefined ? "" : JSON.stringify(v));
const toolCall = (name: unknown, input: unknown) => `[tool ${str(name)}] ${str(input)}`;

/** Anthropic content blocks as text: text as it is, a tool call as [tool NAME] INPUT. */
const blocksText = (c: unknown): string =>
  Array.isArray(c) ? c.map((b: any) => (b?.type === "tool_use" ? toolCall(b.name, b.input) : typeof b?.text === "string" ? b.text : "")).join("") : partsText(c);

/** Chat Completions tool calls as text: whole ones, or the pieces of a streamed delta (the name comes with the first). */
const chatTools = (calls: unknown): string =>
  Array.isArray(calls) ? calls.map((t: any) => (t?.function?.name ? `[tool ${t.function.name}] ` : "") + str(t?.function?.arguments ?? "")).join("") : "";

/** A Responses API function call's tool: NAMESPACE.NAME for a tool offered in a namespace (Codex's MCP tools). */
const namespaced = (item: any) => (typeof item?.namespace === "string" && item.namespace ? `${item.namespace}.${str(item.name)}` : str(item?.name));

/**
 * The text of a reply, whole or as the data of its events: what the model answered, tool calls
 * included as [tool NAME] INPUT.
 */
export function replyOf(objects: readonly unknown[]): string {
  let s = "";
  for (const o of objects as any[]) {
    if (!o || typeof o !== "object") continue;
    if (o.type === "message" && Array.isArray(o.content)) s += blocksText(o.content);
    else if (o.type === "content_block_start" && o.content_block?.type === "tool_use") s += `[tool ${str(o.content_block.name)}] `;
    else if (o.type === "content_block_delta" && typeof o.delta?.text === "string") s += o.delta.text;
    else if (o.type === "content_block_delta" && typeof o.delta?.partial_json === "string") s += o.delta.partial_json;
    else if (Array.isArray(o.choices)) s += o.choices.map((c: any) => str(c?.message?.content ?? c?.delta?.content ?? "") + chatTools(c?.message?.tool_calls ?? c?.delta?.tool_calls)).join("");
    else if (o.type === "response.output_text.delta" && typeof o.delta === "string") s += o.delta;
    else if (o.object === "response" && Array.isArray(o.output)) s += o.output.map((i: any) => (i?.type === "function_call" ? toolCall(namespaced(i), i.arguments) : partsText(i?.content))).join("");
    else if (o.type === "response.output_item.added" && o.item?.type === "function_call") s += `[tool ${namespaced(o.item)}] `;
    else if (o.type === "response.function_call_arguments.delta" && typeof o.delta === "string") s += o.delta;
  }
  return cutText(s);
}
