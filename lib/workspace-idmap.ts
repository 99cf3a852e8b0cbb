// Workspaces the operator owns (`workspace "PATH" owner="keep"`): the directory stays its owner's,
// and the jail sees it through an idmapped mount that sends the owner's uid and gid to the host
// ids the jail's user runs as. Files the agent creates are the owner's on the host; files of any
// other uid show as nobody and give the agent only what "other" may do. viv run (root) lends the
// mount for one run, in STATE/agents/AGENT/mnt/ws-PID-START, and takes it back when the jail ends;
// a run killed before that leaves a mount whose PID and START name a process that is gone, and
// the next run sweeps it. The mount itself is made by dist/libexec/viv-idmap-mount
// (images/idmap-mount.c), whose header says how and which way the ids go.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, chmodSync, statSync } from "node:fs";
import { join } from "node:path";
import { Exit, VivError } from "./exit.ts";
import { distDir } from "./install.ts";
import { JAIL, stateLayout } from "./paths.ts";

/** The values of `workspace owner=`: "agent" (the default: the agent's uid must own it) or "keep". */
export const WORKSPACE_OWNERS = ["agent", "keep"] as const;
export type WorkspaceOwner = (typeof WORKSPACE_OWNERS)[number];

/** A workspace lent to one jail: bind `path` instead of the workspace; `release` takes it back. */
export interface LentWorkspace {
  path: string;
  /** The workspace's owner on the host, as the mount read it. */
  owner: { uid: number; gid: number };
  /** Unmounts it; returns why it could not, or null. Only the first call does anything. */
  release(): string | null;
}

const LENT = /^ws-([0-9]+)-([0-9]+)$/;

export function idmapHelper(): string {
  const p = process.env.VIVARY_IDMAP_HELPER ?? join(distDir(), "libexec", "viv-idmap-mount");
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

function unmount(dir: string) {
  const r = helper(["unmount", dir]);
  if (r.code !== 0) throw new VivError(Exit.internal, r.err.replace(/^viv-idmap-mount: /, ""));
  rmdirSync(dir);
}

/**
 * Takes back the mounts that runs killed before their end left in STATE/agents/*\/mnt: those whose
 * name's PID is gone or was reused since (its start time differs). Returns the paths removed.
 */
export function sweepLentWorkspaces(state: string): string[] {
  const agents = stateLayout(state).agents;
  const removed: string[] = [];
  if (!existsSync(agents)) return removed;
  for (const agent of readdirSync(agents)) {
    const mnt = stateLayout(state).agentMounts(agent);
    if (!existsSync(mnt)) continue;
    for (const name of readdirSync(mnt)) {
      const m = LENT.exec(name);
      if (!m || startTime(Number(m[1])) === m[2]) continue;
      unmount(join(mnt, name));
      removed.push(join(mnt, name));
    }
  }
  return removed;
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
  const dir = join(mnt, `ws-${process.pid}-${start}`);
  if (existsSync(dir)) unmount(dir); // a lend of this same run: never two at once
  mkdirSync(dir, { mode: 0o700 });
  const r = helper(["mount", workspace, dir, String(to.uid), String(to.gid)]);
  if (r.code !== 0) {
    rmdirSync(dir);
    const why = r.err.replace(/^viv-idmap-mount: /, "");
    const code = r.code === Exit.config ? Exit.config : r.code === Exit.unavailable ? Exit.unavailable : Exit.internal;
    throw new VivError(code, `workspace '${workspace}' cannot be lent with owner="keep": ${why}`);
  }
  const [uid, gid] = r.out.trim().split(" ").map(Number);
  let released = false;
  return {
    path: dir,
    owner: { uid: uid!, gid: gid! },
    release() {
      if (released) return null;
      released = true;
      try {
        unmount(dir);
        return null;
      } catch (e) {
        return `cannot take back the lent workspace '${dir}': ${(e as Error).message}`;
      }
    },
  };
}

/**
 * For a systemd-nspawn container whose users are shifted by `uidShift` (`--private-users=SHIFT`):
 * lends the workspace so that its owner is the container's jail user (host uid SHIFT+JAIL.uid),
 * and returns the plain `--bind` argument for it with the lent workspace. The bind takes no
 * `:idmap`: systemd 252's `:idmap` shifts a source's ids into the container's range as they are
 * (the operator's uid would show as itself, not as the jail's user), and an idmapped mount cannot
 * be idmapped again. Call `release` when the container has ended.
 */
export function nspawnLendWorkspace(workspace: string, state: string, agent: string, uidShift: number): { args: string[]; lent: LentWorkspace } {
  const lent = lendWorkspace(workspace, state, agent, { uid: uidShift + JAIL.uid, gid: uidShift + JAIL.gid });
  return { args: [`--bind=${lent.path}:${JAIL.workspace}`], lent };
}
