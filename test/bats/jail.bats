#!/usr/bin/env bats
# The bubblewrap jail of `viv run`, attacked from inside and checked from the host: no network,
# no host files, no privileges, a read-only system, only the granted capabilities, no other
# agent's socket, no process left behind, no way into the caller's terminal. Each agent gets a
# random name, so its host uid is its own and no other suite's processes are mistaken for it.
#
# Scripts passed to `bash -c` inside the jail are single-quoted on purpose: their variables expand
# in the jail, with values handed over as positional arguments.
# shellcheck disable=SC2016,SC2154

load helpers

setup() {
  viv_setup
  AGENT="j$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
  WS="$HOST/ws"
  TOKEN="policy-token-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
  mkdir -p "$HOST/out"
  policy_one_agent "$AGENT" "$HOST/out" "$WS"
  printf '// %s\n' "$TOKEN" >>"$POLICY"
  start_broker
  AUID=$(agent_uid "$AGENT")
  [ -n "$AUID" ]
  export AGENT WS TOKEN AUID
}

teardown() {
  if [ -n "${VIV_PID:-}" ]; then kill -KILL "$VIV_PID" 2>/dev/null || true; fi
  if [ -n "${LISTENER_PID:-}" ]; then kill -KILL "$LISTENER_PID" 2>/dev/null || true; fi
  if [ -n "${RUN_BROKER_PID:-}" ]; then kill -KILL "$RUN_BROKER_PID" 2>/dev/null || true; fi
  local p
  for p in $(live_pids "${AUID:-none}"); do kill -KILL "$p" 2>/dev/null || true; done
  stop_broker
}

# jail CMD...: runs CMD in the agent's jail.
jail() {
  viv run --agent "$AGENT" -- "$@"
}

# live_pids UID: host processes, zombies excepted, whose real or effective uid is UID.
live_pids() {
  ps -e -o pid=,ruid=,euid=,stat= | awk -v u="$1" '($2 == u || $3 == u) && $4 !~ /^Z/ { print $1 }'
}

no_live_pids() {
  [ -z "$(live_pids "$1")" ]
}

# sleeps_running UID N: exactly N `sleep` processes of UID run.
sleeps_running() {
  [ "$(pgrep -c -u "$1" -x sleep)" -eq "$2" ]
}

# descendants PID: every live descendant of PID on the host.
descendants() {
  local c
  for c in $(pgrep -P "$1"); do
    echo "$c"
    descendants "$c"
  done
}

# start_sleeping_jail [SCRIPT]: a jail that runs SCRIPT (default: sleep) in the background;
# returns once a `sleep` of the agent's uid runs. Sets VIV_PID and SLEEP_PID.
start_sleeping_jail() {
  viv run --agent "$AGENT" -- sh -c "${1:-exec sleep 1000}" >/dev/null 2>&1 3>&- &
  VIV_PID=$!
  wait_for pgrep -u "$AUID" -x sleep
  SLEEP_PID=$(pgrep -u "$AUID" -x sleep | head -n 1)
}

# start_listener: a TCP listener on a free loopback port that logs each connection it accepts.
start_listener() {
  CONNS="$BATS_TEST_TMPDIR/connections"
  : >"$CONNS"
  python3 -c '
import os, socket, sys
port_file, log = sys.argv[1], sys.argv[2]
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
with open(port_file + ".tmp", "w") as f:
    f.write(str(s.getsockname()[1]))
os.rename(port_file + ".tmp", port_file)
while True:
    c, peer = s.accept()
    with open(log, "a") as f:
        f.write("%s:%d\n" % peer)
    c.settimeout(2)
    try:
        c.recv(65536)
        c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 7\r\n\r\nreached")
    except OSError:
        pass
    c.close()
' "$BATS_TEST_TMPDIR/port" "$CONNS" >/dev/null 2>&1 3>&- &
  LISTENER_PID=$!
  wait_for test -s "$BATS_TEST_TMPDIR/port"
  PORT=$(cat "$BATS_TEST_TMPDIR/port")
}

