// A raw protocol client for abuse tests: speaks (or breaks) the vivary wire protocol by hand, so
// tests can do what a hostile agent would. Plain Node-compatible JavaScript, so it also runs
// inside a jail with the host's /usr/bin/node.
//
//   node raw-client.mjs SOCKET STEP...
//   STEP: hello | call:JSON-ARRAY (cap then args) | hex:BYTES | slowhex:BYTES:MS | len:N (a length
//         prefix alone) | wait:MS | read (print frames until the broker closes, or until a
//         result: the broker keeps a connection open for the next call)
// Prints one JSON line per frame received, then "closed".
import net from "node:net";

const [sock, ...steps] = process.argv.slice(2);

function frame(type, payload) {
  const b = Buffer.alloc(5 + payload.length);
  b.writeUInt32BE(1 + payload.length, 0);
  b[4] = type;
  payload.copy(b, 5);
  return b;
}
const str = (s) => {
  const d = Buffer.from(s, "utf8");
  const l = Buffer.alloc(4);
  l.writeUInt32BE(d.length);
  return Buffer.concat([l, d]);
};
const hello = () => frame(0x01, Buffer.concat([Buffer.from("VIVR"), Buffer.from([0, 1])]));
function call(list) {
  const [cap, ...args] = list;
  const n = Buffer.alloc(2);
  n.writeUInt16BE(args.length);
  return frame(0x10, Buffer.concat([str(cap), n, ...args.map(str)]));
}

function decode(buf) {
  const out = [];
  let at = 0;
  while (buf.length - at >= 4) {
    const len = buf.readUInt32BE(at);
    if (buf.length - at - 4 < len) break;
    const b = buf.subarray(at + 4, at + 4 + len);
    at += 4 + len;
    const t = b[0];
    if (t === 0x02) out.push({ type: "welcome", version: b.readUInt16BE(1) });
    else if (t === 0x11) {
      const ol = b.readUInt32BE(2);
      const stdout = b.subarray(6, 6 + ol).toString();
      const stderr = b.subarray(10 + ol).toString();
      out.push({ type: "result", exit: b[1], stdout, stderr });
    } else if (t === 0x7f) out.push({ type: "error", exit: b[1], message: b.subarray(6).toString() });
    else out.push({ type: "unknown", hex: b.toString("hex") });
  }
  return { frames: out, rest: buf.subarray(at) };
}

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
  const r = decode(Buffer.concat([pending, d]));
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
  if (kind === "hello") await write(hello());
  else if (kind === "call") await write(call(JSON.parse(arg)));
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
