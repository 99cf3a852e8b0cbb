// A control group per jail: how a jail's memory, processes and CPU are bounded, how the kill
// switch ends its whole process tree, and how a limit the jail ran into is counted. Two drivers
// and a fallback, chosen at run time and named wherever it matters (viv run, viv ps, kind=limit):
//   cgroup2  the unified hierarchy, where the host lets its root hand memory, pids and cpu down:
//            memory.max (+ memory.swap.max 0), pids.max, cpu.max; cgroup.kill ends the tree;
//            memory.events oom_kill and pids.events max count what was refused.
//   cgroup1  the legacy hierarchies memory, pids, cpu and freezer: memory.limit_in_bytes
//            (+ memory.memsw.limit_in_bytes where swap is accounted), pids.max,
//            cpu.cfs_quota_us/cfs_period_us; the kill freezes the tree, SIGKILLs it, thaws it;
//            memory.oom_control oom_kill and pids.events max count.
//   rlimit   neither is usable (not root, or the controllers are not there): prlimit's
//            RLIMIT_NPROC and RLIMIT_AS approximate pids and memory; a cpu limit is refused.
// Each jail's group is BASE/vivary/AGENT-RUNPID in each hierarchy it uses; viv run creates it,
// puts the jail's first process in it before bwrap runs, and removes it when the jail ends.
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Exit, VivError } from "./exit.ts";
import { Env } from "./paths.ts";

export type LimitDriver = "cgroup2" | "cgroup1" | "rlimit";
export const LIMIT_DRIVERS: readonly LimitDriver[] = ["cgroup2", "cgroup1", "rlimit"];
export const V1_CONTROLLERS = ["memory", "pids", "cpu", "freezer"] as const;
export const V2_CONTROLLERS = ["memory", "pids", "cpu"] as const;
/** The directory under each hierarchy's root that holds the jails' groups. */
export const CGROUP_BASE = "vivary";
/** CFS period for the cpu limit: cpu=0.5 is 50 ms of CPU time each 100 ms. */
export const CPU_PERIOD_US = 100_000;
/** How long a kill may take before it is reported as failed. */
export const KILL_WAIT_MS = 5_000;

/** What a jail's group is bounded by; the same numbers as policy/model.ts Limits. */
export interface GroupLimits {
  memoryBytes?: number;
  pids?: number;
  /** CPUs, as a fraction: 0.5 is half of one CPU, 2 is two. */
  cpu?: number;
}

/** Where the hierarchies are mounted on this host. */
export interface Mounts {
  v2: string | null;
  v1: Partial<Record<(typeof V1_CONTROLLERS)[number], string>>;
}

/** A jail's group, as viv run hands it to the broker over the operator socket. */
export interface JailGroup {
  driver: "cgroup2" | "cgroup1";
  /** cgroup2: { unified }; cgroup1: one directory per controller. */
  dirs: Record<string, string>;
}

/** Limits the jail ran into: the kernel's counters, read when the jail ends. */
export interface LimitEvents {
  /** Processes the OOM killer ended because the group reached its memory limit. */
  memory: number;
  /** Forks and clones refused because the group reached its pids limit. */
  pids: number;
  /** CFS periods in which the group was throttled by its cpu limit. */
  cpu: number;
}

/** The cgroup mounts named in /proc/self/mountinfo. */
export function parseMountinfo(text: string): Mounts {
  const m: Mounts = { v2: null, v1: {} };
  for (const line of text.split("\n")) {
    const [pre, post] = line.split(" - ");
    if (!pre || !post) continue;
    const mountPoint = pre.split(" ")[4];
    const [fstype, , superOpts = ""] = post.split(" ");
    if (!mountPoint) continue;
    if (fstype === "cgroup2") m.v2 ??= mountPoint;
    else if (fstype === "cgroup") {
      const opts = superOpts.split(",");
      for (const c of V1_CONTROLLERS) if (opts.includes(c)) m.v1[c] ??= mountPoint;
    }
  }
  return m;
}

