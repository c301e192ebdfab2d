/* tests/check_timer.c: sleeping and the deadline tree through the public
 * API. Wake order and exact virtual times, ties in arming order, 100,000
 * sleepers, past deadlines and sleep(0) as checkpoints, cancelled sleeps
 * leaving no timer behind. Portable: no POSIX calls; virtual clock. */
#include <stdlib.h>

#include "testutil.h"

/* ---- sleepers -------------------------------------------------------- */

struct sleeper {
    ptrio_frame fr;
    const char *name;
    ptrio_time d;           /* relative, unless `until` */
    int until;              /* sleep_until(d) instead of sleep(d) */
    int pre;                /* checkpoints before sleeping */
    int i, rc;
};

static int sleeper(ptrio_frame *fr)
{
    struct sleeper *f = PTRIO_SELF(fr, struct sleeper);
    PTRIO_BEGIN(f);
    for (f->i = 0; f->i < f->pre; f->i++)
        PTRIO_AWAIT(f, ptrio_checkpoint(f));
    if (f->until)
        PTRIO_TRY(f, f->rc, ptrio_sleep_until(f, f->d));
    else
        PTRIO_TRY(f, f->rc, ptrio_sleep(f, f->d));
    if (f->rc < 0)
        logn_at(&L, f->name, f->rc);
    else
        tlog_at(&L, f->name);
    PTRIO_END(f);
}

#define NS 10

struct group {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[NS];
    struct sleeper s[NS];
    int count, i;
};

static int group(ptrio_frame *fr)
{
    struct group *f = PTRIO_SELF(fr, struct group);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        for (f->i = 0; f->i < f->count; f->i++)
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[f->i], sleeper,
                                            &f->s[f->i]));
    }
    tlog_at(&L, "joined");
    PTRIO_END(f);
}

/* Trio's nursery example: children sleeping 3, 1 and 2 s wake at 1, 2 and
 * 3 s; the nursery closes at 3 s. */
START_TEST(test_sleep_order)
{
    static struct group f;
    f = (struct group){.count = 3};
    f.s[0] = (struct sleeper){.name = "A", .d = PTRIO_SEC(3)};
    f.s[1] = (struct sleeper){.name = "B", .d = PTRIO_SEC(1)};
    f.s[2] = (struct sleeper){.name = "C", .d = PTRIO_SEC(2)};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(group, &f, NULL), 0);
    ck_assert_str_eq(L.buf, "B@1000 C@2000 A@3000 joined@3000");
}
END_TEST

/* Elapsed virtual time is exact, to the nanosecond. */
struct elapsed {
    ptrio_frame fr;
    ptrio_time t[8];
    int i;
};

static int elapsed(ptrio_frame *fr)
{
    struct elapsed *f = PTRIO_SELF(fr, struct elapsed);
    PTRIO_BEGIN(f);
    f->t[0] = ptrio_now();
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1500)));
    f->t[1] = ptrio_now();
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_US(250)));
    f->t[2] = ptrio_now();
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_NS(1)));
    f->t[3] = ptrio_now();
    PTRIO_AWAIT(f, ptrio_sleep_until(f, PTRIO_SEC(2)));
    f->t[4] = ptrio_now();
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(3600)));
    f->t[5] = ptrio_now();
    for (f->i = 0; f->i < 1000; f->i++)
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
    f->t[6] = ptrio_now();
    PTRIO_AWAIT(f, ptrio_checkpoint(f));
    f->t[7] = ptrio_now();
    PTRIO_END(f);
}

START_TEST(test_elapsed_exact)
{
    static struct elapsed f;
    f = (struct elapsed){0};
    ck_assert(PTRIO_SEC(1) == PTRIO_MS(1000));
    ck_assert(PTRIO_MS(1) == PTRIO_US(1000));
    ck_assert(PTRIO_US(1) == PTRIO_NS(1000));
    ck_assert(ptrio_now() == 0);
    ck_assert_int_eq(run_virtual(elapsed, &f, NULL), 0);
    ck_assert(f.t[0] == 0);
    ck_assert(f.t[1] == PTRIO_MS(1500));
    ck_assert(f.t[2] == PTRIO_MS(1500) + PTRIO_US(250));
    ck_assert(f.t[3] == PTRIO_MS(1500) + PTRIO_US(250) + 1);
    ck_assert(f.t[4] == PTRIO_SEC(2));
    ck_assert(f.t[5] == PTRIO_SEC(3602));
    ck_assert(f.t[6] == PTRIO_SEC(3603));
    ck_assert(f.t[7] == PTRIO_SEC(3603));
    ck_assert(ptrio_now() == 0);
}
END_TEST

