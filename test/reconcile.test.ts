// Crash reconciliation: which intents of a run have no outcome (a table of runs), and the
// confined removal of an interrupted write's temporaries (against a temporary directory, with
// the look-alikes and links it must leave alone).
import { describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openIntents, type RunRecord } from "../broker/reconcile.ts";
import { EscapeAttempt, removeTemporaries } from "../lib/confined-fs.ts";

let seq = 0;
const rec = (kind: string, fields: Record<string, unknown>): RunRecord => ({ seq: ++seq, agent: "a", kind, cap: "fs-file-write", fields });
const call = (conn: number) => rec("call", { conn });
const result = (conn: number) => rec("result", { conn, exit: 0 });

describe("openIntents", () => {
  const cases: Array<[string, () => RunRecord[], number[]]> = [
    ["an empty run has none", () => [], []],
    ["a call with its result is closed", () => [call(1), result(1)], []],
    ["a call with no outcome is open", () => [call(1)], [1]],
    ["a deny at execute closes a call", () => [call(1), rec("deny", { conn: 1, stage: "execute" })], []],
    ["a deny at another stage is no outcome of an intent", () => [call(1), rec("deny", { conn: 1, stage: "authorize" })], [1]],
    ["an interrupted record closes a call", () => [call(1), rec("interrupted", { conn: 1, intent: 1 })], []],
    ["outcomes match by connection, not by order", () => [call(1), call(2), result(2)], [1]],
    ["a later call on the same connection is open on its own", () => [call(1), result(1), call(1)], [3]],
    ["records without a connection are ignored", () => [rec("broker", { event: "stop" }), call(5), rec("hello", { conn: 6 })], [2]],
  ];
  for (const [name, run, open] of cases) {
    test(name, () => {
      seq = 0;
      expect(openIntents(run()).map((r) => r.seq)).toEqual(open);
    });
  }
});

describe("removeTemporaries", () => {
  const setup = () => {
    const root = mkdtempSync(join(tmpdir(), "viv-rt-"));
    mkdirSync(join(root, "sub"));
    return root;
  };

  test("removes the write's own temporaries and nothing else", () => {
    const root = setup();
    try {
      writeFileSync(join(root, "sub", ".viv-0123456789abcdef.tmp"), "half");
      writeFileSync(join(root, "sub", ".viv-aaaaaaaaaaaaaaaa.tmp"), "half");
      writeFileSync(join(root, "sub", ".viv-short.tmp"), "keep");
      writeFileSync(join(root, "sub", "f"), "keep");
      writeFileSync(join(root, ".viv-bbbbbbbbbbbbbbbb.tmp"), "another directory");
      mkdirSync(join(root, "sub", ".viv-cccccccccccccccc.tmp"));
      writeFileSync(join(root, "outside"), "kept");
      symlinkSync(join(root, "outside"), join(root, "sub", ".viv-dddddddddddddddd.tmp"));
      expect(removeTemporaries(root, ["sub"])).toBe(2);
      expect(existsSync(join(root, "sub", ".viv-0123456789abcdef.tmp"))).toBe(false);
      expect(readFileSync(join(root, "sub", ".viv-short.tmp"), "utf8")).toBe("keep");
      expect(readFileSync(join(root, "sub", "f"), "utf8")).toBe("keep");
      expect(existsSync(join(root, ".viv-bbbbbbbbbbbbbbbb.tmp"))).toBe(true);
      expect(lstatSync(join(root, "sub", ".viv-cccccccccccccccc.tmp")).isDirectory()).toBe(true);
      expect(lstatSync(join(root, "sub", ".viv-dddddddddddddddd.tmp")).isSymbolicLink()).toBe(true);
      expect(readFileSync(join(root, "outside"), "utf8")).toBe("kept");
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test("a directory that does not exist holds none", () => {
    const root = setup();
    try {
      expect(removeTemporaries(root, ["nope", "deeper"])).toBe(0);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test("a directory swapped for a symlink is refused, and the target keeps its files", () => {
    const root = setup();
    const elsewhere = mkdtempSync(join(tmpdir(), "viv-rt-else-"));
    try {
      writeFileSync(join(elsewhere, ".viv-0123456789abcdef.tmp"), "not ours");
      symlinkSync(elsewhere, join(root, "link"));
      expect(() => removeTemporaries(root, ["link"])).toThrow(EscapeAttempt);
      expect(existsSync(join(elsewhere, ".viv-0123456789abcdef.tmp"))).toBe(true);
    } finally {
      rmSync(root, { recursive: true, force: true });
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });
});
