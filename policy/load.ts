// Loads a policy (a KDL file or a directory of *.kdl) in two steps and fails closed: parse, then
// validate every node and property: agents with their grants, and the providers those grants
// name (each setting checked by its provider kind, learned from the catalog). Any error is
// reported as file:line and the whole policy is refused; there is no default and no partial policy.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { lineOf, parseKdl, type Node } from "./kdl.ts";
import { CPU_RANGE, RISKS, SECRET_ID, type AgentPolicy, type Backend, type CapabilityFacts, type Catalog, type ExternalCapability, type Grant, type Limits, type Policy, type Provider, type ProviderKindFacts, type Rate, type Risk } from "./model.ts";
import { refuseAttendeeBound, refuseAttendeeDomain, refuseBroadDirectory, refuseBroadUrl, refuseCalendarName, refuseContact, refuseModelPattern, refuseProviderUrl, refuseQuantityBound, refuseScopeId, refuseSkuPattern } from "./scope.ts";
import { deviceScope } from "./scope.ts";
import { loadCeiling, settleCurrency } from "./budgets.ts";
import { catalogEntry, loadExternal } from "./external.ts";

export class PolicyError extends Error {
  override name = "PolicyError";
  constructor(readonly problems: string[]) {
    super(problems[0] ?? "invalid policy");
  }
}

const AGENT_NAME = /^[a-z][a-z0-9-]{0,31}$/;
const PROVIDER_NAME = /^[a-z][a-z0-9-]{0,63}$/;
/** Settings every provider has, whatever its kind. */
const COMMON_SETTINGS = ["kind", "url", "credential"];
const UID_BASE = 200_000;
const UID_SPAN = 800_000;

/** Validators for each scope kind a capability may declare. */
const SCOPE_KINDS: Record<string, (v: string) => string | null> = {
  path: refuseBroadDirectory,
  url: refuseBroadUrl,
  contact: refuseContact,
  model: refuseModelPattern,
  calendar: refuseCalendarName,
  "attendee-domain": refuseAttendeeDomain,
  sku: refuseSkuPattern,
  "max-quantity": refuseQuantityBound,
  "shipping-address": refuseScopeId,
};

/** A critical capability's approval when its grant names none. */
export const DEFAULT_APPROVAL_MS = 5 * 60_000;
const MAX_APPROVAL_MS = 24 * 3_600_000;
const refuseSecretId = (v: string) => (SECRET_ID.test(v) ? null : `must match ${SECRET_ID.source}`);
const quoted = (list: Iterable<string>) => [...list].map((k) => `'${k}'`).join(", ");

const UNITS_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PER_MS: Record<string, number> = { second: 1000, minute: 60_000, hour: 3_600_000, day: 86_400_000 };
const SIZE: Record<string, number> = { K: 1 << 10, M: 1 << 20, G: 1 << 30 };

/** A stable unprivileged host uid for an agent name (FNV-1a into a reserved range). */
export function agentUid(name: string): number {
  let h = 0x811c9dc5;
  for (const c of Buffer.from(name)) h = Math.imul(h ^ c, 0x01000193) >>> 0;
  return UID_BASE + (h % UID_SPAN);
}

class Problems {
  list: string[] = [];
  warnings: string[] = [];
  constructor(private file: string) {}
  at(node: Node, msg: string) {
    this.list.push(`${this.file}:${lineOf(node)}: ${msg}`);
  }
  warn(node: Node, msg: string) {
    this.warnings.push(`${this.file}:${lineOf(node)}: ${msg}`);
  }
  where(node: Node) {
    return `${this.file}:${lineOf(node)}`;
  }
}

function onlyArgs(p: Problems, n: Node, count: number, what: string): boolean {
  if (Object.keys(n.properties).length) {
    p.at(n, `'${n.name}' takes no properties (got '${Object.keys(n.properties)[0]}')`);
    return false;
  }
  if (n.values.length !== count || n.values.some((v) => typeof v !== "string")) {
    p.at(n, `'${n.name}' takes ${what}`);
    return false;
  }
  return true;
}

