/* tests/check_net.c: streams, listeners, serve_tcp, name resolution and
 * open_tcp_stream with happy eyeballs, over loopback (127.0.0.x, ::1)
 * only. Built once per backend. Ports are always picked by the kernel
 * (0, read back), so parallel runs never collide. Every test runs under a
 * 20 s FAIL_AFTER; the real-time waits are tens of ms, but for the
 * default happy-eyeballs delay (250 ms) and the SYN retransmits that
 * three cases wait for (about 1 s each: accepts late, custom delay, slow
 * fail). Clients that need many fds or their own fd limit run in a forked
 * child with plain blocking sockets, which also makes them independent of
 * the code under test. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "iotest.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#define DEADLINE PTRIO_SEC(20)

static int port;            /* the test server's */

static void setup(void)
{
    tlog_clear(&L);
    signal(SIGPIPE, SIG_DFL);   /* ptrio must never raise it */
}

/* Open fds of this process (from /proc/self/fd). */
static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;   /* the directory's own fd */
}

/* ---- an echo server on serve_tcp -------------------------------------- */

#define NSLOTS 1024

struct echo_client {
    ptrio_frame fr;
    ptrio_conn conn;
    char buf[256];
    int n;
};

static struct echo_client clients[NSLOTS];
static ptrio_server srv;
static int live, peak, once;    /* handlers running, their peak */
static int handler_rc;          /* the last receive error a handler saw */

/* Echoes until end of stream ("fail" makes it raise; `once`: one echo). */
static int echo(ptrio_frame *fr)
{
    struct echo_client *c = PTRIO_SELF(fr, struct echo_client);
    PTRIO_BEGIN(c);
    if (++live > peak)
        peak = live;
    for (;;) {
        PTRIO_TRY(c, c->n, ptrio_stream_receive_some(c, &c->conn.stream,
                                                     c->buf, sizeof c->buf));
        if (c->n < 0) {
            if (!handler_rc)
                handler_rc = c->n;      /* the first one */
            PTRIO_CHECK(c, c->n);
        }
        if (c->n == 0)
            break;
        if (c->n >= 4 && memcmp(c->buf, "fail", 4) == 0)
            PTRIO_RAISE(c, -PTRIO_EIO, "the client asked me to fail");
        PTRIO_AWAIT(c, ptrio_stream_send_all(c, &c->conn.stream, c->buf,
                                             (size_t)c->n));
        if (once)
            break;
    }
    PTRIO_FINALLY(c);
    live--;
    PTRIO_END(c);
}

/* Runs `body` (a coroutine over `frame`) while the echo server runs, then
 * stops the server. */
struct with_server {
    ptrio_frame fr;
    ptrio_scope deadline;
    ptrio_nursery n;
    ptrio_task st;
    ptrio_fn body;
    ptrio_frame *frame;
};

static int with_server(ptrio_frame *fr)
{
    struct with_server *w = PTRIO_SELF(fr, struct with_server);
    PTRIO_BEGIN(w);
    PTRIO_FAIL_AFTER(w, &w->deadline, DEADLINE) {
        PTRIO_NURSERY(w, &w->n) {
            PTRIO_CHECK(w, ptrio_server_init(&srv, "127.0.0.1", 0, echo,
                                             PTRIO_SERVER_SLOTS(clients, conn)));
            PTRIO_AWAIT(w, ptrio_start(w, &w->n, &w->st, ptrio_serve_tcp, &srv,
                                       NULL));
            port = ptrio_server_port(&srv);
            ck_assert_int_gt(port, 0);
            PTRIO_CALL(w, w->body, w->frame);
            ptrio_nursery_cancel(&w->n);
        }
    }
    PTRIO_END(w);
}

static int run_with_server(ptrio_fn body, void *frame)
{
    static struct with_server W;
    int rc;
    live = peak = once = 0;
    handler_rc = 0;
    memset(&W, 0, sizeof W);
    W.body = body;
    W.frame = frame;
    rc = run_io(with_server, &W);
    if (rc < 0)
        fprintf(stderr, "run_with_server: %s: %s\n", ptrio_errname(rc),
                io_rep.lines.buf);
    ck_assert_uint_eq(io_loop.nwatch, 0);
    return rc;
}

/* ---- echo round trips ------------------------------------------------ */

struct rt {
    ptrio_frame fr;
    ptrio_tcp_connect c;
    ptrio_stream s;
    char out[64], in[64];
    size_t got;
    int i, n, rounds;
    const char *host;
};

/* Connects, then `rounds` 64-byte round trips, checking every byte. */
static int rt(ptrio_frame *fr)
{
    struct rt *r = PTRIO_SELF(fr, struct rt);
    int k;
    PTRIO_BEGIN(r);
    PTRIO_AWAIT(r, ptrio_open_tcp_stream(r, &r->c, &r->s,
                                         r->host ? r->host : "127.0.0.1", port));
    for (r->i = 0; r->i < r->rounds; r->i++) {
        for (k = 0; k < 64; k++)
            r->out[k] = (char)(r->i * 7 + k);
        PTRIO_AWAIT(r, ptrio_stream_send_all(r, &r->s, r->out, 64));
        for (r->got = 0; r->got < 64; r->got += (size_t)r->n) {
            PTRIO_AWAIT(r, ptrio_stream_receive_some(r, &r->s, r->in + r->got,
                                                     64 - r->got));
            r->n = PTRIO_RESULT(r);
            ck_assert_int_gt(r->n, 0);
        }
        ck_assert_int_eq(memcmp(r->in, r->out, 64), 0);
    }
    PTRIO_FINALLY(r);
    ptrio_stream_close(&r->s);
    PTRIO_END(r);
}

/* 200 round trips through serve_tcp's echo handler, by IP and by name
 * ("localhost": resolved on a worker thread). */
START_TEST(test_echo_round_trips)
{
    static struct rt R[2];
    unsigned long accepted;
    int i;

    for (i = 0; i < 2; i++) {
        memset(&R[i], 0, sizeof R[i]);
        R[i].rounds = 200;
        R[i].host = i ? "localhost" : "127.0.0.1";
        ck_assert_int_eq(run_with_server(rt, &R[i]), 0);
        accepted = ptrio_server_stats(&srv, NULL, NULL);
        ck_assert_uint_eq(accepted, 1);
        ck_assert_int_eq(ptrio_stream_fd(&R[i].s), -1);
    }
    ck_assert_int_eq(io_rep.count, 0);
}
END_TEST

/* ---- a forked client with plain sockets ---------------------------------- */

typedef int (*child_fn)(void);

struct child {
    ptrio_frame fr;
    child_fn fn;
    void (*after_fork)(void);   /* in the parent, once the pipe exists */
    pid_t pid;
    int done;       /* read end: the child's status byte, or EOF */
    char status;
};

/* Forks the client; the loop waits for its status byte. */
static int child(ptrio_frame *fr)
{
    struct child *c = PTRIO_SELF(fr, struct child);
    int p[2], st;
    PTRIO_BEGIN(c);
    ck_assert_int_eq(pipe(p), 0);
    c->pid = fork();
    ck_assert_int_ge(c->pid, 0);
    if (c->pid == 0) {
        char rc;
        close(p[0]);
        rc = (char)c->fn();
        if (write(p[1], &rc, 1) != 1)
            _exit(3);
        _exit(rc ? 1 : 0);
    }
    close(p[1]);
    c->done = p[0];
    c->status = 9;
    if (c->after_fork)
        c->after_fork();
    PTRIO_AWAIT(c, ptrio_wait_readable(c, c->done));
    if (read(c->done, &c->status, 1) != 1)
        c->status = 8;
    close(c->done);
    waitpid(c->pid, &st, 0);
    PTRIO_END(c);
}

static int dial(const char *ip, int p)
{
    struct sockaddr_in a;
    struct timeval tv = {10, 0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)p);
    inet_pton(AF_INET, ip, &a.sin_addr);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int read_full(int fd, char *buf, int n)
{
    int got = 0, k;
    while (got < n && (k = (int)read(fd, buf + got, (size_t)(n - got))) > 0)
        got += k;
    return got;
}

#define NCONN 1000

/* 1,000 connections open at once: connect all, send on all, then read
 * every echo back. */
static int thousand(void)
{
    static int fd[NCONN];
    char out[64], in[64];
    int i, k;

    for (i = 0; i < NCONN; i++)
        if ((fd[i] = dial("127.0.0.1", port)) < 0)
            return 10;
    for (i = 0; i < NCONN; i++) {
        for (k = 0; k < 64; k++)
            out[k] = (char)(i + k);
        if (write(fd[i], out, 64) != 64)
            return 11;
    }
    for (i = 0; i < NCONN; i++) {
        for (k = 0; k < 64; k++)
            out[k] = (char)(i + k);
        if (read_full(fd[i], in, 64) != 64 || memcmp(in, out, 64) != 0)
            return 12;
    }
    for (i = 0; i < NCONN; i++)
        close(fd[i]);
    return 0;
}

/* Trio: test_highlevel_serve_listeners.py::test_serve_listeners_basic,
 * at scale: 1,000 concurrent connections, one handler task each, all
 * alive at once, every byte echoed. On select too: the server side holds
 * about 1,010 fds, under FD_SETSIZE. */
START_TEST(test_thousand_concurrent_connections)
{
    static struct child C;
    want_fds(4096);
    memset(&C, 0, sizeof C);
    C.fn = thousand;
    ck_assert_int_eq(run_with_server(child, &C), 0);
    ck_assert_int_eq(C.status, 0);
    ck_assert_int_eq(peak, NCONN);
    ck_assert_uint_eq(ptrio_server_stats(&srv, NULL, NULL), NCONN);
    ck_assert_int_eq(live, 0);
}
END_TEST

/* ---- EMFILE ---------------------------------------------------------- */

#define NEMF 5

/* Five clients at once, each one ping and its echo. */
static int five(void)
{
    int fd[NEMF], i;
    char in[4];
    for (i = 0; i < NEMF; i++)
        if ((fd[i] = dial("127.0.0.1", port)) < 0)
            return 20;
    for (i = 0; i < NEMF; i++)
        if (write(fd[i], "ping", 4) != 4)
            return 21;
    for (i = 0; i < NEMF; i++)
        if (read_full(fd[i], in, 4) != 4 || memcmp(in, "ping", 4) != 0)
            return 22;
    return 0;
}

static struct rlimit saved_limit;

/* The server may now open two more fds: two connections at a time. */
static void lower_limit(void)
{
    struct rlimit rl = saved_limit;
    int probe = dup(0);     /* the lowest free fd */
    close(probe);
    rl.rlim_cur = (rlim_t)probe + 2;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

/* Trio: test_highlevel_serve_listeners.py::test_serve_listeners_accept_
 * capacity_error: accept fails with EMFILE, the server reports it, sleeps
 * 100 ms and goes on serving: all five clients are served (each handler
 * echoes once and closes, freeing its fd). */
START_TEST(test_emfile_backs_off_and_serves)
{
    static struct child C;
    static struct with_server W;
    unsigned long accepted, backoffs;

    /* valgrind keeps fds of its own under the limit and refuses the ones
     * above the one it emulates: the limit cannot be played with there. */
    if (RUNNING_ON_VALGRIND)
        return;
    getrlimit(RLIMIT_NOFILE, &saved_limit);
    memset(&C, 0, sizeof C);
    C.fn = five;
    C.after_fork = lower_limit;
    memset(&W, 0, sizeof W);
    W.body = child;
    W.frame = &C.fr;
    live = peak = 0;
    once = 1;
    ck_assert_int_eq(run_io(with_server, &W), 0);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &saved_limit), 0);
    ck_assert_int_eq(C.status, 0);
    accepted = ptrio_server_stats(&srv, NULL, &backoffs);
    ck_assert_uint_eq(accepted, NEMF);
    ck_assert_uint_ge(backoffs, 1);
    ck_assert_int_ge(count_of(io_rep.lines.buf, "accept failed: EMFILE"), 1);
    ck_assert_int_ge(count_of(io_rep.lines.buf, "retrying in 100 ms"), 1);
}
END_TEST

/* ---- reset, EOF and half-close, handler failures --------------------- */

struct resetter {
    ptrio_frame fr;
    ptrio_tcp_connect c;
    ptrio_stream s;
    struct rt after;
    char buf[8];
    int i;
};

static int resetter(ptrio_frame *fr)
{
    struct resetter *r = PTRIO_SELF(fr, struct resetter);
    struct linger lg = {1, 0};
    PTRIO_BEGIN(r);
    PTRIO_AWAIT(r, ptrio_open_tcp_stream(r, &r->c, &r->s, "127.0.0.1", port));
    /* Closing with a zero linger sends a RST, not a FIN. */
    ck_assert_int_eq(setsockopt(ptrio_stream_fd(&r->s), SOL_SOCKET, SO_LINGER,
                                &lg, sizeof lg), 0);
    ptrio_stream_close(&r->s);
    /* Until the handler has seen it. */
    for (r->i = 0; r->i < 1000 && !handler_rc; r->i++)
        PTRIO_AWAIT(r, ptrio_sleep(r, PTRIO_MS(1)));
    /* A failed connection does not stop the server. */
    r->after.rounds = 3;
    PTRIO_CALL(r, rt, &r->after);
    PTRIO_END(r);
}

/* The peer resets: the handler's receive fails with -ECONNRESET, its
 * failure is reported, and the server serves the next connection. */
START_TEST(test_peer_reset)
{
    static struct resetter R;
    unsigned long failed;
    memset(&R, 0, sizeof R);
    ck_assert_int_eq(run_with_server(resetter, &R), 0);
    ck_assert_int_eq(handler_rc, -PTRIO_ECONNRESET);
    ck_assert_uint_eq(ptrio_server_stats(&srv, &failed, NULL), 2);
    ck_assert_uint_eq(failed, 1);
    ck_assert_int_eq(io_rep.count, 1);
    ck_assert_int_eq(count_of(io_rep.lines.buf, "connection handler "
                              "'serve_tcp handler' failed: ECONNRESET"), 1);
}
END_TEST

struct halfclose {
    ptrio_frame fr;
    ptrio_tcp_connect c;
    ptrio_stream s;
    char buf[64];
    int n;
};

static int halfclose(ptrio_frame *fr)
{
    struct halfclose *h = PTRIO_SELF(fr, struct halfclose);
    PTRIO_BEGIN(h);
    PTRIO_AWAIT(h, ptrio_open_tcp_stream(h, &h->c, &h->s, "127.0.0.1", port));
    PTRIO_AWAIT(h, ptrio_stream_send_all(h, &h->s, "hello", 5));
    PTRIO_AWAIT(h, ptrio_stream_send_eof(h, &h->s));
    PTRIO_AWAIT(h, ptrio_stream_send_eof(h, &h->s));    /* idempotent */
    tlog_add(&L, "eof-sent");
    for (;;) {
        PTRIO_AWAIT(h, ptrio_stream_receive_some(h, &h->s, h->buf,
                                                 sizeof h->buf - 1));
        h->n = PTRIO_RESULT(h);
        if (h->n == 0)
            break;
        h->buf[h->n] = '\0';
        tlog_add(&L, h->buf);
    }
    tlog_add(&L, "eof");
    /* After end of stream, receives keep saying so. */
    PTRIO_AWAIT(h, ptrio_stream_receive_some(h, &h->s, h->buf, 8));
    ck_assert_int_eq(PTRIO_RESULT(h), 0);
    PTRIO_TRY(h, h->n, ptrio_stream_send_all(h, &h->s, "late", 4));
    PTRIO_FINALLY(h);
    ptrio_stream_close(&h->s);
    PTRIO_END(h);
}

/* Trio: test_socket.py / testing/_check_streams.py (send_eof): after a
 * half-close the peer reads to end of stream, answers, and closes; the
 * answer arrives, then end of stream. Sending after our send_eof fails
 * with -PTRIO_ECLOSED (ClosedResourceError), without SIGPIPE. */
START_TEST(test_eof_and_half_close)
{
    static struct halfclose H;
    memset(&H, 0, sizeof H);
    ck_assert_int_eq(run_with_server(halfclose, &H), 0);
    ck_assert_str_eq(L.buf, "eof-sent hello eof");
    ck_assert_int_eq(H.n, -PTRIO_ECLOSED);
}
END_TEST

struct failer {
    ptrio_frame fr;
    ptrio_tcp_connect c;
    ptrio_stream s;
    char buf[8];
    struct rt after;
};

static int failer(ptrio_frame *fr)
{
    struct failer *f = PTRIO_SELF(fr, struct failer);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_open_tcp_stream(f, &f->c, &f->s, "127.0.0.1", port));
    PTRIO_AWAIT(f, ptrio_stream_send_all(f, &f->s, "fail", 4));
    PTRIO_AWAIT(f, ptrio_stream_receive_some(f, &f->s, f->buf, sizeof f->buf));
    ck_assert_int_eq(PTRIO_RESULT(f), 0);   /* the server closed it */
    ptrio_stream_close(&f->s);
    f->after.rounds = 2;
    PTRIO_CALL(f, rt, &f->after);
    PTRIO_END(f);
}

/* A handler that raises is reported with its site and message; its
 * stream is closed; the server goes on. (Trio would let it crash the
 * server: see README, Differences from Trio.) */
