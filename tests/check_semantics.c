/* tests/check_semantics.c: current Trio's semantics where 0.22 differed,
 * failure records that survive cleanup, deadlocks during a failure,
 * deadlines that leave the tree with their scope, and the task dump
 * (issue 6, sections 2 and 3). Where a test has a twin in Python Trio
 * (git main: src/trio/_core/_tests/test_run.py, src/trio/_tests/
 * test_timeouts.py) the comment above it names it.
 * Portable: no POSIX calls; all time is on the virtual clock (a mock
 * clock over it where a test jumps time inside a step). */
#include <stdlib.h>

#define TESTUTIL_EVENTS
#include "testutil.h"

/* ---- shared helpers ------------------------------------------------ */

/* Logs "<name>+", sleeps `d` (0: no checkpoint), logs "<name>:raise",
 * raises `code` with the message "crash". */
static int crasher_line;

struct crasher {
    ptrio_frame fr;
    const char *name;
    ptrio_time d;
    int code;
};

static int crasher(ptrio_frame *fr)
{
    struct crasher *f = PTRIO_SELF(fr, struct crasher);
    PTRIO_BEGIN(f);
    ev(f->name, "+");
    if (f->d > 0)
        PTRIO_AWAIT(f, ptrio_sleep(f, f->d));
    ev(f->name, ":raise");
    crasher_line = __LINE__; PTRIO_RAISE(f, f->code, "crash");
    PTRIO_END(f);
}

/* Logs "<name>+", sleeps `d` under a shield, logs "<name>". */
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
    PTRIO_END(f);
}

/* Hooks that count tasks. */
struct counts {
    int spawned, exited;
};

static void c_spawned(void *ctx, const ptrio_task *t)
{
    (void)t;
    ((struct counts *)ctx)->spawned++;
}

static void c_exited(void *ctx, const ptrio_task *t, int status)
{
    (void)t, (void)status;
    ((struct counts *)ctx)->exited++;
}

static const ptrio_hooks count_hooks = {
    .task_spawned = c_spawned,
    .task_exited = c_exited,
};

/* Runs `fn` as task "main" on the virtual clock, with counting hooks and
 * reports to `rep`. */
static int run_counted(ptrio_fn fn, void *frame, struct counts *c,
                       treport *rep)
{
    static ptrio_loop loop;
    memset(c, 0, sizeof *c);
    loop_setup(&loop, &ptrio_backend_virtual, rep);
    ptrio_loop_set_hooks(&loop, &count_hooks, c);
    return ptrio_loop_run_named(&loop, fn, frame, "main");
}

/* Whether `s` ends with `suffix`. */
static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* ---- 10. nursery exit is never a cancel point ----------------------- */

struct trivial_main {
    ptrio_frame fr;
    ptrio_nursery top, n;
    ptrio_scope cs;
    ptrio_task t[2];
    struct marker sib, noop;
    int with_child;
};

static int trivial_main(ptrio_frame *fr)
{
    struct trivial_main *f = PTRIO_SELF(fr, struct trivial_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->top) {
        f->sib = (struct marker){.name = "sib"};
        PTRIO_CHECK(f, ptrio_start_soon(&f->top, &f->t[0], marker, &f->sib));
        PTRIO_CANCEL_SCOPE(f, &f->cs) {
            ptrio_cancel(&f->cs);
            PTRIO_NURSERY(f, &f->n) {
                if (f->with_child) {
                    f->noop = (struct marker){.name = "noop"};
                    PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], marker,
                                                    &f->noop));
                }
            }
            ev("after-nursery", "");
        }
        ev("after-cs", "");
    }
    PTRIO_END(f);
}

/* Trio test_run.py: test_trivial_yields: in a cancelled scope, opening and
 * closing an empty nursery schedules (the sibling queued before runs
 * first) but is no cancel point: the code after it runs, the scope
 * catches nothing. */
START_TEST(test_empty_nursery_in_cancelled_scope)
{
    static struct trivial_main m;
    m = (struct trivial_main){0};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(trivial_main, &m, NULL), 0);
    ck_assert_str_eq(L.buf, "sib@0 after-nursery@0 after-cs@0");
    ck_assert(ptrio_cancel_called(&m.cs));
    ck_assert(!ptrio_cancelled_caught(&m.cs));
}
END_TEST

/* Trio test_run.py: test_trivial_yields (noop_with_no_checkpoint): a
 * child that completes without a checkpoint is no cancellation either. */
START_TEST(test_noop_child_in_cancelled_scope)
{
    static struct trivial_main m;
    m = (struct trivial_main){.with_child = 1};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(trivial_main, &m, NULL), 0);
    ck_assert_str_eq(L.buf, "sib@0 noop@0 after-nursery@0 after-cs@0");
    ck_assert(!ptrio_cancelled_caught(&m.cs));
}
END_TEST

/* An outer scope is cancelled (a) in the nursery body, before the block's
 * end, or (b) at 500 ms by another task, while the owner waits in the
 * join; the child is shielded (finishes normally at 1 s) or not (it is
 * cancelled). */
struct exit_main {
    ptrio_frame fr;
    ptrio_nursery top, n;
    ptrio_scope outer;
    ptrio_task tc, tk;
    struct canceller c;
    struct shielded sk;
    struct sleeper k;
    int late, shield;
};

static int exit_main(ptrio_frame *fr)
{
    struct exit_main *f = PTRIO_SELF(fr, struct exit_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->top) {
        if (f->late) {
            f->c = (struct canceller){.name = "cancel", .d = PTRIO_MS(500),
                                      .target = &f->outer};
            PTRIO_CHECK(f, ptrio_start_soon(&f->top, &f->tc, canceller,
                                            &f->c));
        }
        PTRIO_CANCEL_SCOPE(f, &f->outer) {
            PTRIO_NURSERY(f, &f->n) {
                if (f->shield) {
                    f->sk = (struct shielded){.name = "k", .d = PTRIO_SEC(1)};
                    PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->tk, shielded,
                                                    &f->sk));
                } else {
                    f->k = (struct sleeper){.name = "k", .d = PTRIO_SEC(10)};
                    PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->tk, sleeper,
                                                    &f->k));
                }
                if (!f->late)
                    ptrio_cancel(&f->outer);
            }
            ev("after-nursery", "");
        }
        ev("after-outer", "");
    }
    PTRIO_END(f);
}

/* _i: bit 0 = cancelled late (while joining), bit 1 = child shielded. */
static const char *const exit_logs[4] = {
    "k+@0 k!PTRIO_ECANCELED@0 after-outer@0",
    "k+@0 cancel@500 k!PTRIO_ECANCELED@500 after-outer@500",
    "k+@0 k@1000 after-nursery@1000 after-outer@1000",
    "k+@0 cancel@500 k@1000 after-nursery@1000 after-outer@1000",
};

/* Current Trio's _nested_child_finished: the join's abort fails, so the
 * owner keeps waiting and the cancellation reaches the children through
 * the scope tree. Whether the code after the nursery runs depends only
 * on how the children ended, never on when the cancellation came: it
 * runs when they ended normally (outer catches nothing); a cancelled
 * child makes the nursery raise -PTRIO_ECANCELED, which the outer scope
 * catches. */
START_TEST(test_nursery_exit_not_cancel_point)
{
    static struct exit_main m;
    m = (struct exit_main){.late = _i & 1, .shield = (_i >> 1) & 1};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(exit_main, &m, NULL), 0);
    ck_assert_str_eq(L.buf, exit_logs[_i]);
    ck_assert(ptrio_cancel_called(&m.outer));
    ck_assert(ptrio_cancelled_caught(&m.outer) == !m.shield);
    /* Trio's _add_exc: a child ending with Cancelled cancels its nursery
     * too; a child that ends normally does not. */
    ck_assert(ptrio_cancel_called(ptrio_nursery_scope(&m.n)) == !m.shield);
}
END_TEST

/* ---- 11. ptrio_start in a cancelled scope ---------------------------- */

struct cstart_kid {
    ptrio_frame fr;
    int mode;   /* 0: return; 1: checkpoint first; 2: raise -EIO */
};

