/* src/io/fd.c: tasks waiting on file descriptors, and the loop's registry
 * of them. Portable: no system call here; the backend hears of every
 * change of interest per fd (watch) and reports ready fds back
 * (ptrio_backend_ready).
 *
 * The registry is a hash table by fd (loop->fdtab, PTRIO_CONF_FD_BUCKETS
 * buckets) of NULL-terminated doubly-linked chains threaded through the
 * waiting tasks' w.park links: no storage of its own, O(1) insert and
 * removal, lookups in O(1 + chain). The two tasks that may wait on one fd
 * (a reader and a writer) are kept next to each other, so the interest in
 * an fd is read from at most two neighbours.
 */
#include "fd.h"

#ifdef PTRIO_DEBUG
#define FD_ASSERT(c) ((c) ? (void)0 : MISUSE("fd registry broken: " #c))
#else
#define FD_ASSERT(c) ((void)0)
#endif

static ptrio_task **bucket(ptrio_loop *l, int fd)
{
    return &l->fdtab[(unsigned)fd & (PTRIO_CONF_FD_BUCKETS - 1)];
}

/* The first task of fd's pair in its chain, or NULL. */
static ptrio_task *first_of(ptrio_loop *l, int fd)
{
    ptrio_task *t;
    for (t = *bucket(l, fd); t; t = t->w.park.next)
        if (ptrio__fd_of(t) == fd)
            return t;
    return NULL;
}

/* The pair's second task (the other direction), or NULL. */
static ptrio_task *second_of(const ptrio_task *first)
{
    ptrio_task *n = first->w.park.next;
    return n && ptrio__fd_of(n) == ptrio__fd_of(first) ? n : NULL;
}

static unsigned interest_of(const ptrio_task *first)
{
    const ptrio_task *second;
    if (!first)
        return 0;
    second = second_of(first);
    return ptrio__fd_events(first) | (second ? ptrio__fd_events(second) : 0);
}

/* Tells the backend that the interest in fd goes from `old` to `now`,
 * keeping the count of fds with interest in step. An added interest the
 * backend refuses changes nothing; a removal counts whatever it says. */
static int set_interest(ptrio_loop *l, int fd, unsigned old, unsigned now)
{
    int rc = l->backend->watch(l, fd, old, now);

    if (rc < 0 && (now & ~old))
        return rc;
    if (!old && now)
        l->nfd++;
    else if (old && !now)
        l->nfd--;
    return rc;
}

/* Links `t` after `prev` (its pair), or at the head of its chain. */
static void link_task(ptrio_loop *l, ptrio_task *t, ptrio_task *prev)
{
    ptrio_task **head = bucket(l, ptrio__fd_of(t));

    t->w.park.prev = prev;
    t->w.park.next = prev ? prev->w.park.next : *head;
    if (t->w.park.next)
        t->w.park.next->w.park.prev = t;
    if (prev)
        prev->w.park.next = t;
    else
        *head = t;
    l->nwatch++;
    BETWEEN_ADD(l);     /* the scheduler polls fds between batches */
}

static void unlink_task(ptrio_loop *l, ptrio_task *t)
{
    if (t->w.park.prev)
        t->w.park.prev->w.park.next = t->w.park.next;
    else
        *bucket(l, ptrio__fd_of(t)) = t->w.park.next;
    if (t->w.park.next)
        t->w.park.next->w.park.prev = t->w.park.prev;
    FD_ASSERT(l->nwatch > 0);
    l->nwatch--;
    BETWEEN_DEL(l);
}

/* Takes `t` out of the registry, and tells the backend what interest in
 * its fd is left. */
static void forget(ptrio_loop *l, ptrio_task *t)
{
    int fd = ptrio__fd_of(t), rc;
    unsigned old = interest_of(first_of(l, fd)), left;

    unlink_task(l, t);
    left = old & ~ptrio__fd_events(t);
    /* The backend cannot keep watching for the other direction: its
     * waiter wakes with the error rather than wait forever. */
    rc = set_interest(l, fd, old, left);
    if (rc < 0 && left)
        ptrio_backend_ready(l, fd, rc);
}

