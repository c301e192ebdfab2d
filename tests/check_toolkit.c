/* tests/check_toolkit.c: the testing and debugging toolkit (issue 10):
 * the mock clock and wait_all_tasks_blocked (Trio's test_mock_clock.py
 * and test_testing.py), the deadlock detector, cancel reasons, the task
 * tree, per-task cancel, instruments, tracebacks and the small helpers.
 * Portable: no POSIX calls. Real time, where a test needs it, is the time
 * of a backend of the test's own (tick_backend), which only moves when
 * the loop waits: Trio's tests monkeypatch MockClock's real clock the
 * same way, and cushions and autojump thresholds come out exact. */
#include <stdio.h>
#include <stdlib.h>

#define TESTUTIL_EVENTS
#include "testutil.h"

/* ---- a backend with a real time of its own -------------------------
 *
 * Its clock is REAL, which the tests set and which only moves when the
 * loop waits (to the deadline it waits for). It has a wake function, so
 * the loop treats its time as real: cushions and autojump thresholds
 * are waited for, unlike on ptrio_backend_virtual. A wait with no
 * deadline "sleeps until an interrupt": tick_irq, if set, runs once (as
 * an interrupt handler would) and the wait returns; without one the wait
 * would never end, so it fails with -PTRIO_EDEADLK. */
static ptrio_time REAL;
static int tick_waits;
static void (*tick_irq)(void);

static ptrio_time tick_now(ptrio_loop *l)
{
    (void)l;
    return REAL;
}

static int tick_wait(ptrio_loop *l, ptrio_time deadline)
{
    void (*irq)(void) = tick_irq;

    (void)l;
    tick_waits++;
    if (deadline == PTRIO_TIME_INF) {
        if (!irq)
            return -PTRIO_EDEADLK;
        tick_irq = NULL;
        irq();
        return 0;
    }
    if (deadline > REAL)
        REAL = deadline;
    return 0;
}

static void tick_wake(ptrio_loop *l)
{
    (void)l;
}

static const ptrio_backend tick_backend = {
    "tick", NULL, NULL, tick_now, tick_wait, NULL, NULL, tick_wake
};

static void tick_reset(void)
{
    REAL = 0;
    tick_waits = 0;
    tick_irq = NULL;
}

/* Runs `fn` on a fresh loop over `backend` with `clock` (may be NULL);
 * reports go to `rep` (may be NULL). */
static ptrio_loop run_loop;

static int run_clocked_named(const ptrio_backend *backend, ptrio_clock *clock,
                             ptrio_fn fn, void *frame, const char *name,
                             treport *rep)
{
    loop_setup(&run_loop, backend, rep);
    ck_assert_int_eq(ptrio_loop_use_clock(&run_loop, clock), 0);
    return ptrio_loop_run_named(&run_loop, fn, frame, name);
}
#define run_clocked(backend, clock, fn, frame, rep)                         \
    run_clocked_named((backend), (clock), (fn), (frame), #fn, (rep))

/* Logs "<s>@<virtual ms>/<real ms>". */
static void ev_real(const char *s)
{
    char head[48], b[96], *p;

    strncpy(head, s, 40);
    head[40] = '\0';
    strcat(head, "@");
    p = fmt(b, head, (long)(ptrio_now() / PTRIO_MS(1)));
    (void)fmt(p, "/", (long)(REAL / PTRIO_MS(1)));
    tlog_add(&L, b);
}

/* ================================================================== */
/* ---- the mock clock (Trio: test_mock_clock.py) ------------------- */

struct mc_basics {
    ptrio_frame fr;
    ptrio_mock_clock c, c2;
    ptrio_time now[8], st[9];
    int jump_neg;
    ptrio_time c2_now;
};

static ptrio_time sleep_time(ptrio_mock_clock *c, ptrio_time deadline)
{
    return c->clock.sleep_time(&c->clock, deadline);
}

static int mc_basics(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct mc_basics, f);
    REAL = PTRIO_SEC(123);
    ptrio_mock_clock_init(&f->c, 0);        /* reads the loop's real time */
    f->now[0] = ptrio_mock_clock_now(&f->c);
    ck_assert_int_eq(ptrio_mock_clock_jump(&f->c, PTRIO_SEC(1.2)), 0);
    f->now[1] = ptrio_mock_clock_now(&f->c);
    f->jump_neg = ptrio_mock_clock_jump(&f->c, -1);
    f->now[2] = ptrio_mock_clock_now(&f->c);
    f->st[0] = sleep_time(&f->c, PTRIO_SEC(1.1));
    f->st[1] = sleep_time(&f->c, PTRIO_SEC(1.2));
    f->st[2] = sleep_time(&f->c, PTRIO_SEC(1.3));

    ptrio_mock_clock_set_rate(&f->c, 2000);
    f->now[3] = ptrio_mock_clock_now(&f->c);
    REAL += PTRIO_SEC(1);
    f->now[4] = ptrio_mock_clock_now(&f->c);
    f->st[3] = sleep_time(&f->c, PTRIO_SEC(3.1));
    f->st[4] = sleep_time(&f->c, PTRIO_SEC(3.2));
    f->st[5] = sleep_time(&f->c, PTRIO_SEC(4.2));

    ptrio_mock_clock_set_rate(&f->c, 500);
    f->now[5] = ptrio_mock_clock_now(&f->c);
    f->st[6] = sleep_time(&f->c, PTRIO_SEC(3.1));
    f->st[7] = sleep_time(&f->c, PTRIO_SEC(3.2));
    f->st[8] = sleep_time(&f->c, PTRIO_SEC(4.2));

    ck_assert_int_eq(ptrio_mock_clock_jump(&f->c, PTRIO_SEC(0.8)), 0);
    f->now[6] = ptrio_mock_clock_now(&f->c);
    REAL += PTRIO_SEC(1);
    f->now[7] = ptrio_mock_clock_now(&f->c);

    ptrio_mock_clock_init(&f->c2, 0);
    ptrio_mock_clock_set_rate(&f->c2, 3000);
    f->c2_now = ptrio_mock_clock_now(&f->c2);
    PTRIO_END(f);
}

/* Trio: test_mock_clock.py::test_mock_clock. The real clock is the tick
 * backend's (Trio's test patches _real_clock). Rates are per mille. */
START_TEST(test_mock_clock)
{
    static struct mc_basics f;

    tick_reset();
    f = (struct mc_basics){0};
    ck_assert_int_eq(run_clocked(&tick_backend, NULL, mc_basics, &f, NULL), 0);
    ck_assert_int_eq(f.now[0], 0);
    ck_assert_int_eq(f.now[1], PTRIO_SEC(1.2));
    ck_assert_int_eq(f.jump_neg, -PTRIO_EINVAL);    /* time can't go back */
    ck_assert_int_eq(f.now[2], PTRIO_SEC(1.2));
    ck_assert_int_eq(f.st[0], 0);
    ck_assert_int_eq(f.st[1], 0);
    ck_assert_int_eq(f.st[2], PTRIO_TIME_INF);      /* frozen: never */
    ck_assert_int_eq(f.now[3], PTRIO_SEC(1.2));
    ck_assert_int_eq(f.now[4], PTRIO_SEC(3.2));
    ck_assert_int_eq(f.st[3], 0);
    ck_assert_int_eq(f.st[4], 0);
    ck_assert_int_eq(f.st[5], PTRIO_SEC(0.5));
    ck_assert_int_eq(f.now[5], PTRIO_SEC(3.2));
    ck_assert_int_eq(f.st[6], 0);
    ck_assert_int_eq(f.st[7], 0);
    ck_assert_int_eq(f.st[8], PTRIO_SEC(2));
    ck_assert_int_eq(f.now[6], PTRIO_SEC(4));
    ck_assert_int_eq(f.now[7], PTRIO_SEC(4.5));
    ck_assert_int_lt(f.c2_now, PTRIO_SEC(10));
}
END_TEST

struct mc_far {
    ptrio_frame fr;
    ptrio_mock_clock c;
    ptrio_time now[3], st[3];
};

static int mc_far(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct mc_far, f);
    REAL = 0;
    ptrio_mock_clock_init(&f->c, 0);
    ptrio_mock_clock_set_rate(&f->c, 1);            /* 1/1000 of real */
    f->st[0] = sleep_time(&f->c, PTRIO_TIME_INF - 1);
    f->st[1] = sleep_time(&f->c, PTRIO_SEC(2));
    ptrio_mock_clock_set_rate(&f->c, 4000000000u);  /* 4e6 times real */
    REAL = PTRIO_SEC(3);
    f->now[0] = ptrio_mock_clock_now(&f->c);
    REAL = PTRIO_SEC(86400.0 * 365 * 100);          /* a century later */
    f->now[1] = ptrio_mock_clock_now(&f->c);
    ptrio_mock_clock_set_rate(&f->c, 1000);
    f->st[2] = sleep_time(&f->c, PTRIO_TIME_INF - 1);
    ck_assert_int_eq(ptrio_mock_clock_jump(&f->c, PTRIO_SEC(1)), 0);
    f->now[2] = ptrio_mock_clock_now(&f->c);
    PTRIO_END(f);
}

/* Readings and sleep times that overflow the 64-bit nanoseconds stop at
 * the latest time there is (PTRIO_TIME_INF - 1, as a jump does), instead
 * of wrapping around to the past. */
START_TEST(test_mock_clock_far_times)
{
    static struct mc_far f;

    tick_reset();
    f = (struct mc_far){0};
    ck_assert_int_eq(run_clocked(&tick_backend, NULL, mc_far, &f, NULL), 0);
    ck_assert_int_eq(f.st[0], PTRIO_TIME_INF - 1);  /* 1000x the distance */
    ck_assert_int_eq(f.st[1], PTRIO_SEC(2000));
    ck_assert_int_eq(f.now[0], PTRIO_SEC(12e6));    /* 3 s at 4e6x */
    ck_assert_int_eq(f.now[1], PTRIO_TIME_INF - 1);
    ck_assert_int_eq(f.st[2], 0);                   /* already there */
    ck_assert_int_eq(f.now[2], PTRIO_TIME_INF - 1);
}
END_TEST

/* The tick backend, giving up after 100 waits: a loop that waits again
 * and again without its clock reaching the deadline fails, not hangs. */
static int tick_wait_bounded(ptrio_loop *l, ptrio_time deadline)
{
    if (tick_waits >= 100)
        return -PTRIO_EIO;
    return tick_wait(l, deadline);
}

static const ptrio_backend tick_bounded_backend = {
    "tick-bounded", NULL, NULL, tick_now, tick_wait_bounded, NULL, NULL,
    tick_wake
};

struct mc_round {
    ptrio_frame fr;
    ptrio_mock_clock *c;
    ptrio_time d, woke;
};

static int mc_round(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct mc_round, f);
    PTRIO_AWAIT(f, ptrio_sleep(f, f->d));
    f->woke = ptrio_now();
    PTRIO_END(f);
}

/* A sleep time is rounded up: once the backend waited that long, the
 * clock has reached the deadline. At twice real time, 1 ns of the clock
 * is half a nanosecond of real time: rounded down to 0, the loop would
 * wait 0 ns again and again (a busy loop; for ever on the virtual
 * backend, whose time moves only by waits). Trio's
 * deadline_to_sleep_time is exact (floats); here it is never short. */
START_TEST(test_mock_clock_sleep_time_rounds_up)
{
    static const struct { uint32_t rate; ptrio_time d, real, woke; } cases[] = {
        {2000, 1001, 501, 1002},    /* 500.5 ns of real time: 501 */
        {2000, 1, 1, 2},
        {3000, 2, 1, 3},            /* 0.67 ns: 1 */
        {3, 1, 334, 1},             /* 333.3 ns: 334, not two waits */
        {1000, PTRIO_MS(7), PTRIO_MS(7), PTRIO_MS(7)},
    };
    static struct mc_round f;
    static ptrio_mock_clock c;
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tick_reset();
        ptrio_mock_clock_init(&c, 0);
        ptrio_mock_clock_set_rate(&c, cases[i].rate);
        f = (struct mc_round){.c = &c, .d = cases[i].d};
        ck_assert_int_eq(run_clocked(&tick_bounded_backend, &c.clock,
                                     mc_round, &f, NULL), 0);
        ck_assert_int_eq(tick_waits, 1);
        ck_assert_int_eq(REAL, cases[i].real);
        ck_assert_int_eq(f.woke, cases[i].woke);
    }
    /* The same contract, asked directly (the virtual backend's case). */
    ptrio_mock_clock_init(&c, 0);
    ptrio_mock_clock_set_rate(&c, 2000);
    ck_assert_int_eq(sleep_time(&c, 1), 1);
    ck_assert_int_eq(sleep_time(&c, 1001), 501);
    ptrio_mock_clock_set_rate(&c, 4000000000u);
    ck_assert_int_eq(sleep_time(&c, 1), 1);
    ck_assert_int_eq(sleep_time(&c, PTRIO_MS(4)), 1);     /* 4e6 times */
    ck_assert_int_eq(sleep_time(&c, PTRIO_MS(4) + 1), 2);
}
END_TEST

/* Outside a run: a clock reads, jumps and refuses to go back without a
 * loop (no real time: rate 0 is all it can do). */
START_TEST(test_mock_clock_outside_run)
{
    ptrio_mock_clock c;

    ptrio_mock_clock_init(&c, PTRIO_SEC(5));
    ck_assert_int_eq(ptrio_mock_clock_now(&c), PTRIO_SEC(5));
    ck_assert_int_eq(c.clock.autojump, PTRIO_TIME_INF);  /* Trio: inf */
    ck_assert_int_eq(ptrio_mock_clock_jump(&c, PTRIO_MS(250)), 0);
    ck_assert_int_eq(ptrio_mock_clock_now(&c), PTRIO_SEC(5.25));
    ck_assert_int_eq(ptrio_mock_clock_jump(&c, -PTRIO_NS(1)), -PTRIO_EINVAL);
    ck_assert_int_eq(ptrio_mock_clock_jump(&c, 0), 0);
    ck_assert_int_eq(ptrio_mock_clock_now(&c), PTRIO_SEC(5.25));
    ptrio_mock_clock_set_autojump(&c, PTRIO_MS(3));
    ck_assert_int_eq(c.clock.autojump, PTRIO_MS(3));
    ptrio_mock_clock_set_autojump(&c, -5);            /* taken for 0 */
    ck_assert_int_eq(c.clock.autojump, 0);
}
END_TEST

struct mc_auto {
    ptrio_frame fr;
    ptrio_mock_clock *c;
    ptrio_time real_start, virtual_start, t, real_at[4];
    int i, wrong, autojump_inf;
};

static int mc_auto(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct mc_auto, f);
    f->autojump_inf = f->c->clock.autojump == PTRIO_TIME_INF;
    ptrio_mock_clock_set_autojump(f->c, 0);
    f->real_start = REAL;
    f->virtual_start = ptrio_now();
    for (f->i = 0; f->i < 10; f->i++) {
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(10 * f->i)));
        if (ptrio_now() != f->virtual_start + PTRIO_SEC(10 * f->i))
            f->wrong++;
        f->virtual_start = ptrio_now();
    }
    f->real_at[0] = REAL - f->real_start;

    ptrio_mock_clock_set_autojump(f->c, PTRIO_MS(20));
    f->t = ptrio_now();
    f->real_start = REAL;
    /* wakes before the autojump threshold: time does not change */
    PTRIO_AWAIT(f, ptrio_wait_all_tasks_blocked(f, 0));
    f->wrong += ptrio_now() != f->t;
    f->real_at[1] = REAL - f->real_start;
    PTRIO_AWAIT(f, ptrio_wait_all_tasks_blocked(f, PTRIO_MS(10)));
    f->wrong += ptrio_now() != f->t;
    f->real_at[2] = REAL - f->real_start;

    /* a threshold changed while the loop is idle applies at once */
    ptrio_mock_clock_set_autojump(f->c, PTRIO_SEC(10000));
    PTRIO_AWAIT(f, ptrio_wait_all_tasks_blocked(f, 0));
    ptrio_mock_clock_set_autojump(f->c, 0);
    f->real_start = REAL;
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(100000)));
    f->real_at[3] = REAL - f->real_start;
    f->wrong += ptrio_now() != f->t + PTRIO_SEC(100000);
    PTRIO_END(f);
}

/* Trio: test_mock_clock.py::test_mock_clock_autojump. 450 s of sleeps
 * take no real time at threshold 0; Trio's "< 1 s" is exactly 0 here,
 * and the cushion of 10 ms exactly 10 ms. */
START_TEST(test_mock_clock_autojump)
{
    static struct mc_auto f;
    static ptrio_mock_clock c;

    tick_reset();
    ptrio_mock_clock_init(&c, 0);
    f = (struct mc_auto){.c = &c};
    ck_assert_int_eq(run_clocked(&tick_backend, &c.clock, mc_auto, &f, NULL),
                     0);
    ck_assert_int_eq(f.autojump_inf, 1);
    ck_assert_int_eq(f.wrong, 0);
    ck_assert_int_eq(f.real_at[0], 0);
    ck_assert_int_eq(f.real_at[1], 0);
    ck_assert_int_eq(f.real_at[2], PTRIO_MS(10));
    ck_assert_int_eq(f.real_at[3], 0);
    ck_assert_int_eq(ptrio_mock_clock_now(&c), PTRIO_SEC(450 + 100000));
}
END_TEST

struct mc_interf {
    ptrio_frame fr;
    ptrio_mock_clock *c, c2;
    ptrio_time real_at[2];
};

static int mc_interf(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct mc_interf, f);
    ptrio_mock_clock_set_autojump(f->c, PTRIO_MS(20));
    /* a clock that is not the loop's has no say */
    ptrio_mock_clock_init(&f->c2, 0);
    ptrio_mock_clock_set_autojump(&f->c2, PTRIO_MS(10));
    PTRIO_AWAIT(f, ptrio_wait_all_tasks_blocked(f, PTRIO_MS(15)));
    f->real_at[0] = REAL;
    /* but the 20 ms threshold applies */
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(100000)));
    f->real_at[1] = REAL;
    PTRIO_END(f);
}

/* Trio: test_mock_clock.py::test_mock_clock_autojump_interference. */
START_TEST(test_mock_clock_autojump_interference)
{
    static struct mc_interf f;
    static ptrio_mock_clock c;

    tick_reset();
    ptrio_mock_clock_init(&c, 0);
    f = (struct mc_interf){.c = &c};
    ck_assert_int_eq(run_clocked(&tick_backend, &c.clock, mc_interf, &f,
                                 NULL), 0);
    ck_assert_int_eq(f.real_at[0], PTRIO_MS(15));
    ck_assert_int_eq(f.real_at[1], PTRIO_MS(35));
    ck_assert_int_eq(ptrio_mock_clock_now(&c), PTRIO_SEC(100000));
}
END_TEST

/* Sleeps for d, or until `until` when that is set. */
struct sleeps { ptrio_frame fr; ptrio_time d, until; };

static int sleeps(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct sleeps, f);
    if (f->until)
        PTRIO_AWAIT(f, ptrio_sleep_until(f, f->until));
    else
        PTRIO_AWAIT(f, ptrio_sleep(f, f->d));
    PTRIO_END(f);
}