static int cstart_kid_line;

static int cstart_kid(ptrio_frame *fr)
{
    struct cstart_kid *f = PTRIO_SELF(fr, struct cstart_kid);
    PTRIO_BEGIN(f);
    ev("kid", "+");
    PTRIO_CHECK(f, ptrio_started(f, NULL));
    if (f->mode == 1)
        PTRIO_CHECKPOINT(f);
    if (f->mode == 2) {
        cstart_kid_line = __LINE__; PTRIO_RAISE(f, -PTRIO_EIO, "whoops");
    }
    ev("kid", "");
    PTRIO_END(f);
}

struct cstart_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_scope cs;
    ptrio_task t;
    struct cstart_kid k;
    int rc, frc;
    ptrio_failure fail;
};

static int cstart_main(ptrio_frame *fr)
{
    struct cstart_main *f = PTRIO_SELF(fr, struct cstart_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_CANCEL_SCOPE(f, &f->cs) {
            ptrio_cancel(&f->cs);
            PTRIO_TRY(f, f->rc, ptrio_start_named(f, &f->n, &f->t, cstart_kid,
                                                  &f->k, NULL, "kid"));
            if (f->rc < 0)
                f->frc = ptrio_failure_last(f->rc, &f->fail);
            ev("start", "");
        }
        ev("after-cs", "");
    }
    PTRIO_END(f);
}

/* Trio test_run.py: test_nursery_start (started_with_no_checkpoint): in a
 * cancelled starter, started() moves nothing; the child then returns
 * without a checkpoint: it completed, start() returns normally and the
 * scope catches nothing. */
START_TEST(test_start_cancelled_no_checkpoint)
{
    static struct cstart_main m;
    m = (struct cstart_main){.k = {.mode = 0}};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(cstart_main, &m, NULL), 0);
    ck_assert_int_eq(m.rc, 0);
    ck_assert_str_eq(L.buf, "kid+@0 kid@0 start@0 after-cs@0");
    ck_assert(!ptrio_cancelled_caught(&m.cs));
}
END_TEST

/* Trio test_run.py: test_nursery_start (just_started): a checkpoint after
 * started() in a cancelled starter fails, and start() raises it. */
START_TEST(test_start_cancelled_just_started)
{
    static struct cstart_main m;
    m = (struct cstart_main){.k = {.mode = 1}};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(cstart_main, &m, NULL), 0);
    ck_assert_int_eq(m.rc, -PTRIO_ECANCELED);
    ck_assert_str_eq(L.buf, "kid+@0 start@0 after-cs@0");
}
END_TEST

/* Trio test_run.py: test_nursery_start (raise_keyerror_after_started): the
 * child's failure after started() in a cancelled starter comes out of
 * start(), with the child's record; the nursery sees nothing. */
START_TEST(test_start_cancelled_raise_after_started)
{
    static struct cstart_main m;
    m = (struct cstart_main){.k = {.mode = 2}};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(cstart_main, &m, NULL), 0);
    ck_assert_int_eq(m.rc, -PTRIO_EIO);
    ck_assert_str_eq(L.buf, "kid+@0 start@0 after-cs@0");
    ck_assert_int_eq(m.frc, 0);
    ck_assert_str_eq(m.fail.task, "kid");
    ck_assert_str_eq(m.fail.msg, "whoops");
    ck_assert_int_eq(m.fail.line, cstart_kid_line);
}
END_TEST

/* ---- 12. cancelled_caught when a real failure is raised ---------------- */

struct caught_main {
    ptrio_frame fr;
    ptrio_scope tb, outer, sh;
    ptrio_nursery n;
    ptrio_task t[4];
    struct sleeper s[3];
    struct crasher c;
    int err;
};

static int own_scope_main(ptrio_frame *fr)
{
    struct caught_main *f = PTRIO_SELF(fr, struct caught_main);
    PTRIO_BEGIN(f);
    PTRIO_TRY_BLOCK(f, &f->tb) {
        PTRIO_NURSERY(f, &f->n) {
            f->c = (struct crasher){.name = "A", .d = PTRIO_SEC(1),
                                    .code = -PTRIO_EIO};
            f->s[0] = (struct sleeper){.name = "B", .d = PTRIO_TIME_INF};
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], crasher, &f->c));
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], sleeper,
                                            &f->s[0]));
        }
    }
    f->err = ptrio_scope_error(&f->tb);
    ev("caught", "");
    PTRIO_END(f);
}

/* The nursery's own scope was the cause of B's cancellation (A failed):
 * while raising A's -EIO, it caught that cancellation. */
START_TEST(test_caught_by_nursery_scope)
{
    static struct caught_main m;
    m = (struct caught_main){0};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(own_scope_main, &m, NULL), 0);
    ck_assert_str_eq(L.buf, "A+@0 B+@0 A:raise@1000 B!PTRIO_ECANCELED@1000 "
                            "caught@1000");
    ck_assert_int_eq(m.err, -PTRIO_EIO);
    ck_assert(ptrio_cancel_called(ptrio_nursery_scope(&m.n)));
    ck_assert(ptrio_cancelled_caught(ptrio_nursery_scope(&m.n)));
}
END_TEST

static int filtering_main(ptrio_frame *fr)
{
    struct caught_main *f = PTRIO_SELF(fr, struct caught_main);
    PTRIO_BEGIN(f);
    PTRIO_TRY_BLOCK(f, &f->tb) {
        PTRIO_CANCEL_SCOPE(f, &f->outer) {
            PTRIO_NURSERY(f, &f->n) {
                f->s[0] = (struct sleeper){.name = "t1", .d = PTRIO_TIME_INF};
                f->s[1] = (struct sleeper){.name = "t2", .d = PTRIO_TIME_INF};
                f->s[2] = (struct sleeper){.name = "t3", .d = PTRIO_TIME_INF};
                f->c = (struct crasher){.name = "t4", .code = -PTRIO_EIO};
                PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], sleeper,
                                                &f->s[0]));
                PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], sleeper,
                                                &f->s[1]));
                ptrio_nursery_cancel(&f->n);
                PTRIO_SHIELD(f, &f->sh) {
                    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
                }
                PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[2], sleeper,
                                                &f->s[2]));
                ptrio_cancel(&f->outer);
                PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[3], crasher,
                                                &f->c));
            }
            ev("not-reached", "");
        }
        ev("not-reached", "");
    }
    f->err = ptrio_scope_error(&f->tb);
    ev("caught", "");
    PTRIO_END(f);
}

/* Trio test_run.py: test_cancel_scope_exceptiongroup_filtering: the outer
 * scope became cancelled before the nursery block exited, so every
 * cancellation inside propagates to it; it absorbs them (cancelled_caught)
 * and lets the real failure through. */
START_TEST(test_caught_by_outer_scope)
{
    static struct caught_main m;
    m = (struct caught_main){0};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(filtering_main, &m, NULL), 0);
    ck_assert_str_eq(L.buf, "t1+@0 t1!PTRIO_ECANCELED@0 t2+@0 "
                            "t2!PTRIO_ECANCELED@0 t3+@1 t3!PTRIO_ECANCELED@1 "
                            "t4+@1 t4:raise@1 caught@1");
    ck_assert_int_eq(m.err, -PTRIO_EIO);
    ck_assert(ptrio_cancelled_caught(&m.outer));
    ck_assert(!ptrio_cancelled_caught(ptrio_nursery_scope(&m.n)));
}
END_TEST

/* ---- 13. failure records survive cleanup ---------------------------- */

enum { FIN_CATCH, FIN_EMPTY_NURSERY, FIN_NURSERY, FIN_GROUP, FIN_CHILD,
       FIN_SAME_CODE, FIN_SAME_CODE_IO, FIN_MODES };

static int body_line, clean_line;

struct helper {
    ptrio_frame fr;
};

static int fail_helper(ptrio_frame *fr)
{
    struct helper *f = PTRIO_SELF(fr, struct helper);
    PTRIO_BEGIN(f);
    PTRIO_RAISE(f, -PTRIO_EPIPE, "helper");
    PTRIO_END(f);
}

