// A loopback server that speaks the part of Home Assistant's REST API vivary uses, for tests:
// GET /api/states/{entity_id} and POST /api/services/{domain}/{service} with a JSON body naming
// entity_id, behind "Authorization: Bearer TOKEN". It answers as Home Assistant does: 401 and
// "401: Unauthorized" for a wrong or missing token; 404 and {"message": "Entity not found."} for
// an unknown entity's state; a service call on an unknown entity succeeds with no state changed;
// 400 for a body that is not JSON ({"message": "Data should be valid JSON."}), an unknown service
// or service data the service refuses (brightness_pct over 100, a temperature outside the
// device's range), as aiohttp's "400: Bad Request". Devices keep their state between calls.
// A few entities ask for misbehaviour, so tests can reach every error path:
//   switch.echo_secret  400 whose message quotes the token    switch.server_error  500
//   switch.garbage      a state that is not JSON               switch.redirect      302 elsewhere
//   switch.wrong_state  the state of another entity
// Every request is kept (never the token itself), in memory and, when asked, as NDJSON in a file.
// As a program: bun test/fake-home-assistant.ts --token-file FILE [--log FILE]; it prints its base
// URL on stdout and serves on an ephemeral loopback port until killed.
import { appendFileSync, readFileSync } from "node:fs";

export interface Received {
  method: string;
  path: string;
  auth_ok: boolean;
  body: unknown;
}

export interface FakeHomeAssistant {
  url: string;
  received: Received[];
  states: Map<string, State>;
  stop(): void;
}

interface State {
  entity_id: string;
  state: string;
  attributes: Record<string, unknown>;
  last_changed: string;
  last_updated: string;
}

const json = (status: number, v: unknown) => new Response(JSON.stringify(v), { status, headers: { "content-type": "application/json" } });
const text = (status: number, t: string) => new Response(t, { status, headers: { "content-type": "text/plain; charset=utf-8" } });
const badRequest = () => text(400, "400: Bad Request");

function initialStates(): Map<string, State> {
  const now = new Date().toISOString();
  const s = (entity_id: string, state: string, attributes: Record<string, unknown>): [string, State] => [entity_id, { entity_id, state, attributes, last_changed: now, last_updated: now }];
  return new Map([
    s("light.kitchen", "off", { friendly_name: "Kitchen", supported_color_modes: ["brightness"], brightness: null }),
    s("light.hall", "off", { friendly_name: "Hall", supported_color_modes: ["brightness"], brightness: null }),
    s("switch.heater", "off", { friendly_name: "Heater" }),
    s("fan.ceiling", "off", { friendly_name: "Ceiling fan", percentage: 0, percentage_step: 1 }),
    s("climate.living_room", "heat", { friendly_name: "Living room", temperature: 20, min_temp: 7, max_temp: 35, hvac_modes: ["off", "heat"] }),
    ...["switch.echo_secret", "switch.server_error", "switch.garbage", "switch.redirect", "switch.wrong_state"].map((id) => s(id, "off", {})),
  ]);
}

/** Applies a service call to a device's state: what Home Assistant's integrations would do. Returns false for data the service refuses. */
function apply(st: State, service: string, data: Record<string, unknown>): boolean {
  const on = () => (st.state = st.entity_id.startsWith("climate.") ? "heat" : "on");
  const off = () => (st.state = "off");
  switch (service) {
    case "turn_on":
      if ("brightness_pct" in data) {
        const b = data.brightness_pct;
        if (typeof b !== "number" || b < 0 || b > 100) return false;
        if (b === 0) return off(), (st.attributes.brightness = null), true;
        st.attributes.brightness = Math.round((b * 255) / 100);
      } else if (st.entity_id.startsWith("light.") && st.attributes.brightness === null) st.attributes.brightness = 255;
      return on(), true;
    case "turn_off":
      if (st.entity_id.startsWith("light.")) st.attributes.brightness = null;
      return off(), true;
    case "toggle":
      return apply(st, st.state === "off" ? "turn_on" : "turn_off", {});
    case "set_percentage": {
      const p = data.percentage;
      if (typeof p !== "number" || p < 0 || p > 100) return false;
      st.attributes.percentage = p;
      st.state = p === 0 ? "off" : "on";
      return true;
    }
    case "set_temperature": {
      const t = data.temperature;
      if (typeof t !== "number" || t < (st.attributes.min_temp as number) || t > (st.attributes.max_temp as number)) return false;
      st.attributes.temperature = t;
      return true;
    }
  }
  return false;
}

