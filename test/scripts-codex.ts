// The scripted model that Codex CLI talks to in test/bats/agent-codex.bats: the loopback OpenAI
// server of test/fake-openai.ts (Responses API, streamed as Codex asks) with a script of several
// steps. The user's prompt is the plan, one "call CAP JSON" line per step; the model asks for
// one tool call per reply, in order, the step being the number of function_call_output items
// that follow the prompt in the request's input, and once every step has its output it answers
// "done: OUTPUT | OUTPUT ...". A step names the capability; the tool it calls is the one Codex
// offers for it, as Codex offers it: an MCP server's tools are a Responses API tool namespace
// (type "namespace", name mcp__SERVER, its tools' names with '-' as '_'), and the call names the
// namespace in its function_call item's "namespace" member. A plan whose tool Codex does not
// offer is answered "no tool for CAP among: NAMES" and ends the run. Anything else is answered as the
// common script does (test/fake-model-common.ts).
// As a program: bun test/scripts-codex.ts --key-file FILE [--log FILE] [--pause-ms N].
import { lastUserText, main, script, type Script } from "./fake-model-common.ts";
import { startFakeOpenAI } from "./fake-openai.ts";

const STEP = /^call (\S+) (\{.*\})$/;

/** The text of a function_call_output's output: a string, or a list of content items. */
function outputText(o: unknown): string {
  if (typeof o === "string") return o;
  if (Array.isArray(o)) return o.map((p: any) => (typeof p?.text === "string" ? p.text : "")).join("");
  return JSON.stringify(o);
}

/**
 * The tool Codex offers for capability CAP: a function of that name, or one inside a namespace
 * (how Codex offers an MCP server's tools: namespace mcp__SERVER, each tool's name with '-' as '_').
 */
export function toolFor(tools: unknown, cap: string): { name: string; namespace?: string } | null {
  const list: any[] = Array.isArray(tools) ? tools : [];
  const names = new Set([cap, cap.replaceAll("-", "_")]);
  for (const t of list) if (t?.type === "function" && names.has(t.name)) return { name: t.name };
  for (const ns of list) {
    if (ns?.type !== "namespace" || !Array.isArray(ns.tools)) continue;
    const t = ns.tools.find((f: any) => f?.type === "function" && names.has(f.name));
    if (t) return { name: t.name, namespace: ns.name };
  }
  return null;
}

/** The names of the tools offered, a namespace's as NAMESPACE.NAME. */
const offered = (tools: unknown) =>
  (Array.isArray(tools) ? tools : []).flatMap((t: any) => (t?.type === "namespace" && Array.isArray(t.tools) ? t.tools.map((f: any) => `${t.name}.${f?.name}`) : [t?.name ?? t?.type]));

export function codexScript(body: any, key: string): Script & { namespace?: string } {
  const plan = lastUserText(body)
    .split("\n")
    .map((l) => STEP.exec(l.trim()))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ cap: m[1]!, input: JSON.parse(m[2]!) as Record<string, unknown> }));
  if (plan.length === 0) return script(body, key);
  const input: any[] = Array.isArray(body?.input) ? body.input : [];
  let since = input.length;
  while (since > 0 && input[since - 1]?.role !== "user") since--;
  const outputs = input.slice(since).filter((i) => i?.type === "function_call_output").map((i) => outputText(i.output));
  const next = plan[outputs.length];
  if (!next) return { kind: "text", text: `done: ${outputs.join(" | ")}` };
  const tool = toolFor(body?.tools, next.cap);
  if (!tool) return { kind: "text", text: `no tool for ${next.cap} among: ${offered(body?.tools).join(" ")}` };
  return { kind: "tool", ...tool, input: next.input };
}

if (import.meta.main) main("scripts-codex", (o) => startFakeOpenAI({ ...o, script: codexScript }));
