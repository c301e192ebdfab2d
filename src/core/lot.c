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
 * last: one pointer per lot, O(1) park, unpark and abort. A broken lot
 * points at itself (no task can live at a lot's address).
 *
 * A parked task's w.park.on.lot names its lot, either directly or, for a
 * park through a key, as the key's address with the low bit set: the key
 * holds the lot's address. That is how a task carries two words (its key
 * and its data) in a wait node that has room for one besides the lot.
 *
 * Owned lots (a lock's, whose holder may exit without releasing) are kept
 * in a list in the loop while they have an owner; a task's exit breaks
 * the lots it owned. Pushed at the front, so releasing locks in reverse
 * order of acquisition finds them first; a hand-over between tasks keeps
 * the node where it is.
 */
#include "internal.h"

#define KEYED ((uintptr_t)1)

/* The lot named by a parked task's w.park.on.lot: itself, or the lot its
 * key holds. */
static ptrio_lot *resolve(ptrio_lot *on)
{
    uintptr_t v = (uintptr_t)on;
    return v & KEYED ? *(ptrio_lot *const *)(void *)(v & ~KEYED) : on;
}

/* The lot `t` (parked, W_LOT) is in. */
static ptrio_lot *lot_of(const ptrio_task *t)
{
    return resolve(t->w.park.on.lot);
}

/* ---- the ring ------------------------------------------------------- */

static void ring_append(ptrio_lot *lot, ptrio_task *t)
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

static void ring_remove(ptrio_lot *lot, ptrio_task *t)
{
    ptrio_task *next = t->w.park.next;

    if (next == t) {
        lot->head = NULL;
        return;
    }
    t->w.park.prev->w.park.next = next;
    next->w.park.prev = t->w.park.prev;
    if (lot->head == t)
        lot->head = next;
}

/* Takes `t` out of `lot`: the lot, or the task's w.park.on.lot as it
 * stands (the core's undo of a wait passes that). */
void ptrio__lot_remove(ptrio_lot *lot, ptrio_task *t)
{
    ring_remove(resolve(lot), t);
}

/* A cancellation reached `t`, parked in a lot or with a hook. */
void ptrio__abort_wait(ptrio_loop *l, ptrio_task *t)
{
    if (t->wait == W_LOT) {
        ring_remove(lot_of(t), t);
        ptrio__wake_now(l, t, -PTRIO_ECANCELED);
    } else if (t->w.park.on.abort(t, t->w.park.data) == 0) {
        if (TSTATE(t) == T_PARKED)
            ptrio__wake(l, t, -PTRIO_ECANCELED);
        else        /* the hook woke it itself, and said it did not */
            MISUSE("an abort hook woke its task and returned 0");
    } else if (l->teardown == TEARDOWN_FORCE && TSTATE(t) == T_PARKED) {
        /* A deadlocked run: its owner can never wake it (loop.c,
         * backend_failed). The owner must forget it: it is not its any
         * more. */
        MISUSE("an abort hook refused in a deadlocked run: its task is "
               "woken with -PTRIO_ECANCELED");
        ptrio__wake(l, t, -PTRIO_ECANCELED);
    }
}

/* A wake value is an await's status: PTRIO_PENDING and the unwind markers
 * of PTRIO_RETURN would be taken for something else. */
static NOINLINE int bad_value(void)
{
    MISUSE("unparking with PTRIO_PENDING or another reserved value");
    return -PTRIO_EMISUSE;
}

static inline void unpark_one(ptrio_lot *lot, ptrio_task *t, int value)
{
    if (value <= PTRIO__UNWIND_FIN)
        value = bad_value();
    ring_remove(lot, t);
    ptrio__wake_now(ptrio__loop, t, value);
}

/* ---- parking ---------------------------------------------------------
 *
 * The hot path of every primitive: each call checks the caller by the
 * core's one compare (ptrio__awaiter: the running task's innermost frame,
 * waiting on nothing, and no open scope cancelled); the schedule point or
 * the park that ends the operation takes that permission away.
 * Anything unusual (a bad caller, a cancelled scope somewhere, bad
 * arguments) takes the slow path, which checks everything and reports. */

/* Parks the running task `t` in `lot`; `on` is what its wait records. */
static int park_in(ptrio_task *t, ptrio_lot *lot, ptrio_lot *on, void *data)
{
    ring_append(lot, t);
    t->w.park.on.lot = on;
    t->w.park.data = data;
    ptrio__park_now(t, W_LOT);
    return PTRIO_PENDING;
}

/* Some scope is cancelled: parking is a cancel point. Out of line, so that
 * the hot path saves no registers for the call. */
static NOINLINE int park_if_not_cancelled(ptrio_task *t, ptrio_lot *lot,
                                          ptrio_lot *on, void *data)
{
    if (ptrio__cancelled(t))
        return -PTRIO_ECANCELED;
    return park_in(t, lot, on, data);
}

/* Parks, unless the lot is NULL or broken, or the task is cancelled (an
 * attempt may have cancelled it since the caller was checked). */
static int park_task(ptrio_loop *l, ptrio_task *t, ptrio_lot *lot,
                     ptrio_lot *on, void *data)
{
    if (!lot) {
        MISUSE("parking in a NULL lot");
        return -PTRIO_EINVAL;
    }
    if (ptrio_lot_broken(lot))
        return -PTRIO_EBROKEN;
    if (l->ncalled)
        return park_if_not_cancelled(t, lot, on, data);
    return park_in(t, lot, on, data);
}

/* ptrio_park's and ptrio_park_key's, for a caller just found to be the
 * awaiter: no scope is cancelled, so only the lot needs checking. */
static inline int park_awaiter(ptrio_lot *lot, ptrio_lot *on, void *data)
{
    ptrio_loop *l = ptrio__loop;

    if (!lot || ptrio_lot_broken(lot))
        return park_task(l, l->current, lot, on, data);
    return park_in(l->current, lot, on, data);
}

static ptrio_lot *key_tag(ptrio_lot *const *key)
{
    return (ptrio_lot *)(void *)((uintptr_t)key | KEYED);
}

static int key_bad(ptrio_lot *const *key)
{
    return !key || ((uintptr_t)key & KEYED);
}

static NOINLINE int park_slow(void *self, ptrio_lot *lot,
                              ptrio_lot *const *key, void *data)
{
    ptrio_task *t;
    int rc = ptrio__await_check(self, &t);

    if (rc < 0)
        return rc;
    if (key) {
        if (key_bad(key)) {
            MISUSE("parking through a misaligned key");
            return -PTRIO_EINVAL;
        }
        return park_task(ptrio__loop, t, *key, key_tag(key), data);
    }
    return park_task(ptrio__loop, t, lot, lot, data);
}

int ptrio_park(void *self, ptrio_lot *lot, void *data)
{
    if (self != ptrio__awaiter)
        return park_slow(self, lot, NULL, data);
    return park_awaiter(lot, lot, data);
}

int ptrio_park_key(void *self, ptrio_lot *const *key, void *data)
{
    if (!key) {
        MISUSE("parking through a NULL key");
        return ptrio__self(self) ? -PTRIO_EINVAL : -PTRIO_ENOTASK;
    }
    if (self != ptrio__awaiter || key_bad(key))
        return park_slow(self, NULL, key, data);
    return park_awaiter(*key, key_tag(key), data);
}

/* After the attempt: its status delivered after a schedule point, its
 * error at once, or the park. The attempt cannot switch tasks, so the
 * running task is read again rather than kept across the call. */
static inline int after_attempt(int rc, ptrio_lot *lot, ptrio_lot *on,
                                void *data)
{
    ptrio_loop *l = ptrio__loop;

    if (rc >= 0)
        return ptrio__done_yield(l, l->current, rc);
    if (rc != -PTRIO_EWOULDBLOCK)
        return rc;
    return park_task(l, l->current, lot, on, data);
}

/* The slow path of a blocking operation, through `key` when it is not
 * NULL, else in `lot`: check everything, then do what the fast path does. */
static NOINLINE int unless_slow(void *self, ptrio_lot *lot,
                                ptrio_lot *const *key, ptrio_try_fn attempt,
                                void *obj, void *data)
{
    ptrio_task *t;
    int rc = ptrio__await_check(self, &t);

    if (rc < 0)
        return rc;
    if (!attempt || (key && key_bad(key))) {
        MISUSE("a blocking operation without an attempt, or a bad key");
        return -PTRIO_EINVAL;
    }
    if (ptrio__cancelled(t))
        return -PTRIO_ECANCELED;
    rc = attempt(t, obj, data);
    if (key)
        return after_attempt(rc, *key, key_tag(key), data);
    return after_attempt(rc, lot, lot, data);
}

int ptrio_park_unless(void *self, ptrio_lot *lot, ptrio_try_fn attempt,
                      void *obj, void *data)
{
    if (self != ptrio__awaiter || !attempt)
        return unless_slow(self, lot, NULL, attempt, obj, data);
    return after_attempt(attempt(ptrio__loop->current, obj, data), lot, lot,
                         data);
}

int ptrio_park_key_unless(void *self, ptrio_lot *const *key,
                          ptrio_try_fn attempt, void *obj, void *data)
{
    int rc;

    if (!key) {
        MISUSE("a blocking operation through a NULL key");
        return ptrio__self(self) ? -PTRIO_EINVAL : -PTRIO_ENOTASK;
    }
    if (self != ptrio__awaiter || !attempt || key_bad(key))
        return unless_slow(self, NULL, key, attempt, obj, data);
    rc = attempt(ptrio__loop->current, obj, data);
    return after_attempt(rc, *key, key_tag(key), data);
}

int ptrio_park_hook(void *self, ptrio_abort_fn abort, void *data)
{
    ptrio_task *t;
    int rc = ptrio__await_check(self, &t);

    if (rc < 0)
        return rc;
    if (!abort)
        return -PTRIO_EINVAL;
    if (ptrio__cancelled(t))
        return -PTRIO_ECANCELED;
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
    if (value <= PTRIO__UNWIND_FIN)
        value = bad_value();
    ptrio__wake_now(ptrio__loop, t, value);
    return 0;
}

/* ---- looking at a lot --------------------------------------------- */

static int in_lot(const ptrio_lot *lot, const ptrio_task *t)
{
    return lot && t && TSTATE(t) == T_PARKED && t->wait == W_LOT &&
           lot_of(t) == lot;
}

ptrio_task *ptrio_lot_next(const ptrio_lot *lot, const ptrio_task *t)
{
    if (!in_lot(lot, t))
        return NULL;
    return t->w.park.next == lot->head ? NULL : t->w.park.next;
}

unsigned ptrio_lot_count(const ptrio_lot *lot)
{
    const ptrio_task *head = ptrio_lot_first(lot), *t = head;
    unsigned k = 0;

    if (!head)
        return 0;
    do {
        k++;
        t = t->w.park.next;
    } while (t != head);
    return k;
}

void *ptrio_wait_data(const ptrio_task *t)
{
    if (!t || TSTATE(t) != T_PARKED || (t->wait != W_LOT && t->wait != W_HOOK))
        return NULL;
    return t->w.park.data;
}

ptrio_lot *const *ptrio_wait_key(const ptrio_task *t)
{
    uintptr_t on;

    if (!t || TSTATE(t) != T_PARKED || t->wait != W_LOT)
        return NULL;
    on = (uintptr_t)t->w.park.on.lot;
    return on & KEYED ? (ptrio_lot *const *)(void *)(on & ~KEYED) : NULL;
}

/* ---- unparking ---------------------------------------------------- */

ptrio_task *ptrio_lot_unpark(ptrio_lot *lot, int value)
{
    ptrio_task *t = ptrio_lot_first(lot);

    if (t)
        unpark_one(lot, t, value);
    return t;
}

unsigned ptrio_lot_unpark_n(ptrio_lot *lot, unsigned n, int value)
{
    ptrio_task *t;
    unsigned k = 0;

    if (!lot)
        return 0;
    while (k < n && (t = ptrio_lot_first(lot))) {
        unpark_one(lot, t, value);
        k++;
    }
    return k;
}

unsigned ptrio_lot_unpark_all(ptrio_lot *lot, int value)
{
    return ptrio_lot_unpark_n(lot, UINT_MAX, value);
}

int ptrio_lot_unpark_task(ptrio_lot *lot, ptrio_task *t, int value)
{
    if (!in_lot(lot, t)) {
        MISUSE("unparking a task that is not parked in this lot");
        return -PTRIO_EINVAL;
    }
    unpark_one(lot, t, value);
    return 0;
}

/* Repark onto the same lot, as Trio's (which pops the first n, then
 * appends them): the first n move to the end, a turn of the ring. */
static unsigned turn(ptrio_lot *lot, unsigned n)
{
    unsigned k, count = ptrio_lot_count(lot);
    ptrio_task *t;

    if (n > count)
        n = count;
    for (k = 0; k < n; k++) {
        t = lot->head;
        t->w.park.on.lot = lot;             /* moved: forgets its key */
        lot->head = t->w.park.next;
    }
    return n;
}

unsigned ptrio_lot_repark(ptrio_lot *from, ptrio_lot *to, unsigned n)
{
    unsigned k = 0;
    ptrio_task *t;

    if (!from || !to)
        return 0;
    if (from == to)
        return turn(from, n);
    if (ptrio_lot_broken(to))
        return ptrio_lot_unpark_n(from, n, -PTRIO_EBROKEN);
    while (k < n && (t = ptrio_lot_first(from))) {
        ring_remove(from, t);
        ring_append(to, t);
        t->w.park.on.lot = to;
        k++;
    }
    return k;
}

void ptrio_lot_break(ptrio_lot *lot)
{
    if (!lot || ptrio_lot_broken(lot))
        return;
    ptrio_lot_unpark_all(lot, -PTRIO_EBROKEN);
    lot->head = (ptrio_task *)(void *)lot;
}

/* ---- owned lots ----------------------------------------------------- */

/* The link in the loop's list that points at `ol`, or NULL: the list is
 * as long as the lots owned at once, a few. */
static ptrio_owned_lot **owned_link(ptrio_loop *l, const ptrio_owned_lot *ol)
{
    ptrio_owned_lot **pp;

    for (pp = &l->lot_owners; *pp; pp = &(*pp)->next)
        if (*pp == ol)
            return pp;
    return NULL;
}

static void owned_unlink(ptrio_loop *l, ptrio_owned_lot *ol)
{
    ptrio_owned_lot **pp = owned_link(l, ol);

    if (!pp) {
        MISUSE("an owned lot with an owner is missing from the loop's list "
               "(moved, or owned in another run?)");
        return;
    }
    *pp = ol->next;
    ol->next = NULL;
}

int ptrio_lot_set_owner(ptrio_owned_lot *ol, ptrio_task *t)
{
    ptrio_loop *l = ptrio__loop;

    if (!ol) {
        MISUSE("ptrio_lot_set_owner on a NULL lot");
        return -PTRIO_EINVAL;
    }
    if (!l)
        return -PTRIO_ENOTASK;
    if (t && (TSTATE(t) == T_IDLE || TSTATE(t) == T_DONE))
        return -PTRIO_EBROKEN;
    if (t && !ol->owner) {
        if (owned_link(l, ol)) {
            /* zeroed while owned (a held lock `= {0}`): linking it again
             * would make a cycle of the list, walked at each task exit */
            MISUSE("an owned lot (a held lock?) was zeroed");
        } else {
            ol->next = l->lot_owners;
            l->lot_owners = ol;
        }
    } else if (!t && ol->owner) {
        owned_unlink(l, ol);
    }
    ol->owner = t;
    return 0;
}

/* A task exited: the lots it owned break (Trio's parking-lot breakers).
 * Called only while loop->lot_owners is set. */
void ptrio__lot_task_exited(ptrio_loop *l, ptrio_task *t)
{
    ptrio_owned_lot **pp = &l->lot_owners, *ol;

    while ((ol = *pp)) {
        if (ol->owner != t) {
            pp = &ol->next;
            continue;
        }
        *pp = ol->next;
        ol->next = NULL;
        ol->owner = NULL;
        ptrio_lot_break(&ol->lot);
    }
}
