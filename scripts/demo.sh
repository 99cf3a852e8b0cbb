#!/usr/bin/env bash
# vivary's main job, end to end: an agent in a bubblewrap jail uses its capabilities under the
# example policy; allowed writes land, a denied path and a symlink escape are refused, a page
# served on loopback is read while a redirect from it to another address is refused, and the
# audit log shows all of it.
set -euo pipefail
# Root is needed (apt-get, jails under per-agent uids): as another user, run again under sudo.
if [ "$(id -u)" -ne 0 ]; then exec sudo -E -- "$0" "$@"; fi
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$PWD/dist/bin:$PATH"

state=$(mktemp -d /tmp/vivary-demo-state.XXXXXX)
chmod 711 "$state"
site=$state/site
mkdir "$site"
python3 capabilities/web-page-read/fixture-server.py "$site" 127.0.0.1 &
site_pid=$!
trap 'kill "$site_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 500); do [ -s "$site/port" ] && break; sleep 0.01; done
port=$(cat "$site/port")
# The example policy grants the site at port 8080; the demo's site listens where it could.
policy=$state/demo.kdl
sed "s/127.0.0.1:8080/127.0.0.1:$port/" policy/examples/demo.kdl >"$policy"
mkdir -p /srv/vivary-demo/reports
rm -rf /srv/vivary-demo/workspace

echo "== viv policy check $policy"
viv policy check "$policy"
echo "== viv run --agent scribe -- bash policy/examples/demo-agent.sh"
status=0
viv run --agent scribe --policy "$policy" --state "$state" -- bash -c "$(cat policy/examples/demo-agent.sh)" demo-agent "http://127.0.0.1:$port" || status=$?
echo "== the agent exited $status; the host now holds:"
find /srv/vivary-demo/reports -type f -printf '%p (%s bytes)\n' | sort
echo "== viv-log --state $state"
viv-log --state "$state"
echo "== viv-log verify"
viv-log verify --state "$state"