function noChildren(p: Problems, n: Node): boolean {
  if (n.children.length) {
    p.at(n, `'${n.name}' takes no children`);
    return false;
  }
  return true;
}

function onlyProps(p: Problems, n: Node, allowed: string[]): boolean {
  for (const k of Object.keys(n.properties)) {
    if (!allowed.includes(k)) {
      p.at(n, `unknown property '${k}' on '${n.name}' (expected ${allowed.map((a) => `'${a}'`).join(", ")})`);
      return false;
    }
  }
  return true;
}

function duration(v: unknown): number | null {
  const m = typeof v === "string" ? /^([1-9][0-9]{0,6})([smhd])$/.exec(v) : null;
  return m ? Number(m[1]) * UNITS_MS[m[2]!]! : null;
}

function size(v: unknown): number | null {
  const m = typeof v === "string" ? /^([1-9][0-9]{0,6})([KMG])$/.exec(v) : null;
  return m ? Number(m[1]) * SIZE[m[2]!]! : null;
}

/** `approval timeout="5m" [via="/abs/program"]`, or `approval "never"`. */
function loadApproval(p: Problems, c: Node, g: Grant, optOut: { never: boolean }) {
  if (!noChildren(p, c) || !onlyProps(p, c, ["timeout", "via"])) return;
  if (g.approval || optOut.never) return void p.at(c, "'approval' is given twice");
  if (c.values.length === 1 && c.values[0] === "never" && Object.keys(c.properties).length === 0) {
    optOut.never = true;
    return;
  }
  if (c.values.length) return void p.at(c, `'approval' takes timeout= (and via=), or the one value "never"`);
  const { timeout, via } = c.properties;
  const ms = duration(timeout ?? "5m");
  if (ms === null || ms > MAX_APPROVAL_MS) return void p.at(c, `approval timeout '${timeout}' is not a duration from "1s" to "24h"`);
  if (via !== undefined && (typeof via !== "string" || !via.startsWith("/") || via.includes("\0"))) {
    return void p.at(c, `approval via '${via}' must be an absolute path to a program`);
  }
  g.approval = via === undefined ? { timeoutMs: ms } : { timeoutMs: ms, via };
}

/** The model endpoint's token budget, `tokens max=200000 per="day"`: at most N tokens in any window of one period. */
function loadTokenBudget(p: Problems, c: Node, g: Grant) {
  if (!noChildren(p, c) || !onlyProps(p, c, ["max", "per"])) return;
  const count = c.properties.max;
  const perMs = PER_MS[String(c.properties.per)];
  if (c.values.length !== 0 || typeof count !== "number" || !Number.isInteger(count) || count < 1 || count > 1e12) {
    p.at(c, `'${c.name}' takes max= a whole number from 1 to 1000000000000`);
  } else if (!perMs) {
    p.at(c, `'${c.name}' needs per="second", "minute", "hour" or "day"`);
  } else if (g.tokenBudget) {
    p.at(c, `'${c.name}' is given twice`);
  } else g.tokenBudget = { count, per: c.properties.per as Rate["per"], perMs };
}

/**
 * How a scope node of a grant is read: the value it adds to the grant's scope of its kind (null
 * once its problem is reported), with any detail kept under KIND/VALUE. `once`: the grant may give
 * the node only once. `key`: what two values of the kind may not share (default: all of it).
 */
interface ScopeReader {
  once?: boolean;
  key?: (value: string) => string;
  read(p: Problems, c: Node): { value: string; detail?: string } | null;
}

/** A value checked by its kind's validator in SCOPE_KINDS, if the kind has one. */
function checkedScope(p: Problems, c: Node, v: string): { value: string } | null {
  const why = SCOPE_KINDS[c.name]?.(v);
  return why ? (p.at(c, `${c.name} '${v}' refused: ${why}`), null) : { value: v };
}

/** Most kinds: one string (`path "/srv/notes"`). */
const STRING_SCOPE: ScopeReader = {
  read: (p, c) => (onlyArgs(p, c, 1, "one string") ? checkedScope(p, c, c.values[0] as string) : null),
};

