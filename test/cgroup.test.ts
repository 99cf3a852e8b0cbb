// lib/cgroup.ts: which driver a host gets, the files each limit becomes, the counters read back,
// the groups an operator request may name, and the step into a group run for real with sh.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CGROUP_BASE, checkGroup, chooseDriver, cpuMax, createGroup, enterArgv, flatKey, groupPids, hostFacts, killGroup, parseMountinfo, prepareLimits, readEvents, removeGroup, sweepStale, type HostFacts, type JailGroup, type Mounts } from "../lib/cgroup.ts";
import { VivError } from "../lib/exit.ts";

/** Directories the tests make under the system's temporary directory, removed after them. */
const made: string[] = [];
const tempDir = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  made.push(d);
  return d;
};
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

const HYBRID = `30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 30 0:33 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw`;
const UNIFIED = `29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot`;
const JOINED = `31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory`;

test("mountinfo: the hybrid layout, a unified host and joined v1 controllers", () => {
  expect(parseMountinfo(HYBRID)).toEqual({
    v2: "/sys/fs/cgroup/unified",
    v1: { cpu: "/sys/fs/cgroup/cpu", memory: "/sys/fs/cgroup/memory", freezer: "/sys/fs/cgroup/freezer", pids: "/sys/fs/cgroup/pids" },
  });
  expect(parseMountinfo(UNIFIED)).toEqual({ v2: "/sys/fs/cgroup", v1: {} });
  expect(parseMountinfo(JOINED).v1).toEqual({ cpu: "/sys/fs/cgroup/cpu,cpuacct", memory: "/sys/fs/cgroup/memory" });
});

const facts = (over: Partial<HostFacts> = {}): HostFacts => ({ root: true, mounts: parseMountinfo(HYBRID), v2Controllers: [], writable: () => true, ...over });

describe("the driver a host gets", () => {
  const cases: [string, HostFacts, string, string][] = [
    ["hybrid with an empty unified hierarchy: cgroup1", facts(), "auto", "cgroup1"],
    ["unified with memory, pids and cpu delegated: cgroup2", facts({ mounts: parseMountinfo(UNIFIED), v2Controllers: ["cpuset", "cpu", "io", "memory", "pids"] }), "auto", "cgroup2"],
    ["unified without pids: no cgroup1 either, so rlimit", facts({ mounts: parseMountinfo(UNIFIED), v2Controllers: ["cpu", "memory"] }), "auto", "rlimit"],
    ["not root: rlimit", facts({ root: false }), "auto", "rlimit"],
    ["read-only hierarchies: rlimit", facts({ writable: () => false }), "auto", "rlimit"],
    ["rlimit when asked for", facts(), "rlimit", "rlimit"],
    ["cgroup1 when asked for and usable", facts(), "cgroup1", "cgroup1"],
    ["cgroup2 asked for where it offers nothing", facts(), "cgroup2", "cgroup2 is not usable here: the cgroup2 hierarchy at '/sys/fs/cgroup/unified' does not offer memory, pids, cpu"],
    ["cgroup1 asked for where a controller is missing", facts({ mounts: parseMountinfo(JOINED) }), "cgroup1", "cgroup1 is not usable here: no cgroup1 hierarchy for pids, freezer"],
    ["an unknown driver", facts(), "cgroup3", "'cgroup3' is not auto, cgroup2, cgroup1 or rlimit"],
  ];
  for (const [what, h, want, expected] of cases) {
    test(what, () => {
      const r = chooseDriver(h, want);
      expect("driver" in r ? r.driver : r.refused).toBe(expected);
    });
  }
});

test("a cpu limit with no cgroup driver is refused, never silently dropped", () => {
  expect(() => prepareLimits("lim-x-1", { cpu: 0.5 }, "auto", facts({ root: false }))).toThrow(VivError);
  expect(() => prepareLimits("lim-x-1", { cpu: 0.5 }, "auto", facts({ root: false }))).toThrow("limits: cpu=0.5 needs a cgroup driver (cgroup2 is not usable here: cgroups need root; cgroup1 is not usable here: cgroups need root)");
  expect(prepareLimits("lim-x-1", { memoryBytes: 1 << 26, pids: 10 }, "auto", facts({ root: false }))).toEqual({ driver: "rlimit", group: null });
});

