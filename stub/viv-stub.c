/* viv-stub: the in-jail forwarder. Installed under each granted capability's name; sends its
 * argv to the broker over /run/vivary/broker.sock (HELLO and CALL back to back), prints the
 * RESULT's stdout and stderr, and exits with its code. It decides nothing: every check lives in
 * the broker. Written in C because it is on every call's path: it must start in well under a
 * millisecond, which a JavaScript runtime cannot. Wire format: lib/frame.ts, vivary-protocol(7).
 * While no broker listens (one is restarting), it retries the connection for a bounded time, and
 * it sends the call again when the connection ends before the broker's WELCOME: the broker takes
 * no effect of a call before it has sent WELCOME (vivary-protocol(7)). After WELCOME it never
 * retries, since the call may have taken effect. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SOCKET_PATH "/run/vivary/broker.sock"
#define PROTOCOL_VERSION 1
#define MAX_FRAME (2u * 1024u * 1024u)
#define MAX_ARGS 4096
#define EX_UNAVAILABLE 69
#define EX_SOFTWARE 70
#define EX_PROTOCOL 76
#define EX_USAGE 64
#define CONNECT_WAIT_MS 10000

static const char *name = "viv-stub";

static void say(const char *what, const char *why) {
    const char *parts[] = {name, ": ", what, ": ", why, "\n"};
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

static void put32(unsigned char *p, uint32_t v) {
    p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
}

static uint32_t get32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void write_all(int fd, const unsigned char *p, size_t n, int code, const char *what) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) die(code, what, strerror(errno));
        p += w;
        n -= (size_t)w;
    }
}

/* The connection ended under us: the peer closed it or reset it. */
static int dropped(int e) {
    return e == EPIPE || e == ECONNRESET;
}

/* Sends n bytes on the socket; -1 with errno set when it fails (without SIGPIPE). */
static int send_all(int fd, const unsigned char *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads n bytes; -1 with errno set on an error, or with errno EPIPE at end of stream. */
static int recv_all(int fd, unsigned char *p, size_t n) {
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) return errno = EPIPE, -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static void read_all(int fd, unsigned char *p, size_t n) {
    if (recv_all(fd, p, n) == 0) return;
    if (errno == EPIPE) die(EX_PROTOCOL, "broker closed the connection", "no result");
    die(EX_UNAVAILABLE, "cannot read from broker", strerror(errno));
}

/* Reads the body of a frame whose length prefix said len; returns it malloc'd. */
static unsigned char *read_body(int fd, uint32_t len) {
    if (len == 0 || len > MAX_FRAME) die(EX_PROTOCOL, "bad frame from broker", "length out of range");
    unsigned char *body = malloc(len);
    if (!body) die(EX_SOFTWARE, "cannot read result", "out of memory");
    read_all(fd, body, len);
    return body;
}

/* Reads one frame; returns its body (malloc'd) and sets *len. */
static unsigned char *read_frame(int fd, uint32_t *len) {
    unsigned char hdr[4];
    read_all(fd, hdr, 4);
    *len = get32(hdr);
    return read_body(fd, *len);
}

/* An ERROR frame (type, exit, message) ends the call with the broker's exit code and message. */
static void refuse_on_error(const unsigned char *f, uint32_t len) {
    if (f[0] != 0x7f) return;
    if (len < 6) die(EX_PROTOCOL, "bad reply from broker", "short error frame");
    uint32_t mlen = get32(f + 2);
    char msg[256];
    size_t m = mlen < sizeof msg - 1 ? mlen : sizeof msg - 1;
    if (m > len - 6) m = len - 6;
    memcpy(msg, f + 6, m);
    msg[m] = 0;
    die(f[1] ? f[1] : EX_PROTOCOL, "refused by broker", msg);
}

static long long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void pause_ms(long *ms) {
    struct timespec pause = {.tv_sec = 0, .tv_nsec = *ms * 1000000L};
    while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {}
    if (*ms < 200) *ms *= 2;
}

/* Connects before the deadline, waiting (5 ms, doubling to 200 ms between tries) while the socket
 * is missing or nobody listens on it: the gap while a broker restarts. */
static int connect_broker(const struct sockaddr_un *addr, long long deadline, long *wait_ms) {
    for (;;) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) die(EX_UNAVAILABLE, "cannot reach broker", strerror(errno));
        if (connect(fd, (const struct sockaddr *)addr, sizeof *addr) == 0) return fd;
        int e = errno;
        close(fd);
        if ((e != ENOENT && e != ECONNREFUSED && e != EAGAIN) || now_ms() >= deadline) die(EX_UNAVAILABLE, "cannot reach broker", strerror(e));
        pause_ms(wait_ms);
    }
}

