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
  /** The model endpoint's token budget (`tokens max=N per=…`, x-vivary-token-budget): a sliding window. */
  tokenBudget?: Rate;
  /** Absent: no approval. A critical capability gets one unless the grant says approval "never". */
  approval?: Approval;
  /** The ceilings of the capability's own budgets this grant sets, by budget name (e.g. spend). */
  budgets?: Record<string, Ceiling>;
  /** Set when the capability is a registered executable (policy `capability` node), not a built-in. */
  external?: ExternalCapability;
  where: string;
}

/** A capability registered by the operator (policy/external.ts): an executable and the schema pinned for it. */
export interface ExternalCapability {
  name: string;
  /** Absolute path of the executable. */
  exec: string;
  /** sha256 of what `exec --help` printed: the pinned one. */
  digest: string;
  /** The executable file as it was when its schema was checked (policy/external.ts fileIdentity). */
  identity: string;
  /** The unprivileged host uid it runs as (when the broker is root). */
  uid: number;
  timeoutMs: number;
  /** The JSON Schema it printed, checked by policy/external.ts (a CapabilitySchema of lib/capability.ts). */
  schema: Readonly<Record<string, unknown>>;
  where: string;
}

/**
 * A budget a capability defines (its schema's x-vivary-budgets): `money` amounts in a currency or
 * a `count`; `cumulative` ones add up over a rolling window (`spend max="200.00" per="day"`),
 * the others cap each call alone (`per-order max="50.00"`).
 */
export interface BudgetFacts {
  measure: "money" | "count";
  cumulative: boolean;
}

/** A grant's ceiling for one budget: `max` in minor units of `currency` (money) or in calls' units (count). */
export interface Ceiling {
  measure: "money" | "count";
  max: bigint;
  /** The ceiling as the policy wrote it, for messages. */
  maxText: string;
  currency?: string;
  /** For a cumulative budget: the rolling window. */
  per?: Rate["per"];
  perMs?: number;
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
  /** CPUs the jail may use, as a fraction: 0.5 is half of one CPU (cgroups only). */
  cpu?: number;
  /** Size of the jail's /tmp (a tmpfs); JAIL_TMP_BYTES when not given. */
  tmpBytes?: number;
}

/** The jail's /tmp when `limits tmp=` does not say: a tmpfs of 64 MiB. */
export const JAIL_TMP_BYTES = 64 << 20;
/** The bounds of `limits cpu=`. */
export const CPU_RANGE = { min: 0.01, max: 1024 } as const;

export interface AgentPolicy {
  name: string;
  /** Host uid the agent's jail runs as: unprivileged, one per agent. */
  uid: number;
  workspace?: string;
  /** `workspace owner=`: "keep" lends the operator's directory through an idmapped mount. */
  workspaceOwner?: "agent" | "keep";
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
  /** Registered capabilities (top-level `capability` nodes), by name. */
  external?: Map<string, ExternalCapability>;
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
  /** Whether a grant of it may set a token budget (`tokens max=N per=…`, x-vivary-token-budget). */
  tokenBudget?: boolean;
  /** The budgets a grant of it may limit (grant nodes named like them), by name. */
  budgets?: ReadonlyMap<string, BudgetFacts>;
  /** Scope kinds whose nodes carry properties (name → the properties, required ones first by flag). */
  scopeProperties?: ReadonlyMap<string, Readonly<Record<string, boolean>>>;
}
export type Catalog = ReadonlyMap<string, CapabilityFacts>;
