// Provider kind "twilio": Twilio's Programmable Messaging REST API (2010-04-01). One request,
// POST {url}/2010-04-01/Accounts/{account}/Messages.json, form-encoded To, From and Body, HTTP
// basic auth with the account SID and the auth token from the vault. A reply of 201 carries the
// Message resource (sid, status); an error carries Twilio's error object {code, message,
// more_info, status}. Each becomes a result or one error line here, and nothing else does.
import type { ProviderConfig } from "../lib/capability.ts";
import { Exit, VivError } from "../lib/exit.ts";
import type { Secret } from "../lib/secret.ts";
import { parsePhone } from "../policy/scope.ts";
import { httpRequest, oneLine } from "./http.ts";
import type { ProviderKind } from "./kind.ts";

const ACCOUNT_SID = /^AC[0-9a-f]{32}$/;
const MESSAGE_SID = /^(SM|MM)[0-9a-f]{32}$/;
const STATUS = /^[a-z_-]{1,32}$/;

export const twilio: ProviderKind = {
  name: "twilio",
  api: "Twilio Programmable Messaging REST API, 2010-04-01 (POST /2010-04-01/Accounts/ACCOUNT/Messages.json)",
  urlExample: "https://api.twilio.com",
  credentialDoc: "the account's auth token, sent with the account SID as HTTP basic auth",
  settings: {
    account: {
      required: true,
      arg: "SID",
      example: "AC0123456789abcdef0123456789abcdef",
      doc: "The account SID: AC followed by 32 lowercase hexadecimal digits; the user name of the basic auth.",
      check: (v) => (ACCOUNT_SID.test(v) ? null : "is not an account SID (AC and 32 lowercase hexadecimal digits)"),
    },
    from: {
      required: true,
      arg: "NUMBER",
      example: "+15550100001",
      doc: "The sender: a phone number of the account in international form, sent in E.164.",
      check: (v) => {
        const p = parsePhone(v);
        return p.ok ? null : p.reason;
      },
    },
  },
};

export interface SentMessage {
  sid: string;
  status: string;
}

const refused = (m: string) => new VivError(Exit.unavailable, m);

/** Sends one message; `to` is already in E.164. */
export async function sendTwilioMessage(p: ProviderConfig, secret: Secret, msg: { to: string; body: string }): Promise<SentMessage> {
  const account = p.settings.account!;
  const from = parsePhone(p.settings.from!);
  if (!from.ok) throw new VivError(Exit.config, `provider '${p.name}': from: ${from.reason}`);
  const reply = await httpRequest(p.name, `${p.url}/2010-04-01/Accounts/${account}/Messages.json`, {
    method: "POST",
    headers: {
      authorization: `Basic ${Buffer.from(`${account}:${secret.reveal()}`).toString("base64")}`,
      "content-type": "application/x-www-form-urlencoded",
      accept: "application/json",
    },
    body: new URLSearchParams({ To: msg.to, From: from.e164, Body: msg.body }).toString(),
  });
  let json: unknown;
  try {
    json = JSON.parse(reply.text);
  } catch {
    json = undefined;
  }
  const o = (json && typeof json === "object" ? json : {}) as Record<string, unknown>;
  if (reply.status < 200 || reply.status >= 300) {
    if (typeof o.code === "number" && typeof o.message === "string") {
      throw refused(`provider '${p.name}' refused the message: Twilio error ${o.code}: ${oneLine(o.message)} (HTTP ${reply.status})`);
    }
    throw refused(`provider '${p.name}' failed: HTTP ${reply.status}`);
  }
  if (json === undefined) throw new VivError(Exit.data, `provider '${p.name}' sent a reply that is not JSON (HTTP ${reply.status})`);
  if (typeof o.sid !== "string" || !MESSAGE_SID.test(o.sid)) throw new VivError(Exit.data, `provider '${p.name}' sent a reply without a valid message sid`);
  if (typeof o.status !== "string" || !STATUS.test(o.status)) throw new VivError(Exit.data, `provider '${p.name}' sent a reply without a valid message status`);
  return { sid: o.sid, status: o.status };
}
