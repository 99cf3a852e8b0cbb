// Runs a registered capability (policy `capability` node, policy/external.ts) as a Capability like
// a built-in: the broker has already parsed its argv against the pinned schema, checked the grant,
// the rate and the approval, and recorded the intent. run() starts the executable on the host as
// the capability's own unprivileged uid (setpriv, no capabilities, no new privileges, its own
// session), cwd /, with a cleared environment: PATH, VIVARY_SCOPE (the effective scope as JSON)
// and, when the grant names one, VIVARY_CREDENTIAL. Never the secret in argv. A timeout kills its
// whole session; stdout and stderr are capped. Its result is the JSON it printed; a failure is
// its exit code (a sysexits code, else 70) with the last line it wrote on stderr. An executable
// that changed on disk since its schema was checked is refused (78) until the policy is reloaded.
import { kebab, type Args, type Capability, type CapabilitySchema, type Scopes } from "../lib/capability.ts";
import { Exit, VivError, type ExitCode } from "../lib/exit.ts";
import { Env } from "../lib/paths.ts";
import { statSync } from "node:fs";
import { asUid, EXTERNAL_PATH, fileIdentity, runUid } from "../policy/external.ts";
import type { ExternalCapability } from "../policy/model.ts";

export const STDOUT_MAX_BYTES = 1 << 20;
export const STDERR_MAX_BYTES = 64 << 10;
const PASSED_THROUGH = new Set<number>([Exit.usage, Exit.data, Exit.unavailable, Exit.temporary, Exit.denied, Exit.config]);

/** argv for the executable from parsed arguments: `--kebab VALUE`, a bare flag, a repeated flag. */
export function argvOf(args: Args): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(args)) {
    const flag = `--${kebab(k)}`;
    if (v === true) out.push(flag);
    else if (v === false) continue;
    else if (Array.isArray(v)) for (const item of v) out.push(`${flag}=${item}`);
    else out.push(`${flag}=${String(v)}`);
  }
  return out;
}

/** Reads a stream to its end, or until `max` bytes: then calls `over` and stops. */
async function capped(stream: ReadableStream<Uint8Array>, max: number, over: () => void): Promise<{ bytes: Uint8Array; over: boolean }> {
  const chunks: Uint8Array[] = [];
  let n = 0;
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.length;
    if (n > max) {
      over();
      reader.cancel().catch(() => {});
      return { bytes: new Uint8Array(), over: true };
    }
    chunks.push(value);
  }
  return { bytes: Buffer.concat(chunks), over: false };
}

function killSession(pid: number) {
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    /* the session is already gone */
  }
}

/** The last non-empty line a capability wrote on stderr, without its own `NAME: ` prefix, bounded. */
function diagnostic(name: string, stderr: string): string {
  const line = stderr.split("\n").map((l) => l.trim()).filter(Boolean).pop() ?? "";
  const bare = line.startsWith(`${name}: `) ? line.slice(name.length + 2) : line;
  return bare.replace(/[\u0000-\u001f\u007f]/g, " ").slice(0, 300);
}

/** A registered executable changed since its schema was checked runs no more until the policy is loaded again. */
function refuseChanged(x: ExternalCapability) {
  let now = "";
  try {
    now = fileIdentity(statSync(x.exec));
  } catch {
    /* gone: refused below */
  }
  if (now !== x.identity) throw new VivError(Exit.config, `'${x.exec}' changed since its schema was pinned and checked; reload the policy to check it again`);
}

async function run(x: ExternalCapability, args: Args, scopes: Scopes, secret?: string): Promise<unknown> {
  refuseChanged(x);
  const env: Record<string, string> = { PATH: EXTERNAL_PATH, [Env.scope]: JSON.stringify(scopes) };
  if (secret !== undefined) env[Env.credential] = secret;
  const proc = Bun.spawn([...asUid(runUid(x.uid)), x.exec, ...argvOf(args)], { cwd: "/", env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  let why: string | null = null;
  const stop = (reason: string) => {
    why ??= reason;
    killSession(proc.pid);
  };
  const timer = setTimeout(() => stop(`did not finish within ${x.timeoutMs / 1000}s`), x.timeoutMs);
  try {
    const [out, err] = await Promise.all([
      capped(proc.stdout, STDOUT_MAX_BYTES, () => stop(`printed more than ${STDOUT_MAX_BYTES} bytes on stdout`)),
      capped(proc.stderr, STDERR_MAX_BYTES, () => stop(`printed more than ${STDERR_MAX_BYTES} bytes on stderr`)),
    ]);
    const code = await proc.exited;
    killSession(proc.pid); // what it left running in its session goes with it
    if (why) throw new VivError(Exit.unavailable, why);
    const stderr = new TextDecoder().decode(err.bytes);
    if (code !== 0) {
      const exit = (PASSED_THROUGH.has(code) ? code : Exit.internal) as ExitCode;
      throw new VivError(exit, diagnostic(x.name, stderr) || `exited with ${code}`);
    }
    try {
      return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(out.bytes));
    } catch {
      throw new VivError(Exit.data, "printed a result that is not JSON");
    }
  } finally {
    clearTimeout(timer);
  }
}

const cache = new WeakMap<ExternalCapability, Capability<Args, unknown>>();

/** The Capability of a registered executable, one per loaded registration. */
export function externalCapability(x: ExternalCapability): Capability<Args, unknown> {
  let c = cache.get(x);
  if (!c) {
    c = {
      schema: x.schema as unknown as CapabilitySchema,
      authorize: () => null, // a registered capability has no scope kinds: the grant is the whole check
      run: (args, scopes, context) => run(x, args, scopes, context?.secret?.reveal()),
      target: () => x.exec,
    };
    cache.set(x, c);
  }
  return c;
}
