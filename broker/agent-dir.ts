// Prepares what an agent's jail sees at /run/vivary: the capability list, one stub per granted
// capability (a symlink to a private copy of viv-stub, so argv[0] names the capability), the MCP
// bridge viv-mcp (mcp/viv-mcp.ts) when there is any, and the directory its socket lives in.
// The model endpoint's relay (stub/viv-model-relay.c) is placed beside the stub. Also the
// jail's /etc/passwd and /etc/group. Jails of an earlier broker may be running and
// reading these files while a new broker starts, so every entry is replaced atomically (written
// aside, renamed into place) and an unchanged one is left alone: a running jail never sees a stub
// vanish or lose its run bit.
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { dirname, join } from "node:path";
import { CAPABILITIES } from "../capabilities/registry.ts";
import { externalCapability } from "./external-capability.ts";
import { mcpBridge } from "../lib/install.ts";
import { JAIL, stateLayout } from "../lib/paths.ts";
import type { AgentPolicy } from "../policy/model.ts";

export function capabilityList(agent: AgentPolicy) {
  return {
    version: 1,
    capabilities: [...agent.grants.values()].sort((a, b) => (a.cap < b.cap ? -1 : 1)).map(({ cap: name, external }) => ({ name, schema: (external ? externalCapability(external) : CAPABILITIES.get(name)!).schema })),
  };
}

const aside = (path: string) => `${path}.${randomBytes(6).toString("hex")}.new`;
const ASIDE = /\.[0-9a-f]{12}\.new$/;

/** Removes what a broker killed between writing aside and renaming left behind. */
function sweepAside(dir: string) {
  for (const f of readdirSync(dir)) if (ASIDE.test(f)) rmSync(join(dir, f), { force: true });
}

function sameFile(path: string, bytes: Uint8Array, mode: number): boolean {
  try {
    const st = statSync(path);
    return st.isFile() && (st.mode & 0o7777) === mode && Buffer.compare(readFileSync(path), bytes) === 0;
  } catch {
    return false;
  }
}

/** Puts `bytes` at `path` with `mode` in one rename, unless it is already exactly that. */
function placeFile(path: string, bytes: Uint8Array, mode: number) {
  if (sameFile(path, bytes, mode)) return;
  const tmp = aside(path);
  writeFileSync(tmp, bytes, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

/** Makes `path` a symlink to `target` in one rename, unless it already is one. */
function placeSymlink(path: string, target: string) {
  try {
    if (readlinkSync(path) === target) return;
  } catch {
    /* missing, or not a symlink: replaced below */
  }
  const tmp = aside(path);
  symlinkSync(target, tmp);
  renameSync(tmp, path);
}

export function prepareAgentDir(state: string, agent: AgentPolicy, stubPath: string) {
  const L = stateLayout(state);
  const run = L.agentRun(agent.name);
  const bin = join(run, "bin");
  mkdirSync(bin, { recursive: true, mode: 0o755 });
  mkdirSync(join(run, "libexec"), { recursive: true, mode: 0o755 });
  for (const d of [join(L.agents, agent.name), run, bin, join(run, "libexec")]) chmodSync(d, 0o755);
  for (const d of [run, join(run, "libexec")]) sweepAside(d);
  placeFile(join(run, "libexec", "viv-stub"), readFileSync(stubPath), 0o755);
  // The model endpoint's relay sits beside the stub (dist/libexec); viv run starts it in a jail with model access.
  const relay = join(dirname(stubPath), "viv-model-relay");
  if (existsSync(relay)) placeFile(join(run, "libexec", "viv-model-relay"), readFileSync(relay), 0o755);
  placeFile(join(run, "libexec", "viv-mcp.mjs"), readFileSync(mcpBridge()), 0o755);
  const wanted = new Set(agent.grants.keys());
  for (const cap of wanted) placeSymlink(join(bin, cap), JAIL.stub);
  if (wanted.size > 0) placeSymlink(join(bin, JAIL.mcpName), JAIL.mcp);
  for (const f of readdirSync(bin)) if (!wanted.has(f) && !(f === JAIL.mcpName && wanted.size > 0)) rmSync(join(bin, f), { force: true });
  placeFile(join(run, "capabilities.json"), Buffer.from(`${JSON.stringify(capabilityList(agent), null, 2)}\n`), 0o644);

  const etc = L.agentEtc(agent.name);
  mkdirSync(etc, { recursive: true, mode: 0o755 });
  chmodSync(etc, 0o755);
  sweepAside(etc);
  placeFile(join(etc, "passwd"), Buffer.from(`root:x:0:0:root:/nonexistent:/usr/sbin/nologin\n${JAIL.user}:x:${JAIL.uid}:${JAIL.gid}:vivary agent:${JAIL.workspace}:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`), 0o644);
  placeFile(join(etc, "group"), Buffer.from(`root:x:0:\n${JAIL.user}:x:${JAIL.gid}:\nnogroup:x:65534:\n`), 0o644);
}

export function removeAgentDir(state: string, name: string) {
  rmSync(join(stateLayout(state).agents, name), { recursive: true, force: true });
}