/* A pretend I/O operation that fails at once with `rc`. */
static int fake_io(void *self, int rc)
{
    (void)self;
    return rc;
}

struct fin_sub {
    ptrio_frame fr;
    int mode;
    ptrio_nursery n1, n2;
    ptrio_task t[3];
    struct crasher c[2];
    struct marker mk;
    struct helper h;
    int r;
};

/* Raises (in its body, or through a nursery of its body); its FINALLY
 * then does what `mode` says. */
static int fin_sub(ptrio_frame *fr)
{
    struct fin_sub *f = PTRIO_SELF(fr, struct fin_sub);
    PTRIO_BEGIN(f);
    if (f->mode == FIN_GROUP || f->mode == FIN_CHILD) {
        PTRIO_NURSERY(f, &f->n1) {
            f->c[0] = (struct crasher){.name = "c1", .code = -PTRIO_EIO};
            f->c[1] = (struct crasher){.name = "c2", .code = -PTRIO_EPIPE};
            PTRIO_CHECK(f, ptrio_start_soon_named(&f->n1, &f->t[0], crasher,
                                                  &f->c[0], "c1"));
            if (f->mode == FIN_GROUP)
                PTRIO_CHECK(f, ptrio_start_soon_named(&f->n1, &f->t[1],
                                                      crasher, &f->c[1],
                                                      "c2"));
        }
    }
    body_line = __LINE__; PTRIO_RAISE(f, -PTRIO_EIO, "body");
    PTRIO_FINALLY(f);
    ev("fin", "");
    if (f->mode == FIN_CATCH) {
        PTRIO_TRY(f, f->r, ptrio_call(f, &f->h, fail_helper));
    } else if (f->mode == FIN_SAME_CODE) {
        clean_line = __LINE__; PTRIO_RAISE(f, -PTRIO_EIO, "cleanup");
    } else if (f->mode == FIN_SAME_CODE_IO) {
        clean_line = __LINE__; PTRIO_AWAIT(f, fake_io(f, -PTRIO_EIO));
    } else {
        PTRIO_NURSERY(f, &f->n2) {
            if (f->mode != FIN_EMPTY_NURSERY) {
                f->mk = (struct marker){.name = "mk"};
                PTRIO_CHECK(f, ptrio_start_soon(&f->n2, &f->t[2], marker,
                                                &f->mk));
            }
        }
    }
    PTRIO_END(f);
}

/* Awaits fin_sub with PTRIO_AWAIT: the error goes on through this frame. */
struct fin_mid {
    ptrio_frame fr;
    struct fin_sub sub;
};

static int fin_mid(ptrio_frame *fr)
{
    struct fin_mid *f = PTRIO_SELF(fr, struct fin_mid);
    PTRIO_BEGIN(f);
    PTRIO_CALL(f, fin_sub, &f->sub);
    ev("not-reached", "");
    PTRIO_END(f);
}

struct fin_main {
    ptrio_frame fr;
    int through;        /* 1: through fin_mid and a TRY_BLOCK */
    ptrio_scope tb;
    struct fin_mid mid;
    int rc, frc;
    ptrio_failure fail;
    char group[256];
    int gsize;
};

static void gcat(char *buf, size_t cap, const char *s)
{
    size_t n = strlen(buf);
    while (s && *s && n + 1 < cap)
        buf[n++] = *s++;
    buf[n] = '\0';
}

static int fin_main(ptrio_frame *fr)
{
    struct fin_main *f = PTRIO_SELF(fr, struct fin_main);
    PTRIO_BEGIN(f);
    if (f->through) {
        PTRIO_TRY_BLOCK(f, &f->tb) {
            PTRIO_CALL(f, fin_mid, &f->mid);
        }
        f->rc = ptrio_scope_error(&f->tb);
    } else {
        PTRIO_TRY(f, f->rc, ptrio_call(f, &f->mid.sub, fin_sub));
    }
    f->frc = ptrio_failure_last(f->rc, &f->fail);
    if (f->frc == 0 && f->fail.group) {
        const void *cur = NULL;
        ptrio_failure m;
        f->gsize = ptrio_group_size(f->fail.group);
        while ((cur = ptrio_group_next(f->fail.group, cur, &m))) {
            if (f->group[0])
                gcat(f->group, sizeof f->group, " ");
            gcat(f->group, sizeof f->group, m.task);
            gcat(f->group, sizeof f->group, ":");
            gcat(f->group, sizeof f->group, ptrio_errname(m.code));
            gcat(f->group, sizeof f->group, ":");
            gcat(f->group, sizeof f->group, m.msg);
        }
    }
    ev("caught", "");
    PTRIO_END(f);
}

static const char *const fin_logs[FIN_MODES] = {
    "fin@0 caught@0",
    "fin@0 caught@0",
    "fin@0 mk@0 caught@0",
    "c1+@0 c1:raise@0 c2+@0 c2:raise@0 fin@0 mk@0 caught@0",
    "c1+@0 c1:raise@0 fin@0 mk@0 caught@0",
    "fin@0 caught@0",
    "fin@0 caught@0",
};

/* The error carried through FINALLY keeps its own record whatever the
 * cleanup does: (a) catch an error of its own, (b) open and close a
 * nursery, empty or with a child; (c) a pending -PTRIO_EGROUP keeps its
 * group, walkable; (d) a child's error keeps the child's name and line;
 * and a new error in the cleanup, even with the same code (raised, or
 * returned by a call), is a new record. _i / FIN_MODES: caught at once by
 * PTRIO_TRY, or passed on through one more frame to a TRY_BLOCK. */
START_TEST(test_record_survives_finally)
{
    static struct fin_main m;
    int mode = _i % FIN_MODES;
    m = (struct fin_main){.through = _i / FIN_MODES,
                          .mid = {.sub = {.mode = mode}}};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual_named(fin_main, &m, "main", NULL), 0);
    ck_assert_str_eq(L.buf, fin_logs[mode]);
    ck_assert_int_eq(m.frc, 0);
    ck_assert_int_eq(m.fail.code, m.rc);
    switch (mode) {
    case FIN_GROUP:
        ck_assert_int_eq(m.rc, -PTRIO_EGROUP);
        ck_assert_ptr_nonnull(m.fail.group);
        ck_assert_int_eq(m.gsize, 2);
        ck_assert_str_eq(m.group, "c1:EIO:crash c2:EPIPE:crash");
        break;
    case FIN_CHILD:
        ck_assert_int_eq(m.rc, -PTRIO_EIO);
        ck_assert_str_eq(m.fail.task, "c1");
        ck_assert_str_eq(m.fail.msg, "crash");
        ck_assert_int_eq(m.fail.line, crasher_line);
        ck_assert_ptr_null(m.fail.group);
        break;
    case FIN_SAME_CODE:
    case FIN_SAME_CODE_IO:
        ck_assert_int_eq(m.rc, -PTRIO_EIO);
        ck_assert_str_eq(m.fail.task, "main");
        if (mode == FIN_SAME_CODE)
            ck_assert_str_eq(m.fail.msg, "cleanup");
        else
            ck_assert_ptr_null(m.fail.msg);
        ck_assert_int_eq(m.fail.line, clean_line);
        break;
    default:
        ck_assert_int_eq(m.rc, -PTRIO_EIO);
        ck_assert_str_eq(m.fail.task, "main");
        ck_assert_str_eq(m.fail.msg, "body");
        ck_assert_int_eq(m.fail.line, body_line);
        ck_assert(ends_with(m.fail.file, "check_semantics.c"));
        ck_assert_ptr_null(m.fail.group);
        if (mode == FIN_CATCH)
            ck_assert_int_eq(m.mid.sub.r, -PTRIO_EPIPE);
        break;
    }
}
END_TEST

/* ---- 14. a deadlock while a failure propagates ------------------------ */

struct dl_kid {
    ptrio_frame fr;
    ptrio_scope sh;
    int r[2];
};

