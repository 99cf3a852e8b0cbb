// The one compiled executable behind every vivary program name (viv, viv-broker, viv-log and
// each capability): it dispatches on the name it was invoked as, like busybox.
import { basename } from "node:path";
import { CAPABILITIES } from "../capabilities/registry.ts";

const PROGRAMS: Record<string, () => Promise<{ main: (argv: string[]) => Promise<number> }>> = {
  viv: () => import("../cli/viv.ts"),
  "viv-broker": () => import("../cli/viv-broker.ts"),
  "viv-log": () => import("../cli/viv-log.ts"),
};

export async function dispatch(name: string, argv: string[]): Promise<number> {
  const program = PROGRAMS[name];
  if (program) return (await program()).main(argv);
  if (CAPABILITIES.has(name)) return (await import("../cli/capability.ts")).main(name, argv);
  process.stderr.write(`vivary: unknown program name '${name}' (link this binary as viv, viv-broker, viv-log or a capability)\n`);
  return 64;
}

if (import.meta.main) {
  const name = basename(process.argv0);
  process.exitCode = await dispatch(name === "vivary" && process.argv[2] ? process.argv[2] : name, process.argv.slice(name === "vivary" ? 3 : 2));
}
