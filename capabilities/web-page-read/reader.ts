// The script that turns a loaded page into markdown, run inside the page's own isolated world
// (a separate JavaScript context over the same DOM), so the untrusted HTML is parsed and walked
// by the browser's sandboxed renderer, never by the broker. @mozilla/readability picks the
// article out of a copy of the document; turndown converts it. Both are bundled as source text.
import readability from "@mozilla/readability/Readability.js" with { type: "text" };
import turndown from "turndown/lib/turndown.browser.umd.js" with { type: "text" };

/** What the script returns: where the tab is, its HTTP status, its title and readable text as markdown. */
export interface Extracted {
  url: string;
  status: number;
  title: string;
  markdown: string;
}

const EXTRACT = `
(() => {
  const td = new TurndownService({ headingStyle: "atx", codeBlockStyle: "fenced", bulletListMarker: "-" });
  td.remove(["script", "style", "noscript", "template", "iframe", "object", "embed", "svg", "canvas", "form", "button", "input", "select", "textarea"]);
  const copy = document.cloneNode(true);
  let article = null;
  try { article = new Readability(copy, { charThreshold: 0 }).parse(); } catch (e) { article = null; }
  const title = (article && article.title) || document.title || "";
  let body;
  if (article && article.content) body = td.turndown(article.content);
  else body = document.body ? td.turndown(document.body.cloneNode(true)) : "";
  // Control characters other than tab and newline have no place in markdown; a page could use
  // them to make the JSON form of the result several times longer than the text.
  const markdown = ((title && !body.startsWith("# ") ? "# " + title + "\\n\\n" : "") + body.trim()).replace(/[\\u0000-\\u0008\\u000b-\\u001f\\u007f]/g, "");
  const nav = performance.getEntriesByType("navigation")[0];
  return { url: String(location.href), status: (nav && nav.responseStatus) || 0, title: String(title), markdown };
})()
`;

/** The expression to evaluate in the isolated world; its value is an Extracted. */
export const READER_SCRIPT = `${readability}\n${turndown}\n${EXTRACT}`;
