/* samples/common/ptrio_curl.c: libcurl's multi-socket API on ptrio. See
 * ptrio_curl.h for the shape. */
#include <stdio.h>
#include <string.h>

#include "ptrio_curl.h"

enum { X_IDLE = 0, X_RUNNING, X_DONE };

static int status_of(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK: return 0;
    case CURLE_OPERATION_TIMEDOUT: return -PTRIO_ETIMEDOUT;
    case CURLE_COULDNT_CONNECT: return -PTRIO_ECONNREFUSED;
    case CURLE_COULDNT_RESOLVE_HOST: return -PTRIO_ERESOLVE;
    default: return -PTRIO_EIO;
    }
}

/* Hands finished transfers back to their tasks. Called after every
 * socket_action, never from inside a curl callback (so removing a handle
 * is allowed). */
static void reap(pcurl *pc)
{
    CURLMsg *m;
    int left;

    while ((m = curl_multi_info_read(pc->multi, &left))) {
        pcurl_xfer *x = NULL;
        CURL *easy = m->easy_handle;
        CURLcode rc = m->data.result;
        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
        curl_multi_remove_handle(pc->multi, easy);  /* m is gone now */
        if (!x || x->state != X_RUNNING)
            continue;
        x->result = rc;
        x->state = X_DONE;
        ptrio_wake(x->task, status_of(rc));
    }
}

static void action(pcurl *pc, curl_socket_t fd, int ev)
{
    int running;
    curl_multi_socket_action(pc->multi, fd, ev, &running);
    reap(pc);
}

/* ---- watchers ---------------------------------------------------------- */

/* Waits on its direction while curl wants it; curl changing its mind
 * cancels the scope, and the outer loop looks again. */
static int watch_step(ptrio_frame *fr)
{
    pcurl_watch *w = PTRIO_SELF(fr, pcurl_watch);
    pcurl_sock *s = w->sock;

    PTRIO_BEGIN(w);
    while (w->want) {
        PTRIO_CANCEL_SCOPE(w, &w->scope) {
            while (w->want) {
                if (w->dir == PTRIO_READABLE)
                    PTRIO_AWAIT(w, ptrio_wait_readable(w, (int)s->fd));
                else
                    PTRIO_AWAIT(w, ptrio_wait_writable(w, (int)s->fd));
                action(s->pc, s->fd, w->dir == PTRIO_READABLE
                                         ? CURL_CSELECT_IN : CURL_CSELECT_OUT);
            }
        }
    }
    PTRIO_END(w);
}

static int alive(const ptrio_task *t)
{
    /* A zeroed or finished task is not running: ptrio may start it. */
    return t->frame && !ptrio_frame_idle(t->frame);
}

static void want(pcurl *pc, pcurl_watch *w, int on)
{
    if (!on) {
        w->want = 0;
        ptrio_cancel(&w->scope);
        return;
    }
    if (w->want && alive(&w->task))
        return;
    w->want = 1;
    if (!alive(&w->task) &&
        ptrio_start_soon_named(&pc->watchers, &w->task, watch_step, w,
                               "curl socket") < 0)
        pc->failed = 1;
}

static pcurl_sock *new_sock(pcurl *pc, curl_socket_t fd)
{
    int i;
    for (i = 0; i < PCURL_SOCKETS; i++) {
        pcurl_sock *s = &pc->socks[i];
        if (!s->in_use && !alive(&s->w[0].task) && !alive(&s->w[1].task)) {
            memset(s, 0, sizeof *s);
            s->pc = pc;
            s->fd = fd;
            s->in_use = 1;
            s->w[0].sock = s->w[1].sock = s;
            s->w[0].dir = PTRIO_READABLE;
            s->w[1].dir = PTRIO_WRITABLE;
            return s;
        }
    }
    return NULL;
}

