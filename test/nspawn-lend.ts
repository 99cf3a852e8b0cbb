// For test/bats/workspace-owner.bats: lends WORKSPACE the way the nspawn backend does
// (nspawnLendWorkspace), runs systemd-nspawn on ROOT with the container's users shifted by SHIFT
// and the returned --bind, as the container's jail user, then takes the workspace back.
// usage: bun test/nspawn-lend.ts STATE AGENT WORKSPACE ROOT SHIFT -- COMMAND...
import { nspawnLendWorkspace } from "../lib/workspace-idmap.ts";

const [state, agent, workspace, root, shift, dashes, ...command] = process.argv.slice(2);
if (!state || !agent || !workspace || !root || !shift || dashes !== "--" || command.length === 0) {
  console.error("usage: bun test/nspawn-lend.ts STATE AGENT WORKSPACE ROOT SHIFT -- COMMAND...");
  process.exit(64);
}
const { args, lent } = nspawnLendWorkspace(workspace, state, agent, Number(shift));
let code = 70;
try {
  const p = Bun.spawnSync(
    ["systemd-nspawn", "--register=no", "--keep-unit", "--quiet", "--console=pipe", `--directory=${root}`, `--private-users=${shift}:65536`, "--private-users-ownership=off", "--bind-ro=/usr", ...args, "--user=agent", "--", ...command],
    { stdin: "ignore", stdout: "inherit", stderr: "pipe", env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" } },
  );
  code = p.exitCode ?? 70;
  if (code !== 0) process.stderr.write(p.stderr);
} finally {
  for (const m of lent.release()) console.error(m);
}
process.exit(code);
