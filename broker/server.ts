// The broker's main loop: one listening socket per agent (identity is the socket a connection
// came in on), a bounded frame reader per connection, deadlines, and the call path
// decide → record intent → execute → record outcome → reply. Library code below this never logs
// or touches sockets; this file owns both, and audits each frame once.
import { rmSync } from "node:fs";
import type { Socket, UnixSocketListener } from "bun";
import { NoEffect, renderResult, type Args, type CallContext, type Capability, type Scopes } from "../lib/capability.ts";
import { EscapeAttempt } from "../lib/confined-fs.ts";
import { Exit, VivError } from "../lib/exit.ts";
import { decodeBody, encodeFrame, FrameError, PROTOCOL_VERSION, type Frame } from "../lib/frame.ts";
import { resolveVaultKeyPath, stateLayout } from "../lib/paths.ts";
import type { AgentPolicy, Policy } from "../policy/model.ts";
import { prepareAgentDir, removeAgentDir } from "./agent-dir.ts";
import type { AuditEvent, AuditStore } from "./audit.ts";
import { ApprovalQueue, MAX_PENDING_PER_AGENT, type Verdict } from "./approvals.ts";
import { Browsers } from "./browser.ts";
import { BudgetLedger, longestWindow, preflight } from "./budgets.ts";
import { resolveCredentials } from "./credentials.ts";
import { FrameReader } from "./frame-reader.ts";
import { MODEL_CAP, ModelGateway, modelEndpoints } from "./model-gateway.ts";
import { argvDigest, decide, type Decision } from "./pipeline.ts";
import { RateLimiter } from "./rate-limit.ts";
import { scrubOutput } from "./scrub.ts";
import { listenInPlace } from "./socket-in-place.ts";
import { Vault } from "./vault.ts";
import { summaryReason, ViolationBudget, type ViolationSummary } from "./violation-budget.ts";
import { groupPids, killGroup, killUid, type JailGroup, type LimitEvents } from "../lib/cgroup.ts";

/** A jail viv run reported: how it is bounded, and its control group under a cgroup driver. */
export interface JailInfo {
  limits: string;
  group: JailGroup | null;
}

export const LIMITS = {
  helloMs: 2_000,
  frameMs: 2_000,
  idleMs: 60_000,
  connectionsPerAgent: 32,
};

interface Conn {
  id: number;
  agent: string;
  reader: FrameReader;
  gotHello: boolean;
  callInFlight: boolean;
  /** The broker is ending the connection (a violation, a drain) or it ended: read nothing more. */
  closing: boolean;
  /** The connection ended (onClose): nothing more can be written to it. */
  gone: boolean;
  timer: ReturnType<typeof setTimeout> | null;
  timerFor: "hello" | "frame" | "idle" | null;
  chain: Promise<void>;
  out: Uint8Array[];
  /**
   * Settles once the hello is recorded: true when WELCOME was written, false when it could not be
   * (the connection was gone). No call of this connection takes effect before it, none without it.
   */
  welcomed: PromiseWithResolvers<boolean>;
  /** Set by a drain on a connection that was mid-frame: that frame is still read and served. */
  finishing: boolean;
}

type AgentSocket = Socket<Conn>;

interface AgentListener {
  listener: UnixSocketListener<Conn>;
  conns: Set<AgentSocket>;
}

const enc = new TextEncoder();
const concat = (...parts: Uint8Array[]) => Buffer.concat(parts);

export class Broker {
  private listeners = new Map<string, AgentListener>();
  private limiter = new RateLimiter();
  /** Cumulative budgets a capability defines (spend per day, messages per recipient per day). */
  private budgets = new BudgetLedger();
  readonly approvals = new ApprovalQueue();
  /** Connection numbers in records; started past the log's head so they never repeat in one log. */
  private nextConn: number;
  private jails = new Map<string, Map<number, JailInfo>>();
  /** Protocol violations recorded and left unrecorded per agent (broker/violation-budget.ts). */
  private violations = new ViolationBudget();
  private violationTimers = new Map<string, { at: number; timer: ReturnType<typeof setTimeout> }>();
  /** Protocol violations per agent since the broker started, recorded or not. */
  private violationCounts = new Map<string, number>();
  /** Agents stopped by the kill switch stay revoked until the broker restarts. */
  private killed = new Map<string, { by: string; reason: string }>();
  /** Per agent since this broker started: intents recorded, and calls refused. */
  private counts = new Map<string, { calls: number; denials: number }>();
  readonly startedAt = Date.now();
  /** Calls accepted and not yet answered; a stop waits for them (drain). */
  private inFlight = 0;
  private draining = false;
  private drained: (() => void) | null = null;
  /** Listeners stopped by a drain, closed for good by close(). */
  private stopped: UnixSocketListener<Conn>[] = [];
  /** The vault, opened for each call that needs a secret: read afresh, so `viv secret rm` holds at once. */
  private vault = () => new Vault(this.state, resolveVaultKeyPath());
  /** The agents' browsers, started by the first call that reads a page. */
  readonly browsers: Browsers;
  /** The agents' model endpoints, and model access for model-complete calls. */
  readonly models: ModelGateway;