/* CURLMOPT_SOCKETFUNCTION: which directions of `fd` curl wants. */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp,
                     void *socketp)
{
    pcurl *pc = userp;
    pcurl_sock *s = socketp;

    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            want(pc, &s->w[0], 0);
            want(pc, &s->w[1], 0);
            s->in_use = 0;
        }
        return 0;
    }
    if (!s) {
        if (!(s = new_sock(pc, fd))) {
            fprintf(stderr, "ptrio_curl: more than %d sockets\n",
                    PCURL_SOCKETS);
            pc->failed = 1;
            return -1;
        }
        curl_multi_assign(pc->multi, fd, s);
    }
    want(pc, &s->w[0], what == CURL_POLL_IN || what == CURL_POLL_INOUT);
    want(pc, &s->w[1], what == CURL_POLL_OUT || what == CURL_POLL_INOUT);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: curl's next timeout, as a deadline. */
static int on_timer(CURLM *multi, long ms, void *userp)
{
    pcurl *pc = userp;
    (void)multi;
    pc->deadline = ms < 0 ? PTRIO_TIME_INF : ptrio_now() + PTRIO_MS(ms);
    if (pc->in_timer)
        ptrio_scope_set_deadline(&pc->timer, pc->deadline);
    return 0;
}

/* ---- the driver and transfers ------------------------------------------ */

int pcurl_init(pcurl *pc)
{
    memset(pc, 0, sizeof *pc);
    pc->deadline = PTRIO_TIME_INF;
    if (!(pc->multi = curl_multi_init()))
        return -PTRIO_ENOMEM;
    curl_multi_setopt(pc->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(pc->multi, CURLMOPT_SOCKETDATA, pc);
    curl_multi_setopt(pc->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(pc->multi, CURLMOPT_TIMERDATA, pc);
    return 0;
}

void pcurl_cleanup(pcurl *pc)
{
    if (pc->multi)
        curl_multi_cleanup(pc->multi);
    pc->multi = NULL;
}

int pcurl_drive(ptrio_frame *fr)
{
    pcurl *pc = PTRIO_SELF(fr, pcurl);

    PTRIO_BEGIN(pc);
    PTRIO_NURSERY(pc, &pc->watchers) {
        for (;;) {
            pc->in_timer = 1;
            PTRIO_MOVE_ON_AT(pc, &pc->timer, pc->deadline) {
                PTRIO_AWAIT(pc, ptrio_sleep_forever(pc));
            }
            pc->in_timer = 0;
            if (pc->failed)
                PTRIO_RAISE(pc, -PTRIO_EIO, "a curl callback failed");
            if (ptrio_cancelled_caught(&pc->timer)) {
                pc->deadline = PTRIO_TIME_INF;  /* on_timer may set another */
                action(pc, CURL_SOCKET_TIMEOUT, 0);
            }
        }
    }
    PTRIO_END(pc);
}

/* The transfer's task was cancelled: take the handle out of curl now. */
static int xfer_abort(ptrio_task *t, void *data)
{
    pcurl_xfer *x = data;
    (void)t;
    if (x->state != X_RUNNING)
        return 1;
    curl_multi_remove_handle(x->pc->multi, x->easy);
    x->state = X_IDLE;
    return 0;
}

int pcurl_perform(void *self, pcurl *pc, pcurl_xfer *x, CURL *easy)
{
    int rc;

    if (!pc || !x || !easy || x->state == X_RUNNING)
        return -PTRIO_EINVAL;
    x->pc = pc;
    x->easy = easy;
    x->result = CURLE_OK;
    x->task = ptrio_current_task();
    curl_easy_setopt(easy, CURLOPT_PRIVATE, (char *)x);
    rc = ptrio_park_hook(self, xfer_abort, x);
    if (rc != PTRIO_PENDING)
        return rc;      /* cancelled already: curl never saw it */
    x->state = X_RUNNING;
    if (curl_multi_add_handle(pc->multi, easy) != CURLM_OK) {
        x->state = X_IDLE;
        ptrio_wake(x->task, -PTRIO_EIO);
    }
    return PTRIO_PENDING;
}