/* Trio: test_mock_clock.py::test_mock_clock_autojump_preset: a
 * threshold set before the run applies (the last one set). */
START_TEST(test_mock_clock_autojump_preset)
{
    static struct sleeps f;
    static ptrio_mock_clock c;

    tick_reset();
    ptrio_mock_clock_init(&c, 0);
    ptrio_mock_clock_set_autojump(&c, PTRIO_MS(100));
    ptrio_mock_clock_set_autojump(&c, PTRIO_MS(10));
    f = (struct sleeps){.d = PTRIO_SEC(10000)};
    ck_assert_int_eq(run_clocked(&tick_backend, &c.clock, sleeps, &f, NULL),
                     0);
    ck_assert_int_eq(REAL, PTRIO_MS(10));
    ck_assert_int_eq(ptrio_mock_clock_now(&c), PTRIO_SEC(10000));
}
END_TEST

/* A clock used by one loop, then by another: its real time is the
 * loop's that runs it now (Trio's MockClock can serve run after run). */
struct real_probe { ptrio_frame fr; ptrio_time before, after; };

static int real_probe(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct real_probe, f);
    f->before = ptrio_now();
    REAL += PTRIO_SEC(1);
    f->after = ptrio_now();
    PTRIO_END(f);
}

START_TEST(test_mock_clock_next_loop)
{
    static struct real_probe f;
    static ptrio_mock_clock c;
    static ptrio_loop first;

    tick_reset();
    ptrio_mock_clock_init(&c, 0);
    ptrio_mock_clock_set_rate(&c, 1000);
    f = (struct real_probe){0};
    loop_setup(&first, &ptrio_backend_virtual, NULL);
    ck_assert_int_eq(ptrio_loop_use_clock(&first, &c.clock), 0);
    ck_assert_int_eq(ptrio_loop_run(&first, real_probe, &f), 0);
    ck_assert_int_eq(f.after - f.before, 0);     /* virtual: no real time */
    f = (struct real_probe){0};
    ck_assert_int_eq(run_clocked(&tick_backend, &c.clock, real_probe, &f,
                                 NULL), 0);
    ck_assert_int_eq(f.after - f.before, PTRIO_SEC(1));
}
END_TEST

/* A frozen clock without autojump never reaches a deadline by itself: a
 * task asleep on it with nothing else that could wake is a deadlock
 * (Trio would hang), reported with the wake time the task waits for. */
START_TEST(test_mock_clock_frozen_deadlock)
{
    static struct sleeps f;
    static ptrio_mock_clock c;
    treport rep;

    tick_reset();
    ptrio_mock_clock_init(&c, 0);
    f = (struct sleeps){.d = PTRIO_SEC(1.5)};
    ck_assert_int_eq(run_clocked(&tick_backend, &c.clock, sleeps, &f, &rep),
                     -PTRIO_EDEADLK);
    ck_assert_int_eq(tick_waits, 0);
    if (PTRIO_CONF_DEADLOCK_DUMP)
        ck_assert_ptr_nonnull(strstr(rep.lines.buf,
                                     "task 'sleeps' sleeping until 1.500s at "));
    ck_assert_int_eq(count_of(rep.lines.buf, "ptrio: deadlock:"), 1);
}
END_TEST

/* Dumps print times of any size, and before the clock's zero, to the
 * millisecond (src/core/error.c formats them without 64-bit division). */
START_TEST(test_dump_times)
{
    static const struct { ptrio_time start, d; const char *until; } cases[] = {
        {0, PTRIO_SEC(86400) + PTRIO_MS(123), "sleeping until 86400.123s at "},
        {-PTRIO_SEC(5), PTRIO_MS(1500), "sleeping until -3.500s at "},
        {PTRIO_SEC(4000000000.0), PTRIO_MS(7), "sleeping until 4000000000.007s at "},
    };
    static struct sleeps f;
    static ptrio_mock_clock c;
    treport rep;
    size_t i;

    if (!PTRIO_CONF_DEADLOCK_DUMP)
        return;     /* the times are in the task tree */
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tick_reset();
        ptrio_mock_clock_init(&c, cases[i].start);
        f = (struct sleeps){.d = cases[i].d};
        ck_assert_int_eq(run_clocked(&tick_backend, &c.clock, sleeps, &f,
                                     &rep), -PTRIO_EDEADLK);
        ck_assert_ptr_nonnull(strstr(rep.lines.buf, cases[i].until));
    }
}
END_TEST

/* The tick backend with a coarse timer, as poll's: a wait ends at the
 * next whole millisecond after its deadline. */
static int tick_wait_coarse(ptrio_loop *l, ptrio_time deadline)
{
    if (deadline != PTRIO_TIME_INF && deadline > REAL)
        deadline = (deadline + PTRIO_MS(1) - 1) / PTRIO_MS(1) * PTRIO_MS(1);
    return tick_wait(l, deadline);
}

static const ptrio_backend tick_coarse_backend = {
    "tick-coarse", NULL, NULL, tick_now, tick_wait_coarse, NULL, NULL,
    tick_wake
};

struct overshoot {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct os_sleeper { ptrio_frame fr; } s;
    struct os_waiter { ptrio_frame fr; } w;
};

static int os_sleeper(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct os_sleeper, f);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_US(1700)));
    ev_real("sleeper");
    PTRIO_END(f);
}

static int os_waiter(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct os_waiter, f);
    PTRIO_AWAIT(f, ptrio_wait_all_tasks_blocked(f, PTRIO_US(1500)));
    ev_real("idle");
    PTRIO_END(f);
}

static int overshoot(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct overshoot, f);
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], os_sleeper, &f->s));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], os_waiter, &f->w));
    }
    PTRIO_END(f);
}

/* Trio's run loop: a wait primed for an idle cushion that ends with a
 * deadline passed is no idle time (a deadline expired: idle_primed =
 * None). Waiting 1.5 ms on a millisecond timer ends at 2 ms, past the
 * sleeper's 1.7 ms: the sleeper wakes alone, and the idle waiter after
 * a whole cushion more (at 4 ms on that timer), not with it. */
START_TEST(test_idle_cushion_yields_to_a_passed_deadline)
{
    static struct overshoot f;

    tick_reset();
    tlog_clear(&L);
    memset(&f, 0, sizeof f);
    ck_assert_int_eq(run_clocked(&tick_coarse_backend, NULL, overshoot, &f,
                                 NULL), 0);
    ck_assert_str_eq(L.buf, "sleeper@2/2 idle@4/4");
}
END_TEST

/* The sleeper and the waiter of the two autojump-0 tests. */
struct aj_sleeper { ptrio_frame fr; };

static int aj_sleeper(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct aj_sleeper, f);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(100)));
    ev_real("yawn");
    PTRIO_END(f);
}

struct aj_waiter { ptrio_frame fr; ptrio_time cushion; };

static int aj_waiter(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct aj_waiter, f);
    PTRIO_AWAIT(f, ptrio_wait_all_tasks_blocked(f, f->cushion));
    if (f->cushion == 0) {
        ev_real("waiter-woke");
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1000)));
    }
    ev_real("waiter-done");
    PTRIO_END(f);
}

struct aj_main {
    ptrio_frame fr;
    ptrio_mock_clock *c;
    ptrio_time threshold, cushion;
    ptrio_nursery n;
    ptrio_task t[2];
    struct aj_sleeper s;
    struct aj_waiter w;
};

static int aj_main(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct aj_main, f);
    ptrio_mock_clock_set_autojump(f->c, f->threshold);
    PTRIO_NURSERY(f, &f->n) {
        f->w.cushion = f->cushion;
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], aj_sleeper, &f->s));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], aj_waiter, &f->w));
    }
    PTRIO_END(f);
}

static const char *autojump_run(const ptrio_backend *be, ptrio_time cushion,
                                ptrio_time rate)
{
    static struct aj_main f;
    static ptrio_mock_clock c;

    tick_reset();
    tlog_clear(&L);
    ptrio_mock_clock_init(&c, 0);
    f = (struct aj_main){.c = &c, .threshold = 0, .cushion = cushion};
    if (rate)
        ptrio_mock_clock_set_rate(&c, (uint32_t)rate);
    ck_assert_int_eq(run_clocked(be, &c.clock, aj_main, &f, NULL), 0);
    return L.buf;
}

/* Trio: test_mock_clock.py::
 * test_mock_clock_autojump_0_and_wait_all_tasks_blocked_0. Threshold 0
 * does not keep a waiter with cushion 0 from waking first; on real time
 * (tick) and on the virtual backend alike. */
START_TEST(test_mock_clock_autojump_0_and_wait_all_tasks_blocked_0)
{
    ck_assert_str_eq(autojump_run(&tick_backend, 0, 0),
                     "waiter-woke@0/0 yawn@100000/0 waiter-done@1000000/0");
    ck_assert_str_eq(autojump_run(&ptrio_backend_virtual, 0, 0),
                     "waiter-woke@0/0 yawn@100000/0 waiter-done@1000000/0");
}
END_TEST

/* Trio: test_mock_clock.py::
 * test_mock_clock_autojump_0_and_wait_all_tasks_blocked_nonzero. The
 * waiter's 1 s cushion passes in real time, before the clock jumps. */
START_TEST(test_mock_clock_autojump_0_and_wait_all_tasks_blocked_nonzero)
{
    ck_assert_str_eq(autojump_run(&tick_backend, PTRIO_SEC(1), 0),
                     "waiter-done@0/1000 yawn@100000/1000");
    ck_assert_str_eq(autojump_run(&ptrio_backend_virtual, PTRIO_SEC(1), 0),
                     "waiter-done@0/0 yawn@100000/0");
}
END_TEST

/* Trio: MockClock's documentation ("wait_all_tasks_blocked takes
 * priority: if there's a task blocked in wait_all_tasks_blocked, the
 * autojump feature treats that as active task and does not jump the
 * clock") and Trio's run loop (the autojump is an `elif` of "a task waits
 * for idle"). A clock at real rate (1000 per mille) with threshold 0: the
 * sleeper's 100 s pass in 100 s of real time, because a waiter with a
 * cushion of 1000 s is there; then the waiter's cushion passes. */
START_TEST(test_autojump_defers_to_idle_waiter)
{
    ck_assert_str_eq(autojump_run(&tick_backend, PTRIO_SEC(1000), 1000),
                     "yawn@100000/100000 waiter-done@1100000/1100000");
}
END_TEST

/* ================================================================== */
/* ---- wait_all_tasks_blocked (Trio: test_testing.py) -------------- */

struct bee { ptrio_frame fr; int i; };

static int busy_bee(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct bee, f);
    for (f->i = 0; f->i < 10; f->i++)
        PTRIO_CHECKPOINT(f);
    tlog_add(&L, "busy-bee-exhausted");
    PTRIO_END(f);
}

struct quiet { ptrio_frame fr; int rc; };

static int waiting_for_bee_to_leave(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct quiet, f);
    PTRIO_AWAIT(f, ptrio_wait_all_tasks_blocked(f, 0));
    tlog_add(&L, "quiet-at-last!");
    PTRIO_END(f);
}

static int cancelled_while_waiting(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct quiet, f);
    PTRIO_TRY(f, f->rc, ptrio_wait_all_tasks_blocked(f, 0));
    if (f->rc == -PTRIO_ECANCELED)
        tlog_add(&L, "ok");
    PTRIO_END(f);
}

struct watb_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[3];
    struct bee b;
    struct quiet q[3];
    tlog first;
    int rc_neg;
};

static int watb_main(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct watb_main, f);
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], busy_bee, &f->b));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1],
                                        waiting_for_bee_to_leave, &f->q[0]));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[2],
                                        waiting_for_bee_to_leave, &f->q[1]));
    }
    tlog_at(&L, "joined");
    f->first = L;
    tlog_clear(&L);
    /* check cancellation: cancelled before it first runs */
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0],
                                        cancelled_while_waiting, &f->q[2]));
        ptrio_nursery_cancel(&f->n);
    }
    /* and cancelled while it waits */
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0],
                                        cancelled_while_waiting, &f->q[2]));
        PTRIO_YIELD(f);
        ptrio_nursery_cancel(&f->n);
    }
    PTRIO_TRY(f, f->rc_neg, ptrio_wait_all_tasks_blocked(f, -1));
    PTRIO_END(f);
}

/* Trio: test_testing.py::test_wait_all_tasks_blocked. Both waiters wake
 * once the bee is done (the order Trio's test records, though it never
 * asserts the first part); a waiter cancelled, before or while it waits,
 * gets -PTRIO_ECANCELED. A negative cushion is -PTRIO_EINVAL. */
START_TEST(test_wait_all_tasks_blocked)
{
    static struct watb_main f;

    tlog_clear(&L);
    f = (struct watb_main){0};
    ck_assert_int_eq(run_virtual(watb_main, &f, NULL), 0);
    ck_assert_str_eq(f.first.buf,
                     "busy-bee-exhausted quiet-at-last! quiet-at-last! "
                     "joined@0");
    ck_assert_str_eq(L.buf, "ok ok");
    ck_assert_int_eq(f.rc_neg, -PTRIO_EINVAL);
}
END_TEST

struct timeout_task { ptrio_frame fr; };

static int timeout_task(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct timeout_task, f);
    tlog_at(&L, "tt-start");
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(5)));
    tlog_at(&L, "tt-finished");
    PTRIO_END(f);
}

struct watb_timeouts {
    ptrio_frame fr;
    ptrio_mock_clock *c;
    ptrio_nursery n;
    ptrio_task t;
    struct timeout_task tt;
    tlog at[2];
};

static int watb_timeouts(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct watb_timeouts, f);
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, timeout_task, &f->tt));
        PTRIO_AWAIT(f, ptrio_wait_all_tasks_blocked(f, 0));
        f->at[0] = L;
        ck_assert_int_eq(ptrio_mock_clock_jump(f->c, PTRIO_SEC(10)), 0);
        PTRIO_AWAIT(f, ptrio_wait_all_tasks_blocked(f, 0));
        f->at[1] = L;
    }
    PTRIO_END(f);
}

/* Trio: test_testing.py::test_wait_all_tasks_blocked_with_timeouts. A
 * mock clock without autojump on the virtual backend: the test drives
 * time with jump, as a user's test of their own timeouts does. */
START_TEST(test_wait_all_tasks_blocked_with_timeouts)
{
    static struct watb_timeouts f;
    static ptrio_mock_clock c;

    tlog_clear(&L);
    ptrio_mock_clock_init(&c, 0);
    f = (struct watb_timeouts){.c = &c};
    ck_assert_int_eq(run_clocked(&ptrio_backend_virtual, &c.clock,
                                 watb_timeouts, &f, NULL), 0);
    ck_assert_str_eq(f.at[0].buf, "tt-start@0");
    ck_assert_str_eq(f.at[1].buf, "tt-start@0 tt-finished@10000");
}
END_TEST

struct blink { ptrio_frame fr; };

static int blink(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct blink, f);
    ev_real("blink-start");
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(10)));
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(10)));
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(10)));
    ev_real("blink-end");
    PTRIO_END(f);
}

struct cushioned { ptrio_frame fr; ptrio_time cushion; const char *name; };

static int cushioned(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct cushioned, f);
    PTRIO_AWAIT(f, ptrio_wait_all_tasks_blocked(f, f->cushion));
    ev_real(f->name);
    PTRIO_END(f);
}

struct cushion_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[5];
    struct blink b;
    struct cushioned w[4];
    int i;
};

static int cushion_main(ptrio_frame *fr)
{
    static const ptrio_time cushions[4] = {0, PTRIO_MS(20), PTRIO_MS(20),
                                           PTRIO_MS(30)};
    static const char *const names[4] = {"no-cushion", "small-1", "small-2",
                                         "big"};
    PTRIO_BEGIN_AS(struct cushion_main, f);
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], blink, &f->b));
        for (f->i = 0; f->i < 4; f->i++) {
            f->w[f->i].cushion = cushions[f->i];
            f->w[f->i].name = names[f->i];
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1 + f->i], cushioned,
                                            &f->w[f->i]));
        }
    }
    PTRIO_END(f);
}

/* Trio: test_testing.py::test_wait_all_tasks_blocked_with_cushion. With
 * real time (tick), each cushion counts from the moment every other task
 * blocked: the small ones wake together 20 ms after the blinker's end,
 * FIFO, and the big one 30 ms after them. On the virtual backend no real
 * time passes: the same order, all at the blinker's end. */
START_TEST(test_wait_all_tasks_blocked_with_cushion)
{
    static struct cushion_main f;

    tick_reset();
    tlog_clear(&L);
    f = (struct cushion_main){0};
    ck_assert_int_eq(run_clocked(&tick_backend, NULL, cushion_main, &f, NULL),
                     0);
    ck_assert_str_eq(L.buf, "blink-start@0/0 no-cushion@0/0 blink-end@30/30 "
                            "small-1@50/50 small-2@50/50 big@80/80");

    tick_reset();
    tlog_clear(&L);
    f = (struct cushion_main){0};
    ck_assert_int_eq(run_virtual(cushion_main, &f, NULL), 0);
    ck_assert_str_eq(L.buf, "blink-start@0/0 no-cushion@0/0 blink-end@30/0 "
                            "small-1@30/0 small-2@30/0 big@30/0");
}
END_TEST

/* ================================================================== */
/* ---- the README's example: testing your own timeouts --------------- */

/* The code under test: asks a server, three tries of 5 s each. */
struct server {
    ptrio_event answered;
    int value;
};

struct fetch_retry {
    ptrio_frame fr;
    struct server *srv;
    ptrio_scope timeout;
    int tries;
};

static int fetch_retry(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct fetch_retry, f);
    for (f->tries = 0; f->tries < 3; f->tries++) {
        PTRIO_MOVE_ON_AFTER(f, &f->timeout, PTRIO_SEC(5)) {
            PTRIO_AWAIT(f, ptrio_event_wait(f, &f->srv->answered));
            PTRIO_RETURN(f, f->srv->value);
        }
    }
    PTRIO_RAISE(f, -PTRIO_ETIMEDOUT, "no answer after 3 tries");
    PTRIO_END(f);
}

/* A test: nobody answers. 15 s of virtual time, none of real time. */
struct t_giveup {
    ptrio_frame fr;
    struct server never;
    struct fetch_retry call;
    int rc;
    ptrio_time at;
};

static int t_giveup(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct t_giveup, t);
    t->call.srv = &t->never;
    PTRIO_TRY(t, t->rc, ptrio_call(t, &t->call, fetch_retry));
    t->at = ptrio_now();
    PTRIO_END(t);
}

START_TEST(test_readme_gives_up_after_15_s)
{
    static struct t_giveup t;

    t = (struct t_giveup){0};
    ck_assert_int_eq(ptrio_run_virtual(t_giveup, &t), 0);
    ck_assert_int_eq(t.rc, -PTRIO_ETIMEDOUT);
    ck_assert_int_eq(t.at, PTRIO_SEC(15));
}
END_TEST

/* A test that drives the clock itself: the answer comes 2 s into the
 * second try. The driver runs beside the call. */
struct driver {
    ptrio_frame fr;
    ptrio_mock_clock *clock;
    struct server *srv;
};

