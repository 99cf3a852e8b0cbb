// Generated from schema.json by scripts/gen-types.ts; do not edit.

/**
 * Send a text message to one granted contact through a granted provider. The number is canonicalized to E.164 before it is matched against the grant; the provider's credential is injected by the broker and never reaches the caller.
 */
export interface MessagingMessageSendInput {
  /**
   * The recipient's phone number in international form (a leading + and the country code), matched against the grant's 'contact' nodes once canonicalized
   */
  to: string;
  /**
   * The text of the message
   */
  body: string;
  /**
   * Which of the grant's providers sends it (default: the first one the grant names)
   */
  provider?: string;
}

export interface MessagingMessageSendResult {
  /**
   * The provider's id of the message (a Twilio message SID)
   */
  message_id: string;
  /**
   * The provider's status of the message, such as queued or accepted
   */
  status: string;
}
