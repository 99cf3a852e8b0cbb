// The one list of built-in capabilities. Adding a capability means a folder beside this file and
// a line here; test/architecture.test.ts checks each has its schema, man page, tests and entry point.
import type { Capability } from "../lib/capability.ts";
import type { Catalog, ProviderKindFacts } from "../policy/model.ts";
import { PROVIDER_KINDS } from "../providers/registry.ts";
import { fsFileWrite } from "./fs-file-write/index.ts";
import { webPageRead } from "./web-page-read/index.ts";
import { messagingMessageSend } from "./messaging-message-send/index.ts";
import { modelComplete } from "./model-complete/index.ts";
import { calendarEventCreate } from "./calendar-event-create/index.ts";
import { fsFileRead } from "./fs-file-read/index.ts";
import { fsDirList } from "./fs-dir-list/index.ts";
import { homeDeviceInvoke } from "./home-device-invoke/index.ts";
import { commerceOrderCreate } from "./commerce-order-create/index.ts";

export const CAPABILITIES: ReadonlyMap<string, Capability<any, unknown>> = new Map<string, Capability<any, unknown>>([
  ["fs-file-write", fsFileWrite],
  ["web-page-read", webPageRead],
  ["messaging-message-send", messagingMessageSend],
  ["model-complete", modelComplete],
  ["calendar-event-create", calendarEventCreate],
  ["fs-file-read", fsFileRead],
  ["fs-dir-list", fsDirList],
  ["home-device-invoke", homeDeviceInvoke],
  ["commerce-order-create", commerceOrderCreate],
]);

function kindsOf(name: string, kinds: readonly string[] = []): Map<string, ProviderKindFacts> {
  return new Map(kinds.map((k) => {
    const kind = PROVIDER_KINDS.get(k);
    if (!kind) throw new Error(`${name}: provider kind '${k}' is not in providers/registry.ts`);
    return [k, kind];
  }));
}

/** What the policy loader needs to know of each capability. */
export const CATALOG: Catalog = new Map(
  [...CAPABILITIES].map(([name, c]) => [name, {
    scopes: c.schema["x-vivary-scopes"],
    risk: c.schema["x-vivary-risk"],
    credential: c.schema["x-vivary-credential"] !== null,
    providerKinds: kindsOf(name, c.schema["x-vivary-providers"]),
    budgets: new Map(Object.entries(c.schema["x-vivary-budgets"] ?? {}).map(([k, b]) => [k, { measure: b.measure, cumulative: b.cumulative }])),
    tokenBudget: c.schema["x-vivary-token-budget"] === true,
    scopeProperties: new Map(Object.entries(c.schema["x-vivary-scope-properties"] ?? {}).map(([k, props]) => [k, Object.fromEntries(Object.entries(props).map(([p, d]) => [p, d.required]))])),
  }]),
);
