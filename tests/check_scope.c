/* tests/check_scope.c: cancel scopes: cancel points, cancel_called vs
 * cancelled_caught, which scope catches, shields, deadlines (move_on,
 * fail_after, changing them), effective deadlines, cancellation reaching
 * nested tasks. Where a test has a twin in Python Trio
 * (trio/_core/_tests/test_run.py, trio/_tests/test_timeouts.py) the
 * comment above it names it. Portable: no POSIX calls; all time is on
 * the virtual clock. */
#include <stdlib.h>

#define TESTUTIL_EVENTS
#include "testutil.h"

/* ---- shared helpers ------------------------------------------------ */

/* A nursery of two sleepers `k`, named "<name>-l1/2" by the caller. */
struct worker {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct sleeper k[2];
};

static int worker(ptrio_frame *fr)
{
    struct worker *f = PTRIO_SELF(fr, struct worker);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], sleeper, &f->k[0]));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], sleeper, &f->k[1]));
    }
    PTRIO_END(f);
}

/* ---- cancel points --------------------------------------------------- */

struct cic_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct marker sib;
    ptrio_scope sc;
    int r1, r2;
};

static int cic_main(ptrio_frame *fr)
{
    struct cic_main *f = PTRIO_SELF(fr, struct cic_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->sib = (struct marker){.name = "sib"};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, marker, &f->sib));
        PTRIO_CANCEL_SCOPE(f, &f->sc) {
            f->r1 = ptrio_checkpoint_if_cancelled(f);
            ev("a", "");
            ptrio_cancel(&f->sc);
            f->r2 = ptrio_checkpoint_if_cancelled(f);
            ev("b", "");
            PTRIO_AWAIT(f, ptrio_checkpoint_if_cancelled(f));
            ev("not-reached", "");
        }
        ev("c", "");
    }
    PTRIO_END(f);
}

/* checkpoint_if_cancelled is 0 until the scope is cancelled, then
 * -ECANCELED; it never yields (the sibling runs only at the nursery's
 * end). */
/* Trio test_run.py: test_cancel_points (main1) */
START_TEST(test_checkpoint_if_cancelled)
{
    static struct cic_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(cic_main, &m, NULL), 0);
    ck_assert_int_eq(m.r1, 0);
    ck_assert_int_eq(m.r2, -PTRIO_ECANCELED);
    ck_assert(ptrio_cancelled_caught(&m.sc));
    ck_assert_str_eq(L.buf, "a@0 b@0 c@0 sib@0");
}
END_TEST

struct cp_main {
    ptrio_frame fr;
    ptrio_scope sc, sc2;
    int mode;
};

static int cp_main(ptrio_frame *fr)
{
    struct cp_main *f = PTRIO_SELF(fr, struct cp_main);
    PTRIO_BEGIN(f);
    PTRIO_CANCEL_SCOPE(f, &f->sc) {
        PTRIO_CHECKPOINT(f);
        ptrio_cancel(&f->sc);
        PTRIO_CHECKPOINT(f);
        ev("not-reached", "");
    }
    ev("after", "");
    PTRIO_CANCEL_SCOPE(f, &f->sc2) {
        ptrio_cancel(&f->sc2);
        PTRIO_AWAIT(f, ptrio_sleep_forever(f));
        ev("not-reached", "");
    }
    ev("after2", "");
    PTRIO_END(f);
}

/* A checkpoint or a sleep_forever in a cancelled scope fails at once; the
 * scope catches it. */
/* Trio test_run.py: test_cancel_points (main2, main3) */
START_TEST(test_checkpoint_and_sleep_when_cancelled)
{
    static struct cp_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(cp_main, &m, NULL), 0);
    ck_assert(ptrio_cancelled_caught(&m.sc));
    ck_assert(ptrio_cancelled_caught(&m.sc2));
    ck_assert_str_eq(L.buf, "after@0 after2@0");
}
END_TEST

struct yield_main {
    ptrio_frame fr;
    ptrio_scope sc;
    int r;
};

static int yield_main(ptrio_frame *fr)
{
    struct yield_main *f = PTRIO_SELF(fr, struct yield_main);
    PTRIO_BEGIN(f);
    PTRIO_CANCEL_SCOPE(f, &f->sc) {
        ptrio_cancel(&f->sc);
        PTRIO_YIELD(f);
        PTRIO_YIELD(f);
        ev("yielded", "");
        PTRIO_TRY(f, f->r, ptrio_checkpoint(f));
        ev("again", "");
        PTRIO_CHECKPOINT(f);
        ev("not-reached", "");
    }
    ev("after", "");
    PTRIO_END(f);
}

/* ptrio_yield is not a cancel point; the cancellation stays pending
 * (level-triggered) for the next checkpoint. */
/* Trio test_run.py: test_cancel_points (main4) */
START_TEST(test_yield_ignores_cancel)
{
    static struct yield_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(yield_main, &m, NULL), 0);
    ck_assert_int_eq(m.r, -PTRIO_ECANCELED);
    ck_assert(ptrio_cancelled_caught(&m.sc));
    ck_assert_str_eq(L.buf, "yielded@0 again@0 after@0");
}
END_TEST

struct edge_main {
    ptrio_frame fr;
    ptrio_scope a, b;
    int r1, r2;
};

static int edge_main(ptrio_frame *fr)
{
    struct edge_main *f = PTRIO_SELF(fr, struct edge_main);
    PTRIO_BEGIN(f);
    PTRIO_CANCEL_SCOPE(f, &f->a) {
        ptrio_cancel(&f->a);
        ptrio_cancel(&f->a);
        PTRIO_CHECKPOINT(f);
    }
    PTRIO_CANCEL_SCOPE(f, &f->b) {
        ptrio_cancel(&f->b);
        PTRIO_TRY(f, f->r1, ptrio_sleep_forever(f));
        PTRIO_TRY(f, f->r2, ptrio_sleep_forever(f));
    }
    ev("after", "");
    PTRIO_END(f);
}

/* Cancel is idempotent; cancellation is level-triggered (two sleeps in a
 * row both fail). */
/* Trio test_run.py: test_cancel_edge_cases */
START_TEST(test_cancel_edge_cases)
{
    static struct edge_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(edge_main, &m, NULL), 0);
    ck_assert(ptrio_cancel_called(&m.a));
    ck_assert(ptrio_cancelled_caught(&m.a));
    ck_assert_int_eq(m.r1, -PTRIO_ECANCELED);
    ck_assert_int_eq(m.r2, -PTRIO_ECANCELED);
    ck_assert(ptrio_cancel_called(&m.b));
    ck_assert(!ptrio_cancelled_caught(&m.b));   /* the TRYs caught it */
    ck_assert_str_eq(L.buf, "after@0");
}
END_TEST

struct called_main {
    ptrio_frame fr;
    ptrio_scope sc;
};

static int called_main(ptrio_frame *fr)
{
    struct called_main *f = PTRIO_SELF(fr, struct called_main);
    PTRIO_BEGIN(f);
    PTRIO_CANCEL_SCOPE(f, &f->sc) {
        ptrio_cancel(&f->sc);
        ev("body", "");
    }
    ev("after", "");
    PTRIO_CHECKPOINT(f);
    ev("end", "");
    PTRIO_END(f);
}

/* cancel_called without cancelled_caught: the body finished without a
 * checkpoint; outside the scope nothing is cancelled any more. */
START_TEST(test_cancel_called_not_caught)
{
    static struct called_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(called_main, &m, NULL), 0);
    ck_assert(ptrio_cancel_called(&m.sc));
    ck_assert(!ptrio_cancelled_caught(&m.sc));
    ck_assert_str_eq(L.buf, "body@0 after@0 end@0");
}
END_TEST

struct scoped_sleeper {
    ptrio_frame fr;
    const char *name;
    ptrio_scope sc;
    ptrio_time d;
    int shield;
};

