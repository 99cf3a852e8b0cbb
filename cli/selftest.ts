// viv selftest: checks, on this host and kernel, that a jail holds. Starts a throwaway broker on a
// temporary state directory with two agents, runs one jail of the first through `viv run`, and
// from inside it attempts the escapes vivary promises to stop: the network and DNS, host files,
// capabilities and NoNewPrivs, the terminal, the other agent's socket, /proc, inherited fds,
// symlinks planted against fs-file-write and a directory swapped for one while it writes, and every rule of the seccomp filter (with
// viv-try-syscall). Prints one line per probe, `ok NAME` or `FAIL NAME: what was seen`, and
// exits 1 when any probe fails. VIVARY_SELFTEST_WEAKEN=seccomp runs the same jail without its
// filter: the negative control that shows the probes catch a weakened jail. --backend picks the
// jail: bubblewrap (broker/jail-bwrap.ts) or systemd-nspawn (broker/jail-nspawn.ts).
import { Command, Option } from "clipanion";
import * as t from "typanion";
import { chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bwrapArgv } from "../broker/jail-bwrap.ts";
import { nspawnArgv, nspawnRoot, spawnNspawn } from "../broker/jail-nspawn.ts";
import { Exit, VivError } from "../lib/exit.ts";
import { distDir, selfCommand } from "../lib/install.ts";
import { brokerAlive, operatorRequest } from "../lib/operator-client.ts";
import { stateLayout } from "../lib/paths.ts";

/** What each viv-try-syscall probe must give under the filter (images/try-syscall.c). */
const SECCOMP_EXPECTED: Record<string, string[]> = {
  ...Object.fromEntries(
    [
      "io_uring_setup", "io_uring_enter", "io_uring_register", "bpf", "userfaultfd", "perf_event_open", "keyctl", "add_key", "request_key",
      "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kexec_load", "kexec_file_load", "init_module", "finit_module",
      "delete_module", "mount", "umount2", "pivot_root", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
      "setns", "personality_linux32", "personality_no_aslr", "personality_high_bits", "clone_newuser", "clone_newns", "clone_newnet",
      "clone_newpid", "clone_newipc", "clone_newuts", "clone_newcgroup", "unshare_newuser", "unshare_newns", "unshare_newnet",
      "unshare_newpid", "unshare_newipc", "unshare_newuts", "unshare_newcgroup", "unshare_newtime", "ioctl_tiocsti",
      "ioctl_tiocsti_high_bits", "ioctl_tioclinux", "ioctl_tioclinux_high_bits", "socket_netlink_audit", "socket_netlink_uevent",
      "socket_packet", "socket_vsock", "socket_alg", "socket_bluetooth", "socket_packet_high_bits", "socketpair_inet",
    ].map((p) => [p, ["EPERM"]]),
  ),
  ...Object.fromEntries(
    ["personality_query", "personality_default", "clone_fork", "unshare_files", "socket_unix", "socket_inet", "socket_inet6", "socket_netlink_route", "socketpair_unix"].map((p) => [p, ["ok"]]),
  ),
  ioctl_other: ["EBADF"],
  ...Object.fromEntries(["clone3", "x32_abi", "unlisted_chroot", "unlisted_modify_ldt", "unlisted_lsm_list_modules"].map((p) => [p, ["ENOSYS"]])),
  // A kernel without IA-32 emulation faults on int 0x80 before any filter sees it.
  i386_abi: ["ENOSYS", "SIGSEGV"],
};

/** The script the jail runs: one `KEY VALUE` line per observation; the host judges them. */
const JAIL_SCRIPT = `
echo "fds $(ls /proc/self/fd | tr '\\n' ' ')"
curl -sS --max-time 3 "http://127.0.0.1:$1/" >/dev/null 2>&1; echo "net-loopback $?"
getent hosts example.com >/dev/null 2>&1; echo "dns $?"
for f in /etc/shadow /root /home /var "$2"; do test -e "$f" && echo "host-file $f"; done
grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs):' /proc/self/status | tr -d '\\t' | tr ':' ' '
( : >/dev/tty ) 2>/dev/null && echo "tty usable" || echo "tty none"
test -e "$3" && echo "other-socket visible" || echo "other-socket hidden"
echo "run-dir $(ls /run/vivary | tr '\\n' ' ')"
echo "proc-pids $(ls /proc | grep -c '^[0-9]')"
( echo 1 >/proc/sys/kernel/ns_last_pid ) 2>/dev/null && echo "proc-sys writable" || echo "proc-sys readonly"
mkdir -p /workspace/out
fs-file-write --path "$5/out/ok.txt" --content fine >/dev/null 2>&1; echo "fsw-plain $?"
ln -s "$4/target.txt" /workspace/out/link && fs-file-write --path "$5/out/link" --content pwned >/dev/null 2>&1; echo "fsw-symlink $?"
ln -s "$4" /workspace/out/dir && fs-file-write --path "$5/out/dir/new.txt" --content pwned >/dev/null 2>&1; echo "fsw-symlink-dir $?"
mkdir /workspace/out/race
python3 -c '
import os, sys, time
d, outside, stop = "/workspace/out/race", sys.argv[1], "/tmp/race-stop"
end = time.monotonic() + 10
while not os.path.exists(stop) and time.monotonic() < end:
    try:
        os.rename(d, d + ".real"); os.symlink(outside, d); os.unlink(d); os.rename(d + ".real", d)
    except OSError:
        pass
' "$4" &
n=0; while [ $n -lt 40 ]; do fs-file-write --path "$5/out/race/f$n" --content raced >/dev/null 2>&1; n=$((n+1)); done
: >/tmp/race-stop; wait
echo "fsw-race $(find /workspace/out -type f -name 'f*' | wc -l)"
./viv-try-syscall | sed 's/^/seccomp /'
`;

