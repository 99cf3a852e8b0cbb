// The audit record: its canonical encoding (what the hash chain covers) and its one-line and JSON
// renderings for viv-log. Shared by the broker (which writes records) and viv-log (which reads and
// verifies them); no I/O. The line format is a versioned contract: add fields, never rename.
import { decodeFrames } from "./frame.ts";

export interface AuditRecord {
  seq: number;
  ts: string;
  agent: string;
  kind: string;
  cap: string;
  /** JSON object text, stored and hashed exactly as written. */
  fields: string;
  /** Zero or more whole frames, back to back, exactly as they crossed the socket. */
  raw: Uint8Array;
  prev: Uint8Array;
  hash: Uint8Array;
}

export const LOG_FORMAT_VERSION = 1;
export const GENESIS = new Uint8Array(32);
/** Shown values longer than this are cut, visibly, in the line format. */
export const MAX_SHOWN = 120;

/** One hasher for every record (a digest resets it), and one scratch word for the lengths. */
const hasher = new Bun.CryptoHasher("sha256");
const word = new Uint8Array(8);
const wordView = new DataView(word.buffer);

/** n as 8 bytes big-endian, in the scratch word (the hasher copies it at once). */
function u64(n: number): Uint8Array {
  wordView.setUint32(0, Math.floor(n / 0x1_0000_0000));
  wordView.setUint32(4, n >>> 0);
  return word;
}

/** A text field: its UTF-8 length, then its UTF-8 bytes (encoded by the hasher, not copied first). */
function hashText(s: string) {
  hasher.update(u64(Buffer.byteLength(s, "utf8")));
  hasher.update(s, "utf8");
}

/** sha256(prev ‖ u64 seq ‖ each of ts, agent, kind, cap, fields, raw as u64 length ‖ bytes). */
export function chainHash(r: Omit<AuditRecord, "hash">): Uint8Array {
  let done = false;
  try {
    hasher.update(r.prev);
    hasher.update(u64(r.seq));
    hashText(r.ts);
    hashText(r.agent);
    hashText(r.kind);
    hashText(r.cap);
    hashText(r.fields);
    hasher.update(u64(r.raw.length));
    hasher.update(r.raw);
    done = true;
  } finally {
    // On a throw, a digest resets the shared hasher for the next record.
    if (!done) hasher.digest();
  }
  return hasher.digest() as Uint8Array;
}

export const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/**
 * What is escaped, never shown as is: C0 and C1 controls and DEL (so ANSI and OSC sequences lose
 * their ESC), and the invisible marks that reorder or hide text (bidi embeddings, overrides and
 * isolates, LRM/RLM/ALM, line and paragraph separators, zero-width characters and the BOM).
 */
const CONTROL = /[\u0000-\u001f\u007f-\u009f"\\\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

/** Quotes a value when it has spaces, quotes, '=' or nothing; escapes control characters. */
export function showValue(v: unknown): string {
  let s = typeof v === "string" ? v : JSON.stringify(v);
  if (s.length > MAX_SHOWN) s = `${s.slice(0, MAX_SHOWN)}…(${s.length} chars)`;
  const escaped = s.replace(CONTROL, (c) => {
    if (c === '"' || c === "\\") return `\\${c}`;
    if (c === "\n") return "\\n";
    if (c === "\t") return "\\t";
    if (c === "\r") return "\\r";
    const code = c.charCodeAt(0);
    return code > 0xff ? `\\u{${code.toString(16)}}` : `\\x${code.toString(16).padStart(2, "0")}`;
  });
  return escaped === "" || /[\s"=\\]/.test(escaped) || escaped !== s ? `"${escaped}"` : escaped;
}

/** `key=value` pairs, an object's own fields flattened one level (`args.path=…`), each escaped. */
export function formatFields(f: Record<string, unknown>): string[] {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(f)) {
    if (v && typeof v === "object" && !Array.isArray(v)) {
      for (const [k2, v2] of Object.entries(v as Record<string, unknown>)) parts.push(`${k}.${k2}=${showValue(v2)}`);
    } else parts.push(`${k}=${showValue(v)}`);
  }
  return parts;
}

/** One grep-friendly line: timestamp, then seq agent kind cap, then the record's own fields. */
export function formatLine(r: Pick<AuditRecord, "seq" | "ts" | "agent" | "kind" | "cap" | "fields">): string {
  const parts = [r.ts, `seq=${r.seq}`, `agent=${showValue(r.agent)}`, `kind=${r.kind}`, `cap=${showValue(r.cap)}`];
  return [...parts, ...formatFields(JSON.parse(r.fields) as Record<string, unknown>)].join(" ");
}

const text = new TextDecoder("utf-8", { fatal: true });

/** A byte field of a frame as text when it is UTF-8, else as {base64}. */
function bytesForJson(b: Uint8Array): string | { base64: string } {
  try {
    return text.decode(b);
  } catch {
    return { base64: Buffer.from(b).toString("base64") };
  }
}

/** The record's raw bytes decoded as frames, or why they do not decode (a protocol violation's). */
export function decodeRaw(raw: Uint8Array): { frames: unknown[] } | { frames_error: string } {
  try {
    return {
      frames: decodeFrames(raw).map((f) =>
        f.type === "result" ? { ...f, stdout: bytesForJson(f.stdout), stderr: bytesForJson(f.stderr) } : f,
      ),
    };
  } catch (e) {
    return { frames_error: (e as Error).message };
  }
}

/**
 * The NDJSON form of a record: the same facts as the line, fields unabbreviated, the raw bytes
 * (base64) and the frames they hold, decoded, plus the hash.
 */
export function formatJson(r: AuditRecord): string {
  return JSON.stringify({
    v: LOG_FORMAT_VERSION,
    ts: r.ts,
    seq: r.seq,
    agent: r.agent,
    kind: r.kind,
    cap: r.cap,
    ...JSON.parse(r.fields),
    raw: Buffer.from(r.raw).toString("base64"),
    // A model endpoint's record holds HTTP bodies (request, reply, refusal), not frames.
    ...(JSON.parse(r.fields).via === "endpoint" ? { body: bytesForJson(r.raw) } : decodeRaw(r.raw)),
    hash: toHex(r.hash),
  });
}
