/* src/backend/epoll.c: epoll(7), Linux. O(1) per wait: the interest set
 * lives in the kernel and is never rebuilt.
 *
 * Each fd is registered EPOLLONESHOT with the directions its tasks wait
 * for, so an event disarms it and is delivered once. A change of interest
 * is one epoll_ctl: MOD, or ADD the first time (MOD says ENOENT). After an
 * event the disarmed registration stays in the set, so the next wait on
 * that fd re-arms it with one MOD (a connection's steady state); when its
 * last waiter is cancelled instead, it is deleted. The kernel drops a
 * closed fd by itself; ptrio_notify_closing deletes it first. */
#include "host.h"

#ifdef HAVE_SYS_EPOLL_H
#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

#define EPFD(l) ((int)(l)->be[2].word - 1)
#define DISPATCHING(l) ((l)->be[3].word)    /* fd + 1 being reported */

#define MAX_EVENTS 256      /* per epoll_wait; the rest come next time */

static int eopen(ptrio_loop *l)
{
    struct epoll_event ev;
    int epfd = epoll_create1(EPOLL_CLOEXEC), rc;

    if (epfd < 0)
        return -errno;
    if ((rc = ptrio__host_wake_open(l)) < 0) {
        close(epfd);
        return rc;
    }
    ev.events = EPOLLIN;    /* level-triggered: drained on each wake */
    ev.data.fd = ptrio__host_wake_fd(l);
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, ev.data.fd, &ev) < 0) {
        rc = -errno;
        ptrio__host_wake_close(l);
        close(epfd);
        return rc;
    }
    l->be[2].word = epfd + 1;
    DISPATCHING(l) = 0;
    return 0;
}

static void eclose(ptrio_loop *l)
{
    ptrio__host_wake_close(l);
    if (l->be[2].word > 0)
        close(EPFD(l));
    l->be[2].word = 0;
}

static int ewait(ptrio_loop *l, ptrio_time deadline)
{
    struct epoll_event evs[MAX_EVENTS];
    int wake = ptrio__host_wake_fd(l), n, i;

    n = epoll_wait(EPFD(l), evs, MAX_EVENTS,
                   ptrio__host_timeout_ms(l, deadline));
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (i = 0; i < n; i++) {
        uint32_t e = evs[i].events;
        int fd = evs[i].data.fd, status;
        if (fd == wake) {
            ptrio__host_wake_drain(l);
            continue;
        }
        status = ptrio__host_status(e & (EPOLLERR | EPOLLHUP), e & EPOLLIN,
                                    e & EPOLLOUT);
        /* While reporting fd, its registration is known to be disarmed:
         * watch() re-arms it for the waiters left, or leaves it be. */
        DISPATCHING(l) = fd + 1;
        ptrio_backend_ready(l, fd, status);
        DISPATCHING(l) = 0;
    }
    return 0;
}

/* The last waiter is gone (or the fd closes): out of the set. */
static void eunwatch(ptrio_loop *l, int fd)
{
    struct epoll_event ev;
    (void)epoll_ctl(EPFD(l), EPOLL_CTL_DEL, fd, &ev);
}

static int ewatch(ptrio_loop *l, int fd, unsigned old, unsigned events)
{
    struct epoll_event ev;

    (void)old;
    if (!events) {
        if (DISPATCHING(l) != fd + 1)
            eunwatch(l, fd);
        return 0;
    }
    ev.events = EPOLLONESHOT | ((events & PTRIO_READABLE) ? EPOLLIN : 0) |
                ((events & PTRIO_WRITABLE) ? EPOLLOUT : 0);
    ev.data.u64 = 0;
    ev.data.fd = fd;
    if (epoll_ctl(EPFD(l), EPOLL_CTL_MOD, fd, &ev) == 0)
        return 0;
    if (errno == ENOENT && epoll_ctl(EPFD(l), EPOLL_CTL_ADD, fd, &ev) == 0)
        return 0;
    return -errno;
}

const ptrio_backend ptrio_backend_epoll = {
    "epoll", eopen, eclose, ptrio__host_now, ewait, ewatch, eunwatch,
    ptrio__host_wake
};

#else /* !HAVE_SYS_EPOLL_H */

static int eopen(ptrio_loop *l)
{
    (void)l;
    return -PTRIO_ENOSYS;
}

static int ewait(ptrio_loop *l, ptrio_time deadline)
{
    (void)l, (void)deadline;
    return -PTRIO_ENOSYS;
}

const ptrio_backend ptrio_backend_epoll = {
    "epoll", eopen, NULL, ptrio__host_now, ewait, NULL, NULL, NULL
};

#endif
