// Scope kinds a grant can carry, and how a requested value is matched against them. Pure string
// logic with no filesystem access: the confinement that makes a match safe against symlinks and
// races is the executor's job (lib/confined-fs.ts); this decides only what is asked for. Phone
// numbers are parsed by libphonenumber-js and URLs by the WHATWG parser, never by hand.
import { parsePhoneNumberFromString } from "libphonenumber-js";

/** Host trees no grant or workspace may name: the system, pseudo-filesystems, vivary's own state. */
const FORBIDDEN_ROOTS = ["/proc", "/sys", "/dev", "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64",
  "/libx32", "/boot", "/run", "/var/lib/vivary"];

/** Splits an absolute path into components, or says why it is not a plain absolute path. */
export function pathComponents(p: string): string[] | string {
  if (!p.startsWith("/")) return "not an absolute path";
  if (p.includes("\0")) return "contains NUL";
  if (p.length > 4096) return "longer than 4096 bytes";
  if (p === "/") return [];
  const parts = p.slice(1).split("/");
  for (const c of parts) {
    if (c === "") return "has an empty component (// or a trailing /)";
    if (c === "." || c === "..") return `has a '${c}' component`;
    if (Buffer.byteLength(c) > 255) return "has a component longer than 255 bytes";
  }
  return parts;
}

export function isWithin(child: string[], parent: string[]): boolean {
  return parent.length <= child.length && parent.every((c, i) => child[i] === c);
}

/**
 * Checks a host directory named by the operator (a `path` grant or a workspace). Returns the
 * reason it is refused, or null. Refuses the root, top-level directories and system trees: a
 * grant that broad is a mistake, not a policy.
 */
export function refuseBroadDirectory(p: string): string | null {
  const parts = pathComponents(p);
  if (typeof parts === "string") return parts;
  if (parts.length === 0) return "grants the whole filesystem";
  if (parts.length === 1) return "is a top-level directory; name a directory at least two levels deep";
  for (const root of FORBIDDEN_ROOTS) {
    const r = pathComponents(root) as string[];
    if (isWithin(parts, r) || isWithin(r, parts)) return `overlaps the system tree '${root}'`;
  }
  return null;
}

export type PathMatch =
  | { ok: true; root: string; relative: string[] }
  | { ok: false; reason: string };

/**
 * Matches a requested absolute path against granted directory prefixes, component by component
 * (so `/srv/reports-evil` never matches `/srv/reports`). The longest granted prefix wins. The
 * path must name something below a prefix, not the prefix itself, unless `allowRoot` (a listing
 * of the granted directory).
 */
export function matchPath(requested: string, granted: readonly string[], allowRoot = false): PathMatch {
  const parts = pathComponents(requested);
  if (typeof parts === "string") return { ok: false, reason: `path ${parts}` };
  let best: string[] | null = null;
  let bestRoot = "";
  for (const g of granted) {
    const gp = pathComponents(g);
    if (typeof gp === "string") continue;
    if (parts.length >= gp.length + (allowRoot ? 0 : 1) && isWithin(parts, gp) && (!best || gp.length > best.length)) {
      best = gp;
      bestRoot = g;
    }
  }
  if (!best) return { ok: false, reason: `outside granted path${granted.length > 1 ? "s" : ""} ${granted.map((g) => `'${g}'`).join(", ")}` };
  return { ok: true, root: bestRoot, relative: parts.slice(best.length) };
}

// ---------------------------------------------------------------------------------------------
// url: web addresses. Both the operator's patterns and the requested URLs go through the WHATWG
// URL parser once (IDNA to punycode, lower case, every IPv4 spelling to dotted decimal, IPv6 to
// its compressed form); a trailing dot is dropped; userinfo is refused. Matching compares those
// canonical forms only, as strings: it never resolves a name.

/** A requested URL in canonical form. `host` is bracketed for IPv6, like URL.hostname. */
export interface CanonicalUrl {
  scheme: "http" | "https";
  host: string;
  port: number;
  /** Path and query as the parser normalized them ('..' and '.' segments resolved). */
  path: string;
  href: string;
}

const DEFAULT_PORT = { http: 80, https: 443 } as const;
const IPV4 = /^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$/;

/** True for a canonical host that is an IP literal (dotted IPv4 or bracketed IPv6). */
export const isIpHost = (host: string) => IPV4.test(host) || host.startsWith("[");

