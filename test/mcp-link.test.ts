// The MCP bridge's broker connection (mcp/broker-link.ts) against the real broker binary
// (dist/bin/viv-broker), from the host side of an agent's socket: many calls share one
// connection and one hello; an idle connection is replaced; a broker that stops between calls is
// reconnected to once another listens; no broker at all is an error after the bounded wait. The
// audit log (viv-log --json) says which connection each call came on. The jail side, with the
// SDK's client, is test/bats/mcp.bats.
import { afterAll, afterEach, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeFrame, PROTOCOL_VERSION } from "../lib/frame.ts";
import { stateLayout } from "../lib/paths.ts";
import { BrokerLink, LinkError } from "../mcp/broker-link.ts";

const BIN = join(import.meta.dir, "..", "dist", "bin");
const dir = mkdtempSync(join(tmpdir(), "viv-mcp-link-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const out = join(dir, "out");
mkdirSync(out);
const policy = join(dir, "policy.kdl");
writeFileSync(policy, `agent "mcp-link" {\n    grant "fs-file-write" { path "${out}"; }\n}\n`);

let brokers: Bun.Subprocess[] = [];
afterEach(async () => {
  for (const b of brokers) b.kill("SIGTERM");
  await Promise.all(brokers.map((b) => b.exited));
  brokers = [];
});

async function startBroker(state: string) {
  const sock = stateLayout(state).agentSocket("mcp-link");
  const b = Bun.spawn([join(BIN, "viv-broker"), "--policy", policy, "--state", state], { stdin: "ignore", stdout: "ignore", stderr: "inherit", env: { PATH: "/usr/bin:/bin" } });
  brokers.push(b);
  for (let i = 0; i < 500 && !existsSync(sock); i++) await Bun.sleep(20);
  expect(existsSync(sock)).toBe(true);
  return { broker: b, sock };
}

/** The conn of each call record of the agent, in order. */
function callConns(state: string): number[] {
  const r = Bun.spawnSync([join(BIN, "viv-log"), "--state", state, "--agent", "mcp-link", "--json"], { env: { PATH: "/usr/bin:/bin" } });
  return r.stdout
    .toString()
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l))
    .filter((r) => r.kind === "call")
    .map((r) => r.conn);
}

const write = (link: BrokerLink, name: string, content: string) => link.call("fs-file-write", ["--path", join(out, name), "--content", content]);

test("calls, in turn or all at once, share one connection, answered in order", async () => {
  const state = join(dir, "s1");
  const { sock } = await startBroker(state);
  const link = new BrokerLink(sock);
  expect((await write(link, "a1", "one")).exit).toBe(0);
  const many = await Promise.all([2, 3, 4, 5].map((i) => write(link, `a${i}`, `n${i}`)));
  expect(many.map((r) => JSON.parse(r.stdout).path)).toEqual([2, 3, 4, 5].map((i) => join(out, `a${i}`)));
  const denied = await link.call("fs-file-write", ["--path", "/etc/x", "--content", "x"]);
  expect(denied).toEqual({ exit: 77, stdout: "", stderr: `fs-file-write: cannot write '/etc/x': outside granted path '${out}'\n` });
  link.close();
  expect(readFileSync(join(out, "a5"), "utf8")).toBe("n5");
  const conns = callConns(state);
  expect(conns).toHaveLength(5);
  expect(new Set(conns).size).toBe(1);
}, 30_000);

test("a connection idle for the refresh time is replaced before the next call", async () => {
  const state = join(dir, "s2");
  const { sock } = await startBroker(state);
  const link = new BrokerLink(sock, { refreshIdleMs: 0 });
  for (const i of [1, 2, 3]) expect((await write(link, `b${i}`, "x")).exit).toBe(0);
  link.close();
  expect(new Set(callConns(state)).size).toBe(3);
}, 30_000);

test("a broker that stopped between calls: the next call waits for the next broker, on a new connection", async () => {
  const state = join(dir, "s3");
  const first = await startBroker(state);
  const link = new BrokerLink(first.sock);
  expect((await write(link, "c1", "x")).exit).toBe(0);
  first.broker.kill("SIGTERM");
  await first.broker.exited;
  const pending = write(link, "c2", "y");
  await Bun.sleep(300);
  await startBroker(state);
  expect((await pending).exit).toBe(0);
  link.close();
  const conns = callConns(state);
  expect(conns).toHaveLength(2);
  expect(conns[0]).not.toBe(conns[1]);
}, 30_000);

test("with no broker, a call fails after the bounded wait with one line", async () => {
  const link = new BrokerLink(join(dir, "nowhere.sock"), { connectWaitMs: 300 });
  const t0 = performance.now();
  const err = await write(link, "d1", "x").catch((e) => e);
  expect(err).toBeInstanceOf(LinkError);
  expect(err.message).toStartWith("viv-mcp: cannot connect to the broker: ");
  expect(err.message).toContain("ENOENT");
  expect(performance.now() - t0).toBeLessThan(5_000);
  expect(existsSync(join(out, "d1"))).toBe(false);
});

/** A scripted broker: `answer(n, socket)` runs once the n-th connection (from 0) sent its CALL. */
function scriptedBroker(path: string, answer: (n: number, s: Bun.Socket<{ n: number; got: number }>) => void) {
  let conns = 0;
  const listener = Bun.listen<{ n: number; got: number }>({
    unix: path,
    socket: {
      open(s) {
        s.data = { n: conns++, got: 0 };
      },
      data(s, chunk) {
        s.data.got += chunk.length;
        if (s.data.got > 11) answer(s.data.n, s); // HELLO is 11 bytes; the CALL came with or after it
      },
    },
  });
  return { stop: () => listener.stop(true), conns: () => conns };
}

const welcome = encodeFrame({ type: "welcome", version: PROTOCOL_VERSION });
const okResult = encodeFrame({ type: "result", exit: 0, stdout: Buffer.from("done"), stderr: new Uint8Array(0) });

test("a connection that ends before WELCOME: the call is sent again on a new one and answered", async () => {
  const b = scriptedBroker(join(dir, "drop-first.sock"), (n, s) => (n === 0 ? s.end() : s.write(Buffer.concat([welcome, okResult]))));
  const link = new BrokerLink(join(dir, "drop-first.sock"));
  expect(await write(link, "e1", "x")).toEqual({ exit: 0, stdout: "done", stderr: "" });
  link.close();
  b.stop();
  expect(b.conns()).toBe(2);
});

test("after WELCOME a connection that ends before the result fails the call, without sending it again", async () => {
  const b = scriptedBroker(join(dir, "drop-after.sock"), (_n, s) => {
    s.write(welcome);
    s.end();
  });
  const link = new BrokerLink(join(dir, "drop-after.sock"));
  const err = await write(link, "e2", "x").catch((e) => e);
  link.close();
  b.stop();
  expect(err).toBeInstanceOf(LinkError);
  expect(err.message).toBe("viv-mcp: the broker closed the connection before the call's result; it may or may not have taken effect");
  expect(b.conns()).toBe(1);
});
