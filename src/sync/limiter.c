/* src/sync/limiter.c: Trio's CapacityLimiter on a parking lot.
 *
 * Each borrow is a caller-owned token in a circular list of borrowers, so
 * nothing allocates and statistics can list who holds what. A waiter parks
 * with its token as the wait's data; whoever frees a token links the first
 * waiter's token and wakes it holding it (a FIFO hand-off). */
#include <ptrio.h>

#include "misuse.h"

static int borrows(const ptrio_limiter *lim, const void *who)
{
    const ptrio_limiter_token *t = lim->borrowers;

    if (!t)
        return 0;
    do {
        if (t->borrower == who)
            return 1;
        t = t->next;
    } while (t != lim->borrowers);
    return 0;
}

/* Whether a parked task waits on behalf of another borrower. */
static int by_proxy(ptrio_task *t, const ptrio_limiter_token *k)
{
    return k->borrower != (const void *)t;
}

/* Whether `who` waits for a token: a walk of the waiters. A task
 * borrowing for itself is running, so only a wait on behalf of it (by
 * proxy) can name it: while the limiter counts none, it walks nothing.
 * A cancelled wait stays counted until a walk counts again. */
static int awaits(ptrio_limiter *lim, const void *who)
{
    ptrio_task *t;
    unsigned proxies = 0;
    int found = 0;

    if (who == ptrio_current_task() && !lim->proxies)
        return 0;
    for (t = ptrio_lot_first(&lim->waiters); t;
         t = ptrio_lot_next(&lim->waiters, t)) {
        const ptrio_limiter_token *k = ptrio_wait_data(t);
        if (k->borrower == who)
            found = 1;
        if (by_proxy(t, k))
            proxies++;
    }
    lim->proxies = proxies;
    return found;
}

static void link_token(ptrio_limiter *lim, ptrio_limiter_token *tok)
{
    ptrio_limiter_token *head = lim->borrowers;

    if (!head) {
        tok->next = tok->prev = tok;
        lim->borrowers = tok;
    } else {
        tok->next = head;
        tok->prev = head->prev;
        head->prev->next = tok;
        head->prev = tok;
    }
    tok->limiter = lim;
    tok->waiter = NULL;
    lim->borrowed++;
}

static void unlink_token(ptrio_limiter *lim, ptrio_limiter_token *tok)
{
    if (tok->next == tok) {
        lim->borrowers = NULL;
    } else {
        tok->prev->next = tok->next;
        tok->next->prev = tok->prev;
        if (lim->borrowers == tok)
            lim->borrowers = tok->next;
    }
    tok->next = tok->prev = NULL;
    tok->limiter = NULL;
    lim->borrowed--;
}

/* Hands the free tokens to the first waiters. */
static void wake_waiters(ptrio_limiter *lim)
{
    ptrio_task *t;

    while (lim->borrowed < lim->total &&
           (t = ptrio_lot_first(&lim->waiters))) {
        ptrio_limiter_token *k = ptrio_wait_data(t);
        if (by_proxy(t, k) && lim->proxies)
            lim->proxies--;
        link_token(lim, k);
        ptrio_lot_unpark(&lim->waiters, 0);
    }
}

int ptrio_limiter_init(ptrio_limiter *lim, unsigned total)
{
    if (!lim) {
        SYNC_MISUSE("initialising a NULL limiter");
        return -PTRIO_EINVAL;
    }
    if (lim->borrowers || !ptrio_lot_empty(&lim->waiters)) {
        SYNC_MISUSE("initialising a limiter that lends tokens or that "
                    "tasks wait on");
        return -PTRIO_EBUSY;
    }
    lim->total = total;
    lim->borrowed = 0;
    lim->proxies = 0;
    return 0;
}

/* Whether `tok` rides with a wait, of this limiter or another: a token
 * that parks notes its task, which is still parked with the token as its
 * wait's data while it waits. A cancelled wait leaves the note behind,
 * harmless: that task is no longer parked so (one read of it, no pointer
 * followed), and granting clears the note. */
static int in_a_wait(const ptrio_limiter_token *tok)
{
    return tok->waiter && ptrio_wait_data(tok->waiter) == tok;
}

/* The checks of every borrow: 0, or the error. */
static int bad_token(const ptrio_limiter *lim, const ptrio_limiter_token *tok)
{
    if (!lim || !tok) {
        SYNC_MISUSE("a NULL limiter or token");
        return -PTRIO_EINVAL;
    }
    if (tok->limiter || in_a_wait(tok)) {
        SYNC_MISUSE("borrowing with a token that is borrowed or awaited "
                    "already");
        return -PTRIO_EBUSY;
    }
    return 0;
}

