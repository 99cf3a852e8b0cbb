// The nspawn jail's command line (broker/jail-nspawn.ts) and its root skeleton
// (images/nspawn-root.ts), as tables: what each guarantee needs is on the line, the one
// capability the first process needs is the only one nspawn keeps, and a caller that is not
// root is refused. The jail itself is attacked by the bats suites with VIV_BACKEND=nspawn.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FILTER_FD, INIT_FD, nspawnArgv } from "../broker/jail-nspawn.ts";
import type { JailSpec } from "../broker/jail-bwrap.ts";
import { nspawnSystemBinds, writeNspawnRoot } from "../images/nspawn-root.ts";
import { VivError } from "../lib/exit.ts";

const root = mkdtempSync(join(tmpdir(), "vivary-nspawn-root-test-"));
const skeleton = join(root, "nspawn-root");
writeNspawnRoot(skeleton);
afterAll(() => rmSync(root, { recursive: true, force: true }));

const spec = (o: Partial<JailSpec> = {}): JailSpec => ({
  hostUid: 2_123_456,
  workspace: "/srv/ws",
  runDir: "/var/lib/vivary/agents/a/run",
  etcDir: "/var/lib/vivary/agents/a/etc",
  limits: {},
  command: ["sh", "-c", "true"],
  env: {},
  ...o,
});

const nspawnPart = (argv: string[]) => argv.slice(argv.indexOf("systemd-nspawn"), argv.indexOf(`/proc/self/fd/${INIT_FD}`));
const initPart = (argv: string[]) => argv.slice(argv.indexOf(`/proc/self/fd/${INIT_FD}`));

