/*
 * Writes the seccomp filter of every jail: a classic BPF program, the raw form `bwrap --seccomp FD`
 * reads, built with libseccomp at build time (build.ts runs this once; the jail never sees it).
 *
 * An allowlist in the style of Docker's default profile: each syscall named in ALLOWED is allowed,
 * every other one fails with ENOSYS, so a syscall a newer kernel adds stays denied until it is
 * named here. The syscalls that give a process more kernel to attack, or another process to
 * reach, are named in DENIED and fail with EPERM. Six are allowed only for some arguments, and
 * fail with EPERM for the others: clone and unshare (no namespace flag), personality (the default
 * only), ioctl (never TIOCSTI or TIOCLINUX) and socket and socketpair (AF_UNIX, AF_INET, AF_INET6,
 * and AF_NETLINK for NETLINK_ROUTE only). clone3 is left out on purpose: its flags are in memory
 * where a filter cannot read them, and its ENOSYS makes the C library fall back to clone.
 * Only the native ABI passes: a 32-bit (int 0x80) or x32 syscall fails with ENOSYS as a whole.
 * No rule kills; a denied call returns an error, so programs degrade instead of dying.
 *
 * libseccomp merges rules of one syscall as a union, and when two rules of different actions
 * match the same arguments the looser wins. So the rules of each argument-checked syscall are
 * made disjoint (split32 below): together they cover every value, each value exactly once.
 *
 * usage: seccomp OUT.bpf     write the program
 *        seccomp --pfc       print it as libseccomp's pseudo filter code
 */
#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Docker's default allowlist (moby/profiles seccomp/default.json: the unconditional rule in its
 * x86_64 names, and arch_prctl, which it allows on x86_64), less ioctl and socketpair (checked
 * below) and modify_ldt (nothing a jail runs needs it). */
static const char *const ALLOWED[] = {
    "accept", "accept4", "access", "adjtimex", "alarm", "arch_prctl", "bind", "brk", "cachestat",
    "capget", "capset", "chdir", "chmod", "chown", "clock_adjtime", "clock_getres",
    "clock_gettime", "clock_nanosleep", "close", "close_range", "connect", "copy_file_range",
    "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old",
    "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve",
    "execveat", "exit", "exit_group", "faccessat", "faccessat2", "fadvise64", "fallocate",
    "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchownat", "fcntl",
    "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr", "fstat",
    "fstatfs", "fsync", "ftruncate", "futex", "futex_requeue", "futex_wait", "futex_waitv",
    "futex_wake", "futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid", "geteuid",
    "getgid", "getgroups", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid",
    "getpriority", "getrandom", "getresgid", "getresuid", "getrlimit", "get_robust_list",
    "getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area", "gettid",
    "gettimeofday", "getuid", "getxattr", "getxattrat", "inotify_add_watch", "inotify_init",
    "inotify_init1", "inotify_rm_watch", "io_cancel", "io_destroy", "io_getevents",
    "io_pgetevents", "ioprio_get", "ioprio_set", "io_setup", "io_submit", "kill",
    "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "lchown",
    "lgetxattr", "link", "linkat", "listen", "listmount", "listxattr", "listxattrat", "llistxattr",
    "lremovexattr", "lseek", "lsetxattr", "lstat", "madvise", "map_shadow_stack", "membarrier",
    "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock",
    "mlock2", "mlockall", "mmap", "mprotect", "mq_getsetattr", "mq_notify", "mq_open",
    "mq_timedreceive", "mq_timedsend", "mq_unlink", "mremap", "mseal", "msgctl", "msgget",
    "msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap", "name_to_handle_at",
    "nanosleep", "newfstatat", "open", "openat", "openat2", "pause", "pidfd_open",
    "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll",
    "ppoll", "prctl", "pread64", "preadv", "preadv2", "prlimit64", "process_mrelease", "pselect6",
    "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv",
    "recvfrom", "recvmmsg", "recvmsg", "remap_file_pages", "removexattr", "removexattrat",
    "rename", "renameat", "renameat2", "restart_syscall", "rmdir", "rseq", "rt_sigaction",
    "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend",
    "rt_sigtimedwait", "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr",
    "sched_getparam", "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
    "sched_rr_get_interval", "sched_setaffinity", "sched_setattr", "sched_setparam",
    "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl", "semget", "semop",
    "semtimedop", "sendfile", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsuid", "setgid",
    "setgroups", "setitimer", "setpgid", "setpriority", "setregid", "setresgid", "setresuid",
    "setreuid", "setrlimit", "set_robust_list", "setsid", "setsockopt", "set_thread_area",
    "set_tid_address", "setuid", "setxattr", "setxattrat", "shmat", "shmctl", "shmdt", "shmget",
    "shutdown", "sigaltstack", "signalfd", "signalfd4", "splice", "stat", "statfs", "statmount",
    "statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs", "sysinfo", "tee",
    "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
    "timer_settime", "timerfd_create", "timerfd_gettime", "timerfd_settime", "times", "tkill",
    "truncate", "umask", "uname", "unlink", "unlinkat", "uretprobe", "utime", "utimensat",
    "utimes", "vfork", "vmsplice", "wait4", "waitid", "write", "writev",
};

