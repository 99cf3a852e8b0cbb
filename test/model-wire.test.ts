// Tables for the pure parts of governed model access: the usage each API reports, whole and as
// server-sent events (providers/model-wire.ts), the prompt and reply a record names, the sliding
// token window (broker/token-budget.ts), and the policy nodes of a model grant (model patterns,
// tokens budget) with their refusals.
import { describe, expect, test } from "bun:test";
import { TokenBudgets } from "../broker/token-budget.ts";
import { CATALOG } from "../capabilities/registry.ts";
import { loadPolicyText } from "../policy/load.ts";
import { matchModel, refuseModelPattern } from "../policy/scope.ts";
import { mergeUsage, promptOf, replyOf, sseData, sseEvents, usageIn } from "../providers/model-wire.ts";
import { problemsOf } from "./policy-problems.ts";

describe("usage", () => {
  test.each([
    ["an Anthropic message", { type: "message", usage: { input_tokens: 10, cache_creation_input_tokens: 3, cache_read_input_tokens: 4, output_tokens: 5 } }, { input: 17, output: 5 }],
    ["Anthropic's message_start", { type: "message_start", message: { usage: { input_tokens: 10, output_tokens: 1 } } }, { input: 10, output: 1 }],
    ["Anthropic's message_delta", { type: "message_delta", usage: { output_tokens: 30 } }, { input: 0, output: 30 }],
    ["a chat completion", { object: "chat.completion", usage: { prompt_tokens: 9, completion_tokens: 2, total_tokens: 11 } }, { input: 9, output: 2 }],
    ["Responses' response.completed", { type: "response.completed", response: { usage: { input_tokens: 8, output_tokens: 6, total_tokens: 14 } } }, { input: 8, output: 6 }],
    ["a chunk without usage", { object: "chat.completion.chunk", usage: null, choices: [] }, null],
    ["a negative count", { usage: { input_tokens: -5, output_tokens: "7" } }, { input: 0, output: 0 }],
  ])("%s", (_, obj, expected) => {
    expect(usageIn(obj)).toEqual(expected);
  });

  test("a stream's usage is the largest of each count (Anthropic's are cumulative)", () => {
    const events = sseData("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}\n\nevent: ping\ndata: {\"type\":\"ping\"}\n\n: comment\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":7}}\n\ndata: [DONE]\n\n");
    expect(events.length).toBe(3);
    expect(events.map(usageIn).reduce(mergeUsage, null)).toEqual({ input: 12, output: 7 });
  });

  test.each([
    ["Anthropic's message_stop", 'event: message_stop\ndata: {"type":"message_stop"}\n\n', true],
    ["Chat Completions' [DONE]", "data: [DONE]\n\n", true],
    ["Responses' response.completed", 'event: response.completed\r\ndata: {"type":"response.completed","response":{}}\r\n\r\n', true],
    ["Responses' response.incomplete (stopped at its bound)", 'data: {"type":"response.incomplete","response":{}}\n\n', true],
    ["a message_delta before the stop", 'event: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":7}}\n\n', false],
    ["a usage chunk before [DONE]", 'data: {"object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":1}}\n\n', false],
    ["the final name only as an event name or in text", 'event: message_stop\ndata: {"type":"ping","text":"response.completed [DONE]"}\n\n', false],
    ["Anthropic's error event", 'event: error\ndata: {"type":"error","error":{"type":"overloaded_error"}}\n\n', false],
    ["data that is not JSON", "data: message_stop\n\n", false],
  ])("the final event of a whole reply: %s", (_, text, expected) => {
    expect(sseEvents(text).final).toBe(expected);
  });
});

