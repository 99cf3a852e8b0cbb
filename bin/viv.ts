// viv from source: `bun bin/viv.ts …` behaves as the built viv.
import { dispatch } from "./vivary.ts";

process.exitCode = await dispatch("viv", process.argv.slice(2));