/* Sleeps forever; its cleanup, shielded, sleeps forever twice. */
static int dl_kid(ptrio_frame *fr)
{
    struct dl_kid *f = PTRIO_SELF(fr, struct dl_kid);
    PTRIO_BEGIN(f);
    ev("B", "+");
    PTRIO_AWAIT(f, ptrio_sleep_forever(f));
    PTRIO_FINALLY(f);
    ev_err("B", PTRIO_FINALLY_ERROR(f));
    PTRIO_SHIELD(f, &f->sh) {
        PTRIO_TRY(f, f->r[0], ptrio_sleep_forever(f));
        ev_err("B-woke1", f->r[0]);
        PTRIO_TRY(f, f->r[1], ptrio_sleep_forever(f));
        ev_err("B-woke2", f->r[1]);
    }
    PTRIO_END(f);
}

struct dl_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct crasher a;
    struct dl_kid b;
};

static int dl_main(ptrio_frame *fr)
{
    struct dl_main *f = PTRIO_SELF(fr, struct dl_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->a = (struct crasher){.name = "A", .d = PTRIO_SEC(1),
                                .code = -PTRIO_EIO};
        PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[0], crasher, &f->a,
                                              "A"));
        PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[1], dl_kid, &f->b,
                                              "B"));
    }
    PTRIO_END(f);
}

/* A fails with -EIO; B's shielded cleanup then waits forever: the virtual
 * clock finds a deadlock. The run returns the failure on its way out
 * (-EIO, not only -EDEADLK) and reports both; B, blocking again after the
 * deadlock, is still woken, and every task exits. */
START_TEST(test_deadlock_during_failure)
{
    static struct dl_main m;
    static treport rep;
    struct counts c;
    m = (struct dl_main){0};
    tlog_clear(&L);
    ck_assert_int_eq(run_counted(dl_main, &m, &c, &rep), -PTRIO_EIO);
    ck_assert_str_eq(L.buf, "A+@0 B+@0 A:raise@1000 B!PTRIO_ECANCELED@1000 "
                            "B-woke1!PTRIO_ECANCELED@1000 "
                            "B-woke2!PTRIO_ECANCELED@1000");
    ck_assert_int_eq(c.spawned, 3);
    ck_assert_int_eq(c.exited, 3);
    ck_assert_int_eq(count_of(rep.lines.buf, "ptrio: deadlock"), 1);
    ck_assert_int_eq(count_of(rep.lines.buf, "task 'A' failed: EIO (crash)"),
                     1);
}
END_TEST

/* ---- 15. deadlines leave the tree with their scope ------------------- */

struct dl_nursery {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct sleeper k;
    ptrio_time deadline;
};

/* A nursery with a deadline, closing at 1 s (its child's end). */
static int dl_nursery(ptrio_frame *fr)
{
    struct dl_nursery *f = PTRIO_SELF(fr, struct dl_nursery);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_CHECK(f, ptrio_scope_set_deadline(ptrio_nursery_scope(&f->n),
                                                f->deadline));
        f->k = (struct sleeper){.name = "k", .d = PTRIO_SEC(1)};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, sleeper, &f->k));
    }
    PTRIO_END(f);
}

struct heap_main {
    ptrio_frame fr;
    struct dl_nursery *sub;
};

static int heap_main(ptrio_frame *fr)
{
    struct heap_main *f = PTRIO_SELF(fr, struct heap_main);
    PTRIO_BEGIN(f);
    PTRIO_CALL(f, dl_nursery, f->sub);
    memset(f->sub, 0xA5, sizeof *f->sub);
    free(f->sub);
    f->sub = NULL;
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(10)));
    ev("woke", "");
    PTRIO_END(f);
}

/* The nursery's 5 s deadline leaves the tree when its block ends at 1 s:
 * its frame, on the heap, is then scribbled over and freed while the run
 * goes on (the old core kept the node in the tree: corruption, and a
 * heap-use-after-free under ASan). */
START_TEST(test_nursery_deadline_leaves_tree)
{
    static struct heap_main m;
    m = (struct heap_main){0};
    m.sub = calloc(1, sizeof *m.sub);
    ck_assert_ptr_nonnull(m.sub);
    m.sub->deadline = PTRIO_SEC(5);
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(heap_main, &m, NULL), 0);
    ck_assert_str_eq(L.buf, "k+@0 k@1000 woke@11000");
}
END_TEST

struct reset_main {
    ptrio_frame fr;
    ptrio_scope other;
    struct dl_nursery sub;
    int rc;
    ptrio_time after;
};

static int reset_main(ptrio_frame *fr)
{
    struct reset_main *f = PTRIO_SELF(fr, struct reset_main);
    PTRIO_BEGIN(f);
    PTRIO_MOVE_ON_AT(f, &f->other, PTRIO_SEC(2)) {
        PTRIO_CALL(f, dl_nursery, &f->sub);
        f->rc = ptrio_scope_set_deadline(ptrio_nursery_scope(&f->sub.n),
                                         PTRIO_SEC(100));
        f->after = ptrio_scope_deadline(ptrio_nursery_scope(&f->sub.n));
        PTRIO_AWAIT(f, ptrio_sleep_forever(f));
    }
    ev("moved-on", "");
    PTRIO_END(f);
}

static const ptrio_time reset_deadlines[] = {PTRIO_SEC(5), PTRIO_MS(1500)};

/* Setting the closed nursery scope's deadline again (100 s) changes that
 * scope only: the other scope's 2 s deadline fires exactly at 2 s, whether
 * the closed one's old deadline was after it (5 s) or before (1.5 s). */
START_TEST(test_closed_scope_deadline_reset)
{
    static struct reset_main m;
    m = (struct reset_main){.sub = {.deadline = reset_deadlines[_i]}};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(reset_main, &m, NULL), 0);
    ck_assert_str_eq(L.buf, "k+@0 k@1000 moved-on@2000");
    ck_assert_int_eq(m.rc, 0);
    ck_assert_int_eq(m.after, PTRIO_SEC(100));
    ck_assert(ptrio_cancelled_caught(&m.other));
    ck_assert(!ptrio_cancel_called(ptrio_nursery_scope(&m.sub.n)));
}
END_TEST

struct rel_main {
    ptrio_frame fr;
    ptrio_scope a, b, c, d, e, g, tb;
    ptrio_time in_a, dl[5];
    int err;
};

static int rel_main(ptrio_frame *fr)
{
    struct rel_main *f = PTRIO_SELF(fr, struct rel_main);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(10)));
    PTRIO_MOVE_ON_AFTER(f, &f->a, PTRIO_SEC(5)) {
        ptrio_cancel(&f->a);
        f->in_a = ptrio_scope_deadline(&f->a);
    }
    f->dl[0] = ptrio_scope_deadline(&f->a);
    PTRIO_MOVE_ON_AFTER(f, &f->b, PTRIO_SEC(5)) {
    }
    f->dl[1] = ptrio_scope_deadline(&f->b);
    PTRIO_TRY_BLOCK(f, &f->tb) {
        PTRIO_FAIL_AFTER(f, &f->c, PTRIO_SEC(5)) {
        }
        f->dl[2] = ptrio_scope_deadline(&f->c);
        PTRIO_FAIL_AFTER(f, &f->d, PTRIO_SEC(5)) {
            ptrio_cancel(&f->d);
        }
        f->dl[3] = ptrio_scope_deadline(&f->d);
    }
    f->err = ptrio_scope_error(&f->tb);
    PTRIO_END(f);
}

/* ptrio_scope_deadline of a MOVE_ON_AFTER / FAIL_AFTER scope cancelled, or
 * closed, before its first suspension: the absolute time (entered at 10 s
 * with 5 s: 15 s), never the relative 5 s. */
START_TEST(test_relative_deadline_absolute)
{
    static struct rel_main m;
    m = (struct rel_main){0};
    ck_assert_int_eq(run_virtual(rel_main, &m, NULL), 0);
    ck_assert_int_eq(m.in_a, PTRIO_SEC(15));
    ck_assert_int_eq(m.dl[0], PTRIO_SEC(15));
    ck_assert_int_eq(m.dl[1], PTRIO_SEC(15));
    ck_assert_int_eq(m.dl[2], PTRIO_SEC(15));
    ck_assert_int_eq(m.dl[3], PTRIO_SEC(15));
    ck_assert_int_eq(m.err, 0);
    ck_assert(ptrio_cancel_called(&m.a));
    ck_assert(!ptrio_cancelled_caught(&m.a));
}
END_TEST

