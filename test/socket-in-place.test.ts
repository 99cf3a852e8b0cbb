// The broker's sockets appear ready (broker/socket-in-place.ts): a socket is at its path only once
// it listens with its owner and mode, so a client that waits for the path never meets ECONNREFUSED
// or EACCES. Here on a real socket, and against the real broker binary, whose agent, model and
// operator sockets a tight loop watches from the moment it starts.
import { afterAll, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, type Stats, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { listenInPlace } from "../broker/socket-in-place.ts";
import { CATALOG } from "../capabilities/registry.ts";
import { stateLayout } from "../lib/paths.ts";
import { loadPolicyText } from "../policy/load.ts";

const dir = mkdtempSync(join(tmpdir(), "viv-sock-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const listen = (at: string) => Bun.listen({ unix: at, socket: { data() {} } });

test("the socket is at its path only once it listens, with its mode; the temporary name is gone", async () => {
  const path = join(dir, "a.sock");
  writeFileSync(path, "stale");
  let seenWhileBinding: boolean | undefined;
  const server = listenInPlace(path, { mode: 0o600 }, (at) => {
    const s = listen(at);
    seenWhileBinding = lstatSync(path).isSocket();
    return s;
  });
  try {
    expect(seenWhileBinding).toBe(false);
    const st = lstatSync(path);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(["a.sock"]);
    const client = await Bun.connect({ unix: path, socket: { data() {} } });
    client.end();
  } finally {
    server.stop(true);
  }
});

test("a socket that cannot be put in place is stopped and its temporary name removed", async () => {
  const path = join(dir, "b.sock");
  mkdirSync(path);
  writeFileSync(join(path, "x"), "");
  let at = "";
  expect(() => listenInPlace(path, { mode: 0o600 }, (a) => listen((at = a)))).toThrow();
  expect(existsSync(at)).toBe(false);
  // Stopped: nothing listens on the temporary name any more.
  await expect(Bun.connect({ unix: at, socket: { data() {} } })).rejects.toThrow();
});

test("the real broker's agent, model and operator sockets are accepting, and the agent's, from the first moment they exist", async () => {
  const policy = join(dir, "policy.kdl");
  const text = `provider "m" { kind "anthropic"; url "http://127.0.0.1:9"; credential "k"; }\nagent "sockwatch" {\n    grant "model-complete" { provider "m"; model "claude-*"; }\n}\n`;
  writeFileSync(policy, text);
  const agentUid = loadPolicyText([{ file: policy, text }], CATALOG).agents.get("sockwatch")!.uid;
  const owners = [agentUid, agentUid, process.getuid!()];
  for (let round = 0; round < 5; round++) {
    const state = join(dir, `state-${round}`);
    const L = stateLayout(state);
    const paths = [L.agentSocket("sockwatch"), L.agentModelSocket("sockwatch"), L.operatorSocket];
    const broker = Bun.spawn([join(import.meta.dir, "..", "dist", "bin", "viv-broker"), "--policy", policy, "--state", state], {
      stdin: "ignore", stdout: "ignore", stderr: "inherit", env: { PATH: "/usr/bin:/bin", VIVARY_VAULT_KEY: join(dir, `key-${round}`) },
    });
    try {
      // Busy-waits on all three at once, so each is looked at the moment it appears.
      const seen: (Stats | undefined)[] = [];
      const connects: Promise<unknown>[] = [];
      const end = performance.now() + 10_000;
      while (seen.filter(Boolean).length < paths.length && performance.now() < end) {
        for (const [i, p] of paths.entries()) {
          if (seen[i] || !existsSync(p)) continue;
          seen[i] = lstatSync(p);
          connects[i] = Bun.connect({ unix: p, socket: { data() {} } }).then((c) => c.end());
        }
      }
      for (const [i, st] of seen.entries()) {
        expect(st!.mode & 0o777).toBe(0o600);
        expect(st!.uid).toBe(owners[i]!);
      }
      expect(seen.length).toBe(paths.length);
      await Promise.all(connects);
    } finally {
      broker.kill("SIGTERM");
      await broker.exited;
    }
  }
}, 60_000);
