// home-device-invoke and its provider kind "home-assistant" against a loopback server that speaks
// Home Assistant's REST API (test/fake-home-assistant.ts): the device scope as the policy loads it
// and as a call is matched against it, the requests Home Assistant receives (paths, bodies, the
// bearer token), what each action does to the device, and each way the provider can fail, mapped
// to one error line with exit 69, or 65 for a reply that makes no sense.
import { afterAll, describe, expect, test } from "bun:test";
import { CATALOG } from "../../capabilities/registry.ts";
import { Exit, VivError } from "../../lib/exit.ts";
import { Secret } from "../../lib/secret.ts";
import { loadPolicyText } from "../../policy/load.ts";
import { startFakeHomeAssistant } from "../../test/fake-home-assistant.ts";
import { homeDeviceInvoke as cap } from "./index.ts";
import { problemsOf } from "../../test/policy-problems.ts";

const TOKEN = "canary-ha-token-0f1e2d3c4b5a";
const fake = startFakeHomeAssistant({ token: TOKEN });
afterAll(() => fake.stop());

const scopes = {
  device: ["light.kitchen on off set", "switch.heater on off toggle", "fan.ceiling set", "climate.living_room set off",
    "switch.echo_secret on", "switch.server_error on", "switch.garbage on", "switch.redirect on", "switch.wrong_state on", "light.gone on"],
  provider: ["home"],
};
const provider = (url = fake.url) => ({ name: "home", kind: "home-assistant", url, settings: {} });
type Args = { device_id: string; action: "on" | "off" | "toggle" | "set"; value?: number; provider?: string };
const invoke = async (args: Args, opts: { token?: string; url?: string } = {}) =>
  cap.run(args, scopes, { provider: provider(opts.url), secret: new Secret(opts.token ?? TOKEN, "ha-main") });

async function failure(p: Promise<unknown>): Promise<[number, string]> {
  try {
    await p;
  } catch (e) {
    if (e instanceof VivError) return [e.code, e.message];
    throw e;
  }
  throw new Error("no error");
}

describe("the device scope in a policy", () => {
  const load = (node: string) => loadPolicyText([{ file: "p.kdl", text: `provider "home" {\n kind "home-assistant"\n url "https://ha.example.net"\n credential "ha-main"\n}\nagent "a" {\n grant "home-device-invoke" {\n provider "home"\n ${node}\n }\n}\n` }], CATALOG);
  const problem = (node: string) => problemsOf(() => load(node)).join("; ") || null;
  test("a device with its actions becomes one scope value", () => {
    expect(load(`device "light.kitchen" actions="on  off set on"`).agents.get("a")!.grants.get("home-device-invoke")!.scopes.device).toEqual(["light.kitchen on off set"]);
  });
  const cases: [string, string, string][] = [
    ["no actions", `device "light.kitchen"`, `p.kdl:9: device 'light.kitchen' refused: needs actions="…", some of on off toggle set`],
    ["empty actions", `device "light.kitchen" actions=""`, `p.kdl:9: device 'light.kitchen' refused: needs actions="…", some of on off toggle set`],
    ["set on a switch", `device "switch.heater" actions="on set"`, "p.kdl:9: device 'switch.heater' refused: action 'set' is not one a switch takes (on off toggle)"],
    ["an unknown action", `device "light.kitchen" actions="on explode"`, "p.kdl:9: device 'light.kitchen' refused: action 'explode' is not one a light takes (on off toggle set)"],
    ["an unsupported domain", `device "lock.front_door" actions="on"`, "p.kdl:9: device 'lock.front_door' refused: domain 'lock' is not supported (light, switch, fan, climate)"],
    ["a wildcard", `device "light.*" actions="on"`, "p.kdl:9: device 'light.*' refused: not an entity id (domain.object_id: lower-case letters, digits and single underscores)"],
    ["upper case", `device "light.Kitchen" actions="on"`, "p.kdl:9: device 'light.Kitchen' refused: not an entity id (domain.object_id: lower-case letters, digits and single underscores)"],
    ["an unknown property", `device "light.kitchen" actions="on" brightness=5`, "p.kdl:9: device 'light.kitchen' refused: unknown property 'brightness' (expected actions=)"],
    ["two ids", `device "light.kitchen" "light.hall" actions="on"`, `p.kdl:9: device 'light.kitchen' 'light.hall' refused: takes one entity id and actions="…"`],
    // Only the first node of a device would count when calls are matched, so a second is refused.
    ["a device given twice", `device "light.kitchen" actions="on"\n device "light.kitchen" actions="off"`, "p.kdl:10: device 'light.kitchen' is given twice"],
  ];
  for (const [name, node, why] of cases) test(`refuses ${name}`, () => expect(problem(node)).toBe(why));
  test("a grant without a device is refused", () => expect(problem("")).toBe("p.kdl:7: grant 'home-device-invoke' needs at least one 'device'"));
});

