// viv-broker's life cycle: refuse to start on any doubt (bad policy, unreadable audit log,
// another broker on the same state, grants that overlap the state directory), then serve until
// SIGTERM. SIGHUP reloads the policy; an invalid new policy is refused and the running one kept.
import { chmodSync, mkdirSync, openSync } from "node:fs";
import { Exit, VivError } from "../lib/exit.ts";
import { stateLayout } from "../lib/paths.ts";
import { loadPolicy, PolicyError } from "../policy/load.ts";
import type { Policy } from "../policy/model.ts";
import { isWithin, pathComponents } from "../policy/scope.ts";
import { CAPABILITIES, CATALOG } from "../capabilities/registry.ts";
import type { Args } from "../lib/capability.ts";
import { AuditStore } from "./audit.ts";
import { hostIdConflict } from "./host-ids.ts";
import { listenOperator } from "./operator.ts";
import { INTERRUPTED_REASON, openApprovals, openIntents, RESTART_REASON } from "./reconcile.ts";
import { Broker } from "./server.ts";

/** How long a stop waits for calls in flight to finish before it cuts them short. */
export const DRAIN_MS = 30_000;
import { stubBinary } from "../lib/install.ts";
import { tryLockExclusive } from "../lib/libc.ts";

/** Grants and workspaces must not reach vivary's own state (the audit log above all). */
function refuseStateOverlap(policy: Policy, state: string) {
  const s = pathComponents(state) as string[];
  for (const a of policy.agents.values()) {
    const dirs = [...(a.workspace ? [a.workspace] : []), ...[...a.grants.values()].flatMap((g) => g.scopes.path ?? [])];
    for (const d of dirs) {
      const p = pathComponents(d) as string[];
      if (isWithin(p, s) || isWithin(s, p)) {
        throw new PolicyError([`${a.where}: '${d}' of agent '${a.name}' overlaps the state directory '${state}'`]);
      }
    }
  }
}

function load(path: string, state: string): Policy {
  const policy = loadPolicy(path, CATALOG);
  refuseStateOverlap(policy, state);
  const conflict = hostIdConflict(policy);
  if (conflict) throw new PolicyError([conflict]);
  return policy;
}

/**
 * Closes what the previous run left open (a crash, or a stop cut short): every approval request
 * with no decision gets a `kind=approval decision=restart` record (it was denied: approvals do
 * not carry over), every intent with no outcome a `kind=interrupted` record, after the capability
 * removed what the interrupted call may have left on the host. Written before this run's start
 * record, so that a crash here is redone.
 */
async function closeInterrupted(audit: AuditStore, policy: Policy): Promise<number> {
  const run = audit.previousRun();
  const intents = openIntents(run);
  const records: Promise<number>[] = [];
  for (const r of openApprovals(run)) {
    const fields = { conn: r.fields.conn, id: r.fields.id, decision: "restart", by: "broker", reason: RESTART_REASON, request_sha256: r.fields.request_sha256 };
    records.push(audit.append({ agent: r.agent, kind: "approval", cap: r.cap, fields }));
  }
  for (const r of intents) {
    const capability = CAPABILITIES.get(r.cap);
    const grant = policy.agents.get(r.agent)?.grants.get(r.cap);
    let cleanup = "none needed";
    if (capability?.recover) {
      try {
        cleanup = grant ? await capability.recover(r.fields.args as Args, grant.scopes) : "none: the capability is not granted now";
      } catch (e) {
        cleanup = `failed: ${(e as Error).message}`;
      }
    }
    const fields = { conn: r.fields.conn, intent: r.seq, args_sha256: r.fields.args_sha256, reason: INTERRUPTED_REASON, cleanup };
    records.push(audit.append({ agent: r.agent, kind: "interrupted", cap: r.cap, fields }));
  }
  await Promise.all(records);
  return intents.length;
}

/**
 * Runs the broker until SIGTERM or SIGINT; with `attached`, also until its stdin reaches end of
 * file, so a broker started for one `viv run` cannot outlive that run however it ends.
 */
