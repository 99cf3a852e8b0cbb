// Provider kind "woocommerce": the WooCommerce REST API v3 of a shop (WordPress with
// WooCommerce). Two requests: GET {url}/wp-json/wc/v3/products?sku=SKU, read-only, for the
// product's id and current price (so the approval and the spending limits see the real amount);
// then POST {url}/wp-json/wc/v3/orders with the line item pinned to that price and the shipping
// address. Authentication is HTTP basic auth with the REST API key: the consumer key (a setting,
// the user name) and the consumer secret (from the vault), as WooCommerce documents it for HTTPS.
// Over plain http, which the policy allows to loopback addresses only, the same header is sent
// rather than OAuth 1.0a: the request never leaves the host. Errors are WooCommerce's
// {code, message, data: {status}}; each becomes one line here (69, or 65 for a reply that makes
// no sense). An order refused with such an error (4xx) is a NoEffect: nothing was created.
import { NoEffect, type ProviderConfig } from "../lib/capability.ts";
import { Exit, VivError } from "../lib/exit.ts";
import type { Secret } from "../lib/secret.ts";
import { formatAmount, parseAmount, refuseCurrency } from "../policy/money.ts";
import { httpRequest, oneLine, type HttpReply } from "./http.ts";
import type { ProviderKind } from "./kind.ts";

export const woocommerce: ProviderKind = {
  name: "woocommerce",
  api: "WooCommerce REST API v3 (GET /wp-json/wc/v3/products?sku=SKU, POST /wp-json/wc/v3/orders)",
  urlExample: "https://shop.example.com",
  credentialDoc: "the REST API key's consumer secret (cs_...), sent with the consumer key as HTTP basic auth (also over plain http to a loopback shop, where WooCommerce would otherwise expect OAuth 1.0a)",
  settings: {
    "consumer-key": {
      required: true,
      arg: "KEY",
      example: "ck_0123456789abcdef0123456789abcdef01234567",
      doc: "The REST API key's consumer key: ck_ followed by 40 lowercase hexadecimal digits; the user name of the basic auth.",
      check: (v) => (/^ck_[0-9a-f]{40}$/.test(v) ? null : "is not a consumer key (ck_ and 40 lowercase hexadecimal digits)"),
    },
    currency: {
      required: true,
      arg: "CODE",
      example: "EUR",
      doc: "The shop's currency (ISO 4217), in which its prices are read; an order the shop reports in another currency is an error.",
      check: refuseCurrency,
    },
    "delivery-days": {
      required: false,
      arg: "DAYS",
      example: "3",
      doc: "Days from an order's creation to its estimated delivery, which WooCommerce does not report itself; without it estimated_delivery is null.",
      check: (v) => (/^[1-9][0-9]?$/.test(v) ? null : "is not a whole number of days from 1 to 99"),
    },
  },
};

/** A product as the shop priced it for one call: what the approval shows and the budgets reserve. */
export interface ShopQuote {
  productId: number;
  name: string;
  sku: string;
  quantity: number;
  currency: string;
  unitPrice: bigint;
  total: bigint;
}

export interface ShippingAddress {
  first_name: string;
  last_name: string;
  company?: string;
  address_1: string;
  address_2?: string;
  city: string;
  state?: string;
  postcode: string;
  country: string;
  phone?: string;
}

export interface PlacedOrder {
  id: number;
  total: bigint;
  currency: string;
  created: string;
}

function auth(p: ProviderConfig, secret: Secret): string {
  return `Basic ${Buffer.from(`${p.settings["consumer-key"]}:${secret.reveal()}`).toString("base64")}`;
}

function parseJson(reply: HttpReply): unknown {
  try {
    return JSON.parse(reply.text);
  } catch {
    return undefined;
  }
}

/** A failed reply as one line: WooCommerce's error code and message when it sent them. */
function failure(p: ProviderConfig, what: string, reply: HttpReply, json: unknown): string {
  const o = (json && typeof json === "object" ? json : {}) as Record<string, unknown>;
  if (typeof o.code === "string" && typeof o.message === "string") return `provider '${p.name}' refused ${what}: ${oneLine(o.code)}: ${oneLine(o.message)} (HTTP ${reply.status})`;
  return `provider '${p.name}' failed: HTTP ${reply.status}`;
}

const base = (p: ProviderConfig) => `${p.url}/wp-json/wc/v3`;

