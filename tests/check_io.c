/* tests/check_io.c: fd waits and the backends (hosted: pipes and socket
 * pairs). Built once per backend (-DTEST_BACKEND=epoll|poll|select).
 * Tasks wake each other through the fds; the few real-time waits are
 * short and bounded. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "iotest.h"

static int fds[2];

static void setup(void)
{
    tlog_clear(&L);
    ck_assert_int_eq(pipe(fds), 0);
}

static void teardown(void)
{
    close(fds[0]);
    close(fds[1]);
}

struct reader {
    ptrio_frame fr;
    int fd, rc;
};

static const char *what(int rc)
{
    return rc == (int)PTRIO_READABLE ? "readable"
         : rc == (int)PTRIO_WRITABLE ? "writable"
         : rc == -PTRIO_ECLOSED ? "closed"
         : rc == -PTRIO_ECANCELED ? "cancelled"
         : rc == -PTRIO_EBADF ? "badf"
         : rc == -PTRIO_EFDLIMIT ? "fdlimit" : "other";
}

static int reader(ptrio_frame *fr)
{
    struct reader *r = PTRIO_SELF(fr, struct reader);
    PTRIO_BEGIN(r);
    tlog_add(&L, "wait");
    PTRIO_TRY(r, r->rc, ptrio_wait_readable(r, r->fd ? r->fd : fds[0]));
    tlog_add(&L, what(r->rc));
    PTRIO_END(r);
}

struct writer {
    ptrio_frame fr;
    int rc;
};

static int writer(ptrio_frame *fr)
{
    struct writer *w = PTRIO_SELF(fr, struct writer);
    PTRIO_BEGIN(w);
    PTRIO_AWAIT(w, ptrio_wait_writable(w, fds[1]));
    tlog_add(&L, "write");
    ck_assert_int_eq(write(fds[1], "x", 1), 1);
    PTRIO_END(w);
}

struct pair {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[3];
    struct reader r[2];
    struct writer w;
    int mode, rc;
    unsigned waiting;
};

static int pair(ptrio_frame *fr)
{
    struct pair *p = PTRIO_SELF(fr, struct pair);
    PTRIO_BEGIN(p);
    PTRIO_NURSERY(p, &p->n) {
        PTRIO_CHECK(p, ptrio_start_soon(&p->n, &p->t[0], reader, &p->r[0]));
        PTRIO_AWAIT(p, ptrio_checkpoint(p));    /* the reader parks first */
        p->waiting = ptrio_fd_waiters();
        if (p->mode == 0) {
            PTRIO_CHECK(p, ptrio_start_soon(&p->n, &p->t[1], writer, &p->w));
        } else if (p->mode == 1) {
            p->rc = ptrio_notify_closing(fds[0]);
        } else {
            ptrio_nursery_cancel(&p->n);
        }
    }
    ck_assert_uint_eq(ptrio_fd_waiters(), 0);
    PTRIO_END(p);
}

static struct pair P;

/* A reader parked on a pipe wakes when a writer writes. */
START_TEST(test_pipe_wakes_reader)
{
    P = (struct pair){.mode = 0};
    ck_assert_int_eq(run_io(pair, &P), 0);
    ck_assert_uint_eq(P.waiting, 1);
    ck_assert_str_eq(L.buf, "wait write readable");
}
END_TEST

/* Trio: test_io.py::test_notify_closing: waiters wake with
 * ClosedResourceError. */
START_TEST(test_notify_closing_wakes_waiter)
{
    P = (struct pair){.mode = 1};
    ck_assert_int_eq(run_io(pair, &P), 0);
    ck_assert_int_eq(P.rc, 1);
    ck_assert_str_eq(L.buf, "wait closed");
}
END_TEST

/* A task parked on an fd is cancellable like any other wait, and leaves
 * nothing registered. */
START_TEST(test_fd_wait_is_cancellable)
{
    P = (struct pair){.mode = 2};
    ck_assert_int_eq(run_io(pair, &P), 0);
    ck_assert_str_eq(L.buf, "wait cancelled");
}
END_TEST

struct twice {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct reader r;
    int rc[6];
};

static int twice(ptrio_frame *fr)
{
    struct twice *w = PTRIO_SELF(fr, struct twice);
    PTRIO_BEGIN(w);
    PTRIO_NURSERY(w, &w->n) {
        PTRIO_CHECK(w, ptrio_start_soon(&w->n, &w->t, reader, &w->r));
        PTRIO_AWAIT(w, ptrio_checkpoint(w));
        PTRIO_TRY(w, w->rc[0], ptrio_wait_readable(w, fds[0]));
        PTRIO_TRY(w, w->rc[1], ptrio_wait_readable(w, -1));
        w->rc[2] = ptrio_notify_closing(fds[0]);
        w->rc[3] = ptrio_notify_closing(fds[0]);
        w->rc[4] = ptrio_notify_closing(-1);
    }
    PTRIO_END(w);
}

/* Trio: test_io.py::test_double_read, test_double_write: two tasks
 * waiting on one fd for the same direction: the second gets -EBUSY
 * (BusyResourceError); a negative fd is -EBADF. */
START_TEST(test_second_waiter_and_bad_fd)
{
    static struct twice W;
    ck_assert_int_eq(run_io(twice, &W), 0);
    ck_assert_int_eq(W.rc[0], -PTRIO_EBUSY);
    ck_assert_int_eq(W.rc[1], -PTRIO_EBADF);
    ck_assert_int_eq(W.rc[2], 1);
    ck_assert_int_eq(W.rc[3], 0);
    ck_assert_int_eq(W.rc[4], 0);
    ck_assert_str_eq(L.buf, "wait closed");
}
END_TEST

struct lone {
    ptrio_frame fr;
    int rc;
};

static int lone(ptrio_frame *fr)
{
    struct lone *o = PTRIO_SELF(fr, struct lone);
    PTRIO_BEGIN(o);
    PTRIO_TRY(o, o->rc, ptrio_wait_readable(o, fds[0]));
    PTRIO_END(o);
}

