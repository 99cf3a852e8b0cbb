// The host baseline with no vivary: the same durable replace the broker does for fs-file-write
// (write a temporary file, fdatasync, rename over the target, fsync the directory), in one
// process, timed per call. Writes the same files as loop.sh, for stats.ts.
// usage: bun bench/host-write.ts DIR OUT WARMUP N CONTENT
import { closeSync, fdatasyncSync, fsyncSync, openSync, renameSync, writeFileSync, writeSync } from "node:fs";

const [dir, out, warmArg, nArg, content] = process.argv.slice(2);
if (!dir || !out || !warmArg || !nArg || content === undefined) {
  process.stderr.write("usage: bun bench/host-write.ts DIR OUT WARMUP N CONTENT\n");
  process.exit(64);
}
const data = Buffer.from(content);
const target = `${dir}/out.txt`;
const tmp = `${dir}/.out.txt.${process.pid}.tmp`;

function durableWrite() {
  const fd = openSync(tmp, "wx", 0o644);
  try {
    writeSync(fd, data);
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, target);
  const dfd = openSync(dir, "r");
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}

const now = () => performance.timeOrigin + performance.now(); // ms since the epoch
for (let i = 0; i < Number(warmArg); i++) durableWrite();
const n = Number(nArg);
const d = new Array<string>(n);
const start = now();
for (let i = 0; i < n; i++) {
  const s = performance.now();
  durableWrite();
  d[i] = ((performance.now() - s) * 1000).toFixed(1);
}
const end = now();
writeFileSync(out, `${d.join("\n")}\n`);
writeFileSync(`${out}.meta`, `start=${(start / 1000).toFixed(6)}\nend=${(end / 1000).toFixed(6)}\nbad=0\nfirst_error=\n`);