/* Cancelled while waiting: the wait is undone at once. */
static int fd_abort(ptrio_task *t, void *data)
{
    (void)data;
    forget(ptrio__loop, t);
    return 0;
}

static int wait_fd(void *self, int fd, unsigned dir)
{
    ptrio_loop *l = ptrio__loop;
    ptrio_task *t, *pair;
    unsigned old;
    int rc = ptrio__await_check(self, &t);

    if (rc < 0)
        return rc;
    if (fd < 0 || (uintptr_t)fd > (UINTPTR_MAX >> FD_EVBITS))
        return -PTRIO_EBADF;
    if (!l->backend->watch)
        return -PTRIO_ENOTSUP;
    if (ptrio__cancelled(t))
        return -PTRIO_ECANCELED;
    pair = first_of(l, fd);
    old = interest_of(pair);
    if (old & dir)
        return -PTRIO_EBUSY;    /* Trio's BusyResourceError */
    if ((rc = set_interest(l, fd, old, old | dir)) < 0)
        return rc;
    /* Cannot fail now: every check it makes was made above. */
    rc = ptrio_park_hook(self, fd_abort,
                         (void *)(((uintptr_t)fd << FD_EVBITS) | dir));
    FD_ASSERT(rc == PTRIO_PENDING);
    link_task(l, t, pair);
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

/* Wakes fd's waiters for the directions in `status` (all of them when it
 * is an error). If the backend cannot keep watching for those left, they
 * wake with its error rather than wait forever. */
void ptrio_backend_ready(ptrio_loop *loop, int fd, int status)
{
    ptrio_task *t = first_of(loop, fd), *second;
    unsigned old, left;
    int rc;

    if (!t)
        return;     /* late or duplicate readiness: nobody waits */
    old = interest_of(t);
    left = old;
    second = second_of(t);
    for (; t; t = second, second = NULL) {
        unsigned dir = ptrio__fd_events(t);
        if (status >= 0 && !((unsigned)status & dir))
            continue;
        unlink_task(loop, t);
        left &= ~dir;
        ptrio__wake(loop, t, status < 0 ? status : (int)dir);
    }
    if (left == old)
        return;
    rc = set_interest(loop, fd, old, left);
    if (rc < 0 && left)
        ptrio_backend_ready(loop, fd, rc);
}

int ptrio_notify_closing(int fd)
{
    ptrio_loop *l = ptrio__loop;
    ptrio_task *t, *second;
    unsigned old;
    int woken = 0;

    if (!l || fd < 0 || !l->backend->watch)
        return 0;
    t = first_of(l, fd);
    old = interest_of(t);
    second = t ? second_of(t) : NULL;
    for (; t; t = second, second = NULL) {
        unlink_task(l, t);
        ptrio__wake(l, t, -PTRIO_ECLOSED);
        woken++;
    }
    if (old)
        l->nfd--;
    if (l->backend->unwatch)
        l->backend->unwatch(l, fd);
    else if (old)
        (void)l->backend->watch(l, fd, old, 0);
    return woken;
}

int ptrio_backend_next_fd(ptrio_loop *loop, ptrio_fd_iter *it,
                          unsigned *events)
{
    const ptrio_task *t = it->next, *n;

    while (!t) {
        if (it->bucket >= PTRIO_CONF_FD_BUCKETS)
            return -1;
        t = loop->fdtab[it->bucket++];
    }
    *events = interest_of(t);
    n = second_of(t);
    it->next = (n ? n : t)->w.park.next;
    return ptrio__fd_of(t);
}

unsigned ptrio_backend_interest(ptrio_loop *loop, int fd)
{
    return fd < 0 ? 0 : interest_of(first_of(loop, fd));
}

unsigned ptrio_fd_waiters(void)
{
    return ptrio__loop ? ptrio__loop->nwatch : 0;
}
