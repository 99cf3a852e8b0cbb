// Builds and runs a systemd-nspawn jail for one agent run: the second backend, with the same
// guarantees as the bubblewrap one (broker/jail-bwrap.ts), checked by the same suites.
//   - The root is the skeleton of images/nspawn-root.ts (dist/nspawn-root, bound read-only so
//     that nspawn writes nothing into it) with the host's /usr and loader files bound
//     read-only, the agent's /run/vivary read-only, its workspace read-write, and the root
//     itself read-only (--read-only).
//   - --private-users=UID:1 maps the container's root, and nothing else, onto the agent's host
//     uid; the jail's first process (images/jail-init.c) then maps the jail's user (1000) onto
//     that root in a user namespace of its own, so the agent is `agent` as under bwrap and the
//     same unprivileged host uid. The kernel lets a process map a user namespace onto its parent
//     namespace's root only when it held CAP_SETFCAP there, so nspawn keeps that one capability
//     for the first process, which drops every capability, bounding set included, before
//     anything else of the jail runs; no other capability ever reaches the container.
//   - --private-network (only a loopback), NoNewPrivs, --console=pipe (no terminal of the
//     caller's, and TIOCSTI is denied by the filter), the same seccomp filter and the same
//     bounded /tmp and /dev/shm as bwrap, installed by the first process.
//   - No registration with machined and no unit of its own (--register=no --keep-unit), which
//     also work where systemd is not PID 1: the jail stays in the control group its caller put
//     it in (lib/cgroup.ts enterArgv), so limits, the kill switch and the end of the run go by
//     that group exactly as with bwrap (on the unified hierarchy nspawn makes its payload and
//     supervisor sub-groups inside it, which lib/cgroup.ts counts as the group's).
// nspawn hands the first process and the filter to the container as socket-activation fds
// (LISTEN_FDS), so neither is a file the agent sees. It runs in a private mount namespace whose
// /run/systemd/nspawn is a tmpfs: its lock and propagation directories go with the run.
import { closeSync, existsSync, openSync } from "node:fs";
import { join } from "node:path";
import { Exit, VivError } from "../lib/exit.ts";
import { distDir, seccompFilter } from "../lib/install.ts";
import { JAIL } from "../lib/paths.ts";
import { AGENT_ETC, nspawnSystemBinds } from "../images/nspawn-root.ts";
import { JAIL_TMP_BYTES } from "../policy/model.ts";
import { checkJailPaths, JAIL_PATH, superviseJail, type JailSpec } from "./jail-bwrap.ts";

/** The fds the first process and the filter reach the container on (LISTEN_FDS starts at 3). */
export const INIT_FD = 3;
export const FILTER_FD = 4;

/**
 * Every capability systemd-nspawn knows but CAP_SETFCAP (see above). `--drop-capability=all`
 * would drop that one too, and `--capability=` cannot add back what `all` drops.
 */
const DROPPED_CAPS = [
  "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP", "LINUX_IMMUTABLE",
  "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT",
  "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE",
  "AUDIT_WRITE", "AUDIT_CONTROL", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
  "CHECKPOINT_RESTORE",
].map((c) => `CAP_${c}`);

/** Where the skeleton is bound read-only, in nspawn's private mount namespace. */
const ROOT_MOUNT = "/run/systemd/nspawn/vivary-root";

/**
 * In nspawn's private mount namespace: a tmpfs on its run directory, the skeleton ($1) bound
 * read-only at ROOT_MOUNT (nspawn creates /root and /var in a root it can write, owned by the
 * container's uid: this one it cannot), then nspawn exec'd as the socket-activated process.
 */
const NSPAWN_SCRIPT = [
  "mkdir -p /run/systemd/nspawn",
  "mount -t tmpfs -o mode=0755,size=1m vivary-nspawn /run/systemd/nspawn",
  `mkdir ${ROOT_MOUNT}`,
  `mount -o bind,ro "$1" ${ROOT_MOUNT}`,
].join(" && ") + ' || exit 69; shift; LISTEN_PID=$$ LISTEN_FDS=2 exec "$@"';

export function nspawnRoot(): string {
  const root = join(distDir(), "nspawn-root");
  if (!existsSync(join(root, "usr", "lib", "os-release"))) throw new VivError(Exit.unavailable, `the nspawn jail's root is missing at '${root}'; run 'bun run build.ts'`);
  return root;
}

