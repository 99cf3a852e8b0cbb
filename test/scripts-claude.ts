// The scripted model that Claude Code talks to in test/bats/agent-claude.bats, served by the
// Anthropic fixture (test/fake-anthropic.ts). Claude Code wraps the user's prompt in content
// blocks of its own (<system-reminder> blocks before it, and after a tool's result), so the
// prompt is the text of the conversation's first user message without them. Its lines are the
// script:
//   call TOOL JSON        a tool call (TOOL as Claude Code names it, mcp__SERVER__NAME), one a turn, in order
//   usage INPUT OUTPUT    the token counts every reply reports (a large context, for budgets)
// With k tool results in the conversation, the model asks for the (k+1)th call; after the last
// result it answers one line per result, "ok: TEXT" or "error: TEXT" (a tool_result with
// is_error), so its final answer shows what Claude Code fed back. A prompt without calls is
// answered "scripted reply to: PROMPT". A call of a tool the request does not offer is answered
// "not offered: TOOL" instead, which makes a test that expected the call fail plainly. A tool
// Claude Code defers (its MCP tools, by default) is fetched first with ToolSearch, as below.
// As a program: bun test/scripts-claude.ts --key-file FILE [--log FILE] [--pause-ms N].
import { startFakeAnthropic, type AnthropicScript } from "./fake-anthropic.ts";
import { main } from "./fake-model-common.ts";

const textOf = (content: unknown): string =>
  typeof content === "string" ? content : Array.isArray(content) ? content.map((b: any) => (b?.type === "text" && typeof b.text === "string" ? b.text : "")).join("") : "";

/** Text as the user or a tool gave it: Claude Code's system reminders cut out. */
const clean = (s: string) => s.replace(/<system-reminder>[\s\S]*?<\/system-reminder>/g, "").trim();

/** The user's own prompt: the first user message's text. */
export function claudePrompt(body: any): string {
  const first = (Array.isArray(body?.messages) ? body.messages : []).find((m: any) => m?.role === "user");
  return clean(textOf(first?.content));
}

interface Turns {
  /** The results of the script's calls, in order (ToolSearch's excluded). */
  results: { text: string; error: boolean }[];
  /** The queries of the ToolSearch calls made so far. */
  searched: string[];
}

/** What the conversation holds so far: the script's tool results, and the tool searches made. */
function turns(body: any): Turns {
  const names = new Map<string, string>();
  const t: Turns = { results: [], searched: [] };
  for (const m of Array.isArray(body?.messages) ? body.messages : []) {
    if (!Array.isArray(m?.content)) continue;
    for (const b of m.content) {
      if (m.role === "assistant" && b?.type === "tool_use") {
        names.set(b.id, b.name);
        if (b.name === "ToolSearch") t.searched.push(String(b.input?.query ?? ""));
      }
      if (m.role === "user" && b?.type === "tool_result" && names.get(b.tool_use_id) !== "ToolSearch") t.results.push({ text: clean(textOf(b.content)), error: b.is_error === true });
    }
  }
  return t;
}

/**
 * Claude Code defers MCP tools by default: the request names them in a system reminder only, and
 * offers ToolSearch, whose "select:NAME" returns the tool's schema; then the tool may be called.
 * So a call of a tool not in the request's tools is preceded by that search, as a model would.
 */
export const claudeScript: AnthropicScript = (body) => {
  const prompt = claudePrompt(body);
  const calls: { name: string; input: Record<string, unknown> }[] = [];
  let usage: { input_tokens: number; output_tokens: number } | undefined;
  for (const line of prompt.split("\n")) {
    const c = /^call (\S+) (\{.*\})$/.exec(line.trim());
    if (c) calls.push({ name: c[1]!, input: JSON.parse(c[2]!) });
    const u = /^usage (\d+) (\d+)$/.exec(line.trim());
    if (u) usage = { input_tokens: Number(u[1]), output_tokens: Number(u[2]) };
  }
  const { results, searched } = turns(body);
  const next = calls[results.length];
  if (next) {
    const tools: string[] = (Array.isArray(body?.tools) ? body.tools : []).filter((t: any) => !t?.defer_loading).map((t: any) => t?.name);
    const query = `select:${next.name}`;
    if (tools.includes(next.name) || searched.includes(query)) return { kind: "tool", ...next, usage };
    if (tools.includes("ToolSearch")) return { kind: "tool", name: "ToolSearch", input: { query }, usage };
    return { kind: "text", text: `not offered: ${next.name}`, usage };
  }
  if (calls.length === 0) return { kind: "text", text: `scripted reply to: ${prompt}`, usage };
  return { kind: "text", text: results.map((r) => `${r.error ? "error" : "ok"}: ${r.text}`).join("\n"), usage };
};

if (import.meta.main) main("scripts-claude", (o) => startFakeAnthropic({ ...o, script: claudeScript }));