/* Ten tasks sleep until the same deadline: they wake in start order. */
START_TEST(test_equal_deadlines_start_order)
{
    static struct group f;
    static const char *const names[NS] = {"0", "1", "2", "3", "4",
                                          "5", "6", "7", "8", "9"};
    int i;
    f = (struct group){.count = NS};
    for (i = 0; i < NS; i++)
        f.s[i] = (struct sleeper){.name = names[i], .d = PTRIO_MS(500),
                                  .until = 1};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(group, &f, NULL), 0);
    ck_assert_str_eq(L.buf, "0@500 1@500 2@500 3@500 4@500 5@500 6@500 "
                            "7@500 8@500 9@500 joined@500");
}
END_TEST

/* ... in the order they were armed, not the order the tasks started: task
 * i makes 9 - i checkpoints first, so task 9 arms first. Relative sleeps
 * armed in different batches at the same instant tie the same way. */
START_TEST(test_equal_deadlines_arming_order)
{
    static struct group f;
    static const char *const names[NS] = {"0", "1", "2", "3", "4",
                                          "5", "6", "7", "8", "9"};
    int i;
    f = (struct group){.count = NS};
    for (i = 0; i < NS; i++)
        f.s[i] = (struct sleeper){.name = names[i], .d = PTRIO_MS(500),
                                  .until = 1, .pre = NS - 1 - i};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(group, &f, NULL), 0);
    ck_assert_str_eq(L.buf, "9@500 8@500 7@500 6@500 5@500 4@500 3@500 "
                            "2@500 1@500 0@500 joined@500");

    f = (struct group){.count = 4};
    f.s[0] = (struct sleeper){.name = "a", .d = PTRIO_MS(7), .pre = 3};
    f.s[1] = (struct sleeper){.name = "b", .d = PTRIO_MS(7), .pre = 0};
    f.s[2] = (struct sleeper){.name = "c", .d = PTRIO_MS(7), .pre = 2};
    f.s[3] = (struct sleeper){.name = "d", .d = PTRIO_MS(7), .pre = 1};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(group, &f, NULL), 0);
    ck_assert_str_eq(L.buf, "b@7 d@7 c@7 a@7 joined@7");
}
END_TEST

/* ---- 100,000 sleepers -------------------------------------------------- */

/* With the deadlines in a sorted list (PTRIO_CONF_TIMER_LIST, for parts
 * with few timers) an insertion walks the list: 100,000 sleepers there
 * are some 10^9 steps, minutes in a debug build. Those builds run 20,000,
 * the same tests at a scale the list is for. */
#if PTRIO_CONF_TIMER_LIST
#define BIG 20000
#else
#define BIG 100000
#endif

static ptrio_task big_t[BIG];
static struct big_sleeper {
    ptrio_frame fr;
    int id;
    ptrio_time when;
} big_s[BIG];
static int big_order[BIG], big_woken, big_wrong_time;

static int big_sleeper(ptrio_frame *fr)
{
    struct big_sleeper *f = PTRIO_SELF(fr, struct big_sleeper);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_sleep_until(f, f->when));
    if (ptrio_now() != f->when)
        big_wrong_time++;
    if (big_woken < BIG)
        big_order[big_woken] = f->id;
    big_woken++;
    PTRIO_END(f);
}

struct big_main { ptrio_frame fr; ptrio_nursery n; int i; ptrio_time end; };

static int big_main(ptrio_frame *fr)
{
    struct big_main *f = PTRIO_SELF(fr, struct big_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        for (f->i = 0; f->i < BIG; f->i++)
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &big_t[f->i], big_sleeper,
                                            &big_s[f->i]));
    }
    f->end = ptrio_now();
    PTRIO_END(f);
}