/** Parses and canonicalizes a URL to read, or says why it cannot be read. */
export function canonicalUrl(raw: string): CanonicalUrl | string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return "not an absolute URL";
  }
  const scheme = u.protocol.slice(0, -1);
  if (scheme !== "http" && scheme !== "https") return `scheme '${scheme}:' is not http or https`;
  if (u.username || u.password) return "URL has userinfo (user:password@)";
  let host = u.hostname;
  if (host.endsWith(".") && !isIpHost(host)) host = host.slice(0, -1);
  if (host === "" || host.split(".").some((l) => l === "")) return `host '${u.hostname}' has an empty label`;
  const port = u.port ? Number(u.port) : DEFAULT_PORT[scheme];
  const path = `${u.pathname}${u.search}`;
  const origin = `${scheme}://${host}${port === DEFAULT_PORT[scheme] ? "" : `:${port}`}`;
  return { scheme, host, port, path, href: `${origin}${path}` };
}

/** A `url` grant, parsed: `*.` in `host` when `wildcard`, and a path that is exact or a prefix. */
export interface UrlPattern {
  scheme: "http" | "https";
  host: string;
  wildcard: boolean;
  port: number;
  path: string;
  prefix: boolean;
  text: string;
}

const PATTERN = /^(https?):\/\/([^/?#]+)(\/[^?#]*)?$/;

/**
 * Parses a `url` grant: `SCHEME://HOST[:PORT][/PATH]`. HOST is a name, `*.` before a name of at
 * least two labels (any name below it, at a label boundary), or an IP literal. PATH is exact, or
 * a prefix when it ends in `*` right after a `/`; no path means the whole origin. Returns the
 * reason a pattern is refused: unparsable, too broad, or with parts that cannot be matched.
 */
export function parseUrlPattern(text: string): UrlPattern | string {
  if (text === "*" || text.includes("**")) return "matches every URL";
  const m = PATTERN.exec(text);
  if (m && /^\*(:[0-9]*)?$/.test(m[2]!)) return "matches every host";
  if (!m) return "is not SCHEME://HOST[:PORT][/PATH] with scheme http or https (no query or fragment)";
  const [, scheme, authority, rawPath] = m as unknown as [string, "http" | "https", string, string | undefined];
  if (authority.includes("@")) return "has userinfo (user:password@)";
  let rest = authority;
  let wildcard = false;
  if (rest.startsWith("*.")) {
    wildcard = true;
    rest = rest.slice(2);
  }
  if (rest.includes("*")) return "has a wildcard that is not a leading '*.' label";
  const path = rawPath ?? "/*";
  const star = path.indexOf("*");
  if (star >= 0 && (star !== path.length - 1 || !path.endsWith("/*"))) return "has a '*' in its path other than a final '/*'";
  const prefix = star >= 0;
  const c = canonicalUrl(`${scheme}://${rest}${prefix ? path.slice(0, -1) : path}`);
  if (typeof c === "string") return c;
  if (c.path !== (prefix ? path.slice(0, -1) : path)) return `path '${path}' is not in canonical form (it reads as '${c.path}')`;
  if (wildcard) {
    if (isIpHost(c.host)) return "puts a wildcard in front of an IP address";
    if (c.host.split(".").length < 2) return `'*.${c.host}' matches every name under a top-level domain`;
  }
  return { scheme, host: c.host, wildcard, port: c.port, path: prefix ? path.slice(0, -1) : path, prefix, text };
}

/** Does a canonical host fall under a pattern's host (exactly, or below a `*.` wildcard)? */
function hostMatches(p: UrlPattern, host: string): boolean {
  if (!p.wildcard) return p.host === host;
  return !isIpHost(host) && host.endsWith(`.${p.host}`);
}

export type UrlMatch = { ok: true; url: CanonicalUrl; pattern: UrlPattern } | { ok: false; reason: string };

/** Matches a requested URL against `url` grants, in canonical form. Never resolves a name. */
export function matchUrl(requested: string, granted: readonly string[]): UrlMatch {
  const u = canonicalUrl(requested);
  if (typeof u === "string") return { ok: false, reason: u };
  for (const g of granted) {
    const p = parseUrlPattern(g);
    if (typeof p === "string") continue;
    if (p.scheme !== u.scheme || p.port !== u.port || !hostMatches(p, u.host)) continue;
    const path = u.path.replace(/\?.*$/, "");
    if (p.prefix ? path.startsWith(p.path) || `${path}/` === p.path : path === p.path) return { ok: true, url: u, pattern: p };
  }
  return { ok: false, reason: `outside granted url${granted.length > 1 ? "s" : ""} ${granted.map((g) => `'${g}'`).join(", ")}` };
}

/**
 * Matches an origin (what a proxy sees of an HTTPS request: scheme, host and port, not the
 * path) against `url` grants. `host` must already be canonical.
 */
export function matchOrigin(scheme: "http" | "https", host: string, port: number, granted: readonly string[]): UrlPattern | null {
  for (const g of granted) {
    const p = parseUrlPattern(g);
    if (typeof p !== "string" && p.scheme === scheme && p.port === port && hostMatches(p, host)) return p;
  }
  return null;
}

/** The load-time check of a `url` grant: the reason it is refused, or null. */
export function refuseBroadUrl(text: string): string | null {
  const p = parseUrlPattern(text);
  return typeof p === "string" ? p : null;
}
/** What a phone number may look like before parsing: international, digits and separators only. */
const PHONE_SPELLING = /^\+[0-9 ().-]{4,40}$/;

export type PhoneNumber = { ok: true; e164: string } | { ok: false; reason: string };

/**
 * Canonicalizes a phone number given in international form (a leading + and the country code;
 * spaces, dots, dashes and parentheses allowed) to E.164. A number must be possible for its
 * country (the right length); whether it is assigned to anyone is not known here.
 */
export function parsePhone(v: string): PhoneNumber {
  if (!PHONE_SPELLING.test(v)) return { ok: false, reason: "not a phone number in international form (+ and the country code)" };
  const p = parsePhoneNumberFromString(v);
  if (!p || p.ext || !p.isPossible()) return { ok: false, reason: "not a possible phone number" };
  return { ok: true, e164: p.number };
}

/** A `contact` scope named by the operator: a phone number that canonicalizes. */
export function refuseContact(v: string): string | null {
  const p = parsePhone(v);
  return p.ok ? null : p.reason;
}

/** Whether a requested number is one of the granted contacts, compared in E.164. */
export function matchContact(requested: string, granted: readonly string[]): PhoneNumber {
  const r = parsePhone(requested);
  if (!r.ok) return r;
  const hit = granted.some((g) => {
    const p = parsePhone(g);
    return p.ok && p.e164 === r.e164;
  });
  return hit ? r : { ok: false, reason: `${r.e164} is not a granted contact` };
}

const LOOPBACK = /^(localhost|127(\.[0-9]{1,3}){3}|\[::1\])$/;

/**
 * A provider's base URL: https, or http to a loopback address only (a test server, or a local
 * relay), with no user name, password, query or fragment (the secret comes from the vault only).
 */
export function refuseProviderUrl(v: string): string | null {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return "not a URL";
  }
  if (u.protocol !== "https:" && u.protocol !== "http:") return `scheme '${u.protocol.slice(0, -1)}' is not https`;
  if (u.protocol === "http:" && !LOOPBACK.test(u.hostname)) return "plain http is allowed to loopback addresses only; use https";
  if (u.username || u.password) return "has a user name or password; credentials come from the vault";
  if (u.search || u.hash || v.includes("?") || v.includes("#")) return "has a query or fragment";
  return null;
}

/** A model name pattern of a grant: a model name in which `*` stands for any run of characters. */
const MODEL_PATTERN = /^[A-Za-z0-9._:@\/*-]{1,128}$/;

export function refuseModelPattern(v: string): string | null {
  if (!MODEL_PATTERN.test(v)) return "is not a model name pattern (letters, digits, . _ : @ / - and *)";
  if (/^\**$/.test(v)) return "grants every model; name the models, or a family such as claude-*";
  return null;
}

/** Whether a model name matches one of the grant's patterns (`*` matches any run of characters, case matters). */
export function matchModel(model: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => new RegExp(`^${p.split("*").map((s) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")).join(".*")}$`).test(model));
}

// ---------------------------------------------------------------------------------------------
// calendar, attendees, attendee-domain: what a calendar event may be written to and who it may
// invite. A calendar is named by its collection's last path segment under the provider's calendar
// home; attendees are e-mail addresses whose domain (IDNA to punycode, lower case, by the WHATWG
// URL parser) must be one the grant names exactly, and whose number the grant bounds.

const CALENDAR_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** A `calendar` scope, or a requested calendar: one path segment, no dot segments, no escapes. */
export function refuseCalendarName(v: string): string | null {
  return CALENDAR_NAME.test(v) ? null : "is not a calendar collection name (letters, digits, '.', '_' and '-', up to 64, starting with a letter or digit)";
}

/** Whether a requested calendar is one of the granted ones (compared exactly). */
export function matchCalendar(requested: string, granted: readonly string[]): string | null {
  const why = refuseCalendarName(requested);
  if (why) return `calendar name ${why}`;
  return granted.includes(requested) ? null : `outside granted calendar${granted.length > 1 ? "s" : ""} ${granted.map((g) => `'${g}'`).join(", ")}`;
}

/** The most attendees a grant may allow on one event (`attendees max=N`). */
export const MAX_ATTENDEES = 50;

/** The value of `attendees max=N`: a whole number from 0 to MAX_ATTENDEES. */
export function refuseAttendeeBound(v: unknown): string | null {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= MAX_ATTENDEES ? null : `max must be a whole number from 0 to ${MAX_ATTENDEES}`;
}

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** A domain name in canonical form (IDNA to punycode, lower case), or why it is not one. */
function canonicalDomain(v: string): { ok: true; domain: string } | { ok: false; reason: string } {
  if (!/^[^\s/?#@:[\]\\%*]{1,253}$/u.test(v)) return { ok: false, reason: "not a domain name" };
  let host: string;
  try {
    host = new URL(`http://${v}/`).hostname;
  } catch {
    return { ok: false, reason: "not a domain name" };
  }
  const labels = host.split(".");
  if (labels.length < 2 || !labels.every((l) => LABEL.test(l)) || /^[0-9]+$/.test(labels.at(-1)!)) return { ok: false, reason: "not a domain name of at least two labels" };
  return { ok: true, domain: host };
}

/** An `attendee-domain` scope: a domain name of at least two labels, matched exactly (no wildcard). */
export function refuseAttendeeDomain(v: string): string | null {
  if (v.includes("*")) return "has a wildcard; name each domain exactly";
  const d = canonicalDomain(v);
  return d.ok ? null : d.reason;
}

const LOCAL_PART = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;

export type Email = { ok: true; address: string; domain: string } | { ok: false; reason: string };

/**
 * Parses an attendee's e-mail address: local-part@domain, the local part a dot-atom of at most
 * 64 characters (no quoted strings, comments or display names), the domain a name of at least
 * two labels, canonicalized. The address returned has the canonical domain.
 */
export function parseEmail(v: string): Email {
  const at = v.lastIndexOf("@");
  if (at <= 0 || v.length > 254) return { ok: false, reason: "not an e-mail address (local-part@domain)" };
  const local = v.slice(0, at);
  if (local.length > 64 || !LOCAL_PART.test(local)) return { ok: false, reason: "not an e-mail address (local-part@domain)" };
  const d = canonicalDomain(v.slice(at + 1));
  if (!d.ok) return { ok: false, reason: `domain ${d.reason}` };
  return { ok: true, address: `${local}@${d.domain}`, domain: d.domain };
}

/**
 * Checks a list of attendees against a grant: each address valid, no address twice, each domain
 * one of the granted domains (canonical, exact), and no more than the granted bound. Returns the
 * canonical addresses, or the reason the list is refused (`data` when an address is malformed).
 */
export function matchAttendees(requested: readonly string[], domains: readonly string[], bound: readonly string[]): { ok: true; addresses: string[] } | { ok: false; data: boolean; reason: string } {
  const max = bound.length ? Math.min(...bound.map(Number)) : 0;
  const granted = new Set(domains.map((d) => canonicalDomain(d)).flatMap((d) => (d.ok ? [d.domain] : [])));
  const addresses: string[] = [];
  for (const r of requested) {
    const e = parseEmail(r);
    if (!e.ok) return { ok: false, data: true, reason: `attendee '${r}': ${e.reason}` };
    if (addresses.some((a) => a.toLowerCase() === e.address.toLowerCase())) return { ok: false, data: true, reason: `attendee '${r}' is given twice` };
    addresses.push(e.address);
  }
  if (addresses.length > max) return { ok: false, data: false, reason: `${addresses.length} attendee${addresses.length > 1 ? "s" : ""}: the grant allows at most ${max}` };
  for (const [i, a] of addresses.entries()) {
    const domain = a.slice(a.lastIndexOf("@") + 1);
    if (!granted.has(domain)) return { ok: false, data: false, reason: `'${requested[i]}': domain '${domain}' is not a granted attendee domain` };
  }
  return { ok: true, addresses };
}

// device: home devices, as Home Assistant entity ids, each with the actions allowed on it. The
// policy node `device "light.kitchen" actions="on off"` becomes one scope value,
// "light.kitchen on off": the entity id, then the actions, separated by spaces.

/** The actions each supported domain takes; `set` only where a value means something. */
export const DEVICE_ACTIONS: Readonly<Record<string, readonly string[]>> = {
  light: ["on", "off", "toggle", "set"],
  switch: ["on", "off", "toggle"],
  fan: ["on", "off", "toggle", "set"],
  climate: ["on", "off", "toggle", "set"],
};

/** Home Assistant's entity id: DOMAIN.OBJECT, lower-case letters, digits and single underscores. */
const ENTITY_ID = /^(?!_)(?!.*__)[a-z0-9_]+(?<!_)\.(?!_)[a-z0-9_]+(?<!_)$/;

/** Why an entity id cannot be a device, or null. */
export function refuseDeviceId(id: string): string | null {
  if (id.length > 255 || !ENTITY_ID.test(id)) return "not an entity id (domain.object_id: lower-case letters, digits and single underscores)";
  const domain = id.slice(0, id.indexOf("."));
  if (!DEVICE_ACTIONS[domain]) return `domain '${domain}' is not supported (${Object.keys(DEVICE_ACTIONS).join(", ")})`;
  return null;
}

/**
 * A `device` node of a grant: one entity id and `actions="…"`, some of on, off, toggle and set
 * that its domain supports. Returns the scope value, or why the node is refused.
 */
export function deviceScope(values: readonly unknown[], props: Readonly<Record<string, unknown>>): { value: string } | { reason: string } {
  const extra = Object.keys(props).find((k) => k !== "actions");
  if (extra) return { reason: `unknown property '${extra}' (expected actions=)` };
  if (values.length !== 1 || typeof values[0] !== "string") return { reason: `takes one entity id and actions="…"` };
  const id = values[0];
  const why = refuseDeviceId(id);
  if (why) return { reason: why };
  if (typeof props.actions !== "string" || props.actions.trim() === "") return { reason: `needs actions="…", some of ${DEVICE_ACTIONS[id.split(".")[0]!]!.join(" ")}` };
  const actions = props.actions.trim().split(/\s+/);
  const allowed = DEVICE_ACTIONS[id.split(".")[0]!]!;
  const bad = actions.find((a) => !allowed.includes(a));
  if (bad) return { reason: `action '${bad}' is not one a ${id.split(".")[0]} takes (${allowed.join(" ")})` };
  return { value: [id, ...new Set(actions)].join(" ") };
}

/** Whether `action` on `device` is granted by `device` scope values. */
export function matchDevice(device: string, action: string, granted: readonly string[]): { ok: true } | { ok: false; reason: string } {
  const why = refuseDeviceId(device);
  if (why) return { ok: false, reason: why };
  const grant = granted.map((g) => g.split(" ")).find(([id]) => id === device);
  if (!grant) return { ok: false, reason: "not a granted device" };
  if (!grant.slice(1).includes(action)) return { ok: false, reason: `action '${action}' is not granted on it (granted: ${grant.slice(1).join(" ") || "none"})` };
  return { ok: true };
}

/** A product's SKU as an agent may name it: letters, digits, dot, dash, underscore. */
export const SKU = /^[A-Za-z0-9._-]{1,64}$/;

/** A `sku` pattern: a SKU in which `*` stands for any run of SKU characters; never `*` alone. */
export function refuseSkuPattern(v: string): string | null {
  if (!/^[A-Za-z0-9._*-]{1,64}$/.test(v)) return "is not a SKU pattern (letters, digits, '.', '_', '-' and '*')";
  if (!/[A-Za-z0-9._-]/.test(v)) return "grants every product; name the SKUs or a prefix such as BOOK-*";
  return null;
}

/** Whether a SKU matches one of the granted patterns, compared case-sensitively as WooCommerce does. */
export function matchSku(sku: string, patterns: readonly string[]): boolean {
  if (!SKU.test(sku)) return false;
  return patterns.some((p) => new RegExp(`^${p.split("*").map((s) => s.replace(/[.]/g, "\\.")).join("[A-Za-z0-9._-]*")}$`).test(sku));
}

/** `max-quantity "N"`: a whole number from 1 to 1000. */
export function refuseQuantityBound(v: string): string | null {
  return /^[1-9][0-9]{0,3}$/.test(v) && Number(v) <= 1000 ? null : "is not a whole number from 1 to 1000";
}

/** An operator's id for something a grant names (a shipping address): lower case, digits, dashes. */
export function refuseScopeId(v: string): string | null {
  return /^[a-z0-9][a-z0-9-]{0,31}$/.test(v) ? null : "must match ^[a-z0-9][a-z0-9-]{0,31}$";
}