/* The virtual clock has no fd waits: -ENOTSUP, not a hang. Outside a
 * task, an fd wait is -PTRIO_ENOTASK. */
START_TEST(test_virtual_has_no_fd_waits)
{
    static struct lone O;
    ck_assert_int_eq(run_virtual(lone, &O, NULL), 0);
    ck_assert_int_eq(O.rc, -PTRIO_ENOTSUP);
    ck_assert_int_eq(ptrio_wait_readable(&O, fds[0]), -PTRIO_ENOTASK);
    ck_assert_int_eq(ptrio_notify_closing(fds[0]), 0);
    ck_assert_uint_eq(ptrio_fd_waiters(), 0);
}
END_TEST

/* ---- both directions on one fd ------------------------------------- */

static int sp[2];

struct duplex {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct reader r;
    struct dwriter {
        ptrio_frame fr;
        int rc;
    } w;
    unsigned both;
};

static int dwriter(ptrio_frame *fr)
{
    struct dwriter *w = PTRIO_SELF(fr, struct dwriter);
    PTRIO_BEGIN(w);
    PTRIO_TRY(w, w->rc, ptrio_wait_writable(w, sp[0]));
    tlog_add(&L, what(w->rc));
    PTRIO_END(w);
}

static int duplex(ptrio_frame *fr)
{
    struct duplex *d = PTRIO_SELF(fr, struct duplex);
    PTRIO_BEGIN(d);
    PTRIO_NURSERY(d, &d->n) {
        d->r.fd = sp[0];
        PTRIO_CHECK(d, ptrio_start_soon(&d->n, &d->t[0], reader, &d->r));
        PTRIO_AWAIT(d, ptrio_checkpoint(d));
        /* The reader waits; the writer joins it on the same fd, and the
         * socket is writable at once: the reader must stay registered. */
        PTRIO_CHECK(d, ptrio_start_soon(&d->n, &d->t[1], dwriter, &d->w));
        PTRIO_AWAIT(d, ptrio_yield(d));
        PTRIO_AWAIT(d, ptrio_yield(d));
        PTRIO_AWAIT(d, ptrio_yield(d));
        d->both = ptrio_fd_waiters();
        ck_assert_int_eq(write(sp[1], "y", 1), 1);
    }
    PTRIO_END(d);
}

/* A reader and a writer on one socket: the writer wakes first, the reader
 * keeps waiting (epoll re-arms the fd for it) and wakes on data. */
START_TEST(test_reader_and_writer_on_one_fd)
{
    static struct duplex D;
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    ck_assert_int_eq(run_io(duplex, &D), 0);
    ck_assert_str_eq(L.buf, "wait writable readable");
    ck_assert_uint_eq(D.both, 1);
    close(sp[0]);
    close(sp[1]);
}
END_TEST

static void drain_socket(int fd)
{
    static char junk[65536];
    set_nonblock(fd);
    while (read(fd, junk, sizeof junk) > 0)
        ;
}

static void fill_socket(int fd);

struct simul {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct simul_wait {
        ptrio_frame fr;
        int fd, rc;
        unsigned dir;
    } w[2];
    int mode, closed;
    unsigned waiting[3];
};

static int simul_wait(ptrio_frame *fr)
{
    struct simul_wait *w = PTRIO_SELF(fr, struct simul_wait);
    PTRIO_BEGIN(w);
    if (w->dir == PTRIO_READABLE)
        PTRIO_TRY(w, w->rc, ptrio_wait_readable(w, w->fd));
    else
        PTRIO_TRY(w, w->rc, ptrio_wait_writable(w, w->fd));
    tlog_add(&L, w->dir == PTRIO_READABLE ? "r_task" : "w_task");
    tlog_add(&L, what(w->rc));
    PTRIO_END(w);
}

static int simul(ptrio_frame *fr)
{
    struct simul *m = PTRIO_SELF(fr, struct simul);
    PTRIO_BEGIN(m);
    fill_socket(sp[0]);
    m->w[0] = (struct simul_wait){.fd = sp[0], .dir = PTRIO_READABLE};
    m->w[1] = (struct simul_wait){.fd = sp[0], .dir = PTRIO_WRITABLE};
    PTRIO_NURSERY(m, &m->n) {
        PTRIO_CHECK(m, ptrio_start_soon(&m->n, &m->t[0], simul_wait, &m->w[0]));
        PTRIO_CHECK(m, ptrio_start_soon(&m->n, &m->t[1], simul_wait, &m->w[1]));
        PTRIO_AWAIT(m, ptrio_wait_all_tasks_blocked(m, 0));
        m->waiting[0] = ptrio_fd_waiters();
        if (m->mode == 1) {
            m->closed = ptrio_notify_closing(sp[0]);
        } else {
            ck_assert_int_eq(write(sp[1], "x", 1), 1);
            PTRIO_AWAIT(m, ptrio_wait_all_tasks_blocked(m, PTRIO_MS(5)));
            m->waiting[1] = ptrio_fd_waiters();
            tlog_add(&L, "drain");
            drain_socket(sp[1]);
            PTRIO_AWAIT(m, ptrio_wait_all_tasks_blocked(m, PTRIO_MS(5)));
        }
        m->waiting[2] = ptrio_fd_waiters();
    }
    PTRIO_END(m);
}

/* Trio: test_io.py::test_socket_simultaneous_read_write: a reader and a
 * writer on one full socket; data wakes the reader alone (epoll re-arms
 * the fd for the writer), draining the peer then wakes the writer. */
START_TEST(test_socket_simultaneous_read_write)
{
    static struct simul M;
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    memset(&M, 0, sizeof M);
    ck_assert_int_eq(run_io(simul, &M), 0);
    ck_assert_str_eq(L.buf, "r_task readable drain w_task writable");
    ck_assert_uint_eq(M.waiting[0], 2);
    ck_assert_uint_eq(M.waiting[1], 1);
    ck_assert_uint_eq(M.waiting[2], 0);
    ck_assert_uint_eq(io_loop.nfd, 0);
    close(sp[0]);
    close(sp[1]);
}
END_TEST

