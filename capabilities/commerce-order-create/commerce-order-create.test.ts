// commerce-order-create and its provider kind "woocommerce" against a loopback server that speaks
// the WooCommerce REST API v3 (test/fake-woocommerce.ts): the scope check, the quote that prices
// the order, its costs against the budgets, the order the shop receives (line item pinned to the
// quoted total, the grant's shipping address, basic auth), and each way the shop can fail, mapped
// to one error line with exit 69, or 65 for a reply that makes no sense; a refused order is a
// NoEffect (the broker gives its reservation back). The man page's policy example loads.
import { afterAll, describe, expect, test } from "bun:test";
import { CATALOG } from "../../capabilities/registry.ts";
import { NoEffect, type Scopes } from "../../lib/capability.ts";
import { VivError } from "../../lib/exit.ts";
import { Secret } from "../../lib/secret.ts";
import { loadPolicyText } from "../../policy/load.ts";
import { matchSku, refuseQuantityBound, refuseSkuPattern } from "../../policy/scope.ts";
import type { ShopQuote } from "../../providers/woocommerce.ts";
import { startFakeWooCommerce } from "../../test/fake-woocommerce.ts";
import { commerceOrderCreate as cap } from "./index.ts";

const KEY = `ck_${"a1".repeat(20)}`;
const SECRET = "cs_canary-5f4e3d2c1b0a";
const fake = startFakeWooCommerce({ key: KEY, secret: SECRET });
afterAll(() => fake.stop());

const home = { "first-name": "Jane", "last-name": "Doe", "address-1": "1 Main Street", city: "Paris", postcode: "75001", country: "FR" };
const scopes: Scopes = {
  provider: ["shop"],
  sku: ["BOOK-*", "PEN-1", "ECHO-SECRET", "SERVER-ERROR", "GARBAGE", "ORDER-*"],
  "max-quantity": ["5", "3"],
  "shipping-address": ["home"],
  "shipping-address/home": [JSON.stringify(home)],
};
const provider = (over: { url?: string; days?: string } = {}) => ({
  name: "shop",
  kind: "woocommerce",
  url: over.url ?? fake.url,
  settings: { "consumer-key": KEY, currency: "EUR", ...(over.days ? { "delivery-days": over.days } : {}) },
});
const args = (over: Record<string, unknown> = {}) => ({ sku: "BOOK-1", quantity: 2, shipping_address_id: "home", confirm: true, ...over }) as never;
const context = (opts: { secret?: string; url?: string; days?: string } = {}) => ({ provider: provider(opts), secret: new Secret(opts.secret ?? SECRET, "shop-key") });

async function failure(p: Promise<unknown>): Promise<[number, string, boolean]> {
  try {
    await p;
  } catch (e) {
    if (e instanceof VivError) return [e.code, e.message, e instanceof NoEffect];
    throw e;
  }
  throw new Error("no error");
}

describe("SKU patterns", () => {
  const matches: [string, string, boolean][] = [
    ["BOOK-1", "BOOK-*", true],
    ["BOOK-", "BOOK-*", true],
    ["BOOK", "BOOK-*", false],
    ["XBOOK-1", "BOOK-*", false],
    ["BOOK-1", "BOOK-1", true],
    ["BOOK-10", "BOOK-1", false],
    ["BOOKX1", "BOOK.1", false],
    ["A-RED-L", "A-*-L", true],
    ["book-1", "BOOK-*", false],
    ["BOOK-1 ", "BOOK-*", false],
    ["BOOK-1/2", "BOOK-*", false],
  ];
  for (const [sku, pattern, ok] of matches) test(`'${sku}' ${ok ? "matches" : "does not match"} '${pattern}'`, () => expect(matchSku(sku, [pattern])).toBe(ok));
  const refused: [string, string | null][] = [
    ["BOOK-*", null],
    ["*", "grants every product; name the SKUs or a prefix such as BOOK-*"],
    ["**", "grants every product; name the SKUs or a prefix such as BOOK-*"],
    ["BOOK ?", "is not a SKU pattern (letters, digits, '.', '_', '-' and '*')"],
    ["", "is not a SKU pattern (letters, digits, '.', '_', '-' and '*')"],
  ];
  for (const [p, why] of refused) test(`pattern '${p}'`, () => expect(refuseSkuPattern(p)).toBe(why));
  test("max-quantity is a whole number from 1 to 1000", () => {
    expect(["1", "1000", "0", "1001", "05", "2.5"].map(refuseQuantityBound)).toEqual([null, null, ...Array(4).fill("is not a whole number from 1 to 1000")]);
  });
});

describe("authorize", () => {
  const cases: [string, Record<string, unknown>, string | null][] = [
    ["a granted SKU by prefix", {}, null],
    ["a SKU granted exactly", { sku: "PEN-1" }, null],
    ["the quantity at the bound (the smallest max-quantity)", { quantity: 3 }, null],
    ["one more than the bound", { quantity: 4 }, "cannot order 4 of 'BOOK-1': at most 3 per order"],
    ["a SKU not granted", { sku: "PEN-2" }, "cannot order SKU 'PEN-2': not granted"],
    ["a SKU that differs only in case", { sku: "book-1" }, "cannot order SKU 'book-1': not granted"],
    ["a SKU with a character no pattern can match", { sku: "BOOK-1/../x" }, "cannot order SKU 'BOOK-1/../x': not granted"],
    ["an address not granted", { shipping_address_id: "work" }, "cannot ship to 'work': not a granted shipping address"],
    ["without --confirm", { confirm: undefined }, "cannot order without --confirm"],
  ];
  for (const [name, over, why] of cases) test(name, () => expect(cap.authorize(args(over), scopes)).toBe(why));
});

