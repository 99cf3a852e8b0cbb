// Test-only: runs a command in an agent's jail exactly as `viv run` builds it (bwrapArgv, or
// nspawnArgv when VIV_BACKEND=nspawn), with its seccomp filter, or with --no-filter the same jail
// without any: the negative control that shows the seccomp tests would notice a jail that lost
// its filter. Under nspawn the control also turns off nspawn's own filter (SYSTEMD_SECCOMP=0),
// so that what the probes see there is the kernel's answer alone. Needs a running broker (it
// prepares the agent's run and etc directories) and root (the jail runs as the agent's uid).
// usage: bun test/seccomp-jail.ts STATE AGENT UID WORKSPACE (--filter | --no-filter) -- CMD...
import { bwrapArgv } from "../broker/jail-bwrap.ts";
import { nspawnArgv, nspawnRoot, spawnNspawn } from "../broker/jail-nspawn.ts";
import { SECCOMP_FD, spawnWithSeccomp } from "../broker/jail-seccomp.ts";
import { stateLayout } from "../lib/paths.ts";

const [state, agent, uid, workspace, mode, dashdash, ...command] = process.argv.slice(2);
if (!state || !agent || !uid || !workspace || (mode !== "--filter" && mode !== "--no-filter") || dashdash !== "--" || command.length === 0) {
  console.error("usage: seccomp-jail.ts STATE AGENT UID WORKSPACE (--filter | --no-filter) -- CMD...");
  process.exit(64);
}
const L = stateLayout(state);
const spec = { hostUid: Number(uid), workspace, runDir: L.agentRun(agent), etcDir: L.agentEtc(agent), limits: {}, command, env: {} };
const o = { stdio: ["inherit", "inherit", "inherit"] as ["inherit", "inherit", "inherit"], env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" } };
let proc;
if (process.env.VIV_BACKEND === "nspawn") {
  const filter = mode === "--filter";
  proc = spawnNspawn(nspawnArgv(spec, nspawnRoot(), { seccomp: filter }), o.stdio, filter ? {} : { SYSTEMD_SECCOMP: "0" });
} else {
  const argv = bwrapArgv(spec);
  if (mode === "--filter") {
    proc = spawnWithSeccomp(argv, o);
  } else {
    const at = argv.indexOf("--seccomp");
    if (at < 0 || argv[at + 1] !== String(SECCOMP_FD)) throw new Error("bwrapArgv no longer passes --seccomp");
    argv.splice(at, 2);
    proc = Bun.spawn(argv, o);
  }
}
process.exit(await proc.exited);