describe("prompt and reply", () => {
  test("the last user message of each request shape", () => {
    expect(promptOf({ messages: [{ role: "user", content: "a" }, { role: "assistant", content: "b" }, { role: "user", content: [{ type: "text", text: "c" }] }] })).toBe("c");
    expect(promptOf({ input: "d" })).toBe("d");
    expect(promptOf({ input: [{ role: "user", content: [{ type: "input_text", text: "e" }] }] })).toBe("e");
    expect(promptOf({ input: "x".repeat(5000) })).toEndWith("…(5000 chars)");
    // Tool results fed back are what the model is told next.
    expect(promptOf({ messages: [{ role: "user", content: "go" }, { role: "assistant", content: [] }, { role: "user", content: [{ type: "tool_result", tool_use_id: "t", content: "done" }, { type: "tool_result", tool_use_id: "u", content: [{ type: "text", text: "no" }], is_error: true }] }] })).toBe("[result] done [error] no");
    expect(promptOf({ messages: [{ role: "user", content: "go" }, { role: "assistant", tool_calls: [] }, { role: "tool", tool_call_id: "c", content: "ok" }] })).toBe("[result] ok");
    expect(promptOf({ input: [{ role: "user", content: "go" }, { type: "function_call", call_id: "c" }, { type: "function_call_output", call_id: "c", output: "42" }] })).toBe("[result] 42");
  });
  test("the text of each reply shape, whole and streamed", () => {
    expect(replyOf([{ type: "message", content: [{ type: "text", text: "hi" }] }])).toBe("hi");
    expect(replyOf([{ type: "content_block_delta", delta: { type: "text_delta", text: "h" } }, { type: "content_block_delta", delta: { text: "i" } }])).toBe("hi");
    expect(replyOf([{ choices: [{ message: { content: "hi" } }] }])).toBe("hi");
    expect(replyOf([{ choices: [{ delta: { content: "h" } }] }, { choices: [{ delta: { content: "i" } }] }, { choices: [], usage: {} }])).toBe("hi");
    expect(replyOf([{ type: "response.output_text.delta", delta: "hi" }])).toBe("hi");
    expect(replyOf([{ object: "response", output: [{ type: "message", content: [{ type: "output_text", text: "hi" }] }] }])).toBe("hi");
  });
  test("tool calls, whole and streamed, in each API", () => {
    const want = `ok[tool fs-file-write] {"path":"/a"}`;
    expect(replyOf([{ type: "message", content: [{ type: "text", text: "ok" }, { type: "tool_use", id: "t", name: "fs-file-write", input: { path: "/a" } }] }])).toBe(want);
    expect(replyOf([
      { type: "content_block_delta", delta: { type: "text_delta", text: "ok" } },
      { type: "content_block_start", index: 1, content_block: { type: "tool_use", id: "t", name: "fs-file-write", input: {} } },
      { type: "content_block_delta", index: 1, delta: { type: "input_json_delta", partial_json: "{\"path\":" } },
      { type: "content_block_delta", index: 1, delta: { type: "input_json_delta", partial_json: "\"/a\"}" } },
    ])).toBe(want);
    expect(replyOf([{ choices: [{ message: { content: "ok", tool_calls: [{ id: "c", type: "function", function: { name: "fs-file-write", arguments: "{\"path\":\"/a\"}" } }] } }] }])).toBe(want);
    expect(replyOf([
      { choices: [{ delta: { content: "ok" } }] },
      { choices: [{ delta: { tool_calls: [{ index: 0, id: "c", function: { name: "fs-file-write", arguments: "" } }] } }] },
      { choices: [{ delta: { tool_calls: [{ index: 0, function: { arguments: "{\"path\":\"/a\"}" } }] } }] },
    ])).toBe(want);
    expect(replyOf([{ object: "response", output: [{ type: "message", content: [{ type: "output_text", text: "ok" }] }, { type: "function_call", name: "fs-file-write", arguments: "{\"path\":\"/a\"}" }] }])).toBe(want);
    expect(replyOf([
      { type: "response.output_text.delta", delta: "ok" },
      { type: "response.output_item.added", item: { type: "function_call", name: "fs-file-write", arguments: "" } },
      { type: "response.function_call_arguments.delta", delta: "{\"path\":\"/a\"}" },
    ])).toBe(want);
  });
  test("a Responses API call of a tool in a namespace is named NAMESPACE.NAME, whole and streamed", () => {
    const want = `[tool mcp__vivary.fs_file_write] {"path":"/a"}`;
    const item = { type: "function_call", namespace: "mcp__vivary", name: "fs_file_write", arguments: "{\"path\":\"/a\"}" };
    expect(replyOf([{ object: "response", output: [item] }])).toBe(want);
    expect(replyOf([
      { type: "response.output_item.added", item: { ...item, arguments: "" } },
      { type: "response.function_call_arguments.delta", delta: "{\"path\":\"/a\"}" },
    ])).toBe(want);
  });
});