/* Trio: test_io.py::test_interrupted_by_close: notify_closing wakes a
 * reader and a writer on one fd, both with -PTRIO_ECLOSED
 * (ClosedResourceError), and forgets the fd. */
START_TEST(test_interrupted_by_close)
{
    static struct simul M;
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    memset(&M, 0, sizeof M);
    M.mode = 1;
    ck_assert_int_eq(run_io(simul, &M), 0);
    ck_assert_str_eq(L.buf, "r_task closed w_task closed");
    ck_assert_int_eq(M.closed, 2);
    ck_assert_uint_eq(M.waiting[0], 2);
    ck_assert_uint_eq(M.waiting[2], 0);
    ck_assert_uint_eq(io_loop.nfd, 0);
    close(sp[0]);
    close(sp[1]);
}
END_TEST

/* ---- hang-up, closed fds -------------------------------------------- */

struct hup {
    ptrio_frame fr;
    ptrio_scope sc;
    ptrio_nursery n;
    ptrio_task t;
    struct reader r;
    int close_it, rc;
    long long t0, ms;
};

static int hup(ptrio_frame *fr)
{
    struct hup *h = PTRIO_SELF(fr, struct hup);
    PTRIO_BEGIN(h);
    h->t0 = mono_ms();
    PTRIO_MOVE_ON_AFTER(h, &h->sc, PTRIO_MS(300)) {
        PTRIO_NURSERY(h, &h->n) {
            h->r.fd = fds[0];
            PTRIO_CHECK(h, ptrio_start_soon(&h->n, &h->t, reader, &h->r));
            PTRIO_AWAIT(h, ptrio_checkpoint(h));
            if (h->close_it) {
                close(fds[0]);      /* under the waiter: a user error */
            } else {
                close(fds[1]);      /* the writer hangs up */
            }
        }
    }
    h->ms = mono_ms() - h->t0;
    PTRIO_END(h);
}

/* The writer hangs up: the reader wakes once (POLLHUP counts as ready). */
START_TEST(test_hangup_wakes_reader)
{
    static struct hup H;
    ck_assert_int_eq(run_io(hup, &H), 0);
    ck_assert_str_eq(L.buf, "wait readable");
    ck_assert_int_lt(H.ms, 250);
    fds[1] = open("/dev/null", O_WRONLY);
}
END_TEST

/* An fd closed under its waiter (without notify_closing): poll and select
 * wake it with -EBADF and never spin; epoll cannot see it (the kernel
 * drops the fd), so only the deadline ends the wait. */
START_TEST(test_fd_closed_under_waiter)
{
    static struct hup H;
    H = (struct hup){.close_it = 1};
    ck_assert_int_eq(run_io(hup, &H), 0);
    if (IO_EPOLL) {
        ck_assert_str_eq(L.buf, "wait cancelled");
        ck_assert_int_ge(H.ms, 290);
    } else {
        ck_assert_str_eq(L.buf, "wait badf");
        ck_assert_int_lt(H.ms, 250);
    }
    fds[0] = open("/dev/null", O_RDONLY);
}
END_TEST

/* The loop's wake fd (an eventfd), found by its /proc link: -1 if none. */
static int find_wake_fd(void)
{
    char path[64], link[64];
    ssize_t n;
    int fd;

    for (fd = 3; fd < 1024; fd++) {
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        n = readlink(path, link, sizeof link - 1);
        if (n < 0)
            continue;
        link[n] = '\0';
        if (strcmp(link, "anon_inode:[eventfd]") == 0)
            return fd;
    }
    return -1;
}

struct wake_closed {
    ptrio_frame fr;
    int fd;
    long long t0, ms;
};

static int wake_closed(ptrio_frame *fr)
{
    struct wake_closed *w = PTRIO_SELF(fr, struct wake_closed);
    PTRIO_BEGIN(w);
    w->fd = find_wake_fd();
    ck_assert_int_ge(w->fd, 0);
    ck_assert_int_eq(close(w->fd), 0);
    w->t0 = mono_ms();
    PTRIO_AWAIT(w, ptrio_sleep(w, PTRIO_MS(200)));
    PTRIO_FINALLY(w);
    w->ms = mono_ms() - w->t0;
    PTRIO_END(w);
}

/* The loop's wake fd closed behind its back: poll and select see it at
 * the next wait (POLLNVAL, EBADF) and fail the run with -EBADF, where they
 * would spin until the deadline, and every later wake would be lost; epoll
 * cannot see it (the kernel drops the fd from its set), so the run goes on. */
START_TEST(test_wake_fd_closed)
{
    static struct wake_closed W;
    int rc;

    memset(&W, 0, sizeof W);
    rc = run_io(wake_closed, &W);
    if (IO_EPOLL) {
        ck_assert_int_eq(rc, 0);
        ck_assert_int_ge(W.ms, 190);
    } else {
        ck_assert_int_eq(rc, -PTRIO_EBADF);
        ck_assert_int_lt(W.ms, 150);
    }
}
END_TEST

/* ---- unnotified closes ------------------------------------------------ */

/* One waiter on `fd` for `dir`; logs "<tag>:<outcome>". */
struct uwait {
    ptrio_frame fr;
    int fd, rc;
    unsigned dir;
    const char *tag;
};

static int uwait(ptrio_frame *fr)
{
    struct uwait *w = PTRIO_SELF(fr, struct uwait);
    char line[32];
    PTRIO_BEGIN(w);
    if (w->dir == PTRIO_READABLE)
        PTRIO_TRY(w, w->rc, ptrio_wait_readable(w, w->fd));
    else
        PTRIO_TRY(w, w->rc, ptrio_wait_writable(w, w->fd));
    if (w->tag) {
        snprintf(line, sizeof line, "%s:%s", w->tag, what(w->rc));
        tlog_add(&L, line);
    }
    PTRIO_END(w);
}

