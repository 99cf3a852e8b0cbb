// The edges of a connection against the real broker binary (dist/bin/viv-broker), from the host
// side of an agent's socket. A stop (SIGTERM drains, broker/server.ts drain()): a CALL that had
// begun to arrive is read to its end and served, while a connection with nothing on the way is
// closed at once. A client gone before its WELCOME: its call is not run, since a client that
// loses its connection before WELCOME may send the call again (vivary-protocol(7)); one gone
// after WELCOME has its call run to the end. With viv-stub's resend before WELCOME
// (test/stub.test.ts), no call a stub has sent is lost to a stop, nor run twice.
import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeBody, encodeFrame, type Frame, PROTOCOL_VERSION } from "../lib/frame.ts";
import { openAuditReadOnly } from "../broker/audit.ts";
import { stateLayout } from "../lib/paths.ts";

const BIN = join(import.meta.dir, "..", "dist", "bin");
const dir = mkdtempSync(join(tmpdir(), "viv-conn-edges-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const out = join(dir, "out");
mkdirSync(out);
const policy = join(dir, "policy.kdl");
writeFileSync(policy, `agent "drain" {\n    grant "fs-file-write" { path "${out}"; }\n}\n`);

/** A raw client connection: the frames it received, and whether the broker closed it. */
async function connect(path: string) {
  const frames: Frame[] = [];
  let buf = Buffer.alloc(0);
  let closed = false;
  const sock = await Bun.connect({
    unix: path,
    socket: {
      data(_s, chunk) {
        buf = Buffer.concat([buf, chunk]);
        while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
          frames.push(decodeBody(buf.subarray(4, 4 + buf.readUInt32BE(0))));
          buf = buf.subarray(4 + buf.readUInt32BE(0));
        }
      },
      close() {
        closed = true;
      },
    },
  });
  return { sock, frames, closed: () => closed };
}

async function until(what: () => boolean, ms = 5000) {
  const end = performance.now() + ms;
  while (!what()) {
    if (performance.now() > end) throw new Error("timed out");
    await Bun.sleep(5);
  }
}

test("a stop serves the CALL that was arriving and closes the idle connection", async () => {
  const state = join(dir, "s");
  const sockPath = stateLayout(state).agentSocket("drain");
  const broker = Bun.spawn([join(BIN, "viv-broker"), "--policy", policy, "--state", state], { stdin: "ignore", stdout: "ignore", stderr: "inherit", env: { PATH: "/usr/bin:/bin" } });
  await until(() => existsSync(sockPath), 10_000);

  const call = encodeFrame({ type: "call", cap: "fs-file-write", args: ["--path", join(out, "late"), "--content", "served"] });
  const arriving = await connect(sockPath);
  arriving.sock.write(Buffer.concat([encodeFrame({ type: "hello", version: PROTOCOL_VERSION }), call.subarray(0, 20)]));
  const idle = await connect(sockPath);
  idle.sock.write(encodeFrame({ type: "hello", version: PROTOCOL_VERSION }));
  await until(() => arriving.frames.length === 1 && idle.frames.length === 1);
  expect(arriving.frames[0]!.type).toBe("welcome");

  broker.kill("SIGTERM");
  await until(() => idle.closed());
  expect(existsSync(sockPath)).toBe(false);
  expect(arriving.closed()).toBe(false);
  arriving.sock.write(call.subarray(20));
  await until(() => arriving.closed());
  expect(arriving.frames.map((f) => f.type)).toEqual(["welcome", "result"]);
  expect((arriving.frames[1] as Extract<Frame, { type: "result" }>).exit).toBe(0);
  expect(readFileSync(join(out, "late"), "utf8")).toBe("served");
  expect(idle.frames.map((f) => f.type)).toEqual(["welcome"]);
  expect(await broker.exited).toBe(0);
}, 30_000);

test("a client gone before its WELCOME has its call not run; one gone after it has its call run", async () => {
  const state = join(dir, "s2");
  const sockPath = stateLayout(state).agentSocket("drain");
  const broker = Bun.spawn([join(BIN, "viv-broker"), "--policy", policy, "--state", state], { stdin: "ignore", stdout: "ignore", stderr: "inherit", env: { PATH: "/usr/bin:/bin" } });
  try {
    await until(() => existsSync(sockPath), 10_000);
    const hello = encodeFrame({ type: "hello", version: PROTOCOL_VERSION });
    const call = (name: string) => encodeFrame({ type: "call", cap: "fs-file-write", args: ["--path", join(out, name), "--content", "x"] });
    // Gone at once: HELLO and CALL written, then the connection closed before any reply.
    const gone = await connect(sockPath);
    gone.sock.write(Buffer.concat([hello, call("gone")]));
    gone.sock.end();
    // Gone after WELCOME: the call was welcomed, then its client left.
    const late = await connect(sockPath);
    late.sock.write(Buffer.concat([hello, call("late")]));
    await until(() => late.frames.length >= 1);
    late.sock.end();
    await until(() => existsSync(join(out, "late")));
    // Both calls have their outcome on the record; only the welcomed one ran.
    const outcomes = () => {
      const db = openAuditReadOnly(stateLayout(state).audit);
      try {
        return db.query("SELECT fields FROM records WHERE kind = 'result' ORDER BY seq").all().map((r) => JSON.parse((r as { fields: string }).fields));
      } finally {
        db.close();
      }
    };
    await until(() => outcomes().length === 2);
    expect(outcomes().map((f) => f.exit).sort()).toEqual([0, 69]);
    expect(outcomes().find((f) => f.exit === 69).reason).toBe("the connection closed before the broker's welcome; the call was not run");
    expect(existsSync(join(out, "gone"))).toBe(false);
  } finally {
    broker.kill("SIGTERM");
    await broker.exited;
  }
}, 30_000);
