# Shared set-up for the bats suites: a private state directory, a policy written per test, the
# built binaries on PATH, and a broker started and stopped around the test. No fixed paths or
# ports; every wait polls for its condition with a bound.
# shellcheck shell=bash

bats_require_minimum_version 1.5.0

VIV_ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
export VIV_ROOT
export PATH="$VIV_ROOT/dist/bin:$PATH"

# VIV_BACKEND=bwrap|nspawn runs every `viv run` of a suite on that backend: a `viv` ahead of the
# built one on PATH adds `--backend` to `viv run`, however it is invoked (env, timeout, script).
VIV_BACKEND=${VIV_BACKEND:-bwrap}
export VIV_BACKEND
if [ "$VIV_BACKEND" != bwrap ]; then
  mkdir -p "$BATS_RUN_TMPDIR/viv-$VIV_BACKEND"
  cat >"$BATS_RUN_TMPDIR/viv-$VIV_BACKEND/viv" <<SH
#!/bin/sh
if [ "\$1" = run ]; then shift; exec "$VIV_ROOT/dist/bin/viv" run --backend "$VIV_BACKEND" "\$@"; fi
exec "$VIV_ROOT/dist/bin/viv" "\$@"
SH
  chmod 0755 "$BATS_RUN_TMPDIR/viv-$VIV_BACKEND/viv"
  export PATH="$BATS_RUN_TMPDIR/viv-$VIV_BACKEND:$PATH"
fi

# viv_setup: STATE, POLICY and HOST (a host directory for scopes) under the test's temp dir.
viv_setup() {
  # Jails are started as an unprivileged uid that must be able to reach what they bind.
  local d="$BATS_TEST_TMPDIR"
  while [ "$d" != / ] && [ "$d" != /tmp ]; do chmod o+x "$d"; d=$(dirname "$d"); done
  STATE="$BATS_TEST_TMPDIR/state"
  POLICY="$BATS_TEST_TMPDIR/policy.kdl"
  HOST="$BATS_TEST_TMPDIR/host"
  mkdir -p "$HOST"
  export STATE POLICY HOST
  export VIVARY_STATE="$STATE" VIVARY_POLICY="$POLICY"
}

# policy_one_agent NAME SCOPE_DIR [WORKSPACE]: an agent granted fs-file-write under SCOPE_DIR.
policy_one_agent() {
  local ws=""
  [ -n "${3:-}" ] && ws="workspace \"$3\""
  cat >"$POLICY" <<KDL
agent "$1" {
    $ws
    grant "fs-file-write" {
        path "$2"
    }
}
KDL
}

# wait_for CMD...: retries CMD until it succeeds, for at most WAIT_FOR_S seconds (60) by the
# clock, however long one try of CMD takes.
wait_for() {
  local end=$((SECONDS + ${WAIT_FOR_S:-60}))
  while [ "$SECONDS" -lt "$end" ]; do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.01
  done
  echo "wait_for: gave up after ${WAIT_FOR_S:-60} s on: $*" >&2
  return 1
}

start_broker() {
  viv-broker --policy "$POLICY" --state "$STATE" 2>>"$BATS_TEST_TMPDIR/broker.err" &
  BROKER_PID=$!
  export BROKER_PID
  wait_for viv ps --state "$STATE"
}

stop_broker() {
  if [ -n "${BROKER_PID:-}" ]; then
    kill -TERM "$BROKER_PID" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
    BROKER_PID=""
  fi
}

# agent_uid NAME: the host uid the broker assigns to an agent.
agent_uid() {
  viv ps --state "$STATE" | sed -n "s/^agent=$1 uid=\([0-9]*\) .*/\1/p"
}

# secret_spellings SECRET [USER]: the spellings of SECRET that a provider, a log or a leak could
# take, one per line: as it is, base64 (unpadded), hex, and with USER the base64 of USER:SECRET
# (HTTP Basic).
secret_spellings() {
  printf '%s\n' "$1"
  printf '%s' "$1" | base64 -w0 | sed 's/=*$//'
  echo
  printf '%s' "$1" | od -An -tx1 | tr -d ' \n'
  echo
  if [ -n "${2:-}" ]; then
    printf '%s:%s' "$2" "$1" | base64 -w0 | sed 's/=*$//'
    echo
  fi
}

# refute_secret TEXT SECRET [USER]: TEXT holds no spelling of SECRET (secret_spellings).
refute_secret() {
  local f
  while read -r f; do
    [[ "$1" != *"$f"* ]] || { echo "found a spelling of the secret: $f" >&2; return 1; }
  done < <(secret_spellings "$2" "${3:-}")
}

# man_examples CAP DIR: writes each EXAMPLES command of man/CAP.1 to DIR/N.cmd and what it prints
# to DIR/N.out, unescaped from roff.
man_examples() {
  mkdir -p "$2"
  awk -v dir="$2" '
    /^\.SH / { in_ex = ($2 == "EXAMPLES") }
    in_ex && /^\.EX$/ { n++; first = 1; next }
    in_ex && /^\.EE$/ { first = 0; next }
    in_ex && n && first == 1 { print > (dir "/" n ".cmd"); first = 2; next }
    in_ex && n && first == 2 { print > (dir "/" n ".out") }
  ' "$VIV_ROOT/man/$1.1"
  local f
  for f in "$2"/*; do
    sed -i -e 's/^\$ //' -e 's/\\-/-/g' -e 's/\\e/\\/g' -e 's/^\\&//' "$f"
  done
}

# check_man_examples [--prefix] CAP COUNT [SED-EXPR...]: runs each EXAMPLES command of man/CAP.1
# in $AGENT's jail, its stderr with its stdout, and checks that it prints what the page shows,
# once the sed expressions (the page's hosts and paths made this test's) are applied to both.
# With --prefix the output need only begin with it (a page that shows the start of a long
# output). The page must have exactly COUNT examples.
# shellcheck disable=SC2154 # output is set by bats' run
check_man_examples() {
  local prefix=0
  if [ "$1" = --prefix ]; then
    prefix=1
    shift
  fi
  local cap=$1 count=$2 dir="$BATS_TEST_TMPDIR/examples" n=0 f cmd expected e
  shift 2
  local edits=(-e '')
  for e in "$@"; do edits+=(-e "$e"); done
  man_examples "$cap" "$dir"
  for f in "$dir"/*.cmd; do
    n=$((n + 1))
    cmd=$(sed "${edits[@]}" "$f")
    expected=$(sed "${edits[@]}" "${f%.cmd}.out")
    run viv run --agent "$AGENT" -- sh -c "$cmd 2>&1"
    [ -n "$expected" ]
    if [ "$prefix" = 1 ]; then
      [ "${output:0:${#expected}}" = "$expected" ]
    else
      [ "$output" = "$expected" ]
    fi
  done
  [ "$n" -eq "$count" ]
}

# SWAP_LOOP: a python3 program that exchanges two names in a directory atomically
# (renameat2 RENAME_EXCHANGE), as fast as it can, until a stop file exists (60 s at most), then
# prints how many exchanges it made. The race tests run it in a jail, as the agent:
#   python3 -c "$SWAP_LOOP" DIR NAME NAME STOP
# shellcheck disable=SC2034
SWAP_LOOP='
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
os.chdir(sys.argv[1])
a, b, stop = sys.argv[2].encode(), sys.argv[3].encode(), sys.argv[4]
deadline, n = time.monotonic() + 60, 0
while not os.path.exists(stop) and time.monotonic() < deadline:
    if libc.renameat2(-100, a, -100, b, 2) != 0:
        raise OSError(ctypes.get_errno(), "renameat2")
    n += 1
print(n)
'