static void fill_socket(int fd)
{
    static char junk[65536];
    set_nonblock(fd);
    while (write(fd, junk, sizeof junk) > 0)
        ;
}

struct unnotified {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[3];
    struct uwait w[3];
    int scenario, a, b, a2;
    unsigned after;
    char tmp[1];
};

static int unnotified(ptrio_frame *fr)
{
    struct unnotified *u = PTRIO_SELF(fr, struct unnotified);
    int p[2];
    PTRIO_BEGIN(u);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, p), 0);
    u->a = p[0];
    u->b = p[1];
    u->a2 = u->scenario >= 1 ? dup(u->a) : -1;
    if (u->scenario >= 2)
        fill_socket(u->a);
    u->w[0] = (struct uwait){.fd = u->a, .dir = PTRIO_READABLE, .tag = "r"};
    u->w[1] = (struct uwait){.fd = u->a, .dir = PTRIO_WRITABLE, .tag = "w"};
    u->w[2] = (struct uwait){.fd = u->a2, .dir = PTRIO_READABLE};
    PTRIO_NURSERY(u, &u->n) {
        PTRIO_CHECK(u, ptrio_start_soon(&u->n, &u->t[0], uwait, &u->w[0]));
        if (u->scenario >= 2)
            PTRIO_CHECK(u, ptrio_start_soon(&u->n, &u->t[1], uwait,
                                            &u->w[1]));
        if (u->scenario == 3)
            PTRIO_CHECK(u, ptrio_start_soon(&u->n, &u->t[2], uwait,
                                            &u->w[2]));
        PTRIO_AWAIT(u, ptrio_sleep(u, PTRIO_MS(5)));
        close(u->a);            /* no notify_closing: a user error */
        if (u->scenario == 3) {
            ck_assert_int_eq(write(u->b, "x", 1), 1);
            while (!u->w[2].rc)     /* the wakeup on a2 has come */
                PTRIO_AWAIT(u, ptrio_sleep(u, PTRIO_MS(1)));
        }
        PTRIO_AWAIT(u, ptrio_sleep(u, PTRIO_MS(5)));
        ptrio_nursery_cancel(&u->n);
    }
    u->after = ptrio_fd_waiters();
    PTRIO_FINALLY(u);
    close(u->b);
    if (u->a2 >= 0)
        close(u->a2);
    PTRIO_END(u);
}

/* Trio: test_io.py::test_can_survive_unnotified_close: an fd closed under
 * its waiters without notify_closing (alone; with a dup keeping the
 * socket open; with a reader and a writer on it; and with data arriving
 * on the dup) never breaks the run: each waiter wakes with -EBADF or
 * readiness, or waits until cancelled (epoll, where the kernel keeps the
 * dup's registration), and nothing stays registered. Then a wait on a
 * new fd, likely of the same number, works. */
START_TEST(test_can_survive_unnotified_close)
{
    static struct unnotified U;
    static const char *const want_poll[4] = {
        "r:badf", "r:badf", "r:badf w:badf", "r:badf w:badf"
    };
    static const char *const want_epoll[4] = {
        "r:cancelled", "r:cancelled", "w:badf r:cancelled",
        "r:readable w:badf"
    };
    int sc;

    for (sc = 0; sc < 4; sc++) {
        tlog_clear(&L);
        memset(&U, 0, sizeof U);
        U.scenario = sc;
        ck_assert_int_eq(run_io(unnotified, &U), 0);
        ck_assert_msg(strcmp(L.buf, IO_EPOLL ? want_epoll[sc]
                                             : want_poll[sc]) == 0,
                      "scenario %d: %s", sc, L.buf);
        if (sc == 3)    /* the dup's own waiter saw the data */
            ck_assert_int_eq(U.w[2].rc, (int)PTRIO_READABLE);
        ck_assert_uint_eq(U.after, 0);
        ck_assert_uint_eq(io_loop.nfd, 0);
        /* A fresh wait works. */
        tlog_clear(&L);
        P = (struct pair){.mode = 0};
        ck_assert_int_eq(run_io(pair, &P), 0);
        ck_assert_str_eq(L.buf, "wait write readable");
        ck_assert_int_eq(read(fds[0], U.tmp, 1), 1);   /* drained */
    }
}
END_TEST

struct invalid {
    ptrio_frame fr;
    ptrio_scope sc;
    int fd, rc[2];
};

static int invalid(ptrio_frame *fr)
{
    struct invalid *v = PTRIO_SELF(fr, struct invalid);
    int p[2];
    PTRIO_BEGIN(v);
    /* Inside the run: the loop's own fds cannot take the number. */
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, p), 0);
    close(p[1]);
    close(p[0]);
    v->fd = p[0];
    PTRIO_MOVE_ON_AFTER(v, &v->sc, PTRIO_MS(500)) {
        PTRIO_TRY(v, v->rc[0], ptrio_wait_readable(v, v->fd));
        PTRIO_TRY(v, v->rc[1], ptrio_wait_writable(v, v->fd));
    }
    PTRIO_END(v);
}

/* Trio: test_io.py::test_wait_on_invalid_object: waiting on an fd that
 * was just closed fails with EBADF on every backend (epoll at once, poll
 * and select from their next wait), in either direction. */
START_TEST(test_wait_on_invalid_object)
{
    static struct invalid V;
    memset(&V, 0, sizeof V);
    ck_assert_int_eq(run_io(invalid, &V), 0);
    ck_assert_int_eq(V.rc[0], -PTRIO_EBADF);
    ck_assert_int_eq(V.rc[1], -PTRIO_EBADF);
    ck_assert(!ptrio_cancel_called(&V.sc));
    ck_assert_uint_eq(io_loop.nfd, 0);
}
END_TEST

