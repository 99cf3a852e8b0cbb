// Exact money arithmetic for budgets and prices: an amount is a bigint of the currency's minor
// units (cents for EUR, yen for JPY, fils for KWD), never a float. Currency codes and their
// number of decimals come from ISO 4217 as the runtime's ICU data knows it (Intl), not from a
// table of our own. Pure; the policy loader, provider kinds and the broker share it.

const CURRENCIES = new Set(Intl.supportedValuesOf("currency"));

/** The currency codes a budget or a shop may name (ISO 4217, upper case). */
export function refuseCurrency(code: string): string | null {
  return /^[A-Z]{3}$/.test(code) && CURRENCIES.has(code) ? null : "is not an ISO 4217 currency code";
}

/** How many decimals the currency's minor unit has (2 for EUR, 0 for JPY, 3 for KWD). */
export function currencyDigits(code: string): number {
  return new Intl.NumberFormat("en", { style: "currency", currency: code }).resolvedOptions().maximumFractionDigits ?? 2;
}

const DECIMAL = /^(0|[1-9][0-9]{0,14})(?:\.([0-9]{1,6}))?$/;

/**
 * Parses a non-negative decimal amount ("12.5", "200.00", "3") into minor units of `currency`.
 * Returns the reason instead when it is not such a number or has more decimals than the currency
 * (nothing is rounded: an amount either is exact in the currency or is refused).
 */
export function parseAmount(text: string, currency: string): { ok: true; minor: bigint } | { ok: false; reason: string } {
  const m = DECIMAL.exec(text);
  if (!m) return { ok: false, reason: `'${text}' is not an amount like 12.50` };
  const digits = currencyDigits(currency);
  const frac = (m[2] ?? "").replace(/0+$/, "");
  if (frac.length > digits) return { ok: false, reason: `'${text}' has more decimals than ${currency} (${digits})` };
  return { ok: true, minor: BigInt(m[1]!) * 10n ** BigInt(digits) + BigInt(frac.padEnd(digits, "0") || "0") };
}

/** Minor units as a decimal amount with the currency's decimals: 2500n EUR is "25.00". */
export function formatAmount(minor: bigint, currency: string): string {
  const digits = currencyDigits(currency);
  const sign = minor < 0n ? "-" : "";
  const abs = (minor < 0n ? -minor : minor).toString().padStart(digits + 1, "0");
  return digits === 0 ? `${sign}${abs}` : `${sign}${abs.slice(0, -digits)}.${abs.slice(-digits)}`;
}
