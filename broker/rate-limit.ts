// Per agent and capability call budgets from a grant's `rate N per=…`: a token bucket that refills
// continuously. take() checks and spends in one step, so concurrent calls cannot overspend.
import type { Rate } from "../policy/model.ts";

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  private buckets = new Map<string, Bucket>();

  /** Spends one call if the budget allows; returns false when it is exhausted. */
  take(key: string, rate: Rate, now = performance.now()): boolean {
    const b = this.buckets.get(key) ?? { tokens: rate.count, at: now };
    b.tokens = Math.min(rate.count, b.tokens + ((now - b.at) * rate.count) / rate.perMs);
    b.at = now;
    this.buckets.set(key, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  forget(prefix: string) {
    for (const k of this.buckets.keys()) if (k.startsWith(prefix)) this.buckets.delete(k);
  }
}