const SERVICES: Record<string, string[]> = {
  light: ["turn_on", "turn_off", "toggle"],
  switch: ["turn_on", "turn_off", "toggle"],
  fan: ["turn_on", "turn_off", "toggle", "set_percentage"],
  climate: ["turn_on", "turn_off", "toggle", "set_temperature"],
};

export function startFakeHomeAssistant(opts: { token: string; log?: string }): FakeHomeAssistant {
  const received: Received[] = [];
  const states = initialStates();
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const url = new URL(req.url);
      const authOk = req.headers.get("authorization") === `Bearer ${opts.token}`;
      const raw = req.method === "POST" ? await req.text() : "";
      let body: unknown = null;
      let bodyOk = true;
      if (raw) {
        try {
          body = JSON.parse(raw);
        } catch {
          bodyOk = false;
          body = raw;
        }
      }
      const r: Received = { method: req.method, path: decodeURIComponent(url.pathname), auth_ok: authOk, body };
      received.push(r);
      if (opts.log) appendFileSync(opts.log, `${JSON.stringify(r)}\n`);
      if (!authOk) return text(401, "401: Unauthorized");

      const stateMatch = /^\/api\/states\/([^/]+)$/.exec(url.pathname);
      if (stateMatch && req.method === "GET") {
        const id = decodeURIComponent(stateMatch[1]!);
        const st = states.get(id);
        if (!st) return json(404, { message: "Entity not found." });
        if (id === "switch.garbage") return text(200, "<html>not json</html>");
        if (id === "switch.redirect") return new Response(null, { status: 302, headers: { location: "http://127.0.0.2:9/steal" } });
        if (id === "switch.wrong_state") return json(200, { ...st, entity_id: "switch.heater" });
        return json(200, st);
      }
      const serviceMatch = /^\/api\/services\/([a-z_]+)\/([a-z_]+)$/.exec(url.pathname);
      if (serviceMatch && req.method === "POST") {
        if (!bodyOk) return json(400, { message: "Data should be valid JSON." });
        const [, domain, service] = serviceMatch as unknown as [string, string, string];
        if (!SERVICES[domain]?.includes(service)) return badRequest();
        const data = (body && typeof body === "object" ? body : {}) as Record<string, unknown>;
        const id = data.entity_id;
        if (typeof id !== "string") return badRequest();
        if (id === "switch.echo_secret") return json(400, { message: `token ${opts.token} is not welcome here` });
        if (id === "switch.server_error") return text(500, "500 Internal Server Error");
        const st = states.get(id);
        // Home Assistant calls the service for the entities that exist; an unknown one changes nothing.
        if (!st || !id.startsWith(`${domain}.`)) return json(200, []);
        const { entity_id: _, ...rest } = data;
        const next = structuredClone(st);
        if (!apply(next, service, rest)) return badRequest();
        const changed = next.state !== st.state || JSON.stringify(next.attributes) !== JSON.stringify(st.attributes);
        if (changed) next.last_updated = new Date().toISOString();
        if (next.state !== st.state) next.last_changed = next.last_updated;
        states.set(id, next);
        return json(200, changed ? [next] : []);
      }
      return json(404, { message: "Not found" });
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, received, states, stop: () => server.stop(true) };
}

if (import.meta.main) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const tokenFile = arg("--token-file");
  if (!tokenFile) {
    process.stderr.write("fake-home-assistant: usage: fake-home-assistant.ts --token-file FILE [--log FILE]\n");
    process.exit(64);
  }
  const fake = startFakeHomeAssistant({ token: readFileSync(tokenFile, "utf8").replace(/\n$/, ""), log: arg("--log") });
  process.stdout.write(`${fake.url}\n`);
}