  constructor(
    private policy: Policy,
    private readonly state: string,
    private readonly audit: AuditStore,
    private readonly stubPath: string,
  ) {
    this.nextConn = audit.head.seq + 1;
    this.browsers = new Browsers(state);
    this.models = new ModelGateway({ state, audit, policy: () => this.policy, secrets: this.vault, nextConn: () => this.nextConn++ });
  }

  get policyDigest(): string {
    return this.policy.digest;
  }

  get agents(): ReadonlyMap<string, AgentPolicy> {
    return this.policy.agents;
  }

  /** The granted model providers of an agent's endpoint (name and kind), for the jail's environment. */
  modelEndpoints(agent: string) {
    const a = this.policy.agents.get(agent);
    return a ? modelEndpoints(this.policy, a) : [];
  }

  connections(agent: string): number {
    return this.listeners.get(agent)?.conns.size ?? 0;
  }

  start() {
    this.restoreBudgets();
    this.models.restore();
    this.restoreCumulativeBudgets();
    for (const agent of this.policy.agents.values()) this.listen(agent);
  }

  /**
   * Budgets are state: rebuilds each grant's rate bucket from the calls of the last period that
   * took a token (an intent that needed no approval, an approval request, a call refused for
   * too many waiting approvals, or by its quote or budgets), as the log shows them.
   */
  private restoreBudgets() {
    const rated = [...this.policy.agents.values()].flatMap((a) => [...a.grants.values()].filter((g) => g.rate).map((g) => ({ agent: a.name, grant: g })));
    if (rated.length === 0) return;
    const longest = Math.max(...rated.map((r) => r.grant.rate!.perMs));
    const taken = new Map<string, number[]>();
    for (const r of this.audit.recentRecords(new Date(Date.now() - longest).toISOString(), ["call", "approval-request", "deny"])) {
      const tookToken =
        (r.kind === "call" && r.fields.approval === undefined) ||
        r.kind === "approval-request" ||
        (r.kind === "deny" && r.fields.stage === "approval" && r.fields.approval === undefined) ||
        (r.kind === "deny" && (r.fields.stage === "quote" || r.fields.stage === "budget"));
      if (!tookToken) continue;
      const key = `${r.agent}\0${r.cap}`;
      const times = taken.get(key);
      if (times) times.push(Date.parse(r.ts));
      else taken.set(key, [Date.parse(r.ts)]);
    }
    for (const { agent, grant } of rated) this.limiter.replay(`${agent}\0${grant.cap}`, grant.rate!, taken.get(`${agent}\0${grant.cap}`) ?? []);
  }

  /** Moves the audit log to the archive; the new file's first record continues its chain. */
  rotateLog() {
    return this.audit.rotate();
  }

  /** Cumulative budgets are state too: rebuilt from the reservations of their longest window. */
  private restoreCumulativeBudgets() {
    const window = longestWindow(this.policy.agents.values());
    if (window > 0) this.budgets.replay(this.policy, this.audit.recentRecords(new Date(Date.now() - window).toISOString()));
  }

  /** Swaps in a new, already validated policy: new agents get sockets, removed ones are revoked. */
  async replacePolicy(next: Policy) {
    const old = this.policy;
    this.policy = next;
    for (const name of old.agents.keys()) {
      if (next.agents.has(name)) continue;
      this.browsers.stopAgent(name);
      this.revoke(name);
      this.limiter.forget(`${name}\0`);
      this.models.tokens.forget(`${name}\0`);
      this.budgets.forget(name);
    }
    for (const agent of next.agents.values()) {
      if (this.killed.has(agent.name)) continue;
      if (this.listeners.has(agent.name)) prepareAgentDir(this.state, agent, this.stubPath);
      else this.listen(agent);
      this.models.listen(agent);
    }
    // A token budget new to a grant starts from what the log shows, not from nothing.
    const newBudgets = [...next.agents.values()].filter((a) => a.grants.get(MODEL_CAP)?.tokenBudget && !old.agents.get(a.name)?.grants.get(MODEL_CAP)?.tokenBudget);
    if (newBudgets.length) this.models.restore(new Set(newBudgets.map((a) => a.name)));
    await this.audit.append({ agent: "-", kind: "broker", fields: { event: "policy-reload", policy: next.digest } });
  }

