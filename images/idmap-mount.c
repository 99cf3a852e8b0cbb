/*
 * Makes the idmapped mount through which a jail sees a workspace its operator owns
 * (`workspace "PATH" owner="keep"`), and removes it. Debian 12's mount(8) cannot (util-linux
 * 2.38 has no X-mount.idmap), so root runs this small program:
 *
 *   viv-idmap-mount mount SRC DST TO_UID TO_GID
 *     clones the tree at SRC (open_tree OPEN_TREE_CLONE|AT_RECURSIVE), reads its owner OWNER:GROUP
 *     from the clone itself (so what is mapped is what is mounted, whatever SRC names by then),
 *     idmaps the clone with a user namespace whose only lines are "OWNER TO_UID 1" and
 *     "GROUP TO_GID 1" (mount_setattr MOUNT_ATTR_IDMAP, with nosuid, nodev, private propagation),
 *     and attaches it at DST (move_mount), an empty directory.
 *   viv-idmap-mount unmount DST
 *     detaches every mount stacked at DST (umount2 MNT_DETACH|UMOUNT_NOFOLLOW); none is not an error.
 *
 * The direction: a mount's idmapping sends the id a file has on disk (the namespace's inside id)
 * to the id the caller sees and acts as (its outside id). Through the mount, OWNER's files are
 * TO_UID's, and a file TO_UID creates is OWNER's on disk. Every other uid and gid is unmapped:
 * its files show as the overflow id (nobody) and TO_UID gets only "other" rights on them; a
 * caller whose own ids are unmapped cannot create anything there (EOVERFLOW).
 *
 * Refusals, one line on stderr: 78 (config) for a tree the kernel cannot idmap (its filesystem
 * lacks idmapped-mount support, or a mount below it does), for a source that is not a directory,
 * or that root owns (uid 0 or gid 0: the agent would create root's files); 69 (unavailable) for a
 * kernel without the new mount API or idmapped mounts; 64 for bad usage; 71 for anything else.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define EX_USAGE 64
#define EX_UNAVAILABLE 69
#define EX_OSERR 71
#define EX_CONFIG 78

static void die(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("viv-idmap-mount: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(code);
}

static unsigned long id_arg(const char *s, const char *what) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno || *s == '\0' || *end != '\0' || v >= 4294967295UL) die(EX_USAGE, "%s '%s' is not a number", what, s);
  return v;
}

static void write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) die(EX_OSERR, "cannot open '%s': %s", path, strerror(errno));
  ssize_t n = write(fd, text, strlen(text));
  if (n != (ssize_t)strlen(text)) die(EX_OSERR, "cannot write '%s': %s", path, strerror(errno));
  close(fd);
}

/*
 * A user namespace fd mapping uid `from` to `to` and gid `gfrom` to `gto`, one id each. A child
 * unshares it (this process stays in its own), waits while root writes its maps, and exits.
 */
static int idmap_userns(unsigned long from, unsigned long to, unsigned long gfrom, unsigned long gto) {
  int ready[2], hold[2];
  if (pipe2(ready, O_CLOEXEC) || pipe2(hold, O_CLOEXEC)) die(EX_OSERR, "pipe: %s", strerror(errno));
  pid_t pid = fork();
  if (pid < 0) die(EX_OSERR, "fork: %s", strerror(errno));
  if (pid == 0) {
    char c = unshare(CLONE_NEWUSER) == 0 ? 'y' : 'n';
    if (write(ready[1], &c, 1) != 1) _exit(1);
    close(hold[1]);
    (void)read(hold[0], &c, 1); /* returns when the parent closes its end, or dies */
    _exit(0);
  }
  close(ready[1]);
  close(hold[0]);
  char c = 0;
  if (read(ready[0], &c, 1) != 1 || c != 'y') {
    waitpid(pid, NULL, 0);
    die(EX_UNAVAILABLE, "cannot create a user namespace for the idmapping");
  }
  char path[64], line[64];
  snprintf(path, sizeof path, "/proc/%d/uid_map", (int)pid);
  snprintf(line, sizeof line, "%lu %lu 1\n", from, to);
  write_file(path, line);
  snprintf(path, sizeof path, "/proc/%d/gid_map", (int)pid);
  snprintf(line, sizeof line, "%lu %lu 1\n", gfrom, gto);
  write_file(path, line);
  snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die(EX_OSERR, "cannot open '%s': %s", path, strerror(errno));
  close(hold[1]);
  close(ready[0]);
  waitpid(pid, NULL, 0);
  return fd;
}

static int do_mount(const char *src, const char *dst, unsigned long to, unsigned long gto) {
  if (to == 0 || gto == 0) die(EX_USAGE, "will not map a workspace onto root");
  int tree = open_tree(AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
  if (tree < 0) {
    if (errno == ENOSYS) die(EX_UNAVAILABLE, "this kernel has no open_tree(2) (idmapped mounts need Linux 5.12 or later)");
    die(errno == ENOENT || errno == ENOTDIR ? EX_CONFIG : EX_OSERR, "cannot open '%s': %s", src, strerror(errno));
  }
  struct stat st;
  if (fstat(tree, &st)) die(EX_OSERR, "cannot stat '%s': %s", src, strerror(errno));
  if (!S_ISDIR(st.st_mode)) die(EX_CONFIG, "'%s' is not a directory", src);
  if (st.st_uid == 0 || st.st_gid == 0)
    die(EX_CONFIG, "'%s' belongs to %u:%u; a workspace of root's (uid or gid 0) cannot be lent to an agent", src, st.st_uid, st.st_gid);
  int ns = idmap_userns(st.st_uid, to, st.st_gid, gto);
  struct mount_attr attr = {
      .attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
      .userns_fd = (unsigned long)ns,
      .propagation = MS_PRIVATE,
  };
  if (mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr)) {
    if (errno == ENOSYS) die(EX_UNAVAILABLE, "this kernel has no mount_setattr(2) (idmapped mounts need Linux 5.12 or later)");
    if (errno == EINVAL)
      die(EX_CONFIG, "its filesystem, or one mounted below it, does not support idmapped mounts (%s)", strerror(errno));
    die(EX_OSERR, "cannot idmap '%s': %s", src, strerror(errno));
  }
  close(ns);
  if (move_mount(tree, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH))
    die(EX_OSERR, "cannot attach the idmapped '%s' at '%s': %s", src, dst, strerror(errno));
  close(tree);
  printf("%u %u\n", st.st_uid, st.st_gid);
  return 0;
}

static int do_unmount(const char *dst) {
  for (int i = 0; i < 64; i++) {
    if (umount2(dst, MNT_DETACH | UMOUNT_NOFOLLOW) == 0) continue;
    if (errno == EINVAL || errno == ENOENT) return 0; /* nothing (more) mounted there */
    die(EX_OSERR, "cannot unmount '%s': %s", dst, strerror(errno));
  }
  die(EX_OSERR, "cannot unmount '%s': still mounted after 64 unmounts", dst);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 6 && strcmp(argv[1], "mount") == 0)
    return do_mount(argv[2], argv[3], id_arg(argv[4], "uid"), id_arg(argv[5], "gid"));
  if (argc == 3 && strcmp(argv[1], "unmount") == 0) return do_unmount(argv[2]);
  die(EX_USAGE, "usage: viv-idmap-mount mount SRC DST TO_UID TO_GID | unmount DST");
}