@test "the jail has no network: a host listener on loopback receives nothing from curl or /dev/tcp" {
  start_listener
  # Negative control: from the host the listener is reachable, so a working network is detected.
  run -0 curl -sS --noproxy '*' --max-time 5 "http://127.0.0.1:$PORT/"
  [ "$output" = reached ]
  [ "$(wc -l <"$CONNS")" -eq 1 ]

  run -0 jail bash -c '
    curl -sS --noproxy "*" --max-time 5 "http://127.0.0.1:$1/"; echo "curl=$?"
    curl -sS --noproxy "*" --max-time 5 "http://localhost:$1/"; echo "curl-localhost=$?"
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; echo "devtcp=$?"
  ' _ "$PORT"
  [[ "$output" != *reached* ]]
  [[ "$output" == *"curl=7"* ]]
  [[ "$output" =~ curl-localhost=[1-9] ]]
  [[ "$output" == *"devtcp=1"* ]]

  # The listener still works and logged only the two host connections.
  run -0 curl -sS --noproxy '*' --max-time 5 "http://127.0.0.1:$PORT/"
  [ "$output" = reached ]
  [ "$(wc -l <"$CONNS")" -eq 2 ]
}

@test "a host abstract unix socket cannot be reached from the jail" {
  local name="vivary-test-$AGENT"
  python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind("\0" + sys.argv[1])
s.listen(4)
open(sys.argv[2], "w").close()
while True:
    c, _ = s.accept()
    with open(sys.argv[3], "a") as f:
        f.write("connection\n")
    c.close()
' "$name" "$BATS_TEST_TMPDIR/ready" "$BATS_TEST_TMPDIR/abstract.log" >/dev/null 2>&1 3>&- &
  LISTENER_PID=$!
  wait_for test -e "$BATS_TEST_TMPDIR/ready"
  local connect='
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect("\0" + sys.argv[1])
    print("connected")
except OSError as e:
    print("refused", e.errno)
'
  # Negative control: the host reaches it.
  run -0 python3 -c "$connect" "$name"
  [ "$output" = connected ]
  run -0 jail python3 -c "$connect" "$name"
  [ "$output" = "refused 111" ]
  [ "$(wc -l <"$BATS_TEST_TMPDIR/abstract.log")" -eq 1 ]
}

@test "the jail has only a loopback interface" {
  run -0 jail sh -c 'tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " "'
  [ "$output" = lo ]
  run -0 jail ip -o link show
  [ "${#lines[@]}" -eq 1 ]
  [[ "${lines[0]}" == "1: lo: "* ]]
  # bwrap makes no /sys; under nspawn, the jail's first process covers nspawn's with an empty one.
  run -0 jail sh -c 'if test -e /sys; then ls -A /sys; echo sys-present; else echo no-sys; fi'
  if [ "$VIV_BACKEND" = nspawn ]; then [ "$output" = sys-present ]; else [ "$output" = no-sys ]; fi
}

@test "host files outside the workspace are not visible in the jail" {
  local marker="$BATS_TEST_TMPDIR/vivary-marker-$AGENT"
  echo "host secret" >"$marker"
  chmod 0644 "$marker"
  run -0 jail bash -c '
    cat "$1" 2>/dev/null && echo "marker readable"
    test -e "$1" && echo "marker exists"
    find / -path /proc -prune -o -name "$(basename "$1")" -print 2>/dev/null
    for d in /home /var /srv /root /mnt /media /opt /boot /sys /work; do
      if [ -e "$d" ] && [ -n "$(ls -A "$d" 2>/dev/null)" ]; then echo "host dir $d present"; fi
    done
    echo done
  ' _ "$marker"
  [ "$output" = "done" ]
}

