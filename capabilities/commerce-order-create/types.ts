// Generated from schema.json by scripts/gen-types.ts; do not edit.

/**
 * Order a quantity of one product by SKU from a granted shop, shipped to a shipping address the grant names. The broker first reads the product's current price from the shop, so that the operator's approval and the grant's spending limits see the real total; the order is then placed at that price. --confirm must be given.
 */
export interface CommerceOrderCreateInput {
  /**
   * The product's SKU (letters, digits, dot, dash, underscore), matched against the grant's 'sku' patterns
   */
  sku: string;
  /**
   * How many to order, at most the grant's 'max-quantity'
   */
  quantity: number;
  /**
   * The id of one of the grant's 'shipping-address' nodes; the address itself is the operator's
   */
  shipping_address_id: string;
  /**
   * Says that the order is meant: without it the call is a usage error and nothing is looked up or ordered
   */
  confirm: boolean;
}

export interface CommerceOrderCreateResult {
  /**
   * The shop's id of the order
   */
  order_id: number;
  /**
   * The order's total as the shop reports it, a decimal amount with the currency's decimals (the approved total: a different one is an error)
   */
  total_amount: string;
  /**
   * The currency of total_amount (ISO 4217)
   */
  currency: string;
  /**
   * The estimated delivery date (YYYY-MM-DD): the order's creation plus the provider's delivery-days, or null without that setting
   */
  estimated_delivery: string | null;
}
