// Generates each capability's man page, man/NAME.1, from capabilities/NAME/schema.json: the same
// definition that `NAME --help` prints and the broker parses argv against, so SYNOPSIS, OPTIONS,
// SCOPE and OUTPUT cannot drift from it. `bun run scripts/gen-man.ts` rewrites the pages; a test
// in test/architecture.test.ts checks that they are up to date.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { kebab, type CapabilitySchema, type PropertySchema } from "../lib/capability.ts";
import { Exit } from "../lib/exit.ts";
import { PROVIDER_KINDS } from "../providers/registry.ts";

const root = join(import.meta.dir, "..");

/** What each scope kind means in a grant. A capability declaring a kind not listed here fails. */
const SCOPE_KINDS: Record<string, { arg: string; example: string; doc: string[]; node?: string; props?: string; scopeValue?: string }> = {
  path: {
    arg: "DIR",
    example: "/srv/reports",
    doc: [
      "An absolute host directory the capability may reach below; repeat it to grant several.",
      "A requested path must lie strictly below one of them, compared component by component, and the longest match is used.",
      "The policy refuses a directory that is too broad (the root, a top-level directory, a system tree or vivary's state); see vivary-policy(5).",
    ],
  },
  url: {
    arg: "PATTERN",
    example: "https://en.wikipedia.org/wiki/*",
    doc: [
      "A web address the capability may read, as SCHEME://HOST[:PORT][/PATH]; repeat it to grant several.",
      "SCHEME is http or https. HOST is a name, an IP address, or *. followed by a name of at least two labels, which matches any name below it at a label boundary (*.example.com matches a.example.com and a.b.example.com, not example.com). PORT defaults to the scheme's. PATH is matched exactly, or as a prefix when it ends in /* (/docs/* matches /docs and everything below it); without a PATH the whole origin is granted.",
      "Patterns and requested URLs are compared only in canonical form, after the WHATWG URL parser: names in lower case and IDNA (punycode), a trailing dot dropped, IPv4 addresses in any spelling (2130706433, 0x7f000001, 0177.0.0.1, 127.1) as dotted decimal, IPv6 compressed. A URL with userinfo (user:password@) is refused.",
      "The policy refuses near-universal patterns (*, https://*, http://*.com/*), a wildcard anywhere but a leading *. label, and a * in the path other than a final /*; see vivary-policy(5).",
      "Every connection the browser makes (redirects, frames, images, scripts, fetches, workers, WebSockets) is checked against these patterns by the broker's proxy, which resolves each name once and connects to the address it checked. Loopback, private, link-local (cloud metadata), CGNAT, multicast, unspecified and reserved addresses are refused unless a pattern names that exact address and port.",
    ],
  },
  contact: {
    arg: "NUMBER",
    example: "+15550100000",
    doc: [
      "A phone number the capability may reach, in international form (a leading + and the country code; spaces, dots, dashes and parentheses allowed); repeat it to grant several.",
      "Both it and the requested number are canonicalized to E.164 by libphonenumber-js before they are compared, so +1 (555) 010-0000 and +15550100000 are the same contact and nothing else is.",
      "A value that is not a possible phone number is refused when the policy loads.",
    ],
  },
  model: {
    arg: "PATTERN",
    example: "claude-*",
    doc: [
      "A model the agent may ask, by the name the provider gives it; a * stands for any run of characters (claude-* matches claude-sonnet-4-5); repeat it to grant several.",
      "A request for any other model is refused with exit status 77, or through the model endpoint with the API's own permission error (HTTP 403).",
      "The policy refuses a pattern that is only * (every model).",
    ],
  },
  calendar: {
    arg: "NAME",
    example: "work",
    doc: [
      "A calendar the capability may write to: the name of a collection directly below the provider's calendar home (its url), such as work for https://dav.example.com/alice/work/; repeat it to grant several.",
      "The name is compared exactly; it is letters, digits, '.', '_' and '-', up to 64, starting with a letter or digit, and anything else is refused when the policy loads.",
    ],
  },
  attendees: {
    arg: "",
    example: "5",
    node: "attendees max=5",
    doc: [
      "Written attendees max=N: the most attendees one event may have, a whole number from 0 (no invitations) to 50; given once.",
      "A call with more distinct attendees is denied with exit status 77.",
    ],
  },
  "attendee-domain": {
    arg: "DOMAIN",
    example: "example.com",
    doc: [
      "A domain the attendees' e-mail addresses may belong to; repeat it to grant several (with attendees max=0 it still must be named, and invites nobody).",
      "It and each attendee's domain are compared in canonical form (IDNA to punycode, lower case) and exactly: example.com does not grant sub.example.com. A value that is not a domain name of at least two labels, or that holds a wildcard, is refused when the policy loads.",
    ],
  },
  device: {
    arg: "ENTITY_ID",
    example: "light.kitchen",
    props: 'actions="on off set"',
    scopeValue: "light.kitchen on off set",
    doc: [
      "A home device the capability may act on, as its Home Assistant entity id (domain.object_id), with actions=\"…\": the actions allowed on it, separated by spaces; repeat the node to grant several devices.",
      "The domain must be light, switch, fan or climate; on, off and toggle are allowed on each, set on lights, fans and climate devices only. A requested device is matched exactly: a renamed entity is a new device that must be granted again.",
      "An unknown domain, a malformed entity id, a missing actions= or an action the domain does not take is refused when the policy loads.",
    ],
  },
  sku: {
    arg: "PATTERN",
    example: "BOOK-*",
    doc: [
      "A product SKU the capability may order, in which * stands for any run of SKU characters (letters, digits, dot, dash, underscore); repeat it to grant several.",
      "SKUs are compared case-sensitively, as the shop stores them. A pattern of * alone is refused when the policy loads.",
    ],
  },
  "max-quantity": {
    arg: "N",
    example: "3",
    doc: ["The largest quantity of one order, a whole number from 1 to 1000; given several times, the smallest holds."],
  },
  "shipping-address": {
    arg: "ID",
    example: 'home" first-name="Jane" last-name="Doe" address-1="1 Main Street" city="Paris" postcode="75001" country="FR',
    doc: [
      "An address orders may be shipped to: its ID (lower case letters, digits and dashes) is what the agent names with --shipping-address-id; the address is the properties of the node, which the agent never supplies.",
      "Properties: first-name, last-name, address-1, city, postcode and country (required); company, address-2, state and phone (optional). They are sent as the order's shipping address.",
    ],
  },
  provider: {
    arg: "NAME",
    example: "family-sms",
    doc: [
      "A provider the capability may act through: the name of a top-level provider node of the policy, of a kind listed under PROVIDERS; repeat it to grant several.",
      "The provider's settings and credential are the operator's; the agent only names which granted provider to use.",
    ],
  },
};

