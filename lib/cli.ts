// Runs a clipanion CLI the vivary way: diagnostics on stderr as one line `NAME: what: why`,
// usage mistakes exit 64, typed VivErrors exit with their own code, anything else 70. Every
// command of every vivary program goes through here; clipanion's own defaults (errors on stdout,
// exit 1) never reach the user.
import { Builtins, Cli, Option, type CommandClass, type BaseContext } from "clipanion";
import { Exit, VivError } from "./exit.ts";

export const VERSION = "0.1.0";

/** The --state option, the same in every command that takes it. */
export const stateOption = () => Option.String("--state", { description: "state directory (default $VIVARY_STATE)" });

/** What an option's value is, for help text: clipanion itself shows `--state #0`. */
const VALUE_NAMES: Record<string, string> = {
  "--state": "DIR",
  "--policy": "PATH",
  "--agent": "NAME",
  "--backend": "bwrap|nspawn",
  "--reason": "TEXT",
  "--cap": "NAME",
  "--since": "TIME",
  "--checkpoint": "FILE",
};

/** Help text with value names in place of clipanion's `#0` placeholders, options realigned. */
export function withValueNames(usage: string): string {
  const named = usage.replace(/(--[a-z][a-z-]*) #0/g, (_, flag: string) => `${flag} ${VALUE_NAMES[flag] ?? flag.slice(2).toUpperCase()}`);
  const OPTION = /^ {2}(-\S.*?) {2,}(\S.*)$/;
  const lines = named.split("\n");
  const width = Math.max(0, ...lines.map((l) => OPTION.exec(l)?.[1]!.length ?? 0));
  return lines.map((l) => l.replace(OPTION, (_, def: string, text: string) => `  ${def.padEnd(width)}    ${text}`)).join("\n");
}

export async function runCli(name: string, commands: CommandClass<BaseContext>[], argv: string[]): Promise<number> {
  // A reader that stops early (viv-log | head) is not an error.
  process.stdout.on("error", (e: NodeJS.ErrnoException) => process.exit(e.code === "EPIPE" ? Exit.ok : Exit.internal));
  const cli = new Cli({ binaryName: name, binaryLabel: "vivary", binaryVersion: VERSION, enableColors: false });
  for (const c of commands) cli.register(c);
  cli.register(Builtins.HelpCommand);
  cli.register(Builtins.VersionCommand);
  const context = { ...Cli.defaultContext, colorDepth: 1 };
  let command;
  try {
    command = cli.process(argv, context);
  } catch (e) {
    process.stderr.write(`${name}: ${firstLine((e as Error).message)}\n`);
    return Exit.usage;
  }
  if (command.help) {
    process.stdout.write(withValueNames(cli.usage(command, { detailed: true })));
    return Exit.ok;
  }
  command.context = context;
  command.cli = {
    binaryLabel: "vivary",
    binaryName: name,
    binaryVersion: VERSION,
    enableCapture: false,
    enableColors: false,
    definitions: () => cli.definitions(),
    error: (error, opts) => cli.error(error, opts),
    format: (colored) => cli.format(colored),
    process: (input, sub) => cli.process(input, { ...context, ...sub }),
    run: (input, sub) => cli.run(input, { ...context, ...sub }),
    usage: (c, opts) => withValueNames(cli.usage(c, opts)),
  };
  try {
    const code = await command.validateAndExecute();
    return typeof code === "number" ? code : Exit.ok;
  } catch (e) {
    if (e instanceof VivError) {
      process.stderr.write(`${name}: ${e.message}\n`);
      return e.code;
    }
    const err = e as Error;
    if (err.name === "UsageError" || err.constructor?.name === "UsageError") {
      process.stderr.write(`${name}: ${firstLine(err.message)}\n`);
      return Exit.usage;
    }
    process.stderr.write(`${name}: internal error: ${firstLine(err.message)}\n`);
    return Exit.internal;
  }
}

function firstLine(s: string): string {
  const line = s.split("\n").find((l) => l.trim() !== "") ?? s;
  return line.trim().replace(/\.$/, "");
}
