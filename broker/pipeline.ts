// The call pipeline as small stages. Each stage before execution is a pure function from the
// call to a next value or a Refusal; decide() chains them. The connection loop (server.ts) owns
// I/O: it audits what decide() returns, runs the capability, audits the outcome, replies.
import { CAPABILITIES } from "../capabilities/registry.ts";
import { externalCapability } from "./external-capability.ts";
import { parseArgv, type Args, type Capability } from "../lib/capability.ts";
import { Exit, VivError, type ExitCode } from "../lib/exit.ts";
import type { AgentPolicy, Grant } from "../policy/model.ts";
import type { RateLimiter } from "./rate-limit.ts";

export interface Refusal {
  exit: ExitCode;
  /** deny: a policy decision (a security event); invalid: a malformed request. */
  kind: "deny" | "invalid";
  stage: string;
  reason: string;
}

export type Decision =
  | { type: "help"; cap: string; schema: unknown }
  | { type: "run"; cap: string; capability: Capability<Args, unknown>; grant: Grant; args: Args }
  | { type: "refuse"; cap: string; refusal: Refusal };

const refuse = (cap: string, exit: ExitCode, kind: Refusal["kind"], stage: string, reason: string): Decision => ({
  type: "refuse",
  cap,
  refusal: { exit, kind, stage, reason },
});

/** resolve → parse → authorize → rate limit. Nothing here touches the host. */
export function decide(agent: AgentPolicy, cap: string, argv: readonly string[], limiter: RateLimiter): Decision {
  const grant = agent.grants.get(cap);
  const capability = grant?.external ? externalCapability(grant.external) : CAPABILITIES.get(cap);
  if (!grant || !capability) return refuse(cap, Exit.denied, "deny", "resolve", `capability '${cap}' is not granted`);

  let parsed;
  try {
    parsed = parseArgv(capability.schema, argv);
  } catch (e) {
    if (e instanceof VivError) return refuse(cap, e.code, "invalid", "parse", e.message);
    throw e;
  }
  if (parsed.help) return { type: "help", cap, schema: capability.schema };

  const why = capability.authorize(parsed.args, grant.scopes);
  if (why) return refuse(cap, Exit.denied, "deny", "authorize", why);

  if (grant.rate && !limiter.take(`${agent.name}\0${cap}`, grant.rate)) {
    return refuse(cap, Exit.temporary, "deny", "rate", `rate limit of ${grant.rate.count} calls per ${grant.rate.per} reached`);
  }
  return { type: "run", cap, capability, grant, args: parsed.args };
}

/** sha256 of the argv as sent (a JSON array), so a record can identify arguments without them. */
export function argvDigest(argv: readonly string[]): string {
  return new Bun.CryptoHasher("sha256").update(JSON.stringify(argv)).digest("hex");
}
