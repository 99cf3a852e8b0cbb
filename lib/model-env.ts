// The environment a jail with model access gets: ANTHROPIC_BASE_URL and OPENAI_BASE_URL on the
// jail's own loopback, where viv-model-relay serves the agent's model socket, one path prefix per
// granted provider (the first of each API family is the default). The API keys are placeholders
// that clients need to start; the broker drops whatever key a client sends and injects the vault's.
import { JAIL } from "./paths.ts";

export const MODEL_KEY_PLACEHOLDER = "vivary-injects-the-key";

export function modelEnvironment(providers: readonly { name: string; kind: string }[]): Record<string, string> {
  const base = `http://127.0.0.1:${JAIL.modelPort}`;
  const env: Record<string, string> = {};
  const anthropic = providers.find((p) => p.kind === "anthropic");
  const openai = providers.find((p) => p.kind === "openai" || p.kind === "openai-compatible");
  if (anthropic) Object.assign(env, { ANTHROPIC_BASE_URL: `${base}/${anthropic.name}`, ANTHROPIC_API_KEY: MODEL_KEY_PLACEHOLDER });
  if (openai) Object.assign(env, { OPENAI_BASE_URL: `${base}/${openai.name}/v1`, OPENAI_API_KEY: MODEL_KEY_PLACEHOLDER });
  return env;
}

/** The jail's command, behind the relay when the agent has model access. */
export function modelCommand(providers: readonly unknown[], command: readonly string[]): string[] {
  return providers.length ? [JAIL.modelRelay, String(JAIL.modelPort), JAIL.modelSocket, "--", ...command] : [...command];
}
