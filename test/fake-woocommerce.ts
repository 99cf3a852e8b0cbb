// A loopback server that speaks the part of the WooCommerce REST API v3 vivary uses, for tests:
// GET /wp-json/wc/v3/products?sku=SKU (a JSON array of products) and POST /wp-json/wc/v3/orders
// (201 with the order), with HTTP basic auth (consumer key : consumer secret). It checks the
// credential and answers as WooCommerce does: errors are {code, message, data: {status}}, a bad
// credential is 401 woocommerce_rest_cannot_view (lists) or woocommerce_rest_cannot_create
// (orders). The order's total is the sum of its line items' totals, as the request set them.
// Some SKUs ask for misbehaviour, so tests can reach every error path:
//   ECHO-SECRET   400 whose message quotes the secret raw, as basic auth, hex, URL- and JSON-escaped
//   SERVER-ERROR  500 with a text body on the lookup      GARBAGE      200 lookup that is not JSON
//   SLOW          a lookup that never answers             ORDER-500    priced, its order fails with 500
//   ORDER-REFUSED priced, its order is refused (400 woocommerce_rest_invalid_product_id)
//   ORDER-ECHO    priced, its order's reply is 201 and echoes the secret in a note
//   ECHO-NAME     a product whose name echoes the secret (the operator sees names when approving)
// Every request is kept (never the secret itself), in memory and, when asked, as NDJSON in a file.
// As a program: bun test/fake-woocommerce.ts --key CK --secret-file FILE [--log FILE]; it prints
// its base URL on stdout and serves on an ephemeral loopback port until killed.
import { appendFileSync, readFileSync } from "node:fs";

export interface Received {
  method: string;
  path: string;
  sku: string | null;
  auth_ok: boolean;
  /** For an order: its line items and shipping address as sent. */
  order: { line_items: unknown; shipping: unknown; currency: unknown } | null;
}

export interface FakeWooCommerce {
  url: string;
  received: Received[];
  stop(): void;
}

export const PRODUCTS: Record<string, { id: number; name: string; price: string }> = {
  "BOOK-1": { id: 11, name: "A Small Book", price: "12.50" },
  "BOOK-2": { id: 12, name: "A Big Book", price: "30" },
  "PEN-1": { id: 21, name: "A Pen", price: "2.00" },
  "ECHO-SECRET": { id: 31, name: "Echo", price: "1.00" },
  "ORDER-500": { id: 32, name: "Fails on order", price: "1.00" },
  "ORDER-REFUSED": { id: 33, name: "Refused on order", price: "1.00" },
  "ORDER-ECHO": { id: 34, name: "Echoes on order", price: "1.00" },
  "ECHO-NAME": { id: 35, name: "(named after the secret)", price: "1.00" },
};

const json = (status: number, v: unknown) => new Response(JSON.stringify(v), { status, headers: { "content-type": "application/json; charset=UTF-8" } });
const wcError = (status: number, code: string, message: string) => json(status, { code, message, data: { status } });

function product(sku: string, p: { id: number; name: string; price: string }) {
  return {
    id: p.id,
    name: p.name,
    slug: p.name.toLowerCase().replace(/ /g, "-"),
    type: "simple",
    status: "publish",
    sku,
    price: p.price,
    regular_price: p.price,
    sale_price: "",
    purchasable: true,
    stock_status: "instock",
  };
}

