// The operator socket: STATE/operator.sock, mode 0600, one JSON request per line and one JSON
// reply per line. Only the broker's own user (root in production) can connect, and no jail can
// see it, so nothing here can be reached or spoofed by an agent.
import { chmodSync, rmSync } from "node:fs";
import { capabilityList } from "./agent-dir.ts";
import type { Broker } from "./server.ts";

const MAX_REQUEST = 64 * 1024;

export interface OperatorRequest {
  op: "ps" | "agent" | "kill" | "jail-start" | "jail-end" | "approvals" | "approve" | "deny";
  agent?: string;
  pid?: number;
  /** approve, deny: the pending call's id. */
  id?: string;
  /** deny: why, shown to the agent and recorded. */
  reason?: string;
  /** approve, deny: who decides, as the operator's viv names them (the socket is the broker user's alone). */
  operator?: string;
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
        agent: { name: agent.name, uid: agent.uid, workspace: agent.workspace ?? null, backend: agent.backend, limits: agent.limits, caps: capabilityList(agent).capabilities.map((c) => c.name) },
      };
    case "kill":
      if (!agent) return { ok: false, exit: 77, error: `agent '${req.agent}' is not in the policy` };
      return broker.kill(agent.name, "operator", typeof req.reason === "string" && req.reason ? req.reason.slice(0, MAX_REASON) : undefined).then(() => ({ ok: true }));
    case "jail-start":
    case "jail-end":
      if (!agent || !Number.isInteger(req.pid)) return { ok: false, exit: 64, error: "jail-start needs agent and pid" };
      if (req.op === "jail-start") broker.registerJail(agent.name, req.pid!);
      else broker.unregisterJail(agent.name, req.pid!);
      return { ok: true };
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
    default:
      return { ok: false, exit: 64, error: `unknown operation '${(req as { op: unknown }).op}'` };
  }
}

export function listenOperator(broker: Broker, path: string) {
  rmSync(path, { force: true });
  const server = Bun.listen<{ buf: string }>({
    unix: path,
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
  });
  chmodSync(path, 0o600);
  return server;
}
