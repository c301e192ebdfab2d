/* src/backend/host.h: what the POSIX backends (poll, select, epoll) share:
 * the monotonic clock and the wake fd. Never installed.
 *
 * The wake fd is an eventfd on Linux, a non-blocking self-pipe elsewhere.
 * Its descriptors live in loop->be[] as fd + 1, so that a zeroed loop
 * (never opened) and a closed one both read 0: ptrio_loop_wake on a loop
 * that is not open does nothing, instead of writing to fd 0 or to whatever
 * took the closed descriptor's number. */
#ifndef PTRIO_BACKEND_HOST_H
#define PTRIO_BACKEND_HOST_H

#include "../io/fd.h"

/* be[] slots every POSIX backend uses for its wake fd. */
#define HOST_WAKE_R 0
#define HOST_WAKE_W 1

/* CLOCK_MONOTONIC in nanoseconds. */
ptrio_time ptrio__host_now(ptrio_loop *l);

/* Milliseconds from now until `deadline` for poll/epoll_wait: -1 for none,
 * 0 for a deadline passed, rounded up so a wait never ends early. */
int ptrio__host_timeout_ms(ptrio_loop *l, ptrio_time deadline);

/* Opens the wake fd into be[HOST_WAKE_R] / be[HOST_WAKE_W]; 0 or -errno. */
int ptrio__host_wake_open(ptrio_loop *l);

/* Closes it; be[] reads "none" before the descriptors are closed. */
void ptrio__host_wake_close(ptrio_loop *l);

/* The read end's descriptor, or -1. */
int ptrio__host_wake_fd(ptrio_loop *l);

/* Empties the wake fd (after it polled readable). */
void ptrio__host_wake_drain(ptrio_loop *l);

/* The backends' wake(): one write, async-signal-safe, errno preserved. */
void ptrio__host_wake(ptrio_loop *l);

/* src/io/thread.c: a loop closed; idle workers end if no call is in
 * flight anywhere (the host backends call it from close). */
void ptrio__thread_quiesce(void);

/* What a backend reports of an fd (ptrio_backend_ready): an error or
 * hang-up wakes both directions, else those ready. Each argument is a
 * test of the backend's own flags. */
static inline int ptrio__host_status(unsigned err_or_hup, unsigned in,
                                     unsigned out)
{
    unsigned ev = 0u;

    if ((err_or_hup != 0u) || (in != 0u))
        ev |= PTRIO_READABLE;
    if ((err_or_hup != 0u) || (out != 0u))
        ev |= PTRIO_WRITABLE;
    return (int)ev;
}

/* Sets O_NONBLOCK and FD_CLOEXEC; 0 or -errno. */
int ptrio__host_set_flags(int fd);

/* Closes the fd kept as fd + 1 in *fdp1 (0: none), waking its waiters
 * first (src/io/stream.c: the sockets keep their fds so). */
void ptrio__close_fdp1(int *fdp1);

#endif /* PTRIO_BACKEND_HOST_H */
