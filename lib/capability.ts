// The capability interface (DESIGN.md): what a capability definition holds, and how argv is
// parsed against its JSON Schema. Shared by the broker (which parses what an agent sent) and by
// each capability's own executable; it has no I/O.
import type { BrowserOpener } from "./browser.ts";
import type { ModelAccess } from "./model.ts";
import { usageError, VivError } from "./exit.ts";
import type { Secret } from "./secret.ts";

export type Risk = "low" | "medium" | "high" | "critical";

export interface PropertySchema {
  type: "string" | "integer" | "number" | "boolean" | "array";
  description?: string;
  enum?: string[];
  default?: unknown;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  items?: { type: "string" };
  maxItems?: number;
}

/** A capability's input schema: draft 2020-12 plus vivary's x-vivary-* annotations. */
export interface CapabilitySchema {
  $schema: string;
  title: string;
  description: string;
  type: "object";
  additionalProperties: false;
  required: string[];
  properties: Record<string, PropertySchema>;
  "x-vivary-risk": Risk;
  "x-vivary-scopes": string[];
  "x-vivary-credential": string | null;
  /** The provider kinds a capability that acts through a service can use (providers/registry.ts). */
  "x-vivary-providers"?: string[];
  /** Whether a grant may set a token budget for the model endpoint (`tokens max=N per=…`). */
  "x-vivary-token-budget"?: boolean;
  "x-vivary-output": Record<string, unknown>;
  /** The budgets a grant may limit (grant nodes of these names), with what each measures. */
  "x-vivary-budgets"?: Record<string, { measure: "money" | "count"; cumulative: boolean; doc: string; example: string }>;
  /** Scope kinds whose nodes carry properties: each property, whether it is required, and its meaning. */
  "x-vivary-scope-properties"?: Record<string, Record<string, { required: boolean; doc: string }>>;
  /** Commands for the man page's EXAMPLES, each with the start of what it prints; a test runs them. */
  "x-vivary-examples"?: { description: string; command: string; output: string }[];
}

export type Args = Readonly<Record<string, string | number | boolean | readonly string[]>>;

/** The effective scope handed to a capability: the values of its grant, by kind. */
export type Scopes = Readonly<Record<string, readonly string[]>>;

/** A provider as the operator configured it (policy `provider` node), without its secret. */
export interface ProviderConfig {
  name: string;
  kind: string;
  url: string;
  settings: Readonly<Record<string, string>>;
}

/**
 * What the broker hands a call besides its arguments and scope, resolved at dispatch and held in
 * memory: the provider and secret of the credential stage, and host resources the broker owns and
 * a capability may not start itself (`browser`, for capabilities that read the web).
 */
export interface CallContext {
  provider?: ProviderConfig;
  secret?: Secret;
  browser?: BrowserOpener;
  /** For model-complete: a completion under the grant's models and token budget. */
  model?: ModelAccess;
  /** What the capability's quote() found before the call was approved (the price it will pay). */
  quote?: unknown;
}

/**
 * What one call costs against one of its capability's budgets (x-vivary-budgets): `amount` in
 * minor units of `unit` (a currency) for money, or a count; `key` splits a budget (a currency, a
 * recipient). The broker reserves it before the approval and before the effect.
 */
export interface Cost {
  budget: string;
  key: string;
  amount: bigint;
  /** The currency of a money amount; "" for a count. */
  unit: string;
}

/** A failure of run() before any effect: the broker releases what the call reserved of its budgets. */
export class NoEffect extends VivError {}

export interface Capability<A = Args, R = unknown> {
  schema: CapabilitySchema;
  /** Pure: is this call inside the scope? Returns the reason for a denial, or null. */
  authorize(args: A, scopes: Scopes): string | null;
  /** For a capability that acts through a provider: which granted provider this call uses. */
  provider?(args: A, scopes: Scopes): string;
  /** Performs the call on the host, confined. Throws VivError for an expected failure. */
  run(args: A, scopes: Scopes, context?: CallContext): R | Promise<R>;
  /**
   * Optional: true when run() only reads and has no effect of its own beyond its result (no write,
   * no request out). The broker then commits the call's intent and outcome together, both before
   * the reply (one sync instead of two); nothing of the call leaves the broker before both are durable.
   */
  readOnly?: boolean;
  /** The result as standard output, when it is not one line of JSON (a format the arguments chose). */
  render?(result: R, args: A): string;
  /** Optional: what the call acts on, resolved under its scope (and its quote), for an operator deciding on it. */
  target?(args: A, scopes: Scopes, quote?: unknown): string;
  /**
   * Optional: looks up, read-only and through the call's provider, what the call will cost (a
   * price), before the budgets are reserved and the approval asked; the result reaches run() in
   * its context. Throws VivError (69, 65) when the provider fails.
   */
  quote?(args: A, scopes: Scopes, context: CallContext): Promise<unknown>;
  /** Optional: what the call costs against the capability's budgets, from its arguments and quote. Pure. */
  costs?(args: A, scopes: Scopes, quote?: unknown): Cost[];
  /**
   * Optional: after a crash, removes what an interrupted run of this call can have left on the
   * host (confined like run); returns a short note for the record.
   */
  recover?(args: A, scopes: Scopes): string | Promise<string>;
}

