#!/usr/bin/env bats
# viv selftest: its own throwaway broker and jail pass every probe on this host, and the same
# probes catch a jail deliberately started without its seccomp filter (the negative control).
# The backend is VIV_BACKEND's (bwrap unless the suite runs for nspawn).

load helpers

@test "viv selftest passes every probe on the backend, one line each, and leaves nothing behind" {
  local before after
  before=$(find /tmp -maxdepth 1 -name 'viv-selftest-*' | wc -l)
  run -0 viv selftest --backend "$VIV_BACKEND"
  echo "$output"
  [[ "${lines[0]}" == "selftest backend=$VIV_BACKEND kernel="* ]]
  [ "${lines[-1]}" = "selftest: every probe passed" ]
  [[ "$output" != *FAIL* ]]
  local p
  for p in fd-leak network dns host-files capabilities no-new-privs terminal agent-sockets proc fs-file-write-links fs-file-write-race \
    seccomp-ioctl_tiocsti seccomp-clone_newuser seccomp-unshare_newnet seccomp-socket_packet seccomp-personality_no_aslr seccomp-clone3 seccomp-io_uring_setup seccomp-unlisted_lsm_list_modules; do
    [[ "$output" == *$'\n'"ok $p"$'\n'* ]]
  done
  after=$(find /tmp -maxdepth 1 -name 'viv-selftest-*' | wc -l)
  [ "$after" -eq "$before" ]
  [ -z "$(pgrep -f 'viv-broker --attached --policy /tmp/viv-selftest-')" ]
  [ -z "$(pgrep -f 'systemd-nspawn .*/tmp/viv-selftest-')" ]
}

@test "viv selftest catches a jail without its seccomp filter and exits 1" {
  VIVARY_SELFTEST_WEAKEN=seccomp run -1 viv selftest --backend "$VIV_BACKEND"
  echo "$output"
  [[ "${lines[0]}" == "selftest backend=$VIV_BACKEND weakened=seccomp "* ]]
  [[ "$output" == *"FAIL seccomp-ioctl_tiocsti: EBADF, want EPERM"* ]]
  [[ "$output" == *"FAIL seccomp-clone_newuser: EINVAL, want EPERM"* ]]
  [[ "$output" == *"FAIL terminal:"* ]]
  # What the filter does not decide still holds in the weakened jail.
  [[ "$output" == *$'\n'"ok network"$'\n'* ]]
  [[ "$output" == *$'\n'"ok capabilities"$'\n'* ]]
  [[ "${lines[-1]}" == "selftest: "*" probe(s) failed" ]]
}

@test "viv selftest refuses an unknown backend (exit 64) and an unknown weakening (exit 64)" {
  run -64 viv selftest --backend lxc
  VIVARY_SELFTEST_WEAKEN=everything run -64 viv selftest
  [[ "$output" == *"only 'seccomp' is known"* ]]
}
