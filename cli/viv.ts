// viv: the operator's command. Each class declares its paths, usage and options; the work is in
// the functions it calls (cli/run.ts, policy/load.ts, the operator socket).
import { Command, Option } from "clipanion";
import * as t from "typanion";
import { CAPABILITIES, CATALOG } from "../capabilities/registry.ts";
import { runCli, stateOption } from "../lib/cli.ts";
import { Exit, VivError } from "../lib/exit.ts";
import { brokerAlive, operatorRequest } from "../lib/operator-client.ts";
import { resolvePolicyPath, resolveStateDir, stateLayout } from "../lib/paths.ts";
import { loadPolicy, PolicyError } from "../policy/load.ts";
import { runAgent } from "./run.ts";
import { watchApprovals, pendingLine } from "./approvals.ts";
import { SECRET_COMMANDS } from "./secret.ts";
import { SelftestCommand } from "./selftest.ts";
import { CapsPinCommand, registered } from "./caps.ts";


class RunCommand extends Command {
  static override paths = [["run"]];
  static override usage = Command.Usage({
    description: "run a command in an agent's jail",
    details: "Uses the broker serving STATE, or starts one for the run's duration. Exits with the command's status.",
    examples: [["Run a shell script as the agent 'researcher'", "$0 run --agent researcher --policy policy.kdl -- sh ./task.sh"]],
  });
  agent = Option.String("--agent", { required: true, description: "agent name from the policy" });
  policy = Option.String("--policy", { description: "policy file or directory (default $VIVARY_POLICY)" });
  state = stateOption();
  backend = Option.String("--backend", { description: "bwrap or nspawn (default: the agent's backend)", validator: t.isEnum(["bwrap", "nspawn"]) });
  command = Option.Rest({ required: 1, name: "command" });

  async execute() {
    return runAgent({ agent: this.agent, policy: resolvePolicyPath(this.policy), state: resolveStateDir(this.state), backend: this.backend, command: this.command });
  }
}

class PsCommand extends Command {
  static override paths = [["ps"]];
  static override usage = Command.Usage({
    description: "show the broker serving STATE and its agents; exits 69 when none runs",
    details: "One line for the broker (pid, start time, policy digest), then one per agent: uid, open connections, running jails, calls run and refused since the broker started, calls waiting for approval, whether the kill switch stopped it, its capabilities, how its running jails are bounded (limits=cgroup2, cgroup1 or rlimit), and its protocol violations.",
  });
  json = Option.Boolean("--json", false, { description: "print the same as one JSON object" });
  state = stateOption();

  async execute() {
    const sock = stateLayout(resolveStateDir(this.state)).operatorSocket;
    if (!(await brokerAlive(sock))) throw new VivError(Exit.unavailable, "no broker serves this state directory");
    const r = await operatorRequest(sock, { op: "ps" });
    if (this.json) return void this.context.stdout.write(`${JSON.stringify({ pid: r.pid, started: r.started, policy: r.policy, agents: r.agents })}\n`);
    const uptime = Math.round((Date.now() - Date.parse(r.started)) / 1000);
    this.context.stdout.write(`broker pid=${r.pid} uptime=${uptime}s policy=${String(r.policy).slice(0, 12)}\n`);
    for (const a of r.agents) {
      const killed = a.killed ? ` killed_by=${a.killed.by}` : "";
      this.context.stdout.write(`agent=${a.name} uid=${a.uid} connections=${a.connections} jails=${a.jails.join(",") || "-"} calls=${a.calls} denials=${a.denials} pending=${a.pending}${killed} browser=${a.browser?.pid ?? "-"} caps=${a.caps.join(",")} limits=${a.limits?.join(",") || "-"} violations=${a.violations ?? 0}\n`);
    }
  }
}

class KillCommand extends Command {
  static override paths = [["kill"]];
  static override usage = Command.Usage({
    description: "the kill switch: end an agent's jails, deny its waiting calls and revoke its socket until the broker restarts",
    examples: [["Stop the agent 'researcher'", "$0 kill researcher --reason 'runaway loop'"]],
  });
  agent = Option.String({ name: "agent" });
  reason = Option.String("--reason", { description: "why, recorded with the kill" });
  state = stateOption();

  async execute() {
    const r = await operatorRequest(stateLayout(resolveStateDir(this.state)).operatorSocket, { op: "kill", agent: this.agent, reason: this.reason });
    if (!r.ok) throw new VivError(r.exit ?? Exit.internal, r.error);
  }
}

/** Who decides, as recorded: the user behind sudo, else the login name, else the uid. */
const operatorName = () => process.env.SUDO_USER || process.env.USER || `uid ${process.getuid?.()}`;

