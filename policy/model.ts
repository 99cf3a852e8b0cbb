// The grant model: what a loaded, validated policy is. Plain data; the loader builds it and the
// broker only reads it.

export type Backend = "bwrap" | "nspawn";

export interface Rate {
  count: number;
  per: "second" | "minute" | "hour" | "day";
  perMs: number;
}

export interface Grant {
  cap: string;
  /** Scope values by kind, e.g. { path: ["/srv/reports"] }. Kinds are the capability's own. */
  scopes: Record<string, string[]>;
  rate?: Rate;
  where: string;
}

export interface Limits {
  memoryBytes?: number;
  pids?: number;
  timeoutMs?: number;
}

export interface AgentPolicy {
  name: string;
  /** Host uid the agent's jail runs as: unprivileged, one per agent. */
  uid: number;
  workspace?: string;
  backend: Backend;
  limits: Limits;
  grants: Map<string, Grant>;
  where: string;
}

export interface Policy {
  files: string[];
  /** sha256 over the files' names and bytes: which policy a record was decided under. */
  digest: string;
  agents: Map<string, AgentPolicy>;
}

/** What the loader needs to know of each capability; supplied by the capability registry. */
export interface CapabilityFacts {
  scopes: readonly string[];
}
export type Catalog = ReadonlyMap<string, CapabilityFacts>;
