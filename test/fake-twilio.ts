// A loopback server that speaks the part of Twilio's Messages API vivary uses, for tests: POST
// /2010-04-01/Accounts/{AccountSid}/Messages.json with form-encoded To, From and Body and HTTP
// basic auth (account SID : auth token). It checks the credential and answers as Twilio
// documents: 201 with a Message resource, or an error object {code, message, more_info, status}.
// A few bodies ask for misbehaviour, so tests can reach every error path:
//   echo-secret   400 whose message quotes the auth token raw, as basic auth, hex, URL- and JSON-escaped
//   server-error  500 with a text body          garbage   201 that is not JSON
//   no-sid        201 without a message sid      redirect  302 to another host
//   big           201 larger than any reply cap
// Every request is kept (never the token itself), in memory and, when asked, as NDJSON in a file.
// As a program: bun test/fake-twilio.ts --account SID --token-file FILE [--log FILE]; it prints
// its base URL on stdout and serves on an ephemeral loopback port until killed.
import { appendFileSync, readFileSync } from "node:fs";

export interface Received {
  method: string;
  path: string;
  account: string | null;
  auth_ok: boolean;
  to: string | null;
  from: string | null;
  body: string | null;
}

export interface FakeTwilio {
  url: string;
  received: Received[];
  stop(): void;
}

const json = (status: number, v: unknown) => new Response(JSON.stringify(v), { status, headers: { "content-type": "application/json" } });
const twilioError = (status: number, code: number, message: string) =>
  json(status, { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status });

export function startFakeTwilio(opts: { account: string; token: string; log?: string }): FakeTwilio {
  const received: Received[] = [];
  let n = 0;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const url = new URL(req.url);
      const m = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/.exec(url.pathname);
      const auth = req.headers.get("authorization") ?? "";
      const basic = auth.startsWith("Basic ") ? Buffer.from(auth.slice(6), "base64").toString("utf8") : "";
      const authOk = basic === `${opts.account}:${opts.token}` && m?.[1] === opts.account;
      const form = new URLSearchParams(req.method === "POST" ? await req.text() : "");
      const r: Received = { method: req.method, path: url.pathname, account: m?.[1] ?? null, auth_ok: authOk, to: form.get("To"), from: form.get("From"), body: form.get("Body") };
      received.push(r);
      if (opts.log) appendFileSync(opts.log, `${JSON.stringify(r)}\n`);
      if (!m || req.method !== "POST") return twilioError(404, 20404, "The requested resource was not found");
      if (!authOk) return twilioError(401, 20003, "Authenticate");
      if (!r.to) return twilioError(400, 21604, "A 'To' phone number is required.");
      const t = opts.token;
      switch (r.body) {
        case "echo-secret":
          return twilioError(400, 20003, `token ${t} basic ${Buffer.from(`${opts.account}:${t}`).toString("base64")} hex ${Buffer.from(t).toString("hex")} url ${encodeURIComponent(t)} json ${JSON.stringify(t)} b64 ${Buffer.from(t).toString("base64url")}`);
        case "server-error":
          return new Response("upstream exploded", { status: 500 });
        case "garbage":
          return new Response("<Response>not json</Response>", { status: 201 });
        case "no-sid":
          return json(201, { status: "queued" });
        case "redirect":
          return new Response(null, { status: 302, headers: { location: "http://127.0.0.2:9/steal" } });
        case "big":
          return json(201, { sid: `SM${"0".repeat(32)}`, status: "queued", padding: "x".repeat(1 << 20) });
      }
      n += 1;
      return json(201, {
        sid: `SM${n.toString(16).padStart(32, "0")}`,
        account_sid: opts.account,
        to: r.to,
        from: r.from,
        body: r.body,
        status: "queued",
        direction: "outbound-api",
        api_version: "2010-04-01",
        uri: `/2010-04-01/Accounts/${opts.account}/Messages/SM${n.toString(16).padStart(32, "0")}.json`,
      });
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, received, stop: () => server.stop(true) };
}

if (import.meta.main) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const account = arg("--account");
  const tokenFile = arg("--token-file");
  if (!account || !tokenFile) {
    process.stderr.write("fake-twilio: usage: fake-twilio.ts --account SID --token-file FILE [--log FILE]\n");
    process.exit(64);
  }
  const fake = startFakeTwilio({ account, token: readFileSync(tokenFile, "utf8").replace(/\n$/, ""), log: arg("--log") });
  process.stdout.write(`${fake.url}\n`);
}
