/* src/sync/condition.c: Trio's Condition on two parking lots.
 *
 * A waiter parks in the condition's lot; notify moves it, still parked, to
 * the end of the lock's lot (Trio's repark), so the release that follows
 * hands it the lock and it wakes holding it. Cancelled or broken, it must
 * still re-acquire the lock before it returns: that needs a shielded
 * acquire after the park, hence a coroutine with its own frame. The
 * waiter keeps the lock it released: a cancelled waiter is in neither lot
 * until it resumes, and the condition may be rebound meanwhile. */
#include <ptrio.h>

#include "misuse.h"

static int holds(const ptrio_condition *c)
{
    return c->lock->lot.owner && c->lock->lot.owner == ptrio_current_task();
}

/* Held or awaited: a notified waiter may be queued for it, or hold it. */
static int lock_in_use(const ptrio_lock *lk)
{
    ptrio_lock_stats st;

    ptrio_lock_statistics(lk, &st);
    return st.locked || st.waiting > 0;
}

int ptrio_condition_init(ptrio_condition *c, ptrio_lock *lock)
{
    if (!c || !lock) {
        SYNC_MISUSE("a condition needs a lock");
        return -PTRIO_EINVAL;
    }
    if (!ptrio_lot_empty(&c->waiters)) {
        SYNC_MISUSE("initialising a condition that tasks wait on");
        return -PTRIO_EBUSY;
    }
    if (c->lock && c->lock != lock && lock_in_use(c->lock)) {
        SYNC_MISUSE("binding a condition to another lock while its lock "
                    "is in use");
        return -PTRIO_EBUSY;
    }
    c->lock = lock;
    return 0;
}

static int bad(const ptrio_condition *c)
{
    if (c && c->lock)
        return 0;
    SYNC_MISUSE("a condition without a lock (ptrio_condition_init)");
    return 1;
}

int ptrio_condition_acquire(void *self, ptrio_condition *c)
{
    return bad(c) ? -PTRIO_EINVAL : ptrio_lock_acquire(self, c->lock);
}

int ptrio_condition_acquire_nowait(ptrio_condition *c)
{
    return bad(c) ? -PTRIO_EINVAL : ptrio_lock_acquire_nowait(c->lock);
}

int ptrio_condition_release(ptrio_condition *c)
{
    return bad(c) ? -PTRIO_EINVAL : ptrio_lock_release(c->lock);
}

bool ptrio_condition_locked(const ptrio_condition *c)
{
    return c && ptrio_lock_locked(c->lock);
}

static int wait_step(ptrio_frame *fr)
{
    ptrio_condition_waiter *w = PTRIO_SELF(fr, ptrio_condition_waiter);

    PTRIO_BEGIN(w);
    PTRIO_TRY(w, w->rc, ptrio_park(w, &w->cond->waiters, NULL));
    if (w->rc < 0) {
        /* Trio: cancelled (or broken), wait for the lock all the same, so
         * that the caller's release still finds it held. */
        PTRIO_SHIELD(w, &w->shield) {
            PTRIO_AWAIT(w, ptrio_lock_acquire(w, w->lock));
        }
        PTRIO_CHECK(w, w->rc);
    }
    PTRIO_END(w);
}

int ptrio_condition_wait(void *self, ptrio_condition *c,
                         ptrio_condition_waiter *w)
{
    int rc = ptrio_checkpoint_if_cancelled(self);

    /* Cancelled is fine here: the park below fails at once, as in Trio.
     * Any other failure of the caller's check (no task, a dropped
     * PTRIO_PENDING) refuses the wait before the lock is released. */
    if (rc < 0 && rc != -PTRIO_ECANCELED)
        return rc;
    if (bad(c) || !w) {
        SYNC_MISUSE("a NULL condition waiter");
        return -PTRIO_EINVAL;
    }
    if (!ptrio_frame_idle(&w->fr)) {     /* a finished wait's frame is free */
        SYNC_MISUSE("a condition waiter frame that is in use");
        return -PTRIO_EBUSY;
    }
    if (!holds(c)) {
        SYNC_MISUSE("waiting on a condition without holding its lock");
        return -PTRIO_EPERM;
    }
    w->cond = c;
    w->lock = c->lock;
    w->rc = 0;
    ptrio_lock_release(c->lock);
    return ptrio_call(self, w, wait_step);
}

int ptrio_condition_notify(ptrio_condition *c, unsigned n)
{
    if (bad(c))
        return -PTRIO_EINVAL;
    if (!holds(c)) {
        SYNC_MISUSE("notifying a condition without holding its lock");
        return -PTRIO_EPERM;
    }
    n = ptrio_lot_repark(&c->waiters, &c->lock->lot.lot, n);
    return n > INT_MAX ? INT_MAX : (int)n;
}

int ptrio_condition_notify_all(ptrio_condition *c)
{
    return ptrio_condition_notify(c, UINT_MAX);
}

unsigned ptrio_condition_waiting(const ptrio_condition *c)
{
    return c ? ptrio_lot_count(&c->waiters) : 0;
}
