/* tests/check_sync.c: events, locks, semaphores, capacity limiters and
 * conditions: fairness, hand-off, cancellation while parked, Trio's
 * checkpoint rules for every blocking call (and none for the others),
 * statistics, a lock whose holder exits holding it, misuse errors, and
 * Trio's generic lock tests run over every lock-like object (channels
 * included). Where a test has a twin in Python Trio
 * (trio/_tests/test_sync.py) the comment above it names it. Portable: no
 * POSIX calls; all time is on the virtual clock. */
#include "synctest.h"

/* Every test's fixture lives in one static block the tests share (they
 * run one at a time), so that the suite fits the micro:bit's 16 KiB:
 * side by side, the fixtures alone would fill it. FIXTURE(type) gives the
 * block zeroed, as a `type`. */
#ifndef TEST_CONF_FIXTURE_MAX
#define TEST_CONF_FIXTURE_MAX (512 * sizeof(void *))
#endif
static union {
    long double ld;
    long long ll;
    void *p;
    unsigned char b[TEST_CONF_FIXTURE_MAX];
} fixture_block;

static void *fixture(size_t size)
{
    ck_assert_uint_le(size, sizeof fixture_block);
    memset(&fixture_block, 0, size);
    return &fixture_block;
}
#define FIXTURE(type) ((type *)fixture(sizeof(type)))

/* ---- checkpoint rules, for every blocking call ---------------------------
 *
 * Trio: a blocking call is a checkpoint even when it need not block: it
 * lets other tasks run (a schedule point), and inside a cancelled scope it
 * fails with -ECANCELED and has no effect (a cancel point). The *_nowait
 * calls, releases, set and notify are neither. */

struct cp_ctx {
    ptrio_event e;
    ptrio_lock lk, clk;
    ptrio_semaphore s;
    ptrio_limiter lim;
    ptrio_limiter_token tok;
    ptrio_condition c;
    int other;              /* a borrower that is not a task */
};

struct cp_case {
    const char *name;
    void (*setup)(struct cp_ctx *x);            /* so that op need not block */
    int (*op)(void *self, struct cp_ctx *x);    /* the blocking call */
    int (*nowait)(struct cp_ctx *x);            /* its non-blocking twin */
    int (*took)(struct cp_ctx *x);              /* whether it had effect */
    int (*undo)(struct cp_ctx *x);              /* not a checkpoint either */
};

static void set_event(struct cp_ctx *x) { ptrio_event_set(&x->e); }
static int wait_event(void *self, struct cp_ctx *x)
{
    return ptrio_event_wait(self, &x->e);
}
static int event_nowait(struct cp_ctx *x)
{
    x->e = (ptrio_event){0};
    ptrio_event_set(&x->e);
    return 0;
}
static int event_took(struct cp_ctx *x) { return ptrio_event_is_set(&x->e); }
static int event_undo(struct cp_ctx *x) { (void)x; return 0; }

static void no_setup(struct cp_ctx *x) { (void)x; }
static int lock_op(void *self, struct cp_ctx *x)
{
    return ptrio_lock_acquire(self, &x->lk);
}
static int lock_nowait(struct cp_ctx *x)
{
    return ptrio_lock_acquire_nowait(&x->lk);
}
static int lock_took(struct cp_ctx *x) { return ptrio_lock_locked(&x->lk); }
static int lock_undo(struct cp_ctx *x) { return ptrio_lock_release(&x->lk); }

static void sem_setup(struct cp_ctx *x) { ptrio_semaphore_init(&x->s, 1, 0); }
static int sem_op(void *self, struct cp_ctx *x)
{
    return ptrio_semaphore_acquire(self, &x->s);
}
static int sem_nowait(struct cp_ctx *x)
{
    return ptrio_semaphore_acquire_nowait(&x->s);
}
static int sem_took(struct cp_ctx *x) { return ptrio_semaphore_value(&x->s) == 0; }
static int sem_undo(struct cp_ctx *x) { return ptrio_semaphore_release(&x->s); }

static void lim_setup(struct cp_ctx *x) { ptrio_limiter_init(&x->lim, 1); }
static int lim_op(void *self, struct cp_ctx *x)
{
    return ptrio_limiter_acquire(self, &x->lim, &x->tok);
}
static int lim_nowait(struct cp_ctx *x)
{
    return ptrio_limiter_acquire_nowait(&x->lim, &x->tok);
}
static int lim_took(struct cp_ctx *x) { return ptrio_limiter_borrowed(&x->lim); }
static int lim_undo(struct cp_ctx *x)
{
    return ptrio_limiter_release(&x->lim, &x->tok);
}

static int limb_op(void *self, struct cp_ctx *x)
{
    return ptrio_limiter_acquire_on_behalf_of(self, &x->lim, &x->tok,
                                              &x->other);
}
static int limb_nowait(struct cp_ctx *x)
{
    return ptrio_limiter_acquire_on_behalf_of_nowait(&x->lim, &x->tok,
                                                     &x->other);
}

static void cond_setup(struct cp_ctx *x) { ptrio_condition_init(&x->c, &x->clk); }
static int cond_op(void *self, struct cp_ctx *x)
{
    return ptrio_condition_acquire(self, &x->c);
}
static int cond_nowait(struct cp_ctx *x)
{
    return ptrio_condition_acquire_nowait(&x->c);
}
static int cond_took(struct cp_ctx *x) { return ptrio_condition_locked(&x->c); }
static int cond_undo(struct cp_ctx *x) { return ptrio_condition_release(&x->c); }

static const struct cp_case cp_cases[] = {
    {"event", set_event, wait_event, event_nowait, event_took, event_undo},
    {"lock", no_setup, lock_op, lock_nowait, lock_took, lock_undo},
    {"sem", sem_setup, sem_op, sem_nowait, sem_took, sem_undo},
    {"lim", lim_setup, lim_op, lim_nowait, lim_took, lim_undo},
    {"limb", lim_setup, limb_op, limb_nowait, lim_took, lim_undo},
    {"cond", cond_setup, cond_op, cond_nowait, cond_took, cond_undo},
};
#define NCASES (int)(sizeof cp_cases / sizeof cp_cases[0])

struct cp_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct marker mk;
    ptrio_scope sc;
    struct cp_ctx x;
    const struct cp_case *c;
    int i, rc;
};

static int cp_main(ptrio_frame *fr)
{
    struct cp_main *f = PTRIO_SELF(fr, struct cp_main);
    PTRIO_BEGIN(f);
    for (f->i = 0; f->i < NCASES; f->i++) {
        f->c = &cp_cases[f->i];
        memset(&f->x, 0, sizeof f->x);
        /* A schedule point: the marker started before runs during it. */
        f->c->setup(&f->x);
        PTRIO_NURSERY(f, &f->n) {
            f->mk = (struct marker){.name = "m"};
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, marker, &f->mk));
            ev(f->c->name, "<");
            PTRIO_TRY(f, f->rc, f->c->op(f, &f->x));
            ev(f->c->name, ">");
        }
        EXPECT(f->rc == 0);
        EXPECT(f->c->took(&f->x));
        EXPECT(f->c->undo(&f->x) == 0);
        /* A cancel point: fails, no effect. */
        memset(&f->x, 0, sizeof f->x);
        f->c->setup(&f->x);
        PTRIO_CANCEL_SCOPE(f, &f->sc) {
            ptrio_cancel(&f->sc);
            PTRIO_TRY(f, f->rc, f->c->op(f, &f->x));
            EXPECT(f->rc == -PTRIO_ECANCELED);
            if (f->i > 0)       /* the event was set by setup */
                EXPECT(!f->c->took(&f->x));
        }
        /* The nowait twin: neither a schedule point nor a cancel point. */
        memset(&f->x, 0, sizeof f->x);
        f->c->setup(&f->x);
        PTRIO_NURSERY(f, &f->n) {
            f->mk = (struct marker){.name = "m"};
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, marker, &f->mk));
            PTRIO_CANCEL_SCOPE(f, &f->sc) {
                ptrio_cancel(&f->sc);
                ev(f->c->name, "[");
                EXPECT(f->c->nowait(&f->x) == 0);
                EXPECT(f->c->took(&f->x));
                EXPECT(f->c->undo(&f->x) == 0);
                ev(f->c->name, "]");
            }
        }
    }
    PTRIO_END(f);
}

/* Every blocking call is a full checkpoint even when it need not block;
 * cancelled, it has no effect; the nowait calls and releases are never
 * checkpoints.
 * Trio test_sync.py: the assert_checkpoints() blocks of test_Event,
 * test_CapacityLimiter, test_Semaphore, test_Lock_and_StrictFIFOLock,
 * test_Condition */
START_TEST(test_checkpoint_rules)
{
    struct cp_main *m = FIXTURE(struct cp_main);
    RUN_MAIN(cp_main, *m, 0);
    ck_assert_str_eq(L.buf,
        "event<@0 m@0 event>@0 event[@0 event]@0 m@0 "
        "lock<@0 m@0 lock>@0 lock[@0 lock]@0 m@0 "
        "sem<@0 m@0 sem>@0 sem[@0 sem]@0 m@0 "
        "lim<@0 m@0 lim>@0 lim[@0 lim]@0 m@0 "
        "limb<@0 m@0 limb>@0 limb[@0 limb]@0 m@0 "
        "cond<@0 m@0 cond>@0 cond[@0 cond]@0 m@0");
}
END_TEST

/* ---- event ----------------------------------------------------------------- */

/* Waits on `e` in its own cancel scope, logging. */
struct ewaiter {
    ptrio_frame fr;
    const char *name;
    ptrio_event *e;
    ptrio_scope sc;
    int rc;
};

static int ewaiter(ptrio_frame *fr)
{
    struct ewaiter *f = PTRIO_SELF(fr, struct ewaiter);
    PTRIO_BEGIN(f);
    PTRIO_CANCEL_SCOPE(f, &f->sc) {
        ev(f->name, "+");
        PTRIO_TRY(f, f->rc, ptrio_event_wait(f, f->e));
        ev_rc(f->name, f->rc);
    }
    PTRIO_END(f);
}

struct event_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[3];
    struct ewaiter w[3];
    ptrio_event e;
    ptrio_scope sc;
    int i;
};

static int event_main(ptrio_frame *fr)
{
    struct event_main *f = PTRIO_SELF(fr, struct event_main);
    PTRIO_BEGIN(f);
    EXPECT(!ptrio_event_is_set(&f->e));
    EXPECT(ptrio_event_waiting(&f->e) == 0);
    ptrio_event_set(&f->e);
    EXPECT(ptrio_event_is_set(&f->e));
    PTRIO_AWAIT(f, ptrio_event_wait(f, &f->e));
    f->e = (ptrio_event){0};
    PTRIO_NURSERY(f, &f->n) {
        for (f->i = 0; f->i < 3; f->i++) {
            f->w[f->i] = (struct ewaiter){.name = names[f->i], .e = &f->e};
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[f->i], ewaiter,
                                            &f->w[f->i]));
        }
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(ptrio_event_waiting(&f->e) == 3);
        /* Cancelled while waiting: out of the event, the others stay. */
        ptrio_cancel(&f->w[1].sc);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(ptrio_event_waiting(&f->e) == 2);
        /* set is not a checkpoint: it works in a cancelled scope. */
        PTRIO_CANCEL_SCOPE(f, &f->sc) {
            ptrio_cancel(&f->sc);
            ptrio_event_set(&f->e);
            ptrio_event_set(&f->e);
            ev("set", "");
        }
        EXPECT(ptrio_event_waiting(&f->e) == 0);
    }
    EXPECT(ptrio_event_is_set(&f->e));
    PTRIO_END(f);
}

/* Trio test_sync.py: test_Event */
START_TEST(test_event)
{
    struct event_main *m = FIXTURE(struct event_main);
    RUN_MAIN(event_main, *m, 0);
    ck_assert_str_eq(L.buf, "p0+@0 p1+@0 p2+@0 p1!PTRIO_ECANCELED@1 set@2 "
                            "p0=0@2 p2=0@2");
}
END_TEST

/* ---- lock ------------------------------------------------------------------ */

/* Acquires `lk` in its own cancel scope, holds it for `hold` (forever:
 * until cancelled), and releases it in FINALLY unless `keep`. Logs
 * "<name>+" before the acquire, "<name>*" holding it, and how it ended
 * (its own scope's cancellation as -ECANCELED). */
struct holder {
    ptrio_frame fr;
    const char *name;
    ptrio_lock *lk;
    ptrio_time hold;
    int keep;
    ptrio_scope sc;
    int held;
};

static int holder(ptrio_frame *fr)
{
    struct holder *f = PTRIO_SELF(fr, struct holder);
    PTRIO_BEGIN(f);
    PTRIO_CANCEL_SCOPE(f, &f->sc) {
        ev(f->name, "+");
        PTRIO_AWAIT(f, ptrio_lock_acquire(f, f->lk));
        f->held = 1;
        ev(f->name, "*");
        PTRIO_AWAIT(f, ptrio_sleep(f, f->hold));
    }
    PTRIO_FINALLY(f);
    if (f->held && !f->keep)
        ptrio_lock_release(f->lk);
    f->held = 0;
    ev_rc(f->name, ptrio_cancelled_caught(&f->sc) ? -PTRIO_ECANCELED
                                                   : PTRIO_FINALLY_ERROR(f));
    PTRIO_END(f);
}

struct lock_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[4];
    struct holder h[4];
    ptrio_lock lk;
    ptrio_lock_stats st;
    ptrio_scope sc;
    int i, rc;
};

static void start_holder(struct lock_main *f, int i, ptrio_time hold,
                         int keep)
{
    f->h[i] = (struct holder){.name = names[i], .lk = &f->lk, .hold = hold,
                              .keep = keep};
    EXPECT(ptrio_start_soon(&f->n, &f->t[i], holder, &f->h[i]) == 0);
}