START_TEST(test_handler_failure_reported)
{
    static struct failer F;
    memset(&F, 0, sizeof F);
    ck_assert_int_eq(run_with_server(failer, &F), 0);
    ck_assert_int_eq(io_rep.count, 1);
    ck_assert_int_eq(count_of(io_rep.lines.buf,
                              "failed: EIO (the client asked me to fail) at "),
                     1);
    ck_assert_int_eq(count_of(io_rep.lines.buf, "the server goes on"), 1);
}
END_TEST

/* ---- refused, timeouts, dead listeners -------------------------------- */

/* A port nobody listens on, and nobody else can take while the test
 * runs: bound, never listening (a SYN to it gets a RST). The socket stays
 * open until the test's process ends. */
static int closed_port(const char *ip)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    inet_pton(AF_INET, ip, &a.sin_addr);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    return ntohs(a.sin_port);
}

/* A listener that never accepts and whose queue is full: a SYN to it is
 * dropped, so a connect hangs (until it accepts: then the SYN retransmit,
 * after about a second, gets through). */
struct dead {
    ptrio_listener ls;
    int filler[2];
};

static void dead_open(struct dead *d, const char *ip)
{
    struct sockaddr_in a;
    int i;
    memset(d, 0, sizeof *d);
    ck_assert_int_eq(ptrio_tcp_listen(&d->ls, ip, 0, 1), 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)ptrio_listener_port(&d->ls));
    inet_pton(AF_INET, ip, &a.sin_addr);
    for (i = 0; i < 2; i++) {
        d->filler[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        (void)connect(d->filler[i], (struct sockaddr *)&a, sizeof a);
    }
    usleep(20000);  /* the handshakes the queue takes are done */
}

static void dead_close(struct dead *d)
{
    close(d->filler[0]);
    close(d->filler[1]);
    ptrio_listener_close(&d->ls);
}

/* A custom resolver over a fixed list of IPv4 addresses with ports. */
#define MAXADDR 4
static struct addrinfo fake_ai[MAXADDR];
static struct sockaddr_in fake_sa[MAXADDR];
static int fake_n, resolver_calls;

static void fake_add(const char *ip, int p)
{
    struct sockaddr_in *a = &fake_sa[fake_n];
    struct addrinfo *ai = &fake_ai[fake_n];
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)p);
    inet_pton(AF_INET, ip, &a->sin_addr);
    memset(ai, 0, sizeof *ai);
    ai->ai_family = AF_INET;
    ai->ai_socktype = SOCK_STREAM;
    ai->ai_addr = (struct sockaddr *)a;
    ai->ai_addrlen = sizeof *a;
    if (fake_n)
        fake_ai[fake_n - 1].ai_next = ai;
    fake_n++;
}

static int fake_resolve(const char *host, const char *service,
                        const struct addrinfo *hints, struct addrinfo **res)
{
    (void)service, (void)hints;
    __atomic_add_fetch(&resolver_calls, 1, __ATOMIC_SEQ_CST);
    if (strcmp(host, "eyeballs.test") != 0 || !fake_n)
        return EAI_NONAME;
    *res = &fake_ai[0];
    return 0;
}

struct he {
    ptrio_frame fr;
    ptrio_scope sc;
    ptrio_tcp_connect c;
    ptrio_stream s;
    ptrio_time limit, delay;
    const char *host;
    int p, rc, winner_port, live_last;
    long long ms;
    struct sockaddr_in peer;
};

static int he(ptrio_frame *fr)
{
    struct he *h = PTRIO_SELF(fr, struct he);
    socklen_t len = sizeof h->peer;
    PTRIO_BEGIN(h);
    if (h->live_last)
        fake_add("127.0.0.1", port);    /* the echo server, running now */
    ptrio_resolve_set_resolver(&h->c.resolve, fake_resolve, NULL);
    if (h->delay)
        ptrio_tcp_connect_set_delay(&h->c, h->delay);
    h->ms = mono_ms();
    PTRIO_MOVE_ON_AFTER(h, &h->sc, h->limit ? h->limit : DEADLINE) {
        PTRIO_TRY(h, h->rc, ptrio_open_tcp_stream(h, &h->c, &h->s,
                                                  h->host ? h->host
                                                          : "eyeballs.test",
                                                  h->p ? h->p : 9));
    }
    h->ms = mono_ms() - h->ms;
    if (h->rc == 0 &&
        getpeername(ptrio_stream_fd(&h->s), (struct sockaddr *)&h->peer,
                    &len) == 0)
        h->winner_port = ntohs(h->peer.sin_port);
    ptrio_stream_close(&h->s);
    if (!h->live_last)      /* else the server's tasks wait on fds */
        ck_assert_uint_eq(ptrio_fd_waiters(), 0);
    PTRIO_END(h);
}

/* Connecting to a port nobody listens on fails with -ECONNREFUSED. */
START_TEST(test_connection_refused)
{
    static struct he H;
    int fds0;
    memset(&H, 0, sizeof H);
    H.host = "127.0.0.1";
    H.p = closed_port("127.0.0.1");
    fds0 = count_fds();
    ck_assert_int_eq(run_io(he, &H), 0);
    ck_assert_int_eq(H.rc, -PTRIO_ECONNREFUSED);
    ck_assert_int_eq(ptrio_tcp_connect_attempts(&H.c), 1);
    ck_assert_int_eq(count_fds(), fds0);
}
END_TEST

/* A connect that never completes ends at the caller's deadline, and
 * closes its socket. */
START_TEST(test_connect_timeout)
{
    static struct he H;
    static struct dead D;
    int fds0;
    dead_open(&D, "127.0.0.2");
    fds0 = count_fds();
    memset(&H, 0, sizeof H);
    H.host = "127.0.0.2";
    H.p = ptrio_listener_port(&D.ls);
    H.limit = PTRIO_MS(100);
    ck_assert_int_eq(run_io(he, &H), 0);
    ck_assert_int_eq(H.rc, -PTRIO_ECANCELED);
    ck_assert(ptrio_cancel_called(&H.sc));
    ck_assert_int_ge(H.ms, 100);
    ck_assert_int_lt(H.ms, 1000);
    ck_assert_int_eq(count_fds(), fds0);
    dead_close(&D);
}
END_TEST

/* Trio: test_highlevel_open_tcp_stream.py::test_one_host_slow_success
 * and friends: two dead addresses first, a live one third; attempts
 * start every `delay` (50 ms here), the live one wins at about 100 ms,
 * the dead ones are cancelled and their sockets closed. */
START_TEST(test_happy_eyeballs_dead_then_live)
{
    static struct he H;
    static struct dead D[2];
    int fds0;

    dead_open(&D[0], "127.0.0.2");
    dead_open(&D[1], "127.0.0.3");
    fds0 = count_fds();
    fake_n = 0;
    fake_add("127.0.0.2", ptrio_listener_port(&D[0].ls));
    fake_add("127.0.0.3", ptrio_listener_port(&D[1].ls));
    memset(&H, 0, sizeof H);
    H.delay = PTRIO_MS(50);
    H.live_last = 1;
    ck_assert_int_eq(run_with_server(he, &H), 0);
    ck_assert_int_eq(H.rc, 0);
    ck_assert_int_eq(ptrio_tcp_connect_attempts(&H.c), 3);
    ck_assert_int_eq(H.winner_port, port);
    ck_assert_int_ge(H.ms, 100);
    ck_assert_int_lt(H.ms, 1000);
    ck_assert_int_eq(count_fds(), fds0);
    dead_close(&D[0]);
    dead_close(&D[1]);
}
END_TEST

/* The one address accepts late: its queue is full until another task
 * accepts after 100 ms; the connect's retransmitted SYN then gets
 * through (about 1 s after the first). */
struct late_accept {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct he h;
    struct acceptor {
        ptrio_frame fr;
        struct dead *d;
        ptrio_stream s;
    } a;
};

static int acceptor(ptrio_frame *fr)
{
    struct acceptor *a = PTRIO_SELF(fr, struct acceptor);
    PTRIO_BEGIN(a);
    PTRIO_AWAIT(a, ptrio_sleep(a, PTRIO_MS(100)));
    PTRIO_AWAIT(a, ptrio_listener_accept(a, &a->d->ls, &a->s));
    ptrio_stream_close(&a->s);
    PTRIO_END(a);
}

static int late_accept(ptrio_frame *fr)
{
    struct late_accept *l = PTRIO_SELF(fr, struct late_accept);
    PTRIO_BEGIN(l);
    PTRIO_NURSERY(l, &l->n) {
        PTRIO_CHECK(l, ptrio_start_soon(&l->n, &l->t[0], acceptor, &l->a));
        PTRIO_CHECK(l, ptrio_start_soon(&l->n, &l->t[1], he, &l->h));
    }
    PTRIO_END(l);
}

START_TEST(test_happy_eyeballs_accepts_late)
{
    static struct late_accept A;
    static struct dead D;
    dead_open(&D, "127.0.0.2");
    fake_n = 0;
    fake_add("127.0.0.2", ptrio_listener_port(&D.ls));
    memset(&A, 0, sizeof A);
    A.a.d = &D;
    A.h.limit = PTRIO_SEC(5);
    ck_assert_int_eq(run_io(late_accept, &A), 0);
    ck_assert_int_eq(A.h.rc, 0);
    ck_assert_int_eq(A.h.winner_port, ptrio_listener_port(&D.ls));
    ck_assert_int_ge(A.h.ms, 100);
    ck_assert_int_lt(A.h.ms, 4000);
    dead_close(&D);
}
END_TEST

/* A refused attempt starts the next one at once, not after the delay
 * (2 s here). */
START_TEST(test_happy_eyeballs_failure_starts_next_at_once)
{
    static struct he H;
    fake_n = 0;
    fake_add("127.0.0.1", closed_port("127.0.0.1"));
    memset(&H, 0, sizeof H);
    H.delay = PTRIO_SEC(2);
    H.live_last = 1;
    ck_assert_int_eq(run_with_server(he, &H), 0);
    ck_assert_int_eq(H.rc, 0);
    ck_assert_int_eq(ptrio_tcp_connect_attempts(&H.c), 2);
    ck_assert_int_eq(H.winner_port, port);
    ck_assert_int_lt(H.ms, 1000);
}
END_TEST

/* Trio: test_highlevel_open_tcp_stream.py::test_handles_no_ipv6: the
 * addresses of a family the system lacks fail when their socket is made,
 * and the next attempt starts at once: here a dead address is tried at 0,
 * the live one (the echo server) after one delay (100 ms), and it wins. */
START_TEST(test_happy_eyeballs_family_unsupported)
{
    static struct he H;
    static struct dead D;
    int fds0;

    dead_open(&D, "127.0.0.2");
    fds0 = count_fds();
    fake_n = 0;
    fake_add("127.0.0.1", 9);
    fake_add("127.0.0.2", ptrio_listener_port(&D.ls));
    fake_add("127.0.0.1", 9);
    fake_ai[0].ai_family = fake_ai[2].ai_family = AF_UNSPEC;  /* no socket */
    memset(&H, 0, sizeof H);
    H.delay = PTRIO_MS(100);
    H.live_last = 1;
    ck_assert_int_eq(run_with_server(he, &H), 0);
    ck_assert_int_eq(H.rc, 0);
    ck_assert_int_eq(ptrio_tcp_connect_attempts(&H.c), 4);
    ck_assert_int_eq(H.c.failures, 2);
    ck_assert_int_eq(H.winner_port, port);
    ck_assert_int_ge(H.ms, 100);
    ck_assert_int_lt(H.ms, 1000);
    ck_assert_int_eq(count_fds(), fds0);
    dead_close(&D);
}
END_TEST

/* A delay too long for a deadline is no delay at all (one address at a
 * time, as PTRIO_TIME_INF), never -PTRIO_EOVERFLOW after the first
 * attempt: every attempt fails at once and the next starts. */
START_TEST(test_happy_eyeballs_huge_delay)
{
    static struct he H;
    fake_n = 0;
    fake_add("127.0.0.1", closed_port("127.0.0.1"));
    fake_add("127.0.0.2", closed_port("127.0.0.2"));
    fake_add("127.0.0.3", closed_port("127.0.0.3"));
    memset(&H, 0, sizeof H);
    H.delay = PTRIO_TIME_INF - 1;
    ck_assert_int_eq(run_io(he, &H), 0);
    ck_assert_int_eq(H.rc, -PTRIO_ECONNREFUSED);
    ck_assert_int_eq(ptrio_tcp_connect_attempts(&H.c), 3);
}
END_TEST

/* Every attempt fails: the first attempt's error, after trying all. */
START_TEST(test_happy_eyeballs_all_fail)
{
    static struct he H;
    int fds0;
    fake_n = 0;
    fake_add("127.0.0.1", closed_port("127.0.0.1"));
    fake_add("127.0.0.2", closed_port("127.0.0.2"));
    fake_add("127.0.0.3", closed_port("127.0.0.3"));
    fds0 = count_fds();
    memset(&H, 0, sizeof H);
    ck_assert_int_eq(run_io(he, &H), 0);
    ck_assert_int_eq(H.rc, -PTRIO_ECONNREFUSED);
    ck_assert_int_eq(ptrio_tcp_connect_attempts(&H.c), 3);
    ck_assert_int_eq(count_fds(), fds0);
}
END_TEST

/* A name the resolver does not know: -PTRIO_ERESOLVE, no attempt. */
START_TEST(test_resolve_failure)
{
    static struct he H;
    fake_n = 0;
    memset(&H, 0, sizeof H);
    H.host = "nowhere.test";
    ck_assert_int_eq(run_io(he, &H), 0);
    ck_assert_int_eq(H.rc, -PTRIO_ERESOLVE);
    ck_assert_int_eq(ptrio_tcp_connect_attempts(&H.c), 0);
    ck_assert_str_eq(ptrio_resolve_strerror(&H.c.resolve),
                     gai_strerror(EAI_NONAME));
}
END_TEST

/* With a custom resolver, a numeric host's list is getaddrinfo's (the
 * resolver is not asked, as in Trio): ptrio_freeaddrinfo gives it to
 * freeaddrinfo, never to the resolver's freeres, which gets only the
 * resolver's own lists, in whatever order the two are freed. It used to
 * get both. */
static struct addrinfo *freed_by_freeres[4];
static int freeres_calls;

static void fake_freeres(struct addrinfo *res)
{
    if (freeres_calls < 4)
        freed_by_freeres[freeres_calls] = res;
    freeres_calls++;
}

struct two_lists {
    ptrio_frame fr;
    ptrio_resolve r;
    struct addrinfo *numeric, *named;
    int rc[2];
};

static int two_lists(ptrio_frame *fr)
{
    struct two_lists *f = PTRIO_SELF(fr, struct two_lists);
    PTRIO_BEGIN(f);
    ptrio_resolve_set_resolver(&f->r, fake_resolve, fake_freeres);
    PTRIO_TRY(f, f->rc[0], ptrio_getaddrinfo(f, &f->r, "127.0.0.1", "80",
                                             AF_INET, SOCK_STREAM, 0,
                                             &f->numeric));
    PTRIO_TRY(f, f->rc[1], ptrio_getaddrinfo(f, &f->r, "eyeballs.test",
                                             "80", 0, 0, 0, &f->named));
    ptrio_freeaddrinfo(&f->r, f->named);
    ptrio_freeaddrinfo(&f->r, f->numeric);
    PTRIO_TRY(f, f->rc[0], ptrio_getaddrinfo(f, &f->r, "127.0.0.1", "80",
                                             AF_INET, SOCK_STREAM, 0,
                                             &f->numeric));
    ptrio_freeaddrinfo(&f->r, f->numeric);
    PTRIO_END(f);
}

START_TEST(test_numeric_list_is_not_the_resolvers)
{
    static struct two_lists F;
    memset(&F, 0, sizeof F);
    fake_n = 0;
    fake_add("127.0.0.9", 80);
    resolver_calls = freeres_calls = 0;
    ck_assert_int_eq(run_io(two_lists, &F), 0);
    ck_assert_int_eq(F.rc[0], 0);
    ck_assert_int_eq(F.rc[1], 0);
    ck_assert_ptr_eq(F.named, &fake_ai[0]);
    ck_assert_int_eq(resolver_calls, 1);
    ck_assert_int_eq(freeres_calls, 1);
    ck_assert_ptr_eq(freed_by_freeres[0], &fake_ai[0]);
}
END_TEST

/* Only a numeric host with a numeric service is resolved on the loop's
 * thread (Trio: AI_NUMERICHOST | AI_NUMERICSERV): a named service goes
 * to the resolver, here the custom one, which does not know it. Before,
 * the service was looked up on the loop's thread, and the resolver was
 * never asked. */
struct named_service { ptrio_frame fr; ptrio_resolve r; struct addrinfo *res; int rc; };

static int named_service(ptrio_frame *fr)
{
    struct named_service *f = PTRIO_SELF(fr, struct named_service);
    PTRIO_BEGIN(f);
    ptrio_resolve_set_resolver(&f->r, fake_resolve, NULL);
    PTRIO_TRY(f, f->rc, ptrio_getaddrinfo(f, &f->r, "127.0.0.1", "http",
                                          AF_INET, SOCK_STREAM, 0, &f->res));
    if (f->rc == 0)
        ptrio_freeaddrinfo(&f->r, f->res);
    PTRIO_END(f);
}

START_TEST(test_numeric_host_named_service)
{
    static struct named_service F;
    memset(&F, 0, sizeof F);
    fake_n = 0;
    resolver_calls = 0;
    ck_assert_int_eq(run_io(named_service, &F), 0);
    ck_assert_int_eq(resolver_calls, 1);
    ck_assert_int_eq(F.rc, -PTRIO_ERESOLVE);
}
END_TEST