static int driver(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct driver, d);
    PTRIO_AWAIT(d, ptrio_wait_all_tasks_blocked(d, 0));     /* it waits */
    ptrio_mock_clock_jump(d->clock, PTRIO_SEC(5));          /* 1st try over */
    PTRIO_AWAIT(d, ptrio_wait_all_tasks_blocked(d, 0));
    ptrio_mock_clock_jump(d->clock, PTRIO_SEC(2));
    d->srv->value = 42;
    ptrio_event_set(&d->srv->answered);
    PTRIO_END(d);
}

struct t_second_try {
    ptrio_frame fr;
    struct server srv;
    ptrio_nursery n;
    ptrio_task t;
    struct driver d;
    struct fetch_retry call;
    int rc;
};

static int t_second_try(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct t_second_try, t);
    PTRIO_NURSERY(t, &t->n) {
        t->d.srv = t->call.srv = &t->srv;
        PTRIO_CHECK(t, ptrio_start_soon(&t->n, &t->t, driver, &t->d));
        PTRIO_TRY(t, t->rc, ptrio_call(t, &t->call, fetch_retry));
    }
    PTRIO_END(t);
}

START_TEST(test_readme_answer_on_second_try)
{
    static ptrio_loop loop;
    static ptrio_mock_clock clock;
    static struct t_second_try t;

    ptrio_loop_init(&loop);
    ptrio_loop_use_backend(&loop, &ptrio_backend_virtual);
    ptrio_mock_clock_init(&clock, 0);           /* frozen, no autojump */
    ptrio_loop_use_clock(&loop, &clock.clock);
    t = (struct t_second_try){.d.clock = &clock};
    ck_assert_int_eq(ptrio_loop_run(&loop, t_second_try, &t), 0);
    ck_assert_int_eq(t.rc, 42);
    ck_assert_int_eq(t.call.tries, 1);
    ck_assert_int_eq(ptrio_mock_clock_now(&clock), PTRIO_SEC(7));
}
END_TEST

/* A clock of your own may leave jump_to NULL: it never jumps, whatever
 * its autojump says. A frozen one then leaves a sleeper nothing that can
 * wake it: a deadlock, reported, not a call through NULL. */
START_TEST(test_clock_without_jump_to)
{
    static ptrio_loop loop;
    static ptrio_mock_clock clock;
    static struct sleeps f;
    treport rep;

    loop_setup(&loop, &ptrio_backend_virtual, &rep);
    ptrio_mock_clock_init(&clock, 0);
    clock.clock.jump_to = NULL;
    clock.clock.autojump = 0;
    ck_assert_int_eq(ptrio_loop_use_clock(&loop, &clock.clock), 0);
    f = (struct sleeps){.d = PTRIO_SEC(1)};
    ck_assert_int_eq(ptrio_loop_run(&loop, sleeps, &f), -PTRIO_EDEADLK);
    ck_assert_int_eq(ptrio_mock_clock_now(&clock), 0);
    ck_assert_int_ge(rep.count, 1);
}
END_TEST

/* A mock clock reading below 0 and the latest deadline there is: frozen,
 * a deadlock (reported at once, not a wait loop on an overflowed
 * distance); with autojump 0, one jump to that deadline. */
START_TEST(test_mock_clock_below_zero_far_deadline)
{
    static ptrio_loop loop;
    static ptrio_mock_clock clock;
    static struct sleeps f;
    treport rep;

    loop_setup(&loop, &ptrio_backend_virtual, &rep);
    ptrio_mock_clock_init(&clock, -PTRIO_SEC(5));
    ck_assert_int_eq(ptrio_loop_use_clock(&loop, &clock.clock), 0);
    f = (struct sleeps){.until = PTRIO_TIME_INF - 1};
    ck_assert_int_eq(ptrio_loop_run(&loop, sleeps, &f), -PTRIO_EDEADLK);
    ck_assert_int_eq(ptrio_mock_clock_now(&clock), -PTRIO_SEC(5));

    ptrio_mock_clock_set_autojump(&clock, 0);
    f = (struct sleeps){.until = PTRIO_TIME_INF - 1};
    ck_assert_int_eq(ptrio_loop_run(&loop, sleeps, &f), 0);
    ck_assert_int_eq(ptrio_mock_clock_now(&clock), PTRIO_TIME_INF - 1);
}
END_TEST

/* Hooks for a NULL loop: misuse, refused (a debug build traps). */
START_TEST(test_set_hooks_null_loop)
{
    static const ptrio_hooks hooks;

    ptrio_loop_set_hooks(NULL, &hooks, NULL);
    ptrio_loop_set_hooks(NULL, NULL, NULL);
}
END_TEST

/* ================================================================== */
/* ---- the deadlock detector ---------------------------------------- */

/* Writes "<a><n>" (a number after a string) at the end of `b`. */
static void cat_num(char *b, const char *a, long n)
{
    char tmp[64];
    fmt(tmp, a, n);
    strcat(b, tmp);
}

/* "<file>:<line>", as the dump prints a site. */
static void cat_site(char *b, int line)
{
    strcat(b, __FILE__);
    cat_num(b, ":", line);
}

/* What a task saw of its cancellation, in FINALLY. */
struct seen {
    int rc;
    ptrio_cancel_info info;
    char text[160];
};

static void see(void *self, struct seen *s)
{
    s->rc = ptrio_cancel_source(self, &s->info);
    ptrio_cancel_text(&s->info, s->text, (int)sizeof s->text);
    if (s->rc < 0)
        s->text[0] = '\0';
}

/* Waits for one event, then sets the other. */
struct each_other {
    ptrio_frame fr;
    ptrio_event *wait_for, *then_set;
    int line;
    struct seen seen;
};

static int each_other(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct each_other, f);
    f->line = __LINE__; PTRIO_AWAIT(f, ptrio_event_wait(f, f->wait_for));
    ptrio_event_set(f->then_set);
    PTRIO_FINALLY(f);
    see(f, &f->seen);
    logn_at(&L, ptrio_task_name(ptrio_current_task()),
            PTRIO_FINALLY_ERROR(f));
    PTRIO_END(f);
}

struct dl_events {
    ptrio_frame fr;
    ptrio_event ea, eb;
    ptrio_nursery n;
    ptrio_task t[2];
    struct each_other k[2];
    int nline;
};

static int dl_events(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct dl_events, f);
    f->nline = __LINE__; PTRIO_NURSERY(f, &f->n) {
        f->k[0].wait_for = &f->eb;
        f->k[0].then_set = &f->ea;
        f->k[1].wait_for = &f->ea;
        f->k[1].then_set = &f->eb;
        PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[0], each_other,
                                              &f->k[0], "a"));
        PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[1], each_other,
                                              &f->k[1], "b"));
    }
    tlog_add(&L, "unreached");
    PTRIO_END(f);
}

/* Two tasks waiting on each other's event: reported once, with the task
 * tree (each task's state and the file:line and function it waits in),
 * every task cancelled by the run (kind RUN, code -PTRIO_EDEADLK), the
 * run returns -PTRIO_EDEADLK. */
START_TEST(test_deadlock_two_events)
{
    static struct dl_events f;
    static char want[2048];
    treport rep;
    int i;

    tlog_clear(&L);
    f = (struct dl_events){0};
    ck_assert_int_eq(run_virtual(dl_events, &f, &rep), -PTRIO_EDEADLK);
    /* the run's cancellation comes from outside the nursery: it does not
     * absorb it, and main's code after it does not run */
    ck_assert_str_eq(L.buf, "a-9007@0 b-9007@0");
    if (!PTRIO_CONF_DEADLOCK_DUMP) {
        ck_assert_str_eq(rep.lines.buf, DEADLOCK_HEADLINE_ONLY " |");
        ck_assert_int_eq(rep.count, 1);
        return;
    }
    want[0] = '\0';
    strcat(want, "ptrio: deadlock: every task waits, and nothing can wake "
                 "one; every task is cancelled. The tasks: | ");
    strcat(want, "ptrio: the run's nursery, 1 live | ");
    strcat(want, "ptrio:   task 'dl_events' joining a nursery at ");
    cat_site(want, f.nline);
    strcat(want, " in dl_events() | ptrio:     nursery at ");
    cat_site(want, f.nline);
    strcat(want, ", 2 live | ");
    for (i = 0; i < 2; i++) {
        strcat(want, i ? "ptrio:       task 'b'" : "ptrio:       task 'a'");
        strcat(want, " parked in a lot at ");
        cat_site(want, f.k[i].line);
        strcat(want, " in each_other() |");
        if (!i)
            strcat(want, " ");
    }
    ck_assert_str_eq(rep.lines.buf, want);
    ck_assert_int_eq(rep.count, 6);
    for (i = 0; i < 2; i++) {
        ck_assert_int_eq(f.k[i].seen.rc, 0);
        ck_assert_int_eq(f.k[i].seen.info.kind, PTRIO_CANCEL_RUN);
        ck_assert_int_eq(f.k[i].seen.info.failure.code, -PTRIO_EDEADLK);
        ck_assert_str_eq(f.k[i].seen.text, "cancelled because every task "
                                           "waits forever (deadlock)");
    }
}
END_TEST

/* Holds one lock, then wants the other. */
struct holder {
    ptrio_frame fr;
    ptrio_lock *first, *second;
    int line, released;
};

static int holder(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct holder, f);
    PTRIO_AWAIT(f, ptrio_lock_acquire(f, f->first));
    PTRIO_CHECKPOINT(f);
    f->line = __LINE__; PTRIO_AWAIT(f, ptrio_lock_acquire(f, f->second));
    tlog_add(&L, "unreached");
    PTRIO_FINALLY(f);
    if (ptrio_lock_owner(f->first) == ptrio_current_task())
        f->released = ptrio_lock_release(f->first) == 0;
    logn_at(&L, ptrio_task_name(ptrio_current_task()),
            PTRIO_FINALLY_ERROR(f));
    PTRIO_END(f);
}

struct dl_locks {
    ptrio_frame fr;
    ptrio_lock l1, l2;
    ptrio_nursery n;
    ptrio_task t[2];
    struct holder h[2];
};

static int dl_locks(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct dl_locks, f);
    PTRIO_NURSERY(f, &f->n) {
        f->h[0] = (struct holder){.first = &f->l1, .second = &f->l2};
        f->h[1] = (struct holder){.first = &f->l2, .second = &f->l1};
        PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[0], holder,
                                              &f->h[0], "x"));
        PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[1], holder,
                                              &f->h[1], "y"));
    }
    PTRIO_END(f);
}

/* The classic: each holds a lock the other wants. Both are cancelled out
 * of their acquire, release what they hold in FINALLY, and the run
 * returns -PTRIO_EDEADLK; the dump shows where each waits. */
START_TEST(test_deadlock_two_locks)
{
    static struct dl_locks f;
    static char line[256];
    treport rep;
    int i;

    tlog_clear(&L);
    f = (struct dl_locks){0};
    ck_assert_int_eq(run_virtual(dl_locks, &f, &rep), -PTRIO_EDEADLK);
    ck_assert_str_eq(L.buf, "x-9007@0 y-9007@0");
    ck_assert_int_eq(rep.count, PTRIO_CONF_DEADLOCK_DUMP ? 6 : 1);
    for (i = 0; i < 2; i++) {
        ck_assert_int_eq(f.h[i].released, 1);
        strcpy(line, i ? "task 'y'" : "task 'x'");
        strcat(line, " parked in a lot at ");
        cat_site(line, f.h[i].line);
        strcat(line, " in holder()");
        if (PTRIO_CONF_DEADLOCK_DUMP)
            ck_assert_ptr_nonnull(strstr(rep.lines.buf, line));
    }
    ck_assert(!ptrio_lock_locked(&f.l1));
    ck_assert(!ptrio_lock_locked(&f.l2));
}
END_TEST

/* A child fails; its sibling's cleanup then waits, shielded, for an
 * event nobody sets: a deadlock during the failure's way out. It is
 * reported once, the shielded wait is aborted (the run's last resort),
 * and the run returns the real failure, reported too. */
struct fails_soon { ptrio_frame fr; int line; };

static int fails_soon(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct fails_soon, f);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
    f->line = __LINE__; PTRIO_RAISE(f, -PTRIO_EIO, "disk gone");
    PTRIO_END(f);
}

struct stuck_cleanup { ptrio_frame fr; ptrio_event never; ptrio_scope sh; };

static int stuck_cleanup(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct stuck_cleanup, f);
    PTRIO_AWAIT(f, ptrio_sleep_forever(f));
    PTRIO_FINALLY(f);
    PTRIO_SHIELD(f, &f->sh) {
        PTRIO_AWAIT(f, ptrio_event_wait(f, &f->never));
    }
    tlog_at(&L, "cleanup-done");
    PTRIO_END(f);
}

struct dl_failing {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct fails_soon a;
    struct stuck_cleanup b;
};

static int dl_failing(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct dl_failing, f);
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], fails_soon, &f->a));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], stuck_cleanup,
                                        &f->b));
    }
    PTRIO_END(f);
}

START_TEST(test_deadlock_while_failing)
{
    static struct dl_failing f;
    treport rep;

    tlog_clear(&L);
    f = (struct dl_failing){0};
    ck_assert_int_eq(run_virtual(dl_failing, &f, &rep), -PTRIO_EIO);
    ck_assert_int_eq(count_of(rep.lines.buf, "ptrio: deadlock:"), 1);
    if (PTRIO_CONF_DEADLOCK_DUMP)
        ck_assert_ptr_nonnull(strstr(rep.lines.buf,
                                     "task 'stuck_cleanup' parked in a lot"));
    ck_assert_ptr_nonnull(strstr(rep.lines.buf,
                                 "ptrio: task 'fails_soon' failed: EIO "
                                 "(disk gone)"));
    ck_assert_str_eq(L.buf, "");    /* the aborted wait raised */
}
END_TEST

/* Not a deadlock: a task blocked in wait_all_tasks_blocked wakes when
 * every other task is blocked, and unblocks them. */
struct sets_when_idle { ptrio_frame fr; ptrio_event *e; };

static int sets_when_idle(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct sets_when_idle, f);
    PTRIO_AWAIT(f, ptrio_wait_all_tasks_blocked(f, 0));
    tlog_at(&L, "idle");
    ptrio_event_set(f->e);
    PTRIO_END(f);
}

struct waits_event { ptrio_frame fr; ptrio_event *e; };

static int waits_event(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct waits_event, f);
    PTRIO_AWAIT(f, ptrio_event_wait(f, f->e));
    ev_real("woken");
    PTRIO_END(f);
}

struct nodl_idle {
    ptrio_frame fr;
    ptrio_event e;
    ptrio_nursery n;
    ptrio_task t[2];
    struct sets_when_idle s;
    struct waits_event w;
};

static int nodl_idle(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct nodl_idle, f);
    PTRIO_NURSERY(f, &f->n) {
        f->w.e = f->s.e = &f->e;
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], waits_event, &f->w));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], sets_when_idle,
                                        &f->s));
    }
    PTRIO_END(f);
}

START_TEST(test_no_deadlock_idle_waiter)
{
    static struct nodl_idle f;
    treport rep;

    tick_reset();
    tlog_clear(&L);
    f = (struct nodl_idle){0};
    ck_assert_int_eq(run_virtual(nodl_idle, &f, &rep), 0);
    ck_assert_int_eq(rep.count, 0);
    ck_assert_str_eq(L.buf, "idle@0 woken@0/0");
}
END_TEST

/* An external wake source: an interrupt handler records that its
 * device is ready (irq_ready) and the source's poll, on the loop's
 * thread, wakes the waiting task. With a source added, a loop whose
 * tasks all wait with no deadline is not deadlocked: the port's wait
 * sleeps until the interrupt (tick_irq, 5 ms later). */
static volatile int irq_ready;
static ptrio_event irq_event;

static void device_irq(void)
{
    REAL += PTRIO_MS(5);
    irq_ready = 1;
}

static void device_poll(ptrio_source *src)
{
    if (irq_ready) {
        irq_ready = 0;
        ptrio_event_set(&irq_event);
        ptrio_source_remove(src);
    }
}

struct irq_main {
    ptrio_frame fr;
    ptrio_source src;
    struct waits_event w;
};

static int irq_main(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct irq_main, f);
    PTRIO_CHECK(f, ptrio_source_add(&f->src, device_poll));
    f->w.e = &irq_event;
    PTRIO_CALL(f, waits_event, &f->w);
    PTRIO_END(f);
}

START_TEST(test_no_deadlock_with_source)
{
    static struct irq_main f;
    treport rep;

    tick_reset();
    tlog_clear(&L);
    irq_ready = 0;
    irq_event = (ptrio_event){0};
    tick_irq = device_irq;
    f = (struct irq_main){0};
    ck_assert_int_eq(run_clocked(&tick_backend, NULL, irq_main, &f, &rep), 0);
    ck_assert_int_eq(rep.count, 0);
    ck_assert_str_eq(L.buf, "woken@5/5");
    ck_assert_int_eq(tick_waits, 1);
}
END_TEST

/* The virtual backend cannot wait for anything outside: with every task
 * waiting and no deadline, its wait fails with -PTRIO_EDEADLK even though
 * a source is added. Like every deadlock, that is reported (with the
 * tree), never silent. */
START_TEST(test_virtual_source_deadlock_reported)
{
    static struct irq_main f;
    treport rep;

    tlog_clear(&L);
    irq_ready = 0;
    irq_event = (ptrio_event){0};
    f = (struct irq_main){0};
    ck_assert_int_eq(run_virtual(irq_main, &f, &rep), -PTRIO_EDEADLK);
    ck_assert_ptr_nonnull(strstr(rep.lines.buf, "deadlock"));
    if (PTRIO_CONF_DEADLOCK_DUMP)
        ck_assert_ptr_nonnull(strstr(rep.lines.buf,
                                     "task 'irq_main' parked in a lot"));
}
END_TEST

/* A source is polled before the loop waits: an event a task records (as
 * an interrupt on its thread would) just before it sleeps wakes the
 * source's waiter at once, not when the sleep ends (on the virtual
 * backend, waiting first would jump the clock to that deadline). */
struct raises_sleeps { ptrio_frame fr; };

static int raises_sleeps(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct raises_sleeps, f);
    irq_ready = 1;
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));
    tlog_at(&L, "slept");
    PTRIO_END(f);
}

struct source_first {
    ptrio_frame fr;
    ptrio_source src;
    ptrio_nursery n;
    ptrio_task t[2];
    struct waits_event w;
    struct raises_sleeps r;
};

static int source_first(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct source_first, f);
    ck_assert(!ptrio_source_added(&f->src));
    PTRIO_CHECK(f, ptrio_source_add(&f->src, device_poll));
    ck_assert(ptrio_source_added(&f->src));
    f->w.e = &irq_event;
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], waits_event, &f->w));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], raises_sleeps,
                                        &f->r));
    }
    PTRIO_END(f);
}

START_TEST(test_source_polled_before_wait)
{
    static struct source_first f;
    treport rep;

    tick_reset();
    tlog_clear(&L);
    irq_ready = 0;
    irq_event = (ptrio_event){0};
    f = (struct source_first){0};
    ck_assert_int_eq(run_virtual(source_first, &f, &rep), 0);
    ck_assert_int_eq(rep.count, 0);
    ck_assert_str_eq(L.buf, "woken@0/0 slept@1000");
    ck_assert(!ptrio_source_added(&f.src));     /* its poll removed it */
    ck_assert(!ptrio_source_added(NULL));
}
END_TEST