static int scoped_sleeper(ptrio_frame *fr)
{
    struct scoped_sleeper *f = PTRIO_SELF(fr, struct scoped_sleeper);
    PTRIO_BEGIN(f);
    ev(f->name, "+");
    PTRIO_CANCEL_SCOPE(f, &f->sc) {
        if (f->shield)
            ptrio_scope_set_shield(&f->sc, true);
        PTRIO_AWAIT(f, ptrio_sleep(f, f->d));
        ev(f->name, "-woke");
    }
    ev(f->name, "-after");
    PTRIO_FINALLY(f);
    if (PTRIO_FINALLY_ERROR(f))
        ev_err(f->name, PTRIO_FINALLY_ERROR(f));
    PTRIO_END(f);
}

struct parked_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct scoped_sleeper k;
};

static int parked_main(ptrio_frame *fr)
{
    struct parked_main *f = PTRIO_SELF(fr, struct parked_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->k = (struct scoped_sleeper){.name = "kid", .d = PTRIO_SEC(10)};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, scoped_sleeper, &f->k));
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(2)));
        ev("cancel", "");
        ptrio_cancel(&f->k.sc);
    }
    ev("closed", "");
    PTRIO_END(f);
}

/* A task parked inside a scope that another task cancels wakes at once
 * with -ECANCELED; its scope catches it. */
START_TEST(test_parked_task_woken_at_once)
{
    static struct parked_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(parked_main, &m, NULL), 0);
    ck_assert(ptrio_cancelled_caught(&m.k.sc));
    ck_assert(!ptrio_cancel_called(ptrio_nursery_scope(&m.n)));
    ck_assert_str_eq(L.buf, "kid+@0 cancel@2000 kid-after@2000 closed@2000");
}
END_TEST

/* ---- which scope catches --------------------------------------------- */

struct nest_main {
    ptrio_frame fr;
    ptrio_scope s1, s2, s3;
};

static int nest_main(ptrio_frame *fr)
{
    struct nest_main *f = PTRIO_SELF(fr, struct nest_main);
    PTRIO_BEGIN(f);
    PTRIO_CANCEL_SCOPE(f, &f->s1) {
        PTRIO_CANCEL_SCOPE(f, &f->s2) {
            PTRIO_CANCEL_SCOPE(f, &f->s3) {
                ptrio_cancel(&f->s3);
                ptrio_cancel(&f->s2);
                PTRIO_AWAIT(f, ptrio_sleep_forever(f));
            }
            ev("not-reached", "");
        }
        ev("after-s2", "");
    }
    ev("after-s1", "");
    PTRIO_END(f);
}

/* When two scopes are cancelled, the outermost one catches. */
/* Trio test_run.py: test_cancel_scope_nesting (1) */
START_TEST(test_scope_nesting_outer_wins)
{
    static struct nest_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(nest_main, &m, NULL), 0);
    ck_assert(ptrio_cancel_called(&m.s3));
    ck_assert(!ptrio_cancelled_caught(&m.s3));
    ck_assert(ptrio_cancel_called(&m.s2));
    ck_assert(ptrio_cancelled_caught(&m.s2));
    ck_assert(!ptrio_cancel_called(&m.s1));
    ck_assert(!ptrio_cancelled_caught(&m.s1));
    ck_assert_str_eq(L.buf, "after-s2@0 after-s1@0");
}
END_TEST

struct popped_main {
    ptrio_frame fr;
    ptrio_scope sc;
};

static int popped_main(ptrio_frame *fr)
{
    struct popped_main *f = PTRIO_SELF(fr, struct popped_main);
    PTRIO_BEGIN(f);
    PTRIO_CANCEL_SCOPE(f, &f->sc) {
        ptrio_cancel(&f->sc);
        PTRIO_YIELD(f);
    }
    PTRIO_CHECKPOINT(f);
    ev("after", "");
    PTRIO_END(f);
}

/* A cancellation still pending when its scope is left is not delivered. */
/* Trio test_run.py: test_cancel_scope_nesting (3) */
START_TEST(test_pending_cancel_popped)
{
    static struct popped_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(popped_main, &m, NULL), 0);
    ck_assert(ptrio_cancel_called(&m.sc));
    ck_assert(!ptrio_cancelled_caught(&m.sc));
    ck_assert_str_eq(L.buf, "after@0");
}
END_TEST

struct inner_main {
    ptrio_frame fr;
    ptrio_scope outer, inner;
};

static int inner_main(ptrio_frame *fr)
{
    struct inner_main *f = PTRIO_SELF(fr, struct inner_main);
    PTRIO_BEGIN(f);
    PTRIO_CANCEL_SCOPE(f, &f->outer) {
        PTRIO_CANCEL_SCOPE(f, &f->inner) {
            ptrio_cancel(&f->inner);
            PTRIO_AWAIT(f, ptrio_sleep_forever(f));
        }
        ev("between", "");
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));
        ev("outer-end", "");
    }
    ev("after", "");
    PTRIO_END(f);
}

/* An inner scope catches its own cancellation; the outer one is not
 * affected. */
START_TEST(test_inner_catches_only_its_own)
{
    static struct inner_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(inner_main, &m, NULL), 0);
    ck_assert(ptrio_cancelled_caught(&m.inner));
    ck_assert(!ptrio_cancel_called(&m.outer));
    ck_assert(!ptrio_cancelled_caught(&m.outer));
    ck_assert_str_eq(L.buf, "between@0 outer-end@1000 after@1000");
}
END_TEST

struct reach_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_scope outer, inner;
    ptrio_task t;
    struct canceller c;
};

static int reach_main(ptrio_frame *fr)
{
    struct reach_main *f = PTRIO_SELF(fr, struct reach_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->c = (struct canceller){.name = "cancel", .d = PTRIO_SEC(1),
                                  .target = &f->outer};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, canceller, &f->c));
        PTRIO_CANCEL_SCOPE(f, &f->outer) {
            PTRIO_CANCEL_SCOPE(f, &f->inner) {
                PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(10)));
            }
            ev("not-reached", "");
        }
        ev("after-outer", "");
    }
    ev("closed", "");
    PTRIO_END(f);
}

/* Cancelling an outer scope (from another task) reaches a task parked in
 * an inner scope; the outer scope catches, the inner does not. */
START_TEST(test_outer_cancel_reaches_inner)
{
    static struct reach_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(reach_main, &m, NULL), 0);
    ck_assert(ptrio_cancelled_caught(&m.outer));
    ck_assert(!ptrio_cancel_called(&m.inner));
    ck_assert(!ptrio_cancelled_caught(&m.inner));
    ck_assert_str_eq(L.buf, "cancel@1000 after-outer@1000 closed@1000");
}
END_TEST

struct inherit_main {
    ptrio_frame fr;
    ptrio_scope top;
    ptrio_nursery n;
    ptrio_task t[2];
    struct worker w[2];
};

static int inherit_main(ptrio_frame *fr)
{
    struct inherit_main *f = PTRIO_SELF(fr, struct inherit_main);
    PTRIO_BEGIN(f);
    PTRIO_CANCEL_SCOPE(f, &f->top) {
        PTRIO_NURSERY(f, &f->n) {
            f->w[0] = (struct worker){
                .k = {{.name = "w1-l1", .d = PTRIO_TIME_INF},
                      {.name = "w1-l2", .d = PTRIO_TIME_INF}}};
            f->w[1] = (struct worker){
                .k = {{.name = "w2-l1", .d = PTRIO_TIME_INF},
                      {.name = "w2-l2", .d = PTRIO_TIME_INF}}};
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], worker,
                                            &f->w[0]));
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], worker,
                                            &f->w[1]));
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));
            ptrio_cancel(&f->top);
        }
        ev("not-reached", "");
    }
    ev("done", "");
    PTRIO_END(f);
}

/* Cancelling a scope reaches at once every task in the nurseries below it,
 * grandchildren included. */
/* Trio test_run.py: test_cancel_inheritance */
START_TEST(test_cancel_inheritance)
{
    static struct inherit_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(inherit_main, &m, NULL), 0);
    ck_assert(ptrio_cancelled_caught(&m.top));
    ck_assert_str_eq(L.buf,
                     "w1-l1+@0 w1-l2+@0 w2-l1+@0 w2-l2+@0 "
                     "w1-l1!PTRIO_ECANCELED@1000 w1-l2!PTRIO_ECANCELED@1000 "
                     "w2-l1!PTRIO_ECANCELED@1000 w2-l2!PTRIO_ECANCELED@1000 done@1000");
}
END_TEST

