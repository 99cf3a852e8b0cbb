// Governed model access: the HTTP endpoint each agent with a model-complete grant reaches its
// model through (a Unix socket of that agent alone, STATE/agents/NAME/run/model.sock, which the
// jail's viv-model-relay serves on 127.0.0.1), and the same access lent to model-complete calls.
// Identity comes from the socket. For each request: the path names a granted provider and one of
// its kind's API paths (providers/model-wire.ts); the model must match the grant's patterns; the
// request's worst case (its output bound plus its size in bytes, which no tokenizer's count of
// its input exceeds) is reserved under the grant's token budget before anything is forwarded, and
// settled to the usage the reply reports. Whatever key the client sent is dropped and the vault's
// injected. The reply streams back as it arrives (server-sent events event by event, scrubbed of
// the key), and the request and the reply are recorded in full, scrubbed, with the token counts.
import { rmSync } from "node:fs";
import type { Server } from "bun";
import type { CallContext } from "../lib/capability.ts";
import { Exit, VivError } from "../lib/exit.ts";
import type { Completion, CompletionRequest, ModelAccess } from "../lib/model.ts";
import { stateLayout } from "../lib/paths.ts";
import type { Secret } from "../lib/secret.ts";
import type { AgentPolicy, Grant, Policy, Provider } from "../policy/model.ts";
import { matchModel } from "../policy/scope.ts";
import { completeAnthropic } from "../providers/anthropic.ts";
import { DEFAULT_MAX_TOKENS, mergeUsage, promptOf, replyOf, sseData, sseEvents, usageIn, type ModelPath, type ModelWire, type Usage } from "../providers/model-wire.ts";
import { completeChat } from "../providers/openai.ts";
import { MODEL_WIRES } from "../providers/registry.ts";
import type { AuditStore } from "./audit.ts";
import type { SecretSource } from "./credentials.ts";
import { scrub } from "./scrub.ts";
import { listenInPlace } from "./socket-in-place.ts";
import { TokenBudgets, type Entry } from "./token-budget.ts";

/** The capability whose grant governs model access, and under whose name its records go. */
export const MODEL_CAP = "model-complete";

export const MODEL_LIMITS = {
  /** A request body larger than this is refused (413). */
  maxRequestBytes: 32 << 20,
  /** A reply is recorded up to this many bytes; past it the record says how much was cut. */
  maxRecordBytes: 16 << 20,
  /** A request that has not finished after this long is cut. */
  timeoutMs: 600_000,
};

export interface GatewayDeps {
  state: string;
  audit: AuditStore;
  policy: () => Policy;
  secrets: () => SecretSource;
  nextConn: () => number;
}

const enc = new TextEncoder();
const JSON_TYPE = { "content-type": "application/json" };
const PASS_HEADERS = ["request-id", "x-request-id", "openai-processing-ms", "anthropic-organization-id"];

const modelGrant = (a: AgentPolicy | undefined): Grant | undefined => a?.grants.get(MODEL_CAP);
const budgetKey = (agent: string) => `${agent}\0${MODEL_CAP}`;

export class ModelGateway {
  private servers = new Map<string, Server<undefined>>();
  readonly tokens = new TokenBudgets();
  private inFlight = 0;
  private idle: (() => void) | null = null;

  constructor(private readonly deps: GatewayDeps) {}

  /** Opens, keeps or closes the agent's model socket as its grant says. */
  listen(agent: AgentPolicy) {
    if (!modelGrant(agent)) return this.stop(agent.name);
    if (this.servers.has(agent.name)) return;
    const path = stateLayout(this.deps.state).agentModelSocket(agent.name);
    const name = agent.name;
    // idleTimeout 0: a streamed reply may be quiet for longer than Bun's default; Bun's types do
    // not list the option for a Unix socket, which it honours.
    const options = (at: string) => ({ unix: at, idleTimeout: 0, maxRequestBodySize: MODEL_LIMITS.maxRequestBytes, fetch: (req: Request) => this.handle(name, req) });
    const access = { mode: 0o600, uid: agent.uid };
    const server = listenInPlace(path, access, (at) => Bun.serve(options(at) as unknown as Parameters<typeof Bun.serve<undefined, never>>[0]) as Server<undefined>);
    this.servers.set(name, server);
  }

  stop(name: string) {
    const s = this.servers.get(name);
    if (!s) return;
    s.stop(true);
    this.servers.delete(name);
    rmSync(stateLayout(this.deps.state).agentModelSocket(name), { force: true });
  }

