// KDL parsing with source lines. kdljs returns nodes without positions; vivary must report every
// policy error as file:line, so this wraps the parser's node rule once to remember the line of
// the token each node starts at. Nothing else of kdljs is changed.
import { parse as kdlParse, type Node } from "kdljs";
import { parser } from "kdljs/src/parser/kdl.js";

export type { Node };

const lines = new WeakMap<object, number>();

const nodeRule = (parser as unknown as { node: { coreRule: (...a: unknown[]) => unknown } }).node;
const core = nodeRule.coreRule;
nodeRule.coreRule = function (this: { LA(n: number): { startLine?: number } }, ...args: unknown[]) {
  const first = this.LA(1);
  const node = core.apply(this, args);
  if (node && typeof node === "object" && first?.startLine) lines.set(node, first.startLine);
  return node;
};

export function lineOf(node: Node): number {
  return lines.get(node) ?? 0;
}

export type ParsedKdl = { ok: true; nodes: Node[] } | { ok: false; line: number; message: string };

export function parseKdl(text: string): ParsedKdl {
  const r = kdlParse(text);
  if (r.errors.length > 0 || !r.output) {
    const e = r.errors[0] as { message?: string; token?: { startLine?: number; image?: string }; line?: number };
    const eofLine = text.split("\n").length;
    const line = e?.token ? (Number.isFinite(e.token.startLine) ? e.token.startLine! : eofLine) : (e?.line ?? 0);
    const image = e?.token?.image;
    const message = e?.token
      ? image ? `unexpected '${image.replace(/\n/g, "\\n")}'` : "unexpected end of file"
      : (e?.message ?? "syntax error").split("\n")[0]!.replace(/->|<-/g, "").replace(/\s+/g, " ").trim();
    return { ok: false, line, message: `KDL syntax error: ${message.toLowerCase()}` };
  }
  return { ok: true, nodes: r.output };
}
