// Tables for the output scrubber (broker/scrub.ts): each spelling a secret can take in a reply
// is cut, inside longer text and at every base64 alignment, and the count says how many; text
// that only resembles the secret (negative controls) is left exactly as it was.
import { describe, expect, test } from "bun:test";
import { REDACTED, scrub, scrubOutput, secretForms } from "../broker/scrub.ts";

const SECRET = "canary-9f8e7d6c5b4a/+?&= ü\"\\";
const USER = "AC0123456789abcdef0123456789abcdef";
const b64 = (s: string | Buffer) => Buffer.from(s).toString("base64");

describe("every spelling of the secret is cut", () => {
  const cases: [string, string][] = [
    ["raw", SECRET],
    ["base64", b64(SECRET)],
    ["base64 without padding", b64(SECRET).replace(/=+$/, "")],
    ["base64url", Buffer.from(SECRET).toString("base64url")],
    ["base64 of USER:SECRET (HTTP basic auth)", b64(`${USER}:${SECRET}`)],
    ["an Authorization header", `Authorization: Basic ${b64(`${USER}:${SECRET}`)}`],
    ["base64 inside a longer encoded text, offset 1", b64(`x${SECRET}tail`)],
    ["base64 inside a longer encoded text, offset 2", b64(`xy${SECRET}tail`)],
    ["base64 inside a longer encoded text, offset 3", b64(`xyz${SECRET}tail`)],
    ["base64url inside a longer encoded text, offset 1", Buffer.from(`x${SECRET}`).toString("base64url")],
    ["hex", Buffer.from(SECRET).toString("hex")],
    ["HEX", Buffer.from(SECRET).toString("hex").toUpperCase()],
    ["URI component encoding", encodeURIComponent(SECRET)],
    ["URI component encoding, lowercase hex", encodeURIComponent(SECRET).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase())],
    ["form encoding", new URLSearchParams({ t: SECRET }).toString()],
    ["JSON string escaping", JSON.stringify({ token: SECRET })],
    ["JSON with escaped slashes", JSON.stringify(SECRET).replace(/\//g, "\\/")],
    ["JSON with \\u escapes", JSON.stringify(SECRET).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)],
  ];
  for (const [name, spelled] of cases) {
    test(name, () => {
      const text = `before ${spelled} after`;
      const r = scrub([text], SECRET, [USER]);
      expect(r.count).toBeGreaterThan(0);
      expect(r.texts[0]).toContain(REDACTED);
      expect(r.texts[0]!.startsWith("before ")).toBe(true);
      // Nothing of the spelling survives whole, nor any other listed form.
      for (const f of secretForms(SECRET, [USER])) expect(r.texts[0]).not.toContain(f);
      expect(r.texts[0]).not.toContain(spelled.length > 12 ? spelled.slice(4, -4) : spelled);
    });
  }
});

test("each occurrence is counted, over every text", () => {
  const r = scrub([`${SECRET} and ${SECRET}`, `err: ${b64(SECRET)}`, "clean"], SECRET);
  expect(r.count).toBe(3);
  expect(r.texts).toEqual([`${REDACTED} and ${REDACTED}`, `err: ${REDACTED}`, "clean"]);
});

test("a secret of plain characters: its encodings are cut too", () => {
  const s = "0123456789abcdef0123456789abcdef";
  const r = scrub([`{"a":"${s}","b":"${b64(s)}","c":"${Buffer.from(s).toString("hex")}"}`], s);
  expect(r.count).toBe(3);
  expect(r.texts[0]).toBe(`{"a":"${REDACTED}","b":"${REDACTED}","c":"${REDACTED}"}`);
});

describe("negative controls: text that is not the secret is left alone", () => {
  const cases: [string, string][] = [
    ["a prefix of the secret", SECRET.slice(0, 10)],
    ["the secret with one character changed", `X${SECRET.slice(1)}`],
    ["base64 of another value", b64("another-value-entirely")],
    ["base64 of another user's basic auth", b64(`ACffff:${"z".repeat(20)}`)],
    ["hex of another value", Buffer.from("another-value-entirely").toString("hex")],
    ["an ordinary Twilio reply", JSON.stringify({ sid: `SM${"a".repeat(32)}`, status: "queued", to: "+15550100000" })],
    ["empty text", ""],
  ];
  for (const [name, text] of cases) {
    test(name, () => {
      const r = scrub([text], SECRET, [USER]);
      expect(r).toEqual({ texts: [text], count: 0 });
    });
  }
});

test("forms too short to tell from ordinary text are not looked for", () => {
  const forms = secretForms("abcdefgh");
  expect(forms.every((f) => f.length >= 8)).toBe(true);
  expect(forms).toContain("abcdefgh");
  expect(scrub(["abc defgh abcdefg"], "abcdefgh")).toEqual({ texts: ["abc defgh abcdefg"], count: 0 });
});

test("longer forms are cut before the shorter ones they contain", () => {
  const forms = secretForms(SECRET, [USER]);
  for (let i = 1; i < forms.length; i++) expect(forms[i - 1]!.length).toBeGreaterThanOrEqual(forms[i]!.length);
});

test("an error line is scrubbed before it is shortened, so no part of the secret survives the cut", () => {
  const hex = Buffer.from(SECRET).toString("hex");
  const err = `messaging-message-send: ${"x".repeat(980)} ${hex} (HTTP 400)\n`;
  const r = scrubOutput("", err, SECRET);
  expect(r.count).toBe(1);
  const scrubbedLength = err.length - hex.length + REDACTED.length;
  expect(r.stderr).toBe(`${`messaging-message-send: ${"x".repeat(980)} ${REDACTED}`.slice(0, 1000)}…(${scrubbedLength} chars)\n`);
  expect(r.stderr).not.toContain(hex.slice(0, 8));
});

test("a short error line is not shortened", () => {
  expect(scrubOutput("{}\n", "cap: failed: x\n", SECRET)).toEqual({ stdout: "{}\n", stderr: "cap: failed: x\n", count: 0 });
});