struct regular {
    ptrio_frame fr;
    ptrio_scope sc;
    int fd, rc[2];
    unsigned nfd;
};

static int regular(ptrio_frame *fr)
{
    struct regular *g = PTRIO_SELF(fr, struct regular);
    PTRIO_BEGIN(g);
    PTRIO_FAIL_AFTER(g, &g->sc, PTRIO_SEC(5)) {
        PTRIO_TRY(g, g->rc[0], ptrio_wait_readable(g, g->fd));
        PTRIO_TRY(g, g->rc[1], ptrio_wait_writable(g, g->fd));
    }
    g->nfd = io_loop.nfd;
    PTRIO_END(g);
}

/* A regular file (io.h): epoll refuses it with -EPERM and registers
 * nothing; poll and select find it ready at once, both ways (Trio's
 * backends alike: EPERM from epoll_ctl, ready from poll/select). */
START_TEST(test_regular_file)
{
    static struct regular G;
    memset(&G, 0, sizeof G);
    {
        char path[] = "/tmp/ptrio-check-io-XXXXXX";
        G.fd = mkstemp(path);
        ck_assert_int_ge(G.fd, 0);
        unlink(path);
    }
    ck_assert_int_eq(run_io(regular, &G), 0);
    if (IO_EPOLL) {
        ck_assert_int_eq(G.rc[0], -PTRIO_EPERM);
        ck_assert_int_eq(G.rc[1], -PTRIO_EPERM);
    } else {
        ck_assert_int_eq(G.rc[0], (int)PTRIO_READABLE);
        ck_assert_int_eq(G.rc[1], (int)PTRIO_WRITABLE);
    }
    ck_assert_uint_eq(G.nfd, 0);
    ck_assert_uint_eq(io_loop.nwatch, 0);
    close(G.fd);
}
END_TEST

/* ---- deadlines ---------------------------------------------------- */

struct timed {
    ptrio_frame fr;
    ptrio_scope sc;
    int rc;
    long long t0, ms;
};

static int timed(ptrio_frame *fr)
{
    struct timed *t = PTRIO_SELF(fr, struct timed);
    PTRIO_BEGIN(t);
    t->t0 = mono_ms();
    PTRIO_FAIL_AFTER(t, &t->sc, PTRIO_MS(40)) {
        PTRIO_AWAIT(t, ptrio_wait_readable(t, fds[0]));
    }
    PTRIO_END(t);
}

/* A wait under a deadline fails with -ETIMEDOUT at the deadline, not
 * before, and leaves nothing registered. */
START_TEST(test_wait_with_deadline)
{
    static struct timed T;
    long long t0 = mono_ms();
    ck_assert_int_eq(run_io(timed, &T), -PTRIO_ETIMEDOUT);
    ck_assert_int_ge(mono_ms() - t0, 40);
    ck_assert_int_lt(mono_ms() - t0, 1000);
    ck_assert_uint_eq(io_loop.nwatch, 0);
    ck_assert_uint_eq(io_loop.nfd, 0);
}
END_TEST

/* Counts the backend's waits and what they were asked to block for. */
static int nwaits, nblocking;

static void count_wait(void *ctx, ptrio_time deadline)
{
    (void)ctx;
    nwaits++;
    nblocking += deadline != PTRIO_TIME_NINF;
}

static const ptrio_hooks wait_counter = {.before_io_wait = count_wait};

struct short_sleeps {
    ptrio_frame fr;
    ptrio_time d[3], took[3];
    int waits[3], i;
};

static int short_sleeps(ptrio_frame *fr)
{
    struct short_sleeps *s = PTRIO_SELF(fr, struct short_sleeps);
    ptrio_time t0;
    PTRIO_BEGIN(s);
    for (s->i = 0; s->i < 3; s->i++) {
        nwaits = nblocking = 0;
        s->took[s->i] = ptrio_now();
        PTRIO_AWAIT(s, ptrio_sleep(s, s->d[s->i]));
        t0 = s->took[s->i];
        s->took[s->i] = ptrio_now() - t0;
        s->waits[s->i] = nblocking;
    }
    PTRIO_END(s);
}

/* Deadlines closer than the backends' millisecond timeouts: 1 ns away,
 * and 1.5 ms (a fraction of a ms) away. The timeout is rounded up, so
 * one wait reaches the deadline: never a wait of 0 ms again and again
 * (a busy loop), never an early return (a wait too short, then another).
 * Nothing else wakes the loop here, so the count is exact. */
START_TEST(test_sub_ms_deadlines_wait_once)
{
    static struct short_sleeps S;
    static ptrio_instrument inst;
    int i;

    memset(&S, 0, sizeof S);
    S.d[0] = PTRIO_NS(1);
    S.d[1] = PTRIO_US(1500);
    S.d[2] = PTRIO_NS(999999);
    loop_setup(&io_loop, &TEST_BACKEND_OPS, &io_rep);
    ck_assert_int_eq(ptrio_loop_add_instrument(&io_loop, &inst, &wait_counter,
                                               NULL), 0);
    ck_assert_int_eq(ptrio_loop_run(&io_loop, short_sleeps, &S), 0);
    for (i = 0; i < 3; i++) {
        ck_assert_msg(S.waits[i] == 1, "sleep %d: %d waits", i, S.waits[i]);
        ck_assert_int_ge(S.took[i], S.d[i]);
        ck_assert_int_lt(S.took[i], PTRIO_SEC(1));
    }
}
END_TEST

/* ---- EINTR ----------------------------------------------------------- */

static pthread_t main_thread;

static void on_usr1(int sig) { (void)sig; }

static void *interrupt_then_write(void *arg)
{
    struct timespec d = {0, 20 * 1000000};
    (void)arg;
    nanosleep(&d, NULL);
    pthread_kill(main_thread, SIGUSR1);     /* the wait gets EINTR */
    nanosleep(&d, NULL);
    pthread_kill(main_thread, SIGUSR1);
    nanosleep(&d, NULL);
    if (write(fds[1], "z", 1) != 1)
        abort();
    return NULL;
}

