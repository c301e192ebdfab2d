/* src/io/fd.c: tasks waiting on file descriptors. Portable: the waiters
 * are a list in the loop that the backend reads when it waits; ready fds
 * come back through ptrio_backend_ready. */
#include "../core/internal.h"

static void unlink_watcher(ptrio_loop *l, ptrio_task *t)
{
    if (t->w.fd.prev)
        t->w.fd.prev->w.fd.next = t->w.fd.next;
    else
        l->watchers = t->w.fd.next;
    if (t->w.fd.next)
        t->w.fd.next->w.fd.prev = t->w.fd.prev;
    l->nwatch--;
}

void ptrio__fd_abort(ptrio_loop *l, ptrio_task *t)
{
    unlink_watcher(l, t);
    if (l->backend->unwatch)
        l->backend->unwatch(l, t);
}

static int wait_fd(void *self, int fd, unsigned events)
{
    ptrio_task *t = ptrio__self(self), *w;
    ptrio_loop *l = ptrio__loop;
    int rc;

    if (!t)
        return -PTRIO_ENOTASK;
    if (fd < 0)
        return -PTRIO_EBADF;
    if (!l->backend->watch)
        return -PTRIO_ENOTSUP;
    if (ptrio__cancelled(t))
        return -PTRIO_ECANCELED;
    for (w = l->watchers; w; w = w->w.fd.next)
        if (w->w.fd.fd == fd && (w->w.fd.events & events))
            return -PTRIO_EBUSY;
    rc = l->backend->watch(l, t, fd, events);
    if (rc < 0)
        return rc;
    t->w.fd.fd = fd;
    t->w.fd.events = (uint16_t)events;
    t->w.fd.prev = NULL;
    t->w.fd.next = l->watchers;
    if (l->watchers)
        l->watchers->w.fd.prev = t;
    l->watchers = t;
    l->nwatch++;
    ptrio__park(t, W_FD);
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
    if (TSTATE(t) != T_PARKED || t->wait != W_FD)
        return;
    ptrio__fd_abort(loop, t);
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
        next = t->w.fd.next;
        if (t->w.fd.fd != fd)
            continue;
        ptrio__fd_abort(l, t);
        ptrio__wake(l, t, -PTRIO_ECLOSED);
        woken++;
    }
    return woken;
}
