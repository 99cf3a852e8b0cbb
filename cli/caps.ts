// viv caps pin PATH, and the registered capabilities `viv caps` lists: the operator's side of
// third-party capabilities (policy/external.ts). Pinning runs `PATH --help` the way the broker
// will (its own unprivileged uid, cleared environment, timeout, size cap), checks the schema is
// one the broker can govern, and prints the policy node that registers it with the schema's
// digest. Nothing is written: registering is putting that node in the policy.
import { basename } from "node:path";
import { Command, Option } from "clipanion";
import { Exit, VivError } from "../lib/exit.ts";
import { capabilityUid, printedSchema, refuseSchema, sha256 } from "../policy/external.ts";
import { agentUid } from "../policy/load.ts";
import type { ExternalCapability, Policy } from "../policy/model.ts";

export class CapsPinCommand extends Command {
  static override paths = [["caps", "pin"]];
  static override usage = Command.Usage({
    description: "print the policy node that registers an executable as a capability, with its schema's digest",
    details: "Runs `PATH --help` as the capability will run (its own unprivileged uid, cleared environment, cwd /, a timeout), checks the JSON Schema it prints and prints a `capability` node for the policy. The executable's name is the capability's name. Exits 78 when the schema cannot be governed.",
    examples: [["Pin the example capability", "$0 caps pin /usr/local/lib/vivary/text-word-count"]],
  });
  executable = Option.String({ name: "path" });

  async execute() {
    if (!this.executable.startsWith("/")) throw new VivError(Exit.usage, `'${this.executable}' is not an absolute path`);
    const name = basename(this.executable);
    const printed = printedSchema(this.executable, capabilityUid(name, agentUid));
    if ("reason" in printed) throw new VivError(Exit.config, printed.reason);
    let schema: unknown;
    try {
      schema = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(printed.bytes));
    } catch {
      throw new VivError(Exit.config, `'${this.executable} --help' did not print JSON`);
    }
    const why = refuseSchema(name, schema);
    if (why) throw new VivError(Exit.config, `capability '${name}' refused: ${why}`);
    this.context.stdout.write(`capability "${name}" {\n    exec "${this.executable}"\n    schema-sha256 "${sha256(printed.bytes)}"\n}\n`);
    return Exit.ok;
  }
}

/** The registered capabilities of a loaded policy, as `viv caps` lists them. */
export function registered(policy: Policy): ExternalCapability[] {
  return [...(policy.external?.values() ?? [])];
}
