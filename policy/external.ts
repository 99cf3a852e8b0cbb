// Third-party capabilities: a top-level `capability "NAME" { exec "/abs/path"; schema-sha256 "HEX" }`
// node registers an executable that keeps the capability interface (DESIGN.md). Loading the node
// runs `EXEC --help` (as the capability's own unprivileged uid when loaded as root, cleared
// environment, cwd /, a timeout and a size cap), and accepts the schema it printed only when its
// sha256 is the one the operator pinned: a changed schema stops matching until it is pinned again.
// The schema must be one the broker can enforce alone: options of the built-in kinds, a risk, no
// scope kinds, no providers or budgets. The broker then governs the capability like a built-in.
import { statSync } from "node:fs";
import { lineOf, type Node } from "./kdl.ts";
import { RISKS, type CapabilityFacts, type ExternalCapability, type Risk } from "./model.ts";

const NAME = /^[a-z][a-z0-9]*(-[a-z0-9]+)+$/;
const SHA256 = /^[0-9a-f]{64}$/;
const PROPERTY_TYPES = ["string", "integer", "number", "boolean", "array"];
/** What `--help` may print, and how long it may take. */
export const HELP_MAX_BYTES = 64 << 10;
export const HELP_TIMEOUT_MS = 5_000;
export const DEFAULT_TIMEOUT_MS = 10_000;
const MAX_TIMEOUT_MS = 300_000;
/** The environment every run of an external capability starts from (plus its scope and credential). */
export const EXTERNAL_PATH = "/usr/local/bin:/usr/bin:/bin";

/** Host uids of external capabilities: FNV-1a of `capability/NAME` into the agents' reserved range. */
export function capabilityUid(name: string, agentUid: (n: string) => number): number {
  return agentUid(`capability/${name}`);
}

/** The argv prefix that runs a program as `uid` with no privileges left, in its own session. */
export function asUid(uid: number | null): string[] {
  if (uid === null) return ["setsid"];
  return ["setsid", "setpriv", `--reuid=${uid}`, `--regid=${uid}`, "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--pdeathsig", "KILL", "--"];
}

/** The uid a capability runs as: its own when the broker is root, else the broker's (tests as a user). */
export const runUid = (uid: number): number | null => (process.getuid?.() === 0 ? uid : null);

/** Runs `EXEC --help` confined and returns its stdout bytes, or the reason it failed. */
/** What changes when the file is replaced or written: compared before each run of a registered capability. */
export function fileIdentity(st: { dev: number; ino: number; size: number; mtimeMs: number; ctimeMs: number }): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

export function printedSchema(exec: string, uid: number): { bytes: Uint8Array; identity: string } | { reason: string } {
  let st;
  try {
    st = statSync(exec);
  } catch (e) {
    return { reason: `cannot use '${exec}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` };
  }
  if (!st.isFile() || (st.mode & 0o111) === 0) return { reason: `'${exec}' is not an executable file` };
  if (st.mode & 0o022) return { reason: `'${exec}' is writable by group or others: only its owner may change what runs` };
  const r = Bun.spawnSync([...asUid(runUid(uid)), exec, "--help"], { cwd: "/", env: { PATH: EXTERNAL_PATH }, stdin: "ignore", stdout: "pipe", stderr: "pipe", timeout: HELP_TIMEOUT_MS, maxBuffer: HELP_MAX_BYTES + 1 });
  if (r.exitedDueToTimeout) return { reason: `'${exec} --help' did not finish within ${HELP_TIMEOUT_MS / 1000}s` };
  if (r.stdout.length > HELP_MAX_BYTES) return { reason: `'${exec} --help' printed more than ${HELP_MAX_BYTES} bytes` };
  if (r.exitCode !== 0) return { reason: `'${exec} --help' exited with ${r.exitCode ?? r.signalCode}` };
  return { bytes: r.stdout, identity: fileIdentity(st) };
}

export const sha256 = (bytes: Uint8Array) => new Bun.CryptoHasher("sha256").update(bytes).digest("hex");