/* ================================================================== */
/* ---- cancel reasons (Trio: test_cancelled.py) --------------------- */

struct reasons {
    ptrio_frame fr;
    ptrio_scope cs[8];
    struct seen s[8];
    int rc[8];
};

static int reasons(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct reasons, f);
    PTRIO_CANCEL_SCOPE(f, &f->cs[0]) {
        ptrio_cancel_reason(&f->cs[0], "hello");
        PTRIO_TRY(f, f->rc[0], ptrio_checkpoint(f));
        see(f, &f->s[0]);
    }
    PTRIO_MOVE_ON_AT(f, &f->cs[1], PTRIO_TIME_NINF) {
        PTRIO_TRY(f, f->rc[1], ptrio_checkpoint(f));
        see(f, &f->s[1]);
    }
    PTRIO_CANCEL_SCOPE(f, &f->cs[2]) {
        ck_assert_int_eq(ptrio_scope_set_deadline(&f->cs[2],
                                                  PTRIO_TIME_NINF), 0);
        PTRIO_TRY(f, f->rc[2], ptrio_checkpoint(f));
        see(f, &f->s[2]);
    }
    PTRIO_CANCEL_SCOPE(f, &f->cs[3]) {
        ptrio_cancel(&f->cs[3]);
        PTRIO_TRY(f, f->rc[3], ptrio_checkpoint(f));
        see(f, &f->s[3]);
    }
    /* not cancelled: no source */
    f->rc[4] = ptrio_cancel_source(f, &f->s[4].info);
    f->rc[5] = ptrio_cancel_source(f, NULL);
    PTRIO_END(f);
}

/* Trio: test_cancelled.py::test_cancel_reason: an explicit cancel with
 * a reason, a deadline already passed at entry or set inside; and an
 * explicit one without reason. Outside a cancelled region there is no
 * source (-PTRIO_EINVAL). */
START_TEST(test_cancel_reason)
{
    static struct reasons f;
    int i;

    f = (struct reasons){0};
    ck_assert_int_eq(run_virtual(reasons, &f, NULL), 0);
    for (i = 0; i < 4; i++) {
        ck_assert_int_eq(f.rc[i], -PTRIO_ECANCELED);
        ck_assert_int_eq(f.s[i].rc, 0);
        ck_assert_ptr_eq(f.s[i].info.scope, &f.cs[i]);
        ck_assert_ptr_null(f.s[i].info.task);
    }
    ck_assert_int_eq(f.s[0].info.kind, PTRIO_CANCEL_EXPLICIT);
    ck_assert_str_eq(f.s[0].info.reason, "hello");
    ck_assert_str_eq(f.s[0].text, "cancelled because hello");
    ck_assert_int_eq(f.s[1].info.kind, PTRIO_CANCEL_DEADLINE);
    ck_assert_str_eq(f.s[1].text, "cancelled because a deadline passed");
    ck_assert_int_eq(f.s[2].info.kind, PTRIO_CANCEL_DEADLINE);
    ck_assert_str_eq(f.s[2].text, "cancelled because a deadline passed");
    ck_assert_int_eq(f.s[3].info.kind, PTRIO_CANCEL_EXPLICIT);
    ck_assert_ptr_null(f.s[3].info.reason);
    ck_assert_str_eq(f.s[3].text, "cancelled explicitly");
    ck_assert_int_eq(f.rc[4], -PTRIO_EINVAL);
    ck_assert_int_eq(f.rc[5], -PTRIO_EINVAL);
}
END_TEST

/* A frame that is not the running one has no cancel source to read
 * (misuse: a trap in debug builds); outside a run neither. */
struct other_frame { ptrio_frame fr; struct sleeps sub; int rc; };

static int other_frame(ptrio_frame *fr)
{
    ptrio_cancel_info info;
    PTRIO_BEGIN_AS(struct other_frame, f);
    f->rc = ptrio_cancel_source(&f->sub, &info);
    PTRIO_END(f);
}

START_TEST(test_cancel_source_misuse)
{
    static struct other_frame f;
    ptrio_cancel_info info;

    f = (struct other_frame){0};
    ck_assert_int_eq(run_virtual(other_frame, &f, NULL), 0);
    ck_assert_int_eq(f.rc, -PTRIO_ENOTASK);
    ck_assert_int_eq(ptrio_cancel_source(&f, &info), -PTRIO_ENOTASK);
}
END_TEST

struct sticks {
    ptrio_frame fr;
    ptrio_scope cs[6];
    struct seen s[6];
    ptrio_scope_info si[2];
    int rc;
};

static int sticks(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct sticks, f);
    /* explicit, then a deadline: explicit stays */
    PTRIO_CANCEL_SCOPE(f, &f->cs[0]) {
        ptrio_cancel(&f->cs[0]);
        PTRIO_TRY(f, f->rc, ptrio_checkpoint(f));
        ck_assert_int_eq(ptrio_scope_set_deadline(&f->cs[0],
                                                  PTRIO_TIME_NINF), 0);
        PTRIO_TRY(f, f->rc, ptrio_checkpoint(f));
        see(f, &f->s[0]);
    }
    /* a deadline, then explicit: the deadline stays */
    PTRIO_CANCEL_SCOPE(f, &f->cs[1]) {
        ck_assert_int_eq(ptrio_scope_set_deadline(&f->cs[1],
                                                  PTRIO_TIME_NINF), 0);
        PTRIO_TRY(f, f->rc, ptrio_checkpoint(f));
        ptrio_cancel_reason(&f->cs[1], "too late");
        PTRIO_TRY(f, f->rc, ptrio_checkpoint(f));
        see(f, &f->s[1]);
    }
    /* two reasons: the first stays */
    PTRIO_CANCEL_SCOPE(f, &f->cs[2]) {
        ptrio_cancel_reason(&f->cs[2], "first");
        ptrio_cancel_reason(&f->cs[2], "second");
        PTRIO_TRY(f, f->rc, ptrio_checkpoint(f));
        see(f, &f->s[2]);
    }
    /* an inner scope cancelled inside a cancelled outer one inherits the
     * outer reason (Trio's CancelStatus.recalculate) */
    PTRIO_CANCEL_SCOPE(f, &f->cs[3]) {
        PTRIO_CANCEL_SCOPE(f, &f->cs[4]) {
            ptrio_cancel_reason(&f->cs[3], "outer");
            ptrio_cancel_reason(&f->cs[4], "inner");
            PTRIO_TRY(f, f->rc, ptrio_checkpoint(f));
            see(f, &f->s[3]);
            ptrio_scope_info_get(&f->cs[4], &f->si[0]);
        }
    }
    /* the inner cancelled first keeps its own */
    PTRIO_CANCEL_SCOPE(f, &f->cs[3]) {
        PTRIO_CANCEL_SCOPE(f, &f->cs[4]) {
            ptrio_cancel_reason(&f->cs[4], "inner");
            ptrio_cancel_reason(&f->cs[3], "outer");
            PTRIO_TRY(f, f->rc, ptrio_checkpoint(f));
            see(f, &f->s[4]);
            ptrio_scope_info_get(&f->cs[3], &f->si[1]);
        }
    }
    /* shielded from the outer one: its own reason */
    PTRIO_CANCEL_SCOPE(f, &f->cs[3]) {
        PTRIO_SHIELD(f, &f->cs[5]) {
            ptrio_cancel_reason(&f->cs[3], "outer");
            ptrio_cancel_reason(&f->cs[5], "shielded");
            PTRIO_TRY(f, f->rc, ptrio_checkpoint(f));
            see(f, &f->s[5]);
        }
    }
    PTRIO_END(f);
}

/* Trio: test_cancelled.py::test_cancel_reason_not_overwritten and
 * test_cancel_reason_not_overwritten_2: the first reason sticks; an
 * inner scope cancelled later inherits the outer one's. */
START_TEST(test_cancel_reason_not_overwritten)
{
    static struct sticks f;

    f = (struct sticks){0};
    ck_assert_int_eq(run_virtual(sticks, &f, NULL), 0);
    ck_assert_int_eq(f.s[0].info.kind, PTRIO_CANCEL_EXPLICIT);
    ck_assert_str_eq(f.s[0].text, "cancelled explicitly");
    ck_assert_int_eq(f.s[1].info.kind, PTRIO_CANCEL_DEADLINE);
    ck_assert_str_eq(f.s[1].text, "cancelled because a deadline passed");
    ck_assert_str_eq(f.s[2].text, "cancelled because first");
    ck_assert_str_eq(f.s[3].text, "cancelled because outer");
    ck_assert_ptr_eq(f.s[3].info.scope, &f.cs[4]);
    ck_assert(f.si[0].cancel_called);
    ck_assert_str_eq(f.si[0].cancel.reason, "outer");
    ck_assert_str_eq(f.s[4].text, "cancelled because inner");
    ck_assert_str_eq(f.si[1].cancel.reason, "outer");
    ck_assert_str_eq(f.s[5].text, "cancelled because shielded");
}
END_TEST

/* ptrio_start's children of Trio's nursery reason tests. */
struct rs_child {
    ptrio_frame fr;
    int mode;               /* 0: fail after started, 1: fail after idle,
                               2: fail before started, 3: sleep, cancelled,
                               then fail, 4: sleep, cancelled, return */
    int line, rc;
    struct seen seen;
};

static int rs_child(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct rs_child, f);
    if (f->mode == 2) {
        f->line = __LINE__; PTRIO_RAISE(f, -PTRIO_EIO, "value error");
    }
    PTRIO_CHECK(f, ptrio_started(f, ptrio_current_task()));
    if (f->mode == 1)
        PTRIO_AWAIT(f, ptrio_wait_all_tasks_blocked(f, 0));
    if (f->mode < 2) {
        f->line = __LINE__; PTRIO_RAISE(f, -PTRIO_EIO, "value error");
    }
    PTRIO_TRY(f, f->rc, ptrio_sleep_forever(f));
    see(f, &f->seen);
    if (f->mode == 3) {
        f->line = __LINE__; PTRIO_RAISE(f, -PTRIO_EINVAL, "type error");
    }
    PTRIO_END(f);
}

struct rs_main {
    ptrio_frame fr;
    int variant;
    ptrio_nursery n;
    ptrio_scope catcher;
    ptrio_task t[2];
    struct rs_child c[2];
    void *fail_task;
    int rc;
    struct seen seen;
    ptrio_failure group, m[2];
    int size;
};

static int rs_main(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct rs_main, f);
    PTRIO_TRY_BLOCK(f, &f->catcher) {
        PTRIO_NURSERY(f, &f->n) {
            if (f->variant == 3) {
                f->c[1].mode = 4;
                PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[1],
                                                      rs_child, &f->c[1],
                                                      "cancelled_task"));
                PTRIO_AWAIT(f, ptrio_wait_all_tasks_blocked(f, 0));
            }
            f->c[0].mode = f->variant == 1 ? 0 : f->variant == 2 ? 1 : 2;
            PTRIO_AWAIT(f, ptrio_start_named(f, &f->n, &f->t[0], rs_child,
                                             &f->c[0], &f->fail_task,
                                             "failing_task"));
            if (f->variant == 1) {
                PTRIO_TRY(f, f->rc, ptrio_wait_all_tasks_blocked(f, 0));
                see(f, &f->seen);
            }
            f->c[1].mode = 3;
            PTRIO_AWAIT(f, ptrio_start_named(f, &f->n, &f->t[1], rs_child,
                                             &f->c[1], NULL,
                                             "cancelled_task"));
        }
    }
    if (ptrio_scope_failure(&f->catcher, &f->group) == 0 &&
        f->group.code == -PTRIO_EGROUP) {
        const void *cur = NULL;
        int k = 0;
        f->size = ptrio_group_size(f->group.group);
        while (k < 2 && (cur = ptrio_group_next(f->group.group, cur,
                                                &f->m[k])))
            k++;
    }
    PTRIO_END(f);
}

static void want_failure(const ptrio_cancel_info *info, const char *task,
                         int code, int line)
{
    char want[160];

    ck_assert_int_eq(info->kind, PTRIO_CANCEL_FAILURE);
    ck_assert_str_eq(info->failure.task, task);
    ck_assert_int_eq(info->failure.code, code);
    ck_assert_str_eq(info->failure.file, __FILE__);
    ck_assert_int_eq(info->failure.line, line);
    ck_assert_ptr_nonnull(info->scope);
    strcpy(want, "cancelled because task '");
    strcat(want, task);
    strcat(want, "' failed with ");
    strcat(want, ptrio_errname(code));
    strcat(want, " at ");
    cat_site(want, line);
    {
        char text[160];
        ptrio_cancel_text(info, text, (int)sizeof text);
        ck_assert_str_eq(text, want);
    }
}

/* Trio: test_cancelled.py::test_cancel_reason_nursery: the failing task
 * raises right after started(); the body's wait and a task started into
 * the cancelled nursery are cancelled because of it (which task, which
 * code, where). The group holds the body's error (the second child's
 * -EINVAL, through its start) and the failing child's -EIO. */
START_TEST(test_cancel_reason_nursery)
{
    static struct rs_main f;

    f = (struct rs_main){.variant = 1};
    ck_assert_int_eq(run_virtual(rs_main, &f, NULL), 0);
    ck_assert_ptr_eq(f.fail_task, &f.t[0]);
    ck_assert_int_eq(f.rc, -PTRIO_ECANCELED);
    want_failure(&f.seen.info, "failing_task", -PTRIO_EIO, f.c[0].line);
    ck_assert_int_eq(f.c[1].rc, -PTRIO_ECANCELED);
    want_failure(&f.c[1].seen.info, "failing_task", -PTRIO_EIO, f.c[0].line);
    ck_assert_int_eq(f.group.code, -PTRIO_EGROUP);
    ck_assert_int_eq(f.size, 2);
    ck_assert_int_eq(f.m[0].code, -PTRIO_EINVAL);
    ck_assert_str_eq(f.m[0].task, "cancelled_task");
    ck_assert_int_eq(f.m[0].line, f.c[1].line);
    ck_assert_int_eq(f.m[1].code, -PTRIO_EIO);
    ck_assert_str_eq(f.m[1].task, "failing_task");
}
END_TEST

/* Trio: test_cancelled.py::test_cancel_reason_nursery2: the failing task
 * waits until both run, then raises. */
START_TEST(test_cancel_reason_nursery2)
{
    static struct rs_main f;

    f = (struct rs_main){.variant = 2};
    ck_assert_int_eq(run_virtual(rs_main, &f, NULL), 0);
    ck_assert_int_eq(f.c[1].rc, -PTRIO_ECANCELED);
    want_failure(&f.c[1].seen.info, "failing_task", -PTRIO_EIO, f.c[0].line);
    ck_assert_int_eq(f.group.code, -PTRIO_EGROUP);
    ck_assert_int_eq(f.size, 2);
    ck_assert_int_eq(f.m[0].code, -PTRIO_EIO);
    ck_assert_str_eq(f.m[0].task, "failing_task");
    ck_assert_int_eq(f.m[1].code, -PTRIO_EINVAL);
    ck_assert_str_eq(f.m[1].task, "cancelled_task");
}
END_TEST

/* Trio: test_cancelled.py::test_cancel_reason_nursery3: the failing task
 * raises before started(), so the start fails in the body: the sibling
 * is cancelled because the body failed. Trio says "code block inside
 * nursery raised ValueError from task <parent>"; ptrio's record goes on
 * to where that error came from: the failing task, its code and site. */
START_TEST(test_cancel_reason_nursery3)
{
    static struct rs_main f;

    f = (struct rs_main){.variant = 3};
    ck_assert_int_eq(run_virtual(rs_main, &f, NULL), 0);
    ck_assert_int_eq(f.c[1].rc, -PTRIO_ECANCELED);
    want_failure(&f.c[1].seen.info, "failing_task", -PTRIO_EIO, f.c[0].line);
    /* the one failure is raised as itself */
    ck_assert_int_eq(f.group.code, -PTRIO_EIO);
    ck_assert_str_eq(f.group.task, "failing_task");
    ck_assert_int_eq(f.group.line, f.c[0].line);
}
END_TEST

/* The body raises after its child runs. */
struct nested_child { ptrio_frame fr; ptrio_event *ev; int rc; struct seen seen; };

static int nested_child(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct nested_child, f);
    ptrio_event_set(f->ev);
    PTRIO_TRY(f, f->rc, ptrio_sleep_forever(f));
    see(f, &f->seen);
    PTRIO_END(f);
}

struct nested_main {
    ptrio_frame fr;
    ptrio_event ev;
    ptrio_nursery n;
    ptrio_task t;
    struct nested_child c;
    int line;
};

static int nested_main(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct nested_main, f);
    PTRIO_NURSERY(f, &f->n) {
        f->c.ev = &f->ev;
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, nested_child, &f->c));
        PTRIO_AWAIT(f, ptrio_event_wait(f, &f->ev));
        f->line = __LINE__; PTRIO_RAISE(f, -PTRIO_EIO, "value error");
    }
    PTRIO_END(f);
}

/* Trio: test_cancelled.py::test_nested_child_source: the child is
 * cancelled because the body (the task that owns the nursery) failed. */
START_TEST(test_nested_child_source)
{
    static struct nested_main f;

    f = (struct nested_main){0};
    ck_assert_int_eq(run_virtual(nested_main, &f, NULL), -PTRIO_EIO);
    ck_assert_int_eq(f.c.rc, -PTRIO_ECANCELED);
    want_failure(&f.c.seen.info, "nested_main", -PTRIO_EIO, f.line);
}
END_TEST

/* A sibling's ETIMEDOUT from FAIL_AFTER cancels the other child; the
 * dump, taken in that child's cleanup, shows the reason on the nursery
 * and on the task: "cancelled because task 'b' failed with ETIMEDOUT at
 * <the FAIL_AFTER block's line>". */
struct too_slow { ptrio_frame fr; ptrio_scope sc; int line; };

static int too_slow(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct too_slow, f);
    f->line = __LINE__; PTRIO_FAIL_AFTER(f, &f->sc, PTRIO_MS(20)) {
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));
    }
    PTRIO_END(f);
}

static treport dump_rep;

static void dump_sink(void *ctx, const char *line)
{
    treport_sink(ctx, line);
}

/* ---- the dump names scopes and the run's nursery ---------------------- */

struct dscope_kid { ptrio_frame fr; ptrio_scope a, b; };

static int dscope_kid(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct dscope_kid, f);
    PTRIO_MOVE_ON_AFTER(f, &f->a, PTRIO_SEC(30)) {
        PTRIO_SHIELD(f, &f->b) {
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(2)));
        }
    }
    PTRIO_END(f);
}

struct dscope_main {
    ptrio_frame fr;
    ptrio_scope sc;
    ptrio_nursery n;
    ptrio_task t;
    struct dscope_kid kid;
    int tasks;
};

