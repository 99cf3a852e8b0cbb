// The grant nodes that set a capability's own budgets, checked when the policy loads:
//   money, cumulative   spend max="200.00" per="day" currency="EUR"
//   money, per call     per-order max="50.00" [currency="EUR"]
//   count, cumulative   messages max=20 per="day"
// A money ceiling is parsed exactly into minor units of its currency (policy/money.ts); all money
// ceilings of one grant share one currency, named on at least one of them. Pure: the loader
// reports what these return as file:line problems.
import type { Node } from "./kdl.ts";
import type { BudgetFacts, Ceiling, Grant, Rate } from "./model.ts";
import { parseAmount, refuseCurrency } from "./money.ts";

const PER_MS: Record<string, number> = { second: 1000, minute: 60_000, hour: 3_600_000, day: 86_400_000 };
const MAX_COUNT = 1_000_000;

/** Reads one budget node; returns its ceiling, or why it is refused. */
export function loadCeiling(n: Node, name: string, facts: BudgetFacts): Ceiling | string {
  if (n.children.length) return `'${name}' takes no children`;
  if (n.values.length) return `'${name}' takes properties only (max=${facts.cumulative ? ", per=" : ""}${facts.measure === "money" ? ", currency=" : ""})`;
  const allowed = ["max", ...(facts.cumulative ? ["per"] : []), ...(facts.measure === "money" ? ["currency"] : [])];
  for (const k of Object.keys(n.properties)) if (!allowed.includes(k)) return `unknown property '${k}' on '${name}' (expected ${allowed.map((a) => `'${a}'`).join(", ")})`;
  const { max, per, currency } = n.properties;
  const c: Ceiling = { measure: facts.measure, max: 0n, maxText: String(max) };
  if (facts.cumulative) {
    const ms = PER_MS[String(per)];
    if (!ms) return `'${name}' needs per="second", "minute", "hour" or "day"`;
    c.per = per as Rate["per"];
    c.perMs = ms;
  }
  if (facts.measure === "count") {
    if (typeof max !== "number" || !Number.isInteger(max) || max < 1 || max > MAX_COUNT) return `'${name}' needs max= a whole number from 1 to ${MAX_COUNT}`;
    c.max = BigInt(max);
    return c;
  }
  if (currency !== undefined) {
    const why = typeof currency === "string" ? refuseCurrency(currency) : "is not a string";
    if (why) return `currency '${currency}' ${why}`;
    c.currency = currency as string;
  }
  if (typeof max !== "string") return `'${name}' needs max= an amount in quotes, like max="50.00"`;
  // The amount is checked against the currency once the grant's currency is known (settleCurrency).
  if (!/^(0|[1-9][0-9]{0,14})(\.[0-9]{1,6})?$/.test(max) || /^0(\.0*)?$/.test(max)) return `'${name}' max '${max}' is not a positive amount like "50.00"`;
  return c;
}

/**
 * Once every node of a grant is read: gives its money ceilings their one currency and their
 * amounts in minor units. Returns the problems (none when every ceiling is sound).
 */
export function settleCurrency(g: Grant): string[] {
  const money = Object.entries(g.budgets ?? {}).filter(([, c]) => c.measure === "money");
  if (money.length === 0) return [];
  const named = [...new Set(money.map(([, c]) => c.currency).filter((x): x is string => !!x))];
  if (named.length === 0) return [`grant '${g.cap}' needs currency= on one of its spending limits (${money.map(([k]) => `'${k}'`).join(", ")})`];
  if (named.length > 1) return [`grant '${g.cap}' names more than one currency (${named.join(", ")}); its spending limits share one`];
  const problems: string[] = [];
  for (const [name, c] of money) {
    c.currency = named[0]!;
    const a = parseAmount(c.maxText, c.currency);
    if (a.ok) c.max = a.minor;
    else problems.push(`'${name}' max ${a.reason}`);
  }
  return problems;
}
