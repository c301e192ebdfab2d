/* src/io/stream.c: streams over non-blocking fds, and TCP listeners.
 *
 * Each operation follows Trio's _nonblocking_helper: fail at once if
 * cancelled, try the system call, and only on EAGAIN wait for readiness
 * and try again; an operation that never waited yields once at the end
 * (a schedule point that ignores cancellation), also when it fails (Trio's
 * _try_sync), so a task retrying a failing call lets others run. One
 * refinement: a receive that got fewer bytes than it asked for drained
 * the socket, so the next receive waits first instead of trying a recv
 * that would say EAGAIN (libuv does the same); readiness then costs no
 * wasted system call. Regular files are always ready: never drained.
 *
 * A receive and a send run as sub-coroutines whose frames live in the
 * stream (rx, tx): one of each at a time, as Trio's conflict detectors.
 */
#define _GNU_SOURCE     /* accept4, MSG_NOSIGNAL */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ptrio/net.h>

#include "../backend/host.h"
#include "../core/internal.h"

enum {
    S_SOCKET = 0x1,     /* send()/recv() with MSG_NOSIGNAL */
    S_DRAINED = 0x2,    /* the last receive emptied the socket */
    S_EOF_SENT = 0x4,
    S_FILE = 0x8        /* a regular file: always ready, never drained */
};

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

static int fd_of(const ptrio_stream *s) { return s->fdp1 - 1; }

int ptrio_stream_fd(const ptrio_stream *s)
{
    return s && s->fdp1 > 0 ? fd_of(s) : -1;
}

