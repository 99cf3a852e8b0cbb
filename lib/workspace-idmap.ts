// Workspaces the operator owns (`workspace "PATH" owner="keep"`): the directory stays its owner's,
// and the jail sees it through an idmapped mount that sends the owner's uid and gid to the host
// ids the jail's user runs as. Files the agent creates are the owner's on the host; files of any
// other uid show as nobody and give the agent only what "other" may do. The mount itself is made
// by dist/libexec/viv-idmap-mount (images/idmap-mount.c), whose header says which way the ids go.
//
// viv run (root) lends the mount for one run, at STATE/agents/AGENT/mnt/ws-PID-START-SINCE/workspace,
// and takes it back when the jail ends; a run killed before that leaves a mount whose PID and
// START name a process that is gone, and the next run sweeps it. The mount skips the directories
// above the workspace (the operator's home may be 0700), and /proc/self/mountinfo names it to
// all, so the directory above it is root's, of the jail's gid, mode 0710: only the jail's uid
// passes. The mount is nosuid, so a setuid bit does nothing in the jail; but the agent may set
// one on the owner's files, and on the host that program would run as the owner for whoever
// starts it. So before a mount is taken back (or swept), the setuid and setgid bits of the files
// the agent could have set them on since the lend (its files whose status changed since then: a
// ctime cannot be set back) are cleared, and the run names them.
import { chmodSync, chownSync, closeSync, constants, existsSync, fchmodSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { Exit, VivError } from "./exit.ts";
import { distDir } from "./install.ts";
import { stateLayout } from "./paths.ts";

/** A workspace lent to one jail: bind `path` instead of the workspace; `release` takes it back. */
export interface LentWorkspace {
  path: string;
  /** The workspace's owner on the host, as the mount read it. */
  owner: { uid: number; gid: number };
  /**
   * Clears the setuid and setgid bits the agent set, and unmounts it; returns what the operator
   * should hear (bits cleared, or why the mount could not be taken back). Only the first call acts.
   */
  release(): string[];
}

/** ws-PID-START-SINCE: the lending run's pid and start time (clock ticks since boot), and when it lent it (ms since the epoch). */
const LENT = /^ws-([0-9]+)-([0-9]+)-([0-9]+)$/;
/** The mount point inside each ws-… directory. */
const MOUNT_POINT = "workspace";

/** The helper of this build: root runs it, so nothing from the environment may name another. */
export function idmapHelper(): string {
  const p = join(distDir(), "libexec", "viv-idmap-mount");
  if (!existsSync(p)) throw new VivError(Exit.unavailable, `viv-idmap-mount is missing at '${p}'; run 'bun run build.ts'`);
  return p;
}

/** The start time of process `pid` in clock ticks since boot (proc(5) stat field 22), or null when it is gone. */
function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

function helper(args: string[]): { code: number; out: string; err: string } {
  const r = Bun.spawnSync([idmapHelper(), ...args], { env: {}, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode ?? 70, out: r.stdout.toString(), err: r.stderr.toString().trim().split("\n")[0] ?? "" };
}

/**
 * Clears the setuid or setgid bits of one file find(1) named, through a descriptor: the path is
 * opened without following a last symlink, and what was opened must still lie below `dir` (no
 * directory on the way was swapped for a symlink) and be a regular file of `uid`. True if cleared.
 */
function clearOne(dir: string, path: string, uid: number): boolean {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch {
    return false;
  }
  try {
    if (!readlinkSync(`/proc/self/fd/${fd}`).startsWith(`${dir}/`)) return false;
    const st = fstatSync(fd);
    if (!st.isFile() || st.uid !== uid || (st.mode & 0o6000) === 0) return false;
    fchmodSync(fd, st.mode & 0o1777);
    return true;
  } finally {
    closeSync(fd);
  }
}

/**
 * Clears the setuid and setgid bits of the regular files below the lent mount `dir` that the
 * agent's uid owns there (its owner's files) and whose status changed since `sinceMs` (epoch
 * milliseconds). find(1) follows no symlink, and each file is changed through a descriptor
 * checked to lie below `dir`, should anything of the jail still rename under it.
 */
function clearSetid(dir: string, sinceMs: number, shown: string): string[] {
  let uid: number;
  try {
    uid = statSync(dir).uid;
  } catch {
    return [];
  }
  const r = Bun.spawnSync(["find", dir, "-type", "f", "-uid", String(uid), "-perm", "/6000", "-newerct", `@${(sinceMs / 1000).toFixed(3)}`, "-print0"], {
    env: { PATH: "/usr/bin:/bin", LC_ALL: "C" },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const found = r.stdout.toString().split("\0").filter(Boolean);
  const files = found.filter((f) => clearOne(dir, f, uid)).map((f) => shown + f.slice(dir.length)).sort();
  const out = files.length ? [`cleared the setuid/setgid bits the agent set on ${files.map((f) => `'${f}'`).join(", ")}`] : [];
  if (r.exitCode !== 0) out.push(`could not check '${shown}' for setuid/setgid files the agent left: ${r.stderr.toString().trim().split("\n")[0]}`);
  return out;
}

/** The type of the filesystem `path` is on, from the mount table (the mount point that is the longest prefix of its real path). */
function filesystemType(path: string): string | null {
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    return null;
  }
  let best: { point: string; type: string } | null = null;
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const f = line.split(" ");
    const dash = f.indexOf("-");
    if (dash < 0) continue;
    const point = f[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    const under = point === "/" || real === point || real.startsWith(`${point}/`);
    if (under && (!best || point.length >= best.point.length)) best = { point, type: f[dash + 1]! };
  }
  return best?.type ?? null;
}

/** rmdir(2) that is content when there is nothing to remove; never removes anything but an empty directory. */
function removeDir(dir: string) {
  try {
    rmdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
}

/** Unmounts the mount in a ws-… directory and removes both directories. */
function takeBack(dir: string) {
  const r = helper(["unmount", join(dir, MOUNT_POINT)]);
  if (r.code !== 0) throw new VivError(Exit.internal, r.err.replace(/^viv-idmap-mount: /, ""));
  removeDir(join(dir, MOUNT_POINT));
  removeDir(dir);
}

/**
 * Takes back the mounts that runs killed before their end left in STATE/agents/*\/mnt: those whose
 * name's PID is gone or was reused since (its start time differs), clearing the setuid and setgid
 * bits the agent set first. Returns what the operator should hear.
 */
export function sweepLentWorkspaces(state: string): string[] {
  const agents = stateLayout(state).agents;
  const said: string[] = [];
  if (!existsSync(agents)) return said;
  for (const agent of readdirSync(agents)) {
    const mnt = stateLayout(state).agentMounts(agent);
    if (!existsSync(mnt)) continue;
    for (const name of readdirSync(mnt)) {
      const m = LENT.exec(name);
      if (!m || startTime(Number(m[1])) === m[2]) continue;
      const dir = join(mnt, name);
      said.push(...clearSetid(join(dir, MOUNT_POINT), Number(m[3]), join(dir, MOUNT_POINT)));
      takeBack(dir);
    }
  }
  return said;
}

/**
 * Lends `workspace` to one jail of `agent`, whose user is host uid and gid `to`: an idmapped,
 * nosuid, nodev mount of it in the agent's mount directory, reachable by that uid. Refuses with
 * exit 78 a missing workspace, one root owns, or one on a filesystem that cannot be idmapped; 69
 * where the kernel has no idmapped mounts.
 */
export function lendWorkspace(workspace: string, state: string, agent: string, to: { uid: number; gid: number }): LentWorkspace {
  let st;
  try {
    st = statSync(workspace);
  } catch {
    throw new VivError(Exit.config, `workspace '${workspace}' does not exist; owner="keep" lends a directory its owner made`);
  }
  if (!st.isDirectory()) throw new VivError(Exit.config, `workspace '${workspace}' is not a directory`);
  const mnt = stateLayout(state).agentMounts(agent);
  mkdirSync(mnt, { recursive: true, mode: 0o711 });
  chmodSync(mnt, 0o711);
  const start = startTime(process.pid);
  if (start === null) throw new VivError(Exit.internal, "cannot read this process's start time from /proc");
  const prefix = `ws-${process.pid}-${start}-`;
  // A lend of this same run: never two at once.
  for (const old of readdirSync(mnt)) if (old.startsWith(prefix)) takeBack(join(mnt, old));
  const since = Date.now();
  const dir = join(mnt, `${prefix}${since}`);
  // root:GID 0710: the jail's uid (whose gid this is) may pass, no one else.
  mkdirSync(dir, { mode: 0o700 });
  chownSync(dir, 0, to.gid);
  chmodSync(dir, 0o710);
  const point = join(dir, MOUNT_POINT);
  mkdirSync(point, { mode: 0o700 });
  const r = helper(["mount", workspace, point, String(to.uid), String(to.gid)]);
  if (r.code !== 0) {
    removeDir(point);
    removeDir(dir);
    let why = r.err.replace(/^viv-idmap-mount: /, "");
    const type = filesystemType(workspace);
    if (type && why.startsWith("its filesystem,")) why = why.replace("its filesystem,", `its filesystem (${type}),`);
    const code = r.code === Exit.config ? Exit.config : r.code === Exit.unavailable ? Exit.unavailable : Exit.internal;
    throw new VivError(code, `workspace '${workspace}' cannot be lent with owner="keep": ${why}`);
  }
  const [uid, gid] = r.out.trim().split(" ").map(Number);
  let released = false;
  return {
    path: point,
    owner: { uid: uid!, gid: gid! },
    release() {
      if (released) return [];
      released = true;
      const said = clearSetid(point, since, workspace);
      try {
        takeBack(dir);
      } catch (e) {
        said.push(`cannot take back the lent workspace '${dir}': ${(e as Error).message}`);
      }
      return said;
    },
  };
}