/** Why a printed schema cannot be governed by the broker, or null. */
export function refuseSchema(name: string, s: unknown): string | null {
  if (typeof s !== "object" || s === null || Array.isArray(s)) return "its schema is not a JSON object";
  const o = s as Record<string, unknown>;
  if (o.title !== name) return `its schema's title is '${String(o.title)}', not '${name}'`;
  if (o.type !== "object" || o.additionalProperties !== false) return `its schema must be "type": "object" with "additionalProperties": false`;
  if (typeof o.description !== "string") return "its schema has no description";
  const props = o.properties;
  if (typeof props !== "object" || props === null || Array.isArray(props)) return "its schema has no properties object";
  for (const [k, p] of Object.entries(props as Record<string, Record<string, unknown>>)) {
    if (!/^[a-z][a-z0-9_]{0,63}$/.test(k)) return `property '${k}' is not a lower-case name`;
    if (typeof p !== "object" || p === null || !PROPERTY_TYPES.includes(p.type as string)) return `property '${k}' must have a type of ${PROPERTY_TYPES.join(", ")}`;
    if (p.type === "array" && (p.items as { type?: string } | undefined)?.type !== "string") return `property '${k}' is an array of something other than strings`;
  }
  if (!Array.isArray(o.required) || o.required.some((r) => typeof r !== "string" || !(r in (props as object)))) return "its schema's required names properties it does not have";
  if (!RISKS.includes(o["x-vivary-risk"] as never)) return `its x-vivary-risk must be one of ${RISKS.join(", ")}`;
  const scopes = o["x-vivary-scopes"];
  if (!Array.isArray(scopes)) return "its schema has no x-vivary-scopes list";
  if (scopes.length) return `it declares scope kinds (${scopes.join(", ")}): a registered capability has none; the broker cannot check them for it`;
  const cred = o["x-vivary-credential"];
  if (cred !== null && (typeof cred !== "string" || !/^[a-z][a-z0-9-]{0,63}$/.test(cred))) return "its x-vivary-credential must be null or a short name";
  if (typeof o["x-vivary-output"] !== "object" || o["x-vivary-output"] === null) return "its schema has no x-vivary-output";
  for (const k of ["x-vivary-providers", "x-vivary-budgets", "x-vivary-scope-properties"]) if (k in o) return `it declares ${k}, which only built-in capabilities may`;
  return null;
}

function duration(v: unknown): number | null {
  const m = typeof v === "string" ? /^([1-9][0-9]{0,3})(s|m)$/.exec(v) : null;
  return m ? Number(m[1]) * (m[2] === "s" ? 1000 : 60_000) : null;
}

/**
 * Loads one `capability` node: its settings, then the schema its executable prints, checked
 * against the pinned digest. Returns the capability, or the problems (each `file:line: …`).
 */
export function loadExternal(file: string, n: Node, builtIn: (name: string) => boolean, agentUid: (n: string) => number): ExternalCapability | string[] {
  const at = (node: Node, msg: string) => [`${file}:${lineOf(node)}: ${msg}`];
  if (n.values.length !== 1 || typeof n.values[0] !== "string" || Object.keys(n.properties).length) return at(n, "'capability' takes one capability name");
  const name = n.values[0];
  if (!NAME.test(name)) return at(n, `capability name '${name}' must be lower-case words joined by '-' (like 'weather-forecast-read')`);
  if (builtIn(name)) return at(n, `capability '${name}' is built in; a registered capability needs a name of its own`);
  const given: Record<string, string> = {};
  for (const c of n.children) {
    if (!["exec", "schema-sha256", "timeout"].includes(c.name)) return at(c, `unknown node '${c.name}' in capability '${name}' (expected 'exec', 'schema-sha256', 'timeout')`);
    if (c.name in given) return at(c, `'${c.name}' is given twice for capability '${name}'`);
    if (c.children.length || Object.keys(c.properties).length || c.values.length !== 1 || typeof c.values[0] !== "string") return at(c, `'${c.name}' takes one string`);
    given[c.name] = c.values[0];
  }
  const exec = given.exec;
  if (!exec || !exec.startsWith("/") || exec.includes("\0")) return at(n, `capability '${name}' needs 'exec' with an absolute path`);
  const pinned = given["schema-sha256"];
  if (pinned === undefined || !SHA256.test(pinned)) return at(n, `capability '${name}' needs 'schema-sha256' with the 64 hex digits 'viv caps pin ${exec}' prints`);
  const timeoutMs = given.timeout === undefined ? DEFAULT_TIMEOUT_MS : duration(given.timeout);
  if (timeoutMs === null || timeoutMs > MAX_TIMEOUT_MS) return at(n, `timeout '${given.timeout}' is not a duration from "1s" to "5m"`);
  const uid = capabilityUid(name, agentUid);
  const printed = printedSchema(exec, uid);
  if ("reason" in printed) return at(n, `capability '${name}': ${printed.reason}`);
  const digest = sha256(printed.bytes);
  if (digest !== pinned) return at(n, `capability '${name}': the schema '${exec} --help' prints has sha256 ${digest}, not the pinned ${pinned}; review it, then pin it again`);
  let schema: unknown;
  try {
    schema = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(printed.bytes));
  } catch {
    return at(n, `capability '${name}': '${exec} --help' did not print JSON`);
  }
  const why = refuseSchema(name, schema);
  if (why) return at(n, `capability '${name}' refused: ${why}`);
  return { name, exec, digest, identity: printed.identity, uid, timeoutMs, schema: schema as ExternalCapability["schema"], where: `${file}:${lineOf(n)}` };
}

/** What the policy loader needs to know of a registered capability. */
export function catalogEntry(x: ExternalCapability): CapabilityFacts {
  return { scopes: [], risk: x.schema["x-vivary-risk"] as Risk, credential: x.schema["x-vivary-credential"] !== null, providerKinds: new Map() };
}
