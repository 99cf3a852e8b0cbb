// Every command's --help names its option values (`--state DIR`), never clipanion's `#0`, and
// keeps its option list aligned. Runs the built binaries.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { withValueNames } from "../lib/cli.ts";

const BIN = join(import.meta.dir, "..", "dist", "bin");
const COMMANDS = [
  ["viv", "run"], ["viv", "ps"], ["viv", "kill"], ["viv", "approvals"], ["viv", "approve"], ["viv", "deny"],
  ["viv", "policy", "check"], ["viv", "caps"], ["viv", "selftest"], ["viv", "secret", "set"], ["viv", "secret", "list"], ["viv", "secret", "rm"], ["viv-broker"], ["viv-log"], ["viv-log", "verify"], ["viv-log", "checkpoint"],
];

for (const [program, ...path] of COMMANDS) {
  test(`${[program, ...path].join(" ")} --help names option values`, () => {
    const r = Bun.spawnSync([join(BIN, program!), ...path, "--help"]);
    const out = r.stdout.toString();
    expect(r.exitCode).toBe(0);
    expect(out).not.toContain("#0");
    if (out.includes("--state")) expect(out).toContain("--state DIR");
  }, 30_000);
}

test("value names replace the placeholders and the option list is realigned", () => {
  expect(withValueNames("Options\n\n  --state #0     state directory\n  --json         print JSON\n")).toBe(
    "Options\n\n  --state DIR    state directory\n  --json         print JSON\n",
  );
});
