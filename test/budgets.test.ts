// Cumulative budgets: the exact money arithmetic (policy/money.ts), the budget nodes of a grant
// as the policy loader reads them (policy/budgets.ts), and the ledger's reservations, windows,
// releases and replay from records (broker/budgets.ts), on a supplied clock.
import { describe, expect, test } from "bun:test";
import { BudgetLedger } from "../broker/budgets.ts";
import { CATALOG } from "../capabilities/registry.ts";
import type { Cost } from "../lib/capability.ts";
import { loadPolicyText } from "../policy/load.ts";
import type { Grant, Policy } from "../policy/model.ts";
import { currencyDigits, formatAmount, parseAmount, refuseCurrency } from "../policy/money.ts";
import { problemsOf } from "./policy-problems.ts";

describe("money", () => {
  const parses: [string, string, bigint | string][] = [
    ["12.50", "EUR", 1250n],
    ["12.5", "EUR", 1250n],
    ["12", "EUR", 1200n],
    ["0.01", "EUR", 1n],
    ["0", "EUR", 0n],
    ["12.500", "EUR", 1250n],
    ["999999999999999.99", "EUR", 99999999999999999n],
    ["1500", "JPY", 1500n],
    ["1.5", "JPY", "'1.5' has more decimals than JPY (0)"],
    ["1.234", "KWD", 1234n],
    ["12.345", "EUR", "'12.345' has more decimals than EUR (2)"],
    ["0.1", "EUR", 10n],
    ["-1.00", "EUR", "'-1.00' is not an amount like 12.50"],
    ["1e3", "EUR", "'1e3' is not an amount like 12.50"],
    ["01.00", "EUR", "'01.00' is not an amount like 12.50"],
    [".5", "EUR", "'.5' is not an amount like 12.50"],
    ["1,50", "EUR", "'1,50' is not an amount like 12.50"],
    [" 1.50", "EUR", "' 1.50' is not an amount like 12.50"],
    ["", "EUR", "'' is not an amount like 12.50"],
  ];
  for (const [text, cur, want] of parses) {
    test(`parseAmount('${text}', ${cur})`, () => {
      const r = parseAmount(text, cur);
      expect(r.ok ? r.minor : r.reason).toBe(want);
    });
  }
  const formats: [bigint, string, string][] = [
    [1250n, "EUR", "12.50"],
    [1n, "EUR", "0.01"],
    [0n, "EUR", "0.00"],
    [99999999999999999n, "EUR", "999999999999999.99"],
    [1500n, "JPY", "1500"],
    [1234n, "KWD", "1.234"],
    [-5n, "EUR", "-0.05"],
  ];
  for (const [minor, cur, want] of formats) test(`formatAmount(${minor}n, ${cur})`, () => expect(formatAmount(minor, cur)).toBe(want));

  test("0.10 + 0.20 is 0.30 exactly, where floats say otherwise", () => {
    const a = parseAmount("0.10", "EUR");
    const b = parseAmount("0.20", "EUR");
    expect(a.ok && b.ok && formatAmount(a.minor + b.minor, "EUR")).toBe("0.30");
    expect(0.1 + 0.2).not.toBe(0.3);
  });

  test("currency codes and decimals come from ISO 4217", () => {
    expect([refuseCurrency("EUR"), refuseCurrency("usd"), refuseCurrency("XXY"), refuseCurrency("EURO")]).toEqual([null, "is not an ISO 4217 currency code", "is not an ISO 4217 currency code", "is not an ISO 4217 currency code"]);
    expect([currencyDigits("EUR"), currencyDigits("JPY"), currencyDigits("KWD")]).toEqual([2, 0, 3]);
  });
});

const PROVIDER = `provider "shop" { kind "woocommerce"; url "https://shop.example.com"; consumer-key "ck_${"0".repeat(40)}"; currency "EUR"; credential "shop-key"; }`;
const grantText = (budgets: string) => `${PROVIDER}
agent "shop-a" {
    grant "commerce-order-create" {
        provider "shop"
        sku "BOOK-*"
        max-quantity "3"
        shipping-address "home" first-name="Jane" last-name="Doe" address-1="1 Main Street" city="Paris" postcode="75001" country="FR"
        ${budgets}
    }
}`;
const load = (text: string) => loadPolicyText([{ file: "p.kdl", text }], CATALOG);
const problems = (text: string) => problemsOf(() => load(text));

