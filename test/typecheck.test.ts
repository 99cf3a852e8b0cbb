// The whole tree type-checks (tsc --noEmit over tsconfig.json: sources, tests, benches, scripts).
// Bun runs TypeScript without checking it, so a misnamed variable would otherwise wait for the
// one path that reaches it to throw at run time.
import { expect, test } from "bun:test";
import { join } from "node:path";

test("tsc --noEmit reports nothing", () => {
  const root = join(import.meta.dir, "..");
  const r = Bun.spawnSync([join(root, "node_modules/.bin/tsc"), "--noEmit", "-p", root], { cwd: root });
  const out = `${r.stdout.toString()}${r.stderr.toString()}`;
  expect(out).toBe("");
  expect(r.exitCode).toBe(0);
}, 120_000);