export const kebab = (prop: string) => prop.replace(/_/g, "-");

export type ParsedArgv = { help: true } | { help: false; args: Args };

/**
 * Parses argv against a schema. Options are `--kebab-name VALUE` or `--kebab-name=VALUE`; a
 * boolean is a bare flag; an array is a repeated flag. The token after an option that takes a
 * value is always its value, whatever it looks like. Unknown, duplicated and abbreviated options
 * and stray arguments are usage errors. `--help` in option position asks for the schema.
 */
export function parseArgv(schema: CapabilitySchema, argv: readonly string[]): ParsedArgv {
  const byFlag = flagsOf(schema);
  const out: Record<string, string | number | boolean | string[]> = {};
  for (let i = 0; i < argv.length; i++) {
    const tok = argv[i]!;
    if (tok === "--") {
      if (i + 1 < argv.length) throw usageError(`unexpected argument '${argv[i + 1]}'`);
      break;
    }
    if (tok === "--help") return { help: true };
    if (!tok.startsWith("--")) throw usageError(`unexpected argument '${tok}'`);
    const eq = tok.indexOf("=");
    const flag = eq < 0 ? tok : tok.slice(0, eq);
    const entry = byFlag.get(flag);
    if (!entry) throw usageError(`unknown option '${flag}'`);
    const [key, prop] = entry;
    if (prop.type === "boolean") {
      if (eq >= 0) throw usageError(`option '${flag}' is a flag and takes no value`);
      if (key in out) throw usageError(`option '${flag}' is given twice`);
      out[key] = true;
      continue;
    }
    let raw: string;
    if (eq >= 0) raw = tok.slice(eq + 1);
    else if (i + 1 < argv.length) raw = argv[++i]!;
    else throw usageError(`option '${flag}' needs a value`);
    if (prop.type === "array") {
      const list = (out[key] ??= []) as string[];
      if (prop.maxItems !== undefined && list.length >= prop.maxItems) throw usageError(`option '${flag}' is given more than ${prop.maxItems} times`);
      list.push(checkString(flag, raw, prop));
      continue;
    }
    if (key in out) throw usageError(`option '${flag}' is given twice`);
    out[key] = convert(flag, raw, prop);
  }
  for (const req of schema.required) {
    if (!(req in out)) throw usageError(`missing required option '--${kebab(req)}'`);
  }
  for (const [key, prop] of Object.entries(schema.properties)) {
    if (!(key in out) && prop.default !== undefined) out[key] = prop.default as string;
  }
  for (const v of Object.values(out)) if (Array.isArray(v)) Object.freeze(v);
  return { help: false, args: Object.freeze(out) };
}

type FlagTable = Map<string, readonly [string, PropertySchema]>;
const flagTables = new WeakMap<CapabilitySchema, FlagTable>();

/** `--kebab-name` → property, built once per schema: parsing is on every call's path. */
function flagsOf(schema: CapabilitySchema): FlagTable {
  let table = flagTables.get(schema);
  if (!table) {
    table = new Map(Object.entries(schema.properties).map(([k, v]) => [`--${kebab(k)}`, [k, v] as const]));
    flagTables.set(schema, table);
  }
  return table;
}

function checkString(flag: string, raw: string, prop: PropertySchema): string {
  const len = [...raw].length;
  if (prop.minLength !== undefined && len < prop.minLength) throw usageError(`option '${flag}' must be at least ${prop.minLength} characters`);
  if (prop.maxLength !== undefined && len > prop.maxLength) throw usageError(`option '${flag}' must be at most ${prop.maxLength} characters`);
  if (prop.enum && !prop.enum.includes(raw)) throw usageError(`option '${flag}' must be one of ${prop.enum.map((e) => `'${e}'`).join(", ")}`);
  return raw;
}

function convert(flag: string, raw: string, prop: PropertySchema): string | number {
  if (prop.type === "string") return checkString(flag, raw, prop);
  const ok = prop.type === "integer" ? /^-?(0|[1-9][0-9]*)$/.test(raw) : /^-?(0|[1-9][0-9]*)(\.[0-9]+)?$/.test(raw);
  const n = Number(raw);
  if (!ok || !Number.isSafeInteger(Math.trunc(n))) throw usageError(`option '${flag}' needs ${prop.type === "integer" ? "a whole number" : "a number"}, not '${raw}'`);
  if (prop.minimum !== undefined && n < prop.minimum) throw usageError(`option '${flag}' must be at least ${prop.minimum}`);
  if (prop.maximum !== undefined && n > prop.maximum) throw usageError(`option '${flag}' must be at most ${prop.maximum}`);
  return n;
}

/** A call's standard output: the capability's own rendering, or its result as one line of JSON. */
export function renderResult<A, R>(capability: Capability<A, R>, result: R, args: A): string {
  return capability.render ? capability.render(result, args) : `${JSON.stringify(result)}\n`;
}