/** What the model endpoint's token budget (x-vivary-token-budget, `tokens max=N per=UNIT`) means in a grant. */
const TOKEN_BUDGET_DOC = [
  "Optional: at most N model tokens (input and output, as the provider reports them) in any window of one second, minute, hour or day, over this capability and the agent's model endpoint together.",
  "The ceiling is hard: before a request is forwarded the broker reserves its output bound (max_tokens, max_completion_tokens or max_output_tokens; 4096 is set where the API lets a request omit it) plus its size in bytes, an estimate of its input that no tokenizer's count exceeds; once the reply ends the reservation is replaced by the usage the provider reported.",
  "A request whose reservation would cross the ceiling is refused with exit status 75 (HTTP 429 through the endpoint) and recorded. The token budget is state: the amounts are in the audit log, and a restarted broker rebuilds the window from it.",
];

/** What each exit code means for one call, keyed like lib/exit.ts. */
const EXIT_MEANINGS: Record<keyof typeof Exit, string> = {
  ok: "The call succeeded; its result is on standard output.",
  usage: "Usage error: an unknown, duplicated or abbreviated option, a missing required option, or a value of the wrong type or out of range.",
  data: "Bad data: a value that passed the schema but cannot be used, or a provider's reply that makes no sense.",
  unavailable: "The broker cannot be reached, or the capability or its provider is unavailable: a provider that fails or refuses, or a credential the call needs that is not in the vault.",
  internal: "Internal error in the broker or the capability.",
  temporary: "Temporary failure: the grant's rate limit is reached or the call timed out; a later call may succeed.",
  protocol: "Protocol error between the stub and the broker.",
  denied: "Denied: the capability is not granted to this agent, or the call is outside the grant's scope.",
  config: "Configuration error on the host.",
};

const RISKS = ["low", "medium", "high", "critical"];

