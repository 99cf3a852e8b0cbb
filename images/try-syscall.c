/*
 * Probes the jail's seccomp filter from inside, as bubblewrap's tests/try-syscall.c does: each
 * probe makes one raw syscall and prints its name and outcome, "ok" or the errno's name. The
 * arguments are chosen so that, without a filter, the kernel fails the call in another way (a
 * bad fd, an invalid flag combination, a bad pointer) or lets it succeed harmlessly; so a filter
 * that is missing or weaker shows as another word. Nothing a probe does outlives the probe.
 *
 * usage: viv-try-syscall [PROBE...]    no PROBE: every probe, one line each
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Numbers that Debian 12's headers may not have (the same on x86_64 and every newer ABI). */
#define NR_io_uring_setup 425
#define NR_io_uring_enter 426
#define NR_io_uring_register 427
#define NR_open_tree 428
#define NR_move_mount 429
#define NR_fsopen 430
#define NR_fsconfig 431
#define NR_fsmount 432
#define NR_fspick 433
#define NR_clone3 435
#define NR_pidfd_getfd 438
#define NR_mount_setattr 442
#define NR_lsm_list_modules 461
#define X32_SYSCALL_BIT 0x40000000L

#define CLONE_NS_NEWTIME 0x00000080L
#define TIOCSTI_CMD 0x5412UL
#define TIOCLINUX_CMD 0x541CUL
#define HIGH_BITS 0x100000000UL /* set above the 32 bits the kernel reads */
#define BAD_SOCK_TYPE 9999      /* >= SOCK_MAX: EINVAL before the family is looked at */

static long ret(long r) { return r < 0 ? -errno : r; }
static long sys(long nr, long a, long b, long c, long d, long e, long f) { return ret(syscall(nr, a, b, c, d, e, f)); }

/* A raw clone with FLAGS | CLONE_THREAD but no CLONE_SIGHAND: the kernel refuses that pair with
 * EINVAL before any namespace is made, so unfiltered it never creates a process. */
static long clone_ns(long flag) { return sys(SYS_clone, flag | CLONE_THREAD, 0, 0, 0, 0, 0); }
/* unshare with bit 0, which unshare never accepts: EINVAL when unfiltered. */
static long unshare_ns(long flag) { return sys(SYS_unshare, flag | 1, 0, 0, 0, 0, 0); }
static long sock(long family, long type, long protocol) {
  long r = sys(SYS_socket, family, type, protocol, 0, 0, 0);
  if (r >= 0) close((int)r), r = 0;
  return r;
}
static long socketpair_(long family) {
  int sv[2];
  long r = sys(SYS_socketpair, family, 1 /* SOCK_STREAM */, 0, (long)sv, 0, 0);
  if (r >= 0) close(sv[0]), close(sv[1]), r = 0;
  return r;
}
/* A plain fork through the raw clone, as the C library makes one. */
static long fork_() {
  long r = sys(SYS_clone, SIGCHLD, 0, 0, 0, 0, 0);
  if (r == 0) _exit(0);
  if (r > 0) {
    int st;
    waitpid((pid_t)r, &st, 0);
    r = WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -ECHILD;
  }
  return r;
}
/* getpid through the i386 ABI (int 0x80, syscall 20), in a child: a kernel without IA-32
 * emulation answers int 0x80 with SIGSEGV, which the probe reports as "SIGSEGV". */
static long i386_getpid_here() {
  long r;
  __asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "r8", "r9", "r10", "r11", "memory");
  r = (int)r; /* the i386 ABI returns 32 bits */
  return r < 0 ? r : 0;
}
#define SIGNALLED 100000 /* i386_getpid's result for a child killed by signal N: -(SIGNALLED + N) */
static long i386_getpid() {
  int p[2];
  if (pipe(p) != 0) return -errno;
  pid_t pid = fork();
  if (pid == 0) {
    long r = i386_getpid_here();
    if (write(p[1], &r, sizeof r) != sizeof r) _exit(1);
    _exit(0);
  }
  close(p[1]);
  long r = -ECHILD;
  if (read(p[0], &r, sizeof r) != sizeof r) r = -ECHILD;
  close(p[0]);
  int st;
  if (pid < 0 || waitpid(pid, &st, 0) < 0) return -ECHILD;
  return WIFSIGNALED(st) ? -(SIGNALLED + WTERMSIG(st)) : r;
}
static long positive(long r) { return r > 0 ? 0 : r; }
/* Reads the process's own LDT (normally empty): harmless, and no ABI needs it. */
static long modify_ldt_read() {
  char buf[16];
  long r = sys(SYS_modify_ldt, 0, (long)buf, sizeof buf, 0, 0, 0);
  return r >= 0 ? 0 : r;
}

struct probe {
  const char *name;
  long (*run)(void);
};

#define P(name, expr) \
  static long p_##name(void) { return (expr); }
P(io_uring_setup, sys(NR_io_uring_setup, 0, 0, 0, 0, 0, 0))
P(io_uring_enter, sys(NR_io_uring_enter, -1, 0, 0, 0, 0, 0))
P(io_uring_register, sys(NR_io_uring_register, -1, 0, 0, 0, 0, 0))
P(bpf, sys(SYS_bpf, 9999, 0, 0, 0, 0, 0))
P(userfaultfd, sys(SYS_userfaultfd, 1 /* UFFD_USER_MODE_ONLY */ | 2 /* invalid */, 0, 0, 0, 0, 0))
P(perf_event_open, sys(SYS_perf_event_open, 0, 0, -1, -1, 0, 0))
P(keyctl, sys(SYS_keyctl, 9999, 0, 0, 0, 0, 0))
P(add_key, sys(SYS_add_key, 0, 0, 0, 0, 0, 0))
P(request_key, sys(SYS_request_key, 0, 0, 0, 0, 0, 0))
P(ptrace, sys(SYS_ptrace, 9999, 0, 0, 0, 0, 0))
P(process_vm_readv, sys(SYS_process_vm_readv, 0, 0, 0, 0, 0, 1))
P(process_vm_writev, sys(SYS_process_vm_writev, 0, 0, 0, 0, 0, 1))
P(pidfd_getfd, sys(NR_pidfd_getfd, -1, -1, 0, 0, 0, 0))
/* unknown flags: EINVAL even for root (no segments and no flags would unload a loaded kernel) */
P(kexec_load, sys(SYS_kexec_load, 0, 0, 0, 0xfff0, 0, 0))
P(kexec_file_load, sys(SYS_kexec_file_load, -1, -1, 0, 0, 0xfff0, 0))
P(init_module, sys(SYS_init_module, 0, 0, 0, 0, 0, 0))
P(finit_module, sys(SYS_finit_module, -1, 0, 0, 0, 0, 0))
P(delete_module, sys(SYS_delete_module, 0, 0, 0, 0, 0, 0))
P(mount, sys(SYS_mount, 0, 0, 0, 0, 0, 0))
P(umount2, sys(SYS_umount2, 0, ~0L, 0, 0, 0, 0))
P(pivot_root, sys(SYS_pivot_root, 0, 0, 0, 0, 0, 0))
P(fsopen, sys(NR_fsopen, 0, 0, 0, 0, 0, 0))
P(fsconfig, sys(NR_fsconfig, -1, 0, 0, 0, 0, 0))
P(fsmount, sys(NR_fsmount, -1, 0, 0, 0, 0, 0))
P(fspick, sys(NR_fspick, -1, 0, 0, 0, 0, 0))
P(move_mount, sys(NR_move_mount, -1, 0, -1, 0, 0, 0))
P(open_tree, sys(NR_open_tree, -1, 0, 0, 0, 0, 0))
P(mount_setattr, sys(NR_mount_setattr, -1, 0, 0, 0, 0, 0))
P(setns, sys(SYS_setns, -1, 0, 0, 0, 0, 0))
P(personality_linux32, positive(sys(SYS_personality, 8 /* PER_LINUX32 */, 0, 0, 0, 0, 0)))
P(personality_no_aslr, positive(sys(SYS_personality, 0x0040000 /* ADDR_NO_RANDOMIZE */, 0, 0, 0, 0, 0)))
P(personality_high_bits, positive(sys(SYS_personality, HIGH_BITS | 8, 0, 0, 0, 0, 0)))
P(personality_query, positive(sys(SYS_personality, 0xffffffffL, 0, 0, 0, 0, 0)))
P(personality_default, positive(sys(SYS_personality, 0, 0, 0, 0, 0, 0)))
P(clone_newuser, clone_ns(CLONE_NEWUSER))
P(clone_newns, clone_ns(CLONE_NEWNS))
P(clone_newnet, clone_ns(CLONE_NEWNET))
P(clone_newpid, clone_ns(CLONE_NEWPID))
P(clone_newipc, clone_ns(CLONE_NEWIPC))
P(clone_newuts, clone_ns(CLONE_NEWUTS))
P(clone_newcgroup, clone_ns(CLONE_NEWCGROUP))
P(clone_fork, fork_())
P(clone3, sys(NR_clone3, 0, 0, 0, 0, 0, 0))
P(unshare_newuser, unshare_ns(CLONE_NEWUSER))
P(unshare_newns, unshare_ns(CLONE_NEWNS))
P(unshare_newnet, unshare_ns(CLONE_NEWNET))
P(unshare_newpid, unshare_ns(CLONE_NEWPID))
P(unshare_newipc, unshare_ns(CLONE_NEWIPC))
P(unshare_newuts, unshare_ns(CLONE_NEWUTS))
P(unshare_newcgroup, unshare_ns(CLONE_NEWCGROUP))
P(unshare_newtime, unshare_ns(CLONE_NS_NEWTIME))
P(unshare_files, sys(SYS_unshare, CLONE_FILES, 0, 0, 0, 0, 0))
P(ioctl_tiocsti, sys(SYS_ioctl, -1, TIOCSTI_CMD, 0, 0, 0, 0))
P(ioctl_tiocsti_high_bits, sys(SYS_ioctl, -1, HIGH_BITS | TIOCSTI_CMD, 0, 0, 0, 0))
P(ioctl_tioclinux, sys(SYS_ioctl, -1, TIOCLINUX_CMD, 0, 0, 0, 0))
P(ioctl_tioclinux_high_bits, sys(SYS_ioctl, -1, HIGH_BITS | TIOCLINUX_CMD, 0, 0, 0, 0))
P(ioctl_other, sys(SYS_ioctl, -1, TIOCSTI_CMD + 1, 0, 0, 0, 0))
P(socket_unix, sock(1, 1, 0))
P(socket_inet, sock(2, 2 /* SOCK_DGRAM */, 0))
P(socket_inet6, sock(10, 2, 0))
P(socket_netlink_route, sock(16, 3 /* SOCK_RAW */, 0))
P(socket_netlink_audit, sock(16, BAD_SOCK_TYPE, 9 /* NETLINK_AUDIT */))
P(socket_netlink_uevent, sock(16, BAD_SOCK_TYPE, 15 /* NETLINK_KOBJECT_UEVENT */))
P(socket_packet, sock(17, BAD_SOCK_TYPE, 0))
P(socket_vsock, sock(40, BAD_SOCK_TYPE, 0))
P(socket_alg, sock(38, BAD_SOCK_TYPE, 0))
P(socket_bluetooth, sock(31, BAD_SOCK_TYPE, 0))
P(socket_packet_high_bits, sock(HIGH_BITS | 17, BAD_SOCK_TYPE, 0))
P(socketpair_unix, socketpair_(1))
P(socketpair_inet, socketpair_(2))
P(i386_abi, i386_getpid())
P(x32_abi, positive(sys(X32_SYSCALL_BIT | SYS_getpid, 0, 0, 0, 0, 0, 0)))
P(unlisted_chroot, sys(SYS_chroot, (long)"/nonexistent-vivary-probe", 0, 0, 0, 0, 0))
P(unlisted_modify_ldt, modify_ldt_read())
P(unlisted_lsm_list_modules, sys(NR_lsm_list_modules, 0, 0, 0, 0, 0, 0))

static const struct probe PROBES[] = {
#define E(name) {#name, p_##name}
    E(io_uring_setup), E(io_uring_enter), E(io_uring_register), E(bpf), E(userfaultfd),
    E(perf_event_open), E(keyctl), E(add_key), E(request_key), E(ptrace), E(process_vm_readv),
    E(process_vm_writev), E(pidfd_getfd), E(kexec_load), E(kexec_file_load), E(init_module),
    E(finit_module), E(delete_module), E(mount), E(umount2), E(pivot_root), E(fsopen), E(fsconfig),
    E(fsmount), E(fspick), E(move_mount), E(open_tree), E(mount_setattr), E(setns),
    E(personality_linux32), E(personality_no_aslr), E(personality_high_bits), E(personality_query),
    E(personality_default), E(clone_newuser), E(clone_newns), E(clone_newnet), E(clone_newpid),
    E(clone_newipc), E(clone_newuts), E(clone_newcgroup), E(clone_fork), E(clone3),
    E(unshare_newuser), E(unshare_newns), E(unshare_newnet), E(unshare_newpid), E(unshare_newipc),
    E(unshare_newuts), E(unshare_newcgroup), E(unshare_newtime), E(unshare_files),
    E(ioctl_tiocsti), E(ioctl_tiocsti_high_bits), E(ioctl_tioclinux), E(ioctl_tioclinux_high_bits),
    E(ioctl_other), E(socket_unix), E(socket_inet), E(socket_inet6), E(socket_netlink_route),
    E(socket_netlink_audit), E(socket_netlink_uevent), E(socket_packet), E(socket_vsock),
    E(socket_alg), E(socket_bluetooth), E(socket_packet_high_bits), E(socketpair_unix),
    E(socketpair_inet), E(i386_abi), E(x32_abi), E(unlisted_chroot), E(unlisted_modify_ldt),
    E(unlisted_lsm_list_modules),
#undef E
};
#define NPROBES (sizeof PROBES / sizeof PROBES[0])

static void report(const struct probe *p) {
  long r = p->run();
  const char *e = r < 0 ? strerrorname_np((int)-r) : NULL;
  if (r >= 0) printf("%s ok\n", p->name);
  else if (-r > SIGNALLED) printf("%s SIG%s\n", p->name, sigabbrev_np((int)(-r - SIGNALLED)));
  else if (e) printf("%s %s\n", p->name, e);
  else printf("%s errno%ld\n", p->name, -r);
  fflush(stdout);
}

int main(int argc, char **argv) {
  if (argc == 1) {
    for (size_t i = 0; i < NPROBES; i++) report(&PROBES[i]);
    return 0;
  }
  for (int a = 1; a < argc; a++) {
    size_t i = 0;
    while (i < NPROBES && strcmp(PROBES[i].name, argv[a]) != 0) i++;
    if (i == NPROBES) {
      fprintf(stderr, "viv-try-syscall: unknown probe '%s'\n", argv[a]);
      return 64;
    }
    report(&PROBES[i]);
  }
  return 0;
}
