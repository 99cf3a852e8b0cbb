// The seccomp filter every jail runs under: the BPF program the build writes with libseccomp
// (images/seccomp.c says what it allows and denies, and why). bwrap reads it from an fd
// (`--seccomp FD`), closes that fd, and installs the filter last, just before it executes the
// agent's command, so the filter only has to allow what the agent's programs need. No jail
// starts without it: a build without the filter fails the run (exit 69).
import { closeSync, openSync } from "node:fs";
import { seccompFilter } from "../lib/install.ts";

/** The fd bwrap reads the filter from: the first after stdin, stdout and stderr. */
export const SECCOMP_FD = 3;

/** bwrap's arguments that load the filter from SECCOMP_FD. */
export function seccompArgs(): string[] {
  return ["--seccomp", String(SECCOMP_FD)];
}

/** Bun.spawn of a bwrap command line with seccompArgs(), the filter open on SECCOMP_FD. */
export function spawnWithSeccomp(argv: string[], o: { stdio: ["inherit", "inherit", "inherit"]; env: Record<string, string> }) {
  const filter = openSync(seccompFilter(), "r");
  try {
    return Bun.spawn(argv, { env: o.env, stdio: [...o.stdio, filter] });
  } finally {
    closeSync(filter); // the child holds its own copy
  }
}
