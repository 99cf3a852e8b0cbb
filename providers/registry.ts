// The one list of provider kinds. A capability names the kinds it speaks in its schema
// (x-vivary-providers); the capability registry looks them up here for the policy loader, and
// scripts/gen-man.ts documents each kind's settings from the same entries. MODEL_WIRES holds the
// wire facts of the kinds the jail's model endpoint forwards to.
import { anthropic, anthropicWire } from "./anthropic.ts";
import type { ProviderKind } from "./kind.ts";
import type { ModelWire } from "./model-wire.ts";
import { openai, openaiCompatible, openaiCompatibleWire, openaiWire } from "./openai.ts";
import { caldav } from "./caldav.ts";
import { twilio } from "./twilio.ts";
import { homeAssistant } from "./home-assistant.ts";
import { woocommerce } from "./woocommerce.ts";

export const PROVIDER_KINDS: ReadonlyMap<string, ProviderKind> = new Map([
  [twilio.name, twilio],
  [anthropic.name, anthropic],
  [openai.name, openai],
  [openaiCompatible.name, openaiCompatible],
  [caldav.name, caldav],
  [homeAssistant.name, homeAssistant],
  [woocommerce.name, woocommerce],
]);

export const MODEL_WIRES: ReadonlyMap<string, ModelWire> = new Map([
  [anthropic.name, anthropicWire],
  [openai.name, openaiWire],
  [openaiCompatible.name, openaiCompatibleWire],
]);