static int dscope_main(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct dscope_main, f);
    PTRIO_MOVE_ON_AFTER(f, &f->sc, PTRIO_SEC(10)) {
        PTRIO_NURSERY(f, &f->n) {
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, dscope_kid,
                                            &f->kid));
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
            memset(&dump_rep, 0, sizeof dump_rep);
            f->tasks = ptrio_dump(dump_sink, &dump_rep);
        }
    }
    PTRIO_END(f);
}

/* Each scope line names the function whose block opened it (nested
 * scopes of one task are told apart by their deadlines and shields, and
 * scopes of different frames by name); the run's own nursery is named so,
 * not by a file:line it does not have. */
START_TEST(test_dump_names_scopes)
{
    static struct dscope_main f;

    f = (struct dscope_main){0};
    ck_assert_int_eq(run_virtual(dscope_main, &f, NULL), 0);
    ck_assert_int_eq(f.tasks, 2);
    ck_assert_int_eq(dump_rep.count, 7);
    ck_assert_ptr_eq(strstr(dump_rep.lines.buf,
                            "ptrio: the run's nursery, 1 live | "),
                     dump_rep.lines.buf);
    ck_assert_ptr_nonnull(strstr(dump_rep.lines.buf,
                                 " | ptrio:     scope in dscope_main(), "
                                 "deadline 10.000s | ptrio:       nursery "
                                 "at "));
    ck_assert_ptr_nonnull(strstr(dump_rep.lines.buf,
                                 " | ptrio:           scope in "
                                 "dscope_kid(), deadline 30.000s | "
                                 "ptrio:             scope in "
                                 "dscope_kid(), shielded |"));
}
END_TEST

struct dumps_cleanup { ptrio_frame fr; struct seen seen; };

static int dumps_cleanup(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct dumps_cleanup, f);
    PTRIO_AWAIT(f, ptrio_sleep_forever(f));
    PTRIO_FINALLY(f);
    see(f, &f->seen);
    memset(&dump_rep, 0, sizeof dump_rep);
    (void)ptrio_dump(dump_sink, &dump_rep);
    PTRIO_END(f);
}

struct timeout_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct dumps_cleanup a;
    struct too_slow b;
};

static int timeout_main(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct timeout_main, f);
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[0], dumps_cleanup,
                                              &f->a, "a"));
        PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[1], too_slow,
                                              &f->b, "b"));
    }
    PTRIO_END(f);
}

START_TEST(test_cancel_reason_sibling_timeout_in_dump)
{
    static struct timeout_main f;
    char want[256];
    treport rep;

    f = (struct timeout_main){0};
    ck_assert_int_eq(run_virtual(timeout_main, &f, &rep), -PTRIO_ETIMEDOUT);
    want_failure(&f.a.seen.info, "b", -PTRIO_ETIMEDOUT, f.b.line);
    ck_assert_ptr_eq(f.a.seen.info.scope, &f.n.scope);
    strcpy(want, "cancelled because task 'b' failed with ETIMEDOUT at ");
    cat_site(want, f.b.line);
    /* on the nursery, its owner (joining inside it) and the task */
    ck_assert_int_eq(count_of(dump_rep.lines.buf, want), 3);
    ck_assert_int_eq(dump_rep.count, 4);
    ck_assert_ptr_nonnull(strstr(dump_rep.lines.buf, "task 'a' running"));
    ck_assert_int_eq(rep.count, 1);
    ck_assert_ptr_nonnull(strstr(rep.lines.buf,
                                 PTRIO_CONF_ERROR_TEXT
                                     ? "task 'b' failed: ETIMEDOUT (timed out)"
                                     : "task 'b' failed: ETIMEDOUT at "));
}
END_TEST

/* A backend whose wait fails: the run's cancellation carries its code. */
static int failing_wait(ptrio_loop *l, ptrio_time deadline)
{
    (void)l;
    (void)deadline;
    return -PTRIO_EIO;
}

static const ptrio_backend failing_backend = {
    "failing", NULL, NULL, tick_now, failing_wait, NULL, NULL, tick_wake
};

struct run_cancelled { ptrio_frame fr; struct seen seen; };

static int run_cancelled(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct run_cancelled, f);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));
    PTRIO_FINALLY(f);
    see(f, &f->seen);
    PTRIO_END(f);
}

/* Kind RUN: the backend failed (its code), or every task waits forever
 * (-PTRIO_EDEADLK, test_deadlock_two_events). */
START_TEST(test_cancel_reason_backend_failure)
{
    static struct run_cancelled f;
    treport rep;

    tick_reset();
    f = (struct run_cancelled){0};
    ck_assert_int_eq(run_clocked(&failing_backend, NULL, run_cancelled, &f,
                                 &rep), -PTRIO_EIO);
    ck_assert_int_eq(f.seen.rc, 0);
    ck_assert_int_eq(f.seen.info.kind, PTRIO_CANCEL_RUN);
    ck_assert_int_eq(f.seen.info.failure.code, -PTRIO_EIO);
    ck_assert_str_eq(f.seen.text, "cancelled because the backend failed "
                                  "with EIO");
    ck_assert_str_eq(rep.lines.buf, "ptrio: the backend failed; every task "
                                    "was cancelled |");
}
END_TEST

/* ptrio_cancel_text writes at most n bytes, always terminated. */
START_TEST(test_cancel_text_bounds)
{
    ptrio_cancel_info info;
    char buf[16];

    memset(&info, 0, sizeof info);
    info.kind = PTRIO_CANCEL_EXPLICIT;
    info.reason = "a reason much longer than the buffer";
    memset(buf, 'x', sizeof buf);
    ck_assert_int_eq(ptrio_cancel_text(&info, buf, 10), 9);
    ck_assert_str_eq(buf, "cancelled");
    ck_assert_int_eq(buf[10], 'x');
    ck_assert_int_eq(ptrio_cancel_text(&info, buf, 1), 0);
    ck_assert_str_eq(buf, "");
    ck_assert_int_eq(ptrio_cancel_text(&info, NULL, 10), 0);
    ck_assert_int_eq(ptrio_cancel_text(NULL, buf, 16), 0);
    ck_assert_str_eq(buf, "");
    info.kind = PTRIO_CANCEL_TASK;
    ck_assert_int_eq(ptrio_cancel_text(&info, buf, 16), 15);
    ck_assert_str_eq(buf, "cancelled by pt");
}
END_TEST

/* ================================================================== */
/* ---- the task tree ------------------------------------------------- */

/* One node as the walk saw it. */
struct seen_node {
    int depth;
    const ptrio_task *task;
    const ptrio_scope *scope;
    const char *name;       /* the main task lives in its loop: read now */
};

#define TREE_MAX 64
static struct seen_node walked[TREE_MAX];
static int nwalked;

static void walk_tree(void)
{
    ptrio_tree_node n;

    nwalked = 0;
    ck_assert_int_eq(ptrio_tree_first(&n), 0);
    do {
        ck_assert_int_lt(nwalked, TREE_MAX);
        walked[nwalked].depth = n.depth;
        walked[nwalked].task = n.task;
        walked[nwalked].scope = n.scope;
        walked[nwalked].name = n.task ? ptrio_task_name(n.task) : NULL;
        nwalked++;
    } while (ptrio_tree_next(&n));
}

/* Parks in a lot of its own until cancelled. */
struct lot_parker { ptrio_frame fr; ptrio_lot *lot; int line; };

static int lot_parker(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct lot_parker, f);
    f->line = __LINE__; PTRIO_AWAIT(f, ptrio_park(f, f->lot, NULL));
    PTRIO_END(f);
}

/* c1: a nursery of two (one parked in a lot, one asleep). */
struct tree_c1 {
    ptrio_frame fr;
    ptrio_lot *lot;
    ptrio_nursery n;
    ptrio_task t[2];
    struct lot_parker g1;
    struct sleeps g2;
    int nline;
};

static int tree_c1(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct tree_c1, f);
    f->nline = __LINE__; PTRIO_NURSERY(f, &f->n) {
        f->g1.lot = f->lot;
        f->g2.d = PTRIO_SEC(5);
        PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[0], lot_parker,
                                              &f->g1, "g1"));
        PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[1], sleeps,
                                              &f->g2, "g2"));
    }
    PTRIO_END(f);
}

/* c2: asleep two calls deep. */
struct inner_call { ptrio_frame fr; int line; };

static int inner_call(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct inner_call, f);
    f->line = __LINE__; PTRIO_AWAIT(f, ptrio_sleep_forever(f));
    PTRIO_END(f);
}

struct outer_call { ptrio_frame fr; struct inner_call in; int line; };

static int outer_call(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct outer_call, f);
    f->line = __LINE__; PTRIO_CALL(f, inner_call, &f->in);
    PTRIO_END(f);
}

struct tree_c2 { ptrio_frame fr; struct outer_call out; int line; };

static int tree_c2(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct tree_c2, f);
    f->line = __LINE__; PTRIO_CALL(f, outer_call, &f->out);
    PTRIO_END(f);
}

/* s1: started with ptrio_start; sleeps in a shield and a deadline before
 * calling started(). */
struct tree_s1 { ptrio_frame fr; ptrio_scope sh, dl; };

static int tree_s1(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct tree_s1, f);
    PTRIO_SHIELD(f, &f->sh) {
        PTRIO_MOVE_ON_AFTER(f, &f->dl, PTRIO_SEC(10)) {
            PTRIO_AWAIT(f, ptrio_sleep_forever(f));
        }
    }
    PTRIO_CHECK(f, ptrio_started(f, NULL));
    tlog_at(&L, "s1-started");
    PTRIO_END(f);
}

struct tree_main;

/* obs: waits until the others block, walks the tree, looks at it, then
 * cancels the outermost scope with a reason. */
struct tree_obs {
    ptrio_frame fr;
    struct tree_main *m;
    ptrio_task_info ti[8], after[3];
    ptrio_scope_info si[7], s1_after;
    ptrio_frame_info fi[4];
    int nframes, root_rc, line;
    char json[8][256];
    int njson;
};

struct tree_main {
    ptrio_frame fr;
    ptrio_scope s1;
    ptrio_nursery n;
    ptrio_lot lot;
    ptrio_task t[4];
    struct tree_c1 c1;
    struct tree_c2 c2;
    struct tree_obs obs;
    struct tree_s1 st;
    int nline, sline;
};

static void info_of(const ptrio_task *t, ptrio_task_info *out)
{
    ck_assert_int_eq(ptrio_task_info_get(t, out), 0);
}

/* The README's example: one JSON line per task, from the tree API. */
static int render_json(char *buf, size_t n, int depth, const ptrio_task *t)
{
    ptrio_task_info ti;
    ptrio_frame_info fi;
    const ptrio_frame *fr = NULL;
    int k;

    ptrio_task_info_get(t, &ti);
    k = snprintf(buf, n, "{\"depth\":%d,\"task\":\"%s\",\"state\":\"%s\"",
                 depth, ti.name, ti.state);
    if (ti.wakes_at != PTRIO_TIME_INF)
        k += snprintf(buf + k, n - (size_t)k, ",\"wakes_at_ms\":%lld",
                      (long long)(ti.wakes_at / PTRIO_MS(1)));
    k += snprintf(buf + k, n - (size_t)k, ",\"frames\":[");
    while ((fr = ptrio_task_frames(t, fr, &fi)))
        k += snprintf(buf + k, n - (size_t)k, "%s\"%s:%d\"",
                      buf[k - 1] == '[' ? "" : ",",
                      fi.func ? fi.func : "?", fi.line);
    k += snprintf(buf + k, n - (size_t)k, "]}");
    return k;
}

static int tree_obs(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct tree_obs, f);
    f->line = __LINE__; PTRIO_AWAIT(f, ptrio_wait_all_tasks_blocked(f, 0));
    walk_tree();
    {
        struct tree_main *m = f->m;
        const ptrio_frame *it = NULL;
        ptrio_tree_node n;

        info_of(&m->t[3], &f->ti[0]);         /* s1 */
        info_of(ptrio_current_task(), &f->ti[1]);
        info_of(&m->t[0], &f->ti[2]);         /* c1 */
        info_of(&m->c1.t[0], &f->ti[3]);      /* g1 */
        info_of(&m->c1.t[1], &f->ti[4]);      /* g2 */
        info_of(&m->t[1], &f->ti[5]);         /* c2 */
        info_of(walked[1].task, &f->ti[6]);   /* main */
        ptrio_scope_info_get(walked[0].scope, &f->si[0]);
        ptrio_scope_info_get(&m->s1, &f->si[1]);
        ptrio_scope_info_get(&m->n.scope, &f->si[2]);
        ptrio_scope_info_get(&m->st.sh, &f->si[3]);
        ptrio_scope_info_get(&m->st.dl, &f->si[4]);
        ptrio_scope_info_get(&m->c1.n.scope, &f->si[5]);
        f->nframes = 0;
        while (f->nframes < 4 &&
               (it = ptrio_task_frames(&m->t[1], it, &f->fi[f->nframes])))
            f->nframes++;
        f->root_rc = ptrio_tree_first(&n);
        f->njson = 0;
        do {
            if (n.task && f->njson < 8)
                render_json(f->json[f->njson++], sizeof f->json[0], n.depth,
                            n.task);
        } while (ptrio_tree_next(&n));
        /* cancel everything; the shield holds for s1 until its deadline */
        ptrio_cancel_reason(&m->s1, "enough");
        info_of(&m->t[1], &f->after[0]);      /* c2: woken, cancelled */
        info_of(&m->t[3], &f->after[1]);      /* s1: shielded */
        info_of(ptrio_current_task(), &f->after[2]);
        ptrio_scope_info_get(&m->s1, &f->s1_after);
    }
    PTRIO_END(f);
}

/* The start, as one awaitable: the await on one line, whose number
 * every compiler gives alike (a macro spanning lines may not). */
static int start_s1(struct tree_main *f)
{
    return ptrio_start_named(f, &f->n, &f->t[3], tree_s1, &f->st, NULL,
                             "s1");
}

static int tree_main(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct tree_main, f);
    PTRIO_CANCEL_SCOPE(f, &f->s1) {
        f->nline = __LINE__; PTRIO_NURSERY(f, &f->n) {
            f->c1.lot = &f->lot;
            f->obs.m = f;
            PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[0], tree_c1,
                                                  &f->c1, "c1"));
            PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[1], tree_c2,
                                                  &f->c2, "c2"));
            PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[2], tree_obs,
                                                  &f->obs, "obs"));
            f->sline = __LINE__; PTRIO_AWAIT(f, start_s1(f));
        }
    }
    tlog_at(&L, "end");
    PTRIO_END(f);
}

/* The tree in pre-order: the run's nursery holds main; main its scope,
 * which holds its nursery; the nursery holds the child main is starting
 * first (with its scopes), then its children in order; c1's nursery its
 * two. The infos: states, wake times, the lot, being_started, frames
 * innermost first with file, function and line, nursery sites and live
 * counts (a pending start counts), deadlines, shields, cancel state. */
START_TEST(test_tree_nested)
{
    static struct tree_main f;
    struct tree_obs *o = &f.obs;
    static const struct { int depth; int what; } want[] = {
        {0, 'N'}, {1, 'm'}, {2, 'S'}, {3, 'N'}, {4, 's'}, {5, 'H'},
        {6, 'D'}, {4, '1'}, {5, 'N'}, {6, 'g'}, {6, 'G'}, {4, '2'},
        {4, 'o'},
    };
    int i;

    tlog_clear(&L);
    f = (struct tree_main){0};
    ck_assert_int_eq(run_virtual(tree_main, &f, NULL), 0);
    ck_assert_str_eq(L.buf, "s1-started@10000 end@10000");

    ck_assert_int_eq(nwalked, (int)(sizeof want / sizeof want[0]));
    for (i = 0; i < nwalked; i++) {
        const struct seen_node *w = &walked[i];
        ck_assert_int_eq(w->depth, want[i].depth);
        ck_assert((w->task == NULL) != (w->scope == NULL));
        switch (want[i].what) {
        case 'm': ck_assert_str_eq(w->name, "tree_main");
                  break;
        case 's': ck_assert_ptr_eq(w->task, &f.t[3]); break;
        case '1': ck_assert_ptr_eq(w->task, &f.t[0]); break;
        case '2': ck_assert_ptr_eq(w->task, &f.t[1]); break;
        case 'o': ck_assert_ptr_eq(w->task, &f.t[2]); break;
        case 'g': ck_assert_ptr_eq(w->task, &f.c1.t[0]); break;
        case 'G': ck_assert_ptr_eq(w->task, &f.c1.t[1]); break;
        case 'S': ck_assert_ptr_eq(w->scope, &f.s1); break;
        case 'H': ck_assert_ptr_eq(w->scope, &f.st.sh); break;
        case 'D': ck_assert_ptr_eq(w->scope, &f.st.dl); break;
        default:
            ck_assert_ptr_nonnull(w->scope);
            if (i == 3)
                ck_assert_ptr_eq(w->scope, &f.n.scope);
            else if (i == 8)
                ck_assert_ptr_eq(w->scope, &f.c1.n.scope);
        }
    }

    /* s1 */
    ck_assert_str_eq(o->ti[0].name, "s1");
    ck_assert_str_eq(o->ti[0].state, "sleeping forever");
    ck_assert(o->ti[0].being_started);
    ck_assert_int_eq(o->ti[0].wakes_at, PTRIO_TIME_INF);
    ck_assert(!o->ti[0].cancelled);
    /* obs, c1, g1, g2, c2, main */
    ck_assert_str_eq(o->ti[1].state, "running");
    ck_assert(!o->ti[1].being_started);
    ck_assert_str_eq(o->ti[2].state, "joining a nursery");
    ck_assert_str_eq(o->ti[3].name, "g1");
    ck_assert_str_eq(o->ti[3].state, "parked in a lot");
    ck_assert_ptr_eq(o->ti[3].waits_on, &f.lot);
    ck_assert_str_eq(o->ti[4].state, "sleeping");
    ck_assert_int_eq(o->ti[4].wakes_at, PTRIO_SEC(5));
    ck_assert_ptr_null(o->ti[4].waits_on);
    ck_assert_str_eq(o->ti[5].state, "sleeping forever");
    ck_assert_str_eq(o->ti[6].state, "starting a task");
    for (i = 1; i < 7; i++)
        ck_assert(!o->ti[i].cancelled);

    /* the run's nursery, s1, the nurseries, the shield, the deadline */
    ck_assert_ptr_nonnull(o->si[0].nursery);
    ck_assert_ptr_null(o->si[0].file);
    ck_assert_int_eq(o->si[0].live, 1);
    ck_assert_ptr_null(o->si[1].nursery);
    ck_assert_int_eq(o->si[1].deadline, PTRIO_TIME_INF);
    ck_assert(!o->si[1].shield && !o->si[1].cancel_called);
    ck_assert_ptr_eq(o->si[2].nursery, &f.n);
    ck_assert_str_eq(o->si[2].file, __FILE__);
    ck_assert_int_eq(o->si[2].line, f.nline);
    ck_assert_int_eq(o->si[2].live, 4);     /* 3 children, 1 starting */
    ck_assert(o->si[3].shield);
    ck_assert_int_eq(o->si[3].deadline, PTRIO_TIME_INF);
    ck_assert(!o->si[4].shield);
    ck_assert_int_eq(o->si[4].deadline, PTRIO_SEC(10));
    ck_assert_int_eq(o->si[5].line, f.c1.nline);
    ck_assert_int_eq(o->si[5].live, 2);

    /* c2's frames, innermost first */
    ck_assert_int_eq(o->nframes, 3);
    ck_assert_str_eq(o->fi[0].func, "inner_call");
    ck_assert_int_eq(o->fi[0].line, f.c2.out.in.line);
    ck_assert_str_eq(o->fi[1].func, "outer_call");
    ck_assert_int_eq(o->fi[1].line, f.c2.out.line);
    ck_assert_str_eq(o->fi[2].func, "tree_c2");
    ck_assert_int_eq(o->fi[2].line, f.c2.line);
    for (i = 0; i < 3; i++)
        ck_assert_str_eq(o->fi[i].file, __FILE__);

    /* after ptrio_cancel_reason(&s1, "enough") */
    ck_assert(o->after[0].cancelled);
    ck_assert_str_eq(o->after[0].state, "ready");
    ck_assert_int_eq(o->after[0].cancel.kind, PTRIO_CANCEL_EXPLICIT);
    ck_assert_str_eq(o->after[0].cancel.reason, "enough");
    ck_assert_ptr_eq(o->after[0].cancel.scope, &f.s1);
    ck_assert(!o->after[1].cancelled);      /* shielded */
    ck_assert(o->after[2].cancelled);
    ck_assert(o->s1_after.cancel_called);
    ck_assert_str_eq(o->s1_after.cancel.reason, "enough");

    /* the JSON lines */
    ck_assert_int_eq(o->root_rc, 0);
    ck_assert_int_eq(o->njson, 7);
    {
        char want_c2[256];
        snprintf(want_c2, sizeof want_c2,
                 "{\"depth\":4,\"task\":\"c2\",\"state\":\"sleeping forever\","
                 "\"frames\":[\"inner_call:%d\",\"outer_call:%d\","
                 "\"tree_c2:%d\"]}", f.c2.out.in.line, f.c2.out.line,
                 f.c2.line);
        ck_assert_str_eq(o->json[5], want_c2);
        snprintf(want_c2, sizeof want_c2,
                 "{\"depth\":1,\"task\":\"tree_main\",\"state\":"
                 "\"starting a task\",\"frames\":[\"tree_main:%d\"]}",
                 f.sline);
        ck_assert_str_eq(o->json[0], want_c2);
        ck_assert_ptr_eq(strstr(o->json[4], "{\"depth\":6,\"task\":\"g2\","
                                "\"state\":\"sleeping\",\"wakes_at_ms\":"
                                "5000,\"frames\":[\"sleeps:"), o->json[4]);
    }
}
END_TEST