/* Sends HELLO and CALL and reads the WELCOME. Returns 0 once WELCOME is in; -1 with errno set when
 * the connection ended before it (a broker stopping or crashing): the call had no effect then. */
static int send_call(int fd, const unsigned char *call, size_t n) {
    unsigned char hdr[4], welcome[3];
    if (send_all(fd, call, n) < 0 && !dropped(errno)) die(EX_UNAVAILABLE, "cannot send call", strerror(errno));
    /* Even when the send failed, the broker may have answered with an ERROR before it closed. */
    if (recv_all(fd, hdr, 4) < 0) {
        if (dropped(errno)) return -1;
        die(EX_UNAVAILABLE, "cannot read from broker", strerror(errno));
    }
    uint32_t len = get32(hdr);
    if (len == 3) {
        if (recv_all(fd, welcome, 3) < 0) {
            if (dropped(errno)) return -1;
            die(EX_UNAVAILABLE, "cannot read from broker", strerror(errno));
        }
        if (welcome[0] != 0x02) die(EX_PROTOCOL, "bad reply from broker", "expected welcome");
        return 0;
    }
    /* Not a WELCOME: an ERROR says why; anything else is a broken broker. */
    refuse_on_error(read_body(fd, len), len);
    die(EX_PROTOCOL, "bad reply from broker", "expected welcome");
}

int main(int argc, char **argv) {
    const char *slash = strrchr(argv[0], '/');
    name = slash ? slash + 1 : argv[0];
    if (argc - 1 > MAX_ARGS) die(EX_USAGE, "cannot call", "too many arguments");

    /* HELLO then CALL in one buffer: length, type, payload. */
    size_t need = 4 + 1 + 4 + 2 + 4 + 1 + 4 + strlen(name) + 2;
    for (int i = 1; i < argc; i++) need += 4 + strlen(argv[i]);
    if (need > 11 + 4 + MAX_FRAME) die(EX_USAGE, "cannot call", "arguments exceed the frame limit");
    unsigned char *buf = malloc(need), *p = buf;
    if (!buf) die(EX_SOFTWARE, "cannot call", "out of memory");
    put32(p, 7); p += 4;
    *p++ = 0x01; memcpy(p, "VIVR", 4); p += 4;
    *p++ = PROTOCOL_VERSION >> 8; *p++ = PROTOCOL_VERSION & 0xff;
    unsigned char *call_len = p; p += 4;
    unsigned char *call_start = p;
    *p++ = 0x10;
    size_t n = strlen(name);
    put32(p, (uint32_t)n); p += 4; memcpy(p, name, n); p += n;
    *p++ = (unsigned char)((argc - 1) >> 8); *p++ = (unsigned char)((argc - 1) & 0xff);
    for (int i = 1; i < argc; i++) {
        n = strlen(argv[i]);
        put32(p, (uint32_t)n); p += 4; memcpy(p, argv[i], n); p += n;
    }
    put32(call_len, (uint32_t)(p - call_start));

    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    const char *path = getenv("VIVARY_SOCKET");
    if (!path || !*path) path = SOCKET_PATH;
    if (strlen(path) >= sizeof addr.sun_path) die(EX_USAGE, "cannot reach broker", "socket path too long");
    strcpy(addr.sun_path, path);
    long long deadline = now_ms() + CONNECT_WAIT_MS;
    long wait_ms = 5;
    int fd;
    for (;;) {
        fd = connect_broker(&addr, deadline, &wait_ms);
        if (send_call(fd, buf, (size_t)(p - buf)) == 0) break;
        int e = errno;
        close(fd);
        if (now_ms() >= deadline) die(EX_UNAVAILABLE, "broker closed the connection before its welcome", strerror(e));
        pause_ms(&wait_ms);
    }
    free(buf);

    uint32_t len;
    unsigned char *f = read_frame(fd, &len);
    refuse_on_error(f, len);
    if (f[0] != 0x11 || len < 10) die(EX_PROTOCOL, "bad reply from broker", "expected result");
    int code = f[1];
    uint32_t olen = get32(f + 2);
    if (olen > len - 10) die(EX_PROTOCOL, "bad reply from broker", "stdout length out of range");
    uint32_t elen = get32(f + 6 + olen);
    if ((uint64_t)olen + elen + 10 != len) die(EX_PROTOCOL, "bad reply from broker", "trailing bytes");
    write_all(1, f + 6, olen, EX_SOFTWARE, "cannot write stdout");
    write_all(2, f + 10 + olen, elen, EX_SOFTWARE, "cannot write stderr");
    return code;
}