struct slow_cleanup {
    ptrio_frame fr;
    ptrio_scope sh;
};

static int slow_cleanup(ptrio_frame *fr)
{
    struct slow_cleanup *f = PTRIO_SELF(fr, struct slow_cleanup);
    PTRIO_BEGIN(f);
    ev("k1", "+");
    PTRIO_AWAIT(f, ptrio_sleep_forever(f));
    PTRIO_FINALLY(f);
    ev_err("k1", PTRIO_FINALLY_ERROR(f));
    PTRIO_SHIELD(f, &f->sh) {
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));
    }
    ev("k1", "-cleaned");
    PTRIO_END(f);
}

struct join_main {
    ptrio_frame fr;
    ptrio_scope outer;
    ptrio_nursery n;
    ptrio_task t[2];
    struct slow_cleanup k;
    struct canceller c;
};

static int join_main(ptrio_frame *fr)
{
    struct join_main *f = PTRIO_SELF(fr, struct join_main);
    PTRIO_BEGIN(f);
    PTRIO_CANCEL_SCOPE(f, &f->outer) {
        PTRIO_NURSERY(f, &f->n) {
            f->c = (struct canceller){.name = "cancel", .d = PTRIO_SEC(2),
                                      .target = &f->outer};
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], slow_cleanup,
                                            &f->k));
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], canceller,
                                            &f->c));
        }
        ev("not-reached", "");
    }
    ev("after", "");
    PTRIO_END(f);
}

/* An outer scope cancelled while the parent waits at the nursery's end:
 * the children are cancelled, the nursery still waits for all of them
 * (a shielded cleanup), then the outer scope catches the -ECANCELED. */
START_TEST(test_cancel_during_join)
{
    static struct join_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(join_main, &m, NULL), 0);
    ck_assert(ptrio_cancelled_caught(&m.outer));
    ck_assert_str_eq(L.buf, "k1+@0 cancel@2000 k1!PTRIO_ECANCELED@2000 "
                            "k1-cleaned@3000 after@3000");
}
END_TEST

/* ---- shields -------------------------------------------------------- */

struct shielding_main {
    ptrio_frame fr;
    ptrio_scope outer, inner, innerest;
    int r[6];
    bool sh0, sh1;
};

static int shielding_main(ptrio_frame *fr)
{
    struct shielding_main *f = PTRIO_SELF(fr, struct shielding_main);
    PTRIO_BEGIN(f);
    PTRIO_CANCEL_SCOPE(f, &f->outer) {
        PTRIO_CANCEL_SCOPE(f, &f->inner) {
            PTRIO_CHECKPOINT(f);
            ptrio_cancel(&f->outer);
            PTRIO_TRY(f, f->r[0], ptrio_checkpoint(f));
            f->sh0 = ptrio_scope_shield(&f->inner);
            ptrio_scope_set_shield(&f->inner, true);
            f->sh1 = ptrio_scope_shield(&f->inner);
            PTRIO_TRY(f, f->r[1], ptrio_checkpoint(f));     /* shielded */
            PTRIO_CANCEL_SCOPE(f, &f->innerest) {
                ptrio_cancel(&f->innerest);
                PTRIO_TRY(f, f->r[2], ptrio_checkpoint(f));
            }
            PTRIO_TRY(f, f->r[3], ptrio_checkpoint(f));
            ptrio_scope_set_shield(&f->inner, false);
            PTRIO_TRY(f, f->r[4], ptrio_checkpoint(f));
            ptrio_scope_set_shield(&f->inner, true);
            PTRIO_TRY(f, f->r[5], ptrio_checkpoint(f));
            ptrio_cancel(&f->inner);
            PTRIO_CHECKPOINT(f);        /* caught by inner: shielded */
            ev("not-reached", "");
        }
        ev("after-inner", "");
    }
    ev("after-outer", "");
    PTRIO_END(f);
}

/* A shield holds outer cancellation back, not its own nor an inner
 * scope's; unshielding lets it through again; a shielded cancelled scope
 * catches its own. */
/* Trio: test_cancel_shielding; test_cancel_scope_nesting (shielding) */
START_TEST(test_cancel_shielding)
{
    static struct shielding_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(shielding_main, &m, NULL), 0);
    ck_assert_int_eq(m.r[0], -PTRIO_ECANCELED);
    ck_assert(!m.sh0);
    ck_assert(m.sh1);
    ck_assert_int_eq(m.r[1], 0);
    ck_assert_int_eq(m.r[2], -PTRIO_ECANCELED);
    ck_assert_int_eq(m.r[3], 0);
    ck_assert_int_eq(m.r[4], -PTRIO_ECANCELED);
    ck_assert_int_eq(m.r[5], 0);
    ck_assert(ptrio_cancelled_caught(&m.inner));
    ck_assert(ptrio_cancel_called(&m.innerest));
    ck_assert(!ptrio_cancelled_caught(&m.innerest));
    ck_assert(ptrio_cancel_called(&m.outer));
    ck_assert(!ptrio_cancelled_caught(&m.outer));
    ck_assert_str_eq(L.buf, "after-inner@0 after-outer@0");
}
END_TEST

struct unshield_sub {
    ptrio_frame fr;
    ptrio_scope *inner;
};

static int unshield_sub(ptrio_frame *fr)
{
    struct unshield_sub *f = PTRIO_SELF(fr, struct unshield_sub);
    PTRIO_BEGIN(f);
    PTRIO_CHECKPOINT(f);
    PTRIO_FINALLY(f);
    ptrio_scope_set_shield(f->inner, true);
    PTRIO_END(f);
}

struct uwcp_main {
    ptrio_frame fr;
    ptrio_scope outer, inner;
    struct unshield_sub sub;
};

static int uwcp_main(ptrio_frame *fr)
{
    struct uwcp_main *f = PTRIO_SELF(fr, struct uwcp_main);
    PTRIO_BEGIN(f);
    PTRIO_CANCEL_SCOPE(f, &f->outer) {
        PTRIO_CANCEL_SCOPE(f, &f->inner) {
            ptrio_cancel(&f->outer);
            f->sub = (struct unshield_sub){.inner = &f->inner};
            PTRIO_CALL(f, unshield_sub, &f->sub);
        }
        ev("not-reached", "");
    }
    ev("after", "");
    PTRIO_END(f);
}

/* Shielding a scope while the outer -ECANCELED propagates through it does
 * not make it catch. */
/* Trio test_run.py: test_unshield_while_cancel_propagating */
START_TEST(test_shield_while_cancel_propagating)
{
    static struct uwcp_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(uwcp_main, &m, NULL), 0);
    ck_assert(ptrio_cancelled_caught(&m.outer));
    ck_assert(!ptrio_cancelled_caught(&m.inner));
    ck_assert_str_eq(L.buf, "after@0");
}
END_TEST

struct abort_main {
    ptrio_frame fr;
    ptrio_scope outer, w1, w2;
    ptrio_nursery n;
    ptrio_task t;
    struct sleeper s;
};

static int abort_main(ptrio_frame *fr)
{
    struct abort_main *f = PTRIO_SELF(fr, struct abort_main);
    PTRIO_BEGIN(f);
    PTRIO_CANCEL_SCOPE(f, &f->outer) {
        PTRIO_NURSERY(f, &f->n) {
            ptrio_cancel(&f->outer);
            ptrio_scope_set_shield(ptrio_nursery_scope(&f->n), true);
            f->s = (struct sleeper){.name = "s", .d = PTRIO_TIME_INF};
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, sleeper, &f->s));
            PTRIO_SHIELD(f, &f->w1) {
                PTRIO_CHECKPOINT(f);
                PTRIO_CHECKPOINT(f);
            }
            ev("sleeping", "");
            ptrio_scope_set_shield(ptrio_nursery_scope(&f->n), false);
            PTRIO_SHIELD(f, &f->w2) {
                PTRIO_CHECKPOINT(f);
                PTRIO_CHECKPOINT(f);
            }
            ev("body-end", "");
        }
        ev("not-reached", "");
    }
    ev("out", "");
    PTRIO_END(f);
}

/* A child parked under a shielded nursery scope sleeps through the outer
 * cancellation; unshielding wakes it at once. */
