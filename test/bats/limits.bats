#!/usr/bin/env bats
# Jail limits against a real broker and real jails: a fork bomb and a memory hog are contained by
# the jail's control group and recorded as kind=limit while another agent keeps being served; the
# kill switch ends the whole group and leaves no process and no group behind; /tmp and /dev/shm
# are bounded tmpfs; a flood of protocol violations costs a bounded number of records. Each
# containment test has its negative control: the same load in a jail without that limit gets
# further and records nothing.
#
# Scripts for the jail are single-quoted on purpose: they expand in the jail.
# shellcheck disable=SC2016,SC2154,SC2030,SC2031

load helpers

setup() {
  viv_setup
  # Names of this run only: the suite runs on each backend, and its runs may overlap.
  local sfx
  sfx=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
  A_HOG="lim-hog-$sfx" A_FREE="lim-free-$sfx" A_RL="lim-rl-$sfx" A_PEER="lim-peer-$sfx"
  WS="$BATS_TEST_TMPDIR/ws"
  mkdir -p "$HOST/peer" "$WS"
  chmod 0755 "$WS"
  cat >"$POLICY" <<KDL
agent "$A_HOG" {
    workspace "$WS/$A_HOG"
    limits memory="64M" pids=48 cpu=0.2 tmp="8M"
}
agent "$A_FREE" {
    workspace "$WS/$A_FREE"
}
agent "$A_RL" {
    limits memory="64M" pids=48
}
agent "$A_PEER" {
    grant "fs-file-write" { path "$HOST/peer"; }
}
KDL
  RUN_PIDS=()
  start_broker
  HOG_UID=$(agent_uid "$A_HOG")
  FREE_UID=$(agent_uid "$A_FREE")
  [ -n "$HOG_UID" ]
  [ -n "$FREE_UID" ]
}

teardown() {
  touch "$WS/$A_HOG/stop" "$WS/$A_FREE/stop" 2>/dev/null || true
  local p
  for p in "${RUN_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${RUN_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  for p in $(live_pids "${HOG_UID:-none}") $(live_pids "${FREE_UID:-none}"); do kill -KILL "$p" 2>/dev/null || true; done
  stop_broker
}

# live_pids UID: host processes, zombies excepted, whose real or effective uid is UID.
live_pids() {
  ps -e -o pid=,ruid=,euid=,stat= | awk -v u="$1" '($2 == u || $3 == u) && $4 !~ /^Z/ { print $1 }'
}
no_live_pids() { [ -z "$(live_pids "$1")" ]; }

# groups_of AGENT: the control groups of the agent's jails, in every hierarchy.
groups_of() {
  find /sys/fs/cgroup -maxdepth 3 -type d -path "*/vivary/$1-*" 2>/dev/null
}
no_groups_of() { [ -z "$(groups_of "$1")" ]; }

# group_file AGENT FILE: FILE of the agent's running jail group, in whichever hierarchy has it.
group_file() {
  local f
  for f in $(groups_of "$1"); do
    if [ -e "$f/$2" ]; then
      echo "$f/$2"
      return 0
    fi
  done
  return 1
}

# counter AGENT FILE KEY: the KEY line of a flat-keyed group file (pids.events max, ...).
counter() {
  local f
  f=$(group_file "$1" "$2") || return 1
  awk -v k="$3" '$1 == k { print $2 }' "$f"
}
counter_above_zero() { [ "$(counter "$@")" -gt 0 ]; }



# peer_served N: N jailed calls of the other agent succeed, each within the broker's time.
peer_served() {
  local n
  for n in $(seq 1 "$1"); do
    rm -f "$HOST/peer/f$n"
    viv run --agent "$A_PEER" -- fs-file-write --path "$HOST/peer/f$n" --content "ok$n" >/dev/null
    [ "$(cat "$HOST/peer/f$n")" = "ok$n" ]
  done
}

limit_records() {
  viv-log --agent "$1" | grep " kind=limit " || true
}

