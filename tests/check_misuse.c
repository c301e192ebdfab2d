/* tests/check_misuse.c: misuse gets a clear error, never corruption
 * (issue 6, section 1): awaitables called without PTRIO_AWAIT, PTRIO_CHECK
 * around an awaitable, a C return inside a block, tasks outliving their
 * run, frames re-initialised under their task, an await inside a switch of
 * the user's, the one rule for "now + d", a foreign -ECANCELED, and misuse
 * messages that name the user's line.
 *
 * A test that misuses ptrio on purpose is registered with
 * tcase_add_misuse_test: a debug build traps at the first misuse (the test
 * expects SIGILL), a normal build checks the error codes and that nothing
 * else went wrong (event log, clock, every task exited).
 * Portable: no POSIX calls; all time is on a virtual clock. */
#include <stdlib.h>

#define TESTUTIL_EVENTS
#include "testutil.h"

/* tcase_add_misuse_test for a loop test. */
#ifdef PTRIO_DEBUG
#define tcase_add_misuse_loop_test(tc, fn, s, e)                            \
    tcase_add_loop_test_raise_signal(tc, fn, SIGILL, s, e)
#else
#define tcase_add_misuse_loop_test(tc, fn, s, e) tcase_add_loop_test(tc, fn, s, e)
#endif

/* ---- a virtual clock of the test's own --------------------------------
 *
 * Like ptrio_backend_virtual, but the clock starts where the test says,
 * the waits can be made to fail, and the test can read, after the run,
 * the time at which it ended and the deadlines it waited for. */
struct tclock {
    ptrio_time start;
    int fail_first;     /* fail that many waits first */
    int fail_always;    /* fail every wait */
    int fail_rc;
    int waits;
};

#define TCLOCK(l) ((struct tclock *)(l)->be[1].ptr)

static int tc_open(ptrio_loop *l)
{
    l->be[0].i64 = TCLOCK(l)->start;
    return 0;
}

static ptrio_time tc_now(ptrio_loop *l) { return l->be[0].i64; }

static int tc_wait(ptrio_loop *l, ptrio_time deadline)
{
    struct tclock *c = TCLOCK(l);

    c->waits++;
    if (c->fail_always)
        return c->fail_rc;
    if (c->fail_first > 0) {
        c->fail_first--;
        return c->fail_rc;
    }
    if (deadline == PTRIO_TIME_INF)
        return -PTRIO_EDEADLK;
    if (deadline > l->be[0].i64)
        l->be[0].i64 = deadline;
    return 0;
}

static const ptrio_backend tclock_backend = {
    "tclock", tc_open, NULL, tc_now, tc_wait, NULL, NULL, NULL
};

/* What the hooks saw: tasks spawned and exited, and the deadlines of the
 * backend waits, in order. */
struct probe {
    int spawned, exited;
    int nwaits;
    ptrio_time deadline[16];
};

static void p_spawned(void *ctx, const ptrio_task *t)
{
    (void)t;
    ((struct probe *)ctx)->spawned++;
}

static void p_exited(void *ctx, const ptrio_task *t, int status)
{
    (void)t, (void)status;
    ((struct probe *)ctx)->exited++;
}

static void p_before(void *ctx, ptrio_time deadline)
{
    struct probe *p = ctx;
    if (p->nwaits < 16)
        p->deadline[p->nwaits] = deadline;
    p->nwaits++;
}

static const ptrio_hooks probe_hooks = {
    .task_spawned = p_spawned,
    .task_exited = p_exited,
    .before_io_wait = p_before,
};

/* The loop of every test (static: big, and a run on it may be repeated). */
static ptrio_loop LOOP;
static struct tclock CLOCK;
static struct probe PROBE;

/* Prepares LOOP on the test clock starting at `start`, with the probe. */
static void setup_at(ptrio_time start, treport *rep)
{
    memset(&CLOCK, 0, sizeof CLOCK);
    memset(&PROBE, 0, sizeof PROBE);
    CLOCK.start = start;
    loop_setup(&LOOP, &tclock_backend, rep);
    LOOP.be[1].ptr = &CLOCK;
    ptrio_loop_set_hooks(&LOOP, &probe_hooks, &PROBE);
    tlog_clear(&L);
}

#define RUN(fn, frame) ptrio_loop_run_named(&LOOP, (fn), (frame), #fn)

/* The clock when the last run ended. */
static ptrio_time end_time(void) { return LOOP.be[0].i64; }

/* Every task spawned exited, and no task is left in the loop. */
static void assert_all_exited(int spawned)
{
    ck_assert_int_eq(PROBE.spawned, spawned);
    ck_assert_int_eq(PROBE.exited, spawned);
    ck_assert_uint_eq(LOOP.ntasks, 0);
    ck_assert_ptr_null(LOOP.timers);
    ck_assert_ptr_null(LOOP.runq);
    ck_assert_ptr_null(ptrio_current_loop());
}

/* A sleeper under a shield: logs "<name>+", sleeps `d` whatever happens
 * outside, logs "<name>", then reports an error if one ends it. */
struct shielded {
    ptrio_frame fr;
    const char *name;
    ptrio_time d;
    ptrio_scope sh;
};

static int shielded(ptrio_frame *fr)
{
    struct shielded *f = PTRIO_SELF(fr, struct shielded);
    PTRIO_BEGIN(f);
    ev(f->name, "+");
    PTRIO_SHIELD(f, &f->sh) {
        PTRIO_AWAIT(f, ptrio_sleep(f, f->d));
    }
    ev(f->name, "");
    PTRIO_FINALLY(f);
    if (PTRIO_FINALLY_ERROR(f))
        ev_err(f->name, PTRIO_FINALLY_ERROR(f));
    PTRIO_END(f);
}

/* Runs one child `fn` over `kid` in a nursery inside a TRY_BLOCK, then
 * logs "caught@<ms>"; `err` is what the block caught. */
struct catch_main {
    ptrio_frame fr;
    ptrio_scope tb;
    ptrio_nursery n;
    ptrio_task t[2];
    ptrio_fn fn[2];
    void *kid[2];
    int err;
    ptrio_time after;     /* then sleeps this long (0: not) */
};

static int catch_main(ptrio_frame *fr)
{
    struct catch_main *f = PTRIO_SELF(fr, struct catch_main);
    PTRIO_BEGIN(f);
    PTRIO_TRY_BLOCK(f, &f->tb) {
        PTRIO_NURSERY(f, &f->n) {
            PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[0], f->fn[0],
                                                  f->kid[0], "kid"));
            if (f->fn[1])
                PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[1],
                                                      f->fn[1], f->kid[1],
                                                      "sib"));
        }
    }
    f->err = ptrio_scope_error(&f->tb);
    ev("caught", "");
    if (f->after) {
        PTRIO_AWAIT(f, ptrio_sleep(f, f->after));
        ev("woke", "");
    }
    PTRIO_END(f);
}

/* ---- 1. an awaitable called without PTRIO_AWAIT -------------------- */

struct dropper {
    ptrio_frame fr;
    const char *name;
    int second;
};

/* Drops a sleep's PTRIO_PENDING, then awaits a checkpoint. */
static int drop_sleep(ptrio_frame *fr)
{
    struct dropper *f = PTRIO_SELF(fr, struct dropper);
    PTRIO_BEGIN(f);
    ev(f->name, "+");
    if (ptrio_sleep(f, PTRIO_SEC(5))) {}    /* GCC ignores (void) here */
    PTRIO_AWAIT(f, ptrio_checkpoint(f));
    ev(f->name, "");
    PTRIO_FINALLY(f);
    ev_err(f->name, PTRIO_FINALLY_ERROR(f));
    PTRIO_END(f);
}

/* The await after a dropped sleep fails with -PTRIO_EMISUSE, and the sleep
 * is undone: nothing wakes at 5 s, the run never waits and ends at 0. */
START_TEST(test_dropped_sleep_then_await)
{
    static struct dropper m;
    m = (struct dropper){.name = "main"};
    setup_at(0, NULL);
    ck_assert_int_eq(RUN(drop_sleep, &m), -PTRIO_EMISUSE);
    ck_assert_str_eq(L.buf, "main+@0 main!PTRIO_EMISUSE@0");
    ck_assert_int_eq(end_time(), 0);
    ck_assert_int_eq(PROBE.nwaits, 0);
    assert_all_exited(1);
}
END_TEST

/* Its report names the cause: a dropped PTRIO_PENDING, not a bare "API
 * misuse" at the innocent await after it. */
START_TEST(test_dropped_sleep_report_names_cause)
{
    static struct dropper m;
    static treport rep;
    m = (struct dropper){.name = "main"};
    setup_at(0, &rep);
    ck_assert_int_eq(RUN(drop_sleep, &m), -PTRIO_EMISUSE);
    ck_assert_int_eq(rep.count, 1);
    ck_assert_str_eq(rep.lines.buf,
                     "ptrio: task 'drop_sleep' failed: PTRIO_EMISUSE (an "
                     "awaitable's PTRIO_PENDING was dropped (no "
                     "PTRIO_AWAIT?)) in drop_sleep() |");
}
END_TEST