/* Trio test_run.py: test_cancel_shield_abort */
START_TEST(test_cancel_shield_abort)
{
    static struct abort_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(abort_main, &m, NULL), 0);
    ck_assert_str_eq(L.buf, "s+@0 sleeping@0 s!PTRIO_ECANCELED@0 body-end@0 out@0");
    ck_assert(ptrio_cancelled_caught(&m.outer));
    ck_assert(!ptrio_cancelled_caught(ptrio_nursery_scope(&m.n)));
}
END_TEST

struct unshield_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_scope msh;
    ptrio_task t;
    struct scoped_sleeper k;
};

static int unshield_main(ptrio_frame *fr)
{
    struct unshield_main *f = PTRIO_SELF(fr, struct unshield_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->k = (struct scoped_sleeper){.name = "kid", .d = PTRIO_SEC(10),
                                       .shield = 1};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, scoped_sleeper, &f->k));
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));
        ptrio_nursery_cancel(&f->n);
        ev("cancelled", "");
        PTRIO_SHIELD(f, &f->msh) {
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(2)));
        }
        ev("unshield", "");
        ptrio_scope_set_shield(&f->k.sc, false);
    }
    ev("done", "");
    PTRIO_END(f);
}

/* Unshielding (from another task) while the outside is cancelled wakes
 * the task parked inside at once with -ECANCELED. */
START_TEST(test_unshield_wakes_parked_task)
{
    static struct unshield_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(unshield_main, &m, NULL), 0);
    ck_assert_str_eq(L.buf, "kid+@0 cancelled@1000 unshield@3000 "
                            "kid!PTRIO_ECANCELED@3000 done@3000");
    ck_assert(!ptrio_cancelled_caught(&m.k.sc));
    ck_assert(ptrio_cancelled_caught(ptrio_nursery_scope(&m.n)));
}
END_TEST

struct shblock_main {
    ptrio_frame fr;
    ptrio_scope outer, sh;
    ptrio_time eff_in, eff_out;
};

static int shblock_main(ptrio_frame *fr)
{
    struct shblock_main *f = PTRIO_SELF(fr, struct shblock_main);
    PTRIO_BEGIN(f);
    PTRIO_CANCEL_SCOPE(f, &f->outer) {
        ptrio_cancel(&f->outer);
        PTRIO_SHIELD(f, &f->sh) {
            f->eff_in = ptrio_current_effective_deadline();
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));
            ev("shielded", "");
        }
        f->eff_out = ptrio_current_effective_deadline();
        ev("after-shield", "");
        PTRIO_CHECKPOINT(f);
        ev("not-reached", "");
    }
    ev("out", "");
    PTRIO_END(f);
}

/* Awaits inside PTRIO_SHIELD succeed although the outer scope is
 * cancelled; the next checkpoint after it fails. */
/* Trio test_run.py: test_cancel_shielding */
START_TEST(test_shield_block)
{
    static struct shblock_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(shblock_main, &m, NULL), 0);
    ck_assert(ptrio_scope_shield(&m.sh));
    ck_assert(!ptrio_cancel_called(&m.sh));
    ck_assert(ptrio_cancelled_caught(&m.outer));
    ck_assert(m.eff_in == PTRIO_TIME_INF);
    ck_assert(m.eff_out == PTRIO_TIME_NINF);
    ck_assert_str_eq(L.buf, "shielded@1000 after-shield@1000 out@1000");
}
END_TEST

/* ---- move_on / fail_after ------------------------------------------- */

struct moveon_main {
    ptrio_frame fr;
    ptrio_scope sc, sc2;
};

static int moveon_main(ptrio_frame *fr)
{
    struct moveon_main *f = PTRIO_SELF(fr, struct moveon_main);
    PTRIO_BEGIN(f);
    PTRIO_MOVE_ON_AFTER(f, &f->sc, PTRIO_SEC(5)) {
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(10)));
        ev("not-reached", "");
    }
    ev("after", "");
    PTRIO_MOVE_ON_AFTER(f, &f->sc2, PTRIO_SEC(5)) {
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));
        ev("in-time", "");
    }
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(10)));
    ev("end", "");
    PTRIO_END(f);
}

/* A 10 s sleep in a 5 s move_on_after ends at 5 s; a block that finishes
 * in time is not cancelled, nor later. */
/* Trio test_timeouts.py: test_move_on_after (README's timeout example) */
START_TEST(test_move_on_after)
{
    static struct moveon_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(moveon_main, &m, NULL), 0);
    ck_assert(ptrio_cancel_called(&m.sc));
    ck_assert(ptrio_cancelled_caught(&m.sc));
    ck_assert(!ptrio_cancel_called(&m.sc2));
    ck_assert(!ptrio_cancelled_caught(&m.sc2));
    ck_assert_str_eq(L.buf, "after@5000 in-time@6000 end@16000");
}
END_TEST

struct past_main {
    ptrio_frame fr;
    ptrio_scope sc, sc2;
    bool called_at_entry, called_at_entry2;
};

static int past_main(ptrio_frame *fr)
{
    struct past_main *f = PTRIO_SELF(fr, struct past_main);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));
    PTRIO_MOVE_ON_AT(f, &f->sc, ptrio_now()) {
        f->called_at_entry = ptrio_cancel_called(&f->sc);
        ev("entered", "");
        PTRIO_AWAIT(f, ptrio_sleep(f, 0));
        ev("not-reached", "");
    }
    ev("after", "");
    PTRIO_MOVE_ON_AFTER(f, &f->sc2, 0) {
        f->called_at_entry2 = ptrio_cancel_called(&f->sc2);
        ev("entered2", "");
        PTRIO_CHECKPOINT(f);
        ev("not-reached", "");
    }
    ev("after2", "");
    PTRIO_END(f);
}

/* A deadline already reached at entry cancels the block at once; its first
 * checkpoint fails. */
/* Trio test_timeouts.py: test_sleep (move_on_at(current_time())) */
START_TEST(test_move_on_deadline_passed_at_entry)
{
    static struct past_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(past_main, &m, NULL), 0);
    ck_assert(m.called_at_entry);
    ck_assert(m.called_at_entry2);
    ck_assert(ptrio_cancelled_caught(&m.sc));
    ck_assert(ptrio_cancelled_caught(&m.sc2));
    ck_assert_str_eq(L.buf, "entered@1000 after@1000 entered2@1000 "
                            "after2@1000");
}
END_TEST

struct fail_sub {
    ptrio_frame fr;
    ptrio_scope sc;
    int mode;
};

static int fail_sub(ptrio_frame *fr)
{
    struct fail_sub *f = PTRIO_SELF(fr, struct fail_sub);
    PTRIO_BEGIN(f);
    if (f->mode == 0) {
        PTRIO_FAIL_AFTER(f, &f->sc, PTRIO_SEC(2)) {
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(10)));
        }
    } else if (f->mode == 1) {
        PTRIO_FAIL_AT(f, &f->sc, ptrio_now() + PTRIO_SEC(3)) {
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(10)));
        }
    } else if (f->mode == 2) {
        PTRIO_FAIL_AT(f, &f->sc, ptrio_now() + PTRIO_SEC(100)) {
            PTRIO_AWAIT(f, ptrio_sleep(f, 0));
        }
    } else {
        PTRIO_FAIL_AFTER(f, &f->sc, PTRIO_SEC(100)) {
            PTRIO_AWAIT(f, ptrio_sleep(f, 0));
        }
    }
    PTRIO_END(f);
}

struct fail_main {
    ptrio_frame fr;
    struct fail_sub sub;
    int i, rc[4];
    bool called[4];
};

static int fail_main(ptrio_frame *fr)
{
    struct fail_main *f = PTRIO_SELF(fr, struct fail_main);
    static const char *const names[] = {"m0", "m1", "m2", "m3"};
    PTRIO_BEGIN(f);
    for (f->i = 0; f->i < 4; f->i++) {
        f->sub = (struct fail_sub){.mode = f->i};
        PTRIO_TRY(f, f->rc[f->i], ptrio_call(f, &f->sub, fail_sub));
        f->called[f->i] = ptrio_cancel_called(&f->sub.sc);
        ev_err(names[f->i], f->rc[f->i]);
    }
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(200)));
    ev("end", "");
    PTRIO_END(f);
}

