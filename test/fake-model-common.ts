// What the loopback model servers of the tests (test/fake-anthropic.ts, test/fake-openai.ts) share:
// the record of each request they receive (never the key itself: whether it was the expected one,
// and whether it was vivary's placeholder), server-sent event framing, their scripted replies and
// their command line. Replies are scripted by the last message: "echo-key" answers with the
// key it was sent (to test scrubbing); "slow" streams with a pause between events; "call NAME
// JSON" (when the request offers tools) asks for a call of tool NAME with input JSON; a tool's
// result (Anthropic's tool_result block, a Chat Completions "tool" message, a Responses
// function_call_output) is answered "tool said: RESULT". Usage is deterministic:
// FAKE_INPUT_TOKENS in, min(max_tokens, FAKE_OUTPUT_TOKENS) out. With --plan FILE, a conversation
// follows a plan instead: a JSON list of steps, the model's Nth turn being step N (N = the
// assistant turns the request already holds), each a tool call ({"tool", "input"}) or a text
// ({"text"}, where {result} stands for the last tool result).
import { appendFileSync, readFileSync } from "node:fs";

export const FAKE_INPUT_TOKENS = 12;
export const FAKE_OUTPUT_TOKENS = 7;

export interface Received {
  api: string;
  path: string;
  /** The request's query string, with its '?', or "". */
  query: string;
  key_ok: boolean;
  placeholder_seen: boolean;
  headers: Record<string, string>;
  model: string | null;
  stream: boolean;
  body: unknown;
}

export interface FakeModel {
  url: string;
  received: Received[];
  stop(): void;
}

export const json = (status: number, v: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(v), { status, headers: { "content-type": "application/json", ...headers } });

/** A text/event-stream reply of the given events, with `pauseMs` between them. */
export function sse(events: { event?: string; data: unknown | "[DONE]" }[], pauseMs: number, headers: Record<string, string> = {}): Response {
  const enc = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    async start(ctl) {
      for (const e of events) {
        const data = e.data === "[DONE]" ? "[DONE]" : JSON.stringify(e.data);
        ctl.enqueue(enc.encode(`${e.event ? `event: ${e.event}\n` : ""}data: ${data}\n\n`));
        if (pauseMs) await Bun.sleep(pauseMs);
      }
      ctl.close();
    },
  });
  return new Response(body, { status: 200, headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", ...headers } });
}

/** The text of the last user message of a Messages, Chat Completions or Responses request. */
export function lastUserText(body: any): string {
  if (typeof body?.input === "string") return body.input;
  const list: any[] = Array.isArray(body?.messages) ? body.messages : Array.isArray(body?.input) ? body.input : [];
  const last = [...list].reverse().find((m) => m?.role === "user");
  const c = last?.content;
  if (typeof c === "string") return c;
  if (Array.isArray(c)) return c.map((p: any) => p?.text ?? "").join("");
  return "";
}

export function replyText(prompt: string, key: string): string {
  return prompt === "echo-key" ? `the key I was sent is ${key}` : `scripted reply to: ${prompt}`;
}

export function record(received: Received[], log: string | undefined, r: Received) {
  received.push(r);
  if (log) appendFileSync(log, `${JSON.stringify(r)}\n`);
}

/** As a program: --key-file FILE [--log FILE] [--pause-ms N] [--plan FILE]; prints the base URL, serves until killed. */
export function main(name: string, start: (o: { key: string; log?: string; pauseMs: number; plan?: PlanStep[] }) => FakeModel) {
  const arg = (n: string) => {
    const i = process.argv.indexOf(n);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const keyFile = arg("--key-file");
  if (!keyFile) {
    process.stderr.write(`${name}: usage: ${name}.ts --key-file FILE [--log FILE] [--pause-ms N] [--plan FILE]\n`);
    process.exit(64);
  }
  const planFile = arg("--plan");
  const plan = planFile ? (JSON.parse(readFileSync(planFile, "utf8")) as PlanStep[]) : undefined;
  const fake = start({ key: readFileSync(keyFile, "utf8").replace(/\n$/, ""), log: arg("--log"), pauseMs: Number(arg("--pause-ms") ?? 0), plan });
  process.stdout.write(`${fake.url}\n`);
}

export type Script = { kind: "text"; text: string } | { kind: "tool"; name: string; input: Record<string, unknown> };

/** One turn of a planned conversation (--plan). */
export type PlanStep = { text: string } | { tool: string; input: Record<string, unknown> };

/** The text of the request's last tool result, if its last message is one. */
function lastToolResult(list: any[]): string | undefined {
  const last = list.at(-1);
  const toolResult =
    last?.role === "tool" ? last.content
    : last?.type === "function_call_output" ? last.output
    : Array.isArray(last?.content) ? last.content.find((b: any) => b?.type === "tool_result")?.content
    : undefined;
  if (toolResult === undefined) return undefined;
  return typeof toolResult === "string" ? toolResult : Array.isArray(toolResult) ? toolResult.map((b: any) => b?.text ?? "").join("") : JSON.stringify(toolResult);
}

/** The planned turn: step N of the plan, N being the assistant turns (messages or function calls) so far. */
function planned(list: any[], plan: readonly PlanStep[]): Script {
  const turn = list.filter((m) => m?.role === "assistant" || m?.type === "function_call").length;
  const step = plan[turn];
  if (!step) return { kind: "text", text: "(the plan has no more steps)" };
  if ("tool" in step) return { kind: "tool", name: step.tool, input: step.input };
  return { kind: "text", text: step.text.replaceAll("{result}", (lastToolResult(list) ?? "").trim()) };
}

/** What the scripted model answers to a request of any of the three APIs. */
export function script(body: any, key: string, plan?: readonly PlanStep[]): Script {
  const list: any[] = Array.isArray(body?.messages) ? body.messages : Array.isArray(body?.input) ? body.input : [];
  if (plan) return planned(list, plan);
  const toolResult = lastToolResult(list);
  if (toolResult !== undefined) return { kind: "text", text: `tool said: ${toolResult}` };
  const prompt = lastUserText(body);
  const m = /^call (\S+) (\{.*\})$/s.exec(prompt);
  if (m && Array.isArray(body?.tools) && body.tools.length) return { kind: "tool", name: m[1]!, input: JSON.parse(m[2]!) };
  return { kind: "text", text: replyText(prompt, key) };
}
