// web-page-read: reads a page under a granted URL in the agent's own headless browser, which the
// broker lends through the call's context (lib/browser.ts), and prints its readable text. The
// scope check is a pure match of the canonical URL (policy/scope.ts); the network-level check of
// everything the page then loads is the broker's proxy's, and this capability checks the tab's
// final URL against the grant again before reading it.
import type { Capability, CapabilitySchema } from "../../lib/capability.ts";
import { deniedError, Exit, unavailableError, usageError, VivError } from "../../lib/exit.ts";
import { matchUrl } from "../../policy/scope.ts";
import { cut, PAGE_LIMITS, readPage, within } from "./page.ts";
import schemaJson from "./schema.json";
import type { WebPageReadInput, WebPageReadResult } from "./types.ts";

const MAX_TIMEOUT_MS = 120_000;
/** What the call may print: well inside the protocol's 2 MiB result frame, in either format. */
const MAX_OUTPUT_BYTES = 1536 * 1024;

/** `30s` or `500ms` as milliseconds, from 1 ms to 120 s; null when it is neither. */
export function parseTimeout(text: string): number | null {
  const m = /^([1-9][0-9]{0,5})(s|ms)$/.exec(text);
  if (!m) return null;
  const ms = Number(m[1]) * (m[2] === "s" ? 1000 : 1);
  return ms <= MAX_TIMEOUT_MS ? ms : null;
}

/** Cuts the markdown further when escaping would make the printed result too long for one frame. */
function fitOutput(result: WebPageReadResult, args: WebPageReadInput): WebPageReadResult {
  for (let i = 0; i < 8; i++) {
    const size = Buffer.byteLength(webPageRead.render!(result, args));
    if (size <= MAX_OUTPUT_BYTES) return result;
    const keep = Math.floor((Buffer.byteLength(result.markdown) * MAX_OUTPUT_BYTES) / size) - 4096;
    result = { ...result, markdown: cut(result.markdown, Math.max(0, keep)).text, truncated: true };
  }
  return { ...result, markdown: "", truncated: true };
}

export const webPageRead: Capability<WebPageReadInput, WebPageReadResult> = {
  schema: schemaJson as CapabilitySchema,
  authorize(args, scopes) {
    const m = matchUrl(args.url, scopes.url ?? []);
    return m.ok ? null : `cannot read '${args.url}': ${m.reason}`;
  },
  async run(args, scopes, context) {
    const started = Date.now();
    const grants = scopes.url ?? [];
    const m = matchUrl(args.url, grants);
    if (!m.ok) throw deniedError(`cannot read '${args.url}': ${m.reason}`);
    const timeout = args.timeout ?? "30s";
    const ms = parseTimeout(timeout);
    if (ms === null) throw usageError(`option '--timeout' must be a duration like '30s' or '500ms', at most 120s, not '${timeout}'`);
    if (!context?.browser) throw unavailableError(`cannot read '${m.url.href}': no browser here; call it from an agent's jail, through the broker`);
    const deadline = started + ms;
    // A browser still starting counts against the timeout too; it goes on starting for later calls.
    const session = await within(context.browser({ maxLoadBytes: PAGE_LIMITS.loadBytes }), deadline, `cannot read '${m.url.href}': timed out after ${timeout}`);
    try {
      const page = await readPage(session, m.url, grants, args.wait_for ?? "networkidle", timeout, deadline);
      const result = { url: m.url.href, final_url: page.finalUrl, status: page.status, title: page.title.slice(0, 4096), markdown: page.markdown, bytes: page.bytes, truncated: page.truncated };
      return fitOutput(result, args);
    } catch (e) {
      if (e instanceof VivError) throw e;
      throw new VivError(Exit.unavailable, `cannot read '${m.url.href}': ${(e as Error).message}`);
    }
  },
  render(result, args) {
    if (args.format === "json") return `${JSON.stringify(result)}\n`;
    return result.markdown.endsWith("\n") ? result.markdown : `${result.markdown}\n`;
  },
};
