// Token budgets of model grants (`tokens N per="day"`): a hard ceiling over a sliding window. A
// request reserves its worst case (the output bound plus an estimate of its input that no
// tokenizer exceeds) before it is forwarded, and settles to the usage the provider reported once
// the reply ends. reserve() checks and records in one synchronous step, so concurrent requests
// can never spend together more than the window allows: the request that would cross the
// ceiling is refused. The window holds every entry of the last period; replay() rebuilds it from
// the amounts the audit log records, so a restart refills nothing.
import type { Rate } from "../policy/model.ts";

export interface Entry {
  at: number;
  amount: number;
}

export class TokenBudgets {
  private windows = new Map<string, Entry[]>();

  private window(key: string, rate: Rate, now: number): Entry[] {
    const w = (this.windows.get(key) ?? []).filter((e) => e.at > now - rate.perMs);
    this.windows.set(key, w);
    return w;
  }

  /** Tokens spent or reserved in the current window. */
  used(key: string, rate: Rate, now = Date.now()): number {
    return this.window(key, rate, now).reduce((s, e) => s + e.amount, 0);
  }

  /** Reserves `amount` if the window can take it; returns the entry to settle, or null. */
  reserve(key: string, rate: Rate, amount: number, now = Date.now()): Entry | null {
    const w = this.window(key, rate, now);
    if (w.reduce((s, e) => s + e.amount, 0) + amount > rate.count) return null;
    const e = { at: now, amount };
    w.push(e);
    return e;
  }

  /** Replaces a reservation by what the request used. */
  settle(e: Entry, used: number) {
    e.amount = used;
  }

  /** Rebuilds a window from the entries the log shows. */
  replay(key: string, entries: readonly Entry[]) {
    this.windows.set(key, entries.map((e) => ({ ...e })));
  }

  forget(prefix: string) {
    for (const k of this.windows.keys()) if (k.startsWith(prefix)) this.windows.delete(k);
  }
}