static void big_reset(void)
{
    memset(big_t, 0, sizeof big_t);
    memset(big_s, 0, sizeof big_s);
    memset(big_order, 0, sizeof big_order);
    big_woken = big_wrong_time = 0;
}

/* Deadlines (i * 7919) % BIG ms: a permutation (7919 is a prime). Every
 * sleeper wakes at its deadline exactly, in increasing deadline order. */
START_TEST(test_100k_sleepers_permutation)
{
    static struct big_main f;
    static unsigned char seen[BIG];
    int i;

    big_reset();
    memset(seen, 0, sizeof seen);
    for (i = 0; i < BIG; i++) {
        big_s[i].id = i;
        big_s[i].when = PTRIO_MS((long)i * 7919 % BIG);
    }
    f = (struct big_main){0};
    ck_assert_int_eq(run_virtual(big_main, &f, NULL), 0);
    ck_assert_int_eq(big_woken, BIG);
    ck_assert_int_eq(big_wrong_time, 0);
    ck_assert(f.end == PTRIO_MS(BIG - 1));
    for (i = 0; i < BIG; i++) {
        int id = big_order[i];
        ck_assert_int_ge(id, 0);
        ck_assert_int_lt(id, BIG);
        ck_assert_int_eq(seen[id], 0);
        seen[id] = 1;
        /* the deadlines are 0..BIG-1 ms, each once: the i-th wake is i ms */
        ck_assert(big_s[id].when == PTRIO_MS(i));
        if (i)
            ck_assert(big_s[big_order[i - 1]].when <= big_s[id].when);
    }
}
END_TEST

/* Deadlines i % 1000 ms: BIG / 1000 sleepers per deadline. Deadline
 * order, and among equals start (= arming) order. */
START_TEST(test_100k_sleepers_ties)
{
    static struct big_main f;
    int i;

    big_reset();
    for (i = 0; i < BIG; i++) {
        big_s[i].id = i;
        big_s[i].when = PTRIO_MS(i % 1000);
    }
    f = (struct big_main){0};
    ck_assert_int_eq(run_virtual(big_main, &f, NULL), 0);
    ck_assert_int_eq(big_woken, BIG);
    ck_assert_int_eq(big_wrong_time, 0);
    ck_assert(f.end == PTRIO_MS(999));
    for (i = 0; i < BIG; i++)
        ck_assert_int_eq(big_order[i], (i % (BIG / 1000)) * 1000 +
                                       i / (BIG / 1000));
}
END_TEST

/* ---- checkpoints in disguise --------------------------------------------- */

struct talker {
    ptrio_frame fr;
    const char *name;
    int kind;               /* 0: checkpoint, 1: sleep(0), 2: sleep_until
                             * in the past, 3: sleep_until(now) */
    int i, rc[2];
};

static int talker_await(struct talker *f)
{
    switch (f->kind) {
    case 1:
        return ptrio_sleep(f, 0);
    case 2:
        return ptrio_sleep_until(f, ptrio_now() - PTRIO_MS(500));
    case 3:
        return ptrio_sleep_until(f, ptrio_now());
    default:
        return ptrio_checkpoint(f);
    }
}

static int talker(ptrio_frame *fr)
{
    struct talker *f = PTRIO_SELF(fr, struct talker);
    PTRIO_BEGIN(f);
    for (f->i = 0; f->i < 2; f->i++) {
        logn_at(&L, f->name, f->i);
        PTRIO_TRY(f, f->rc[f->i], talker_await(f));
    }
    logn_at(&L, f->name, f->i);
    PTRIO_END(f);
}

struct talk_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct talker a, b;
    int kind;
};

static int talk_main(ptrio_frame *fr)
{
    struct talk_main *f = PTRIO_SELF(fr, struct talk_main);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));
    PTRIO_NURSERY(f, &f->n) {
        f->a = (struct talker){.name = "a", .kind = f->kind};
        f->b = (struct talker){.name = "b", .kind = 0};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], talker, &f->a));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], talker, &f->b));
    }
    PTRIO_END(f);
}