describe("budget nodes of a grant", () => {
  test("spend and per-order share the grant's currency, in minor units", () => {
    const g = load(grantText(`spend max="200.00" per="day" currency="EUR"\n per-order max="50"`)).agents.get("shop-a")!.grants.get("commerce-order-create")!;
    expect(g.budgets).toEqual({
      spend: { measure: "money", max: 20000n, maxText: "200.00", currency: "EUR", per: "day", perMs: 86_400_000 },
      "per-order": { measure: "money", max: 5000n, maxText: "50", currency: "EUR" },
    });
    expect(g.scopes["shipping-address/home"]).toEqual([JSON.stringify({ "first-name": "Jane", "last-name": "Doe", "address-1": "1 Main Street", city: "Paris", postcode: "75001", country: "FR" })]);
  });
  const refused: [string, string][] = [
    [`spend max="200.00" per="day"`, "p.kdl:3: grant 'commerce-order-create' needs currency= on one of its spending limits ('spend')"],
    [`spend max="200.00" per="day" currency="EUR"\n per-order max="5" currency="USD"`, "p.kdl:3: grant 'commerce-order-create' names more than one currency (EUR, USD); its spending limits share one"],
    [`spend max="200.001" per="day" currency="EUR"`, "p.kdl:3: 'spend' max '200.001' has more decimals than EUR (2)"],
    [`spend max=200 per="day" currency="EUR"`, `p.kdl:8: 'spend' needs max= an amount in quotes, like max="50.00"`],
    [`spend max="0.00" per="day" currency="EUR"`, `p.kdl:8: 'spend' max '0.00' is not a positive amount like "50.00"`],
    [`spend max="10" per="week" currency="EUR"`, `p.kdl:8: 'spend' needs per="second", "minute", "hour" or "day"`],
    [`spend max="10" currency="EUR"`, `p.kdl:8: 'spend' needs per="second", "minute", "hour" or "day"`],
    [`spend max="10" per="day" currency="EURO"`, "p.kdl:8: currency 'EURO' is not an ISO 4217 currency code"],
    [`per-order max="10" per="day" currency="EUR"`, "p.kdl:8: unknown property 'per' on 'per-order' (expected 'max', 'currency')"],
    [`spend "10"`, "p.kdl:8: 'spend' takes properties only (max=, per=, currency=)"],
    [`spend max="1" per="day" currency="EUR"\n spend max="2" per="day" currency="EUR"`, "p.kdl:9: 'spend' is given twice"],
  ];
  for (const [budgets, want] of refused) test(`refused: ${budgets.replace(/\n/g, ";")}`, () => expect(problems(grantText(budgets))).toEqual([want]));

  test("a shipping address without a required property, or with an unknown one, is refused", () => {
    const text = grantText("").replace(` country="FR"`, ` colour="red"`);
    expect(problems(text)).toEqual(["p.kdl:7: unknown property 'colour' on 'shipping-address' (expected 'first-name', 'last-name', 'company', 'address-1', 'address-2', 'city', 'state', 'postcode', 'country', 'phone')"]);
    expect(problems(grantText("").replace(` country="FR"`, ""))).toEqual(["p.kdl:7: 'shipping-address' needs country="]);
  });

  test("messages per recipient is a count", () => {
    const text = `provider "sms" { kind "twilio"; url "https://api.twilio.com"; account "AC${"0".repeat(32)}"; from "+15550100001"; credential "t"; }
agent "shop-m" { grant "messaging-message-send" { provider "sms"; contact "+15550100000"; messages max=2 per="day"; } }`;
    expect(load(text).agents.get("shop-m")!.grants.get("messaging-message-send")!.budgets).toEqual({ messages: { measure: "count", max: 2n, maxText: "2", per: "day", perMs: 86_400_000 } });
    expect(problems(text.replace("max=2", `max="2"`))).toEqual(["p.kdl:2: 'messages' needs max= a whole number from 1 to 1000000"]);
  });
});

const DAY = 86_400_000;
const grant: Grant = {
  cap: "commerce-order-create",
  scopes: {},
  credentials: [],
  where: "p.kdl:1",
  budgets: {
    spend: { measure: "money", max: 5000n, maxText: "50.00", currency: "EUR", per: "day", perMs: DAY },
    "per-order": { measure: "money", max: 3000n, maxText: "30.00", currency: "EUR" },
  },
};
const order = (minor: bigint, currency = "EUR"): Cost[] => [
  { budget: "spend", key: currency, amount: minor, unit: currency },
  { budget: "per-order", key: currency, amount: minor, unit: currency },
];