/** What chooseDriver needs to know about the host. */
export interface HostFacts {
  root: boolean;
  mounts: Mounts;
  /** The controllers the unified hierarchy's root offers (its cgroup.controllers). */
  v2Controllers: string[];
  /** Whether a directory can be written (a group created in it). */
  writable: (dir: string) => boolean;
}

/**
 * The driver for this host: the one asked for (VIVARY_LIMITS), or the first usable of cgroup2,
 * cgroup1, rlimit. Returns why a driver asked for cannot be used, as a one-line reason.
 */
export function chooseDriver(h: HostFacts, want = "auto"): { driver: LimitDriver } | { refused: string } {
  const v2 = (): string | null => {
    if (!h.root) return "cgroups need root";
    if (!h.mounts.v2) return "no cgroup2 hierarchy is mounted";
    const missing = V2_CONTROLLERS.filter((c) => !h.v2Controllers.includes(c));
    if (missing.length) return `the cgroup2 hierarchy at '${h.mounts.v2}' does not offer ${missing.join(", ")}`;
    if (!h.writable(h.mounts.v2)) return `'${h.mounts.v2}' is not writable`;
    return null;
  };
  const v1 = (): string | null => {
    if (!h.root) return "cgroups need root";
    const missing = V1_CONTROLLERS.filter((c) => !h.mounts.v1[c]);
    if (missing.length) return `no cgroup1 hierarchy for ${missing.join(", ")}`;
    const ro = V1_CONTROLLERS.find((c) => !h.writable(h.mounts.v1[c]!));
    if (ro) return `'${h.mounts.v1[ro]}' is not writable`;
    return null;
  };
  if (want === "auto" || want === "") {
    if (v2() === null) return { driver: "cgroup2" };
    if (v1() === null) return { driver: "cgroup1" };
    return { driver: "rlimit" };
  }
  if (want === "cgroup2" || want === "cgroup1") {
    const why = want === "cgroup2" ? v2() : v1();
    return why === null ? { driver: want } : { refused: `${want} is not usable here: ${why}` };
  }
  if (want === "rlimit") return { driver: "rlimit" };
  return { refused: `'${want}' is not auto, cgroup2, cgroup1 or rlimit` };
}

/** The host as it is now. */
export function hostFacts(): HostFacts {
  const mounts = parseMountinfo(readFileSync("/proc/self/mountinfo", "utf8"));
  let v2Controllers: string[] = [];
  if (mounts.v2) v2Controllers = readOr(join(mounts.v2, "cgroup.controllers"), "").split(/\s+/).filter(Boolean);
  const writable = (dir: string) => {
    try {
      accessSync(dir, constants.W_OK);
      return true;
    } catch {
      return false;
    }
  };
  return { root: process.getuid?.() === 0, mounts, v2Controllers, writable };
}

/** cpu=0.5 as cgroup2's cpu.max: "50000 100000". */
export function cpuMax(cpu: number): string {
  return `${cpuQuotaUs(cpu)} ${CPU_PERIOD_US}`;
}

export function cpuQuotaUs(cpu: number): number {
  return Math.max(1000, Math.round(cpu * CPU_PERIOD_US));
}

/** One `key value` line of a flat-keyed cgroup file (memory.events, pids.events, cpu.stat). */
export function flatKey(text: string, key: string): number {
  for (const line of text.split("\n")) {
    const [k, v] = line.trim().split(/\s+/);
    if (k === key && v !== undefined && /^[0-9]+$/.test(v)) return Number(v);
  }
  return 0;
}

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return fallback;
  }
}

function write(path: string, value: string) {
  writeFileSync(path, value);
}

/** Adds controllers to a cgroup2 directory's subtree_control, those not there yet. */
function delegate(dir: string) {
  const have = readOr(join(dir, "cgroup.subtree_control"), "").split(/\s+/);
  const add = V2_CONTROLLERS.filter((c) => !have.includes(c));
  if (add.length) write(join(dir, "cgroup.subtree_control"), add.map((c) => `+${c}`).join(" "));
}

/**
 * Creates the jail's group with its limits. Throws (with the file that refused) when the kernel
 * refuses; whatever was created is removed first.
 */
