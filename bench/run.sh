#!/bin/bash
# vivary benchmark: prints latency percentiles and throughput of governed fs-file-write calls
# made from inside real jails against one real broker, next to the same durable write done on
# the host without vivary, and the broker's CPU time per call. It asserts nothing.
#
# usage: sudo ./bench/run.sh     (after `node_modules/.bin/bun run build.ts`)
# BENCH_N (calls per latency scenario, default 2000), BENCH_M (calls per agent in the
# throughput scenarios, default BENCH_N/4), BENCH_WARMUP (default 100), BENCH_TMPDIR (where the
# state directory goes; its filesystem is what is measured), BENCH_KEEP=1 keeps that directory,
# BENCH_P (calls per persistent connection, default BENCH_N/2), BENCH_ONLY (scenarios, default
# a,b,c,d,p), BENCH_BROKER (the broker's command instead of dist/bin/viv-broker).
# See bench/README.md for what each figure measures.
set -euo pipefail
# Root is needed (apt-get, jails under per-agent uids): as another user, run again under sudo.
if [ "$(id -u)" -ne 0 ]; then exec sudo -E -- "$0" "$@"; fi
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
BUN=$ROOT/node_modules/.bin/bun
VIV=$ROOT/dist/bin/viv
BROKER=$ROOT/dist/bin/viv-broker
STUB=$ROOT/dist/libexec/viv-stub

N=${BENCH_N:-2000}
WARM=${BENCH_WARMUP:-100}
M=${BENCH_M:-auto}
P=${BENCH_P:-auto}
PCONNS=2
AGENTS=4
CONTENT="vivary bench: one small report, written durably"
WAIT_S=600
ONLY=${BENCH_ONLY:-a,b,c,d,p}

say() { printf 'bench: %s\n' "$*" >&2; }
die() {
  say "$*"
  exit 1
}

[ "$(id -u)" = 0 ] || die "must run as root (jails run as each agent's own uid): sudo $0"
for f in "$BUN" "$VIV" "$BROKER" "$STUB"; do
  [ -x "$f" ] || die "missing '$f'; build first: node_modules/.bin/bun run build.ts"
done
command -v bwrap >/dev/null || die "bwrap is not installed"
[[ "$N" =~ ^[1-9][0-9]*$ ]] || die "BENCH_N must be a positive whole number, not '$N'"
[ "$M" = auto ] && M=$((N / 4 > 0 ? N / 4 : 1))
[[ "$M" =~ ^[1-9][0-9]*$ ]] || die "BENCH_M must be a positive whole number, not '$M'"
[ "$P" = auto ] && P=$((N / 2 > 0 ? N / 2 : 1))
[[ "$P" =~ ^[1-9][0-9]*$ ]] || die "BENCH_P must be a positive whole number, not '$P'"
command -v node >/dev/null || die "node is not installed (the persistent-connection client runs on it)"
[[ "$WARM" =~ ^[0-9]+$ ]] || die "BENCH_WARMUP must be a whole number, not '$WARM'"
[[ "$ONLY" =~ ^[abcdp](,[abcdp])*$ ]] || die "BENCH_ONLY must list scenarios among a,b,c,d,p, not '$ONLY'"

TMP=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/vivary-bench.XXXXXX")
STATE=$TMP/state
POLICY=$TMP/policy.kdl
BROKER_PID=""
RUN_PIDS=()
# Every figure as one JSON line, for the summary table at the end (bench/summary.ts).
export BENCH_FIGURES=$TMP/figures.ndjson
FIGURES=$BENCH_FIGURES