/** Looks the product up by SKU and prices `quantity` of it. Read-only. */
export async function quoteWooCommerce(p: ProviderConfig, secret: Secret, sku: string, quantity: number): Promise<ShopQuote> {
  const currency = p.settings.currency!;
  const reply = await httpRequest(p.name, `${base(p)}/products?${new URLSearchParams({ sku })}`, {
    method: "GET",
    headers: { authorization: auth(p, secret), accept: "application/json" },
  });
  const json = parseJson(reply);
  if (reply.status !== 200) throw new VivError(Exit.unavailable, failure(p, "the product lookup", reply, json));
  if (!Array.isArray(json)) throw new VivError(Exit.data, `provider '${p.name}' sent a product list that is not a JSON array (HTTP ${reply.status})`);
  const found = json.filter((x) => x && typeof x === "object" && (x as Record<string, unknown>).sku === sku) as Record<string, unknown>[];
  if (found.length === 0) throw new VivError(Exit.data, `no product with SKU '${sku}' in the shop of provider '${p.name}'`);
  if (found.length > 1) throw new VivError(Exit.data, `provider '${p.name}' lists ${found.length} products with SKU '${sku}'`);
  const prod = found[0]!;
  if (typeof prod.id !== "number" || !Number.isSafeInteger(prod.id) || prod.id < 1) throw new VivError(Exit.data, `provider '${p.name}' sent product '${sku}' without a valid id`);
  if (prod.status !== undefined && prod.status !== "publish") throw new VivError(Exit.data, `product '${sku}' is not published (status '${oneLine(String(prod.status))}')`);
  if (prod.purchasable === false) throw new VivError(Exit.data, `product '${sku}' cannot be bought`);
  if (prod.stock_status === "outofstock") throw new VivError(Exit.data, `product '${sku}' is out of stock`);
  if (typeof prod.price !== "string" || prod.price === "") throw new VivError(Exit.data, `provider '${p.name}' sent product '${sku}' without a price`);
  const price = parseAmount(prod.price, currency);
  if (!price.ok) throw new VivError(Exit.data, `provider '${p.name}' sent a price for '${sku}' that is not an amount in ${currency}: ${price.reason}`);
  // Not shortened here: the broker scrubs the secret from what it shows first, and shortens after.
  const name = typeof prod.name === "string" ? oneLine(prod.name) : sku;
  return { productId: prod.id, name, sku, quantity, currency, unitPrice: price.minor, total: price.minor * BigInt(quantity) };
}

/** Creates the order at the quoted price; `q` is what the operator approved and the budgets reserved. */
export async function createWooCommerceOrder(p: ProviderConfig, secret: Secret, q: ShopQuote, shipping: ShippingAddress): Promise<PlacedOrder> {
  const line = formatAmount(q.total, q.currency);
  const reply = await httpRequest(p.name, `${base(p)}/orders`, {
    method: "POST",
    headers: { authorization: auth(p, secret), "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify({
      currency: q.currency,
      shipping,
      line_items: [{ product_id: q.productId, quantity: q.quantity, subtotal: line, total: line }],
    }),
  });
  const json = parseJson(reply);
  if (reply.status >= 400 && reply.status < 500) {
    const o = (json && typeof json === "object" ? json : {}) as Record<string, unknown>;
    // A documented refusal creates nothing; anything else (5xx, a reply we cannot read) may have.
    if (typeof o.code === "string") throw new NoEffect(Exit.unavailable, failure(p, "the order", reply, json));
  }
  if (reply.status < 200 || reply.status >= 300) throw new VivError(Exit.unavailable, failure(p, "the order", reply, json));
  if (json === undefined) throw new VivError(Exit.data, `provider '${p.name}' sent a reply that is not JSON (HTTP ${reply.status}); the order may exist`);
  const o = (json && typeof json === "object" ? json : {}) as Record<string, unknown>;
  if (typeof o.id !== "number" || !Number.isSafeInteger(o.id) || o.id < 1) throw new VivError(Exit.data, `provider '${p.name}' sent an order without a valid id; the order may exist`);
  if (o.currency !== q.currency) throw new VivError(Exit.data, `provider '${p.name}' reports order ${o.id} in '${oneLine(String(o.currency))}', not ${q.currency}`);
  const total = typeof o.total === "string" ? parseAmount(o.total, q.currency) : null;
  if (!total?.ok) throw new VivError(Exit.data, `provider '${p.name}' sent order ${o.id} without a valid total`);
  if (total.minor !== q.total) throw new VivError(Exit.data, `provider '${p.name}' charged ${formatAmount(total.minor, q.currency)} ${q.currency} for order ${o.id}, not the approved ${line} ${q.currency}`);
  const created = typeof o.date_created_gmt === "string" ? `${o.date_created_gmt}Z` : typeof o.date_created === "string" ? o.date_created : "";
  return { id: o.id, total: total.minor, currency: q.currency, created };
}

/** `delivery-days` after the order's creation, as a date (YYYY-MM-DD), or null. */
export function estimatedDelivery(p: ProviderConfig, created: string, now = Date.now()): string | null {
  const days = p.settings["delivery-days"];
  if (!days) return null;
  const t = Date.parse(created);
  return new Date((Number.isNaN(t) ? now : t) + Number(days) * 86_400_000).toISOString().slice(0, 10);
}
