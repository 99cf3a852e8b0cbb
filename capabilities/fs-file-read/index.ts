// fs-file-read: reads one regular file below a granted host directory. The scope check is the same
// pure component-wise prefix match as fs-file-write's; the read itself is confined by the kernel
// (lib/confined-fs.ts) with the same refusals, never blocks on a FIFO, and is capped in bytes. In
// utf-8 mode bytes that are not valid UTF-8 are an error, never replaced: the caller is told to
// ask for base64 instead.
import type { Capability, CapabilitySchema } from "../../lib/capability.ts";
import { EscapeAttempt, readFileConfined } from "../../lib/confined-fs.ts";
import { dataError, deniedError, VivError } from "../../lib/exit.ts";
import { matchPath } from "../../policy/scope.ts";
import schemaJson from "./schema.json";
import type { FsFileReadInput, FsFileReadResult } from "./types.ts";

const schema = schemaJson as CapabilitySchema;
export const DEFAULT_MAX_BYTES = schema.properties.max_bytes!.default as number;
/** Printed JSON beyond this would not fit the protocol's 2 MiB result frame with room to spare. */
const MAX_OUTPUT_BYTES = 1536 * 1024;
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** How many bytes at the end of `b` start a UTF-8 sequence that `b` does not finish (0 to 3). */
export function incompleteTail(b: Uint8Array): number {
  for (let back = 1; back <= Math.min(3, b.length); back++) {
    const c = b[b.length - back]!;
    if ((c & 0xc0) === 0x80) continue; // a continuation byte: look further back
    const need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    return need > back ? back : 0;
  }
  return 0;
}

export const fsFileRead: Capability<FsFileReadInput, FsFileReadResult> = {
  schema,
  readOnly: true,
  authorize(args, scopes) {
    const m = matchPath(args.path, scopes.path ?? []);
    return m.ok ? null : `cannot read '${args.path}': ${m.reason}`;
  },
  run(args, scopes) {
    const m = matchPath(args.path, scopes.path ?? []);
    if (!m.ok) throw deniedError(`cannot read '${args.path}': ${m.reason}`);
    const encoding = args.encoding ?? "utf-8";
    try {
      const r = readFileConfined(m.root, m.relative, args.max_bytes ?? DEFAULT_MAX_BYTES);
      let data = r.data;
      let content: string;
      if (encoding === "base64") content = Buffer.from(data).toString("base64");
      else {
        // A character cut by the cap is left out whole, so the text stays valid.
        if (r.truncated) data = data.subarray(0, data.length - incompleteTail(data));
        try {
          content = utf8.decode(data);
        } catch {
          throw dataError("not valid UTF-8 text; read it with --encoding base64");
        }
      }
      const result = { path: args.path, encoding, content, bytes_read: data.length, size: r.size, truncated: r.truncated };
      if (JSON.stringify(result).length > MAX_OUTPUT_BYTES) {
        throw dataError("its text escapes to more JSON than one reply holds; read it with --encoding base64 or a smaller --max-bytes");
      }
      return result;
    } catch (e) {
      if (!(e instanceof VivError)) throw e;
      const message = `cannot read '${args.path}': ${e.message}`;
      throw e instanceof EscapeAttempt ? new EscapeAttempt(message) : new VivError(e.code, message);
    }
  },
  target(args, scopes) {
    const m = matchPath(args.path, scopes.path ?? []);
    return m.ok ? `${args.path} (under granted ${m.root})` : args.path;
  },
};
