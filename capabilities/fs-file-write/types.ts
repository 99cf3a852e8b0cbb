// Generated from schema.json by scripts/gen-types.ts; do not edit.

/**
 * Write a file under a granted host directory, replacing any old file atomically. Missing parent directories are created; symlinks, hard links and special files are refused.
 */
export interface FsFileWriteInput {
  /**
   * Absolute host path of the file, below a directory granted with 'path'
   */
  path: string;
  /**
   * What the file will hold, at most 1 MiB once decoded
   */
  content: string;
  /**
   * How --content is encoded
   */
  encoding?: "utf-8" | "base64";
}

export interface FsFileWriteResult {
  /**
   * The path written
   */
  path: string;
  /**
   * Bytes in the file now
   */
  bytes_written: number;
}
