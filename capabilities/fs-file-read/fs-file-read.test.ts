// fs-file-read and fs-dir-list in-process against a temporary directory: the scope check (the
// granted directory itself may be listed, never read), where a cut at --max-bytes falls in UTF-8
// text, and the result of each on real files. The attacks through a real jail are in the .bats
// suites beside them.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fsDirList } from "../fs-dir-list/index.ts";
import { fsFileRead, incompleteTail } from "./index.ts";

const root = mkdtempSync(join(tmpdir(), "viv-fs-read-"));
const scope = join(root, "scope");
mkdirSync(join(scope, "sub"), { recursive: true });
writeFileSync(join(scope, "sub", "a.txt"), "aé€");
symlinkSync("/etc/passwd", join(scope, "link"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const scopes = { path: [scope] };

describe("incompleteTail", () => {
  const cases: [string, number[], number][] = [
    ["empty", [], 0],
    ["ASCII", [0x61, 0x62], 0],
    ["a whole 2-byte character", [0x61, 0xc3, 0xa9], 0],
    ["the first byte of a 2-byte character", [0x61, 0xc3], 1],
    ["two bytes of a 3-byte character", [0xe2, 0x82], 2],
    ["a whole 3-byte character", [0xe2, 0x82, 0xac], 0],
    ["three bytes of a 4-byte character", [0x61, 0xf0, 0x9f, 0x98], 3],
    ["a whole 4-byte character", [0xf0, 0x9f, 0x98, 0x80], 0],
    ["stray continuation bytes, left for the decoder to refuse", [0x80, 0x80, 0x80, 0x80], 0],
  ];
  for (const [name, bytes, n] of cases) test(name, () => expect(incompleteTail(new Uint8Array(bytes))).toBe(n));
});

describe("authorize", () => {
  test("a file below the grant may be read, the granted directory only listed", () => {
    expect(fsFileRead.authorize({ path: join(scope, "sub", "a.txt") }, scopes)).toBeNull();
    expect(fsFileRead.authorize({ path: scope }, scopes)).toBe(`cannot read '${scope}': outside granted path '${scope}'`);
    expect(fsDirList.authorize({ path: scope }, scopes)).toBeNull();
    expect(fsDirList.authorize({ path: join(scope, "sub") }, scopes)).toBeNull();
    expect(fsDirList.authorize({ path: root }, scopes)).toBe(`cannot list '${root}': outside granted path '${scope}'`);
    expect(fsDirList.authorize({ path: `${scope}-evil` }, scopes)).toBe(`cannot list '${scope}-evil': outside granted path '${scope}'`);
  });
});

test("a read cut inside a character leaves the character out whole", () => {
  const r = fsFileRead.run({ path: join(scope, "sub", "a.txt"), max_bytes: 5 }, scopes) as { content: string; bytes_read: number; truncated: boolean };
  expect([r.content, r.bytes_read, r.truncated]).toEqual(["aé", 3, true]);
});

test("a listing reports types, sizes, and a symlink as a symlink", () => {
  const r = fsDirList.run({ path: scope, recursive: true }, scopes) as { entries: { name: string; type: string; size?: number }[] };
  expect(r.entries.map(({ name, type, size }) => [name, type, size])).toEqual([
    ["link", "symlink", undefined],
    ["sub", "directory", undefined],
    ["sub/a.txt", "file", 6],
  ]);
});
