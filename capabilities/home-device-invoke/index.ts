// home-device-invoke: one action on one granted home device, through one of the grant's Home
// Assistant providers. The scope check matches the entity id exactly and the action against those
// the grant allows on it (policy/scope.ts). Each action maps to a service of the device's domain
// here; the requests belong to the provider kind's module (providers/home-assistant.ts), and the
// token arrives from the broker in the call's context, in memory.
import type { Capability, CapabilitySchema, Scopes } from "../../lib/capability.ts";
import { dataError, Exit, usageError, VivError } from "../../lib/exit.ts";
import { callService, getEntityState, type EntityState } from "../../providers/home-assistant.ts";
import { matchDevice } from "../../policy/scope.ts";
import schemaJson from "./schema.json";
import type { HomeDeviceInvokeInput, HomeDeviceInvokeResult } from "./types.ts";

type Action = HomeDeviceInvokeInput["action"];
const SWITCHING: Record<Exclude<Action, "set">, string> = { on: "turn_on", off: "turn_off", toggle: "toggle" };
/** How a refusal names the action: "cannot turn on 'light.hall'". */
const ACTION_VERBS: Record<Action, string> = { on: "turn on", off: "turn off", toggle: "toggle", set: "set" };

/** What `set` means for each domain that has it: the service, its field, and the value read back. */
interface Setter {
  service: string;
  field: string;
  check(v: number, state: EntityState): string | null;
  readBack(state: EntityState): number | undefined;
}
const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : undefined);
const percent = (what: string) => (v: number) => (Number.isInteger(v) && v >= 0 && v <= 100 ? null : `--value for a ${what} is a whole number of percent from 0 to 100`);
export const SETTERS: Readonly<Record<string, Setter>> = {
  light: {
    service: "turn_on",
    field: "brightness_pct",
    check: percent("light's brightness"),
    // Home Assistant reports brightness from 0 to 255.
    readBack: (s) => (num(s.attributes.brightness) === undefined ? undefined : Math.round((num(s.attributes.brightness)! * 100) / 255)),
  },
  fan: { service: "set_percentage", field: "percentage", check: percent("fan's speed"), readBack: (s) => num(s.attributes.percentage) },
  climate: {
    service: "set_temperature",
    field: "temperature",
    check: (v, s) => {
      const min = num(s.attributes.min_temp);
      const max = num(s.attributes.max_temp);
      if ((min !== undefined && v < min) || (max !== undefined && v > max)) return `--value ${v} is outside the device's range, ${min} to ${max}`;
      return null;
    },
    readBack: (s) => num(s.attributes.temperature),
  },
};

function chosenProvider(args: HomeDeviceInvokeInput, scopes: Scopes): string {
  return args.provider ?? scopes.provider?.[0] ?? "";
}

function refusal(args: HomeDeviceInvokeInput, scopes: Scopes): string | null {
  const m = matchDevice(args.device_id, args.action, scopes.device ?? []);
  if (!m.ok) return `cannot ${ACTION_VERBS[args.action]} '${args.device_id}': ${m.reason}`;
  const p = chosenProvider(args, scopes);
  if (!(scopes.provider ?? []).includes(p)) return `cannot act through provider '${p}': not granted`;
  return null;
}

export const homeDeviceInvoke: Capability<HomeDeviceInvokeInput, HomeDeviceInvokeResult> = {
  schema: schemaJson as CapabilitySchema,
  authorize: refusal,
  provider: chosenProvider,
  async run(args, scopes, context) {
    const denied = refusal(args, scopes);
    if (denied) throw new VivError(Exit.denied, denied);
    const domain = args.device_id.slice(0, args.device_id.indexOf("."));
    const setter = args.action === "set" ? SETTERS[domain] : undefined;
    if (args.action === "set" && args.value === undefined) throw usageError("--action set needs --value");
    if (args.action !== "set" && args.value !== undefined) throw usageError(`--value is for --action set only, not ${args.action}`);
    const p = context?.provider;
    if (!p || !context.secret) throw new VivError(Exit.unavailable, "no provider configured for this call (run it through the broker)");
    if (p.kind !== "home-assistant") throw new VivError(Exit.config, `provider '${p.name}' is of kind '${p.kind}', which this capability does not speak`);

    const before = await getEntityState(p, context.secret, args.device_id);
    let service: string;
    let data: Record<string, number> = {};
    if (setter) {
      const why = setter.check(args.value!, before);
      if (why) throw dataError(`cannot set '${args.device_id}': ${why}`);
      service = setter.service;
      data = { [setter.field]: args.value! };
    } else service = SWITCHING[args.action as Exclude<Action, "set">];
    await callService(p, context.secret, args.device_id, service, data);
    const acknowledged = new Date().toISOString();
    const after = await getEntityState(p, context.secret, args.device_id);
    const value = setter?.readBack(after);
    return { device_id: args.device_id, new_state: after.state, ...(value === undefined ? {} : { value }), acknowledged_at: acknowledged };
  },
  target(args) {
    return `${args.action}${args.value === undefined ? "" : ` ${args.value}`} on ${args.device_id}`;
  },
};