static int lock_main(ptrio_frame *fr)
{
    struct lock_main *f = PTRIO_SELF(fr, struct lock_main);
    PTRIO_BEGIN(f);
    EXPECT(!ptrio_lock_locked(&f->lk));
    PTRIO_AWAIT(f, ptrio_lock_acquire(f, &f->lk));
    EXPECT(ptrio_lock_locked(&f->lk));
    EXPECT(ptrio_lock_release(&f->lk) == 0);
    EXPECT(!ptrio_lock_locked(&f->lk));
    EXPECT(ptrio_lock_acquire_nowait(&f->lk) == 0);
    EXPECT(ptrio_lock_release(&f->lk) == 0);
    PTRIO_NURSERY(f, &f->n) {
        start_holder(f, 0, PTRIO_TIME_INF, 0);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(ptrio_lock_locked(&f->lk));
        EXPECT(ptrio_lock_acquire_nowait(&f->lk) == -PTRIO_EWOULDBLOCK);
        ptrio_lock_statistics(&f->lk, &f->st);
        EXPECT(f->st.locked && !f->st.broken);
        EXPECT(f->st.owner == &f->t[0]);
        EXPECT(f->st.waiting == 0);
        start_holder(f, 1, PTRIO_TIME_INF, 0);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        ptrio_lock_statistics(&f->lk, &f->st);
        EXPECT(f->st.waiting == 1);
        ptrio_nursery_cancel(&f->n);
    }
    ptrio_lock_statistics(&f->lk, &f->st);
    EXPECT(!f->st.locked && !f->st.broken);
    EXPECT(f->st.owner == NULL);
    EXPECT(f->st.waiting == 0);
    EXPECT(ptrio_current_loop()->lot_owners == NULL);
    PTRIO_END(f);
}

/* Trio test_sync.py: test_Lock_and_StrictFIFOLock */
START_TEST(test_lock)
{
    struct lock_main *m = FIXTURE(struct lock_main);
    RUN_MAIN(lock_main, *m, 0);
    ck_assert_str_eq(L.buf, "p0+@0 p0*@0 p1+@1 p0!PTRIO_ECANCELED@2 "
                            "p1!PTRIO_ECANCELED@2");
}
END_TEST

static int handoff_main(ptrio_frame *fr)
{
    struct lock_main *f = PTRIO_SELF(fr, struct lock_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        /* p0 holds it 10 ms; p1, p2, p3 queue (p2 gets cancelled). */
        for (f->i = 0; f->i < 4; f->i++) {
            start_holder(f, f->i, PTRIO_MS(10), 0);
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        }
        ptrio_lock_statistics(&f->lk, &f->st);
        EXPECT(f->st.owner == &f->t[0] && f->st.waiting == 3);
        /* Cancelled in its acquire, p2 is only taken out of the queue. */
        ptrio_cancel(&f->h[2].sc);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(7)));
        /* At 10 p0 releases: p1 holds it at once (a hand-off): nobody
         * can barge in, not even with acquire_nowait. */
        EXPECT(ptrio_lock_owner(&f->lk) == &f->t[1]);
        EXPECT(ptrio_lock_acquire_nowait(&f->lk) == -PTRIO_EWOULDBLOCK);
    }
    PTRIO_END(f);
}

/* FIFO hand-off: each release passes the lock to the first waiter. */
START_TEST(test_lock_handoff)
{
    struct lock_main *m = FIXTURE(struct lock_main);
    RUN_MAIN(handoff_main, *m, 0);
    ck_assert_str_eq(L.buf,
        "p0+@0 p0*@0 p1+@1 p2+@2 p3+@3 p2!PTRIO_ECANCELED@4 p0=0@10 "
        "p1*@10 p1=0@20 p3*@20 p3=0@30");
}
END_TEST

static int broken_main(ptrio_frame *fr)
{
    struct lock_main *f = PTRIO_SELF(fr, struct lock_main);
    PTRIO_BEGIN(f);
    PTRIO_TRY_BLOCK(f, &f->sc) {
        PTRIO_NURSERY(f, &f->n) {
            /* p0 takes the lock and exits holding it at 5 ms; p1 and p2
             * wait for it. */
            start_holder(f, 0, PTRIO_MS(5), 1);
            start_holder(f, 1, PTRIO_MS(1), 0);
            start_holder(f, 2, PTRIO_MS(1), 0);
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
            EXPECT(ptrio_current_loop()->lot_owners == &f->lk.lot);
        }
    }
    EXPECT(ptrio_scope_error(&f->sc) == -PTRIO_EGROUP);
    EXPECT(ptrio_current_loop()->lot_owners == NULL);
    ptrio_lock_statistics(&f->lk, &f->st);
    EXPECT(f->st.locked && f->st.broken);
    EXPECT(f->st.owner == NULL && f->st.waiting == 0);
    EXPECT(ptrio_lock_locked(&f->lk));
    EXPECT(ptrio_lock_acquire_nowait(&f->lk) == -PTRIO_EBROKEN);
    PTRIO_TRY(f, f->rc, ptrio_lock_acquire(f, &f->lk));
    EXPECT(f->rc == -PTRIO_EBROKEN);
    PTRIO_END(f);
}

/* A task that exits holding the lock breaks it: its waiters and every
 * later acquire fail with -PTRIO_EBROKEN; the nursery sees those failures.
 * Trio test_sync.py: test_lock_acquire_unowned_lock,
 * test_lock_multiple_acquire */
START_TEST(test_lock_holder_exits)
{
    struct lock_main *m = FIXTURE(struct lock_main);
    reset();
    memset(m, 0, sizeof *m);
    ck_assert_int_eq(run_virtual(broken_main, m, NULL), 0);
    ck_expect_ok();
    ck_assert_str_eq(L.buf, "p0+@0 p1+@0 p2+@0 p0*@0 p0=0@5 "
                            "p1!PTRIO_EBROKEN@5 p2!PTRIO_EBROKEN@5");
}
END_TEST

static int handover_main(ptrio_frame *fr)
{
    struct lock_main *f = PTRIO_SELF(fr, struct lock_main);
    PTRIO_BEGIN(f);
    EXPECT(ptrio_lock_acquire_nowait(&f->lk) == 0);
    EXPECT(ptrio_current_loop()->lot_owners == &f->lk.lot);
    EXPECT(ptrio_lock_owner(&f->lk) == ptrio_current_task());
    PTRIO_TRY_BLOCK(f, &f->sc) {
        PTRIO_NURSERY(f, &f->n) {
            start_holder(f, 0, PTRIO_MS(1), 1);     /* exits holding it */
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
            EXPECT(ptrio_lock_release(&f->lk) == 0);
            EXPECT(ptrio_lock_owner(&f->lk) == &f->t[0]);
            EXPECT(ptrio_current_loop()->lot_owners == &f->lk.lot);
        }
    }
    EXPECT(ptrio_scope_error(&f->sc) == 0);
    EXPECT(ptrio_lot_broken(&f->lk.lot.lot));
    EXPECT(ptrio_current_loop()->lot_owners == NULL);
    PTRIO_END(f);
}

/* Released with a waiter, the lock (and what breaks when its holder
 * exits) goes to the waiter. Trio test_sync.py: test_lock_handover */
START_TEST(test_lock_handover)
{
    struct lock_main *m = FIXTURE(struct lock_main);
    RUN_MAIN(handover_main, *m, 0);
    ck_assert_str_eq(L.buf, "p0+@0 p0*@1 p0=0@2");
}
END_TEST

/* ---- semaphore ------------------------------------------------------------- */

/* Acquires `s`, logs, and keeps it. */
struct sacq {
    ptrio_frame fr;
    const char *name;
    ptrio_semaphore *s;
    ptrio_scope sc;
    int rc;
};

static int sacq(ptrio_frame *fr)
{
    struct sacq *f = PTRIO_SELF(fr, struct sacq);
    PTRIO_BEGIN(f);
    PTRIO_CANCEL_SCOPE(f, &f->sc) {
        ev(f->name, "+");
        PTRIO_TRY(f, f->rc, ptrio_semaphore_acquire(f, f->s));
        ev_rc(f->name, f->rc);
    }
    PTRIO_END(f);
}

struct sem_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[3];
    struct sacq a[3];
    ptrio_semaphore s, bs;
    int i;
};

static int sem_main(ptrio_frame *fr)
{
    struct sem_main *f = PTRIO_SELF(fr, struct sem_main);
    PTRIO_BEGIN(f);
    EXPECT(ptrio_semaphore_init(&f->s, 1, 0) == 0);
    EXPECT(ptrio_semaphore_value(&f->s) == 1);
    EXPECT(ptrio_semaphore_max(&f->s) == 0);
    EXPECT(ptrio_semaphore_release(&f->s) == 0);
    EXPECT(ptrio_semaphore_value(&f->s) == 2);
    EXPECT(ptrio_semaphore_waiting(&f->s) == 0);
    EXPECT(ptrio_semaphore_acquire_nowait(&f->s) == 0);
    EXPECT(ptrio_semaphore_value(&f->s) == 1);
    PTRIO_AWAIT(f, ptrio_semaphore_acquire(f, &f->s));
    EXPECT(ptrio_semaphore_value(&f->s) == 0);
    EXPECT(ptrio_semaphore_acquire_nowait(&f->s) == -PTRIO_EWOULDBLOCK);
    PTRIO_NURSERY(f, &f->n) {
        for (f->i = 0; f->i < 3; f->i++) {
            f->a[f->i] = (struct sacq){.name = names[f->i], .s = &f->s};
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[f->i], sacq,
                                            &f->a[f->i]));
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        }
        EXPECT(ptrio_semaphore_waiting(&f->s) == 3);
        ptrio_cancel(&f->a[0].sc);
        EXPECT(ptrio_semaphore_waiting(&f->s) == 2);
        /* Fairness: a release with waiters hands the unit over. */
        EXPECT(ptrio_semaphore_release(&f->s) == 0);
        EXPECT(ptrio_semaphore_value(&f->s) == 0);
        EXPECT(ptrio_semaphore_acquire_nowait(&f->s) == -PTRIO_EWOULDBLOCK);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(ptrio_semaphore_release(&f->s) == 0);
    }
    EXPECT(ptrio_semaphore_value(&f->s) == 0);
    /* Bounded: releasing beyond the maximum is refused. */
    f->bs = (ptrio_semaphore)PTRIO_SEMAPHORE_INIT(0, 1);
    EXPECT(ptrio_semaphore_release(&f->bs) == 0);
    EXPECT(ptrio_semaphore_value(&f->bs) == 1);
    EXPECT(ptrio_semaphore_acquire_nowait(&f->bs) == 0);
    EXPECT(ptrio_semaphore_release(&f->bs) == 0);
    EXPECT(ptrio_semaphore_value(&f->bs) == 1);
    PTRIO_END(f);
}

/* Trio test_sync.py: test_Semaphore, test_Semaphore_bounded (the refused
 * release is in test_sem_released_too_many_times) */
START_TEST(test_semaphore)
{
    struct sem_main *m = FIXTURE(struct sem_main);
    RUN_MAIN(sem_main, *m, 0);
    ck_assert_str_eq(L.buf, "p0+@0 p1+@1 p2+@2 p0!PTRIO_ECANCELED@3 "
                            "p1=0@3 p2=0@4");
}
END_TEST

/* ---- capacity limiter -------------------------------------------------------- */

/* Borrows a token of `lim` on behalf of `who` (itself when NULL), logs,
 * then returns keeping it (a borrow outlives its task, as in Trio's
 * acquire_on_behalf_of). */
struct borrower {
    ptrio_frame fr;
    const char *name;
    ptrio_limiter *lim;
    const void *who;
    ptrio_limiter_token tok;
    int rc;
};

static int borrower(ptrio_frame *fr)
{
    struct borrower *f = PTRIO_SELF(fr, struct borrower);
    PTRIO_BEGIN(f);
    ev(f->name, "+");
    if (f->who)
        PTRIO_TRY(f, f->rc, ptrio_limiter_acquire_on_behalf_of(
                                f, f->lim, &f->tok, f->who));
    else
        PTRIO_TRY(f, f->rc, ptrio_limiter_acquire(f, f->lim, &f->tok));
    ev_rc(f->name, f->rc);
    PTRIO_END(f);
}

static const int vals[8];

struct lim_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[8];
    struct borrower b[8];
    ptrio_limiter c;
    ptrio_limiter_token tok, tok2, tok3;
    ptrio_scope sc;
    int i;
};

/* The borrowers of `lim` are vals[i] for the bits of `mask`, in order. */
static int borrowers_are(const ptrio_limiter *lim, unsigned mask)
{
    ptrio_limiter_token *t = NULL;
    unsigned seen = 0;

    while ((t = ptrio_limiter_next(lim, t))) {
        const int *v = ptrio_limiter_borrower(t);
        if (v < vals || v >= vals + 8)
            return 0;
        seen |= 1u << (v - vals);
    }
    return seen == mask;
}

static void start_borrower(struct lim_main *f, int i)
{
    f->b[i] = (struct borrower){.name = names[i], .lim = &f->c,
                                .who = &vals[i]};
    EXPECT(ptrio_start_soon(&f->n, &f->t[i], borrower, &f->b[i]) == 0);
}

static int lim_main(ptrio_frame *fr)
{
    struct lim_main *f = PTRIO_SELF(fr, struct lim_main);
    PTRIO_BEGIN(f);
    f->c = (ptrio_limiter)PTRIO_LIMITER_INIT(2);
    EXPECT(ptrio_limiter_total(&f->c) == 2);
    EXPECT(ptrio_limiter_borrowed(&f->c) == 0);
    EXPECT(ptrio_limiter_available(&f->c) == 2);
    EXPECT(ptrio_limiter_acquire_nowait(&f->c, &f->tok) == 0);
    EXPECT(ptrio_limiter_borrowed(&f->c) == 1);
    EXPECT(ptrio_limiter_available(&f->c) == 1);
    EXPECT(ptrio_limiter_next(&f->c, NULL) == &f->tok);
    EXPECT(ptrio_limiter_borrower(&f->tok) == ptrio_current_task());
    EXPECT(ptrio_limiter_next(&f->c, &f->tok) == NULL);
    EXPECT(ptrio_limiter_waiting(&f->c) == 0);
    /* On behalf of someone else, though: */
    PTRIO_AWAIT(f, ptrio_limiter_acquire_on_behalf_of(f, &f->c, &f->tok2,
                                                      &vals[7]));
    EXPECT(ptrio_limiter_borrowed(&f->c) == 2);
    EXPECT(ptrio_limiter_acquire_on_behalf_of_nowait(&f->c, &f->tok3,
                                                     &vals[6]) ==
           -PTRIO_EWOULDBLOCK);
    EXPECT(ptrio_limiter_release(&f->c, &f->tok) == 0);
    EXPECT(borrowers_are(&f->c, 1u << 7));
    EXPECT(ptrio_limiter_release(&f->c, &f->tok2) == 0);
    EXPECT(ptrio_limiter_borrowed(&f->c) == 0);
    PTRIO_AWAIT(f, ptrio_limiter_acquire(f, &f->c, &f->tok));
    EXPECT(ptrio_limiter_borrowed(&f->c) == 1);
    EXPECT(ptrio_limiter_release(&f->c, &f->tok) == 0);
    /* Fairness: a freed token goes to the waiter. */
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_AWAIT(f, ptrio_limiter_acquire_on_behalf_of(f, &f->c, &f->tok,
                                                          &vals[1]));
        PTRIO_AWAIT(f, ptrio_limiter_acquire_on_behalf_of(f, &f->c,
                                                          &f->tok2,
                                                          &vals[2]));
        start_borrower(f, 3);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(ptrio_limiter_borrowed(&f->c) == 2);
        EXPECT(ptrio_limiter_waiting(&f->c) == 1);
        EXPECT(ptrio_limiter_release(&f->c, &f->tok2) == 0);
        EXPECT(ptrio_limiter_borrowed(&f->c) == 2);
        EXPECT(ptrio_limiter_acquire_nowait(&f->c, &f->tok3) ==
               -PTRIO_EWOULDBLOCK);
    }
    EXPECT(borrowers_are(&f->c, 1u << 1 | 1u << 3));
    EXPECT(ptrio_limiter_release(&f->c, &f->b[3].tok) == 0);
    EXPECT(ptrio_limiter_release(&f->c, &f->tok) == 0);
    /* No limit. */
    ptrio_limiter_init(&f->c, PTRIO_LIMITER_INF);
    EXPECT(ptrio_limiter_acquire_nowait(&f->c, &f->tok) == 0);
    EXPECT(ptrio_limiter_available(&f->c) == PTRIO_LIMITER_INF);
    EXPECT(ptrio_limiter_release(&f->c, &f->tok) == 0);
    PTRIO_END(f);
}