@test "a fork bomb is held at its pids limit and ended by the kill switch while another agent is served" {
  # Every bomb forks copies of itself forever; the jail's first process execs sleep, so it needs no
  # fork of its own and the jail runs until the kill switch ends it.
  viv run --agent "$A_HOG" -- sh -c ': >/workspace/started; bomb() { while :; do bomb & done; }; bomb & exec sleep 1000' 2>>"$BATS_TEST_TMPDIR/run-$A_HOG.err" &
  local run_pid=$!
  RUN_PIDS+=("$run_pid")
  wait_for test -e "$WS/$A_HOG/started"
  if [ -z "$(groups_of "$A_HOG")" ]; then skip "no cgroup driver on this host"; fi
  wait_for counter_above_zero "$A_HOG" pids.events max
  # Held: never more tasks than the limit, whatever the bomb does.
  local _
  for _ in 1 2 3 4 5; do
    [ "$(cat "$(group_file "$A_HOG" pids.current)")" -le 48 ]
  done
  peer_served 5
  # viv ps names the driver of the running jail.
  local _ ps=""
  for _ in $(seq 1 50); do
    ps=$(viv ps)
    [[ "$ps" == *"agent=$A_HOG "*" limits=cgroup"* ]] && break
    sleep 0.1
  done
  echo "$ps"
  [[ "$ps" == *"agent=$A_HOG "*" limits=cgroup"* ]]
  run -0 viv kill "$A_HOG" --reason 'fork bomb'
  local rc=0
  wait "$run_pid" || rc=$?
  [ "$rc" -eq 77 ]
  wait_for no_live_pids "$HOG_UID"
  no_groups_of "$A_HOG"
  run -0 limit_records "$A_HOG"
  [[ "$output" == *" kind=limit cap=- limit=pids events="*" driver=cgroup"*" max=48"* ]]
  [[ "$(cat "$BATS_TEST_TMPDIR/run-$A_HOG.err")" == *"viv: the jail of agent '$A_HOG' ran into its limits (cgroup"*"): "*"pids: "*" forks refused"* ]]
  peer_served 1
}

@test "without a pids limit the same forks all succeed and nothing is recorded (negative control)" {
  # A bounded burst: 120 processes at once, well above the hog's 48, each counted when it runs.
  run -0 viv run --agent "$A_FREE" -- sh -c 'i=0; while [ $i -lt 120 ]; do i=$((i + 1)); (echo x >>/workspace/forked; sleep 2) & done; wait'
  [ "$(wc -l <"$WS/$A_FREE/forked")" -eq 120 ]
  # dash gives up (exit 2) at the first fork the group refuses. Its children sleep long, so none
  # frees its slot for a later fork however slowly a loaded machine runs the loop; the jail's end
  # ends them.
  run -2 viv run --agent "$A_HOG" -- sh -c 'i=0; while [ $i -lt 120 ]; do i=$((i + 1)); (echo x >>/workspace/forked; sleep 600) & done; wait'
  [ "$(wc -l <"$WS/$A_HOG/forked")" -lt 48 ]
  [ -z "$(limit_records "$A_FREE")" ]
  run -0 limit_records "$A_HOG"
  [[ "$output" == *" limit=pids events="* ]]
  no_groups_of "$A_FREE"
  no_groups_of "$A_HOG"
}

# The hog: allocates 8 MiB at a time up to 256 MiB, touching every page, and notes each step.
HOG='import sys
chunks = []
for i in range(32):
    chunks.append(bytearray(8 << 20))
    with open("/workspace/progress", "a") as f:
        f.write("%d\n" % ((i + 1) * 8))'

oom_kills_at_least() { [ "$(grep -c '^exit 137$' "$WS/$A_HOG/exits")" -ge "$1" ]; }

@test "a memory hog is killed at its memory limit, again and again, while another agent is served" {
  viv run --agent "$A_HOG" -- sh -c 'while [ ! -e /workspace/stop ]; do python3 -c "$1"; echo "exit $?" >>/workspace/exits; done' _ "$HOG" 2>>"$BATS_TEST_TMPDIR/run-$A_HOG.err" &
  local run_pid=$!
  RUN_PIDS+=("$run_pid")
  wait_for test -e "$WS/$A_HOG/exits"
  if [ -z "$(groups_of "$A_HOG")" ]; then skip "no cgroup driver on this host"; fi
  peer_served 3
  # Killed more than once: the group holds after each OOM kill, and the jail goes on.
  wait_for oom_kills_at_least 2
  touch "$WS/$A_HOG/stop"
  wait "$run_pid"
  RUN_PIDS=()
  # It never got to 64 MiB.
  [ "$(sort -n "$WS/$A_HOG/progress" | tail -n 1)" -lt 64 ]
  run -1 grep -c '^exit 0$' "$WS/$A_HOG/exits"
  run -0 limit_records "$A_HOG"
  [[ "$output" == *" kind=limit cap=- limit=memory events="*" driver=cgroup"*" max=67108864"* ]]
  [[ "$(cat "$BATS_TEST_TMPDIR/run-$A_HOG.err")" == *"memory: "*" killed by the OOM killer"* ]]
  wait_for no_live_pids "$HOG_UID"
  no_groups_of "$A_HOG"
}

