// Builds dist/: one compiled Bun executable (dist/bin/vivary) linked under every program and
// capability name, the static C stub (dist/libexec/viv-stub) that jails run for each call, the
// jails' seccomp filter (dist/libexec/viv-seccomp.bpf, written by images/seccomp.c with
// libseccomp) and the probe of that filter (dist/libexec/viv-try-syscall).
import { $ } from "bun";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CAPABILITIES } from "./capabilities/registry.ts";

const root = import.meta.dir;
const dist = join(root, "dist");
const bin = join(dist, "bin");
mkdirSync(bin, { recursive: true });
mkdirSync(join(dist, "libexec"), { recursive: true });

await $`cc -O2 -static -Wall -Wextra -Werror -o ${join(dist, "libexec", "viv-stub")} ${join(root, "stub", "viv-stub.c")}`;
await $`cc -O2 -static -Wall -Wextra -Werror -o ${join(dist, "libexec", "viv-try-syscall")} ${join(root, "images", "try-syscall.c")}`;
const gen = mkdtempSync(join(tmpdir(), "vivary-seccomp-"));
try {
  await $`cc -O2 -Wall -Wextra -Werror -o ${join(gen, "seccomp")} ${join(root, "images", "seccomp.c")} -lseccomp`;
  await $`${join(gen, "seccomp")} ${join(dist, "libexec", "viv-seccomp.bpf")}`;
} finally {
  rmSync(gen, { recursive: true, force: true });
}
// The audit log's checkpointer runs in a worker thread, so it is an entry point of its own.
await $`${process.execPath} build --compile --minify-whitespace --minify-syntax ${join(root, "bin", "vivary.ts")} ${join(root, "broker", "checkpointer.ts")} --outfile ${join(bin, "vivary")}`.quiet();

for (const name of ["viv", "viv-broker", "viv-log", ...CAPABILITIES.keys()]) {
  rmSync(join(bin, name), { force: true });
  symlinkSync("vivary", join(bin, name));
}
console.log(`built ${bin}: vivary, viv, viv-broker, viv-log, ${[...CAPABILITIES.keys()].join(", ")}; ${join(dist, "libexec", "viv-stub")}, viv-seccomp.bpf, viv-try-syscall`);