/* Trio test_sync.py: test_CapacityLimiter, test_CapacityLimiter_inf */
START_TEST(test_limiter)
{
    struct lim_main *m = FIXTURE(struct lim_main);
    RUN_MAIN(lim_main, *m, 0);
    ck_assert_str_eq(L.buf, "p3+@0 p3=0@1");
}
END_TEST

static int lim_total_main(ptrio_frame *fr)
{
    struct lim_main *f = PTRIO_SELF(fr, struct lim_main);
    PTRIO_BEGIN(f);
    ptrio_limiter_init(&f->c, 2);
    PTRIO_NURSERY(f, &f->n) {
        for (f->i = 0; f->i < 5; f->i++) {
            start_borrower(f, f->i);
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        }
        EXPECT(borrowers_are(&f->c, 0x03));
        EXPECT(ptrio_limiter_waiting(&f->c) == 3);
        ptrio_limiter_set_total(&f->c, 4);
        EXPECT(borrowers_are(&f->c, 0x0f));
        EXPECT(ptrio_limiter_waiting(&f->c) == 1);
        ptrio_limiter_set_total(&f->c, 1);
        EXPECT(ptrio_limiter_borrowed(&f->c) == 4);
        EXPECT(ptrio_limiter_total(&f->c) == 1);
        EXPECT(ptrio_limiter_available(&f->c) == 0);
        for (f->i = 0; f->i < 3; f->i++)
            EXPECT(ptrio_limiter_release(&f->c, &f->b[f->i].tok) == 0);
        EXPECT(borrowers_are(&f->c, 0x08));
        EXPECT(ptrio_limiter_waiting(&f->c) == 1);
        EXPECT(ptrio_limiter_release(&f->c, &f->b[3].tok) == 0);
        EXPECT(borrowers_are(&f->c, 0x10));
        EXPECT(ptrio_limiter_waiting(&f->c) == 0);
        EXPECT(ptrio_limiter_release(&f->c, &f->b[4].tok) == 0);
        /* Zero tokens: nobody gets through until there are some. */
        ptrio_limiter_set_total(&f->c, 0);
        EXPECT(ptrio_limiter_acquire_nowait(&f->c, &f->tok) ==
               -PTRIO_EWOULDBLOCK);
        start_borrower(f, 6);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(ptrio_limiter_waiting(&f->c) == 1);
        EXPECT(borrowers_are(&f->c, 0));
        ptrio_limiter_set_total(&f->c, 1);
        EXPECT(ptrio_limiter_waiting(&f->c) == 0);
        EXPECT(borrowers_are(&f->c, 1u << 6));
        EXPECT(ptrio_limiter_release(&f->c, &f->b[6].tok) == 0);
        /* A cancelled waiter leaves nothing behind (Trio #548). */
        ptrio_limiter_set_total(&f->c, 0);
        start_borrower(f, 5);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        ptrio_nursery_cancel(&f->n);
    }
    EXPECT(ptrio_limiter_waiting(&f->c) == 0);
    EXPECT(ptrio_limiter_borrowed(&f->c) == 0);
    EXPECT(f->b[5].tok.limiter == NULL);
    /* ...and its token borrows again at once */
    ptrio_limiter_set_total(&f->c, 1);
    EXPECT(ptrio_limiter_acquire_nowait(&f->c, &f->b[5].tok) == 0);
    EXPECT(ptrio_limiter_release(&f->c, &f->b[5].tok) == 0);
    PTRIO_END(f);
}

/* Trio test_sync.py: test_CapacityLimiter_change_total_tokens,
 * test_CapacityLimiter_zero_limit_tokens, test_CapacityLimiter_memleak_548 */
START_TEST(test_limiter_total_tokens)
{
    struct lim_main *m = FIXTURE(struct lim_main);
    RUN_MAIN(lim_total_main, *m, 0);
    ck_assert_str_eq(L.buf,
        "p0+@0 p0=0@0 p1+@1 p1=0@1 p2+@2 p3+@3 p4+@4 p2=0@5 p3=0@5 p4=0@5 "
        "p6+@5 p6=0@6 p5+@6 p5!PTRIO_ECANCELED@7");
}
END_TEST

static int lim_zero_main(ptrio_frame *fr)
{
    struct lim_main *f = PTRIO_SELF(fr, struct lim_main);
    PTRIO_BEGIN(f);
    ptrio_limiter_init(&f->c, 1);
    PTRIO_NURSERY(f, &f->n) {
        /* vals[0] holds the one token; p1 waits for it; the total drops
         * to 0 meanwhile. */
        PTRIO_AWAIT(f, ptrio_limiter_acquire_on_behalf_of(f, &f->c, &f->tok,
                                                          &vals[0]));
        start_borrower(f, 1);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        ptrio_limiter_set_total(&f->c, 0);
        EXPECT(borrowers_are(&f->c, 1u << 0));
        /* Given back, the token is not handed on: there are 0 now. */
        EXPECT(ptrio_limiter_release(&f->c, &f->tok) == 0);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(borrowers_are(&f->c, 0));
        EXPECT(ptrio_limiter_borrowed(&f->c) == 0);
        EXPECT(ptrio_limiter_waiting(&f->c) == 1);
        EXPECT(ptrio_limiter_available(&f->c) == 0);
        /* One token again: p1 gets it. */
        ptrio_limiter_set_total(&f->c, 1);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(borrowers_are(&f->c, 1u << 1));
        EXPECT(ptrio_limiter_waiting(&f->c) == 0);
        EXPECT(ptrio_limiter_release(&f->c, &f->b[1].tok) == 0);
        /* Zero again, a waiter cancelled: nothing left behind. */
        ptrio_limiter_set_total(&f->c, 0);
        start_borrower(f, 2);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        ptrio_nursery_cancel(&f->n);
    }
    EXPECT(ptrio_limiter_total(&f->c) == 0);
    EXPECT(borrowers_are(&f->c, 0));
    EXPECT(ptrio_limiter_waiting(&f->c) == 0);
    EXPECT(f->b[2].tok.limiter == NULL);
    PTRIO_END(f);
}

/* Trio test_sync.py: test_CapacityLimiter_zero_limit_tokens (its last
 * part: a total cut to 0 under a borrower with a waiter) */
START_TEST(test_limiter_zero_under_borrower)
{
    struct lim_main *m = FIXTURE(struct lim_main);
    RUN_MAIN(lim_zero_main, *m, 0);
    ck_assert_str_eq(L.buf, "p1+@0 p1=0@2 p2+@3 p2!PTRIO_ECANCELED@4");
}
END_TEST

static int lim_zero_raised_main(ptrio_frame *fr)
{
    struct lim_main *f = PTRIO_SELF(fr, struct lim_main);
    PTRIO_BEGIN(f);
    ptrio_limiter_init(&f->c, 5);
    EXPECT(ptrio_limiter_total(&f->c) == 5);
    PTRIO_NURSERY(f, &f->n) {
        /* No tokens: five borrowers queue, none gets through. */
        ptrio_limiter_set_total(&f->c, 0);
        for (f->i = 0; f->i < 5; f->i++) {
            start_borrower(f, f->i);
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        }
        EXPECT(borrowers_are(&f->c, 0));
        EXPECT(ptrio_limiter_waiting(&f->c) == 5);
        /* Five tokens again: all five hold one at once (a hand-off). */
        ptrio_limiter_set_total(&f->c, 5);
        EXPECT(borrowers_are(&f->c, 0x1f));
        EXPECT(ptrio_limiter_waiting(&f->c) == 0);
        /* A sixth waits, and gets the first token given back. */
        start_borrower(f, 5);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(ptrio_limiter_waiting(&f->c) == 1);
        for (f->i = 0; f->i < 5; f->i++)
            EXPECT(ptrio_limiter_release(&f->c, &f->b[f->i].tok) == 0);
        EXPECT(ptrio_limiter_waiting(&f->c) == 0);
        EXPECT(borrowers_are(&f->c, 1u << 5));
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(ptrio_limiter_release(&f->c, &f->b[5].tok) == 0);
    }
    EXPECT(ptrio_limiter_borrowed(&f->c) == 0);
    PTRIO_END(f);
}

/* Trio test_sync.py: test_CapacityLimiter_zero_limit_tokens (its first
 * part: waiters queued at 0 tokens, then the total raised) */
START_TEST(test_limiter_zero_limit_tokens)
{
    struct lim_main *m = FIXTURE(struct lim_main);
    RUN_MAIN(lim_zero_raised_main, *m, 0);
    ck_assert_str_eq(L.buf,
        "p0+@0 p1+@1 p2+@2 p3+@3 p4+@4 p0=0@5 p1=0@5 p2=0@5 p3=0@5 p4=0@5 "
        "p5+@5 p5=0@6");
}
END_TEST

static int lim_inf_main(ptrio_frame *fr)
{
    struct lim_main *f = PTRIO_SELF(fr, struct lim_main);
    PTRIO_BEGIN(f);
    f->c = (ptrio_limiter)PTRIO_LIMITER_INIT(PTRIO_LIMITER_INF);
    EXPECT(ptrio_limiter_total(&f->c) == PTRIO_LIMITER_INF);
    EXPECT(ptrio_limiter_borrowed(&f->c) == 0);
    EXPECT(ptrio_limiter_available(&f->c) == PTRIO_LIMITER_INF);
    EXPECT(ptrio_limiter_acquire_nowait(&f->c, &f->tok) == 0);
    EXPECT(ptrio_limiter_borrowed(&f->c) == 1);
    /* No limit: as many stay available after a borrow (Trio: inf - 1 is
     * inf). */
    EXPECT(ptrio_limiter_available(&f->c) == PTRIO_LIMITER_INF);
    /* Nobody ever waits. */
    PTRIO_NURSERY(f, &f->n) {
        for (f->i = 0; f->i < 8; f->i++)
            start_borrower(f, f->i);
    }
    EXPECT(ptrio_limiter_borrowed(&f->c) == 9);
    EXPECT(ptrio_limiter_available(&f->c) == PTRIO_LIMITER_INF);
    EXPECT(ptrio_limiter_release(&f->c, &f->tok) == 0);
    EXPECT(borrowers_are(&f->c, 0xff));
    for (f->i = 0; f->i < 8; f->i++)
        EXPECT(ptrio_limiter_release(&f->c, &f->b[f->i].tok) == 0);
    EXPECT(ptrio_limiter_borrowed(&f->c) == 0);
    EXPECT(ptrio_limiter_available(&f->c) == PTRIO_LIMITER_INF);
    PTRIO_END(f);
}

/* Trio test_sync.py: test_CapacityLimiter_inf (the release of a token
 * never borrowed is in test_lim_release_unborrowed) */
START_TEST(test_limiter_inf)
{
    struct lim_main *m = FIXTURE(struct lim_main);
    RUN_MAIN(lim_inf_main, *m, 0);
    ck_assert_str_eq(L.buf,
        "p0+@0 p1+@0 p2+@0 p3+@0 p4+@0 p5+@0 p6+@0 p7+@0 "
        "p0=0@0 p1=0@0 p2=0@0 p3=0@0 p4=0@0 p5=0@0 p6=0@0 p7=0@0");
}
END_TEST

/* ---- condition ------------------------------------------------------------- */

/* Acquires the condition's lock, waits, logs, releases. */
struct cwaiter {
    ptrio_frame fr;
    const char *name;
    ptrio_condition *c;
    ptrio_condition_waiter w;
    ptrio_scope sc;
    int rc, locked;
};

static int cwaiter(ptrio_frame *fr)
{
    struct cwaiter *f = PTRIO_SELF(fr, struct cwaiter);
    PTRIO_BEGIN(f);
    PTRIO_CANCEL_SCOPE(f, &f->sc) {
        PTRIO_AWAIT(f, ptrio_condition_acquire(f, f->c));
        ev(f->name, "+");
        PTRIO_TRY(f, f->rc, ptrio_condition_wait(f, f->c, &f->w));
        /* Whatever ended the wait, the lock is ours again (unless it
         * broke). */
        f->locked = ptrio_lock_owner(f->c->lock) == ptrio_current_task();
        ev_rc(f->name, f->rc);
        if (f->locked)
            PTRIO_CHECK(f, ptrio_condition_release(f->c));
    }
    PTRIO_END(f);
}

struct cond_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[3];
    struct cwaiter w[3];
    ptrio_lock lk;
    ptrio_condition c;
    ptrio_condition_waiter cw;
    ptrio_lock_stats st;
    ptrio_scope sc;
    int i, rc;
};

static void start_cwaiter(struct cond_main *f, int i)
{
    f->w[i] = (struct cwaiter){.name = names[i], .c = &f->c};
    EXPECT(ptrio_start_soon(&f->n, &f->t[i], cwaiter, &f->w[i]) == 0);
}

