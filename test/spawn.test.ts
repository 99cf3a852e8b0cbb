// Spawn tests of the built binaries (dist/bin): stdout, stderr and exit code asserted every time.
// The broker-and-jail paths are covered by the bats suites; these pin each program's own face.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const BIN = join(import.meta.dir, "..", "dist", "bin");
const dir = mkdtempSync(join(tmpdir(), "viv-spawn-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(program: string, args: string[], env: Record<string, string> = {}) {
  const p = Bun.spawnSync([join(BIN, program), ...args], { env: { PATH: "/usr/bin:/bin", ...env }, stdin: "ignore" });
  return { code: p.exitCode, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
}

describe("viv policy check", () => {
  test("a valid policy exits 0 and says so on stdout", () => {
    const r = run("viv", ["policy", "check", join(import.meta.dir, "..", "policy/examples/demo.kdl")]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/demo\.kdl: ok: 1 agent, policy [0-9a-f]{12}\n$/);
    expect(r.stderr).toBe("");
  });

  test("an invalid policy exits 78 with file:line on stderr", () => {
    const p = join(dir, "bad.kdl");
    writeFileSync(p, `agent "a" {\n    grant "fs-file-write" {\n        path "/"\n    }\n}\n`);
    const r = run("viv", ["policy", "check", p]);
    expect(r.code).toBe(78);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(`viv: ${p}:3: path '/' refused: grants the whole filesystem\n`);
  });

  test("a missing policy exits 78", () => {
    const r = run("viv", ["policy", "check", join(dir, "nope.kdl")]);
    expect(r.code).toBe(78);
    expect(r.stderr).toBe(`viv: ${join(dir, "nope.kdl")}: cannot read policy: ENOENT\n`);
  });
});

describe("usage errors", () => {
  test("an unknown viv command exits 64 with one line on stderr", () => {
    const r = run("viv", ["frobnicate"]);
    expect(r.code).toBe(64);
    expect(r.stdout).toBe("");
    expect(r.stderr.split("\n").filter(Boolean)).toHaveLength(1);
    expect(r.stderr).toStartWith("viv: ");
  });

  test("viv run without an agent exits 64", () => {
    const r = run("viv", ["run", "--", "true"]);
    expect(r.code).toBe(64);
    expect(r.stderr).toStartWith("viv: ");
  });

  test("--help goes to stdout and exits 0", () => {
    const r = run("viv", ["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("viv policy check");
    expect(r.stderr).toBe("");
  });
});

describe("viv ps and viv-log without a broker or log", () => {
  test("viv ps exits 69 when no broker serves the state directory", () => {
    const r = run("viv", ["ps", "--state", join(dir, "none")]);
    expect(r.code).toBe(69);
    expect(r.stderr).toBe("viv: no broker serves this state directory\n");
  });

  test("viv-log exits 69 when there is no audit log", () => {
    const r = run("viv-log", [], { VIVARY_STATE: join(dir, "none") });
    expect(r.code).toBe(69);
    expect(r.stderr).toBe(`viv-log: no audit log at '${join(dir, "none", "audit.db")}'\n`);
  });

  test("viv-log --since refuses a malformed time with 64", () => {
    mkdirSync(join(dir, "st"), { recursive: true });
    writeFileSync(join(dir, "st", "audit.db"), "");
    const r = run("viv-log", ["--since", "yesterday", "--state", join(dir, "st")]);
    expect(r.code).toBe(64);
    expect(r.stderr).toBe("viv-log: --since 'yesterday' is not an ISO-8601 time or a duration like 10m\n");
  });
});

describe("a capability as its own program", () => {
  test("--help prints its JSON Schema", () => {
    const r = run("fs-file-write", ["--help"]);
    expect(r.code).toBe(0);
    const schema = JSON.parse(r.stdout);
    expect(schema.$schema).toBe("https://json-schema.org/draft/2020-12/schema");
    expect(schema["x-vivary-risk"]).toBe("medium");
    expect(schema.required).toEqual(["path", "content"]);
  });

  test("without a scope from the broker it is denied (77)", () => {
    const r = run("fs-file-write", ["--path", join(dir, "x/y"), "--content", "c"]);
    expect(r.code).toBe(77);
    expect(r.stderr).toBe("fs-file-write: no scope granted (VIVARY_SCOPE is not set; run it through the broker)\n");
  });

  test("with a scope in VIVARY_SCOPE it writes and prints the result", () => {
    const scope = join(dir, "scope", "out");
    mkdirSync(scope, { recursive: true });
    const r = run("fs-file-write", ["--path", `${scope}/a/b.txt`, "--content", "hé"], { VIVARY_SCOPE: JSON.stringify({ path: [scope] }) });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ path: `${scope}/a/b.txt`, bytes_written: 3 });
    expect(readFileSync(`${scope}/a/b.txt`, "utf8")).toBe("hé");
  });

  test("an unknown option is a usage error (64)", () => {
    const r = run("fs-file-write", ["--pth", "/x"]);
    expect(r.code).toBe(64);
    expect(r.stderr).toBe("fs-file-write: unknown option '--pth'\n");
  });

  test("the multi-call binary refuses a name it does not know", () => {
    const r = run("vivary", ["no-such-program"]);
    expect(r.code).toBe(64);
    expect(r.stderr).toBe("vivary: unknown program name 'no-such-program' (link this binary as viv, viv-broker, viv-log or a capability)\n");
  });
});
