// The agent-loop demo's agent: runs inside the jail under node, as the smallest real agent would.
// It asks its model (Anthropic's Messages API at ANTHROPIC_BASE_URL, the jail's governed endpoint;
// the key it sends is the placeholder viv run set, never a real one) what to do about a task,
// offering its granted capabilities as tools with their own JSON Schemas, runs each capability the
// model asks for as a command (the capability stub), feeds back its output, or its one-line
// refusal as an error, and stops when the model answers in text. Plain HTTP, no SDK.
// usage: node agent-loop.mjs TASK, or node --input-type=module -e "$(cat agent-loop.mjs)" -- TASK
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";

const task = process.argv.at(-1);
const MODEL = process.env.AGENT_MODEL ?? "claude-sonnet-4-5";
const MAX_TURNS = 8;

// What the broker granted this jail: the same list the MCP bridge serves (vivary-capabilities(7)).
const granted = JSON.parse(readFileSync("/run/vivary/capabilities.json", "utf8")).capabilities;
const tools = granted
  .filter((c) => c.name !== "model-complete")
  .map((c) => ({ name: c.name, description: c.schema.description ?? c.name, input_schema: c.schema }));

/** A tool call's input as the capability's argv: --kebab-case options, a list a repeated option, true a bare flag. */
function argv(input) {
  const out = [];
  for (const [key, value] of Object.entries(input ?? {})) {
    const flag = `--${key.replaceAll("_", "-")}`;
    if (value === true) out.push(flag);
    else if (Array.isArray(value)) for (const v of value) out.push(flag, String(v));
    else if (value !== false && value !== null) out.push(flag, String(value));
  }
  return out;
}

async function ask(messages) {
  const res = await fetch(`${process.env.ANTHROPIC_BASE_URL}/v1/messages`, {
    method: "POST",
    headers: { "content-type": "application/json", "anthropic-version": "2023-06-01", "x-api-key": process.env.ANTHROPIC_API_KEY },
    body: JSON.stringify({ model: MODEL, max_tokens: 256, tools, messages }),
  });
  const body = await res.json();
  if (!res.ok) throw new Error(`the model endpoint said ${res.status}: ${body.error?.message ?? JSON.stringify(body)}`);
  return body;
}

const messages = [{ role: "user", content: task }];
console.log(`agent: task: ${task}`);
console.log(`agent: tools offered to the model: ${tools.map((t) => t.name).join(", ")}`);
for (let turn = 0; turn < MAX_TURNS; turn++) {
  let reply;
  try {
    reply = await ask(messages);
  } catch (e) {
    console.log(`agent: stopping: ${e.message}`);
    process.exit(75);
  }
  messages.push({ role: "assistant", content: reply.content });
  const calls = reply.content.filter((b) => b.type === "tool_use");
  for (const b of reply.content) if (b.type === "text") console.log(`model: ${b.text}`);
  if (reply.stop_reason !== "tool_use" || calls.length === 0) process.exit(0);
  const results = [];
  for (const call of calls) {
    const args = argv(call.input);
    console.log(`agent: running ${[call.name, ...args].map((a) => (/^[\w./:=+-]+$/.test(a) ? a : JSON.stringify(a))).join(" ")}`);
    const r = spawnSync(call.name, args, { encoding: "utf8" });
    const ok = r.status === 0;
    const text = ok ? r.stdout.trim() : (r.stderr.split("\n").find((l) => l.trim()) ?? `${call.name} failed with exit status ${r.status}`);
    console.log(`agent: ${ok ? "result" : `refused (exit ${r.status})`}: ${text}`);
    results.push({ type: "tool_result", tool_use_id: call.id, content: text, ...(ok ? {} : { is_error: true }) });
  }
  messages.push({ role: "user", content: results });
}
console.log(`agent: stopping after ${MAX_TURNS} turns`);
process.exit(1);
