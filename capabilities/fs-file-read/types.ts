// Generated from schema.json by scripts/gen-types.ts; do not edit.

/**
 * Read a regular file under a granted host directory. At most --max-bytes bytes are read (256 KiB unless told, 1 MiB at most) and the result says when the file holds more; text that is not valid UTF-8 is refused in utf-8 mode rather than mangled, so read it with --encoding base64. Symlinks, hard links (a second name inside the scope for a file that may live outside it), FIFOs, sockets, devices and mount points are refused, and nothing is opened in a way that can block.
 */
export interface FsFileReadInput {
  /**
   * Absolute host path of the file, below a directory granted with 'path'
   */
  path: string;
  /**
   * How the content is given in the result: utf-8 text (refused with exit 65 when the bytes are not valid UTF-8) or base64 of the raw bytes
   */
  encoding?: "utf-8" | "base64";
  /**
   * Read at most this many bytes from the start of the file; truncated is true when it holds more. In utf-8 mode a character cut by the limit is left out whole
   */
  max_bytes?: number;
}

export interface FsFileReadResult {
  /**
   * The path read
   */
  path: string;
  /**
   * How content is encoded
   */
  encoding: "utf-8" | "base64";
  /**
   * What was read, as text or base64
   */
  content: string;
  /**
   * Bytes of the file in content
   */
  bytes_read: number;
  /**
   * The file's size in bytes when it was opened
   */
  size: number;
  /**
   * True when the file holds more than bytes_read
   */
  truncated: boolean;
}