struct intr {
    ptrio_frame fr;
    ptrio_scope sc;
    struct reader r;
};

static int intr(ptrio_frame *fr)
{
    struct intr *i = PTRIO_SELF(fr, struct intr);
    PTRIO_BEGIN(i);
    PTRIO_FAIL_AFTER(i, &i->sc, PTRIO_SEC(5)) {
        PTRIO_CALL(i, reader, &i->r);
    }
    PTRIO_END(i);
}

/* A signal interrupting the backend's wait (EINTR) is retried: the waiter
 * neither fails nor wakes early. */
START_TEST(test_eintr_is_retried)
{
    static struct intr I;
    struct sigaction sa;
    pthread_t th;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;    /* no SA_RESTART: poll returns EINTR */
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
    main_thread = pthread_self();
    ck_assert_int_eq(pthread_create(&th, NULL, interrupt_then_write, NULL), 0);
    ck_assert_int_eq(run_io(intr, &I), 0);
    pthread_join(th, NULL);
    ck_assert_str_eq(L.buf, "wait readable");
}
END_TEST

/* ---- the backends' limits ------------------------------------------- */

#define MANY 1100       /* more than select's FD_SETSIZE */

struct many {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[MANY];
    struct mwait {
        ptrio_frame fr;
        int fd, rc;
    } w[MANY];
    unsigned waiting;
};

static int mwait(ptrio_frame *fr)
{
    struct mwait *w = PTRIO_SELF(fr, struct mwait);
    PTRIO_BEGIN(w);
    PTRIO_TRY(w, w->rc, ptrio_wait_readable(w, w->fd));
    PTRIO_END(w);
}

static int many(ptrio_frame *fr)
{
    struct many *m = PTRIO_SELF(fr, struct many);
    int i;
    PTRIO_BEGIN(m);
    /* After the loop opened: select's own wake fd must stay low. */
    for (i = 0; i < MANY; i++) {
        m->w[i].fd = dup(fds[0]);
        ck_assert_int_ge(m->w[i].fd, 0);
    }
    PTRIO_NURSERY(m, &m->n) {
        for (i = 0; i < MANY; i++)
            PTRIO_CHECK(m, ptrio_start_soon(&m->n, &m->t[i], mwait, &m->w[i]));
        PTRIO_AWAIT(m, ptrio_yield(m));
        PTRIO_AWAIT(m, ptrio_yield(m));
        m->waiting = ptrio_fd_waiters();
        ck_assert_int_eq(write(fds[1], "!", 1), 1);     /* all readable */
    }
    PTRIO_END(m);
}

/* 1,100 tasks wait on 1,100 fds (dups of one pipe). select refuses the
 * fds at or above FD_SETSIZE with -PTRIO_EFDLIMIT (never FD_SET past the
 * set); poll and epoll take them all; every waiter wakes once. */
START_TEST(test_many_fds_and_fd_setsize)
{
    static struct many M;
    int i, over = 0, woke = 0;

    want_fds(MANY + 64);
    ck_assert_int_eq(run_io(many, &M), 0);
    for (i = 0; i < MANY; i++) {
        if (M.w[i].fd >= FD_SETSIZE && IO_SELECT) {
            ck_assert_int_eq(M.w[i].rc, -PTRIO_EFDLIMIT);
            over++;
        } else {
            ck_assert_int_eq(M.w[i].rc, (int)PTRIO_READABLE);
            woke++;
        }
        close(M.w[i].fd);
    }
    ck_assert_uint_eq(M.waiting, (unsigned)woke);
    ck_assert_int_eq(over + woke, MANY);
    if (IO_SELECT)
        ck_assert_int_gt(over, 0);
}
END_TEST

/* select with every fd below FD_SETSIZE taken before the run: its own
 * wake fd would be out of the set, so the run fails at once with
 * -PTRIO_EFDLIMIT (no main task runs) and leaks nothing; once fds are
 * free again, a run works. */
START_TEST(test_select_wake_fd_over_setsize)
{
    int *held, n = 0, i, next = -1, first_out;

    if (!IO_SELECT)
        return;
    want_fds(FD_SETSIZE + 64);
    held = calloc(FD_SETSIZE, sizeof *held);
    ck_assert_ptr_nonnull(held);
    while (n < FD_SETSIZE && (next = dup(fds[0])) >= 0 && next < FD_SETSIZE)
        held[n++] = next;
    ck_assert_int_ge(next, FD_SETSIZE);     /* the first one out of it */
    first_out = next;
    close(next);
    P = (struct pair){.mode = 0};
    ck_assert_int_eq(run_io(pair, &P), -PTRIO_EFDLIMIT);
    ck_assert_str_eq(L.buf, "");            /* main never ran */
    next = dup(fds[0]);                     /* the same number: no leak */
    ck_assert_int_eq(next, first_out);
    close(next);
    for (i = 0; i < n; i++)
        close(held[i]);
    free(held);
    P = (struct pair){.mode = 0};
    ck_assert_int_eq(run_io(pair, &P), 0);
    ck_assert_str_eq(L.buf, "wait write readable");
}
END_TEST

/* poll's cap: PTRIO_CONF_POLL_MAX (16384) distinct fds at once. */
#define POLL_CAP 16384

struct cap {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task *t;
    struct mwait *w;
    int nfds;
    unsigned waiting;
};

static int cap(ptrio_frame *fr)
{
    struct cap *c = PTRIO_SELF(fr, struct cap);
    int i;
    PTRIO_BEGIN(c);
    for (i = 0; i < c->nfds; i++) {
        c->w[i].fd = dup(fds[0]);
        ck_assert_int_ge(c->w[i].fd, 0);
    }
    PTRIO_NURSERY(c, &c->n) {
        for (i = 0; i < c->nfds; i++)
            PTRIO_CHECK(c, ptrio_start_soon(&c->n, &c->t[i], mwait, &c->w[i]));
        PTRIO_AWAIT(c, ptrio_yield(c));
        PTRIO_AWAIT(c, ptrio_yield(c));
        c->waiting = ptrio_fd_waiters();
        ck_assert_int_eq(write(fds[1], "!", 1), 1);
    }
    PTRIO_END(c);
}

