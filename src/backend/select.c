/* src/backend/select.c: select(2), for systems where poll is broken or
 * missing. The fd_sets are rebuilt from the loop's registry on each wait;
 * an fd at or above FD_SETSIZE cannot go in one (FD_SET would write past
 * it), so waiting on it fails with -PTRIO_EFDLIMIT. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <sys/select.h>

#include "host.h"

static int sopen(ptrio_loop *l)
{
    int rc = ptrio__host_wake_open(l);
    if (rc == 0 && ptrio__host_wake_fd(l) >= FD_SETSIZE) {
        ptrio__host_wake_close(l);
        rc = -PTRIO_EFDLIMIT;
    }
    return rc;
}

/* select() said EBADF: one of the fds was closed under its waiter. Find
 * them and wake their waiters with -EBADF, so the loop never spins. */
static void fail_closed_fds(ptrio_loop *l)
{
    ptrio_fd_iter it;
    unsigned ev;
    int fd, found;

    do {
        found = -1;
        it.bucket = 0;
        it.next = NULL;
        while ((fd = ptrio_backend_next_fd(l, &it, &ev)) >= 0)
            if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
                found = fd;
                break;
            }
        if (found >= 0)
            ptrio_backend_ready(l, found, -PTRIO_EBADF);
    } while (found >= 0);
}

static int swait(ptrio_loop *l, ptrio_time deadline)
{
    fd_set rd, wr;
    ptrio_fd_iter it = {0, NULL};
    struct timeval tv, *tvp = NULL;
    int wake = ptrio__host_wake_fd(l), maxfd = wake, fd, rc, ms;
    unsigned ev;

    FD_ZERO(&rd);
    FD_ZERO(&wr);
    FD_SET(wake, &rd);
    while ((fd = ptrio_backend_next_fd(l, &it, &ev)) >= 0) {
        if (ev & PTRIO_READABLE)
            FD_SET(fd, &rd);
        if (ev & PTRIO_WRITABLE)
            FD_SET(fd, &wr);
        if (fd > maxfd)
            maxfd = fd;
    }
    if ((ms = ptrio__host_timeout_ms(l, deadline)) >= 0) {
        tv.tv_sec = ms / 1000;
        tv.tv_usec = (ms % 1000) * 1000;
        tvp = &tv;
    }
    rc = select(maxfd + 1, &rd, &wr, NULL, tvp);
    if (rc < 0) {
        if (errno == EINTR)
            return 0;
        if (errno != EBADF)
            return -errno;
        if (fcntl(wake, F_GETFD) < 0)
            return -PTRIO_EBADF;    /* the wake fd was closed: as in poll.c */
        fail_closed_fds(l);
        return 0;
    }
    if (rc == 0)
        return 0;
    if (FD_ISSET(wake, &rd)) {
        ptrio__host_wake_drain(l);
        rc--;
    }
    /* Report after the walk: waking changes the registry. */
    for (fd = 0; fd <= maxfd && rc > 0; fd++) {
        unsigned ready = (FD_ISSET(fd, &rd) ? PTRIO_READABLE : 0) |
                         (FD_ISSET(fd, &wr) ? PTRIO_WRITABLE : 0);
        if (!ready || fd == wake)
            continue;
        rc -= (ready == (PTRIO_READABLE | PTRIO_WRITABLE)) ? 2 : 1;
        ptrio_backend_ready(l, fd, (int)ready);
    }
    return 0;
}

static int swatch(ptrio_loop *l, int fd, unsigned old, unsigned events)
{
    (void)l, (void)old, (void)events;
    return fd >= FD_SETSIZE ? -PTRIO_EFDLIMIT : 0;
}

const ptrio_backend ptrio_backend_select = {
    "select", sopen, ptrio__host_wake_close, ptrio__host_now, swait, swatch,
    NULL, ptrio__host_wake
};
