// Builds and runs a bubblewrap jail for one agent run. Runs bwrap as the agent's own unprivileged
// host uid (setpriv), so the jail's user maps onto that uid and never onto host root; every
// namespace is new, no capability survives, the environment is rebuilt from nothing. bwrap opens
// the bound host paths as that uid, so every directory above them must be searchable by others.
import { statSync } from "node:fs";
import { dirname } from "node:path";
import { Exit, VivError } from "../lib/exit.ts";
import { JAIL } from "../lib/paths.ts";
import { systemLayout } from "../images/bwrap-layout.ts";
import { seccompArgs, spawnWithSeccomp } from "./jail-seccomp.ts";
import { JAIL_TMP_BYTES } from "../policy/model.ts";

export interface JailSpec {
  /** Host uid and gid the jail runs as; null when not root (the caller's own uid is used). */
  hostUid: number | null;
  workspace: string | null;
  runDir: string;
  etcDir: string;
  limits: { memoryBytes?: number; pids?: number; tmpBytes?: number };
  /**
   * argv that puts the jail's first process in its control group before anything else runs
   * (lib/cgroup.ts enterArgv). Without one, rlimits stand in for the memory and pids limits.
   */
  cgroupEnter?: string[];
  command: string[];
  env: Record<string, string>;
}

export const JAIL_PATH = `${JAIL.binDir}:/usr/local/bin:/usr/bin:/bin`;

/**
 * bwrap argv for the jail, wrapped in setpriv, after the step into its control group; with no
 * control group, in prlimit when there are limits. Under a control group no rlimit is set:
 * RLIMIT_AS counts address space reserved and never used (runtimes reserve gigabytes), and
 * RLIMIT_NPROC counts the uid's processes host-wide, which would hide a fork bomb from the
 * group's counter.
 */
export function bwrapArgv(spec: JailSpec): string[] {
  const pre: string[] = [...(spec.cgroupEnter ?? [])];
  if (spec.hostUid !== null) {
    pre.push("setpriv", `--reuid=${spec.hostUid}`, `--regid=${spec.hostUid}`, "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--");
  } else {
    pre.push("setpriv", "--no-new-privs", "--");
  }
  const rl: string[] = [];
  if (spec.limits.pids) rl.push(`--nproc=${spec.limits.pids}`);
  if (spec.limits.memoryBytes) rl.push(`--as=${spec.limits.memoryBytes}`);
  if (rl.length && !spec.cgroupEnter) pre.push("prlimit", ...rl, "--");

  const env = { PATH: JAIL_PATH, HOME: JAIL.workspace, USER: JAIL.user, LOGNAME: JAIL.user, LANG: "C.UTF-8", ...spec.env };
  const argv = [
    ...pre,
    "bwrap",
    "--unshare-all",
    "--unshare-user",
    "--disable-userns",
    "--uid", String(JAIL.uid),
    "--gid", String(JAIL.gid),
    "--hostname", "vivary",
    "--die-with-parent",
    "--new-session",
    "--cap-drop", "ALL",
    ...seccompArgs(),
    "--clearenv",
    ...Object.entries(env).flatMap(([k, v]) => ["--setenv", k, v]),
    ...systemLayout(),
    "--ro-bind", `${spec.etcDir}/passwd`, "/etc/passwd",
    "--ro-bind", `${spec.etcDir}/group`, "/etc/group",
    "--proc", "/proc",
    // /tmp and /dev/shm are tmpfs of `limits tmp=` each; /dev itself is read-only.
    "--dev", "/dev",
    "--size", String(spec.limits.tmpBytes ?? JAIL_TMP_BYTES), "--tmpfs", "/dev/shm",
    "--remount-ro", "/dev",
    "--size", String(spec.limits.tmpBytes ?? JAIL_TMP_BYTES), "--tmpfs", "/tmp",
    "--dir", "/run",
    "--ro-bind", spec.runDir, JAIL.runDir,
    ...(spec.workspace ? ["--bind", spec.workspace, JAIL.workspace] : ["--dir", JAIL.workspace]),
    "--chdir", JAIL.workspace,
    "--remount-ro", "/",
    "--",
    ...spec.command,
  ];
  return argv;
}

/**
 * Refuses, with the directory to fix, a host path the agent's uid could not reach to bind. With
 * `gid`, a directory of that group that its group may search counts as reachable (the jail runs
 * with that gid): how an owner="keep" workspace's mount is kept from everyone else.
 */
export function checkReachable(path: string, what: string, gid?: number) {
  for (let d = dirname(path); d !== "/"; d = dirname(d)) {
    const st = statSync(d);
    const mode = st.mode;
    if ((mode & 0o001) === 0 && !(gid !== undefined && st.gid === gid && (mode & 0o010) !== 0)) {
      throw new VivError(Exit.config, `${what} '${path}' is not reachable by the agent's uid: '${d}' has mode ${(mode & 0o777).toString(8).padStart(4, "0")} (chmod o+x '${d}')`);
    }
  }
}

/** Refuses, before anything starts, a state directory or workspace the jail's uid could not reach. */
export function checkJailPaths(spec: JailSpec) {
  if (spec.hostUid === null) return;
  checkReachable(spec.runDir, "state directory");
  if (spec.workspace) checkReachable(spec.workspace, "workspace", spec.hostUid);
}

/** A started jail of either backend: its pid, its end (with whether its timeout ended it), its kill. */
export function superviseJail(proc: Bun.Subprocess, timeoutMs?: number) {
  let timedOut = false;
  const timer = timeoutMs ? setTimeout(() => ((timedOut = true), proc.kill("SIGKILL")), timeoutMs) : undefined;
  const exited = proc.exited.then((code) => {
    clearTimeout(timer);
    return { code, timedOut };
  });
  return { pid: proc.pid, exited, kill: () => proc.kill("SIGKILL") };
}

/** Starts the jail with stdio inherited; resolves with its exit status. */
export function spawnJail(spec: JailSpec, timeoutMs?: number) {
  checkJailPaths(spec);
  const proc = spawnWithSeccomp(bwrapArgv(spec), {
    stdio: ["inherit", "inherit", "inherit"],
    env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" },
  });
  return superviseJail(proc, timeoutMs);
}