export function createGroup(driver: "cgroup2" | "cgroup1", mounts: Mounts, name: string, l: GroupLimits): JailGroup {
  const g: JailGroup = { driver, dirs: {} };
  try {
    if (driver === "cgroup2") {
      const base = join(mounts.v2!, CGROUP_BASE);
      delegate(mounts.v2!);
      mkdirSync(base, { recursive: true });
      delegate(base);
      const dir = join(base, name);
      mkdirSync(dir);
      g.dirs.unified = dir;
      if (l.memoryBytes) {
        write(join(dir, "memory.max"), String(l.memoryBytes));
        if (existsSync(join(dir, "memory.swap.max"))) write(join(dir, "memory.swap.max"), "0");
      }
      if (l.pids) write(join(dir, "pids.max"), String(l.pids));
      if (l.cpu) write(join(dir, "cpu.max"), cpuMax(l.cpu));
    } else {
      for (const c of V1_CONTROLLERS) {
        const dir = join(mounts.v1[c]!, CGROUP_BASE, name);
        mkdirSync(join(mounts.v1[c]!, CGROUP_BASE), { recursive: true });
        mkdirSync(dir);
        g.dirs[c] = dir;
      }
      if (l.memoryBytes) {
        write(join(g.dirs.memory!, "memory.limit_in_bytes"), String(l.memoryBytes));
        const memsw = join(g.dirs.memory!, "memory.memsw.limit_in_bytes");
        if (existsSync(memsw)) write(memsw, String(l.memoryBytes));
      }
      if (l.pids) write(join(g.dirs.pids!, "pids.max"), String(l.pids));
      if (l.cpu) {
        write(join(g.dirs.cpu!, "cpu.cfs_period_us"), String(CPU_PERIOD_US));
        write(join(g.dirs.cpu!, "cpu.cfs_quota_us"), String(cpuQuotaUs(l.cpu)));
      }
    }
  } catch (e) {
    removeGroup(g);
    throw e;
  }
  return g;
}

/**
 * argv that puts its own process in every hierarchy of the group and then execs the rest:
 * `sh -c SCRIPT vivary-cgroup PROCS... -- CMD...`. Everything the command forks stays inside.
 */
export function enterArgv(g: JailGroup): string[] {
  const script = 'for f do shift; [ "$f" = -- ] && break; echo 0 >"$f" || exit 69; done; exec "$@"';
  return ["/bin/sh", "-c", script, "vivary-cgroup", ...Object.values(g.dirs).map((d) => join(d, "cgroup.procs")), "--"];
}

/**
 * The group's directories; under cgroup2 also, first, the sub-groups made in it by what runs
 * inside (systemd-nspawn moves its container into `payload` and itself into `supervisor` of the
 * group it runs in, when that is on the unified hierarchy).
 */
function groupDirs(g: JailGroup): string[] {
  const dirs = Object.values(g.dirs);
  if (g.driver !== "cgroup2") return dirs;
  let subs: string[] = [];
  try {
    subs = readdirSync(g.dirs.unified!, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => join(g.dirs.unified!, e.name));
  } catch {
    /* gone already */
  }
  return [...subs, ...dirs];
}

/** The pids in the group (in every hierarchy it uses, and its sub-groups). */
export function groupPids(g: JailGroup): number[] {
  const pids = new Set<number>();
  for (const d of groupDirs(g)) {
    for (const p of readOr(join(d, "cgroup.procs"), "").split("\n")) if (p) pids.add(Number(p));
  }
  return [...pids];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(ok: () => boolean, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!ok()) {
    if (performance.now() > deadline) return false;
    await sleep(10);
  }
  return true;
}

const killEach = (pids: number[]) => {
  for (const p of pids) {
    try {
      process.kill(p, "SIGKILL");
    } catch {
      /* already gone */
    }
  }
};

/**
 * Ends every process in the group and waits until none is left: cgroup.kill on cgroup2 (or
 * freeze, SIGKILL, thaw where the kernel has no cgroup.kill); on cgroup1, freeze so nothing can
 * fork meanwhile, SIGKILL each, thaw. Resolves with the pids still there after KILL_WAIT_MS
 * (none when the kill held).
 */