static int cond_main(ptrio_frame *fr)
{
    struct cond_main *f = PTRIO_SELF(fr, struct cond_main);
    PTRIO_BEGIN(f);
    f->c = (ptrio_condition)PTRIO_CONDITION_INIT(&f->lk);
    EXPECT(!ptrio_condition_locked(&f->c));
    PTRIO_AWAIT(f, ptrio_condition_acquire(f, &f->c));
    EXPECT(ptrio_lock_locked(&f->lk) && ptrio_condition_locked(&f->c));
    EXPECT(ptrio_condition_release(&f->c) == 0);
    EXPECT(ptrio_condition_acquire_nowait(&f->c) == 0);
    EXPECT(ptrio_condition_release(&f->c) == 0);
    PTRIO_NURSERY(f, &f->n) {
        for (f->i = 0; f->i < 3; f->i++) {
            start_cwaiter(f, f->i);
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        }
        EXPECT(ptrio_condition_waiting(&f->c) == 3);
        PTRIO_AWAIT(f, ptrio_condition_acquire(f, &f->c));
        EXPECT(ptrio_condition_notify(&f->c, 1) == 1);
        EXPECT(ptrio_condition_release(&f->c) == 0);
        EXPECT(ptrio_condition_locked(&f->c));      /* p0 has it now */
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        ev("all", "");
        PTRIO_AWAIT(f, ptrio_condition_acquire(f, &f->c));
        EXPECT(ptrio_condition_notify_all(&f->c) == 2);
        EXPECT(ptrio_condition_release(&f->c) == 0);
    }
    PTRIO_NURSERY(f, &f->n) {
        for (f->i = 0; f->i < 3; f->i++) {
            start_cwaiter(f, f->i);
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        }
        PTRIO_AWAIT(f, ptrio_condition_acquire(f, &f->c));
        EXPECT(ptrio_condition_notify(&f->c, 2) == 2);
        EXPECT(ptrio_condition_waiting(&f->c) == 1);
        ptrio_lock_statistics(&f->lk, &f->st);
        EXPECT(f->st.waiting == 2);
        EXPECT(ptrio_condition_release(&f->c) == 0);
        /* The release handed the lock to the first. */
        ptrio_lock_statistics(&f->lk, &f->st);
        EXPECT(f->st.waiting == 1 && f->st.owner == &f->t[0]);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        ev("last", "");
        PTRIO_AWAIT(f, ptrio_condition_acquire(f, &f->c));
        EXPECT(ptrio_condition_notify_all(&f->c) == 1);
        EXPECT(ptrio_condition_release(&f->c) == 0);
    }
    /* Cancelled: still holds the lock when wait returns. */
    PTRIO_CANCEL_SCOPE(f, &f->sc) {
        PTRIO_AWAIT(f, ptrio_condition_acquire(f, &f->c));
        ptrio_cancel(&f->sc);
        PTRIO_TRY(f, f->rc, ptrio_condition_wait(f, &f->c, &f->cw));
        EXPECT(f->rc == -PTRIO_ECANCELED);
        EXPECT(ptrio_lock_owner(&f->lk) == ptrio_current_task());
        EXPECT(ptrio_condition_release(&f->c) == 0);
    }
    PTRIO_END(f);
}

/* Trio test_sync.py: test_Condition */
START_TEST(test_condition)
{
    struct cond_main *m = FIXTURE(struct cond_main);
    RUN_MAIN(cond_main, *m, 0);
    ck_assert_str_eq(L.buf,
        "p0+@0 p1+@1 p2+@2 p0=0@3 all@4 p1=0@4 p2=0@4 "
        "p0+@4 p1+@5 p2+@6 p0=0@7 p1=0@7 last@8 p2=0@8");
}
END_TEST

/* The usual "while not predicate: wait" loop: one waiter frame serves
 * every pass (a finished wait leaves it free, as ptrio_call's frames). */
struct cond_loop {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    ptrio_lock lk;
    ptrio_condition c;
    ptrio_condition_waiter cw;
    struct cond_loop_waiter {
        ptrio_frame fr;
        struct cond_loop *m;
        int passes;
    } w;
    int count, i;
};

static int cond_loop_waiter(ptrio_frame *fr)
{
    struct cond_loop_waiter *w = PTRIO_SELF(fr, struct cond_loop_waiter);
    PTRIO_BEGIN(w);
    PTRIO_AWAIT(w, ptrio_condition_acquire(w, &w->m->c));
    while (w->m->count < 3) {
        PTRIO_AWAIT(w, ptrio_condition_wait(w, &w->m->c, &w->m->cw));
        w->passes++;
    }
    ev("waiter", "done");
    PTRIO_CHECK(w, ptrio_condition_release(&w->m->c));
    PTRIO_END(w);
}

static int cond_loop_main(ptrio_frame *fr)
{
    struct cond_loop *f = PTRIO_SELF(fr, struct cond_loop);
    PTRIO_BEGIN(f);
    f->c = (ptrio_condition)PTRIO_CONDITION_INIT(&f->lk);
    f->w.m = f;
    PTRIO_NURSERY(f, &f->n) {
        EXPECT(ptrio_start_soon(&f->n, &f->t, cond_loop_waiter, &f->w) == 0);
        for (f->i = 0; f->i < 3; f->i++) {
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
            PTRIO_AWAIT(f, ptrio_condition_acquire(f, &f->c));
            f->count++;
            EXPECT(ptrio_condition_notify(&f->c, 1) == 1);
            EXPECT(ptrio_condition_release(&f->c) == 0);
        }
    }
    EXPECT(f->w.passes == 3);
    PTRIO_END(f);
}

START_TEST(test_condition_waiter_reused)
{
    struct cond_loop *m = FIXTURE(struct cond_loop);
    RUN_MAIN(cond_loop_main, *m, 0);
    ck_assert_str_eq(L.buf, "waiterdone@3");
}
END_TEST

/* Notifies `c` once, 1 ms after it starts, holding its lock. */
struct notifier {
    ptrio_frame fr;
    ptrio_condition *c;
};

static int notifier(ptrio_frame *fr)
{
    struct notifier *f = PTRIO_SELF(fr, struct notifier);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
    PTRIO_AWAIT(f, ptrio_condition_acquire(f, f->c));
    ev("notify", "");
    EXPECT(ptrio_condition_notify(f->c, 1) == 1);
    EXPECT(ptrio_condition_release(f->c) == 0);
    PTRIO_END(f);
}

struct cond_reuse_failed {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct notifier nt;
    ptrio_lock lk;
    ptrio_condition c;
    ptrio_condition_waiter cw;
    ptrio_scope sc;
    int rc;
};

static int cond_reuse_failed_main(ptrio_frame *fr)
{
    struct cond_reuse_failed *f = PTRIO_SELF(fr, struct cond_reuse_failed);
    PTRIO_BEGIN(f);
    ptrio_condition_init(&f->c, &f->lk);
    PTRIO_AWAIT(f, ptrio_condition_acquire(f, &f->c));
    /* A wait that failed leaves the frame free, as one that returned. */
    PTRIO_CANCEL_SCOPE(f, &f->sc) {
        ptrio_cancel(&f->sc);
        PTRIO_TRY(f, f->rc, ptrio_condition_wait(f, &f->c, &f->cw));
    }
    ev_rc("cancelled", f->rc);
    EXPECT(ptrio_lock_owner(&f->lk) == ptrio_current_task());
    PTRIO_NURSERY(f, &f->n) {
        f->nt.c = &f->c;
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, notifier, &f->nt));
        PTRIO_TRY(f, f->rc, ptrio_condition_wait(f, &f->c, &f->cw));
        ev_rc("woken", f->rc);
        EXPECT(ptrio_lock_owner(&f->lk) == ptrio_current_task());
        EXPECT(ptrio_condition_release(&f->c) == 0);
    }
    PTRIO_END(f);
}

/* A waiter frame whose wait failed serves the next wait. */
START_TEST(test_condition_waiter_reused_after_failure)
{
    struct cond_reuse_failed *m = FIXTURE(struct cond_reuse_failed);
    RUN_MAIN(cond_reuse_failed_main, *m, 0);
    ck_assert_str_eq(L.buf, "cancelled!PTRIO_ECANCELED@0 notify@1 woken=0@1");
}
END_TEST

static int cond_cancel_main(ptrio_frame *fr)
{
    struct cond_main *f = PTRIO_SELF(fr, struct cond_main);
    PTRIO_BEGIN(f);
    ptrio_condition_init(&f->c, &f->lk);
    PTRIO_NURSERY(f, &f->n) {
        for (f->i = 0; f->i < 3; f->i++)
            start_cwaiter(f, f->i);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        /* p0 is cancelled in the condition's lot: it waits for the lock,
         * which we hold, so it can only report at 3 ms. */
        PTRIO_AWAIT(f, ptrio_condition_acquire(f, &f->c));
        ptrio_cancel(&f->w[0].sc);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        /* p1 is notified (in the lock's lot now), then cancelled there:
         * it queues again for the lock, behind p0. */
        EXPECT(ptrio_condition_notify(&f->c, 1) == 1);
        ptrio_cancel(&f->w[1].sc);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        ptrio_lock_statistics(&f->lk, &f->st);
        EXPECT(f->st.waiting == 2 && f->st.owner == ptrio_current_task());
        EXPECT(ptrio_condition_release(&f->c) == 0);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        PTRIO_AWAIT(f, ptrio_condition_acquire(f, &f->c));
        EXPECT(ptrio_condition_notify_all(&f->c) == 1);
        EXPECT(ptrio_condition_release(&f->c) == 0);
    }
    EXPECT(f->w[0].locked && f->w[1].locked && f->w[2].locked);
    EXPECT(!ptrio_lock_locked(&f->lk));
    PTRIO_END(f);
}

/* Takes the lock, logs "other+", holds it 5 ms. */
struct lock_holder {
    ptrio_frame fr;
    ptrio_lock *lk;
};

static int lock_holder(ptrio_frame *fr)
{
    struct lock_holder *f = PTRIO_SELF(fr, struct lock_holder);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_lock_acquire(f, f->lk));
    ev("other", "+");
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(5)));
    EXPECT(ptrio_lock_release(f->lk) == 0);
    PTRIO_END(f);
}

struct cond_cancelled {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct lock_holder h;
    ptrio_lock lk;
    ptrio_condition c;
    ptrio_condition_waiter cw;
    ptrio_scope sc;
    int rc;
};

static int cond_cancelled_main(ptrio_frame *fr)
{
    struct cond_cancelled *f = PTRIO_SELF(fr, struct cond_cancelled);
    PTRIO_BEGIN(f);
    ptrio_condition_init(&f->c, &f->lk);
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_AWAIT(f, ptrio_condition_acquire(f, &f->c));
        f->h.lk = &f->lk;
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, lock_holder, &f->h));
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));    /* it queues */
        PTRIO_CANCEL_SCOPE(f, &f->sc) {
            ptrio_cancel(&f->sc);
            PTRIO_TRY(f, f->rc, ptrio_condition_wait(f, &f->c, &f->cw));
        }
        ev_rc("main", f->rc);
        EXPECT(ptrio_lock_owner(&f->lk) == ptrio_current_task());
        EXPECT(ptrio_condition_release(&f->c) == 0);
    }
    PTRIO_END(f);
}

/* The one blocking call that has an effect in a cancelled scope, as in
 * Trio (Condition.wait releases before it parks, and re-acquires shielded
 * when the park is cancelled): the lock goes to the task queued for it,
 * and the cancelled wait fails only once it holds the lock again. */
START_TEST(test_condition_wait_when_cancelled)
{
    struct cond_cancelled *m = FIXTURE(struct cond_cancelled);
    RUN_MAIN(cond_cancelled_main, *m, 0);
    ck_assert_str_eq(L.buf, "other+@1 main!PTRIO_ECANCELED@6");
}
END_TEST

/* Cancelled in the condition's lot or in the lock's, a waiter waits for
 * the lock before it fails. */
START_TEST(test_condition_cancel_holds_lock)
{
    struct cond_main *m = FIXTURE(struct cond_main);
    RUN_MAIN(cond_cancel_main, *m, 0);
    ck_assert_str_eq(L.buf,
        "p0+@0 p1+@0 p2+@0 p0!PTRIO_ECANCELED@3 p1!PTRIO_ECANCELED@3 "
        "p2=0@4");
}
END_TEST

/* A waiter cancelled in the condition's lot is in neither queue until it
 * resumes, so the condition may be rebound meanwhile: it must still take
 * back the lock it released, not the condition's new one. */
struct rbwaiter {
    ptrio_frame fr;
    ptrio_condition *c;
    ptrio_lock *a, *b;
    ptrio_condition_waiter w;
    ptrio_scope sc;
    int rc, held_a, held_b;
};

static int rbwaiter(ptrio_frame *fr)
{
    struct rbwaiter *f = PTRIO_SELF(fr, struct rbwaiter);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_condition_acquire(f, f->c));
    PTRIO_CANCEL_SCOPE(f, &f->sc) {
        PTRIO_TRY(f, f->rc, ptrio_condition_wait(f, f->c, &f->w));
    }
    f->held_a = ptrio_lock_owner(f->a) == ptrio_current_task();
    f->held_b = ptrio_lock_owner(f->b) == ptrio_current_task();
    if (f->held_a)
        PTRIO_CHECK(f, ptrio_lock_release(f->a));
    if (f->held_b)
        PTRIO_CHECK(f, ptrio_lock_release(f->b));
    PTRIO_END(f);
}

struct cond_rebind_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct rbwaiter w;
    ptrio_lock a, b;
    ptrio_condition c;
};

static int cond_rebind_main(ptrio_frame *fr)
{
    struct cond_rebind_main *f = PTRIO_SELF(fr, struct cond_rebind_main);
    PTRIO_BEGIN(f);
    EXPECT(ptrio_condition_init(&f->c, &f->a) == 0);
    PTRIO_NURSERY(f, &f->n) {
        f->w = (struct rbwaiter){.c = &f->c, .a = &f->a, .b = &f->b};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, rbwaiter, &f->w));
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(ptrio_condition_waiting(&f->c) == 1);
        ptrio_cancel(&f->w.sc);
        /* The lock is free and nobody waits in either lot. */
        EXPECT(ptrio_condition_init(&f->c, &f->b) == 0);
    }
    EXPECT(f->w.rc == -PTRIO_ECANCELED);
    EXPECT(f->w.held_a && !f->w.held_b);
    EXPECT(!ptrio_lock_locked(&f->a) && !ptrio_lock_locked(&f->b));
    PTRIO_END(f);
}

