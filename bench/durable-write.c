/* durable-write DIR NAME CONTENT: the host baseline as one short-lived process per call, the
 * same durable replace the broker does for fs-file-write (temporary file, fdatasync, rename over
 * DIR/NAME, fsync DIR), so a host shell spawning it compares with a jail shell spawning the stub.
 * Built static, like viv-stub, by bench/run.sh into its temporary directory. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 4) return 64;
    int dir = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) return perror("open dir"), 69;
    char tmp[256];
    snprintf(tmp, sizeof tmp, ".%s.%d.tmp", argv[2], (int)getpid());
    int fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) return perror("open tmp"), 69;
    size_t n = strlen(argv[3]);
    if (write(fd, argv[3], n) != (ssize_t)n) return perror("write"), 69;
    if (fdatasync(fd) != 0) return perror("fdatasync"), 69;
    close(fd);
    if (renameat(dir, tmp, dir, argv[2]) != 0) return perror("rename"), 69;
    if (fsync(dir) != 0) return perror("fsync dir"), 69;
    return 0;
}