export async function killGroup(g: JailGroup, waitMs = KILL_WAIT_MS): Promise<number[]> {
  try {
    return await killGroupNow(g, waitMs);
  } catch (e) {
    // The jail's own viv run removes the group once its last process is gone: nothing is left.
    if (!existsSync(g.driver === "cgroup2" ? g.dirs.unified! : g.dirs.freezer!)) return [];
    throw e;
  }
}

async function killGroupNow(g: JailGroup, waitMs: number): Promise<number[]> {
  if (g.driver === "cgroup2") {
    const dir = g.dirs.unified!;
    if (existsSync(join(dir, "cgroup.kill"))) write(join(dir, "cgroup.kill"), "1");
    else {
      write(join(dir, "cgroup.freeze"), "1");
      await until(() => flatKey(readOr(join(dir, "cgroup.events"), ""), "frozen") === 1, 1000);
      killEach(groupPids(g));
      write(join(dir, "cgroup.freeze"), "0");
    }
  } else {
    const state = join(g.dirs.freezer!, "freezer.state");
    write(state, "FROZEN");
    await until(() => readOr(state, "").trim() === "FROZEN", 1000);
    killEach(groupPids(g));
    write(state, "THAWED");
  }
  await until(() => groupPids(g).length === 0, waitMs);
  return groupPids(g);
}

/** The kernel's counts of limits the group ran into. */
export function readEvents(g: JailGroup): LimitEvents {
  if (g.driver === "cgroup2") {
    const d = g.dirs.unified!;
    return {
      memory: flatKey(readOr(join(d, "memory.events"), ""), "oom_kill"),
      pids: flatKey(readOr(join(d, "pids.events"), ""), "max"),
      cpu: flatKey(readOr(join(d, "cpu.stat"), ""), "nr_throttled"),
    };
  }
  return {
    memory: flatKey(readOr(join(g.dirs.memory!, "memory.oom_control"), ""), "oom_kill"),
    pids: flatKey(readOr(join(g.dirs.pids!, "pids.events"), ""), "max"),
    cpu: flatKey(readOr(join(g.dirs.cpu!, "cpu.stat"), ""), "nr_throttled"),
  };
}

