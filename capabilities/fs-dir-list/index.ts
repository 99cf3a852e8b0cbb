// fs-dir-list: lists a directory below a granted host directory, or the granted directory itself.
// The scope check is fs-file-write's prefix match with the root allowed; the listing is confined
// by the kernel (lib/confined-fs.ts): names come through the directory's descriptor, symlinks are
// reported and never followed, and a recursive walk is bounded in depth, entries and bytes.
import type { Capability, CapabilitySchema } from "../../lib/capability.ts";
import { EscapeAttempt, listDirConfined, type ListLimits } from "../../lib/confined-fs.ts";
import { deniedError, VivError } from "../../lib/exit.ts";
import { matchPath } from "../../policy/scope.ts";
import schemaJson from "./schema.json";
import type { FsDirListInput, FsDirListResult } from "./types.ts";

/** The bounds the schema's description and the man page state. */
export const LIST_LIMITS: ListLimits = { maxDepth: 16, maxEntries: 10_000, maxNameBytes: 1024 * 1024 };

export const fsDirList: Capability<FsDirListInput, FsDirListResult> = {
  schema: schemaJson as CapabilitySchema,
  readOnly: true,
  authorize(args, scopes) {
    const m = matchPath(args.path, scopes.path ?? [], true);
    return m.ok ? null : `cannot list '${args.path}': ${m.reason}`;
  },
  run(args, scopes) {
    const m = matchPath(args.path, scopes.path ?? [], true);
    if (!m.ok) throw deniedError(`cannot list '${args.path}': ${m.reason}`);
    try {
      const r = listDirConfined(m.root, m.relative, args.recursive === true, LIST_LIMITS);
      return { path: args.path, entries: r.entries, truncated: r.truncated };
    } catch (e) {
      if (!(e instanceof VivError)) throw e;
      const message = `cannot list '${args.path}': ${e.message}`;
      throw e instanceof EscapeAttempt ? new EscapeAttempt(message) : new VivError(e.code, message);
    }
  },
  target(args, scopes) {
    const m = matchPath(args.path, scopes.path ?? [], true);
    return m.ok ? `${args.path} (under granted ${m.root})` : args.path;
  },
};
