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

// ---------------------------------------------------------------------------------------------
// The program the build wrote (dist/libexec/viv-seccomp.bpf), run on a classic BPF interpreter
// over many syscall arguments: the argument rules hold on every value tried, the high 32 bits of
// an argument included.

const AUDIT_ARCH_X86_64 = 0xc000003e;
const AUDIT_ARCH_I386 = 0x40000003;
const RET_ALLOW = 0x7fff0000;
const errno = (e: number) => 0x00050000 | e;
const [EPERM, ENOSYS] = [1, 38];

function loadProgram(): Array<[number, number, number, number]> {
  const bytes = readFileSync(join(ROOT, "dist", "libexec", "viv-seccomp.bpf"));
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const prog: Array<[number, number, number, number]> = [];
  for (let o = 0; o < bytes.byteLength; o += 8) prog.push([v.getUint16(o, true), v.getUint8(o + 2), v.getUint8(o + 3), v.getUint32(o + 4, true)]);
  return prog;
}

/** Runs a seccomp program on one syscall: its number, architecture and six 64-bit arguments. */
function run(prog: Array<[number, number, number, number]>, nr: number, args: bigint[] = [], arch = AUDIT_ARCH_X86_64): number {
  const data = new DataView(new ArrayBuffer(64));
  data.setUint32(0, nr >>> 0, true);
  data.setUint32(4, arch >>> 0, true);
  for (let i = 0; i < 6; i++) data.setBigUint64(16 + 8 * i, BigInt.asUintN(64, args[i] ?? 0n), true);
  let a = 0, x = 0;
  const mem = new Uint32Array(16);
  for (let pc = 0; pc < prog.length; pc++) {
    const [code, jt, jf, k] = prog[pc]!;
    const jump = (c: boolean) => (pc += c ? jt : jf);
    switch (code) {
      case 0x20: a = data.getUint32(k, true); break; // ld [k]
      case 0x00: a = k; break; // ld #k
      case 0x60: a = mem[k]!; break; // ld M[k]
      case 0x61: x = mem[k]!; break; // ldx M[k]
      case 0x02: mem[k] = a; break; // st M[k]
      case 0x03: mem[k] = x; break; // stx M[k]
      case 0x54: a = (a & k) >>> 0; break; // and #k
      case 0x44: a = (a | k) >>> 0; break; // or #k
      case 0x07: x = a; break; // tax
      case 0x87: a = x; break; // txa
      case 0x05: pc += k; break; // ja
      case 0x15: jump(a === k); break; // jeq #k
      case 0x25: jump(a > k); break; // jgt #k
      case 0x35: jump(a >= k); break; // jge #k
      case 0x45: jump((a & k) !== 0); break; // jset #k
      case 0x1d: jump(a === x); break;
      case 0x2d: jump(a > x); break;
      case 0x3d: jump(a >= x); break;
      case 0x06: return k; // ret #k
      case 0x16: return a; // ret a
      default: throw new Error(`BPF opcode 0x${code.toString(16)} at ${pc} not interpreted`);
    }
  }
  throw new Error("the program ran off its end");
}