test("the quote is the shop's price, exact, and costs the order's total against spend and per-order", async () => {
  const before = fake.received.length;
  const q = (await cap.quote!(args(), scopes, context())) as ShopQuote;
  expect(q).toEqual({ productId: 11, name: "A Small Book", sku: "BOOK-1", quantity: 2, currency: "EUR", unitPrice: 1250n, total: 2500n });
  expect(cap.costs!(args(), scopes, q)).toEqual([
    { budget: "spend", key: "EUR", amount: 2500n, unit: "EUR" },
    { budget: "per-order", key: "EUR", amount: 2500n, unit: "EUR" },
  ]);
  expect(cap.target!(args(), scopes, q)).toBe(`2 x BOOK-1 "A Small Book" at 12.50 EUR = 25.00 EUR, shipped to 'home'`);
  expect(fake.received.slice(before)).toEqual([{ method: "GET", path: "/wp-json/wc/v3/products", sku: "BOOK-1", auth_ok: true, order: null }]);
});

test("the order reaches the shop at the quoted total, with the grant's address and the credential as basic auth", async () => {
  const q = await cap.quote!(args(), scopes, context());
  const before = fake.received.length;
  const r = await cap.run(args(), scopes, { ...context({ days: "3" }), quote: q });
  expect(r).toEqual({ order_id: expect.any(Number), total_amount: "25.00", currency: "EUR", estimated_delivery: expect.stringMatching(/^\d{4}-\d{2}-\d{2}$/) });
  expect(fake.received.slice(before)).toEqual([
    {
      method: "POST",
      path: "/wp-json/wc/v3/orders",
      sku: "BOOK-1",
      auth_ok: true,
      order: {
        currency: "EUR",
        line_items: [{ product_id: 11, quantity: 2, subtotal: "25.00", total: "25.00" }],
        shipping: { first_name: "Jane", last_name: "Doe", address_1: "1 Main Street", city: "Paris", postcode: "75001", country: "FR" },
      },
    },
  ]);
  const noDays = await cap.run(args(), scopes, { ...context(), quote: q });
  expect(noDays.estimated_delivery).toBeNull();
});

test("an order that was never priced is refused before the shop is asked", async () => {
  const before = fake.received.length;
  expect(await failure(Promise.resolve().then(() => cap.run(args(), scopes, context())))).toEqual([69, "the call was not priced (run it through the broker)", true]);
  expect(fake.received.length).toBe(before);
});

describe("the shop failing", () => {
  const quoteOf = (sku: string, opts: { secret?: string; url?: string } = {}) => failure(cap.quote!(args({ sku }), scopes, context(opts)));
  test("a wrong secret is WooCommerce's 401, one line, 69", async () => {
    expect(await quoteOf("BOOK-1", { secret: "cs_wrong" })).toEqual([69, "provider 'shop' refused the product lookup: woocommerce_rest_cannot_view: Sorry, you cannot list resources. (HTTP 401)", false]);
  });
  test("a 500 is 69", async () => expect(await quoteOf("SERVER-ERROR")).toEqual([69, "provider 'shop' failed: HTTP 500", false]));
  test("a reply that is not JSON is 65", async () => expect(await quoteOf("GARBAGE")).toEqual([65, "provider 'shop' sent a product list that is not a JSON array (HTTP 200)", false]));
  test("an unknown SKU is 65", async () => expect(await quoteOf("BOOK-9")).toEqual([65, "no product with SKU 'BOOK-9' in the shop of provider 'shop'", false]));
  test("a shop that is not there is 69", async () => {
    const [code, message] = await quoteOf("BOOK-1", { url: "http://127.0.0.1:9" });
    expect([code, message.startsWith("provider 'shop' failed: cannot reach http://127.0.0.1:9")]).toEqual([69, true]);
  });
  test("an echoed secret is in the error line, for the broker to scrub", async () => {
    const [code, message] = await quoteOf("ECHO-SECRET");
    expect([code, message.includes(SECRET)]).toEqual([69, true]);
  });
  const order = async (sku: string) => {
    const q = await cap.quote!(args({ sku, quantity: 1 }), scopes, context());
    return failure(Promise.resolve().then(() => cap.run(args({ sku, quantity: 1 }), scopes, { ...context(), quote: q })));
  };
  test("an order the shop refuses is a NoEffect", async () => {
    expect(await order("ORDER-REFUSED")).toEqual([69, "provider 'shop' refused the order: woocommerce_rest_invalid_product_id: Product ID provided is invalid. (HTTP 400)", true]);
  });
  test("an order that fails with 500 may exist: not a NoEffect", async () => {
    expect(await order("ORDER-500")).toEqual([69, "provider 'shop' failed: HTTP 500", false]);
  });
});

test("the man page's policy example loads", () => {
  const text = `provider "shop" { kind "woocommerce"; url "https://shop.example.com"; consumer-key "${KEY}"; currency "EUR"; delivery-days "3"; credential "shop-key"; }
agent "shop-doc" {
    grant "commerce-order-create" {
        provider "shop"
        sku "BOOK-*"
        max-quantity "3"
        shipping-address "home" first-name="Jane" last-name="Doe" address-1="1 Main Street" city="Paris" postcode="75001" country="FR"
        rate 30 per="minute"
        spend max="200.00" per="day" currency="EUR"
        per-order max="50.00"
    }
}`;
  const g = loadPolicyText([{ file: "p.kdl", text }], CATALOG).agents.get("shop-doc")!.grants.get("commerce-order-create")!;
  expect(g.approval).toEqual({ timeoutMs: 300_000 });
  expect(g.budgets?.["per-order"]?.max).toBe(5000n);
});
