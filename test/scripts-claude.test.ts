// The scripted model of test/bats/agent-claude.bats (test/scripts-claude.ts), turn by turn, on
// requests shaped as Claude Code sends them: the prompt after its system reminders, MCP tools
// deferred behind ToolSearch, tool results with reminders appended.
import { describe, expect, test } from "bun:test";
import { claudePrompt, claudeScript } from "./scripts-claude.ts";

const reminder = (s: string) => ({ type: "text", text: `<system-reminder>\n${s}\n</system-reminder>` });
const WRITE = "mcp__vivary__fs-file-write";
const prompt = (text: string) => ({ role: "user", content: [reminder("# Environment"), reminder("deferred tools"), { type: "text", text, cache_control: { type: "ephemeral" } }] });
const use = (id: string, name: string, input: unknown) => ({ role: "assistant", content: [{ type: "tool_use", id, name, input }] });
const result = (id: string, content: unknown, isError = false) => ({ role: "user", content: [{ type: "tool_result", tool_use_id: id, content, ...(isError ? { is_error: true } : {}) }] });
const deferred = [{ name: "Bash" }, { name: "ToolSearch" }, { name: "DeferredToolPlaceholder", defer_loading: true }];
const loaded = [...deferred, { name: WRITE }];

const TASK = `call ${WRITE} {"path":"/srv/a","content":"x"}\ncall ${WRITE} {"path":"/etc/x","content":"y"}`;

describe("claudeScript", () => {
  test("the prompt is the user's text without Claude Code's reminders", () => {
    expect(claudePrompt({ messages: [prompt("hello")] })).toBe("hello");
    expect(claudeScript({ messages: [prompt("hello")], tools: deferred }, "k")).toEqual({ kind: "text", text: "scripted reply to: hello", usage: undefined });
  });

  test("a deferred tool is fetched with ToolSearch first, then called", () => {
    expect(claudeScript({ messages: [prompt(TASK)], tools: deferred }, "k")).toEqual({ kind: "tool", name: "ToolSearch", input: { query: `select:${WRITE}` }, usage: undefined });
    const searched = [prompt(TASK), use("t1", "ToolSearch", { query: `select:${WRITE}` }), result("t1", [{ type: "tool_reference", tool_name: WRITE }])];
    expect(claudeScript({ messages: searched, tools: loaded }, "k")).toEqual({ kind: "tool", name: WRITE, input: { path: "/srv/a", content: "x" }, usage: undefined });
  });

  test("a tool offered in full is called at once, and the next call follows its result", () => {
    expect(claudeScript({ messages: [prompt(TASK)], tools: loaded }, "k")).toMatchObject({ kind: "tool", name: WRITE, input: { path: "/srv/a" } });
    const one = [prompt(TASK), use("t1", WRITE, {}), result("t1", [{ type: "text", text: '{"bytes_written":1}\n\n' }, reminder("tokens left")])];
    expect(claudeScript({ messages: one, tools: loaded }, "k")).toMatchObject({ kind: "tool", name: WRITE, input: { path: "/etc/x" } });
  });

  test("after the last result the answer lists each, ok or error, reminders cut out", () => {
    const all = [
      prompt(TASK),
      use("t0", "ToolSearch", { query: `select:${WRITE}` }),
      result("t0", [{ type: "tool_reference", tool_name: WRITE }]),
      use("t1", WRITE, {}),
      result("t1", [{ type: "text", text: '{"bytes_written":1}\n\n' }, reminder("tokens left")]),
      use("t2", WRITE, {}),
      result("t2", "fs-file-write: cannot write '/etc/x'\n\n<system-reminder>\nx\n</system-reminder>", true),
    ];
    expect(claudeScript({ messages: all, tools: loaded }, "k")).toEqual({ kind: "text", text: `ok: {"bytes_written":1}\nerror: fs-file-write: cannot write '/etc/x'`, usage: undefined });
  });

  test("a usage line sets what every reply reports; a tool neither offered nor searchable is said so", () => {
    expect(claudeScript({ messages: [prompt(`usage 100000 7\n${TASK}`)], tools: loaded }, "k")).toMatchObject({ kind: "tool", usage: { input_tokens: 100000, output_tokens: 7 } });
    expect(claudeScript({ messages: [prompt(TASK)], tools: [{ name: "Bash" }] }, "k")).toEqual({ kind: "text", text: `not offered: ${WRITE}`, usage: undefined });
  });
});