/* The caller is cancelled just after an attempt failed, while the
 * connector is ready to start the next one. */
struct he_cancel {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    ptrio_scope sc;
    struct he_conn {
        ptrio_frame fr;
        struct he_cancel *hc;
    } conn;
    struct he_watch {
        ptrio_frame fr;
        struct he_cancel *hc;
        long long until;
    } watch;
    ptrio_tcp_connect c;
    ptrio_stream s;
    int rc;
};

static int he_conn(ptrio_frame *fr)
{
    struct he_conn *k = PTRIO_SELF(fr, struct he_conn);
    struct he_cancel *h = k->hc;
    PTRIO_BEGIN(k);
    ptrio_resolve_set_resolver(&h->c.resolve, fake_resolve, NULL);
    ptrio_tcp_connect_set_delay(&h->c, PTRIO_SEC(5));
    PTRIO_CANCEL_SCOPE(k, &h->sc) {
        PTRIO_TRY(k, h->rc, ptrio_open_tcp_stream(k, &h->c, &h->s,
                                                  "eyeballs.test", 9));
    }
    ptrio_stream_close(&h->s);
    PTRIO_END(k);
}

/* Cancels the connect as soon as its first attempt has failed. */
static int he_watch(ptrio_frame *fr)
{
    struct he_watch *w = PTRIO_SELF(fr, struct he_watch);
    PTRIO_BEGIN(w);
    /* Yields (never blocks), so it runs in the batch the attempt fails
     * in, or the next one, before the connector. */
    for (w->until = mono_ms() + 5000;
         !w->hc->c.failures && mono_ms() < w->until;) {
        /* Blocks the thread a moment: the resolver's worker thread gets
         * the CPU even under valgrind, which runs one thread at a time
         * and leaves it to a thread that never blocks. */
        usleep(100);
        PTRIO_AWAIT(w, ptrio_yield(w));
    }
    ptrio_cancel(&w->hc->sc);
    PTRIO_END(w);
}

static int he_cancel(ptrio_frame *fr)
{
    struct he_cancel *h = PTRIO_SELF(fr, struct he_cancel);
    PTRIO_BEGIN(h);
    h->conn.hc = h->watch.hc = h;
    PTRIO_NURSERY(h, &h->n) {
        PTRIO_CHECK(h, ptrio_start_soon(&h->n, &h->t[0], he_conn, &h->conn));
        PTRIO_CHECK(h, ptrio_start_soon(&h->n, &h->t[1], he_watch,
                                        &h->watch));
    }
    PTRIO_END(h);
}

/* Trio: test_highlevel_open_tcp_stream.py::test_cancel, and
 * SocketType.connect's checkpoint_if_cancelled: an attempt that starts
 * once the connect is cancelled opens no socket and sends no SYN. The
 * first address fails at once (a zero address length: EINVAL); the
 * caller is cancelled before the connector runs again; the second
 * address, a listener, must see no connection. */
START_TEST(test_happy_eyeballs_cancelled_attempt_never_connects)
{
    static struct he_cancel H;
    ptrio_listener ls;
    int fds0, fd;

    memset(&ls, 0, sizeof ls);
    ck_assert_int_eq(ptrio_tcp_listen(&ls, "127.0.0.1", 0, 0), 0);
    fake_n = 0;
    fake_add("127.0.0.1", 9);
    fake_ai[0].ai_addrlen = 0;
    fake_add("127.0.0.1", ptrio_listener_port(&ls));
    fds0 = count_fds();
    memset(&H, 0, sizeof H);
    ck_assert_int_eq(run_io(he_cancel, &H), 0);
    ck_assert_int_eq(H.rc, -PTRIO_ECANCELED);
    ck_assert(ptrio_cancel_called(&H.sc));
    ck_assert_int_eq(H.c.failures, 1);
    ck_assert_int_eq(count_fds(), fds0);
    usleep(20000);      /* a handshake under way would be done by now */
    fd = accept(ptrio_listener_fd(&ls), NULL, NULL);
    ck_assert_msg(fd < 0 && (errno == EAGAIN || errno == EWOULDBLOCK),
                  "the cancelled attempt connected");
    ptrio_listener_close(&ls);
}
END_TEST

/* Trio: test_highlevel_open_tcp_stream.py::test_no_hosts: a resolver
 * that answers with no address is a resolution failure, not a refused
 * connection; no attempt is made. */
static int empty_resolve(const char *host, const char *service,
                         const struct addrinfo *hints, struct addrinfo **res)
{
    (void)host, (void)service, (void)hints;
    *res = NULL;
    return 0;
}

struct he_empty {
    ptrio_frame fr;
    ptrio_tcp_connect c;
    ptrio_stream s;
    int rc;
};

static int he_empty(ptrio_frame *fr)
{
    struct he_empty *h = PTRIO_SELF(fr, struct he_empty);
    PTRIO_BEGIN(h);
    ptrio_resolve_set_resolver(&h->c.resolve, empty_resolve, NULL);
    PTRIO_TRY(h, h->rc, ptrio_open_tcp_stream(h, &h->c, &h->s,
                                              "nothing.test", 80));
    PTRIO_END(h);
}

START_TEST(test_happy_eyeballs_no_hosts)
{
    static struct he_empty H;
    memset(&H, 0, sizeof H);
    ck_assert_int_eq(run_io(he_empty, &H), 0);
    ck_assert_int_eq(H.rc, -PTRIO_ERESOLVE);
    ck_assert_int_eq(ptrio_tcp_connect_attempts(&H.c), 0);
    ck_assert_int_eq(ptrio_stream_fd(&H.s), -1);
}
END_TEST

/* ---- cancellation in each blocking call ---------------------------------- */

static int gate[2];

static int gated_resolve(const char *host, const char *service,
                         const struct addrinfo *hints, struct addrinfo **res)
{
    char c;
    (void)host, (void)service, (void)hints, (void)res;
    __atomic_add_fetch(&resolver_calls, 1, __ATOMIC_SEQ_CST);
    if (read(gate[0], &c, 1) != 1)
        abort();
    return EAI_NONAME;
}

enum { V_RECV, V_SEND, V_ACCEPT, V_CONNECT, V_RESOLVE, V_WRITABLE, V_N };
static const char *const vname[V_N] = {
    "receive_some", "send_all", "accept", "open_tcp_stream", "getaddrinfo",
    "wait_writable"
};

struct victim {
    ptrio_frame fr;
    int mode, rc, sp[2];
    ptrio_stream s, in;
    ptrio_listener ls;
    ptrio_tcp_connect c;
    ptrio_resolve r;
    struct addrinfo *res;
    char buf[1 << 16];
};

/* Blocks in one call, chosen by mode; cleans up whatever it opened. */
static int victim(ptrio_frame *fr)
{
    struct victim *v = PTRIO_SELF(fr, struct victim);
    PTRIO_BEGIN(v);
    v->sp[0] = v->sp[1] = -1;
    if (v->mode == V_RECV || v->mode == V_SEND || v->mode == V_WRITABLE) {
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, v->sp), 0);
        PTRIO_CHECK(v, ptrio_stream_open(&v->s, v->sp[0]));
        v->sp[0] = -1;
    }
    if (v->mode == V_RECV) {
        PTRIO_TRY(v, v->rc, ptrio_stream_receive_some(v, &v->s, v->buf, 16));
    } else if (v->mode == V_SEND) {
        /* The peer never reads: this blocks once the buffers are full. */
        for (;;)
            PTRIO_AWAIT(v, ptrio_stream_send_all(v, &v->s, v->buf,
                                                 sizeof v->buf));
    } else if (v->mode == V_WRITABLE) {
        set_nonblock(ptrio_stream_fd(&v->s));
        while (write(ptrio_stream_fd(&v->s), v->buf, sizeof v->buf) > 0)
            ;
        PTRIO_TRY(v, v->rc, ptrio_wait_writable(v, ptrio_stream_fd(&v->s)));
    } else if (v->mode == V_ACCEPT) {
        PTRIO_CHECK(v, ptrio_tcp_listen(&v->ls, "127.0.0.1", 0, 0));
        PTRIO_TRY(v, v->rc, ptrio_listener_accept(v, &v->ls, &v->in));
    } else if (v->mode == V_CONNECT) {
        PTRIO_TRY(v, v->rc, ptrio_open_tcp_stream(v, &v->c, &v->s,
                                                  "eyeballs.test", 9));
    } else {
        ptrio_resolve_set_resolver(&v->r, gated_resolve, NULL);
        PTRIO_TRY(v, v->rc, ptrio_getaddrinfo(v, &v->r, "gated.test", "80", 0,
                                              SOCK_STREAM, 0, &v->res));
    }
    PTRIO_FINALLY(v);
    ptrio_stream_close(&v->s);
    ptrio_stream_close(&v->in);
    ptrio_listener_close(&v->ls);
    if (v->sp[1] >= 0)
        close(v->sp[1]);
    PTRIO_END(v);
}

struct cancel_each {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct victim v;
    unsigned during, after;
    int i;
};

static int cancel_each(ptrio_frame *fr)
{
    struct cancel_each *e = PTRIO_SELF(fr, struct cancel_each);
    PTRIO_BEGIN(e);
    PTRIO_NURSERY(e, &e->n) {
        PTRIO_CHECK(e, ptrio_start_soon(&e->n, &e->t, victim, &e->v));
        /* Until it blocks (slow under valgrind: poll, up to 5 s). */
        for (e->i = 0; e->i < 5000; e->i++) {
            if (e->v.mode == V_RESOLVE
                    ? __atomic_load_n(&resolver_calls, __ATOMIC_SEQ_CST) > 0
                    : ptrio_fd_waiters() > 0)
                break;
            PTRIO_AWAIT(e, ptrio_sleep(e, PTRIO_MS(1)));
        }
        PTRIO_AWAIT(e, ptrio_sleep(e, PTRIO_MS(10)));
        e->during = ptrio_fd_waiters();
        ptrio_nursery_cancel(&e->n);
    }
    e->after = ptrio_fd_waiters();
    PTRIO_END(e);
}

/* A task cancelled while blocked in each I/O call wakes with -ECANCELED
 * and leaves no fd registered (loop nor kernel) and no fd open. */
START_TEST(test_cancel_in_each_call)
{
    static struct cancel_each E;
    static struct dead D;
    int mode, fds0;

    ck_assert_int_eq(pipe(gate), 0);
    dead_open(&D, "127.0.0.2");
    fake_n = 0;
    fake_add("127.0.0.2", ptrio_listener_port(&D.ls));
    for (mode = 0; mode < V_N; mode++) {
        fds0 = count_fds();
        resolver_calls = 0;
        memset(&E, 0, sizeof E);
        E.v.mode = mode;
        if (mode == V_CONNECT)
            ptrio_resolve_set_resolver(&E.v.c.resolve, fake_resolve, NULL);
        ck_assert_msg(run_io(cancel_each, &E) == 0, "%s", vname[mode]);
        ck_assert_msg(E.during == (mode == V_RESOLVE ? 0u : 1u),
                      "%s: %u waiters", vname[mode], E.during);
        ck_assert_msg(E.after == 0, "%s", vname[mode]);
        ck_assert_msg(io_loop.nwatch == 0 && io_loop.nfd == 0, "%s",
                      vname[mode]);
        ck_assert_msg(count_fds() == fds0, "%s: fds %d -> %d", vname[mode],
                      fds0, count_fds());
        if (mode != V_SEND)
            ck_assert_msg(E.v.rc == -PTRIO_ECANCELED, "%s: %d", vname[mode],
                          E.v.rc);
    }
    dead_close(&D);
    ck_assert_int_eq(write(gate[1], "g", 1), 1);    /* the resolver returns */
    for (mode = 0; mode < 2000 && ptrio_thread_workers(NULL); mode++)
        usleep(1000);   /* and its worker, abandoned, ends by itself */
    ck_assert_uint_eq(ptrio_thread_workers(NULL), 0);
    usleep(20000);  /* its last instructions (a detached thread's exit) */
}
END_TEST

/* ---- closed under a waiter, busy, bad arguments ------------------------- */

struct closer {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct victim v[2];
    int busy, zero, after, at_once;
    char buf[4];
};

static int closer(ptrio_frame *fr)
{
    struct closer *c = PTRIO_SELF(fr, struct closer);
    PTRIO_BEGIN(c);
    c->v[0].mode = V_RECV;
    c->v[1].mode = V_ACCEPT;
    PTRIO_NURSERY(c, &c->n) {
        PTRIO_CHECK(c, ptrio_start_soon(&c->n, &c->t[0], victim, &c->v[0]));
        PTRIO_CHECK(c, ptrio_start_soon(&c->n, &c->t[1], victim, &c->v[1]));
        PTRIO_AWAIT(c, ptrio_sleep(c, PTRIO_MS(20)));
        /* A second receiver on a stream that has one: Trio's
         * BusyResourceError. */
        PTRIO_TRY(c, c->busy, ptrio_stream_receive_some(c, &c->v[0].s, c->buf,
                                                        sizeof c->buf));
        PTRIO_TRY(c, c->zero, ptrio_stream_receive_some(c, &c->v[0].s, c->buf,
                                                        0));
        ptrio_stream_close(&c->v[0].s);
        ptrio_listener_close(&c->v[1].ls);
        /* Closed, before the woken receiver has resumed: closed, not
         * busy (Trio's receive has no conflict detector of its own;
         * its recv on the closed socket raises ClosedResourceError). */
        PTRIO_TRY(c, c->at_once, ptrio_stream_receive_some(c, &c->v[0].s,
                                                           c->buf,
                                                           sizeof c->buf));
    }
    PTRIO_TRY(c, c->after, ptrio_stream_receive_some(c, &c->v[0].s, c->buf,
                                                     sizeof c->buf));
    PTRIO_END(c);
}

/* Trio: test_socket.py (aclose while receiving) and
 * testing/_check_streams.py: closing a stream or a listener under a
 * blocked task wakes it with -PTRIO_ECLOSED (ClosedResourceError). */
START_TEST(test_closed_under_waiter_and_busy)
{
    static struct closer C;
    memset(&C, 0, sizeof C);
    ck_assert_int_eq(run_io(closer, &C), 0);
    ck_assert_int_eq(C.v[0].rc, -PTRIO_ECLOSED);
    ck_assert_int_eq(C.v[1].rc, -PTRIO_ECLOSED);
    ck_assert_int_eq(C.busy, -PTRIO_EBUSY);
    ck_assert_int_eq(C.zero, -PTRIO_EINVAL);
    ck_assert_int_eq(C.after, -PTRIO_ECLOSED);
    ck_assert_int_eq(C.at_once, -PTRIO_ECLOSED);
}
END_TEST

/* Trio's send_eof holds the send conflict detector across its
 * checkpoint and shuts the socket down after it: a send_all started while
 * it checkpoints is busy, not "after EOF". And it is idempotent before
 * anything else: once EOF was sent, it succeeds on a closed stream too. */
struct eof_side { ptrio_frame fr; ptrio_stream *s; int eof, rc; };

static int eof_sender(ptrio_frame *fr)
{
    struct eof_side *e = PTRIO_SELF(fr, struct eof_side);
    PTRIO_BEGIN(e);
    if (e->eof)
        PTRIO_TRY(e, e->rc, ptrio_stream_send_eof(e, e->s));
    else
        PTRIO_TRY(e, e->rc, ptrio_stream_send_all(e, e->s, "x", 1));
    PTRIO_END(e);
}

struct eof_race {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct eof_side side[2];
    ptrio_stream s;
    int sp[2], again, closed_again, peer_eof;
    char b[4];
};

static int eof_race(ptrio_frame *fr)
{
    struct eof_race *r = PTRIO_SELF(fr, struct eof_race);
    PTRIO_BEGIN(r);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, r->sp), 0);
    PTRIO_CHECK(r, ptrio_stream_open(&r->s, r->sp[0]));
    r->side[0] = (struct eof_side){.s = &r->s, .eof = 1};
    r->side[1] = (struct eof_side){.s = &r->s};
    PTRIO_NURSERY(r, &r->n) {
        PTRIO_CHECK(r, ptrio_start_soon(&r->n, &r->t[0], eof_sender,
                                        &r->side[0]));
        PTRIO_CHECK(r, ptrio_start_soon(&r->n, &r->t[1], eof_sender,
                                        &r->side[1]));
    }
    r->peer_eof = (int)read(r->sp[1], r->b, sizeof r->b);
    PTRIO_TRY(r, r->again, ptrio_stream_send_eof(r, &r->s));
    ptrio_stream_close(&r->s);
    PTRIO_TRY(r, r->closed_again, ptrio_stream_send_eof(r, &r->s));
    close(r->sp[1]);
    PTRIO_END(r);
}

START_TEST(test_send_eof_holds_the_sender)
{
    static struct eof_race R;
    memset(&R, 0, sizeof R);
    ck_assert_int_eq(run_io(eof_race, &R), 0);
    ck_assert_int_eq(R.side[0].rc, 0);
    ck_assert_int_eq(R.side[1].rc, -PTRIO_EBUSY);
    ck_assert_int_eq(R.peer_eof, 0);        /* nothing sent, then EOF */
    ck_assert_int_eq(R.again, 0);
    ck_assert_int_eq(R.closed_again, 0);
}
END_TEST

/* Closed under a waiter, a stream or listener is not free until that
 * waiter's call has returned: opening the stream again, accepting into
 * it or listening again is refused (-PTRIO_EBUSY), and the woken calls
 * end with -PTRIO_ECLOSED. Reopening used to clear the call's frame under
 * it, and the run failed with -PTRIO_EMISUSE. */
