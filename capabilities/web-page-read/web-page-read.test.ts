// Tables for web-page-read's pure parts: the URL canonicalizer and matcher (policy/scope.ts), the
// load-time refusal of broad patterns, the address classifier (policy/address.ts), the timeout
// and the markdown cut; then the broker's filtering proxy against loopback servers, which must
// match before it resolves and connect only to addresses it checked.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WebProxy } from "../../broker/web-proxy.ts";
import { CATALOG } from "../registry.ts";
import { Exit, VivError } from "../../lib/exit.ts";
import { classifyAddress } from "../../policy/address.ts";
import { loadPolicyText, PolicyError } from "../../policy/load.ts";
import { canonicalUrl, matchUrl, parseUrlPattern } from "../../policy/scope.ts";
import { parseTimeout, webPageRead } from "./index.ts";
import { cut } from "./page.ts";

describe("canonicalUrl", () => {
  const cases: [string, string][] = [
    ["http://2130706433/", "http://127.0.0.1/"],
    ["http://0177.0.0.1/", "http://127.0.0.1/"],
    ["http://0x7f000001/", "http://127.0.0.1/"],
    ["http://0x7f.0.0.1/", "http://127.0.0.1/"],
    ["http://127.1/", "http://127.0.0.1/"],
    ["http://127.0.0.1./", "http://127.0.0.1/"],
    ["http://[::1]:8080/a", "http://[::1]:8080/a"],
    ["http://[0:0:0:0:0:0:0:1]/", "http://[::1]/"],
    ["http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/"],
    ["HTTP://Example.COM./x/../y?q=1#frag", "http://example.com/y?q=1"],
    ["http://example.com:80/", "http://example.com/"],
    ["https://example.com:443/", "https://example.com/"],
    ["https://example.com:8443/", "https://example.com:8443/"],
    ["https://bücher.de/", "https://xn--bcher-kva.de/"],
    ["https://ＥＸＡＭＰＬＥ.com/", "https://example.com/"],
    ["http://example.com/%2e%2e/admin", "http://example.com/admin"],
    ["http://example.com/a/%2e/b", "http://example.com/a/b"],
  ];
  for (const [raw, href] of cases) test(`${raw} → ${href}`, () => expect((canonicalUrl(raw) as { href: string }).href).toBe(href));

  const refused: [string, string][] = [
    ["http://user@example.com/", "URL has userinfo (user:password@)"],
    ["http://user:pw@example.com/", "URL has userinfo (user:password@)"],
    ["http://127.0.0.1:80@127.0.0.2/", "URL has userinfo (user:password@)"],
    ["file:///etc/passwd", "scheme 'file:' is not http or https"],
    ["data:text/html,<p>hi</p>", "scheme 'data:' is not http or https"],
    ["javascript:alert(1)", "scheme 'javascript:' is not http or https"],
    ["ftp://example.com/", "scheme 'ftp:' is not http or https"],
    ["//example.com/", "not an absolute URL"],
    ["http://a..b/", "host 'a..b' has an empty label"],
    ["http://example.com../", "host 'example.com..' has an empty label"],
  ];
  for (const [raw, why] of refused) test(`${raw} is refused`, () => expect(canonicalUrl(raw)).toBe(why));
});

