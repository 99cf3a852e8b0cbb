// viv run: starts (or reuses) the broker serving STATE, asks it about the agent, prepares the
// workspace and runs the command in the agent's jail, exiting with the command's status.
import { chownSync, existsSync, mkdirSync, statSync } from "node:fs";
import { spawnJail } from "../broker/jail-bwrap.ts";
import { Exit, VivError } from "../lib/exit.ts";
import { selfCommand } from "../lib/install.ts";
import { brokerAlive, operatorRequest } from "../lib/operator-client.ts";
import { stateLayout } from "../lib/paths.ts";

export interface RunOptions {
  agent: string;
  policy: string;
  state: string;
  backend?: string;
  command: string[];
}

const BROKER_START_MS = 15_000;

/** Starts a broker for this run's duration; resolves once its operator socket answers. */
async function startBroker(o: RunOptions): Promise<Bun.Subprocess> {
  const sock = stateLayout(o.state).operatorSocket;
  // --attached: the broker stops when this process's end of its stdin closes, even on SIGKILL.
  const proc = Bun.spawn([...selfCommand("viv-broker"), "--attached", "--policy", o.policy, "--state", o.state], {
    stdio: ["pipe", "ignore", "pipe"],
  });
  const deadline = performance.now() + BROKER_START_MS;
  let exited: number | null = null;
  proc.exited.then((c) => (exited = c));
  while (performance.now() < deadline) {
    if (exited !== null) {
      const err = (await new Response(proc.stderr).text()).trim();
      process.stderr.write(err ? `${err}\n` : "");
      throw new VivError(exited === Exit.config ? Exit.config : Exit.unavailable, `the broker did not start (exit ${exited})`);
    }
    if (await brokerAlive(sock)) {
      pipeStderr(proc);
      return proc;
    }
    await Bun.sleep(10);
  }
  proc.kill();
  throw new VivError(Exit.unavailable, "the broker did not start in time");
}

function pipeStderr(proc: Bun.Subprocess) {
  const stream = proc.stderr as ReadableStream<Uint8Array>;
  void (async () => {
    for await (const chunk of stream) process.stderr.write(chunk);
  })().catch(() => {});
}

function prepareWorkspace(path: string, uid: number | null) {
  if (!existsSync(path)) {
    mkdirSync(path, { recursive: true, mode: 0o700 });
    if (uid !== null) chownSync(path, uid, uid);
  }
  const st = statSync(path);
  if (!st.isDirectory()) throw new VivError(Exit.config, `workspace '${path}' is not a directory`);
  if (uid !== null && st.uid !== uid) {
    throw new VivError(Exit.config, `workspace '${path}' belongs to uid ${st.uid}, not the agent's uid ${uid}; chown it`);
  }
}

export async function runAgent(o: RunOptions): Promise<number> {
  const L = stateLayout(o.state);
  let started: Bun.Subprocess | null = null;
  if (!(await brokerAlive(L.operatorSocket))) started = await startBroker(o);
  try {
    const r = await operatorRequest(L.operatorSocket, { op: "agent", agent: o.agent });
    if (!r.ok) throw new VivError(r.exit ?? Exit.denied, r.error);
    const agent = r.agent as { name: string; uid: number; workspace: string | null; backend: string; limits: { memoryBytes?: number; pids?: number; timeoutMs?: number } };
    const backend = o.backend ?? agent.backend;
    if (backend === "nspawn") throw new VivError(Exit.unavailable, "the nspawn backend is not available yet; use --backend bwrap");
    if (backend !== "bwrap") throw new VivError(Exit.usage, `unknown backend '${backend}'`);
    const hostUid = process.getuid?.() === 0 ? agent.uid : null;
    if (agent.workspace) prepareWorkspace(agent.workspace, hostUid);

    const jail = spawnJail(
      { hostUid, workspace: agent.workspace, runDir: L.agentRun(agent.name), etcDir: L.agentEtc(agent.name), limits: agent.limits, command: o.command, env: {} },
      agent.limits.timeoutMs,
    );
    await operatorRequest(L.operatorSocket, { op: "jail-start", agent: agent.name, pid: jail.pid }).catch(() => {});
    const forward = () => jail.kill();
    process.on("SIGINT", forward);
    process.on("SIGTERM", forward);
    const { code, timedOut } = await jail.exited;
    process.off("SIGINT", forward);
    process.off("SIGTERM", forward);
    await operatorRequest(L.operatorSocket, { op: "jail-end", agent: agent.name, pid: jail.pid }).catch(() => {});
    if (timedOut) {
      process.stderr.write(`viv: run of agent '${agent.name}' ended by its ${agent.limits.timeoutMs} ms timeout\n`);
      return Exit.temporary;
    }
    return code;
  } finally {
    if (started) {
      started.kill("SIGTERM");
      await started.exited;
    }
  }
}