/* The same in a child: its nursery joins it once it has really ended (it
 * is not left sleeping), its failure cancels the sibling, and the nursery
 * raises it. */
START_TEST(test_dropped_sleep_in_nursery)
{
    static struct catch_main m;
    static struct dropper k;
    static struct sleeper sib;
    k = (struct dropper){.name = "kid"};
    sib = (struct sleeper){.name = "sib", .d = PTRIO_SEC(1)};
    m = (struct catch_main){.fn = {drop_sleep, sleeper}, .kid = {&k, &sib}};
    setup_at(0, NULL);
    ck_assert_int_eq(RUN(catch_main, &m), 0);
    ck_assert_str_eq(L.buf, "kid+@0 kid!PTRIO_EMISUSE@0 sib+@0 "
                            "sib!PTRIO_ECANCELED@0 caught@0");
    ck_assert_int_eq(m.err, -PTRIO_EMISUSE);
    ck_assert_int_eq(end_time(), 0);
    ck_assert_int_eq(PROBE.nwaits, 0);
    assert_all_exited(3);
}
END_TEST

/* A checkpoint dropped, then a second one in the same step (the old core
 * linked the run queue to itself and hung), then a proper one. */
static int drop_two(ptrio_frame *fr)
{
    struct dropper *f = PTRIO_SELF(fr, struct dropper);
    PTRIO_BEGIN(f);
    ev(f->name, "0");
    if (ptrio_checkpoint(f)) {}
    f->second = ptrio_checkpoint(f);
    ev(f->name, "1");
    PTRIO_CHECKPOINT(f);
    ev(f->name, "2");
    PTRIO_END(f);
}

struct looper {
    ptrio_frame fr;
    const char *name;
    int i;
};

static int looper(ptrio_frame *fr)
{
    struct looper *f = PTRIO_SELF(fr, struct looper);
    static const char *const digits[] = {"0", "1", "2"};
    PTRIO_BEGIN(f);
    for (f->i = 0; f->i < 3; f->i++) {
        ev(f->name, digits[f->i]);
        PTRIO_CHECKPOINT(f);
    }
    PTRIO_END(f);
}

/* The second checkpoint refuses (-PTRIO_EMISUSE) and undoes the first:
 * the task is queued once, the run queue stays a list (the sibling runs
 * in its usual turns), nothing hangs. */
START_TEST(test_two_dropped_checkpoints)
{
    static struct catch_main m;
    static struct dropper a;
    static struct looper b;
    a = (struct dropper){.name = "A"};
    b = (struct looper){.name = "B"};
    m = (struct catch_main){.fn = {drop_two, looper}, .kid = {&a, &b}};
    setup_at(0, NULL);
    ck_assert_int_eq(RUN(catch_main, &m), 0);
    ck_assert_int_eq(a.second, -PTRIO_EMISUSE);
    ck_assert_str_eq(L.buf, "A0@0 A1@0 B0@0 A2@0 B1@0 B2@0 caught@0");
    ck_assert_int_eq(m.err, 0);
    assert_all_exited(3);
}
END_TEST

/* Drops a sleep's PTRIO_PENDING and ends at once. */
static int drop_then_end(ptrio_frame *fr)
{
    struct dropper *f = PTRIO_SELF(fr, struct dropper);
    PTRIO_BEGIN(f);
    ev(f->name, "+");
    if (ptrio_sleep(f, PTRIO_SEC(5))) {}
    PTRIO_END(f);
}

/* A frame that ends while its task still sleeps fails with -PTRIO_EMISUSE
 * and leaves nothing in the deadline tree: the later sleep (10 s) is the
 * only wait of the run, it wakes exactly at 10 s and the run ends then. */
START_TEST(test_dropped_sleep_then_end)
{
    static struct catch_main m;
    static struct dropper k;
    k = (struct dropper){.name = "kid"};
    m = (struct catch_main){.fn = {drop_then_end}, .kid = {&k},
                            .after = PTRIO_SEC(10)};
    setup_at(0, NULL);
    ck_assert_int_eq(RUN(catch_main, &m), 0);
    ck_assert_str_eq(L.buf, "kid+@0 caught@0 woke@10000");
    ck_assert_int_eq(m.err, -PTRIO_EMISUSE);
    ck_assert_int_eq(PROBE.nwaits, 1);
    ck_assert_int_eq(PROBE.deadline[0], PTRIO_SEC(10));
    ck_assert_int_eq(end_time(), PTRIO_SEC(10));
    assert_all_exited(2);
}
END_TEST

/* After a dropped sleep, every awaitable refuses the task that already
 * waits (fast paths included): -PTRIO_EMISUSE, the sleep undone, nothing
 * queued, parked or started. */
enum { AW_CHECKPOINT, AW_YIELD, AW_SLEEP, AW_SLEEP_UNTIL, AW_SLEEP_FOREVER,
       AW_PARK, AW_PARK_HOOK, AW_CALL, AW_START, AW_IF_CANCELLED,
       AW_READABLE, AW_COUNT };

struct refuse_main {
    ptrio_frame fr;
    int which;
    int rc;
    ptrio_lot lot;
    ptrio_nursery n;
    ptrio_task t;
    struct marker kid, sub;
};

static int no_abort(ptrio_task *t, void *data)
{
    (void)t, (void)data;
    return 0;
}

/* The awaitable under test (a helper: a switch of the test's own). */
static int awaitable(struct refuse_main *f)
{
    switch (f->which) {
    case AW_CHECKPOINT: return ptrio_checkpoint(f);
    case AW_YIELD: return ptrio_yield(f);
    case AW_SLEEP: return ptrio_sleep(f, PTRIO_SEC(1));
    case AW_SLEEP_UNTIL: return ptrio_sleep_until(f, PTRIO_SEC(1));
    case AW_SLEEP_FOREVER: return ptrio_sleep_forever(f);
    case AW_PARK: return ptrio_park(f, &f->lot, NULL);
    case AW_PARK_HOOK: return ptrio_park_hook(f, no_abort, NULL);
    case AW_CALL:
        f->sub = (struct marker){.name = "sub"};
        return ptrio_call(f, &f->sub, marker);
    case AW_START:
        f->kid = (struct marker){.name = "kid"};
        return ptrio_start_named(f, &f->n, &f->t, marker, &f->kid, NULL,
                                 "kid");
    case AW_IF_CANCELLED: return ptrio_checkpoint_if_cancelled(f);
    default: return ptrio_wait_readable(f, 0);
    }
}

static int refuse_main(ptrio_frame *fr)
{
    struct refuse_main *f = PTRIO_SELF(fr, struct refuse_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        if (ptrio_sleep(f, PTRIO_SEC(5))) {}
        PTRIO_TRY(f, f->rc, awaitable(f));
        ev("after", "");
    }
    PTRIO_END(f);
}

START_TEST(test_every_awaitable_refuses)
{
    static struct refuse_main m;
    m = (struct refuse_main){.which = _i};
    setup_at(0, NULL);
    ck_assert_int_eq(RUN(refuse_main, &m), 0);
    ck_assert_int_eq(m.rc, -PTRIO_EMISUSE);
    ck_assert_str_eq(L.buf, "after@0");
    ck_assert_ptr_null(m.lot.head);
    ck_assert_int_eq(PROBE.nwaits, 0);
    ck_assert_int_eq(end_time(), 0);
    assert_all_exited(1);
}
END_TEST

struct drop_block_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct marker mk;
    int with_child, inside;
};

static int drop_then_nursery(ptrio_frame *fr)
{
    struct drop_block_main *f = PTRIO_SELF(fr, struct drop_block_main);
    PTRIO_BEGIN(f);
    if (!f->inside && ptrio_sleep(f, PTRIO_SEC(5))) {}
    PTRIO_NURSERY(f, &f->n) {
        if (f->with_child) {
            f->mk = (struct marker){.name = "mk"};
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, marker, &f->mk));
        }
        if (f->inside && ptrio_sleep(f, PTRIO_SEC(5))) {}
    }
    ev("after", "");
    PTRIO_FINALLY(f);
    ev_err("main", PTRIO_FINALLY_ERROR(f));
    PTRIO_END(f);
}

/* A nursery block after a dropped sleep, or whose body ends with one (its
 * close schedules or parks the task): the frame fails with -PTRIO_EMISUSE
 * once, the sleep is undone (no wait, no wake at 5 s, nothing left in the
 * deadline tree), the run queue stays sound, and a child (without a
 * checkpoint) still ends in its nursery. _i: bit 0 = with a child, bit 1
 * = the sleep dropped inside the body. */
