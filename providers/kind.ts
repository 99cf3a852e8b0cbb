// What a provider kind module declares: its settings (checked by the policy loader, documented by
// scripts/gen-man.ts from the same table) and the API it speaks. Each kind lives in its own file
// of this folder and is listed once in providers/registry.ts.
import type { ProviderKindFacts, ProviderSetting } from "../policy/model.ts";

export interface ProviderKindSetting extends ProviderSetting {
  /** The value's name in the man page, e.g. SID. */
  arg: string;
  example: string;
  doc: string;
}

export interface ProviderKind extends ProviderKindFacts {
  name: string;
  /** The documented API it speaks, for the man page. */
  api: string;
  urlExample: string;
  /** The provider's name in the man page's examples (default family-sms). */
  exampleName?: string;
  /** What the vault secret named by `credential` is for this kind. */
  credentialDoc: string;
  settings: Readonly<Record<string, ProviderKindSetting>>;
}
