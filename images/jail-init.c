/*
 * The first process of an nspawn jail (broker/jail-nspawn.ts): it does inside the container what
 * bwrap does for its own jail, so both backends give the agent the same view and the same limits.
 * systemd-nspawn starts it as the container's PID 1, as the container's root (which
 * --private-users maps onto the agent's host uid), with NoNewPrivs set and one capability,
 * CAP_SETFCAP: the kernel lets a process map a new user namespace onto its parent's root only if
 * it held that one when it made the namespace. It
 *   1. reads the seccomp filter (the BPF program of images/seccomp.c) from an fd and closes every
 *      fd but stdin, stdout and stderr (nspawn hands both this program and the filter over as
 *      socket-activation fds, so neither is a file the agent can see);
 *   2. enters a new user namespace that maps the jail's user (uid and gid 1000) onto the
 *      container's root, so the agent is `agent` as under bwrap and still the same host uid,
 *      and a new mount namespace, in which it
 *   3. lays out /dev (null zero full random urandom tty, a private devpts, fd links, a bounded
 *      /dev/shm), /run (only /run/vivary: nspawn's /run/host and its notify socket are hidden),
 *      a bounded /tmp and an empty /sys, then makes /dev and /run read-only;
 *   4. drops every capability (bounding set included: a new user namespace gives them all back),
 *      sets NoNewPrivs, rebuilds the environment from its arguments, installs the filter, and
 *   5. dies with systemd-nspawn (PR_SET_PDEATHSIG), forks the command in a new session and
 *      waits for it as an init does: reaping orphans, and exiting with the command's status
 *      (128+N for a signal) as soon as it ends, which ends every process left in the jail's
 *      PID namespace.
 * Any failure before the command runs exits 69 with one line on stderr: no jail starts weakened.
 *
 * usage: viv-jail-init --uid N --gid N --tmp-bytes N [--seccomp FD] [--setenv K V]...
 *                      --chdir DIR -- CMD [ARG...]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define EX_UNAVAILABLE 69
#define MAX_FILTER (64 * 1024)

static void die(const char *fmt, ...) {
  va_list ap;
  int e = errno;
  fputs("viv-jail-init: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  if (e) fprintf(stderr, ": %s", strerror(e));
  fputc('\n', stderr);
  _exit(EX_UNAVAILABLE);
}

static void write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) die("cannot open '%s'", path);
  ssize_t n = write(fd, text, strlen(text));
  if (n != (ssize_t)strlen(text)) die("cannot write '%s'", path);
  close(fd);
}

static void do_mount(const char *src, const char *dst, const char *type, unsigned long flags, const char *data) {
  errno = 0;
  if (mount(src, dst, type, flags, data) < 0) die("cannot mount '%s' on '%s'", src ? src : "(none)", dst);
}

static void make_dir(const char *path, mode_t mode) {
  errno = 0;
  if (mkdir(path, mode) < 0 && errno != EEXIST) die("cannot create '%s'", path);
  errno = 0;
}

static void make_link(const char *target, const char *path) {
  errno = 0;
  if (symlink(target, path) < 0) die("cannot link '%s'", path);
}

/* The filter, read whole from fd: a classic BPF program of at most MAX_FILTER bytes. */
static struct sock_fprog read_filter(int fd) {
  static unsigned char buf[MAX_FILTER];
  size_t len = 0;
  for (;;) {
    ssize_t n = read(fd, buf + len, sizeof buf - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die("cannot read the seccomp filter from fd %d", fd);
    if (n == 0) break;
    len += (size_t)n;
    if (len == sizeof buf) die("the seccomp filter on fd %d is too large", fd);
  }
  errno = 0;
  if (len == 0 || len % sizeof(struct sock_filter) != 0) die("the seccomp filter on fd %d is not a BPF program (%zu bytes)", fd, len);
  struct sock_fprog prog = {.len = (unsigned short)(len / sizeof(struct sock_filter)), .filter = (struct sock_filter *)buf};
  return prog;
}

/* The jail's user namespace: JAIL uid and gid onto the container's root (our own ids). */
static void enter_namespaces(unsigned uid, unsigned gid) {
  char map[64];
  errno = 0;
  if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) die("cannot create the jail's user and mount namespaces");
  write_file("/proc/self/setgroups", "deny");
  snprintf(map, sizeof map, "%u 0 1\n", uid);
  write_file("/proc/self/uid_map", map);
  snprintf(map, sizeof map, "%u 0 1\n", gid);
  write_file("/proc/self/gid_map", map);
}