/* fail_after / fail_at raise -PTRIO_ETIMEDOUT when their deadline fires,
 * at that exact time; in time, they raise nothing. */
/* Trio test_timeouts.py: test_fail */
START_TEST(test_fail_after_and_fail_at)
{
    static struct fail_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(fail_main, &m, NULL), 0);
    ck_assert_int_eq(m.rc[0], -PTRIO_ETIMEDOUT);
    ck_assert_int_eq(m.rc[1], -PTRIO_ETIMEDOUT);
    ck_assert_int_eq(m.rc[2], 0);
    ck_assert_int_eq(m.rc[3], 0);
    ck_assert(m.called[0] && m.called[1]);
    ck_assert(!m.called[2] && !m.called[3]);
    ck_assert_str_eq(L.buf, "m0!ETIMEDOUT@2000 m1!ETIMEDOUT@5000 m2-ok@5000 "
                            "m3-ok@5000 end@205000");
}
END_TEST

struct failother_main {
    ptrio_frame fr;
    ptrio_scope outer, fa, tb, fa2;
};

static int failother_main(ptrio_frame *fr)
{
    struct failother_main *f = PTRIO_SELF(fr, struct failother_main);
    PTRIO_BEGIN(f);
    PTRIO_CANCEL_SCOPE(f, &f->outer) {
        PTRIO_FAIL_AFTER(f, &f->fa, PTRIO_SEC(10)) {
            ptrio_cancel(&f->outer);
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));
        }
        ev("not-reached", "");
    }
    ev("after-outer", "");
    PTRIO_TRY_BLOCK(f, &f->tb) {
        PTRIO_FAIL_AFTER(f, &f->fa2, PTRIO_SEC(10)) {
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));
            PTRIO_RAISE(f, -PTRIO_EIO, "io");
        }
    }
    ev("after-tb", "");
    PTRIO_END(f);
}

/* fail_after catches nothing but its own deadline: an outer
 * cancellation and other errors pass through unchanged. */
START_TEST(test_fail_after_catches_nothing_else)
{
    static struct failother_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(failother_main, &m, NULL), 0);
    ck_assert(ptrio_cancelled_caught(&m.outer));
    ck_assert(!ptrio_cancel_called(&m.fa));
    ck_assert_int_eq(ptrio_scope_error(&m.tb), -PTRIO_EIO);
    ck_assert(!ptrio_cancel_called(&m.fa2));
    ck_assert_str_eq(L.buf, "after-outer@0 after-tb@1000");
}
END_TEST

struct neg_main {
    ptrio_frame fr;
    ptrio_scope tb1, tb2, sc1, sc2, sc3;
    int r_sleep, r_timeout, entered;
};

static int neg_main(ptrio_frame *fr)
{
    struct neg_main *f = PTRIO_SELF(fr, struct neg_main);
    PTRIO_BEGIN(f);
    PTRIO_TRY_BLOCK(f, &f->tb1) {
        PTRIO_MOVE_ON_AFTER(f, &f->sc1, -1) {
            f->entered++;
        }
    }
    PTRIO_TRY_BLOCK(f, &f->tb2) {
        PTRIO_FAIL_AFTER(f, &f->sc2, -PTRIO_SEC(1)) {
            f->entered++;
        }
    }
    PTRIO_TRY(f, f->r_sleep, ptrio_sleep(f, -1));
    PTRIO_CANCEL_SCOPE(f, &f->sc3) {
        f->r_timeout = ptrio_scope_set_timeout(&f->sc3, -1);
    }
    ev("end", "");
    PTRIO_END(f);
}

/* Negative durations are -PTRIO_EINVAL; the block does not run. */
/* Trio: test_move_on_after, test_fail, test_sleep (ValueError) */
START_TEST(test_negative_durations)
{
    static struct neg_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(neg_main, &m, NULL), 0);
    ck_assert_int_eq(ptrio_scope_error(&m.tb1), -PTRIO_EINVAL);
    ck_assert_int_eq(ptrio_scope_error(&m.tb2), -PTRIO_EINVAL);
    ck_assert_int_eq(m.entered, 0);
    ck_assert_int_eq(m.r_sleep, -PTRIO_EINVAL);
    ck_assert_int_eq(m.r_timeout, -PTRIO_EINVAL);
    ck_assert_str_eq(L.buf, "end@0");
}
END_TEST

/* ---- changing deadlines ------------------------------------------- */

struct dl_main {
    ptrio_frame fr;
    ptrio_scope sc;
    int mode;
    ptrio_time dl, dl2;
    bool called_now;
    int r, r2;
};

static int dl_main(ptrio_frame *fr)
{
    struct dl_main *f = PTRIO_SELF(fr, struct dl_main);
    PTRIO_BEGIN(f);
    if (f->mode == 0) {                 /* earlier */
        PTRIO_MOVE_ON_AFTER(f, &f->sc, PTRIO_SEC(10)) {
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));
            f->r = ptrio_scope_set_deadline(&f->sc, PTRIO_SEC(3));
            f->dl = ptrio_scope_deadline(&f->sc);
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(100)));
        }
    } else if (f->mode == 1) {          /* already passed */
        PTRIO_MOVE_ON_AFTER(f, &f->sc, PTRIO_SEC(10)) {
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(2)));
            f->r = ptrio_scope_set_deadline(&f->sc, PTRIO_SEC(1));
            f->called_now = ptrio_cancel_called(&f->sc);
            f->r2 = ptrio_checkpoint_if_cancelled(f);
            ev("still", "");
            PTRIO_CHECKPOINT(f);
            ev("not-reached", "");
        }
    } else if (f->mode == 2) {          /* later */
        PTRIO_MOVE_ON_AFTER(f, &f->sc, PTRIO_SEC(2)) {
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));
            f->r = ptrio_scope_set_deadline(&f->sc, PTRIO_SEC(5));
            f->dl = ptrio_scope_deadline(&f->sc);
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(100)));
        }
    } else if (f->mode == 3) {          /* cleared */
        PTRIO_MOVE_ON_AFTER(f, &f->sc, PTRIO_SEC(2)) {
            f->r = ptrio_scope_set_deadline(&f->sc, PTRIO_TIME_INF);
            f->dl = ptrio_scope_deadline(&f->sc);
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(7)));
            ev("woke", "");
        }
    } else {                            /* set_timeout */
        PTRIO_CANCEL_SCOPE(f, &f->sc) {
            f->dl2 = ptrio_scope_deadline(&f->sc);
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));
            f->r = ptrio_scope_set_timeout(&f->sc, PTRIO_SEC(2));
            f->r2 = ptrio_scope_set_timeout(&f->sc, -1);
            f->dl = ptrio_scope_deadline(&f->sc);
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(10)));
        }
    }
    ev("after", "");
    PTRIO_END(f);
}

/* Moving the deadline earlier makes it fire at the new time. */
/* Trio test_run.py: test_basic_timeout (changing deadline) */
START_TEST(test_deadline_earlier)
{
    static struct dl_main m;
    tlog_clear(&L);
    m.mode = 0;
    ck_assert_int_eq(run_virtual(dl_main, &m, NULL), 0);
    ck_assert_int_eq(m.r, 0);
    ck_assert(m.dl == PTRIO_SEC(3));
    ck_assert(ptrio_cancelled_caught(&m.sc));
    ck_assert_str_eq(L.buf, "after@3000");
}
END_TEST

/* A deadline moved into the past cancels at once. */
/* Trio test_run.py: test_basic_timeout */
START_TEST(test_deadline_passed_cancels_now)
{
    static struct dl_main m;
    tlog_clear(&L);
    m.mode = 1;
    ck_assert_int_eq(run_virtual(dl_main, &m, NULL), 0);
    ck_assert_int_eq(m.r, 0);
    ck_assert(m.called_now);
    ck_assert_int_eq(m.r2, -PTRIO_ECANCELED);
    ck_assert(ptrio_cancelled_caught(&m.sc));
    ck_assert_str_eq(L.buf, "still@2000 after@2000");
}
END_TEST

