/* src/backend/poll.c: poll(2). The set is rebuilt from the loop's registry
 * on each wait, one pollfd per fd, in an array on the stack sized to the
 * fds waited on (PTRIO_CONF_POLL_MAX at most: the bound on that stack use).
 * O(fds) per wait: epoll is the backend for large servers. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <poll.h>

#include "host.h"

#ifndef PTRIO_CONF_POLL_MAX
#define PTRIO_CONF_POLL_MAX 16384
#endif

static int status_of(short re)
{
    if (re & POLLNVAL)
        return -PTRIO_EBADF;
    return ptrio__host_status(re & (POLLERR | POLLHUP), re & POLLIN,
                              re & POLLOUT);
}

static int pwait(ptrio_loop *l, ptrio_time deadline)
{
    struct pollfd pfd[l->nfd + 1];      /* C99 VLA: bounded by watch() */
    ptrio_fd_iter it = {0, NULL};
    unsigned ev;
    nfds_t n = 1, i;
    int fd, rc;

    pfd[0].fd = ptrio__host_wake_fd(l);
    pfd[0].events = POLLIN;
    while (n <= l->nfd && (fd = ptrio_backend_next_fd(l, &it, &ev)) >= 0) {
        pfd[n].fd = fd;
        pfd[n].events = (short)(((ev & PTRIO_READABLE) ? POLLIN : 0) |
                                ((ev & PTRIO_WRITABLE) ? POLLOUT : 0));
        n++;
    }
    rc = poll(pfd, n, ptrio__host_timeout_ms(l, deadline));
    if (rc < 0)
        return errno == EINTR ? 0 : -errno;
    if (pfd[0].revents & POLLNVAL)
        return -PTRIO_EBADF;    /* the wake fd was closed under the loop:
                                   wakes are lost, and poll would spin */
    if (pfd[0].revents)
        ptrio__host_wake_drain(l);
    for (i = 1; i < n && rc > 0; i++) {
        if (!pfd[i].revents)
            continue;
        rc--;
        /* Only the directions asked for: a writer is not woken by POLLIN. */
        ptrio_backend_ready(l, pfd[i].fd, status_of(pfd[i].revents));
    }
    return 0;
}

static int pwatch(ptrio_loop *l, int fd, unsigned old, unsigned events)
{
    (void)fd;
    if (!old && events && l->nfd >= PTRIO_CONF_POLL_MAX)
        return -PTRIO_EFDLIMIT;
    return 0;
}

const ptrio_backend ptrio_backend_poll = {
    "poll", ptrio__host_wake_open, ptrio__host_wake_close, ptrio__host_now,
    pwait, pwatch, NULL, ptrio__host_wake
};
