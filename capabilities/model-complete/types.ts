// Generated from schema.json by scripts/gen-types.ts; do not edit.

/**
 * Ask a granted language model for a completion of one prompt, through a granted model provider, under the grant's model patterns and token budget. The broker reserves the request's output bound plus the prompt's size in tokens before it forwards the request, settles against the usage the provider reports, and injects the provider's key, which never reaches the caller. The same grant opens the jail's model endpoint (ANTHROPIC_BASE_URL, OPENAI_BASE_URL) and shares its budget.
 */
export interface ModelCompleteInput {
  /**
   * The model to ask, matched against the grant's 'model' patterns
   */
  model: string;
  /**
   * The prompt, sent as one user message
   */
  prompt: string;
  /**
   * A system prompt
   */
  system?: string;
  /**
   * The most tokens the completion may have
   */
  max_tokens?: number;
  /**
   * Which of the grant's providers to ask (default: the first one the grant names)
   */
  provider?: string;
}

export interface ModelCompleteResult {
  /**
   * The provider that answered
   */
  provider: string;
  /**
   * The model that answered, as the provider names it
   */
  model: string;
  /**
   * The completion's text
   */
  text: string;
  /**
   * Why the model stopped, in the provider's words (end_turn, max_tokens, stop, length)
   */
  stop_reason: string;
  /**
   * Input tokens the provider reported
   */
  input_tokens: number;
  /**
   * Output tokens the provider reported
   */
  output_tokens: number;
}