  registerJail(agent: string, pid: number, info: JailInfo = { limits: "rlimit", group: null }) {
    if (!this.jails.has(agent)) this.jails.set(agent, new Map());
    this.jails.get(agent)!.set(pid, info);
  }

  violationsOf(agent: string): number {
    return this.violationCounts.get(agent) ?? 0;
  }

  /** How the agent's running jails are bounded (cgroup2, cgroup1, rlimit), each named once. */
  limitsOf(agent: string): string[] {
    return [...new Set([...(this.jails.get(agent)?.values() ?? [])].map((j) => j.limits))];
  }

  /**
   * A jail ended: records each limit it ran into as kind=limit (the kernel's count, as viv run
   * read it from the jail's group before removing it).
   */
  async jailEnded(agent: string, pid: number, limits: string, events: LimitEvents | null) {
    this.unregisterJail(agent, pid);
    if (!events) return;
    const l = this.policy.agents.get(agent)?.limits ?? {};
    const max = { memory: l.memoryBytes, pids: l.pids, cpu: l.cpu };
    for (const limit of ["memory", "pids", "cpu"] as const) {
      if (events[limit] > 0) await this.audit.append({ agent, kind: "limit", fields: { limit, events: events[limit], driver: limits, jail: pid, ...(max[limit] !== undefined ? { max: max[limit] } : {}) } });
    }
  }

  unregisterJail(agent: string, pid: number) {
    this.jails.get(agent)?.delete(pid);
  }

  /** The kill switch: closes the agent's socket and connections and ends its jails. */
  /** Who stopped an agent with the kill switch, and why; undefined while it is not stopped. */
  killedBy(agent: string) {
    return this.killed.get(agent);
  }

  jailsOf(agent: string): number[] {
    return [...(this.jails.get(agent)?.keys() ?? [])];
  }

  countsOf(agent: string) {
    return this.counts.get(agent) ?? { calls: 0, denials: 0 };
  }

  private count(agent: string, what: "calls" | "denials") {
    const c = this.counts.get(agent) ?? { calls: 0, denials: 0 };
    c[what]++;
    this.counts.set(agent, c);
  }

