/* tests/check_net.c: streams, listeners, serve_tcp, name resolution and
 * open_tcp_stream with happy eyeballs, over loopback (127.0.0.x) only.
 * Built once per backend. Ports are always 0 (the kernel picks one, read
 * back), so parallel runs never collide. Every test runs under a 20 s
 * FAIL_AFTER; the real-time waits are tens of ms, but for the SYN
 * retransmit of the "accepts late" case (1 s). Clients that need many fds
 * or their own fd limit run in a forked child with plain blocking
 * sockets, which also makes them independent of the code under test. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
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
    int busy, zero, after;
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

#ifdef HAVE_ACCEPT4
#include <sys/syscall.h>
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

enum { F_SEND, F_RECV, F_ACCEPT, F_N };

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
 * (EINVAL). */
static int fails_at_once(ptrio_frame *fr)
{
    struct fails_at_once *f = PTRIO_SELF(fr, struct fails_at_once);
    int fd;
    PTRIO_BEGIN(f);
    if (f->mode == F_SEND) {
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, f->sp), 0);
        close(f->sp[1]);
        PTRIO_CHECK(f, ptrio_stream_open(&f->s, f->sp[0]));
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
                                  -PTRIO_EINVAL};
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
    tcase_add_test(tc, test_happy_eyeballs_family_unsupported);
    tcase_add_test(tc, test_resolve_failure);
    tcase_add_test(tc, test_happy_eyeballs_cancelled_attempt_never_connects);
    tcase_add_test(tc, test_happy_eyeballs_no_hosts);
    tcase_add_test(tc, test_cancel_in_each_call);
    tcase_add_test(tc, test_closed_under_waiter_and_busy);
    tcase_add_test(tc, test_pipes_and_bad_arguments);
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
    suite_add_tcase(s, tc);
    return run_suite(s);
}
