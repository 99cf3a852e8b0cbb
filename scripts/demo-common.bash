# shellcheck shell=bash
# What the demo scripts (scripts/demo.sh, scripts/demo-model.sh) share: run as root (again under
# sudo when not), set up the machine unless VIVARY_DEMO_SKIP_SETUP=1 (the test suite runs the demos
# on an already built checkout), a fresh state directory, a vault key kept apart from it as in
# production, a directory for the loopback providers, and their cleanup. Sourced, not run.
set -euo pipefail
# Root is needed (apt-get, jails under per-agent uids): as another user, run again under sudo.
if [ "$(id -u)" -ne 0 ]; then exec sudo -E -- "$0" "$@"; fi
cd "$(dirname "$0")/.."
[ "${VIVARY_DEMO_SKIP_SETUP:-0}" = 1 ] || ./scripts/setup.sh
export PATH="$PWD/dist/bin:$PATH"
# shellcheck disable=SC2034 # bun, state and run are for the script that sources this
bun=$PWD/node_modules/.bin/bun

state=$(mktemp -d /tmp/vivary-demo-state.XXXXXX)
chmod 711 "$state"
keys=$(mktemp -d /tmp/vivary-demo-keys.XXXXXX)
export VIVARY_VAULT_KEY=$keys/vault.key
run=$(mktemp -d /tmp/vivary-demo-providers.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$run" "$keys"
}
trap cleanup EXIT

# wait_file FILE: until FILE is not empty, for at most 10 s.
wait_file() {
  for _ in $(seq 1 1000); do [ -s "$1" ] && return 0; sleep 0.01; done
  echo "demo: gave up waiting for $1" >&2
  return 1
}
secret() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }
