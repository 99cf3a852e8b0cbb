// Builds dist/: one compiled Bun executable (dist/bin/vivary) linked under every program and
// capability name, and the static C stub (dist/libexec/viv-stub) that jails run for each call.
import { $ } from "bun";
import { mkdirSync, rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { CAPABILITIES } from "./capabilities/registry.ts";

const root = import.meta.dir;
const dist = join(root, "dist");
const bin = join(dist, "bin");
mkdirSync(bin, { recursive: true });
mkdirSync(join(dist, "libexec"), { recursive: true });

await $`cc -O2 -static -Wall -Wextra -Werror -o ${join(dist, "libexec", "viv-stub")} ${join(root, "stub", "viv-stub.c")}`;
await $`cc -O2 -static -Wall -Wextra -Werror -o ${join(dist, "libexec", "viv-model-relay")} ${join(root, "stub", "viv-model-relay.c")}`;
await $`${process.execPath} build --compile --minify-whitespace --minify-syntax ${join(root, "bin", "vivary.ts")} --outfile ${join(bin, "vivary")}`.quiet();

for (const name of ["viv", "viv-broker", "viv-log", ...CAPABILITIES.keys()]) {
  rmSync(join(bin, name), { force: true });
  symlinkSync("vivary", join(bin, name));
}
console.log(`built ${bin}: vivary, viv, viv-broker, viv-log, ${[...CAPABILITIES.keys()].join(", ")}; ${join(dist, "libexec", "viv-stub")}, viv-model-relay`);
