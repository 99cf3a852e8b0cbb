// The seccomp filter as libseccomp compiled it: builds images/seccomp.c, reads its pseudo filter
// code (--pfc) and checks that the program says what the source and the README say: every
// allowed syscall allowed, every named danger EPERM, the argument-checked ones conditional,
// clone3 and everything else ENOSYS, another ABI ENOSYS, and no action that kills. The jail
// tests (test/bats/seccomp.bats) check the same rules by behaviour.
import { beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..");
const source = readFileSync(join(ROOT, "images", "seccomp.c"), "utf8");

/** The quoted names of a `static const char *const NAME[] = {...};` array in the source. */
function names(array: string): string[] {
  const m = new RegExp(`${array}\\[\\] = \\{([\\s\\S]*?)\\};`).exec(source);
  if (!m) throw new Error(`images/seccomp.c has no ${array}`);
  return [...m[1]!.replace(/\/\*[\s\S]*?\*\//g, "").matchAll(/"(\w+)"/g)].map((x) => x[1]!);
}
const ALLOWED = names("ALLOWED");
const DENIED = names("DENIED");
const NEWER = new Map([...source.matchAll(/\{"(\w+)", (\d+)\}/g)].map((m) => [m[1]!, Number(m[2])]));
const CONDITIONAL = ["ioctl", "socket", "socketpair", "clone", "unshare", "personality"];

let pfc = "";
/** syscall (name, or number for the ones libseccomp does not know) -> its action, or "conditional". */
const rules = new Map<string, string>();

beforeAll(() => {
  const dir = mkdtempSync(join(tmpdir(), "viv-seccomp-test-"));
  try {
    const cc = Bun.spawnSync(["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", join(dir, "seccomp"), join(ROOT, "images", "seccomp.c"), "-lseccomp"]);
    if (cc.exitCode !== 0) throw new Error(cc.stderr.toString());
    const r = Bun.spawnSync([join(dir, "seccomp"), "--pfc"]);
    if (r.exitCode !== 0) throw new Error(r.stderr.toString());
    pfc = r.stdout.toString();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const lines = pfc.split("\n").map((l) => l.trim());
  for (let i = 0; i < lines.length; i++) {
    const m = /^# filter for syscall "(\w+)" \((\d+)\)/.exec(lines[i]!);
    if (!m) continue;
    const key = m[1] === "UNKNOWN" ? m[2]! : m[1]!;
    const action = /^action (.+);$/.exec(lines[i + 2]!)?.[1] ?? "conditional";
    rules.set(key, action);
  }
});

const key = (name: string) => (NEWER.has(name) && !rules.has(name) ? String(NEWER.get(name)) : name);

describe("the compiled seccomp filter", () => {
  test("denies by default with ENOSYS, for this ABI and any other, and never kills", () => {
    expect(pfc).toMatch(/# default action\n\s*action ERRNO\(38\);/);
    expect(pfc).toMatch(/# invalid architecture action\naction ERRNO\(38\);/);
    const actions = new Set([...pfc.matchAll(/action (\w+)/g)].map((m) => m[1]));
    expect([...actions].sort()).toEqual(["ALLOW", "ERRNO"]);
    expect([...pfc.matchAll(/ERRNO\((\d+)\)/g)].map((m) => m[1]).filter((e) => e !== "1" && e !== "38")).toEqual([]);
  });

  test("allows each syscall of its allowlist, unconditionally", () => {
    expect(ALLOWED.length).toBeGreaterThan(250);
    expect(ALLOWED.filter((n) => rules.get(key(n)) !== "ALLOW")).toEqual([]);
  });

  test("denies each named danger with EPERM", () => {
    expect(DENIED.filter((n) => rules.get(key(n)) !== "ERRNO(1)")).toEqual([]);
  });

  test("checks the arguments of clone, unshare, personality, ioctl, socket and socketpair", () => {
    for (const n of CONDITIONAL) expect(rules.get(n), n).toBe("conditional");
  });

  test("leaves clone3 and the syscalls no one named to the default", () => {
    for (const n of ["clone3", "chroot", "modify_ldt", "open_by_handle_at", "swapon", "reboot", "syslog"]) expect(rules.has(n), n).toBe(false);
    expect(pfc).not.toMatch(/\$syscall == 435\b/); // clone3
    expect(pfc).not.toMatch(/\$syscall == 461\b/); // lsm_list_modules, newer than the list
  });

  test("the lists do not overlap", () => {
    const all = [...ALLOWED, ...DENIED, ...CONDITIONAL];
    expect(all.length).toBe(new Set(all).size);
  });

  test("README names exactly the syscalls the filter denies with EPERM", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const bullet = /- \*\*Named dangers fail with EPERM\*\*[\s\S]*?(?=\n- \*\*)/.exec(readme)?.[0];
    expect(bullet).toBeDefined();
    const named = [...bullet!.matchAll(/`(\w+)`/g)].map((m) => m[1]!).filter((n) => /^[a-z_0-9]+$/.test(n));
    expect(named.toSorted()).toEqual(DENIED.toSorted());
  });
});