test("cpu.max and the counters of flat-keyed files", () => {
  expect(cpuMax(0.5)).toBe("50000 100000");
  expect(cpuMax(2)).toBe("200000 100000");
  expect(cpuMax(0.001)).toBe("1000 100000");
  expect(flatKey("low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\n", "oom_kill")).toBe(2);
  expect(flatKey("oom_kill_disable 0\nunder_oom 0\noom_kill 5\n", "oom_kill")).toBe(5);
  expect(flatKey("max 0\n", "max")).toBe(0);
  expect(flatKey("", "max")).toBe(0);
});

describe("groups an operator request may name", () => {
  const m: Mounts = parseMountinfo(HYBRID);
  const v1 = (name: string) => ({ driver: "cgroup1", dirs: Object.fromEntries(["memory", "pids", "cpu", "freezer"].map((c) => [c, `/sys/fs/cgroup/${c}/vivary/${name}`])) });
  test("a jail's group of vivary's", () => {
    expect(checkGroup(v1("lim-a-123"), m)).toEqual(v1("lim-a-123") as never);
  });
  const refused: [string, unknown][] = [
    ["another group", { ...v1("lim-a-1"), dirs: { ...v1("lim-a-1").dirs, memory: "/sys/fs/cgroup/memory/system.slice" } }],
    ["a path that climbs out", { ...v1("lim-a-1"), dirs: { ...v1("lim-a-1").dirs, pids: "/sys/fs/cgroup/pids/vivary/../x-1" } }],
    ["the base itself", { ...v1("lim-a-1"), dirs: { ...v1("lim-a-1").dirs, cpu: "/sys/fs/cgroup/cpu/vivary" } }],
    ["a controller missing", { driver: "cgroup1", dirs: { memory: "/sys/fs/cgroup/memory/vivary/lim-a-1" } }],
    ["cgroup2 where none is mounted", { driver: "cgroup2", dirs: { unified: "/sys/fs/cgroup/vivary/lim-a-1" } }],
    ["an unknown driver", { driver: "rlimit", dirs: {} }],
    ["not an object", "lim-a-1"],
  ];
  for (const [what, v] of refused) test(`refused: ${what}`, () => expect(checkGroup(v, m)).toBeNull());
});

test("the step into a group writes 0 to each cgroup.procs and then execs the command", async () => {
  const d = tempDir("vivary-cg-");
  for (const c of ["memory", "pids"]) writeFileSync(join(d, c), "");
  const g = { driver: "cgroup1" as const, dirs: { memory: d, pids: d } };
  // Plain files stand in for cgroup.procs: the script's writes land in them.
  const argv = enterArgv(g).map((a) => a.replace(/cgroup\.procs$/, "procs"));
  writeFileSync(join(d, "procs"), "");
  const p = Bun.spawnSync([...argv, "sh", "-c", 'echo "ran $1"', "_", "--"], { stdout: "pipe" });
  expect(p.exitCode).toBe(0);
  expect(p.stdout.toString()).toBe("ran --\n");
  expect(readFileSync(join(d, "procs"), "utf8")).toBe("0\n");
  // A group that cannot be entered stops the jail before the command runs (exit 69).
  const bad = enterArgv({ driver: "cgroup1", dirs: { memory: join(d, "missing", "x") } });
  const q = Bun.spawnSync([...bad, "touch", join(d, "ran")], { stderr: "pipe" });
  expect(q.exitCode).toBe(69);
  expect(Bun.file(join(d, "ran")).size).toBe(0);
});

