// fs-file-write: writes one file below a granted host directory. The scope check is a pure
// component-wise prefix match; the write itself is confined by the kernel (lib/confined-fs.ts),
// so what the check allowed is all the write can reach, even against a racing agent.
import type { Capability, CapabilitySchema } from "../../lib/capability.ts";
import { EscapeAttempt, removeTemporaries, writeFileConfined } from "../../lib/confined-fs.ts";
import { dataError, deniedError, VivError } from "../../lib/exit.ts";
import { matchPath } from "../../policy/scope.ts";
import schemaJson from "./schema.json";
import type { FsFileWriteInput, FsFileWriteResult } from "./types.ts";

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function decode(args: FsFileWriteInput): Uint8Array {
  if (args.encoding !== "base64") return Buffer.from(args.content, "utf8");
  if (args.content.length % 4 !== 0 || !BASE64.test(args.content)) throw dataError("--content is not valid base64");
  return Buffer.from(args.content, "base64");
}

export const fsFileWrite: Capability<FsFileWriteInput, FsFileWriteResult> = {
  schema: schemaJson as CapabilitySchema,
  authorize(args, scopes) {
    const m = matchPath(args.path, scopes.path ?? []);
    return m.ok ? null : `cannot write '${args.path}': ${m.reason}`;
  },
  async run(args, scopes) {
    const m = matchPath(args.path, scopes.path ?? []);
    if (!m.ok) throw deniedError(`cannot write '${args.path}': ${m.reason}`);
    try {
      return { path: args.path, bytes_written: await writeFileConfined(m.root, m.relative, decode(args)) };
    } catch (e) {
      if (!(e instanceof VivError)) throw e;
      const message = `cannot write '${args.path}': ${e.message}`;
      throw e instanceof EscapeAttempt ? new EscapeAttempt(message) : new VivError(e.code, message);
    }
  },
  target(args, scopes) {
    const m = matchPath(args.path, scopes.path ?? []);
    return m.ok ? `${args.path} (under granted ${m.root})` : args.path;
  },
  recover(args, scopes) {
    const m = matchPath(args.path, scopes.path ?? []);
    if (!m.ok) return "no cleanup: the path is not granted now";
    return `removed ${removeTemporaries(m.root, m.relative.slice(0, -1))} temporary files`;
  },
};