START_TEST(test_dropped_sleep_then_nursery)
{
    static struct drop_block_main m;
    m = (struct drop_block_main){.with_child = _i & 1, .inside = _i >> 1};
    setup_at(0, NULL);
    ck_assert_int_eq(RUN(drop_then_nursery, &m), -PTRIO_EMISUSE);
    ck_assert_int_eq(count_of(L.buf, "main!PTRIO_EMISUSE@0"), 1);
    ck_assert_int_eq(count_of(L.buf, "after"), 0);
    ck_assert_int_le(count_of(L.buf, "mk@0"), 1);
    ck_assert_int_eq(PROBE.nwaits, 0);
    ck_assert_int_eq(end_time(), 0);
    assert_all_exited(PROBE.spawned);
    ck_assert_int_le(PROBE.spawned, 1 + m.with_child);
}
END_TEST

/* ---- 2. PTRIO_CHECK around an awaitable, PTRIO_PENDING raised -------- */

struct checker {
    ptrio_frame fr;
    const char *name;
};

static int check_sleep(ptrio_frame *fr)
{
    struct checker *f = PTRIO_SELF(fr, struct checker);
    PTRIO_BEGIN(f);
    ev(f->name, "+");
    PTRIO_CHECK(f, ptrio_sleep(f, PTRIO_SEC(1)));
    ev(f->name, "");
    PTRIO_FINALLY(f);
    ev_err(f->name, PTRIO_FINALLY_ERROR(f));
    PTRIO_END(f);
}

/* The frame fails once with -PTRIO_EMISUSE and its sleep is undone: it
 * neither "succeeds" while parked nor finishes a second time at 1 s. */
START_TEST(test_check_around_sleep)
{
    static struct catch_main m;
    static struct checker k;
    k = (struct checker){.name = "kid"};
    m = (struct catch_main){.fn = {check_sleep}, .kid = {&k}};
    setup_at(0, NULL);
    ck_assert_int_eq(RUN(catch_main, &m), 0);
    ck_assert_str_eq(L.buf, "kid+@0 kid!PTRIO_EMISUSE@0 caught@0");
    ck_assert_int_eq(m.err, -PTRIO_EMISUSE);
    ck_assert_int_eq(PROBE.nwaits, 0);
    ck_assert_int_eq(end_time(), 0);
    assert_all_exited(2);
}
END_TEST

/* A child for ptrio_start: calls started() at once, then sleeps under a
 * shield. */
struct skid {
    ptrio_frame fr;
    ptrio_scope sh;
    int started_rc;
};

static int skid(ptrio_frame *fr)
{
    struct skid *f = PTRIO_SELF(fr, struct skid);
    PTRIO_BEGIN(f);
    ev("kid", "+");
    f->started_rc = ptrio_started(f, NULL);
    PTRIO_SHIELD(f, &f->sh) {
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));
    }
    ev("kid", "");
    PTRIO_FINALLY(f);
    if (PTRIO_FINALLY_ERROR(f))
        ev_err("kid", PTRIO_FINALLY_ERROR(f));
    PTRIO_END(f);
}

struct check_start_main {
    ptrio_frame fr;
    ptrio_scope tb;
    ptrio_nursery n;
    ptrio_task ts, tk;
    struct starter {
        ptrio_frame fr;
        struct check_start_main *m;
    } s;
    struct skid k;
    int err;
};

static int check_starter(ptrio_frame *fr)
{
    struct starter *f = PTRIO_SELF(fr, struct starter);
    PTRIO_BEGIN(f);
    ev("S", "+");
    PTRIO_CHECK(f, ptrio_start_named(f, &f->m->n, &f->m->tk, skid, &f->m->k,
                                     NULL, "kid"));
    ev("S", "");
    PTRIO_FINALLY(f);
    ev_err("S", PTRIO_FINALLY_ERROR(f));
    PTRIO_END(f);
}

static int check_start_main(ptrio_frame *fr)
{
    struct check_start_main *f = PTRIO_SELF(fr, struct check_start_main);
    PTRIO_BEGIN(f);
    PTRIO_TRY_BLOCK(f, &f->tb) {
        PTRIO_NURSERY(f, &f->n) {
            f->s.m = f;
            PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->ts,
                                                  check_starter, &f->s, "S"));
        }
    }
    f->err = ptrio_scope_error(&f->tb);
    ev("after", "");
    PTRIO_END(f);
}

/* PTRIO_CHECK(f, ptrio_start(...)): the starter fails once with
 * -PTRIO_EMISUSE; the child it was starting becomes the nursery's child
 * (as if started: its started() is then a no-op) and runs to its end, the
 * nursery joins it at 1 s and raises the starter's failure. */
START_TEST(test_check_around_start)
{
    static struct check_start_main m;
    m = (struct check_start_main){0};
    setup_at(0, NULL);
    ck_assert_int_eq(RUN(check_start_main, &m), 0);
    ck_assert_str_eq(L.buf,
                     "S+@0 S!PTRIO_EMISUSE@0 kid+@0 kid@1000 after@1000");
    ck_assert_int_eq(m.err, -PTRIO_EMISUSE);
    ck_assert_int_eq(m.k.started_rc, 0);
    ck_assert_int_eq(end_time(), PTRIO_SEC(1));
    assert_all_exited(3);
}
END_TEST

struct start_in_scope_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_scope sc;
    ptrio_task tk;
    struct skid k;
    int r, r2;
};

static int start_in_scope_main(ptrio_frame *fr)
{
    struct start_in_scope_main *f =
        PTRIO_SELF(fr, struct start_in_scope_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_CANCEL_SCOPE(f, &f->sc) {
            /* misuse: the start's PTRIO_PENDING dropped (no PTRIO_AWAIT) */
            f->r = ptrio_start_named(f, &f->n, &f->tk, skid, &f->k, NULL,
                                     "kid");
        }
        /* The scope the child began under has closed; this await finds
         * the start still pending and undoes it. */
        PTRIO_TRY(f, f->r2, ptrio_sleep(f, PTRIO_MS(1)));
        ev_err("main", f->r2);
    }
    ev("after", "");
    PTRIO_END(f);
}

/* A start dropped inside a scope block that then ends: the await after
 * it fails with -PTRIO_EMISUSE, and the child becomes the nursery's child,
 * under the nursery's scope (not under the closed one), and runs to its
 * end; the nursery joins it at 1 s. */
START_TEST(test_dropped_start_in_closed_scope)
{
    static struct start_in_scope_main m;
    m = (struct start_in_scope_main){0};
    setup_at(0, NULL);
    ck_assert_int_eq(RUN(start_in_scope_main, &m), 0);
    ck_assert_int_eq(m.r, PTRIO_PENDING);
    ck_assert_int_eq(m.r2, -PTRIO_EMISUSE);
    ck_assert_int_eq(m.k.started_rc, 0);
    ck_assert_str_eq(L.buf,
                     "main!PTRIO_EMISUSE@0 kid+@0 kid@1000 after@1000");
    ck_assert_int_eq(end_time(), PTRIO_SEC(1));
    assert_all_exited(2);
}
END_TEST

struct raiser {
    ptrio_frame fr;
    int how;
};

static int raise_pending(ptrio_frame *fr)
{
    struct raiser *f = PTRIO_SELF(fr, struct raiser);
    PTRIO_BEGIN(f);
    if (f->how == 0)
        PTRIO_RAISE(f, PTRIO_PENDING, "x");
    else
        PTRIO_RETURN(f, PTRIO_PENDING);
    ev("not-reached", "");
    PTRIO_FINALLY(f);
    ev_err("fin", PTRIO_FINALLY_ERROR(f));
    PTRIO_END(f);
}

struct pending_main {
    ptrio_frame fr;
    struct raiser sub;
    int rc[2];
};

static int pending_main(ptrio_frame *fr)
{
    struct pending_main *f = PTRIO_SELF(fr, struct pending_main);
    PTRIO_BEGIN(f);
    f->sub = (struct raiser){.how = 0};
    PTRIO_TRY(f, f->rc[0], ptrio_call(f, &f->sub, raise_pending));
    f->sub = (struct raiser){.how = 1};
    PTRIO_TRY(f, f->rc[1], ptrio_call(f, &f->sub, raise_pending));
    ev("main", "");
    PTRIO_END(f);
}

/* Raising or returning PTRIO_PENDING is misuse, never a suspension nor a
 * success: -PTRIO_EMISUSE, FINALLY runs once. */
START_TEST(test_raise_return_pending)
{
    static struct pending_main m;
    m = (struct pending_main){0};
    setup_at(0, NULL);
    ck_assert_int_eq(RUN(pending_main, &m), 0);
    ck_assert_int_eq(m.rc[0], -PTRIO_EMISUSE);
    ck_assert_int_eq(m.rc[1], -PTRIO_EMISUSE);
    ck_assert_str_eq(L.buf,
                     "fin!PTRIO_EMISUSE@0 fin!PTRIO_EMISUSE@0 main@0");
    assert_all_exited(1);
}
END_TEST