START_TEST(test_condition_rebound_under_cancelled_waiter)
{
    struct cond_rebind_main *m = FIXTURE(struct cond_rebind_main);
    RUN_MAIN(cond_rebind_main, *m, 0);
}
END_TEST

/* Holds the lock of `c` for 1 ms, notifies everyone, exits holding it. */
struct bad_notifier {
    ptrio_frame fr;
    ptrio_condition *c;
};

static int bad_notifier(ptrio_frame *fr)
{
    struct bad_notifier *f = PTRIO_SELF(fr, struct bad_notifier);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
    PTRIO_AWAIT(f, ptrio_condition_acquire(f, f->c));
    ptrio_condition_notify_all(f->c);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
    PTRIO_END(f);
}

struct cond_broken_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct cwaiter w;
    struct bad_notifier b;
    ptrio_lock lk;
    ptrio_condition c;
};

static int cond_broken_main(ptrio_frame *fr)
{
    struct cond_broken_main *f = PTRIO_SELF(fr, struct cond_broken_main);
    PTRIO_BEGIN(f);
    ptrio_condition_init(&f->c, &f->lk);
    PTRIO_NURSERY(f, &f->n) {
        f->w = (struct cwaiter){.name = "w", .c = &f->c};
        f->b = (struct bad_notifier){.c = &f->c};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], cwaiter, &f->w));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], bad_notifier,
                                        &f->b));
    }
    PTRIO_END(f);
}

/* The lock breaks while a notified waiter queues for it: the wait fails
 * with -PTRIO_EBROKEN, without the lock. */
START_TEST(test_condition_lock_breaks)
{
    struct cond_broken_main *m = FIXTURE(struct cond_broken_main);
    RUN_MAIN(cond_broken_main, *m, 0);
    ck_assert_str_eq(L.buf, "w+@0 w!PTRIO_EBROKEN@2");
    ck_assert(!m->w.locked);
}
END_TEST

/* ---- cancelled after the hand-off -------------------------------------------- */

/* One struct for the hand-off tests of the lock, the semaphore and the
 * limiter. */
struct handed_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[3];
    struct holder h;
    struct sacq a;
    struct borrower b[2];
    ptrio_lock lk;
    ptrio_lock_stats st;
    ptrio_semaphore s;
    ptrio_limiter lim;
    ptrio_limiter_token tok;
    int rc;
};

static int handed_main(ptrio_frame *fr)
{
    struct handed_main *f = PTRIO_SELF(fr, struct handed_main);
    PTRIO_BEGIN(f);
    /* The lock: p0 is handed it by our release, then cancelled before it
     * runs: it wakes holding it (a woken waiter cannot be cancelled out of
     * its wait), and its own cleanup releases it. */
    PTRIO_AWAIT(f, ptrio_lock_acquire(f, &f->lk));
    PTRIO_NURSERY(f, &f->n) {
        f->h = (struct holder){.name = "p0", .lk = &f->lk,
                               .hold = PTRIO_TIME_INF};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], holder, &f->h));
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(ptrio_lock_release(&f->lk) == 0);
        ptrio_cancel(&f->h.sc);
        ptrio_lock_statistics(&f->lk, &f->st);
        EXPECT(f->st.owner == &f->t[0] && f->st.waiting == 0);
    }
    ptrio_lock_statistics(&f->lk, &f->st);
    EXPECT(!f->st.locked && !f->st.broken && f->st.owner == NULL);
    /* The semaphore: the unit is p1's. */
    PTRIO_NURSERY(f, &f->n) {
        f->a = (struct sacq){.name = "p1", .s = &f->s};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], sacq, &f->a));
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(ptrio_semaphore_release(&f->s) == 0);
        ptrio_cancel(&f->a.sc);
        EXPECT(ptrio_semaphore_value(&f->s) == 0);
        EXPECT(ptrio_semaphore_waiting(&f->s) == 0);
    }
    EXPECT(ptrio_semaphore_value(&f->s) == 0);
    /* The limiter: raising the total hands p2 a token; cancelled before it
     * runs, it keeps it. p3 still waits, and is cancelled out of it. */
    ptrio_limiter_init(&f->lim, 0);
    PTRIO_NURSERY(f, &f->n) {
        f->b[0] = (struct borrower){.name = "p2", .lim = &f->lim};
        f->b[1] = (struct borrower){.name = "p3", .lim = &f->lim};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], borrower, &f->b[0]));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], borrower, &f->b[1]));
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        ptrio_limiter_set_total(&f->lim, 1);
        ptrio_nursery_cancel(&f->n);
        EXPECT(ptrio_limiter_borrowed(&f->lim) == 1);
        EXPECT(ptrio_limiter_waiting(&f->lim) == 0);
    }
    EXPECT(ptrio_limiter_borrowed(&f->lim) == 1);
    EXPECT(ptrio_limiter_next(&f->lim, NULL) == &f->b[0].tok);
    EXPECT(ptrio_limiter_borrower(&f->b[0].tok) == &f->t[0]);
    EXPECT(f->b[1].tok.limiter == NULL);
    EXPECT(ptrio_limiter_release(&f->lim, &f->b[0].tok) == 0);
    EXPECT(ptrio_limiter_borrowed(&f->lim) == 0);
    PTRIO_END(f);
}

/* A waiter handed the lock, a unit or a token, then cancelled before it
 * resumes, has it: the hand-off is never lost nor undone. */
START_TEST(test_handoff_then_cancelled)
{
    struct handed_main *m = FIXTURE(struct handed_main);
    RUN_MAIN(handed_main, *m, 0);
    ck_assert_str_eq(L.buf, "p0+@0 p0*@1 p0!PTRIO_ECANCELED@1 "
                            "p1+@1 p1=0@2 "
                            "p2+@2 p3+@2 p2=0@3 p3!PTRIO_ECANCELED@3");
}
END_TEST

static int cond_notify_cancelled_main(ptrio_frame *fr)
{
    struct cond_main *f = PTRIO_SELF(fr, struct cond_main);
    PTRIO_BEGIN(f);
    ptrio_condition_init(&f->c, &f->lk);
    PTRIO_NURSERY(f, &f->n) {
        for (f->i = 0; f->i < 3; f->i++)
            start_cwaiter(f, f->i);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(ptrio_condition_waiting(&f->c) == 3);
        PTRIO_AWAIT(f, ptrio_condition_acquire(f, &f->c));
        /* p0 is cancelled out of the condition's lot and has not run yet:
         * notify(1) passes it by and takes p1. */
        ptrio_cancel(&f->w[0].sc);
        EXPECT(ptrio_condition_waiting(&f->c) == 2);
        EXPECT(ptrio_condition_notify(&f->c, 1) == 1);
        EXPECT(ptrio_condition_waiting(&f->c) == 1);
        ptrio_lock_statistics(&f->lk, &f->st);
        EXPECT(f->st.waiting == 1);
        /* The release hands the lock to p1, queued before p0 re-queues. */
        EXPECT(ptrio_condition_release(&f->c) == 0);
        EXPECT(ptrio_lock_owner(&f->lk) == &f->t[1]);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        /* p2 is notified, then cancelled in the lock's lot (nobody holds
         * the lock, so it queues and takes it at once). */
        PTRIO_AWAIT(f, ptrio_condition_acquire(f, &f->c));
        EXPECT(ptrio_condition_notify_all(&f->c) == 1);
        ptrio_cancel(&f->w[2].sc);
        ptrio_lock_statistics(&f->lk, &f->st);
        EXPECT(f->st.waiting == 0);
        EXPECT(ptrio_condition_notify_all(&f->c) == 0);
        EXPECT(ptrio_condition_release(&f->c) == 0);
    }
    EXPECT(f->w[0].locked && f->w[1].locked && f->w[2].locked);
    EXPECT(!ptrio_lock_locked(&f->lk));
    PTRIO_END(f);
}

/* notify counts only the waiters still in the condition's lot: a waiter
 * cancelled but not yet resumed is not notified (Trio: its abort takes it
 * out of the lot), and it queues for the lock behind the notified one. */
START_TEST(test_condition_notify_skips_cancelled)
{
    struct cond_main *m = FIXTURE(struct cond_main);
    RUN_MAIN(cond_notify_cancelled_main, *m, 0);
    ck_assert_str_eq(L.buf,
        "p0+@0 p1+@0 p2+@0 p1=0@1 p0!PTRIO_ECANCELED@1 "
        "p2!PTRIO_ECANCELED@2");
}
END_TEST

/* Holds the condition's lock 2 ms after taking it, and exits holding it. */
struct lock_leaver {
    ptrio_frame fr;
    ptrio_condition *c;
};

static int lock_leaver(ptrio_frame *fr)
{
    struct lock_leaver *f = PTRIO_SELF(fr, struct lock_leaver);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_condition_acquire(f, f->c));
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(2)));
    PTRIO_END(f);
}

struct cond_dead_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct cwaiter w;
    struct lock_leaver b;
    ptrio_lock lk;
    ptrio_condition c;
    ptrio_scope sc;
};

static int cond_dead_main(ptrio_frame *fr)
{
    struct cond_dead_main *f = PTRIO_SELF(fr, struct cond_dead_main);
    PTRIO_BEGIN(f);
    ptrio_condition_init(&f->c, &f->lk);
    PTRIO_TRY_BLOCK(f, &f->sc) {
        PTRIO_NURSERY(f, &f->n) {
            f->w = (struct cwaiter){.name = "w", .c = &f->c};
            f->b = (struct lock_leaver){.c = &f->c};
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], cwaiter, &f->w));
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], lock_leaver,
                                            &f->b));
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(5)));
            /* The lock broke at 3 ms; w still waits, never notified. */
            EXPECT(ptrio_condition_waiting(&f->c) == 1);
            EXPECT(ptrio_lot_broken(&f->lk.lot.lot));
            ptrio_cancel(&f->w.sc);
        }
    }
    EXPECT(ptrio_scope_error(&f->sc) == 0);
    EXPECT(ptrio_condition_waiting(&f->c) == 0);
    PTRIO_END(f);
}

/* The lock breaks while a waiter sits in the condition's lot: cancelled
 * later, the wait cannot get the lock back and fails with -PTRIO_EBROKEN,
 * without it (Trio: the shielded re-acquire raises BrokenResourceError). */
START_TEST(test_condition_lock_breaks_unnotified)
{
    struct cond_dead_main *m = FIXTURE(struct cond_dead_main);
    RUN_MAIN(cond_dead_main, *m, 0);
    ck_assert_str_eq(L.buf, "w+@0 w!PTRIO_EBROKEN@6");
    ck_assert(!m->w.locked);
}
END_TEST

/* ---- Trio's generic lock tests, over every lock-like object ---------------- */

enum { LK_LIMITER, LK_SEMAPHORE, LK_LOCK, LK_CHAN1_10, LK_CHAN1_1,
       LK_CHAN2, LK_CHAN3, LK_KINDS };

/* Trio test_sync.py: CapacityLimiter(1), Semaphore(1), Lock,
 * ChannelLock1(10), ChannelLock1(1), ChannelLock2, ChannelLock3. */
struct locklike {
    int kind;
    ptrio_limiter lim;
    ptrio_semaphore sem;
    ptrio_lock lk;
    ptrio_chan ch;
    ptrio_chan_tx tx;
    ptrio_chan_rx rx;
    int acquired;           /* ChannelLock3 */
};

static void locklike_init(struct locklike *l, int kind)
{
    int i, rc = 0;
    memset(l, 0, sizeof *l);
    l->kind = kind;
    switch (kind) {
    case LK_LIMITER:
        ptrio_limiter_init(&l->lim, 1);
        break;
    case LK_SEMAPHORE:
        rc = ptrio_semaphore_init(&l->sem, 1, 0);
        break;
    case LK_CHAN1_10:
    case LK_CHAN1_1:
        /* Capacity c, pre-filled with c - 1: a send takes the last slot. */
        rc = ptrio_chan_open(&l->ch, &l->tx, &l->rx, 0,
                             kind == LK_CHAN1_10 ? 10 : 1, NULL);
        for (i = 0; i < (kind == LK_CHAN1_10 ? 9 : 0); i++)
            rc |= ptrio_chan_send_nowait(&l->tx, NULL);
        break;
    case LK_CHAN2:
        rc = ptrio_chan_open(&l->ch, &l->tx, &l->rx, 0, 10, NULL);
        rc |= ptrio_chan_send_nowait(&l->tx, NULL);
        break;
    case LK_CHAN3:
        rc = ptrio_chan_open(&l->ch, &l->tx, &l->rx, 0, 0, NULL);
        break;
    default:
        break;
    }
    EXPECT(rc == 0);
}

static int ll_acquire(void *self, struct locklike *l, ptrio_limiter_token *t)
{
    switch (l->kind) {
    case LK_LIMITER:
        return ptrio_limiter_acquire(self, &l->lim, t);
    case LK_SEMAPHORE:
        return ptrio_semaphore_acquire(self, &l->sem);
    case LK_LOCK:
        return ptrio_lock_acquire(self, &l->lk);
    case LK_CHAN1_10:
    case LK_CHAN1_1:
        return ptrio_chan_send(self, &l->tx, NULL);
    case LK_CHAN2:
        return ptrio_chan_recv(self, &l->rx, NULL);
    default:
        if (l->acquired)
            return ptrio_chan_send(self, &l->tx, NULL);
        l->acquired = 1;
        return ptrio_checkpoint(self);
    }
}

static int ll_acquire_nowait(struct locklike *l, ptrio_limiter_token *t)
{
    switch (l->kind) {
    case LK_LIMITER:
        return ptrio_limiter_acquire_nowait(&l->lim, t);
    case LK_SEMAPHORE:
        return ptrio_semaphore_acquire_nowait(&l->sem);
    case LK_LOCK:
        return ptrio_lock_acquire_nowait(&l->lk);
    case LK_CHAN1_10:
    case LK_CHAN1_1:
        return ptrio_chan_send_nowait(&l->tx, NULL);
    case LK_CHAN2:
        return ptrio_chan_recv_nowait(&l->rx, NULL);
    default:
        EXPECT(!l->acquired);
        l->acquired = 1;
        return 0;
    }
}

