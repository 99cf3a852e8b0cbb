// Tables for the MCP bridge's pure part (mcp/tools.ts): tool arguments as argv, round-tripped
// through the broker's own argv parser; refusals of what argv cannot carry; call outcomes as tool
// results; the capability list's parsing; the one timing the bridge repeats from the broker; and
// the built bridge's own face outside a jail (run after a build).
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { LIMITS } from "../broker/server.ts";
import { CAPABILITIES } from "../capabilities/registry.ts";
import { parseArgv, type CapabilitySchema } from "../lib/capability.ts";
import { REFRESH_IDLE_MS } from "../mcp/broker-link.ts";
import { ArgumentError, parseCapabilityList, toArgv, toTools, toToolResult } from "../mcp/tools.ts";

const fsWrite = CAPABILITIES.get("fs-file-write")!.schema;
/** Every kind of property a capability's schema can have (lib/capability.ts PropertySchema). */
const kinds: CapabilitySchema = {
  ...fsWrite,
  title: "kinds-of-options",
  required: ["url"],
  properties: {
    url: { type: "string" },
    max_chars: { type: "integer", minimum: 1 },
    ratio: { type: "number" },
    links: { type: "boolean" },
    header: { type: "array", items: { type: "string" } },
    format: { type: "string", enum: ["markdown", "text"] },
  },
};

describe("toArgv", () => {
  const ok: [string, typeof fsWrite, Record<string, unknown>, string[]][] = [
    ["strings as options", fsWrite, { path: "/srv/a", content: "hi" }, ["--path", "/srv/a", "--content", "hi"]],
    ["a value that looks like an option stays a value", fsWrite, { path: "/srv/a", content: "--help" }, ["--path", "/srv/a", "--content", "--help"]],
    ["null is an option not given", fsWrite, { path: "/srv/a", content: "x", encoding: null }, ["--path", "/srv/a", "--content", "x"]],
    ["no arguments", fsWrite, {}, []],
  ];
  for (const [name, schema, args, argv] of ok) test(name, () => expect(toArgv(schema.title, schema, args)).toEqual(argv));

  test("every kind of property round-trips through the broker's parser", () => {
    const props = Object.entries(kinds.properties);
    const args: Record<string, unknown> = { url: "https://example.org/" };
    for (const [k, p] of props) {
      if (k in args) continue;
      if (p.type === "boolean") args[k] = true;
      else if (p.type === "integer") args[k] = 12;
      else if (p.type === "number") args[k] = 0.5;
      else if (p.type === "array") args[k] = ["a", "b"];
      else if (p.enum) args[k] = p.enum[0];
    }
    const parsed = parseArgv(kinds, toArgv("kinds-of-options", kinds, args));
    expect(parsed.help).toBe(false);
    for (const [k, v] of Object.entries(args)) expect((parsed as { args: Record<string, unknown> }).args[k]).toEqual(v);
  });

  test("false is a flag not given", () => {
    const flag = Object.entries(kinds.properties).find(([, p]) => p.type === "boolean");
    expect(flag).toBeDefined();
    expect(toArgv("kinds-of-options", kinds, { url: "https://example.org/", [flag![0]]: false })).toEqual(["--url", "https://example.org/"]);
  });

  test("an option the schema does not know goes through, for the broker to refuse", () => {
    expect(toArgv("fs-file-write", fsWrite, { mode: "0600" })).toEqual(["--mode", "0600"]);
    expect(toArgv("nope", undefined, { a: 1, b: true, c: ["x"] })).toEqual(["--a", "1", "--b", "--c", "x"]);
  });

  const refused: [string, Record<string, unknown>, string][] = [
    ["a number for a string", { path: 5 }, "fs-file-write: argument 'path' must be a string, not a number"],
    ["a boolean for a string", { content: true }, "fs-file-write: argument 'content' must be a string, not a boolean"],
    ["an object", { content: { a: 1 } }, "fs-file-write: argument 'content' must be a string, not an object"],
    ["a list for a string", { path: ["/a"] }, "fs-file-write: argument 'path' must be a string, not a list"],
    ["a name that is no option", { "path=/etc/x": "y" }, "fs-file-write: argument 'path=/etc/x' is not an option name"],
    ["a name with a dash", { "--help": true }, "fs-file-write: argument '--help' is not an option name"],
  ];
  for (const [name, args, message] of refused) {
    test(`refuses ${name}`, () => {
      expect(() => toArgv("fs-file-write", fsWrite, args)).toThrow(new ArgumentError(message));
    });
  }
  test("refuses a string for a boolean and a list of numbers", () => {
    const flag = Object.entries(kinds.properties).find(([, p]) => p.type === "boolean")![0];
    expect(() => toArgv("kinds-of-options", kinds, { [flag]: "yes" })).toThrow(`argument '${flag}' must be a boolean, not a string`);
    expect(() => toArgv("kinds-of-options", kinds, { header: [1] })).toThrow("argument 'header' must be a list of strings, not a list");
    expect(() => toArgv("kinds-of-options", kinds, { max_chars: "12" })).toThrow("argument 'max_chars' must be a number, not a string");
  });
});

