// Classifies the IP addresses a web request would connect to. Only global unicast addresses are
// reachable by default; loopback, private, link-local (cloud metadata at 169.254.169.254 among
// them), CGNAT, multicast, unspecified, reserved and the IPv6 ranges that embed or tunnel IPv4
// are refused unless a `url` grant names that exact address and port. Address arithmetic is
// ipaddr.js's, never ours; IPv4-mapped IPv6 is judged as the IPv4 address it carries.
import ipaddr from "ipaddr.js";
import { parseUrlPattern } from "./scope.ts";

export type AddressVerdict = { ok: true; address: string } | { ok: false; address: string; range: string };

/** The canonical text of an address (IPv4-mapped IPv6 as IPv4), or null if it is not one. */
export function canonicalAddress(text: string): string | null {
  const bare = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  if (!ipaddr.isValid(bare)) return null;
  return ipaddr.process(bare).toString();
}

/** The ipaddr.js range name of an address: 'unicast' is the only one reachable by default. */
export function addressRange(address: string): string {
  return ipaddr.process(address).range();
}

/**
 * May a request connect to `address` on `port`? Yes for a global unicast address; for any other,
 * only when one of the `url` grants names that exact address (in any spelling) and port.
 */
export function classifyAddress(address: string, port: number, granted: readonly string[]): AddressVerdict {
  const canonical = canonicalAddress(address);
  if (!canonical) return { ok: false, address, range: "invalid" };
  const range = addressRange(canonical);
  if (range === "unicast") return { ok: true, address: canonical };
  for (const g of granted) {
    const p = parseUrlPattern(g);
    if (typeof p === "string" || p.wildcard || p.port !== port) continue;
    if (canonicalAddress(p.host) === canonical) return { ok: true, address: canonical };
  }
  return { ok: false, address: canonical, range };
}
