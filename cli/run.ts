// viv run: makes sure a broker serves STATE (starting one tied to this run when none does),
// asks it about the agent, prepares the workspace and runs the command in the agent's jail,
// exiting with the command's status. While the jail runs, it keeps a broker serving it: when
// the broker goes away (a crash, or the end of the run that started it), it starts another or
// uses the one another run started, and tells it about the jail; the jail's calls wait for it
// meanwhile (viv-stub retries its connection). With no broker for BROKER_GRACE_MS, it ends the
// jail and exits 69.
import { chownSync, closeSync, constants, existsSync, mkdirSync, openSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { spawnJail } from "../broker/jail-bwrap.ts";
import { spawnNspawnJail } from "../broker/jail-nspawn.ts";
import { enterArgv, finishGroup, killGroup, prepareLimits, type LimitEvents } from "../lib/cgroup.ts";
import { Exit, VivError } from "../lib/exit.ts";
import { lockExclusive } from "../lib/libc.ts";
import { selfCommand } from "../lib/install.ts";
import { modelCommand, modelEnvironment } from "../lib/model-env.ts";
import { operatorRequest } from "../lib/operator-client.ts";
import { Env, stateLayout } from "../lib/paths.ts";
import { lendWorkspace, sweepLentWorkspaces, type LentWorkspace } from "../lib/workspace-idmap.ts";
import { CATALOG } from "../capabilities/registry.ts";
import { loadPolicy } from "../policy/load.ts";

export interface RunOptions {
  agent: string;
  policy: string;
  state: string;
  backend?: string;
  command: string[];
}

const BROKER_START_MS = 15_000;
/** How long a running jail may be without a broker before viv run ends it. */
export const BROKER_GRACE_MS = 15_000;
const WATCH_MS = 200;

/** The pid of the broker answering on the operator socket, or null when none answers. */
async function brokerPid(sock: string): Promise<number | null> {
  try {
    const r = await operatorRequest(sock, { op: "ps" });
    return r.ok === true ? (r.pid as number) : null;
  } catch {
    return null;
  }
}

/**
 * The brokers this run started (tied to it with --attached: each stops when this process's end
 * of its stdin closes, even on SIGKILL).
 */
class OwnBrokers {
  private procs: Bun.Subprocess[] = [];
  /** Set when the run ends: nothing more is started, and what was started is stopped. */
  private closed = false;

  constructor(private readonly o: RunOptions) {}

  /**
   * Returns the pid of a broker serving STATE: the one that answers, or one started now. When two
   * runs start one at once, the broker lock picks one and the other run uses it.
   */
  async ensure(deadlineMs = BROKER_START_MS): Promise<number> {
    const sock = stateLayout(this.o.state).operatorSocket;
    const deadline = performance.now() + deadlineMs;
    let proc: Bun.Subprocess | null = null;
    let exited: number | null = null;
    while (performance.now() < deadline) {
      if (this.closed) {
        proc?.kill("SIGTERM");
        throw new VivError(Exit.unavailable, "the run ended");
      }
      const answer = await brokerPid(sock);
      if (answer !== null && answer === proc?.pid) {
        this.procs.push(proc);
        if (this.closed) proc.kill("SIGTERM");
        pipeStderr(proc);
        return answer;
      }
      if (answer !== null) {
        // Another run's broker serves STATE; ours, if any, lost the lock to it.
        proc?.kill("SIGTERM");
        return answer;
      }
      if (proc && exited !== null) {
        if (exited !== Exit.unavailable) {
          const err = (await new Response(proc.stderr as ReadableStream).text()).trim();
          process.stderr.write(err ? `${err}\n` : "");
          throw new VivError(exited === Exit.config ? Exit.config : Exit.unavailable, `the broker did not start (exit ${exited})`);
        }
        // 69: the lock is held by a broker that is not answering yet (starting, or draining
        // before it stops). Try again shortly.
        proc = null;
        await Bun.sleep(100);
        continue;
      }
      if (!proc) {
        const p = Bun.spawn([...selfCommand("viv-broker"), "--attached", "--policy", this.o.policy, "--state", this.o.state], {
          stdio: ["pipe", "ignore", "pipe"],
        });
        proc = p;
        exited = null;
        p.exited.then((c) => {
          if (proc === p) exited = c;
        });
      }
      await Bun.sleep(10);
    }
    proc?.kill();
    throw new VivError(Exit.unavailable, "the broker did not start in time");
  }

  get startedAny(): boolean {
    return this.procs.length > 0;
  }

  async stopAll() {
    this.closed = true;
    for (const p of this.procs) p.kill("SIGTERM");
    await Promise.all(this.procs.map((p) => p.exited));
  }
}

/**
 * A broker that was already running serves its own policy: if PATH now holds another one, say so
 * rather than run the agent under rules the operator did not mean (exit 78).
 */
function refuseOtherPolicy(o: RunOptions, pid: number, r: Record<string, any>) {
  let digest: string;
  try {
    digest = loadPolicy(o.policy, CATALOG).digest;
  } catch {
    return; // an unloadable file is not what the broker serves either way; the broker's policy applies
  }
  if (r.policy && digest !== r.policy) {
    throw new VivError(Exit.config, `the broker serving '${o.state}' (pid ${pid}) runs policy ${String(r.policy).slice(0, 12)}, not '${o.policy}' (${digest.slice(0, 12)}); reload it with 'kill -HUP ${pid}', or stop it`);
  }
}

function pipeStderr(proc: Bun.Subprocess) {
  const stream = proc.stderr as ReadableStream<Uint8Array>;
  void (async () => {
    for await (const chunk of stream) process.stderr.write(chunk);
  })().catch(() => {});
}

/** Says on stderr which limits the jail ran into, and anything its group kept after the end. */
function reportGroupEnd(agent: string, driver: string, end: { events: LimitEvents; left: number[]; stayed: string[] }) {
  const hits = [
    end.events.memory ? `memory: ${end.events.memory} process${end.events.memory === 1 ? "" : "es"} killed by the OOM killer` : "",
    end.events.pids ? `pids: ${end.events.pids} fork${end.events.pids === 1 ? "" : "s"} refused` : "",
  ].filter(Boolean);
  if (hits.length) process.stderr.write(`viv: the jail of agent '${agent}' ran into its limits (${driver}): ${hits.join("; ")}\n`);
  if (end.left.length) process.stderr.write(`viv: processes ${end.left.join(",")} of agent '${agent}' outlived the kill of its ${driver} group\n`);
  else if (end.stayed.length) process.stderr.write(`viv: could not remove the ${driver} group '${end.stayed[0]}' of agent '${agent}'\n`);
}

/**
 * Creates the agent's workspace when it is missing, and checks it is the agent's. Runs of one agent
 * that start at once take turns on a lock of the parent directory, so none sees the directory
 * between its creation and its chown.
 */
function prepareWorkspace(path: string, uid: number | null) {
  const parent = dirname(path);
  mkdirSync(parent, { recursive: true, mode: 0o700 });
  const lock = openSync(parent, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    lockExclusive(lock);
    if (!existsSync(path)) {
      mkdirSync(path, { mode: 0o700 });
      if (uid !== null) chownSync(path, uid, uid);
    }
  } finally {
    closeSync(lock);
  }
  const st = statSync(path);
  if (!st.isDirectory()) throw new VivError(Exit.config, `workspace '${path}' is not a directory`);
  if (uid !== null && st.uid !== uid) {
    throw new VivError(Exit.config, `workspace '${path}' belongs to uid ${st.uid}, not the agent's uid ${uid}; chown it`);
  }
}

/**
 * Keeps a broker serving the jail until `done` settles: registers the jail with each broker that
 * appears, starts one when none answers, and resolves "lost" after BROKER_GRACE_MS without one.
 */
async function watchBroker(o: RunOptions, brokers: OwnBrokers, agent: string, jailPid: number, firstPid: number, done: Promise<unknown>, jailInfo: object = {}): Promise<"done" | "lost"> {
  const sock = stateLayout(o.state).operatorSocket;
  let finished = false;
  done.then(() => (finished = true));
  let serving = firstPid;
  let lostSince: number | null = null;
  while (!finished) {
    await Promise.race([Bun.sleep(WATCH_MS), done]);
    if (finished) break;
    let pid = await brokerPid(sock);
    if (pid === null) {
      lostSince ??= performance.now();
      const left = BROKER_GRACE_MS - (performance.now() - lostSince);
      if (left <= 0) return "lost";
      pid = await brokers.ensure(Math.min(left, BROKER_START_MS)).catch(() => null);
      if (pid === null) continue;
    }
    lostSince = null;
    if (pid !== serving) {
      serving = pid;
      await operatorRequest(sock, { op: "jail-start", agent, pid: jailPid, ...jailInfo }).catch(() => {});
    }
  }
  return "done";
}

export async function runAgent(o: RunOptions): Promise<number> {
  const L = stateLayout(o.state);
  const brokers = new OwnBrokers(o);
  let lent: LentWorkspace | null = null;
  try {
    // The broker that answered may be another run's, stopping as that run ends: ask again.
    let brokerAtStart = await brokers.ensure();
    let r: Record<string, any> | null = null;
    for (let attempt = 0; r === null; attempt++) {
      r = await operatorRequest(L.operatorSocket, { op: "agent", agent: o.agent }).catch((e) => {
        if (attempt >= 3 || !(e instanceof VivError) || e.code !== Exit.unavailable) throw e;
        return null;
      });
      if (r === null) brokerAtStart = await brokers.ensure();
    }
    if (!r.ok) throw new VivError(r.exit ?? Exit.denied, r.error);
    if (r.killed) throw new VivError(Exit.denied, `agent '${o.agent}' was stopped by the kill switch (${r.killed.reason}); it runs again after the broker restarts`);
    if (!brokers.startedAny) refuseOtherPolicy(o, brokerAtStart, r);
    const agent = r.agent as { name: string; uid: number; workspace: string | null; workspaceOwner?: string; backend: string; limits: { memoryBytes?: number; pids?: number; cpu?: number; tmpBytes?: number; timeoutMs?: number } };
    const backend = o.backend ?? agent.backend;
    if (backend !== "bwrap" && backend !== "nspawn") throw new VivError(Exit.usage, `unknown backend '${backend}'`);
    const hostUid = process.getuid?.() === 0 ? agent.uid : null;
    // owner="keep": root lends the operator's directory through an idmapped mount (lib/workspace-idmap.ts).
    const keep = agent.workspaceOwner === "keep" && hostUid !== null;
    if (hostUid !== null) for (const m of sweepLentWorkspaces(o.state)) process.stderr.write(`viv: ${m}\n`);
    if (agent.workspace && !keep) prepareWorkspace(agent.workspace, hostUid);
    if (agent.workspace && keep) lent = lendWorkspace(agent.workspace, o.state, agent.name, { uid: hostUid, gid: hostUid });

    const models = (r.models ?? []) as { name: string; kind: string }[];
    // The jail's own control group (lib/cgroup.ts), named after the agent and this run.
    const limits = prepareLimits(`${agent.name}-${process.pid}`, agent.limits, process.env[Env.limits] ?? "auto");
    const group = limits.group;
    let jail: ReturnType<typeof spawnJail>;
    try {
      jail = (backend === "nspawn" ? spawnNspawnJail : spawnJail)(
        { hostUid, workspace: lent?.path ?? agent.workspace, runDir: L.agentRun(agent.name), etcDir: L.agentEtc(agent.name), limits: agent.limits, cgroupEnter: group ? enterArgv(group) : undefined, command: modelCommand(models, o.command), env: modelEnvironment(models) },
        agent.limits.timeoutMs,
      );
    } catch (e) {
      if (group) await finishGroup(group);
      throw e;
    }
    const jailInfo = { limits: limits.driver, ...(group ? { cgroup: group } : {}) };
    await operatorRequest(L.operatorSocket, { op: "jail-start", agent: agent.name, pid: jail.pid, ...jailInfo }).catch(() => {});
    const forward = () => {
      jail.kill();
      if (group) void killGroup(group).catch(() => {});
    };
    process.on("SIGINT", forward);
    process.on("SIGTERM", forward);
    const watch = watchBroker(o, brokers, agent.name, jail.pid, brokerAtStart, jail.exited, jailInfo);
    const ended = await Promise.race([jail.exited, watch.then((w) => (w === "lost" ? null : jail.exited))]);
    process.off("SIGINT", forward);
    process.off("SIGTERM", forward);
    if (ended === null) jail.kill();
    await jail.exited;
    const end = group ? await finishGroup(group) : null;
    if (end) reportGroupEnd(agent.name, limits.driver, end);
    if (ended === null) {
      process.stderr.write(`viv: no broker served '${o.state}' for ${BROKER_GRACE_MS / 1000} s; ended the jail of agent '${agent.name}'\n`);
      return Exit.unavailable;
    }
    await operatorRequest(L.operatorSocket, { op: "jail-end", agent: agent.name, pid: jail.pid, limits: limits.driver, ...(end ? { events: end.events } : {}) }).catch(() => {});
    const after = await operatorRequest(L.operatorSocket, { op: "agent", agent: agent.name }).catch(() => null);
    if (after?.killed) {
      process.stderr.write(`viv: the kill switch ended the jail of agent '${agent.name}' (${after.killed.reason})\n`);
      return Exit.denied;
    }
    if (ended.timedOut) {
      process.stderr.write(`viv: run of agent '${agent.name}' ended by its ${agent.limits.timeoutMs} ms timeout\n`);
      return Exit.temporary;
    }
    return ended.code;
  } finally {
    for (const m of lent?.release() ?? []) process.stderr.write(`viv: ${m}\n`);
    await brokers.stopAll();
  }
}