  /** Stops accepting; resolves once every request in flight has its outcome recorded. */
  drain(): Promise<void> {
    for (const [name, s] of [...this.servers]) {
      s.stop(false);
      this.servers.delete(name);
      rmSync(stateLayout(this.deps.state).agentModelSocket(name), { force: true });
    }
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((r) => (this.idle = r));
  }

  private begin() {
    this.inFlight++;
  }

  private end() {
    if (--this.inFlight === 0 && this.idle) {
      this.idle();
      this.idle = null;
    }
  }

  /**
   * Rebuilds each token budget from the log: every model request of the last period counts with
   * what its outcome record says it used, or with its reservation when no outcome followed.
   */
  restore(only?: ReadonlySet<string>) {
    const withBudget = [...this.deps.policy().agents.values()].filter((a) => modelGrant(a)?.tokenBudget && (!only || only.has(a.name)));
    if (withBudget.length === 0) return;
    const longest = Math.max(...withBudget.map((a) => modelGrant(a)!.tokenBudget!.perMs));
    const entries = new Map<string, Entry[]>();
    const open = new Map<string, Entry>();
    for (const r of this.deps.audit.recentRecords(new Date(Date.now() - longest).toISOString())) {
      if (r.cap !== MODEL_CAP) continue;
      const conn = `${r.agent}\0${r.fields.conn}`;
      if (r.kind === "call") {
        // An endpoint request records its reservation; a model-complete call's follows from its arguments.
        const args = r.fields.args as Record<string, unknown> | undefined;
        const reserved = r.fields.reserved ?? (args ? callReservation({ maxTokens: Number(args.max_tokens ?? 0), prompt: String(args.prompt ?? ""), system: args.system === undefined ? undefined : String(args.system) }) : 0);
        const e = { at: Date.parse(r.ts), amount: Number(reserved) };
        open.set(conn, e);
        entries.set(r.agent, [...(entries.get(r.agent) ?? []), e]);
      } else if (r.kind === "result" || r.kind === "interrupted" || r.kind === "deny") {
        const e = open.get(conn);
        if (e && typeof r.fields.tokens === "number") e.amount = r.fields.tokens;
        if (r.kind !== "deny" || r.fields.stage === "execute") open.delete(conn);
      }
    }
    for (const a of withBudget) {
      const rate = modelGrant(a)!.tokenBudget!;
      this.tokens.replay(budgetKey(a.name), (entries.get(a.name) ?? []).filter((e) => e.at > Date.now() - rate.perMs));
    }
  }

  /**
   * Model access for one model-complete call, with the provider and secret the credential stage
   * resolved; `fields` then holds what its outcome record adds (reservation and usage).
   */
  access(agent: string, grant: Grant, context: CallContext): { model: ModelAccess; fields: Record<string, unknown> } {
    const fields: Record<string, unknown> = {};
    const model: ModelAccess = async (req: CompletionRequest): Promise<Completion> => {
      // Until something is reserved, the outcome spends nothing (a refusal, a missing provider).
      fields.tokens = 0;
      const p = context.provider;
      if (!p || !context.secret) throw new VivError(Exit.unavailable, "no provider configured for this call");
      const reserved = callReservation(req);
      const entry = this.reserve(agent, grant, reserved);
      if (typeof entry === "string") throw new VivError(Exit.temporary, entry);
      fields.reserved = reserved;
      try {
        const done = p.kind === "anthropic" ? await completeAnthropic(p, context.secret, req) : await completeChat(p, context.secret, req);
        const used = done.input_tokens + done.output_tokens;
        if (entry) this.tokens.settle(entry, used);
        delete fields.tokens; // keeps the record's fields in reading order: reserved, then usage
        Object.assign(fields, { input_tokens: done.input_tokens, output_tokens: done.output_tokens, tokens: used });
        return done;
      } catch (e) {
        delete fields.tokens;
        fields.tokens = reserved;
        throw e;
      }
    };
    return { model, fields };
  }

  /** Reserves under the grant's budget: the entry (null with no budget), or why it is refused. */
  private reserve(agent: string, grant: Grant, amount: number): Entry | null | string {
    const rate = grant.tokenBudget;
    if (!rate) return null;
    const entry = this.tokens.reserve(budgetKey(agent), rate, amount);
    if (entry) return entry;
    const used = this.tokens.used(budgetKey(agent), rate);
    return `token budget of ${rate.count} per ${rate.per} would be exceeded: ${used} used or reserved, this request needs ${amount}`;
  }

