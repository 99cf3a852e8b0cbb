// The browser supervisor: one headless Chromium per agent, started on the agent's first page read
// and kept warm, restarted after it crashes or hangs, stopped with the broker or when the agent
// is killed or leaves the policy. Each browser runs as a dedicated unprivileged uid (the agent's
// uid + BROWSER_UID_OFFSET, never root, never the jail's own uid) with Chromium's sandbox on, in a
// network namespace of its own that holds only loopback: a socat there forwards the browser's
// proxy port to this agent's WebProxy socket, which is the one way out. DevTools is spoken over
// the browser's pipe (fds 3 and 4), so there is no DevTools endpoint for a page, a jail or
// another agent to reach. Concurrent calls of one agent get tabs of the same browser, up to a
// bound. The profile is wiped at every start, and pages open in an in-memory browser context, so
// nothing a page sends (cache, cookies, storage) is written to disk.
import { spawn, type ChildProcess } from "node:child_process";
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { Launcher } from "chrome-launcher";
import type { BlockedDestination, BrowserSession } from "../lib/browser.ts";
import { Cdp } from "../lib/cdp.ts";
import { Exit, VivError } from "../lib/exit.ts";
import { stateLayout } from "../lib/paths.ts";
import { WebProxy } from "./web-proxy.ts";

export const BROWSER_LIMITS = {
  /** Pages one agent may have open at once; a call beyond it is refused with 75. */
  tabsPerAgent: 4,
  /** How long a browser may take to start and answer its first command. */
  startMs: 20_000,
  /** Destinations kept in one call's summary record. */
  blockedPerCall: 32,
};

/** Browser uids sit above the agents' range, so no browser shares a uid with any jail. */
export const BROWSER_UID_OFFSET = 1_000_000;
export const browserUid = (agentUid: number) => agentUid + BROWSER_UID_OFFSET;

export const CHROMIUM = "/usr/lib/chromium/chromium";
/** The forwarder's port inside the browser's own network namespace; nothing else lives there. */
const PROXY_PORT = 3128;

/**
 * Started in a new network namespace as root: bring up loopback, start the forwarder to the
 * proxy socket and exec the browser, both as the browser's uid with no capabilities and a
 * parent-death signal. Arguments: uid, proxy socket, port, then the browser's argv.
 */
const NETNS_SCRIPT = [
  "ip link set lo up || exit 70",
  'uid=$1 sock=$2 port=$3; shift 3',
  'setpriv --reuid="$uid" --regid="$uid" --clear-groups --inh-caps=-all --bounding-set=-all --pdeathsig KILL -- socat -d -d "TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr" "UNIX-CONNECT:$sock" &',
  'exec setpriv --reuid="$uid" --regid="$uid" --clear-groups --inh-caps=-all --bounding-set=-all --pdeathsig KILL -- "$@"',
].join("\n");

function browserFlags(profile: string): string[] {
  const defaults = Launcher.defaultFlags().filter((f) => !f.startsWith("--disable-features="));
  return [
    ...defaults,
    "--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,InterestFeedContentSuggestions,CertificateTransparencyComponentUpdater,AutofillServerCommunication,PrivacySandboxSettings4,RenderDocument,NetworkPrediction,DnsOverHttps,WebRtcHideLocalIpsWithMdns,NetworkTimeServiceQuerying",
    "--headless",
    "--remote-debugging-pipe",
    `--user-data-dir=${profile}`,
    `--proxy-server=http://127.0.0.1:${PROXY_PORT}`,
    // Chrome sends loopback addresses around the proxy unless told otherwise.
    "--proxy-bypass-list=<-loopback>",
    "--block-new-web-contents",
    "--deny-permission-prompts",
    "--disable-extensions",
    "--no-pings",
    "--dns-prefetch-disable",
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--disable-dev-shm-usage",
    // --disable-component-update leaves components fetched on demand (one asks
    // update.googleapis.com at start, which the proxy would block on the first call's account):
    // their updater is sent to an address where nothing answers, never through the proxy.
    "--component-updater=url-source=http://0.0.0.0:1/",
    "about:blank",
  ];
}

interface CallState {
  blocked: BlockedDestination[];
  bytes: number;
  maxBytes: number;
  over: Promise<void>;
  fire: () => void;
}