class ApprovalsCommand extends Command {
  static override paths = [["approvals"]];
  static override usage = Command.Usage({
    description: "list the calls waiting for an operator's decision",
    details: "One line per pending call: its id, agent, capability, risk, target and every argument, escaped (control characters, ANSI and bidi marks are shown, never interpreted). With --watch: a live console on a terminal, or new and settled calls as lines when not on a terminal.",
    examples: [
      ["List pending calls", "$0 approvals"],
      ["Watch them and decide", "$0 approvals --watch"],
    ],
  });
  json = Option.Boolean("--json", false, { description: "print NDJSON, one pending call per line" });
  watch = Option.Boolean("--watch", false, { description: "keep watching; a console on a terminal" });
  state = stateOption();

  async execute() {
    const sock = stateLayout(resolveStateDir(this.state)).operatorSocket;
    if (this.watch) return watchApprovals(sock, { json: this.json, operator: operatorName() });
    const r = await operatorRequest(sock, { op: "approvals" });
    for (const p of r.pending) this.context.stdout.write(`${this.json ? JSON.stringify(p) : pendingLine(p)}\n`);
  }
}

class ApproveCommand extends Command {
  static override paths = [["approve"]];
  static override usage = Command.Usage({
    description: "approve one pending call; it then runs, once",
    examples: [["Approve the call with id 3f9a0c1b2d4e", "$0 approve 3f9a0c1b2d4e"]],
  });
  id = Option.String({ name: "ID" });
  state = stateOption();

  async execute() {
    const r = await operatorRequest(stateLayout(resolveStateDir(this.state)).operatorSocket, { op: "approve", id: this.id, operator: operatorName() });
    if (!r.ok) throw new VivError(r.exit ?? Exit.internal, r.error);
  }
}

class DenyCommand extends Command {
  static override paths = [["deny"]];
  static override usage = Command.Usage({
    description: "deny one pending call; the agent's call exits 77 with the reason",
    examples: [["Deny with a reason", "$0 deny 3f9a0c1b2d4e --reason 'not that file'"]],
  });
  id = Option.String({ name: "ID" });
  reason = Option.String("--reason", { description: "why, shown to the agent and recorded" });
  state = stateOption();

  async execute() {
    const r = await operatorRequest(stateLayout(resolveStateDir(this.state)).operatorSocket, { op: "deny", id: this.id, reason: this.reason, operator: operatorName() });
    if (!r.ok) throw new VivError(r.exit ?? Exit.internal, r.error);
  }
}

class PolicyCheckCommand extends Command {
  static override paths = [["policy", "check"]];
  static override usage = Command.Usage({
    description: "validate a policy; exits 0 when valid, 78 with file:line errors when not",
    examples: [["Check the example policy", "$0 policy check policy/examples/demo.kdl"]],
  });
  policyPath = Option.String({ name: "path" });

  async execute() {
    try {
      const p = loadPolicy(this.policyPath, CATALOG);
      for (const w of p.warnings) this.context.stderr.write(`viv: warning: ${w}\n`);
      this.context.stdout.write(`${this.policyPath}: ok: ${p.agents.size} agent${p.agents.size === 1 ? "" : "s"}, policy ${p.digest.slice(0, 12)}\n`);
      return Exit.ok;
    } catch (e) {
      if (!(e instanceof PolicyError)) throw e;
      for (const p of e.problems) this.context.stderr.write(`viv: ${p}\n`);
      return Exit.config;
    }
  }
}

class CapsCommand extends Command {
  static override paths = [["caps"]];
  static override usage = Command.Usage({ description: "list the capabilities this vivary provides, and those the policy registers" });
  json = Option.Boolean("--json", false, { description: "print NDJSON: name, risk, scopes, schema" });
  policy = Option.String("--policy", { description: "policy whose registered capabilities to list too (default $VIVARY_POLICY)" });

  async execute() {
    const all: [string, { schema: { description: string; "x-vivary-risk": string; "x-vivary-scopes": string[] } }][] = [...CAPABILITIES];
    try {
      for (const x of registered(loadPolicy(resolvePolicyPath(this.policy), CATALOG))) all.push([x.name, { schema: x.schema as never }]);
    } catch (e) {
      if (!(e instanceof PolicyError)) throw e;
      if (!e.message.endsWith("ENOENT")) this.context.stderr.write(`viv: registered capabilities not shown: ${e.message}\n`);
    }
    for (const [name, c] of all) {
      const s = c.schema;
      if (this.json) this.context.stdout.write(`${JSON.stringify({ name, risk: s["x-vivary-risk"], scopes: s["x-vivary-scopes"], schema: s })}\n`);
      else this.context.stdout.write(`${name}\trisk=${s["x-vivary-risk"]}\tscopes=${s["x-vivary-scopes"].join(",")}\t${s.description.split(". ")[0]}\n`);
    }
  }
}

export const main = (argv: string[]) => runCli("viv", [RunCommand, PsCommand, KillCommand, ApprovalsCommand, ApproveCommand, DenyCommand, PolicyCheckCommand, CapsCommand, CapsPinCommand, ...SECRET_COMMANDS, SelftestCommand], argv);