/** One property and no value (`attendees max=5`), kept as the property's text. */
function boundScope(prop: string, check: (v: unknown) => string | null): ScopeReader {
  return {
    once: true,
    read(p, c) {
      if (!onlyProps(p, c, [prop])) return null;
      const v = c.properties[prop];
      if (c.values.length || v === undefined) return p.at(c, `'${c.name}' takes ${prop}= only`), null;
      const why = check(v);
      return why ? (p.at(c, `${c.name} ${prop}=${String(v)} refused: ${why}`), null) : { value: String(v) };
    },
  };
}

/**
 * One id and the properties its capability's schema declares (x-vivary-scope-properties, name →
 * required): `shipping-address "home" first-name="Ada" …`. The properties, checked against that
 * list, are its detail: one JSON object under the scope key `KIND/ID`, where the capability finds it.
 */
function propertiesScope(props: Readonly<Record<string, boolean>>): ScopeReader {
  return {
    read(p, c) {
      if (c.values.length !== 1 || typeof c.values[0] !== "string") return p.at(c, `'${c.name}' takes one id and properties`), null;
      const given: Record<string, string> = {};
      for (const [k, v] of Object.entries(c.properties)) {
        if (!(k in props)) return p.at(c, `unknown property '${k}' on '${c.name}' (expected ${quoted(Object.keys(props))})`), null;
        if (typeof v !== "string" || v.length === 0 || v.length > 200 || /[\u0000-\u001f\u007f]/.test(v)) return p.at(c, `property '${k}' of '${c.name}' must be a string of 1 to 200 printable characters`), null;
        given[k] = v;
      }
      for (const [k, required] of Object.entries(props)) if (required && !(k in given)) return p.at(c, `'${c.name}' needs ${k}=`), null;
      const id = checkedScope(p, c, c.values[0]);
      return id && { value: id.value, detail: JSON.stringify(given) };
    },
  };
}

/** A home device and the actions granted on it (`device "light.hall" actions="on off"`), one node per device. */
const DEVICE_SCOPE: ScopeReader = {
  key: (value) => value.split(" ")[0]!,
  read(p, c) {
    const r = deviceScope(c.values, c.properties);
    return "reason" in r ? (p.at(c, `${c.name} ${c.values.map((v) => `'${v}'`).join(" ")} refused: ${r.reason}`), null) : r;
  },
};

/** The kinds not read as one string, beside those whose properties a schema declares. */
const SCOPE_READERS: Record<string, ScopeReader> = {
  attendees: boundScope("max", refuseAttendeeBound),
  device: DEVICE_SCOPE,
};

function scopeReader(kind: string, facts: CapabilityFacts): ScopeReader {
  const props = facts.scopeProperties?.get(kind);
  return SCOPE_READERS[kind] ?? (props ? propertiesScope(props) : STRING_SCOPE);
}

/** Reads one scope node of grant `g` into its scopes, or reports why it cannot. */
function loadScope(p: Problems, c: Node, g: Grant, reader: ScopeReader) {
  if (!noChildren(p, c)) return;
  const r = reader.read(p, c);
  if (!r) return;
  const key = reader.key ?? ((v: string) => v);
  const given = g.scopes[c.name] ?? [];
  if (reader.once && given.length) return void p.at(c, `'${c.name}' is given twice`);
  if (given.some((v) => key(v) === key(r.value))) return void p.at(c, `${c.name} '${key(r.value)}' is given twice`);
  g.scopes[c.name] = [...given, r.value];
  if (r.detail !== undefined) g.scopes[`${c.name}/${r.value}`] = [r.detail];
}