@test "/etc in the jail holds only the loader's files and the jail's own passwd and group" {
  local expected="" f
  # The list in images/bwrap-layout.ts, written out here as the specification.
  for f in alternatives group ld.so.cache ld.so.conf ld.so.conf.d localtime nsswitch.conf passwd; do
    case $f in passwd | group) expected+="$f"$'\n' ;; *) if [ -e "/etc/$f" ]; then expected+="$f"$'\n'; fi ;; esac
  done
  run -0 jail sh -c 'ls -A /etc | LC_ALL=C sort'
  [ "$output" = "$(printf '%s' "$expected" | LC_ALL=C sort)" ]
  run -0 jail cut -d: -f1 /etc/passwd
  [ "$(echo "$output" | tr '\n' ' ')" = "root agent nobody " ]
  run -0 jail sh -c 'test -e /etc/shadow || test -e /etc/hosts || test -e /etc/resolv.conf || test -e /etc/vivary || echo clean'
  [ "$output" = clean ]
}

@test "the state directory, the audit log and the policy are not visible in the jail" {
  [ -e "$STATE/audit.db" ]
  grep -qF "$TOKEN" "$POLICY"
  run -0 jail bash -c '
    find / -path /proc -prune -o \( -name "audit.db*" -o -name operator.sock -o -name broker.lock -o -name "$(basename "$1")" \) -print 2>/dev/null
    for d in /*; do
      case $d in /proc | /usr | /dev) continue ;; esac
      [ -L "$d" ] && continue
      grep -rlsF --devices=skip -e "$2" "$d"
    done
    test -e "$3" && echo "state dir visible"
    test -e "$1" && echo "policy visible"
    awk "{ print \$4 }" /proc/self/mountinfo >/workspace/mount-sources
    echo done
  ' _ "$POLICY" "$TOKEN" "$STATE"
  [ "$output" = "done" ]
  # Every host path mounted into the jail from the test's directories is one of these.
  local allowed="$STATE/agents/$AGENT/run $STATE/agents/$AGENT/etc/passwd $STATE/agents/$AGENT/etc/group $WS" src
  while read -r src; do
    case $src in
      "$BATS_TEST_TMPDIR" | "$BATS_TEST_TMPDIR"/*) [[ " $allowed " == *" $src "* ]] || { echo "unexpected mount of '$src'" >&2; return 1; } ;;
    esac
  done <"$WS/mount-sources"
  grep -qx "$STATE/agents/$AGENT/run" "$WS/mount-sources"
}

@test "the jail's environment is rebuilt from nothing" {
  VIVARY_TEST_SECRET="secret-$AGENT" run -0 jail env
  [[ "$output" != *"secret-$AGENT"* ]]
  [ "$(echo "$output" | cut -d= -f1 | LC_ALL=C sort | tr '\n' ' ')" = "HOME LANG LOGNAME PATH PWD USER " ]
  [[ "$output" == *"HOME=/workspace"* ]]
}

@test "the jail inherits no file descriptor but stdin, stdout and stderr" {
  # The caller holds the policy open on fd 9 (and bats its own fd 3): neither reaches the jail.
  run -0 jail sh -c 'ls /proc/self/fd' 9<"$POLICY"
  [ "$(echo "$output" | tr '\n' ' ')" = "0 1 2 3 " ]
  run -0 jail sh -c 'readlink /proc/self/fd/9 /proc/$$/fd/3 /proc/$$/fd/9 || echo none' 9<"$POLICY"
  [ "$output" = none ]
}

@test "no process of the jail names a host path on its command line: the jail's layout is not shown to the agent" {
  run -0 jail sh -c 'for f in /proc/[0-9]*/cmdline; do tr "\0" " " <"$f"; echo; done'
  [ "${#lines[@]}" -ge 2 ]
  [[ "$output" != *"$STATE"* ]]
  [[ "$output" != *"$WS"* ]]
  # Negative control: the same search finds a host path where one is shown.
  run -0 jail sh -c 'for f in /proc/[0-9]*/cmdline; do tr "\0" " " <"$f"; echo; done' "$STATE"
  [[ "$output" == *"$STATE"* ]]
}