  /**
   * The kill switch: ends the agent's jails (each jail's whole control group where it has one:
   * lib/cgroup.ts killGroup), denies its waiting calls, revokes its socket. Resolves with the
   * pids that outlived the kill (none when it held).
   */
  async kill(agent: string, by: string, reason = "stopped by the operator"): Promise<number[]> {
    this.killed.set(agent, { by, reason });
    this.approvals.settleAll(agent, { decision: "kill", by, reason: `agent '${agent}' was stopped by the kill switch`, exit: Exit.denied });
    const jails = [...(this.jails.get(agent) ?? new Map<number, JailInfo>())];
    await this.audit.append({ agent, kind: "kill", fields: { by, reason, jails: jails.map(([pid]) => pid) } });
    for (const [pid] of jails) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        /* already gone */
      }
    }
    const left = (await Promise.all(jails.map(([, j]) => (j.group ? killGroup(j.group).catch(() => groupPids(j.group!)) : Promise.resolve([]))))).flat();
    // Jails run as the agent's own uid when the broker is root: none of its processes may stay.
    const uid = this.policy.agents.get(agent)?.uid;
    if (jails.length && uid !== undefined && process.getuid?.() === 0) left.push(...(await killUid(uid)));
    this.jails.delete(agent);
    this.revoke(agent);
    this.browsers.stopAgent(agent);
    return [...new Set(left)];
  }

  /**
   * Stops accepting: no new connection, no new call. Connections with no call in flight close
   * now, except one in the middle of a frame, which is read to the end of that frame (within the
   * frame deadline) and served; each call in flight runs to its end, has its outcome recorded and
   * its reply sent, and then its connection closes. Resolves once no call is in flight.
   */
  drain(): Promise<void> {
    this.draining = true;
    this.flushViolations();
    this.approvals.settleAll(undefined, { decision: "stopping", by: "broker", reason: "the broker is stopping; try again", exit: Exit.temporary });
    for (const [name, l] of [...this.listeners]) {
      for (const s of l.conns) {
        if (s.data.callInFlight || !s.data.reader.midFrame) continue;
        s.data.finishing = true;
        this.inFlight++; // settled by the call it becomes, or by unfinish()
      }
      const busy = [...l.conns].filter((s) => s.data.callInFlight || s.data.finishing);
      for (const s of l.conns) if (!s.data.callInFlight && !s.data.finishing) s.end();
      l.listener.stop(false);
      this.stopped.push(l.listener);
      this.listeners.delete(name);
      rmSync(stateLayout(this.state).agentSocket(name), { force: true });
      for (const s of busy) l.conns.delete(s);
    }
    const models = this.models.drain();
    if (this.inFlight === 0) return models;
    return Promise.all([models, new Promise<void>((resolve) => (this.drained = resolve))]).then(() => {});
  }

  /** After a drain: closes what is left, connections of calls cut short included. */
  close() {
    for (const t of this.violationTimers.values()) clearTimeout(t.timer);
    this.violationTimers.clear();
    for (const l of this.stopped) l.stop(true);
    this.stopped = [];
    this.browsers.stop();
  }

  /** Calls still in flight (after a drain that was cut short, the ones cut). */
  get callsInFlight(): number {
    return this.inFlight;
  }

  private listen(agent: AgentPolicy) {
    prepareAgentDir(this.state, agent, this.stubPath);
    const path = stateLayout(this.state).agentSocket(agent.name);
    const conns = new Set<AgentSocket>();
    const name = agent.name;
    const access = { mode: 0o600, uid: agent.uid };
    const listener = listenInPlace(path, access, (at) =>
      Bun.listen<Conn>({
        unix: at,
        socket: {
          open: (s) => this.onOpen(name, conns, s),
          data: (s, chunk) => this.onData(s, chunk),
          drain: (s) => void this.flushOut(s),
          close: (s) => this.onClose(conns, s),
          error: (s) => this.onClose(conns, s),
        },
      }),
    );
    this.listeners.set(name, { listener, conns });
    this.models.listen(agent);
  }

  /** Closes an agent's socket and connections; its directory goes too once it left the policy. */
  private revoke(name: string, removeDir = true) {
    this.models.stop(name);
    const l = this.listeners.get(name);
    if (!l) return;
    l.listener.stop(true);
    for (const s of l.conns) s.end();
    this.listeners.delete(name);
    rmSync(stateLayout(this.state).agentSocket(name), { force: true });
    if (removeDir && !this.policy.agents.has(name)) removeAgentDir(this.state, name);
  }

  private onOpen(agent: string, conns: Set<AgentSocket>, s: AgentSocket) {
    s.data = {
      id: this.nextConn++,
      agent,
      reader: new FrameReader(),
      gotHello: false,
      callInFlight: false,
      closing: false,
      gone: false,
      timer: null,
      timerFor: null,
      chain: Promise.resolve(),
      out: [],
      welcomed: Promise.withResolvers<boolean>(),
      finishing: false,
    };
    if (conns.size >= LIMITS.connectionsPerAgent) {
      this.violate(s, `more than ${LIMITS.connectionsPerAgent} connections at once`, new Uint8Array(0));
      return;
    }
    conns.add(s);
    this.arm(s, "hello");
  }

  private onClose(conns: Set<AgentSocket>, s: AgentSocket) {
    conns.delete(s);
    if (s.data) {
      s.data.closing = true;
      s.data.gone = true;
      this.unfinish(s);
      this.disarm(s);
      this.approvals.withdraw(s.data.id);
    }
  }

  private arm(s: AgentSocket, what: "hello" | "frame" | "idle") {
    this.disarm(s);
    const ms = what === "hello" ? LIMITS.helloMs : what === "frame" ? LIMITS.frameMs : LIMITS.idleMs;
    s.data.timerFor = what;
    s.data.timer = setTimeout(() => {
      s.data.timer = null;
      if (what === "idle") s.end();
      else this.violate(s, what === "hello" ? `no hello within ${ms} ms` : `incomplete frame after ${ms} ms`, new Uint8Array(0));
    }, ms);
  }

  private disarm(s: AgentSocket) {
    if (s.data.timer) clearTimeout(s.data.timer);
    s.data.timer = null;
    s.data.timerFor = null;
  }

  private onData(s: AgentSocket, chunk: Uint8Array) {
    const c = s.data;
    if (c.closing || (this.draining && !c.finishing)) return;
    for (const ev of c.reader.push(chunk)) {
      if (ev.type === "bad-length") {
        this.violate(s, ev.length === 0 ? "empty frame" : `frame of ${ev.length} bytes exceeds the limit`, ev.header);
        return;
      }
      let frame: Frame;
      try {
        frame = decodeBody(ev.body);
      } catch (e) {
        if (!(e instanceof FrameError)) throw e;
        this.violate(s, e.message, ev.raw);
        return;
      }
      if (!this.accept(s, frame, ev.raw)) return;
    }
    if (c.finishing && !c.reader.midFrame) {
      // A drain let this frame finish; it was not a CALL, so the connection ends here.
      this.unfinish(s);
      return void s.end();
    }
    if (c.reader.midFrame) {
      if (c.timerFor !== "frame" && !(c.timerFor === "hello" && !c.gotHello)) this.arm(s, "frame");
    } else if (c.gotHello && !c.callInFlight) this.arm(s, "idle");
    else if (c.gotHello) this.disarm(s);
  }

  /** Checks a decoded frame against the connection's state and queues its handling. */
  private accept(s: AgentSocket, frame: Frame, raw: Uint8Array): boolean {
    const c = s.data;
    if (frame.type === "hello") {
      if (c.gotHello) return this.violate(s, "second hello", raw), false;
      if (frame.version !== PROTOCOL_VERSION) return this.violate(s, `unsupported protocol version ${frame.version}`, raw), false;
      c.gotHello = true;
      this.enqueue(s, () => this.onHello(s, raw));
      return true;
    }
    if (frame.type !== "call") return this.violate(s, `unexpected ${frame.type} frame from client`, raw), false;
    if (!c.gotHello) return this.violate(s, "call before hello", raw), false;
    if (c.callInFlight) return this.violate(s, "call while another is in flight", raw), false;
    if (this.draining && !c.finishing) return s.end(), false;
    c.callInFlight = true;
    if (c.finishing) c.finishing = false; // counted in flight since the drain began
    else this.inFlight++;
    this.enqueue(s, () => this.onCall(s, frame.cap, frame.args, raw).finally(() => this.callDone()));
    return true;
  }

  /** A connection a drain let finish its frame ends without a call. */
  private unfinish(s: AgentSocket) {
    if (!s.data.finishing) return;
    s.data.finishing = false;
    this.callDone();
  }

  private callDone() {
    this.inFlight--;
    if (this.inFlight === 0 && this.drained) {
      this.drained();
      this.drained = null;
    }
  }

  private enqueue(s: AgentSocket, job: () => Promise<void>) {
    s.data.chain = s.data.chain.then(job).catch((e) => this.fail(s, e));
  }

  /**
   * Queues the hello record and sends WELCOME once it is durable, without holding the
   * connection's queue for it: a CALL that came in the same read is then recorded in the same
   * commit as the hello, so a call from the stub costs one commit less. Records keep wire order.
   */
  private async onHello(s: AgentSocket, raw: Uint8Array) {
    const reply = encodeFrame({ type: "welcome", version: PROTOCOL_VERSION });
    const durable = this.audit.append({ agent: s.data.agent, kind: "hello", fields: { conn: s.data.id, version: PROTOCOL_VERSION }, raw: concat(raw, reply) });
    durable.then(
      // A connection the broker is ending still gets its WELCOME before the ERROR that ends it.
      () => s.data.welcomed.resolve(!s.data.gone && this.send(s, reply)),
      (e) => {
        s.data.welcomed.resolve(false);
        this.fail(s, e);
      },
    );
  }

  private async onCall(s: AgentSocket, cap: string, argv: string[], raw: Uint8Array) {
    const c = s.data;
    const agent = this.policy.agents.get(c.agent);
    if (!agent) return void s.end();
    const d: Decision = decide(agent, cap, argv, this.limiter);
    const digest = argvDigest(argv);
    let reply: Uint8Array;
    if (d.type === "help") {
      reply = result(0, `${JSON.stringify(d.schema, null, 2)}\n`, "");
      await this.audit.append({ agent: c.agent, kind: "help", cap, fields: { conn: c.id }, raw: concat(raw, reply) });
    } else if (d.type === "refuse") {
      const r = d.refusal;
      this.count(c.agent, "denials");
      reply = result(r.exit, "", `${cap}: ${r.reason}\n`);
      await this.audit.append({ agent: c.agent, kind: r.kind, cap, fields: { conn: c.id, stage: r.stage, exit: r.exit, reason: r.reason, args_sha256: digest }, raw: concat(raw, reply) });
    } else {
      // quote and budgets (broker/budgets.ts) → approval gate → credential → intent → execute.
      const pre = await preflight(this.policy, d, this.vault, this.budgets, c.agent);
      const budget = pre.type === "go" ? pre.budget : null;
      const gate = pre.type === "go" && d.grant.approval ? await this.approvalGate(c, d, digest, raw, pre) : null;
      // After a wait for approval the vault is read again, so a secret removed meanwhile holds.
      const cred = pre.type === "refuse" || (gate && "refused" in gate) ? null : ((!gate && pre.credentials) || resolveCredentials(this.policy, d, this.vault));
      if (pre.type === "refuse") {
        const r = pre.refusal;
        this.count(c.agent, "denials");
        reply = result(r.exit, "", `${cap}: ${r.reason}\n`);
        await this.audit.append({ agent: c.agent, kind: r.kind, cap, fields: { conn: c.id, stage: r.stage, exit: r.exit, reason: r.reason, args_sha256: digest, ...pre.fields }, raw: concat(raw, reply) });
      } else if (gate && "refused" in gate) {
        reply = gate.refused;
        this.count(c.agent, "denials");
      } else if (cred!.type === "refuse") {
        const r = cred!.refusal;
        this.count(c.agent, "denials");
        if (budget) this.budgets.release(budget.id);
        reply = result(r.exit, "", `${cap}: ${r.reason}\n`);
        await this.audit.append({ agent: c.agent, kind: r.kind, cap, fields: { conn: c.id, stage: r.stage, exit: r.exit, reason: r.reason, args_sha256: digest, ...(budget ? { released: budget.id } : {}) }, raw: concat(raw, reply) });
      } else {
        const ready = cred as Extract<typeof cred, { type: "ready" }>;
        this.count(c.agent, "calls");
        const approval = gate ? { approval: gate.id, request_sha256: gate.request } : {};
        // The reservation is in the approval request when there was one, else in the intent.
        const reserved = budget ? (gate ? { budget_id: budget.id } : budget.fields) : {};
        const intent: AuditEvent = { agent: c.agent, kind: "call", cap, fields: { conn: c.id, args: d.args, args_sha256: digest, ...approval, ...reserved, ...ready.fields }, raw };
        // A read-only call has no effect before its reply: its intent is committed with its outcome.
        const deferIntent = d.capability.readOnly === true && !gate && !budget;
        if (!deferIntent) await this.audit.append(intent);
        const context = pre.quote === undefined ? ready.context : { ...ready.context, quote: pre.quote };
        // Nothing takes effect before the connection's WELCOME is out: a client that loses the
        // connection before WELCOME may send its call again (vivary-protocol(7)), so a call whose
        // WELCOME could not be written is not run at all. The hello was committed no later than
        // the intent, so this waits for nothing but a write.
        const welcomed = deferIntent || (await c.welcomed.promise);
        if (welcomed) reply = await this.execute(c, agent, cap, d.capability, d.args, d.grant.scopes, digest, context, ready.basicUsers, budget?.id, deferIntent ? intent : undefined);
        else reply = await this.notRun(c, cap, budget?.id);
      }
    }
    c.callInFlight = false;
    if (!c.closing) {
      this.send(s, reply);
      if (this.draining) s.end();
      else if (!c.reader.midFrame) this.arm(s, "idle");
    }
  }

  /**
   * The approval gate, after the pure stages and before the intent: holds the call until it is
   * decided, recording the request and the decision. Returns the approval it ran under, or the
   * refusal to send (recorded).
   */
  private async approvalGate(c: Conn, d: Extract<Decision, { type: "run" }>, digest: string, raw: Uint8Array, pre?: { target?: string; budget: { id: string; fields: Record<string, unknown> } | null }): Promise<{ id: string; request: string } | { refused: Uint8Array }> {
    const cap = d.cap;
    const refuse = async (exit: number, reason: string, extra: Record<string, unknown> = {}) => {
      if (pre?.budget) {
        this.budgets.release(pre.budget.id);
        extra = { ...extra, released: pre.budget.id };
      }
      const reply = result(exit, "", `${cap}: ${reason}\n`);
      await this.audit.append({ agent: c.agent, kind: "deny", cap, fields: { conn: c.id, stage: "approval", exit, reason, args_sha256: digest, ...extra }, raw: reply });
      return { refused: reply };
    };
    if (this.approvals.count(c.agent) >= MAX_PENDING_PER_AGENT) {
      return await refuse(Exit.temporary, `too many calls of agent '${c.agent}' wait for approval (at most ${MAX_PENDING_PER_AGENT})`);
    }
    const risk = d.capability.schema["x-vivary-risk"];
    const target = pre?.target ?? d.capability.target?.(d.args, d.grant.scopes) ?? "-";
    const approval = d.grant.approval!;
    const { view, decided } = this.approvals.request({ agent: c.agent, cap, risk, target, args: d.args, argsDigest: digest, conn: c.id }, approval);
    await this.audit.append({
      agent: c.agent,
      kind: "approval-request",
      cap,
      fields: { conn: c.id, id: view.id, risk, target, args: d.args, args_sha256: digest, request_sha256: view.request_sha256, timeout_ms: approval.timeoutMs, ...(approval.via ? { via: approval.via } : {}), ...(pre?.budget?.fields ?? {}) },
      raw,
    });
    const v: Verdict = await decided;
    const decision = { conn: c.id, id: view.id, decision: v.decision, by: v.by, ...(v.who ? { who: v.who } : {}), ...("reason" in v ? { reason: v.reason } : {}), request_sha256: view.request_sha256 };
    await this.audit.append({ agent: c.agent, kind: "approval", cap, fields: decision });
    if (v.decision === "approve") return { id: view.id, request: view.request_sha256 };
    return await refuse(v.exit, v.reason, { approval: view.id });
  }

  /**
   * Runs an authorized built-in call and records its outcome before the reply goes out. A
   * built-in is bounded by its own limits (size, confined syscalls), so it runs to completion:
   * the outcome recorded is always what happened. Output of a call that held a secret is
   * scrubbed of it (broker/scrub.ts) before it is recorded or sent, and the record says how often.
   * A call that reads the web borrows the agent's browser; what the browser's proxy refused
   * during the call goes into the one result record. With `intent` (a read-only call, whose intent
   * was not recorded before it ran), the intent and the outcome are queued together, so they land
   * in one commit, intent first, and the reply waits for both.
   */
  private async execute(c: Conn, agent: AgentPolicy, cap: string, capability: Capability<Args, unknown>, args: Args, scopes: Scopes, digest: string, credential: CallContext = {}, basicUsers: string[] = [], budgetId?: string, intent?: AuditEvent): Promise<Uint8Array> {
    let exit: number = Exit.ok;
    let stdout = "";
    let stderr = "";
    let escape: string | null = null;
    let released = false;
    // Only a capability that reads URLs is lent the agent's browser; no other call touches it.
    const lease = capability.schema["x-vivary-scopes"].includes("url") ? this.browsers.lease(agent.name, agent.uid, scopes.url ?? []) : null;
    const context: CallContext = lease ? { ...credential, browser: lease.open } : { ...credential };
    // model-complete borrows the model access of the agent's endpoint: the same grant and token budget.
    const model = cap === MODEL_CAP && agent.grants.get(cap) ? this.models.access(agent.name, agent.grants.get(cap)!, credential) : null;
    if (model) context.model = model.model;
    let blocked: string[] = [];
    try {
      stdout = renderResult(capability, await capability.run(args, scopes, context), args);
    } catch (e) {
      const err = e instanceof VivError ? e : new VivError(Exit.internal, `internal error: ${(e as Error).message}`);
      exit = err.code;
      stderr = `${cap}: ${err.message}\n`;
      if (e instanceof EscapeAttempt) escape = err.message;
      if (budgetId && (e instanceof NoEffect || e instanceof EscapeAttempt)) {
        this.budgets.release(budgetId);
        released = true;
      }
    } finally {
      blocked = lease ? lease.end().map((b) => `${b.dest} (${b.reason})`) : [];
    }
    const scrubbed = context.secret ? scrubOutput(stdout, stderr, context.secret.reveal(), basicUsers) : null;
    if (scrubbed) ({ stdout, stderr } = scrubbed);
    const reply = result(exit, stdout, stderr);
    const fields: Record<string, unknown> = {
      ...(escape ? { conn: c.id, stage: "execute", exit, reason: escape, args_sha256: digest } : { conn: c.id, exit }),
      ...(scrubbed ? { scrubbed: scrubbed.count } : {}),
    };
    if (blocked.length) fields.blocked = blocked;
    if (model) Object.assign(fields, model.fields);
    if (released) fields.released = budgetId;
    const recorded = intent ? this.audit.append(intent) : null;
    const outcome = this.audit.append({ agent: c.agent, kind: escape ? "deny" : "result", cap, fields, raw: reply });
    await Promise.all([recorded, outcome]);
    return reply;
  }

  /**
   * The outcome of a call whose connection was gone before its WELCOME could be written: not
   * run (69), its reservation released; its client, if it lives, sends it again.
   */
  private async notRun(c: Conn, cap: string, budgetId?: string): Promise<Uint8Array> {
    if (budgetId) this.budgets.release(budgetId);
    const reason = "the connection closed before the broker's welcome; the call was not run";
    const reply = result(Exit.unavailable, "", `${cap}: ${reason}\n`);
    await this.audit.append({ agent: c.agent, kind: "result", cap, fields: { conn: c.id, exit: Exit.unavailable, reason, ...(budgetId ? { released: budgetId } : {}) }, raw: reply });
    return reply;
  }

  /**
   * A protocol violation: recorded as a security event within the agent's violation budget
   * (beyond it only counted, and summed up in one record), then an ERROR frame and the door.
   */
  private violate(s: AgentSocket, reason: string, raw: Uint8Array) {
    const c = s.data;
    if (c.closing) return;
    c.closing = true;
    this.disarm(s);
    const reply = encodeFrame({ type: "error", exit: Exit.protocol, message: reason });
    this.violationCounts.set(c.agent, (this.violationCounts.get(c.agent) ?? 0) + 1);
    const { record, summary } = this.violations.admit(c.agent, Date.now());
    if (!record) this.armViolationSummary(c.agent);
    this.enqueue(s, async () => {
      if (summary) await this.recordViolationSummary(summary);
      if (record) await this.audit.append({ agent: c.agent, kind: "protocol", fields: { conn: c.id, reason }, raw: concat(raw, reply) });
      this.send(s, reply);
      s.end();
    });
  }

  /** Writes the summary of the agent's violation window when it ends, if nothing else does first. */
  private armViolationSummary(agent: string) {
    const at = this.violations.windowEnd(agent);
    const t = this.violationTimers.get(agent);
    if (at === null || t?.at === at) return;
    if (t) clearTimeout(t.timer);
    const timer = setTimeout(() => {
      this.violationTimers.delete(agent);
      for (const sum of this.violations.due(Date.now())) void this.recordViolationSummary(sum);
    }, Math.max(0, at - Date.now()));
    this.violationTimers.set(agent, { at, timer });
  }

  private flushViolations() {
    for (const t of this.violationTimers.values()) clearTimeout(t.timer);
    this.violationTimers.clear();
    for (const sum of this.violations.flush(Date.now())) void this.recordViolationSummary(sum);
  }

  private recordViolationSummary(sum: ViolationSummary): Promise<unknown> {
    const fields = { suppressed: sum.suppressed, since: new Date(sum.since).toISOString(), until: new Date(sum.until).toISOString(), reason: summaryReason(sum) };
    return this.audit.append({ agent: sum.agent, kind: "protocol", fields }).catch((e) => process.stderr.write(`viv-broker: ${(e as Error).message}\n`));
  }

  /** An unexpected failure on one connection (the audit log refusing a write, say): fail closed. */
  private fail(s: AgentSocket, e: unknown) {
    process.stderr.write(`viv-broker: connection ${s.data.id} of agent '${s.data.agent}' failed: ${(e as Error).message}\n`);
    s.data.closing = true;
    this.send(s, encodeFrame({ type: "error", exit: Exit.internal, message: "internal error" }));
    s.end();
  }

  /** Writes `bytes`, or queues what the socket cannot take yet; false when the socket is gone. */
  private send(s: AgentSocket, bytes: Uint8Array): boolean {
    s.data.out.push(bytes);
    return this.flushOut(s);
  }

  private flushOut(s: AgentSocket): boolean {
    const q = s.data.out;
    while (q.length) {
      const head = q[0]!;
      const n = s.write(head);
      if (n < 0) {
        q.length = 0;
        return false;
      }
      if (n < head.length) {
        q[0] = head.subarray(n);
        return true;
      }
      q.shift();
    }
    return true;
  }
}

function result(exit: number, stdout: string, stderr: string): Uint8Array {
  return encodeFrame({ type: "result", exit, stdout: enc.encode(stdout), stderr: enc.encode(stderr) });
}