static int rel_later_main(ptrio_frame *fr)
{
    struct rel_main *f = PTRIO_SELF(fr, struct rel_main);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(10)));
    PTRIO_MOVE_ON_AFTER(f, &f->e, PTRIO_SEC(5)) {
    }
    PTRIO_FAIL_AFTER(f, &f->g, PTRIO_SEC(5)) {
    }
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));
    f->dl[4] = ptrio_scope_deadline(&f->e);
    PTRIO_END(f);
}

/* Read later (at 11 s), it is still the deadline the block had: entry time + d, as in Trio, where move_on_after fixes the
 * deadline when the block is entered; not the time of the read + d. */
START_TEST(test_relative_deadline_read_later)
{
    static struct rel_main m;
    m = (struct rel_main){0};
    ck_assert_int_eq(run_virtual(rel_later_main, &m, NULL), 0);
    ck_assert_int_eq(m.dl[4], PTRIO_SEC(15));
}
END_TEST

/* After the run (no clock at all then), still 15 s, never the 5 s. */
START_TEST(test_relative_deadline_read_after_run)
{
    static struct rel_main m;
    m = (struct rel_main){0};
    ck_assert_int_eq(run_virtual(rel_later_main, &m, NULL), 0);
    ck_assert_int_eq(ptrio_scope_deadline(&m.g), PTRIO_SEC(15));
}
END_TEST

/* ---- 16. ptrio_dump lists every task ---------------------------------- */

/* Keeps the lines of a dump. */
#define DUMP_LINES 8
static struct dump {
    char line[DUMP_LINES][320];
    int n;
    int max_indent;
    char deepest[320];
} D;

static int indent_of(const char *line)
{
    int k = 0;
    if (strncmp(line, "ptrio: ", 7) != 0)
        return -1;
    line += 7;
    while (line[k] == ' ')
        k++;
    return k;
}

static void dump_sink(void *ctx, const char *line)
{
    int ind = indent_of(line);
    (void)ctx;
    if (D.n < DUMP_LINES) {
        strncpy(D.line[D.n], line, sizeof D.line[0] - 1);
        D.line[D.n][sizeof D.line[0] - 1] = '\0';
    }
    D.n++;
    if (ind > D.max_indent) {
        D.max_indent = ind;
        strncpy(D.deepest, line, sizeof D.deepest - 1);
        D.deepest[sizeof D.deepest - 1] = '\0';
    }
}

struct slow_kid {
    ptrio_frame fr;
};

static int slow_kid(ptrio_frame *fr)
{
    struct slow_kid *f = PTRIO_SELF(fr, struct slow_kid);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));
    PTRIO_CHECK(f, ptrio_started(f, NULL));
    PTRIO_END(f);
}

struct dump_main;
struct dstarter {
    ptrio_frame fr;
    struct dump_main *m;
};

struct dumper {
    ptrio_frame fr;
    int count;
};

struct dump_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task ts, tk, td;
    struct dstarter s;
    struct slow_kid k;
    struct dumper d;
};

static int dstarter(ptrio_frame *fr)
{
    struct dstarter *f = PTRIO_SELF(fr, struct dstarter);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_start_named(f, &f->m->n, &f->m->tk, slow_kid,
                                     &f->m->k, NULL, "kid"));
    PTRIO_END(f);
}

static int dumper(ptrio_frame *fr)
{
    struct dumper *f = PTRIO_SELF(fr, struct dumper);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(500)));
    f->count = ptrio_dump(dump_sink, NULL);
    PTRIO_END(f);
}

static int dump_main(ptrio_frame *fr)
{
    struct dump_main *f = PTRIO_SELF(fr, struct dump_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->s.m = f;
        PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->ts, dstarter, &f->s,
                                              "S"));
        PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->td, dumper, &f->d,
                                              "dumper"));
    }
    PTRIO_END(f);
}

/* The child of a ptrio_start that has not called started() yet is listed,
 * right under its starter and one level deeper, with its state. */
START_TEST(test_dump_lists_starting_child)
{
    static struct dump_main m;
    int i, s = -1;
    m = (struct dump_main){0};
    memset(&D, 0, sizeof D);
    ck_assert_int_eq(run_virtual_named(dump_main, &m, "main", NULL), 0);
    ck_assert_int_eq(m.d.count, 4);
    ck_assert_int_eq(D.n, 6);
    for (i = 0; i < D.n; i++)
        if (strstr(D.line[i], "task 'S' "))
            s = i;
    ck_assert_int_ge(s, 0);
    ck_assert_msg(strstr(D.line[s], "starting a task"), "%s", D.line[s]);
    ck_assert_int_lt(s + 1, D.n);
    ck_assert_msg(strstr(D.line[s + 1], "task 'kid' sleeping (being started)"),
                  "%s", D.line[s + 1]);
    ck_assert_int_eq(indent_of(D.line[s + 1]), indent_of(D.line[s]) + 2);
}
END_TEST

#define DEPTH 50

struct level {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    int i;
    int count;
};

static struct level levels[DEPTH];

static int level(ptrio_frame *fr)
{
    struct level *f = PTRIO_SELF(fr, struct level);
    PTRIO_BEGIN(f);
    if (f->i + 1 < DEPTH) {
        PTRIO_NURSERY(f, &f->n) {
            levels[f->i + 1] = (struct level){.i = f->i + 1};
            PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t, level,
                                                  &levels[f->i + 1],
                                                  f->i + 2 == DEPTH ? "deep"
                                                                    : "lvl"));
        }
    } else {
        f->count = ptrio_dump(dump_sink, NULL);
    }
    PTRIO_END(f);
}

/* Every task of 50 nested nurseries is listed, the deepest last and most
 * indented: 50 tasks and 50 nurseries (the run's own included). */
START_TEST(test_dump_deep_nesting)
{
    memset(levels, 0, sizeof levels);
    memset(&D, 0, sizeof D);
    ck_assert_int_eq(run_virtual_named(level, &levels[0], "lvl", NULL), 0);
    ck_assert_int_eq(levels[DEPTH - 1].count, DEPTH);
    ck_assert_int_eq(D.n, 2 * DEPTH);
    ck_assert_int_eq(D.max_indent, 2 * (2 * DEPTH - 1));
    ck_assert_msg(strstr(D.deepest, "task 'deep' running"), "%s", D.deepest);
}
END_TEST

/* ---- from the review against current Trio ----------------------------
 *
 * Cancel scopes and timeouts: shields on timeout blocks, deadlines moved
 * many times, very deep nesting, relative deadlines fixed at entry on a
 * mock clock, and the effective deadline of a task cancelled alone. */

struct shout_main {
    ptrio_frame fr;
    ptrio_scope outer, inner;
    int mode, r1, r2;
};

static int shout_main(ptrio_frame *fr)
{
    struct shout_main *f = PTRIO_SELF(fr, struct shout_main);
    PTRIO_BEGIN(f);
    PTRIO_CANCEL_SCOPE(f, &f->outer) {
        if (f->mode == 0) {
            /* A timeout block shielded (set first thing inside: entering
             * a block initialises it) holds off the outer cancellation
             * until it is unshielded. */
            PTRIO_MOVE_ON_AFTER(f, &f->inner, PTRIO_SEC(1)) {
                ptrio_scope_set_shield(&f->inner, true);
                ptrio_cancel(&f->outer);
                PTRIO_TRY(f, f->r1, ptrio_checkpoint(f));
                ptrio_scope_set_shield(&f->inner, false);
                PTRIO_TRY(f, f->r2, ptrio_checkpoint(f));
                ev("unshielded", "");
            }
        } else if (f->mode == 1) {
            /* Shielded, it sleeps until its own deadline. */
            PTRIO_MOVE_ON_AFTER(f, &f->inner, PTRIO_SEC(1)) {
                ptrio_scope_set_shield(&f->inner, true);
                ptrio_cancel(&f->outer);
                PTRIO_AWAIT(f, ptrio_sleep_forever(f));
            }
            ev("moved-on", "");
        } else {
            PTRIO_FAIL_AFTER(f, &f->inner, PTRIO_SEC(1)) {
                ptrio_scope_set_shield(&f->inner, true);
                ptrio_cancel(&f->outer);
                PTRIO_AWAIT(f, ptrio_sleep_forever(f));
            }
            ev("not-reached", "");
        }
        ev("outer-end", "");
    }
    PTRIO_FINALLY(f);
    ev_err("out", PTRIO_FINALLY_ERROR(f));
    PTRIO_END(f);
}