  private async handle(agentName: string, req: Request): Promise<Response> {
    this.begin();
    let streaming = false;
    try {
      const r = await this.forward(agentName, req);
      streaming = r.streaming;
      return r.response;
    } finally {
      if (!streaming) this.end();
    }
  }

  /** One request through the endpoint. `streaming` says the reply's body still runs (and will end the request). */
  private async forward(agentName: string, req: Request): Promise<{ response: Response; streaming: boolean }> {
    const done = (response: Response) => ({ response, streaming: false });
    const policy = this.deps.policy();
    const agent = policy.agents.get(agentName);
    const grant = modelGrant(agent);
    const url = new URL(req.url);
    const m = /^\/([a-z][a-z0-9-]{0,63})(\/.*)$/.exec(url.pathname);
    const provider = m ? policy.providers.get(m[1]!) : undefined;
    const wire = provider ? MODEL_WIRES.get(provider.kind) : undefined;
    const api = m?.[2] ?? url.pathname;
    const deny = async (status: number, stage: string, exit: number, reason: string, extra: Record<string, unknown> = {}, raw?: Uint8Array) => {
      const body = (wire ?? MODEL_WIRES.get("openai")!).error(status, `vivary: ${reason}`);
      await this.deps.audit.append({ agent: agentName, kind: "deny", cap: MODEL_CAP, fields: { conn: this.deps.nextConn(), via: "endpoint", stage, exit, reason, api, ...extra }, raw: raw ? Buffer.concat([raw, enc.encode(body)]) : enc.encode(body) });
      return done(new Response(body, { status, headers: { ...JSON_TYPE, "x-should-retry": "false" } }));
    };
    if (!grant) return deny(403, "resolve", Exit.denied, `agent '${agentName}' has no '${MODEL_CAP}' grant`);
    if (!m || !provider || !wire || !(grant.scopes.provider ?? []).includes(provider.name)) {
      return deny(404, "authorize", Exit.denied, `provider '${m?.[1] ?? ""}' is not granted; use ${(grant.scopes.provider ?? []).map((p) => `/${p}/v1/...`).join(" or ")}`);
    }
    const path = wire.paths.find((p) => p.path === api);
    if (!path) return deny(404, "resolve", Exit.usage, `${req.method} ${api} is not forwarded for provider kind '${provider.kind}' (only ${wire.paths.map((p) => p.path).join(", ")})`, { provider: provider.name });
    if (req.method !== "POST") return deny(405, "resolve", Exit.usage, `${req.method} ${api}: only POST is forwarded`, { provider: provider.name });

    let bodyText: string;
    try {
      bodyText = await req.text();
    } catch (e) {
      return deny(413, "parse", Exit.data, `request body unreadable: ${(e as Error).message}`, { provider: provider.name });
    }
    const rawIn = enc.encode(bodyText);
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(bodyText);
      if (!json || typeof json !== "object" || Array.isArray(json)) throw new Error("not an object");
    } catch {
      return deny(400, "parse", Exit.data, "request body is not a JSON object", { provider: provider.name }, rawIn);
    }
    const model = json.model;
    if (typeof model !== "string" || !model) return deny(400, "parse", Exit.usage, "request names no model", { provider: provider.name }, rawIn);
    if (!matchModel(model, grant.scopes.model ?? [])) {
      return deny(403, "authorize", Exit.denied, `model '${model}' is not granted (granted: ${(grant.scopes.model ?? []).join(", ")})`, { provider: provider.name, model }, rawIn);
    }
    const bound = this.bound(path, json);
    if (bound === null) return deny(400, "parse", Exit.usage, `request needs ${path.maxFields.join(" or ")}: a whole number of tokens, the most the reply may use`, { provider: provider.name, model }, rawIn);
    const stream = json.stream === true;
    if (stream && path.streamUsage) Object.assign(json, mergeDeep(json, path.streamUsage));
    const forwardText = bound.changed || (stream && path.streamUsage) ? JSON.stringify(json) : bodyText;
    const reserved = bound.tokens + enc.encode(forwardText).length;
    const entry = this.reserve(agentName, grant, reserved);
    if (typeof entry === "string") return deny(429, "budget", Exit.temporary, entry, { provider: provider.name, model, reserved }, rawIn);