function loadGrant(p: Problems, n: Node, catalog: Catalog): Grant | null {
  if (!onlyArgs(p, n, 1, "one capability name")) return null;
  const cap = n.values[0] as string;
  const facts = catalog.get(cap);
  if (!facts) {
    p.at(n, `unknown capability '${cap}'`);
    return null;
  }
  const g: Grant = { cap, scopes: {}, credentials: [], where: p.where(n) };
  const named = new Set<string>();
  const optOut = { never: false };
  for (const c of n.children) {
    if (c.name === "rate") {
      if (!noChildren(p, c) || !onlyProps(p, c, ["per"])) continue;
      const count = c.values[0];
      const perMs = PER_MS[String(c.properties.per)];
      if (c.values.length !== 1 || typeof count !== "number" || !Number.isInteger(count) || count < 1 || count > 1_000_000) {
        p.at(c, "'rate' takes one whole number of calls from 1 to 1000000");
      } else if (!perMs) {
        p.at(c, `'rate' needs per="second", "minute", "hour" or "day"`);
      } else if (g.rate) {
        p.at(c, "'rate' is given twice");
      } else g.rate = { count, per: c.properties.per as Rate["per"], perMs } satisfies Rate;
    } else if (c.name === "tokens" && facts.tokenBudget) {
      loadTokenBudget(p, c, g);
    } else if (c.name === "approval") {
      loadApproval(p, c, g, optOut);
    } else if (c.name === "credential") {
      if (!facts.credential) {
        p.at(c, `'credential' is not used by '${cap}', which needs no secret`);
        continue;
      }
      if (!noChildren(p, c) || !onlyArgs(p, c, 1, "one vault id")) continue;
      const v = c.values[0] as string;
      const why = refuseSecretId(v);
      if (why) p.at(c, `credential '${v}' refused: ${why}`);
      else g.credentials.push(v);
    } else if (facts.budgets?.has(c.name)) {
      const ceiling = loadCeiling(c, c.name, facts.budgets.get(c.name)!);
      if (typeof ceiling === "string") p.at(c, ceiling);
      else if (g.budgets?.[c.name]) p.at(c, `'${c.name}' is given twice`);
      else (g.budgets ??= {})[c.name] = ceiling;
    } else if (facts.scopes.includes(c.name)) {
      named.add(c.name);
      loadScope(p, c, g, scopeReader(c.name, facts));
    } else {
      const kinds = quoted([...facts.scopes, ...(facts.credential ? ["credential"] : []), ...(facts.budgets?.keys() ?? []), ...(facts.tokenBudget ? ["tokens"] : []), "rate", "approval"]);
      p.at(c, `unknown node '${c.name}' in grant '${cap}' (expected ${kinds})`);
    }
  }
  for (const kind of facts.scopes) {
    if (!named.has(kind)) p.at(n, `grant '${cap}' needs at least one '${kind}'`);
  }
  for (const why of settleCurrency(g)) p.at(n, why);
  if (facts.risk === "critical") {
    if (optOut.never) p.warn(n, `grant '${cap}' (risk critical) opts out of approval: its calls run without an operator`);
    else g.approval ??= { timeoutMs: DEFAULT_APPROVAL_MS };
  }
  if (facts.credential && !facts.scopes.includes("provider") && g.credentials.length === 0) {
    p.at(n, `grant '${cap}' needs a 'credential'`);
  }
  return g;
}