/* poll takes 16,384 fds at once, and refuses the next one with a clear
 * -PTRIO_EFDLIMIT (the others still wake); epoll takes them all. */
START_TEST(test_poll_cap)
{
    static struct cap C;
    struct rlimit rl;
    int i, refused = 0;

    if (IO_SELECT)
        return;     /* FD_SETSIZE comes first: test_many_fds_... */
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_max < POLL_CAP + 128) {
        printf("test_poll_cap: needs %d fds, the hard limit is %ld: "
               "skipped\n", POLL_CAP + 128, (long)rl.rlim_max);
        return;
    }
    want_fds(POLL_CAP + 128);
    memset(&C, 0, sizeof C);
    C.nfds = POLL_CAP + 1;
    C.t = calloc((size_t)C.nfds, sizeof *C.t);
    C.w = calloc((size_t)C.nfds, sizeof *C.w);
    ck_assert_int_eq(run_io(cap, &C), 0);
    for (i = 0; i < C.nfds; i++) {
        if (C.w[i].rc == -PTRIO_EFDLIMIT)
            refused++;
        else
            ck_assert_int_eq(C.w[i].rc, (int)PTRIO_READABLE);
        close(C.w[i].fd);
    }
    ck_assert_int_eq(refused, IO_POLL ? 1 : 0);
    ck_assert_uint_eq(C.waiting, (unsigned)(C.nfds - refused));
    free(C.t);
    free(C.w);
}
END_TEST

/* ---- ptrio_loop_wake -------------------------------------------------- */

/* Whether the read end of a pipe has something in it. */
static int has_data(int fd)
{
    char c;
    set_nonblock(fd);
    return read(fd, &c, 1) == 1;
}

struct quick {
    ptrio_frame fr;
};

static int quick(ptrio_frame *fr)
{
    struct quick *q = PTRIO_SELF(fr, struct quick);
    PTRIO_BEGIN(q);
    PTRIO_AWAIT(q, ptrio_checkpoint(q));
    PTRIO_END(q);
}

/* ptrio_loop_wake on a loop that is not running is a no-op: never opened
 * (its zeroed state must not read as fd 0), and after its run (the closed
 * wake fd's number may belong to someone else by then). */
START_TEST(test_wake_outside_run_is_noop)
{
    static struct quick Q;
    static ptrio_loop idle;
    int p[2], saved0 = dup(0), i;

    /* fd 0 is the write end of a pipe: a wake that writes there shows. */
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(dup2(p[1], 0), 0);
    ptrio_loop_init(&idle);
    ck_assert_int_eq(ptrio_loop_use_backend(&idle, &TEST_BACKEND_OPS), 0);
    ptrio_loop_wake(&idle);
    ptrio_loop_wake(NULL);
    ck_assert(!has_data(p[0]));
    dup2(saved0, 0);
    close(saved0);

    /* After a run: reopen fds until one takes each closed number. */
    ck_assert_int_eq(run_io(quick, &Q), 0);
    {
        int q[2][2];
        for (i = 0; i < 2; i++)
            ck_assert_int_eq(pipe(q[i]), 0);
        ptrio_loop_wake(&io_loop);
        for (i = 0; i < 2; i++) {
            ck_assert(!has_data(q[i][0]));
            close(q[i][0]);
            close(q[i][1]);
        }
    }
    close(p[0]);
    close(p[1]);
}
END_TEST

/* A source and a flag set by another thread or a signal handler: the
 * loop's way to learn of an outside event (core.h, external wakes). */
static volatile sig_atomic_t flag;
static ptrio_lot flag_lot;

static void flag_poll(ptrio_source *src)
{
    (void)src;
    if (__atomic_load_n(&flag, __ATOMIC_ACQUIRE))
        ptrio_lot_unpark_all(&flag_lot, 0);
}

struct outside {
    ptrio_frame fr;
    ptrio_scope sc;
    ptrio_source src;
    int rc;
    int join_waker;         /* a thread wakes: wait until it is done */
};

/* The waker thread's handshake with the run: it wakes only a running
 * loop, and the run ends only after its wake returned (core.h). */
static int running, waker_done;

static int outside(ptrio_frame *fr)
{
    struct outside *o = PTRIO_SELF(fr, struct outside);
    PTRIO_BEGIN(o);
    PTRIO_CHECK(o, ptrio_source_add(&o->src, flag_poll));
    __atomic_store_n(&running, 1, __ATOMIC_RELEASE);
    PTRIO_FAIL_AFTER(o, &o->sc, PTRIO_SEC(5)) {
        while (!__atomic_load_n(&flag, __ATOMIC_ACQUIRE))
            PTRIO_AWAIT(o, ptrio_park(o, &flag_lot, NULL));
        tlog_add(&L, "woken");
        /* polled: the wake that ended the park is the one under test */
        while (o->join_waker && !__atomic_load_n(&waker_done, __ATOMIC_ACQUIRE))
            PTRIO_AWAIT(o, ptrio_sleep(o, PTRIO_MS(1)));
    }
    ptrio_source_remove(&o->src);
    PTRIO_END(o);
}