@test "jailed processes hold no capabilities and cannot gain privileges" {
  run -0 jail grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):' /proc/self/status
  [ "${#lines[@]}" -eq 6 ]
  local l
  for l in CapInh CapPrm CapEff CapBnd CapAmb; do
    [[ "$output" == *"$l:"$'\t'"0000000000000000"* ]]
  done
  [[ "$output" == *"NoNewPrivs:"$'\t'"1"* ]]
  # No new user namespace, so no way to regain capabilities inside one.
  run -0 jail sh -c 'unshare -Ur true 2>/dev/null && echo "userns created" || echo refused'
  [ "$output" = refused ]
}

@test "jailed processes run as uid 1000 inside and as the agent's unprivileged uid on the host" {
  run -0 jail sh -c 'id -u; id -g; id -G'
  [ "$(echo "$output" | tr '\n' ' ')" = "1000 1000 1000 " ]

  [ "$AUID" -ne 0 ]
  start_sleeping_jail
  local pids p n=0
  pids=$(descendants "$VIV_PID")
  local supervisors=0
  for p in $pids; do
    [ -d "/proc/$p" ] || continue
    # systemd-nspawn itself stays root on the host, outside every namespace of the jail.
    if [ "$VIV_BACKEND" = nspawn ] && [ "$(cat "/proc/$p/comm")" = systemd-nspawn ]; then
      supervisors=$((supervisors + 1))
      continue
    fi
    n=$((n + 1))
    [ "$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$p/status")" = "$AUID $AUID $AUID $AUID" ]
    [ "$(awk '/^Gid:/ { print $2, $3, $4, $5 }' "/proc/$p/status")" = "$AUID $AUID $AUID $AUID" ]
    [ "$(awk '/^CapEff:/ { print $2 }' "/proc/$p/status")" = 0000000000000000 ]
  done
  # setpriv and prlimit exec into bwrap: bwrap, its init and the sleep. Under nspawn: its one
  # process, then the jail's first process and the sleep.
  [ "$n" -ge 2 ]
  if [ "$VIV_BACKEND" = nspawn ]; then [ "$supervisors" -eq 1 ]; else [ "$supervisors" -eq 0 ]; fi
  [[ " $(echo "$pids" | tr '\n' ' ') " == *" $SLEEP_PID "* ]]
}

@test "the system tree is read-only in the jail" {
  run -0 jail bash -c '
    for p in /usr/vivary-x /usr/bin/vivary-x /etc/vivary-x /etc/passwd /vivary-x /run/vivary-x /run/vivary/vivary-x /run/vivary/bin/vivary-x /run/vivary/capabilities.json; do
      if (: >"$p") 2>/dev/null; then echo "wrote $p"; fi
    done
    for p in /usr/vivary-d /etc/vivary-d /vivary-d /run/vivary/bin/vivary-d; do
      if mkdir "$p" 2>/dev/null; then echo "made $p"; fi
    done
    rm -f /run/vivary/bin/fs-file-write 2>/dev/null && echo "removed a stub"
    ln -s /bin/sh /run/vivary/bin/evil 2>/dev/null && echo "planted a stub"
    echo "/tmp/vivary-jail-$1" >"/tmp/vivary-jail-$1" && echo "tmp writable"
  ' _ "$AGENT"
  [ "$output" = "tmp writable" ]
  # The jail's /tmp is its own.
  [ ! -e "/tmp/vivary-jail-$AGENT" ]
  [ ! -e /usr/vivary-x ]
  [ ! -e /etc/vivary-x ]
  [ ! -e /vivary-x ]
  [ "$(ls -A "$STATE/agents/$AGENT/run/bin")" = "$(printf 'fs-file-write\nviv-mcp')" ]
}