/* Trio test_timeouts.py: test_context_shields_from_outer */
START_TEST(test_timeout_shields_from_outer)
{
    static struct shout_main m;
    tlog_clear(&L);
    m.mode = 0;
    ck_assert_int_eq(run_virtual(shout_main, &m, NULL), 0);
    ck_assert_int_eq(m.r1, 0);
    ck_assert_int_eq(m.r2, -PTRIO_ECANCELED);
    ck_assert(!ptrio_cancel_called(&m.inner));
    ck_assert(!ptrio_cancelled_caught(&m.inner));
    ck_assert(!ptrio_cancelled_caught(&m.outer));
    ck_assert_str_eq(L.buf, "unshielded@0 outer-end@0 out-ok@0");
}
END_TEST

/* Trio test_timeouts.py: test_move_on_after_moves_on_even_if_shielded */
START_TEST(test_move_on_after_even_if_shielded)
{
    static struct shout_main m;
    tlog_clear(&L);
    m.mode = 1;
    ck_assert_int_eq(run_virtual(shout_main, &m, NULL), 0);
    ck_assert(ptrio_cancelled_caught(&m.inner));
    ck_assert(ptrio_cancel_called(&m.outer));
    ck_assert(!ptrio_cancelled_caught(&m.outer));
    ck_assert_str_eq(L.buf, "moved-on@1000 outer-end@1000 out-ok@1000");
}
END_TEST

/* The -ETIMEDOUT passes the cancelled outer scope, which catches nothing. */
/* Trio test_timeouts.py: test_fail_after_fails_even_if_shielded */
START_TEST(test_fail_after_even_if_shielded)
{
    static struct shout_main m;
    tlog_clear(&L);
    m.mode = 2;
    ck_assert_int_eq(run_virtual(shout_main, &m, NULL), -PTRIO_ETIMEDOUT);
    ck_assert(ptrio_cancelled_caught(&m.inner));
    ck_assert(!ptrio_cancelled_caught(&m.outer));
    ck_assert_str_eq(L.buf, "out!ETIMEDOUT@1000");
}
END_TEST

struct dup_main {
    ptrio_frame fr;
    ptrio_scope sc;
    int i;
};

static int dup_main(ptrio_frame *fr)
{
    struct dup_main *f = PTRIO_SELF(fr, struct dup_main);
    PTRIO_BEGIN(f);
    PTRIO_CANCEL_SCOPE(f, &f->sc) {
        for (f->i = 0; f->i < 2000; f->i++) {
            ptrio_scope_set_deadline(&f->sc, PTRIO_SEC(9998));
            ptrio_scope_set_deadline(&f->sc, PTRIO_SEC(9999));
        }
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(10)));
        ev("slept", "");
        ck_assert(ptrio_scope_deadline(&f->sc) == PTRIO_SEC(9999));
        PTRIO_AWAIT(f, ptrio_sleep_forever(f));
    }
    ev("after", "");
    PTRIO_END(f);
}

/* Moving a registered deadline back and forth many times leaves it in
 * the deadline structure once: it fires once, at its last value. */
/* Trio test_run.py: test_cancel_scope_deadline_duplicates */
START_TEST(test_cancel_scope_deadline_duplicates)
{
    static struct dup_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(dup_main, &m, NULL), 0);
    ck_assert(ptrio_cancelled_caught(&m.sc));
    ck_assert_str_eq(L.buf, "slept@10 after@9999000");
}
END_TEST

#define DEEP 5000

struct deep_frame {
    ptrio_frame fr;
    ptrio_scope sc;
    int i;
};

static struct deep_frame deep[DEEP];

/* Opens a scope, then calls the next level inside it; the innermost
 * cancels the outermost and sleeps. */
static int deep_level(ptrio_frame *fr)
{
    struct deep_frame *f = PTRIO_SELF(fr, struct deep_frame);
    PTRIO_BEGIN(f);
    PTRIO_CANCEL_SCOPE(f, &f->sc) {
        if (f->i + 1 < DEEP) {
            deep[f->i + 1].i = f->i + 1;
            PTRIO_CALL(f, deep_level, &deep[f->i + 1]);
        } else {
            ptrio_cancel(&deep[0].sc);
            PTRIO_AWAIT(f, ptrio_sleep_forever(f));
        }
    }
    PTRIO_END(f);
}

struct deep_main {
    ptrio_frame fr;
};

static int deep_main(ptrio_frame *fr)
{
    struct deep_main *f = PTRIO_SELF(fr, struct deep_main);
    PTRIO_BEGIN(f);
    deep[0].i = 0;
    PTRIO_CALL(f, deep_level, &deep[0]);
    ev("after", "");
    PTRIO_END(f);
}

/* 5000 nested scopes: cancelling the outermost reaches the innermost, and
 * only the outermost catches. */
/* Trio test_run.py: test_very_deep_cancel_scope_nesting */
START_TEST(test_very_deep_cancel_scope_nesting)
{
    static struct deep_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(deep_main, &m, NULL), 0);
    ck_assert(ptrio_cancelled_caught(&deep[0].sc));
    ck_assert(!ptrio_cancel_called(&deep[1].sc));
    ck_assert(!ptrio_cancelled_caught(&deep[DEEP - 1].sc));
    ck_assert_str_eq(L.buf, "after@0");
}
END_TEST

/* ---- deadlines on a mock clock ---------------------------------------
 *
 * A mock clock can move inside a step (ptrio_mock_clock_jump): then it
 * shows when a deadline is fixed. As in current Trio, a relative deadline
 * (MOVE_ON_AFTER, FAIL_AFTER) counts from the block's entry. */

static ptrio_mock_clock mock;

static int run_mocked_named(ptrio_fn fn, void *frame, const char *name)
{
    static ptrio_loop loop;
    ptrio_mock_clock_init(&mock, 0);
    ptrio_mock_clock_set_autojump(&mock, 0);
    loop_setup(&loop, &ptrio_backend_virtual, NULL);
    ck_assert_int_eq(ptrio_loop_use_clock(&loop, &mock.clock), 0);
    return ptrio_loop_run_named(&loop, fn, frame, name);
}
#define run_mocked(fn, frame) run_mocked_named((fn), (frame), #fn)

struct jump_main {
    ptrio_frame fr;
    ptrio_scope sc, sc2;
    int r1, r2, r3;
};

static int jump_main(ptrio_frame *fr)
{
    struct jump_main *f = PTRIO_SELF(fr, struct jump_main);
    PTRIO_BEGIN(f);
    PTRIO_CANCEL_SCOPE(f, &f->sc) {
        ptrio_scope_set_deadline(&f->sc, ptrio_now() + PTRIO_SEC(5));
        PTRIO_TRY(f, f->r1, ptrio_checkpoint(f));
        ptrio_mock_clock_jump(&mock, PTRIO_SEC(10));
        PTRIO_TRY(f, f->r2, ptrio_checkpoint(f));
        ev("after-jump", "");
    }
    /* The same with a relative deadline: jumped past it before the
     * block's first checkpoint. */
    PTRIO_MOVE_ON_AFTER(f, &f->sc2, PTRIO_SEC(5)) {
        ptrio_mock_clock_jump(&mock, PTRIO_SEC(10));
        PTRIO_TRY(f, f->r3, ptrio_checkpoint(f));
        ev("after-jump2", "");
    }
    PTRIO_END(f);
}

/* A checkpoint after the clock jumped past the deadline fails: the
 * deadline is checked at the schedule point, before the cancel point. A
 * relative deadline was fixed at entry, so the jump passes it too. */