/* Moving the deadline later postpones it. */
START_TEST(test_deadline_later)
{
    static struct dl_main m;
    tlog_clear(&L);
    m.mode = 2;
    ck_assert_int_eq(run_virtual(dl_main, &m, NULL), 0);
    ck_assert(m.dl == PTRIO_SEC(5));
    ck_assert(ptrio_cancelled_caught(&m.sc));
    ck_assert_str_eq(L.buf, "after@5000");
}
END_TEST

/* PTRIO_TIME_INF clears the deadline. */
START_TEST(test_deadline_cleared)
{
    static struct dl_main m;
    tlog_clear(&L);
    m.mode = 3;
    ck_assert_int_eq(run_virtual(dl_main, &m, NULL), 0);
    ck_assert(m.dl == PTRIO_TIME_INF);
    ck_assert(!ptrio_cancel_called(&m.sc));
    ck_assert(!ptrio_cancelled_caught(&m.sc));
    ck_assert_str_eq(L.buf, "woke@7000 after@7000");
}
END_TEST

/* relative_deadline: set_timeout is now + d; a negative d is refused
 * and leaves the deadline alone. */
START_TEST(test_set_timeout)
{
    static struct dl_main m;
    tlog_clear(&L);
    m.mode = 4;
    ck_assert_int_eq(run_virtual(dl_main, &m, NULL), 0);
    ck_assert(m.dl2 == PTRIO_TIME_INF);
    ck_assert_int_eq(m.r, 0);
    ck_assert_int_eq(m.r2, -PTRIO_EINVAL);
    ck_assert(m.dl == PTRIO_SEC(3));
    ck_assert(ptrio_cancelled_caught(&m.sc));
    ck_assert_str_eq(L.buf, "after@3000");
}
END_TEST

struct entry_main {
    ptrio_frame fr;
    ptrio_scope sc, sc2;
    ptrio_time dl, dl2;
};

static int entry_main(ptrio_frame *fr)
{
    struct entry_main *f = PTRIO_SELF(fr, struct entry_main);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(2)));
    PTRIO_MOVE_ON_AFTER(f, &f->sc, PTRIO_SEC(5)) {
        f->dl = ptrio_scope_deadline(&f->sc);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(10)));
    }
    ev("after", "");
    PTRIO_MOVE_ON_AT(f, &f->sc2, PTRIO_SEC(9)) {
        f->dl2 = ptrio_scope_deadline(&f->sc2);
        PTRIO_AWAIT(f, ptrio_sleep_forever(f));
    }
    ev("after2", "");
    PTRIO_END(f);
}

/* move_on_after(d) has the deadline now + d, move_on_at(t) has t. */
START_TEST(test_deadline_at_entry)
{
    static struct entry_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(entry_main, &m, NULL), 0);
    ck_assert(m.dl == PTRIO_SEC(7));
    ck_assert(m.dl2 == PTRIO_SEC(9));
    ck_assert_str_eq(L.buf, "after@7000 after2@9000");
}
END_TEST

struct basic_to_main {
    ptrio_frame fr;
    ptrio_scope sc, sc2;
    ptrio_time d0, d1;
};

static int basic_to_main(ptrio_frame *fr)
{
    struct basic_to_main *f = PTRIO_SELF(fr, struct basic_to_main);
    PTRIO_BEGIN(f);
    PTRIO_CANCEL_SCOPE(f, &f->sc) {
        f->d0 = ptrio_scope_deadline(&f->sc);
        ptrio_scope_set_deadline(&f->sc, ptrio_now() + PTRIO_SEC(1));
        f->d1 = ptrio_scope_deadline(&f->sc);
    }
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(2)));
    PTRIO_CHECKPOINT(f);
    PTRIO_CHECKPOINT(f);
    PTRIO_CHECKPOINT(f);
    ev("after1", "");
    PTRIO_MOVE_ON_AT(f, &f->sc2, ptrio_now() + PTRIO_SEC(1)) {
        PTRIO_AWAIT(f, ptrio_sleep_forever(f));
    }
    ev("after2", "");
    PTRIO_END(f);
}

/* A deadline of a scope that was left does not fire; one that is reached
 * inside wakes sleep_forever. */
/* Trio test_run.py: test_basic_timeout */
START_TEST(test_basic_timeout)
{
    static struct basic_to_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(basic_to_main, &m, NULL), 0);
    ck_assert(m.d0 == PTRIO_TIME_INF);
    ck_assert(m.d1 == PTRIO_SEC(1));
    ck_assert(!ptrio_cancel_called(&m.sc));
    ck_assert(ptrio_cancel_called(&m.sc2));
    ck_assert(ptrio_cancelled_caught(&m.sc2));
    ck_assert_str_eq(L.buf, "after1@2000 after2@3000");
}
END_TEST

/* ---- effective deadlines -------------------------------------------- */

struct eff_main {
    ptrio_frame fr;
    ptrio_scope s1, s2;
    ptrio_time e[10];
};

static int eff_main(ptrio_frame *fr)
{
    struct eff_main *f = PTRIO_SELF(fr, struct eff_main);
    PTRIO_BEGIN(f);
    f->e[0] = ptrio_current_effective_deadline();
    PTRIO_MOVE_ON_AT(f, &f->s1, PTRIO_SEC(5)) {
        PTRIO_MOVE_ON_AT(f, &f->s2, PTRIO_SEC(10)) {
            f->e[1] = ptrio_current_effective_deadline();
            ptrio_scope_set_deadline(&f->s2, PTRIO_SEC(3));
            f->e[2] = ptrio_current_effective_deadline();
            ptrio_scope_set_deadline(&f->s2, PTRIO_SEC(10));
            f->e[3] = ptrio_current_effective_deadline();
            ptrio_scope_set_shield(&f->s2, true);
            f->e[4] = ptrio_current_effective_deadline();
            ptrio_scope_set_shield(&f->s2, false);
            f->e[5] = ptrio_current_effective_deadline();
            ptrio_cancel(&f->s1);
            f->e[6] = ptrio_current_effective_deadline();
            ptrio_scope_set_shield(&f->s2, true);
            f->e[7] = ptrio_current_effective_deadline();
        }
        f->e[8] = ptrio_current_effective_deadline();
    }
    f->e[9] = ptrio_current_effective_deadline();
    PTRIO_END(f);
}

/* Trio test_run.py: test_current_effective_deadline */
START_TEST(test_current_effective_deadline)
{
    static struct eff_main m;
    ck_assert_int_eq(run_virtual(eff_main, &m, NULL), 0);
    ck_assert(m.e[0] == PTRIO_TIME_INF);
    ck_assert(m.e[1] == PTRIO_SEC(5));
    ck_assert(m.e[2] == PTRIO_SEC(3));
    ck_assert(m.e[3] == PTRIO_SEC(5));
    ck_assert(m.e[4] == PTRIO_SEC(10));
    ck_assert(m.e[5] == PTRIO_SEC(5));
    ck_assert(m.e[6] == PTRIO_TIME_NINF);
    ck_assert(m.e[7] == PTRIO_SEC(10));
    ck_assert(m.e[8] == PTRIO_TIME_NINF);
    ck_assert(m.e[9] == PTRIO_TIME_INF);
}
END_TEST

struct eff_child {
    ptrio_frame fr;
    ptrio_time seen;
};

static int eff_child(ptrio_frame *fr)
{
    struct eff_child *f = PTRIO_SELF(fr, struct eff_child);
    PTRIO_BEGIN(f);
    f->seen = ptrio_current_effective_deadline();
    PTRIO_END(f);
}

struct effkid_main {
    ptrio_frame fr;
    ptrio_scope sc;
    ptrio_nursery n, n2;
    ptrio_task t[2];
    struct eff_child k[2];
};

static int effkid_main(ptrio_frame *fr)
{
    struct effkid_main *f = PTRIO_SELF(fr, struct effkid_main);
    PTRIO_BEGIN(f);
    PTRIO_MOVE_ON_AT(f, &f->sc, PTRIO_SEC(4)) {
        PTRIO_NURSERY(f, &f->n) {
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], eff_child,
                                            &f->k[0]));
        }
        PTRIO_NURSERY(f, &f->n2) {
            ptrio_scope_set_shield(ptrio_nursery_scope(&f->n2), true);
            PTRIO_CHECK(f, ptrio_start_soon(&f->n2, &f->t[1], eff_child,
                                            &f->k[1]));
        }
    }
    PTRIO_END(f);
}