@test "the workspace is writable and its files belong to the agent's uid on the host" {
  run -0 jail sh -c 'echo made-in-jail >/workspace/note && mkdir /workspace/sub && echo ok'
  [ "$output" = ok ]
  [ "$(cat "$WS/note")" = made-in-jail ]
  [ "$(stat -c '%u:%g' "$WS/note")" = "$AUID:$AUID" ]
  [ "$(stat -c '%u:%g' "$WS/sub")" = "$AUID:$AUID" ]
  [ "$(stat -c '%u:%g' "$WS")" = "$AUID:$AUID" ]
}

@test "runs of one agent starting at once never see its new workspace before it is the agent's" {
  [ ! -e "$WS" ]
  # Another run in the middle of creating the workspace: made, not yet chowned, under the lock
  # every run takes on the parent directory. This run must wait for it, not refuse the workspace.
  flock "$HOST" sh -c 'mkdir -m 0700 "$1"; touch "$1.made"; sleep 1; chown "$2:$2" "$1"' sh "$WS" "$AUID" &
  local creator=$!
  wait_for test -e "$WS.made"
  run -0 jail true
  wait "$creator"
  # And eight at once all find it theirs.
  rm -rf "$WS"
  local i pids=()
  for i in 1 2 3 4 5 6 7 8; do jail true & pids+=($!); done
  for i in "${pids[@]}"; do wait "$i"; done
  [ "$(stat -c '%u:%g' "$WS")" = "$AUID:$AUID" ]
}

@test "PATH in the jail holds only the granted capabilities and the MCP bridge" {
  run -0 jail ls -A /run/vivary/bin
  [ "$output" = "$(printf 'fs-file-write\nviv-mcp')" ]
  run -0 jail bash -c '
    for c in viv viv-broker viv-log viv-stub vivary; do command -v "$c" && echo "found $c"; done
    command -v fs-file-write
  '
  [ "$output" = /run/vivary/bin/fs-file-write ]

  # An agent granted nothing gets no capability at all.
  local other="e${AGENT:1}"
  stop_broker
  printf 'agent "%s" {\n}\n' "$other" >>"$POLICY"
  start_broker
  run -0 viv run --agent "$other" -- sh -c 'ls -A /run/vivary/bin; command -v fs-file-write || echo none'
  [ "$output" = none ]
  run -0 viv run --agent "$other" -- cat /run/vivary/capabilities.json
  [ "$(echo "$output" | jq -c '.capabilities')" = "[]" ]
}

@test "capabilities.json in the jail lists the granted capability with its schema" {
  run -0 jail cat /run/vivary/capabilities.json
  local caps="$output"
  [ "$(echo "$caps" | jq -c '[.capabilities[].name]')" = '["fs-file-write"]' ]
  [ "$(echo "$caps" | jq -S '.capabilities[0].schema')" = "$(jq -S . "$VIV_ROOT/capabilities/fs-file-write/schema.json")" ]
  run -0 --separate-stderr jail fs-file-write --help
  [ "$(echo "$output" | jq -S .)" = "$(echo "$caps" | jq -S '.capabilities[0].schema')" ]
}

