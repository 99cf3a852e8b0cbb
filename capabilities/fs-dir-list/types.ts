// Generated from schema.json by scripts/gen-types.ts; do not edit.

/**
 * List a directory under a granted host directory, or the granted directory itself, with each entry's type and size. Symlinks are listed as symlinks and never followed; a recursive listing descends at most 16 levels and every listing holds at most 10000 entries (and 1 MiB of names), with truncated set when a bound cut it short. Symlinked or mounted directories on the way are refused.
 */
export interface FsDirListInput {
  /**
   * Absolute host path of the directory: a directory granted with 'path', or one below it
   */
  path: string;
  /**
   * Also list what the subdirectories hold, each directory before its contents
   */
  recursive?: boolean;
}

export interface FsDirListResult {
  /**
   * The directory listed
   */
  path: string;
  /**
   * Its entries, sorted by name within each directory
   */
  entries: {
    /**
     * The entry's path below the listed directory
     */
    name: string;
    type: "file" | "directory" | "symlink" | "fifo" | "socket" | "block-device" | "char-device" | "unknown";
    /**
     * Bytes, for a file only
     */
    size?: number;
    /**
     * Last modification, ISO 8601 in UTC
     */
    mtime: string;
  }[];
  /**
   * True when a bound (depth, entries or names) left entries out
   */
  truncated: boolean;
}