/* /dev, /run, /tmp and /sys as bwrap lays them out; nspawn's originals are covered for good. */
static void lay_out(const char *tmp_bytes) {
  static const char *const DEVICES[] = {"null", "zero", "full", "random", "urandom", "tty"};
  char opts[128], src[64], dst[64];
  const unsigned long quiet = MS_NOSUID | MS_NODEV | MS_NOEXEC;
  do_mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
  /* Keep what the new /dev and /run need under nspawn's /tmp, which a new /tmp covers last. */
  make_dir("/tmp/.viv", 0700);
  make_dir("/tmp/.viv/dev", 0700);
  make_dir("/tmp/.viv/run", 0700);
  do_mount("/dev", "/tmp/.viv/dev", NULL, MS_BIND | MS_REC, NULL);
  do_mount("/run/vivary", "/tmp/.viv/run", NULL, MS_BIND | MS_REC, NULL);

  do_mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k");
  for (size_t i = 0; i < sizeof DEVICES / sizeof *DEVICES; i++) {
    snprintf(src, sizeof src, "/tmp/.viv/dev/%s", DEVICES[i]);
    snprintf(dst, sizeof dst, "/dev/%s", DEVICES[i]);
    int fd = open(dst, O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
    if (fd < 0) die("cannot create '%s'", dst);
    close(fd);
    do_mount(src, dst, NULL, MS_BIND, NULL);
  }
  make_dir("/dev/pts", 0755);
  do_mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620");
  make_link("pts/ptmx", "/dev/ptmx");
  make_link("/proc/self/fd", "/dev/fd");
  make_link("/proc/self/fd/0", "/dev/stdin");
  make_link("/proc/self/fd/1", "/dev/stdout");
  make_link("/proc/self/fd/2", "/dev/stderr");
  make_link("/proc/kcore", "/dev/core");
  make_dir("/dev/shm", 01777);
  snprintf(opts, sizeof opts, "mode=1777,size=%s", tmp_bytes);
  do_mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, opts);

  do_mount("tmpfs", "/run", "tmpfs", quiet, "mode=0755,size=64k");
  make_dir("/run/vivary", 0755);
  do_mount("/tmp/.viv/run", "/run/vivary", NULL, MS_BIND | MS_REC, NULL);

  errno = 0;
  if (umount2("/tmp/.viv/dev", MNT_DETACH) < 0 || umount2("/tmp/.viv/run", MNT_DETACH) < 0) die("cannot release the old /dev and /run");
  do_mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, opts);
  do_mount("tmpfs", "/sys", "tmpfs", quiet | MS_RDONLY, "mode=0555,size=4k,nr_inodes=1");

  do_mount(NULL, "/dev", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC, NULL);
  do_mount(NULL, "/run", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | quiet, NULL);
}

/* Every capability gone: bounding set, ambient, inheritable, permitted, effective. */
static void drop_capabilities(void) {
  for (int c = 0; c <= 63; c++) {
    if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL) die("cannot drop capability %d from the bounding set", c);
  }
  errno = 0;
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0) die("cannot clear the ambient capabilities");
  struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct d[2];
  memset(d, 0, sizeof d);
  if (syscall(SYS_capset, &h, d) < 0) die("cannot drop capabilities");
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) die("cannot set NoNewPrivs");
}

static int status_of(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return 1;
}

static const char *value(int argc, char **argv, int *i) {
  if (*i + 1 >= argc) {
    errno = 0;
    die("'%s' needs a value", argv[*i]);
  }
  return argv[++*i];
}

int main(int argc, char **argv) {
  unsigned uid = 0, gid = 0;
  const char *tmp_bytes = NULL, *dir = NULL;
  int filter_fd = -1, i;
  char **env = calloc((size_t)argc + 1, sizeof *env);
  size_t nenv = 0;
  if (!env) die("out of memory");
  for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--uid")) uid = (unsigned)strtoul(value(argc, argv, &i), NULL, 10);
    else if (!strcmp(a, "--gid")) gid = (unsigned)strtoul(value(argc, argv, &i), NULL, 10);
    else if (!strcmp(a, "--tmp-bytes")) tmp_bytes = value(argc, argv, &i);
    else if (!strcmp(a, "--seccomp")) filter_fd = atoi(value(argc, argv, &i));
    else if (!strcmp(a, "--chdir")) dir = value(argc, argv, &i);
    else if (!strcmp(a, "--setenv")) {
      const char *k = value(argc, argv, &i), *v = value(argc, argv, &i);
      if (asprintf(&env[nenv++], "%s=%s", k, v) < 0) die("out of memory");
    } else {
      errno = 0;
      die("unknown option '%s'", a);
    }
  }
  errno = 0;
  if (i + 1 >= argc || !uid || !gid || !tmp_bytes || !dir || strspn(tmp_bytes, "0123456789") != strlen(tmp_bytes))
    die("usage: viv-jail-init --uid N --gid N --tmp-bytes N [--seccomp FD] [--setenv K V]... --chdir DIR -- CMD [ARG...]");
  char **cmd = argv + i + 1;

  prctl(PR_SET_NAME, "viv-jail-init", 0, 0, 0);
  struct sock_fprog prog = {0};
  if (filter_fd >= 0) prog = read_filter(filter_fd);
  if (syscall(SYS_close_range, 3, ~0U, 0) < 0) die("cannot close inherited fds");
  enter_namespaces(uid, gid);
  lay_out(tmp_bytes);
  errno = 0;
  if (chdir(dir) < 0) die("cannot enter '%s'", dir);
  drop_capabilities();
  /* Dies with systemd-nspawn (set last: a change of credentials clears it). */
  errno = 0;
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) die("cannot set the parent-death signal");
  if (filter_fd >= 0 && syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0) die("cannot install the seccomp filter");

  pid_t child = fork();
  if (child < 0) die("cannot fork");
  if (child == 0) {
    setsid();
    environ = env;
    execvp(cmd[0], cmd);
    fprintf(stderr, "viv-jail-init: cannot run '%s': %s\n", cmd[0], strerror(errno));
    _exit(errno == ENOENT ? 127 : 126);
  }
  for (;;) {
    int st;
    pid_t p = waitpid(-1, &st, 0);
    if (p == child) return status_of(st);
    if (p < 0 && errno == ECHILD) return 1;
  }
}