/* ---- 3. a C return inside a block ------------------------------------ */

struct creturn_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_scope cs;
    ptrio_task t;
    struct shielded k;
    int go;
    int r;
};

static int creturn_nursery(ptrio_frame *fr)
{
    struct creturn_main *f = PTRIO_SELF(fr, struct creturn_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->k = (struct shielded){.name = "k", .d = PTRIO_SEC(1)};
        PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t, shielded, &f->k,
                                              "k"));
        if (f->go)
            return 0;   /* misuse: a C return inside the block */
    }
    ev("after", "");
    PTRIO_FINALLY(f);
    ev_err("main", PTRIO_FINALLY_ERROR(f));
    PTRIO_END(f);
}

/* The block still closes: the nursery is cancelled and joined (the
 * shielded child ends at 1 s), FINALLY runs, the frame fails with
 * -PTRIO_EMISUSE and no task outlives the run; the loop runs again. */
START_TEST(test_c_return_in_nursery)
{
    static struct creturn_main m;
    static struct sleeper s;
    m = (struct creturn_main){.go = 1};
    setup_at(0, NULL);
    ck_assert_int_eq(RUN(creturn_nursery, &m), -PTRIO_EMISUSE);
    ck_assert_str_eq(L.buf, "k+@0 k@1000 main!PTRIO_EMISUSE@1000");
    ck_assert(ptrio_cancel_called(ptrio_nursery_scope(&m.n)));
    ck_assert_uint_eq(ptrio_nursery_live(&m.n), 0);
    ck_assert_int_eq(end_time(), PTRIO_SEC(1));
    assert_all_exited(2);

    /* The same loop runs a new program from scratch. */
    s = (struct sleeper){.name = "s", .d = PTRIO_MS(500)};
    tlog_clear(&L);
    ck_assert_int_eq(RUN(sleeper, &s), 0);
    ck_assert_str_eq(L.buf, "s+@0 s@500");
    assert_all_exited(3);
}
END_TEST

static int creturn_scope(ptrio_frame *fr)
{
    struct creturn_main *f = PTRIO_SELF(fr, struct creturn_main);
    PTRIO_BEGIN(f);
    PTRIO_CANCEL_SCOPE(f, &f->cs) {
        PTRIO_CHECK(f, ptrio_scope_set_timeout(&f->cs, PTRIO_SEC(1)));
        if (f->go)
            return 0;   /* misuse: a C return inside the block */
    }
    ev("after", "");
    PTRIO_FINALLY(f);
    ev_err("main", PTRIO_FINALLY_ERROR(f));
    PTRIO_TRY(f, f->r, ptrio_sleep(f, PTRIO_SEC(2)));
    ev("fin", "");
    PTRIO_END(f);
}

/* Inside a cancel scope: the scope closes (its 1 s deadline leaves the
 * tree: FINALLY's 2 s sleep is not cancelled), FINALLY runs, the frame
 * fails with -PTRIO_EMISUSE. */
START_TEST(test_c_return_in_scope)
{
    static struct creturn_main m;
    m = (struct creturn_main){.go = 1};
    setup_at(0, NULL);
    ck_assert_int_eq(RUN(creturn_scope, &m), -PTRIO_EMISUSE);
    ck_assert_str_eq(L.buf, "main!PTRIO_EMISUSE@0 fin@2000");
    ck_assert_int_eq(m.r, 0);
    ck_assert(!ptrio_cancel_called(&m.cs));
    ck_assert_int_eq(PROBE.nwaits, 1);
    ck_assert_int_eq(PROBE.deadline[0], PTRIO_SEC(2));
    assert_all_exited(1);
}
END_TEST

static int creturn_plain(ptrio_frame *fr)
{
    struct creturn_main *f = PTRIO_SELF(fr, struct creturn_main);
    PTRIO_BEGIN(f);
    if (f->go == 2)
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(5)));
    if (f->go)
        return -PTRIO_EIO;  /* misuse: a C return in the body */
    ev("after", "");
    PTRIO_FINALLY(f);
    ev_err("main", PTRIO_FINALLY_ERROR(f));
    PTRIO_END(f);
}

/* Outside any block, in the first step (before the frame ever
 * suspended: go 1) or in a later one (go 2): the C return is noticed
 * all the same, FINALLY runs and the frame fails with -PTRIO_EMISUSE
 * (the first step's used to pass for a step written by hand, ending the
 * frame with the value returned and FINALLY skipped). */
START_TEST(test_c_return_outside_blocks)
{
    static struct creturn_main m;
    m = (struct creturn_main){.go = _i + 1};
    setup_at(0, NULL);
    ck_assert_int_eq(RUN(creturn_plain, &m), -PTRIO_EMISUSE);
    ck_assert_str_eq(L.buf, _i ? "main!PTRIO_EMISUSE@5"
                               : "main!PTRIO_EMISUSE@0");
    assert_all_exited(1);
}
END_TEST

struct goto_main {
    ptrio_frame fr;
    ptrio_scope outer, inner;
    int r;
};

static int goto_scope(ptrio_frame *fr)
{
    struct goto_main *f = PTRIO_SELF(fr, struct goto_main);
    PTRIO_BEGIN(f);
    PTRIO_CANCEL_SCOPE(f, &f->outer) {
        PTRIO_CANCEL_SCOPE(f, &f->inner) {
            PTRIO_CHECK(f, ptrio_scope_set_timeout(&f->inner, PTRIO_SEC(1)));
            goto out;   /* misuse: leaves the inner block unclosed */
        }
    out:
        ev("out", "");
    }
    ev("after", "");
    PTRIO_FINALLY(f);
    ev_err("main", PTRIO_FINALLY_ERROR(f));
    PTRIO_TRY(f, f->r, ptrio_sleep(f, PTRIO_SEC(2)));
    ev("fin", "");
    PTRIO_END(f);
}

/* The outer block ends while the inner is still open (a goto out of it):
 * closing the outer is refused with -PTRIO_EMISUSE, which closes the
 * inner first (its deadline leaves the tree: FINALLY's 2 s sleep is not
 * cancelled), then the outer; FINALLY runs and the frame fails with it. */
/* Trio test_run.py: test_cancel_scope_misnesting_1 (RuntimeError there) */
START_TEST(test_goto_out_of_inner_scope)
{
    static struct goto_main m;
    m = (struct goto_main){0};
    setup_at(0, NULL);
    ck_assert_int_eq(RUN(goto_scope, &m), -PTRIO_EMISUSE);
    ck_assert_str_eq(L.buf, "out@0 main!PTRIO_EMISUSE@0 fin@2000");
    ck_assert_int_eq(m.r, 0);
    ck_assert(!ptrio_cancel_called(&m.outer));
    ck_assert(!ptrio_cancel_called(&m.inner));
    ck_assert_int_eq(PROBE.nwaits, 1);
    ck_assert_int_eq(PROBE.deadline[0], PTRIO_SEC(2));
    assert_all_exited(1);
}
END_TEST

struct wakefv_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct sleeper k;
    int rc;
};

static int wakefv_main(ptrio_frame *fr)
{
    struct wakefv_main *f = PTRIO_SELF(fr, struct wakefv_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->k = (struct sleeper){.name = "k", .d = PTRIO_TIME_INF};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, sleeper, &f->k));
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        f->rc = ptrio_wake(&f->t, 0);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        ptrio_nursery_cancel(&f->n);
    }
    PTRIO_END(f);
}

/* sleep_forever is no wait of a hook: waking it by hand is refused
 * (-PTRIO_EINVAL) and it sleeps on, until cancelled. */
/* Trio test_timeouts.py: test_cannot_wake_sleep_forever */
START_TEST(test_cannot_wake_sleep_forever)
{
    static struct wakefv_main m;
    m = (struct wakefv_main){0};
    setup_at(0, NULL);
    ck_assert_int_eq(RUN(wakefv_main, &m), 0);
    ck_assert_int_eq(m.rc, -PTRIO_EINVAL);
    ck_assert_str_eq(L.buf, "k+@0 k!PTRIO_ECANCELED@2");
    assert_all_exited(2);
}
END_TEST

/* ---- 4. no task outlives ptrio_loop_run --------------------------- */

/* Sleeps `d`; FINALLY logs the error, then sleeps `clean` under a shield
 * (PTRIO_TIME_INF: forever; 0: not at all) and logs how that ended. */
struct stubborn {
    ptrio_frame fr;
    const char *name;
    ptrio_time d, clean;
    ptrio_scope sh;
    int r;
};

static int stubborn(ptrio_frame *fr)
{
    struct stubborn *f = PTRIO_SELF(fr, struct stubborn);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_sleep(f, f->d));
    ev(f->name, "");
    PTRIO_FINALLY(f);
    ev_err(f->name, PTRIO_FINALLY_ERROR(f));
    if (f->clean) {
        PTRIO_SHIELD(f, &f->sh) {
            PTRIO_TRY(f, f->r, ptrio_sleep(f, f->clean));
        }
        ev_err(f->name, f->r);
    }
    PTRIO_END(f);
}