/** Escapes text for roff: backslashes, dashes (kept as ASCII minus so commands copy) and a leading control character. */
export function roff(s: string): string {
  return s.replace(/\\/g, "\\e").replace(/-/g, "\\-").replace(/^[.']/gm, "\\&$&");
}

/** One sentence per source line, as roff prefers; sentences end with a period. */
function sentences(text: string): string {
  const parts = text.trim().split(/(?<=\.)\s+/).filter(Boolean);
  return parts.map((p) => roff(/[.!?]$/.test(p) ? p : `${p}.`)).join("\n");
}

const placeholder = (prop: string) => kebab(prop).toUpperCase();

function synopsisOption(key: string, p: PropertySchema, required: boolean): string {
  const flag = `\\-\\-${roff(kebab(key))}`;
  if (p.type === "boolean") return required ? `.B ${flag}` : `.RB [ ${flag} ]`;
  const value = p.enum ? p.enum.map(roff).join("|") : placeholder(key);
  const optional = `.RB [ ${flag}\n.IR ${value} ]${p.type === "array" ? "..." : ""}`;
  if (!required) return optional;
  return p.type === "array" ? `.BI ${flag} " ${value}"\n${optional}` : `.BI ${flag} " ${value}"`;
}

function describeValue(p: PropertySchema, required: boolean, schemaDefault: unknown): string[] {
  const out: string[] = [];
  const what: string[] = [];
  if (p.type === "boolean") what.push("a flag, given without a value");
  else if (p.enum) what.push(`one of ${p.enum.map((e) => `\\fB${roff(e)}\\fR`).join(", ")}`);
  else if (p.type === "integer" || p.type === "number") {
    const noun = p.type === "integer" ? "a whole number" : "a number";
    if (p.minimum !== undefined && p.maximum !== undefined) what.push(`${noun} from ${p.minimum} to ${p.maximum}`);
    else if (p.minimum !== undefined) what.push(`${noun}, at least ${p.minimum}`);
    else if (p.maximum !== undefined) what.push(`${noun}, at most ${p.maximum}`);
    else what.push(noun);
  } else {
    const noun = p.type === "array" ? "a string, repeat the option for each item" : "a string";
    if (p.minLength !== undefined && p.maxLength !== undefined) what.push(`${noun} of ${p.minLength} to ${p.maxLength} characters`);
    else if (p.maxLength !== undefined) what.push(`${noun} of at most ${p.maxLength} characters`);
    else if (p.minLength !== undefined) what.push(`${noun} of at least ${p.minLength} characters`);
    else what.push(noun);
    if (p.type === "array" && p.maxItems !== undefined) what.push(`at most ${p.maxItems} times`);
  }
  out.push(`${required ? "Required" : "Optional"}; ${what.join(", ")}${schemaDefault !== undefined ? `; default \\fB${roff(String(schemaDefault))}\\fR` : ""}.`);
  return out;
}

function title(s: string) {
  return roff(s.toUpperCase());
}

/** The roff text of man/NAME.1 for the capability in capabilities/NAME/. */
export function generate(name: string): string {
  const schema = JSON.parse(readFileSync(join(root, "capabilities", name, "schema.json"), "utf8")) as CapabilitySchema;
  const version = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }).version;
  if (schema.title !== name) throw new Error(`${name}: schema.json title is '${schema.title}', not '${name}'`);
  const risk = schema["x-vivary-risk"];
  if (!RISKS.includes(risk)) throw new Error(`${name}: x-vivary-risk '${risk}' is not one of ${RISKS.join(", ")}`);
  const scopes = schema["x-vivary-scopes"];
  for (const kind of scopes) if (!SCOPE_KINDS[kind]) throw new Error(`${name}: scope kind '${kind}' has no entry in scripts/gen-man.ts SCOPE_KINDS`);
  const output = schema["x-vivary-output"] as { type?: string; description?: string; required?: string[]; properties?: Record<string, { type?: string | string[]; description?: string }> };
  const n = roff(name);
  const first = schema.description.split(/(?<=\.)\s/)[0]!.replace(/\.$/, "");
  const L: string[] = [];

  L.push(`.\\" Generated from capabilities/${name}/schema.json by scripts/gen-man.ts; do not edit.`);
  L.push(`.TH ${title(name)} 1 "" "vivary ${roff(version)}" "vivary capabilities"`);
  L.push(".nh", ".nr HY 0", ".SH NAME", `${n} \\- ${roff(first.charAt(0).toLowerCase() + first.slice(1))}`);

  L.push(".SH SYNOPSIS", ".ad l", `.B ${n}`);
  const props = Object.entries(schema.properties);
  for (const [key, p] of props) L.push(synopsisOption(key, p, schema.required.includes(key)));
  L.push(".br", `.B ${n} \\-\\-help`, ".ad");

  L.push(".SH DESCRIPTION", sentences(schema.description), ".PP");
  L.push(`Risk: \\fB${risk}\\fR (of low, medium, high, critical).`);
  const cred = schema["x-vivary-credential"];
  L.push(cred
    ? `It needs a credential, ${roff(cred)}: the broker takes it from the vault (see \\fBviv secret\\fR in viv(1)) and hands it over in memory, and scrubs it from the result and from error lines; it never enters the jail, argv or the audit log.`
    : "It needs no credential.");
  L.push(".PP", `Inside an agent's jail, \\fB${n}\\fR is a stub (viv\\-stub) that forwards its arguments to the broker over`);
  L.push(".IR /run/vivary/broker.sock .");
  L.push("The broker parses them against this page's options, checks them against the agent's grant, records the call in the audit log, runs it on the host and records its outcome before the result comes back; see");
  L.push(".BR vivary\\-protocol (7).");

  L.push(".SH OPTIONS", "Options are the properties of the input schema in kebab case: a list is a repeated option, a boolean a bare flag.");
  L.push("A value may follow its option as the next argument or after an equals sign; the argument after an option that takes a value is always its value.");
  L.push("Unknown, duplicated or abbreviated options and stray arguments are usage errors.");
  for (const [key, p] of props) {
    const flag = `\\-\\-${roff(kebab(key))}`;
    L.push(".TP", p.type === "boolean" ? `.B ${flag}` : `.BI ${flag} " ${placeholder(key)}"`);
    if (p.description) L.push(sentences(p.description));
    L.push(...describeValue(p, schema.required.includes(key), p.default));
  }
  L.push(".TP", ".B \\-\\-help", "Print the input schema (JSON Schema, draft 2020\\-12, with vivary's x\\-vivary\\-* annotations) on standard output and exit 0.");

  L.push(".SH SCOPE", `A grant of \\fB${n}\\fR in a policy takes these nodes; each scope kind must be named at least once (see`, ".BR vivary\\-policy (5)).");
  for (const kind of scopes) {
    const k = SCOPE_KINDS[kind]!;
    L.push(".TP", k.node ? `.B ${roff(k.node)}` : `.BI ${roff(kind)} " ${k.arg}"`, ...k.doc.map(roff));
  }
  L.push(".TP", `.BI rate " N " per= UNIT`, "Optional: at most N calls per second, minute, hour or day for this agent; a call beyond it is denied with exit status 75.");
  const budgets = Object.entries(schema["x-vivary-budgets"] ?? {});
  for (const [b, d] of budgets) {
    const props = `max= ${d.measure === "money" ? "AMOUNT" : "N"}${d.cumulative ? " per= UNIT" : ""}${d.measure === "money" ? " [currency= CODE]" : ""}`;
    L.push(".TP", `.BI ${roff(b)} " ${roff(props)}"`, `Optional budget. ${sentences(d.doc)}`);
  }
  if (budgets.some(([, d]) => d.measure === "money")) {
    L.push("AMOUNT is a decimal in quotes (\\(dq50.00\\(dq), exact in the currency's minor unit; CODE an ISO 4217 currency, given on at least one of the grant's spending limits and the same on all.");
    L.push("Budgets are state, not configuration: what was reserved is in the audit log and counts again after a broker restart.");
  }
  if (schema["x-vivary-token-budget"]) L.push(".TP", `.BI tokens " max= N per= UNIT"`, ...TOKEN_BUDGET_DOC.map(roff));
  L.push(".PP", "For example:", ".PP", ".in +4n", ".EX", `grant "${n}" {`);
  const exampleProvider = PROVIDER_KINDS.get(schema["x-vivary-providers"]?.[0] ?? "")?.exampleName;
  for (const kind of scopes) {
    const k = SCOPE_KINDS[kind]!;
    L.push(`    ${k.node ? roff(k.node) : `${roff(kind)} "${roff(kind === "provider" && exampleProvider ? exampleProvider : k.example)}"${k.props ? ` ${roff(k.props)}` : ""}`}`);
  }
  L.push(`    rate 30 per="minute"`);
  for (const [b, d] of budgets) L.push(`    ${roff(b)} ${roff(d.example)}`);
  if (schema["x-vivary-token-budget"]) L.push(`    tokens max=200000 per="day"`);
  L.push("}", ".EE", ".in");

  const kinds = schema["x-vivary-providers"] ?? [];
  if (kinds.length) {
    L.push(".SH PROVIDERS", `\\fB${n}\\fR acts through a provider: a top\\-level \\fBprovider\\fR node of the policy, operator configuration the agent never sees, named by the grant.`);
    L.push("An unknown kind or setting, or a missing required one, is a configuration error (exit 78) with its file and line.");
    L.push("Every provider takes \\fBkind\\fR, \\fBurl\\fR and \\fBcredential\\fR; the settings of each kind follow.");
    L.push(".TP", ".BI kind \" KIND\"", `One of ${kinds.map((k) => `\\fB${roff(k)}\\fR`).join(", ")}.`);
    L.push(".TP", ".BI url \" URL\"", "The base URL of the service's API: https, or plain http to a loopback address only; no user name, password, query or fragment.");
    L.push("Requests time out, replies are capped in size, and redirects are never followed.");
    L.push(".TP", ".BI credential \" ID\"", "The vault id of the provider's secret (see viv(1), \\fBviv secret set\\fR); the secret itself is never in a policy.");
    for (const k of kinds) {
      const kind = PROVIDER_KINDS.get(k);
      if (!kind) throw new Error(`${name}: provider kind '${k}' is not in providers/registry.ts`);
      L.push(`.SS ${roff(k)}`, `Speaks the ${roff(kind.api)}.`, `Its credential is ${roff(kind.credentialDoc)}.`);
      for (const [key, s] of Object.entries(kind.settings)) {
        L.push(".TP", `.BI ${roff(key)} " ${roff(s.arg)}"`, `${s.required ? "Required" : "Optional"}. ${roff(s.doc)}`);
      }
      L.push(".PP", "For example:", ".PP", ".in +4n", ".EX", `provider "${roff(kind.exampleName ?? "family-sms")}" {`, `    kind "${roff(k)}"`, `    url "${roff(kind.urlExample)}"`);
      for (const [key, s] of Object.entries(kind.settings)) L.push(`    ${roff(key)} "${roff(s.example)}"`);
      L.push(`    credential "${roff(k)}\\-main"`, "}", ".EE", ".in");
    }
  }

  L.push(".SH OUTPUT");
  if (output.type === "object" && output.properties) {
    L.push(`On success, \\fB${n}\\fR prints one line on standard output: a JSON object with these members.`);
    for (const [key, p] of Object.entries(output.properties)) {
      L.push(".TP", `.B ${roff(key)}`, `(${roff([p.type ?? "any"].flat().join(" or "))}${output.required?.includes(key) ? "" : ", optional"})${p.description ? ` ${sentences(p.description)}` : ""}`);
    }
    if (output.description) L.push(".PP", sentences(output.description));
  } else {
    L.push(`On success, \\fB${n}\\fR prints its result on standard output${output.description ? `: ${sentences(output.description)}` : "."}`);
  }
  L.push(".PP", `On failure it prints one line on standard error, \\fB${n}: \\fIwhat failed\\fB: \\fIwhy\\fR, and nothing on standard output.`);

  const examples = schema["x-vivary-examples"] ?? [];
  if (examples.length) {
    L.push(".SH EXAMPLES");
    examples.forEach((e, i) => {
      if (i) L.push(".PP");
      L.push(sentences(e.description), ".PP", ".in +4n", ".EX", `$ ${roff(e.command)}`, ...e.output.split("\n").map(roff), ".EE", ".in");
    });
  }

  L.push(".SH EXIT STATUS");
  for (const [key, code] of Object.entries(Exit)) L.push(".TP", `.B ${code}`, roff(EXIT_MEANINGS[key as keyof typeof Exit]));

  L.push(".SH ENVIRONMENT", ".TP", ".B VIVARY_SOCKET", "The broker socket the stub connects to, instead of", ".IR /run/vivary/broker.sock .");
  L.push(".TP", ".B VIVARY_SCOPE", `When \\fB${n}\\fR runs as its own program on the host rather than through the broker: its effective scope as JSON, for example`);
  L.push(`.BR "{""${roff(scopes[0] ?? "path")}"": [""${roff(SCOPE_KINDS[scopes[0] ?? "path"]?.scopeValue ?? SCOPE_KINDS[scopes[0] ?? "path"]?.example ?? "/srv/reports")}""]}" .`);
  L.push("Without it every call is denied.");
  L.push(".SH FILES", ".TP", ".I /run/vivary/capabilities.json", "In the jail: every capability granted to the agent, with its schema.");
  L.push(".SH SEE ALSO", ".BR viv (1),", ".BR viv\\-log (1),", ".BR vivary\\-policy (5),", ".BR vivary\\-protocol (7),", ".BR viv\\-broker (8)");
  return `${L.join("\n")}\n`;
}

if (import.meta.main) {
  const dirs = readdirSync(join(root, "capabilities"), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
  for (const name of dirs) writeFileSync(join(root, "man", `${name}.1`), generate(name));
  console.log(`wrote ${dirs.map((d) => `man/${d}.1`).join(", ")}`);
}
