// The one list of built-in capabilities. Adding a capability means a folder beside this file and
// a line here; test/architecture.test.ts checks each has its schema, man page, tests and entry point.
import type { Capability } from "../lib/capability.ts";
import type { Catalog } from "../policy/model.ts";
import { fsFileWrite } from "./fs-file-write/index.ts";

export const CAPABILITIES: ReadonlyMap<string, Capability<any, unknown>> = new Map([
  ["fs-file-write", fsFileWrite],
]);

/** What the policy loader needs to know of each capability. */
export const CATALOG: Catalog = new Map(
  [...CAPABILITIES].map(([name, c]) => [name, { scopes: c.schema["x-vivary-scopes"], risk: c.schema["x-vivary-risk"] }]),
);