export async function runBroker(opts: { policy: string; state: string; attached?: boolean }): Promise<number> {
  process.umask(0o077);
  const state = opts.state;
  const L = stateLayout(state);
  let policy: Policy;
  try {
    policy = load(opts.policy, state);
  } catch (e) {
    if (e instanceof PolicyError) {
      for (const p of e.problems) process.stderr.write(`viv-broker: ${p}\n`);
      return Exit.config;
    }
    throw e;
  }
  mkdirSync(L.agents, { recursive: true, mode: 0o711 });
  chmodSync(state, 0o711);
  chmodSync(L.agents, 0o711);
  // Held until the process ends, however it ends: one broker per state directory.
  const lock = openSync(L.brokerLock, "a", 0o600);
  if (!tryLockExclusive(lock)) throw new VivError(Exit.unavailable, `a broker already serves '${state}'`);

  let audit: AuditStore;
  try {
    audit = new AuditStore(L.audit, L.archive, { checkpointInWorker: true });
  } catch (e) {
    throw new VivError(Exit.internal, `cannot open audit log '${L.audit}': ${(e as Error).message}`);
  }
  const interrupted = await closeInterrupted(audit, policy);
  if (interrupted) process.stderr.write(`viv-broker: closed ${interrupted} call${interrupted === 1 ? "" : "s"} the previous run left without an outcome\n`);
  await audit.append({ agent: "-", kind: "broker", fields: { event: "start", pid: process.pid, policy: policy.digest } });

  const broker = new Broker(policy, state, audit, stubBinary());
  broker.start();
  const operator = listenOperator(broker, L.operatorSocket);

  process.on("SIGHUP", () => {
    try {
      const next = load(opts.policy, state);
      broker.replacePolicy(next).catch((e) => process.stderr.write(`viv-broker: ${(e as Error).message}\n`));
      process.stderr.write(`viv-broker: policy reloaded (${next.digest.slice(0, 12)})\n`);
    } catch (e) {
      const problems = e instanceof PolicyError ? e.problems : [(e as Error).message];
      for (const p of problems) process.stderr.write(`viv-broker: reload refused: ${p}\n`);
      audit.append({ agent: "-", kind: "broker", fields: { event: "policy-reload-refused", reason: problems[0] } }).catch(() => {});
    }
  });

  return await new Promise<number>((resolve) => {
    let stopping = false;
    let cutShort: (() => void) | null = null;
    // A stop drains: nothing new is accepted, calls in flight finish and have their outcomes
    // recorded and their replies sent, and only then does the log close. A second signal, or
    // the drain deadline, cuts it short; the stop record says how many calls were cut, and the
    // next start closes their intents as interrupted.
    const stop = async (why: string) => {
      if (stopping) return void cutShort?.();
      stopping = true;
      if (opts.attached) {
        // Destroying stdin fires its own 'close': not a second stop request.
        process.stdin.removeAllListeners();
        process.stdin.destroy();
      }
      operator.stop(true);
      const cut = new Promise<string>((r) => {
        cutShort = () => r("signal");
        setTimeout(() => r("deadline"), DRAIN_MS).unref();
      });
      const ended = await Promise.race([broker.drain().then(() => "drained"), cut]);
      const fields: Record<string, unknown> = { event: "stop", pid: process.pid, by: why };
      if (ended !== "drained") Object.assign(fields, { cut_short: ended, calls_cut: broker.callsInFlight });
      await audit.append({ agent: "-", kind: "broker", fields }).catch(() => {});
      audit.close();
      broker.close();
      process.removeAllListeners("SIGTERM");
      process.removeAllListeners("SIGINT");
      resolve(Exit.ok);
    };
    process.on("SIGTERM", () => void stop("SIGTERM"));
    process.on("SIGINT", () => void stop("SIGINT"));
    if (opts.attached) {
      process.stdin.on("data", () => {});
      process.stdin.once("end", () => void stop("attached-run-ended"));
      process.stdin.once("close", () => void stop("attached-run-ended"));
    }
  });
}