@test "without a memory limit the same hog gets all of its 256 MiB and nothing is recorded (negative control)" {
  run -0 viv run --agent "$A_FREE" -- python3 -c "$HOG"
  [ "$(tail -n 1 "$WS/$A_FREE/progress")" -eq 256 ]
  [ -z "$(limit_records "$A_FREE")" ]
  no_groups_of "$A_FREE"
  no_groups_of "$A_RL"
}

@test "a busy loop is throttled at its cpu limit and recorded; without a cpu limit it is not" {
  run viv run --agent "$A_HOG" -- timeout 1 sh -c 'while :; do :; done'
  if [ "$status" -eq 69 ]; then skip "no cgroup driver on this host"; fi
  [ "$status" -eq 124 ]
  run viv run --agent "$A_FREE" -- timeout 1 sh -c 'while :; do :; done'
  [ "$status" -eq 124 ]
  run -0 limit_records "$A_HOG"
  [[ "$output" == *" kind=limit cap=- limit=cpu events="*" driver=cgroup"*" max=0.2"* ]]
  [ -z "$(limit_records "$A_FREE")" ]
}

@test "/tmp and /dev/shm are bounded tmpfs and /dev is read-only" {
  run -0 --separate-stderr viv run --agent "$A_HOG" -- sh -c 'dd if=/dev/zero of=/tmp/fill bs=1M count=32 2>&1 | tail -n 1; df -k /tmp /dev/shm | tail -n 2; if touch /dev/x 2>/dev/null; then echo dev-writable; fi'
  [[ "$output" == *"8388608 bytes (8.4 MB, 8.0 MiB) copied"* ]]
  [[ "$output" =~ tmpfs\ +8192\ [^$'\n']*/tmp ]]
  [[ "$output" =~ tmpfs\ +8192\ [^$'\n']*/dev/shm ]]
  [[ "$output" != *dev-writable* ]]
  # The default: 64 MiB.
  run -0 viv run --agent "$A_FREE" -- df -k /tmp
  [[ "$output" =~ tmpfs\ +65536\ [^$'\n']*/tmp ]]
}

@test "VIVARY_LIMITS=rlimit falls back to prlimit and refuses a cpu limit it cannot hold" {
  run -69 --separate-stderr env VIVARY_LIMITS=rlimit viv run --agent "$A_HOG" -- true
  [ "$stderr" = "viv: limits: cpu=0.2 needs a cgroup driver (VIVARY_LIMITS=rlimit)" ]
  run -0 env VIVARY_LIMITS=rlimit viv run --agent "$A_FREE" -- true
  run -0 env VIVARY_LIMITS=rlimit viv run --agent "$A_RL" -- bash -c 'ulimit -u; ulimit -v'
  [ "$output" = $'48\n65536' ]
  run -69 --separate-stderr env VIVARY_LIMITS=bogus viv run --agent "$A_FREE" -- true
  [ "$stderr" = "viv: limits: 'bogus' is not auto, cgroup2, cgroup1 or rlimit" ]
  no_groups_of "$A_FREE"
  no_groups_of "$A_RL"
}

protocol_records() {
  viv-log --agent "$1" | grep -c ' kind=protocol ' || true
}

@test "a flood of protocol violations costs a bounded number of records while another agent is served" {
  node "$VIV_ROOT/test/raw-flood.mjs" "$STATE/agents/$A_FREE/run/broker.sock" 150 4 >"$BATS_TEST_TMPDIR/flood.out" &
  local flood=$!
  peer_served 3
  wait "$flood"
  # Every violation still cost its connection: 150 ERROR frames.
  [ "$(cat "$BATS_TEST_TMPDIR/flood.out")" = errors=150 ]
  # Only the budget's 20 were recorded one by one; all 150 were counted.
  [ "$(protocol_records "$A_FREE")" -eq 20 ]
  run -0 viv ps
  [[ "$output" == *"agent=$A_FREE "*" violations=150"* ]]
  run -0 viv-log --agent "$A_FREE"
  [[ "$output" == *' kind=protocol cap=- conn='*' reason="unknown frame type 0x42"'* ]]
  peer_served 1
  # The rest are summed up in one record, at the latest when the broker stops.
  stop_broker
  [ "$(protocol_records "$A_FREE")" -eq 21 ]
  run -0 viv-log --agent "$A_FREE"
  [[ "$output" == *' kind=protocol cap=- suppressed=130 since='*' reason="130 more protocol violations not recorded one by one (at most 20 records per agent per 60 s)"'* ]]
  # Another agent's budget is its own (negative control): its first violation is recorded.
  start_broker
  run -0 node "$VIV_ROOT/test/raw-flood.mjs" "$STATE/agents/$A_PEER/run/broker.sock" 1 1
  [ "$output" = errors=1 ]
  [ "$(protocol_records "$A_PEER")" -eq 1 ]
}