/* Denied with EPERM, each for a reason the README gives. */
static const char *const DENIED[] = {
    /* io_uring: IORING_OP_SOCKET and friends act without the syscalls this filter checks */
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    /* in-kernel programs, page-fault handling in user space, performance counters */
    "bpf", "userfaultfd", "perf_event_open",
    /* the kernel keyrings are not namespaced */
    "keyctl", "add_key", "request_key",
    /* reaching into another process */
    "ptrace", "process_vm_readv", "process_vm_writev", "process_madvise", "pidfd_getfd", "kcmp",
    /* a new kernel, kernel modules */
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    /* mounts, old API and new, and joining namespaces */
    "mount", "umount2", "pivot_root", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount",
    "open_tree", "open_tree_attr", "mount_setattr", "setns",
};

/* Syscalls newer than the libseccomp this is built with: their numbers, the same on every
 * architecture but alpha since Linux 5.1 (uretprobe is x86_64's own). */
static const struct {
  const char *name;
  int nr;
} NEWER[] = {
    {"uretprobe", 335},     {"statmount", 457},     {"listmount", 458},  {"mseal", 462},
    {"setxattrat", 463},    {"getxattrat", 464},    {"listxattrat", 465}, {"removexattrat", 466},
    {"open_tree_attr", 467},
};

/* Namespace flags: CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET, and
 * NEWTIME (0x80), which clone's low byte (the exit signal) cannot carry but unshare can. */
#define NS_FLAGS_CLONE 0x7E020000u
#define NS_FLAGS_UNSHARE (NS_FLAGS_CLONE | 0x80u)
#define TIOCSTI_CMD 0x5412u
#define TIOCLINUX_CMD 0x541Cu
#define PERSONALITY_DEFAULT 0x0u  /* PER_LINUX */
#define PERSONALITY_QUERY 0xFFFFFFFFu
#define FAMILY_UNIX 1u
#define FAMILY_INET 2u
#define FAMILY_INET6 10u
#define FAMILY_NETLINK 16u
#define NETLINK_ROUTE_PROTO 0u

#define SKIP 0xFFFFFFFEu /* a split32 value whose rules the caller adds itself */

static scmp_filter_ctx ctx;

static void die(const char *what, int rc) {
  fprintf(stderr, "seccomp: %s: %s\n", what, strerror(rc < 0 ? -rc : rc));
  _exit(1);
}

static int resolve(const char *name) {
  int nr = seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86_64, name);
  if (nr >= 0) return nr;
  for (size_t i = 0; i < sizeof NEWER / sizeof NEWER[0]; i++)
    if (strcmp(NEWER[i].name, name) == 0) return NEWER[i].nr;
  fprintf(stderr, "seccomp: unknown syscall '%s'\n", name);
  _exit(1);
}

static void add(uint32_t action, int nr, unsigned n, const struct scmp_arg_cmp *cmp, const char *what) {
  int rc = seccomp_rule_add_exact_array(ctx, action, nr, n, cmp);
  if (rc < 0) die(what, rc);
}

/*
 * Rules for syscall `nr` on argument `arg`, looking only at the bits of `mask` within its low 32
 * bits (the kernel reads these arguments as 32-bit ints): a value equal (under the mask) to
 * vals[i] gets acts[i], any other value gets `other`. Walks the bits of the mask from the top, as
 * a trie of vals: each branch no value takes becomes one MASKED_EQ rule for `other`, each value
 * one rule for its action, so the rules are disjoint and cover every value. `pre`, when given,
 * is one more comparison (on another argument) that every rule carries.
 */
static void split32(int nr, unsigned arg, uint32_t mask, const uint32_t *vals, const uint32_t *acts, unsigned n,
                    uint32_t other, const struct scmp_arg_cmp *pre, const char *what) {
  struct {
    uint32_t seen, prefix;
  } stack[64];
  unsigned top = 0;
  stack[top].seen = 0, stack[top].prefix = 0, top++;
  while (top > 0) {
    top--;
    uint32_t seen = stack[top].seen, prefix = stack[top].prefix;
    uint32_t rest = mask & ~seen;
    struct scmp_arg_cmp cmp[2];
    unsigned k = 0;
    if (pre) cmp[k++] = *pre;
    if (rest == 0) { /* a leaf: exactly one value */
      for (unsigned i = 0; i < n; i++) {
        if ((vals[i] & mask) != prefix || acts[i] == SKIP) continue;
        cmp[k] = SCMP_CMP(arg, SCMP_CMP_MASKED_EQ, mask, prefix);
        add(acts[i], nr, k + 1, cmp, what);
      }
      continue;
    }
    uint32_t bit = 1u << (31 - __builtin_clz(rest));
    uint32_t now = seen | bit;
    for (uint32_t b = 0; b <= 1; b++) {
      uint32_t p = prefix | (b ? bit : 0);
      int taken = 0;
      for (unsigned i = 0; i < n; i++) taken |= (vals[i] & now) == p;
      if (taken) {
        stack[top].seen = now, stack[top].prefix = p, top++;
      } else {
        cmp[k] = SCMP_CMP(arg, SCMP_CMP_MASKED_EQ, now, p);
        add(other, nr, k + 1, cmp, what);
      }
    }
  }
}

