// Output scrubbing: before a call's result or error is recorded or returned, every spelling of the
// secret it was given is cut out of it. A provider may echo what it received (an error quoting the
// Authorization header, a debug field), so the forms looked for are those a secret takes on the
// way: raw; base64, standard and URL-safe, padded or not, at each of the three byte alignments it
// can have inside a longer encoded text; the base64 of USER:SECRET of HTTP basic auth; hex in
// either case; percent-encoding (URI component and form style, either hex case); and JSON string
// escaping. Pure: no I/O; the count of cuts is what the broker records. An error line is
// shortened only after it is scrubbed, never before: a secret cut in half is no longer
// recognizable.

export const REDACTED = "[secret scrubbed]";

/** Encoded forms shorter than this are not cut: too short to be told from ordinary text. */
const MIN_FORM = 8;

const b64url = (s: string) => s.replace(/\+/g, "-").replace(/\//g, "_");

/**
 * The base64 characters that depend only on `bytes`, when the bytes sit at offset `shift` (0, 1
 * or 2) within a longer base64-encoded text: the encodings of the whole 3-byte groups inside.
 */
function base64Core(bytes: Buffer, shift: number): string {
  const padded = Buffer.concat([Buffer.alloc(shift), bytes]);
  const firstGroup = Math.ceil(shift / 3);
  const lastGroup = Math.floor(padded.length / 3);
  if (lastGroup <= firstGroup) return "";
  return padded.subarray(firstGroup * 3, lastGroup * 3).toString("base64");
}

/** Every spelling of `secret` this scrubber looks for, longest first, each once. */
export function secretForms(secret: string, basicUsers: readonly string[] = []): string[] {
  const bytes = Buffer.from(secret, "utf8");
  const forms = new Set<string>();
  const add = (f: string) => {
    if (f.length >= MIN_FORM) forms.add(f);
  };
  add(secret);
  const b64 = bytes.toString("base64");
  for (const f of [b64, b64.replace(/=+$/, "")]) {
    add(f);
    add(b64url(f));
  }
  for (const shift of [0, 1, 2]) {
    const core = base64Core(bytes, shift);
    add(core);
    add(b64url(core));
  }
  for (const user of basicUsers) {
    const basic = Buffer.from(`${user}:${secret}`, "utf8").toString("base64");
    add(basic);
    add(basic.replace(/=+$/, ""));
  }
  const hex = bytes.toString("hex");
  add(hex);
  add(hex.toUpperCase());
  const uri = encodeURIComponent(secret);
  const form = new URLSearchParams({ s: secret }).toString().slice(2);
  for (const f of [uri, form]) {
    add(f);
    add(f.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()));
  }
  const json = JSON.stringify(secret).slice(1, -1);
  add(json);
  add(json.replace(/\//g, "\\/"));
  add(json.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`));
  return [...forms].sort((a, b) => b.length - a.length);
}

export interface Scrubbed {
  texts: string[];
  /** How many spellings of the secret were cut, over all texts. */
  count: number;
}

/** Cuts every form of the secret out of each text. */
export function scrub(texts: readonly string[], secret: string, basicUsers: readonly string[] = []): Scrubbed {
  const forms = secretForms(secret, basicUsers);
  let count = 0;
  const out = texts.map((t) => {
    let s = t;
    for (const f of forms) {
      if (!s.includes(f)) continue;
      const parts = s.split(f);
      count += parts.length - 1;
      s = parts.join(REDACTED);
    }
    return s;
  });
  return { texts: out, count };
}

/** An error line of a call that held a secret is at most this long, once scrubbed. */
export const MAX_ERROR_CHARS = 1000;

/** Scrubs a call's stdout and stderr, then shortens stderr visibly to MAX_ERROR_CHARS. */
export function scrubOutput(stdout: string, stderr: string, secret: string, basicUsers: readonly string[] = []): { stdout: string; stderr: string; count: number } {
  const r = scrub([stdout, stderr], secret, basicUsers);
  let err = r.texts[1]!;
  if (err.length > MAX_ERROR_CHARS) err = `${err.slice(0, MAX_ERROR_CHARS).trimEnd()}…(${err.length} chars)${err.endsWith("\n") ? "\n" : ""}`;
  return { stdout: r.texts[0]!, stderr: err, count: r.count };
}
