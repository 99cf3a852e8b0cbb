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
