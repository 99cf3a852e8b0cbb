// Provider kind "home-assistant": Home Assistant's REST API, with a long-lived access token from
// the vault as the bearer token. Three requests per call: GET {url}/api/states/{entity_id} (the
// device must exist: a service call on an unknown entity succeeds silently), POST
// {url}/api/services/{domain}/{service} with {entity_id, ...data} (200 and the list of states it
// changed), then GET the state again for what the device reports now. 401 is a refused token,
// 404 an unknown entity, 400 service data Home Assistant refused; each becomes one error line.
import type { ProviderConfig } from "../lib/capability.ts";
import { Exit, VivError } from "../lib/exit.ts";
import type { Secret } from "../lib/secret.ts";
import { httpRequest, oneLine, type HttpReply } from "./http.ts";
import type { ProviderKind } from "./kind.ts";

export const homeAssistant: ProviderKind = {
  name: "home-assistant",
  api: "Home Assistant REST API (GET /api/states/ENTITY_ID, POST /api/services/DOMAIN/SERVICE)",
  urlExample: "https://homeassistant.example.net:8123",
  credentialDoc: "a long-lived access token of a Home Assistant user, sent as the bearer token",
  settings: {},
};

/** An entity's state as Home Assistant reports it. */
export interface EntityState {
  entity_id: string;
  state: string;
  attributes: Record<string, unknown>;
}

const unavailable = (m: string) => new VivError(Exit.unavailable, m);
const nonsense = (m: string) => new VivError(Exit.data, m);

/** Home Assistant's error body: JSON {message} from its own views, text such as "400: Bad Request" from aiohttp. */
function why(reply: HttpReply): string {
  try {
    const o = JSON.parse(reply.text) as { message?: unknown };
    if (typeof o.message === "string") return `: ${oneLine(o.message)}`;
  } catch {
    // not JSON: the text itself, if it is short
  }
  const t = oneLine(reply.text);
  return t && t.length <= 200 ? `: ${t}` : "";
}

function failed(p: ProviderConfig, reply: HttpReply, entity: string): VivError {
  if (reply.status === 401 || reply.status === 403) return unavailable(`provider '${p.name}' refused the credential (HTTP ${reply.status})`);
  if (reply.status === 404) return unavailable(`device '${entity}' is unknown to provider '${p.name}' (HTTP 404)`);
  if (reply.status === 400) return unavailable(`provider '${p.name}' refused the call${why(reply)} (HTTP 400)`);
  return unavailable(`provider '${p.name}' failed: HTTP ${reply.status}`);
}

function headers(secret: Secret): Record<string, string> {
  return { authorization: `Bearer ${secret.reveal()}`, accept: "application/json", "content-type": "application/json" };
}

/** GET /api/states/ENTITY_ID: the entity's state, or one error line. */
export async function getEntityState(p: ProviderConfig, secret: Secret, entity: string): Promise<EntityState> {
  const reply = await httpRequest(p.name, `${p.url}/api/states/${encodeURIComponent(entity)}`, { method: "GET", headers: headers(secret) });
  if (reply.status !== 200) throw failed(p, reply, entity);
  let o: unknown;
  try {
    o = JSON.parse(reply.text);
  } catch {
    throw nonsense(`provider '${p.name}' sent a reply that is not JSON (HTTP ${reply.status})`);
  }
  const s = (o && typeof o === "object" ? o : {}) as Record<string, unknown>;
  if (s.entity_id !== entity || typeof s.state !== "string" || s.state.length > 255 || !s.attributes || typeof s.attributes !== "object") {
    throw nonsense(`provider '${p.name}' sent a state that is not the state of '${entity}'`);
  }
  return { entity_id: entity, state: s.state, attributes: s.attributes as Record<string, unknown> };
}

/** POST /api/services/DOMAIN/SERVICE for one entity; resolves once Home Assistant has acknowledged it. */
export async function callService(p: ProviderConfig, secret: Secret, entity: string, service: string, data: Record<string, number> = {}): Promise<void> {
  const domain = entity.slice(0, entity.indexOf("."));
  const reply = await httpRequest(p.name, `${p.url}/api/services/${domain}/${service}`, {
    method: "POST",
    headers: headers(secret),
    body: JSON.stringify({ entity_id: entity, ...data }),
  });
  if (reply.status !== 200) throw failed(p, reply, entity);
  let o: unknown;
  try {
    o = JSON.parse(reply.text);
  } catch {
    throw nonsense(`provider '${p.name}' sent a reply that is not JSON (HTTP ${reply.status})`);
  }
  // The states the call changed; a newer Home Assistant wraps them when asked for a response.
  if (!Array.isArray(o) && !(o && typeof o === "object" && Array.isArray((o as { changed_states?: unknown }).changed_states))) {
    throw nonsense(`provider '${p.name}' sent a reply to the service call that is not a list of states`);
  }
}