describe("parseUrlPattern refuses what is too broad or cannot be matched", () => {
  const refused: [string, string][] = [
    ["*", "matches every URL"],
    ["https://*", "matches every host"],
    ["http://*/*", "matches every host"],
    ["https://*:443/", "matches every host"],
    ["http://*.com/*", "'*.com' matches every name under a top-level domain"],
    ["https://*.xn--bcher-kva/", "'*.xn--bcher-kva' matches every name under a top-level domain"],
    ["https://*.*.example.com/", "has a wildcard that is not a leading '*.' label"],
    ["https://a*.example.com/", "has a wildcard that is not a leading '*.' label"],
    ["https://*example.com/", "has a wildcard that is not a leading '*.' label"],
    ["https://example.*/", "has a wildcard that is not a leading '*.' label"],
    ["http://*.127.0.0.1/", "puts a wildcard in front of an IP address"],
    ["http://example.com/docs*", "has a '*' in its path other than a final '/*'"],
    ["http://example.com/*/x", "has a '*' in its path other than a final '/*'"],
    ["http://example.com/a/../b", "path '/a/../b' is not in canonical form (it reads as '/b')"],
    ["ftp://example.com/", "is not SCHEME://HOST[:PORT][/PATH] with scheme http or https (no query or fragment)"],
    ["example.com", "is not SCHEME://HOST[:PORT][/PATH] with scheme http or https (no query or fragment)"],
    ["http://example.com/?q=1", "is not SCHEME://HOST[:PORT][/PATH] with scheme http or https (no query or fragment)"],
    ["http://u@example.com/", "has userinfo (user:password@)"],
  ];
  for (const [p, why] of refused) test(p, () => expect(parseUrlPattern(p)).toBe(why));

  test("the policy loader refuses them with file:line", () => {
    const text = `agent "a" {\n    grant "web-page-read" {\n        url "https://*"\n        url "http://*.com/*"\n    }\n}\n`;
    try {
      loadPolicyText([{ file: "p.kdl", text }], CATALOG);
      throw new Error("loaded");
    } catch (e) {
      expect(e).toBeInstanceOf(PolicyError);
      expect((e as PolicyError).problems).toEqual([
        "p.kdl:3: url 'https://*' refused: matches every host",
        "p.kdl:4: url 'http://*.com/*' refused: '*.com' matches every name under a top-level domain",
      ]);
    }
  });

  test("the grant example of web-page-read(1) loads", () => {
    const page = readFileSync(join(import.meta.dir, "..", "..", "man", "web-page-read.1"), "utf8");
    const grants = [...page.matchAll(/^\.EX\n(grant "[\s\S]*?)^\.EE$/gm)].map((m) => m[1]!.replace(/\\-/g, "-"));
    expect(grants.length).toBe(1);
    expect(loadPolicyText([{ file: "web-page-read.1", text: `agent "a" {\n${grants[0]}}\n` }], CATALOG).agents.get("a")!.grants.has("web-page-read")).toBe(true);
  });

  test("a narrow grant loads", () => {
    const text = `agent "a" {\n    grant "web-page-read" {\n        url "https://*.example.com/docs/*"\n        url "http://127.0.0.1:8080/*"\n    }\n}\n`;
    expect(loadPolicyText([{ file: "p.kdl", text }], CATALOG).agents.get("a")!.grants.get("web-page-read")!.scopes.url).toHaveLength(2);
  });
});

describe("matchUrl", () => {
  const grants = ["https://*.example.com/docs/*", "http://127.0.0.1:8080/*", "https://exact.org/page", "https://bücher.de/*", "http://[::1]:9000/*"];
  const cases: [string, boolean][] = [
    ["https://a.example.com/docs/x", true],
    ["https://a.b.example.com/docs/", true],
    ["https://a.example.com/docs", true],
    ["https://A.EXAMPLE.COM./docs/x", true],
    ["https://example.com/docs/x", false],
    ["https://a.example.com/docs-evil/x", false],
    ["https://a.example.com/other", false],
    ["https://a.example.com/docs/../admin", false],
    ["https://evilexample.com/docs/x", false],
    ["https://a.example.com.evil.org/docs/x", false],
    ["http://a.example.com/docs/x", false],
    ["https://a.example.com:8443/docs/x", false],
    ["http://127.0.0.1:8080/x", true],
    ["http://2130706433:8080/x", true],
    ["http://0x7f000001:8080/x", true],
    ["http://0177.0.0.1:8080/x", true],
    ["http://127.1:8080/x", true],
    ["http://127.0.0.1:8081/x", false],
    ["http://127.0.0.2:8080/x", false],
    ["http://2130706434:8080/x", false],
    ["http://localhost:8080/x", false],
    ["http://[::ffff:127.0.0.1]:8080/x", false],
    ["http://user@127.0.0.1:8080/x", false],
    ["https://exact.org/page", true],
    ["https://exact.org/page?q=1", true],
    ["https://exact.org/page/x", false],
    ["https://xn--bcher-kva.de/", true],
    ["https://BÜCHER.de/a", true],
    ["http://[::1]:9000/", true],
    ["http://[0::1]:9000/", true],
    ["http://[::2]:9000/", false],
  ];
  for (const [url, ok] of cases) test(`${url} ${ok ? "matches" : "does not match"}`, () => expect(matchUrl(url, grants).ok).toBe(ok));
  test("a refusal names the grants", () => {
    expect(matchUrl("http://127.0.0.2/", ["http://127.0.0.1:1/*"])).toEqual({ ok: false, reason: "outside granted url 'http://127.0.0.1:1/*'" });
  });
});

describe("classifyAddress", () => {
  const cases: [string, string | true][] = [
    ["93.184.216.34", true],
    ["2606:2800:220:1:248:1893:25c8:1946", true],
    ["127.0.0.1", "loopback"],
    ["127.255.255.254", "loopback"],
    ["::1", "loopback"],
    ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:7f00:1", "loopback"],
    ["10.0.0.1", "private"],
    ["172.16.0.1", "private"],
    ["192.168.1.1", "private"],
    ["::ffff:192.168.1.1", "private"],
    ["169.254.169.254", "linkLocal"],
    ["fe80::1", "linkLocal"],
    ["100.64.0.1", "carrierGradeNat"],
    ["100.100.100.200", "carrierGradeNat"],
    ["224.0.0.1", "multicast"],
    ["ff02::1", "multicast"],
    ["0.0.0.0", "unspecified"],
    ["::", "unspecified"],
    ["fd00:ec2::254", "uniqueLocal"],
    ["255.255.255.255", "broadcast"],
    ["64:ff9b::7f00:1", "rfc6052"],
    ["2002:7f00:1::", "6to4"],
    ["2001::1", "teredo"],
    ["240.0.0.1", "reserved"],
    ["not-an-address", "invalid"],
  ];
  for (const [a, want] of cases) {
    test(`${a} ${want === true ? "is reachable" : `is refused as ${want}`}`, () => {
      const v = classifyAddress(a, 80, []);
      if (want === true) expect(v.ok).toBe(true);
      else expect(v).toMatchObject({ ok: false, range: want });
    });
  }
  test("a grant naming the exact address and port opens it, in any spelling", () => {
    expect(classifyAddress("127.0.0.1", 8080, ["http://127.0.0.1:8080/*"]).ok).toBe(true);
    expect(classifyAddress("::ffff:127.0.0.1", 8080, ["http://2130706433:8080/*"]).ok).toBe(true);
    expect(classifyAddress("::1", 9000, ["http://[0:0::1]:9000/x"]).ok).toBe(true);
  });
  test("but not another port, another address or a name", () => {
    expect(classifyAddress("127.0.0.1", 8081, ["http://127.0.0.1:8080/*"]).ok).toBe(false);
    expect(classifyAddress("127.0.0.2", 8080, ["http://127.0.0.1:8080/*"]).ok).toBe(false);
    expect(classifyAddress("127.0.0.1", 80, ["http://localhost/*"]).ok).toBe(false);
  });
});

describe("parseTimeout and cut", () => {
  const t: [string, number | null][] = [["30s", 30_000], ["1s", 1000], ["500ms", 500], ["120s", 120_000], ["121s", null], ["0s", null], ["1m", null], ["30", null], ["-1s", null], ["1.5s", null]];
  for (const [text, ms] of t) test(`--timeout ${text}`, () => expect(parseTimeout(text)).toBe(ms));
  test("cut keeps whole characters", () => {
    expect(cut("héllo", 2)).toEqual({ text: "h", truncated: true });
    expect(cut("héllo", 3)).toEqual({ text: "hé", truncated: true });
    expect(cut("héllo", 100)).toEqual({ text: "héllo", truncated: false });
  });
});

describe("run without the broker", () => {
  test("is denied outside the grant before anything else", async () => {
    const p = webPageRead.run({ url: "http://127.0.0.2/" }, { url: ["http://127.0.0.1:1/*"] });
    await expect(p).rejects.toMatchObject({ code: Exit.denied, message: "cannot read 'http://127.0.0.2/': outside granted url 'http://127.0.0.1:1/*'" });
  });
  test("is unavailable (69) without a browser", async () => {
    const p = webPageRead.run({ url: "http://127.0.0.1:1/" }, { url: ["http://127.0.0.1:1/*"] });
    await expect(p).rejects.toBeInstanceOf(VivError);
    await expect(p).rejects.toMatchObject({ code: Exit.unavailable });
  });
});

// ---------------------------------------------------------------------------------------------
// The filtering proxy, spoken to as the browser would

describe("WebProxy", () => {
  let dir: string;
  let origin: ReturnType<typeof Bun.serve>;
  let trap: net.Server;
  let trapConnections = 0;
  let proxy: WebProxy;
  let grants: string[] = [];
  const blocked: string[] = [];
  /** Names the proxy resolved, and what the test's resolver answers for each. */
  const lookups: string[] = [];
  const zone = new Map<string, string[]>();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "vivary-proxy-"));
    origin = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (req) => new Response(`hello ${new URL(req.url).pathname} host=${req.headers.get("host")}`) });
    trap = net.createServer((s) => {
      trapConnections++;
      s.destroy();
    });
    await new Promise<void>((r) => trap.listen(0, "127.0.0.1", r));
    proxy = new WebProxy(join(dir, "proxy.sock"), null, {
      grants: () => grants,
      onBlocked: (d, why) => blocked.push(`${d} ${why}`),
      onBytes: () => true,
      resolve: async (host) => {
        lookups.push(host);
        const a = zone.get(host);
        if (!a) throw Object.assign(new Error("not found"), { code: "ENOTFOUND" });
        return a;
      },
    });
    await proxy.ready();
  });
  afterAll(() => {
    proxy.close();
    origin.stop(true);
    trap.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Sends raw bytes to the proxy and returns everything it answers until it closes or goes quiet. */
  async function ask(raw: string): Promise<string> {
    return await new Promise((resolve) => {
      const s = net.createConnection(join(dir, "proxy.sock"));
      let out = "";
      const done = () => {
        s.destroy();
        resolve(out);
      };
      s.on("data", (d) => {
        out += d.toString();
        if (/\r\n\r\n/.test(out) && (/Content-Length: 0/i.test(out) || /hello|vivary: /.test(out) || / 200 Connection/.test(out))) done();
      });
      s.on("close", done);
      s.on("error", done);
      s.write(raw);
    });
  }

  test("a granted plain request reaches the origin, with its own Host", async () => {
    const port = origin.port;
    grants = [`http://127.0.0.1:${port}/*`];
    const out = await ask(`GET http://127.0.0.1:${port}/a HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`);
    expect(out).toStartWith("HTTP/1.1 200");
    expect(out).toContain(`hello /a host=127.0.0.1:${port}`);
  });

  test("an address spelled differently is the same address", async () => {
    const port = origin.port;
    grants = [`http://127.0.0.1:${port}/*`];
    const out = await ask(`GET http://2130706433:${port}/b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    expect(out).toContain("hello /b");
  });

  test("a request outside the grant is refused before any name is resolved", async () => {
    grants = [`http://127.0.0.1:${origin.port}/*`];
    blocked.length = 0;
    lookups.length = 0;
    zone.set("denied.test", ["127.0.0.1"]);
    expect(await ask(`GET http://denied.test/ HTTP/1.1\r\nHost: denied.test\r\n\r\n`)).toStartWith("HTTP/1.1 403");
    expect(await ask(`CONNECT denied.test:443 HTTP/1.1\r\nHost: denied.test:443\r\n\r\n`)).toStartWith("HTTP/1.1 403");
    expect(blocked).toEqual(["http://denied.test/ outside the grant", "denied.test:443 outside the grant"]);
    expect(lookups).toEqual([]);
  });

  test("a granted name is resolved once per request and the checked address is the one connected to", async () => {
    const port = origin.port;
    grants = [`http://granted.test:${port}/*`, `http://127.0.0.1:${port}/*`];
    lookups.length = 0;
    zone.set("granted.test", ["127.0.0.1"]);
    const out = await ask(`GET http://granted.test:${port}/c HTTP/1.1\r\nHost: granted.test:${port}\r\nConnection: close\r\n\r\n`);
    expect(out).toContain(`hello /c host=granted.test:${port}`);
    expect(lookups).toEqual(["granted.test"]);
  });

  test("a granted name whose addresses are all special and unnamed is refused, and nothing connects", async () => {
    const port = (trap.address() as net.AddressInfo).port;
    grants = [`http://rebind.test:${port}/*`];
    blocked.length = 0;
    lookups.length = 0;
    zone.set("rebind.test", ["::ffff:127.0.0.1", "10.0.0.1", "169.254.169.254"]);
    const before = trapConnections;
    expect(await ask(`GET http://rebind.test:${port}/ HTTP/1.1\r\nHost: rebind.test\r\n\r\n`)).toStartWith("HTTP/1.1 403");
    expect(blocked).toEqual([`http://rebind.test:${port}/ 'rebind.test' is a loopback address (127.0.0.1) that no grant names`]);
    expect(lookups).toEqual(["rebind.test"]);
    expect(trapConnections).toBe(before);
  });

  test("a granted name that resolves to loopback is refused over plain HTTP and CONNECT, and nothing connects", async () => {
    const port = (trap.address() as net.AddressInfo).port;
    zone.set("localhost", ["127.0.0.1"]);
    grants = [`http://localhost:${port}/*`, `https://localhost:${port}/`];
    blocked.length = 0;
    const before = trapConnections;
    expect(await ask(`GET http://localhost:${port}/ HTTP/1.1\r\nHost: localhost\r\n\r\n`)).toStartWith("HTTP/1.1 403");
    expect(await ask(`CONNECT localhost:${port} HTTP/1.1\r\nHost: localhost:${port}\r\n\r\n`)).toStartWith("HTTP/1.1 403");
    expect(blocked).toEqual([
      `http://localhost:${port}/ 'localhost' is a loopback address (127.0.0.1) that no grant names`,
      `localhost:${port} 'localhost' is a loopback address (127.0.0.1) that no grant names`,
    ]);
    expect(trapConnections).toBe(before);
  });

  test("CONNECT, Upgrade and origin-form requests to another port are refused", async () => {
    const port = (trap.address() as net.AddressInfo).port;
    grants = [`http://127.0.0.1:${origin.port}/*`];
    const before = trapConnections;
    expect(await ask(`CONNECT 127.0.0.1:${port} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`)).toStartWith("HTTP/1.1 403");
    expect(await ask(`CONNECT 2130706433:${port} HTTP/1.1\r\nHost: x\r\n\r\n`)).toStartWith("HTTP/1.1 403");
    expect(await ask(`GET http://127.0.0.1:${port}/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`)).toStartWith("HTTP/1.1 403");
    expect(await ask(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`)).toStartWith("HTTP/1.1 400");
    expect(trapConnections).toBe(before);
  });

  test("a CONNECT to a granted origin is tunnelled", async () => {
    grants = [`https://127.0.0.1:${origin.port}/`];
    expect(await ask(`CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\nHost: x\r\n\r\n`)).toStartWith("HTTP/1.1 200 Connection Established");
  });
});
