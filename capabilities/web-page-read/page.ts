// Reads one page in a tab of the agent's browser over the DevTools Protocol: open a tab, navigate,
// wait for the chosen moment, check where the tab ended up against the grant, extract the text in
// an isolated world, close the tab. Every step runs against one deadline; a browser that stops
// answering a command is reported as hung so the broker replaces it.
import type { BrowserSession } from "../../lib/browser.ts";
import type { Cdp } from "../../lib/cdp.ts";
import { dataError, deniedError, Exit, unavailableError, VivError } from "../../lib/exit.ts";
import { canonicalUrl, matchUrl, type CanonicalUrl } from "../../policy/scope.ts";
import { READER_SCRIPT, type Extracted } from "./reader.ts";

export const PAGE_LIMITS = {
  /** A DevTools command the browser does not answer within this is a hung browser. */
  commandMs: 10_000,
  /** Markdown beyond this is cut. */
  markdownBytes: 1 << 20,
  /** What one page may load through the proxy, all resources included. */
  loadBytes: 32 << 20,
  /** How often a --wait-for selector is looked for. */
  selectorPollMs: 100,
};

export class Timeout extends VivError {
  constructor(what: string) {
    super(Exit.temporary, what);
  }
}

export interface PageRead {
  finalUrl: string;
  status: number;
  title: string;
  markdown: string;
  truncated: boolean;
  bytes: number;
}

/** Resolves with `p`, or rejects with a Timeout at the deadline. */
export function within<T>(p: Promise<T>, deadline: number, what: string): Promise<T> {
  const left = deadline - Date.now();
  if (left <= 0) return Promise.reject(new Timeout(what));
  let t: ReturnType<typeof setTimeout>;
  return Promise.race([p, new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Timeout(what)), left)))]).finally(() => clearTimeout(t));
}

/** Cuts text to at most `max` UTF-8 bytes without splitting a character. */
export function cut(text: string, max: number): { text: string; truncated: boolean } {
  const bytes = Buffer.from(text, "utf8");
  if (bytes.length <= max) return { text, truncated: false };
  let end = max;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return { text: bytes.subarray(0, end).toString("utf8"), truncated: true };
}

export async function readPage(s: BrowserSession, url: CanonicalUrl, grants: readonly string[], waitFor: string, timeoutText: string, deadline: number): Promise<PageRead> {
  try {
    return await readInTab(s, url, grants, waitFor, timeoutText, deadline);
  } catch (e) {
    // A call that ran out of time may have met a browser that stopped answering: ask it once.
    if (e instanceof Timeout && !s.cdp.closed) await s.cdp.send("Browser.getVersion", {}, undefined, 1000).catch(() => s.fail("hung: it did not answer within 1000 ms"));
    throw e;
  }
}

async function readInTab(s: BrowserSession, url: CanonicalUrl, grants: readonly string[], waitFor: string, timeoutText: string, deadline: number): Promise<PageRead> {
  const cdp = s.cdp;
  const cmd = <T = any>(method: string, params: object = {}, sessionId?: string) =>
    cdp.send<T>(method, params, sessionId, PAGE_LIMITS.commandMs).catch((e: Error) => {
      if (cdp.closed) throw unavailableError(`the browser went away: ${cdp.closed}`);
      if (/got no answer/.test(e.message)) {
        s.fail(`hung: ${e.message}`);
        throw unavailableError(`the browser stopped answering (${method}); it is restarted for the next call`);
      }
      throw e;
    });
  const timedOut = `cannot read '${url.href}': timed out after ${timeoutText}`;
  const tooBig = new Promise<never>((_, reject) => s.overLimit.then(() => reject(dataError(`cannot read '${url.href}': the page loads more than ${PAGE_LIMITS.loadBytes} bytes`))));
  tooBig.catch(() => {});
  /** Waits for `p`, but no longer than the deadline or than the page stays within its byte limit. */
  const guarded = <T>(p: Promise<T>) => within(Promise.race([p, tooBig]), deadline, timedOut);
  const tab = await within(takeTab(s, cmd), deadline, timedOut);
  const { targetId, sessionId } = tab;
  const off: (() => void)[] = [];
  let healthy = false;
  try {
    // The main frame's id is the target's; its current document is the latest it committed.
    let loaderId = "";
    const seen = new Set<string>();
    let wake: () => void = () => {};
    const note = (what: string) => {
      seen.add(what);
      wake();
    };
    off.push(
      cdp.on("Page.frameNavigated", sessionId, (p) => {
        if (p.frame?.id === targetId && !p.frame.parentId && p.frame.url !== "about:blank") {
          loaderId = p.frame.loaderId;
          note("navigated");
        }
      }),
      cdp.on("Page.lifecycleEvent", sessionId, (p) => {
        if (p.frameId === targetId) note(`${p.loaderId}:${p.name}`);
      }),
    );
    const nav = await guarded(cmd<{ loaderId?: string; errorText?: string }>("Page.navigate", { url: url.href }, sessionId));
    if (nav.errorText) {
      refuseIfBlocked(s, url, url);
      if (/ERR_UNSAFE_REDIRECT/.test(nav.errorText)) throw deniedError(`cannot read '${url.href}': it redirects to a URL that is not http or https (${nav.errorText})`);
      if (/ERR_ABORTED/.test(nav.errorText)) throw dataError(`cannot read '${url.href}': not a page (a download, which is refused, or an aborted load)`);
      throw unavailableError(`cannot read '${url.href}': ${nav.errorText}`);
    }
    loaderId ||= nav.loaderId ?? "";

    const event = { load: "load", domcontentloaded: "DOMContentLoaded", networkidle: "networkIdle" }[waitFor];
    if (event) {
      await guarded(new Promise<void>((resolve) => {
        const check = () => {
          if (seen.has(`${loaderId}:${event}`)) resolve();
        };
        wake = check;
        check();
      }));
    } else {
      await guarded(waitForSelector(cdp, cmd, sessionId, targetId, waitFor, deadline));
    }

    // The text is extracted before the tab's URL is checked, in the renderer, and only returned
    // once the URL passed: one round trip fewer on every call.
    const { executionContextId } = await within(cmd<{ executionContextId: number }>("Page.createIsolatedWorld", { frameId: targetId, worldName: "vivary-reader", grantUniveralAccess: false }, sessionId), deadline, timedOut);
    const r = await within(cmd<{ result: { value?: Extracted }; exceptionDetails?: { text?: string } }>("Runtime.evaluate", { expression: READER_SCRIPT, contextId: executionContextId, returnByValue: true }, sessionId), deadline, timedOut);
    const got = r.result.value;
    if (r.exceptionDetails || !got) throw dataError(`cannot read '${url.href}': extracting its text failed: ${r.exceptionDetails?.text ?? "no result"}`);
    const finalRaw = String(got?.url ?? "");
    const final = canonicalUrl(finalRaw);
    if (typeof final === "string") throw deniedError(`cannot read '${url.href}': it went to '${finalRaw}': ${final}`);
    refuseIfBlocked(s, url, final);
    const m = matchUrl(final.href, grants);
    if (!m.ok) throw deniedError(`cannot read '${url.href}': it went to '${final.href}': ${m.reason}`);
    const { text, truncated } = cut(String(got.markdown ?? ""), PAGE_LIMITS.markdownBytes);
    healthy = true;
    return { finalUrl: final.href, status: Number(got.status) || 0, title: String(got.title ?? ""), markdown: text, truncated, bytes: s.loadedBytes() };
  } finally {
    for (const f of off) f();
    giveBack(s, tab, healthy);
  }
}