static int ll_release(struct locklike *l, ptrio_limiter_token *t)
{
    int rc;
    switch (l->kind) {
    case LK_LIMITER:
        return ptrio_limiter_release(&l->lim, t);
    case LK_SEMAPHORE:
        return ptrio_semaphore_release(&l->sem);
    case LK_LOCK:
        return ptrio_lock_release(&l->lk);
    case LK_CHAN1_10:
    case LK_CHAN1_1:
        return ptrio_chan_recv_nowait(&l->rx, NULL);
    case LK_CHAN2:
        return ptrio_chan_send_nowait(&l->tx, NULL);
    default:
        rc = ptrio_chan_recv_nowait(&l->rx, NULL);
        if (rc == -PTRIO_EWOULDBLOCK) {
            EXPECT(l->acquired);
            l->acquired = 0;
            rc = 0;
        }
        return rc;
    }
}

#define WORKERS 5
#define LOOPS 10

struct gl_worker {
    ptrio_frame fr;
    struct locklike *l;
    int *in_cs, *acquires;
    int name, loops;
    ptrio_limiter_token tok;
    int i;
};

/* Trio's worker (exclusion) and loopy (fairness) in one: logs its name at
 * each acquire; checkpoints twice inside when `in_cs` is set. */
static int gl_worker(ptrio_frame *fr)
{
    struct gl_worker *f = PTRIO_SELF(fr, struct gl_worker);
    PTRIO_BEGIN(f);
    for (f->i = 0; f->i < f->loops; f->i++) {
        PTRIO_AWAIT(f, ll_acquire(f, f->l, &f->tok));
        logn(&L, "", f->name);
        if (f->in_cs) {
            ++*f->acquires;
            EXPECT(!*f->in_cs);
            *f->in_cs = 1;
            PTRIO_CHECKPOINT(f);
            PTRIO_CHECKPOINT(f);
            EXPECT(*f->in_cs);
            *f->in_cs = 0;
        }
        PTRIO_CHECK(f, ll_release(f->l, &f->tok));
    }
    PTRIO_END(f);
}

struct gl_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[WORKERS];
    struct gl_worker w[WORKERS];
    struct locklike l;
    ptrio_limiter_token tok;
    int kind, in_cs, acquires, i;
};

static int gl_exclusion(ptrio_frame *fr)
{
    struct gl_main *f = PTRIO_SELF(fr, struct gl_main);
    PTRIO_BEGIN(f);
    locklike_init(&f->l, f->kind);
    PTRIO_NURSERY(f, &f->n) {
        for (f->i = 0; f->i < WORKERS; f->i++) {
            f->w[f->i] = (struct gl_worker){.l = &f->l, .in_cs = &f->in_cs,
                                            .acquires = &f->acquires,
                                            .name = f->i, .loops = LOOPS};
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[f->i], gl_worker,
                                            &f->w[f->i]));
        }
    }
    EXPECT(!f->in_cs);
    EXPECT(f->acquires == LOOPS * WORKERS);
    PTRIO_END(f);
}

/* Only one worker is ever in the critical section.
 * Trio test_sync.py: test_generic_lock_exclusion */
START_TEST(test_generic_lock_exclusion)
{
    struct gl_main *m = FIXTURE(struct gl_main);
    reset();
    memset(m, 0, sizeof *m);
    m->kind = _i;
    ck_assert_int_eq(run_virtual(gl_exclusion, m, NULL), 0);
    ck_expect_ok();
}
END_TEST

static int gl_fairness(ptrio_frame *fr)
{
    struct gl_main *f = PTRIO_SELF(fr, struct gl_main);
    PTRIO_BEGIN(f);
    locklike_init(&f->l, f->kind);
    PTRIO_NURSERY(f, &f->n) {
        for (f->i = 0; f->i < 3; f->i++) {
            f->w[f->i] = (struct gl_worker){.l = &f->l, .name = f->i + 1,
                                            .loops = 5};
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[f->i], gl_worker,
                                            &f->w[f->i]));
        }
    }
    PTRIO_END(f);
}

/* Queued tasks take the lock in turn, in order.
 * Trio test_sync.py: test_generic_lock_fifo_fairness */
START_TEST(test_generic_lock_fifo_fairness)
{
    struct gl_main *m = FIXTURE(struct gl_main);
    reset();
    memset(m, 0, sizeof *m);
    m->kind = _i;
    ck_assert_int_eq(run_virtual(gl_fairness, m, NULL), 0);
    ck_expect_ok();
    ck_assert_str_eq(L.buf, "1 2 3 1 2 3 1 2 3 1 2 3 1 2 3");
}
END_TEST

static int gl_nowait_blocks(ptrio_frame *fr)
{
    struct gl_main *f = PTRIO_SELF(fr, struct gl_main);
    PTRIO_BEGIN(f);
    locklike_init(&f->l, f->kind);
    PTRIO_NURSERY(f, &f->n) {
        EXPECT(ll_acquire_nowait(&f->l, &f->tok) == 0);
        f->w[0] = (struct gl_worker){.l = &f->l, .name = 1, .loops = 1};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], gl_worker,
                                        &f->w[0]));
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        tlog_at(&L, "released");
        EXPECT(ll_release(&f->l, &f->tok) == 0);
    }
    PTRIO_END(f);
}

/* Trio test_sync.py: test_generic_lock_acquire_nowait_blocks_acquire */
START_TEST(test_generic_lock_acquire_nowait_blocks_acquire)
{
    struct gl_main *m = FIXTURE(struct gl_main);
    reset();
    memset(m, 0, sizeof *m);
    m->kind = _i;
    ck_assert_int_eq(run_virtual(gl_nowait_blocks, m, NULL), 0);
    ck_expect_ok();
    ck_assert_str_eq(L.buf, "released@1 1");
}
END_TEST

/* ---- stress: random cancellations and capacity changes ---------------------- */

/* SW workers take and give back one lock-like object (a capacity limiter,
 * a semaphore of 2, a lock, a condition's lock) ITER times each, by the
 * blocking call (in a cancel scope of its own) or the nowait one, holding
 * it across 0 to 2 checkpoints (or, for the condition, across a wait half
 * the time); a controller cancels random acquires and waits and, for the
 * limiter, sets random totals (0 to 3), for the condition notifies 0 to 2
 * waiters, meanwhile. After every step some task
 * checks that nothing is lost or duplicated: the limiter's borrowed
 * count and its list of borrowers are exactly the tokens marked borrowed,
 * the semaphore's value plus the units its workers hold never exceeds 2,
 * the lock's owner is the worker that holds it (a wait, however it ends,
 * returns holding it); and that nobody waits while a free unit, token or
 * lock sits there. */
#define SW 6
#define ITER 2000

enum { ST_LIMITER, ST_SEMAPHORE, ST_LOCK, ST_CONDITION, ST_KINDS };

struct sstress;

struct sworker {
    ptrio_frame fr;
    struct sstress *s;
    ptrio_limiter_token tok;
    ptrio_condition_waiter cw;
    ptrio_scope sc;
    uint32_t rng;
    int i, k, rc, held;
};

struct scontrol {
    ptrio_frame fr;
    struct sstress *s;
    uint32_t rng;
};

struct sstress {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[SW + 1];
    struct sworker w[SW];
    struct scontrol c;
    ptrio_limiter lim;
    ptrio_semaphore sem;
    ptrio_lock lk;
    ptrio_condition cond;
    int kind, running, i;
    unsigned long acquired, cancelled, bad, waits;
};

static uint32_t srand32(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

static void sstress_check(struct sstress *s)
{
    int i, held = 0, linked = 0;
    unsigned n = 0;
    ptrio_limiter_token *t = NULL;

    for (i = 0; i < SW; i++) {
        held += s->w[i].held;
        linked += s->w[i].tok.limiter == &s->lim;
        if (s->w[i].held && s->kind == ST_LIMITER &&
            s->w[i].tok.limiter != &s->lim)
            s->bad++;
        if (s->w[i].held && s->kind >= ST_LOCK &&
            ptrio_lock_owner(&s->lk) != &s->t[i])
            s->bad++;
    }
    switch (s->kind) {
    case ST_LIMITER:
        while ((t = ptrio_limiter_next(&s->lim, t)) && n <= SW)
            n++;
        if (n != ptrio_limiter_borrowed(&s->lim) ||
            (int)n != linked)
            s->bad++;
        if (ptrio_limiter_waiting(&s->lim) &&
            ptrio_limiter_borrowed(&s->lim) < ptrio_limiter_total(&s->lim))
            s->bad++;
        break;
    case ST_SEMAPHORE:
        if (ptrio_semaphore_value(&s->sem) + (unsigned)held > 2)
            s->bad++;
        if (ptrio_semaphore_waiting(&s->sem) && ptrio_semaphore_value(&s->sem))
            s->bad++;
        break;
    default:
        if (held > 1)
            s->bad++;
        if (!ptrio_lock_owner(&s->lk) && ptrio_lock_locked(&s->lk))
            s->bad++;           /* broken: nobody exits holding it here */
        if (!ptrio_lock_owner(&s->lk) && !ptrio_lot_empty(&s->lk.lot.lot))
            s->bad++;
        break;
    }
}

static int sw_acquire(void *self, struct sworker *f)
{
    switch (f->s->kind) {
    case ST_LIMITER:
        return ptrio_limiter_acquire(self, &f->s->lim, &f->tok);
    case ST_SEMAPHORE:
        return ptrio_semaphore_acquire(self, &f->s->sem);
    case ST_LOCK:
        return ptrio_lock_acquire(self, &f->s->lk);
    default:
        return ptrio_condition_acquire(self, &f->s->cond);
    }
}

static int sw_nowait(struct sworker *f)
{
    switch (f->s->kind) {
    case ST_LIMITER:
        return ptrio_limiter_acquire_nowait(&f->s->lim, &f->tok);
    case ST_SEMAPHORE:
        return ptrio_semaphore_acquire_nowait(&f->s->sem);
    default:
        return ptrio_lock_acquire_nowait(&f->s->lk);
    }
}

static int sw_release(struct sworker *f)
{
    switch (f->s->kind) {
    case ST_LIMITER:
        return ptrio_limiter_release(&f->s->lim, &f->tok);
    case ST_SEMAPHORE:
        return ptrio_semaphore_release(&f->s->sem);
    default:
        return ptrio_lock_release(&f->s->lk);
    }
}

static int sworker(ptrio_frame *fr)
{
    struct sworker *f = PTRIO_SELF(fr, struct sworker);
    PTRIO_BEGIN(f);
    for (f->i = 0; f->i < ITER; f->i++) {
        if (srand32(&f->rng) % 4 == 0) {
            f->rc = sw_nowait(f);
            if (f->rc == -PTRIO_EWOULDBLOCK) {
                PTRIO_CHECKPOINT(f);
                continue;
            }
        } else {
            PTRIO_CANCEL_SCOPE(f, &f->sc) {
                PTRIO_TRY(f, f->rc, sw_acquire(f, f));
            }
            if (f->rc == -PTRIO_ECANCELED) {
                f->s->cancelled++;
                sstress_check(f->s);
                continue;
            }
        }
        PTRIO_CHECK(f, f->rc);
        f->held = 1;
        f->s->acquired++;
        sstress_check(f->s);
        if (f->s->kind == ST_CONDITION && srand32(&f->rng) % 2) {
            f->held = 0;
            PTRIO_CANCEL_SCOPE(f, &f->sc) {
                PTRIO_TRY(f, f->rc, ptrio_condition_wait(f, &f->s->cond,
                                                         &f->cw));
            }
            if (f->rc != 0 && f->rc != -PTRIO_ECANCELED)
                f->s->bad++;
            f->s->waits++;
            f->held = 1;
            sstress_check(f->s);
        }
        for (f->k = (int)(srand32(&f->rng) % 3); f->k > 0; f->k--) {
            PTRIO_CHECKPOINT(f);
            sstress_check(f->s);
        }
        f->held = 0;
        PTRIO_CHECK(f, sw_release(f));
        sstress_check(f->s);
    }
    PTRIO_FINALLY(f);
    f->s->running--;
    PTRIO_END(f);
}

static int scontrol(ptrio_frame *fr)
{
    struct scontrol *f = PTRIO_SELF(fr, struct scontrol);
    uint32_t r;
    unsigned n;
    int k;
    PTRIO_BEGIN(f);
    while (f->s->running) {
        r = srand32(&f->rng);
        if (r % 4 == 0)
            ptrio_cancel(&f->s->w[(r >> 2) % SW].sc);
        else if (r % 4 == 1 && f->s->kind == ST_LIMITER)
            ptrio_limiter_set_total(&f->s->lim, (r >> 2) % 4);
        else if (r % 4 == 1 && f->s->kind == ST_CONDITION &&
                 ptrio_condition_acquire_nowait(&f->s->cond) == 0) {
            n = ptrio_condition_waiting(&f->s->cond);
            k = ptrio_condition_notify(&f->s->cond, (r >> 2) % 3);
            if (k < 0 || (unsigned)k > n || (unsigned)k > (r >> 2) % 3 ||
                ptrio_condition_waiting(&f->s->cond) != n - (unsigned)k)
                f->s->bad++;
            if (ptrio_condition_release(&f->s->cond) != 0)
                f->s->bad++;
        }
        sstress_check(f->s);
        PTRIO_CHECKPOINT(f);
    }
    PTRIO_END(f);
}

static int sstress_main(ptrio_frame *fr)
{
    struct sstress *f = PTRIO_SELF(fr, struct sstress);
    PTRIO_BEGIN(f);
    ptrio_limiter_init(&f->lim, 2);
    EXPECT(ptrio_semaphore_init(&f->sem, 2, 2) == 0);
    EXPECT(ptrio_condition_init(&f->cond, &f->lk) == 0);
    f->running = SW;
    PTRIO_NURSERY(f, &f->n) {
        for (f->i = 0; f->i < SW; f->i++) {
            f->w[f->i] = (struct sworker){.s = f,
                                          .rng = 777u + (uint32_t)f->i};
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[f->i], sworker,
                                            &f->w[f->i]));
        }
        f->c = (struct scontrol){.s = f, .rng = 0x2545F491u};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[SW], scontrol, &f->c));
    }
    EXPECT(ptrio_limiter_borrowed(&f->lim) == 0);
    EXPECT(ptrio_limiter_waiting(&f->lim) == 0);
    EXPECT(ptrio_semaphore_value(&f->sem) == 2);
    EXPECT(ptrio_semaphore_waiting(&f->sem) == 0);
    EXPECT(!ptrio_lock_locked(&f->lk));
    EXPECT(ptrio_condition_waiting(&f->cond) == 0);
    EXPECT(ptrio_current_loop()->lot_owners == NULL);
    PTRIO_END(f);
}

