// viv-broker: runs the broker in the foreground. Declares its options; broker/main.ts does the work.
import { Command, Option } from "clipanion";
import { runBroker } from "../broker/main.ts";
import { runCli } from "../lib/cli.ts";
import { resolvePolicyPath, resolveStateDir } from "../lib/paths.ts";

class BrokerCommand extends Command {
  static override usage = Command.Usage({
    description: "run the vivary broker in the foreground",
    details: "Serves one socket per agent in the policy and the operator socket, and records every frame in STATE/audit.db. SIGHUP reloads the policy; SIGTERM stops.",
    examples: [["Serve the example policy", "$0 --policy policy/examples/demo.kdl --state /var/lib/vivary"]],
  });
  policy = Option.String("--policy", { description: "policy file or directory of *.kdl (default $VIVARY_POLICY, then /etc/vivary/policy.kdl)" });
  state = Option.String("--state", { description: "state directory (default $VIVARY_STATE, then /var/lib/vivary for root)" });
  attached = Option.Boolean("--attached", false, { description: "also stop when standard input closes (how viv run ties a broker to its run)" });

  async execute() {
    const code = await runBroker({ policy: resolvePolicyPath(this.policy), state: resolveStateDir(this.state), attached: this.attached });
    // A stopped broker ends here: its log is closed, and nothing it leaves open (the runtime
    // keeps an --attached stdin socket registered) may keep the process, and its lock, alive.
    process.exit(code);
  }
}

export const main = (argv: string[]) => runCli("viv-broker", [BrokerCommand], argv);
