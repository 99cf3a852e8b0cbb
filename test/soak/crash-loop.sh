#!/usr/bin/env bash
# The crash loop: two agents write as fast as they can through their jails while the broker
# serving them is killed with SIGKILL at a random moment of each cycle, after the cycle's first
# acknowledged write. The runs' own supervision brings a broker back each time (viv run starts
# one when none serves, and the jails' calls wait for it). At the end the agents stop, the last
# broker stops cleanly, and test/soak/check-log.ts checks the log and the files from the outside.
#
#   test/soak/crash-loop.sh [CYCLES]      (default 20; as root, after a build)
#
# Prints one line per 50 cycles and a summary; exits non-zero on any violation.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CYCLES=${1:-20}
export PATH="$ROOT/dist/bin:$PATH"
BUN="$ROOT/node_modules/.bin/bun"

TMP=$(mktemp -d /tmp/viv-crash.XXXXXX)
chmod 0711 "$TMP"
STATE=$TMP/state POLICY=$TMP/policy.kdl HOST=$TMP/host
RUNS=()
cleanup() {
  for p in "${RUNS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
mkdir -p "$HOST/alpha" "$HOST/beta" "$TMP/ws"
chmod 0755 "$HOST" "$TMP/ws"
cat >"$POLICY" <<KDL
agent "alpha" {
    workspace "$TMP/ws/alpha"
    grant "fs-file-write" { path "$HOST/alpha"; }
}
agent "beta" {
    workspace "$TMP/ws/beta"
    grant "fs-file-write" { path "$HOST/beta"; }
}
KDL

# The agent's loop: a new name per call; a name is noted only when its call was acknowledged.
# shellcheck disable=SC2016
AGENT_LOOP='i=0
while [ ! -e /workspace/stop ]; do
  i=$((i + 1))
  if fs-file-write --path "$1/k$i" --content "k$i" >/dev/null 2>>/workspace/errors; then echo "k$i" >>/workspace/acked; fi
done'

acked() { { cat "$TMP/ws/alpha/acked" "$TMP/ws/beta/acked" 2>/dev/null || true; } | wc -l; }
broker_pid() { viv ps --state "$STATE" 2>/dev/null | sed -n 's/^broker pid=\([0-9]*\) .*/\1/p'; }

# wait_until SECONDS CMD...: polls CMD every 10 ms.
wait_until() {
  local limit=$1 i
  shift
  for ((i = 0; i < limit * 100; i++)); do
    "$@" && return 0
    sleep 0.01
  done
  echo "crash-loop: gave up waiting for: $*" >&2
  return 1
}
more_acked_than() { [ "$(acked)" -gt "$1" ]; }
serving_other_than() { local p; p=$(broker_pid); [ -n "$p" ] && [ "$p" != "$1" ]; }

for a in alpha beta; do
  viv run --agent "$a" --policy "$POLICY" --state "$STATE" -- bash -c "$AGENT_LOOP" _ "$HOST/$a" 2>>"$TMP/run-$a.err" &
  RUNS+=($!)
done

start=$SECONDS
for ((c = 1; c <= CYCLES; c++)); do
  before=$(acked)
  wait_until 60 more_acked_than "$before"
  sleep "0.$(printf '%03d' $((RANDOM % 200)))"
  pid=$(broker_pid)
  [ -n "$pid" ] || { wait_until 30 serving_other_than 0; pid=$(broker_pid); }
  kill -KILL "$pid"
  wait_until 60 serving_other_than "$pid"
  if ((c % 50 == 0)); then echo "crash-loop: cycle $c of $CYCLES, $(acked) acknowledged writes, $((SECONDS - start)) s"; fi
done

touch "$TMP/ws/alpha/stop" "$TMP/ws/beta/stop"
status=0
for p in "${RUNS[@]}"; do wait "$p" || status=$?; done
RUNS=()
if [ "$status" -ne 0 ]; then
  echo "crash-loop: a run exited $status" >&2
  cat "$TMP"/run-*.err >&2
  exit 1
fi
# The last broker stopped with its runs (drained); a start reconciles nothing further then.
echo "crash-loop: $CYCLES cycles in $((SECONDS - start)) s"
"$BUN" "$ROOT/test/soak/check-log.ts" "$STATE" "alpha:$HOST/alpha:$TMP/ws/alpha/acked" "beta:$HOST/beta:$TMP/ws/beta/acked"
