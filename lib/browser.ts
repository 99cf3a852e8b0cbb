// What a capability sees of the broker's browser for one call: a DevTools connection to the
// agent's own warm browser, and what the broker's filtering proxy refused or counted while the
// call ran. The broker (broker/browser.ts) implements it; a capability receives it in its
// CallContext and never learns how the browser is launched, confined or proxied.
import type { Cdp } from "./cdp.ts";

/** A destination the proxy refused: `dest` is the URL (plain HTTP) or host:port (a tunnel). */
export interface BlockedDestination {
  dest: string;
  reason: string;
}

export interface BrowserSession {
  cdp: Cdp;
  /** The browser context to open tabs in: the agent's, in memory. */
  browserContextId: string;
  /** Destinations refused since the call began. */
  blocked(): readonly BlockedDestination[];
  /** Bytes the browser received through the proxy since the call began. */
  loadedBytes(): number;
  /** Resolves once those bytes pass the call's limit (the proxy then cuts every transfer). */
  overLimit: Promise<void>;
  /** Marks the browser as broken (hung, misbehaving): the broker kills it; the next call gets a fresh one. */
  fail(reason: string): void;
}

/** Hands out the agent's browser for one call, starting it if needed. Throws VivError (69) if it cannot. */
export type BrowserOpener = (limits: { maxLoadBytes: number }) => Promise<BrowserSession>;
