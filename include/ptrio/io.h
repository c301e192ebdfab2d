/* ptrio/io.h: waiting for file descriptors (backends with fd support). */
#ifndef PTRIO_IO_H
#define PTRIO_IO_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Waits until `fd` is readable / writable. Awaitable checkpoint. Returns
 * the ready events (>= 0). Errors: -PTRIO_EBADF (fd < 0), -PTRIO_EBUSY
 * (another task waits on fd for the same direction), -PTRIO_ENOTSUP (the
 * backend has no fd waits), -PTRIO_ECLOSED (ptrio_notify_closing),
 * -PTRIO_ECANCELED, -PTRIO_ENOTASK. */
int ptrio_wait_readable(void *self, int fd);
int ptrio_wait_writable(void *self, int fd);

/* Call before closing `fd`: every task waiting on it wakes with
 * -PTRIO_ECLOSED. Returns how many were woken. */
int ptrio_notify_closing(int fd);

#ifdef __cplusplus
}
#endif

#endif /* PTRIO_IO_H */