struct reopener {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct victim v[2];
    ptrio_listener ls;
    int sp[2], open_busy, listen_busy, accept_busy, open_after;
};

static int reopener(ptrio_frame *fr)
{
    struct reopener *c = PTRIO_SELF(fr, struct reopener);
    PTRIO_BEGIN(c);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, c->sp), 0);
    PTRIO_CHECK(c, ptrio_tcp_listen(&c->ls, "127.0.0.1", 0, 0));
    c->v[0].mode = V_RECV;
    c->v[1].mode = V_ACCEPT;
    PTRIO_NURSERY(c, &c->n) {
        PTRIO_CHECK(c, ptrio_start_soon(&c->n, &c->t[0], victim, &c->v[0]));
        PTRIO_CHECK(c, ptrio_start_soon(&c->n, &c->t[1], victim, &c->v[1]));
        PTRIO_AWAIT(c, ptrio_sleep(c, PTRIO_MS(20)));
        ptrio_stream_close(&c->v[0].s);
        ptrio_listener_close(&c->v[1].ls);
        c->open_busy = ptrio_stream_open(&c->v[0].s, c->sp[0]);
        c->listen_busy = ptrio_tcp_listen(&c->v[1].ls, "127.0.0.1", 0, 0);
        PTRIO_TRY(c, c->accept_busy,
                  ptrio_listener_accept(c, &c->ls, &c->v[0].s));
    }
    c->open_after = ptrio_stream_open(&c->v[0].s, c->sp[0]);
    ptrio_stream_close(&c->v[0].s);
    close(c->sp[1]);
    ptrio_listener_close(&c->ls);
    PTRIO_END(c);
}

START_TEST(test_reopen_while_a_call_ends)
{
    static struct reopener C;
    int fds0 = count_fds();
    memset(&C, 0, sizeof C);
    ck_assert_int_eq(run_io(reopener, &C), 0);
    ck_assert_int_eq(C.v[0].rc, -PTRIO_ECLOSED);
    ck_assert_int_eq(C.v[1].rc, -PTRIO_ECLOSED);
    ck_assert_int_eq(C.open_busy, -PTRIO_EBUSY);
    ck_assert_int_eq(C.listen_busy, -PTRIO_EBUSY);
    ck_assert_int_eq(C.accept_busy, -PTRIO_EBUSY);
    ck_assert_int_eq(C.open_after, 0);
    ck_assert_int_eq(count_fds(), fds0);
}
END_TEST

/* An end of stream is not a drained fd: a receive reads first, as
 * Trio's FdStream does, so a second receive after an end of stream gets
 * 0 again, on every backend. /dev/null (which epoll cannot watch), a
 * FIFO no writer ever opened (whose end poll never reports as
 * readiness) and a regular file. Bounded: each receive is under a 2 s
 * move_on. */
struct eofs {
    ptrio_frame fr;
    ptrio_stream s;
    ptrio_scope sc;
    char path[64], buf[8];
    int i, fd, rc[6];
};

static int eofs(ptrio_frame *fr)
{
    struct eofs *e = PTRIO_SELF(fr, struct eofs);
    PTRIO_BEGIN(e);
    for (e->i = 0; e->i < 6; e->i++)
        e->rc[e->i] = 99;
    PTRIO_CHECK(e, ptrio_stream_open(&e->s, open("/dev/null", O_RDONLY)));
    PTRIO_MOVE_ON_AFTER(e, &e->sc, PTRIO_SEC(2)) {
        for (e->i = 0; e->i < 2; e->i++)
            PTRIO_TRY(e, e->rc[e->i],
                      ptrio_stream_receive_some(e, &e->s, e->buf, 8));
    }
    ptrio_stream_close(&e->s);

    strcpy(e->path, "/tmp/ptrio-fifo-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(e->path));
    strcat(e->path, "/f");
    ck_assert_int_eq(mkfifo(e->path, 0600), 0);
    PTRIO_CHECK(e, ptrio_stream_open(&e->s,
                                     open(e->path, O_RDONLY | O_NONBLOCK)));
    PTRIO_MOVE_ON_AFTER(e, &e->sc, PTRIO_SEC(2)) {
        for (e->i = 2; e->i < 4; e->i++)
            PTRIO_TRY(e, e->rc[e->i],
                      ptrio_stream_receive_some(e, &e->s, e->buf, 8));
    }
    ptrio_stream_close(&e->s);
    unlink(e->path);
    *strrchr(e->path, '/') = '\0';
    rmdir(e->path);

    /* a regular file: one byte, then the end */
    strcpy(e->path, "/tmp/ptrio-file-XXXXXX");
    e->fd = mkstemp(e->path);
    ck_assert_int_ge(e->fd, 0);
    ck_assert_int_eq((int)write(e->fd, "z", 1), 1);
    ck_assert_int_eq((int)lseek(e->fd, 0, SEEK_SET), 0);
    unlink(e->path);
    PTRIO_CHECK(e, ptrio_stream_open(&e->s, e->fd));
    PTRIO_MOVE_ON_AFTER(e, &e->sc, PTRIO_SEC(2)) {
        for (e->i = 4; e->i < 6; e->i++)
            PTRIO_TRY(e, e->rc[e->i],
                      ptrio_stream_receive_some(e, &e->s, e->buf, 8));
    }
    ptrio_stream_close(&e->s);
    PTRIO_END(e);
}

START_TEST(test_end_of_stream_twice_on_files)
{
    static struct eofs E;
    int fds0 = count_fds();
    memset(&E, 0, sizeof E);
    ck_assert_int_eq(run_io(eofs, &E), 0);
    ck_assert_int_eq(E.rc[0], 0);       /* /dev/null */
    ck_assert_int_eq(E.rc[1], 0);
    ck_assert_int_eq(E.rc[2], 0);       /* the FIFO */
    ck_assert_int_eq(E.rc[3], 0);
    ck_assert_int_eq(E.rc[4], 1);       /* the file: its byte, then 0 */
    ck_assert_int_eq(E.rc[5], 0);
    ck_assert_int_eq(count_fds(), fds0);
}
END_TEST

/* Sync calls: bad arguments, stream_open on non-socket fds, pipes
 * without SIGPIPE. */
struct piper {
    ptrio_frame fr;
    ptrio_stream s;
    int p[2], rc[3];
};

static int piper(ptrio_frame *fr)
{
    struct piper *p = PTRIO_SELF(fr, struct piper);
    PTRIO_BEGIN(p);
    ck_assert_int_eq(pipe(p->p), 0);
    PTRIO_CHECK(p, ptrio_stream_open(&p->s, p->p[1]));
    p->rc[0] = ptrio_stream_open(&p->s, p->p[1]);
    close(p->p[0]);     /* the reader is gone */
    PTRIO_TRY(p, p->rc[1], ptrio_stream_send_all(p, &p->s, "x", 1));
    PTRIO_TRY(p, p->rc[2], ptrio_stream_send_eof(p, &p->s));
    ptrio_stream_close(&p->s);
    ptrio_stream_close(&p->s);
    PTRIO_END(p);
}

START_TEST(test_pipes_and_bad_arguments)
{
    static struct piper P;
    ptrio_listener ls;
    ptrio_server sv;
    memset(&ls, 0, sizeof ls);
    memset(&sv, 0, sizeof sv);
    ck_assert_int_eq(run_io(piper, &P), 0);
    ck_assert_int_eq(P.rc[0], -PTRIO_EBUSY);
    ck_assert_int_eq(P.rc[1], -PTRIO_EPIPE);    /* and no SIGPIPE */
    ck_assert_int_eq(P.rc[2], -PTRIO_ENOTSOCK);
    ck_assert_int_eq(ptrio_tcp_listen(&ls, "localhost", 0, 0), -PTRIO_EINVAL);
    ck_assert_int_eq(ptrio_tcp_listen(&ls, "127.0.0.1", 70000, 0),
                     -PTRIO_EINVAL);
    ck_assert_int_eq(ptrio_listener_port(&ls), -1);
    ck_assert_int_eq(ptrio_server_init(&sv, NULL, 0, echo, clients, 0,
                                       sizeof clients[0], 0), -PTRIO_EINVAL);
    ck_assert_int_eq(ptrio_stream_fd(NULL), -1);
}
END_TEST

/* ---- streaming both ways, partial writes ------------------------------ */

#define STREAM_N 1000000

struct streamer {
    ptrio_frame fr;
    ptrio_stream *s;
    unsigned seed, sum;
    size_t total, chunk, bad;
    int n, sender;
    char buf[65536];
};

/* Sends STREAM_N bytes in chunks of pseudo-random sizes, then EOF; or
 * receives to end of stream. Both sum what they saw. */
static int streamer(ptrio_frame *fr)
{
    struct streamer *t = PTRIO_SELF(fr, struct streamer);
    size_t i;
    PTRIO_BEGIN(t);
    if (t->sender) {
        while (t->total < STREAM_N) {
            t->seed = t->seed * 1103515245u + 12345u;
            t->chunk = (t->seed >> 8) % sizeof t->buf + 1;
            if (t->chunk > STREAM_N - t->total)
                t->chunk = STREAM_N - t->total;
            for (i = 0; i < t->chunk; i++) {
                t->buf[i] = (char)(t->total + i);
                t->sum += (unsigned char)t->buf[i];
            }
            PTRIO_AWAIT(t, ptrio_stream_send_all(t, t->s, t->buf, t->chunk));
            t->total += t->chunk;
        }
        PTRIO_AWAIT(t, ptrio_stream_send_eof(t, t->s));
    } else {
        for (;;) {
            PTRIO_AWAIT(t, ptrio_stream_receive_some(t, t->s, t->buf,
                                                     sizeof t->buf));
            if ((t->n = PTRIO_RESULT(t)) == 0)
                break;
            for (i = 0; i < (size_t)t->n; i++) {     /* no ck_assert: */
                if (t->buf[i] != (char)(t->total + i))  /* one syscall */
                    t->bad++;                           /* each */
                t->sum += (unsigned char)t->buf[i];
            }
            t->total += (size_t)t->n;
        }
    }
    PTRIO_END(t);
}

struct streaming {
    ptrio_frame fr;
    ptrio_scope sc;
    ptrio_nursery n;
    ptrio_task t[4];
    ptrio_stream a, b;
    struct streamer st[4];
};

static int streaming(ptrio_frame *fr)
{
    struct streaming *x = PTRIO_SELF(fr, struct streaming);
    int sp[2], small = 10000, i;
    PTRIO_BEGIN(x);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    ck_assert_int_eq(setsockopt(sp[0], SOL_SOCKET, SO_SNDBUF, &small,
                                sizeof small), 0);
    PTRIO_CHECK(x, ptrio_stream_open(&x->a, sp[0]));
    PTRIO_CHECK(x, ptrio_stream_open(&x->b, sp[1]));
    for (i = 0; i < 4; i++) {
        x->st[i].s = i & 1 ? &x->b : &x->a;
        x->st[i].sender = i < 2;
        x->st[i].seed = (unsigned)i + 1;
    }
    PTRIO_FAIL_AFTER(x, &x->sc, DEADLINE) {
        PTRIO_NURSERY(x, &x->n) {
            for (i = 0; i < 4; i++)
                PTRIO_CHECK(x, ptrio_start_soon(&x->n, &x->t[i], streamer,
                                                &x->st[i]));
        }
    }
    PTRIO_FINALLY(x);
    ptrio_stream_close(&x->a);
    ptrio_stream_close(&x->b);
    PTRIO_END(x);
}

/* Trio: test_io.py::test_socket_actual_streaming, over streams: a
 * megabyte each way at once through a socket pair with a small send
 * buffer (many partial writes), a sender and a receiver on each end;
 * every byte arrives, in order, then end of stream. */
START_TEST(test_streaming_both_ways)
{
    static struct streaming X;
    int rc;
    memset(&X, 0, sizeof X);
    rc = run_io(streaming, &X);
    ck_assert_msg(rc == 0, "%s: sent %zu %zu, received %zu %zu, waiters %u",
                  ptrio_errname(rc), X.st[0].total, X.st[1].total,
                  X.st[2].total, X.st[3].total, io_loop.nwatch);
    ck_assert_uint_eq(X.st[0].total, STREAM_N);
    ck_assert_uint_eq(X.st[1].total, STREAM_N);
    ck_assert_uint_eq(X.st[3].total, STREAM_N);     /* b got a's */
    ck_assert_uint_eq(X.st[2].total, STREAM_N);     /* a got b's */
    ck_assert_uint_eq(X.st[2].bad + X.st[3].bad, 0);   /* in order */
    ck_assert_uint_eq(X.st[3].sum, X.st[0].sum);
    ck_assert_uint_eq(X.st[2].sum, X.st[1].sum);
    ck_assert_uint_eq(io_loop.nwatch, 0);
}
END_TEST

/* ---- readiness and a cancel in one batch -------------------------------- */

struct race {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    ptrio_stream s;
    int sp[2], dupfd;
    struct race_rx {
        ptrio_frame fr;
        struct race *x;
        ptrio_scope sc;
        char buf[16];
        int n, after;
    } rx;
    struct race_cancel {
        ptrio_frame fr;
        struct race *x;
    } cx;
};

static int race_rx(ptrio_frame *fr)
{
    struct race_rx *r = PTRIO_SELF(fr, struct race_rx);
    PTRIO_BEGIN(r);
    PTRIO_CANCEL_SCOPE(r, &r->sc) {
        PTRIO_TRY(r, r->n, ptrio_stream_receive_some(r, &r->x->s, r->buf,
                                                     sizeof r->buf));
        PTRIO_TRY(r, r->after, ptrio_checkpoint(r));
    }
    PTRIO_END(r);
}

/* Wakes with the receiver (the same socket, through a dup), and cancels
 * it: whichever runs first, the receiver was already rescheduled. */
static int race_cancel(ptrio_frame *fr)
{
    struct race_cancel *c = PTRIO_SELF(fr, struct race_cancel);
    PTRIO_BEGIN(c);
    PTRIO_AWAIT(c, ptrio_wait_readable(c, c->x->dupfd));
    ptrio_cancel(&c->x->rx.sc);
    PTRIO_END(c);
}

static int race(ptrio_frame *fr)
{
    struct race *x = PTRIO_SELF(fr, struct race);
    PTRIO_BEGIN(x);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, x->sp), 0);
    x->dupfd = dup(x->sp[0]);
    PTRIO_CHECK(x, ptrio_stream_open(&x->s, x->sp[0]));
    x->rx.x = x->cx.x = x;
    PTRIO_NURSERY(x, &x->n) {
        PTRIO_CHECK(x, ptrio_start_soon(&x->n, &x->t[0], race_rx, &x->rx));
        PTRIO_CHECK(x, ptrio_start_soon(&x->n, &x->t[1], race_cancel,
                                        &x->cx));
        PTRIO_AWAIT(x, ptrio_sleep(x, PTRIO_MS(5)));
        ck_assert_uint_eq(ptrio_fd_waiters(), 2);
        ck_assert_int_eq(write(x->sp[1], "hello", 5), 5);
    }
    PTRIO_FINALLY(x);
    ptrio_stream_close(&x->s);
    close(x->dupfd);
    close(x->sp[1]);
    PTRIO_END(x);
}

/* Trio's wait_task_rescheduled: a task the I/O manager rescheduled is
 * past its abort, so a cancel in the same batch does not undo its
 * receive: the data is returned, and the cancellation comes at the next
 * checkpoint. */
START_TEST(test_ready_and_cancelled_in_one_batch)
{
    static struct race X;
    memset(&X, 0, sizeof X);
    ck_assert_int_eq(run_io(race, &X), 0);
    ck_assert_int_eq(X.rx.n, 5);
    ck_assert_int_eq(memcmp(X.rx.buf, "hello", 5), 0);
    ck_assert_int_eq(X.rx.after, -PTRIO_ECANCELED);
    ck_assert_uint_eq(io_loop.nwatch, 0);
}
END_TEST

/* ---- a stream over a regular file ------------------------------------ */

struct file_reader {
    ptrio_frame fr;
    ptrio_stream s;
    char buf[16];
    int rc[3];
};

static int file_reader(ptrio_frame *fr)
{
    struct file_reader *f = PTRIO_SELF(fr, struct file_reader);
    PTRIO_BEGIN(f);
    PTRIO_TRY(f, f->rc[0], ptrio_stream_receive_some(f, &f->s, f->buf, 3));
    PTRIO_TRY(f, f->rc[1], ptrio_stream_receive_some(f, &f->s, f->buf + 3,
                                                     sizeof f->buf - 3));
    PTRIO_TRY(f, f->rc[2], ptrio_stream_receive_some(f, &f->s, f->buf, 4));
    PTRIO_FINALLY(f);
    ptrio_stream_close(&f->s);
    PTRIO_END(f);
}

/* stdin redirected from a file: a regular file is always ready, so a
 * receive after a short read reads on (to end of file) instead of waiting
 * for readiness, which epoll refuses for regular files (-EPERM). */