/* Outside a run there is no tree; the infos refuse NULL; a task that is
 * done has no frames. */
START_TEST(test_tree_outside_and_null)
{
    ptrio_tree_node n;
    ptrio_task t;
    ptrio_task_info ti;
    ptrio_scope_info si;
    ptrio_frame_info fi;

    memset(&t, 0, sizeof t);
    ck_assert_int_eq(ptrio_tree_first(&n), -PTRIO_ENOTASK);
    ck_assert_int_eq(ptrio_tree_first(NULL), -PTRIO_EINVAL);
    ck_assert_int_eq(ptrio_tree_next(NULL), 0);
    memset(&n, 0, sizeof n);
    ck_assert_int_eq(ptrio_tree_next(&n), 0);
    ck_assert_int_eq(ptrio_task_info_get(NULL, &ti), -PTRIO_EINVAL);
    ck_assert_int_eq(ptrio_task_info_get(&t, NULL), -PTRIO_EINVAL);
    ck_assert_int_eq(ptrio_scope_info_get(NULL, &si), -PTRIO_EINVAL);
    ck_assert_ptr_null(ptrio_task_frames(&t, NULL, &fi));
    ck_assert_ptr_null(ptrio_task_frames(NULL, NULL, &fi));
    ck_assert_int_eq(ptrio_task_info_get(&t, &ti), 0);
    ck_assert_str_eq(ti.state, "idle");
    ck_assert_str_eq(ti.name, "?");
}
END_TEST

/* A chain of DEEP tasks, each in the nursery of the one before: the walk
 * keeps no stack, the depths count down the chain, and the dump counts
 * every task. */
#define DEEP 300

struct deep {
    ptrio_frame fr;
    int k;
    ptrio_nursery n;
    ptrio_task t;
};

static struct deep deep_frames[DEEP];
static int deep_nodes, deep_max, deep_dumped, deep_lines;

static void count_line(void *ctx, const char *line)
{
    (void)line;
    ++*(int *)ctx;
}

static int deep(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct deep, f);
    if (f->k + 1 < DEEP) {
        PTRIO_NURSERY(f, &f->n) {
            deep_frames[f->k + 1].k = f->k + 1;
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, deep,
                                            &deep_frames[f->k + 1]));
        }
    } else {
        ptrio_tree_node n;
        PTRIO_AWAIT(f, ptrio_wait_all_tasks_blocked(f, 0));
        ck_assert_int_eq(ptrio_tree_first(&n), 0);
        deep_nodes = deep_max = 0;
        do {
            deep_nodes++;
            if (n.depth > deep_max)
                deep_max = n.depth;
        } while (ptrio_tree_next(&n));
        deep_lines = 0;
        deep_dumped = ptrio_dump(count_line, &deep_lines);
    }
    PTRIO_END(f);
}

START_TEST(test_tree_deep)
{
    memset(deep_frames, 0, sizeof deep_frames);
    ck_assert_int_eq(run_virtual(deep, &deep_frames[0], NULL), 0);
    /* the run's nursery, DEEP tasks, DEEP - 1 nurseries */
    ck_assert_int_eq(deep_nodes, 2 * DEEP);
    ck_assert_int_eq(deep_max, 2 * DEEP - 1);
    ck_assert_int_eq(deep_dumped, DEEP);
    ck_assert_int_eq(deep_lines, 2 * DEEP);
}
END_TEST

/* ================================================================== */
/* ---- cancelling one task ------------------------------------------- */

struct ticker { ptrio_frame fr; const char *name; ptrio_time d; int n, i; };

static int ticker(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct ticker, f);
    for (f->i = 0; f->i < f->n; f->i++) {
        PTRIO_AWAIT(f, ptrio_sleep(f, f->d));
        tlog_at(&L, f->name);
    }
    PTRIO_END(f);
}

/* The task cancelled: its cleanup runs, and a shield inside holds. */
struct victim { ptrio_frame fr; ptrio_scope sh; struct seen seen; int fin; };

static int victim(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct victim, f);
    PTRIO_AWAIT(f, ptrio_sleep_forever(f));
    tlog_add(&L, "unreached");
    PTRIO_FINALLY(f);
    f->fin = PTRIO_FINALLY_ERROR(f);
    see(f, &f->seen);
    tlog_at(&L, "b-fin");
    PTRIO_SHIELD(f, &f->sh) {
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(5)));
        tlog_at(&L, "b-shielded");
    }
    PTRIO_END(f);
}

struct canceller_of {
    ptrio_frame fr;
    ptrio_task *target;
    int rc[2];
};

static int canceller_of(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct canceller_of, f);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(3)));
    f->rc[0] = ptrio_task_cancel(f->target);
    f->rc[1] = ptrio_task_cancel(f->target);    /* again: no effect */
    tlog_at(&L, "c-cancels-b");
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(20)));
    tlog_at(&L, "c");
    PTRIO_END(f);
}

static int exit_status[8];
static const ptrio_task *exit_task[8];
static int nexits;

static void note_exit(void *ctx, const ptrio_task *t, int status)
{
    (void)ctx;
    if (nexits < 8) {
        exit_task[nexits] = t;
        exit_status[nexits++] = status;
    }
}

static const ptrio_hooks exit_hooks = {.task_exited = note_exit};

struct tc_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[3], never;
    struct ticker a;
    struct victim b;
    struct canceller_of c;
    int after[3];
};

static int tc_main(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct tc_main, f);
    PTRIO_NURSERY(f, &f->n) {
        f->a = (struct ticker){.name = "a", .d = PTRIO_MS(10), .n = 2};
        f->c.target = &f->t[1];
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], ticker, &f->a));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], victim, &f->b));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[2], canceller_of,
                                        &f->c));
    }
    tlog_at(&L, "joined");
    f->after[0] = ptrio_task_cancel(&f->t[1]);  /* done */
    f->after[1] = ptrio_task_cancel(&f->never); /* never started */
    f->after[2] = ptrio_task_cancel(NULL);
    PTRIO_END(f);
}

/* ptrio_task_cancel: the task's sleep ends at once with -ECANCELED, its
 * FINALLY runs (kind TASK, the task itself), a shield inside it holds;
 * the cancellation ends at the task (it exits with 0, no failure), its
 * siblings run on and the nursery raises nothing. Cancelling it again is
 * no-op; a task done or never started is -PTRIO_EINVAL, and outside a
 * run -PTRIO_ENOTASK. */
START_TEST(test_task_cancel)
{
    static struct tc_main f;
    static ptrio_loop loop;
    int i;

    tlog_clear(&L);
    nexits = 0;
    f = (struct tc_main){0};
    loop_setup(&loop, &ptrio_backend_virtual, NULL);
    ptrio_loop_set_hooks(&loop, &exit_hooks, NULL);
    ck_assert_int_eq(ptrio_loop_run(&loop, tc_main, &f), 0);
    ck_assert_str_eq(L.buf, "c-cancels-b@3 b-fin@3 b-shielded@8 a@10 a@20 "
                            "c@23 joined@23");
    ck_assert_int_eq(f.c.rc[0], 0);
    ck_assert_int_eq(f.c.rc[1], 0);
    ck_assert_int_eq(f.b.fin, -PTRIO_ECANCELED);
    ck_assert_int_eq(f.b.seen.rc, 0);
    ck_assert_int_eq(f.b.seen.info.kind, PTRIO_CANCEL_TASK);
    ck_assert_ptr_eq(f.b.seen.info.task, &f.t[1]);
    ck_assert_ptr_null(f.b.seen.info.scope);
    ck_assert_str_eq(f.b.seen.text, "cancelled by ptrio_task_cancel");
    ck_assert(!ptrio_cancel_called(&f.n.scope));
    for (i = 0; i < nexits; i++)
        if (exit_task[i] == &f.t[1])
            ck_assert_int_eq(exit_status[i], 0);
    ck_assert_int_eq(nexits, 4);
    ck_assert_int_eq(f.after[0], -PTRIO_EINVAL);
    ck_assert_int_eq(f.after[1], -PTRIO_EINVAL);
    ck_assert_int_eq(f.after[2], -PTRIO_EINVAL);
    ck_assert_int_eq(ptrio_task_cancel(&f.t[0]), -PTRIO_ENOTASK);
}
END_TEST

/* A cancelled task's own nursery: its children are cancelled too (their
 * source is the task), the inner nursery does not catch that, the task
 * exits with 0. A busy task queued by a checkpoint is cancelled at its
 * next one. A shield inside the task holds, the next checkpoint after it
 * fails. */
struct busy { ptrio_frame fr; int i, rc; };

static int busy(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct busy, f);
    for (f->i = 0; f->i < 1000; f->i++) {
        PTRIO_TRY(f, f->rc, ptrio_checkpoint(f));
        if (f->rc < 0)
            break;
    }
    logn_at(&L, "busy-stopped-at", f->i);
    PTRIO_RETURN(f, 7);
    PTRIO_END(f);
}

struct grandchild { ptrio_frame fr; struct seen seen; };

static int grandchild(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct grandchild, f);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));
    PTRIO_FINALLY(f);
    see(f, &f->seen);
    tlog_at(&L, "grandchild-fin");
    PTRIO_END(f);
}

struct parent_of {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct grandchild g;
};

static int parent_of(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct parent_of, f);
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, grandchild, &f->g));
    }
    tlog_add(&L, "unreached");
    PTRIO_END(f);
}

struct shielded_victim { ptrio_frame fr; ptrio_scope sh; int rc; };

static int shielded_victim(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct shielded_victim, f);
    PTRIO_SHIELD(f, &f->sh) {
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(5)));
        tlog_at(&L, "shield-held");
    }
    PTRIO_TRY(f, f->rc, ptrio_sleep(f, PTRIO_MS(10)));
    logn_at(&L, "after-shield", f->rc);
    PTRIO_END(f);
}

struct tc2_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[4];
    struct busy b;
    struct parent_of p;
    struct shielded_victim s;
    struct ticker k;
    int rc[3];
};

static int tc2_main(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct tc2_main, f);
    PTRIO_NURSERY(f, &f->n) {
        f->k = (struct ticker){.name = "k", .d = PTRIO_MS(4), .n = 3};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], busy, &f->b));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], parent_of, &f->p));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[2], shielded_victim,
                                        &f->s));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[3], ticker, &f->k));
        PTRIO_CHECKPOINT(f);
        PTRIO_CHECKPOINT(f);
        f->rc[0] = ptrio_task_cancel(&f->t[0]);
        f->rc[1] = ptrio_task_cancel(&f->t[1]);
        f->rc[2] = ptrio_task_cancel(&f->t[2]);
    }
    tlog_at(&L, "joined");
    PTRIO_END(f);
}

START_TEST(test_task_cancel_subtree_busy_shield)
{
    static struct tc2_main f;
    static ptrio_loop loop;
    int i;

    tlog_clear(&L);
    nexits = 0;
    f = (struct tc2_main){0};
    loop_setup(&loop, &ptrio_backend_virtual, NULL);
    ptrio_loop_set_hooks(&loop, &exit_hooks, NULL);
    ck_assert_int_eq(ptrio_loop_run(&loop, tc2_main, &f), 0);
    ck_assert_int_eq(f.rc[0] | f.rc[1] | f.rc[2], 0);
    ck_assert_str_eq(L.buf, "busy-stopped-at1@0 grandchild-fin@0 k@4 "
                            "shield-held@5 after-shield-9007@5 k@8 k@12 "
                            "joined@12");
    ck_assert_int_eq(f.p.g.seen.info.kind, PTRIO_CANCEL_TASK);
    ck_assert_ptr_eq(f.p.g.seen.info.task, &f.t[1]);
    for (i = 0; i < nexits; i++) {
        if (exit_task[i] == &f.t[0])
            ck_assert_int_eq(exit_status[i], 7);
        else if (exit_task[i] == &f.p.t)
            ck_assert_int_eq(exit_status[i], -PTRIO_ECANCELED);
        else
            ck_assert_int_eq(exit_status[i], 0);
    }
    ck_assert_int_eq(nexits, 6);
}
END_TEST

/* A cancelled task whose cleanup fails: that failure is the nursery's
 * (its siblings are cancelled, the nursery raises it). */
struct fails_in_cleanup { ptrio_frame fr; int line; };

static int fails_in_cleanup(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct fails_in_cleanup, f);
    PTRIO_AWAIT(f, ptrio_sleep_forever(f));
    PTRIO_FINALLY(f);
    f->line = __LINE__; PTRIO_RAISE(f, -PTRIO_EIO, "cleanup failed");
    PTRIO_END(f);
}

struct tc3_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct fails_in_cleanup x;
    struct sleeper y;
};

static int tc3_main(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct tc3_main, f);
    PTRIO_NURSERY(f, &f->n) {
        f->y = (struct sleeper){.name = "y", .d = PTRIO_SEC(1)};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], fails_in_cleanup,
                                        &f->x));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], sleeper, &f->y));
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(2)));
        PTRIO_CHECK(f, ptrio_task_cancel(&f->t[0]));
    }
    tlog_add(&L, "unreached");
    PTRIO_END(f);
}

START_TEST(test_task_cancel_cleanup_fails)
{
    static struct tc3_main f;
    treport rep;

    tlog_clear(&L);
    f = (struct tc3_main){0};
    ck_assert_int_eq(run_virtual(tc3_main, &f, &rep), -PTRIO_EIO);
    ck_assert_str_eq(L.buf, "y+@0 y!PTRIO_ECANCELED@2");
    ck_assert_ptr_nonnull(strstr(rep.lines.buf, "task 'fails_in_cleanup' "
                                 "failed: EIO (cleanup failed)"));
}
END_TEST

/* A child being started (ptrio_start, before started()) cancelled by
 * ptrio_task_cancel: it exits without calling started(), so the start
 * fails with -PTRIO_ENOSTART; the starter and the nursery are not
 * cancelled. */
struct slow_start { ptrio_frame fr; };

static int slow_start(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct slow_start, f);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));
    PTRIO_CHECK(f, ptrio_started(f, NULL));
    PTRIO_END(f);
}

struct cancels_starting { ptrio_frame fr; ptrio_task *t, *also; };

static int cancels_starting(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct cancels_starting, f);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
    PTRIO_CHECK(f, ptrio_task_cancel(f->t));
    if (f->also)
        PTRIO_CHECK(f, ptrio_task_cancel(f->also));
    PTRIO_END(f);
}

struct tc4_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct slow_start s;
    struct cancels_starting c;
    int rc;
};

static int tc4_main(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct tc4_main, f);
    PTRIO_NURSERY(f, &f->n) {
        f->c.t = &f->t[1];
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], cancels_starting,
                                        &f->c));
        PTRIO_TRY(f, f->rc, ptrio_start(f, &f->n, &f->t[1], slow_start,
                                        &f->s, NULL));
        logn_at(&L, "start", f->rc);
        PTRIO_CHECKPOINT(f);
    }
    tlog_at(&L, "joined");
    PTRIO_END(f);
}

START_TEST(test_task_cancel_while_starting)
{
    static struct tc4_main f;

    tlog_clear(&L);
    f = (struct tc4_main){0};
    ck_assert_int_eq(run_virtual(tc4_main, &f, NULL), 0);
    ck_assert_str_eq(L.buf, "start-9004@1 joined@1");
}
END_TEST

/* A task cancelled while it starts a child into a nursery it does not own
 * (it has no scope of its own open): the child, still running under the
 * starter, is cancelled with it. In Trio terms the starter's body runs
 * in a cancel scope that is cancelled: the child's sleep ends, it exits
 * without started(), the start fails with -ECANCELED and the cancellation
 * ends at the starter, which exits with 0; the nursery raises nothing.
 * With the child cancelled too, its own cancellation does not end at it
 * (the starter's is visible from it, as Trio's outer scope catches): it
 * exits with -ECANCELED and the start fails the same way. */
struct g_start { ptrio_frame fr; struct seen seen; };

static int g_start(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct g_start, f);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));
    PTRIO_CHECK(f, ptrio_started(f, NULL));
    PTRIO_FINALLY(f);
    see(f, &f->seen);
    tlog_at(&L, "g-fin");
    PTRIO_END(f);
}

struct starts_into {
    ptrio_frame fr;
    ptrio_nursery *n;
    ptrio_task t;
    struct g_start g;
    int rc;
};

static int starts_into(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct starts_into, f);
    PTRIO_TRY(f, f->rc, ptrio_start(f, f->n, &f->t, g_start, &f->g, NULL));
    logn_at(&L, "start", f->rc);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(5)));
    tlog_add(&L, "unreached");
    PTRIO_END(f);
}

