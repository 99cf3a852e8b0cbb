// viv-log from source: `bun bin/viv-log.ts …` behaves as the built viv-log.
import { dispatch } from "./vivary.ts";

process.exitCode = await dispatch("viv-log", process.argv.slice(2));
