// Generated from schema.json by scripts/gen-types.ts; do not edit.

/**
 * Read a web page under a granted URL in a real headless browser and print its readable text as markdown: the title, the article's text and its links, without scripts, styles or boilerplate. The page loads in the agent's own browser on the host, whose only way out is the broker's filtering proxy: every redirect, frame, image, script, fetch, worker and WebSocket must fall under a granted url too, and addresses on loopback, private, link-local and similar networks are refused unless a grant names them. Downloads, popups, permission prompts and non-web schemes are refused.
 */
export interface WebPageReadInput {
  /**
   * The http or https URL of the page, under a URL granted with 'url'
   */
  url: string;
  /**
   * How long the whole call may take, as a number of seconds followed by s (1s to 120s) or of milliseconds followed by ms; a page not read by then exits 75
   */
  timeout?: string;
  /**
   * When the page counts as loaded: networkidle (no request for half a second), load (the load event), domcontentloaded (the document parsed), or a CSS selector that must match an element
   */
  wait_for?: string;
  /**
   * What is printed: markdown (the text itself) or json (one object with the members listed under OUTPUT)
   */
  format?: "markdown" | "json";
}

/**
 * That object is what --format json prints. With --format markdown, the default, only its markdown member is printed, as text ending in a newline. Markdown longer than 1 MiB is cut at that size and marked truncated.
 */
export interface WebPageReadResult {
  /**
   * The URL asked for, in canonical form
   */
  url: string;
  /**
   * The URL of the page read, after redirects
   */
  final_url: string;
  /**
   * The HTTP status of the page, 0 if unknown
   */
  status: number;
  /**
   * The page's title
   */
  title: string;
  /**
   * The readable text as markdown
   */
  markdown: string;
  /**
   * Bytes the browser loaded for the page, all resources included
   */
  bytes: number;
  /**
   * Whether the markdown was cut at 1 MiB
   */
  truncated: boolean;
}