START_TEST(test_sync_stress_cancellation)
{
    struct sstress *m = FIXTURE(struct sstress);
    reset();
    memset(m, 0, sizeof *m);
    m->kind = _i;
    ck_assert_int_eq(run_virtual(sstress_main, m, NULL), 0);
    ck_expect_ok();
    ck_assert_uint_eq(m->bad, 0);
    ck_assert_uint_gt(m->acquired, SW * ITER / 2);
    ck_assert_uint_gt(m->cancelled, 100);
    if (_i == ST_CONDITION)
        ck_assert_uint_gt(m->waits, 1000);
}
END_TEST

/* ---- misuse ------------------------------------------------------------------ */

/* Runs `fn` inside a task, with the objects it may need; records its
 * result. A debug build traps at the misuse instead. */
struct mis_main {
    ptrio_frame fr;
    int (*fn)(struct mis_main *f);
    ptrio_lock lk;
    ptrio_semaphore s;
    ptrio_limiter lim;
    ptrio_limiter_token tok, tok2;
    ptrio_condition c;
    ptrio_condition_waiter w;
    int rc;
};

static int mis_main(ptrio_frame *fr)
{
    struct mis_main *f = PTRIO_SELF(fr, struct mis_main);
    PTRIO_BEGIN(f);
    ptrio_condition_init(&f->c, &f->lk);
    ptrio_limiter_init(&f->lim, 5);
    f->rc = f->fn(f);
    PTRIO_END(f);
}

static int misuse(int (*fn)(struct mis_main *f))
{
    struct mis_main *m = FIXTURE(struct mis_main);
    memset(m, 0, sizeof *m);
    m->fn = fn;
    ck_assert_int_eq(run_virtual(mis_main, m, NULL), 0);
    return m->rc;
}

static int reacquire_nowait(struct mis_main *f)
{
    EXPECT(ptrio_lock_acquire_nowait(&f->lk) == 0);
    return ptrio_lock_acquire_nowait(&f->lk);
}

static int reacquire(struct mis_main *f)
{
    EXPECT(ptrio_lock_acquire_nowait(&f->lk) == 0);
    return ptrio_lock_acquire(f, &f->lk);
}

static int release_unheld(struct mis_main *f)
{
    return ptrio_lock_release(&f->lk);
}

static int sem_too_many(struct mis_main *f)
{
    EXPECT(ptrio_semaphore_init(&f->s, 1, 1) == 0);
    return ptrio_semaphore_release(&f->s);
}

static int sem_bad_init(struct mis_main *f)
{
    return ptrio_semaphore_init(&f->s, 2, 1);
}

static int lim_twice(struct mis_main *f)
{
    EXPECT(ptrio_limiter_acquire_nowait(&f->lim, &f->tok) == 0);
    return ptrio_limiter_acquire(f, &f->lim, &f->tok2);
}

static int lim_twice_nowait(struct mis_main *f)
{
    EXPECT(ptrio_limiter_acquire_nowait(&f->lim, &f->tok) == 0);
    return ptrio_limiter_acquire_nowait(&f->lim, &f->tok2);
}
static int lim_token_in_use(struct mis_main *f)
{
    static const int other;
    EXPECT(ptrio_limiter_acquire_nowait(&f->lim, &f->tok) == 0);
    return ptrio_limiter_acquire_on_behalf_of_nowait(&f->lim, &f->tok,
                                                     &other);
}

static int lim_init_borrowed(struct mis_main *f)
{
    int rc;

    EXPECT(ptrio_limiter_acquire_nowait(&f->lim, &f->tok) == 0);
    rc = ptrio_limiter_init(&f->lim, 3);
    EXPECT(ptrio_limiter_total(&f->lim) == 5);
    EXPECT(ptrio_limiter_borrowed(&f->lim) == 1);
    EXPECT(ptrio_limiter_release(&f->lim, &f->tok) == 0);
    EXPECT(ptrio_limiter_init(&f->lim, 3) == 0);
    EXPECT(ptrio_limiter_total(&f->lim) == 3);
    return rc;
}

static int lim_release_unborrowed(struct mis_main *f)
{
    return ptrio_limiter_release(&f->lim, &f->tok);
}

/* NULL stands for no borrower at all: the nowait twin refuses it as the
 * blocking call does (it used to record a token nobody's, which then also
 * made every later NULL borrow a "borrower holds one already"). */
static int lim_null_borrower(struct mis_main *f)
{
    int rc = ptrio_limiter_acquire_on_behalf_of_nowait(&f->lim, &f->tok,
                                                       NULL);
    EXPECT(ptrio_limiter_borrowed(&f->lim) == 0);
    EXPECT(f->tok.limiter == NULL);
    return rc;
}

static int cond_wait_unheld(struct mis_main *f)
{
    return ptrio_condition_wait(f, &f->c, &f->w);
}

static int cond_notify_unheld(struct mis_main *f)
{
    return ptrio_condition_notify_all(&f->c);
}

static int cond_notify_one_unheld(struct mis_main *f)
{
    return ptrio_condition_notify(&f->c, 1);
}

static int cond_reacquire_nowait(struct mis_main *f)
{
    EXPECT(ptrio_condition_acquire_nowait(&f->c) == 0);
    return ptrio_condition_acquire_nowait(&f->c);
}

static int cond_uninit(struct mis_main *f)
{
    f->c.lock = NULL;
    return ptrio_condition_acquire_nowait(&f->c);
}

/* A wait after a dropped PTRIO_PENDING (here a sleep's, called without
 * PTRIO_AWAIT) is refused with nothing done: the lock stays held and the
 * task is in no lot (it used to release the lock and wait all the same). */
static int cond_wait_dropped(struct mis_main *f)
{
    int rc, dropped;
    EXPECT(ptrio_condition_acquire_nowait(&f->c) == 0);
    dropped = ptrio_sleep(f, PTRIO_MS(1));
    EXPECT(dropped == PTRIO_PENDING);
    rc = ptrio_condition_wait(f, &f->c, &f->w);
    EXPECT(ptrio_lock_owner(&f->lk) == ptrio_current_task());
    EXPECT(ptrio_condition_waiting(&f->c) == 0);
    if (ptrio_lock_owner(&f->lk) == ptrio_current_task())
        EXPECT(ptrio_condition_release(&f->c) == 0);
    return rc;
}

/* Rebinding a condition whose lock is held (a notified waiter may be
 * queued for that lock, and would take the new one instead) is refused;
 * binding it again to the same lock is not a rebind. */
static int cond_rebind_held(struct mis_main *f)
{
    static ptrio_lock other;
    int rc;
    EXPECT(ptrio_condition_acquire_nowait(&f->c) == 0);
    rc = ptrio_condition_init(&f->c, &other);
    EXPECT(f->c.lock == &f->lk);
    EXPECT(ptrio_condition_init(&f->c, &f->lk) == 0);
    EXPECT(ptrio_condition_release(&f->c) == 0);
    EXPECT(ptrio_condition_init(&f->c, &other) == 0);   /* unused now */
    return rc;
}

/* A held lock zeroed (there is no lock init: `= {0}` is how a lock is
 * re-initialised) left its lot linked among the loop's owned lots; the
 * next acquire linked it again, a cycle that the next task to exit walked
 * forever. Now the acquire notices it (a debug build traps) and works. */
struct exiter {
    ptrio_frame fr;
};

static int exiter(ptrio_frame *fr)
{
    struct exiter *f = PTRIO_SELF(fr, struct exiter);
    PTRIO_BEGIN(f);
    PTRIO_CHECKPOINT(f);
    PTRIO_END(f);
}

struct zeroed_lock_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct exiter k;
    ptrio_lock a, b;
};

static int zeroed_lock_main(ptrio_frame *fr)
{
    struct zeroed_lock_main *f = PTRIO_SELF(fr, struct zeroed_lock_main);
    PTRIO_BEGIN(f);
    EXPECT(ptrio_lock_acquire_nowait(&f->a) == 0);
    EXPECT(ptrio_lock_acquire_nowait(&f->b) == 0);
    f->a = (ptrio_lock){0};
    EXPECT(ptrio_lock_acquire_nowait(&f->a) == 0);
    EXPECT(ptrio_lock_owner(&f->a) == ptrio_current_task());
    EXPECT(ptrio_lock_release(&f->b) == 0);
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, exiter, &f->k));
    }
    EXPECT(ptrio_lock_release(&f->a) == 0);
    EXPECT(ptrio_lock_acquire_nowait(&f->b) == 0);
    PTRIO_END(f);
}

START_TEST(test_lock_zeroed_held)
{
    struct zeroed_lock_main *m = FIXTURE(struct zeroed_lock_main);
    RUN_MAIN(zeroed_lock_main, *m, 0);
    /* b broke when main exited holding it: the list still reached it */
    ck_assert(ptrio_lock_locked(&m->b) && !ptrio_lock_owner(&m->b));
}
END_TEST

START_TEST(test_lock_reacquire_nowait)
{
    reset();
    ck_assert_int_eq(misuse(reacquire_nowait), -PTRIO_EDEADLK);
    ck_expect_ok();
}
END_TEST

/* Trio: RuntimeError "attempt to re-acquire an already held Lock". */
START_TEST(test_lock_reacquire)
{
    reset();
    ck_assert_int_eq(misuse(reacquire), -PTRIO_EDEADLK);
    ck_expect_ok();
}
END_TEST

/* Trio: RuntimeError "can't release a Lock you don't own". */
START_TEST(test_lock_release_unheld)
{
    ck_assert_int_eq(misuse(release_unheld), -PTRIO_EPERM);
}
END_TEST

static int release_others_main(ptrio_frame *fr)
{
    struct lock_main *f = PTRIO_SELF(fr, struct lock_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        start_holder(f, 0, PTRIO_TIME_INF, 0);
        start_holder(f, 1, PTRIO_TIME_INF, 0);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        f->rc = ptrio_lock_release(&f->lk);
        /* Refused, and nothing moved: p0 holds it, p1 still waits. */
        ptrio_lock_statistics(&f->lk, &f->st);
        EXPECT(f->st.owner == &f->t[0] && f->st.waiting == 1);
        ptrio_nursery_cancel(&f->n);
    }
    PTRIO_END(f);
}

/* Releasing a lock another task holds is refused and changes nothing.
 * Trio test_sync.py: test_Lock_and_StrictFIFOLock ("can't release a lock
 * someone else holds") */
START_TEST(test_lock_release_others)
{
    struct lock_main *m = FIXTURE(struct lock_main);
    RUN_MAIN(release_others_main, *m, 0);
    ck_assert_int_eq(m->rc, -PTRIO_EPERM);
    ck_assert_str_eq(L.buf, "p0+@0 p1+@0 p0*@0 p0!PTRIO_ECANCELED@1 "
                            "p1!PTRIO_ECANCELED@1");
}
END_TEST

/* Trio: ValueError "semaphore released too many times". */
START_TEST(test_sem_released_too_many_times)
{
    reset();
    ck_assert_int_eq(misuse(sem_too_many), -PTRIO_EOVERFLOW);
    ck_expect_ok();
}
END_TEST

/* Trio: ValueError "max_values must be >= initial_value". */
START_TEST(test_sem_bad_init)
{
    ck_assert_int_eq(misuse(sem_bad_init), -PTRIO_EINVAL);
}
END_TEST

/* Trio: RuntimeError "this borrower is already holding one of this
 * CapacityLimiter's tokens". */
START_TEST(test_lim_borrow_twice)
{
    reset();
    ck_assert_int_eq(misuse(lim_twice), -PTRIO_EDEADLK);
    ck_expect_ok();
}
END_TEST

/* Trio test_sync.py: test_CapacityLimiter (acquire_nowait by a task that
 * holds a token already: RuntimeError) */
START_TEST(test_lim_borrow_twice_nowait)
{
    reset();
    ck_assert_int_eq(misuse(lim_twice_nowait), -PTRIO_EDEADLK);
    ck_expect_ok();
}
END_TEST

/* Two borrows for one borrower, the first still waiting: the second is
 * borrowing twice as well, and fails at once, nowait or not (Trio lets it
 * wait; when both are granted its set of borrowers holds that borrower
 * once, for two tokens, and the second release raises). The waiter then
 * gets its one token. */
static int lim_awaited_twice_main(ptrio_frame *fr)
{
    struct lim_main *f = PTRIO_SELF(fr, struct lim_main);
    PTRIO_BEGIN(f);
    ptrio_limiter_init(&f->c, 0);
    PTRIO_NURSERY(f, &f->n) {
        start_borrower(f, 3);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(ptrio_limiter_acquire_on_behalf_of_nowait(
                   &f->c, &f->tok, &vals[3]) == -PTRIO_EDEADLK);
        PTRIO_TRY(f, f->i, ptrio_limiter_acquire_on_behalf_of(
                               f, &f->c, &f->tok2, &vals[3]));
        EXPECT(f->i == -PTRIO_EDEADLK);
        EXPECT(ptrio_limiter_waiting(&f->c) == 1);
        ptrio_limiter_set_total(&f->c, 2);
        EXPECT(borrowers_are(&f->c, 1u << 3));
        EXPECT(ptrio_limiter_borrowed(&f->c) == 1);
        /* another borrower still borrows beside it */
        EXPECT(ptrio_limiter_acquire_on_behalf_of_nowait(
                   &f->c, &f->tok3, &vals[4]) == 0);
    }
    EXPECT(ptrio_limiter_release(&f->c, &f->b[3].tok) == 0);
    EXPECT(ptrio_limiter_release(&f->c, &f->tok3) == 0);
    EXPECT(ptrio_limiter_borrowed(&f->c) == 0);
    PTRIO_END(f);
}

START_TEST(test_lim_awaited_twice)
{
    struct lim_main *m = FIXTURE(struct lim_main);
    RUN_MAIN(lim_awaited_twice_main, *m, 0);
    ck_assert_str_eq(L.buf, "p3+@0 p3=0@1");
}
END_TEST

/* An acquire that fails (cancelled before it could borrow, or refused)
 * leaves its token as it was: no borrower noted in a token nobody holds. */