/* Trio test_run.py: test_yield_briefly_checks_for_timeout */
START_TEST(test_checkpoint_after_jump_past_deadline)
{
    static struct jump_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_mocked(jump_main, &m), 0);
    ck_assert_int_eq(m.r1, 0);
    ck_assert_int_eq(m.r2, -PTRIO_ECANCELED);
    ck_assert_int_eq(m.r3, -PTRIO_ECANCELED);
    ck_assert(ptrio_cancel_called(&m.sc2));
    ck_assert_str_eq(L.buf, "after-jump@10000 after-jump2@20000");
}
END_TEST

struct onentry_main {
    ptrio_frame fr;
    ptrio_scope sc, sc2, sc3;
    ptrio_time start, dl[5];
    int rc;
};

static int onentry_main(ptrio_frame *fr)
{
    struct onentry_main *f = PTRIO_SELF(fr, struct onentry_main);
    PTRIO_BEGIN(f);
    ptrio_mock_clock_jump(&mock, PTRIO_SEC(3));
    f->start = ptrio_now();
    PTRIO_MOVE_ON_AFTER(f, &f->sc, PTRIO_SEC(5)) {
        f->dl[0] = ptrio_scope_deadline(&f->sc);
        ptrio_scope_set_deadline(&f->sc, f->start + PTRIO_SEC(3));
        f->dl[1] = ptrio_scope_deadline(&f->sc);
        ptrio_scope_set_timeout(&f->sc, PTRIO_SEC(4));
        f->dl[2] = ptrio_scope_deadline(&f->sc);
    }
    /* The clock moves inside the block before anything reads or arms the
     * deadline: it still counts from the entry. */
    PTRIO_MOVE_ON_AFTER(f, &f->sc2, PTRIO_SEC(5)) {
        ptrio_mock_clock_jump(&mock, PTRIO_SEC(3));
        f->dl[3] = ptrio_scope_deadline(&f->sc2);
        PTRIO_AWAIT(f, ptrio_sleep_forever(f));
    }
    ev("moved-on", "");
    PTRIO_TRY_BLOCK(f, &f->sc3) {
        PTRIO_FAIL_AFTER(f, &f->sc, PTRIO_SEC(5)) {
            ptrio_mock_clock_jump(&mock, PTRIO_SEC(2));
            PTRIO_AWAIT(f, ptrio_sleep_forever(f));
        }
    }
    f->rc = ptrio_scope_error(&f->sc3);
    f->dl[4] = ptrio_scope_deadline(&f->sc);
    ev("failed", "");
    PTRIO_END(f);
}

/* move_on_after's deadline is the entry time plus the duration: set
 * later, absolute or relative, it is what was set; a jump inside the
 * block before the first checkpoint does not move it. */
/* Trio test_timeouts.py: test_timeout_deadline_on_entry */
START_TEST(test_timeout_deadline_on_entry)
{
    static struct onentry_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_mocked(onentry_main, &m), 0);
    ck_assert(m.start == PTRIO_SEC(3));
    ck_assert(m.dl[0] == m.start + PTRIO_SEC(5));
    ck_assert(m.dl[1] == m.start + PTRIO_SEC(3));
    ck_assert(m.dl[2] == m.start + PTRIO_SEC(4));
    ck_assert(m.dl[3] == PTRIO_SEC(8));         /* entered at 3 s */
    ck_assert(ptrio_cancelled_caught(&m.sc2));
    ck_assert_int_eq(m.rc, -PTRIO_ETIMEDOUT);
    ck_assert(m.dl[4] == PTRIO_SEC(13));        /* entered at 8 s */
    ck_assert_str_eq(L.buf, "moved-on@8000 failed@13000");
}
END_TEST

struct mbasic_main {
    ptrio_frame fr;
    ptrio_scope sc, sc2, sc3;
    ptrio_time start;
    int called0, r[3];
};

static int mbasic_main(ptrio_frame *fr)
{
    struct mbasic_main *f = PTRIO_SELF(fr, struct mbasic_main);
    PTRIO_BEGIN(f);
    f->start = ptrio_now();
    PTRIO_CANCEL_SCOPE(f, &f->sc) {
        ptrio_scope_set_deadline(&f->sc, f->start + PTRIO_SEC(1));
    }
    ptrio_mock_clock_jump(&mock, PTRIO_SEC(2));
    PTRIO_CHECKPOINT(f);
    PTRIO_CHECKPOINT(f);
    PTRIO_CHECKPOINT(f);
    f->called0 = ptrio_cancel_called(&f->sc);
    f->start = ptrio_now();
    PTRIO_MOVE_ON_AT(f, &f->sc2, f->start + PTRIO_SEC(1)) {
        ptrio_mock_clock_jump(&mock, PTRIO_SEC(2));
        PTRIO_AWAIT(f, ptrio_sleep_forever(f));
    }
    ev("swallowed", "");
    /* Changing the deadline: to a time already passed, the next
     * checkpoints fail. */
    f->start = ptrio_now();
    PTRIO_CANCEL_SCOPE(f, &f->sc3) {
        PTRIO_CHECKPOINT(f);
        ptrio_scope_set_deadline(&f->sc3, f->start + PTRIO_SEC(10));
        PTRIO_TRY(f, f->r[0], ptrio_checkpoint(f));
        ptrio_mock_clock_jump(&mock, PTRIO_SEC(5));
        PTRIO_CHECKPOINT(f);
        ptrio_scope_set_deadline(&f->sc3, f->start + PTRIO_SEC(1));
        PTRIO_TRY(f, f->r[1], ptrio_checkpoint(f));
        PTRIO_TRY(f, f->r[2], ptrio_checkpoint(f));
    }
    ev("changed", "");
    PTRIO_END(f);
}

/* A deadline of a scope already left never fires; one the clock jumps
 * past inside the block ends sleep_forever, and the scope catches it. */
/* Trio test_run.py: test_basic_timeout */
START_TEST(test_basic_timeout_mock_clock)
{
    static struct mbasic_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_mocked(mbasic_main, &m), 0);
    ck_assert(!m.called0);
    ck_assert(ptrio_cancel_called(&m.sc2));
    ck_assert(ptrio_cancelled_caught(&m.sc2));
    ck_assert_int_eq(m.r[0], 0);
    ck_assert_int_eq(m.r[1], -PTRIO_ECANCELED);
    ck_assert_int_eq(m.r[2], -PTRIO_ECANCELED);
    ck_assert(!ptrio_cancelled_caught(&m.sc3));     /* caught by TRY */
    ck_assert_str_eq(L.buf, "swallowed@4000 changed@9000");
}
END_TEST

struct called_main {
    ptrio_frame fr;
    ptrio_scope sc, sc2, sc3;
    int c[5], r;
};

static int called_main(ptrio_frame *fr)
{
    struct called_main *f = PTRIO_SELF(fr, struct called_main);
    PTRIO_BEGIN(f);
    PTRIO_MOVE_ON_AT(f, &f->sc, ptrio_now() + PTRIO_SEC(1)) {
        f->c[0] = ptrio_cancel_called(&f->sc);
        ptrio_mock_clock_jump(&mock, PTRIO_SEC(2));
        f->c[1] = ptrio_cancel_called(&f->sc);
        f->r = ptrio_checkpoint_if_cancelled(f);
        PTRIO_AWAIT(f, ptrio_checkpoint_if_cancelled(f));
        ev("not-reached", "");
    }
    PTRIO_FAIL_AFTER(f, &f->sc2, PTRIO_SEC(1)) {
        ptrio_mock_clock_jump(&mock, PTRIO_SEC(1));
        f->c[2] = ptrio_cancel_called(&f->sc2);
    }
    ev("done", "");
    PTRIO_CANCEL_SCOPE(f, &f->sc3) {
        ptrio_scope_set_deadline(&f->sc3, ptrio_now() + PTRIO_SEC(1));
    }
    ptrio_mock_clock_jump(&mock, PTRIO_SEC(1));
    f->c[3] = ptrio_cancel_called(&f->sc3);
    PTRIO_END(f);
}

