// The one HTTP client of the provider kinds: fetch with a deadline, a cap on the reply's size and
// no redirects followed (a 3xx is an error, so a provider can never bounce a request, and the
// credential in it, to another host). Failures are one-line VivErrors with exit 69 that name the
// provider, never the request's headers.
import { Exit, VivError } from "../lib/exit.ts";

export const HTTP_LIMITS = {
  timeoutMs: 15_000,
  maxReplyBytes: 256 * 1024,
};

export interface HttpReply {
  status: number;
  contentType: string;
  text: string;
}

const fail = (provider: string, why: string) => new VivError(Exit.unavailable, `provider '${provider}' failed: ${why}`);

export async function httpRequest(provider: string, url: string, init: { method: string; headers: Record<string, string>; body?: string }, limits = HTTP_LIMITS): Promise<HttpReply> {
  const signal = AbortSignal.timeout(limits.timeoutMs);
  let res: Response;
  try {
    res = await fetch(url, { ...init, redirect: "manual", signal });
  } catch (e) {
    throw fail(provider, signal.aborted ? `no reply within ${limits.timeoutMs} ms` : `cannot reach ${new URL(url).origin}: ${oneLine((e as Error).message)}`);
  }
  if (res.status >= 300 && res.status < 400) {
    await res.body?.cancel().catch(() => {});
    throw fail(provider, `redirect (HTTP ${res.status}) refused; redirects are never followed`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    const reader = res.body?.getReader();
    while (reader) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > limits.maxReplyBytes) {
        await reader.cancel().catch(() => {});
        throw fail(provider, `reply larger than ${limits.maxReplyBytes} bytes`);
      }
      chunks.push(value);
    }
  } catch (e) {
    if (e instanceof VivError) throw e;
    throw fail(provider, signal.aborted ? `no complete reply within ${limits.timeoutMs} ms` : `reply cut short: ${oneLine((e as Error).message)}`);
  }
  return { status: res.status, contentType: res.headers.get("content-type") ?? "", text: new TextDecoder().decode(Buffer.concat(chunks)) };
}

/**
 * Text from a remote party made fit for a one-line error: no control characters. It is not
 * shortened here: the broker scrubs secrets first and shortens after, so a cut can never leave
 * part of a secret that the scrubber would no longer recognize.
 */
export function oneLine(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, " ").trim();
}
