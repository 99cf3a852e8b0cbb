// A secret value held in memory: the one type that carries a credential from the vault to the
// provider that uses it. It hides its value from every accidental rendering (JSON, string
// templates, console inspection), so a secret can only leave through an explicit reveal().
const VALUE = Symbol("secret value");
const HIDDEN = "[secret]";

export class Secret {
  private readonly [VALUE]: string;

  constructor(
    value: string,
    /** The vault id it came from: safe to show, record and put in an error. */
    readonly id: string,
  ) {
    this[VALUE] = value;
  }

  /** The value itself, for the one place that must send it (an Authorization header, say). */
  reveal(): string {
    return this[VALUE];
  }

  toJSON() {
    return HIDDEN;
  }

  toString() {
    return HIDDEN;
  }

  [Symbol.for("nodejs.util.inspect.custom")]() {
    return HIDDEN;
  }
}