struct three_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[3];
    struct stubborn k[3];
    int nk;
    int i;
};

static int three_main(ptrio_frame *fr)
{
    struct three_main *f = PTRIO_SELF(fr, struct three_main);
    static const char *const names[] = {"A", "B", "C"};
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        for (f->i = 0; f->i < f->nk; f->i++)
            PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[f->i],
                                                  stubborn, &f->k[f->i],
                                                  names[f->i]));
    }
    ev("after", "");
    PTRIO_FINALLY(f);
    ev_err("main", PTRIO_FINALLY_ERROR(f));
    PTRIO_END(f);
}

/* The backend's first wait fails: every task is cancelled and joined, the
 * run returns the backend's error. */
START_TEST(test_backend_fails_once)
{
    static struct three_main m;
    m = (struct three_main){.nk = 2};
    m.k[0] = (struct stubborn){.name = "A", .d = PTRIO_SEC(1)};
    m.k[1] = (struct stubborn){.name = "B", .d = PTRIO_SEC(2)};
    setup_at(0, NULL);
    CLOCK.fail_first = 1;
    CLOCK.fail_rc = -PTRIO_EIO;
    ck_assert_int_eq(RUN(three_main, &m), -PTRIO_EIO);
    ck_assert_str_eq(L.buf, "A!PTRIO_ECANCELED@0 B!PTRIO_ECANCELED@0 "
                            "main!PTRIO_ECANCELED@0");
    ck_assert_int_eq(CLOCK.waits, 1);
    assert_all_exited(3);
}
END_TEST

/* Every wait fails while shielded cleanups sleep (forever, and 5 s): the
 * run still ends, every wait aborted, shields or not, every task exited. */
START_TEST(test_backend_fails_always)
{
    static struct three_main m;
    m = (struct three_main){.nk = 2};
    m.k[0] = (struct stubborn){.name = "A", .d = PTRIO_SEC(1),
                               .clean = PTRIO_TIME_INF};
    m.k[1] = (struct stubborn){.name = "B", .d = PTRIO_SEC(2),
                               .clean = PTRIO_SEC(5)};
    setup_at(0, NULL);
    CLOCK.fail_always = 1;
    CLOCK.fail_rc = -PTRIO_EIO;
    ck_assert_int_eq(RUN(three_main, &m), -PTRIO_EIO);
    ck_assert_str_eq(L.buf, "A!PTRIO_ECANCELED@0 B!PTRIO_ECANCELED@0 "
                            "A!PTRIO_ECANCELED@0 B!PTRIO_ECANCELED@0 "
                            "main!PTRIO_ECANCELED@0");
    ck_assert_int_eq(m.k[0].r, -PTRIO_ECANCELED);
    ck_assert_int_eq(m.k[1].r, -PTRIO_ECANCELED);
    ck_assert_int_eq(CLOCK.waits, 2);
    ck_assert_int_eq(end_time(), 0);
    assert_all_exited(3);
}
END_TEST

/* White-box: a loop that somehow still holds tasks refuses to run rather
 * than inherit them. */
START_TEST(test_loop_with_tasks_refuses)
{
    static struct marker mk;
    mk = (struct marker){.name = "m"};
    setup_at(0, NULL);
    LOOP.ntasks = 1;
    ck_assert_int_eq(RUN(marker, &mk), -PTRIO_EBUSY);
    ck_assert_str_eq(L.buf, "");
    ck_assert_int_eq(LOOP.running, 0);
    ck_assert_ptr_null(ptrio_current_loop());
    ck_assert_int_eq(PROBE.spawned, 0);
}
END_TEST

/* ---- 5. frame reuse ---------------------------------------------------- */

struct reuse_main {
    ptrio_frame fr;
    ptrio_scope tb;
    ptrio_nursery n;
    ptrio_task t[2];
    struct sleeper k;
    int zero;
    int err;
};

static int reuse_main(ptrio_frame *fr)
{
    struct reuse_main *f = PTRIO_SELF(fr, struct reuse_main);
    PTRIO_BEGIN(f);
    PTRIO_TRY_BLOCK(f, &f->tb) {
        PTRIO_NURSERY(f, &f->n) {
            f->k = (struct sleeper){.name = "A", .d = PTRIO_SEC(2)};
            PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[0], sleeper,
                                                  &f->k, "A"));
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));
            if (f->zero == 1) {
                memset(&f->k, 0, sizeof f->k);     /* misuse */
            } else if (f->zero == 2) {
                f->k.fr.resume = 0;     /* white-box: only the resume point */
            } else {
                /* misuse: the old README idiom, on a running frame */
                f->k = (struct sleeper){.name = "B", .d = PTRIO_MS(500)};
                PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[1],
                                                      sleeper, &f->k, "B"));
            }
        }
    }
    f->err = ptrio_scope_error(&f->tb);
    ev("caught", "");
    PTRIO_END(f);
}

/* A frame re-initialised while task A sleeps in it and started again as
 * task B: B runs it normally; A, when it wakes, finds its frame taken and
 * fails with -PTRIO_EMISUSE without running it; the nursery joins both. No
 * line is logged twice. */
START_TEST(test_frame_reinit_and_restart)
{
    static struct reuse_main m;
    m = (struct reuse_main){0};
    setup_at(0, NULL);
    ck_assert_int_eq(RUN(reuse_main, &m), 0);
    ck_assert_str_eq(L.buf, "A+@0 B+@1000 B@1500 caught@2000");
    ck_assert_int_eq(m.err, -PTRIO_EMISUSE);
    ck_assert_int_eq(m.t[0].w.done.code, -PTRIO_EMISUSE);   /* white-box */
    ck_assert_int_eq(m.t[1].w.done.code, 0);
    ck_assert_int_eq(count_of(L.buf, "B@"), 1);
    assert_all_exited(3);
}
END_TEST

/* A frame zeroed while its task sleeps: the task fails with
 * -PTRIO_EMISUSE when it wakes; nothing jumps to resume point 0 or calls
 * through the zeroed step function. */
START_TEST(test_frame_zeroed_while_sleeping)
{
    static struct reuse_main m;
    m = (struct reuse_main){.zero = 1};
    setup_at(0, NULL);
    ck_assert_int_eq(RUN(reuse_main, &m), 0);
    ck_assert_str_eq(L.buf, "A+@0 caught@2000");
    ck_assert_int_eq(m.err, -PTRIO_EMISUSE);
    assert_all_exited(2);
}
END_TEST

/* White-box: only the frame's resume point is zeroed under its task (the
 * rest of the header intact): resume point 0 is never jumped to (the
 * computed-goto build of the old core jumped to address 0); the frame
 * raises -PTRIO_EMISUSE from there, so its FINALLY still runs (as for an
 * await inside a switch of the user's, test_await_in_user_switch_finally),
 * and fails with it. */
START_TEST(test_frame_resume_zeroed)
{
    static struct reuse_main m;
    m = (struct reuse_main){.zero = 2};
    setup_at(0, NULL);
    ck_assert_int_eq(RUN(reuse_main, &m), 0);
    ck_assert_str_eq(L.buf, "A+@0 A!PTRIO_EMISUSE@2000 caught@2000");
    ck_assert_int_eq(m.err, -PTRIO_EMISUSE);
    assert_all_exited(2);
}
END_TEST

/* ---- 6. an await inside a switch of the user's ---------------------- */

struct switcher {
    ptrio_frame fr;
    int mode;
};

static int switcher(ptrio_frame *fr)
{
    struct switcher *f = PTRIO_SELF(fr, struct switcher);
    PTRIO_BEGIN(f);
    ev("sw", "+");
    switch (f->mode) {
    case 1:
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));
        ev("in-switch", "");
        break;
    default:
        break;
    }
    ev("sw", "");
    PTRIO_END(f);
}

/* The same with a cleanup section. */
static int switcher_fin(ptrio_frame *fr)
{
    struct switcher *f = PTRIO_SELF(fr, struct switcher);
    PTRIO_BEGIN(f);
    ev("sw", "+");
    switch (f->mode) {
    case 1:
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));
        ev("in-switch", "");
        break;
    default:
        break;
    }
    ev("sw", "");
    PTRIO_FINALLY(f);
    ev_err("fin", PTRIO_FINALLY_ERROR(f));
    PTRIO_END(f);
}

/* A block opened inside the user's switch, with an await in it. */
struct block_switcher {
    ptrio_frame fr;
    ptrio_scope cs;
    int mode;
};

static int block_switcher(ptrio_frame *fr)
{
    struct block_switcher *f = PTRIO_SELF(fr, struct block_switcher);
    PTRIO_BEGIN(f);
    ev("sw", "+");
    switch (f->mode) {
    case 1:
        PTRIO_CANCEL_SCOPE(f, &f->cs) {
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));
            ev("in-block", "");
        }
        break;
    default:
        break;
    }
    ev("sw", "");
    PTRIO_END(f);
}