static void build(void) {
  const uint32_t ALLOW = SCMP_ACT_ALLOW, EPERM_ = SCMP_ACT_ERRNO(EPERM);
  ctx = seccomp_init(SCMP_ACT_ERRNO(ENOSYS));
  if (!ctx) die("seccomp_init", ENOMEM);
  /* A syscall of another ABI (i386 through int 0x80, or x32) fails as a whole: its socketcall and
   * ipc multiplexers would hide the arguments the rules below check. */
  int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ERRNO(ENOSYS));
  if (rc < 0) die("bad-arch action", rc);
  rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2); /* a binary tree over syscall numbers */
  if (rc < 0) die("optimize", rc);
  if (seccomp_arch_native() != SCMP_ARCH_X86_64) {
    fprintf(stderr, "seccomp: the jail filter is written for x86_64 only\n");
    _exit(1);
  }

  for (size_t i = 0; i < sizeof ALLOWED / sizeof ALLOWED[0]; i++) add(ALLOW, resolve(ALLOWED[i]), 0, NULL, ALLOWED[i]);
  for (size_t i = 0; i < sizeof DENIED / sizeof DENIED[0]; i++) add(EPERM_, resolve(DENIED[i]), 0, NULL, DENIED[i]);

  const uint32_t zero[] = {0}, allow1[] = {ALLOW};
  /* clone and unshare without any namespace flag */
  split32(resolve("clone"), 0, NS_FLAGS_CLONE, zero, allow1, 1, EPERM_, NULL, "clone");
  split32(resolve("unshare"), 0, NS_FLAGS_UNSHARE, zero, allow1, 1, EPERM_, NULL, "unshare");
  /* personality: the default, or the query that changes nothing */
  const uint32_t pers[] = {PERSONALITY_DEFAULT, PERSONALITY_QUERY}, pers_acts[] = {ALLOW, ALLOW};
  split32(resolve("personality"), 0, 0xFFFFFFFFu, pers, pers_acts, 2, EPERM_, NULL, "personality");
  /* ioctl: anything but TIOCSTI and TIOCLINUX, compared on the 32 bits the kernel reads
   * (CVE-2019-10063: a 64-bit comparison let TIOCSTI with high bits set through) */
  const uint32_t tio[] = {TIOCSTI_CMD, TIOCLINUX_CMD}, tio_acts[] = {EPERM_, EPERM_};
  split32(resolve("ioctl"), 1, 0xFFFFFFFFu, tio, tio_acts, 2, ALLOW, NULL, "ioctl");
  /* socket: local, IPv4 and IPv6; netlink for the routing family only (reads of the jail's own
   * network namespace, which holds loopback alone; changing it needs CAP_NET_ADMIN there) */
  const uint32_t fam[] = {FAMILY_UNIX, FAMILY_INET, FAMILY_INET6, FAMILY_NETLINK}, fam_acts[] = {ALLOW, ALLOW, ALLOW, SKIP};
  split32(resolve("socket"), 0, 0xFFFFFFFFu, fam, fam_acts, 4, EPERM_, NULL, "socket");
  const struct scmp_arg_cmp netlink = SCMP_CMP(0, SCMP_CMP_MASKED_EQ, 0xFFFFFFFFu, FAMILY_NETLINK);
  const uint32_t route[] = {NETLINK_ROUTE_PROTO};
  split32(resolve("socket"), 2, 0xFFFFFFFFu, route, allow1, 1, EPERM_, &netlink, "socket netlink");
  /* socketpair: AF_UNIX only */
  const uint32_t unix_[] = {FAMILY_UNIX};
  split32(resolve("socketpair"), 0, 0xFFFFFFFFu, unix_, allow1, 1, EPERM_, NULL, "socketpair");
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: seccomp OUT.bpf | --pfc\n");
    return 64;
  }
  build();
  if (strcmp(argv[1], "--pfc") == 0) {
    int rc = seccomp_export_pfc(ctx, 1);
    if (rc < 0) die("export", rc);
    return 0;
  }
  /* Written beside the target and renamed over it: a failed build leaves no partial filter. */
  char tmp[4096];
  if (snprintf(tmp, sizeof tmp, "%s.tmp", argv[1]) >= (int)sizeof tmp) die(argv[1], ENAMETOOLONG);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) die(tmp, errno);
  int rc = seccomp_export_bpf(ctx, fd);
  if (rc < 0) unlink(tmp), die("export", rc);
  if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, argv[1]) != 0) unlink(tmp), die(argv[1], errno);
  return 0;
}
