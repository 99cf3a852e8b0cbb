// The grant model: what a loaded, validated policy is. Plain data; the loader builds it and the
// broker only reads it.

export type Backend = "bwrap" | "nspawn";

export interface Rate {
  count: number;
  per: "second" | "minute" | "hour" | "day";
  perMs: number;
}

export type Risk = "low" | "medium" | "high" | "critical";
export const RISKS: readonly Risk[] = ["low", "medium", "high", "critical"];

/** Each call waits for a decision: an operator's, or the `via` program's, within the timeout. */
export interface Approval {
  timeoutMs: number;
  /** Absolute path of a host program that gets the request as JSON on stdin and answers by exit status. */
  via?: string;
}

export interface Grant {
  cap: string;
  /** Scope values by kind, e.g. { path: ["/srv/reports"] }. Kinds are the capability's own. */
  scopes: Record<string, string[]>;
  /** Vault ids this grant may use (its `credential` nodes); a named provider's is implied when empty. */
  credentials: string[];
  rate?: Rate;
  /** Cumulative budgets the capability defines (x-vivary-budgets), by node: `tokens` of model-complete. */
  budgets?: Record<string, Rate>;
  /** Absent: no approval. A critical capability gets one unless the grant says approval "never". */
  approval?: Approval;
  where: string;
}

/** A vault id, as a grant, a provider and `viv secret` name it. */
export const SECRET_ID = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** A service a capability acts through: operator configuration, named by the grants that use it. */
export interface Provider {
  name: string;
  kind: string;
  /** Base URL of the service's API. */
  url: string;
  /** The vault id of the secret the provider is reached with. */
  credential: string;
  /** The kind's own settings, already checked by that kind. */
  settings: Record<string, string>;
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
  /** Grants above this risk are refused at load unless they require approval. */
  maxRisk?: Risk;
  where: string;
}

export interface Policy {
  files: string[];
  /** sha256 over the files' names and bytes: which policy a record was decided under. */
  digest: string;
  agents: Map<string, AgentPolicy>;
  /** Valid but worth a look (an approval opt-out on a critical capability): `viv policy check` prints them. */
  warnings: string[];
  providers: Map<string, Provider>;
}

/** One setting of a provider kind: whether it must be given and how a value is checked. */
export interface ProviderSetting {
  required: boolean;
  /** The reason a value is refused, or null. */
  check(value: string): string | null;
}

/** What the loader needs to know of a provider kind; supplied by its module through the registry. */
export interface ProviderKindFacts {
  settings: Readonly<Record<string, ProviderSetting>>;
}

/** What the loader needs to know of each capability; supplied by the capability registry. */
export interface CapabilityFacts {
  scopes: readonly string[];
  risk: Risk;
  /** Whether its calls need a secret from the vault (its schema's x-vivary-credential). */
  credential: boolean;
  /** The provider kinds it can act through, by kind name. */
  providerKinds: ReadonlyMap<string, ProviderKindFacts>;
  /** Cumulative budgets a grant of it may set besides `rate` (x-vivary-budgets), by node name. */
  budgets?: readonly string[];
}
export type Catalog = ReadonlyMap<string, CapabilityFacts>;