#ifndef PTRIO_COMPUTED_GOTO
/* Switch resume points: the resume lands in the frame's own switch, which
 * has no such case: the frame fails with -PTRIO_EMISUSE instead of
 * silently ending with 0. */
START_TEST(test_await_in_user_switch)
{
    static struct switcher s;
    s = (struct switcher){.mode = 1};
    setup_at(0, NULL);
    ck_assert_int_eq(RUN(switcher, &s), -PTRIO_EMISUSE);
    ck_assert_str_eq(L.buf, "sw+@0");
    ck_assert_int_eq(end_time(), PTRIO_SEC(1));
    assert_all_exited(1);
}
END_TEST

/* The same with a block open inside the switch: its close step is
 * unreachable too; the frame still fails with -PTRIO_EMISUSE (once), and
 * nothing loops forever. */
START_TEST(test_block_in_user_switch)
{
    static struct block_switcher s;
    s = (struct block_switcher){.mode = 1};
    setup_at(0, NULL);
    ck_assert_int_eq(RUN(block_switcher, &s), -PTRIO_EMISUSE);
    ck_assert_str_eq(L.buf, "sw+@0");
    ck_assert_int_eq(end_time(), PTRIO_SEC(1));
    assert_all_exited(1);
}
END_TEST

/* ... and, as for every error, its FINALLY runs (once, with the error). */
START_TEST(test_await_in_user_switch_finally)
{
    static struct switcher s;
    s = (struct switcher){.mode = 1};
    setup_at(0, NULL);
    ck_assert_int_eq(RUN(switcher_fin, &s), -PTRIO_EMISUSE);
    ck_assert_str_eq(L.buf, "sw+@0 fin!PTRIO_EMISUSE@1000");
    assert_all_exited(1);
}
END_TEST
#else
/* Label addresses: an await inside a switch works. */
START_TEST(test_await_in_user_switch)
{
    static struct switcher s;
    s = (struct switcher){.mode = 1};
    setup_at(0, NULL);
    ck_assert_int_eq(RUN(switcher, &s), 0);
    ck_assert_str_eq(L.buf, "sw+@0 in-switch@1000 sw@1000");
    assert_all_exited(1);
}
END_TEST

START_TEST(test_block_in_user_switch)
{
    static struct block_switcher s;
    s = (struct block_switcher){.mode = 1};
    setup_at(0, NULL);
    ck_assert_int_eq(RUN(block_switcher, &s), 0);
    ck_assert_str_eq(L.buf, "sw+@0 in-block@1000 sw@1000");
    assert_all_exited(1);
}
END_TEST

START_TEST(test_await_in_user_switch_finally)
{
    static struct switcher s;
    s = (struct switcher){.mode = 1};
    setup_at(0, NULL);
    ck_assert_int_eq(RUN(switcher_fin, &s), 0);
    ck_assert_str_eq(L.buf, "sw+@0 in-switch@1000 sw@1000 fin-ok@1000");
    assert_all_exited(1);
}
END_TEST
#endif

/* ---- 7. one rule for "now + d" ------------------------------------------ */

#define D62 ((ptrio_time)1 << 62)

struct clock_main {
    ptrio_frame fr;
    ptrio_scope mo, fa, tb, cs;
    ptrio_time t[6];
    ptrio_time dl;
    int err;
    int rc;
};

/* sleep, MOVE_ON_AFTER, FAIL_AFTER and set_timeout, each noting the clock
 * after it. */
static int clock_main(ptrio_frame *fr)
{
    struct clock_main *f = PTRIO_SELF(fr, struct clock_main);
    PTRIO_BEGIN(f);
    f->t[0] = ptrio_now();
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(5)));
    f->t[1] = ptrio_now();
    PTRIO_MOVE_ON_AFTER(f, &f->mo, PTRIO_SEC(3)) {
        PTRIO_AWAIT(f, ptrio_sleep_forever(f));
    }
    f->t[2] = ptrio_now();
    PTRIO_TRY_BLOCK(f, &f->tb) {
        PTRIO_FAIL_AFTER(f, &f->fa, PTRIO_SEC(2)) {
            PTRIO_AWAIT(f, ptrio_sleep_forever(f));
        }
    }
    f->err = ptrio_scope_error(&f->tb);
    f->t[3] = ptrio_now();
    PTRIO_CANCEL_SCOPE(f, &f->cs) {
        PTRIO_CHECK(f, ptrio_scope_set_timeout(&f->cs, PTRIO_SEC(1)));
        f->dl = ptrio_scope_deadline(&f->cs);
        PTRIO_AWAIT(f, ptrio_sleep_forever(f));
    }
    f->t[4] = ptrio_now();
    PTRIO_END(f);
}

static const ptrio_time clock_starts[] = {
    0, -PTRIO_SEC(10), INT64_MIN / 2, INT64_MIN + PTRIO_SEC(1)
};

/* A clock that reads below zero (a port may start there, even near
 * INT64_MIN): every deadline is exactly start + d (the old core's lazy
 * arming overflowed: UBSan, or a deadline saturated to never). */
START_TEST(test_negative_clock)
{
    static struct clock_main m;
    ptrio_time s = clock_starts[_i];
    m = (struct clock_main){0};
    setup_at(s, NULL);
    ck_assert_int_eq(RUN(clock_main, &m), 0);
    ck_assert_int_eq(m.t[0], s);
    ck_assert_int_eq(m.t[1], s + PTRIO_SEC(5));
    ck_assert_int_eq(m.t[2], s + PTRIO_SEC(8));
    ck_assert(ptrio_cancelled_caught(&m.mo));
    ck_assert_int_eq(m.err, -PTRIO_ETIMEDOUT);
    ck_assert_int_eq(m.t[3], s + PTRIO_SEC(10));
    ck_assert_int_eq(m.dl, s + PTRIO_SEC(11));
    ck_assert_int_eq(m.t[4], s + PTRIO_SEC(11));
    ck_assert(ptrio_cancelled_caught(&m.cs));
}
END_TEST

static int near_max_main(ptrio_frame *fr)
{
    struct clock_main *f = PTRIO_SELF(fr, struct clock_main);
    PTRIO_BEGIN(f);
    PTRIO_CANCEL_SCOPE(f, &f->cs) {
        f->rc = ptrio_scope_set_timeout(&f->cs, PTRIO_SEC(5));
        f->dl = ptrio_scope_deadline(&f->cs);
    }
    PTRIO_MOVE_ON_AFTER(f, &f->mo, PTRIO_SEC(5)) {
        PTRIO_AWAIT(f, ptrio_sleep_forever(f));
    }
    f->t[0] = ptrio_now();
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(5)));
    f->t[1] = ptrio_now();
    PTRIO_END(f);
}

/* A clock near INT64_MAX: now + 5 s saturates to the last finite instant
 * (INT64_MAX - 1) instead of failing or wrapping into the past. */
START_TEST(test_clock_near_max)
{
    static struct clock_main m;
    m = (struct clock_main){0};
    setup_at(PTRIO_TIME_INF - PTRIO_SEC(1), NULL);
    ck_assert_int_eq(RUN(near_max_main, &m), 0);
    ck_assert_int_eq(m.rc, 0);
    ck_assert_int_eq(m.dl, PTRIO_TIME_INF - 1);
    ck_assert(ptrio_cancelled_caught(&m.mo));
    ck_assert_int_eq(m.t[0], PTRIO_TIME_INF - 1);
    ck_assert_int_eq(m.t[1], PTRIO_TIME_INF - 1);
}
END_TEST

/* Durations, checked the same way by all four: d < 0, d > 2^62, d = 2^62,
 * PTRIO_TIME_INF. */
struct dur_main {
    ptrio_frame fr;
    ptrio_scope sc, tb, mo;
    int sleep_rc[2], set_rc[4], move_rc[2], fail_rc[2];
    ptrio_time set_dl[2], move_dl[2], fail_dl[2];
    ptrio_time forever_at, d62_at;
    int forever_rc, d62_rc;
    int i;
};

static const ptrio_time bad_d[2] = {-1, D62 + 1};
static const ptrio_time good_d[2] = {D62, PTRIO_TIME_INF};