/* sleep(0), sleep_until a past deadline and sleep_until(now) each yield
 * like ptrio_checkpoint: the other task runs in between, no time passes. */
START_TEST(test_zero_and_past_sleeps_yield)
{
    static struct talk_main f;
    int kind;
    for (kind = 0; kind < 4; kind++) {
        f = (struct talk_main){.kind = kind};
        tlog_clear(&L);
        ck_assert_int_eq(run_virtual(talk_main, &f, NULL), 0);
        ck_assert_str_eq(L.buf, "a0@1000 b0@1000 a1@1000 b1@1000 "
                                "a2@1000 b2@1000");
        ck_assert_int_eq(f.a.rc[0], 0);
        ck_assert_int_eq(f.a.rc[1], 0);
    }
}
END_TEST

/* ... and like a checkpoint, they fail at once in a cancelled scope. */
struct cancelled_sleeps {
    ptrio_frame fr;
    ptrio_scope sc;
    int r[4];
};

static int cancelled_sleeps(ptrio_frame *fr)
{
    struct cancelled_sleeps *f = PTRIO_SELF(fr, struct cancelled_sleeps);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(10)));
    PTRIO_CANCEL_SCOPE(f, &f->sc) {
        ptrio_cancel(&f->sc);
        PTRIO_TRY(f, f->r[0], ptrio_sleep(f, 0));
        PTRIO_TRY(f, f->r[1], ptrio_sleep_until(f, PTRIO_MS(5)));
        PTRIO_TRY(f, f->r[2], ptrio_sleep(f, PTRIO_SEC(5)));
        PTRIO_TRY(f, f->r[3], ptrio_sleep_forever(f));
    }
    tlog_at(&L, "after");
    PTRIO_END(f);
}

START_TEST(test_sleeps_in_cancelled_scope)
{
    static struct cancelled_sleeps f;
    int i;
    f = (struct cancelled_sleeps){0};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(cancelled_sleeps, &f, NULL), 0);
    for (i = 0; i < 4; i++)
        ck_assert_int_eq(f.r[i], -PTRIO_ECANCELED);
    ck_assert_str_eq(L.buf, "after@10");
    /* the TRYs caught the cancellations: nothing reached the scope */
    ck_assert(ptrio_cancel_called(&f.sc));
}
END_TEST

/* ---- cancelled sleeps ------------------------------------------------- */

static tlog WL;

static void before_wait(void *ctx, ptrio_time deadline)
{
    (void)ctx;
    if (deadline == PTRIO_TIME_INF)
        tlog_add(&WL, "inf");
    else
        logn(&WL, "", (long)(deadline / PTRIO_MS(1)));
}

static const ptrio_hooks wait_hooks = {.before_io_wait = before_wait};

static int run_watched(ptrio_fn fn, void *frame, const char *name)
{
    return run_hooked(fn, frame, name, &wait_hooks, NULL);
}

struct canceller { ptrio_frame fr; ptrio_nursery *n; ptrio_time after; };

static int canceller(ptrio_frame *fr)
{
    struct canceller *f = PTRIO_SELF(fr, struct canceller);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_sleep(f, f->after));
    tlog_at(&L, "cancel");
    ptrio_nursery_cancel(f->n);
    PTRIO_END(f);
}

struct cancel_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct sleeper s;
    struct canceller c;
    int round;
};

static int cancel_main(ptrio_frame *fr)
{
    struct cancel_main *f = PTRIO_SELF(fr, struct cancel_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->s = (struct sleeper){.name = "s", .d = PTRIO_SEC(10)};
        f->c = (struct canceller){.n = &f->n, .after = PTRIO_SEC(2)};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], sleeper, &f->s));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], canceller, &f->c));
    }
    tlog_at(&L, "joined");
    /* the same task and frame sleep again: the cancelled timer is gone */
    PTRIO_NURSERY(f, &f->n) {
        f->s = (struct sleeper){.name = "s2", .d = PTRIO_SEC(1)};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], sleeper, &f->s));
    }
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(20)));
    tlog_at(&L, "end");
    PTRIO_END(f);
}

