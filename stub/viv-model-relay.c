/* viv-model-relay: the jail's model endpoint. A jail has no network, only its own loopback, and
 * model clients speak HTTP over TCP; so when an agent has model access, viv run starts its
 * command behind this relay: it listens on 127.0.0.1:PORT inside the jail, starts the command,
 * and copies the bytes of each connection to and from the agent's model socket (a Unix socket
 * the broker serves, bound into the jail at /run/vivary/model.sock), one process per
 * connection, both directions, half-closes passed on. It exits with the command's status. It
 * understands nothing of HTTP and decides nothing: every check lives in the broker, which knows
 * the agent by the socket. Written in C like viv-stub: no runtime to put in the jail.
 *
 * usage: viv-model-relay PORT SOCKET -- COMMAND [ARG...] */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EX_USAGE 64
#define EX_UNAVAILABLE 69
#define CONNECT_WAIT_MS 10000
#define BUF 65536

static void say(const char *what, const char *why) {
    const char *parts[] = {"viv-model-relay: ", what, ": ", why, "\n"};
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
        size_t n = strlen(parts[i]);
        while (n > 0) {
            ssize_t w = write(2, parts[i], n);
            if (w <= 0) return;
            parts[i] += w;
            n -= (size_t)w;
        }
    }
}

static _Noreturn void die(int code, const char *what, const char *why) {
    say(what, why);
    _exit(code);
}

static int wake[2];
static pid_t command = -1;

static void on_child(int sig) {
    (void)sig;
    int e = errno;
    (void)!write(wake[1], "c", 1);
    errno = e;
}

static void on_term(int sig) {
    if (command > 0) kill(command, sig);
}

static int connect_broker(const char *path) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof a.sun_path) die(EX_USAGE, "socket path too long", path);
    strcpy(a.sun_path, path);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) die(EX_UNAVAILABLE, "socket", strerror(errno));
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) return fd;
        int e = errno;
        close(fd);
        clock_gettime(CLOCK_MONOTONIC, &now);
        long ms = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if ((e != ENOENT && e != ECONNREFUSED) || ms >= CONNECT_WAIT_MS) die(EX_UNAVAILABLE, "cannot reach the model endpoint", strerror(e));
        struct timespec pause = {0, 50 * 1000000L};
        nanosleep(&pause, NULL);
    }
}

static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Copies both ways until both sides have ended. */
static _Noreturn void relay(int client, const char *path) {
    int broker = connect_broker(path);
    int fds[2] = {client, broker};
    int open_in[2] = {1, 1};
    static char buf[BUF];
    while (open_in[0] || open_in[1]) {
        struct pollfd p[2];
        int n = 0, which[2];
        for (int i = 0; i < 2; i++)
            if (open_in[i]) {
                p[n] = (struct pollfd){.fd = fds[i], .events = POLLIN};
                which[n++] = i;
            }
        if (poll(p, (nfds_t)n, -1) < 0) {
            if (errno == EINTR) continue;
            _exit(1);
        }
        for (int k = 0; k < n; k++) {
            if (!(p[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            int i = which[k];
            ssize_t r = read(fds[i], buf, sizeof buf);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) {
                open_in[i] = 0;
                shutdown(fds[1 - i], SHUT_WR);
                continue;
            }
            if (write_all(fds[1 - i], buf, (size_t)r) < 0) _exit(1);
        }
    }
    _exit(0);
}

int main(int argc, char **argv) {
    if (argc < 5 || strcmp(argv[3], "--") != 0) die(EX_USAGE, "usage", "viv-model-relay PORT SOCKET -- COMMAND [ARG...]");
    char *end;
    long port = strtol(argv[1], &end, 10);
    if (*end || port < 1 || port > 65535) die(EX_USAGE, "not a port", argv[1]);
    const char *path = argv[2];

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0) die(EX_UNAVAILABLE, "socket", strerror(errno));
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0) die(EX_UNAVAILABLE, "cannot listen on 127.0.0.1", strerror(errno));
    if (listen(lfd, 64) < 0) die(EX_UNAVAILABLE, "listen", strerror(errno));

    if (pipe2(wake, O_CLOEXEC | O_NONBLOCK) < 0) die(EX_UNAVAILABLE, "pipe", strerror(errno));
    struct sigaction sa = {.sa_handler = on_child};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGCHLD, &sa, NULL);
    struct sigaction st = {.sa_handler = on_term};
    sigemptyset(&st.sa_mask);
    sigaction(SIGTERM, &st, NULL);
    sigaction(SIGINT, &st, NULL);
    sigaction(SIGHUP, &st, NULL);

    command = fork();
    if (command < 0) die(EX_UNAVAILABLE, "fork", strerror(errno));
    if (command == 0) {
        signal(SIGCHLD, SIG_DFL);
        execvp(argv[4], argv + 4);
        say(argv[4], strerror(errno));
        _exit(errno == ENOENT ? 127 : 126);
    }

    for (;;) {
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            if (pid != command) continue;
            if (WIFEXITED(status)) _exit(WEXITSTATUS(status));
            _exit(128 + WTERMSIG(status));
        }
        struct pollfd p[2] = {{.fd = lfd, .events = POLLIN}, {.fd = wake[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue;
            die(EX_UNAVAILABLE, "poll", strerror(errno));
        }
        if (p[1].revents) {
            char drain[64];
            while (read(wake[0], drain, sizeof drain) > 0) {}
        }
        if (!(p[0].revents & POLLIN)) continue;
        int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) continue;
        pid_t h = fork();
        if (h == 0) {
            signal(SIGCHLD, SIG_DFL);
            close(lfd);
            relay(c, path);
        }
        close(c);
    }
}
