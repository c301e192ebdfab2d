/* ptrio/sync.h: events, locks, semaphores, capacity limiters and
 * conditions, as in Trio.
 *
 * Every object is caller-owned, may be static, and starts zeroed (a zeroed
 * semaphore has value 0 and no maximum; a zeroed limiter has no tokens;
 * a condition needs ptrio_condition_init). All are built on the public
 * parking-lot API of ptrio/core.h, as your own awaitables can be.
 *
 * Checkpoints follow Trio exactly: every blocking call (event wait, every
 * acquire, condition wait) is a checkpoint even when it need not block;
 * inside a cancelled scope it fails with -PTRIO_ECANCELED and has no
 * effect, but for a condition wait, which (as Trio's) releases the lock
 * first and fails once it holds it again, maybe after others had it. The
 * *_nowait calls, releases, set and notify are never
 * checkpoints and never fail with -PTRIO_ECANCELED. Waiters are served in
 * FIFO order, and a release with waiters hands the lock (or the token) to
 * the first of them directly: nobody can barge in between.
 *
 * Misuse (re-acquiring a lock you hold, releasing one you do not, ...)
 * returns the error code listed, and traps in --enable-debug builds.
 */
#ifndef PTRIO_SYNC_H
#define PTRIO_SYNC_H

#include <stdbool.h>

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- event ---------------------------------------------------------- */

/* A flag that goes from unset to set once (Trio's Event). */
typedef struct ptrio_event {
    ptrio_lot waiters;
    bool set;
} ptrio_event;

/* Whether the event is set. */
static inline bool ptrio_event_is_set(const ptrio_event *e)
{
    return e->set;
}

/* Sets the event and wakes every waiter. Not a checkpoint; idempotent. */
void ptrio_event_set(ptrio_event *e);

/* Waits until the event is set: awaitable checkpoint (also when it is set
 * already). Errors: -PTRIO_ECANCELED, -PTRIO_EINVAL (NULL),
 * -PTRIO_ENOTASK. */
PTRIO_NODISCARD int ptrio_event_wait(void *self, ptrio_event *e);

/* Tasks waiting (Trio's statistics().tasks_waiting). */
unsigned ptrio_event_waiting(const ptrio_event *e);

/* ---- lock ----------------------------------------------------------- */

/* A mutex owned by one task (Trio's Lock; strictly FIFO, so it is also
 * Trio's StrictFIFOLock). When the holder exits without releasing it, the
 * lock breaks: its waiters and every later acquire fail with
 * -PTRIO_EBROKEN (Trio 0.27+). */
typedef struct ptrio_lock {
    ptrio_owned_lot lot;        /* owner: the holder */
} ptrio_lock;

/* Acquires the lock: awaitable checkpoint. Errors: -PTRIO_ECANCELED,
 * -PTRIO_EBROKEN (the holder exited holding it), -PTRIO_EDEADLK (the
 * caller holds it already), -PTRIO_EINVAL (NULL), -PTRIO_ENOTASK. */
PTRIO_NODISCARD int ptrio_lock_acquire(void *self, ptrio_lock *lk);

/* Acquires the lock if it is free and nobody waits. Returns 0, or
 * -PTRIO_EWOULDBLOCK, -PTRIO_EBROKEN, -PTRIO_EDEADLK, -PTRIO_EINVAL
 * (NULL), -PTRIO_ENOTASK. */
int ptrio_lock_acquire_nowait(ptrio_lock *lk);

/* Releases the lock: the first waiter, if any, holds it now. Returns 0, or
 * -PTRIO_EPERM when the caller does not hold it, -PTRIO_EINVAL (NULL),
 * -PTRIO_ENOTASK. */
int ptrio_lock_release(ptrio_lock *lk);

/* Whether the lock is held (a broken lock counts as held: it can never be
 * acquired again). */
bool ptrio_lock_locked(const ptrio_lock *lk);

/* The task holding the lock, or NULL (free, or broken). */
static inline ptrio_task *ptrio_lock_owner(const ptrio_lock *lk)
{
    return lk->lot.owner;
}

typedef struct ptrio_lock_stats {
    bool locked;
    bool broken;            /* its holder exited holding it */
    ptrio_task *owner;      /* NULL when free or broken */
    unsigned waiting;       /* tasks blocked in acquire */
} ptrio_lock_stats;

/* Fills `out` (Trio's statistics()). */
void ptrio_lock_statistics(const ptrio_lock *lk, ptrio_lock_stats *out);

/* ---- semaphore ------------------------------------------------------ */

/* A counter that acquire decrements, waiting while it is 0, and release
 * increments (Trio's Semaphore). `max` 0: no maximum. */
typedef struct ptrio_semaphore {
    ptrio_lot waiters;
    unsigned value;
    unsigned max;
} ptrio_semaphore;

/* A static initialiser: `value` tokens, maximum `max` (0: none). */
#define PTRIO_SEMAPHORE_INIT(value, max) {{NULL}, (value), (max)}