START_TEST(test_stream_over_regular_file)
{
    static struct file_reader F;
    FILE *tmp = tmpfile();
    int fd;

    ck_assert_ptr_nonnull(tmp);
    ck_assert_int_ge(fputs("hello", tmp), 0);
    fflush(tmp);
    fd = dup(fileno(tmp));
    fclose(tmp);
    ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
    memset(&F, 0, sizeof F);
    ck_assert_int_eq(ptrio_stream_open(&F.s, fd), 0);
    ck_assert_int_eq(run_io(file_reader, &F), 0);
    ck_assert_int_eq(F.rc[0], 3);
    ck_assert_int_eq(F.rc[1], 2);
    ck_assert_int_eq(F.rc[2], 0);
    ck_assert_int_eq(memcmp(F.buf, "hello", 5), 0);
}
END_TEST

/* ---- ports in use, rebinding, shutdown -------------------------------- */

struct rebind {
    ptrio_frame fr;
    ptrio_listener l1, l2, busy;
    ptrio_stream est, tw;       /* accepted: established, then TIME_WAIT */
    int p, c_est, c_tw, rc_busy;
};

static int rebind(ptrio_frame *fr)
{
    struct rebind *r = PTRIO_SELF(fr, struct rebind);
    PTRIO_BEGIN(r);
    PTRIO_CHECK(r, ptrio_tcp_listen(&r->l1, "127.0.0.1", 0, 0));
    r->p = ptrio_listener_port(&r->l1);
    r->rc_busy = ptrio_tcp_listen(&r->busy, "127.0.0.1", r->p, 0);
    r->c_est = dial("127.0.0.1", r->p);
    ck_assert_int_ge(r->c_est, 0);
    PTRIO_AWAIT(r, ptrio_listener_accept(r, &r->l1, &r->est));
    r->c_tw = dial("127.0.0.1", r->p);
    ck_assert_int_ge(r->c_tw, 0);
    PTRIO_AWAIT(r, ptrio_listener_accept(r, &r->l1, &r->tw));
    ptrio_stream_close(&r->tw);     /* the server closes first: TIME_WAIT */
    ptrio_listener_close(&r->l1);
    PTRIO_CHECK(r, ptrio_tcp_listen(&r->l2, "127.0.0.1", r->p, 0));
    PTRIO_FINALLY(r);
    ptrio_listener_close(&r->l1);
    ptrio_listener_close(&r->l2);
    ptrio_stream_close(&r->est);
    ptrio_stream_close(&r->tw);
    if (r->c_est >= 0)
        close(r->c_est);
    if (r->c_tw >= 0)
        close(r->c_tw);
    PTRIO_END(r);
}

/* Trio: test_highlevel_open_tcp_listeners.py::test_open_tcp_listeners_
 * rebind: a port with a listener on it cannot be bound again (-EADDRINUSE,
 * SO_REUSEADDR or not, and no fd left open); once that listener is
 * closed, connections it left established or in TIME_WAIT do not stop a
 * new listener on the same port. */
START_TEST(test_listen_port_in_use_and_rebind)
{
    static struct rebind R;
    int fds0 = count_fds();
    memset(&R, 0, sizeof R);
    R.c_est = R.c_tw = -1;
    ck_assert_int_eq(run_io(rebind, &R), 0);
    ck_assert_int_eq(R.rc_busy, -PTRIO_EADDRINUSE);
    ck_assert_int_eq(ptrio_listener_fd(&R.busy), -1);
    ck_assert_int_eq(count_fds(), fds0);
}
END_TEST

/* ---- accept errors that are skipped ----------------------------------- */

/* The next `fake_aborts` accepts fail with ECONNABORTED, as when a client
 * resets a connection before it is accepted; the rest go to the system.
 * (The library's accept4, or accept, binds to this one.) */
static int fake_aborts;
static const int *fake_script;  /* test_accept_errors' */

#ifdef HAVE_ACCEPT4
/* Declared with glibc's transparent union under _GNU_SOURCE, a type that
 * no definition can repeat: ISO C calls the two incompatible, the ABI does
 * not (the union is passed as its pointer). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    if (fake_aborts > 0) {
        fake_aborts--;
        errno = ECONNABORTED;
        return -1;
    }
    if (fake_script && *fake_script && *fake_script++ > 0) {
        errno = fake_script[-1];
        return -1;
    }
    return (int)syscall(SYS_accept4, fd, addr, len, flags);
}
#pragma GCC diagnostic pop
#endif

struct aborts {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    ptrio_scope sc;
    ptrio_listener ls;
    ptrio_stream s;
    int client, rc, ticks, done, cancel_at, accepted, aborted;
};

struct aborts_child {
    ptrio_frame fr;
    struct aborts *a;
};

static int aborts_accept(ptrio_frame *fr)
{
    struct aborts_child *c = PTRIO_SELF(fr, struct aborts_child);
    struct aborts *a = c->a;
    PTRIO_BEGIN(c);
    PTRIO_CANCEL_SCOPE(c, &a->sc) {
        PTRIO_TRY(c, a->rc, ptrio_listener_accept(c, &a->ls, &a->s));
    }
    a->accepted = ptrio_stream_fd(&a->s) >= 0;
    a->aborted = a->cancel_at ? 1000000 - fake_aborts : 3 - fake_aborts;
    a->done = 1;
    PTRIO_END(c);
}

/* Counts the batches the accept spans; cancels it at tick `cancel_at`. */
static int aborts_tick(ptrio_frame *fr)
{
    struct aborts_child *c = PTRIO_SELF(fr, struct aborts_child);
    struct aborts *a = c->a;
    PTRIO_BEGIN(c);
    while (!a->done) {
        if (++a->ticks == a->cancel_at)
            ptrio_cancel(&a->sc);
        PTRIO_YIELD(c);
    }
    PTRIO_END(c);
}

struct aborts_main {
    ptrio_frame fr;
    struct aborts a;
    struct aborts_child c[2];
};

static int aborts_main(ptrio_frame *fr)
{
    struct aborts_main *m = PTRIO_SELF(fr, struct aborts_main);
    PTRIO_BEGIN(m);
    PTRIO_CHECK(m, ptrio_tcp_listen(&m->a.ls, "127.0.0.1", 0, 0));
    m->a.client = dial("127.0.0.1", ptrio_listener_port(&m->a.ls));
    ck_assert_int_ge(m->a.client, 0);
    m->c[0].a = m->c[1].a = &m->a;
    PTRIO_NURSERY(m, &m->a.n) {
        PTRIO_CHECK(m, ptrio_start_soon(&m->a.n, &m->a.t[0], aborts_accept,
                                        &m->c[0]));
        PTRIO_CHECK(m, ptrio_start_soon(&m->a.n, &m->a.t[1], aborts_tick,
                                        &m->c[1]));
    }
    PTRIO_FINALLY(m);
    fake_aborts = 0;
    ptrio_stream_close(&m->a.s);
    ptrio_listener_close(&m->a.ls);
    if (m->a.client >= 0)
        close(m->a.client);
    PTRIO_END(m);
}

/* Trio: SocketListener.accept skips the errors of a connection that died
 * before it was accepted (test_highlevel_socket.py::
 * test_SocketListener_accept_errors), and each attempt is a checkpoint of
 * its own. Three aborted connections, then a real one: the accept spans
 * four batches (a schedule point per failed attempt, and the one of the
 * accept that succeeded at once); endless aborts end when the accept is
 * cancelled, at the next attempt. */
START_TEST(test_accept_skips_aborted_connections)
{
#ifdef HAVE_ACCEPT4
    static struct aborts_main m;
    memset(&m, 0, sizeof m);
    m.a.client = -1;
    fake_aborts = 3;
    ck_assert_int_eq(run_io(aborts_main, &m), 0);
    ck_assert_int_eq(m.a.rc, 0);
    ck_assert(m.a.accepted);
    ck_assert_int_eq(m.a.aborted, 3);
    ck_assert_int_eq(m.a.ticks, 4);

    memset(&m, 0, sizeof m);
    m.a.client = -1;
    m.a.cancel_at = 3;
    fake_aborts = 1000000;
    ck_assert_int_eq(run_io(aborts_main, &m), 0);
    ck_assert_int_eq(m.a.rc, -PTRIO_ECANCELED);
    ck_assert(ptrio_cancel_called(&m.a.sc));
    ck_assert(!m.a.accepted);
    ck_assert_int_eq(m.a.aborted, 3);   /* the 4th attempt was cancelled */
    ck_assert_int_eq(m.a.ticks, 3);
#endif
}
END_TEST

struct busy_server {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    ptrio_listener ls;
    int rc;
};

static int busy_server(ptrio_frame *fr)
{
    struct busy_server *b = PTRIO_SELF(fr, struct busy_server);
    PTRIO_BEGIN(b);
    PTRIO_CHECK(b, ptrio_tcp_listen(&b->ls, "127.0.0.1", 0, 0));
    PTRIO_CHECK(b, ptrio_server_init(&srv, "127.0.0.1",
                                     ptrio_listener_port(&b->ls), echo,
                                     PTRIO_SERVER_SLOTS(clients, conn)));
    PTRIO_NURSERY(b, &b->n) {
        PTRIO_TRY(b, b->rc, ptrio_start(b, &b->n, &b->t, ptrio_serve_tcp,
                                        &srv, NULL));
    }
    PTRIO_FINALLY(b);
    ptrio_listener_close(&b->ls);
    PTRIO_END(b);
}

/* serve_tcp on a port in use: ptrio_start fails with -EADDRINUSE (the
 * server never started), and leaves no fd open. */
START_TEST(test_serve_port_in_use)
{
    static struct busy_server B;
    int fds0 = count_fds();
    memset(&B, 0, sizeof B);
    ck_assert_int_eq(run_io(busy_server, &B), 0);
    ck_assert_int_eq(B.rc, -PTRIO_EADDRINUSE);
    ck_assert_int_eq(ptrio_server_port(&srv), -1);
    ck_assert_int_eq(count_fds(), fds0);
}
END_TEST

struct broken_listener {
    ptrio_frame fr;
    ptrio_scope sc;
    ptrio_nursery n;
    ptrio_task t;
    int rc;
};

static int broken_listener(ptrio_frame *fr)
{
    struct broken_listener *b = PTRIO_SELF(fr, struct broken_listener);
    PTRIO_BEGIN(b);
    PTRIO_CHECK(b, ptrio_server_init(&srv, "127.0.0.1", 0, echo,
                                     PTRIO_SERVER_SLOTS(clients, conn)));
    PTRIO_TRY_BLOCK(b, &b->sc) {
        PTRIO_NURSERY(b, &b->n) {
            PTRIO_AWAIT(b, ptrio_start(b, &b->n, &b->t, ptrio_serve_tcp, &srv,
                                       NULL));
            PTRIO_AWAIT(b, ptrio_sleep(b, PTRIO_MS(5)));
            /* Linux: accept on a shut-down listener fails with EINVAL. */
            ck_assert_int_eq(shutdown(ptrio_listener_fd(&srv.listener),
                                      SHUT_RDWR), 0);
        }
    }
    b->rc = ptrio_scope_error(&b->sc);
    PTRIO_END(b);
}

/* Trio: test_highlevel_serve_listeners.py::test_serve_listeners_accept_
 * unrecognized_error: an accept error that is neither transient nor
 * running out of fds stops the server with that error, which reaches its
 * nursery; the listener is closed. */
START_TEST(test_serve_accept_error_stops_server)
{
    static struct broken_listener B;
    int fds0 = count_fds();
    memset(&B, 0, sizeof B);
    ck_assert_int_eq(run_io(broken_listener, &B), 0);
    ck_assert_int_eq(B.rc, -PTRIO_EINVAL);
    ck_assert_int_eq(ptrio_server_port(&srv), -1);
    ck_assert_int_eq(count_fds(), fds0);
    ck_assert_uint_eq(io_loop.nwatch, 0);
}
END_TEST

struct idle_client {
    ptrio_frame fr;
    int fd;
};

/* Connects and leaves the connection open, its handler waiting. */
static int idle_client(ptrio_frame *fr)
{
    struct idle_client *c = PTRIO_SELF(fr, struct idle_client);
    PTRIO_BEGIN(c);
    c->fd = dial("127.0.0.1", port);
    ck_assert_int_ge(c->fd, 0);
    while (live < 1)
        PTRIO_AWAIT(c, ptrio_sleep(c, PTRIO_MS(1)));
    PTRIO_END(c);
}

/* Trio: test_highlevel_serve_listeners.py::test_serve_listeners_basic
 * (the end): cancelling the server cancels its handlers, closes their
 * streams and its listener: the port refuses connections, the client
 * reads end of stream, and no fd is left open. */
START_TEST(test_serve_shutdown_closes_everything)
{
    static struct idle_client C;
    char b;
    int fds0 = count_fds(), fd;
    memset(&C, 0, sizeof C);
    C.fd = -1;
    ck_assert_int_eq(run_with_server(idle_client, &C), 0);
    ck_assert_int_eq(live, 0);
    ck_assert_int_eq(read(C.fd, &b, 1), 0);
    close(C.fd);
    ck_assert_int_eq(ptrio_server_port(&srv), -1);
    ck_assert_int_eq(count_fds(), fds0);
    fd = dial("127.0.0.1", port);
    ck_assert_int_lt(fd, 0);
    ck_assert_int_eq(errno, ECONNREFUSED);
}
END_TEST

/* ---- Trio's stream rules: send after EOF, failures are checkpoints ---- */

/* A task that only logs: it runs when the caller reaches a schedule
 * point. */
struct bystander {
    ptrio_frame fr;
};

static int bystander(ptrio_frame *fr)
{
    struct bystander *b = PTRIO_SELF(fr, struct bystander);
    PTRIO_BEGIN(b);
    tlog_add(&L, "other");
    PTRIO_END(b);
}

enum { F_SEND, F_RECV, F_ACCEPT, F_EOF, F_N };

struct fails_at_once {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct bystander b;
    ptrio_stream s;
    ptrio_listener ls;
    int mode, rc, sp[2];
    char buf[8];
};

/* Starts a bystander, then makes one call that fails without waiting:
 * send_all to a closed peer (EPIPE), receive_some on a socket that was
 * never connected (ENOTCONN), accept on a socket that is not listening
 * (EINVAL), send_eof on a pipe (ENOTSOCK). */
static int fails_at_once(ptrio_frame *fr)
{
    struct fails_at_once *f = PTRIO_SELF(fr, struct fails_at_once);
    int fd;
    PTRIO_BEGIN(f);
    if (f->mode == F_SEND) {
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, f->sp), 0);
        close(f->sp[1]);
        PTRIO_CHECK(f, ptrio_stream_open(&f->s, f->sp[0]));
    } else if (f->mode == F_EOF) {
        ck_assert_int_eq(pipe(f->sp), 0);
        close(f->sp[0]);
        PTRIO_CHECK(f, ptrio_stream_open(&f->s, f->sp[1]));
    } else {
        fd = socket(AF_INET, SOCK_STREAM, 0);
        ck_assert_int_ge(fd, 0);
        if (f->mode == F_RECV)
            PTRIO_CHECK(f, ptrio_stream_open(&f->s, fd));
        else
            f->ls.fdp1 = fd + 1;    /* a listener that never listened */
    }
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, bystander, &f->b));
        if (f->mode == F_SEND)
            PTRIO_TRY(f, f->rc, ptrio_stream_send_all(f, &f->s, "x", 1));
        else if (f->mode == F_RECV)
            PTRIO_TRY(f, f->rc, ptrio_stream_receive_some(f, &f->s, f->buf,
                                                          sizeof f->buf));
        else if (f->mode == F_EOF)
            PTRIO_TRY(f, f->rc, ptrio_stream_send_eof(f, &f->s));
        else
            PTRIO_TRY(f, f->rc, ptrio_listener_accept(f, &f->ls, &f->s));
        tlog_add(&L, "failed");
    }
    PTRIO_FINALLY(f);
    ptrio_stream_close(&f->s);
    ptrio_listener_close(&f->ls);
    PTRIO_END(f);
}

/* Trio's _nonblocking_helper (_try_sync): a call whose system call fails
 * at once still passes a schedule point before raising, so a task that
 * retries a failing call cannot starve the others. */
START_TEST(test_failure_at_once_is_a_schedule_point)
{
    static struct fails_at_once F;
    static const int want[F_N] = {-PTRIO_EPIPE, -PTRIO_ENOTCONN,
                                  -PTRIO_EINVAL, -PTRIO_ENOTSOCK};
    int mode;

    for (mode = 0; mode < F_N; mode++) {
        tlog_clear(&L);
        memset(&F, 0, sizeof F);
        F.mode = mode;
        ck_assert_int_eq(run_io(fails_at_once, &F), 0);
        ck_assert_msg(F.rc == want[mode], "mode %d: %s", mode,
                      ptrio_errname(F.rc));
        ck_assert_msg(strcmp(L.buf, "other failed") == 0, "mode %d: %s",
                      mode, L.buf);
    }
}
END_TEST

enum { C_RECV, C_SEND, C_EOF, C_SEND_EMPTY, C_N };

struct closed_ops {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct bystander b;
    ptrio_scope sc;
    ptrio_stream s;
    int mode, rc, rc_cancelled, sp[2];
    char buf[8];
};

static int closed_op(struct closed_ops *c)
{
    switch (c->mode) {
    case C_RECV:
        return ptrio_stream_receive_some(c, &c->s, c->buf, sizeof c->buf);
    case C_SEND:
        return ptrio_stream_send_all(c, &c->s, "x", 1);
    case C_EOF:
        return ptrio_stream_send_eof(c, &c->s);
    default:
        return ptrio_stream_send_all(c, &c->s, "", 0);
    }
}

/* Starts a bystander, then calls one stream operation on a stream closed
 * before it; then the same in a cancelled scope. */