export function jailInit(): string {
  const p = join(distDir(), "libexec", "viv-jail-init");
  if (!existsSync(p)) throw new VivError(Exit.unavailable, `the nspawn jail's first process is missing at '${p}'; run 'bun run build.ts'`);
  return p;
}

/**
 * The argv of an nspawn jail, after the step into its control group. `seccomp: false` leaves the
 * filter out: only `viv selftest`'s negative control asks for that.
 */
export function nspawnArgv(spec: JailSpec, root: string, o: { seccomp?: boolean } = {}): string[] {
  if (spec.hostUid === null) throw new VivError(Exit.unavailable, "the nspawn backend needs root (systemd-nspawn runs as root and maps the jail onto the agent's uid); use --backend bwrap");
  const tmpBytes = String(spec.limits.tmpBytes ?? JAIL_TMP_BYTES);
  const env = { PATH: JAIL_PATH, HOME: JAIL.workspace, USER: JAIL.user, LOGNAME: JAIL.user, LANG: "C.UTF-8", ...spec.env, PWD: JAIL.workspace };
  // Without a control group, nspawn's own rlimits stand in for the memory and pids limits.
  const rl: string[] = [];
  if (!spec.cgroupEnter && spec.limits.pids) rl.push(`--rlimit=RLIMIT_NPROC=${spec.limits.pids}`);
  if (!spec.cgroupEnter && spec.limits.memoryBytes) rl.push(`--rlimit=RLIMIT_AS=${spec.limits.memoryBytes}`);
  return [
    ...(spec.cgroupEnter ?? []),
    // Dies with viv run, as bwrap's --die-with-parent; the first process dies with nspawn.
    "setpriv", "--pdeathsig", "SIGKILL", "--",
    "unshare", "--mount", "--propagation", "private", "--",
    "/bin/sh", "-c", NSPAWN_SCRIPT, "vivary-nspawn", root,
    "systemd-nspawn",
    "--quiet",
    "--register=no",
    "--keep-unit",
    "--machine=vivary",
    `--directory=${ROOT_MOUNT}`,
    "--read-only",
    "--private-network",
    `--private-users=${spec.hostUid}:1`,
    "--private-users-ownership=off",
    "--no-new-privileges=yes",
    `--drop-capability=${DROPPED_CAPS.join(",")}`,
    "--console=pipe",
    "--resolv-conf=off",
    "--timezone=off",
    "--link-journal=no",
    ...rl,
    ...nspawnSystemBinds(root),
    ...AGENT_ETC.map((f) => `--bind-ro=${spec.etcDir}/${f}:/etc/${f}`),
    `--bind-ro=${spec.runDir}:${JAIL.runDir}`,
    ...(spec.workspace ? [`--bind=${spec.workspace}:${JAIL.workspace}`] : []),
    "--chdir=/",
    `/proc/self/fd/${INIT_FD}`,
    "--uid", String(JAIL.uid),
    "--gid", String(JAIL.gid),
    "--tmp-bytes", tmpBytes,
    ...(o.seccomp === false ? [] : ["--seccomp", String(FILTER_FD)]),
    ...Object.entries(env).flatMap(([k, v]) => ["--setenv", k, v]),
    "--chdir", JAIL.workspace,
    "--",
    ...spec.command,
  ];
}

/**
 * Bun.spawn of nspawnArgv's command line, the first process and the filter on their fds. `env`
 * adds to nspawn's environment (tests turn nspawn's own filter off for a control jail with it).
 */
export function spawnNspawn(argv: string[], stdio: ["inherit" | "ignore", "inherit" | "pipe", "inherit" | "pipe"], env: Record<string, string> = {}) {
  const init = openSync(jailInit(), "r");
  const filter = openSync(seccompFilter(), "r");
  try {
    return Bun.spawn(argv, { env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", ...env }, stdio: [...stdio, init, filter] });
  } finally {
    closeSync(init);
    closeSync(filter); // the child holds its own copies
  }
}

/** Starts the nspawn jail with stdio inherited; resolves with its exit status. */
export function spawnNspawnJail(spec: JailSpec, timeoutMs?: number) {
  checkJailPaths(spec);
  seccompFilter(); // no jail without its filter: said first, as bwrap's path says it
  if (!Bun.which("systemd-nspawn", { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" })) throw new VivError(Exit.unavailable, "systemd-nspawn is not installed (Debian: apt-get install systemd-container); use --backend bwrap");
  return superviseJail(spawnNspawn(nspawnArgv(spec, nspawnRoot()), ["inherit", "inherit", "inherit"]), timeoutMs);
}
