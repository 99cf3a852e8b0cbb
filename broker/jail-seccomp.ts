// The seccomp filter every jail runs under: the BPF program the build writes with libseccomp
// (images/seccomp.c says what it allows and denies, and why). bwrap reads it from an fd
// (`--seccomp FD`), closes that fd, and installs the filter last, just before it executes the
// agent's command, so the filter only has to allow what the agent's programs need. No jail
// starts without it: a build without the filter fails the run (exit 69).
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { seccompFilter } from "../lib/install.ts";

/** The fd bwrap reads the filter from: the first after stdin, stdout and stderr. */
export const SECCOMP_FD = 3;

/** bwrap's arguments that load the filter from SECCOMP_FD. */
export function seccompArgs(): string[] {
  return ["--seccomp", String(SECCOMP_FD)];
}

/** The fd bwrap reads its options from (`--args FD`): the one after the filter's. */
export const ARGS_FD = SECCOMP_FD + 1;

/**
 * A bwrap command line with bwrap's options taken out, to be read from ARGS_FD: bwrap stays the
 * jail's pid 1, and its /proc/1/cmdline, which the agent can read, would otherwise name the host
 * paths it binds (the state directory, the workspace). What precedes bwrap (the step into the
 * control group, setpriv) and the command after `--` stay on the command line.
 */
export function moveBwrapOptions(argv: readonly string[]): { argv: string[]; options: Buffer } {
  const at = argv.indexOf("bwrap");
  const end = argv.indexOf("--", at + 1);
  if (at < 0 || end < 0) throw new Error("not a bwrap command line");
  const options = Buffer.from(argv.slice(at + 1, end).map((a) => `${a}\0`).join(""));
  return { argv: [...argv.slice(0, at + 1), "--args", String(ARGS_FD), ...argv.slice(end)], options };
}

/**
 * Bun.spawn of a bwrap command line with seccompArgs(): the filter open on SECCOMP_FD, and bwrap's
 * options in an unlinked file open on ARGS_FD (moveBwrapOptions).
 */
export function spawnWithSeccomp(argv: string[], o: { stdio: ["inherit", "inherit", "inherit"]; env: Record<string, string> }) {
  const { argv: short, options } = moveBwrapOptions(argv);
  const filter = openSync(seccompFilter(), "r");
  let args: number | null = null;
  try {
    const dir = mkdtempSync(join(tmpdir(), "vivary-bwrap-"));
    try {
      const path = join(dir, "args");
      args = openSync(path, "wx+", 0o600);
      writeSync(args, options, 0, options.length, 0); // at offset 0; the fd's own offset stays 0 for bwrap
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return Bun.spawn(short, { env: o.env, stdio: [...o.stdio, filter, args] });
  } finally {
    closeSync(filter); // the child holds its own copies
    if (args !== null) closeSync(args);
  }
}
