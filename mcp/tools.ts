// What the MCP bridge makes of vivary's capability interface, with no I/O: the granted
// capabilities (/run/vivary/capabilities.json) as MCP tools whose input schemas are the
// capabilities' own, unchanged; a tool call's arguments as the argv a capability takes
// (DESIGN.md: `--kebab-case` options, a list a repeated option, a boolean a bare flag); and a
// call's outcome as a tool result, a failure with its one-line diagnostic and `isError`. It
// translates and decides nothing: scope, ranges and required options are the broker's to check.
import { kebab, type CapabilitySchema } from "../lib/capability.ts";

export interface GrantedCapability {
  name: string;
  schema: CapabilitySchema;
}

/** One MCP tool (the `Tool` of the MCP schema) for each granted capability. */
export interface McpTool {
  name: string;
  title: string;
  description: string;
  inputSchema: CapabilitySchema;
}

export interface CallOutcome {
  exit: number;
  stdout: string;
  stderr: string;
}

export interface ToolResult {
  [key: string]: unknown;
  content: { type: "text"; text: string }[];
  isError: boolean;
}

/** A tool call the bridge cannot put into argv; answered as a usage error, never sent. */
export class ArgumentError extends Error {
  override name = "ArgumentError";
}

/** Parses capabilities.json (`{version: 1, capabilities: [{name, schema}]}`); throws on anything off. */
export function parseCapabilityList(text: string): GrantedCapability[] {
  const doc = JSON.parse(text) as { version?: unknown; capabilities?: unknown };
  if (doc.version !== 1 || !Array.isArray(doc.capabilities)) throw new Error("not a version 1 capability list");
  return doc.capabilities.map((c: { name?: unknown; schema?: { type?: unknown; properties?: unknown } }) => {
    if (typeof c.name !== "string" || typeof c.schema !== "object" || c.schema === null || c.schema.type !== "object" || typeof c.schema.properties !== "object") {
      throw new Error("an entry has no name or no object schema");
    }
    return c as GrantedCapability;
  });
}

export function toTools(caps: readonly GrantedCapability[]): McpTool[] {
  return caps.map(({ name, schema }) => ({ name, title: schema.title, description: schema.description, inputSchema: schema }));
}

const OPTION_NAME = /^[a-z0-9][a-z0-9_]*$/;
const typeOf = (v: unknown) => (Array.isArray(v) ? "a list" : typeof v === "object" ? "an object" : `a ${typeof v}`);
const wanted = (t: string) => (t === "array" ? "a list of strings" : t === "integer" || t === "number" ? "a number" : `a ${t}`);

/**
 * argv for a call of `cap` with `args`, as viv-stub would send it from a shell. A value whose
 * JSON type is not the type of its property is refused here (argv would change its meaning: the
 * string "true" is not `true`); a null is an option not given. An option the schema does not
 * know goes through as it is, so that the broker refuses and records it.
 */
export function toArgv(cap: string, schema: CapabilitySchema | undefined, args: Readonly<Record<string, unknown>> | undefined): string[] {
  const argv: string[] = [];
  for (const [key, value] of Object.entries(args ?? {})) {
    if (!OPTION_NAME.test(key)) throw new ArgumentError(`${cap}: argument '${key}' is not an option name`);
    if (value === null || value === undefined) continue;
    const flag = `--${kebab(key)}`;
    const prop = schema && Object.hasOwn(schema.properties, key) ? schema.properties[key]! : undefined;
    const type = prop?.type ?? (typeof value === "boolean" ? "boolean" : Array.isArray(value) ? "array" : typeof value === "number" ? "number" : "string");
    const refuse = () => new ArgumentError(`${cap}: argument '${key}' must be ${wanted(type)}, not ${typeOf(value)}`);
    switch (type) {
      case "boolean":
        if (typeof value !== "boolean") throw refuse();
        if (value) argv.push(flag);
        break;
      case "array":
        if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) throw refuse();
        for (const v of value) argv.push(flag, v);
        break;
      case "integer":
      case "number":
        if (typeof value !== "number" || !Number.isFinite(value)) throw refuse();
        argv.push(flag, String(value));
        break;
      default:
        if (typeof value !== "string") throw refuse();
        argv.push(flag, value);
    }
  }
  return argv;
}

/** The first line of a diagnostic, or a line that says what failed when there is none. */
function diagnostic(cap: string, o: CallOutcome): string {
  const line = o.stderr.split("\n").find((l) => l.trim() !== "");
  return line?.trim() ?? `${cap}: failed with exit status ${o.exit}`;
}

/** A call's outcome as a tool result: stdout on success; the one-line diagnostic and isError otherwise. */
export function toToolResult(cap: string, o: CallOutcome): ToolResult {
  if (o.exit === 0) return { content: [{ type: "text", text: o.stdout }], isError: false };
  return errorResult(diagnostic(cap, o));
}

export function errorResult(line: string): ToolResult {
  return { content: [{ type: "text", text: line }], isError: true };
}
