// A flood of protocol violations for abuse tests: N connections to an agent's socket, at most P
// at once, each sending a frame of an unknown type and reading until the broker closes it.
// Prints how many ERROR frames (exit 76) came back.
//
//   node raw-flood.mjs SOCKET N P
import net from "node:net";

const [sock, total, parallel] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4] ?? 4)];
const bad = Buffer.from("0000000142", "hex");

function one() {
  return new Promise((resolve) => {
    let got = Buffer.alloc(0);
    const s = net.createConnection(sock, () => s.write(bad));
    s.on("data", (d) => (got = Buffer.concat([got, d])));
    s.on("error", () => {});
    s.on("close", () => resolve(got.length >= 6 && got[4] === 0x7f && got[5] === 76 ? 1 : 0));
  });
}

let next = 0;
let errors = 0;
async function worker() {
  while (next < total) {
    next++;
    const ok = await one();
    errors += ok;
  }
}
await Promise.all(Array.from({ length: parallel }, worker));
console.log(`errors=${errors}`);
