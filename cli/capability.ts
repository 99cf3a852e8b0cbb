// A built-in capability run as its own program on the host (the executable interface of
// DESIGN.md): `CAP --help` prints the JSON Schema; otherwise argv is parsed against the schema
// and the call runs within the scope the broker hands over in $VIVARY_SCOPE (JSON), never argv.
import { CAPABILITIES } from "../capabilities/registry.ts";
import { parseArgv, renderResult, type Scopes } from "../lib/capability.ts";
import { Exit, VivError } from "../lib/exit.ts";
import { Env } from "../lib/paths.ts";

function scopeFromEnv(): Scopes {
  const raw = process.env[Env.scope];
  if (!raw) throw new VivError(Exit.denied, `no scope granted (${Env.scope} is not set; run it through the broker)`);
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw new VivError(Exit.config, `${Env.scope} is not valid JSON`);
  }
  const ok = v && typeof v === "object" && !Array.isArray(v) && Object.values(v).every((l) => Array.isArray(l) && l.every((s) => typeof s === "string"));
  if (!ok) throw new VivError(Exit.config, `${Env.scope} must map scope kinds to lists of strings`);
  return v as Scopes;
}

export async function main(name: string, argv: string[]): Promise<number> {
  const cap = CAPABILITIES.get(name)!;
  try {
    const parsed = parseArgv(cap.schema, argv);
    if (parsed.help) {
      process.stdout.write(`${JSON.stringify(cap.schema, null, 2)}\n`);
      return Exit.ok;
    }
    const scopes = scopeFromEnv();
    const why = cap.authorize(parsed.args, scopes);
    if (why) throw new VivError(Exit.denied, why);
    process.stdout.write(renderResult(cap, await cap.run(parsed.args, scopes), parsed.args));
    return Exit.ok;
  } catch (e) {
    const err = e instanceof VivError ? e : new VivError(Exit.internal, `internal error: ${(e as Error).message}`);
    process.stderr.write(`${name}: ${err.message}\n`);
    return err.code;
  }
}
