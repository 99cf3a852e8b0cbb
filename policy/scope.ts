// Scope kinds a grant can carry, and how a requested value is matched against them. Pure string
// logic with no filesystem access: the confinement that makes a match safe against symlinks and
// races is the executor's job (lib/confined-fs.ts); this decides only what is asked for.

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
