// Per agent and capability call budgets from a grant's `rate N per=…`: a token bucket that refills
// continuously. take() checks and spends in one step, so concurrent calls cannot overspend. The
// clock is the wall clock, so that a restarted broker can replay() the calls the audit log shows
// within the last period: a bucket holds no more than one period's history, so replaying that
// window from a full bucket rebuilds it exactly, and a restart refills nothing.
import type { Rate } from "../policy/model.ts";

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  private buckets = new Map<string, Bucket>();

  /** Spends one call if the budget allows; returns false when it is exhausted. */
  take(key: string, rate: Rate, now = Date.now()): boolean {
    const b = this.buckets.get(key) ?? { tokens: rate.count, at: now };
    b.tokens = Math.min(rate.count, b.tokens + (Math.max(0, now - b.at) * rate.count) / rate.perMs);
    b.at = now;
    this.buckets.set(key, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Rebuilds a bucket from the times (ms since the epoch) its calls took a token, oldest first. */
  replay(key: string, rate: Rate, takenAt: readonly number[], now = Date.now()) {
    this.buckets.delete(key);
    for (const t of takenAt) if (t > now - rate.perMs && t <= now) this.take(key, rate, t);
  }

  forget(prefix: string) {
    for (const k of this.buckets.keys()) if (k.startsWith(prefix)) this.buckets.delete(k);
  }
}
