// Finds vivary's own files at run time, whether running from a build (dist/bin/vivary with
// dist/libexec beside it) or from source (bun bin/…ts, with the build's dist/ in the checkout).
import { existsSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { Exit, VivError } from "./exit.ts";

export const SOURCE_ROOT = join(import.meta.dir, "..");
const compiled = import.meta.dir.startsWith("/$bunfs") || basename(process.execPath) === "vivary";

/** dist/ of the running build, or of the checkout when running from source. */
export function distDir(): string {
  return compiled ? dirname(dirname(process.execPath)) : join(SOURCE_ROOT, "dist");
}

export function stubBinary(): string {
  const p = process.env.VIVARY_STUB_BINARY ?? join(distDir(), "libexec", "viv-stub");
  if (!existsSync(p)) throw new Error(`viv-stub not found at '${p}'; run 'bun run build'`);
  return p;
}

/** argv that runs another vivary program (viv-broker, …) the same way this one was run. */
export function selfCommand(program: string): string[] {
  if (compiled) return [join(dirname(process.execPath), program)];
  return [process.execPath, join(SOURCE_ROOT, "bin", `${program}.ts`)];
}

/** The jails' seccomp filter, a BPF program written by the build (images/seccomp.c). */
export function seccompFilter(): string {
  const p = join(distDir(), "libexec", "viv-seccomp.bpf");
  if (!existsSync(p)) throw new VivError(Exit.unavailable, `the jail's seccomp filter is missing at '${p}'; run 'bun run build.ts'`);
  return p;
}

/** The MCP bridge (dist/libexec/viv-mcp.mjs), which each agent's directory gets a copy of. */
export function mcpBridge(): string {
  const p = process.env.VIVARY_MCP_BRIDGE ?? join(distDir(), "libexec", "viv-mcp.mjs");
  if (!existsSync(p)) throw new Error(`viv-mcp.mjs not found at '${p}'; run 'bun run build'`);
  return p;
}