/* A sleeping task cancelled through its nursery wakes at the cancel time
 * with -ECANCELED; its 10 s deadline is never waited for. */
START_TEST(test_cancelled_sleep_timer_removed)
{
    static struct cancel_main f;
    f = (struct cancel_main){0};
    tlog_clear(&L);
    tlog_clear(&WL);
    ck_assert_int_eq(run_watched(cancel_main, &f, "cancel_main"), 0);
    ck_assert_str_eq(L.buf, "cancel@2000 s-9007@2000 joined@2000 s2@3000 "
                            "end@23000");
    /* the backend waited for 2 s, then 3 s, then 23 s: never for 10 s */
    ck_assert_str_eq(WL.buf, "2000 3000 23000");
    ck_assert_int_eq(f.s.rc, 0);
}
END_TEST

/* A cancel scope's deadline ends a longer sleep (MOVE_ON_AFTER), or turns
 * into -ETIMEDOUT (FAIL_AFTER); the sleep's own timer goes with it. */
struct scoped {
    ptrio_frame fr;
    ptrio_scope a, b;
    int rc;
};

static int scoped(ptrio_frame *fr)
{
    struct scoped *f = PTRIO_SELF(fr, struct scoped);
    PTRIO_BEGIN(f);
    PTRIO_MOVE_ON_AFTER(f, &f->a, PTRIO_SEC(1)) {
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(5)));
        tlog_add(&L, "unreached");
    }
    tlog_at(&L, ptrio_cancelled_caught(&f->a) ? "moved-on" : "not-caught");
    PTRIO_TRY_BLOCK(f, &f->b) {
        PTRIO_FAIL_AT(f, &f->a, PTRIO_MS(1500)) {
            PTRIO_AWAIT(f, ptrio_sleep_until(f, PTRIO_SEC(7)));
            tlog_add(&L, "unreached2");
        }
    }
    logn_at(&L, "failed", ptrio_scope_error(&f->b));
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
    tlog_at(&L, "end");
    PTRIO_END(f);
}

START_TEST(test_scope_deadline_ends_sleep)
{
    static struct scoped f;
    f = (struct scoped){0};
    tlog_clear(&L);
    tlog_clear(&WL);
    ck_assert_int_eq(run_watched(scoped, &f, "scoped"), 0);
    ck_assert_str_eq(L.buf, "moved-on@1000 failed-110@1500 end@1501");
    ck_assert_str_eq(WL.buf, "1000 1500 1501");
}
END_TEST

/* Sleeping forever, woken only by cancellation; ptrio_sleep(PTRIO_TIME_INF)
 * is the same. The loop never waits on a deadline for them. */
struct forever_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[3];
    struct sleeper s[2];
    struct canceller c;
};

static int forever_main(ptrio_frame *fr)
{
    struct forever_main *f = PTRIO_SELF(fr, struct forever_main);
    PTRIO_BEGIN(f);
    /* now > 0: now + PTRIO_TIME_INF would overflow, but INF is "forever" */
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
    PTRIO_NURSERY(f, &f->n) {
        f->s[0] = (struct sleeper){.name = "inf", .d = PTRIO_TIME_INF};
        f->s[1] = (struct sleeper){.name = "until-inf", .d = PTRIO_TIME_INF,
                                   .until = 1};
        f->c = (struct canceller){.n = &f->n, .after = PTRIO_MS(250)};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], sleeper, &f->s[0]));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], sleeper, &f->s[1]));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[2], canceller, &f->c));
    }
    tlog_at(&L, "joined");
    PTRIO_END(f);
}

START_TEST(test_sleep_forever_until_cancelled)
{
    static struct forever_main f;
    f = (struct forever_main){0};
    tlog_clear(&L);
    tlog_clear(&WL);
    ck_assert_int_eq(run_watched(forever_main, &f, "forever_main"), 0);
    ck_assert_str_eq(L.buf, "cancel@251 inf-9007@251 until-inf-9007@251 "
                            "joined@251");
    ck_assert_str_eq(WL.buf, "1 251");
}
END_TEST

/* Sleep errors: negative durations, overflow of now + d. */
struct sleep_errors { ptrio_frame fr; int r[6]; };