describe("nspawnArgv", () => {
  test("the container has a private network, only the agent's uid, no new privileges and a pipe console", () => {
    const n = nspawnPart(nspawnArgv(spec(), skeleton));
    for (const a of ["--private-network", "--private-users=2123456:1", "--no-new-privileges=yes", "--console=pipe", "--read-only", "--register=no", "--keep-unit", "--resolv-conf=off"]) {
      expect(n).toContain(a);
    }
    expect(n.some((a) => a.startsWith("--capability="))).toBe(false);
  });

  test("every capability nspawn keeps by default is dropped but CAP_SETFCAP", () => {
    const drop = nspawnPart(nspawnArgv(spec(), skeleton)).find((a) => a.startsWith("--drop-capability="))!.slice("--drop-capability=".length).split(",");
    expect(drop).not.toContain("CAP_SETFCAP");
    // nspawn's default set (systemd 252, nspawn.c), plus CAP_NET_ADMIN, which --private-network adds.
    for (const c of ["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "IPC_OWNER", "KILL", "LEASE", "LINUX_IMMUTABLE", "MKNOD", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_RAW", "SETGID", "SETPCAP", "SETUID", "SYS_ADMIN", "SYS_BOOT", "SYS_CHROOT", "SYS_NICE", "SYS_PTRACE", "SYS_RESOURCE", "SYS_TTY_CONFIG", "AUDIT_WRITE", "AUDIT_CONTROL", "NET_ADMIN"]) {
      expect(drop).toContain(`CAP_${c}`);
    }
    expect(drop.length).toBe(40); // 0 to 40 less CAP_SETFCAP (31)
  });

  test("the first process gets the jail's ids, the filter's fd, the tmp size and a rebuilt environment", () => {
    const i = initPart(nspawnArgv(spec({ limits: { tmpBytes: 8 << 20 }, env: { ANTHROPIC_BASE_URL: "http://127.0.0.1:4180" } }), skeleton));
    expect(i.slice(0, 9)).toEqual([`/proc/self/fd/${INIT_FD}`, "--uid", "1000", "--gid", "1000", "--tmp-bytes", String(8 << 20), "--seccomp", String(FILTER_FD)]);
    const env = Object.fromEntries(i.flatMap((a, k) => (a === "--setenv" ? [[i[k + 1], i[k + 2]]] : [])));
    expect(Object.keys(env).sort()).toEqual(["ANTHROPIC_BASE_URL", "HOME", "LANG", "LOGNAME", "PATH", "PWD", "USER"]);
    expect(env.PATH!.startsWith("/run/vivary/bin:")).toBe(true);
    expect(i.slice(-4)).toEqual(["--", "sh", "-c", "true"]);
  });

  test("only the selftest's negative control leaves the filter out", () => {
    expect(initPart(nspawnArgv(spec(), skeleton, { seccomp: false }))).not.toContain("--seccomp");
  });

  test("rlimits stand in for the limits only without a control group", () => {
    const limits = { pids: 48, memoryBytes: 64 << 20 };
    expect(nspawnPart(nspawnArgv(spec({ limits }), skeleton))).toEqual(expect.arrayContaining(["--rlimit=RLIMIT_NPROC=48", `--rlimit=RLIMIT_AS=${64 << 20}`]));
    const grouped = nspawnArgv(spec({ limits, cgroupEnter: ["/bin/sh", "-c", "x", "vivary-cgroup", "--"] }), skeleton);
    expect(grouped.some((a) => a.startsWith("--rlimit="))).toBe(false);
    expect(grouped[0]).toBe("/bin/sh");
  });

  test("the run directory is bound read-only, the workspace read-write, the agent's passwd and group over the skeleton's", () => {
    const n = nspawnPart(nspawnArgv(spec(), skeleton));
    expect(n).toEqual(expect.arrayContaining(["--bind-ro=/var/lib/vivary/agents/a/run:/run/vivary", "--bind=/srv/ws:/workspace", "--bind-ro=/var/lib/vivary/agents/a/etc/passwd:/etc/passwd", "--bind-ro=/var/lib/vivary/agents/a/etc/group:/etc/group", "--bind-ro=/usr"]));
    expect(nspawnPart(nspawnArgv(spec({ workspace: null }), skeleton)).some((a) => a.startsWith("--bind="))).toBe(false);
  });

  test("a caller that is not root is refused with 69", () => {
    expect(() => nspawnArgv(spec({ hostUid: null }), skeleton)).toThrow(VivError);
    try {
      nspawnArgv(spec({ hostUid: null }), skeleton);
    } catch (e) {
      expect((e as VivError).code).toBe(69);
    }
  });
});

describe("writeNspawnRoot", () => {
  test("holds mount points, the host's top-level links, and placeholders only", () => {
    expect(readdirSync(skeleton).sort()).toEqual(expect.arrayContaining(["dev", "etc", "proc", "run", "sys", "tmp", "usr", "workspace"]));
    for (const l of ["bin", "lib", "sbin"]) {
      if (existsSync(`/${l}`) && lstatSync(`/${l}`).isSymbolicLink()) expect(readlinkSync(join(skeleton, l))).toBe(readlinkSync(`/${l}`));
    }
    expect(readdirSync(join(skeleton, "usr"))).toEqual(["lib"]);
    expect(readdirSync(join(skeleton, "usr", "lib"))).toEqual(["os-release"]);
    expect(readdirSync(join(skeleton, "etc"))).toEqual(expect.arrayContaining(["passwd", "group"]));
    for (const f of readdirSync(join(skeleton, "etc"))) {
      const st = lstatSync(join(skeleton, "etc", f));
      expect(st.isDirectory() ? readdirSync(join(skeleton, "etc", f)).length : st.size).toBe(0);
    }
  });

  test("binds each loader file of /etc that the skeleton has a place for", () => {
    const binds = nspawnSystemBinds(skeleton);
    expect(binds[0]).toBe("--bind-ro=/usr");
    for (const b of binds.slice(1)) expect(existsSync(join(skeleton, b.slice("--bind-ro=".length)))).toBe(true);
    expect(binds).not.toContain("--bind-ro=/etc/passwd");
  });
});
