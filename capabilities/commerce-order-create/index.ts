// commerce-order-create: one order of one granted product from a granted shop, shipped to an
// address the operator named in the grant. The call is priced before anything else: quote()
// reads the product's price from the shop (read-only), costs() turns it into the order's total
// against the grant's spend and per-order limits (reserved by the broker before the approval),
// target() shows that total to the operator, and run() places the order at exactly that price.
// The requests belong to the provider kind's module (providers/woocommerce.ts).
import { NoEffect, type CallContext, type Capability, type CapabilitySchema, type Cost, type Scopes } from "../../lib/capability.ts";
import { Exit, VivError } from "../../lib/exit.ts";
import { formatAmount } from "../../policy/money.ts";
import { matchSku } from "../../policy/scope.ts";
import { createWooCommerceOrder, estimatedDelivery, quoteWooCommerce, type ShippingAddress, type ShopQuote } from "../../providers/woocommerce.ts";
import schemaJson from "./schema.json";
import type { CommerceOrderCreateInput, CommerceOrderCreateResult } from "./types.ts";

/** The address a grant's `shipping-address "ID" first-name=… …` node names, in WooCommerce's fields. */
export function shippingAddress(id: string, scopes: Scopes): ShippingAddress | null {
  if (!(scopes["shipping-address"] ?? []).includes(id)) return null;
  const raw = scopes[`shipping-address/${id}`]?.[0];
  if (!raw) return null;
  const props = JSON.parse(raw) as Record<string, string>;
  return Object.fromEntries(Object.entries(props).map(([k, v]) => [k.replace(/-/g, "_"), v])) as unknown as ShippingAddress;
}

/** The largest quantity the grant allows: the smallest of its `max-quantity` nodes. */
const maxQuantity = (scopes: Scopes) => Math.min(...(scopes["max-quantity"] ?? ["0"]).map(Number));

function why(args: CommerceOrderCreateInput, scopes: Scopes): string | null {
  if (!args.confirm) return "cannot order without --confirm";
  if (!matchSku(args.sku, scopes.sku ?? [])) return `cannot order SKU '${args.sku}': not granted`;
  const max = maxQuantity(scopes);
  if (args.quantity > max) return `cannot order ${args.quantity} of '${args.sku}': at most ${max} per order`;
  if (!shippingAddress(args.shipping_address_id, scopes)) return `cannot ship to '${args.shipping_address_id}': not a granted shipping address`;
  if (!scopes.provider?.[0]) return "no provider is granted";
  return null;
}

function provider(context: CallContext | undefined) {
  const p = context?.provider;
  if (!p || !context.secret) throw new VivError(Exit.unavailable, "no provider configured for this call (run it through the broker)");
  if (p.kind !== "woocommerce") throw new VivError(Exit.config, `provider '${p.name}' is of kind '${p.kind}', which this capability does not speak`);
  return { p, secret: context.secret };
}

export const commerceOrderCreate: Capability<CommerceOrderCreateInput, CommerceOrderCreateResult> = {
  schema: schemaJson as CapabilitySchema,
  authorize: why,
  provider: (_args, scopes) => scopes.provider?.[0] ?? "",
  async quote(args, scopes, context) {
    const { p, secret } = provider(context);
    return await quoteWooCommerce(p, secret, args.sku, args.quantity);
  },
  costs(_args, _scopes, quote) {
    const q = quote as ShopQuote;
    return [
      { budget: "spend", key: q.currency, amount: q.total, unit: q.currency },
      { budget: "per-order", key: q.currency, amount: q.total, unit: q.currency },
    ] satisfies Cost[];
  },
  target(args, _scopes, quote) {
    const q = quote as ShopQuote | undefined;
    if (!q) return `${args.quantity} x ${args.sku} to '${args.shipping_address_id}'`;
    return `${q.quantity} x ${q.sku} "${q.name}" at ${formatAmount(q.unitPrice, q.currency)} ${q.currency} = ${formatAmount(q.total, q.currency)} ${q.currency}, shipped to '${args.shipping_address_id}'`;
  },
  async run(args, scopes, context) {
    // Nothing has been ordered until the request below: a refusal here gives the budgets back.
    const refused = why(args, scopes);
    if (refused) throw new NoEffect(Exit.denied, refused);
    let found;
    try {
      found = provider(context);
    } catch (e) {
      throw new NoEffect((e as VivError).code, (e as VivError).message);
    }
    const { p, secret } = found;
    const q = context?.quote as ShopQuote | undefined;
    if (!q || q.sku !== args.sku || q.quantity !== args.quantity) throw new NoEffect(Exit.unavailable, "the call was not priced (run it through the broker)");
    const order = await createWooCommerceOrder(p, secret, q, shippingAddress(args.shipping_address_id, scopes)!);
    return { order_id: order.id, total_amount: formatAmount(order.total, order.currency), currency: order.currency, estimated_delivery: estimatedDelivery(p, order.created) };
  },
};
