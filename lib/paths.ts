// Where things live: environment variable names, the state directory layout and the fixed paths
// inside a jail. Every program resolves these here, so a path is named in one place only.
import { join, resolve } from "node:path";

export const Env = {
  state: "VIVARY_STATE",
  policy: "VIVARY_POLICY",
  /** Set by the broker for an external capability: the effective scope, as JSON. */
  scope: "VIVARY_SCOPE",
  /** Set by the broker for an external capability whose grant names a credential: the secret. */
  credential: "VIVARY_CREDENTIAL",
  /** The vault's key file, kept apart from the state directory that holds the sealed secrets. */
  vaultKey: "VIVARY_VAULT_KEY",
  /** How jails are bounded: auto (default), cgroup2, cgroup1 or rlimit (lib/cgroup.ts). */
  limits: "VIVARY_LIMITS",
} as const;

export const DEFAULT_POLICY = "/etc/vivary/policy.kdl";

/** DESIGN.md: `/var/lib/vivary` for root, else `$XDG_STATE_HOME/vivary`. */
export function defaultStateDir(env = process.env): string {
  if (process.getuid?.() === 0) return "/var/lib/vivary";
  const xdg = env.XDG_STATE_HOME || join(env.HOME ?? "/tmp", ".local/state");
  return join(xdg, "vivary");
}

/** Always absolute: the state directory is handed to other processes and mounted by path. */
export function resolveStateDir(flag: string | undefined, env = process.env): string {
  return resolve(flag ?? env[Env.state] ?? defaultStateDir(env));
}

/** `/etc/vivary/vault.key` for root, else `$XDG_CONFIG_HOME/vivary/vault.key`: never under STATE. */
export function resolveVaultKeyPath(env = process.env): string {
  if (env[Env.vaultKey]) return resolve(env[Env.vaultKey]!);
  if (process.getuid?.() === 0) return "/etc/vivary/vault.key";
  return join(env.XDG_CONFIG_HOME || join(env.HOME ?? "/tmp", ".config"), "vivary", "vault.key");
}

export function resolvePolicyPath(flag: string | undefined, env = process.env): string {
  return resolve(flag ?? env[Env.policy] ?? DEFAULT_POLICY);
}

/** The layout of a state directory. Only the broker writes here. */
export function stateLayout(state: string) {
  return {
    root: state,
    audit: join(state, "audit.db"),
    /** Rotated logs, `audit-FIRST-LAST.db`; the live log's first record names the newest. */
    archive: join(state, "archive"),
    operatorSocket: join(state, "operator.sock"),
    brokerLock: join(state, "broker.lock"),
    /** The credential vault: sealed secrets, their lock and when each was last used. */
    vault: join(state, "vault"),
    agents: join(state, "agents"),
    /** Mounted read-only at JAIL.runDir: the agent's socket, its capability list, its stubs. */
    agentRun: (agent: string) => join(state, "agents", agent, "run"),
    agentSocket: (agent: string) => join(state, "agents", agent, "run", "broker.sock"),
    /** The agent's model endpoint (HTTP over this socket), when a grant gives it model access. */
    agentModelSocket: (agent: string) => join(state, "agents", agent, "run", "model.sock"),
    agentEtc: (agent: string) => join(state, "agents", agent, "etc"),
    /** Where viv run lends an owner="keep" workspace to a jail (lib/workspace-idmap.ts). */
    agentMounts: (agent: string) => join(state, "agents", agent, "mnt"),
  };
}

/** Fixed paths as the agent sees them inside its jail. */
export const JAIL = {
  runDir: "/run/vivary",
  socket: "/run/vivary/broker.sock",
  capabilities: "/run/vivary/capabilities.json",
  binDir: "/run/vivary/bin",
  stub: "/run/vivary/libexec/viv-stub",
  /** The model endpoint's socket, and the relay that serves it on the jail's loopback at modelPort. */
  modelSocket: "/run/vivary/model.sock",
  modelRelay: "/run/vivary/libexec/viv-model-relay",
  modelPort: 4180,
  /** The MCP bridge, on PATH as viv-mcp when the agent is granted any capability. */
  mcp: "/run/vivary/libexec/viv-mcp.mjs",
  mcpName: "viv-mcp",
  workspace: "/workspace",
  uid: 1000,
  gid: 1000,
  user: "agent",
} as const;
