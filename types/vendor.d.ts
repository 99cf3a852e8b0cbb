// Types for files of packages that ship none and that vivary imports by path: kdljs's parser
// (whose node rule policy/kdl.ts wraps), and two browser scripts web-page-read imports as text to
// run inside the page.
declare module "kdljs/src/parser/kdl.js" {
  export const parser: unknown;
}
declare module "@mozilla/readability/Readability.js" {
  const source: string;
  export default source;
}
declare module "turndown/lib/turndown.browser.umd.js" {
  const source: string;
  export default source;
}
