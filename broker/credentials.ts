// The credential stage, between the decision stages (broker/pipeline.ts) and the intent record:
// for a call whose capability needs a secret, find the provider the call uses and the vault id it
// names, open that secret, and hand both to the capability in memory as its call context. A
// missing secret or an unreadable vault refuses that call (exit 69, recorded as a denial at stage
// credential) while calls that need no secret go on. The secret itself is never in a refusal, a
// record field or an error: only its id is.
import type { CallContext } from "../lib/capability.ts";
import { Exit } from "../lib/exit.ts";
import type { Secret } from "../lib/secret.ts";
import type { Policy } from "../policy/model.ts";
import type { Decision, Refusal } from "./pipeline.ts";

/** Where secrets come from: the vault, or a table in a test. */
export interface SecretSource {
  get(id: string): Secret;
  markUsed(id: string): void;
}

export type Credentials =
  | { type: "ready"; context: CallContext; fields: Record<string, string>; basicUsers: string[] }
  | { type: "refuse"; refusal: Refusal };

const refuse = (reason: string, exit: Refusal["exit"] = Exit.unavailable): Credentials => ({
  type: "refuse",
  refusal: { exit, kind: "deny", stage: "credential", reason },
});

const NONE: Credentials = { type: "ready", context: {}, fields: {}, basicUsers: [] };

/** Resolves the call context of an authorized call. `secrets` is asked only when a secret is needed. */
export function resolveCredentials(policy: Policy, d: Extract<Decision, { type: "run" }>, secrets: () => SecretSource): Credentials {
  const cap = d.capability;
  const needsSecret = cap.schema["x-vivary-credential"] !== null;
  const usesProvider = cap.schema["x-vivary-scopes"].includes("provider");
  if (!needsSecret && !usesProvider) return NONE;

  const fields: Record<string, string> = {};
  const context: CallContext = {};
  let credential = d.grant.credentials[0];
  if (usesProvider) {
    const name = cap.provider?.(d.args, d.grant.scopes) ?? d.grant.scopes.provider?.[0] ?? "";
    const p = policy.providers.get(name);
    if (!p || !(d.grant.scopes.provider ?? []).includes(name)) return refuse(`provider '${name}' is not granted`, Exit.denied);
    context.provider = { name: p.name, kind: p.kind, url: p.url, settings: p.settings };
    fields.provider = p.name;
    credential = p.credential;
  }
  if (!needsSecret) return { type: "ready", context, fields, basicUsers: [] };
  if (!credential) return refuse("no credential is configured for this grant", Exit.config);
  fields.credential = credential;
  try {
    const source = secrets();
    context.secret = source.get(credential);
    try {
      source.markUsed(credential);
    } catch {
      /* last-used is metadata: a call is not refused for it */
    }
  } catch (e) {
    return refuse(`credential '${credential}' unavailable: ${(e as Error).message}`);
  }
  return { type: "ready", context, fields, basicUsers: Object.values(context.provider?.settings ?? {}) };
}