/* cancel_called of an open scope is true once the clock passed its
 * deadline, before the loop had a chance to fire it: it is cancelled
 * then, so the next checkpoint fails. A scope already left stays as it
 * was. */
/* Trio _run.py: CancelScope.cancel_called (its property; no test names it) */
START_TEST(test_cancel_called_deadline_passed)
{
    static struct called_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_mocked(called_main, &m), 0);
    ck_assert(!m.c[0]);
    ck_assert(m.c[1]);
    ck_assert_int_eq(m.r, -PTRIO_ECANCELED);
    ck_assert(ptrio_cancelled_caught(&m.sc));
    ck_assert(m.c[2]);
    ck_assert(!ptrio_cancelled_caught(&m.sc2)); /* no checkpoint after */
    ck_assert(!m.c[3]);
    ck_assert_str_eq(L.buf, "done@3000");
}
END_TEST

struct tceff_main {
    ptrio_frame fr;
    ptrio_scope sh;
    ptrio_time e0, e1, e2;
    int r0, r1;
};

static int tceff_main(ptrio_frame *fr)
{
    struct tceff_main *f = PTRIO_SELF(fr, struct tceff_main);
    PTRIO_BEGIN(f);
    f->e0 = ptrio_current_effective_deadline();
    ck_assert_int_eq(ptrio_task_cancel(ptrio_current_task()), 0);
    f->e1 = ptrio_current_effective_deadline();
    f->r0 = ptrio_checkpoint_if_cancelled(f);
    PTRIO_MOVE_ON_AT(f, &f->sh, PTRIO_SEC(7)) {
        ptrio_scope_set_shield(&f->sh, true);
        f->e2 = ptrio_current_effective_deadline();
        f->r1 = ptrio_checkpoint_if_cancelled(f);
    }
    PTRIO_END(f);
}

/* A task cancelled by ptrio_task_cancel (ptrio's own: no Trio twin) is
 * cancelled for its effective deadline too (PTRIO_TIME_NINF), as for
 * checkpoint_if_cancelled: in Trio the two agree by definition. A shield
 * inside it holds against it for both. */
START_TEST(test_effective_deadline_task_cancelled)
{
    static struct tceff_main m;
    ck_assert_int_eq(run_virtual(tceff_main, &m, NULL), 0);
    ck_assert(m.e0 == PTRIO_TIME_INF);
    ck_assert_int_eq(m.r0, -PTRIO_ECANCELED);
    ck_assert(m.e1 == PTRIO_TIME_NINF);
    ck_assert_int_eq(m.r1, 0);
    ck_assert(m.e2 == PTRIO_SEC(7));
}
END_TEST

/* For ptrio_start: sleeps `pre` then calls started(), then sleeps `post`;
 * logs "<name>-pre", "<name>-post" or "<name>-post!<ERR>". */
struct pstart_kid {
    ptrio_frame fr;
    const char *name;
    ptrio_time pre, post;
};

static int pstart_kid(ptrio_frame *fr)
{
    struct pstart_kid *f = PTRIO_SELF(fr, struct pstart_kid);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_sleep(f, f->pre));
    ev(f->name, "-pre");
    PTRIO_CHECK(f, ptrio_started(f, NULL));
    PTRIO_AWAIT(f, ptrio_sleep(f, f->post));
    ev(f->name, "-post");
    PTRIO_FINALLY(f);
    if (PTRIO_FINALLY_ERROR(f))
        ev_err(f->name, PTRIO_FINALLY_ERROR(f));
    PTRIO_END(f);
}

/* Starts `k` into `target` and logs how the start ended. */
struct pstarter {
    ptrio_frame fr;
    ptrio_nursery *target;
    ptrio_task t;
    struct pstart_kid k;
    int rc;
};

static int pstarter(ptrio_frame *fr)
{
    struct pstarter *f = PTRIO_SELF(fr, struct pstarter);
    PTRIO_BEGIN(f);
    PTRIO_TRY(f, f->rc, ptrio_start(f, f->target, &f->t, pstart_kid, &f->k,
                                    NULL));
    ev_err("start", f->rc);
    PTRIO_END(f);
}

struct pending_main {
    ptrio_frame fr;
    ptrio_nursery outer, n;
    ptrio_scope tb;
    ptrio_task t;
    struct pstarter s;
};

static int pending_main(ptrio_frame *fr)
{
    struct pending_main *f = PTRIO_SELF(fr, struct pending_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->outer) {
        PTRIO_TRY_BLOCK(f, &f->tb) {
            PTRIO_NURSERY(f, &f->n) {
                f->s.target = &f->n;
                f->s.k = (struct pstart_kid){.name = "kid",
                    .pre = PTRIO_SEC(2), .post = PTRIO_SEC(5)};
                PTRIO_CHECK(f, ptrio_start_soon(&f->outer, &f->t, pstarter,
                                                &f->s));
                PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));
                ev("body", ":raise");
                PTRIO_RAISE(f, -PTRIO_EIO, "body");
            }
        }
        ev_err("n", ptrio_scope_error(&f->tb));
    }
    PTRIO_END(f);
}

/* The body of a nursery fails while another task's start into it is
 * pending: the nursery's cancellation does not reach the child (it still
 * runs under its starter), and the pending start keeps the failed nursery
 * open. started() then moves the child into the cancelled nursery, where
 * its next checkpoint fails at once; the start itself succeeds, and the
 * nursery raises the body's failure once the child is gone. Checked
 * against Trio git main. */
/* Trio: test_nursery_start_keeps_nursery_open, with a failing body */
START_TEST(test_start_pending_into_failed_nursery)
{
    static struct pending_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(pending_main, &m, NULL), 0);
    ck_assert_int_eq(m.s.rc, 0);
    ck_assert(ptrio_cancel_called(ptrio_nursery_scope(&m.n)));
    ck_assert(!ptrio_cancel_called(ptrio_nursery_scope(&m.outer)));
    ck_assert_str_eq(L.buf, "body:raise@1000 kid-pre@2000 "
                            "kid!PTRIO_ECANCELED@2000 start-ok@2000 "
                            "n!EIO@2000");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("semantics");
    TCase *tc = tcase_create("semantics");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_empty_nursery_in_cancelled_scope);
    tcase_add_test(tc, test_noop_child_in_cancelled_scope);
    tcase_add_loop_test(tc, test_nursery_exit_not_cancel_point, 0, 4);
    tcase_add_test(tc, test_start_cancelled_no_checkpoint);
    tcase_add_test(tc, test_start_cancelled_just_started);
    tcase_add_test(tc, test_start_cancelled_raise_after_started);
    tcase_add_test(tc, test_caught_by_nursery_scope);
    tcase_add_test(tc, test_caught_by_outer_scope);
    tcase_add_loop_test(tc, test_record_survives_finally, 0, 2 * FIN_MODES);
    tcase_add_test(tc, test_deadlock_during_failure);
    tcase_add_test(tc, test_nursery_deadline_leaves_tree);
    tcase_add_loop_test(tc, test_closed_scope_deadline_reset, 0, 2);
    tcase_add_test(tc, test_relative_deadline_absolute);
    tcase_add_test(tc, test_relative_deadline_read_later);
    tcase_add_test(tc, test_relative_deadline_read_after_run);
    tcase_add_test(tc, test_dump_lists_starting_child);
    tcase_add_test(tc, test_dump_deep_nesting);
    tcase_add_test(tc, test_timeout_shields_from_outer);
    tcase_add_test(tc, test_move_on_after_even_if_shielded);
    tcase_add_test(tc, test_fail_after_even_if_shielded);
    tcase_add_test(tc, test_cancel_scope_deadline_duplicates);
    tcase_add_test(tc, test_start_pending_into_failed_nursery);
    tcase_add_test(tc, test_very_deep_cancel_scope_nesting);
    tcase_add_test(tc, test_checkpoint_after_jump_past_deadline);
    tcase_add_test(tc, test_timeout_deadline_on_entry);
    tcase_add_test(tc, test_effective_deadline_task_cancelled);
    tcase_add_test(tc, test_basic_timeout_mock_clock);
    tcase_add_test(tc, test_cancel_called_deadline_passed);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
