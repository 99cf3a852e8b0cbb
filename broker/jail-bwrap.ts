// Builds and runs a bubblewrap jail for one agent run. Runs bwrap as the agent's own unprivileged
// host uid (setpriv), so the jail's user maps onto that uid and never onto host root; every
// namespace is new, no capability survives, the environment is rebuilt from nothing. The host
// paths the jail sees are opened here and handed to bwrap as descriptors.
import { closeSync, openSync } from "node:fs";
import { JAIL } from "../lib/paths.ts";
import { systemLayout } from "../images/bwrap-layout.ts";

export interface JailSpec {
  /** Host uid and gid the jail runs as; null when not root (the caller's own uid is used). */
  hostUid: number | null;
  workspace: string | null;
  runDir: string;
  etcDir: string;
  limits: { memoryBytes?: number; pids?: number };
  command: string[];
  env: Record<string, string>;
}

export const JAIL_PATH = `${JAIL.binDir}:/usr/local/bin:/usr/bin:/bin`;

/**
 * argv for the jail. `fds` are the descriptor numbers (3, 4, …) the caller passes in order:
 * workspace (when there is one), run dir, passwd, group.
 */
export function bwrapArgv(spec: JailSpec): { argv: string[]; sources: string[] } {
  const sources: string[] = [];
  const fd = (path: string) => {
    sources.push(path);
    return String(2 + sources.length);
  };
  const pre: string[] = [];
  if (spec.hostUid !== null) {
    pre.push("setpriv", `--reuid=${spec.hostUid}`, `--regid=${spec.hostUid}`, "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--");
  } else {
    pre.push("setpriv", "--no-new-privs", "--");
  }
  const rl: string[] = [];
  if (spec.limits.pids) rl.push(`--nproc=${spec.limits.pids}`);
  if (spec.limits.memoryBytes) rl.push(`--as=${spec.limits.memoryBytes}`);
  if (rl.length) pre.push("prlimit", ...rl, "--");

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
    "--clearenv",
    ...Object.entries(env).flatMap(([k, v]) => ["--setenv", k, v]),
    ...systemLayout(),
    "--ro-bind-fd", fd(`${spec.etcDir}/passwd`), "/etc/passwd",
    "--ro-bind-fd", fd(`${spec.etcDir}/group`), "/etc/group",
    "--proc", "/proc",
    "--dev", "/dev",
    "--tmpfs", "/tmp",
    "--dir", "/run",
    "--ro-bind-fd", fd(spec.runDir), JAIL.runDir,
    ...(spec.workspace ? ["--bind-fd", fd(spec.workspace), JAIL.workspace] : ["--dir", JAIL.workspace]),
    "--chdir", JAIL.workspace,
    "--remount-ro", "/",
    "--",
    ...spec.command,
  ];
  return { argv, sources };
}

/** Starts the jail with stdio inherited; resolves with its exit status. */
export function spawnJail(spec: JailSpec, timeoutMs?: number) {
  const { argv, sources } = bwrapArgv(spec);
  const fds = sources.map((p) => openSync(p, "r"));
  const proc = Bun.spawn(argv, {
    stdio: ["inherit", "inherit", "inherit", ...fds],
    env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" },
  });
  for (const f of fds) closeSync(f);
  let timedOut = false;
  const timer = timeoutMs ? setTimeout(() => ((timedOut = true), proc.kill("SIGKILL")), timeoutMs) : undefined;
  const exited = proc.exited.then((code) => {
    clearTimeout(timer);
    return { code, timedOut };
  });
  return { pid: proc.pid, exited, kill: () => proc.kill("SIGKILL") };
}