describe("toToolResult", () => {
  test("success is stdout, not an error", () => {
    expect(toToolResult("c", { exit: 0, stdout: '{"a":1}\n', stderr: "" })).toEqual({ content: [{ type: "text", text: '{"a":1}\n' }], isError: false });
  });
  test("a failure is its first diagnostic line, an error", () => {
    expect(toToolResult("c", { exit: 77, stdout: "", stderr: "c: not granted\nmore\n" })).toEqual({ content: [{ type: "text", text: "c: not granted" }], isError: true });
  });
  test("a failure with no diagnostic says what failed", () => {
    expect(toToolResult("c", { exit: 70, stdout: "out", stderr: "" })).toEqual({ content: [{ type: "text", text: "c: failed with exit status 70" }], isError: true });
  });
});

describe("capability list", () => {
  test("tools carry each schema unchanged", () => {
    const list = { version: 1, capabilities: [{ name: "fs-file-write", schema: fsWrite }] };
    const tools = toTools(parseCapabilityList(JSON.stringify(list)));
    expect(tools).toEqual([{ name: "fs-file-write", title: "fs-file-write", description: fsWrite.description, inputSchema: JSON.parse(JSON.stringify(fsWrite)) }]);
  });
  for (const [name, text] of [
    ["another version", '{"version":2,"capabilities":[]}'],
    ["no list", '{"version":1}'],
    ["an entry with no schema", '{"version":1,"capabilities":[{"name":"x"}]}'],
    ["not JSON", "{"],
  ]) {
    test(`refuses ${name}`, () => expect(() => parseCapabilityList(text!)).toThrow());
  }
});

test("the bridge replaces an idle connection before the broker ends it", () => {
  expect(REFRESH_IDLE_MS).toBeLessThan(LIMITS.idleMs);
});

describe("viv-mcp's own face (dist/libexec/viv-mcp.mjs, outside a jail)", () => {
  const BRIDGE = join(import.meta.dir, "..", "dist", "libexec", "viv-mcp.mjs");
  const run = (...args: string[]) => {
    const p = Bun.spawnSync([BRIDGE, ...args], { env: { PATH: "/usr/bin:/bin" }, stdin: "ignore" });
    return { code: p.exitCode, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
  };
  test("--help prints its usage on stdout and exits 0", () => {
    const r = run("--help");
    expect([r.code, r.stdout.split("\n")[0], r.stderr]).toEqual([0, "usage: viv-mcp", ""]);
  });
  test("an argument is a usage error, 64, one line", () => {
    expect(run("--serve")).toEqual({ code: 64, stdout: "", stderr: "viv-mcp: unexpected argument '--serve' (try 'viv-mcp --help')\n" });
  });
  test("outside a jail it has no capability list: 69, one line", () => {
    expect(run()).toEqual({ code: 69, stdout: "", stderr: "viv-mcp: cannot read '/run/vivary/capabilities.json': ENOENT; viv-mcp runs inside a vivary jail\n" });
  });
});