static int take(ptrio_limiter *lim, ptrio_limiter_token *tok,
                const void *who)
{
    int rc = bad_token(lim, tok);

    if (rc < 0)
        return rc;
    if (borrows(lim, who) || awaits(lim, who)) {
        SYNC_MISUSE("this borrower holds or awaits one of the limiter's "
                    "tokens already");
        return -PTRIO_EDEADLK;
    }
    if (lim->borrowed >= lim->total || !ptrio_lot_empty(&lim->waiters))
        return -PTRIO_EWOULDBLOCK;
    tok->borrower = who;
    link_token(lim, tok);
    return 0;
}

int ptrio_limiter_acquire_on_behalf_of_nowait(ptrio_limiter *lim,
                                              ptrio_limiter_token *tok,
                                              const void *borrower)
{
    if (!borrower) {
        SYNC_MISUSE("borrowing on behalf of NULL");
        return -PTRIO_EINVAL;
    }
    return take(lim, tok, borrower);
}

int ptrio_limiter_acquire_nowait(ptrio_limiter *lim, ptrio_limiter_token *tok)
{
    ptrio_task *t = ptrio_current_task();
    return t ? take(lim, tok, t) : -PTRIO_ENOTASK;
}

/* The attempt of a blocking acquire: the borrower is in the token (NULL:
 * the calling task), which rides with the wait if it must. */
static int try_take(ptrio_task *t, void *lim, void *tok)
{
    ptrio_limiter_token *k = tok;

    if (!k->borrower)
        k->borrower = t;
    return take(lim, k, k->borrower);
}

static int acquire(void *self, ptrio_limiter *lim, ptrio_limiter_token *tok,
                   const void *who)
{
    int rc = bad_token(lim, tok);
    const void *was;

    if (rc < 0)
        return rc;
    was = tok->borrower;
    tok->borrower = who;
    rc = ptrio_park_unless(self, &lim->waiters, try_take, lim, tok);
    if (rc < 0 && rc != PTRIO_PENDING)
        tok->borrower = was;        /* no effect: cancelled, or refused */
    if (rc == PTRIO_PENDING && !tok->limiter) {
        tok->waiter = ptrio_current_task();     /* parked, not granted */
        if (by_proxy(tok->waiter, tok))
            lim->proxies++;
    }
    return rc;
}

int ptrio_limiter_acquire(void *self, ptrio_limiter *lim,
                          ptrio_limiter_token *tok)
{
    return acquire(self, lim, tok, NULL);
}

int ptrio_limiter_acquire_on_behalf_of(void *self, ptrio_limiter *lim,
                                       ptrio_limiter_token *tok,
                                       const void *borrower)
{
    if (!borrower) {
        SYNC_MISUSE("borrowing on behalf of NULL");
        return -PTRIO_EINVAL;
    }
    return acquire(self, lim, tok, borrower);
}

int ptrio_limiter_release(ptrio_limiter *lim, ptrio_limiter_token *tok)
{
    if (!lim || !tok || tok->limiter != lim) {
        SYNC_MISUSE("releasing a token that is not borrowed from this "
                    "limiter");
        return -PTRIO_EPERM;
    }
    unlink_token(lim, tok);
    wake_waiters(lim);
    return 0;
}

void ptrio_limiter_set_total(ptrio_limiter *lim, unsigned total)
{
    if (!lim) {
        SYNC_MISUSE("a NULL limiter");
        return;
    }
    lim->total = total;
    wake_waiters(lim);
}

unsigned ptrio_limiter_available(const ptrio_limiter *lim)
{
    if (lim->total == PTRIO_LIMITER_INF)     /* Trio: inf - n is inf */
        return PTRIO_LIMITER_INF;
    return lim->total > lim->borrowed ? lim->total - lim->borrowed : 0;
}

unsigned ptrio_limiter_waiting(const ptrio_limiter *lim)
{
    return ptrio_lot_count(&lim->waiters);
}

ptrio_limiter_token *ptrio_limiter_next(const ptrio_limiter *lim,
                                        const ptrio_limiter_token *tok)
{
    if (!tok)
        return lim->borrowers;
    return tok->next == lim->borrowers ? NULL : tok->next;
}
