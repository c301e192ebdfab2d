/* src/io/fd.c: tasks waiting on file descriptors. Portable: the waiters
 * are parked with an abort hook and listed in the loop, which the backend
 * reads when it waits; ready fds come back through ptrio_backend_ready. */
#include "fd.h"

static void unlink_watcher(ptrio_loop *l, ptrio_task *t)
{
    if (t->w.park.prev)
        t->w.park.prev->w.park.next = t->w.park.next;
    else
        l->watchers = t->w.park.next;
    if (t->w.park.next)
        t->w.park.next->w.park.prev = t->w.park.prev;
    l->nwatch--;
    BETWEEN_DEL(l);
}

static void forget(ptrio_loop *l, ptrio_task *t)
{
    unlink_watcher(l, t);
    if (l->backend->unwatch)
        l->backend->unwatch(l, t);
}

/* Cancelled while waiting: the wait is undone at once. */
static int fd_abort(ptrio_task *t, void *data)
{
    (void)data;
    forget(ptrio__loop, t);
    return 0;
}

static int wait_fd(void *self, int fd, unsigned events)
{
    ptrio_loop *l = ptrio__loop;
    ptrio_task *t, *w;
    int rc = ptrio__await_check(self, &t);

    if (rc < 0)
        return rc;
    if (fd < 0 || (uintptr_t)fd > (UINTPTR_MAX >> FD_EVBITS))
        return -PTRIO_EBADF;
    if (!l->backend->watch)
        return -PTRIO_ENOTSUP;
    if (ptrio__cancelled(t))
        return -PTRIO_ECANCELED;
    for (w = l->watchers; w; w = w->w.park.next)
        if (ptrio__fd_of(w) == fd && (ptrio__fd_events(w) & events))
            return -PTRIO_EBUSY;
    if ((rc = l->backend->watch(l, t, fd, events)) < 0)
        return rc;
    /* Cannot fail now: every check it makes was made above. */
    rc = ptrio_park_hook(self, fd_abort,
                         (void *)(((uintptr_t)fd << FD_EVBITS) | events));
    (void)rc;
    t->w.park.prev = NULL;
    t->w.park.next = l->watchers;
    if (l->watchers)
        l->watchers->w.park.prev = t;
    l->watchers = t;
    l->nwatch++;
    BETWEEN_ADD(l);
    return PTRIO_PENDING;
}

int ptrio_wait_readable(void *self, int fd)
{
    return wait_fd(self, fd, PTRIO_READABLE);
}

int ptrio_wait_writable(void *self, int fd)
{
    return wait_fd(self, fd, PTRIO_WRITABLE);
}

void ptrio_backend_ready(ptrio_loop *loop, ptrio_task *t, int status)
{
    if (TSTATE(t) != T_PARKED || t->wait != W_HOOK ||
        t->w.park.on.abort != fd_abort)
        return;
    forget(loop, t);
    ptrio__wake(loop, t, status);
}

int ptrio_notify_closing(int fd)
{
    ptrio_loop *l = ptrio__loop;
    ptrio_task *t, *next;
    int woken = 0;

    if (!l)
        return 0;
    for (t = l->watchers; t; t = next) {
        next = t->w.park.next;
        if (ptrio__fd_of(t) != fd)
            continue;
        forget(l, t);
        ptrio__wake(l, t, -PTRIO_ECLOSED);
        woken++;
    }
    return woken;
}
