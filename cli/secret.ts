// viv secret set|list|rm: the operator's side of the credential vault (broker/vault.ts). The
// value comes on standard input, never argv; from a terminal it is read with echo off. These
// commands work on the files directly, under the vault's lock, whether or not a broker runs.
import { Command, Option } from "clipanion";
import { refuseSecretId, Vault } from "../broker/vault.ts";
import { stateOption } from "../lib/cli.ts";
import { Exit, VivError } from "../lib/exit.ts";
import { resolvePolicyPath, resolveStateDir, resolveVaultKeyPath } from "../lib/paths.ts";
import { CATALOG } from "../capabilities/registry.ts";
import { loadPolicy, PolicyError } from "../policy/load.ts";
import type { Policy } from "../policy/model.ts";

const MAX_INPUT = 64 * 1024;
const vault = (state: string | undefined) => new Vault(resolveStateDir(state), resolveVaultKeyPath());

/** Reads standard input to its end, bounded. */
async function readPiped(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    size += chunk.length;
    if (size > MAX_INPUT) throw new VivError(Exit.data, `secret on standard input is longer than ${MAX_INPUT} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Reads one line from the terminal with echo off (raw mode); Ctrl-C or Ctrl-D aborts. */
async function readHidden(prompt: string, stderr: NodeJS.WritableStream): Promise<Buffer> {
  const stdin = process.stdin;
  stderr.write(prompt);
  stdin.setRawMode(true);
  const bytes: number[] = [];
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        for (const b of chunk) {
          if (b === 0x0d || b === 0x0a) return done(() => resolve(Buffer.from(bytes)));
          if (b === 0x03 || (b === 0x04 && bytes.length === 0)) return done(() => reject(new VivError(Exit.data, "no secret given")));
          if (b === 0x7f || b === 0x08) bytes.pop();
          else if (bytes.length < MAX_INPUT) bytes.push(b);
        }
      };
      const done = (then: () => void) => {
        stdin.off("data", onData);
        then();
      };
      stdin.on("data", onData);
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    stderr.write("\n");
  }
}

/** The value as given: valid UTF-8, one trailing newline dropped (so `echo TOKEN |` works). */
export function secretFromInput(raw: Buffer): string {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(raw);
  } catch {
    throw new VivError(Exit.data, "secret on standard input is not valid UTF-8");
  }
  text = text.replace(/\r?\n$/, "");
  if (text === "") throw new VivError(Exit.data, "no secret on standard input");
  return text;
}

/** The grants that would use each vault id: named directly, or through a provider. */
export function grantsUsing(policy: Policy): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const add = (id: string, who: string) => out.set(id, [...(out.get(id) ?? []), who]);
  for (const a of policy.agents.values()) {
    for (const g of a.grants.values()) {
      for (const id of g.credentials) add(id, `${a.name}/${g.cap}`);
      for (const name of g.scopes.provider ?? []) {
        const p = policy.providers.get(name);
        if (p && !g.credentials.length) add(p.credential, `${a.name}/${g.cap}/${name}`);
      }
    }
  }
  return out;
}

class SecretSetCommand extends Command {
  static override paths = [["secret", "set"]];
  static override usage = Command.Usage({
    description: "store a secret in the vault; the value is read from standard input",
    details: "From a terminal the value is read with echo off; from a pipe or file, one trailing newline is dropped. The value never goes on the command line.",
    examples: [["Store a Twilio auth token kept in a file", "$0 secret set twilio-main < token.txt"]],
  });
  id = Option.String({ name: "id" });
  state = stateOption();

  async execute() {
    const bad = refuseSecretId(this.id);
    if (bad) throw new VivError(Exit.usage, bad);
    const raw = process.stdin.isTTY ? await readHidden(`secret for '${this.id}': `, this.context.stderr) : await readPiped();
    const what = vault(this.state).set(this.id, secretFromInput(raw));
    this.context.stdout.write(`${this.id}: ${what}\n`);
  }
}

class SecretListCommand extends Command {
  static override paths = [["secret", "list"]];
  static override usage = Command.Usage({
    description: "list the vault's secrets: ids and metadata, never values",
    details: "Each line: the id, then created, updated, last_used and the grants of the policy that use it (AGENT/CAPABILITY, or AGENT/CAPABILITY/PROVIDER).",
    examples: [["List the secrets as NDJSON", "$0 secret list --json"]],
  });
  json = Option.Boolean("--json", false, { description: "print NDJSON: id, created, updated, last_used, grants" });
  policy = Option.String("--policy", { description: "policy whose grants are shown (default $VIVARY_POLICY)" });
  state = stateOption();

  async execute() {
    let grants: Map<string, string[]> | null = null;
    try {
      grants = grantsUsing(loadPolicy(resolvePolicyPath(this.policy), CATALOG));
    } catch (e) {
      if (!(e instanceof PolicyError)) throw e;
      this.context.stderr.write(`viv: grants not shown: ${e.problems[0]}\n`);
    }
    for (const s of vault(this.state).list()) {
      const using = grants ? (grants.get(s.id) ?? []) : null;
      if (this.json) this.context.stdout.write(`${JSON.stringify({ ...s, grants: using })}\n`);
      else this.context.stdout.write(`${s.id}\tcreated=${s.created}\tupdated=${s.updated}\tlast_used=${s.last_used ?? "never"}\tgrants=${using ? using.join(",") || "-" : "?"}\n`);
    }
  }
}

class SecretRmCommand extends Command {
  static override paths = [["secret", "rm"]];
  static override usage = Command.Usage({
    description: "remove a secret from the vault; calls that need it are denied from then on",
    examples: [["Remove a secret", "$0 secret rm twilio-main"]],
  });
  id = Option.String({ name: "id" });
  state = stateOption();

  async execute() {
    vault(this.state).remove(this.id);
  }
}

export const SECRET_COMMANDS = [SecretSetCommand, SecretListCommand, SecretRmCommand];