static int dur_main(ptrio_frame *fr)
{
    struct dur_main *f = PTRIO_SELF(fr, struct dur_main);
    PTRIO_BEGIN(f);
    for (f->i = 0; f->i < 2; f->i++) {
        PTRIO_TRY(f, f->sleep_rc[f->i], ptrio_sleep(f, bad_d[f->i]));
        f->sc = (ptrio_scope){0};
        f->set_rc[f->i] = ptrio_scope_set_timeout(&f->sc, bad_d[f->i]);
        f->tb = (ptrio_scope){0};
        PTRIO_TRY_BLOCK(f, &f->tb) {
            f->mo = (ptrio_scope){0};
            PTRIO_MOVE_ON_AFTER(f, &f->mo, bad_d[f->i]) {
                ev("move-body", "");
            }
        }
        f->move_rc[f->i] = ptrio_scope_error(&f->tb);
        f->tb = (ptrio_scope){0};
        PTRIO_TRY_BLOCK(f, &f->tb) {
            f->mo = (ptrio_scope){0};
            PTRIO_FAIL_AFTER(f, &f->mo, bad_d[f->i]) {
                ev("fail-body", "");
            }
        }
        f->fail_rc[f->i] = ptrio_scope_error(&f->tb);
    }
    for (f->i = 0; f->i < 2; f->i++) {
        f->sc = (ptrio_scope){0};
        PTRIO_CANCEL_SCOPE(f, &f->sc) {
            f->set_rc[2 + f->i] = ptrio_scope_set_timeout(&f->sc,
                                                          good_d[f->i]);
            f->set_dl[f->i] = ptrio_scope_deadline(&f->sc);
        }
        f->mo = (ptrio_scope){0};
        PTRIO_MOVE_ON_AFTER(f, &f->mo, good_d[f->i]) {
            f->move_dl[f->i] = ptrio_scope_deadline(&f->mo);
        }
        f->mo = (ptrio_scope){0};
        PTRIO_FAIL_AFTER(f, &f->mo, good_d[f->i]) {
            f->fail_dl[f->i] = ptrio_scope_deadline(&f->mo);
        }
    }
    /* A sleep of PTRIO_TIME_INF is forever: only the 1 s scope ends it. */
    f->mo = (ptrio_scope){0};
    PTRIO_MOVE_ON_AFTER(f, &f->mo, PTRIO_SEC(1)) {
        PTRIO_TRY(f, f->forever_rc, ptrio_sleep(f, PTRIO_TIME_INF));
    }
    f->forever_at = ptrio_now();
    /* A sleep of 2^62 ns is accepted: the clock jumps there. */
    PTRIO_TRY(f, f->d62_rc, ptrio_sleep(f, D62));
    f->d62_at = ptrio_now();
    PTRIO_END(f);
}

START_TEST(test_duration_rules)
{
    static struct dur_main m;
    int i;
    m = (struct dur_main){0};
    setup_at(0, NULL);
    ck_assert_int_eq(RUN(dur_main, &m), 0);
    ck_assert_str_eq(L.buf, "");
    for (i = 0; i < 2; i++) {
        int want = i == 0 ? -PTRIO_EINVAL : -PTRIO_EOVERFLOW;
        ck_assert_int_eq(m.sleep_rc[i], want);
        ck_assert_int_eq(m.set_rc[i], want);
        ck_assert_int_eq(m.move_rc[i], want);
        ck_assert_int_eq(m.fail_rc[i], want);
    }
    ck_assert_int_eq(m.set_rc[2], 0);
    ck_assert_int_eq(m.set_rc[3], 0);
    ck_assert_int_eq(m.set_dl[0], D62);
    ck_assert_int_eq(m.move_dl[0], D62);
    ck_assert_int_eq(m.fail_dl[0], D62);
    ck_assert_int_eq(m.set_dl[1], PTRIO_TIME_INF);
    ck_assert_int_eq(m.move_dl[1], PTRIO_TIME_INF);
    ck_assert_int_eq(m.fail_dl[1], PTRIO_TIME_INF);
    ck_assert_int_eq(m.forever_rc, -PTRIO_ECANCELED);
    ck_assert_int_eq(m.forever_at, PTRIO_SEC(1));
    ck_assert_int_eq(m.d62_rc, 0);
    ck_assert_int_eq(m.d62_at, PTRIO_SEC(1) + D62);
}
END_TEST

/* ---- 8. a foreign -ECANCELED is an I/O error ------------------------- */

#define LINUX_ECANCELED 125

/* A pretend I/O operation that completes at once with `rc`. */
static int fake_io(void *self, int rc)
{
    (void)self;
    return rc;
}

struct io_kid {
    ptrio_frame fr;
    const char *name;
};

static int io_kid(ptrio_frame *fr)
{
    struct io_kid *f = PTRIO_SELF(fr, struct io_kid);
    PTRIO_BEGIN(f);
    ev(f->name, "+");
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));
    PTRIO_AWAIT(f, fake_io(f, -LINUX_ECANCELED));
    ev(f->name, "");
    PTRIO_FINALLY(f);
    ev_err(f->name, PTRIO_FINALLY_ERROR(f));
    PTRIO_END(f);
}

/* -125 from a child is a failure: it cancels the sibling, the nursery
 * raises it, TRY_BLOCK catches it as itself. */
START_TEST(test_foreign_ecanceled_in_nursery)
{
    static struct catch_main m;
    static struct io_kid k;
    static struct sleeper sib;
    ck_assert_int_ne(-PTRIO_ECANCELED, -LINUX_ECANCELED);
    k = (struct io_kid){.name = "io"};
    sib = (struct sleeper){.name = "sib", .d = PTRIO_TIME_INF};
    m = (struct catch_main){.fn = {io_kid, sleeper}, .kid = {&k, &sib}};
    setup_at(0, NULL);
    ck_assert_int_eq(RUN(catch_main, &m), 0);
    ck_assert_str_eq(L.buf, "io+@0 sib+@0 io!ECANCELED@1000 "
                            "sib!PTRIO_ECANCELED@1000 caught@1000");
    ck_assert_int_eq(m.err, -LINUX_ECANCELED);
    ck_assert(ptrio_cancel_called(ptrio_nursery_scope(&m.n)));
    assert_all_exited(3);
}
END_TEST

struct io_scope_main {
    ptrio_frame fr;
    ptrio_scope tb, mo, sh;
    int err;
};

static int io_scope_main(ptrio_frame *fr)
{
    struct io_scope_main *f = PTRIO_SELF(fr, struct io_scope_main);
    PTRIO_BEGIN(f);
    PTRIO_TRY_BLOCK(f, &f->tb) {
        PTRIO_MOVE_ON_AFTER(f, &f->mo, PTRIO_SEC(1)) {
            PTRIO_SHIELD(f, &f->sh) {
                PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(2)));
            }
            ev("io", "");
            PTRIO_AWAIT(f, fake_io(f, -LINUX_ECANCELED));
            ev("not-reached", "");
        }
        ev("moved-on", "");
    }
    f->err = ptrio_scope_error(&f->tb);
    ev("caught", "");
    PTRIO_END(f);
}

/* A MOVE_ON_AFTER whose deadline has passed does not swallow -125: it is
 * not its cancellation. */
START_TEST(test_foreign_ecanceled_not_swallowed)
{
    static struct io_scope_main m;
    m = (struct io_scope_main){0};
    setup_at(0, NULL);
    ck_assert_int_eq(RUN(io_scope_main, &m), 0);
    ck_assert_str_eq(L.buf, "io@2000 caught@2000");
    ck_assert_int_eq(m.err, -LINUX_ECANCELED);
    ck_assert(ptrio_cancel_called(&m.mo));
    ck_assert(!ptrio_cancelled_caught(&m.mo));
}
END_TEST

struct cancel_raise_main {
    ptrio_frame fr;
    ptrio_scope cs;
    struct raise_cancelled {
        ptrio_frame fr;
    } sub;
    int rc;
};

static int raise_cancelled(ptrio_frame *fr)
{
    struct raise_cancelled *f = PTRIO_SELF(fr, struct raise_cancelled);
    PTRIO_BEGIN(f);
    PTRIO_RAISE(f, -PTRIO_ECANCELED, "fake cancel");
    PTRIO_END(f);
}

static int cancel_raise_outside(ptrio_frame *fr)
{
    struct cancel_raise_main *f = PTRIO_SELF(fr, struct cancel_raise_main);
    PTRIO_BEGIN(f);
    PTRIO_TRY(f, f->rc, ptrio_call(f, &f->sub, raise_cancelled));
    ev("after", "");
    PTRIO_END(f);
}

/* Only the scheduler cancels: raising -PTRIO_ECANCELED outside a cancelled
 * scope is misuse. */
START_TEST(test_raise_ecanceled_outside)
{
    static struct cancel_raise_main m;
    m = (struct cancel_raise_main){0};
    setup_at(0, NULL);
    ck_assert_int_eq(RUN(cancel_raise_outside, &m), 0);
    ck_assert_int_eq(m.rc, -PTRIO_EMISUSE);
    ck_assert_str_eq(L.buf, "after@0");
}
END_TEST

static int cancel_raise_inside(ptrio_frame *fr)
{
    struct cancel_raise_main *f = PTRIO_SELF(fr, struct cancel_raise_main);
    PTRIO_BEGIN(f);
    PTRIO_CANCEL_SCOPE(f, &f->cs) {
        ptrio_cancel(&f->cs);
        PTRIO_AWAIT(f, ptrio_call(f, &f->sub, raise_cancelled));
        ev("not-reached", "");
    }
    ev("after", "");
    PTRIO_END(f);
}

