// Cumulative budgets a capability defines from a call's arguments (spend per day in a currency,
// messages per recipient per day), and the stage that reserves them. A capability says what a
// call costs (Capability.costs, after its read-only quote() when the amount is the provider's
// price); the grant sets the ceilings (policy/budgets.ts). The stage runs after the pure stages
// and before the approval is queued: reserve() checks every ceiling and takes every amount in one
// synchronous step, so calls in flight together can never exceed a ceiling. A reservation is
// released when the call fails before any effect (a denied approval, a refused credential, a
// NoEffect from run) and kept otherwise, an unknown outcome included. Amounts are exact: bigint
// minor units, never floats. Windows roll: a ceiling per day counts what was reserved in the last
// 24 hours. The ledger is rebuilt at start from the log (replay), whose records carry each
// reservation's id and amounts, so a restart refills nothing.
import { randomBytes } from "node:crypto";
import type { CallContext, Cost } from "../lib/capability.ts";
import { Exit, VivError } from "../lib/exit.ts";
import type { AgentPolicy, Ceiling, Grant, Policy } from "../policy/model.ts";
import { formatAmount, parseAmount } from "../policy/money.ts";
import { resolveCredentials, type Credentials, type SecretSource } from "./credentials.ts";
import type { Decision, Refusal } from "./pipeline.ts";
import { scrub } from "./scrub.ts";

interface Entry {
  id: string;
  at: number;
  amount: bigint;
}

/** One reserved amount as a record carries it: the amount as a decimal (money) or a whole number. */
export interface ChargeField {
  budget: string;
  key: string;
  amount: string;
}

export type Reservation =
  | { ok: true; id: string | null; charges: ChargeField[] }
  | { ok: false; exit: number; reason: string; fields: Record<string, unknown> };

/** What an operator is shown of a quoted call, at most; longer is cut visibly, after the scrub. */
const MAX_TARGET_CHARS = 500;

const show = (amount: bigint, c: Ceiling) => (c.measure === "money" ? `${formatAmount(amount, c.currency!)} ${c.currency}` : amount.toString());

export class BudgetLedger {
  private entries = new Map<string, Entry[]>();

  private static key(agent: string, cap: string, budget: string, key: string) {
    return `${agent}\0${cap}\0${budget}\0${key}`;
  }

  /** What is reserved of one budget key within its window ending now (old entries dropped). */
  used(ledgerKey: string, perMs: number, now: number): bigint {
    const list = (this.entries.get(ledgerKey) ?? []).filter((e) => e.at > now - perMs && e.at <= now);
    if (list.length) this.entries.set(ledgerKey, list);
    else this.entries.delete(ledgerKey);
    return list.reduce((s, e) => s + e.amount, 0n);
  }

  /**
   * Checks a call's costs against the grant's ceilings and reserves them all, or none. A cost of a
   * budget the grant sets no ceiling for is not limited. A per-call ceiling refuses with 77 (no
   * later call of that size can pass); a cumulative one with 75 (a later one may).
   */
  reserve(agent: string, grant: Grant, costs: readonly Cost[], now = Date.now()): Reservation {
    const take: { key: string; amount: bigint; charge: ChargeField }[] = [];
    // Per-call ceilings first: a call over one of them can never pass, whatever is used.
    const ordered = [...costs].sort((a, b) => Number(!!grant.budgets?.[a.budget]?.perMs) - Number(!!grant.budgets?.[b.budget]?.perMs));
    for (const cost of ordered) {
      const c = grant.budgets?.[cost.budget];
      if (!c) continue;
      const base = { budget: cost.budget, key: cost.key, amount: show(cost.amount, c), max: show(c.max, c) };
      if (cost.amount < 0n) return { ok: false, exit: Exit.data, reason: `a negative amount for '${cost.budget}'`, fields: base };
      if (c.measure === "money" && cost.unit !== c.currency) {
        const reason = `costs ${formatAmount(cost.amount, cost.unit)} ${cost.unit}, but the grant's '${cost.budget}' is in ${c.currency}`;
        return { ok: false, exit: Exit.denied, reason, fields: { ...base, amount: `${formatAmount(cost.amount, cost.unit)} ${cost.unit}` } };
      }
      if (!c.perMs) {
        if (cost.amount > c.max) return { ok: false, exit: Exit.denied, reason: `${show(cost.amount, c)} is over the '${cost.budget}' limit of ${show(c.max, c)}`, fields: base };
        continue;
      }
      const key = BudgetLedger.key(agent, grant.cap, cost.budget, cost.key);
      const used = this.used(key, c.perMs, now) + take.filter((t) => t.key === key).reduce((s, t) => s + t.amount, 0n);
      if (used + cost.amount > c.max) {
        const reason = `'${cost.budget}' budget of ${show(c.max, c)} per ${c.per}${c.measure === "count" ? ` for '${cost.key}'` : ""} would be exceeded: ${show(used, c)} used, this call ${show(cost.amount, c)}`;
        return { ok: false, exit: Exit.temporary, reason, fields: { ...base, used: show(used, c), per: c.per } };
      }
      take.push({ key, amount: cost.amount, charge: { budget: cost.budget, key: cost.key, amount: c.measure === "money" ? formatAmount(cost.amount, c.currency!) : cost.amount.toString() } });
    }
    if (take.length === 0) return { ok: true, id: null, charges: [] };
    const id = randomBytes(6).toString("hex");
    for (const t of take) {
      const list = this.entries.get(t.key) ?? [];
      list.push({ id, at: now, amount: t.amount });
      this.entries.set(t.key, list);
    }
    return { ok: true, id, charges: take.map((t) => t.charge) };
  }