static int lim_failed_leaves_token_main(ptrio_frame *fr)
{
    struct lim_main *f = PTRIO_SELF(fr, struct lim_main);
    PTRIO_BEGIN(f);
    ptrio_limiter_init(&f->c, 1);
    PTRIO_CANCEL_SCOPE(f, &f->sc) {
        ptrio_cancel(&f->sc);
        PTRIO_TRY(f, f->i, ptrio_limiter_acquire(f, &f->c, &f->tok));
        EXPECT(f->i == -PTRIO_ECANCELED);
        PTRIO_TRY(f, f->i, ptrio_limiter_acquire_on_behalf_of(
                               f, &f->c, &f->tok2, &vals[1]));
        EXPECT(f->i == -PTRIO_ECANCELED);
    }
    EXPECT(ptrio_limiter_borrower(&f->tok) == NULL);
    EXPECT(ptrio_limiter_borrower(&f->tok2) == NULL);
    EXPECT(ptrio_limiter_borrowed(&f->c) == 0);
    PTRIO_END(f);
}

START_TEST(test_lim_failed_acquire_leaves_token)
{
    struct lim_main *m = FIXTURE(struct lim_main);
    RUN_MAIN(lim_failed_leaves_token_main, *m, 0);
    ck_assert_str_eq(L.buf, "");
}
END_TEST

/* Starts p2, borrowing on behalf of the running (main) task. */
static void start_proxy_of_main(struct lim_main *f)
{
    f->b[2] = (struct borrower){.name = names[2], .lim = &f->c,
                                .who = ptrio_current_task()};
    EXPECT(ptrio_start_soon(&f->n, &f->t[2], borrower, &f->b[2]) == 0);
}

/* `who` holds the one token `lim` lends. */
static int only_borrower_is(const ptrio_limiter *lim, const void *who)
{
    ptrio_limiter_token *k = ptrio_limiter_next(lim, NULL);
    return k && ptrio_limiter_borrower(k) == who &&
           !ptrio_limiter_next(lim, k);
}

/* The same, the other way round: a task waits for a token on behalf of
 * the main task, which then borrows for itself. It is that waiter's
 * borrower already, so it fails at once, nowait or not, and is granted
 * one token (its own borrow used to be let through: two tokens for one
 * borrower). */
static int lim_self_awaited_main(ptrio_frame *fr)
{
    struct lim_main *f = PTRIO_SELF(fr, struct lim_main);
    PTRIO_BEGIN(f);
    ptrio_limiter_init(&f->c, 0);
    PTRIO_NURSERY(f, &f->n) {
        start_proxy_of_main(f);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(ptrio_limiter_acquire_nowait(&f->c, &f->tok) ==
               -PTRIO_EDEADLK);
        PTRIO_TRY(f, f->i, ptrio_limiter_acquire(f, &f->c, &f->tok2));
        EXPECT(f->i == -PTRIO_EDEADLK);
        EXPECT(ptrio_limiter_waiting(&f->c) == 1);
        ptrio_limiter_set_total(&f->c, 2);
        EXPECT(ptrio_limiter_borrowed(&f->c) == 1);
        EXPECT(only_borrower_is(&f->c, ptrio_current_task()));
    }
    EXPECT(ptrio_limiter_release(&f->c, &f->b[2].tok) == 0);
    EXPECT(ptrio_limiter_borrowed(&f->c) == 0);
    PTRIO_END(f);
}

START_TEST(test_lim_self_awaited)
{
    struct lim_main *m = FIXTURE(struct lim_main);
    RUN_MAIN(lim_self_awaited_main, *m, 0);
    ck_assert_str_eq(L.buf, "p2+@0 p2=0@1");
}
END_TEST

/* A wait on behalf of the main task is cancelled: the main task is
 * nobody's borrower then, and borrows for itself (the limiter's count of
 * such waits is one too many until a borrow looks). */
static int lim_proxy_cancelled_main(ptrio_frame *fr)
{
    struct lim_main *f = PTRIO_SELF(fr, struct lim_main);
    PTRIO_BEGIN(f);
    ptrio_limiter_init(&f->c, 0);
    PTRIO_NURSERY(f, &f->n) {
        start_proxy_of_main(f);
        start_borrower(f, 3);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(ptrio_task_cancel(&f->t[2]) == 0);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(ptrio_limiter_waiting(&f->c) == 1);
        EXPECT(ptrio_limiter_acquire_nowait(&f->c, &f->tok) ==
               -PTRIO_EWOULDBLOCK);
        ptrio_limiter_set_total(&f->c, 1);
        EXPECT(ptrio_limiter_acquire_nowait(&f->c, &f->tok) ==
               -PTRIO_EWOULDBLOCK);
        ptrio_limiter_set_total(&f->c, 2);
        EXPECT(ptrio_limiter_acquire_nowait(&f->c, &f->tok) == 0);
        EXPECT(ptrio_limiter_release(&f->c, &f->tok) == 0);
        EXPECT(ptrio_limiter_release(&f->c, &f->b[3].tok) == 0);
    }
    PTRIO_END(f);
}

START_TEST(test_lim_proxy_cancelled)
{
    struct lim_main *m = FIXTURE(struct lim_main);
    RUN_MAIN(lim_proxy_cancelled_main, *m, 0);
    ck_assert_str_eq(L.buf, "p2+@0 p3+@0 p2!PTRIO_ECANCELED@1 p3=0@2");
}
END_TEST

/* Re-initialising a limiter that lends a token is refused, as for a
 * semaphore that tasks wait on: it would forget the borrow. */
START_TEST(test_lim_init_borrowed)
{
    reset();
    ck_assert_int_eq(misuse(lim_init_borrowed), -PTRIO_EBUSY);
    ck_expect_ok();
}
END_TEST

START_TEST(test_lim_token_in_use)
{
    reset();
    ck_assert_int_eq(misuse(lim_token_in_use), -PTRIO_EBUSY);
    ck_expect_ok();
}
END_TEST

/* A token that rides with a waiting acquire is in use too: a second
 * borrow with it, waiting or not, of this limiter or another, is refused,
 * and the waiter alone gets it (it used to be linked twice: three
 * borrowed of two tokens, and a borrowers list that never ends). */
static ptrio_limiter lim_other;

static int lim_awaited_main(ptrio_frame *fr)
{
    struct lim_main *f = PTRIO_SELF(fr, struct lim_main);
    PTRIO_BEGIN(f);
    ptrio_limiter_init(&f->c, 1);
    EXPECT(ptrio_limiter_acquire_nowait(&f->c, &f->tok) == 0);
    PTRIO_NURSERY(f, &f->n) {
        start_borrower(f, 0);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(ptrio_limiter_waiting(&f->c) == 1);
        EXPECT(ptrio_limiter_acquire_on_behalf_of_nowait(
                   &f->c, &f->b[0].tok, &vals[1]) == -PTRIO_EBUSY);
        PTRIO_TRY(f, f->i, ptrio_limiter_acquire_on_behalf_of(
                               f, &f->c, &f->b[0].tok, &vals[1]));
        EXPECT(f->i == -PTRIO_EBUSY);
        /* nor with another limiter */
        ptrio_limiter_init(&lim_other, 5);
        EXPECT(ptrio_limiter_acquire_nowait(&lim_other, &f->b[0].tok) ==
               -PTRIO_EBUSY);
        EXPECT(ptrio_limiter_borrowed(&lim_other) == 0);
        EXPECT(ptrio_limiter_waiting(&f->c) == 1);
        EXPECT(ptrio_limiter_release(&f->c, &f->tok) == 0);
        EXPECT(ptrio_limiter_borrowed(&f->c) == 1);
        EXPECT(borrowers_are(&f->c, 1u << 0));
        EXPECT(ptrio_limiter_release(&f->c, &f->b[0].tok) == 0);
        EXPECT(ptrio_limiter_borrowed(&f->c) == 0);
    }
    PTRIO_END(f);
}

START_TEST(test_lim_awaited_token_in_use)
{
    struct lim_main *m = FIXTURE(struct lim_main);
    RUN_MAIN(lim_awaited_main, *m, 0);
    ck_assert_str_eq(L.buf, "p0+@0 p0=0@1");
}
END_TEST

/* Trio: RuntimeError "this borrower isn't holding any of this
 * CapacityLimiter's tokens". */
START_TEST(test_lim_release_unborrowed)
{
    ck_assert_int_eq(misuse(lim_release_unborrowed), -PTRIO_EPERM);
}
END_TEST

START_TEST(test_lim_null_borrower)
{
    reset();
    ck_assert_int_eq(misuse(lim_null_borrower), -PTRIO_EINVAL);
    ck_expect_ok();
}
END_TEST

/* NULL objects to the calls that return nothing: no crash, nothing done
 * (a trap in debug builds). */
START_TEST(test_null_setters)
{
    ptrio_chan_stats st = {0};
    static ptrio_chan ch;
    ptrio_limiter_set_total(NULL, 3);
    ptrio_chan_statistics(NULL, &st);
    ck_assert_uint_eq(st.capacity, 0);
    ptrio_chan_statistics(&ch, NULL);
}
END_TEST

/* Trio: RuntimeError "must hold the lock to wait" / "to notify". */
START_TEST(test_cond_wait_unheld)
{
    ck_assert_int_eq(misuse(cond_wait_unheld), -PTRIO_EPERM);
}
END_TEST

START_TEST(test_cond_notify_unheld)
{
    ck_assert_int_eq(misuse(cond_notify_unheld), -PTRIO_EPERM);
}
END_TEST

/* Trio test_sync.py: test_Condition (notify() and notify_all() without
 * the lock: RuntimeError) */
START_TEST(test_cond_notify_one_unheld)
{
    ck_assert_int_eq(misuse(cond_notify_one_unheld), -PTRIO_EPERM);
}
END_TEST

/* Trio test_sync.py: test_Condition (acquire_nowait of a condition whose
 * lock the task holds: RuntimeError) */
START_TEST(test_cond_reacquire_nowait)
{
    reset();
    ck_assert_int_eq(misuse(cond_reacquire_nowait), -PTRIO_EDEADLK);
    ck_expect_ok();
}
END_TEST

START_TEST(test_cond_uninit)
{
    ck_assert_int_eq(misuse(cond_uninit), -PTRIO_EINVAL);
}
END_TEST

START_TEST(test_cond_wait_dropped)
{
    reset();
    ck_assert_int_eq(misuse(cond_wait_dropped), -PTRIO_EMISUSE);
    ck_expect_ok();
}
END_TEST

START_TEST(test_cond_rebind_held)
{
    reset();
    ck_assert_int_eq(misuse(cond_rebind_held), -PTRIO_EBUSY);
    ck_expect_ok();
}
END_TEST

/* Outside a task, there is no caller to hold or release anything. */
START_TEST(test_sync_outside_task)
{
    static ptrio_lock lk;
    static ptrio_limiter lim;
    static ptrio_limiter_token tok;
    ck_assert_int_eq(ptrio_lock_acquire_nowait(&lk), -PTRIO_ENOTASK);
    ck_assert_int_eq(ptrio_lock_release(&lk), -PTRIO_ENOTASK);
    ck_assert_int_eq(ptrio_limiter_acquire_nowait(&lim, &tok),
                     -PTRIO_ENOTASK);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sync");
    TCase *tc = tcase_create("sync");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_checkpoint_rules);
    tcase_add_test(tc, test_event);
    tcase_add_test(tc, test_lock);
    tcase_add_test(tc, test_lock_handoff);
    tcase_add_test(tc, test_lock_holder_exits);
    tcase_add_test(tc, test_lock_handover);
    tcase_add_test(tc, test_semaphore);
    tcase_add_test(tc, test_limiter);
    tcase_add_test(tc, test_limiter_total_tokens);
    tcase_add_test(tc, test_limiter_zero_under_borrower);
    tcase_add_test(tc, test_limiter_zero_limit_tokens);
    tcase_add_test(tc, test_limiter_inf);
    tcase_add_test(tc, test_condition);
    tcase_add_test(tc, test_condition_waiter_reused);
    tcase_add_test(tc, test_condition_waiter_reused_after_failure);
    tcase_add_test(tc, test_condition_cancel_holds_lock);
    tcase_add_test(tc, test_condition_rebound_under_cancelled_waiter);
    tcase_add_test(tc, test_condition_wait_when_cancelled);
    tcase_add_test(tc, test_condition_lock_breaks);
    tcase_add_test(tc, test_handoff_then_cancelled);
    tcase_add_test(tc, test_condition_notify_skips_cancelled);
    tcase_add_test(tc, test_condition_lock_breaks_unnotified);
    tcase_add_loop_test(tc, test_generic_lock_exclusion, 0, LK_KINDS);
    tcase_add_loop_test(tc, test_generic_lock_fifo_fairness, 0, LK_KINDS);
    tcase_add_loop_test(tc, test_generic_lock_acquire_nowait_blocks_acquire,
                        0, LK_KINDS);
    tcase_add_loop_test(tc, test_sync_stress_cancellation, 0, ST_KINDS);
    tcase_add_misuse_test(tc, test_lock_reacquire_nowait);
    tcase_add_misuse_test(tc, test_lock_reacquire);
    tcase_add_misuse_test(tc, test_lock_release_unheld);
    tcase_add_misuse_test(tc, test_lock_release_others);
    tcase_add_misuse_test(tc, test_sem_released_too_many_times);
    tcase_add_misuse_test(tc, test_sem_bad_init);
    tcase_add_misuse_test(tc, test_lim_borrow_twice);
    tcase_add_misuse_test(tc, test_lim_borrow_twice_nowait);
    tcase_add_misuse_test(tc, test_lim_token_in_use);
    tcase_add_misuse_test(tc, test_lim_init_borrowed);
    tcase_add_test(tc, test_lim_proxy_cancelled);
    tcase_add_test(tc, test_lim_failed_acquire_leaves_token);
    tcase_add_misuse_test(tc, test_lim_awaited_twice);
    tcase_add_misuse_test(tc, test_lim_self_awaited);
    tcase_add_misuse_test(tc, test_lim_awaited_token_in_use);
    tcase_add_misuse_test(tc, test_lim_release_unborrowed);
    tcase_add_misuse_test(tc, test_lim_null_borrower);
    tcase_add_misuse_test(tc, test_cond_wait_unheld);
    tcase_add_misuse_test(tc, test_cond_notify_unheld);
    tcase_add_misuse_test(tc, test_cond_notify_one_unheld);
    tcase_add_misuse_test(tc, test_cond_reacquire_nowait);
    tcase_add_misuse_test(tc, test_cond_uninit);
    tcase_add_misuse_test(tc, test_cond_wait_dropped);
    tcase_add_misuse_test(tc, test_cond_rebind_held);
    tcase_add_misuse_test(tc, test_lock_zeroed_held);
    tcase_add_misuse_test(tc, test_null_setters);
    tcase_add_test(tc, test_sync_outside_task);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