    let secret: Secret;
    try {
      const source = this.deps.secrets();
      secret = source.get(provider.credential);
      try {
        source.markUsed(provider.credential);
      } catch {
        /* metadata only */
      }
    } catch (e) {
      if (entry) this.tokens.settle(entry, 0);
      return deny(503, "credential", Exit.unavailable, `credential '${provider.credential}' unavailable: ${(e as Error).message}`, { provider: provider.name, model }, rawIn);
    }
    const conn = this.deps.nextConn();
    const cut = (text: string) => scrub([text], secret.reveal());
    // Only the query parameters the API's path names go on (beta=true from Anthropic's SDKs).
    const query = new URLSearchParams();
    for (const k of path.query ?? []) for (const v of url.searchParams.getAll(k)) query.append(k, v);
    const search = query.size ? `?${query}` : "";
    const fieldsBase = { conn, via: "endpoint", provider: provider.name, credential: provider.credential, api, ...(search ? { query: search.slice(1) } : {}), model, stream, max_tokens: bound.tokens, reserved, prompt: cut(promptOf(json)).texts[0]! };
    await this.deps.audit.append({ agent: agentName, kind: "call", cap: MODEL_CAP, fields: fieldsBase, raw: enc.encode(cut(forwardText).texts[0]!) });

    // A reply cut short (the client left before the final event, the stream broke) may have been
    // billed for more than it reported so far: it spends its whole reservation, or what it reported
    // if that is more.
    const finish = async (status: number, text: string, usage: Usage | null, extra: Record<string, unknown> = {}, cutShort = false) => {
      const reported = usage ? usage.input + usage.output : null;
      const used = cutShort ? Math.max(reserved, reported ?? 0) : reported ?? (status >= 200 && status < 300 ? reserved : 0);
      if (entry) this.tokens.settle(entry, used);
      const s = cut(text);
      let objects: unknown[] = [];
      try {
        objects = text.trimStart().startsWith("{") ? [JSON.parse(text)] : sseData(s.texts[0]!);
      } catch {
        objects = [];
      }
      const fields: Record<string, unknown> = { conn, via: "endpoint", exit: status >= 200 && status < 300 ? Exit.ok : Exit.unavailable, status, input_tokens: usage?.input ?? null, output_tokens: usage?.output ?? null, tokens: used, reserved, reply: cut(replyOf(objects)).texts[0]!, ...extra };
      if (s.count) fields.scrubbed = s.count;
      await this.deps.audit.append({ agent: agentName, kind: "result", cap: MODEL_CAP, fields, raw: enc.encode(s.texts[0]!) });
    };

    let upstream: Response;
    const signal = AbortSignal.timeout(MODEL_LIMITS.timeoutMs);
    try {
      upstream = await fetch(`${provider.url}${api}${search}`, { method: "POST", headers: wire.headers(secret, req.headers), body: forwardText, redirect: "manual", signal });
    } catch (e) {
      const why = signal.aborted ? `no reply within ${MODEL_LIMITS.timeoutMs} ms` : `cannot reach ${new URL(provider.url).origin}: ${(e as Error).message}`;
      await finish(502, "", null, { reason: why });
      return done(new Response(wire.error(502, `vivary: provider '${provider.name}' failed: ${why}`), { status: 502, headers: JSON_TYPE }));
    }
    if (upstream.status >= 300 && upstream.status < 400) {
      await upstream.body?.cancel().catch(() => {});
      const why = `redirect (HTTP ${upstream.status}) refused; redirects are never followed`;
      await finish(502, "", null, { reason: why });
      return done(new Response(wire.error(502, `vivary: provider '${provider.name}' failed: ${why}`), { status: 502, headers: JSON_TYPE }));
    }
    const headers: Record<string, string> = { "content-type": upstream.headers.get("content-type") ?? "application/json" };
    for (const h of PASS_HEADERS) if (upstream.headers.get(h)) headers[h] = upstream.headers.get(h)!;
    const isSse = headers["content-type"]!.includes("text/event-stream");
    const reader = upstream.body?.getReader();

    if (!isSse || !reader) {
      let text = "";
      try {
        text = reader ? await readAll(reader, MODEL_LIMITS.maxRecordBytes) : "";
      } catch (e) {
        await finish(502, text, null, { reason: (e as Error).message });
        return done(new Response(wire.error(502, `vivary: provider '${provider.name}' failed: ${(e as Error).message}`), { status: 502, headers: JSON_TYPE }));
      }
      let usage: Usage | null = null;
      try {
        usage = usageIn(JSON.parse(text));
      } catch {
        /* not JSON: no usage */
      }
      await finish(upstream.status, text, usage);
      return done(new Response(cut(text).texts[0]!, { status: upstream.status, headers }));
    }

