// The policy tests' one way to read a refusal: the problems a PolicyError lists (each
// "file:line: what"), or none when the policy loads. Any other error is rethrown.
import { PolicyError } from "../policy/load.ts";

export function problemsOf(load: () => unknown): string[] {
  try {
    load();
    return [];
  } catch (e) {
    if (e instanceof PolicyError) return e.problems;
    throw e;
  }
}