static int closed_ops(ptrio_frame *fr)
{
    struct closed_ops *c = PTRIO_SELF(fr, struct closed_ops);
    PTRIO_BEGIN(c);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, c->sp), 0);
    PTRIO_CHECK(c, ptrio_stream_open(&c->s, c->sp[0]));
    ptrio_stream_close(&c->s);
    close(c->sp[1]);
    PTRIO_NURSERY(c, &c->n) {
        PTRIO_CHECK(c, ptrio_start_soon(&c->n, &c->t, bystander, &c->b));
        PTRIO_TRY(c, c->rc, closed_op(c));
        tlog_add(&L, "failed");
    }
    PTRIO_CANCEL_SCOPE(c, &c->sc) {
        ptrio_cancel(&c->sc);
        PTRIO_TRY(c, c->rc_cancelled, closed_op(c));
    }
    PTRIO_END(c);
}

/* Trio: SocketStream's receive_some, send_all and send_eof on a stream
 * closed before the call: ClosedResourceError, after a checkpoint, as
 * every call of the socket layer (_try_sync: a cancel point, the failed
 * system call, then a schedule point; send_eof: a checkpoint first). So
 * the other task runs first, and in a cancelled scope the call is the
 * cancellation. Only send_all of nothing fails at once (Trio checks the
 * socket before its checkpoint there). */
START_TEST(test_closed_stream_ops_are_checkpoints)
{
    static struct closed_ops C;
    static const char *const order[C_N] = {"other failed", "other failed",
                                           "other failed", "failed other"};
    static const int cancelled[C_N] = {-PTRIO_ECANCELED, -PTRIO_ECANCELED,
                                       -PTRIO_ECANCELED, -PTRIO_ECLOSED};
    int mode;

    for (mode = 0; mode < C_N; mode++) {
        tlog_clear(&L);
        memset(&C, 0, sizeof C);
        C.mode = mode;
        ck_assert_int_eq(run_io(closed_ops, &C), 0);
        ck_assert_msg(C.rc == -PTRIO_ECLOSED, "mode %d: %s", mode,
                      ptrio_errname(C.rc));
        ck_assert_msg(strcmp(L.buf, order[mode]) == 0, "mode %d: %s", mode,
                      L.buf);
        ck_assert_msg(C.rc_cancelled == cancelled[mode], "mode %d: %s", mode,
                      ptrio_errname(C.rc_cancelled));
    }
}
END_TEST

struct after_eof {
    ptrio_frame fr;
    ptrio_stream s;
    int sp[2], rc[3], n;
    char buf[8];
};

static int after_eof(ptrio_frame *fr)
{
    struct after_eof *a = PTRIO_SELF(fr, struct after_eof);
    PTRIO_BEGIN(a);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, a->sp), 0);
    PTRIO_CHECK(a, ptrio_stream_open(&a->s, a->sp[0]));
    PTRIO_AWAIT(a, ptrio_stream_send_all(a, &a->s, "x", 1));
    PTRIO_AWAIT(a, ptrio_stream_send_eof(a, &a->s));
    PTRIO_TRY(a, a->rc[0], ptrio_stream_send_all(a, &a->s, "y", 1));
    PTRIO_TRY(a, a->rc[1], ptrio_stream_send_all(a, &a->s, NULL, 0));
    PTRIO_TRY(a, a->rc[2], ptrio_stream_send_eof(a, &a->s));
    /* The peer got "x" then end of stream, nothing of "y". */
    a->n = (int)read(a->sp[1], a->buf, sizeof a->buf);
    ck_assert_int_eq(a->n, 1);
    ck_assert_int_eq(read(a->sp[1], a->buf + 1, sizeof a->buf - 1), 0);
    PTRIO_FINALLY(a);
    ptrio_stream_close(&a->s);
    close(a->sp[1]);
    PTRIO_END(a);
}

/* Trio: testing/_check_streams.py::check_half_closeable_stream: after
 * send_eof, send_all fails with ClosedResourceError (-PTRIO_ECLOSED, not
 * the socket's EPIPE) and sends nothing; send_eof again is fine. */
START_TEST(test_send_after_send_eof_is_closed)
{
    static struct after_eof A;
    memset(&A, 0, sizeof A);
    ck_assert_int_eq(run_io(after_eof, &A), 0);
    ck_assert_int_eq(A.rc[0], -PTRIO_ECLOSED);
    ck_assert_int_eq(A.rc[1], -PTRIO_ECLOSED);
    ck_assert_int_eq(A.rc[2], 0);
    ck_assert_int_eq(A.buf[0], 'x');
}
END_TEST

/* ---- more of Trio's open_tcp_stream scenarios ------------------------ */

/* Trio's fake network gives each address a time to connect or fail, on a
 * mock clock. Here an address is a listener (connects at once), a closed
 * port (refused at once) or a dead listener (never answers); delays are
 * scaled down and times are real, so bounds are [expected, 1 s). */

static struct sockaddr_in6 fake_sa6[MAXADDR];

/* An IPv6 entry for the fake resolver, after the IPv4 ones of fake_add. */
static void fake_add6(const char *ip, int p)
{
    struct sockaddr_in6 *a = &fake_sa6[fake_n];
    struct addrinfo *ai = &fake_ai[fake_n];
    memset(a, 0, sizeof *a);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)p);
    ck_assert_int_eq(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
    memset(ai, 0, sizeof *ai);
    ai->ai_family = AF_INET6;
    ai->ai_socktype = SOCK_STREAM;
    ai->ai_addr = (struct sockaddr *)a;
    ai->ai_addrlen = sizeof *a;
    if (fake_n)
        fake_ai[fake_n - 1].ai_next = ai;
    fake_n++;
}

/* The one address stops listening while the connect hangs: the
 * retransmitted SYN (about 1 s after the first) is refused. */
struct slow_fail {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct he h;
    struct unlisten {
        ptrio_frame fr;
        struct dead *d;
    } u;
};

static int unlisten(ptrio_frame *fr)
{
    struct unlisten *u = PTRIO_SELF(fr, struct unlisten);
    PTRIO_BEGIN(u);
    PTRIO_AWAIT(u, ptrio_sleep(u, PTRIO_MS(100)));
    dead_close(u->d);
    PTRIO_END(u);
}

static int slow_fail(ptrio_frame *fr)
{
    struct slow_fail *s = PTRIO_SELF(fr, struct slow_fail);
    PTRIO_BEGIN(s);
    PTRIO_NURSERY(s, &s->n) {
        PTRIO_CHECK(s, ptrio_start_soon(&s->n, &s->t[0], unlisten, &s->u));
        PTRIO_CHECK(s, ptrio_start_soon(&s->n, &s->t[1], he, &s->h));
    }
    PTRIO_END(s);
}

/* Trio: test_highlevel_open_tcp_stream.py::test_one_host_slow_fail: the
 * one attempt fails late; its error is the connect's, when it comes. */
START_TEST(test_happy_eyeballs_one_host_slow_fail)
{
    static struct slow_fail S;
    static struct dead D;
    int fds0;
    dead_open(&D, "127.0.0.2");
    fake_n = 0;
    fake_add("127.0.0.2", ptrio_listener_port(&D.ls));
    memset(&S, 0, sizeof S);
    S.u.d = &D;
    S.h.limit = PTRIO_SEC(10);
    fds0 = count_fds() - 3;     /* the dead listener's, closed meanwhile */
    ck_assert_int_eq(run_io(slow_fail, &S), 0);
    ck_assert_int_eq(S.h.rc, -PTRIO_ECONNREFUSED);
    ck_assert_int_eq(ptrio_tcp_connect_attempts(&S.h.c), 1);
    ck_assert_int_eq(S.h.c.failures, 1);
    ck_assert_int_ge(S.h.ms, 100);
    ck_assert_int_lt(S.h.ms, 4000);
    ck_assert_int_eq(count_fds(), fds0);
}
END_TEST

/* Trio: test_highlevel_open_tcp_stream.py::test_early_success: the
 * second address connects while the first still hangs; it wins, and the
 * third address is never tried. */
START_TEST(test_happy_eyeballs_early_success)
{
    static struct he H;
    static struct dead D;
    ptrio_listener l[2];
    int fds0;

    memset(l, 0, sizeof l);
    dead_open(&D, "127.0.0.2");
    ck_assert_int_eq(ptrio_tcp_listen(&l[0], "127.0.0.1", 0, 0), 0);
    ck_assert_int_eq(ptrio_tcp_listen(&l[1], "127.0.0.3", 0, 0), 0);
    fake_n = 0;
    fake_add("127.0.0.2", ptrio_listener_port(&D.ls));
    fake_add("127.0.0.1", ptrio_listener_port(&l[0]));
    fake_add("127.0.0.3", ptrio_listener_port(&l[1]));
    fds0 = count_fds();
    memset(&H, 0, sizeof H);
    H.delay = PTRIO_MS(50);
    ck_assert_int_eq(run_io(he, &H), 0);
    ck_assert_int_eq(H.rc, 0);
    ck_assert_int_eq(H.winner_port, ptrio_listener_port(&l[0]));
    ck_assert_int_eq(ptrio_tcp_connect_attempts(&H.c), 2);
    ck_assert_int_ge(H.ms, 50);
    ck_assert_int_lt(H.ms, 1000);
    ck_assert_int_eq(count_fds(), fds0);
    ptrio_listener_close(&l[0]);
    ptrio_listener_close(&l[1]);
    dead_close(&D);
}
END_TEST

/* Trio: test_highlevel_open_tcp_stream.py::test_none_default (and
 * test_basic_fallthrough's default delay): a delay of 0 (Trio: None)
 * means the default 250 ms, also after another delay was set. */
START_TEST(test_happy_eyeballs_default_delay)
{
    static struct he H;
    static struct dead D;
    ptrio_listener l;

    memset(&l, 0, sizeof l);
    dead_open(&D, "127.0.0.2");
    ck_assert_int_eq(ptrio_tcp_listen(&l, "127.0.0.1", 0, 0), 0);
    fake_n = 0;
    fake_add("127.0.0.2", ptrio_listener_port(&D.ls));
    fake_add("127.0.0.1", ptrio_listener_port(&l));
    memset(&H, 0, sizeof H);
    ptrio_tcp_connect_set_delay(&H.c, PTRIO_SEC(5));
    ptrio_tcp_connect_set_delay(&H.c, 0);
    ck_assert_int_eq(run_io(he, &H), 0);
    ck_assert_int_eq(H.rc, 0);
    ck_assert_int_eq(H.winner_port, ptrio_listener_port(&l));
    ck_assert_int_eq(ptrio_tcp_connect_attempts(&H.c), 2);
    ck_assert_int_ge(H.ms, 250);
    ck_assert_int_lt(H.ms, 1000);
    ptrio_listener_close(&l);
    dead_close(&D);
}
END_TEST

/* Trio: test_highlevel_open_tcp_stream.py::test_custom_errors_expedite:
 * two refused addresses each start the next attempt at once; the third
 * hangs, so the fourth starts one delay (100 ms) later, and wins. */
START_TEST(test_happy_eyeballs_errors_expedite)
{
    static struct he H;
    static struct dead D;
    ptrio_listener l;
    int fds0;

    memset(&l, 0, sizeof l);
    dead_open(&D, "127.0.0.2");
    ck_assert_int_eq(ptrio_tcp_listen(&l, "127.0.0.1", 0, 0), 0);
    fake_n = 0;
    fake_add("127.0.0.1", closed_port("127.0.0.1"));
    fake_add("127.0.0.3", closed_port("127.0.0.3"));
    fake_add("127.0.0.2", ptrio_listener_port(&D.ls));
    fake_add("127.0.0.1", ptrio_listener_port(&l));
    fds0 = count_fds();
    memset(&H, 0, sizeof H);
    H.delay = PTRIO_MS(100);
    ck_assert_int_eq(run_io(he, &H), 0);
    ck_assert_int_eq(H.rc, 0);
    ck_assert_int_eq(H.winner_port, ptrio_listener_port(&l));
    ck_assert_int_eq(ptrio_tcp_connect_attempts(&H.c), 4);
    ck_assert_int_eq(H.c.failures, 2);
    ck_assert_int_ge(H.ms, 100);
    ck_assert_int_lt(H.ms, 1000);
    ck_assert_int_eq(count_fds(), fds0);
    ptrio_listener_close(&l);
    dead_close(&D);
}
END_TEST

/* Trio: test_highlevel_open_tcp_stream.py::test_custom_delay: with a
 * delay longer than the first address takes to connect (it accepts late:
 * about 1 s, the SYN retransmit), the first one wins and the second is
 * never tried. */
START_TEST(test_happy_eyeballs_custom_delay)
{
    static struct late_accept A;
    static struct dead D;
    ptrio_listener l;

    memset(&l, 0, sizeof l);
    dead_open(&D, "127.0.0.2");
    ck_assert_int_eq(ptrio_tcp_listen(&l, "127.0.0.1", 0, 0), 0);
    fake_n = 0;
    fake_add("127.0.0.2", ptrio_listener_port(&D.ls));
    fake_add("127.0.0.1", ptrio_listener_port(&l));
    memset(&A, 0, sizeof A);
    A.a.d = &D;
    A.h.limit = PTRIO_SEC(10);
    A.h.delay = PTRIO_SEC(4);
    ck_assert_int_eq(run_io(late_accept, &A), 0);
    ck_assert_int_eq(A.h.rc, 0);
    ck_assert_int_eq(A.h.winner_port, ptrio_listener_port(&D.ls));
    ck_assert_int_eq(ptrio_tcp_connect_attempts(&A.h.c), 1);
    ck_assert_int_ge(A.h.ms, 100);
    ck_assert_int_lt(A.h.ms, 4000);
    ptrio_listener_close(&l);
    dead_close(&D);
}
END_TEST

/* Trio: test_highlevel_open_tcp_stream.py::test_does_reorder and
 * test_reorder_for_rfc_6555_section_5_4: the first address of the other
 * family is tried second (so ::1 wins over the IPv4 listener listed
 * before it); a list whose first two already differ is left alone. */
START_TEST(test_happy_eyeballs_does_reorder)
{
    static struct he H;
    static struct dead D;
    ptrio_listener l4, l6;
    int round;

    memset(&l4, 0, sizeof l4);
    memset(&l6, 0, sizeof l6);
    dead_open(&D, "127.0.0.2");
    ck_assert_int_eq(ptrio_tcp_listen(&l4, "127.0.0.1", 0, 0), 0);
    ck_assert_int_eq(ptrio_tcp_listen(&l6, "::1", 0, 0), 0);
    for (round = 0; round < 2; round++) {
        fake_n = 0;
        fake_add("127.0.0.2", ptrio_listener_port(&D.ls));
        if (round == 0) {           /* 4 4 6: the 6 moves up */
            fake_add("127.0.0.1", ptrio_listener_port(&l4));
            fake_add6("::1", ptrio_listener_port(&l6));
        } else {                    /* 4 6 4: as it is */
            fake_add6("::1", ptrio_listener_port(&l6));
            fake_add("127.0.0.1", ptrio_listener_port(&l4));
        }
        memset(&H, 0, sizeof H);
        H.delay = PTRIO_MS(50);
        ck_assert_int_eq(run_io(he, &H), 0);
        ck_assert_int_eq(H.rc, 0);
        ck_assert_int_eq(H.peer.sin_family, AF_INET6);
        ck_assert_int_eq(H.winner_port, ptrio_listener_port(&l6));
        ck_assert_int_eq(ptrio_tcp_connect_attempts(&H.c), 2);
        ck_assert_int_ge(H.ms, 50);
        ck_assert_int_lt(H.ms, 1000);
    }
    ptrio_listener_close(&l4);
    ptrio_listener_close(&l6);
    dead_close(&D);
}
END_TEST

/* Trio: test_highlevel_open_tcp_stream.py::test_cancel: four addresses
 * that never answer, all started (20 ms apart), then the caller's
 * deadline: -ECANCELED, every socket is closed and
 * no wait is left. */
START_TEST(test_happy_eyeballs_cancel)
{
    static struct he H;
    static struct dead D[2];
    int fds0, i;

    dead_open(&D[0], "127.0.0.2");
    dead_open(&D[1], "127.0.0.3");
    fake_n = 0;
    for (i = 0; i < 4; i++)
        fake_add(i & 1 ? "127.0.0.3" : "127.0.0.2",
                 ptrio_listener_port(&D[i & 1].ls));
    fds0 = count_fds();
    memset(&H, 0, sizeof H);
    H.delay = PTRIO_MS(20);
    H.limit = PTRIO_MS(200);
    ck_assert_int_eq(run_io(he, &H), 0);
    ck_assert_int_eq(H.rc, -PTRIO_ECANCELED);
    ck_assert(ptrio_cancel_called(&H.sc));
    ck_assert_int_eq(ptrio_tcp_connect_attempts(&H.c), 4);
    ck_assert_int_eq(H.c.failures, 0);
    ck_assert_int_ge(H.ms, 200);
    ck_assert_int_lt(H.ms, 1000);
    ck_assert_int_eq(count_fds(), fds0);
    dead_close(&D[0]);
    dead_close(&D[1]);
}
END_TEST

struct bad_args {
    ptrio_frame fr;
    ptrio_tcp_connect c;
    ptrio_stream s;
    ptrio_listener ls;
    int rc[6];
};

