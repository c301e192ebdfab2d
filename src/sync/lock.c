/* src/sync/lock.c: Trio's Lock on an owned parking lot.
 *
 * The lot's owner is the holder. A release with waiters hands the lock to
 * the first one (it wakes holding it), so the lock is FIFO and nobody can
 * barge in. The lot breaks when its owner exits: waiters and later
 * acquires get -PTRIO_EBROKEN. */
#include <ptrio.h>

#include "misuse.h"

/* Takes the lock for `t` if it is free and nobody waits. */
static int take(ptrio_lock *lk, ptrio_task *t)
{
    if (ptrio_lot_broken(&lk->lot.lot))
        return -PTRIO_EBROKEN;
    if (lk->lot.owner == t) {
        SYNC_MISUSE("acquiring a lock the task already holds");
        return -PTRIO_EDEADLK;
    }
    if (lk->lot.owner || !ptrio_lot_empty(&lk->lot.lot))
        return -PTRIO_EWOULDBLOCK;
    return ptrio_lot_set_owner(&lk->lot, t);
}

int ptrio_lock_acquire_nowait(ptrio_lock *lk)
{
    ptrio_task *t = ptrio_current_task();

    if (!lk) {
        SYNC_MISUSE("acquiring a NULL lock");
        return -PTRIO_EINVAL;
    }
    return t ? take(lk, t) : -PTRIO_ENOTASK;
}

/* The attempt of a blocking acquire (ptrio_park_unless). */
static int try_take(ptrio_task *t, void *lk, void *data)
{
    (void)data;
    return take(lk, t);
}

int ptrio_lock_acquire(void *self, ptrio_lock *lk)
{
    if (!lk) {
        SYNC_MISUSE("acquiring a NULL lock");
        return -PTRIO_EINVAL;
    }
    /* Parked, it wakes from a release holding the lock, or broken. */
    return ptrio_park_unless(self, &lk->lot.lot, try_take, lk, NULL);
}

int ptrio_lock_release(ptrio_lock *lk)
{
    ptrio_task *t = ptrio_current_task();

    if (!lk) {
        SYNC_MISUSE("releasing a NULL lock");
        return -PTRIO_EINVAL;
    }
    if (!t)
        return -PTRIO_ENOTASK;
    if (lk->lot.owner != t) {
        SYNC_MISUSE("releasing a lock the task does not hold");
        return -PTRIO_EPERM;
    }
    return ptrio_lot_set_owner(&lk->lot, ptrio_lot_unpark(&lk->lot.lot, 0));
}

bool ptrio_lock_locked(const ptrio_lock *lk)
{
    return lk && (lk->lot.owner || ptrio_lot_broken(&lk->lot.lot));
}

void ptrio_lock_statistics(const ptrio_lock *lk, ptrio_lock_stats *out)
{
    out->locked = ptrio_lock_locked(lk);
    out->broken = lk && ptrio_lot_broken(&lk->lot.lot);
    out->owner = lk ? lk->lot.owner : NULL;
    out->waiting = lk ? ptrio_lot_count(&lk->lot.lot) : 0;
}
