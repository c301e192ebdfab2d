/* ptrio/io.h: waiting for file descriptors (Trio's trio.lowlevel
 * wait_readable, wait_writable and notify_closing).
 *
 * Portable: on a POSIX host the backend is epoll, poll or select; a port
 * without fds (watch == NULL in its backend) makes these fail with
 * -PTRIO_ENOTSUP. Sockets and streams built on them: ptrio/net.h. */
#ifndef PTRIO_IO_H
#define PTRIO_IO_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Waits until `fd` is readable / writable. Awaitable checkpoint. Returns
 * the direction that became ready (PTRIO_READABLE / PTRIO_WRITABLE). An
 * error or hang-up on the fd counts as ready (the next read or write
 * reports it); an fd found closed (poll, select) fails with -PTRIO_EBADF.
 * Errors: -PTRIO_EBADF (fd < 0), -PTRIO_EBUSY (another task waits on fd
 * for the same direction: Trio's BusyResourceError), -PTRIO_EFDLIMIT
 * (beyond the backend's limit), -PTRIO_ENOTSUP (the backend has no fd
 * waits), -PTRIO_ECLOSED (ptrio_notify_closing), -PTRIO_ECANCELED,
 * -PTRIO_ENOTASK, or the backend's registration error (-EPERM: epoll
 * cannot wait on regular files). */
int ptrio_wait_readable(void *self, int fd);
int ptrio_wait_writable(void *self, int fd);

/* Call before closing `fd`: every task waiting on it wakes with
 * -PTRIO_ECLOSED, and the backend forgets fd. Returns how many were woken
 * (0 outside a loop). Closing an fd someone waits on without it is an
 * error: poll and select wake the waiter with -PTRIO_EBADF, epoll never
 * wakes it (the kernel drops the fd silently). */
int ptrio_notify_closing(int fd);

/* Tasks of the running loop waiting on fds (0 outside a loop): a debugging
 * aid, and how tests check that cancelled waits left nothing behind. */
unsigned ptrio_fd_waiters(void);

#ifdef __cplusplus
}
#endif

#endif /* PTRIO_IO_H */