describe("ledger", () => {
  test("reservations add up to the ceiling exactly, and the one that crosses it is refused with 75", () => {
    const l = new BudgetLedger();
    const r = [2500n, 2500n, 1n].map((a) => l.reserve("a", grant, order(a), 0));
    expect(r.map((x) => x.ok)).toEqual([true, true, false]);
    expect(r[2]).toEqual({
      ok: false,
      exit: 75,
      reason: "'spend' budget of 50.00 EUR per day would be exceeded: 50.00 EUR used, this call 0.01 EUR",
      fields: { budget: "spend", key: "EUR", amount: "0.01 EUR", max: "50.00 EUR", used: "50.00 EUR", per: "day" },
    });
    expect(r[0]).toEqual({ ok: true, id: expect.stringMatching(/^[0-9a-f]{12}$/), charges: [{ budget: "spend", key: "EUR", amount: "25.00" }] });
  });

  test("a per-order ceiling refuses with 77 and reserves nothing", () => {
    const l = new BudgetLedger();
    const r = l.reserve("a", grant, order(3001n), 0);
    expect(r).toEqual({ ok: false, exit: 77, reason: "30.01 EUR is over the 'per-order' limit of 30.00 EUR", fields: { budget: "per-order", key: "EUR", amount: "30.01 EUR", max: "30.00 EUR" } });
    expect(l.reserve("a", grant, order(3000n), 0).ok).toBe(true);
    expect(l.reserve("a", grant, order(2000n), 0).ok).toBe(true);
  });

  test("a price in another currency is refused", () => {
    const r = new BudgetLedger().reserve("a", grant, order(100n, "USD"), 0);
    expect(r.ok === false && [r.exit, r.reason]).toEqual([77, "costs 1.00 USD, but the grant's 'per-order' is in EUR"]);
  });

  test("a call over both a per-call and a cumulative ceiling is refused for the per-call one (77)", () => {
    const r = new BudgetLedger().reserve("a", grant, order(9000n), 0);
    expect(r.ok === false && [r.exit, r.fields.budget]).toEqual([77, "per-order"]);
  });

  const windows: [string, number, boolean][] = [
    ["within the window", DAY - 1, false],
    ["exactly one window later", DAY, true],
    ["after the window", DAY + 1, true],
  ];
  for (const [name, at, ok] of windows) {
    test(`the window rolls: a second full order ${name} is ${ok ? "allowed" : "refused"}`, () => {
      const l = new BudgetLedger();
      expect(l.reserve("a", { ...grant, budgets: { spend: grant.budgets!.spend! } }, order(5000n), 0).ok).toBe(true);
      expect(l.reserve("a", { ...grant, budgets: { spend: grant.budgets!.spend! } }, order(5000n), at).ok).toBe(ok);
    });
  }

  test("release gives a reservation back; agents and keys are independent", () => {
    const l = new BudgetLedger();
    const a = l.reserve("a", grant, order(3000n), 0);
    expect(l.reserve("a", grant, order(3000n), 0).ok).toBe(false);
    expect(l.reserve("b", grant, order(3000n), 0).ok).toBe(true);
    if (a.ok && a.id) l.release(a.id);
    expect(l.reserve("a", grant, order(3000n), 0).ok).toBe(true);
  });

  test("a call that costs nothing of a limited budget reserves no id", () => {
    expect(new BudgetLedger().reserve("a", grant, [{ budget: "other", key: "x", amount: 5n, unit: "" }], 0)).toEqual({ ok: true, id: null, charges: [] });
  });

  test("replay rebuilds what the log reserved and did not release, within the window", () => {
    const policy = { agents: new Map([["a", { grants: new Map([["commerce-order-create", grant]]) }]]) } as unknown as Policy;
    const t = (ms: number) => new Date(ms).toISOString();
    const now = 10 * DAY;
    const rec = (ms: number, kind: string, fields: Record<string, unknown>) => ({ ts: t(ms), agent: "a", kind, cap: "commerce-order-create", fields });
    const charges = (amount: string) => [{ budget: "spend", key: "EUR", amount }];
    const l = new BudgetLedger();
    l.replay(policy, [
      rec(now - DAY - 5, "call", { budget_id: "old", charges: charges("40.00") }), // outside the window
      rec(now - 1000, "call", { budget_id: "kept", charges: charges("10.00") }), // outcome unknown: kept
      rec(now - 900, "approval-request", { id: "ap1", budget_id: "denied", charges: charges("30.00") }),
      rec(now - 800, "approval", { id: "ap1", decision: "restart" }), // never approved: given back
      rec(now - 700, "call", { budget_id: "failed", charges: charges("30.00") }),
      rec(now - 600, "result", { exit: 69, released: "failed" }), // nothing done: given back
      rec(now - 500, "approval-request", { id: "ap2", budget_id: "approved", charges: charges("15.00") }),
      rec(now - 400, "approval", { id: "ap2", decision: "approve" }),
    ], now);
    // 10.00 + 15.00 reserved: 25.00 left of 50.00.
    expect(l.reserve("a", grant, order(2500n), now).ok).toBe(true);
    expect(l.reserve("a", grant, order(1n), now).ok).toBe(false);
  });
});
