#!/usr/bin/env bats
# The broker's life cycle under faults, against real brokers and real jails: a stop drains calls
# in flight; a crash is reconciled at the next start (intents closed, temporaries removed); a
# broker start leaves running jails' stubs alone; racing viv runs share one broker; a jail
# outliving its broker is served by the next one, or ended with 69; and a bounded crash loop.
#
# Scripts for the jail are single-quoted on purpose; bats' `run` sets stderr and status.
# shellcheck disable=SC2016,SC2154,SC2030,SC2031

load helpers

setup() {
  viv_setup
  mkdir -p "$HOST/alpha" "$HOST/beta" "$BATS_TEST_TMPDIR/ws"
  chmod 0755 "$BATS_TEST_TMPDIR/ws"
  cat >"$POLICY" <<KDL
agent "alpha" {
    workspace "$BATS_TEST_TMPDIR/ws/alpha"
    grant "fs-file-write" { path "$HOST/alpha"; }
}
agent "beta" {
    workspace "$BATS_TEST_TMPDIR/ws/beta"
    grant "fs-file-write" { path "$HOST/beta"; }
}
KDL
  RUN_PIDS=()
}

teardown() {
  touch "$BATS_TEST_TMPDIR/ws/alpha/stop" "$BATS_TEST_TMPDIR/ws/beta/stop" 2>/dev/null || true
  local p
  for p in "${RUN_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${RUN_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  stop_broker
}