/** Kills every process running as `uid`: what a browser leaves behind when its group is gone. */
function killUid(uid: number) {
  for (const pid of readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(pid)) continue;
    try {
      const m = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      if (m && Number(m[1]) === uid) process.kill(Number(pid), "SIGKILL");
    } catch {
      /* gone already */
    }
  }
}

class AgentBrowser {
  readonly uid: number;
  readonly dir: string;
  proc: ChildProcess | null = null;
  cdp: Cdp | null = null;
  /** The in-memory browser context every tab opens in: cookies and storage shared by the agent's calls, nothing on disk. */
  context = "";
  proxy: WebProxy | null = null;
  calls = new Set<CallState>();
  grants: readonly string[] = [];
  private starting: Promise<void> | null = null;
  private stderrTail: string[] = [];
  dead = false;

  constructor(
    readonly agent: string,
    agentUid: number,
    state: string,
    private readonly onGone: (b: AgentBrowser) => void,
  ) {
    this.uid = process.getuid?.() === 0 ? browserUid(agentUid) : (process.getuid?.() ?? 0);
    this.dir = join(stateLayout(state).agents, agent, "browser");
  }

  get pid(): number | null {
    return this.proc?.pid ?? null;
  }

  start(): Promise<void> {
    this.starting ??= this.launch().catch((e) => {
      this.kill(`start failed: ${(e as Error).message}`);
      throw e;
    });
    return this.starting;
  }

  private async launch() {
    const root = process.getuid?.() === 0;
    if (!root) throw new VivError(Exit.unavailable, "the browser needs a broker running as root (to give it its own uid and network namespace)");
    if (!existsSync(CHROMIUM)) throw new VivError(Exit.unavailable, `no browser at '${CHROMIUM}' (install Debian's chromium package)`);
    rmSync(this.dir, { recursive: true, force: true });
    const profile = join(this.dir, "profile");
    const home = join(this.dir, "home");
    for (const d of [this.dir, profile, home]) {
      mkdirSync(d, { mode: 0o700 });
      chownSync(d, this.uid, this.uid);
    }
    const sock = join(this.dir, "proxy.sock");
    this.proxy = new WebProxy(sock, this.uid, {
      grants: () => this.grants,
      onBlocked: (dest, reason) => {
        for (const c of this.calls) if (c.blocked.length < BROWSER_LIMITS.blockedPerCall && !c.blocked.some((b) => b.dest === dest)) c.blocked.push({ dest, reason });
      },
      onBytes: (n) => {
        let ok = true;
        for (const c of this.calls) {
          if ((c.bytes += n) <= c.maxBytes) continue;
          ok = false;
          c.fire();
        }
        return ok;
      },
    });
    await this.proxy.ready();

    const argv = ["--net", "--", "sh", "-c", NETNS_SCRIPT, "vivary-browser", String(this.uid), sock, String(PROXY_PORT), CHROMIUM, ...browserFlags(profile)];
    const env = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", HOME: home, XDG_CONFIG_HOME: join(home, ".config"), XDG_CACHE_HOME: join(home, ".cache"), LANG: "C.UTF-8" };
    const proc = spawn("unshare", argv, { stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"], detached: true, env });
    this.proc = proc;
    const toBrowser = proc.stdio[3] as Writable;
    const fromBrowser = proc.stdio[4] as Readable;
    const cdp = new Cdp((m) => toBrowser.write(`${m}\0`));
    this.cdp = cdp;
    let buf = "";
    fromBrowser.on("data", (chunk: Buffer) => {
      buf += chunk.toString("utf8");
      let i: number;
      while ((i = buf.indexOf("\0")) >= 0) {
        cdp.receive(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
      if (buf.length > 64 << 20) this.kill("a DevTools message over 64 MiB");
    });
    toBrowser.on("error", () => this.kill("DevTools pipe closed"));
    fromBrowser.on("close", () => this.kill("DevTools pipe closed"));
    proc.on("exit", (code, signal) => this.kill(`browser exited (${signal ?? `status ${code}`})`));
    proc.on("error", (e) => this.kill(`cannot start: ${e.message}`));

    // The forwarder says when it listens; the browser's own noise is drained and its tail kept.
    const forwarderUp = new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new VivError(Exit.unavailable, `browser network did not come up within ${BROWSER_LIMITS.startMs} ms${this.tail()}`)), BROWSER_LIMITS.startMs);
      let line = "";
      proc.stderr!.on("data", (chunk: Buffer) => {
        line += chunk.toString("utf8");
        const parts = line.split("\n");
        line = parts.pop()!.slice(-4096);
        for (const p of parts) {
          if (/socat.*listening on/.test(p)) {
            clearTimeout(t);
            resolve();
          }
          this.stderrTail.push(p.slice(0, 300));
          if (this.stderrTail.length > 5) this.stderrTail.shift();
        }
      });
      proc.on("exit", () => {
        clearTimeout(t);
        reject(new VivError(Exit.unavailable, `browser exited while starting${this.tail()}`));
      });
    });
    await forwarderUp;
    await cdp.send("Browser.getVersion", {}, undefined, BROWSER_LIMITS.startMs);
    const { browserContextId } = await cdp.send<{ browserContextId: string }>("Target.createBrowserContext", {}, undefined, BROWSER_LIMITS.startMs);
    this.context = browserContextId;
    await cdp.send("Browser.setDownloadBehavior", { behavior: "deny" }, undefined, BROWSER_LIMITS.startMs);
    await cdp.send("Browser.setDownloadBehavior", { behavior: "deny", browserContextId }, undefined, BROWSER_LIMITS.startMs);
  }

