// libc calls through bun:ffi must keep their buffers alive for the whole call. A ptr() number
// does not: a collection between building the arguments and the call frees the buffer, and the
// kernel reads whatever reuses its memory (a confined write once failed with ENOENT because
// renameat read a freed temporary name). Passing typed arrays keeps each one referenced.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { libc } from "../lib/libc.ts";

const ROOT = join(import.meta.dir, "..");
const cstr = (s: string) => Buffer.from(`${s}\0`);

describe("libc calls through bun:ffi", () => {
  test("no source file hands libc a ptr() number", () => {
    const found: string[] = [];
    for (const dir of ["lib", "broker", "capabilities", "cli", "policy"]) {
      for (const f of readdirSync(join(ROOT, dir), { recursive: true }) as string[]) {
        if (!f.endsWith(".ts")) continue;
        readFileSync(join(ROOT, dir, f), "utf8").split("\n").forEach((l, n) => /\bptr\(/.test(l) && found.push(`${dir}/${f}:${n + 1}`));
      }
    }
    expect(found).toEqual([]);
  });

  test("typed-array arguments survive a collection between building the arguments and the call", () => {
    const dir = mkdtempSync(join(tmpdir(), "viv-ffi-"));
    try {
      const dirfd = Number(libc.syscall(437n, -100n, cstr(dir), new BigUint64Array([0o200000n, 0n, 0n]), 24n));
      expect(dirfd).toBeGreaterThanOrEqual(0);
      writeFileSync(join(dir, "name-0"), "x");
      let failures = 0;
      for (let i = 1; i <= 50; i++) {
        const from = `name-${i - 1}`;
        const to = `name-${i}`;
        // Bun.gc(true) runs after the first name's buffer is built and before the call.
        if (libc.renameat(dirfd, cstr(from), (Bun.gc(true), dirfd), cstr(to)) !== 0) failures++;
      }
      libc.close(dirfd);
      expect(failures).toBe(0);
      expect(readdirSync(dir)).toEqual(["name-50"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
