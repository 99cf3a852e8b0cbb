#!/usr/bin/env bats
# The jails' seccomp filter (images/seccomp.c), probed from inside real jails with
# viv-try-syscall, which makes each syscall raw with arguments the kernel would refuse in some
# other way. Every rule is checked twice: in the jail `viv run` starts, where it must fail as the
# filter says, and in the same jail built without the filter (test/seccomp-jail.ts --no-filter),
# where it must come out differently: the negative control that a lost filter would not pass.
# Then the tools agents use must still work under the filter.
#
# Scripts passed to `sh -c` inside the jail are single-quoted on purpose: they expand in the jail.
# shellcheck disable=SC2016

load helpers

setup() {
  viv_setup
  AGENT="sec-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
  WS="$HOST/ws"
  mkdir -p "$HOST/out" "$WS"
  policy_one_agent "$AGENT" "$HOST/out" "$WS"
  start_broker
  AUID=$(agent_uid "$AGENT")
  [ -n "$AUID" ]
  cp "$VIV_ROOT/dist/libexec/viv-try-syscall" "$WS/"
  chown -R "$AUID:$AUID" "$WS"
  export AGENT WS AUID
}

teardown() {
  local p
  for p in $(pgrep -u "${AUID:-none}" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
  stop_broker
}

# jail CMD...: runs CMD in the agent's jail, as viv run does, filter included.
jail() {
  viv run --agent "$AGENT" -- "$@"
}

# unfiltered CMD...: runs CMD in the same jail without the filter (the negative control).
unfiltered() {
  "$VIV_ROOT/node_modules/.bin/bun" "$VIV_ROOT/test/seccomp-jail.ts" "$STATE" "$AGENT" "$AUID" "$WS" --no-filter -- "$@"
}

# Probes the kernel may refuse alike without the filter: those it guards with a capability before
# it looks at any argument (or leaves out when built without them), and ABIs it may lack.
ALIKE=" kexec_load kexec_file_load init_module finit_module delete_module pivot_root fsopen fsmount fspick move_mount x32_abi i386_abi "

# probes NAME=OUTCOME...: each probe gives OUTCOME in the jail. Unfiltered, a probe the filter
# allows gives the same outcome, and a probe it denies gives another one (except the ALIKE ones).
probes() {
  local names=() want=() pair
  for pair in "$@"; do
    names+=("${pair%%=*}")
    want+=("${pair#*=}")
  done
  local filtered control i got ctl
  filtered=$(jail ./viv-try-syscall "${names[@]}")
  control=$(unfiltered ./viv-try-syscall "${names[@]}")
  [ "$(echo "$filtered" | wc -l)" -eq "${#names[@]}" ]
  [ "$(echo "$control" | wc -l)" -eq "${#names[@]}" ]
  for i in "${!names[@]}"; do
    got=$(echo "$filtered" | awk -v n="${names[$i]}" '$1 == n { print $2 }')
    ctl=$(echo "$control" | awk -v n="${names[$i]}" '$1 == n { print $2 }')
    echo "${names[$i]}: jail=$got want=${want[$i]} unfiltered=$ctl"
    [ "$got" = "${want[$i]}" ]
    if [ "${want[$i]}" = ok ] || [ "${want[$i]}" = EBADF ]; then
      [ "$ctl" = "$got" ]
    elif [[ "$ALIKE" != *" ${names[$i]} "* ]]; then
      [ -n "$ctl" ]
      [ "$ctl" != "$got" ]
    fi
  done
}

@test "every jail of viv run is under the filter; the control jail is not" {
  run -0 jail grep '^Seccomp:' /proc/self/status
  [ "$output" = $'Seccomp:\t2' ]
  run -0 unfiltered grep '^Seccomp:' /proc/self/status
  [ "$output" = $'Seccomp:\t0' ]
  # bwrap closed the fd it read the filter from: only ls's own directory fd is beyond stderr.
  run -0 jail sh -c 'ls /proc/self/fd'
  [ "$(echo "$output" | tr '\n' ' ')" = "0 1 2 3 " ]
}

@test "io_uring, bpf, userfaultfd and perf_event_open fail with EPERM" {
  probes io_uring_setup=EPERM io_uring_enter=EPERM io_uring_register=EPERM bpf=EPERM userfaultfd=EPERM perf_event_open=EPERM
}

@test "the kernel keyrings fail with EPERM" {
  probes keyctl=EPERM add_key=EPERM request_key=EPERM
}

@test "reaching into another process fails with EPERM" {
  probes ptrace=EPERM process_vm_readv=EPERM process_vm_writev=EPERM pidfd_getfd=EPERM
}

@test "kexec and kernel modules fail with EPERM" {
  probes kexec_load=EPERM kexec_file_load=EPERM init_module=EPERM finit_module=EPERM delete_module=EPERM
}

@test "mounts, old API and new, and setns fail with EPERM" {
  probes mount=EPERM umount2=EPERM pivot_root=EPERM fsopen=EPERM fsconfig=EPERM fsmount=EPERM fspick=EPERM move_mount=EPERM open_tree=EPERM mount_setattr=EPERM setns=EPERM
}

@test "personality: only the default and the query pass, whatever the high bits" {
  probes personality_linux32=EPERM personality_no_aslr=EPERM personality_high_bits=EPERM personality_query=ok personality_default=ok
}

@test "clone and unshare with any namespace flag fail with EPERM; clone3 with ENOSYS; a plain fork works" {
  probes clone_newuser=EPERM clone_newns=EPERM clone_newnet=EPERM clone_newpid=EPERM clone_newipc=EPERM clone_newuts=EPERM clone_newcgroup=EPERM \
    unshare_newuser=EPERM unshare_newns=EPERM unshare_newnet=EPERM unshare_newpid=EPERM unshare_newipc=EPERM unshare_newuts=EPERM unshare_newcgroup=EPERM unshare_newtime=EPERM \
    clone3=ENOSYS clone_fork=ok unshare_files=ok
}

@test "ioctl TIOCSTI and TIOCLINUX fail with EPERM on their 32-bit cmd; other ioctls reach the kernel" {
  probes ioctl_tiocsti=EPERM ioctl_tiocsti_high_bits=EPERM ioctl_tioclinux=EPERM ioctl_tioclinux_high_bits=EPERM ioctl_other=EBADF
}

@test "sockets: unix, inet, inet6 and netlink route only; other families fail with EPERM" {
  probes socket_unix=ok socket_inet=ok socket_inet6=ok socket_netlink_route=ok socketpair_unix=ok \
    socket_netlink_audit=EPERM socket_netlink_uevent=EPERM socket_packet=EPERM socket_vsock=EPERM socket_alg=EPERM socket_bluetooth=EPERM socket_packet_high_bits=EPERM socketpair_inet=EPERM
}

@test "a syscall the allowlist does not name fails with ENOSYS, a newer kernel's included" {
  probes unlisted_chroot=ENOSYS unlisted_modify_ldt=ENOSYS unlisted_lsm_list_modules=ENOSYS
}

@test "syscalls of the x32 and i386 ABIs fail with ENOSYS (or fault where the kernel has no such ABI)" {
  probes x32_abi=ENOSYS
  run -0 jail ./viv-try-syscall i386_abi
  local got=$output
  run -0 unfiltered ./viv-try-syscall i386_abi
  echo "jail: $got; unfiltered: $output"
  if [ "$output" = "i386_abi SIGSEGV" ]; then
    [ "$got" = "i386_abi SIGSEGV" ] # no IA-32 emulation in this kernel: nothing to filter
  else
    [ "$output" = "i386_abi ok" ]
    [ "$got" = "i386_abi ENOSYS" ]
  fi
}

@test "bash, python3, git and node work under the filter" {
  run -0 jail bash -c 'x=$(echo sub); echo "$x" | tr a-z A-Z; (sleep 0.01 &) ; wait; echo done'
  [ "$output" = $'SUB\ndone' ]
  run -0 jail python3 -c '
import os, socket, subprocess, threading
a, b = socket.socketpair(); a.send(b"pair"); print(b.recv(4).decode())
t = threading.Thread(target=lambda: print("thread")); t.start(); t.join()
print(subprocess.run(["echo", "child"], capture_output=True, text=True).stdout.strip())
print(sorted(n for _, n in socket.if_nameindex()))'
  [ "$output" = $'pair\nthread\nchild\n[\'lo\']' ]
  run -0 jail sh -c 'cd /tmp && git init -q r && cd r && echo hi >f && git add f && git -c user.name=a -c user.email=a@b commit -qm one && git log --format=%s'
  [ "$output" = one ]
  run -0 jail node -e '
const { execFileSync } = require("child_process");
process.stdout.write(execFileSync("echo", ["spawned"]).toString());
console.log(Object.keys(require("os").networkInterfaces()).join(","));
require("fs").writeFileSync("/tmp/n", "written"); console.log(require("fs").readFileSync("/tmp/n", "utf8"));'
  [ "$output" = $'spawned\nlo\nwritten' ]
}

@test "a C compiler builds and runs a program under the filter" {
  run -0 jail sh -c 'cd /tmp && printf "#include <stdio.h>\nint main(void) { puts(\"hello from cc\"); return 0; }\n" >h.c && cc -O2 -o h h.c && ./h'
  [ "$output" = "hello from cc" ]
}

@test "curl fails cleanly: an error and its exit code, never a signal" {
  run jail curl -sS --max-time 5 http://example.com/
  [ "$status" -eq 6 ]
  [[ "$output" == *"Could not resolve host"* ]]
  run jail curl -sS --max-time 5 http://127.0.0.1:9/
  [ "$status" -eq 7 ]
  [[ "$output" != *"Bad system call"* ]]
}

@test "viv run refuses to start a jail when the build has no filter (exit 69)" {
  local d="$BATS_TEST_TMPDIR/dist"
  mkdir -p "$d/bin" "$d/libexec"
  cp "$VIV_ROOT/dist/bin/vivary" "$d/bin/vivary"
  ln -s vivary "$d/bin/viv"
  cp "$VIV_ROOT/dist/libexec/viv-stub" "$VIV_ROOT/dist/libexec/viv-jail-init" "$d/libexec/"
  cp -a "$VIV_ROOT/dist/nspawn-root" "$d/"
  run "$d/bin/viv" run --backend "$VIV_BACKEND" --agent "$AGENT" -- true
  [ "$status" -eq 69 ]
  [[ "$output" == *"seccomp filter is missing"* ]]
  [ -z "$(pgrep -u "$AUID")" ]
  # Control: with the filter in place, the same copy runs the jail.
  cp "$VIV_ROOT/dist/libexec/viv-seccomp.bpf" "$d/libexec/"
  run -0 "$d/bin/viv" run --backend "$VIV_BACKEND" --agent "$AGENT" -- echo jailed
  [ "$output" = jailed ]
}
