// A raw protocol client for abuse tests: speaks (or breaks) the vivary wire protocol by hand, so
// tests can do what a hostile agent would. Plain Node-compatible JavaScript, so it also runs
// inside a jail with the host's /usr/bin/node.
//
//   node raw-client.mjs SOCKET STEP...
//   STEP: hello | call:JSON-ARRAY (cap then args) | hellocall:JSON-ARRAY (both frames in one
//         write, so the broker reads them together, as from the stub) | hex:BYTES |
//         slowhex:BYTES:MS | len:N (a length prefix alone) | wait:MS | read (print frames until
//         the broker closes, or until a result: the broker keeps a connection open for the next
//         call)
// Prints one JSON line per frame received, then "closed".
import net from "node:net";
import { callFrame, decodeFrames, helloFrame } from "./wire.mjs";

const [sock, ...steps] = process.argv.slice(2);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const s = net.createConnection(sock);
let pending = Buffer.alloc(0);
let closed = false;
let onResult = () => {};
const closedP = new Promise((r) => s.on("close", () => ((closed = true), r())));
s.on("error", (e) => {
  if (!closed) console.log(JSON.stringify({ type: "socket-error", code: e.code }));
});
s.on("data", (d) => {
  const r = decodeFrames(Buffer.concat([pending, d]));
  pending = r.rest;
  for (const f of r.frames) {
    console.log(JSON.stringify(f));
    if (f.type === "result") onResult();
  }
});
await new Promise((r, j) => (s.once("connect", r), s.once("error", j))).catch((e) => {
  console.log(JSON.stringify({ type: "connect-error", code: e.code }));
  process.exit(1);
});

const write = (b) => new Promise((r) => (closed ? r() : s.write(b, () => r())));
for (const step of steps) {
  const [kind, ...rest] = step.split(":");
  const arg = rest.join(":");
  const [cap, ...args] = kind.endsWith("call") ? JSON.parse(arg) : [];
  if (kind === "hello") await write(helloFrame());
  else if (kind === "call") await write(callFrame(cap, args));
  else if (kind === "hellocall") await write(Buffer.concat([helloFrame(), callFrame(cap, args)]));
  else if (kind === "hex") await write(Buffer.from(arg, "hex"));
  else if (kind === "len") {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(Number(arg));
    await write(b);
  } else if (kind === "slowhex") {
    const [h, ms] = arg.split(":");
    for (const byte of Buffer.from(h, "hex")) {
      if (closed) break;
      await write(Buffer.from([byte]));
      await sleep(Number(ms));
    }
  } else if (kind === "wait") await sleep(Number(arg));
  else if (kind === "read") await Promise.race([closedP, new Promise((r) => (onResult = r)), sleep(30000)]);
  else throw new Error(`unknown step ${step}`);
}
if (!closed) s.end();
await closedP;
console.log("closed");
process.exit(0);
