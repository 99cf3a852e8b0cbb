// viv: the operator's command. Each class declares its paths, usage and options; the work is in
// the functions it calls (cli/run.ts, policy/load.ts, the operator socket).
import { Command, Option } from "clipanion";
import * as t from "typanion";
import { CAPABILITIES, CATALOG } from "../capabilities/registry.ts";
import { runCli } from "../lib/cli.ts";
import { Exit, VivError } from "../lib/exit.ts";
import { brokerAlive, operatorRequest } from "../lib/operator-client.ts";
import { resolvePolicyPath, resolveStateDir, stateLayout } from "../lib/paths.ts";
import { loadPolicy, PolicyError } from "../policy/load.ts";
import { runAgent } from "./run.ts";
import { SECRET_COMMANDS } from "./secret.ts";

const stateOption = () => Option.String("--state", { description: "state directory (default $VIVARY_STATE)" });

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
  static override usage = Command.Usage({ description: "show the broker serving STATE and its agents; exits 69 when none runs" });
  state = stateOption();

  async execute() {
    const sock = stateLayout(resolveStateDir(this.state)).operatorSocket;
    if (!(await brokerAlive(sock))) throw new VivError(Exit.unavailable, "no broker serves this state directory");
    const r = await operatorRequest(sock, { op: "ps" });
    this.context.stdout.write(`broker pid=${r.pid}\n`);
    for (const a of r.agents) this.context.stdout.write(`agent=${a.name} uid=${a.uid} connections=${a.connections} caps=${a.caps.join(",")}\n`);
  }
}

class KillCommand extends Command {
  static override paths = [["kill"]];
  static override usage = Command.Usage({ description: "the kill switch: end an agent's jails and revoke its socket" });
  agent = Option.String({ name: "agent" });
  state = stateOption();

  async execute() {
    const r = await operatorRequest(stateLayout(resolveStateDir(this.state)).operatorSocket, { op: "kill", agent: this.agent });
    if (!r.ok) throw new VivError(r.exit ?? Exit.internal, r.error);
  }
}

class PolicyCheckCommand extends Command {
  static override paths = [["policy", "check"]];
  static override usage = Command.Usage({
    description: "validate a policy; exits 0 when valid, 78 with file:line errors when not",
    examples: [["Check the example policy", "$0 policy check policy/examples/demo.kdl"]],
  });
  path = Option.String({ name: "path" });

  async execute() {
    try {
      const p = loadPolicy(this.path, CATALOG);
      this.context.stdout.write(`${this.path}: ok: ${p.agents.size} agent${p.agents.size === 1 ? "" : "s"}, policy ${p.digest.slice(0, 12)}\n`);
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
  static override usage = Command.Usage({ description: "list the capabilities this vivary provides" });
  json = Option.Boolean("--json", false, { description: "print NDJSON: name, risk, scopes, schema" });

  async execute() {
    for (const [name, c] of CAPABILITIES) {
      const s = c.schema;
      if (this.json) this.context.stdout.write(`${JSON.stringify({ name, risk: s["x-vivary-risk"], scopes: s["x-vivary-scopes"], schema: s })}\n`);
      else this.context.stdout.write(`${name}\trisk=${s["x-vivary-risk"]}\tscopes=${s["x-vivary-scopes"].join(",")}\t${s.description.split(". ")[0]}\n`);
    }
  }
}

export const main = (argv: string[]) => runCli("viv", [RunCommand, PsCommand, KillCommand, PolicyCheckCommand, CapsCommand, ...SECRET_COMMANDS], argv);