/* Inside a cancelled scope it is a re-raise: the scope catches it. */
START_TEST(test_raise_ecanceled_inside)
{
    static struct cancel_raise_main m;
    m = (struct cancel_raise_main){0};
    setup_at(0, NULL);
    ck_assert_int_eq(RUN(cancel_raise_inside, &m), 0);
    ck_assert_str_eq(L.buf, "after@0");
    ck_assert(ptrio_cancelled_caught(&m.cs));
}
END_TEST

/* A nursery opened while its own scope is open as a plain block: refused
 * (-PTRIO_EBUSY), as a scope opened twice is. It used to clear that open
 * scope and push it onto itself, and the run spun for ever. */
struct nursery_over_scope_main {
    ptrio_frame fr;
    ptrio_scope tb;
    ptrio_nursery n;
    int rc;
};

static int nursery_over_scope(ptrio_frame *fr)
{
    struct nursery_over_scope_main *f =
        PTRIO_SELF(fr, struct nursery_over_scope_main);
    PTRIO_BEGIN(f);
    PTRIO_TRY_BLOCK(f, &f->tb) {
        PTRIO_CANCEL_SCOPE(f, ptrio_nursery_scope(&f->n)) {
            PTRIO_NURSERY(f, &f->n) {
                ev("nursery-open", "");
            }
        }
    }
    f->rc = ptrio_scope_error(&f->tb);
    ev("after", "");
    PTRIO_END(f);
}

START_TEST(test_nursery_over_its_open_scope)
{
    static struct nursery_over_scope_main m;
    m = (struct nursery_over_scope_main){0};
    setup_at(0, NULL);
    ck_assert_int_eq(RUN(nursery_over_scope, &m), 0);
    ck_assert_int_eq(m.rc, -PTRIO_EBUSY);
    ck_assert_str_eq(L.buf, "after@0");
}
END_TEST

/* A report sink for no loop: nothing done, no crash. */
START_TEST(test_report_for_null_loop)
{
    ptrio_loop_set_report(NULL, NULL, NULL);
}
END_TEST

/* ---- 9. misuse messages name the user's line (debug builds) ---------- */

#ifdef PTRIO_DEBUG
static int misuse_line;     /* the line of the misusing macro */

/* The trap's report must name this file and the misusing line, and no
 * label address; otherwise the test exits 7 instead of trapping. */
static void line_sink(void *ctx, const char *line)
{
    char want[64];
    const char *at;
    (void)ctx;
    if (!strstr(line, "misuse"))
        return;
    fmt(want, "check_misuse.c:", misuse_line);
    if (!strstr(line, want) || strstr(line, "0x"))
        _Exit(7);
    at = strstr(line, " at line ");
    if (at && strtol(at + 9, NULL, 10) > 100000)
        _Exit(7);
}

struct line_main {
    ptrio_frame fr;
    int how;
};

static int line_main(ptrio_frame *fr)
{
    struct line_main *f = PTRIO_SELF(fr, struct line_main);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
    if (f->how == 0) {
        if (ptrio_sleep(f, PTRIO_SEC(5))) {}
        misuse_line = __LINE__; PTRIO_AWAIT(f, ptrio_checkpoint(f));
    } else if (f->how == 1) {
        misuse_line = __LINE__; PTRIO_CHECK(f, ptrio_sleep(f, 1));
    } else if (f->how == 2) {
        misuse_line = __LINE__; PTRIO_RAISE(f, PTRIO_PENDING, "x");
    } else {
        misuse_line = __LINE__; PTRIO_RAISE(f, -PTRIO_ECANCELED, "x");
    }
    PTRIO_END(f);
}

START_TEST(test_misuse_names_line)
{
    static struct line_main m;
    static ptrio_loop loop;
    m = (struct line_main){.how = _i};
    ptrio_loop_init(&loop);
    ck_assert_int_eq(ptrio_loop_use_backend(&loop, &ptrio_backend_virtual), 0);
    ptrio_loop_set_report(&loop, line_sink, NULL);
    (void)ptrio_loop_run(&loop, line_main, &m);
}
END_TEST

#ifndef PTRIO_COMPUTED_GOTO
/* A stray resume point: the report names the await's line, not a value. */
static int stray_sink_line;

static void stray_sink(void *ctx, const char *line)
{
    char want[64];
    (void)ctx;
    if (!strstr(line, "misuse"))
        return;
    fmt(want, " at line ", stray_sink_line);
    if (!strstr(line, want) || strstr(line, "0x"))
        _Exit(7);
}

static int stray_main(ptrio_frame *fr)
{
    struct switcher *f = PTRIO_SELF(fr, struct switcher);
    PTRIO_BEGIN(f);
    switch (f->mode) {
    case 1:
        stray_sink_line = __LINE__; PTRIO_AWAIT(f, ptrio_sleep(f, 1));
        break;
    default:
        break;
    }
    PTRIO_END(f);
}

START_TEST(test_misuse_stray_names_line)
{
    static struct switcher s;
    static ptrio_loop loop;
    s = (struct switcher){.mode = 1};
    ptrio_loop_init(&loop);
    ck_assert_int_eq(ptrio_loop_use_backend(&loop, &ptrio_backend_virtual), 0);
    ptrio_loop_set_report(&loop, stray_sink, NULL);
    (void)ptrio_loop_run(&loop, stray_main, &s);
}
END_TEST
#endif
#endif /* PTRIO_DEBUG */

int main(void)
{
    Suite *s = suite_create("misuse");
    TCase *tc = tcase_create("misuse");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 10);
    tcase_add_misuse_test(tc, test_dropped_sleep_then_await);
    tcase_add_misuse_test(tc, test_dropped_sleep_report_names_cause);
    tcase_add_misuse_test(tc, test_dropped_sleep_in_nursery);
    tcase_add_misuse_test(tc, test_two_dropped_checkpoints);
    tcase_add_misuse_test(tc, test_dropped_sleep_then_end);
    tcase_add_misuse_loop_test(tc, test_every_awaitable_refuses, 0, AW_COUNT);
    tcase_add_misuse_loop_test(tc, test_dropped_sleep_then_nursery, 0, 4);
    tcase_add_misuse_test(tc, test_check_around_sleep);
    tcase_add_misuse_test(tc, test_check_around_start);
    tcase_add_misuse_test(tc, test_dropped_start_in_closed_scope);
    tcase_add_misuse_test(tc, test_raise_return_pending);
    tcase_add_misuse_test(tc, test_report_for_null_loop);
    tcase_add_misuse_test(tc, test_c_return_in_nursery);
    tcase_add_misuse_test(tc, test_c_return_in_scope);
    tcase_add_misuse_loop_test(tc, test_c_return_outside_blocks, 0, 2);
    tcase_add_misuse_test(tc, test_goto_out_of_inner_scope);
    tcase_add_misuse_test(tc, test_cannot_wake_sleep_forever);
    tcase_add_test(tc, test_backend_fails_once);
    tcase_add_test(tc, test_backend_fails_always);
    tcase_add_misuse_test(tc, test_loop_with_tasks_refuses);
    tcase_add_misuse_test(tc, test_frame_reinit_and_restart);
    tcase_add_misuse_test(tc, test_frame_zeroed_while_sleeping);
    tcase_add_misuse_test(tc, test_frame_resume_zeroed);
#ifndef PTRIO_COMPUTED_GOTO
    tcase_add_misuse_test(tc, test_await_in_user_switch);
    tcase_add_misuse_test(tc, test_await_in_user_switch_finally);
    tcase_add_misuse_test(tc, test_block_in_user_switch);
#else
    tcase_add_test(tc, test_await_in_user_switch);
    tcase_add_test(tc, test_await_in_user_switch_finally);
    tcase_add_test(tc, test_block_in_user_switch);
#endif
    tcase_add_loop_test(tc, test_negative_clock, 0,
                        (int)(sizeof clock_starts / sizeof clock_starts[0]));
    tcase_add_test(tc, test_clock_near_max);
    tcase_add_test(tc, test_duration_rules);
    tcase_add_test(tc, test_foreign_ecanceled_in_nursery);
    tcase_add_test(tc, test_foreign_ecanceled_not_swallowed);
    tcase_add_misuse_test(tc, test_raise_ecanceled_outside);
    tcase_add_misuse_test(tc, test_nursery_over_its_open_scope);
    tcase_add_test(tc, test_raise_ecanceled_inside);
#ifdef PTRIO_DEBUG
    tcase_add_loop_test_raise_signal(tc, test_misuse_names_line, SIGILL, 0, 4);
#ifndef PTRIO_COMPUTED_GOTO
    tcase_add_test_raise_signal(tc, test_misuse_stray_names_line, SIGILL);
#endif
#endif
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