function loadAgent(p: Problems, n: Node, catalog: Catalog): AgentPolicy | null {
  if (!onlyArgs(p, n, 1, "one agent name")) return null;
  const name = n.values[0] as string;
  if (!AGENT_NAME.test(name)) {
    p.at(n, `agent name '${name}' must match ${AGENT_NAME.source}`);
    return null;
  }
  const a: AgentPolicy = { name, uid: agentUid(name), backend: "bwrap", limits: {}, grants: new Map(), where: p.where(n) };
  const seen = new Set<string>();
  for (const c of n.children) {
    if (c.name !== "grant" && seen.has(c.name)) {
      p.at(c, `'${c.name}' is given twice for agent '${name}'`);
      continue;
    }
    seen.add(c.name);
    switch (c.name) {
      case "workspace": {
        if (!noChildren(p, c) || !onlyProps(p, c, ["owner"])) break;
        if (c.values.length !== 1 || typeof c.values[0] !== "string") {
          p.at(c, "'workspace' takes one absolute path");
          break;
        }
        const owner = c.properties.owner;
        if (owner !== undefined && owner !== "agent" && owner !== "keep") {
          p.at(c, `workspace owner '${owner}' is not "agent" or "keep"`);
          break;
        }
        const v = c.values[0] as string;
        const why = refuseBroadDirectory(v);
        if (why) p.at(c, `workspace '${v}' refused: ${why}`);
        else a.workspace = v;
        if (owner === "keep") a.workspaceOwner = "keep";
        break;
      }
      case "backend": {
        if (!noChildren(p, c) || !onlyArgs(p, c, 1, `"bwrap" or "nspawn"`)) break;
        const v = c.values[0] as string;
        if (v !== "bwrap" && v !== "nspawn") p.at(c, `backend '${v}' is not "bwrap" or "nspawn"`);
        else a.backend = v as Backend;
        break;
      }
      case "limits": {
        if (!noChildren(p, c) || !onlyProps(p, c, ["memory", "pids", "cpu", "tmp", "timeout"])) break;
        if (c.values.length) {
          p.at(c, "'limits' takes properties only (memory=, pids=, cpu=, tmp=, timeout=)");
          break;
        }
        const l: Limits = {};
        const { memory, pids, timeout } = c.properties;
        if (memory !== undefined && (l.memoryBytes = size(memory) ?? undefined) === undefined)
          p.at(c, `memory '${memory}' is not a size like "512M"`);
        if (pids !== undefined) {
          if (typeof pids !== "number" || !Number.isInteger(pids) || pids < 1 || pids > 65536)
            p.at(c, `pids '${pids}' is not a whole number from 1 to 65536`);
          else l.pids = pids;
        }
        if (timeout !== undefined && (l.timeoutMs = duration(timeout) ?? undefined) === undefined)
          p.at(c, `timeout '${timeout}' is not a duration like "30s", "5m" or "1h"`);
        const { cpu, tmp } = c.properties;
        if (cpu !== undefined) {
          if (typeof cpu !== "number" || !(cpu >= CPU_RANGE.min && cpu <= CPU_RANGE.max))
            p.at(c, `cpu '${cpu}' is not a number of CPUs from ${CPU_RANGE.min} to ${CPU_RANGE.max} (0.5 is half of one CPU)`);
          else l.cpu = cpu;
        }
        if (tmp !== undefined && (l.tmpBytes = size(tmp) ?? undefined) === undefined)
          p.at(c, `tmp '${tmp}' is not a size like "64M"`);
        a.limits = l;
        break;
      }
      case "max-risk": {
        if (!noChildren(p, c) || !onlyArgs(p, c, 1, `one of ${RISKS.map((r) => `"${r}"`).join(", ")}`)) break;
        const v = c.values[0] as Risk;
        if (!RISKS.includes(v)) p.at(c, `max-risk '${v}' is not one of ${RISKS.map((r) => `"${r}"`).join(", ")}`);
        else a.maxRisk = v;
        break;
      }
      case "grant": {
        const g = loadGrant(p, c, catalog);
        if (!g) break;
        if (a.grants.has(g.cap)) p.at(c, `capability '${g.cap}' is granted twice to agent '${name}'`);
        else a.grants.set(g.cap, g);
        break;
      }
      default:
        p.at(c, `unknown node '${c.name}' in agent '${name}' (expected 'workspace', 'backend', 'limits', 'max-risk', 'grant')`);
    }
  }
  if (a.maxRisk) {
    for (const g of a.grants.values()) {
      const risk = catalog.get(g.cap)!.risk;
      if (RISKS.indexOf(risk) > RISKS.indexOf(a.maxRisk) && !g.approval) {
        p.list.push(`${g.where}: grant '${g.cap}' (risk ${risk}) is above max-risk "${a.maxRisk}" of agent '${name}' and does not require approval`);
      }
    }
  }
  return a;
}

/** Every provider kind some capability speaks, by name: the kinds a `provider` node may have. */
function providerKinds(catalog: Catalog): Map<string, ProviderKindFacts> {
  const kinds = new Map<string, ProviderKindFacts>();
  for (const facts of catalog.values()) for (const [k, f] of facts.providerKinds) kinds.set(k, f);
  return kinds;
}