broker_pid() { viv ps 2>/dev/null | sed -n 's/^broker pid=\([0-9]*\) .*/\1/p'; }
serving_other_than() { local p; p=$(broker_pid); [ -n "$p" ] && [ "$p" != "$1" ]; }
acked() { { cat "$BATS_TEST_TMPDIR"/ws/*/acked 2>/dev/null || true; } | wc -l; }
more_acked_than() { [ "$(acked)" -gt "$1" ]; }
no_broker() { ! viv ps >/dev/null 2>&1; }
no_process_of() { ! pgrep -u "$1" >/dev/null; }

# writers: both agents write new files as fast as they can until their workspace has 'stop'.
writers() {
  local a
  for a in alpha beta; do
    viv run --agent "$a" -- bash -c '
      i=0
      while [ ! -e /workspace/stop ]; do
        i=$((i + 1))
        if fs-file-write --path "$1/k$i" --content "k$i" >/dev/null 2>>/workspace/errors; then echo "k$i" >>/workspace/acked; fi
      done' _ "$HOST/$a" 2>>"$BATS_TEST_TMPDIR/run-$a.err" &
    RUN_PIDS+=($!)
  done
}

stop_writers() {
  touch "$BATS_TEST_TMPDIR/ws/alpha/stop" "$BATS_TEST_TMPDIR/ws/beta/stop"
  local p
  for p in "${RUN_PIDS[@]}"; do wait "$p"; done
  RUN_PIDS=()
}

check_log() {
  "$VIV_ROOT/node_modules/.bin/bun" "$VIV_ROOT/test/soak/check-log.ts" "$STATE" \
    "alpha:$HOST/alpha:$BATS_TEST_TMPDIR/ws/alpha/acked" "beta:$HOST/beta:$BATS_TEST_TMPDIR/ws/beta/acked"
}

@test "a SIGTERM under load drains: every call in flight gets its outcome before the log closes" {
  start_broker
  writers
  local i pid before
  for i in 1 2 3; do
    before=$(acked)
    wait_for more_acked_than "$((before + 20))"
    pid=$(broker_pid)
    kill -TERM "$pid"
    # The runs bring a broker back; the jails' calls wait for it.
    wait_for serving_other_than "$pid"
  done
  stop_writers
  run -0 check_log
  [[ "$output" == *" interrupted=0 "* ]]
  [[ "$output" == *" open=0 verify=ok" ]]
  run -0 viv-log
  # Every broker that started stopped on SIGTERM, drained: the three sent here, the one the runs
  # stopped as they ended, and any a run started for its jail when another run ended with the
  # broker it had started (viv(1): a run keeps a broker serving its jail).
  local started stopped
  started=$(sed -n 's/.* kind=broker .*event=start pid=\([0-9]*\) .*/\1/p' <<<"$output" | sort)
  stopped=$(sed -n 's/.* kind=broker .*event=stop pid=\([0-9]*\) by=SIGTERM$/\1/p' <<<"$output" | sort)
  [ "$(grep -c . <<<"$stopped")" -ge 4 ]
  [ "$started" = "$stopped" ]
  [ "$(grep -c 'cut_short' <<<"$output")" -eq 0 ]
  run cat "$BATS_TEST_TMPDIR/broker.err" "$BATS_TEST_TMPDIR"/run-*.err
  [[ "$output" != *failed* ]]
}

@test "a start closes the intents a crash left open as interrupted and removes their temporaries" {
  start_broker
  stop_broker
  mkdir -p "$HOST/alpha/sub"
  echo kept >"$BATS_TEST_TMPDIR/outside"
  printf 'half' >"$HOST/alpha/sub/.viv-0123456789abcdef.tmp"
  printf 'mine' >"$HOST/alpha/sub/.viv-notatemporary.tmp"
  ln -s "$BATS_TEST_TMPDIR/outside" "$HOST/alpha/sub/.viv-fedcba9876543210.tmp"
  local seq
  seq=$("$VIV_ROOT/node_modules/.bin/bun" "$VIV_ROOT/test/append-intent.ts" "$STATE" alpha "$HOST/alpha/sub/f" x)

  start_broker
  run -0 viv-log --agent alpha
  [[ "$output" == *"kind=interrupted cap=fs-file-write conn="*" intent=$seq "*'reason="the broker stopped before this call'"'"'s outcome was recorded; whether its effect happened is unknown" cleanup="removed 1 temporary files"'* ]]
  [ ! -e "$HOST/alpha/sub/.viv-0123456789abcdef.tmp" ]
  [ "$(cat "$HOST/alpha/sub/.viv-notatemporary.tmp")" = mine ]
  [ -L "$HOST/alpha/sub/.viv-fedcba9876543210.tmp" ]
  [ "$(cat "$BATS_TEST_TMPDIR/outside")" = kept ]
  grep -q "closed 1 call the previous run left without an outcome" "$BATS_TEST_TMPDIR/broker.err"

  # The interrupted record closes it for good: the next start finds nothing to close.
  stop_broker
  start_broker
  [ "$(viv-log | grep -c 'kind=interrupted')" -eq 1 ]
  run -0 viv-log verify
}

@test "a broker start leaves the stubs of a running jail alone" {
  start_broker
  viv run --agent alpha -- bash -c '
    while [ ! -e /workspace/stop ]; do
      if ! [ -x /run/vivary/bin/fs-file-write ] || ! [ -x /run/vivary/libexec/viv-stub ] || ! [ -s /run/vivary/capabilities.json ]; then
        echo "missing" >>/workspace/bad
      fi
    done' &
  RUN_PIDS+=($!)
  wait_for test -d "$BATS_TEST_TMPDIR/ws/alpha"
  local i pid
  for i in $(seq 1 8); do
    pid=$(broker_pid)
    kill -TERM "$pid"
    wait_for serving_other_than "$pid"
  done
  touch "$BATS_TEST_TMPDIR/ws/alpha/stop"
  wait "${RUN_PIDS[0]}"
  RUN_PIDS=()
  [ ! -e "$BATS_TEST_TMPDIR/ws/alpha/bad" ]
}

@test "viv runs racing to start a broker share the one that wins" {
  local round i
  for round in 1 2 3; do
    local pids=()
    for i in 1 2 3 4; do
      viv run --agent alpha -- fs-file-write --path "$HOST/alpha/r$round-$i" --content x >/dev/null 2>>"$BATS_TEST_TMPDIR/race.err" &
      pids+=($!)
    done
    local failed=0
    for i in "${pids[@]}"; do wait "$i" || failed=$((failed + 1)); done
    # What the runs said, shown when the test fails.
    cat "$BATS_TEST_TMPDIR/race.err" 2>/dev/null || true
    [ "$failed" -eq 0 ]
    wait_for no_broker
  done
  [ "$(find "$HOST/alpha" -name 'r*' | wc -l)" -eq 12 ]
  [ ! -s "$BATS_TEST_TMPDIR/race.err" ]
}

@test "a jail whose broker cannot come back is ended after the grace period with 69" {
  start_broker
  viv run --agent alpha -- sleep 300 2>"$BATS_TEST_TMPDIR/run.err" &
  local run_pid=$! uid
  uid=$(viv ps | sed -n 's/^agent=alpha uid=\([0-9]*\) .*/\1/p')
  wait_for pgrep -u "$uid" sleep
  # No broker can start on a policy that does not load.
  echo 'agent "broken" { grant "no-such-cap"; }' >>"$POLICY"
  kill -KILL "$BROKER_PID"
  BROKER_PID=""
  local rc=0
  wait "$run_pid" || rc=$?
  [ "$rc" -eq 69 ]
  grep -q "^viv: no broker served '$STATE' for 15 s; ended the jail of agent 'alpha'$" "$BATS_TEST_TMPDIR/run.err"
  wait_for no_process_of "$uid"
}

@test "the crash loop: 20 SIGKILLs under load lose nothing acknowledged and leave every intent closed" {
  run -0 "$VIV_ROOT/test/soak/crash-loop.sh" 20
  [[ "${lines[-1]}" == *" temporaries=0 open=0 verify=ok" ]]
}

@test "a broker restart refills no rate budget" {
  cat >"$POLICY" <<KDL
agent "alpha" {
    grant "fs-file-write" {
        path "$HOST/alpha"
        rate 3 per="hour"
    }
}
KDL
  start_broker
  local i
  for i in 1 2 3; do run -0 viv run --agent alpha -- fs-file-write --path "$HOST/alpha/r$i" --content x; done
  run -75 viv run --agent alpha -- fs-file-write --path "$HOST/alpha/r4" --content x
  stop_broker
  start_broker
  run -75 --separate-stderr viv run --agent alpha -- fs-file-write --path "$HOST/alpha/r5" --content x
  [ "$stderr" = "fs-file-write: rate limit of 3 calls per hour reached" ]
  [ ! -e "$HOST/alpha/r5" ]
  # A crash refills nothing either.
  kill -KILL "$BROKER_PID"
  BROKER_PID=""
  start_broker
  run -75 viv run --agent alpha -- fs-file-write --path "$HOST/alpha/r6" --content x
}
