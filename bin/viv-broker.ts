// viv-broker from source: `bun bin/viv-broker.ts …` behaves as the built viv-broker.
import { dispatch } from "./vivary.ts";

process.exitCode = await dispatch("viv-broker", process.argv.slice(2));