struct tc5_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct starts_into s;
    struct cancels_starting c;
    int both;
};

static int tc5_main(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct tc5_main, f);
    PTRIO_NURSERY(f, &f->n) {
        f->s.n = &f->n;
        f->c.t = &f->t[0];
        if (f->both)
            f->c.also = &f->s.t;
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], starts_into, &f->s));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], cancels_starting,
                                        &f->c));
    }
    tlog_at(&L, "joined");
    PTRIO_END(f);
}

START_TEST(test_task_cancel_starter_without_scope)
{
    static struct tc5_main f;
    static ptrio_loop loop;
    int i;

    tlog_clear(&L);
    nexits = 0;
    f = (struct tc5_main){.both = _i};
    loop_setup(&loop, &ptrio_backend_virtual, NULL);
    ptrio_loop_set_hooks(&loop, &exit_hooks, NULL);
    ck_assert_int_eq(ptrio_loop_run(&loop, tc5_main, &f), 0);
    ck_assert_str_eq(L.buf, "g-fin@1 start-9007@1 joined@1");
    ck_assert_int_eq(f.s.g.seen.info.kind, PTRIO_CANCEL_TASK);
    ck_assert_ptr_eq(f.s.g.seen.info.task, _i ? &f.s.t : &f.t[0]);
    ck_assert(!ptrio_cancel_called(&f.n.scope));
    for (i = 0; i < nexits; i++) {
        if (exit_task[i] == &f.s.t)
            ck_assert_int_eq(exit_status[i], -PTRIO_ECANCELED);
        else
            ck_assert_int_eq(exit_status[i], 0);
    }
    ck_assert_int_eq(nexits, 4);
}
END_TEST

/* The main task cancelled by itself: its next checkpoint fails, the
 * cancellation ends at it, and the run returns what it returns. */
struct self_cancel { ptrio_frame fr; int rc; };

static int self_cancel(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct self_cancel, f);
    PTRIO_CHECK(f, ptrio_task_cancel(ptrio_current_task()));
    PTRIO_TRY(f, f->rc, ptrio_checkpoint(f));
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));
    tlog_add(&L, "unreached");
    PTRIO_END(f);
}

START_TEST(test_task_cancel_main_itself)
{
    static struct self_cancel f;
    treport rep;

    tlog_clear(&L);
    f = (struct self_cancel){0};
    ck_assert_int_eq(run_virtual(self_cancel, &f, &rep), 0);
    ck_assert_int_eq(f.rc, -PTRIO_ECANCELED);
    ck_assert_int_eq(rep.count, 0);
    ck_assert_str_eq(L.buf, "");
}
END_TEST

/* ================================================================== */
/* ---- instruments (Trio: test_instrumentation.py) ------------------ */

/* A recorder logs what it sees into its own log. */
struct recorder {
    tlog log;
    const ptrio_task *only;     /* when set: task events of this task only */
};

static void rec_task(struct recorder *r, const char *what, const ptrio_task *t)
{
    char b[64];

    if (r->only && t != r->only)
        return;
    strcpy(b, what);
    strcat(b, ":");
    strncat(b, ptrio_task_name(t), 20);
    tlog_add(&r->log, b);
}

static void r_spawned(void *c, const ptrio_task *t) { rec_task(c, "spawn", t); }
static void r_scheduled(void *c, const ptrio_task *t) { rec_task(c, "sched", t); }
static void r_before(void *c, const ptrio_task *t) { rec_task(c, "before", t); }
static void r_after(void *c, const ptrio_task *t) { rec_task(c, "after", t); }

static void r_exited(void *c, const ptrio_task *t, int status)
{
    struct recorder *r = c;
    char b[48];

    if (r->only && t != r->only)
        return;
    rec_task(r, "exit", t);
    fmt(b, "=", status);
    tlog_add(&r->log, b);
}

static void r_before_run(void *c) { tlog_add(&((struct recorder *)c)->log, "before_run"); }
static void r_after_run(void *c) { tlog_add(&((struct recorder *)c)->log, "after_run"); }

static void r_before_wait(void *c, ptrio_time deadline)
{
    struct recorder *r = c;
    if (!r->only)
        logn(&r->log, "io_wait:", (long)(deadline / PTRIO_MS(1)));
}

static void r_after_wait(void *c)
{
    struct recorder *r = c;
    if (!r->only)
        tlog_add(&r->log, "io_done");
}

static const ptrio_hooks recorder_hooks = {
    .task_spawned = r_spawned,
    .before_task_step = r_before,
    .task_exited = r_exited,
    .before_io_wait = r_before_wait,
    .after_io_wait = r_after_wait,
    .before_run = r_before_run,
    .after_run = r_after_run,
    .task_scheduled = r_scheduled,
    .after_task_step = r_after,
};

static struct recorder r1, r2, r3;
static ptrio_instrument i1, i2, i3;
static ptrio_loop instr_loop;

struct instr_task { ptrio_frame fr; int i, rc[4]; };

static int task_fn(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct instr_task, f);
    for (f->i = 0; f->i < 4; f->i++)
        PTRIO_CHECKPOINT(f);
    /* replace r2 by r3 as we go */
    ptrio_loop_remove_instrument(&instr_loop, &i2);
    ptrio_loop_remove_instrument(&instr_loop, &i2);     /* no effect */
    f->rc[0] = ptrio_loop_add_instrument(&instr_loop, &i3, &recorder_hooks,
                                         &r3);
    f->rc[1] = ptrio_loop_add_instrument(&instr_loop, &i3, &recorder_hooks,
                                         &r3);
    PTRIO_CHECKPOINT(f);
    PTRIO_END(f);
}

struct instr_main { ptrio_frame fr; ptrio_nursery n; ptrio_task t; struct instr_task k; };

static int instr_main(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct instr_main, f);
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t, task_fn, &f->k,
                                              "task"));
    }
    PTRIO_END(f);
}

/* Trio: test_instrumentation.py::test_instruments. Two instruments from
 * the start, one replaced by a third during the run: the first saw what
 * the other two saw between them, in order; a checkpoint schedules the
 * task before its step ends. Adding one twice is -PTRIO_EBUSY (Trio's
 * add is idempotent), removing one that is not there does nothing. */
START_TEST(test_instruments)
{
    static struct instr_main f;
    static char both[TLOG_MAX * 2];
    static struct recorder filtered;
    char *p, *e;

    memset(&r1, 0, sizeof r1);
    memset(&r2, 0, sizeof r2);
    memset(&r3, 0, sizeof r3);
    memset(&i3, 0, sizeof i3);
    f = (struct instr_main){0};
    loop_setup(&instr_loop, &ptrio_backend_virtual, NULL);
    ck_assert_int_eq(ptrio_loop_add_instrument(&instr_loop, &i1,
                                               &recorder_hooks, &r1), 0);
    ck_assert_int_eq(ptrio_loop_add_instrument(&instr_loop, &i2,
                                               &recorder_hooks, &r2), 0);
    ck_assert_int_eq(ptrio_loop_run(&instr_loop, instr_main, &f), 0);
    ck_assert_int_eq(f.k.rc[0], 0);
    ck_assert_int_eq(f.k.rc[1], -PTRIO_EBUSY);

    strcpy(both, r2.log.buf);
    strcat(both, " ");
    strcat(both, r3.log.buf);
    ck_assert_str_eq(r1.log.buf, both);
    ck_assert_int_eq(count_of(r1.log.buf, "before_run"), 1);
    ck_assert_ptr_eq(strstr(r1.log.buf, "before_run"), r1.log.buf);
    ck_assert_str_eq(r1.log.buf + r1.log.len - strlen("after_run"),
                     "after_run");

    /* the task's own events, as Trio's filter_tasks keeps them */
    tlog_clear(&filtered.log);
    for (p = r1.log.buf; *p; p = *e ? e + 1 : e) {
        char word[64];
        size_t n;
        e = strchr(p, ' ');
        if (!e)
            e = p + strlen(p);
        n = (size_t)(e - p) < sizeof word - 1 ? (size_t)(e - p)
                                                : sizeof word - 1;
        memcpy(word, p, n);
        word[n] = '\0';
        if (!strcmp(word, "before_run") || !strcmp(word, "after_run") ||
            !strcmp(word, "sched:task") || !strcmp(word, "before:task") ||
            !strcmp(word, "after:task"))
            tlog_add(&filtered.log, word);
    }
    ck_assert_str_eq(filtered.log.buf,
        "before_run sched:task "
        "before:task sched:task after:task before:task sched:task after:task "
        "before:task sched:task after:task before:task sched:task after:task "
        "before:task sched:task after:task "
        "before:task after:task after_run");
    ptrio_loop_remove_instrument(&instr_loop, &i1);
    ptrio_loop_remove_instrument(&instr_loop, &i3);
}
END_TEST

/* Every hook, in order, for a small program: a child that sleeps 1 ms
 * and waits for an event its parent sets. spawned comes before the first
 * scheduled; a wake (a deadline, an event set) schedules the task; each
 * step is bracketed by before/after; the backend's wait by io_wait
 * (with its deadline) and io_done; a child's exit comes before its
 * parent is scheduled; the loop's own instrument (ptrio_loop_set_hooks)
 * runs before the added ones. */
struct ev_child { ptrio_frame fr; ptrio_event *e; };

static int ev_child(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct ev_child, f);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
    PTRIO_AWAIT(f, ptrio_event_wait(f, f->e));
    PTRIO_END(f);
}

struct order_main {
    ptrio_frame fr;
    ptrio_event e;
    ptrio_nursery n;
    ptrio_task t;
    struct ev_child c;
};

static int order_main(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct order_main, f);
    PTRIO_NURSERY(f, &f->n) {
        f->c.e = &f->e;
        PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t, ev_child, &f->c,
                                              "kid"));
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(2)));
        ptrio_event_set(&f->e);
    }
    PTRIO_END(f);
}

static void own_before_run(void *c) { tlog_add(c, "own:before_run"); }
static void own_after_run(void *c) { tlog_add(c, "own:after_run"); }

START_TEST(test_instruments_every_hook)
{
    static const ptrio_hooks own = {.before_run = own_before_run,
                                    .after_run = own_after_run};
    static struct order_main f;
    static tlog shared;
    static ptrio_instrument a, b;
    static struct recorder ra, rb;

    memset(&ra, 0, sizeof ra);
    memset(&rb, 0, sizeof rb);
    tlog_clear(&shared);
    f = (struct order_main){0};
    loop_setup(&instr_loop, &ptrio_backend_virtual, NULL);
    ck_assert_int_eq(ptrio_loop_add_instrument(&instr_loop, NULL,
                                               &recorder_hooks, &ra),
                     -PTRIO_EINVAL);
    ck_assert_int_eq(ptrio_loop_add_instrument(&instr_loop, &a, NULL, &ra),
                     -PTRIO_EINVAL);
    ck_assert_int_eq(ptrio_loop_add_instrument(NULL, &a, &recorder_hooks,
                                               &ra), -PTRIO_EINVAL);
    ck_assert_int_eq(ptrio_loop_add_instrument(&instr_loop, &a,
                                               &recorder_hooks, &ra), 0);
    ck_assert_int_eq(ptrio_loop_add_instrument(&instr_loop, &b,
                                               &recorder_hooks, &rb), 0);
    ptrio_loop_set_hooks(&instr_loop, &own, &ra.log);
    ck_assert_int_eq(ptrio_loop_run(&instr_loop, order_main, &f), 0);
    ck_assert_str_eq(ra.log.buf,
        "own:before_run before_run spawn:order_main sched:order_main "
        "before:order_main spawn:kid sched:kid after:order_main "
        "before:kid after:kid "
        "io_wait:1 io_done sched:kid before:kid after:kid "
        "io_wait:2 io_done sched:order_main "
        "before:order_main sched:kid after:order_main "
        "before:kid exit:kid =0 sched:order_main after:kid "
        "before:order_main exit:order_main =0 after:order_main "
        "own:after_run after_run");
    ck_assert_str_eq(rb.log.buf, "before_run spawn:order_main sched:order_main "
        "before:order_main spawn:kid sched:kid after:order_main "
        "before:kid after:kid "
        "io_wait:1 io_done sched:kid before:kid after:kid "
        "io_wait:2 io_done sched:order_main "
        "before:order_main sched:kid after:order_main "
        "before:kid exit:kid =0 sched:order_main after:kid "
        "before:order_main exit:order_main =0 after:order_main after_run");
    /* instruments outlive the run; removed, they see nothing more */
    ptrio_loop_set_hooks(&instr_loop, NULL, NULL);
    ptrio_loop_remove_instrument(&instr_loop, &a);
    ptrio_loop_remove_instrument(&instr_loop, &b);
    tlog_clear(&ra.log);
    f = (struct order_main){0};
    ck_assert_int_eq(ptrio_loop_run(&instr_loop, order_main, &f), 0);
    ck_assert_str_eq(ra.log.buf, "");
}
END_TEST

/* Trio's TaskRecorder (test_instrumentation.py) asserts that the task a
 * before_task_step or after_task_step names is the current task, and
 * test_instrument_call_trio_context that task_exited runs in the task's
 * context: here too, also for a task's last step. */
static int ctx_seen, ctx_wrong;

static void ctx_check(void *c, const ptrio_task *t)
{
    (void)c;
    ctx_seen++;
    if (ptrio_current_task() != t)
        ctx_wrong++;
}

static void ctx_exited(void *c, const ptrio_task *t, int status)
{
    (void)status;
    ctx_check(c, t);
}

START_TEST(test_instruments_see_the_current_task)
{
    static const ptrio_hooks hooks = {.before_task_step = ctx_check,
                                      .after_task_step = ctx_check,
                                      .task_exited = ctx_exited};
    static struct order_main f;
    static ptrio_instrument a;

    ctx_seen = ctx_wrong = 0;
    f = (struct order_main){0};
    loop_setup(&instr_loop, &ptrio_backend_virtual, NULL);
    ck_assert_int_eq(ptrio_loop_add_instrument(&instr_loop, &a, &hooks,
                                               NULL), 0);
    ck_assert_int_eq(ptrio_loop_run(&instr_loop, order_main, &f), 0);
    /* order_main and kid: 3 steps each, and two exits */
    ck_assert_int_eq(ctx_seen, 2 * 3 + 2 * 3 + 2);
    ck_assert_int_eq(ctx_wrong, 0);
    ck_assert_ptr_null(ptrio_current_task());
    ptrio_loop_remove_instrument(&instr_loop, &a);
}
END_TEST

/* An instrument added by a task, with none installed before, sees that
 * task's step end at once, as in Trio (whose runner looks its
 * instruments up at each hook): the rest of the batch is reported. */
static ptrio_instrument adder_inst;
static struct recorder adder_rec;

struct adder { ptrio_frame fr; int rc; };

static int adder(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct adder, f);
    f->rc = ptrio_loop_add_instrument(&instr_loop, &adder_inst,
                                      &recorder_hooks, &adder_rec);
    PTRIO_CHECKPOINT(f);
    PTRIO_END(f);
}

struct sib { ptrio_frame fr; };

static int sibling(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct sib, f);
    PTRIO_CHECKPOINT(f);
    PTRIO_END(f);
}

struct adder_main { ptrio_frame fr; ptrio_nursery n; ptrio_task t[2]; struct adder a; struct sib k; };

static int adder_main(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct adder_main, f);
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[0], adder, &f->a,
                                              "adder"));
        PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[1], sibling,
                                              &f->k, "sib"));
    }
    PTRIO_END(f);
}

START_TEST(test_instrument_added_in_a_batch)
{
    static struct adder_main f;

    memset(&adder_rec, 0, sizeof adder_rec);
    f = (struct adder_main){0};
    loop_setup(&instr_loop, &ptrio_backend_virtual, NULL);
    ck_assert_int_eq(ptrio_loop_run(&instr_loop, adder_main, &f), 0);
    ck_assert_int_eq(f.a.rc, 0);
    ck_assert_str_eq(adder_rec.log.buf,
        "sched:adder after:adder before:sib sched:sib after:sib "
        "before:adder exit:adder =0 after:adder "
        "before:sib exit:sib =0 sched:adder_main after:sib "
        "before:adder_main exit:adder_main =0 after:adder_main after_run");
    ptrio_loop_remove_instrument(&instr_loop, &adder_inst);
}
END_TEST

/* An instrument is in one loop at a time: adding it to a second one is
 * -PTRIO_EBUSY, and the first loop keeps every instrument it had. Once
 * removed, it may be added again, and so it may once the loop it was in
 * is re-initialised (which forgets its instruments), to another loop
 * too. */
START_TEST(test_instrument_in_two_loops)
{
    static const ptrio_hooks hooks = {.before_task_step = ctx_check};
    static ptrio_loop other;
    static ptrio_instrument a, b;
    static struct order_main f;

    loop_setup(&instr_loop, &ptrio_backend_virtual, NULL);
    loop_setup(&other, &ptrio_backend_virtual, NULL);
    ck_assert_int_eq(ptrio_loop_add_instrument(&instr_loop, &a, &hooks,
                                               NULL), 0);
    ck_assert_int_eq(ptrio_loop_add_instrument(&instr_loop, &b, &hooks,
                                               NULL), 0);
    ck_assert_int_eq(ptrio_loop_add_instrument(&other, &a, &hooks, NULL),
                     -PTRIO_EBUSY);
    ptrio_loop_remove_instrument(&other, &a);       /* not there: nothing */
    ctx_seen = ctx_wrong = 0;
    f = (struct order_main){0};
    ck_assert_int_eq(ptrio_loop_run(&instr_loop, order_main, &f), 0);
    ck_assert_int_eq(ctx_seen, 2 * 6);              /* a and b, 6 steps */
    ptrio_loop_remove_instrument(&instr_loop, &a);
    ptrio_loop_remove_instrument(&instr_loop, &b);
    ck_assert_int_eq(instr_loop.ninstruments, 0);
    ck_assert_int_eq(ptrio_loop_add_instrument(&other, &a, &hooks, NULL), 0);
    ptrio_loop_remove_instrument(&other, &a);
    ck_assert_int_eq(other.ninstruments, 0);

    ck_assert_int_eq(ptrio_loop_add_instrument(&instr_loop, &a, &hooks,
                                               NULL), 0);
    loop_setup(&instr_loop, &ptrio_backend_virtual, NULL);
    ck_assert_int_eq(ptrio_loop_add_instrument(&other, &a, &hooks, NULL), 0);
    ck_assert_int_eq(other.ninstruments, 1);
    ck_assert_int_eq(ptrio_loop_add_instrument(&instr_loop, &a, &hooks,
                                               NULL), -PTRIO_EBUSY);
    ptrio_loop_remove_instrument(&other, &a);
    ck_assert_int_eq(other.ninstruments, 0);
}
END_TEST

/* An instrument that removes itself in a hook (a one-shot) does not
 * keep the next ones from that event: Trio calls every hook of the
 * event. And re-initialising a loop forgets its instruments: one that
 * was in it may be added again. */
static ptrio_instrument once_a, once_b;
static int once_seen[2];

static void once_step(void *c, const ptrio_task *t)
{
    int *seen = c;
    (void)t;
    (*seen)++;
    if (seen == &once_seen[0])
        ptrio_loop_remove_instrument(&instr_loop, &once_a);
}