describe("authorize", () => {
  const cases: [string, Args, string | null][] = [
    ["a granted action on a granted device", { device_id: "light.kitchen", action: "on" }, null],
    ["set where granted", { device_id: "fan.ceiling", action: "set", value: 40 }, null],
    ["an action not granted on that device", { device_id: "light.kitchen", action: "toggle" }, "cannot toggle 'light.kitchen': action 'toggle' is not granted on it (granted: on off set)"],
    ["a device not granted", { device_id: "light.hall", action: "on" }, "cannot turn on 'light.hall': not a granted device"],
    ["a device renamed in Home Assistant", { device_id: "light.kitchen_2", action: "on" }, "cannot turn on 'light.kitchen_2': not a granted device"],
    ["a prefix of a granted device", { device_id: "light.kitche", action: "on" }, "cannot turn on 'light.kitche': not a granted device"],
    ["a malformed id", { device_id: "light.kitchen on", action: "on" }, "cannot turn on 'light.kitchen on': not an entity id (domain.object_id: lower-case letters, digits and single underscores)"],
    ["a provider not granted", { device_id: "light.kitchen", action: "on", provider: "other" }, "cannot act through provider 'other': not granted"],
  ];
  for (const [name, args, why] of cases) test(name, () => expect(cap.authorize(args as never, scopes)).toBe(why));
});

describe("actions reach Home Assistant as its REST API documents them", () => {
  test("on: the state first, then light.turn_on with the bearer token, then the state again", async () => {
    const before = fake.received.length;
    const r = await invoke({ device_id: "light.kitchen", action: "on" });
    expect(r).toEqual({ device_id: "light.kitchen", new_state: "on", acknowledged_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/) });
    expect(fake.received.slice(before)).toEqual([
      { method: "GET", path: "/api/states/light.kitchen", auth_ok: true, body: null },
      { method: "POST", path: "/api/services/light/turn_on", auth_ok: true, body: { entity_id: "light.kitchen" } },
      { method: "GET", path: "/api/states/light.kitchen", auth_ok: true, body: null },
    ]);
  });
  test("set on a light is its brightness in percent, read back", async () => {
    const before = fake.received.length;
    expect(await invoke({ device_id: "light.kitchen", action: "set", value: 40 })).toMatchObject({ new_state: "on", value: 40 });
    expect(fake.received[before + 1]!.body).toEqual({ entity_id: "light.kitchen", brightness_pct: 40 });
    expect(fake.states.get("light.kitchen")!.attributes.brightness).toBe(102);
  });
  test("off, toggle, a fan's speed and a thermostat's temperature", async () => {
    expect(await invoke({ device_id: "light.kitchen", action: "off" })).toMatchObject({ new_state: "off" });
    expect(await invoke({ device_id: "switch.heater", action: "toggle" })).toMatchObject({ new_state: "on" });
    expect(await invoke({ device_id: "switch.heater", action: "toggle" })).toMatchObject({ new_state: "off" });
    expect(await invoke({ device_id: "fan.ceiling", action: "set", value: 60 })).toMatchObject({ new_state: "on", value: 60 });
    expect(await invoke({ device_id: "climate.living_room", action: "set", value: 21.5 })).toMatchObject({ new_state: "heat", value: 21.5 });
    expect(await invoke({ device_id: "climate.living_room", action: "off" })).toMatchObject({ new_state: "off" });
  });
});