type Report = (ok: boolean, name: string, seen?: string) => void;

/** Judges the jail's observations; each call of `report` is one probe. */
function judge(lines: string[], listenerHits: number, outside: string, report: Report) {
  const kv = new Map<string, string[]>();
  for (const l of lines) {
    const [k, ...v] = l.split(" ");
    kv.set(k!, [...(kv.get(k!) ?? []), v.join(" ")]);
  }
  const one = (k: string) => kv.get(k)?.[0] ?? "(none)";
  report(one("fds").trim() === "0 1 2 3", "fd-leak", `fds ${one("fds")}`);
  report(one("net-loopback") !== "0" && listenerHits === 0, "network", `curl exit ${one("net-loopback")}, ${listenerHits} connection(s) reached the host`);
  report(one("dns") !== "0", "dns", `getent exit ${one("dns")}`);
  report(!kv.has("host-file"), "host-files", `visible: ${(kv.get("host-file") ?? []).join(" ")}`);
  const zero = "0000000000000000";
  report(one("CapEff") === zero && one("CapPrm") === zero && one("CapBnd") === zero, "capabilities", `CapEff ${one("CapEff")} CapPrm ${one("CapPrm")} CapBnd ${one("CapBnd")}`);
  report(one("NoNewPrivs") === "1", "no-new-privs", `NoNewPrivs ${one("NoNewPrivs")}`);
  report(one("tty") === "none" && kv.get("seccomp")?.includes("ioctl_tiocsti EPERM") === true, "terminal", `tty ${one("tty")}, TIOCSTI ${(kv.get("seccomp") ?? []).find((l) => l.startsWith("ioctl_tiocsti "))?.split(" ")[1] ?? "(none)"}`);
  report(one("other-socket") === "hidden" && one("run-dir").trim() === "bin broker.sock capabilities.json libexec", "agent-sockets", `other agent's socket ${one("other-socket")}; /run/vivary: ${one("run-dir")}`);
  report(Number(one("proc-pids")) <= 6 && one("proc-sys") === "readonly", "proc", `${one("proc-pids")} pids, /proc/sys ${one("proc-sys")}`);
  let target = "(unreadable)";
  try {
    target = readFileSync(join(outside, "target.txt"), "utf8");
  } catch {}
  const untouched = target === "untouched\n" && !existsSync(join(outside, "new.txt"));
  report(one("fsw-plain") === "0" && one("fsw-symlink") !== "0" && one("fsw-symlink-dir") !== "0" && untouched, "fs-file-write-links", `plain ${one("fsw-plain")}, via symlink ${one("fsw-symlink")}, via directory symlink ${one("fsw-symlink-dir")}, outside file ${untouched ? "untouched" : "changed"}`);
  const strays = readdirSync(outside).filter((f) => f !== "target.txt");
  report(kv.has("fsw-race") && strays.length === 0 && target === "untouched\n", "fs-file-write-race", `${one("fsw-race")} of 40 writes landed inside while the directory was swapped for a symlink; outside: ${strays.join(" ") || "nothing new"}`);
  const seen = new Map((kv.get("seccomp") ?? []).map((l) => l.split(" ") as [string, string]));
  for (const [probe, want] of Object.entries(SECCOMP_EXPECTED)) {
    const got = seen.get(probe) ?? "(none)";
    report(want.includes(got), `seccomp-${probe}`, `${got}, want ${want.join(" or ")}`);
  }
}

async function waitFor(cond: () => Promise<boolean>, ms: number) {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    if (await cond()) return true;
    await Bun.sleep(20);
  }
  return false;
}

