/* src/sync/semaphore.c: Trio's Semaphore on a parking lot.
 *
 * Invariant: while tasks wait, the value is 0; a release then wakes the
 * first waiter instead of incrementing (a FIFO hand-off). */
#include <ptrio.h>

#include "misuse.h"

int ptrio_semaphore_init(ptrio_semaphore *s, unsigned value, unsigned max)
{
    if (!s) {
        SYNC_MISUSE("initialising a NULL semaphore");
        return -PTRIO_EINVAL;
    }
    if (max && value > max) {
        SYNC_MISUSE("a semaphore whose initial value exceeds its maximum");
        return -PTRIO_EINVAL;
    }
    if (!ptrio_lot_empty(&s->waiters)) {
        SYNC_MISUSE("initialising a semaphore that tasks wait on");
        return -PTRIO_EBUSY;
    }
    s->value = value;
    s->max = max;
    return 0;
}

int ptrio_semaphore_acquire_nowait(ptrio_semaphore *s)
{
    if (!s) {
        SYNC_MISUSE("acquiring a NULL semaphore");
        return -PTRIO_EINVAL;
    }
    if (s->value == 0)
        return -PTRIO_EWOULDBLOCK;
    s->value--;
    return 0;
}

static int try_acquire(ptrio_task *t, void *s, void *data)
{
    (void)t, (void)data;
    return ptrio_semaphore_acquire_nowait(s);
}

int ptrio_semaphore_acquire(void *self, ptrio_semaphore *s)
{
    if (!s) {
        SYNC_MISUSE("acquiring a NULL semaphore");
        return -PTRIO_EINVAL;
    }
    return ptrio_park_unless(self, &s->waiters, try_acquire, s, NULL);
}

int ptrio_semaphore_release(ptrio_semaphore *s)
{
    if (!s) {
        SYNC_MISUSE("releasing a NULL semaphore");
        return -PTRIO_EINVAL;
    }
    if (ptrio_lot_unpark(&s->waiters, 0))
        return 0;
    if ((s->max && s->value >= s->max) || s->value == UINT_MAX) {
        SYNC_MISUSE("semaphore released too many times");
        return -PTRIO_EOVERFLOW;
    }
    s->value++;
    return 0;
}

unsigned ptrio_semaphore_waiting(const ptrio_semaphore *s)
{
    return s ? ptrio_lot_count(&s->waiters) : 0;
}
