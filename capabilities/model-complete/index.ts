// model-complete: one prompt to a granted model, for agents that act from a shell. The grant's
// model patterns and providers are checked here (pure); the completion itself goes through the
// broker's model access lent in the call's context (lib/model.ts), which reserves tokens under
// the grant's budget, injects the key and settles against the reported usage, exactly as the
// jail's HTTP endpoint does. The request of each provider kind belongs to its module.
import type { Capability, CapabilitySchema } from "../../lib/capability.ts";
import { Exit, VivError } from "../../lib/exit.ts";
import { matchModel } from "../../policy/scope.ts";
import schemaJson from "./schema.json";
import type { ModelCompleteInput, ModelCompleteResult } from "./types.ts";

function chosenProvider(args: ModelCompleteInput, scopes: Readonly<Record<string, readonly string[]>>): string {
  return args.provider ?? scopes.provider?.[0] ?? "";
}

export const modelComplete: Capability<ModelCompleteInput, ModelCompleteResult> = {
  schema: schemaJson as CapabilitySchema,
  authorize(args, scopes) {
    if (!matchModel(args.model, scopes.model ?? [])) return `model '${args.model}' is not granted`;
    const p = chosenProvider(args, scopes);
    if (!(scopes.provider ?? []).includes(p)) return `provider '${p}' is not granted`;
    return null;
  },
  provider: chosenProvider,
  async run(args, scopes, context) {
    if (!context?.model) throw new VivError(Exit.unavailable, "no model access for this call (run it through the broker)");
    if (!matchModel(args.model, scopes.model ?? [])) throw new VivError(Exit.denied, `model '${args.model}' is not granted`);
    return await context.model({ provider: chosenProvider(args, scopes), model: args.model, prompt: args.prompt, system: args.system, maxTokens: args.max_tokens ?? 1024 });
  },
};