describe("token window", () => {
  const rate = { count: 100, per: "minute" as const, perMs: 60_000 };
  test("reserves up to the ceiling and refuses the request that would cross it; settling frees the rest", () => {
    const b = new TokenBudgets();
    const e1 = b.reserve("k", rate, 60, 1000)!;
    expect(b.reserve("k", rate, 41, 1001)).toBeNull();
    expect(b.reserve("k", rate, 40, 1002)).not.toBeNull();
    expect(b.reserve("k", rate, 1, 1003)).toBeNull();
    b.settle(e1, 10);
    expect(b.used("k", rate, 1004)).toBe(50);
    expect(b.reserve("k", rate, 50, 1005)).not.toBeNull();
  });
  test("entries leave the window after one period", () => {
    const b = new TokenBudgets();
    b.reserve("k", rate, 100, 1000);
    expect(b.reserve("k", rate, 1, 60_999)).toBeNull();
    expect(b.reserve("k", rate, 100, 61_001)).not.toBeNull();
  });
  test("replay rebuilds the window", () => {
    const b = new TokenBudgets();
    b.replay("k", [{ at: 1000, amount: 90 }]);
    expect(b.reserve("k", rate, 11, 2000)).toBeNull();
    expect(b.reserve("k", rate, 10, 2000)).not.toBeNull();
  });
});

describe("policy", () => {
  const load = (grant: string) => loadPolicyText([{ file: "p.kdl", text: `provider "c" { kind "anthropic"; url "https://api.anthropic.com"; credential "k"; }\nagent "mdl-p" {\n    grant "model-complete" { provider "c"; ${grant} }\n}` }], CATALOG);
  const problems = (grant: string) => problemsOf(() => load(grant));
  test("model patterns and a tokens budget load into the grant", () => {
    const g = load(`model "claude-*"; tokens max=200000 per="day";`).agents.get("mdl-p")!.grants.get("model-complete")!;
    expect(g.scopes).toEqual({ provider: ["c"], model: ["claude-*"] });
    expect(g.tokenBudget).toEqual({ count: 200000, per: "day", perMs: 86_400_000 });
    expect(g.budgets).toBeUndefined();
  });
  test.each([
    [`model "*";`, `p.kdl:3: model '*' refused: grants every model; name the models, or a family such as claude-*`],
    [`model "claude 3";`, `p.kdl:3: model 'claude 3' refused: is not a model name pattern (letters, digits, . _ : @ / - and *)`],
    [`model "claude-*"; tokens max=0 per="day";`, `p.kdl:3: 'tokens' takes max= a whole number from 1 to 1000000000000`],
    [`model "claude-*"; tokens max=10 per="week";`, `p.kdl:3: 'tokens' needs per="second", "minute", "hour" or "day"`],
    [`model "claude-*"; tokens max=10 per="day"; tokens max=20 per="day";`, `p.kdl:3: 'tokens' is given twice`],
    [``, `p.kdl:3: grant 'model-complete' needs at least one 'model'`],
  ])("%s is refused", (grant, problem) => {
    expect(problems(grant)).toContain(problem);
  });
  test("tokens is a node of model grants only", () => {
    expect(() => loadPolicyText([{ file: "p.kdl", text: `agent "mdl-q" { grant "fs-file-write" { path "/srv/reports"; tokens max=5 per="day"; } }` }], CATALOG)).toThrow("unknown node 'tokens' in grant 'fs-file-write'");
  });
  test("model names match patterns whole, case and dots exactly", () => {
    expect(refuseModelPattern("gpt-4o*")).toBeNull();
    expect(matchModel("gpt-4o-mini", ["gpt-4o*"])).toBe(true);
    expect(matchModel("gpt-4", ["gpt-4o*"])).toBe(false);
    expect(matchModel("claude-3.5", ["claude-3.5"])).toBe(true);
    expect(matchModel("claude-305", ["claude-3.5"])).toBe(false);
    expect(matchModel("xclaude-3", ["claude-*"])).toBe(false);
  });
});
