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
 * path must name something below a prefix, not the prefix itself.
 */
export function matchPath(requested: string, granted: readonly string[]): PathMatch {
  const parts = pathComponents(requested);
  if (typeof parts === "string") return { ok: false, reason: `path ${parts}` };
  let best: string[] | null = null;
  let bestRoot = "";
  for (const g of granted) {
    const gp = pathComponents(g);
    if (typeof gp === "string") continue;
    if (parts.length > gp.length && isWithin(parts, gp) && (!best || gp.length > best.length)) {
      best = gp;
      bestRoot = g;
    }
  }
  if (!best) return { ok: false, reason: `outside granted path${granted.length > 1 ? "s" : ""} ${granted.map((g) => `'${g}'`).join(", ")}` };
  return { ok: true, root: bestRoot, relative: parts.slice(best.length) };
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
