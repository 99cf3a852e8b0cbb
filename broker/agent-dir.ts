// Prepares what an agent's jail sees at /run/vivary: the capability list, one stub per granted
// capability (a symlink to a private copy of viv-stub, so argv[0] names the capability), and the
// directory its socket lives in. Also the jail's /etc/passwd and /etc/group.
import { chmodSync, copyFileSync, mkdirSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CAPABILITIES } from "../capabilities/registry.ts";
import { JAIL, stateLayout } from "../lib/paths.ts";
import type { AgentPolicy } from "../policy/model.ts";

export function capabilityList(agent: AgentPolicy) {
  return {
    version: 1,
    capabilities: [...agent.grants.keys()].sort().map((name) => ({ name, schema: CAPABILITIES.get(name)!.schema })),
  };
}

export function prepareAgentDir(state: string, agent: AgentPolicy, stubPath: string) {
  const L = stateLayout(state);
  const run = L.agentRun(agent.name);
  mkdirSync(join(run, "bin"), { recursive: true, mode: 0o755 });
  mkdirSync(join(run, "libexec"), { recursive: true, mode: 0o755 });
  for (const d of [join(L.agents, agent.name), run, join(run, "bin"), join(run, "libexec")]) chmodSync(d, 0o755);
  const stub = join(run, "libexec", "viv-stub");
  rmSync(stub, { force: true });
  copyFileSync(stubPath, stub);
  chmodSync(stub, 0o755);
  const wanted = new Set(agent.grants.keys());
  for (const f of readdirSync(join(run, "bin"))) if (!wanted.has(f)) rmSync(join(run, "bin", f), { force: true });
  for (const cap of wanted) {
    rmSync(join(run, "bin", cap), { force: true });
    symlinkSync(JAIL.stub, join(run, "bin", cap));
  }
  writeFileSync(join(run, "capabilities.json.tmp"), `${JSON.stringify(capabilityList(agent), null, 2)}\n`, { mode: 0o644 });
  chmodSync(join(run, "capabilities.json.tmp"), 0o644);
  renameSync(join(run, "capabilities.json.tmp"), join(run, "capabilities.json"));

  const etc = L.agentEtc(agent.name);
  mkdirSync(etc, { recursive: true, mode: 0o755 });
  chmodSync(etc, 0o755);
  writeFileSync(join(etc, "passwd"), `root:x:0:0:root:/nonexistent:/usr/sbin/nologin\n${JAIL.user}:x:${JAIL.uid}:${JAIL.gid}:vivary agent:${JAIL.workspace}:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`, { mode: 0o644 });
  writeFileSync(join(etc, "group"), `root:x:0:\n${JAIL.user}:x:${JAIL.gid}:\nnogroup:x:65534:\n`, { mode: 0o644 });
  for (const f of ["passwd", "group"]) chmodSync(join(etc, f), 0o644);
}

export function removeAgentDir(state: string, name: string) {
  rmSync(join(stateLayout(state).agents, name), { recursive: true, force: true });
}
