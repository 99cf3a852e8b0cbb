// viv-stub (dist/libexec/viv-stub) against scripted brokers on a Unix socket: when a connection
// ends before WELCOME, which a broker stopping or crashing does to calls it has not taken up, the
// stub sends the call again on a new connection; once WELCOME is in, it never does, since the call
// may have taken effect. Each scripted broker records every connection and the bytes it got.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeFrame, PROTOCOL_VERSION } from "../lib/frame.ts";

const STUB = join(import.meta.dir, "..", "dist", "libexec", "viv-stub");
const dir = mkdtempSync(join(tmpdir(), "viv-stub-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const cap = join(dir, "fs-file-write");
symlinkSync(STUB, cap);

const welcome = encodeFrame({ type: "welcome", version: PROTOCOL_VERSION });
const result = (exit: number, stdout: string) => encodeFrame({ type: "result", exit, stdout: Buffer.from(stdout), stderr: new Uint8Array(0) });

/** What the scripted broker does with its n-th connection (from 0) once the call's bytes are in. */
type Script = (n: number, s: Bun.Socket<{ n: number; got: Buffer }>) => void;

let serial = 0;
async function runStub(script: Script, { closeOnOpen = () => false }: { closeOnOpen?: (n: number) => boolean } = {}) {
  const path = join(dir, `b${serial++}.sock`);
  const got: Buffer[] = [];
  let conns = 0;
  const listener = Bun.listen<{ n: number; got: Buffer }>({
    unix: path,
    socket: {
      open(s) {
        s.data = { n: conns++, got: Buffer.alloc(0) };
        got.push(s.data.got);
        // Closed before a byte is read: the call's bytes are left unread, so the stub sees a reset.
        if (closeOnOpen(s.data.n)) s.terminate();
      },
      data(s, chunk) {
        s.data.got = Buffer.concat([s.data.got, chunk]);
        got[s.data.n] = s.data.got;
        // HELLO (11 bytes) and a whole CALL: its length is in the four bytes after HELLO.
        if (s.data.got.length >= 15 && s.data.got.length === 15 + s.data.got.readUInt32BE(11)) script(s.data.n, s);
      },
    },
  });
  try {
    const p = Bun.spawn([cap, "--path", "/workspace/x", "--content", "hi"], { env: { VIVARY_SOCKET: path }, stdout: "pipe", stderr: "pipe" });
    const [code, stdout, stderr] = await Promise.all([p.exited, new Response(p.stdout).text(), new Response(p.stderr).text()]);
    return { code, stdout, stderr, conns, got };
  } finally {
    listener.stop(true);
  }
}

test("a connection closed after the call was read but before WELCOME: the call is sent again and answered", async () => {
  const r = await runStub((n, s) => {
    if (n === 0) s.end();
    else s.write(Buffer.concat([welcome, result(3, "done\n")]));
  });
  expect(r).toMatchObject({ code: 3, stdout: "done\n", stderr: "", conns: 2 });
  // The same HELLO and CALL both times.
  expect(r.got[1]!.equals(r.got[0]!)).toBe(true);
  expect(r.got[0]!.subarray(20, 33).toString()).toBe("fs-file-write");
});

test("a connection reset with the call unread: the call is sent again and answered", async () => {
  const r = await runStub((_n, s) => void s.write(Buffer.concat([welcome, result(0, "ok\n")])), { closeOnOpen: (n) => n < 2 });
  expect(r).toMatchObject({ code: 0, stdout: "ok\n", stderr: "", conns: 3 });
});

test("after WELCOME a lost connection is never retried: the stub exits 76 on one connection", async () => {
  const r = await runStub((_n, s) => {
    s.write(welcome);
    s.end();
  });
  expect(r).toMatchObject({ code: 76, stdout: "", stderr: "fs-file-write: broker closed the connection: no result\n", conns: 1 });
});

test("an ERROR instead of WELCOME is the broker's answer, not a lost connection: no retry", async () => {
  const r = await runStub((_n, s) => {
    s.write(encodeFrame({ type: "error", exit: 76, message: "call before hello" }));
    s.end();
  });
  expect(r).toMatchObject({ code: 76, stderr: "fs-file-write: refused by broker: call before hello\n", conns: 1 });
});

test("a broker that drops every connection before WELCOME: the stub gives up with 69 after its wait", async () => {
  const r = await runStub((_n, s) => void s.end());
  expect(r.code).toBe(69);
  expect(r.stderr).toMatch(/^fs-file-write: broker closed the connection before its welcome: (Broken pipe|Connection reset by peer)\n$/);
  expect(r.conns).toBeGreaterThan(10);
}, 20_000);
