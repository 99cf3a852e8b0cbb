#!/bin/bash
# The timed loop, run by bash inside a jail (copied into the agent's workspace) or on the host.
# Each call is timed with $EPOCHREALTIME, so timing costs no fork; durations (µs, one a line) go
# to OUT and the window and error count to OUT.meta once the loop is over, so the loop itself
# does no I/O of its own. Warm-up calls keep their stderr (in OUT.stderr) for the first error;
# timed calls send it to /dev/null.
#
# usage: loop.sh OUT WARMUP N WANT_EXIT SYNC_DIR|- -- CMD [ARG...]
# With SYNC_DIR, the loop meets the host at three FIFOs there: it writes 'ready' after the
# warm-up, waits to read 'go', and writes 'done' after the last timed call. That lets the host
# sample the broker's CPU time around exactly the timed calls, and start concurrent agents
# together.
set -u
out=$1 warm=$2 n=$3 want=$4 sync=$5
[ "${6:-}" = -- ] || { echo "usage: loop.sh OUT WARMUP N WANT_EXIT SYNC_DIR|- -- CMD [ARG...]" >&2; exit 64; }
shift 6
errf=$out.stderr
bad=0 first_error=""

check() {
  if ((rc != want)); then
    ((bad++))
    if [ -z "$first_error" ]; then
      first_error="exit $rc"
      [ -s "$errf" ] && read -r line <"$errf" && first_error+=": $line"
    fi
  fi
}

for ((i = 0; i < warm; i++)); do
  "$@" >/dev/null 2>"$errf"
  rc=$?
  check
done
: >"$errf"
if [ "$sync" != - ]; then
  echo ready >"$sync/ready"
  read -r _ <"$sync/go"
fi

declare -a d
start=$EPOCHREALTIME
for ((i = 0; i < n; i++)); do
  s=$EPOCHREALTIME
  "$@" >/dev/null 2>/dev/null
  rc=$?
  e=$EPOCHREALTIME
  d[i]=$((${e//[.,]/} - ${s//[.,]/}))
  check
done
end=$EPOCHREALTIME

if [ "$sync" != - ]; then echo finished >"$sync/done"; fi
printf '%s\n' "${d[@]}" >"$out"
printf 'start=%s\nend=%s\nbad=%s\nfirst_error=%s\n' "$start" "$end" "$bad" "$first_error" >"$out.meta"