START_TEST(test_instrument_removed_in_its_hook)
{
    static const ptrio_hooks hooks = {.before_task_step = once_step};
    static struct order_main f;

    memset(once_seen, 0, sizeof once_seen);
    loop_setup(&instr_loop, &ptrio_backend_virtual, NULL);
    ck_assert_int_eq(ptrio_loop_add_instrument(&instr_loop, &once_a, &hooks,
                                               &once_seen[0]), 0);
    ck_assert_int_eq(ptrio_loop_add_instrument(&instr_loop, &once_b, &hooks,
                                               &once_seen[1]), 0);
    f = (struct order_main){0};
    ck_assert_int_eq(ptrio_loop_run(&instr_loop, order_main, &f), 0);
    ck_assert_int_eq(once_seen[0], 1);
    ck_assert_int_eq(once_seen[1], 6);              /* every step */

    /* b is still in the loop; re-initialised, the loop has none */
    loop_setup(&instr_loop, &ptrio_backend_virtual, NULL);
    ck_assert_int_eq(ptrio_loop_add_instrument(&instr_loop, &once_b, &hooks,
                                               &once_seen[1]), 0);
    ck_assert_int_eq(ptrio_loop_add_instrument(&instr_loop, &once_b, &hooks,
                                               &once_seen[1]), -PTRIO_EBUSY);
    once_seen[1] = 0;
    f = (struct order_main){0};
    ck_assert_int_eq(ptrio_loop_run(&instr_loop, order_main, &f), 0);
    ck_assert_int_eq(once_seen[1], 6);
    ptrio_loop_remove_instrument(&instr_loop, &once_b);
    ck_assert_int_eq(instr_loop.ninstruments, 0);
}
END_TEST

/* ================================================================== */
/* ---- tracebacks, caught and pending failures ----------------------- */

struct raiser { ptrio_frame fr; int line; };

static int raiser(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct raiser, f);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
    f->line = __LINE__; PTRIO_RAISE(f, -PTRIO_EIO, "deep");
    PTRIO_END(f);
}

struct helper2 { ptrio_frame fr; struct raiser r; };

static int helper2(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct helper2, f);
    PTRIO_CALL(f, raiser, &f->r);
    PTRIO_END(f);
}

struct helper1 { ptrio_frame fr; struct helper2 h; };

static int helper1(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct helper1, f);
    PTRIO_CALL(f, helper2, &f->h);
    PTRIO_END(f);
}

/* The names of a failure's frames, outermost first, "a>b>c". */
static void frames_of(const ptrio_failure *fl, char *out)
{
    const void *cur = NULL;
    ptrio_frame_info fi;

    out[0] = '\0';
    while ((cur = ptrio_failure_frames(fl, cur, &fi))) {
        if (out[0])
            strcat(out, ">");
        strcat(out, fi.func ? fi.func : "?");
        ck_assert_int_eq(fi.line, 0);
        ck_assert_str_eq(fi.file, __FILE__);
    }
}

struct tb_main {
    ptrio_frame fr;
    ptrio_scope tb;
    struct helper1 h;
    ptrio_failure caught;
    int rc;
    char frames[128];
};

static int tb_main(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct tb_main, f);
    PTRIO_TRY_BLOCK(f, &f->tb) {
        PTRIO_CALL(f, helper1, &f->h);
    }
    f->rc = ptrio_scope_failure(&f->tb, &f->caught);
    frames_of(&f->caught, f->frames);
    /* and now uncaught: the run reports it */
    PTRIO_CALL(f, helper1, &f->h);
    PTRIO_END(f);
}

/* ptrio_scope_failure reads what a TRY_BLOCK caught (code, message, site,
 * task) and its traceback through PTRIO_CALL, three deep: the frames it
 * left, outermost first (the catching frame did not leave). Uncaught, the
 * report names every frame from the task's root: " in tb_main() >
 * helper1() > helper2() > raiser()". */
START_TEST(test_traceback_calls)
{
    static struct tb_main f;
    static char want[512];
    treport rep;

    f = (struct tb_main){0};
    ck_assert_int_eq(run_virtual(tb_main, &f, &rep), -PTRIO_EIO);
    ck_assert_int_eq(f.rc, 0);
    ck_assert_int_eq(f.caught.code, -PTRIO_EIO);
    ck_assert_str_eq(f.caught.msg, "deep");
    ck_assert_str_eq(f.caught.file, __FILE__);
    ck_assert_int_eq(f.caught.line, f.h.h.r.line);
    ck_assert_str_eq(f.caught.task, "tb_main");
    ck_assert_str_eq(f.frames, "helper1>helper2>raiser");
    strcpy(want, "ptrio: task 'tb_main' failed: EIO (deep) at ");
    cat_site(want, f.h.h.r.line);
    strcat(want, " in tb_main() > helper1() > helper2() > raiser() |");
    ck_assert_str_eq(rep.lines.buf, want);
}
END_TEST

/* Through a nursery into the parent: the report names the failing task
 * and its frames, then the nursery; the parent catching it reads the
 * same record. */
struct kid_fails { ptrio_frame fr; struct helper1 h; };

static int kid_fails(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct kid_fails, f);
    PTRIO_CALL(f, helper1, &f->h);
    PTRIO_END(f);
}

struct tbn_main {
    ptrio_frame fr;
    int catch_it;
    ptrio_scope tb;
    ptrio_nursery n;
    ptrio_task t;
    struct kid_fails k;
    ptrio_failure caught;
    char frames[128];
    int nline;
};

static int tbn_main(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct tbn_main, f);
    if (f->catch_it) {
        PTRIO_TRY_BLOCK(f, &f->tb) {
            f->nline = __LINE__; PTRIO_NURSERY(f, &f->n) {
                PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, kid_fails,
                                                &f->k));
            }
        }
        ck_assert_int_eq(ptrio_scope_failure(&f->tb, &f->caught), 0);
        frames_of(&f->caught, f->frames);
    } else {
        f->nline = __LINE__; PTRIO_NURSERY(f, &f->n) {
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, kid_fails, &f->k));
        }
    }
    PTRIO_END(f);
}

START_TEST(test_traceback_through_nursery)
{
    static struct tbn_main f;
    static char want[512];
    treport rep;

    f = (struct tbn_main){0};
    ck_assert_int_eq(run_virtual(tbn_main, &f, &rep), -PTRIO_EIO);
    strcpy(want, "ptrio: task 'kid_fails' failed: EIO (deep) at ");
    cat_site(want, f.k.h.h.r.line);
    strcat(want, " in kid_fails() > helper1() > helper2() > raiser() via "
                 "nursery at ");
    cat_site(want, f.nline);
    strcat(want, " |");
    ck_assert_str_eq(rep.lines.buf, want);

    f = (struct tbn_main){.catch_it = 1};
    ck_assert_int_eq(run_virtual(tbn_main, &f, &rep), 0);
    ck_assert_int_eq(rep.count, 0);
    ck_assert_int_eq(f.caught.code, -PTRIO_EIO);
    ck_assert_str_eq(f.caught.task, "kid_fails");
    ck_assert_ptr_eq(f.caught.via, &f.n);
    ck_assert_int_eq(f.caught.line, f.k.h.h.r.line);
    ck_assert_str_eq(f.frames, "kid_fails>helper1>helper2>raiser");
}
END_TEST

/* ptrio_failure_pending: in FINALLY, the record of the error being
 * cleaned up after, whatever the cleanup raises and catches meanwhile
 * (an error of its own caught by a TRY_BLOCK, a nursery); with its
 * traceback when it came out of calls. None: -PTRIO_EINVAL. From a
 * frame that is not the running one: -PTRIO_ENOTASK (misuse). */
struct pending_sub { ptrio_frame fr; int line; };

static int pending_sub(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct pending_sub, f);
    f->line = __LINE__; PTRIO_RAISE(f, -PTRIO_EPIPE, "pipe");
    PTRIO_END(f);
}

struct pending_main {
    ptrio_frame fr;
    int mode;
    struct pending_sub sub;
    ptrio_scope tb;
    ptrio_nursery n;
    ptrio_task t;
    struct marker m;
    int line, rc[4];
    ptrio_failure fl[2], own;
    char frames[2][128];
};

static int pending_main(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct pending_main, f);
    f->rc[0] = ptrio_failure_pending(f, &f->fl[0]);   /* in the body */
    if (f->mode == 1)
        PTRIO_CALL(f, pending_sub, &f->sub);
    if (f->mode == 2) {
        f->line = __LINE__; PTRIO_RAISE(f, -PTRIO_EPIPE, "own pipe");
    }
    PTRIO_FINALLY(f);
    PTRIO_TRY_BLOCK(f, &f->tb) {
        PTRIO_RAISE(f, -PTRIO_EIO, "cleanup's own");
    }
    ptrio_scope_failure(&f->tb, &f->own);
    PTRIO_NURSERY(f, &f->n) {
        f->m.name = "m";
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, marker, &f->m));
    }
    f->rc[1] = ptrio_failure_pending(f, &f->fl[1]);
    f->rc[2] = ptrio_failure_pending(f, NULL);
    frames_of(&f->fl[1], f->frames[1]);
    PTRIO_END(f);
}

START_TEST(test_failure_pending)
{
    static struct pending_main f;

    tlog_clear(&L);
    f = (struct pending_main){.mode = 1};
    ck_assert_int_eq(run_virtual(pending_main, &f, NULL), -PTRIO_EPIPE);
    ck_assert_int_eq(f.rc[0], -PTRIO_EINVAL);
    ck_assert_int_eq(f.rc[1], 0);
    ck_assert_int_eq(f.fl[1].code, -PTRIO_EPIPE);
    ck_assert_str_eq(f.fl[1].msg, "pipe");
    ck_assert_int_eq(f.fl[1].line, f.sub.line);
    ck_assert_str_eq(f.fl[1].task, "pending_main");
    ck_assert_str_eq(f.frames[1], "pending_sub");
    ck_assert_int_eq(f.own.code, -PTRIO_EIO);
    ck_assert_str_eq(f.own.msg, "cleanup's own");
    ck_assert_int_eq(f.rc[2], -PTRIO_EINVAL);
    ck_assert_str_eq(L.buf, "m@0");

    f = (struct pending_main){.mode = 2};
    ck_assert_int_eq(run_virtual(pending_main, &f, NULL), -PTRIO_EPIPE);
    ck_assert_int_eq(f.rc[1], 0);
    ck_assert_str_eq(f.fl[1].msg, "own pipe");
    ck_assert_int_eq(f.fl[1].line, f.line);
    ck_assert_str_eq(f.frames[1], "");      /* raised in this frame */

    f = (struct pending_main){.mode = 0};
    ck_assert_int_eq(run_virtual(pending_main, &f, NULL), 0);
    ck_assert_int_eq(f.rc[1], -PTRIO_EINVAL);
}
END_TEST

struct pending_other { ptrio_frame fr; struct sleeps sub; int rc; };

static int pending_other(ptrio_frame *fr)
{
    ptrio_failure fl;
    PTRIO_BEGIN_AS(struct pending_other, f);
    f->rc = ptrio_failure_pending(&f->sub, &fl);
    PTRIO_END(f);
}

START_TEST(test_failure_pending_misuse)
{
    static struct pending_other f;

    f = (struct pending_other){0};
    ck_assert_int_eq(run_virtual(pending_other, &f, NULL), 0);
    ck_assert_int_eq(f.rc, -PTRIO_ENOTASK);
}
END_TEST

/* ================================================================== */
/* ---- less boilerplate: PTRIO_BEGIN_AS, PTRIO_SEC(1.5) -------------- */

struct as_frame { ptrio_frame fr; int x; ptrio_frame_info fi; };

static int begin_as(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct as_frame, me);
    me->x = 1;
    PTRIO_AWAIT(me, ptrio_sleep(me, PTRIO_SEC(0.25)));
    me->x++;
    (void)ptrio_task_frames(ptrio_current_task(), NULL, &me->fi);
    PTRIO_RETURN(me, me->x + 40);
    PTRIO_END(me);
}

/* The one-line prologue declares the frame and opens the body; the frame
 * describes itself as its function. */
START_TEST(test_begin_as)
{
    static struct as_frame f;

    f = (struct as_frame){0};
    ck_assert_int_eq(ptrio_run_virtual(begin_as, &f), 42);
    ck_assert_str_eq(f.fi.func, "begin_as");
    ck_assert_str_eq(f.fi.file, __FILE__);
}
END_TEST

/* Durations from floating values: the product is taken before the
 * conversion, and the macros are constant expressions. */
static const ptrio_time one_and_a_half = PTRIO_SEC(1.5);

START_TEST(test_duration_macros)
{
    double d = 0.001;

    ck_assert_int_eq(one_and_a_half, INT64_C(1500000000));
    ck_assert_int_eq(PTRIO_SEC(1.5), INT64_C(1500000000));
    ck_assert_int_eq(PTRIO_MS(2.5), INT64_C(2500000));
    ck_assert_int_eq(PTRIO_US(1.5), INT64_C(1500));
    ck_assert_int_eq(PTRIO_NS(7), 7);
    ck_assert_int_eq(PTRIO_SEC(2), INT64_C(2000000000));
    ck_assert_int_eq(PTRIO_SEC(d), INT64_C(1000000));
    ck_assert_int_eq(PTRIO_SEC(3600 * 24 * 365), INT64_C(31536000000000000));
}
END_TEST

/* ptrio_run_virtual: a fresh virtual loop, no report sink; a deadlock
 * there is -PTRIO_EDEADLK, silently (no sink). */
struct forever_main { ptrio_frame fr; };

static int forever_main(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct forever_main, f);
    PTRIO_AWAIT(f, ptrio_sleep_forever(f));
    PTRIO_END(f);
}

START_TEST(test_run_virtual)
{
    static struct forever_main f;
    static struct sleeps s;

    f = (struct forever_main){0};
    ck_assert_int_eq(ptrio_run_virtual(forever_main, &f), -PTRIO_EDEADLK);
    s = (struct sleeps){.d = PTRIO_SEC(3600)};
    ck_assert_int_eq(ptrio_run_virtual(sleeps, &s), 0);
    ck_assert_ptr_null(ptrio_current_loop());
    ck_assert_int_eq(ptrio_run_virtual(NULL, &s), -PTRIO_EINVAL);
}
END_TEST

/* ================================================================== */

int main(void)
{
    Suite *s = suite_create("toolkit");
    TCase *tc = tcase_create("mock_clock");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_mock_clock);
    tcase_add_test(tc, test_mock_clock_outside_run);
    tcase_add_test(tc, test_mock_clock_far_times);
    tcase_add_test(tc, test_mock_clock_sleep_time_rounds_up);
    tcase_add_test(tc, test_mock_clock_autojump);
    tcase_add_test(tc, test_mock_clock_autojump_interference);
    tcase_add_test(tc, test_mock_clock_autojump_preset);
    tcase_add_test(tc, test_idle_cushion_yields_to_a_passed_deadline);
    tcase_add_test(tc, test_mock_clock_autojump_0_and_wait_all_tasks_blocked_0);
    tcase_add_test(tc,
        test_mock_clock_autojump_0_and_wait_all_tasks_blocked_nonzero);
    tcase_add_test(tc, test_autojump_defers_to_idle_waiter);
    tcase_add_test(tc, test_mock_clock_next_loop);
    tcase_add_test(tc, test_mock_clock_frozen_deadlock);
    tcase_add_test(tc, test_dump_times);
    tcase_add_test(tc, test_clock_without_jump_to);
    tcase_add_test(tc, test_mock_clock_below_zero_far_deadline);
    suite_add_tcase(s, tc);

    tc = tcase_create("wait_all_tasks_blocked");
    tcase_add_test(tc, test_wait_all_tasks_blocked);
    tcase_add_test(tc, test_wait_all_tasks_blocked_with_timeouts);
    tcase_add_test(tc, test_wait_all_tasks_blocked_with_cushion);
    suite_add_tcase(s, tc);

    tc = tcase_create("readme");
    tcase_add_test(tc, test_readme_gives_up_after_15_s);
    tcase_add_test(tc, test_readme_answer_on_second_try);
    suite_add_tcase(s, tc);

    tc = tcase_create("deadlock");
    tcase_add_test(tc, test_deadlock_two_events);
    tcase_add_test(tc, test_dump_names_scopes);
    tcase_add_test(tc, test_deadlock_two_locks);
    tcase_add_test(tc, test_deadlock_while_failing);
    tcase_add_test(tc, test_no_deadlock_idle_waiter);
    tcase_add_test(tc, test_no_deadlock_with_source);
    tcase_add_test(tc, test_virtual_source_deadlock_reported);
    tcase_add_test(tc, test_source_polled_before_wait);
    suite_add_tcase(s, tc);

    tc = tcase_create("cancel_reasons");
    tcase_add_test(tc, test_cancel_reason);
    tcase_add_misuse_test(tc, test_cancel_source_misuse);
    tcase_add_test(tc, test_cancel_reason_not_overwritten);
    tcase_add_test(tc, test_cancel_reason_nursery);
    tcase_add_test(tc, test_cancel_reason_nursery2);
    tcase_add_test(tc, test_cancel_reason_nursery3);
    tcase_add_test(tc, test_nested_child_source);
    tcase_add_test(tc, test_cancel_reason_sibling_timeout_in_dump);
    tcase_add_test(tc, test_cancel_reason_backend_failure);
    tcase_add_test(tc, test_cancel_text_bounds);
    suite_add_tcase(s, tc);

    tc = tcase_create("tree");
    tcase_add_test(tc, test_tree_nested);
    tcase_add_test(tc, test_tree_outside_and_null);
    tcase_add_test(tc, test_tree_deep);
    suite_add_tcase(s, tc);

    tc = tcase_create("task_cancel");
    tcase_add_test(tc, test_task_cancel);
    tcase_add_test(tc, test_task_cancel_subtree_busy_shield);
    tcase_add_test(tc, test_task_cancel_cleanup_fails);
    tcase_add_test(tc, test_task_cancel_while_starting);
    tcase_add_loop_test(tc, test_task_cancel_starter_without_scope, 0, 2);
    tcase_add_test(tc, test_task_cancel_main_itself);
    suite_add_tcase(s, tc);

    tc = tcase_create("instruments");
    tcase_add_test(tc, test_instruments);
    tcase_add_test(tc, test_instruments_every_hook);
    tcase_add_test(tc, test_instruments_see_the_current_task);
    tcase_add_test(tc, test_instrument_added_in_a_batch);
    tcase_add_test(tc, test_instrument_in_two_loops);
    tcase_add_test(tc, test_instrument_removed_in_its_hook);
    tcase_add_misuse_test(tc, test_set_hooks_null_loop);
    suite_add_tcase(s, tc);

    tc = tcase_create("failures");
    tcase_add_test(tc, test_traceback_calls);
    tcase_add_test(tc, test_traceback_through_nursery);
    tcase_add_test(tc, test_failure_pending);
    tcase_add_misuse_test(tc, test_failure_pending_misuse);
    tcase_add_test(tc, test_begin_as);
    tcase_add_test(tc, test_duration_macros);
    tcase_add_test(tc, test_run_virtual);
    suite_add_tcase(s, tc);

    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