@test "an agent cannot see or reach another agent's socket" {
  local other="o${AGENT:1}"
  stop_broker
  mkdir -p "$HOST/other"
  cat >>"$POLICY" <<KDL
agent "$other" {
    grant "fs-file-write" {
        path "$HOST/other"
    }
}
KDL
  start_broker
  [ -S "$STATE/agents/$other/run/broker.sock" ]
  run -0 jail bash -c '
    find / -path /proc -prune -o -name "*.sock" -print 2>/dev/null
    ls -A /run
    test -e "$1" && echo "other socket visible"
    VIVARY_SOCKET="$1" fs-file-write --path "$2/x" --content pwned; echo "via other socket: $?"
    fs-file-write --path "$2/x" --content pwned 2>/dev/null; echo "via own socket: $?"
  ' _ "$STATE/agents/$other/run/broker.sock" "$HOST/other"
  [ "${lines[0]}" = /run/vivary/broker.sock ]
  [ "${lines[1]}" = vivary ]
  [ "${lines[2]}" = "fs-file-write: cannot reach broker: No such file or directory" ]
  [ "${lines[3]}" = "via other socket: 69" ]
  [ "${lines[4]}" = "via own socket: 77" ]
  [ "${#lines[@]}" -eq 5 ]
  [ -z "$(ls -A "$HOST/other")" ]
  # The refusal is recorded against the agent whose socket the call came in on.
  run -0 viv-log --json
  [ "$(echo "$output" | jq -r 'select(.kind == "deny") | .agent')" = "$AGENT" ]
  [ -z "$(echo "$output" | jq -r --arg o "$other" 'select(.agent == $o) | .kind')" ]
}

@test "viv run exits with the jailed command's status" {
  run -7 jail sh -c 'exit 7'
  run -0 jail true
  run -137 jail sh -c 'kill -KILL $$'
  # The same when viv run starts its own broker for the run.
  stop_broker
  run -7 jail sh -c 'exit 7'
  run -69 viv ps --state "$STATE"
}

@test "viv run accepts a relative --state" {
  cd "$BATS_TEST_TMPDIR"
  run -0 timeout -k 1 10 viv run --agent "$AGENT" --state state -- sh -c 'echo ran'
  [ "$output" = ran ]
}

@test "no process of the agent outlives the run, even detached ones" {
  run -0 jail bash -c '
    sleep 1000 >/dev/null 2>&1 </dev/null &
    setsid sleep 1001 >/dev/null 2>&1 </dev/null &
    nohup sleep 1002 >/dev/null 2>&1 </dev/null &
    (setsid -f sleep 1003 >/dev/null 2>&1 </dev/null &)
    disown -a
    for i in $(seq 1 500); do [ "$(pgrep -c -x sleep)" -eq 4 ] && break; sleep 0.01; done
    pgrep -c -x sleep
  '
  [ "$output" = 4 ]
  wait_for no_live_pids "$AUID" || true
  run -0 live_pids "$AUID"
  [ -z "$output" ]
}

@test "killing viv run with SIGKILL ends every process of the jail" {
  start_sleeping_jail 'sleep 1000 & setsid sleep 1001 & exec sleep 1002'
  wait_for sleeps_running "$AUID" 3
  kill -KILL "$VIV_PID"
  wait_for no_live_pids "$AUID" || true
  run -0 live_pids "$AUID"
  [ -z "$output" ]
}

@test "killing viv run with SIGKILL also ends the broker it started" {
  stop_broker
  start_sleeping_jail
  RUN_BROKER_PID=$(pgrep -P "$VIV_PID" -f viv-broker)
  [ -n "$RUN_BROKER_PID" ]
  kill -KILL "$VIV_PID"
  wait_for no_live_pids "$AUID"
  # A broker that notices its parent's death does so within milliseconds: poll for 3 seconds.
  local _
  for _ in $(seq 1 300); do
    kill -0 "$RUN_BROKER_PID" 2>/dev/null || break
    sleep 0.01
  done
  run -1 kill -0 "$RUN_BROKER_PID"
}