/* Sets the initial value and the maximum (0: none). Returns 0, or
 * -PTRIO_EINVAL when value > max > 0 (or NULL), -PTRIO_EBUSY while tasks
 * wait. */
int ptrio_semaphore_init(ptrio_semaphore *s, unsigned value, unsigned max);

/* Decrements the value, waiting while it is 0: awaitable checkpoint.
 * Errors: -PTRIO_ECANCELED, -PTRIO_EINVAL (NULL), -PTRIO_ENOTASK. */
PTRIO_NODISCARD int ptrio_semaphore_acquire(void *self, ptrio_semaphore *s);

/* Decrements the value if it is not 0. Returns 0, -PTRIO_EWOULDBLOCK, or
 * -PTRIO_EINVAL (NULL). */
int ptrio_semaphore_acquire_nowait(ptrio_semaphore *s);

/* Wakes the first waiter, or increments the value. Returns 0, or
 * -PTRIO_EOVERFLOW when the value is at its maximum (Trio's "released too
 * many times"), or at UINT_MAX; -PTRIO_EINVAL (NULL). */
int ptrio_semaphore_release(ptrio_semaphore *s);

/* The current value, and the maximum (0: none). */
static inline unsigned ptrio_semaphore_value(const ptrio_semaphore *s)
{
    return s->value;
}

static inline unsigned ptrio_semaphore_max(const ptrio_semaphore *s)
{
    return s->max;
}

/* Tasks blocked in acquire. */
unsigned ptrio_semaphore_waiting(const ptrio_semaphore *s);

/* ---- capacity limiter ----------------------------------------------- */

#define PTRIO_LIMITER_INF UINT_MAX      /* total tokens: no limit */

typedef struct ptrio_limiter ptrio_limiter;

/* One borrowed token: caller-owned, usually in the borrower's frame, from
 * acquire to release. Starts zeroed. */
typedef struct ptrio_limiter_token {
    struct ptrio_limiter_token *next, *prev;    /* the limiter's borrowers */
    const void *borrower;
    ptrio_limiter *limiter;                     /* while borrowed */
    ptrio_task *waiter;         /* the task it last waited with (internal) */
} ptrio_limiter_token;

/* A sack of `total` tokens that tasks borrow and give back (Trio's
 * CapacityLimiter): at most `total` borrowers at a time, each at most
 * once. */
struct ptrio_limiter {
    ptrio_lot waiters;              /* data: their token */
    ptrio_limiter_token *borrowers; /* circular list, oldest first */
    unsigned total, borrowed;
    unsigned proxies;               /* waits on behalf of another borrower,
                                       at least (internal) */
};

/* A static initialiser: `total` tokens (PTRIO_LIMITER_INF: no limit). */
#define PTRIO_LIMITER_INIT(total) {{NULL}, NULL, (total), 0, 0}

/* Prepares a limiter with `total` tokens (PTRIO_LIMITER_INF: no limit).
 * Returns 0, or -PTRIO_EINVAL (NULL), -PTRIO_EBUSY while it lends a token
 * or tasks wait on it (ptrio_limiter_set_total changes a busy one). */
int ptrio_limiter_init(ptrio_limiter *lim, unsigned total);

/* Borrows a token for the calling task, recorded in `tok`: awaitable
 * checkpoint. The borrower is the task's struct: release the token before
 * the task ends, or a task started later in that struct is its borrower.
 * Errors: -PTRIO_ECANCELED, -PTRIO_EDEADLK (the task borrows
 * one already, or another task waits for one on its behalf),
 * -PTRIO_EBUSY (`tok` is in use), -PTRIO_EINVAL (a NULL limiter or
 * token), -PTRIO_ENOTASK. */
PTRIO_NODISCARD int ptrio_limiter_acquire(void *self, ptrio_limiter *lim,
                                          ptrio_limiter_token *tok);

/* The same for `borrower`, any object that stands for who holds it
 * (Trio's acquire_on_behalf_of); NULL is refused with -PTRIO_EINVAL, and
 * a borrower that holds a token or waits for one already with
 * -PTRIO_EDEADLK (finding a waiter walks the limiter's waiters). */
PTRIO_NODISCARD int ptrio_limiter_acquire_on_behalf_of(
    void *self, ptrio_limiter *lim, ptrio_limiter_token *tok,
    const void *borrower);

/* Borrows a token if one is free and nobody waits. Returns 0, or
 * -PTRIO_EWOULDBLOCK, -PTRIO_EDEADLK, -PTRIO_EBUSY, -PTRIO_ENOTASK (no
 * task to borrow for: not the _on_behalf_of form), -PTRIO_EINVAL (a NULL
 * limiter, token or borrower). */
int ptrio_limiter_acquire_nowait(ptrio_limiter *lim,
                                 ptrio_limiter_token *tok);