  private tail(): string {
    const last = this.stderrTail.filter((l) => !/dbus|socat/.test(l)).at(-1);
    return last ? `: ${last}` : "";
  }

  /** Ends the browser, its forwarder and proxy; pending commands fail. Idempotent. */
  kill(reason: string) {
    if (this.dead) return;
    this.dead = true;
    this.cdp?.close(reason);
    if (this.proc?.pid) {
      try {
        process.kill(-this.proc.pid, "SIGKILL");
      } catch {
        /* gone already */
      }
    }
    if (process.getuid?.() === 0) killUid(this.uid);
    this.proxy?.close();
    this.onGone(this);
  }
}

/** A call's use of the agent's browser: opened by the capability if it needs it, ended by the broker. */
export interface BrowserLease {
  open(limits: { maxLoadBytes: number }): Promise<BrowserSession>;
  /** Releases the tab slot; returns what the proxy refused during the call. */
  end(): BlockedDestination[];
}

export class Browsers {
  private byAgent = new Map<string, AgentBrowser>();

  constructor(private readonly state: string) {}

  /** The agent's browser's pid and open pages, for `viv ps`; null when none runs. */
  status(agent: string): { pid: number | null; pages: number } | null {
    const b = this.byAgent.get(agent);
    return b ? { pid: b.pid, pages: b.calls.size } : null;
  }

  lease(agent: string, agentUid: number, grants: readonly string[]): BrowserLease {
    let call: CallState | null = null;
    let browser: AgentBrowser | null = null;
    return {
      open: async ({ maxLoadBytes }) => {
        let b = this.byAgent.get(agent);
        if (!b || b.dead) {
          b = new AgentBrowser(agent, agentUid, this.state, (gone) => {
            if (this.byAgent.get(agent) === gone) this.byAgent.delete(agent);
          });
          this.byAgent.set(agent, b);
        }
        if (b.calls.size >= BROWSER_LIMITS.tabsPerAgent) throw new VivError(Exit.temporary, `the agent already has ${BROWSER_LIMITS.tabsPerAgent} pages open`);
        browser = b;
        let fire = () => {};
        const over = new Promise<void>((r) => (fire = r));
        call = { blocked: [], bytes: 0, maxBytes: maxLoadBytes, over, fire };
        b.calls.add(call);
        b.grants = grants;
        try {
          await b.start();
        } catch (e) {
          if (e instanceof VivError) throw e;
          throw new VivError(Exit.unavailable, `browser did not start: ${(e as Error).message}`);
        }
        const c = call;
        const bb = b;
        return {
          cdp: b.cdp!,
          browserContextId: b.context,
          blocked: () => c.blocked,
          loadedBytes: () => c.bytes,
          overLimit: c.over,
          fail: (reason) => bb.kill(reason),
        };
      },
      end: () => {
        if (browser && call) browser.calls.delete(call);
        return call?.blocked ?? [];
      },
    };
  }

  stopAgent(agent: string) {
    this.byAgent.get(agent)?.kill("agent stopped");
  }

  stop() {
    for (const b of [...this.byAgent.values()]) b.kill("broker stopped");
  }
}
