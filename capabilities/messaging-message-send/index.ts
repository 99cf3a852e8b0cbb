// messaging-message-send: one text message to one granted contact, through one of the grant's
// providers. The contact check canonicalizes both sides with libphonenumber-js (policy/scope.ts),
// so spellings of a granted number match and nothing else does. The request itself belongs to the
// provider kind's module; the secret arrives from the broker in the call's context, in memory.
import type { Capability, CapabilitySchema } from "../../lib/capability.ts";
import { Exit, VivError } from "../../lib/exit.ts";
import { sendTwilioMessage } from "../../providers/twilio.ts";
import { matchContact, parsePhone } from "../../policy/scope.ts";
import schemaJson from "./schema.json";
import type { MessagingMessageSendInput, MessagingMessageSendResult } from "./types.ts";

function chosenProvider(args: MessagingMessageSendInput, scopes: Readonly<Record<string, readonly string[]>>): string {
  return args.provider ?? scopes.provider?.[0] ?? "";
}

export const messagingMessageSend: Capability<MessagingMessageSendInput, MessagingMessageSendResult> = {
  schema: schemaJson as CapabilitySchema,
  authorize(args, scopes) {
    const m = matchContact(args.to, scopes.contact ?? []);
    if (!m.ok) return `cannot send to '${args.to}': ${m.reason}`;
    const p = chosenProvider(args, scopes);
    if (!(scopes.provider ?? []).includes(p)) return `cannot send through provider '${p}': not granted`;
    return null;
  },
  provider: chosenProvider,
  /** One message to its recipient, for a grant's `messages max=N per=…`. */
  costs(args) {
    const p = parsePhone(args.to);
    return p.ok ? [{ budget: "messages", key: p.e164, amount: 1n, unit: "" }] : [];
  },
  async run(args, scopes, context) {
    const m = matchContact(args.to, scopes.contact ?? []);
    if (!m.ok) throw new VivError(Exit.denied, `cannot send to '${args.to}': ${m.reason}`);
    const p = context?.provider;
    if (!p || !context.secret) throw new VivError(Exit.unavailable, "no provider configured for this call (run it through the broker)");
    if (p.kind !== "twilio") throw new VivError(Exit.config, `provider '${p.name}' is of kind '${p.kind}', which this capability does not speak`);
    const sent = await sendTwilioMessage(p, context.secret, { to: m.e164, body: args.body });
    return { message_id: sent.sid, status: sent.status };
  },
};