/* Takes fd into `s`; `is_tcp` when the caller knows (accept, connect). */
static void adopt(ptrio_stream *s, int fd, int is_sock, int is_tcp)
{
    int one = 1;
    memset(s, 0, sizeof *s);
    s->fdp1 = fd + 1;
    if (is_sock)
        s->flags |= S_SOCKET;
    if (is_tcp)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Whether `s` has an fd, or a call that has not returned yet (woken by a
 * close, say, and not yet resumed): clearing it would pull that call's
 * frame from under it. */
int ptrio__stream_in_use(const ptrio_stream *s)
{
    return s->fdp1 > 0 || !ptrio_frame_idle(&s->rx) ||
           !ptrio_frame_idle(&s->tx);
}

int ptrio_stream_open(ptrio_stream *s, int fd)
{
    struct sockaddr_storage ss;
    struct stat st;
    socklen_t len = sizeof ss;
    int type = 0, rc, is_sock, is_tcp = 0;
    socklen_t tlen = sizeof type;

    if (!s || fd < 0)
        return -PTRIO_EBADF;
    if (ptrio__stream_in_use(s))
        return -PTRIO_EBUSY;
    is_sock = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) == 0;
    /* Datagrams are no byte stream (Trio's SocketStream refuses them):
     * refused before the fd is touched, so it stays the caller's. */
    if (is_sock && type != SOCK_STREAM)
        return -PTRIO_EINVAL;
    if ((rc = ptrio__host_set_flags(fd)) < 0)
        return rc;
    if (is_sock && type == SOCK_STREAM &&
        getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
        is_tcp = ss.ss_family == AF_INET || ss.ss_family == AF_INET6;
    adopt(s, fd, is_sock, is_tcp);
    if (!is_sock && fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
        s->flags |= S_FILE;
    return 0;
}

static ssize_t do_recv(ptrio_stream *s, void *buf, size_t len)
{
    if (s->flags & S_SOCKET)
        return recv(fd_of(s), buf, len, 0);
    return read(fd_of(s), buf, len);
}

/* write() to a pipe whose reader is gone raises SIGPIPE: block it for
 * the call and take back the one the call raised, if any (a SIGPIPE
 * pending before is left alone). */
static ssize_t write_nosigpipe(int fd, const void *buf, size_t len)
{
    sigset_t pipe_set, old, pending;
    ssize_t n;
    int was_pending, saved;

    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpending(&pending);
    was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    n = write(fd, buf, len);
    saved = errno;
    if (n < 0 && saved == EPIPE && !was_pending) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = saved;
    return n;
}

static ssize_t do_send(ptrio_stream *s, const void *buf, size_t len)
{
    if (s->flags & S_SOCKET)
        return send(fd_of(s), buf, len, MSG_NOSIGNAL);
    return write_nosigpipe(fd_of(s), buf, len);
}

static int again(int e) { return e == EAGAIN || e == EWOULDBLOCK; }

/* ---- receive ---------------------------------------------------------- */

static int rx_step(ptrio_frame *fr)
{
    ptrio__stream_op *op = PTRIO_SELF(fr, ptrio__stream_op);
    ptrio_stream *s = op->s;
    ssize_t n;

    PTRIO_BEGIN(op);
    PTRIO_CHECK(op, ptrio_checkpoint_if_cancelled(op));
    for (;;) {
        if (!s->fdp1) {
            /* Closed before the call (then, as any failure that did not
             * wait, after a schedule point), or while it waited. */
            op->err = -PTRIO_ECLOSED;
            break;
        }
        if (op->waited || !(s->flags & S_DRAINED)) {
            n = do_recv(s, op->buf.in, op->len);
            if (n >= 0) {
                op->done = (size_t)n;
                /* A short read drained the socket or pipe: the next
                 * receive waits first. Not an end of stream (0), which
                 * the next read says again, and which a FIFO no writer
                 * opened never reports as readiness. */
                if (n > 0 && (size_t)n < op->len && !(s->flags & S_FILE))
                    s->flags |= S_DRAINED;
                else
                    s->flags &= ~(unsigned)S_DRAINED;
                break;
            }
            if (errno == EINTR)
                continue;
            if (!again(errno)) {
                op->err = -errno;
                break;
            }
        }
        op->waited = 1;
        PTRIO_AWAIT(op, ptrio_wait_readable(op, fd_of(s)));
    }
    if (!op->waited)
        PTRIO_YIELD(op);
    PTRIO_CHECK(op, op->err);
    PTRIO_RETURN(op, (int)op->done);
    PTRIO_END(op);
}

/* A call that fails with `rc` without running its frame: a checkpoint
 * first, as every stream call that did not wait. */
static int fail_at_a_checkpoint(void *self, int rc)
{
    int c = ptrio_checkpoint_if_cancelled(self);

    if (c < 0)
        return c;
    return ptrio__done_yield(ptrio__loop, ptrio__self(self), rc);
}

int ptrio_stream_receive_some(void *self, ptrio_stream *s, void *buf,
                              size_t max)
{
    if (!s || !buf || max == 0)
        return -PTRIO_EINVAL;
    /* Closed under a receiver that has not resumed yet: closed, as for
     * any receive now (Trio's receive has no conflict detector; only a
     * receiver still waiting makes another one busy). */
    if (!s->fdp1 && !ptrio_frame_idle(&s->rx))
        return fail_at_a_checkpoint(self, -PTRIO_ECLOSED);
    if (!ptrio_frame_idle(&s->rx))
        return -PTRIO_EBUSY;    /* another task receives: Trio's Busy... */
    s->rx.s = s;
    s->rx.buf.in = buf;
    s->rx.len = max > INT_MAX ? INT_MAX : max;
    s->rx.done = 0;
    s->rx.waited = s->rx.err = 0;
    return ptrio_call(self, &s->rx, rx_step);
}

/* ---- send ------------------------------------------------------------- */

static int tx_step(ptrio_frame *fr)
{
    ptrio__stream_op *op = PTRIO_SELF(fr, ptrio__stream_op);
    ptrio_stream *s = op->s;
    ssize_t n;

    PTRIO_BEGIN(op);
    PTRIO_CHECK(op, ptrio_checkpoint_if_cancelled(op));
    /* Closed before the call (send_eof's case too: its length is 0), or
     * while it waited: as in rx_step. */
    if (!s->fdp1)
        op->err = -PTRIO_ECLOSED;
    while (!op->err && op->done < op->len) {
        if (!s->fdp1) {
            op->err = -PTRIO_ECLOSED;
            break;
        }
        n = do_send(s, (const char *)op->buf.out + op->done,
                    op->len - op->done);
        if (n >= 0) {
            op->done += (size_t)n;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (!again(errno)) {
            op->err = -errno;
            break;
        }
        op->waited = 1;
        PTRIO_AWAIT(op, ptrio_wait_writable(op, fd_of(s)));
    }
    if (!op->waited)
        PTRIO_YIELD(op);
    PTRIO_CHECK(op, op->err);
    PTRIO_END(op);
}

static int send_call(void *self, ptrio_stream *s, const void *buf,
                     size_t len)
{
    s->tx.s = s;
    s->tx.buf.out = buf;
    s->tx.len = len;
    s->tx.done = 0;
    s->tx.waited = s->tx.err = 0;
    return ptrio_call(self, &s->tx, tx_step);
}

int ptrio_stream_send_all(void *self, ptrio_stream *s, const void *buf,
                          size_t len)
{
    if (!s || (!buf && len))
        return -PTRIO_EINVAL;
    /* Trio: no sending after send_eof, and nothing to send on a closed
     * stream, fail at once; a send on a closed stream is a checkpoint. */
    if ((s->flags & S_EOF_SENT) || (!s->fdp1 && !len))
        return -PTRIO_ECLOSED;
    if (!ptrio_frame_idle(&s->tx))
        return -PTRIO_EBUSY;
    return send_call(self, s, buf, len);
}

/* Trio's send_eof: in the sender's slot (a send_all meanwhile is busy),
 * a checkpoint, then the shutdown, idempotent before anything else. */
static int eof_step(ptrio_frame *fr)
{
    ptrio__stream_op *op = PTRIO_SELF(fr, ptrio__stream_op);
    ptrio_stream *s = op->s;

    PTRIO_BEGIN(op);
    PTRIO_AWAIT(op, ptrio_checkpoint(op));
    if (s->flags & S_EOF_SENT)
        op->err = 0;
    else if (!s->fdp1)
        op->err = -PTRIO_ECLOSED;
    else if (!(s->flags & S_SOCKET))
        op->err = -PTRIO_ENOTSOCK;
    else if (shutdown(fd_of(s), SHUT_WR) < 0 && errno != ENOTCONN)
        op->err = -errno;           /* ENOTCONN: the peer has gone, and
                                       its end has seen EOF already */
    else
        s->flags |= S_EOF_SENT;
    PTRIO_CHECK(op, op->err);
    PTRIO_END(op);
}

int ptrio_stream_send_eof(void *self, ptrio_stream *s)
{
    if (!s)
        return -PTRIO_EINVAL;
    if (!ptrio_frame_idle(&s->tx))
        return -PTRIO_EBUSY;
    s->tx.s = s;
    s->tx.err = 0;
    return ptrio_call(self, &s->tx, eof_step);
}

void ptrio__close_fdp1(int *fdp1)
{
    int fd = *fdp1 - 1;

    if (fd < 0)
        return;
    *fdp1 = 0;
    ptrio_notify_closing(fd);
    close(fd);
}

int ptrio_stream_close(ptrio_stream *s)
{
    if (s)
        ptrio__close_fdp1(&s->fdp1);
    return 0;
}

/* ---- listeners ------------------------------------------------------- */

/* The most a listen() asks for, as Trio: the kernel caps it at its own
 * maximum (somaxconn, which may be above the headers' SOMAXCONN), and
 * systems that keep the backlog in 16 bits would wrap a larger one. */
#define BACKLOG_MAX 0xFFFF

int ptrio_tcp_listen(ptrio_listener *ls, const char *host, int port,
                     int backlog)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    socklen_t len;
    int fd, one = 1, rc;

    if (!ls || port < 0 || port > 65535)
        return -PTRIO_EINVAL;
    if (ls->fdp1 > 0 || !ptrio_frame_idle(&ls->acc))
        return -PTRIO_EBUSY;        /* listening, or an accept ends */
    memset(&ss, 0, sizeof ss);
    if (!host || inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        if (!host)
            a4->sin_addr.s_addr = htonl(INADDR_ANY);
        len = sizeof *a4;
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        len = sizeof *a6;
    } else {
        return -PTRIO_EINVAL;   /* names need resolving: not here */
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ss.ss_family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 ||
        listen(fd, backlog > 0 && backlog < BACKLOG_MAX ? backlog
                                                         : BACKLOG_MAX) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    memset(ls, 0, sizeof *ls);
    ls->fdp1 = fd + 1;
    return 0;
}

int ptrio_listener_fd(const ptrio_listener *ls)
{
    return ls && ls->fdp1 > 0 ? ls->fdp1 - 1 : -1;
}

int ptrio_listener_port(const ptrio_listener *ls)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;

    if (!ls || ls->fdp1 <= 0 ||
        getsockname(ls->fdp1 - 1, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* A connection that died in the accept queue, or was refused by a
 * firewall: try the next one (Trio's list of ignorable accept errors). */
static int ignorable(int e)
{
    switch (e) {
    case ECONNABORTED: case EPROTO: case EPERM: case ENETDOWN:
    case ENOPROTOOPT: case EHOSTDOWN: case EHOSTUNREACH: case EOPNOTSUPP:
    case ENETUNREACH:
#ifdef ENONET
    case ENONET:
#endif
        return 1;
    default:
        return 0;
    }
}

static int accept_one(int lfd)
{
#ifdef HAVE_ACCEPT4
    return accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
    int fd = accept(lfd, NULL, NULL), rc;
    if (fd >= 0 && (rc = ptrio__host_set_flags(fd)) < 0) {
        close(fd);
        errno = -rc;
        return -1;
    }
    return fd;
#endif
}

static int accept_step(ptrio_frame *fr)
{
    ptrio__stream_op *op = PTRIO_SELF(fr, ptrio__stream_op);
    ptrio_listener *ls = CONTAINER(op, ptrio_listener, acc);
    int fd;

    PTRIO_BEGIN(op);
    PTRIO_CHECK(op, ptrio_checkpoint_if_cancelled(op));
    for (;;) {
        if (!ls->fdp1) {
            /* Closed before the call, or while it slept: as any failure
             * that did not wait, a schedule point first (Trio's accept
             * on a closed listener is a checkpoint). */
            op->err = -PTRIO_ECLOSED;
            break;
        }
        if (ptrio__stream_in_use(op->buf.in)) {
            /* Opened by someone else while this accept waited. */
            op->err = -PTRIO_EBUSY;
            break;
        }
        fd = accept_one(ls->fdp1 - 1);
        if (fd >= 0) {
            adopt(op->buf.in, fd, 1, 1);
            break;
        }
        if (errno == EINTR)
            continue;
        if (errno == EBADF || errno == ENOTSOCK) {
            /* Its fd was closed behind its back: Trio's listener says
             * ClosedResourceError for these too. */
            op->err = -PTRIO_ECLOSED;
            break;
        }
        if (ignorable(errno)) {
            /* As Trio's listener: the failed accept's schedule point (if
             * it never waited), then the next accept's cancel point, so
             * a flood of aborted connections can neither starve the
             * other tasks nor outlast a cancellation. */
            if (!op->waited)
                PTRIO_YIELD(op);
            op->waited = 0;
            PTRIO_CHECK(op, ptrio_checkpoint_if_cancelled(op));
            continue;
        }
        if (!again(errno)) {
            op->err = -errno;
            break;
        }
        op->waited = 1;
        PTRIO_AWAIT(op, ptrio_wait_readable(op, ls->fdp1 - 1));
    }
    if (!op->waited)
        PTRIO_YIELD(op);
    PTRIO_CHECK(op, op->err);
    PTRIO_END(op);
}

int ptrio_listener_accept(void *self, ptrio_listener *ls, ptrio_stream *out)
{
    if (!ls || !out)
        return -PTRIO_EINVAL;
    if (ptrio__stream_in_use(out) || !ptrio_frame_idle(&ls->acc))
        return -PTRIO_EBUSY;
    ls->acc.buf.in = out;
    ls->acc.waited = ls->acc.err = 0;
    return ptrio_call(self, &ls->acc, accept_step);
}

void ptrio_listener_close(ptrio_listener *ls)
{
    if (ls)
        ptrio__close_fdp1(&ls->fdp1);
}