/* A child's effective deadline includes the scopes around its nursery,
 * up to a shield. */
START_TEST(test_effective_deadline_in_child)
{
    static struct effkid_main m;
    ck_assert_int_eq(run_virtual(effkid_main, &m, NULL), 0);
    ck_assert(m.k[0].seen == PTRIO_SEC(4));
    ck_assert(m.k[1].seen == PTRIO_TIME_INF);
}
END_TEST

struct nestdl_main {
    ptrio_frame fr;
    ptrio_scope outer, inner, o2, i2;
};

static int nestdl_main(ptrio_frame *fr)
{
    struct nestdl_main *f = PTRIO_SELF(fr, struct nestdl_main);
    PTRIO_BEGIN(f);
    PTRIO_MOVE_ON_AFTER(f, &f->outer, PTRIO_SEC(5)) {
        PTRIO_MOVE_ON_AFTER(f, &f->inner, PTRIO_SEC(2)) {
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(10)));
        }
        ev("inner-done", "");
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(10)));
        ev("not-reached", "");
    }
    ev("outer-done", "");
    PTRIO_MOVE_ON_AFTER(f, &f->o2, PTRIO_SEC(1)) {
        PTRIO_MOVE_ON_AFTER(f, &f->i2, PTRIO_SEC(5)) {
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(10)));
        }
        ev("not-reached", "");
    }
    ev("o2-done", "");
    PTRIO_END(f);
}

/* Nested deadlines: each fires at its own time and its scope catches. */
START_TEST(test_nested_deadlines)
{
    static struct nestdl_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(nestdl_main, &m, NULL), 0);
    ck_assert(ptrio_cancelled_caught(&m.inner));
    ck_assert(ptrio_cancelled_caught(&m.outer));
    ck_assert(ptrio_cancelled_caught(&m.o2));
    ck_assert(!ptrio_cancel_called(&m.i2));
    ck_assert(!ptrio_cancelled_caught(&m.i2));
    ck_assert_str_eq(L.buf, "inner-done@2000 outer-done@5000 o2-done@6000");
}
END_TEST

struct same_main {
    ptrio_frame fr;
    ptrio_scope outer, inner;
};

static int same_main(ptrio_frame *fr)
{
    struct same_main *f = PTRIO_SELF(fr, struct same_main);
    PTRIO_BEGIN(f);
    PTRIO_MOVE_ON_AT(f, &f->outer, PTRIO_SEC(2)) {
        PTRIO_MOVE_ON_AT(f, &f->inner, PTRIO_SEC(2)) {
            PTRIO_AWAIT(f, ptrio_sleep_forever(f));
        }
        ev("not-reached", "");
    }
    ev("after", "");
    PTRIO_END(f);
}

/* Two deadlines firing at once; the outermost scope catches. */
/* Trio test_run.py: test_cancel_scope_nesting (1) with deadlines */
START_TEST(test_same_deadline_outermost_catches)
{
    static struct same_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(same_main, &m, NULL), 0);
    ck_assert(ptrio_cancel_called(&m.inner));
    ck_assert(!ptrio_cancelled_caught(&m.inner));
    ck_assert(ptrio_cancel_called(&m.outer));
    ck_assert(ptrio_cancelled_caught(&m.outer));
    ck_assert_str_eq(L.buf, "after@2000");
}
END_TEST

/* ---- a CPU-bound loop ------------------------------------------------ */

struct cpu_main {
    ptrio_frame fr;
    ptrio_scope sc, sc2, sc3;
    long i, j, k;
    long long sum, sum2;
    int chunks;
};

static int cpu_main(ptrio_frame *fr)
{
    struct cpu_main *f = PTRIO_SELF(fr, struct cpu_main);
    PTRIO_BEGIN(f);
    /* Each 1000 iterations "take" 1 ms: on the virtual clock a sleep is
     * what makes time pass; it is also the loop's checkpoint. */
    PTRIO_MOVE_ON_AFTER(f, &f->sc, PTRIO_US(100500)) {
        for (f->i = 0; f->i < 1000000; f->i++) {
            f->sum += f->i;
            if (f->i % 1000 == 999) {
                PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
                f->chunks++;
            }
        }
    }
    ev("stopped", "");
    /* Without a checkpoint the loop cannot be interrupted. */
    PTRIO_MOVE_ON_AFTER(f, &f->sc2, PTRIO_MS(1)) {
        for (f->j = 0; f->j < 1000000; f->j++)
            f->sum2 += f->j;
    }
    /* With checkpoints, a cancelled loop stops at the first one. */
    PTRIO_MOVE_ON_AT(f, &f->sc3, ptrio_now()) {
        for (f->k = 0; f->k < 1000000; f->k++) {
            if (f->k % 1000 == 500)
                PTRIO_CHECKPOINT(f);
        }
    }
    ev("end", "");
    PTRIO_END(f);
}

/* README (samples/checkpoints): a CPU loop is cancellable only at its
 * checkpoints: a deadline stops it at the first one after it fires. */
START_TEST(test_cpu_loop_checkpoints)
{
    static struct cpu_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(cpu_main, &m, NULL), 0);
    ck_assert_int_eq(m.chunks, 100);
    ck_assert_int_eq(m.i, 100999);
    ck_assert(ptrio_cancelled_caught(&m.sc));
    ck_assert_int_eq(m.j, 1000000);
    ck_assert(!ptrio_cancelled_caught(&m.sc2));
    ck_assert_int_eq(m.k, 500);
    ck_assert(ptrio_cancelled_caught(&m.sc3));
    ck_assert_str_eq(L.buf, "stopped@100 end@100");
}
END_TEST

/* ---- scope life cycle ----------------------------------------------- */

struct life_main {
    ptrio_frame fr;
    ptrio_scope sc, sc2;
};

static int life_main(ptrio_frame *fr)
{
    struct life_main *f = PTRIO_SELF(fr, struct life_main);
    PTRIO_BEGIN(f);
    ptrio_cancel(&f->sc);               /* not entered yet: no effect */
    PTRIO_CANCEL_SCOPE(f, &f->sc) {
        PTRIO_CHECKPOINT(f);
        ev("ran", "");
    }
    PTRIO_CANCEL_SCOPE(f, &f->sc2) {
        PTRIO_CHECKPOINT(f);
    }
    ptrio_cancel(&f->sc2);              /* already left */
    PTRIO_CHECKPOINT(f);
    ev("after", "");
    PTRIO_END(f);
}

/* Cancelling before entry (README: entering a block (re)initialises its
 * scope) or after exit has no effect on the task. */
/* Trio test_run.py: test_cancel_unbound (can't reuse) */
START_TEST(test_cancel_outside_block)
{
    static struct life_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(life_main, &m, NULL), 0);
    ck_assert(!ptrio_cancelled_caught(&m.sc));
    ck_assert(ptrio_cancel_called(&m.sc2));
    ck_assert(!ptrio_cancelled_caught(&m.sc2));
    ck_assert_str_eq(L.buf, "ran@0 after@0");
}
END_TEST

struct pass_main {
    ptrio_frame fr;
    ptrio_scope tb, sc, tb2, sc2;
    int r;
};

static int pass_main(ptrio_frame *fr)
{
    struct pass_main *f = PTRIO_SELF(fr, struct pass_main);
    PTRIO_BEGIN(f);
    PTRIO_TRY_BLOCK(f, &f->tb) {
        PTRIO_CANCEL_SCOPE(f, &f->sc) {
            ptrio_cancel(&f->sc);
            PTRIO_RAISE(f, -PTRIO_EIO, "io");
        }
        ev("not-reached", "");
    }
    PTRIO_TRY_BLOCK(f, &f->tb2) {
        PTRIO_MOVE_ON_AFTER(f, &f->sc2, PTRIO_SEC(1)) {
            PTRIO_TRY(f, f->r, ptrio_sleep(f, PTRIO_SEC(5)));
            PTRIO_RAISE(f, -PTRIO_EPIPE, "pipe");
        }
        ev("not-reached", "");
    }
    ev("after", "");
    PTRIO_END(f);
}

