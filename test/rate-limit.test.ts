// The token bucket behind a grant's `rate N per=…` (broker/rate-limit.ts), on a supplied clock.
import { expect, test } from "bun:test";
import { RateLimiter } from "../broker/rate-limit.ts";

const rate = { count: 3, per: "minute", perMs: 60_000 } as const;

test("a full bucket allows `count` calls, then refuses", () => {
  const r = new RateLimiter();
  expect([0, 1, 2, 3].map(() => r.take("a", rate, 0))).toEqual([true, true, true, false]);
});

test("the budget refills continuously and never beyond `count`", () => {
  const r = new RateLimiter();
  for (let i = 0; i < 3; i++) r.take("a", rate, 0);
  expect(r.take("a", rate, 19_999)).toBe(false);
  expect(r.take("a", rate, 20_000)).toBe(true);
  expect([0, 1, 2, 3].map(() => r.take("a", rate, 10_000_000))).toEqual([true, true, true, false]);
});

test("keys are independent and forget() drops an agent's buckets", () => {
  const r = new RateLimiter();
  for (let i = 0; i < 3; i++) r.take("a\0cap", rate, 0);
  expect(r.take("b\0cap", rate, 0)).toBe(true);
  expect(r.take("a\0cap", rate, 0)).toBe(false);
  r.forget("a\0");
  expect(r.take("a\0cap", rate, 0)).toBe(true);
});

test("replaying the calls of the last period rebuilds the bucket; older calls do not count", () => {
  const now = 1_000_000;
  const live = new RateLimiter();
  const times = [now - 70_000, now - 50_000, now - 30_000, now - 10_000];
  for (const t of times) live.take("a", rate, t);
  const restored = new RateLimiter();
  restored.replay("a", rate, times, now);
  // Same state: the next calls are allowed and refused alike.
  const probe = (r: RateLimiter) => [now, now, now, now + 15_000, now + 15_000].map((t) => r.take("a", rate, t));
  expect(probe(restored)).toEqual(probe(live));
  const fresh = new RateLimiter();
  fresh.replay("a", rate, [now - 60_001], now);
  expect([0, 1, 2, 3].map(() => fresh.take("a", rate, now))).toEqual([true, true, true, false]);
});