/** Removes the group's directories (each must be empty of processes); returns those that stayed. */
export function removeGroup(g: JailGroup): string[] {
  const left: string[] = [];
  for (const d of groupDirs(g)) {
    try {
      rmdirSync(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") left.push(d);
    }
  }
  return left;
}

/**
 * A group named by an operator request, checked: a known driver and each directory a group of
 * vivary's (BASE/vivary/NAME under a hierarchy of this host), so a request cannot point the
 * kill switch at another group. Null when it is not.
 */
export function checkGroup(v: unknown, mounts: Mounts): JailGroup | null {
  if (!v || typeof v !== "object") return null;
  const { driver, dirs } = v as Record<string, unknown>;
  if (driver !== "cgroup2" && driver !== "cgroup1") return null;
  if (!dirs || typeof dirs !== "object") return null;
  const want = driver === "cgroup2" ? { unified: mounts.v2 } : mounts.v1;
  const keys = Object.keys(dirs);
  const expected = driver === "cgroup2" ? ["unified"] : [...V1_CONTROLLERS];
  if (keys.length !== expected.length || !expected.every((k) => keys.includes(k))) return null;
  for (const k of expected) {
    const d = (dirs as Record<string, unknown>)[k];
    const root = (want as Record<string, string | null | undefined>)[k];
    if (typeof d !== "string" || !root) return null;
    const rest = d.startsWith(`${root}/${CGROUP_BASE}/`) ? d.slice(root.length + CGROUP_BASE.length + 2) : null;
    if (!rest || !/^[a-z][a-z0-9-]{0,31}-[0-9]+$/.test(rest)) return null;
  }
  return { driver, dirs: dirs as Record<string, string> };
}

/** How one jail is bounded: its driver, and its group under a cgroup driver. */
export interface JailLimits {
  driver: LimitDriver;
  group: JailGroup | null;
}

/**
 * Chooses the driver (`want` is VIVARY_LIMITS) and creates the jail's group under it. Fails
 * closed (69): a driver asked for that is not usable, a group the kernel refuses, or a cpu limit
 * with no cgroup driver to hold it.
 */
export function prepareLimits(name: string, l: GroupLimits, want: string, facts: HostFacts = hostFacts()): JailLimits {
  const c = chooseDriver(facts, want);
  if ("refused" in c) throw new VivError(Exit.unavailable, `limits: ${c.refused}`);
  if (c.driver === "rlimit") {
    if (l.cpu) {
      const why = (["cgroup2", "cgroup1"] as const).map((d) => chooseDriver(facts, d)).map((r) => ("refused" in r ? r.refused : "")).filter(Boolean);
      throw new VivError(Exit.unavailable, `limits: cpu=${l.cpu} needs a cgroup driver (${want === "rlimit" ? `${Env.limits}=rlimit` : why.join("; ")})`);
    }
    return { driver: "rlimit", group: null };
  }
  sweepStale(c.driver, facts.mounts);
  try {
    return { driver: c.driver, group: createGroup(c.driver, facts.mounts, name, l) };
  } catch (e) {
    throw new VivError(Exit.unavailable, `limits: cannot create the jail's ${c.driver} group: ${(e as Error).message}`);
  }
}

/**
 * At the jail's end: reads what limits it ran into, ends anything left in its group, removes the
 * group. `left` holds pids that outlived the kill, `stayed` the directories that could not go.
 */
export async function finishGroup(g: JailGroup): Promise<{ events: LimitEvents; left: number[]; stayed: string[] }> {
  const events = readEvents(g);
  const left = groupPids(g).length ? await killGroup(g) : [];
  let stayed = removeGroup(g);
  if (stayed.length) {
    // A process just reaped may still hold the group for a moment.
    await until(() => (stayed = removeGroup(g)).length === 0, 1000);
  }
  return { events, left, stayed };
}

/** Live processes (zombies excepted) whose real or effective uid is `uid`, from /proc. */
export function pidsOfUid(uid: number): number[] {
  const out: number[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync("/proc");
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^[0-9]+$/.test(e)) continue;
    const status = readOr(`/proc/${e}/status`, "");
    const uids = /^Uid:\s+(\d+)\s+(\d+)/m.exec(status);
    const state = /^State:\s+(\S)/m.exec(status)?.[1];
    if (uids && state !== "Z" && (Number(uids[1]) === uid || Number(uids[2]) === uid)) out.push(Number(e));
  }
  return out;
}

/**
 * Ends every process of a uid that belongs to one agent alone (broker/host-ids.ts checks that
 * no one else has it) and waits until none is left; resolves with those that outlived waitMs.
 */
export async function killUid(uid: number, waitMs = KILL_WAIT_MS): Promise<number[]> {
  const deadline = performance.now() + waitMs;
  for (;;) {
    const pids = pidsOfUid(uid);
    if (pids.length === 0 || performance.now() > deadline) return pids;
    killEach(pids);
    await sleep(20);
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
};

/**
 * Removes the empty groups of runs that are gone (a viv run killed with SIGKILL cannot remove its
 * own); a group that still holds a process is left for the kill switch and the operator.
 */
export function sweepStale(driver: "cgroup2" | "cgroup1", mounts: Mounts) {
  const roots = driver === "cgroup2" ? [mounts.v2!] : V1_CONTROLLERS.map((c) => mounts.v1[c]!);
  for (const root of roots) {
    let names: string[] = [];
    try {
      names = readdirSync(join(root, CGROUP_BASE));
    } catch {
      continue;
    }
    for (const n of names) {
      const m = /^[a-z][a-z0-9-]{0,31}-([0-9]+)$/.exec(n);
      if (!m || alive(Number(m[1]))) continue;
      const dir = join(root, CGROUP_BASE, n);
      if (readOr(join(dir, "cgroup.procs"), "x").trim() !== "") continue;
      try {
        rmdirSync(dir);
      } catch {
        /* busy or gone: left as it is */
      }
    }
  }
}