    // Server-sent events: forwarded event by event as they arrive, each scrubbed whole.
    const dec = new TextDecoder();
    let pending = "";
    let recorded = "";
    let recordCut = 0;
    let usage: Usage | null = null;
    let ended = false;
    // Set once the API's final event has passed: a client may hang up then, before the upstream
    // stream ends, and the reply it got is whole.
    let whole = false;
    const note = (events: string) => {
      const read = sseEvents(events);
      for (const d of read.data) usage = mergeUsage(usage, usageIn(d));
      whole ||= read.final;
      if (recorded.length + events.length <= MODEL_LIMITS.maxRecordBytes) recorded += events;
      else recordCut += events.length;
    };
    const close = async (reason?: string) => {
      if (ended) return;
      ended = true;
      if (pending) note(pending);
      pending = "";
      await finish(upstream.status, recorded, usage, { ...(recordCut ? { cut_bytes: recordCut } : {}), ...(reason ? { reason } : {}) }, reason !== undefined && !whole).catch(() => {});
      this.end();
    };
    const body = new ReadableStream<Uint8Array>({
      pull: async (ctl) => {
        try {
          for (;;) {
            const { done: over, value } = await reader.read();
            if (over) {
              if (pending) ctl.enqueue(enc.encode(cut(pending).texts[0]!));
              await close();
              ctl.close();
              return;
            }
            pending += dec.decode(value, { stream: true });
            const last = Math.max(pending.lastIndexOf("\n\n"), pending.lastIndexOf("\r\n\r\n"));
            if (last < 0) continue;
            const split = pending.startsWith("\r\n", last) ? last + 4 : last + 2;
            const events = pending.slice(0, split);
            pending = pending.slice(split);
            note(events);
            ctl.enqueue(enc.encode(cut(events).texts[0]!));
            return;
          }
        } catch (e) {
          await close(`stream cut short: ${(e as Error).message}`);
          ctl.error(e);
        }
      },
      cancel: async () => {
        await reader.cancel().catch(() => {});
        await close(whole ? undefined : "the client closed the stream");
      },
    });
    // A client that goes away mid-stream ends the upstream request too.
    req.signal.addEventListener("abort", () => {
      if (ended) return;
      void reader.cancel().catch(() => {});
      void close(whole ? undefined : "the client closed the stream");
    });
    return { response: new Response(body, { status: upstream.status, headers }), streaming: true };
  }

  /** The request's output bound, set to the default where the API lets a request omit it; null if missing. */
  private bound(path: ModelPath, json: Record<string, unknown>): { tokens: number; changed: boolean } | null {
    for (const f of path.maxFields) {
      const v = json[f];
      if (v === undefined || v === null) continue;
      return typeof v === "number" && Number.isInteger(v) && v > 0 ? { tokens: v, changed: false } : null;
    }
    if (!path.defaultField) return null;
    json[path.defaultField] = DEFAULT_MAX_TOKENS;
    return { tokens: DEFAULT_MAX_TOKENS, changed: true };
  }
}

/** What a model-complete call reserves: its output bound plus the bytes of its prompt and system prompt. */
export function callReservation(req: { maxTokens: number; prompt: string; system?: string }): number {
  return req.maxTokens + enc.encode(req.prompt).length + enc.encode(req.system ?? "").length;
}

/** The providers and base URLs of an agent's model endpoint, for `viv run` to put in the jail's environment. */
export function modelEndpoints(policy: Policy, agent: AgentPolicy): { name: string; kind: string }[] {
  const g = modelGrant(agent);
  return (g?.scopes.provider ?? []).map((n) => policy.providers.get(n)).filter((p): p is Provider => !!p).map((p) => ({ name: p.name, kind: p.kind }));
}

function mergeDeep(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k];
    out[k] = v && typeof v === "object" && cur && typeof cur === "object" ? mergeDeep(cur as Record<string, unknown>, v as Record<string, unknown>) : v;
  }
  return out;
}

async function readAll(reader: ReadableStreamDefaultReader<Uint8Array>, max: number): Promise<string> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > max) {
      await reader.cancel().catch(() => {});
      throw new Error(`reply larger than ${max} bytes`);
    }
    chunks.push(value);
  }
  return new TextDecoder().decode(Buffer.concat(chunks));
}