  /** Gives back everything reserved under `id`: the call it was for failed before any effect. */
  release(id: string) {
    for (const [k, list] of this.entries) {
      const rest = list.filter((e) => e.id !== id);
      if (rest.length !== list.length) this.entries.set(k, rest);
    }
  }

  forget(agent: string) {
    for (const k of this.entries.keys()) if (k.startsWith(`${agent}\0`)) this.entries.delete(k);
  }

  /**
   * Rebuilds the ledger from the log's records of the longest window (oldest first): each record
   * with `charges` and `budget_id` reserved them at its time, unless a later record released that
   * id (`released`) or the approval it waited for (`id` of its approval-request) was not given.
   */
  replay(policy: Policy, records: Iterable<{ ts: string; agent: string; kind: string; cap: string; fields: Record<string, unknown> }>, now = Date.now()) {
    this.entries.clear();
    const all = [...records];
    const released = new Set<string>();
    const refusedApprovals = new Set<string>();
    for (const r of all) {
      if (typeof r.fields.released === "string") released.add(r.fields.released);
      if (r.kind === "approval" && r.fields.decision !== "approve" && typeof r.fields.id === "string") refusedApprovals.add(r.fields.id);
    }
    for (const r of all) {
      const id = r.fields.budget_id;
      const charges = r.fields.charges;
      if (typeof id !== "string" || !Array.isArray(charges) || released.has(id)) continue;
      if (r.kind === "approval-request" && refusedApprovals.has(String(r.fields.id))) continue;
      const grant = policy.agents.get(r.agent)?.grants.get(r.cap);
      const at = Date.parse(r.ts);
      for (const ch of charges as ChargeField[]) {
        const c = grant?.budgets?.[ch.budget];
        if (!c?.perMs || at <= now - c.perMs || at > now) continue;
        let amount: bigint;
        if (c.measure === "money") {
          if (ch.key !== c.currency) continue;
          const a = parseAmount(String(ch.amount), c.currency!);
          if (!a.ok) continue;
          amount = a.minor;
        } else {
          if (!/^[0-9]{1,15}$/.test(String(ch.amount))) continue;
          amount = BigInt(ch.amount);
        }
        const key = BudgetLedger.key(r.agent, r.cap, ch.budget, ch.key);
        const list = this.entries.get(key) ?? [];
        list.push({ id, at, amount });
        this.entries.set(key, list);
      }
    }
  }
}

/** The longest window of any cumulative budget in the policy, in ms (0 when there is none). */
export function longestWindow(agents: Iterable<AgentPolicy>): number {
  let ms = 0;
  for (const a of agents) for (const g of a.grants.values()) for (const c of Object.values(g.budgets ?? {})) ms = Math.max(ms, c.perMs ?? 0);
  return ms;
}

export type Preflight =
  | {
      type: "go";
      /** The credential stage's outcome, when the quote needed it already. */
      credentials: Credentials | null;
      quote: unknown;
      /** What the operator is shown the call acts on, from the quote, scrubbed of the secret. */
      target?: string;
      /** What the call reserved, for the record that follows (approval request or intent). */
      budget: { id: string; fields: { budget_id: string; charges: ChargeField[] } } | null;
    }
  | { type: "refuse"; refusal: Refusal; fields: Record<string, unknown> };

/**
 * The stage between the pure stages and the approval gate, for a capability with budgets or a
 * quote: resolves the credential early when the quote needs it, asks the provider for the price
 * (read-only), and reserves the call's costs. A quote's error line is scrubbed of the secret.
 */
export async function preflight(policy: Policy, d: Extract<Decision, { type: "run" }>, secrets: () => SecretSource, ledger: BudgetLedger, agent: string): Promise<Preflight> {
  const cap = d.capability;
  if (!cap.quote && !cap.costs) return { type: "go", credentials: null, quote: undefined, budget: null };
  let credentials: Credentials | null = null;
  let quote: unknown;
  if (cap.quote) {
    credentials = resolveCredentials(policy, d, secrets);
    if (credentials.type === "refuse") return { type: "refuse", refusal: credentials.refusal, fields: {} };
    const context: CallContext = credentials.context;
    try {
      quote = await cap.quote(d.args, d.grant.scopes, context);
    } catch (e) {
      const err = e instanceof VivError ? e : new VivError(Exit.internal, `internal error: ${(e as Error).message}`);
      const reason = context.secret ? scrub([err.message], context.secret.reveal(), credentials.basicUsers).texts[0]! : err.message;
      return { type: "refuse", refusal: { exit: err.code, kind: "deny", stage: "quote", reason: reason.slice(0, 1000) }, fields: {} };
    }
  }
  // The quote is the provider's words (a product's name): scrubbed before an operator or a record sees it.
  let target: string | undefined;
  if (cap.quote && cap.target) {
    const secret = credentials?.type === "ready" ? credentials.context.secret : undefined;
    target = cap.target(d.args, d.grant.scopes, quote);
    if (secret) target = scrub([target], secret.reveal(), credentials?.type === "ready" ? credentials.basicUsers : []).texts[0]!;
    if (target.length > MAX_TARGET_CHARS) target = `${target.slice(0, MAX_TARGET_CHARS)}…(${target.length} chars)`;
  }
  const costs = cap.costs?.(d.args, d.grant.scopes, quote) ?? [];
  const r = ledger.reserve(agent, d.grant, costs);
  if (!r.ok) return { type: "refuse", refusal: { exit: r.exit as Refusal["exit"], kind: "deny", stage: "budget", reason: r.reason }, fields: r.fields };
  return { type: "go", credentials, quote, target, budget: r.id ? { id: r.id, fields: { budget_id: r.id, charges: r.charges } } : null };
}
