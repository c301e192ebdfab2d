/* src/io/fd.h: what the fd waits share with the backends. Never installed.
 *
 * A task waiting on an fd is parked with an abort hook (lot.c) and linked
 * through its w.park links into loop->watchers; its w.park.data holds the
 * fd and the events it waits for. */
#ifndef PTRIO_IO_FD_H
#define PTRIO_IO_FD_H

#include "../core/internal.h"

#define FD_EVBITS 3u    /* PTRIO_READABLE | PTRIO_WRITABLE fit below */

static inline int ptrio__fd_of(const ptrio_task *t)
{
    return (int)((uintptr_t)t->w.park.data >> FD_EVBITS);
}

static inline unsigned ptrio__fd_events(const ptrio_task *t)
{
    return (unsigned)((uintptr_t)t->w.park.data & ((1u << FD_EVBITS) - 1));
}

#endif /* PTRIO_IO_FD_H */