static int sleep_errors(ptrio_frame *fr)
{
    struct sleep_errors *f = PTRIO_SELF(fr, struct sleep_errors);
    PTRIO_BEGIN(f);
    PTRIO_TRY(f, f->r[0], ptrio_sleep(f, -1));
    PTRIO_TRY(f, f->r[1], ptrio_sleep(f, PTRIO_TIME_NINF));
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
    PTRIO_TRY(f, f->r[2], ptrio_sleep(f, PTRIO_TIME_INF - 1));
    PTRIO_TRY(f, f->r[3], ptrio_sleep(f, PTRIO_TIME_INF - PTRIO_MS(1) + 1));
    PTRIO_TRY(f, f->r[4], ptrio_sleep(f, PTRIO_MS(2)));
    tlog_at(&L, "end");
    PTRIO_END(f);
}

START_TEST(test_sleep_errors)
{
    static struct sleep_errors f;
    f = (struct sleep_errors){0};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(sleep_errors, &f, NULL), 0);
    ck_assert_int_eq(f.r[0], -PTRIO_EINVAL);
    ck_assert_int_eq(f.r[1], -PTRIO_EINVAL);
    ck_assert_int_eq(f.r[2], -PTRIO_EOVERFLOW);
    ck_assert_int_eq(f.r[3], -PTRIO_EOVERFLOW);
    ck_assert_int_eq(f.r[4], 0);
    /* the failed sleeps did not suspend nor move the clock */
    ck_assert_str_eq(L.buf, "end@3");
}
END_TEST

/* Four times: a scope whose deadline is set inside to now + 1 s, around
 * sleep_forever; the time each took, and the caught flags. */
struct keeping {
    ptrio_frame fr;
    ptrio_scope sc;
    ptrio_time start, took[4];
    int i, caught;
};

static int keeping(ptrio_frame *fr)
{
    struct keeping *f = PTRIO_SELF(fr, struct keeping);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_US(250)));  /* an uneven start */
    for (f->i = 0; f->i < 4; f->i++) {
        f->start = ptrio_now();
        PTRIO_CANCEL_SCOPE(f, &f->sc) {
            PTRIO_CHECK(f, ptrio_scope_set_deadline(&f->sc,
                                                    ptrio_now() + PTRIO_SEC(1)));
            PTRIO_AWAIT(f, ptrio_sleep_forever(f));
        }
        f->took[f->i] = ptrio_now() - f->start;
        f->caught += ptrio_cancelled_caught(&f->sc);
    }
    PTRIO_END(f);
}

/* A deadline ends the wait exactly when due, never before: the loop waits
 * for it and nothing else (Trio checks 1.0 <= real/target < 2 on the real
 * clock; on the virtual clock the ratio is exactly 1). */
/* Trio test_run.py: test_timekeeping */
START_TEST(test_timekeeping)
{
    static struct keeping f;
    int i;
    f = (struct keeping){0};
    tlog_clear(&WL);
    ck_assert_int_eq(run_watched(keeping, &f, "keeping"), 0);
    for (i = 0; i < 4; i++)
        ck_assert(f.took[i] == PTRIO_SEC(1));
    ck_assert_int_eq(f.caught, 4);
    ck_assert_str_eq(WL.buf, "0 1000 2000 3000 4000");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("timer");
    TCase *tc = tcase_create("timer");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_sleep_order);
    tcase_add_test(tc, test_elapsed_exact);
    tcase_add_test(tc, test_equal_deadlines_start_order);
    tcase_add_test(tc, test_equal_deadlines_arming_order);
    tcase_add_test(tc, test_100k_sleepers_permutation);
    tcase_add_test(tc, test_100k_sleepers_ties);
    tcase_add_test(tc, test_zero_and_past_sleeps_yield);
    tcase_add_test(tc, test_sleeps_in_cancelled_scope);
    tcase_add_test(tc, test_cancelled_sleep_timer_removed);
    tcase_add_test(tc, test_scope_deadline_ends_sleep);
    tcase_add_test(tc, test_sleep_forever_until_cancelled);
    tcase_add_test(tc, test_sleep_errors);
    tcase_add_test(tc, test_timekeeping);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