static int bad_args(ptrio_frame *fr)
{
    struct bad_args *b = PTRIO_SELF(fr, struct bad_args);
    PTRIO_BEGIN(b);
    PTRIO_TRY(b, b->rc[0], ptrio_open_tcp_stream(b, &b->c, &b->s, NULL, 80));
    PTRIO_TRY(b, b->rc[1], ptrio_open_tcp_stream(b, &b->c, &b->s,
                                                 "127.0.0.1", 0));
    PTRIO_TRY(b, b->rc[2], ptrio_open_tcp_stream(b, &b->c, &b->s,
                                                 "127.0.0.1", -1));
    PTRIO_TRY(b, b->rc[3], ptrio_open_tcp_stream(b, &b->c, &b->s,
                                                 "127.0.0.1", 65536));
    b->rc[4] = ptrio_tcp_listen(&b->ls, "127.0.0.1", -1, 0);
    b->rc[5] = ptrio_tcp_listen(&b->ls, "127.0.0.1", 65536, 0);
    PTRIO_END(b);
}

/* Trio: test_highlevel_open_tcp_stream.py::test_open_tcp_stream_input_
 * validation and test_highlevel_open_tcp_listeners.py::test_open_tcp_
 * listeners_port_checking: no host, or a port out of range, is
 * -PTRIO_EINVAL (ValueError / TypeError), with no attempt and no fd. */
START_TEST(test_connect_and_listen_input_validation)
{
    static struct bad_args B;
    int fds0 = count_fds(), i;
    memset(&B, 0, sizeof B);
    ck_assert_int_eq(run_io(bad_args, &B), 0);
    for (i = 0; i < 6; i++)
        ck_assert_msg(B.rc[i] == -PTRIO_EINVAL, "case %d: %s", i,
                      ptrio_errname(B.rc[i]));
    ck_assert_int_eq(ptrio_tcp_connect_attempts(&B.c), 0);
    ck_assert_int_eq(ptrio_stream_fd(&B.s), -1);
    ck_assert_int_eq(ptrio_listener_fd(&B.ls), -1);
    ck_assert_int_eq(count_fds(), fds0);
}
END_TEST

/* ---- listeners: names, closed listeners, backlog, IPv6 ----------------- */

static int same_addr(const struct sockaddr_storage *a,
                     const struct sockaddr_storage *b)
{
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_family == AF_INET && y->sin_family == AF_INET &&
           x->sin_port == y->sin_port &&
           x->sin_addr.s_addr == y->sin_addr.s_addr;
}

struct names {
    ptrio_frame fr;
    ptrio_listener ls;
    ptrio_tcp_connect c;
    ptrio_stream in, out, tcp;
    int client, nodelay[3], rc_dgram, dgram;
    struct sockaddr_storage lname, sname, speer, cname;
};

static int nodelay_of(int fd)
{
    int v = -1;
    socklen_t len = sizeof v;
    ck_assert_int_eq(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len), 0);
    return v != 0;
}

static int names(ptrio_frame *fr)
{
    struct names *n = PTRIO_SELF(fr, struct names);
    socklen_t len;
    PTRIO_BEGIN(n);
    PTRIO_CHECK(n, ptrio_tcp_listen(&n->ls, "127.0.0.1", 0, 0));
    n->client = dial("127.0.0.1", ptrio_listener_port(&n->ls));
    ck_assert_int_ge(n->client, 0);
    PTRIO_AWAIT(n, ptrio_listener_accept(n, &n->ls, &n->in));
    len = sizeof n->lname;
    getsockname(ptrio_listener_fd(&n->ls), (struct sockaddr *)&n->lname, &len);
    len = sizeof n->sname;
    getsockname(ptrio_stream_fd(&n->in), (struct sockaddr *)&n->sname, &len);
    len = sizeof n->speer;
    getpeername(ptrio_stream_fd(&n->in), (struct sockaddr *)&n->speer, &len);
    len = sizeof n->cname;
    getsockname(n->client, (struct sockaddr *)&n->cname, &len);
    n->nodelay[0] = nodelay_of(ptrio_stream_fd(&n->in));
    /* A TCP fd wrapped by hand, and a connect's stream. */
    PTRIO_CHECK(n, ptrio_stream_open(&n->tcp, n->client));
    n->client = -1;
    n->nodelay[1] = nodelay_of(ptrio_stream_fd(&n->tcp));
    PTRIO_AWAIT(n, ptrio_open_tcp_stream(n, &n->c, &n->out, "127.0.0.1",
                                         ptrio_listener_port(&n->ls)));
    n->nodelay[2] = nodelay_of(ptrio_stream_fd(&n->out));
    /* Not a stream socket. */
    n->dgram = socket(AF_INET, SOCK_DGRAM, 0);
    ck_assert_int_ge(n->dgram, 0);
    ptrio_stream_close(&n->tcp);
    n->rc_dgram = ptrio_stream_open(&n->tcp, n->dgram);
    PTRIO_FINALLY(n);
    ptrio_stream_close(&n->in);
    ptrio_stream_close(&n->out);
    if (n->rc_dgram < 0 && n->dgram >= 0)
        close(n->dgram);        /* not taken */
    ptrio_stream_close(&n->tcp);
    ptrio_listener_close(&n->ls);
    if (n->client >= 0)
        close(n->client);
    PTRIO_END(n);
}

/* Trio: test_highlevel_socket.py::test_SocketListener (the accepted
 * stream's names: the listener's address, the client's as peer) and
 * test_SocketStream_basics: TCP_NODELAY is on for every TCP stream
 * (accepted, connected, wrapped by hand); a socket that is not
 * SOCK_STREAM is refused (-PTRIO_EINVAL: ValueError), and left to the
 * caller. */
START_TEST(test_listener_names_and_stream_options)
{
    static struct names N;
    int fds0 = count_fds();
    memset(&N, 0, sizeof N);
    N.client = N.dgram = -1;
    ck_assert_int_eq(run_io(names, &N), 0);
    ck_assert(same_addr(&N.sname, &N.lname));
    ck_assert(same_addr(&N.speer, &N.cname));
    ck_assert_int_eq(N.nodelay[0], 1);
    ck_assert_int_eq(N.nodelay[1], 1);
    ck_assert_int_eq(N.nodelay[2], 1);
    ck_assert_int_eq(N.rc_dgram, -PTRIO_EINVAL);
    ck_assert_int_eq(count_fds(), fds0);
}
END_TEST

enum { A_CLOSED, A_UNDERFOOT, A_N };

struct closed_accept {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct bystander b;
    ptrio_scope sc;
    ptrio_listener ls;
    ptrio_stream s;
    int mode, rc, rc_cancelled;
};

static int closed_accept(ptrio_frame *fr)
{
    struct closed_accept *c = PTRIO_SELF(fr, struct closed_accept);
    PTRIO_BEGIN(c);
    PTRIO_CHECK(c, ptrio_tcp_listen(&c->ls, "127.0.0.1", 0, 0));
    if (c->mode == A_CLOSED)
        ptrio_listener_close(&c->ls);
    else
        close(ptrio_listener_fd(&c->ls));   /* behind the listener's back */
    PTRIO_NURSERY(c, &c->n) {
        PTRIO_CHECK(c, ptrio_start_soon(&c->n, &c->t, bystander, &c->b));
        PTRIO_TRY(c, c->rc, ptrio_listener_accept(c, &c->ls, &c->s));
        tlog_add(&L, "failed");
    }
    /* A cancel point too: in a cancelled scope it is the cancellation. */
    PTRIO_CANCEL_SCOPE(c, &c->sc) {
        ptrio_cancel(&c->sc);
        PTRIO_TRY(c, c->rc_cancelled, ptrio_listener_accept(c, &c->ls, &c->s));
    }
    PTRIO_FINALLY(c);
    if (c->mode == A_UNDERFOOT)
        c->ls.fdp1 = 0;             /* its fd is closed already */
    ptrio_listener_close(&c->ls);
    ptrio_stream_close(&c->s);
    PTRIO_END(c);
}

/* Trio: test_highlevel_socket.py::test_SocketListener (accept after
 * aclose) and test_SocketListener_socket_closed_underfoot: accepting on
 * a closed listener, or on one whose socket was closed under it (EBADF),
 * fails with -PTRIO_ECLOSED (ClosedResourceError), and the call is a
 * checkpoint: a schedule point (the other task runs first) and a cancel
 * point (-PTRIO_ECANCELED in a cancelled scope). */
START_TEST(test_accept_on_closed_listener)
{
    static struct closed_accept C;
    int mode;
    for (mode = 0; mode < A_N; mode++) {
        tlog_clear(&L);
        memset(&C, 0, sizeof C);
        C.mode = mode;
        ck_assert_int_eq(run_io(closed_accept, &C), 0);
        ck_assert_msg(C.rc == -PTRIO_ECLOSED, "mode %d: %s", mode,
                      ptrio_errname(C.rc));
        ck_assert_msg(strcmp(L.buf, "other failed") == 0, "mode %d: %s",
                      mode, L.buf);
        ck_assert_msg(C.rc_cancelled == -PTRIO_ECANCELED, "mode %d: %s",
                      mode, ptrio_errname(C.rc_cancelled));
        ck_assert(ptrio_cancel_called(&C.sc));
    }
}
END_TEST

/* The backlog each listen() got (the library's listen binds to this). */
static int last_backlog = -2;

#ifdef SYS_listen
int listen(int fd, int backlog)
{
    last_backlog = backlog;
    return (int)syscall(SYS_listen, fd, backlog);
}

/* Trio: test_highlevel_open_tcp_listeners.py::test_open_tcp_listeners_
 * backlog: no backlog (here <= 0) asks for 0xFFFF, which the kernel caps
 * at its own maximum (a SOMAXCONN from a header may be below it); larger
 * ones are capped at 0xFFFF (systems that keep it in 16 bits would wrap);
 * others are passed as they are. */
START_TEST(test_listen_backlog)
{
    static const int in[] = {0, -1, 99999999, 10, 1, 0xFFFF};
    static const int want[] = {0xFFFF, 0xFFFF, 0xFFFF, 10, 1, 0xFFFF};
    ptrio_listener ls;
    unsigned i;

    for (i = 0; i < sizeof in / sizeof in[0]; i++) {
        memset(&ls, 0, sizeof ls);
        last_backlog = -2;
        ck_assert_int_eq(ptrio_tcp_listen(&ls, "127.0.0.1", 0, in[i]), 0);
        ck_assert_msg(last_backlog == want[i], "backlog %d: listen got %d",
                      in[i], last_backlog);
        ptrio_listener_close(&ls);
    }
}
END_TEST
#endif

struct v6only {
    ptrio_frame fr;
    ptrio_listener l6, l4;
    struct he h;
    struct sockaddr_in6 a6;
    struct sockaddr_in a4;
    int p;
};

static int v6only(ptrio_frame *fr)
{
    struct v6only *v = PTRIO_SELF(fr, struct v6only);
    socklen_t len;
    PTRIO_BEGIN(v);
    PTRIO_CHECK(v, ptrio_tcp_listen(&v->l6, "::1", 0, 0));
    len = sizeof v->a6;
    ck_assert_int_eq(getsockname(ptrio_listener_fd(&v->l6),
                                 (struct sockaddr *)&v->a6, &len), 0);
    v->h.host = "127.0.0.1";
    v->h.p = ptrio_listener_port(&v->l6);
    PTRIO_CALL(v, he, &v->h);
    /* A port picked, closed, then asked for by number on 127.0.0.1. */
    PTRIO_CHECK(v, ptrio_tcp_listen(&v->l4, "127.0.0.1", 0, 0));
    v->p = ptrio_listener_port(&v->l4);
    ptrio_listener_close(&v->l4);
    PTRIO_CHECK(v, ptrio_tcp_listen(&v->l4, "127.0.0.1", v->p, 0));
    len = sizeof v->a4;
    ck_assert_int_eq(getsockname(ptrio_listener_fd(&v->l4),
                                 (struct sockaddr *)&v->a4, &len), 0);
    PTRIO_FINALLY(v);
    ptrio_listener_close(&v->l6);
    ptrio_listener_close(&v->l4);
    PTRIO_END(v);
}

/* Trio: test_highlevel_open_tcp_listeners.py::test_open_tcp_listeners_
 * ipv6_v6only (a listener on ::1 is IPv6 only: a connect to 127.0.0.1 on
 * its port is refused) and test_open_tcp_listeners_specific_port_
 * specific_host (the listener has the address and port asked for). */
START_TEST(test_listen_v6only_and_specific_port)
{
    static struct v6only V;
    struct in6_addr lo6 = IN6ADDR_LOOPBACK_INIT;
    memset(&V, 0, sizeof V);
    ck_assert_int_eq(run_io(v6only, &V), 0);
    ck_assert_int_eq(V.a6.sin6_family, AF_INET6);
    ck_assert_int_eq(memcmp(&V.a6.sin6_addr, &lo6, sizeof lo6), 0);
    ck_assert_int_eq(V.h.rc, -PTRIO_ECONNREFUSED);
    ck_assert_int_eq(ntohs(V.a4.sin_port), V.p);
    ck_assert_uint_eq(ntohl(V.a4.sin_addr.s_addr), INADDR_LOOPBACK);
}
END_TEST

/* ---- Trio's generic stream checks (testing/_check_streams.py) ---------- */

struct peer_closed {
    ptrio_frame fr;
    ptrio_listener ls;
    ptrio_stream s;
    int sv, rc[3], kind;
    char buf[4];
};

static int peer_closed(ptrio_frame *fr)
{
    struct peer_closed *p = PTRIO_SELF(fr, struct peer_closed);
    int sp[2], cl = -1;
    PTRIO_BEGIN(p);
    if (p->kind == 0) {
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
        cl = sp[0];
        p->sv = sp[1];
    } else {
        PTRIO_CHECK(p, ptrio_tcp_listen(&p->ls, "127.0.0.1", 0, 0));
        cl = dial("127.0.0.1", ptrio_listener_port(&p->ls));
        ck_assert_int_ge(cl, 0);
        p->sv = accept(ptrio_listener_fd(&p->ls), NULL, NULL);
        ck_assert_int_ge(p->sv, 0);
    }
    ck_assert_int_eq(write(p->sv, "x", 1), 1);
    close(p->sv);
    usleep(10000);      /* the FIN is in */
    p->rc[0] = ptrio_stream_open(&p->s, cl);
    if (p->rc[0] < 0)
        close(cl);
    PTRIO_TRY(p, p->rc[1], ptrio_stream_receive_some(p, &p->s, p->buf, 1));
    PTRIO_TRY(p, p->rc[2], ptrio_stream_receive_some(p, &p->s, p->buf + 1,
                                                     1));
    PTRIO_FINALLY(p);
    ptrio_stream_close(&p->s);
    ptrio_listener_close(&p->ls);
    PTRIO_END(p);
}

/* Trio: test_highlevel_socket.py::test_socket_stream_works_when_peer_
 * has_already_closed: wrapping a socket whose peer sent "x" and closed
 * works (setting TCP options on it must not fail the wrap); the stream
 * reads "x", then end of stream. Over a socket pair and over TCP. */
START_TEST(test_stream_peer_already_closed)
{
    static struct peer_closed P;
    int kind;
    for (kind = 0; kind < 2; kind++) {
        memset(&P, 0, sizeof P);
        P.kind = kind;
        ck_assert_int_eq(run_io(peer_closed, &P), 0);
        ck_assert_int_eq(P.rc[0], 0);
        ck_assert_int_eq(P.rc[1], 1);
        ck_assert_int_eq(P.buf[0], 'x');
        ck_assert_int_eq(P.rc[2], 0);
    }
}
END_TEST

struct one_way {
    ptrio_frame fr;
    ptrio_scope sc;
    ptrio_stream s, r;
    int sp[2], rc[12], sends;
    char buf[128], junk[100], y;
};

static void one_way_pair(struct one_way *o)
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, o->sp), 0);
    ck_assert_int_eq(ptrio_stream_open(&o->s, o->sp[0]), 0);
    ck_assert_int_eq(ptrio_stream_open(&o->r, o->sp[1]), 0);
}

