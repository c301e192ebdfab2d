/* src/backend/poll.c: poll(2), the POSIX default. The clock is
 * CLOCK_MONOTONIC; a self-pipe makes ptrio_loop_wake async-signal-safe.
 * The loop's fd waiters are rebuilt into a pollfd array on each wait, so
 * this backend holds at most PTRIO_POLL_MAX - 1 waiters (watch fails with
 * -EMFILE beyond): use epoll for large servers. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include "../io/fd.h"

#define PTRIO_POLL_MAX 256
#define WAKE_R(l) ((int)(l)->be[0].word)
#define WAKE_W(l) ((int)(l)->be[1].word)

static int set_flags(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
        fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        return -errno;
    return 0;
}

static int popen_(ptrio_loop *l)
{
    int fds[2], rc;
    if (pipe(fds) < 0)
        return -errno;
    if ((rc = set_flags(fds[0])) < 0 || (rc = set_flags(fds[1])) < 0) {
        close(fds[0]);
        close(fds[1]);
        return rc;
    }
    l->be[0].word = fds[0];
    l->be[1].word = fds[1];
    return 0;
}

static void pclose_(ptrio_loop *l)
{
    close(WAKE_R(l));
    close(WAKE_W(l));
}

static ptrio_time pnow(ptrio_loop *l)
{
    struct timespec ts;
    (void)l;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (ptrio_time)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Milliseconds until `deadline`, rounded up so we never wake early. */
static int timeout_ms(ptrio_loop *l, ptrio_time deadline)
{
    ptrio_time now, ms;
    if (deadline == PTRIO_TIME_INF)
        return -1;
    now = pnow(l);
    if (deadline <= now)
        return 0;
    ms = (deadline - now + 999999) / 1000000;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

static int pwait(ptrio_loop *l, ptrio_time deadline)
{
    struct pollfd pfd[PTRIO_POLL_MAX];
    ptrio_task *who[PTRIO_POLL_MAX], *t;
    char drain[64];
    int n = 1, i, rc;

    pfd[0].fd = WAKE_R(l);
    pfd[0].events = POLLIN;
    for (t = l->watchers; t && n < PTRIO_POLL_MAX; t = t->w.park.next) {
        unsigned ev = ptrio__fd_events(t);
        pfd[n].fd = ptrio__fd_of(t);
        pfd[n].events = (short)(((ev & PTRIO_READABLE) ? POLLIN : 0) |
                                ((ev & PTRIO_WRITABLE) ? POLLOUT : 0));
        who[n++] = t;
    }
    rc = poll(pfd, (nfds_t)n, timeout_ms(l, deadline));
    if (rc < 0)
        return errno == EINTR ? 0 : -errno;
    if (pfd[0].revents)
        while (read(WAKE_R(l), drain, sizeof drain) > 0)
            ;
    for (i = 1; i < n; i++) {
        short re = pfd[i].revents;
        unsigned ev = 0;
        if (!re)
            continue;
        if (re & POLLNVAL) {
            ptrio_backend_ready(l, who[i], -PTRIO_EBADF);
            continue;
        }
        if (re & (POLLIN | POLLHUP | POLLERR))
            ev |= PTRIO_READABLE;
        if (re & (POLLOUT | POLLERR))
            ev |= PTRIO_WRITABLE;
        ptrio_backend_ready(l, who[i], (int)ev);
    }
    return 0;
}

static int pwatch(ptrio_loop *l, ptrio_task *t, int fd, unsigned events)
{
    (void)t, (void)fd, (void)events;
    return l->nwatch + 1 >= PTRIO_POLL_MAX ? -PTRIO_EMFILE : 0;
}

static void pwake(ptrio_loop *l)
{
    ssize_t r = write(WAKE_W(l), "", 1);
    (void)r;
}

const ptrio_backend ptrio_backend_poll = {
    "poll", popen_, pclose_, pnow, pwait, pwatch, NULL, pwake
};