int ptrio_limiter_acquire_on_behalf_of_nowait(ptrio_limiter *lim,
                                              ptrio_limiter_token *tok,
                                              const void *borrower);

/* Gives the token back; the first waiter gets it if the total allows.
 * Returns 0, or -PTRIO_EPERM when `tok` is not borrowed from `lim`. */
int ptrio_limiter_release(ptrio_limiter *lim, ptrio_limiter_token *tok);

/* Changes the total: a larger one hands the new tokens to waiters now; a
 * smaller one lets the current borrowers finish. Not a checkpoint. */
void ptrio_limiter_set_total(ptrio_limiter *lim, unsigned total);

/* The total, and the tokens borrowed now. */
static inline unsigned ptrio_limiter_total(const ptrio_limiter *lim)
{
    return lim->total;
}

static inline unsigned ptrio_limiter_borrowed(const ptrio_limiter *lim)
{
    return lim->borrowed;
}

/* Tokens free now (0 while more are borrowed than the total;
 * PTRIO_LIMITER_INF for a limiter without limit, however many borrow). */
unsigned ptrio_limiter_available(const ptrio_limiter *lim);

/* Tasks blocked in acquire. */
unsigned ptrio_limiter_waiting(const ptrio_limiter *lim);

/* The borrowed tokens, oldest first: pass NULL first, then the previous
 * one; NULL after the last. ptrio_limiter_borrower tells whose it is. */
ptrio_limiter_token *ptrio_limiter_next(const ptrio_limiter *lim,
                                        const ptrio_limiter_token *tok);

/* Who holds `tok`: the task, or acquire_on_behalf_of's borrower. */
static inline const void *ptrio_limiter_borrower(
    const ptrio_limiter_token *tok)
{
    return tok->borrower;
}

/* ---- condition ------------------------------------------------------ */

/* A condition variable over a lock (Trio's Condition). */
typedef struct ptrio_condition {
    ptrio_lot waiters;
    ptrio_lock *lock;
} ptrio_condition;

/* A static initialiser: the condition bound to `lock` (a ptrio_lock *). */
#define PTRIO_CONDITION_INIT(lock) {{NULL}, (lock)}

/* Binds the condition to `lock`. Returns 0, or -PTRIO_EINVAL (NULL),
 * -PTRIO_EBUSY while tasks wait, or while the lock it had is held or
 * awaited (a notified waiter takes that one again). A waiter cancelled
 * but not yet resumed is in neither queue: it takes back the lock it
 * released, not the new one. */
int ptrio_condition_init(ptrio_condition *c, ptrio_lock *lock);

/* The lock's operations, through the condition: as ptrio_lock_acquire,
 * _acquire_nowait, _release and _locked, with their errors, and
 * -PTRIO_EINVAL for a condition without a lock (NULL, or never bound). */
PTRIO_NODISCARD int ptrio_condition_acquire(void *self, ptrio_condition *c);
int ptrio_condition_acquire_nowait(ptrio_condition *c);
int ptrio_condition_release(ptrio_condition *c);
bool ptrio_condition_locked(const ptrio_condition *c);

/* The frame of a condition wait (it releases, waits, and re-acquires even
 * when cancelled, so it is a coroutine of its own): embed one in the frame
 * that waits. Starts zeroed. */
typedef struct ptrio_condition_waiter {
    ptrio_frame fr;
    ptrio_condition *cond;
    ptrio_lock *lock;           /* the lock the wait released */
    int rc;
    ptrio_scope shield;
} ptrio_condition_waiter;

/* Releases the lock, waits for a notify, and holds the lock again when it
 * returns, also when it fails (Trio: cancellation waits for the lock).
 * Awaitable checkpoint. Errors: -PTRIO_EPERM (the caller does not hold
 * the lock; nothing done), -PTRIO_ECANCELED, -PTRIO_EBROKEN (the lock
 * broke meanwhile: then it is not held), -PTRIO_EINVAL (NULL `w`, or a
 * condition without a lock), -PTRIO_EBUSY (`w`
 * is in use), -PTRIO_ENOTASK, -PTRIO_EMISUSE (an earlier await's
 * PTRIO_PENDING was dropped); refused so, it does nothing. */
PTRIO_NODISCARD int ptrio_condition_wait(void *self, ptrio_condition *c,
                                         ptrio_condition_waiter *w);

/* Wakes up to `n` waiters (all: notify_all), in order; each then waits for
 * the lock. The caller must hold the lock. Returns how many it woke, or
 * -PTRIO_EPERM (the caller does not hold it), -PTRIO_EINVAL (a condition
 * without a lock). Not a checkpoint. */
int ptrio_condition_notify(ptrio_condition *c, unsigned n);
int ptrio_condition_notify_all(ptrio_condition *c);

/* Tasks blocked in wait (not yet notified). */
unsigned ptrio_condition_waiting(const ptrio_condition *c);

#ifdef __cplusplus
}
#endif

#endif /* PTRIO_SYNC_H */