static int one_way(ptrio_frame *fr)
{
    struct one_way *o = PTRIO_SELF(fr, struct one_way);
    PTRIO_BEGIN(o);
    one_way_pair(o);
    /* An empty send means nothing: the next receive gets "y". */
    PTRIO_AWAIT(o, ptrio_stream_send_all(o, &o->s, o->buf, 0));
    PTRIO_AWAIT(o, ptrio_stream_send_all(o, &o->s, "y", 1));
    PTRIO_AWAIT(o, ptrio_stream_receive_some(o, &o->r, o->buf, sizeof o->buf));
    o->rc[0] = PTRIO_RESULT(o);
    o->y = o->buf[0];
    /* The receiver closes: sending fails, and keeps failing. */
    ptrio_stream_close(&o->r);
    for (o->rc[1] = 0; o->rc[1] == 0 && o->sends < 100000; o->sends++)
        PTRIO_TRY(o, o->rc[1], ptrio_stream_send_all(o, &o->s, o->junk,
                                                     sizeof o->junk));
    PTRIO_TRY(o, o->rc[2], ptrio_stream_send_all(o, &o->s, o->junk,
                                                 sizeof o->junk));
    PTRIO_TRY(o, o->rc[3], ptrio_stream_receive_some(o, &o->r, o->buf, 4096));
    o->rc[4] = ptrio_stream_close(&o->r) | ptrio_stream_close(&o->r);
    /* The sender closes: sending fails as closed, even an empty send. */
    ptrio_stream_close(&o->s);
    PTRIO_TRY(o, o->rc[5], ptrio_stream_send_all(o, &o->s, o->junk,
                                                 sizeof o->junk));
    PTRIO_TRY(o, o->rc[6], ptrio_stream_send_all(o, &o->s, o->junk, 0));

    /* Send, then close: the receiver gets the data, then end of stream. */
    one_way_pair(o);
    PTRIO_AWAIT(o, ptrio_stream_send_all(o, &o->s, "z", 1));
    ptrio_stream_close(&o->s);
    PTRIO_TRY(o, o->rc[7], ptrio_stream_receive_some(o, &o->r, o->buf, 1));
    PTRIO_TRY(o, o->rc[8], ptrio_stream_receive_some(o, &o->r, o->buf + 1, 1));
    ptrio_stream_close(&o->r);

    /* In a cancelled scope both fail with the cancellation; nothing was
     * sent, and closing afterwards is fine. */
    one_way_pair(o);
    PTRIO_CANCEL_SCOPE(o, &o->sc) {
        ptrio_cancel(&o->sc);
        PTRIO_TRY(o, o->rc[9], ptrio_stream_send_all(o, &o->s, "w", 1));
        PTRIO_TRY(o, o->rc[10], ptrio_stream_receive_some(o, &o->r, o->buf,
                                                          1));
    }
    o->rc[11] = (int)recv(o->sp[1], o->buf, 1, MSG_DONTWAIT) < 0 &&
                (errno == EAGAIN || errno == EWOULDBLOCK);
    PTRIO_FINALLY(o);
    ptrio_stream_close(&o->s);
    ptrio_stream_close(&o->r);
    PTRIO_END(o);
}

/* Trio: testing/_check_streams.py::check_one_way_stream, over a socket
 * pair as in test_highlevel_socket.py::test_SocketStream_generic: an
 * empty send_all has no meaning; once the receiver closed, send_all fails
 * (-EPIPE: BrokenResourceError) and stays failed, and the closed side's
 * receive is -PTRIO_ECLOSED; closing twice is fine; after closing the
 * sender, send_all is -PTRIO_ECLOSED even when empty; data sent before a
 * close arrives, then end of stream; in a cancelled scope send_all and
 * receive_some are cancelled and send nothing. */
START_TEST(test_stream_check_one_way)
{
    static struct one_way O;
    int fds0 = count_fds();
    memset(&O, 0, sizeof O);
    ck_assert_int_eq(run_io(one_way, &O), 0);
    ck_assert_int_eq(O.rc[0], 1);
    ck_assert_int_eq(O.y, 'y');
    ck_assert_int_eq(O.rc[1], -PTRIO_EPIPE);
    ck_assert_int_eq(O.rc[2], -PTRIO_EPIPE);
    ck_assert_int_eq(O.rc[3], -PTRIO_ECLOSED);
    ck_assert_int_eq(O.rc[4], 0);
    ck_assert_int_eq(O.rc[5], -PTRIO_ECLOSED);
    ck_assert_int_eq(O.rc[6], -PTRIO_ECLOSED);
    ck_assert_int_eq(O.rc[7], 1);
    ck_assert_int_eq(O.rc[8], 0);
    ck_assert_int_eq(O.rc[9], -PTRIO_ECANCELED);
    ck_assert_int_eq(O.rc[10], -PTRIO_ECANCELED);
    ck_assert_int_eq(O.rc[11], 1);
    ck_assert(ptrio_cancel_called(&O.sc));
    ck_assert_int_eq(count_fds(), fds0);
}
END_TEST

struct clogged {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct clog_sender {
        ptrio_frame fr;
        ptrio_stream *s;
        int rc;
    } snd;
    struct bystander b;
    ptrio_stream s, r;
    int sp[2], rc_send, rc_eof, rc_eof2, i;
    char junk[4096];
};

static int clog_sender(ptrio_frame *fr)
{
    struct clog_sender *c = PTRIO_SELF(fr, struct clog_sender);
    PTRIO_BEGIN(c);
    PTRIO_TRY(c, c->rc, ptrio_stream_send_all(c, c->s, "123", 3));
    PTRIO_END(c);
}

static int clogged(ptrio_frame *fr)
{
    struct clogged *c = PTRIO_SELF(fr, struct clogged);
    int small = 4096;
    PTRIO_BEGIN(c);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, c->sp), 0);
    ck_assert_int_eq(setsockopt(c->sp[0], SOL_SOCKET, SO_SNDBUF, &small,
                                sizeof small), 0);
    PTRIO_CHECK(c, ptrio_stream_open(&c->s, c->sp[0]));
    PTRIO_CHECK(c, ptrio_stream_open(&c->r, c->sp[1]));
    while (write(c->sp[0], c->junk, sizeof c->junk) > 0)
        ;   /* full: the next send blocks */
    c->snd.s = &c->s;
    PTRIO_NURSERY(c, &c->n) {
        PTRIO_CHECK(c, ptrio_start_soon(&c->n, &c->t, clog_sender, &c->snd));
        for (c->i = 0; c->i < 5000 && ptrio_fd_waiters() == 0; c->i++)
            PTRIO_AWAIT(c, ptrio_sleep(c, PTRIO_MS(1)));
        ck_assert_uint_eq(ptrio_fd_waiters(), 1);
        /* A second sender, or a half-close, while one is blocked. */
        PTRIO_TRY(c, c->rc_send, ptrio_stream_send_all(c, &c->s, "456", 3));
        PTRIO_TRY(c, c->rc_eof, ptrio_stream_send_eof(c, &c->s));
        /* Closing wakes the blocked sender. */
        ptrio_stream_close(&c->s);
    }
    PTRIO_FINALLY(c);
    ptrio_stream_close(&c->s);
    ptrio_stream_close(&c->r);
    PTRIO_END(c);
}

/* Trio: testing/_check_streams.py, the clogged-stream cases of
 * check_one_way_stream and check_half_closeable_stream: while a send_all
 * is blocked, another send_all and a send_eof are -PTRIO_EBUSY
 * (BusyResourceError), and closing the stream wakes the blocked sender
 * with -PTRIO_ECLOSED (ClosedResourceError). */
START_TEST(test_stream_check_clogged)
{
    static struct clogged C;
    memset(&C, 0, sizeof C);
    ck_assert_int_eq(run_io(clogged, &C), 0);
    ck_assert_int_eq(C.rc_send, -PTRIO_EBUSY);
    ck_assert_int_eq(C.rc_eof, -PTRIO_EBUSY);
    ck_assert_int_eq(C.snd.rc, -PTRIO_ECLOSED);
    ck_assert_uint_eq(io_loop.nwatch, 0);
}
END_TEST

struct half {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct bystander b[2];
    ptrio_stream s1, s2;
    int sp[2], rc[8];
    char buf[8];
};

static int half(ptrio_frame *fr)
{
    struct half *h = PTRIO_SELF(fr, struct half);
    PTRIO_BEGIN(h);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, h->sp), 0);
    PTRIO_CHECK(h, ptrio_stream_open(&h->s1, h->sp[0]));
    PTRIO_CHECK(h, ptrio_stream_open(&h->s2, h->sp[1]));
    PTRIO_AWAIT(h, ptrio_stream_send_all(h, &h->s1, "x", 1));
    /* send_eof is a schedule point, the first time and again. */
    PTRIO_NURSERY(h, &h->n) {
        PTRIO_CHECK(h, ptrio_start_soon(&h->n, &h->t[0], bystander, &h->b[0]));
        PTRIO_TRY(h, h->rc[0], ptrio_stream_send_eof(h, &h->s1));
        tlog_add(&L, "eof");
    }
    PTRIO_TRY(h, h->rc[1], ptrio_stream_receive_some(h, &h->s2, h->buf, 8));
    PTRIO_TRY(h, h->rc[2], ptrio_stream_receive_some(h, &h->s2, h->buf + 1,
                                                     8));
    PTRIO_TRY(h, h->rc[3], ptrio_stream_send_all(h, &h->s1, "y", 1));
    PTRIO_NURSERY(h, &h->n) {
        PTRIO_CHECK(h, ptrio_start_soon(&h->n, &h->t[1], bystander, &h->b[1]));
        PTRIO_TRY(h, h->rc[4], ptrio_stream_send_eof(h, &h->s1));
        tlog_add(&L, "eof");
    }
    /* The other way still works, to its own end of stream. */
    PTRIO_AWAIT(h, ptrio_stream_send_all(h, &h->s2, "x", 1));
    PTRIO_AWAIT(h, ptrio_stream_send_eof(h, &h->s2));
    PTRIO_TRY(h, h->rc[5], ptrio_stream_receive_some(h, &h->s1, h->buf + 2,
                                                     8));
    PTRIO_TRY(h, h->rc[6], ptrio_stream_receive_some(h, &h->s1, h->buf + 3,
                                                     8));
    PTRIO_FINALLY(h);
    ptrio_stream_close(&h->s1);
    ptrio_stream_close(&h->s2);
    PTRIO_END(h);
}

/* Trio: testing/_check_streams.py::check_half_closeable_stream: "x" then
 * send_eof (a checkpoint) gives the peer "x" then end of stream; sending
 * is then -PTRIO_ECLOSED, send_eof again is fine (and a checkpoint), and
 * the other direction works on to its own end of stream. */
START_TEST(test_stream_check_half_closeable)
{
    static struct half H;
    memset(&H, 0, sizeof H);
    ck_assert_int_eq(run_io(half, &H), 0);
    ck_assert_str_eq(L.buf, "other eof other eof");
    ck_assert_int_eq(H.rc[0], 0);
    ck_assert_int_eq(H.rc[1], 1);
    ck_assert_int_eq(H.buf[0], 'x');
    ck_assert_int_eq(H.rc[2], 0);
    ck_assert_int_eq(H.rc[3], -PTRIO_ECLOSED);
    ck_assert_int_eq(H.rc[4], 0);
    ck_assert_int_eq(H.rc[5], 1);
    ck_assert_int_eq(H.buf[2], 'x');
    ck_assert_int_eq(H.rc[6], 0);
}
END_TEST

/* The accept4 script of test_accept_errors: errnos to fail with, in
 * order; FAKE_REAL lets one call through; 0 ends it. */
#define FAKE_REAL (-1)

struct accept_errors {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct ticker2 {
        ptrio_frame fr;
        int ticks, *done;
    } tk;
    ptrio_listener ls;
    ptrio_stream s[2];
    int client[2], rc[5], ticked[5], done, i;
};

static int ticker2(ptrio_frame *fr)
{
    struct ticker2 *t = PTRIO_SELF(fr, struct ticker2);
    PTRIO_BEGIN(t);
    while (!*t->done) {
        t->ticks++;
        PTRIO_YIELD(t);
    }
    PTRIO_END(t);
}

static int accept_errors(ptrio_frame *fr)
{
    struct accept_errors *a = PTRIO_SELF(fr, struct accept_errors);
    int before;
    PTRIO_BEGIN(a);
    PTRIO_CHECK(a, ptrio_tcp_listen(&a->ls, "127.0.0.1", 0, 0));
    a->client[0] = dial("127.0.0.1", ptrio_listener_port(&a->ls));
    a->client[1] = dial("127.0.0.1", ptrio_listener_port(&a->ls));
    ck_assert(a->client[0] >= 0 && a->client[1] >= 0);
    a->tk.done = &a->done;
    PTRIO_NURSERY(a, &a->n) {
        PTRIO_CHECK(a, ptrio_start_soon(&a->n, &a->t, ticker2, &a->tk));
        for (a->i = 0; a->i < 5; a->i++) {
            a->ticked[a->i] = a->tk.ticks;
            PTRIO_TRY(a, a->rc[a->i],
                      ptrio_listener_accept(a, &a->ls,
                                            &a->s[a->i == 0 ? 0 : 1]));
            before = a->ticked[a->i];
            a->ticked[a->i] = a->tk.ticks > before;
        }
        a->done = 1;
    }
    PTRIO_FINALLY(a);
    fake_script = NULL;
    ptrio_stream_close(&a->s[0]);
    ptrio_stream_close(&a->s[1]);
    ptrio_listener_close(&a->ls);
    if (a->client[0] >= 0)
        close(a->client[0]);
    if (a->client[1] >= 0)
        close(a->client[1]);
    PTRIO_END(a);
}

/* Trio: test_highlevel_socket.py::test_SocketListener_accept_errors, its
 * sequence: ECONNABORTED, EPERM and EPROTO are skipped and the next
 * connection accepted; EMFILE, EFAULT and ENOBUFS are each the error of
 * one accept; then a connection again. Every call is a schedule point. */
START_TEST(test_accept_errors)
{
#ifdef HAVE_ACCEPT4
    static const int script[] = {ECONNABORTED, EPERM, EPROTO, FAKE_REAL,
                                 EMFILE, EFAULT, ENOBUFS, FAKE_REAL, 0};
    static const int want[] = {0, -PTRIO_EMFILE, -PTRIO_EFAULT,
                               -PTRIO_ENOBUFS, 0};
    static struct accept_errors A;
    int i;
    memset(&A, 0, sizeof A);
    A.client[0] = A.client[1] = -1;
    fake_script = script;
    ck_assert_int_eq(run_io(accept_errors, &A), 0);
    for (i = 0; i < 5; i++) {
        ck_assert_msg(A.rc[i] == want[i], "accept %d: %s", i,
                      ptrio_errname(A.rc[i]));
        ck_assert_msg(A.ticked[i], "accept %d: no schedule point", i);
    }
#endif
}
END_TEST

int main(void)
{
    Suite *s = suite_create("net/" TEST_BACKEND_NAME);
    TCase *tc = tcase_create("net");

    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_echo_round_trips);
    tcase_add_test(tc, test_thousand_concurrent_connections);
    tcase_add_test(tc, test_emfile_backs_off_and_serves);
    tcase_add_test(tc, test_peer_reset);
    tcase_add_test(tc, test_eof_and_half_close);
    tcase_add_test(tc, test_handler_failure_reported);
    tcase_add_test(tc, test_connection_refused);
    tcase_add_test(tc, test_connect_timeout);
    tcase_add_test(tc, test_happy_eyeballs_dead_then_live);
    tcase_add_test(tc, test_happy_eyeballs_accepts_late);
    tcase_add_test(tc, test_happy_eyeballs_failure_starts_next_at_once);
    tcase_add_test(tc, test_happy_eyeballs_all_fail);
    tcase_add_test(tc, test_happy_eyeballs_huge_delay);
    tcase_add_test(tc, test_happy_eyeballs_family_unsupported);
    tcase_add_test(tc, test_resolve_failure);
    tcase_add_test(tc, test_numeric_list_is_not_the_resolvers);
    tcase_add_test(tc, test_numeric_host_named_service);
    tcase_add_test(tc, test_happy_eyeballs_cancelled_attempt_never_connects);
    tcase_add_test(tc, test_happy_eyeballs_no_hosts);
    tcase_add_test(tc, test_cancel_in_each_call);
    tcase_add_test(tc, test_closed_under_waiter_and_busy);
    tcase_add_test(tc, test_send_eof_holds_the_sender);
    tcase_add_test(tc, test_reopen_while_a_call_ends);
    tcase_add_test(tc, test_pipes_and_bad_arguments);
    tcase_add_test(tc, test_end_of_stream_twice_on_files);
    tcase_add_test(tc, test_failure_at_once_is_a_schedule_point);
    tcase_add_test(tc, test_send_after_send_eof_is_closed);
    tcase_add_test(tc, test_listen_port_in_use_and_rebind);
#ifdef HAVE_ACCEPT4                 /* the test's fake accept4 */
    tcase_add_test(tc, test_accept_skips_aborted_connections);
#endif
    tcase_add_test(tc, test_serve_port_in_use);
    tcase_add_test(tc, test_serve_accept_error_stops_server);
    tcase_add_test(tc, test_serve_shutdown_closes_everything);
    tcase_add_test(tc, test_stream_over_regular_file);
    tcase_add_test(tc, test_streaming_both_ways);
    tcase_add_test(tc, test_ready_and_cancelled_in_one_batch);
    tcase_add_test(tc, test_happy_eyeballs_one_host_slow_fail);
    tcase_add_test(tc, test_happy_eyeballs_early_success);
    tcase_add_test(tc, test_happy_eyeballs_default_delay);
    tcase_add_test(tc, test_happy_eyeballs_errors_expedite);
    tcase_add_test(tc, test_happy_eyeballs_custom_delay);
    tcase_add_test(tc, test_happy_eyeballs_does_reorder);
    tcase_add_test(tc, test_happy_eyeballs_cancel);
    tcase_add_test(tc, test_connect_and_listen_input_validation);
    tcase_add_test(tc, test_listener_names_and_stream_options);
    tcase_add_test(tc, test_accept_on_closed_listener);
    tcase_add_test(tc, test_closed_stream_ops_are_checkpoints);
#ifdef SYS_listen                   /* the test's fake listen */
    tcase_add_test(tc, test_listen_backlog);
#endif
    tcase_add_test(tc, test_listen_v6only_and_specific_port);
    tcase_add_test(tc, test_stream_peer_already_closed);
    tcase_add_test(tc, test_stream_check_one_way);
    tcase_add_test(tc, test_stream_check_clogged);
    tcase_add_test(tc, test_stream_check_half_closeable);
#ifdef HAVE_ACCEPT4                 /* the test's fake accept4 */
    tcase_add_test(tc, test_accept_errors);
#endif
    suite_add_tcase(s, tc);
    return run_suite(s);
}
