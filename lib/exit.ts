// Exit codes (sysexits) shared by every vivary program and the wire protocol, and the one error
// type that carries them. DESIGN.md "Exit codes" is the contract; this is its single definition.

export const Exit = {
  ok: 0,
  usage: 64,
  data: 65,
  unavailable: 69,
  internal: 70,
  temporary: 75,
  protocol: 76,
  denied: 77,
  config: 78,
} as const;

export type ExitCode = (typeof Exit)[keyof typeof Exit];

/** An expected failure: a one-line message and the exit code it maps to. */
export class VivError extends Error {
  constructor(
    readonly code: ExitCode,
    message: string,
  ) {
    super(message);
    this.name = "VivError";
  }
}

export const usageError = (m: string) => new VivError(Exit.usage, m);
export const dataError = (m: string) => new VivError(Exit.data, m);
export const deniedError = (m: string) => new VivError(Exit.denied, m);
export const unavailableError = (m: string) => new VivError(Exit.unavailable, m);
