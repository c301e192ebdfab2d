/* src/io/connect.c: ptrio_open_tcp_stream, Trio's open_tcp_stream with
 * happy eyeballs (RFC 8305).
 *
 * Resolve (on a worker thread unless numeric), interleave the address
 * families (the first address of the other family moves up to second
 * place), then start attempts in order in the connector's nursery: each
 * next attempt starts when the previous one failed or `delay` (250 ms)
 * after it started, whichever comes first. The first attempt to connect
 * becomes the stream and cancels the nursery: the other attempts are
 * cancelled and close their sockets. At most PTRIO_CONNECT_ATTEMPTS
 * attempts are in flight; the next one waits for a slot to free.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ptrio/net.h>

#include "../backend/host.h"
#include "../core/internal.h"

#define HE_DELAY PTRIO_MS(250)      /* RFC 8305's connection attempt delay */

/* A delay too long for a deadline (over 2^62 ns, 146 years) is none:
 * as PTRIO_TIME_INF, one address at a time. */
void ptrio_tcp_connect_set_delay(ptrio_tcp_connect *c, ptrio_time delay)
{
    if (c)
        c->delay = delay <= 0 ? HE_DELAY
                 : delay > TIME_HUGE ? PTRIO_TIME_INF : delay;
}

int ptrio_tcp_connect_attempts(const ptrio_tcp_connect *c)
{
    return c ? c->attempts : 0;
}

/* RFC 8305 section 4: the first address of another family than the
 * first one goes second, so both families are tried early. */
static void interleave(struct addrinfo **head)
{
    struct addrinfo *first = *head, *prev, *ai;

    if (!first)
        return;
    for (prev = first, ai = first->ai_next; ai; prev = ai, ai = ai->ai_next)
        if (ai->ai_family != first->ai_family)
            break;
    if (!ai || prev == first)
        return;     /* one family, or already second */
    prev->ai_next = ai->ai_next;
    ai->ai_next = first->ai_next;
    first->ai_next = ai;
}

/* One attempt: socket, non-blocking connect, wait until writable, read
 * SO_ERROR. Its failure is recorded, never raised: it must not cancel the
 * other attempts. Cancellation does propagate. */
static int attempt(ptrio_frame *fr)
{
    ptrio__attempt *a = PTRIO_SELF(fr, ptrio__attempt);
    ptrio_tcp_connect *c = a->c;
    int fd, err;
    socklen_t len = sizeof err;

    PTRIO_BEGIN(a);
    a->err = 0;
    /* Started into a nursery cancelled meanwhile (a winner, the caller):
     * no socket, no SYN, as Trio's connect checks first. */
    PTRIO_CHECK(a, ptrio_checkpoint_if_cancelled(a));
    fd = socket(a->ai->ai_family,
                SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        a->err = -errno;
    } else {
        a->fdp1 = fd + 1;
        /* EINTR: the connection goes on in the background (POSIX). */
        if (connect(fd, a->ai->ai_addr, a->ai->ai_addrlen) < 0 &&
            errno != EINPROGRESS && errno != EINTR)
            a->err = -errno;
    }
    if (!a->err && a->fdp1) {
        PTRIO_TRY(a, a->err, ptrio_wait_writable(a, a->fdp1 - 1));
        if (a->err == -PTRIO_ECANCELED)
            PTRIO_CHECK(a, a->err);
        if (a->err >= 0) {
            if (getsockopt(a->fdp1 - 1, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                err = errno;
            a->err = err ? -err : 0;
        }
    }
    if (!a->err) {
        if (c->winner < 0) {        /* first: the stream is ours */
            c->winner = a->fdp1 - 1;
            a->fdp1 = 0;
            ptrio_nursery_cancel(&c->nursery);
        }
    } else {
        c->failures++;
        if (!c->first_err)
            c->first_err = a->err;
        ptrio_lot_unpark_all(&a->failed, 0);
    }
    PTRIO_FINALLY(a);
    ptrio__close_fdp1(&a->fdp1);    /* lost, failed or cancelled */
    a->ai = NULL;                   /* the slot is free again */
    ptrio_lot_unpark(&c->slot_free, 0);
    PTRIO_END(a);
}

static ptrio__attempt *free_slot(ptrio_tcp_connect *c)
{
    int i;
    for (i = 0; i < PTRIO_CONNECT_ATTEMPTS; i++)
        if (!c->att[i].ai && !(c->att[i].task.state & T_STATE_LIVE))
            return &c->att[i];
    return NULL;
}

static int he_step(ptrio_frame *fr)
{
    ptrio_tcp_connect *c = PTRIO_SELF(fr, ptrio_tcp_connect);
    ptrio__attempt *a;

    PTRIO_BEGIN(c);
    PTRIO_AWAIT(c, ptrio_getaddrinfo(c, &c->resolve, c->host, c->service, 0,
                                     SOCK_STREAM, 0, &c->res));
    if (!c->res) {                  /* Trio: "no results found" */
        c->resolve.gai_error = EAI_NONAME;
        PTRIO_RAISE(c, -PTRIO_ERESOLVE, "the name resolved to no address");
    }
    interleave(&c->res);
    c->next = c->res;
    PTRIO_NURSERY(c, &c->nursery) {
        while (c->next && c->winner < 0) {
            while (!(a = free_slot(c)))
                PTRIO_AWAIT(c, ptrio_park(c, &c->slot_free, NULL));
            a->c = c;
            a->ai = c->next;
            a->fdp1 = 0;
            c->next = c->next->ai_next;
            c->attempts++;
            c->wait_slot = (int)(a - c->att);
            PTRIO_CHECK(c, ptrio_start_soon_named(&c->nursery, &a->task,
                                                  attempt, a,
                                                  "connect attempt"));
            if (!c->next)
                break;
            /* Until this attempt fails or the delay passes. */
            PTRIO_MOVE_ON_AFTER(c, &c->stagger, c->delay) {
                PTRIO_AWAIT(c, ptrio_park(c, &c->att[c->wait_slot].failed,
                                          NULL));
            }
        }
    }
    if (c->winner < 0)
        PTRIO_RAISE(c, c->first_err ? c->first_err : -PTRIO_ECONNREFUSED,
                    "all attempts to connect failed");
    PTRIO_CHECK(c, ptrio_stream_open(c->out, c->winner));
    c->winner = -1;
    PTRIO_FINALLY(c);
    if (c->winner >= 0) {           /* won, then cancelled or failed */
        close(c->winner);
        c->winner = -1;
    }
    if (c->res) {
        ptrio_freeaddrinfo(&c->resolve, c->res);
        c->res = NULL;
    }
    PTRIO_END(c);
}

int ptrio_open_tcp_stream(void *self, ptrio_tcp_connect *c, ptrio_stream *out,
                          const char *host, int port)
{
    if (!c || !out || !host)
        return -PTRIO_EINVAL;
    if (port <= 0 || port > 65535)
        return -PTRIO_EINVAL;
    if (ptrio__stream_in_use(out) || !ptrio_frame_idle(c))
        return -PTRIO_EBUSY;
    c->out = out;
    c->host = host;
    snprintf(c->service, sizeof c->service, "%d", port);
    if (c->delay <= 0)
        c->delay = HE_DELAY;
    c->res = NULL;
    c->next = NULL;
    c->winner = -1;
    c->first_err = 0;
    c->attempts = c->failures = 0;
    memset(c->att, 0, sizeof c->att);
    return ptrio_call(self, c, he_step);
}