function loadProvider(p: Problems, n: Node, kinds: Map<string, ProviderKindFacts>): Provider | null {
  if (!onlyArgs(p, n, 1, "one provider name")) return null;
  const name = n.values[0] as string;
  if (!PROVIDER_NAME.test(name)) {
    p.at(n, `provider name '${name}' must match ${PROVIDER_NAME.source}`);
    return null;
  }
  const given = new Map<string, { value: string; node: Node }>();
  for (const c of n.children) {
    if (given.has(c.name)) {
      p.at(c, `'${c.name}' is given twice for provider '${name}'`);
      continue;
    }
    if (!noChildren(p, c) || !onlyArgs(p, c, 1, "one string")) continue;
    given.set(c.name, { value: c.values[0] as string, node: c });
  }
  const kindNode = given.get("kind");
  if (!kindNode) {
    p.at(n, `provider '${name}' needs 'kind' (one of ${quoted(kinds.keys())})`);
    return null;
  }
  const facts = kinds.get(kindNode.value);
  if (!facts) {
    p.at(kindNode.node, `unknown provider kind '${kindNode.value}' (expected ${quoted(kinds.keys())})`);
    return null;
  }
  const expected = [...COMMON_SETTINGS, ...Object.keys(facts.settings)];
  let ok = true;
  const check = (key: string, why: string | null, node: Node, value: string) => {
    if (why) (ok = false), p.at(node, `${key} '${value}' refused: ${why}`);
  };
  const settings: Record<string, string> = {};
  for (const [key, { value, node }] of given) {
    if (key === "kind") continue;
    if (key === "url") check(key, refuseProviderUrl(value), node, value);
    else if (key === "credential") check(key, refuseSecretId(value), node, value);
    else if (facts.settings[key]) {
      check(key, facts.settings[key]!.check(value), node, value);
      settings[key] = value;
    } else {
      ok = false;
      p.at(node, `unknown setting '${key}' for provider kind '${kindNode.value}' (expected ${quoted(expected)})`);
    }
  }
  const required = [...COMMON_SETTINGS.slice(1), ...Object.entries(facts.settings).filter(([, s]) => s.required).map(([k]) => k)];
  for (const key of required) {
    if (!given.has(key)) (ok = false), p.at(n, `provider '${name}' needs '${key}'`);
  }
  if (!ok) return null;
  return { name, kind: kindNode.value, url: given.get("url")!.value.replace(/\/+$/, ""), credential: given.get("credential")!.value, settings, where: p.where(n) };
}

/** A grant's `provider` nodes name providers defined somewhere in the policy, of a kind it speaks. */
function checkGrantProviders(problems: string[], agents: Map<string, AgentPolicy>, providers: Map<string, Provider>, catalog: Catalog) {
  for (const a of agents.values()) {
    for (const g of a.grants.values()) {
      const kinds = catalog.get(g.cap)!.providerKinds;
      for (const name of g.scopes.provider ?? []) {
        const pr = providers.get(name);
        if (!pr) problems.push(`${g.where}: provider '${name}' of grant '${g.cap}' is not defined`);
        else if (!kinds.has(pr.kind)) problems.push(`${g.where}: provider '${name}' is of kind '${pr.kind}', which '${g.cap}' does not speak (expected ${quoted(kinds.keys())})`);
        else if (g.credentials.length && !g.credentials.includes(pr.credential)) {
          problems.push(`${g.where}: provider '${name}' uses credential '${pr.credential}', which grant '${g.cap}' does not name`);
        }
      }
    }
  }
}

function policyFiles(path: string): string[] {
  const st = statSync(path);
  if (!st.isDirectory()) return [path];
  const files = readdirSync(path)
    .filter((f) => f.endsWith(".kdl"))
    .sort()
    .map((f) => join(path, f));
  if (files.length === 0) throw new PolicyError([`${path}: no *.kdl files in policy directory`]);
  return files;
}

