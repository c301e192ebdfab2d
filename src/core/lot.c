/* src/core/lot.c: parking lots and abort hooks, the one way a wait ends.
 *
 * Every blocking primitive parks its task either in a lot (a FIFO of
 * tasks) or with an abort hook. Cancellation, whichever scope it comes
 * from, ends the wait here: a lot's task is taken out and woken with
 * -PTRIO_ECANCELED; a hooked task asks its hook. So the core never names a
 * primitive, and adding one touches no core file.
 *
 * A lot is a circular doubly-linked list threaded through the parked
 * tasks' w.park links; the lot holds the first, and first->prev is the
 * last: one pointer per lot, O(1) park, unpark and abort.
 */
#include "internal.h"

static void lot_append(ptrio_lot *lot, ptrio_task *t)
{
    ptrio_task *head = lot->head;

    if (!head) {
        t->w.park.next = t->w.park.prev = t;
        lot->head = t;
        return;
    }
    t->w.park.next = head;
    t->w.park.prev = head->w.park.prev;
    head->w.park.prev->w.park.next = t;
    head->w.park.prev = t;
}

void ptrio__lot_remove(ptrio_lot *lot, ptrio_task *t)
{
    if (t->w.park.next == t) {
        lot->head = NULL;
    } else {
        t->w.park.prev->w.park.next = t->w.park.next;
        t->w.park.next->w.park.prev = t->w.park.prev;
        if (lot->head == t)
            lot->head = t->w.park.next;
    }
}

/* A cancellation reached `t`, parked in a lot or with a hook. */
void ptrio__abort_wait(ptrio_loop *l, ptrio_task *t)
{
    if (t->wait == W_LOT) {
        ptrio__lot_remove(t->w.park.on.lot, t);
        ptrio__wake(l, t, -PTRIO_ECANCELED);
    } else if (t->w.park.on.abort(t, t->w.park.data) == 0) {
        ptrio__wake(l, t, -PTRIO_ECANCELED);
    }
}

/* What every park shares: a running task, not yet waiting, not cancelled. */
static int park_check(void *self, ptrio_task **out)
{
    int rc = ptrio__await_check(self, out);
    if (rc == 0 && ptrio__cancelled(*out))
        rc = -PTRIO_ECANCELED;
    return rc;
}

int ptrio_park(void *self, ptrio_lot *lot, void *data)
{
    ptrio_task *t;
    int rc = park_check(self, &t);

    if (rc < 0)
        return rc;
    if (!lot)
        return -PTRIO_EINVAL;
    lot_append(lot, t);
    t->w.park.on.lot = lot;
    t->w.park.data = data;
    ptrio__park(t, W_LOT);
    return PTRIO_PENDING;
}

int ptrio_park_hook(void *self, ptrio_abort_fn abort, void *data)
{
    ptrio_task *t;
    int rc = park_check(self, &t);

    if (rc < 0)
        return rc;
    if (!abort)
        return -PTRIO_EINVAL;
    t->w.park.next = t->w.park.prev = NULL;
    t->w.park.on.abort = abort;
    t->w.park.data = data;
    ptrio__park(t, W_HOOK);
    return PTRIO_PENDING;
}

int ptrio_wake(ptrio_task *t, int value)
{
    if (!t || TSTATE(t) != T_PARKED || t->wait != W_HOOK || !ptrio__loop) {
        MISUSE("ptrio_wake on a task that is not parked with a hook");
        return -PTRIO_EINVAL;
    }
    ptrio__wake(ptrio__loop, t, value);
    return 0;
}

ptrio_task *ptrio_lot_first(const ptrio_lot *lot)
{
    return lot ? lot->head : NULL;
}

ptrio_task *ptrio_lot_next(const ptrio_lot *lot, const ptrio_task *t)
{
    return t->w.park.next == lot->head ? NULL : t->w.park.next;
}

ptrio_task *ptrio_lot_unpark(ptrio_lot *lot, int value)
{
    ptrio_task *t = lot ? lot->head : NULL;

    if (t) {
        ptrio__lot_remove(lot, t);
        ptrio__wake(ptrio__loop, t, value);
    }
    return t;
}

unsigned ptrio_lot_unpark_n(ptrio_lot *lot, unsigned n, int value)
{
    unsigned k = 0;
    while (k < n && ptrio_lot_unpark(lot, value))
        k++;
    return k;
}

unsigned ptrio_lot_unpark_all(ptrio_lot *lot, int value)
{
    return ptrio_lot_unpark_n(lot, UINT_MAX, value);
}

static int in_lot(const ptrio_lot *lot, const ptrio_task *t)
{
    return t && TSTATE(t) == T_PARKED && t->wait == W_LOT &&
           t->w.park.on.lot == lot;
}

int ptrio_lot_unpark_task(ptrio_lot *lot, ptrio_task *t, int value)
{
    if (!in_lot(lot, t)) {
        MISUSE("unparking a task that is not parked in this lot");
        return -PTRIO_EINVAL;
    }
    ptrio__lot_remove(lot, t);
    ptrio__wake(ptrio__loop, t, value);
    return 0;
}

unsigned ptrio_lot_repark(ptrio_lot *from, ptrio_lot *to, unsigned n)
{
    unsigned k = 0;
    ptrio_task *t;

    if (!from || !to || from == to)
        return 0;
    while (k < n && (t = from->head)) {
        ptrio__lot_remove(from, t);
        lot_append(to, t);
        t->w.park.on.lot = to;
        k++;
    }
    return k;
}

unsigned ptrio_lot_count(const ptrio_lot *lot)
{
    const ptrio_task *t;
    unsigned k = 0;

    if (!lot || !lot->head)
        return 0;
    t = lot->head;
    do {
        k++;
        t = t->w.park.next;
    } while (t != lot->head);
    return k;
}

void *ptrio_wait_data(const ptrio_task *t)
{
    if (!t || TSTATE(t) != T_PARKED || (t->wait != W_LOT && t->wait != W_HOOK))
        return NULL;
    return t->w.park.data;
}

/* A task exited: the lots it owned break (Trio's parking-lot breakers).
 * Called only while loop->lot_owners is set. */
void ptrio__lot_task_exited(ptrio_loop *l, ptrio_task *t)
{
    (void)l, (void)t;
}
