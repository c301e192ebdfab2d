/* src/io/serve.c: ptrio_serve_tcp, Trio's serve_tcp over caller-owned
 * connection slots.
 *
 * The server task listens, then accepts straight into a free slot's
 * stream and starts the slot's task in its nursery. The slot's task runs
 * the handler as a sub-coroutine, reports its failure if any, closes the
 * stream and puts the slot back on the free list, waking the acceptor if
 * it waited for one. No slot free: the acceptor parks; accepting stops
 * and the kernel's backlog holds new connections. Out of fds: report,
 * sleep 100 ms, retry (Trio's serve_listeners does the same).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include <ptrio/net.h>

#include "../core/internal.h"

#define BACKOFF PTRIO_MS(100)

static ptrio_conn *conn_at(ptrio_server *srv, size_t i)
{
    return (ptrio_conn *)(void *)(srv->slots + i * srv->stride +
                                  srv->conn_offset);
}

int ptrio_server_init(ptrio_server *srv, const char *host, int port,
                      ptrio_fn handler, void *slots, size_t nslots,
                      size_t stride, size_t conn_offset)
{
    size_t i;

    if (!srv || !handler || !slots || !nslots || port < 0 || port > 65535 ||
        stride < sizeof(ptrio_frame) || conn_offset < sizeof(ptrio_frame) ||
        conn_offset + sizeof(ptrio_conn) > stride)
        return -PTRIO_EINVAL;
    if (!ptrio_frame_idle(srv)) {
        MISUSE("ptrio_server_init on a server that is running");
        return -PTRIO_EBUSY;
    }
    memset(srv, 0, sizeof *srv);
    srv->host = host;
    srv->port = port;
    srv->handler = handler;
    srv->slots = slots;
    srv->nslots = nslots;
    srv->stride = stride;
    srv->conn_offset = conn_offset;
    for (i = nslots; i-- > 0;) {
        ptrio_conn *c = conn_at(srv, i);
        memset(c, 0, sizeof *c);
        c->server = srv;
        c->handler_frame = (ptrio_frame *)(void *)(srv->slots + i * stride);
        c->next = srv->free;
        srv->free = c;
    }
    return 0;
}

int ptrio_server_port(const ptrio_server *srv)
{
    return srv ? ptrio_listener_port(&srv->listener) : -1;
}

unsigned long ptrio_server_stats(const ptrio_server *srv,
                                 unsigned long *failed,
                                 unsigned long *backoffs)
{
    if (failed)
        *failed = srv ? srv->failed : 0;
    if (backoffs)
        *backoffs = srv ? srv->backoffs : 0;
    return srv ? srv->accepted : 0;
}

/* Zeroes the slot but for its ptrio_conn: frames start zeroed. */
static void clear_slot(ptrio_server *srv, ptrio_conn *c)
{
    char *base = (char *)c->handler_frame;
    size_t after = srv->conn_offset + sizeof *c;
    memset(base, 0, srv->conn_offset);
    memset(base + after, 0, srv->stride - after);
}

/* Puts a slot back on the free list. */
static void release_slot(ptrio_server *srv, ptrio_conn *c)
{
    c->next = srv->free;
    srv->free = c;
}

static void report_failure(ptrio_server *srv, ptrio_conn *c, int rc)
{
    ptrio_failure f;
    char line[320];

    srv->failed++;
    if (ptrio_failure_last(rc, &f) == 0 && f.file)
        snprintf(line, sizeof line,
                 "ptrio: serve_tcp: connection handler '%s' failed: %s (%s) "
                 "at %s:%d; the server goes on", f.task, ptrio_errname(rc),
                 f.msg ? f.msg : ptrio_strerror(rc), f.file, f.line);
    else
        snprintf(line, sizeof line,
                 "ptrio: serve_tcp: connection handler '%s' failed: %s (%s); "
                 "the server goes on", ptrio_task_name(&c->task),
                 ptrio_errname(rc), ptrio_strerror(rc));
    ptrio__report(ptrio__loop, line);
}

/* The task of one connection. */
static int conn_main(ptrio_frame *fr)
{
    ptrio__conn_run *r = PTRIO_SELF(fr, ptrio__conn_run);
    ptrio_conn *c = CONTAINER(r, ptrio_conn, run);
    ptrio_server *srv = c->server;

    PTRIO_BEGIN(r);
    PTRIO_TRY(r, r->rc, ptrio_call(r, c->handler_frame, srv->handler));
    if (r->rc == -PTRIO_ECANCELED)
        PTRIO_CHECK(r, r->rc);              /* the server is stopping */
    if (r->rc < 0)
        report_failure(srv, c, r->rc);
    PTRIO_FINALLY(r);
    ptrio_stream_close(&c->stream);
    release_slot(srv, c);
    ptrio_lot_unpark(&srv->slot_free, 0);
    PTRIO_END(r);
}

static int out_of_fds(int rc)
{
    return rc == -PTRIO_EMFILE || rc == -PTRIO_ENFILE ||
           rc == -PTRIO_ENOBUFS || rc == -PTRIO_ENOMEM;
}

static void report_backoff(ptrio_server *srv, int rc)
{
    char line[160];
    srv->backoffs++;
    snprintf(line, sizeof line,
             "ptrio: serve_tcp: accept failed: %s (%s); retrying in 100 ms",
             ptrio_errname(rc), ptrio_strerror(rc));
    ptrio__report(ptrio__loop, line);
}

int ptrio_serve_tcp(ptrio_frame *fr)
{
    ptrio_server *s = PTRIO_SELF(fr, ptrio_server);
    ptrio_conn *c;

    PTRIO_BEGIN(s);
    if (!s->handler)
        PTRIO_RAISE(s, -PTRIO_EINVAL, "ptrio_server_init was not called");
    PTRIO_CHECK(s, ptrio_tcp_listen(&s->listener, s->host, s->port, 0));
    PTRIO_CHECK(s, ptrio_started(s, s));
    PTRIO_NURSERY(s, &s->nursery) {
        for (;;) {
            while (!s->free)
                PTRIO_AWAIT(s, ptrio_park(s, &s->slot_free, NULL));
            /* Off the free list while accepting into it: slots freed
             * meanwhile go on the list, not under this accept. */
            s->next = s->free;
            s->free = s->next->next;
            PTRIO_TRY(s, s->rc, ptrio_listener_accept(s, &s->listener,
                                                      &s->next->stream));
            c = s->next;
            s->next = NULL;
            if (s->rc < 0)
                release_slot(s, c);
            if (out_of_fds(s->rc)) {
                report_backoff(s, s->rc);
                PTRIO_AWAIT(s, ptrio_sleep(s, BACKOFF));
                continue;
            }
            PTRIO_CHECK(s, s->rc);
            s->accepted++;
            clear_slot(s, c);
            s->rc = ptrio_start_soon_named(&s->nursery, &c->task, conn_main,
                                           &c->run, "serve_tcp handler");
            if (s->rc < 0) {
                ptrio_stream_close(&c->stream);
                release_slot(s, c);
                PTRIO_CHECK(s, s->rc);
            }
        }
    }
    PTRIO_FINALLY(s);
    ptrio_listener_close(&s->listener);
    PTRIO_END(s);
}