// Tabs are kept between calls, per browser connection, so a warm call does not pay for opening,
// attaching and enabling one: a tab that served a call without error is sent to about:blank
// (stopping whatever the page still runs) and reused; any other is closed. The broker bounds
// how many calls hold a tab at once, and so the pool.
interface Tab {
  targetId: string;
  sessionId: string;
  idle: Promise<unknown>;
}
const pools = new WeakMap<Cdp, Tab[]>();

async function takeTab(s: BrowserSession, cmd: <T = any>(m: string, p?: object, sid?: string) => Promise<T>): Promise<Tab> {
  const pool = pools.get(s.cdp) ?? [];
  pools.set(s.cdp, pool);
  const reused = pool.pop();
  if (reused) {
    await reused.idle;
    return reused;
  }
  const { targetId } = await cmd<{ targetId: string }>("Target.createTarget", { url: "about:blank", background: true, browserContextId: s.browserContextId });
  const { sessionId } = await cmd<{ sessionId: string }>("Target.attachToTarget", { targetId, flatten: true });
  await Promise.all([cmd("Page.enable", {}, sessionId), cmd("Page.setLifecycleEventsEnabled", { enabled: true }, sessionId)]);
  return { targetId, sessionId, idle: Promise.resolve() };
}

function giveBack(s: BrowserSession, tab: Tab, healthy: boolean) {
  const cdp = s.cdp;
  if (cdp.closed) return;
  if (!healthy) return void cdp.send("Target.closeTarget", { targetId: tab.targetId }, undefined, PAGE_LIMITS.commandMs).catch(() => {});
  tab.idle = cdp.send("Page.navigate", { url: "about:blank" }, tab.sessionId, PAGE_LIMITS.commandMs).catch(() => {});
  pools.get(cdp)?.push(tab);
}

/** The tab's URL, if the proxy refused it for this call: the reason, as a denial. */
function refuseIfBlocked(s: BrowserSession, asked: CanonicalUrl, at: CanonicalUrl) {
  const b = s.blocked().find((d) => d.dest === at.href || d.dest === `${at.host}:${at.port}`);
  const via = at.href === asked.href ? "" : `it went to '${at.href}': `;
  if (b) throw deniedError(`cannot read '${asked.href}': ${via}${b.reason}`);
  if (s.loadedBytes() > PAGE_LIMITS.loadBytes) throw dataError(`cannot read '${asked.href}': the page loads more than ${PAGE_LIMITS.loadBytes} bytes`);
}

async function waitForSelector(cdp: Cdp, cmd: (m: string, p?: object, s?: string) => Promise<any>, sessionId: string, frameId: string, selector: string, deadline: number) {
  const expression = `document.querySelector(${JSON.stringify(selector)}) !== null`;
  while (Date.now() < deadline && !cdp.closed) {
    const { executionContextId } = await cmd("Page.createIsolatedWorld", { frameId, worldName: "vivary-wait", grantUniveralAccess: false }, sessionId);
    const r = await cmd("Runtime.evaluate", { expression, contextId: executionContextId, returnByValue: true }, sessionId);
    if (r.exceptionDetails) throw new VivError(Exit.usage, `--wait-for '${selector}' is not a valid CSS selector`);
    if (r.result?.value === true) return;
    await new Promise((res) => setTimeout(res, PAGE_LIMITS.selectorPollMs));
  }
}
