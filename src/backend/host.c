/* src/backend/host.c: the clock and the wake fd of the POSIX backends. */
#define _GNU_SOURCE     /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_SYS_EVENTFD_H
#include <sys/eventfd.h>
#endif

#include "host.h"

/* be[] words are read by other threads and signal handlers (wake): read
 * and written atomically where the compiler can. */
#if defined(__GNUC__) || defined(__clang__)
#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#else
#define LOAD(p) (*(volatile intptr_t *)(p))
#define STORE(p, v) (*(volatile intptr_t *)(p) = (v))
#endif

ptrio_time ptrio__host_now(ptrio_loop *l)
{
    struct timespec ts;
    (void)l;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (ptrio_time)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int ptrio__host_timeout_ms(ptrio_loop *l, ptrio_time deadline)
{
    ptrio_time now, ms;
    if (deadline == PTRIO_TIME_INF)
        return -1;
    if (deadline == PTRIO_TIME_NINF)
        return 0;
    now = ptrio__host_now(l);
    if (deadline <= now)
        return 0;
    ms = (deadline - now + 999999) / 1000000;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

int ptrio__host_set_flags(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 ||
        (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) ||
        fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        return -errno;
    return 0;
}

#if !(defined(HAVE_SYS_EVENTFD_H) && defined(HAVE_EVENTFD))
static int open_pipe(int fds[2])
{
#ifdef HAVE_PIPE2
    return pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0 ? -errno : 0;
#else
    int rc;
    if (pipe(fds) < 0)
        return -errno;
    if ((rc = ptrio__host_set_flags(fds[0])) < 0 ||
        (rc = ptrio__host_set_flags(fds[1])) < 0) {
        close(fds[0]);
        close(fds[1]);
        return rc;
    }
    return 0;
#endif
}
#endif

int ptrio__host_wake_open(ptrio_loop *l)
{
    int fds[2], rc;
#if defined(HAVE_SYS_EVENTFD_H) && defined(HAVE_EVENTFD)
    fds[0] = fds[1] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fds[0] < 0)
        return -errno;
#else
    if ((rc = open_pipe(fds)) < 0)
        return rc;
#endif
    (void)rc;
    STORE(&l->be[HOST_WAKE_W].word, (intptr_t)fds[1] + 1);
    STORE(&l->be[HOST_WAKE_R].word, (intptr_t)fds[0] + 1);
    return 0;
}

void ptrio__host_wake_close(ptrio_loop *l)
{
    intptr_t r = LOAD(&l->be[HOST_WAKE_R].word);
    intptr_t w = LOAD(&l->be[HOST_WAKE_W].word);

    STORE(&l->be[HOST_WAKE_W].word, 0);
    STORE(&l->be[HOST_WAKE_R].word, 0);
    if (w > 0 && w != r)
        close((int)(w - 1));
    if (r > 0)
        close((int)(r - 1));
    ptrio__thread_quiesce();    /* no worker outlives the last run */
}

int ptrio__host_wake_fd(ptrio_loop *l)
{
    return (int)(LOAD(&l->be[HOST_WAKE_R].word) - 1);
}

void ptrio__host_wake_drain(ptrio_loop *l)
{
    char buf[64];
    int fd = ptrio__host_wake_fd(l);
    if (fd < 0)
        return;
    while (read(fd, buf, sizeof buf) > 0)
        ;   /* an eventfd gives 8 bytes once; a pipe, what was written */
}

void ptrio__host_wake(ptrio_loop *l)
{
    intptr_t w = LOAD(&l->be[HOST_WAKE_W].word);
    int saved = errno;
    ssize_t n;

    if (w <= 0)
        return;
#if defined(HAVE_SYS_EVENTFD_H) && defined(HAVE_EVENTFD)
    {
        uint64_t one = 1;
        n = write((int)(w - 1), &one, sizeof one);
    }
#else
    n = write((int)(w - 1), "", 1);     /* a full pipe is awake already */
#endif
    (void)n;
    errno = saved;
}
