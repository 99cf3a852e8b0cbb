// The filtering proxy every byte of an agent's browser goes through. The browser lives in a
// network namespace with nothing but loopback; a forwarder there hands each connection to this
// proxy's Unix socket, so whatever the page does (navigation, redirect, frame, image, script,
// fetch, worker, WebSocket) arrives here as a plain HTTP request, an Upgrade or a CONNECT.
// Each is matched against the agent's `url` grants in canonical form first (a refused name is
// never resolved), then its name is resolved once, every address classified (policy/address.ts),
// and the connection made to exactly the address that passed: no rebinding between check and
// connect. Refusals go to the `onBlocked` sink, which the supervisor summarizes per call.
import { lookup } from "node:dns/promises";
import { chmodSync, chownSync, rmSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import type { Duplex } from "node:stream";
import { classifyAddress } from "../policy/address.ts";
import { canonicalUrl, isIpHost, matchOrigin, matchUrl, type CanonicalUrl } from "../policy/scope.ts";

export const PROXY_LIMITS = {
  /** Connections open at once through one browser's proxy. */
  connections: 64,
  /** How long one name may take to resolve. */
  resolveMs: 5_000,
  /** How long a connection to the destination may take to open. */
  connectMs: 10_000,
};

export interface ProxyHooks {
  /** The agent's `url` grants as they are now. */
  grants(): readonly string[];
  onBlocked(dest: string, reason: string): void;
  /** Bytes received from destinations; returns false once the browser must stop loading. */
  onBytes(n: number): boolean;
  /** How a name becomes addresses; the host's resolver unless given (tests count the lookups). */
  resolve?(host: string): Promise<string[]>;
}

async function systemResolve(host: string): Promise<string[]> {
  return (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);
}

type Target = { url: CanonicalUrl; address: string };

const HOP_BY_HOP = ["connection", "keep-alive", "proxy-connection", "proxy-authorization", "proxy-authenticate", "te", "trailer", "transfer-encoding", "upgrade"];

/** Where a request may go, or why not. Matches first, resolves after, connects to what it checked. */
async function decide(url: CanonicalUrl, wholeUrl: boolean, grants: readonly string[], resolve: (host: string) => Promise<string[]>): Promise<Target | string> {
  const matched = wholeUrl ? matchUrl(url.href, grants).ok : matchOrigin(url.scheme, url.host, url.port, grants) ?? (url.scheme === "https" ? matchOrigin("http", url.host, url.port, grants) : null);
  if (!matched) return "outside the grant";
  let addresses: string[];
  if (isIpHost(url.host)) addresses = [url.host.replace(/^\[|\]$/g, "")];
  else {
    try {
      let timer: ReturnType<typeof setTimeout> | undefined;
      addresses = await Promise.race([
        resolve(url.host),
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error("timed out")), PROXY_LIMITS.resolveMs))),
      ]).finally(() => clearTimeout(timer));
    } catch (e) {
      return `cannot resolve '${url.host}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
    }
  }
  let refused = "";
  for (const a of addresses) {
    const v = classifyAddress(a, url.port, grants);
    if (v.ok) return { url, address: v.address };
    refused ||= `'${url.host}' is ${v.range === "invalid" ? "not an address" : `a ${v.range} address`} (${v.address}) that no grant names`;
  }
  return refused || `'${url.host}' has no address`;
}

/** One agent browser's proxy, listening on a Unix socket only `uid` may connect to. */
export class WebProxy {
  private server: http.Server;
  private sockets = new Set<Duplex>();

  constructor(
    readonly path: string,
    uid: number | null,
    private readonly hooks: ProxyHooks,
  ) {
    this.server = http.createServer({ maxHeaderSize: 16 * 1024 }, (req, res) => void this.onRequest(req, res));
    this.server.on("connect", (req: http.IncomingMessage, sock: Duplex, head: Buffer) => void this.onTunnel(req, sock, head, "connect"));
    this.server.on("upgrade", (req: http.IncomingMessage, sock: Duplex, head: Buffer) => void this.onTunnel(req, sock, head, "upgrade"));
    this.server.on("connection", (s: net.Socket) => {
      if (this.sockets.size >= PROXY_LIMITS.connections) return void s.destroy();
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
    this.server.on("clientError", (_e, s) => s.destroy());
    rmSync(path, { force: true });
    this.server.listen(path);
    if (uid !== null) chownSync(path, uid, uid);
    chmodSync(path, 0o600);
  }

  /** Resolves once the socket accepts connections. */
  ready(): Promise<void> {
    return this.server.listening ? Promise.resolve() : new Promise((r) => this.server.once("listening", () => r()));
  }

  close() {
    this.server.close();
    for (const s of this.sockets) s.destroy();
    rmSync(this.path, { force: true });
  }

  private block(dest: string, reason: string) {
    this.hooks.onBlocked(dest, reason);
  }

  /** Plain HTTP: `GET http://host:port/path`, forwarded to the checked address, one request at a time. */
  private async onRequest(req: http.IncomingMessage, res: http.ServerResponse) {
    const url = req.url?.startsWith("http://") ? canonicalUrl(req.url) : "not an absolute http:// URL";
    if (typeof url === "string") {
      this.block(String(req.url).slice(0, 200), url);
      return void res.writeHead(400, { "content-type": "text/plain", connection: "close" }).end("vivary: bad proxy request\n");
    }
    const target = await decide(url, true, this.hooks.grants(), this.hooks.resolve ?? systemResolve);
    if (typeof target === "string") {
      this.block(url.href, target);
      return void res.writeHead(403, { "content-type": "text/plain", connection: "close" }).end(`vivary: refused: ${target}\n`);
    }
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP_BY_HOP.includes(k)) headers[k] = v;
    headers.host = url.port === 80 ? url.host : `${url.host}:${url.port}`;
    const up = http.request({ host: target.address, port: url.port, method: req.method, path: url.path, headers, setHost: false, agent: false, timeout: PROXY_LIMITS.connectMs });
    up.on("timeout", () => up.destroy(new Error("timed out")));
    up.on("error", () => {
      if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" }).end("vivary: destination unreachable\n");
      else res.destroy();
    });
    up.on("response", (r) => {
      const out: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(r.headers)) if (v !== undefined && !HOP_BY_HOP.includes(k)) out[k] = v;
      res.writeHead(r.statusCode ?? 502, out);
      r.on("data", (chunk: Buffer) => {
        if (this.hooks.onBytes(chunk.length)) return;
        r.destroy();
        res.destroy();
      });
      r.on("error", () => res.destroy());
      r.pipe(res);
    });
    req.pipe(up);
  }

  /** CONNECT host:port (HTTPS, and WebSockets through the proxy), or an Upgrade of a plain request. */
  private async onTunnel(req: http.IncomingMessage, sock: Duplex, head: Buffer, kind: "connect" | "upgrade") {
    sock.on("error", () => sock.destroy());
    const raw = kind === "connect" ? `https://${req.url}/` : (req.url ?? "");
    const url = kind === "connect" && /[/?#@]/.test(req.url ?? "") ? "not host:port" : canonicalUrl(raw);
    if (typeof url === "string") {
      this.block(String(req.url).slice(0, 200), url);
      return void sock.end("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    }
    const dest = kind === "connect" ? `${url.host}:${url.port}` : url.href;
    const target = await decide(url, kind === "upgrade", this.hooks.grants(), this.hooks.resolve ?? systemResolve);
    if (typeof target === "string") {
      this.block(dest, target);
      return void sock.end("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
    }
    const up = net.connect({ host: target.address, port: url.port, timeout: PROXY_LIMITS.connectMs });
    up.on("timeout", () => up.destroy());
    up.on("error", () => {
      if (kind === "connect") sock.end("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
      else sock.destroy();
    });
    up.on("connect", () => {
      up.setTimeout(0);
      if (kind === "connect") sock.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      else {
        const lines = [`${req.method} ${url.path} HTTP/1.1`];
        for (let i = 0; i < req.rawHeaders.length; i += 2) {
          const k = req.rawHeaders[i]!;
          if (!/^proxy-/i.test(k) && k.toLowerCase() !== "host") lines.push(`${k}: ${req.rawHeaders[i + 1]}`);
        }
        lines.push(`Host: ${url.port === 80 ? url.host : `${url.host}:${url.port}`}`);
        up.write(`${lines.join("\r\n")}\r\n\r\n`);
      }
      if (head.length) up.write(head);
      sock.pipe(up);
      up.on("data", (chunk: Buffer) => {
        if (this.hooks.onBytes(chunk.length)) return;
        up.destroy();
        sock.destroy();
      });
      up.pipe(sock);
      sock.on("close", () => up.destroy());
      up.on("close", () => sock.destroy());
    });
  }
}
