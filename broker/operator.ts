// The operator socket: STATE/operator.sock, mode 0600, one JSON request per line and one JSON
// reply per line. Only the broker's own user (root in production) can connect, and no jail can
// see it, so nothing here can be reached or spoofed by an agent.
import { capabilityList } from "./agent-dir.ts";
import { VivError } from "../lib/exit.ts";
import { checkGroup, hostFacts, LIMIT_DRIVERS, type LimitEvents } from "../lib/cgroup.ts";
import type { Broker } from "./server.ts";
import { listenInPlace } from "./socket-in-place.ts";

const MAX_REQUEST = 64 * 1024;

export interface OperatorRequest {
  op: "ps" | "agent" | "kill" | "jail-start" | "jail-end" | "approvals" | "approve" | "deny" | "rotate";
  agent?: string;
  pid?: number;
  /** approve, deny: the pending call's id. */
  id?: string;
  /** deny: why, shown to the agent and recorded. */
  reason?: string;
  /** approve, deny: who decides, as the operator's viv names them (the socket is the broker user's alone). */
  operator?: string;
  /** jail-start, jail-end: how the jail is bounded (cgroup2, cgroup1, rlimit). */
  limits?: string;
  /** jail-start: the jail's control group (lib/cgroup.ts JailGroup). */
  cgroup?: unknown;
  /** jail-end: the limits the jail ran into, as its group counted them. */
  events?: unknown;
}

/** A jail-end's counters, checked: each a whole number, or null when there are none. */
function checkEvents(v: unknown): LimitEvents | null {
  if (!v || typeof v !== "object") return null;
  const e = v as Record<string, unknown>;
  const n = (x: unknown) => (Number.isSafeInteger(x) && (x as number) >= 0 ? (x as number) : 0);
  return { memory: n(e.memory), pids: n(e.pids), cpu: n(e.cpu) };
}

const MAX_REASON = 500;

function handle(broker: Broker, req: OperatorRequest): Promise<unknown> | unknown {
  const agent = req.agent ? broker.agents.get(req.agent) : undefined;
  switch (req.op) {
    case "ps": {
      const pending = broker.approvals.list();
      return {
        ok: true,
        pid: process.pid,
        policy: broker.policyDigest,
        started: new Date(broker.startedAt).toISOString(),
        agents: [...broker.agents.values()].map((a) => ({
          name: a.name,
          uid: a.uid,
          connections: broker.connections(a.name),
          jails: broker.jailsOf(a.name),
          limits: broker.limitsOf(a.name),
          violations: broker.violationsOf(a.name),
          ...broker.countsOf(a.name),
          pending: pending.filter((p) => p.agent === a.name).length,
          killed: broker.killedBy(a.name) ?? null,
          browser: broker.browsers.status(a.name),
          caps: [...a.grants.keys()],
        })),
      };
    }
    case "agent":
      if (!agent) return { ok: false, exit: 77, error: `agent '${req.agent}' is not in the policy` };
      return {
        ok: true,
        killed: broker.killedBy(agent.name) ?? null,
        policy: broker.policyDigest,
        models: broker.modelEndpoints(agent.name),
        agent: { name: agent.name, uid: agent.uid, workspace: agent.workspace ?? null, workspaceOwner: agent.workspaceOwner ?? "agent", backend: agent.backend, limits: agent.limits, caps: capabilityList(agent).capabilities.map((c) => c.name) },
      };
    case "kill":
      if (!agent) return { ok: false, exit: 77, error: `agent '${req.agent}' is not in the policy` };
      return broker.kill(agent.name, "operator", typeof req.reason === "string" && req.reason ? req.reason.slice(0, MAX_REASON) : undefined).then((left) =>
        left.length ? { ok: false, exit: 70, error: `processes ${left.join(",")} of agent '${agent.name}' outlived the kill` } : { ok: true },
      );
    case "jail-start":
    case "jail-end": {
      if (!agent || !Number.isInteger(req.pid)) return { ok: false, exit: 64, error: `${req.op} needs agent and pid` };
      const limits = LIMIT_DRIVERS.find((d) => d === req.limits) ?? "rlimit";
      if (req.op === "jail-end") return broker.jailEnded(agent.name, req.pid!, limits, checkEvents(req.events)).then(() => ({ ok: true }));
      const group = req.cgroup === undefined ? null : checkGroup(req.cgroup, hostFacts().mounts);
      if (req.cgroup !== undefined && !group) return { ok: false, exit: 64, error: "jail-start: not a control group of vivary's" };
      broker.registerJail(agent.name, req.pid!, { limits, group });
      return { ok: true };
    }
    case "approvals":
      return { ok: true, pending: broker.approvals.list() };
    case "approve":
    case "deny": {
      if (typeof req.id !== "string") return { ok: false, exit: 64, error: `${req.op} needs an id` };
      const who = typeof req.operator === "string" ? req.operator.slice(0, 64) : "unknown";
      const reason = typeof req.reason === "string" && req.reason ? req.reason.slice(0, MAX_REASON) : "denied by the operator";
      const done =
        req.op === "approve"
          ? broker.approvals.settle(req.id, { decision: "approve", by: "operator", who })
          : broker.approvals.settle(req.id, { decision: "deny", by: "operator", who, reason, exit: 77 });
      return done ? { ok: true } : { ok: false, exit: 65, error: `no pending call '${req.id}' (already decided, timed out, or never requested)` };
    }
    case "rotate":
      try {
        return { ok: true, ...broker.rotateLog() };
      } catch (e) {
        return { ok: false, exit: e instanceof VivError ? e.code : 70, error: `cannot rotate the log: ${(e as Error).message}` };
      }
    default:
      return { ok: false, exit: 64, error: `unknown operation '${(req as { op: unknown }).op}'` };
  }
}

export function listenOperator(broker: Broker, path: string) {
  return listenInPlace(path, { mode: 0o600 }, (at) => Bun.listen<{ buf: string }>({
    unix: at,
    socket: {
      open(s) {
        s.data = { buf: "" };
      },
      async data(s, chunk) {
        s.data.buf += Buffer.from(chunk).toString("utf8");
        if (s.data.buf.length > MAX_REQUEST) return void s.end();
        let nl: number;
        while ((nl = s.data.buf.indexOf("\n")) >= 0) {
          const line = s.data.buf.slice(0, nl);
          s.data.buf = s.data.buf.slice(nl + 1);
          let reply: unknown;
          try {
            reply = await handle(broker, JSON.parse(line) as OperatorRequest);
          } catch (e) {
            reply = { ok: false, exit: 64, error: `bad request: ${(e as Error).message}` };
          }
          s.write(`${JSON.stringify(reply)}\n`);
        }
      },
    },
  }));
}