static void *set_flag_and_wake(void *arg)
{
    struct timespec d = {0, 20 * 1000000};
    while (!__atomic_load_n(&running, __ATOMIC_ACQUIRE))
        nanosleep(&d, NULL);
    nanosleep(&d, NULL);            /* the task is parked by now, or soon */
    __atomic_store_n(&flag, 1, __ATOMIC_RELEASE);
    ptrio_loop_wake(arg);
    __atomic_store_n(&waker_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* ptrio_loop_wake from another thread ends the backend's wait. */
START_TEST(test_wake_from_thread)
{
    static struct outside O;
    pthread_t th;
    long long t0 = mono_ms();

    flag = 0;
    running = waker_done = 0;
    O = (struct outside){.join_waker = 1};
    ck_assert_int_eq(pthread_create(&th, NULL, set_flag_and_wake, &io_loop), 0);
    ck_assert_int_eq(run_io(outside, &O), 0);
    pthread_join(th, NULL);
    ck_assert_str_eq(L.buf, "woken");
    ck_assert_int_lt(mono_ms() - t0, 2000);
}
END_TEST

static void on_usr2(int sig)
{
    (void)sig;
    flag = 1;
    ptrio_loop_wake(&io_loop);      /* async-signal-safe */
}

static void *signal_main(void *arg)
{
    struct timespec d = {0, 20 * 1000000};
    (void)arg;
    while (!__atomic_load_n(&running, __ATOMIC_ACQUIRE))
        nanosleep(&d, NULL);
    nanosleep(&d, NULL);            /* the task is parked by now, or soon */
    pthread_kill(main_thread, SIGUSR2);
    return NULL;
}

/* ptrio_loop_wake from a signal handler running on the loop's thread
 * (the one place it can interrupt the loop itself). */
START_TEST(test_wake_from_signal_handler)
{
    static struct outside O;
    struct sigaction sa;
    pthread_t th;

    flag = 0;
    running = 0;
    O = (struct outside){0};
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr2;
    sa.sa_flags = SA_RESTART;
    ck_assert_int_eq(sigaction(SIGUSR2, &sa, NULL), 0);
    main_thread = pthread_self();
    ck_assert_int_eq(pthread_create(&th, NULL, signal_main, NULL), 0);
    ck_assert_int_eq(run_io(outside, &O), 0);
    pthread_join(th, NULL);
    ck_assert_str_eq(L.buf, "woken");
}
END_TEST

/* ---- epoll: the kernel's set ---------------------------------------- */

/* The fds in an epoll instance's set, from /proc/self/fdinfo. */
static int epoll_has(int epfd, int fd)
{
    char path[64], line[256];
    FILE *f;
    int found = 0, tfd;

    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", epfd);
    if (!(f = fopen(path, "r")))
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "tfd: %d", &tfd) == 1 && tfd == fd)
            found = 1;
    fclose(f);
    return found;
}

struct kset {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct reader r;
    int during, after;
};

static int kset(ptrio_frame *fr)
{
    struct kset *k = PTRIO_SELF(fr, struct kset);
    PTRIO_BEGIN(k);
    PTRIO_NURSERY(k, &k->n) {
        PTRIO_CHECK(k, ptrio_start_soon(&k->n, &k->t, reader, &k->r));
        PTRIO_AWAIT(k, ptrio_checkpoint(k));
        k->during = epoll_has((int)io_loop.be[2].word - 1, fds[0]);
        ptrio_nursery_cancel(&k->n);
    }
    k->after = epoll_has((int)io_loop.be[2].word - 1, fds[0]);
    PTRIO_END(k);
}

/* epoll: a cancelled wait takes its fd out of the kernel's set too. */
START_TEST(test_epoll_cancel_leaves_kernel_set_clean)
{
    static struct kset K;
    if (!IO_EPOLL)
        return;
    ck_assert_int_eq(run_io(kset, &K), 0);
    ck_assert_int_eq(K.during, 1);
    ck_assert_int_eq(K.after, 0);
    ck_assert_str_eq(L.buf, "wait cancelled");
}
END_TEST

/* The default backend and the backends by name. */
START_TEST(test_backend_names)
{
    ck_assert_ptr_eq(ptrio_backend_named(TEST_BACKEND_NAME), &TEST_BACKEND_OPS);
    ck_assert_ptr_eq(ptrio_backend_named("virtual"), &ptrio_backend_virtual);
    ck_assert_ptr_null(ptrio_backend_named("kqueue"));
    ck_assert_ptr_null(ptrio_backend_named(NULL));
    ck_assert_ptr_nonnull(ptrio_default_backend());
    ck_assert_str_eq(ptrio_errname(-PTRIO_EFDLIMIT), "PTRIO_EFDLIMIT");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("io/" TEST_BACKEND_NAME);
    TCase *tc = tcase_create("io");

    tcase_set_timeout(tc, 20);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_pipe_wakes_reader);
    tcase_add_test(tc, test_notify_closing_wakes_waiter);
    tcase_add_test(tc, test_fd_wait_is_cancellable);
    tcase_add_test(tc, test_second_waiter_and_bad_fd);
    tcase_add_misuse_test(tc, test_virtual_has_no_fd_waits);
    tcase_add_test(tc, test_reader_and_writer_on_one_fd);
    tcase_add_test(tc, test_socket_simultaneous_read_write);
    tcase_add_test(tc, test_interrupted_by_close);
    tcase_add_test(tc, test_hangup_wakes_reader);
    tcase_add_test(tc, test_fd_closed_under_waiter);
    tcase_add_test(tc, test_wake_fd_closed);
    tcase_add_test(tc, test_can_survive_unnotified_close);
    tcase_add_test(tc, test_wait_on_invalid_object);
    tcase_add_test(tc, test_regular_file);
    tcase_add_test(tc, test_wait_with_deadline);
    tcase_add_test(tc, test_sub_ms_deadlines_wait_once);
    tcase_add_test(tc, test_eintr_is_retried);
    tcase_add_test(tc, test_many_fds_and_fd_setsize);
    tcase_add_test(tc, test_poll_cap);
    tcase_add_test(tc, test_select_wake_fd_over_setsize);
    tcase_add_test(tc, test_wake_outside_run_is_noop);
    tcase_add_test(tc, test_wake_from_thread);
    tcase_add_test(tc, test_wake_from_signal_handler);
    tcase_add_test(tc, test_epoll_cancel_leaves_kernel_set_clean);
    tcase_add_test(tc, test_backend_names);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
