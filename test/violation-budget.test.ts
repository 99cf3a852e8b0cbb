// broker/violation-budget.ts: how many protocol violations of an agent are recorded one by one,
// and the one summary that stands for the rest of each window.
import { expect, test } from "bun:test";
import { summaryReason, ViolationBudget, VIOLATION_BUDGET } from "../broker/violation-budget.ts";

const B = { records: 3, windowMs: 1000 };

test("the first violations of a window are recorded; the rest are counted", () => {
  const v = new ViolationBudget(B);
  const got = [0, 1, 2, 3, 4, 5].map((t) => v.admit("a", t).record);
  expect(got).toEqual([true, true, true, false, false, false]);
});

test("the next violation after the window writes the summary first, and starts a new window", () => {
  const v = new ViolationBudget(B);
  for (let t = 0; t < 10; t++) v.admit("a", t);
  expect(v.admit("a", 1000)).toEqual({ record: true, summary: { agent: "a", suppressed: 7, since: 0, until: 1000 } });
  expect(v.admit("a", 1001)).toEqual({ record: true, summary: null });
});

test("a window within its budget has no summary (negative control)", () => {
  const v = new ViolationBudget(B);
  v.admit("a", 0);
  v.admit("a", 1);
  expect(v.admit("a", 5000)).toEqual({ record: true, summary: null });
  expect(v.due(99_999)).toEqual([]);
});

test("agents have budgets of their own", () => {
  const v = new ViolationBudget(B);
  for (let t = 0; t < 10; t++) v.admit("a", t);
  expect(v.admit("b", 11).record).toBe(true);
});

test("a window's summary is due when it ends; a stop flushes the open ones", () => {
  const v = new ViolationBudget(B);
  for (let t = 0; t < 5; t++) v.admit("a", t);
  for (let t = 500; t < 505; t++) v.admit("b", t);
  expect(v.windowEnd("a")).toBe(1000);
  expect(v.due(999)).toEqual([]);
  expect(v.due(1000)).toEqual([{ agent: "a", suppressed: 2, since: 0, until: 1000 }]);
  expect(v.due(1001)).toEqual([]);
  expect(v.flush(1200)).toEqual([{ agent: "b", suppressed: 2, since: 500, until: 1200 }]);
  expect(v.flush(1300)).toEqual([]);
});

test("the documented budget and its reason line", () => {
  expect(VIOLATION_BUDGET).toEqual({ records: 20, windowMs: 60_000 });
  expect(summaryReason({ agent: "a", suppressed: 130, since: 0, until: 1 })).toBe("130 more protocol violations not recorded one by one (at most 20 records per agent per 60 s)");
});