describe("failures are one line, and nothing is called that should not be", () => {
  const cases: [string, () => Promise<unknown>, number, string | RegExp, number][] = [
    ["set without a value", () => invoke({ device_id: "light.kitchen", action: "set" }), 64, "--action set needs --value", 0],
    ["a value without set", () => invoke({ device_id: "light.kitchen", action: "on", value: 3 }), 64, "--value is for --action set only, not on", 0],
    ["a brightness over 100", () => invoke({ device_id: "light.kitchen", action: "set", value: 101 }), 65, "cannot set 'light.kitchen': --value for a light's brightness is a whole number of percent from 0 to 100", 1],
    ["a fractional fan speed", () => invoke({ device_id: "fan.ceiling", action: "set", value: 2.5 }), 65, "cannot set 'fan.ceiling': --value for a fan's speed is a whole number of percent from 0 to 100", 1],
    ["a temperature outside the device's range", () => invoke({ device_id: "climate.living_room", action: "set", value: 40 }), 65, "cannot set 'climate.living_room': --value 40 is outside the device's range, 7 to 35", 1],
    ["a wrong token", () => invoke({ device_id: "light.kitchen", action: "on" }, { token: "wrong" }), 69, "provider 'home' refused the credential (HTTP 401)", 1],
    ["a device Home Assistant does not know", () => invoke({ device_id: "light.gone", action: "on" }), 69, "device 'light.gone' is unknown to provider 'home' (HTTP 404)", 1],
    ["a server error", () => invoke({ device_id: "switch.server_error", action: "on" }), 69, "provider 'home' failed: HTTP 500", 2],
    ["a state that is not JSON", () => invoke({ device_id: "switch.garbage", action: "on" }), 65, "provider 'home' sent a reply that is not JSON (HTTP 200)", 1],
    ["the state of another entity", () => invoke({ device_id: "switch.wrong_state", action: "on" }), 65, "provider 'home' sent a state that is not the state of 'switch.wrong_state'", 1],
    ["a redirect", () => invoke({ device_id: "switch.redirect", action: "on" }), 69, "provider 'home' failed: redirect (HTTP 302) refused; redirects are never followed", 1],
    ["a provider that is not listening", () => invoke({ device_id: "light.kitchen", action: "on" }, { url: "http://127.0.0.1:1" }), 69, /^provider 'home' failed: cannot reach http:\/\/127\.0\.0\.1:1: /, 0],
  ];
  for (const [name, call, code, message, requests] of cases) {
    test(name, async () => {
      const before = fake.received.length;
      const [c, m] = await failure(call());
      expect(c).toBe(code);
      if (typeof message === "string") expect(m).toBe(message);
      else expect(m).toMatch(message);
      expect(m).not.toContain("\n");
      expect(fake.received.length - before).toBe(requests);
    });
  }
  test("an error that echoes the token is passed on for the broker to scrub, on one line", async () => {
    const [c, m] = await failure(invoke({ device_id: "switch.echo_secret", action: "on" }));
    expect([c, m]).toEqual([69, `provider 'home' refused the call: token ${TOKEN} is not welcome here (HTTP 400)`]);
  });
  test("a run outside the scope or without a provider is refused before any request", async () => {
    const before = fake.received.length;
    expect(await failure(invoke({ device_id: "light.hall", action: "on" }))).toEqual([77, "cannot turn on 'light.hall': not a granted device"]);
    expect(await failure(Promise.resolve().then(() => cap.run({ device_id: "light.kitchen", action: "on" }, scopes)))).toEqual([Exit.unavailable, "no provider configured for this call (run it through the broker)"]);
    expect(fake.received.length).toBe(before);
  });
});
