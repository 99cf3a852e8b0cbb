#!/usr/bin/env bash
# vivary's main job, end to end: an agent in a bubblewrap jail uses its capabilities under the
# example policy; allowed writes land, a denied path and a symlink escape are refused, and the
# audit log shows all of it.
set -euo pipefail
# Root is needed (apt-get, jails under per-agent uids): as another user, run again under sudo.
if [ "$(id -u)" -ne 0 ]; then exec sudo -E -- "$0" "$@"; fi
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$PWD/dist/bin:$PATH"

policy=policy/examples/demo.kdl
state=$(mktemp -d /tmp/vivary-demo-state.XXXXXX)
chmod 711 "$state"
mkdir -p /srv/vivary-demo/reports
rm -rf /srv/vivary-demo/workspace

echo "== viv policy check $policy"
viv policy check "$policy"
echo "== viv run --agent scribe -- bash policy/examples/demo-agent.sh"
status=0
viv run --agent scribe --policy "$policy" --state "$state" -- bash -c "$(cat policy/examples/demo-agent.sh)" || status=$?
echo "== the agent exited $status; the host now holds:"
find /srv/vivary-demo/reports -type f -printf '%p (%s bytes)\n' | sort
echo "== viv-log --state $state"
viv-log --state "$state"
echo "== viv-log verify"
viv-log verify --state "$state"