export async function selftest(backend: string, out: (line: string) => void): Promise<number> {
  const weaken = process.env.VIVARY_SELFTEST_WEAKEN ?? "";
  if (weaken !== "" && weaken !== "seccomp") throw new VivError(Exit.usage, `VIVARY_SELFTEST_WEAKEN='${weaken}': only 'seccomp' is known`);
  const root = process.getuid?.() === 0;
  // Names of this run only, so that parallel selftests never share an agent's uid.
  const tag = `st${[...crypto.getRandomValues(new Uint8Array(4))].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
  const [a, b] = [`${tag}-a`, `${tag}-b`];
  const tmp = mkdtempSync(join(tmpdir(), "viv-selftest-"));
  let broker: Bun.Subprocess | null = null;
  let listener: Bun.TCPSocketListener<undefined> | null = null;
  try {
    Bun.spawnSync(["chmod", "0711", tmp]); // the agent's uid must reach what its jail binds
    const state = join(tmp, "state");
    const ws = join(tmp, "ws");
    const outside = join(tmp, "outside");
    mkdirSync(outside, { mode: 0o755 });
    writeFileSync(join(outside, "target.txt"), "untouched\n", { mode: 0o644 });
    const policy = join(tmp, "policy.kdl");
    writeFileSync(policy, `agent "${a}" {\n    workspace "${ws}"\n    grant "fs-file-write" {\n        path "${ws}/out"\n    }\n}\nagent "${b}" {\n    grant "fs-file-write" {\n        path "${outside}"\n    }\n}\n`);
    const L = stateLayout(state);
    broker = Bun.spawn([...selfCommand("viv-broker"), "--attached", "--policy", policy, "--state", state], { stdio: ["pipe", "ignore", "pipe"] });
    if (!(await waitFor(() => brokerAlive(L.operatorSocket), 15_000))) throw new VivError(Exit.unavailable, "the throwaway broker did not start");
    const r = await operatorRequest(L.operatorSocket, { op: "agent", agent: a });
    if (!r.ok) throw new VivError(Exit.internal, `the throwaway broker does not know its agent: ${r.error}`);
    const uid = r.agent.uid as number;
    mkdirSync(join(ws, "out"), { recursive: true, mode: 0o700 });
    copyFileSync(join(distDir(), "libexec", "viv-try-syscall"), join(ws, "viv-try-syscall"));
    Bun.spawnSync(["chmod", "0755", join(ws, "viv-try-syscall")]);
    if (root) for (const p of [ws, join(ws, "out"), join(ws, "viv-try-syscall")]) chownSync(p, uid, uid);

    let hits = 0;
    const tcp = Bun.listen<undefined>({ hostname: "127.0.0.1", port: 0, socket: { open: (s) => void (hits++, s.end()), data() {} } });
    listener = tcp;
    const args = [String(tcp.port), state, join(L.agentRun(b), "broker.sock"), outside, ws];
    const command = ["sh", "-c", JAIL_SCRIPT, "selftest", ...args];
    let proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
    if (weaken === "seccomp" && backend === "nspawn") {
      const spec = { hostUid: root ? uid : null, workspace: ws, runDir: L.agentRun(a), etcDir: L.agentEtc(a), limits: {}, command, env: {} };
      proc = spawnNspawn(nspawnArgv(spec, nspawnRoot(), { seccomp: false }), ["ignore", "pipe", "pipe"]);
    } else if (weaken === "seccomp") {
      const argv = bwrapArgv({ hostUid: root ? uid : null, workspace: ws, runDir: L.agentRun(a), etcDir: L.agentEtc(a), limits: {}, command, env: {} });
      const at = argv.indexOf("--seccomp");
      if (at >= 0) argv.splice(at, 2);
      proc = Bun.spawn(argv, { stdio: ["ignore", "pipe", "pipe"], env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" } });
    } else {
      proc = Bun.spawn([...selfCommand("viv"), "run", "--agent", a, "--backend", backend, "--policy", policy, "--state", state, "--", ...command], { stdio: ["ignore", "pipe", "pipe"] });
    }
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    if (code !== 0) throw new VivError(Exit.internal, `the jail did not run (exit ${code}): ${stderr.trim().split("\n").pop()}`);

    let failed = 0;
    out(`selftest backend=${backend}${weaken ? ` weakened=${weaken}` : ""} kernel=${readFileSync("/proc/sys/kernel/osrelease", "utf8").trim()}`);
    judge(stdout.split("\n").filter(Boolean), hits, outside, (ok, name, seen) => {
      if (!ok) failed++;
      out(ok ? `ok ${name}` : `FAIL ${name}: ${seen}`);
    });
    out(failed ? `selftest: ${failed} probe(s) failed` : "selftest: every probe passed");
    return failed ? 1 : 0;
  } finally {
    listener?.stop(true);
    if (broker) {
      broker.kill("SIGTERM");
      await broker.exited;
    }
    rmSync(tmp, { recursive: true, force: true });
  }
}

export class SelftestCommand extends Command {
  static override paths = [["selftest"]];
  static override usage = Command.Usage({
    description: "start a throwaway broker and jail and try to escape it; exits 1 when a probe fails",
    details: "Run as root after a kernel or distribution upgrade. Prints one line per probe: ok NAME, or FAIL NAME: what was seen.",
    examples: [
      ["Check the bubblewrap jail on this host", "$0 selftest --backend bwrap"],
      ["Check the systemd-nspawn jail on this host", "$0 selftest --backend nspawn"],
    ],
  });
  backend = Option.String("--backend", "bwrap", { description: "bwrap or nspawn (default bwrap)", validator: t.isEnum(["bwrap", "nspawn"]) });

  async execute() {
    return selftest(this.backend, (l) => this.context.stdout.write(`${l}\n`));
  }
}