export function startFakeWooCommerce(opts: { key: string; secret: string; currency?: string; log?: string }): FakeWooCommerce {
  const received: Received[] = [];
  const currency = opts.currency ?? "EUR";
  const s = opts.secret;
  const echo = `secret ${s} basic ${Buffer.from(`${opts.key}:${s}`).toString("base64")} hex ${Buffer.from(s).toString("hex")} url ${encodeURIComponent(s)} json ${JSON.stringify(s)}`;
  let next = 1001;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    async fetch(req) {
      const url = new URL(req.url);
      const auth = req.headers.get("authorization") ?? "";
      const basic = auth.startsWith("Basic ") ? Buffer.from(auth.slice(6), "base64").toString("utf8") : "";
      const authOk = basic === `${opts.key}:${opts.secret}`;
      const isProducts = url.pathname === "/wp-json/wc/v3/products" && req.method === "GET";
      const isOrders = url.pathname === "/wp-json/wc/v3/orders" && req.method === "POST";
      let body: Record<string, unknown> | null = null;
      if (isOrders) {
        try {
          body = (await req.json()) as Record<string, unknown>;
        } catch {
          body = null;
        }
      }
      const lines = Array.isArray(body?.line_items) ? (body!.line_items as Record<string, unknown>[]) : [];
      const ordered = Object.entries(PRODUCTS).find(([, p]) => p.id === lines[0]?.product_id)?.[0] ?? null;
      const r: Received = {
        method: req.method,
        path: url.pathname,
        sku: isProducts ? url.searchParams.get("sku") : ordered,
        auth_ok: authOk,
        order: isOrders && body ? { line_items: body.line_items, shipping: body.shipping, currency: body.currency } : null,
      };
      received.push(r);
      if (opts.log) appendFileSync(opts.log, `${JSON.stringify(r)}\n`);
      if (!isProducts && !isOrders) return wcError(404, "rest_no_route", "No route was found matching the URL and request method.");
      if (!authOk) {
        return isProducts
          ? wcError(401, "woocommerce_rest_cannot_view", "Sorry, you cannot list resources.")
          : wcError(401, "woocommerce_rest_cannot_create", "Sorry, you are not allowed to create resources.");
      }
      if (isProducts) {
        const sku = url.searchParams.get("sku") ?? "";
        switch (sku) {
          case "ECHO-SECRET":
            return wcError(400, "woocommerce_rest_invalid_sku", `unknown key: ${echo}`);
          case "SERVER-ERROR":
            return new Response("Error establishing a database connection", { status: 500 });
          case "GARBAGE":
            return new Response("<html>not json</html>", { status: 200, headers: { "content-type": "text/html" } });
          case "SLOW":
            return await new Promise<Response>(() => {});
        }
        const p = PRODUCTS[sku];
        if (sku === "ECHO-NAME") return json(200, [product(sku, { ...p!, name: `Echo ${echo}` })]);
        return json(200, p ? [product(sku, p)] : []);
      }
      if (!body || lines.length === 0) return wcError(400, "rest_invalid_param", "Invalid parameter(s): line_items");
      if (ordered === "ORDER-500") return new Response("Internal Server Error", { status: 500 });
      if (ordered === "ORDER-REFUSED") return wcError(400, "woocommerce_rest_invalid_product_id", "Product ID provided is invalid.");
      if (!ordered) return wcError(400, "woocommerce_rest_invalid_product_id", "Product ID provided is invalid.");
      let cents = 0n;
      for (const l of lines) {
        const t = typeof l.total === "string" ? l.total : (Number(PRODUCTS[ordered]!.price) * Number(l.quantity)).toFixed(2);
        const [w, f = ""] = t.split(".");
        cents += BigInt(w!) * 100n + BigInt((f + "00").slice(0, 2));
      }
      const id = next++;
      const now = new Date();
      const total = `${cents / 100n}.${(cents % 100n).toString().padStart(2, "0")}`;
      return json(201, {
        id,
        parent_id: 0,
        number: String(id),
        status: "pending",
        currency: body.currency ?? currency,
        total,
        total_tax: "0.00",
        shipping_total: "0.00",
        date_created: now.toISOString().slice(0, 19),
        date_created_gmt: now.toISOString().slice(0, 19),
        shipping: body.shipping,
        line_items: lines,
        customer_note: ordered === "ORDER-ECHO" ? echo : "",
      });
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, received, stop: () => server.stop(true) };
}

if (import.meta.main) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const key = arg("--key");
  const secretFile = arg("--secret-file");
  if (!key || !secretFile) {
    process.stderr.write("fake-woocommerce: usage: fake-woocommerce.ts --key CK --secret-file FILE [--log FILE]\n");
    process.exit(64);
  }
  const fake = startFakeWooCommerce({ key, secret: readFileSync(secretFile, "utf8").replace(/\n$/, ""), log: arg("--log") });
  process.stdout.write(`${fake.url}\n`);
}
