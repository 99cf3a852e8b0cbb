// What the model-complete capability sees of the broker's governed model access for one call: a
// completion through a granted provider, under the grant's model patterns and token budget. The
// broker (broker/model-gateway.ts) implements it, so the reservation, the credential and the
// settlement against reported usage are the same for a shell call as for the jail's HTTP endpoint.

export interface CompletionRequest {
  /** The granted provider to use (its name), or undefined for the grant's first. */
  provider?: string;
  model: string;
  prompt: string;
  system?: string;
  maxTokens: number;
}

export interface Completion {
  provider: string;
  model: string;
  text: string;
  stop_reason: string;
  input_tokens: number;
  output_tokens: number;
}

/** Throws VivError: 77 for a model or provider outside the grant, 75 when the budget cannot cover it, 69 for a provider failure. */
export type ModelAccess = (req: CompletionRequest) => Promise<Completion>;