describe("the filter the build wrote, interpreted", () => {
  const prog = loadProgram();
  const NR = { ioctl: 16, socket: 41, socketpair: 53, clone: 56, personality: 135, unshare: 272, getpid: 39, clone3: 435, lsm_list_modules: 461, bpf: 321 };
  const HIGH = [0n, 1n << 32n, 0xffffffffn << 32n];
  let seed = 12345;
  const rand32 = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0), seed);

  test("another ABI: x32 numbers and the i386 architecture get ENOSYS; so do unknown numbers", () => {
    expect(run(prog, NR.getpid)).toBe(RET_ALLOW);
    expect(run(prog, NR.getpid | 0x40000000)).toBe(errno(ENOSYS));
    expect(run(prog, 20, [], AUDIT_ARCH_I386)).toBe(errno(ENOSYS));
    expect(run(prog, NR.lsm_list_modules)).toBe(errno(ENOSYS));
    expect(run(prog, NR.clone3)).toBe(errno(ENOSYS));
    expect(run(prog, 1000)).toBe(errno(ENOSYS));
    expect(run(prog, NR.bpf)).toBe(errno(EPERM));
  });

  test("ioctl: TIOCSTI and TIOCLINUX denied whatever the high bits; every other cmd allowed", () => {
    for (const cmd of [0x5412n, 0x541cn]) for (const h of HIGH) expect(run(prog, NR.ioctl, [3n, h | cmd])).toBe(errno(EPERM));
    for (const cmd of [0n, 0x5401n, 0x5411n, 0x5413n, 0x541bn, 0x541dn, 0x5410n, 0x541an, 0x1412n, 0x15412n, 0x80045412n]) for (const h of HIGH) expect(run(prog, NR.ioctl, [3n, h | cmd]), cmd.toString(16)).toBe(RET_ALLOW);
    for (let i = 0; i < 3000; i++) {
      const cmd = BigInt(rand32());
      if (cmd === 0x5412n || cmd === 0x541cn) continue;
      expect(run(prog, NR.ioctl, [3n, (BigInt(rand32()) << 32n) | cmd])).toBe(RET_ALLOW);
    }
  });

  test("socket: AF_UNIX, AF_INET, AF_INET6 and netlink route allowed; every other family and netlink protocol denied", () => {
    for (let family = 0; family < 64; family++) {
      for (const h of HIGH) {
        const want = [1, 2, 10].includes(family) ? RET_ALLOW : family === 16 ? null : errno(EPERM);
        if (want !== null) expect(run(prog, NR.socket, [h | BigInt(family), 1n, 0n]), `family ${family}`).toBe(want);
      }
    }
    expect(run(prog, NR.socket, [16n, 3n, 0n])).toBe(RET_ALLOW);
    for (const proto of [1n, 4n, 9n, 12n, 15n, 16n, 0x100000000n | 9n]) expect(run(prog, NR.socket, [16n, 3n, proto])).toBe(errno(EPERM));
    expect(run(prog, NR.socketpair, [1n, 1n, 0n])).toBe(RET_ALLOW);
    for (const family of [2n, 10n, 16n, 30n]) expect(run(prog, NR.socketpair, [family, 1n, 0n])).toBe(errno(EPERM));
  });

  test("clone and unshare: any namespace flag denied, other flags allowed", () => {
    const ns = [0x20000n, 0x2000000n, 0x4000000n, 0x8000000n, 0x10000000n, 0x20000000n, 0x40000000n];
    for (const f of ns) {
      expect(run(prog, NR.clone, [f | 17n])).toBe(errno(EPERM));
      expect(run(prog, NR.unshare, [f])).toBe(errno(EPERM));
    }
    expect(run(prog, NR.unshare, [0x80n])).toBe(errno(EPERM)); // CLONE_NEWTIME
    expect(run(prog, NR.clone, [17n])).toBe(RET_ALLOW); // SIGCHLD: fork
    expect(run(prog, NR.clone, [0x4111n])).toBe(RET_ALLOW); // CLONE_VM | CLONE_VFORK | SIGCHLD
    expect(run(prog, NR.clone, [0x3d0f00n])).toBe(RET_ALLOW); // a thread
    expect(run(prog, NR.unshare, [0x400n])).toBe(RET_ALLOW); // CLONE_FILES
    const nsMask = 0x7e020080;
    for (let i = 0; i < 3000; i++) {
      const f = rand32();
      expect(run(prog, NR.unshare, [BigInt(f)])).toBe(f & nsMask ? errno(EPERM) : RET_ALLOW);
    }
  });

  test("personality: the default and the query only", () => {
    expect(run(prog, NR.personality, [0n])).toBe(RET_ALLOW);
    expect(run(prog, NR.personality, [0xffffffffn])).toBe(RET_ALLOW);
    for (const p of [8n, 0x40000n, 0x20000n, 0x1000000n | 8n, (1n << 32n) | 8n]) expect(run(prog, NR.personality, [p])).toBe(errno(EPERM));
  });
});
