/* ptrio/net.h: streams over sockets, TCP listeners, serve_tcp, name
 * resolution and open_tcp_stream with happy eyeballs (POSIX hosts).
 *
 * Trio's models: trio.SocketStream, SocketListener, serve_tcp,
 * open_tcp_stream and getaddrinfo. Every call that may block is an
 * awaitable checkpoint: it fails at once with -PTRIO_ECANCELED in a
 * cancelled scope, and yields once when it completed (or failed) without
 * waiting.
 * Errors are the system's codes (-PTRIO_ECONNRESET, -PTRIO_EPIPE,
 * -PTRIO_ECONNREFUSED...), plus -PTRIO_ECLOSED for a stream closed under
 * the call and -PTRIO_EBUSY for a second task receiving (or sending) on a
 * stream another task is receiving (sending) on.
 *
 * Nothing is allocated: streams, listeners, servers with their connection
 * slots and connect operations are caller-owned, zeroed before first use.
 * The system structs appear only as pointers, so this header needs no
 * system header. */
#ifndef PTRIO_NET_H
#define PTRIO_NET_H

#include <stddef.h>

#include "core.h"
#include "io.h"

#ifdef __cplusplus
extern "C" {
#endif

struct addrinfo;

/* ---- streams: receive some, send all, half-close, close -------------- */

typedef struct ptrio_stream ptrio_stream;

/* A receive or a send in progress: a sub-coroutine frame kept in the
 * stream. Private. */
typedef struct ptrio__stream_op {
    ptrio_frame fr;
    ptrio_stream *s;
    union { void *in; const void *out; } buf;
    size_t len, done;
    int waited, err;
} ptrio__stream_op;

/* A connected non-blocking fd (a socket, or a pipe or tty end). */
struct ptrio_stream {
    int fdp1;                   /* fd + 1; 0: no fd (zeroed, or closed) */
    unsigned flags;
    ptrio__stream_op rx, tx;
};

/* Wraps a connected fd: sets it non-blocking and close-on-exec, and
 * TCP_NODELAY on a TCP socket (as Trio does); a regular file (stdin from
 * a file) is read and written without readiness waits. The stream owns fd
 * from now on. Returns 0, -PTRIO_EBADF (fd < 0, or NULL stream),
 * -PTRIO_EBUSY (the stream has an fd, or a call on it has not returned
 * yet: one woken by a close), -PTRIO_EINVAL (a socket that is not
 * SOCK_STREAM: a datagram socket is no byte stream, as Trio's
 * SocketStream says), or fcntl's error (-PTRIO_EBADF for an fd that is not
 * open). On failure the fd is left as it was, the caller's. */
int ptrio_stream_open(ptrio_stream *s, int fd);

/* The stream's fd, or -1. */
int ptrio_stream_fd(const ptrio_stream *s);

/* Receives at most `max` (>= 1) bytes into `buf`: awaitable checkpoint.
 * Returns how many (> 0), or 0 at end of stream. Errors: -PTRIO_EINVAL
 * (max 0, NULL stream or buf), -PTRIO_ECLOSED (closed before the call,
 * after the checkpoint as in Trio, also while a receiver the close woke
 * has not returned yet; or while waiting), -PTRIO_EBUSY (another task
 * receives), the
 * socket's (-PTRIO_ECONNRESET...), those of ptrio_wait_readable
 * (-PTRIO_EFDLIMIT...), -PTRIO_ECANCELED, -PTRIO_ENOTASK. */
PTRIO_NODISCARD int ptrio_stream_receive_some(void *self, ptrio_stream *s,
                                              void *buf, size_t max);

/* Sends all `len` bytes: awaitable checkpoint. Returns 0. Never raises
 * SIGPIPE. Errors: -PTRIO_EPIPE / -PTRIO_ECONNRESET (the peer is gone),
 * -PTRIO_ECLOSED (closed: after the checkpoint; after
 * ptrio_stream_send_eof, or nothing to send on a closed stream: at once,
 * as Trio), -PTRIO_EBUSY, -PTRIO_EINVAL (NULL stream, or NULL buf with len
 * > 0), those of ptrio_wait_writable, -PTRIO_ENOTASK, -PTRIO_ECANCELED
 * (then an unknown part was sent: the stream is only good for closing,
 * as in Trio). */
PTRIO_NODISCARD int ptrio_stream_send_all(void *self, ptrio_stream *s,
                                          const void *buf, size_t len);

/* Half-close: the peer's receive gets end of stream, receiving here goes
 * on. Awaitable checkpoint, then the shutdown (as Trio's); it holds the
 * sending side meanwhile, so a send_all started then is -PTRIO_EBUSY.
 * Idempotent (also once closed, EOF sent); returns 0. Errors:
 * -PTRIO_EBUSY (a send is in progress), -PTRIO_ECLOSED (after the
 * checkpoint),
 * -PTRIO_ENOTSOCK (not a socket), -PTRIO_EINVAL (NULL), shutdown's error,
 * -PTRIO_ECANCELED, -PTRIO_ENOTASK. */
PTRIO_NODISCARD int ptrio_stream_send_eof(void *self, ptrio_stream *s);

/* Closes the stream (not an await: it always closes, also in a cancelled
 * scope or a FINALLY). A task blocked on it wakes with -PTRIO_ECLOSED.
 * Idempotent; returns 0. */
int ptrio_stream_close(ptrio_stream *s);

/* ---- TCP listeners ----------------------------------------------------- */

/* A listening TCP socket. Private fields. */
typedef struct ptrio_listener {
    int fdp1;
    ptrio__stream_op acc;       /* the accept in progress */
} ptrio_listener;

/* Binds `host` (a numeric IPv4 or IPv6 address; NULL: every IPv4
 * address) and `port` (0: the system picks, see ptrio_listener_port) with
 * SO_REUSEADDR, and listens (backlog <= 0: the system's maximum, asking
 * for 0xFFFF as Trio does; larger ones are capped at 0xFFFF). Not an
 * await: nothing here blocks. Errors: -PTRIO_EINVAL (bad address or port),
 * -PTRIO_EBUSY (already listening, or an accept woken by a close has not
 * returned yet), the system's (-PTRIO_EADDRINUSE...). */
int ptrio_tcp_listen(ptrio_listener *ls, const char *host, int port,
                     int backlog);

/* The bound port, or -1. */
int ptrio_listener_port(const ptrio_listener *ls);

/* The listening fd, or -1. */
int ptrio_listener_fd(const ptrio_listener *ls);

/* Accepts one connection into `out` (a zeroed or closed stream):
 * awaitable checkpoint. Transient failures of a connection that died in
 * the queue are skipped, as Trio does. Returns 0. Errors: -PTRIO_EMFILE /
 * -PTRIO_ENFILE / -PTRIO_ENOBUFS / -PTRIO_ENOMEM (out of resources:
 * ptrio_serve_tcp backs off and retries), other accept errors,
 * -PTRIO_ECLOSED (closed, also before the call: still a checkpoint, as
 * in Trio; or its fd closed behind its back: EBADF), -PTRIO_EBUSY (`out`
 * is in use as for ptrio_stream_open, also when it was opened while the
 * accept waited; or another task accepts), -PTRIO_EINVAL (NULL),
 * -PTRIO_ECANCELED, -PTRIO_ENOTASK. */
PTRIO_NODISCARD int ptrio_listener_accept(void *self, ptrio_listener *ls,
                                          ptrio_stream *out);

/* Closes the listener; a task blocked in accept wakes with -PTRIO_ECLOSED.
 * Idempotent. */
void ptrio_listener_close(ptrio_listener *ls);

/* ---- serve_tcp ----------------------------------------------------------
 *
 * One task per connection in the server's nursery, with no allocation:
 * the caller gives an array of connection slots, each a struct of its own
 * whose first member is the handler's frame and which embeds a ptrio_conn:
 *
 *     struct client {
 *         ptrio_frame fr;          // the handler's frame
 *         ptrio_conn conn;         // ptrio's: conn.stream is the client
 *         char buf[512];
 *     };
 *     static struct client clients[100];
 *
 *     ptrio_server_init(&srv, "127.0.0.1", 0, handler,
 *                       PTRIO_SERVER_SLOTS(clients, conn));
 *     PTRIO_AWAIT(f, ptrio_start(f, &n, &t, ptrio_serve_tcp, &srv, NULL));
 *
 * Each connection runs handler over its slot, zeroed but for the
 * ptrio_conn; the stream is closed when the handler returns. When every
 * slot is busy the server stops accepting (the kernel's backlog holds
 * the rest) until one frees. A handler's failure is reported (one line to
 * the loop's report sink) and ends that connection only; running out of
 * fds (EMFILE...) is reported and retried after 100 ms. Unlike Trio,
 * neither stops the server (see README, Differences from Trio). */

typedef struct ptrio_server ptrio_server;

typedef struct ptrio__conn_run {
    ptrio_frame fr;
    int rc;
} ptrio__conn_run;

/* ptrio's part of a connection slot. Private but `stream`. */
typedef struct ptrio_conn {
    ptrio_stream stream;        /* the client, open while the handler runs */
    ptrio_task task;
    ptrio__conn_run run;        /* runs the handler, then closes */
    ptrio_server *server;
    struct ptrio_conn *next;    /* free list */
    ptrio_frame *handler_frame;
} ptrio_conn;

/* The server: a frame (ptrio_serve_tcp is its step function). Private. */
struct ptrio_server {
    ptrio_frame fr;
    const char *host;
    int port;
    ptrio_fn handler;
    char *slots;
    size_t nslots, stride, conn_offset;
    ptrio_listener listener;
    ptrio_nursery nursery;
    ptrio_lot slot_free;        /* the acceptor, waiting for a slot */
    ptrio_conn *free, *next;     /* free slots; the one accepted into */
    unsigned long accepted, failed, backoffs;
    int rc;
};

/* The array arguments of ptrio_server_init for `array` of slot structs
 * whose ptrio_conn member is `member`. */
#define PTRIO_SERVER_SLOTS(array, member)                                   \
    (void *)(array), sizeof(array) / sizeof((array)[0]), sizeof((array)[0]), \
    (size_t)((char *)&(array)[0].member - (char *)&(array)[0])

/* Prepares a server on `host` (numeric, NULL: every IPv4 address) and
 * `port` (0: any), running `handler` over the slots. Returns 0,
 * -PTRIO_EINVAL (bad arguments), -PTRIO_EBUSY (the server is running). */
int ptrio_server_init(ptrio_server *srv, const char *host, int port,
                      ptrio_fn handler, void *slots, size_t nslots,
                      size_t stride, size_t conn_offset);

/* The server's step function: listens, calls ptrio_started(srv) (so
 * ptrio_start returns once it listens, with the port known), then serves
 * until cancelled. Start it as a task over &srv, or PTRIO_CALL it. Fails
 * with the listen error, an accept error other than running out of
 * resources, -PTRIO_EINVAL (ptrio_server_init not called), or
 * -PTRIO_ECANCELED when cancelled. */
int ptrio_serve_tcp(ptrio_frame *srv);

/* The port the server listens on (-1 before). */
int ptrio_server_port(const ptrio_server *srv);

/* Connections accepted, handlers that failed, and EMFILE-like back-offs,
 * since the server started. */
unsigned long ptrio_server_stats(const ptrio_server *srv,
                                 unsigned long *failed,
                                 unsigned long *backoffs);

/* ---- name resolution ---------------------------------------------------- */

/* getaddrinfo's shape: a custom resolver (Trio's
 * set_custom_hostname_resolver), run on a worker thread like getaddrinfo;
 * `freeres` frees what it returned. */
typedef int (*ptrio_resolver_fn)(const char *host, const char *service,
                                 const struct addrinfo *hints,
                                 struct addrinfo **res);
typedef void (*ptrio_freeres_fn)(struct addrinfo *res);

#define PTRIO_HOST_MAX 256      /* longest host name, with its NUL */

/* The request a worker copies: private. */
typedef struct ptrio__gai_req {
    char host[PTRIO_HOST_MAX];
    char service[16];
    int family, socktype, protocol, flags;
    ptrio_resolver_fn resolve;
    ptrio_freeres_fn freeres;
    struct addrinfo *res;
    struct addrinfo *numeric;   /* the last numeric host's list */
    int rc, err;
} ptrio__gai_req;

/* A resolution in progress: a frame, caller-owned. */
typedef struct ptrio_resolve {
    ptrio_frame fr;
    ptrio_thread_job job;
    ptrio__gai_req req;
    struct addrinfo **out;
    int gai_error;              /* getaddrinfo's EAI_* code of the last */
} ptrio_resolve;

/* Uses `resolve` (and `freeres` for its results; NULL: nothing to free)
 * instead of getaddrinfo for this request's calls. */
void ptrio_resolve_set_resolver(ptrio_resolve *r, ptrio_resolver_fn resolve,
                                ptrio_freeres_fn freeres);

/* getaddrinfo(host, service) on a worker thread: awaitable checkpoint.
 * A numeric host with a numeric (or no) service is resolved at once,
 * without a thread (nor the custom resolver), as Trio does; a named
 * service goes to the thread or the resolver. `family` (0: any,
 * or AF_INET, AF_INET6), `socktype` (0, SOCK_STREAM...), `flags`
 * (AI_PASSIVE...) are the hints. On success `*res` holds the list: free it
 * with ptrio_freeaddrinfo(r, *res) (with a custom resolver, a numeric
 * host's list is getaddrinfo's: free it before r resolves the next
 * numeric host, which takes its place). Cancellable at once (the thread's
 * result is freed when it comes). Errors: -PTRIO_ERESOLVE (see
 * ptrio_resolve_strerror), -PTRIO_ENOMEM, the system's (EAI_SYSTEM's
 * errno), -PTRIO_EINVAL (NULL r or res, neither host nor service, host or
 * service too long), -PTRIO_EBUSY (`r` is in use), those of
 * ptrio_run_in_thread. */
PTRIO_NODISCARD int ptrio_getaddrinfo(void *self, ptrio_resolve *r,
                                      const char *host, const char *service,
                                      int family, int socktype, int flags,
                                      struct addrinfo **res);

/* Frees a list ptrio_getaddrinfo returned through `r`. */
void ptrio_freeaddrinfo(ptrio_resolve *r, struct addrinfo *res);

/* The resolver's message for the last failure of `r` (gai_strerror). */
const char *ptrio_resolve_strerror(const ptrio_resolve *r);

/* ---- open_tcp_stream: happy eyeballs (RFC 8305) ----------------------- */

#define PTRIO_CONNECT_ATTEMPTS 8    /* attempts in flight at once, at most */

typedef struct ptrio_tcp_connect ptrio_tcp_connect;

/* One connection attempt: private. */
typedef struct ptrio__attempt {
    ptrio_frame fr;
    ptrio_tcp_connect *c;
    const struct addrinfo *ai;
    ptrio_task task;
    ptrio_lot failed;           /* the connector, waiting on this attempt */
    int fdp1, err;
} ptrio__attempt;

/* An open_tcp_stream in progress: a frame, caller-owned. Private. */
struct ptrio_tcp_connect {
    ptrio_frame fr;
    ptrio_resolve resolve;
    ptrio_stream *out;
    const char *host;
    char service[8];
    ptrio_time delay;
    struct addrinfo *res;
    const struct addrinfo *next;
    ptrio_nursery nursery;
    ptrio_scope stagger;
    ptrio_lot slot_free;
    ptrio__attempt att[PTRIO_CONNECT_ATTEMPTS];
    int winner, first_err, attempts, failures, wait_slot;
};

/* Uses `delay` between attempts instead of RFC 8305's 250 ms (Trio's
 * happy_eyeballs_delay; PTRIO_TIME_INF, or anything over 2^62 ns: one
 * address at a time; <= 0: back to 250 ms). */
void ptrio_tcp_connect_set_delay(ptrio_tcp_connect *c, ptrio_time delay);

/* Connects to `host` (a name or a numeric address) on `port`, into `out`:
 * awaitable checkpoint. The name is resolved on a worker thread (through
 * c->resolve, which may have a custom resolver); then attempts start one
 * after another, each `delay` after the previous one or at once when it
 * failed, the address families interleaved; the first to connect wins and
 * the others are cancelled and closed. Bound it with a cancel scope: a
 * connect to an address that never answers takes the system's timeout.
 * Errors: those of ptrio_getaddrinfo (-PTRIO_ERESOLVE also for a name
 * with no address); when every attempt failed, the error of the first
 * attempt to fail (-PTRIO_ECONNREFUSED...); -PTRIO_EINVAL (NULL, port not
 * in 1..65535); -PTRIO_EBUSY (`out` is in use as for ptrio_stream_open,
 * or `c` is); -PTRIO_ECANCELED. */
PTRIO_NODISCARD int ptrio_open_tcp_stream(void *self, ptrio_tcp_connect *c,
                                          ptrio_stream *out, const char *host,
                                          int port);

/* The attempts the last connect through `c` started. */
int ptrio_tcp_connect_attempts(const ptrio_tcp_connect *c);

#ifdef __cplusplus
}
#endif

#endif /* PTRIO_NET_H */