/** Parses and validates policy text; `file` names it in errors. Throws PolicyError. */
export function loadPolicyText(sources: { file: string; text: string }[], builtIns: Catalog): Policy {
  const external = new Map<string, ExternalCapability>();
  const catalog = withExternal(sources, builtIns, external);
  const agents = new Map<string, AgentPolicy>();
  const providers = new Map<string, Provider>();
  const kinds = providerKinds(catalog);
  const problems: string[] = [];
  const warnings: string[] = [];
  const hash = new Bun.CryptoHasher("sha256");
  for (const { file, text } of sources) {
    hash.update(`${basename(file)}\0${text}\0`);
    const parsed = parseKdl(text);
    if (!parsed.ok) {
      problems.push(`${file}:${parsed.line}: ${parsed.message}`);
      continue;
    }
    const p = new Problems(file);
    for (const n of parsed.nodes) {
      if (n.name === "provider") {
        const pr = loadProvider(p, n, kinds);
        if (!pr) continue;
        const prior = providers.get(pr.name);
        if (prior) p.at(n, `provider '${pr.name}' is already defined at ${prior.where}`);
        else providers.set(pr.name, pr);
        continue;
      }
      if (n.name === "capability") continue; // loaded first, by withExternal
      if (n.name !== "agent") {
        p.at(n, `unknown node '${n.name}' (expected 'agent', 'provider', 'capability')`);
        continue;
      }
      const a = loadAgent(p, n, catalog);
      if (!a) continue;
      const prior = agents.get(a.name);
      if (prior) p.at(n, `agent '${a.name}' is already defined at ${prior.where}`);
      else agents.set(a.name, a);
    }
    problems.push(...p.list);
    warnings.push(...p.warnings);
  }
  if (!problems.length) checkGrantProviders(problems, agents, providers, catalog);
  const byUid = new Map<number, string>();
  for (const a of agents.values()) {
    const other = byUid.get(a.uid);
    if (other) problems.push(`${a.where}: agent '${a.name}' maps to the same host uid as '${other}'; rename one`);
    byUid.set(a.uid, a.name);
  }
  for (const x of external.values()) {
    const other = byUid.get(x.uid);
    if (other) problems.push(`${x.where}: capability '${x.name}' maps to the same host uid as agent '${other}'; rename one`);
  }
  for (const a of agents.values()) for (const g of a.grants.values()) if (external.has(g.cap)) g.external = external.get(g.cap);
  if (problems.length) throw new PolicyError(problems);
  return { files: sources.map((s) => s.file), digest: hash.digest("hex"), agents, providers, warnings, ...(external.size ? { external } : {}) };
}

/**
 * The top-level `capability` nodes of every file, loaded before any grant (policy/external.ts):
 * the catalog the grants are checked against is the built-ins' plus these. Their problems are the
 * policy's; a policy with none loads as before, running nothing.
 */
function withExternal(sources: { file: string; text: string }[], builtIns: Catalog, out: Map<string, ExternalCapability>): Catalog {
  const problems: string[] = [];
  for (const { file, text } of sources) {
    if (!/^\s*capability\b/m.test(text)) continue;
    const parsed = parseKdl(text);
    if (!parsed.ok) continue; // reported by the main pass
    for (const n of parsed.nodes) {
      if (n.name !== "capability") continue;
      const x = loadExternal(file, n, (name) => builtIns.has(name), agentUid);
      if (Array.isArray(x)) problems.push(...x);
      else if (out.has(x.name)) problems.push(`${x.where}: capability '${x.name}' is already registered at ${out.get(x.name)!.where}`);
      else out.set(x.name, x);
    }
  }
  if (problems.length) throw new PolicyError(problems);
  if (!out.size) return builtIns;
  return new Map([...builtIns, ...[...out.values()].map((x) => [x.name, catalogEntry(x)] as const)]);
}

/** Reads a policy file or directory and validates it. Throws PolicyError (unreadable included). */
export function loadPolicy(path: string, catalog: Catalog): Policy {
  let files: string[];
  let sources: { file: string; text: string }[];
  try {
    files = policyFiles(path);
    sources = files.map((file) => ({ file, text: readFileSync(file, "utf8") }));
  } catch (e) {
    if (e instanceof PolicyError) throw e;
    const err = e as NodeJS.ErrnoException;
    throw new PolicyError([`${err.path ?? path}: cannot read policy: ${err.code ?? err.message}`]);
  }
  return loadPolicyText(sources, catalog);
}