@test "the jail runs in a new session, so TIOCSTI cannot inject into the caller's terminal" {
  start_sleeping_jail
  local caller jailed
  caller=$(ps -o sid= -p "$VIV_PID" | tr -d ' ')
  jailed=$(ps -o sid= -p "$SLEEP_PID" | tr -d ' ')
  [ -n "$caller" ]
  [ -n "$jailed" ]
  [ "$caller" != "$jailed" ]
  [ "$(ps -o tty= -p "$SLEEP_PID" | tr -d ' ')" = "?" ]
  kill -TERM "$VIV_PID"

  run -0 jail sh -c '(: >/dev/tty) 2>/dev/null && echo "tty usable" || echo "no tty"'
  [ "$output" = "no tty" ]

  local py='import errno, fcntl, termios
try:
    fcntl.ioctl(0, termios.TIOCSTI, b"#")
    print("injected")
except OSError as e:
    print("refused", errno.errorcode[e.errno])'
  # Negative control: on a real terminal, outside the jail, TIOCSTI works on this kernel.
  run -0 env SHELL=/bin/bash script -qec "$(printf '%q ' python3 -c "$py")" /dev/null </dev/null
  [[ "$output" == *injected* ]]
  run -0 env SHELL=/bin/bash script -qec "$(printf '%q ' viv run --agent "$AGENT" -- python3 -c "$py")" /dev/null </dev/null
  [[ "$output" == *"refused EPERM"* ]]
  [[ "$output" != *injected* ]]
}

@test "the jail has a fresh /proc that shows only its own processes" {
  run -0 jail bash -c '
    ls /proc | grep -c "^[0-9]"
    cat /proc/1/comm
    test -e "/proc/$1" && echo "broker visible"
    ps -e -o comm= >/tmp/ps
    sort /tmp/ps | tr "\n" " "
  ' _ "$BROKER_PID"
  [ "${lines[0]}" -le 5 ]
  # The jail's init: bwrap's own, or the nspawn jail's first process.
  local init=bwrap
  if [ "$VIV_BACKEND" = nspawn ]; then init=viv-jail-init; fi
  [ "${lines[1]}" = "$init" ]
  [ "${lines[2]}" = "$(printf 'bash\n%s\nps\n' "$init" | sort | tr '\n' ' ')" ]
  [ "${#lines[@]}" -eq 3 ]
}

@test "the jail has a minimal /dev with no disks or memory devices" {
  # find -type trusts d_type, a regular file for bwrap's bind-mount points: test each entry.
  run -0 jail bash -c '
    find /dev -mindepth 1 | sort >/tmp/entries
    while read -r f; do [ ! -L "$f" ] && [ -b "$f" ] && echo "block device $f"; done </tmp/entries
    for d in /dev/sda /dev/vda /dev/nvme0n1 /dev/mem /dev/kmem /dev/port /dev/kvm /dev/kmsg /dev/fuse /dev/net/tun; do test -e "$d" && echo "$d present"; done
    while read -r f; do [ ! -L "$f" ] && [ -c "$f" ] && basename "$f"; done </tmp/entries | sort | tr "\n" " "; echo
    head -c 1 /dev/core >/dev/null 2>&1 && echo "kcore readable"
    echo x >/dev/null && test "$(head -c 3 /dev/zero | wc -c)" -eq 3 && echo "null and zero work"
  '
  [ "${lines[0]}" = "full null ptmx random tty urandom zero " ]
  [ "${lines[1]}" = "null and zero work" ]
  [ "${#lines[@]}" -eq 2 ]
}

@test "a run past its limits timeout is ended with every process of the jail, and exits 75" {
  stop_broker
  cat >"$POLICY" <<KDL
agent "$AGENT" {
    workspace "$WS"
    limits timeout="2s"
}
KDL
  start_broker
  run -75 --separate-stderr viv run --agent "$AGENT" -- sh -c 'sleep 1000 & setsid sleep 1001 & exec sleep 1002'
  [ "$stderr" = "viv: run of agent '$AGENT' ended by its 2000 ms timeout" ]
  wait_for no_live_pids "$AUID" || true
  run -0 live_pids "$AUID"
  [ -z "$output" ]
  # Negative control: within its time the same agent's command ends as it would.
  run -0 viv run --agent "$AGENT" -- sh -c 'sleep 0.1; echo finished'
  [ "$output" = finished ]
}
