/* src/io/fd.h: what the fd waits share with the backends and the socket
 * layer. Never installed.
 *
 * A task waiting on an fd is parked with an abort hook (lot.c) and chained
 * through its w.park links into the loop's registry, a hash table of
 * PTRIO_CONF_FD_BUCKETS buckets by fd; its w.park.data holds the fd and the
 * direction it waits for. At most two tasks wait on one fd (one per
 * direction), and they sit next to each other in their chain. */
#ifndef PTRIO_IO_FD_H
#define PTRIO_IO_FD_H

#include "../core/internal.h"

#define FD_EVBITS 3u    /* PTRIO_READABLE | PTRIO_WRITABLE fit below */
#define FD_DIRS (PTRIO_READABLE | PTRIO_WRITABLE)

#if (PTRIO_CONF_FD_BUCKETS & (PTRIO_CONF_FD_BUCKETS - 1)) != 0
#error "PTRIO_CONF_FD_BUCKETS must be a power of two"
#endif

static inline int ptrio__fd_of(const ptrio_task *t)
{
    return (int)((uintptr_t)t->w.park.data >> FD_EVBITS);
}

static inline unsigned ptrio__fd_events(const ptrio_task *t)
{
    return (unsigned)((uintptr_t)t->w.park.data & ((1u << FD_EVBITS) - 1));
}

/* Whether a stream has an fd or a call still ending (stream.c). */
struct ptrio_stream;
int ptrio__stream_in_use(const struct ptrio_stream *s);

#endif /* PTRIO_IO_FD_H */