// On the real kernel, as root: a process tree entered into a group, ended by the kill, the group
// removed. cgroup1 needs its four hierarchies; cgroup2's kill needs only a unified hierarchy
// (cgroup.kill works without controllers), so both run on a hybrid host.
const host = (() => {
  try {
    return hostFacts();
  } catch {
    return null;
  }
})();
const isRoot = process.getuid?.() === 0;

async function treeIn(g: JailGroup) {
  const p = Bun.spawn([...enterArgv(g), "sh", "-c", "sleep 60 & sleep 60 & (sleep 60 &) ; exec sleep 60"], { stdio: ["ignore", "ignore", "ignore"] });
  const deadline = performance.now() + 5000;
  while (groupPids(g).length < 4 && performance.now() < deadline) await Bun.sleep(10);
  return p;
}

test.skipIf(!isRoot || !host || "refused" in chooseDriver(host, "cgroup1"))("cgroup1: the freezer kill ends a whole tree and the group goes", async () => {
  const g = createGroup("cgroup1", host!.mounts, `lim-unit-${process.pid}`, { memoryBytes: 64 << 20, pids: 16, cpu: 0.5 });
  try {
    expect(readFileSync(join(g.dirs.pids!, "pids.max"), "utf8").trim()).toBe("16");
    expect(readFileSync(join(g.dirs.cpu!, "cpu.cfs_quota_us"), "utf8").trim()).toBe("50000");
    const p = await treeIn(g);
    expect(groupPids(g).length).toBeGreaterThanOrEqual(4);
    expect(await killGroup(g)).toEqual([]);
    expect(await p.exited).not.toBe(0);
    expect(readEvents(g)).toEqual({ memory: 0, pids: 0, cpu: 0 });
  } finally {
    expect(removeGroup(g)).toEqual([]);
  }
});

test.skipIf(!isRoot || !host?.mounts.v2)("cgroup2: cgroup.kill ends a whole tree and the group goes", async () => {
  const base = join(host!.mounts.v2!, CGROUP_BASE);
  mkdirSync(base, { recursive: true });
  const dir = join(base, `lim-unit-${process.pid}`);
  mkdirSync(dir);
  const g: JailGroup = { driver: "cgroup2", dirs: { unified: dir } };
  try {
    const p = await treeIn(g);
    expect(groupPids(g).length).toBeGreaterThanOrEqual(4);
    expect(await killGroup(g)).toEqual([]);
    expect(await p.exited).not.toBe(0);
  } finally {
    expect(removeGroup(g)).toEqual([]);
  }
});

test.skipIf(!isRoot || !host || "refused" in chooseDriver(host, "cgroup1"))("a stale empty group of a run that is gone is swept; a live run's is kept", () => {
  const gone = Bun.spawnSync(["true"]).pid;
  const stale = createGroup("cgroup1", host!.mounts, `lim-unit-${gone}`, {});
  const live = createGroup("cgroup1", host!.mounts, `lim-unit-${process.pid}`, {});
  try {
    sweepStale("cgroup1", host!.mounts);
    for (const d of Object.values(stale.dirs)) expect(existsSync(d)).toBe(false);
    for (const d of Object.values(live.dirs)) expect(existsSync(d)).toBe(true);
  } finally {
    removeGroup(stale);
    removeGroup(live);
  }
});

test("under cgroup2 the pids of sub-groups made inside the jail's group count as the group's (systemd-nspawn's payload and supervisor)", () => {
  const d = tempDir("vivary-cg-sub-");
  mkdirSync(join(d, "payload"));
  mkdirSync(join(d, "supervisor"));
  writeFileSync(join(d, "cgroup.procs"), "");
  writeFileSync(join(d, "payload", "cgroup.procs"), "101\n102\n");
  writeFileSync(join(d, "supervisor", "cgroup.procs"), "100\n");
  expect(groupPids({ driver: "cgroup2", dirs: { unified: d } }).sort()).toEqual([100, 101, 102]);
  // cgroup1 groups are left as they are: nothing makes sub-groups in vivary's controllers there.
  expect(groupPids({ driver: "cgroup1", dirs: { memory: d } })).toEqual([]);
});
