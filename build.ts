// Builds dist/: one compiled Bun executable (dist/bin/vivary) linked under every program and
// capability name, the static C stub (dist/libexec/viv-stub) that jails run for each call, the
// jails' seccomp filter (dist/libexec/viv-seccomp.bpf, written by images/seccomp.c with
// libseccomp), the probe of that filter (dist/libexec/viv-try-syscall), the nspawn jail's first
// process (dist/libexec/viv-jail-init) and root skeleton (dist/nspawn-root), the maker of the
// idmapped mounts of owner="keep" workspaces (dist/libexec/viv-idmap-mount), and the MCP bridge
// (dist/libexec/viv-mcp.mjs), one JavaScript file for the host's Node, which jails see under
// /usr: a compiled Bun executable would be some 100 MB copied into every agent's directory.
import { $ } from "bun";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CAPABILITIES } from "./capabilities/registry.ts";
import { writeNspawnRoot } from "./images/nspawn-root.ts";

const root = import.meta.dir;
const dist = join(root, "dist");
const bin = join(dist, "bin");
mkdirSync(bin, { recursive: true });
mkdirSync(join(dist, "libexec"), { recursive: true });

await $`cc -O2 -static -Wall -Wextra -Werror -o ${join(dist, "libexec", "viv-stub")} ${join(root, "stub", "viv-stub.c")}`;
await $`cc -O2 -static -Wall -Wextra -Werror -o ${join(dist, "libexec", "viv-model-relay")} ${join(root, "stub", "viv-model-relay.c")}`;
await $`cc -O2 -static -Wall -Wextra -Werror -o ${join(dist, "libexec", "viv-try-syscall")} ${join(root, "images", "try-syscall.c")}`;
await $`cc -O2 -static -Wall -Wextra -Werror -o ${join(dist, "libexec", "viv-jail-init")} ${join(root, "images", "jail-init.c")}`;
writeNspawnRoot(join(dist, "nspawn-root"));
await $`cc -O2 -static -Wall -Wextra -Werror -o ${join(dist, "libexec", "viv-idmap-mount")} ${join(root, "images", "idmap-mount.c")}`;
const gen = mkdtempSync(join(tmpdir(), "vivary-seccomp-"));
try {
  await $`cc -O2 -Wall -Wextra -Werror -o ${join(gen, "seccomp")} ${join(root, "images", "seccomp.c")} -lseccomp`;
  await $`${join(gen, "seccomp")} ${join(dist, "libexec", "viv-seccomp.bpf")}`;
} finally {
  rmSync(gen, { recursive: true, force: true });
}
// The audit log's checkpointer runs in a worker thread, so it is an entry point of its own.
await $`${process.execPath} build --compile --minify-whitespace --minify-syntax ${join(root, "bin", "vivary.ts")} ${join(root, "broker", "checkpointer.ts")} --outfile ${join(bin, "vivary")}`.quiet();

// --jitless: V8's JIT reserves more address space than a jail's `limits memory` may allow.
const mcp = join(dist, "libexec", "viv-mcp.mjs");
await $`${process.execPath} build --target=node --format=esm --minify-whitespace --minify-syntax --banner=${"#!/usr/bin/env -S node --jitless --no-expose-wasm"} ${join(root, "mcp", "viv-mcp.ts")} --outfile ${mcp}`.quiet();
chmodSync(mcp, 0o755);

for (const name of ["viv", "viv-broker", "viv-log", ...CAPABILITIES.keys()]) {
  rmSync(join(bin, name), { force: true });
  symlinkSync("vivary", join(bin, name));
}
console.log(`built ${bin}: vivary, viv, viv-broker, viv-log, ${[...CAPABILITIES.keys()].join(", ")}; ${join(dist, "libexec", "viv-stub")}, viv-model-relay, viv-seccomp.bpf, viv-try-syscall, viv-jail-init, viv-idmap-mount; ${join(dist, "nspawn-root")}; ${mcp}`);
