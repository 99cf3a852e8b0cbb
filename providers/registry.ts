// The one list of provider kinds. A capability names the kinds it speaks in its schema
// (x-vivary-providers); the capability registry looks them up here for the policy loader, and
// scripts/gen-man.ts documents each kind's settings from the same entries.
import type { ProviderKind } from "./kind.ts";
import { caldav } from "./caldav.ts";
import { twilio } from "./twilio.ts";
import { homeAssistant } from "./home-assistant.ts";
import { woocommerce } from "./woocommerce.ts";

export const PROVIDER_KINDS: ReadonlyMap<string, ProviderKind> = new Map([
  [twilio.name, twilio],
  [caldav.name, caldav],
  [homeAssistant.name, homeAssistant],
  [woocommerce.name, woocommerce],
]);