cleanup() {
  local p
  for p in "${RUN_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${RUN_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "$BROKER_PID" ]; then
    kill -TERM "$BROKER_PID" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
  fi
  if [ -s "$TMP/broker.err" ]; then
    say "broker stderr:"
    sed 's/^/  /' "$TMP/broker.err" >&2
  fi
  if [ "${BENCH_KEEP:-0}" = 1 ]; then say "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Jails run as unprivileged uids that must be able to reach the state dir and workspaces.
chmod o+x "$TMP"
for ((d = 1; d <= AGENTS; d++)); do mkdir -p "$TMP/host/bench$d"; done
mkdir -p "$TMP/host/direct" "$TMP/host/direct-spawn" "$TMP/bin"
d=$(dirname "$TMP")
while [ "$d" != / ]; do
  [ $((8#$(stat -c %a "$d") & 1)) = 1 ] || die "'$d' is not searchable by others (chmod o+x '$d'); jails could not reach the state directory"
  d=$(dirname "$d")
done

{
  echo "// vivary benchmark policy: $AGENTS agents, each may write and read below its own host directory."
  for ((d = 1; d <= AGENTS; d++)); do
    cat <<KDL
agent "bench$d" {
    workspace "$TMP/ws/bench$d"
    grant "fs-file-write" {
        path "$TMP/host/bench$d"
    }
    grant "fs-file-read" {
        path "$TMP/host/bench$d"
    }
}
KDL
  done
} >"$POLICY"
mkdir -p "$TMP/ws"

# The host baseline run as a process per call: a static C program, like the stub.
SPAWN_WRITER=""
if command -v cc >/dev/null && cc -O2 -static -o "$TMP/bin/durable-write" "$BENCH/durable-write.c" 2>"$TMP/cc.err"; then
  SPAWN_WRITER=$TMP/bin/durable-write
else
  say "cannot build bench/durable-write.c (no static cc?); skipping that baseline"
fi
ln -s "$STUB" "$TMP/bin/fs-file-write"

# --- broker ---------------------------------------------------------------------------------
# BENCH_BROKER replaces the broker's command (to profile it, say); it is split on spaces.
read -ra broker_cmd <<<"${BENCH_BROKER:-$BROKER}"
"${broker_cmd[@]}" --policy "$POLICY" --state "$STATE" 2>"$TMP/broker.err" &
BROKER_PID=$!
for ((i = 0; i < 200; i++)); do
  "$VIV" ps --state "$STATE" >/dev/null 2>&1 && break
  kill -0 "$BROKER_PID" 2>/dev/null || die "the broker exited at start"
  sleep 0.05
done
"$VIV" ps --state "$STATE" >"$TMP/ps.txt" 2>/dev/null || die "the broker did not start within 10 s"

for ((d = 1; d <= AGENTS; d++)); do
  uid=$(sed -n "s/^agent=bench$d uid=\([0-9]*\) .*/\1/p" "$TMP/ps.txt")
  [ -n "$uid" ] || die "viv ps does not list agent bench$d"
  ws=$TMP/ws/bench$d
  mkdir -m 700 "$ws"
  install -m 644 "$BENCH/loop.sh" "$ws/loop.sh"
  install -m 644 "$BENCH/persist.mjs" "$ROOT/test/wire.mjs" "$ws/"
  printf '%s\n' "$CONTENT" >"$TMP/host/bench$d/small.txt"
  mkfifo -m 600 "$ws/ready" "$ws/go" "$ws/done"
  chown -R "$uid:$uid" "$ws"
done

CLK_TCK=$(getconf CLK_TCK)
# cpu_sample: the broker's utime and stime so far (clock ticks, all its threads), then the whole
# machine's busy and total ticks from /proc/stat (busy = all but idle and iowait).
cpu_sample() {
  local stat f c
  read -r stat <"/proc/$BROKER_PID/stat"
  read -ra f <<<"${stat##*) }"
  read -ra c </proc/stat
  local total=$((c[1] + c[2] + c[3] + c[4] + c[5] + c[6] + c[7] + c[8]))
  echo "${f[11]} ${f[12]} $((total - c[4] - c[5])) $total"
}

CPU_LINES=()
# cpu_line WHAT CALLS BEFORE AFTER: the broker's CPU µs per call between two cpu_samples, and how
# busy the machine was meanwhile.
cpu_line() {
  local what=$1 calls=$2 u0 s0 b0 t0 u1 s1 b1 t1
  read -r u0 s0 b0 t0 <<<"$3"
  read -r u1 s1 b1 t1 <<<"$4"
  local user=$(((u1 - u0) * 1000000 / CLK_TCK / calls)) sys=$(((s1 - s0) * 1000000 / CLK_TCK / calls))
  local busy=$(((b1 - b0) * 100 / (t1 - t0 > 0 ? t1 - t0 : 1)))
  CPU_LINES+=("$(printf 'broker CPU per call: %dµs  (user %dµs + sys %dµs; %s, n=%d; machine %d%% busy)' \
    $((user + sys)) "$user" "$sys" "$what" "$calls" "$busy")")
  printf '{"tag":"cpu %s","user_us":%d,"sys_us":%d,"busy":%d}\n' "${what%%,*}" "$user" "$sys" "$busy" >>"$FIGURES"
}

# wait_line FD PID: reads one line from a FIFO held open on FD while the jail's viv run lives.
wait_line() {
  local fd=$1 pid=$2 _line t0=$SECONDS
  until read -r -t 1 -u "$fd" _line; do
    kill -0 "$pid" 2>/dev/null || die "viv run $pid ended early; see its log under $TMP (BENCH_KEEP=1)"
    ((SECONDS - t0 < WAIT_S)) || die "gave up waiting on viv run $pid after $WAIT_S s"
  done
}

# jail_timed TAG AGENTS CALLS LABEL CPU_WHAT CMD_FN: runs a timed loop in AGENTS jails at once
# (bench1…), each the command CMD_FN D puts in JCMD for agent D; the loops meet the host at the
# FIFOs of their workspaces, so their timed calls start together. CALLS is every agent's timed
# calls together (for the broker's CPU per call). Prints the figure line.
jail_timed() {
  local tag=$1 k=$2 calls=$3 label=$4 what=$5 cmdfn=$6 d
  local -a ready=() go=() fin=() files=()
  RUN_PIDS=()
  for ((d = 1; d <= k; d++)); do
    local ws=$TMP/ws/bench$d fd
    exec {fd}<>"$ws/ready"
    ready+=("$fd")
    exec {fd}<>"$ws/go"
    go+=("$fd")
    exec {fd}<>"$ws/done"
    fin+=("$fd")
    "$cmdfn" "$d"
    "$VIV" run --agent "bench$d" --policy "$POLICY" --state "$STATE" -- "${JCMD[@]}" \
      >"$TMP/$tag.bench$d.log" 2>&1 &
    RUN_PIDS+=("$!")
    files+=("$ws/$tag.times")
  done
  for ((d = 0; d < k; d++)); do wait_line "${ready[d]}" "${RUN_PIDS[d]}"; done
  local cpu0 cpu1
  cpu0=$(cpu_sample)
  for ((d = 0; d < k; d++)); do echo go >&"${go[d]}"; done
  for ((d = 0; d < k; d++)); do wait_line "${fin[d]}" "${RUN_PIDS[d]}"; done
  cpu1=$(cpu_sample)
  for ((d = 0; d < k; d++)); do
    wait "${RUN_PIDS[d]}" || die "viv run of bench$((d + 1)) failed; see $TMP/$tag.bench$((d + 1)).log (BENCH_KEEP=1)"
    for fd in "${ready[d]}" "${go[d]}" "${fin[d]}"; do exec {fd}>&-; done
  done
  RUN_PIDS=()
  "$BUN" "$BENCH/stats.ts" "$label" "${files[@]}"
  [ -n "$what" ] && cpu_line "$what" "$calls" "$cpu0" "$cpu1"
  return 0
}

# jail_scenario TAG MODE AGENTS CALLS LABEL [CPU_WHAT]: loop.sh in AGENTS jails at once, CALLS
# timed fs-file-write calls each, one stub process per call. MODE is 'governed' (a real call
# through the broker) or 'bare' (the stub with no broker to reach).
jail_scenario() {
  LOOP_TAG=$1 LOOP_N=$4 LOOP_WANT=0 LOOP_PRE=()
  if [ "$2" = bare ]; then
    LOOP_WANT=69
    LOOP_PRE=(env VIVARY_SOCKET=/dev/null/no-broker.sock)
  fi
  jail_timed "$1" "$3" $(($3 * $4)) "$5" "${6:-}" loop_cmd
}
loop_cmd() {
  JCMD=("${LOOP_PRE[@]}" bash /workspace/loop.sh "/workspace/$LOOP_TAG.times" "$WARM" "$LOOP_N" "$LOOP_WANT" /workspace --
    fs-file-write --path "$TMP/host/bench$1/out.txt" --content "$CONTENT")
}

# persist_scenario TAG WANT LABEL CPU_WHAT -- CAP ARG...: persist.mjs in each agent's jail, with
# PCONNS connections per agent, P timed calls on each, back to back. '@D@' in an ARG is the
# agent's number.
persist_scenario() {
  P_TAG=$1 P_WANT=$2 P_CALL=("${@:6}")
  jail_timed "$1" "$AGENTS" $((AGENTS * PCONNS * P)) "$3" "$4" persist_cmd
}
persist_cmd() {
  JCMD=(node /workspace/persist.mjs "/workspace/$P_TAG.times" "$WARM" "$P" "$PCONNS" "$P_WANT" /workspace -- "${P_CALL[@]//@D@/$1}")
}

# --- header ---------------------------------------------------------------------------------
fs=$(findmnt -n -o FSTYPE,SOURCE --target "$STATE" | tr -s ' ')
echo "vivary bench  $(date -u +%Y-%m-%dT%H:%M:%SZ)  tree $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?')  dist built $(date -u -r "$ROOT/dist/bin/vivary" +%Y-%m-%dT%H:%M:%SZ)"
echo "machine: nproc=$(nproc)  kernel=$(uname -r)  cpu=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)"
echo "state dir: $STATE  fs=$fs"
echo "load average at start: $(cut -d ' ' -f 1-3 /proc/loadavg) (other work on the machine skews every figure)"
echo "calls: N=$N per latency scenario, M=$M per agent for throughput, warm-up $WARM; content ${#CONTENT} bytes"
case $fs in tmpfs* | ramfs*) say "warning: the state dir is on $fs, where fsync costs nothing; set BENCH_TMPDIR to a disk" ;; esac
echo

# --- scenarios ------------------------------------------------------------------------------
runs() { [[ ",$ONLY," == *",$1,"* ]]; }
if runs a; then
say "a: governed fs-file-write in a jail"
jail_scenario a governed 1 "$N" "a  governed fs-file-write (jail, durable)" "a, 1 agent"

fi

if runs b; then
say "b: the same durable write on the host"
"$BUN" "$BENCH/host-write.ts" "$TMP/host/direct" "$TMP/b1.times" "$WARM" "$N" "$CONTENT"
"$BUN" "$BENCH/stats.ts" "b1 host write, in-process loop (Bun, durable)" "$TMP/b1.times"
"$BUN" "$BENCH/durable-floor.ts" "$TMP/host/floor" "$TMP/b0.times" "$WARM" "$N" "$CONTENT"
"$BUN" "$BENCH/stats.ts" "b0 the durable work of a's call alone (one process)" "$TMP/b0.times"
if [ -n "$SPAWN_WRITER" ]; then
  bash "$BENCH/loop.sh" "$TMP/b2.times" "$WARM" "$N" 0 - -- "$SPAWN_WRITER" "$TMP/host/direct-spawn" out.txt "$CONTENT"
  "$BUN" "$BENCH/stats.ts" "b2 host write, bash spawns a process/call (durable)" "$TMP/b2.times"
fi

fi

if runs c; then
say "c: bare spawn of the stub"
jail_scenario c bare 1 "$N" "c  bare stub spawn, no broker (jail bash)"
VIVARY_SOCKET=/dev/null/no-broker.sock bash "$BENCH/loop.sh" "$TMP/c2.times" "$WARM" "$N" 69 - -- \
  "$TMP/bin/fs-file-write" --path "$TMP/host/direct/out.txt" --content "$CONTENT"
"$BUN" "$BENCH/stats.ts" "c2 bare stub spawn, no broker (host bash)" "$TMP/c2.times"

fi

if runs d; then
say "d: throughput, 1 and $AGENTS concurrent agents"
jail_scenario d1 governed 1 "$M" "d1 throughput, 1 agent (jail, durable)" "d1, 1 agent"
jail_scenario d$AGENTS governed "$AGENTS" "$M" "d$AGENTS throughput, $AGENTS agents at once (jail, durable)" "d$AGENTS, $AGENTS agents"
jail_scenario c$AGENTS bare "$AGENTS" "$M" "c$AGENTS bare stub spawns, $AGENTS agents at once (jail)"

fi

if runs p; then
say "p: $((AGENTS * PCONNS)) persistent connections across $AGENTS agents"
persist_scenario p1 0 "p1 fs-file-read, $((AGENTS * PCONNS)) persistent conns (jail, durable)" "p1, $((AGENTS * PCONNS)) conns" -- \
  fs-file-read --path "$TMP/host/bench@D@/small.txt"
persist_scenario p2 77 "p2 denied call, $((AGENTS * PCONNS)) persistent conns (jail, durable)" "p2, $((AGENTS * PCONNS)) conns" -- \
  fs-file-read --path /etc/passwd
fi

echo
printf '%s\n' "${CPU_LINES[@]}"
echo
"$BUN" "$BENCH/summary.ts" "$FIGURES"