/* Errors other than -ECANCELED pass through cancel scopes unchanged, even
 * cancelled ones, which then catch nothing. */
START_TEST(test_error_passes_through_scope)
{
    static struct pass_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(pass_main, &m, NULL), 0);
    ck_assert_int_eq(ptrio_scope_error(&m.tb), -PTRIO_EIO);
    ck_assert(ptrio_cancel_called(&m.sc));
    ck_assert(!ptrio_cancelled_caught(&m.sc));
    ck_assert_int_eq(m.r, -PTRIO_ECANCELED);
    ck_assert_int_eq(ptrio_scope_error(&m.tb2), -PTRIO_EPIPE);
    ck_assert(ptrio_cancel_called(&m.sc2));
    ck_assert(!ptrio_cancelled_caught(&m.sc2));
    ck_assert_str_eq(L.buf, "after@1000");
}
END_TEST

/* ---- abort hooks: a wait that cannot be undone at once --------------- */

/* Parks in its own scope with an abort hook; `wake_self`: the hook wakes
 * it with -ECANCELED itself, else the hook refuses (the wait goes on).
 * Then checkpoint_if_cancelled, both statuses kept; `pre`: cancels its
 * scope before parking. */
struct stubborn {
    ptrio_frame fr;
    ptrio_scope sc;
    int wake_self, pre, calls, rc, rc2;
};

static int stubborn_abort(ptrio_task *t, void *data)
{
    struct stubborn *f = data;
    f->calls++;
    if (f->wake_self)
        ptrio_wake(t, -PTRIO_ECANCELED);
    return 1;                   /* not undone here */
}

static int stubborn(ptrio_frame *fr)
{
    struct stubborn *f = PTRIO_SELF(fr, struct stubborn);
    PTRIO_BEGIN(f);
    PTRIO_CANCEL_SCOPE(f, &f->sc) {
        if (f->pre)
            ptrio_cancel(&f->sc);
        ev("sleep", "");
        PTRIO_TRY(f, f->rc, ptrio_park_hook(f, stubborn_abort, f));
        ev("woke", "");
        PTRIO_TRY(f, f->rc2, ptrio_checkpoint_if_cancelled(f));
        ev("checked", "");
    }
    PTRIO_END(f);
}

struct hook_abort_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct stubborn k;
    int calls_after_cancel, wake_rc;
};

static int hook_abort_main(ptrio_frame *fr)
{
    struct hook_abort_main *f = PTRIO_SELF(fr, struct hook_abort_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, stubborn, &f->k));
        PTRIO_AWAIT(f, ptrio_wait_all_tasks_blocked(f, 0));
        ev("blocked", "");
        ptrio_cancel(&f->k.sc);
        f->calls_after_cancel = f->k.calls;
        PTRIO_AWAIT(f, ptrio_wait_all_tasks_blocked(f, 0));
        ev("still", "");
        if (!f->k.wake_self && !f->k.pre)
            f->wake_rc = ptrio_wake(&f->t, 1);  /* by hand */
    }
    PTRIO_END(f);
}

/* A hook that refuses: the cancellation does not wake the task, which
 * waits on until its owner wakes it with a value; its next cancel point
 * then sees the cancellation. */
/* Trio test_run.py: test_failed_abort */
START_TEST(test_failed_abort)
{
    static struct hook_abort_main m;
    tlog_clear(&L);
    memset(&m, 0, sizeof m);
    ck_assert_int_eq(run_virtual(hook_abort_main, &m, NULL), 0);
    ck_assert_int_eq(m.calls_after_cancel, 1);
    ck_assert_int_eq(m.k.calls, 1);
    ck_assert_int_eq(m.wake_rc, 0);
    ck_assert_int_eq(m.k.rc, 1);
    ck_assert_int_eq(m.k.rc2, -PTRIO_ECANCELED);
    ck_assert(ptrio_cancel_called(&m.k.sc));
    ck_assert(!ptrio_cancelled_caught(&m.k.sc));
    ck_assert_str_eq(L.buf, "sleep@0 blocked@0 still@0 woke@0 checked@0");
}
END_TEST

/* A hook that does not undo the wait but wakes the task itself with the
 * cancellation: the wait fails with -ECANCELED. Trio's test parks in an
 * already-cancelled scope, where its hook runs at once; ptrio's park is a
 * cancel point that fails first, never calling the hook (README,
 * "Differences from Trio": a checkpoint in a cancelled scope fails at
 * once). */
/* Trio test_run.py: test_slow_abort_basic */
START_TEST(test_slow_abort_basic)
{
    static struct hook_abort_main m;
    tlog_clear(&L);
    memset(&m, 0, sizeof m);
    m.k.wake_self = 1;
    ck_assert_int_eq(run_virtual(hook_abort_main, &m, NULL), 0);
    ck_assert_int_eq(m.calls_after_cancel, 1);
    ck_assert_int_eq(m.k.calls, 1);
    ck_assert_int_eq(m.k.rc, -PTRIO_ECANCELED);
    ck_assert_int_eq(m.k.rc2, -PTRIO_ECANCELED);
    ck_assert(!ptrio_cancelled_caught(&m.k.sc));
    ck_assert_str_eq(L.buf, "sleep@0 blocked@0 woke@0 checked@0 still@0");

    tlog_clear(&L);
    memset(&m, 0, sizeof m);
    m.k.pre = 1;
    ck_assert_int_eq(run_virtual(hook_abort_main, &m, NULL), 0);
    ck_assert_int_eq(m.k.calls, 0);
    ck_assert_int_eq(m.k.rc, -PTRIO_ECANCELED);
    ck_assert_int_eq(m.k.rc2, -PTRIO_ECANCELED);
    ck_assert_str_eq(L.buf, "sleep@0 woke@0 checked@0 blocked@0 still@0");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("scope");
    TCase *tc = tcase_create("scope");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_checkpoint_if_cancelled);
    tcase_add_test(tc, test_checkpoint_and_sleep_when_cancelled);
    tcase_add_test(tc, test_yield_ignores_cancel);
    tcase_add_test(tc, test_cancel_edge_cases);
    tcase_add_test(tc, test_cancel_called_not_caught);
    tcase_add_test(tc, test_parked_task_woken_at_once);
    tcase_add_test(tc, test_scope_nesting_outer_wins);
    tcase_add_test(tc, test_pending_cancel_popped);
    tcase_add_test(tc, test_inner_catches_only_its_own);
    tcase_add_test(tc, test_outer_cancel_reaches_inner);
    tcase_add_test(tc, test_cancel_inheritance);
    tcase_add_test(tc, test_cancel_during_join);
    tcase_add_test(tc, test_cancel_shielding);
    tcase_add_test(tc, test_shield_while_cancel_propagating);
    tcase_add_test(tc, test_cancel_shield_abort);
    tcase_add_test(tc, test_unshield_wakes_parked_task);
    tcase_add_test(tc, test_shield_block);
    tcase_add_test(tc, test_move_on_after);
    tcase_add_test(tc, test_move_on_deadline_passed_at_entry);
    tcase_add_test(tc, test_fail_after_and_fail_at);
    tcase_add_test(tc, test_fail_after_catches_nothing_else);
    tcase_add_test(tc, test_negative_durations);
    tcase_add_test(tc, test_deadline_earlier);
    tcase_add_test(tc, test_deadline_passed_cancels_now);
    tcase_add_test(tc, test_deadline_later);
    tcase_add_test(tc, test_deadline_cleared);
    tcase_add_test(tc, test_set_timeout);
    tcase_add_test(tc, test_deadline_at_entry);
    tcase_add_test(tc, test_basic_timeout);
    tcase_add_test(tc, test_current_effective_deadline);
    tcase_add_test(tc, test_effective_deadline_in_child);
    tcase_add_test(tc, test_nested_deadlines);
    tcase_add_test(tc, test_same_deadline_outermost_catches);
    tcase_add_test(tc, test_cpu_loop_checkpoints);
    tcase_add_test(tc, test_cancel_outside_block);
    tcase_add_test(tc, test_error_passes_through_scope);
    tcase_add_test(tc, test_failed_abort);
    tcase_add_test(tc, test_slow_abort_basic);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
