/* tests/check_nursery.c: nurseries: joining, scheduling order, nesting,
 * closure, task names, ptrio_start/ptrio_started, nursery_cancel and the
 * nursery's own scope. Where a test has a twin in Python Trio
 * (trio/_core/_tests/test_run.py) the comment above it names it.
 * Portable: no POSIX calls; all time is on the virtual clock. */
#include <stdlib.h>

#define TESTUTIL_EVENTS
#include "testutil.h"

/* ---- shared helpers ------------------------------------------------ */

/* Logs "<name><i>" then checkpoints, three times. */
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

/* For ptrio_start: logs "<name>+" (if named), sleeps `before`, calls
 * started(&tag), sleeps `after`, then raises `code` ("late") if set, else
 * logs "<name>". Errors logged as "<name>!<ERR>". */
struct start_kid {
    ptrio_frame fr;
    const char *name;
    ptrio_time before, after;
    int code;
    int tag;
};

static int start_kid(ptrio_frame *fr)
{
    struct start_kid *f = PTRIO_SELF(fr, struct start_kid);
    PTRIO_BEGIN(f);
    if (f->name)
        ev(f->name, "+");
    PTRIO_AWAIT(f, ptrio_sleep(f, f->before));
    PTRIO_CHECK(f, ptrio_started(f, &f->tag));
    PTRIO_AWAIT(f, ptrio_sleep(f, f->after));
    if (f->code)
        PTRIO_RAISE(f, f->code, "late");
    if (f->name)
        ev(f->name, "");
    PTRIO_FINALLY(f);
    if (f->name && PTRIO_FINALLY_ERROR(f))
        ev_err(f->name, PTRIO_FINALLY_ERROR(f));
    PTRIO_END(f);
}

struct just_started {
    ptrio_frame fr;
    int checkpoint;
};

/* Calls started(), then reaches a checkpoint if asked, and returns. */
static int just_started(ptrio_frame *fr)
{
    struct just_started *f = PTRIO_SELF(fr, struct just_started);
    PTRIO_BEGIN(f);
    ev("child", "+");
    PTRIO_CHECK(f, ptrio_started(f, NULL));
    if (f->checkpoint)
        PTRIO_CHECKPOINT(f);
    ev("child", "");
    PTRIO_END(f);
}

struct jstart_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_scope cs;
    ptrio_task t;
    struct just_started k;
    int rc;
};

static int jstart_main(ptrio_frame *fr)
{
    struct jstart_main *f = PTRIO_SELF(fr, struct jstart_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_CANCEL_SCOPE(f, &f->cs) {
            ptrio_cancel(&f->cs);
            PTRIO_TRY(f, f->rc, ptrio_start(f, &f->n, &f->t, just_started,
                                            &f->k, NULL));
            ev("start", "");
        }
        ev("after-cs", "");
    }
    PTRIO_END(f);
}

/* Trio test_run.py: test_nursery_start (started_with_no_checkpoint): in a
 * cancelled caller, started() moves nothing; the child then returns
 * without a checkpoint, so it completed successfully: start() returns
 * normally and the scope catches nothing. */
START_TEST(test_start_started_no_checkpoint_cancelled)
{
    static struct jstart_main m;
    m = (struct jstart_main){0};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(jstart_main, &m, NULL), 0);
    ck_assert_int_eq(m.rc, 0);
    ck_assert_str_eq(L.buf, "child+@0 child@0 start@0 after-cs@0");
    ck_assert(!ptrio_cancelled_caught(&m.cs));
}
END_TEST

/* Trio test_run.py: test_nursery_start (just_started): in a cancelled
 * caller the child stays under start(); its checkpoint after started()
 * fails, and start() raises the cancellation. */
START_TEST(test_start_just_started_cancelled)
{
    static struct jstart_main m;
    m = (struct jstart_main){0};
    m.k.checkpoint = 1;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(jstart_main, &m, NULL), 0);
    ck_assert_int_eq(m.rc, -PTRIO_ECANCELED);
    ck_assert_str_eq(L.buf, "child+@0 start@0 after-cs@0");
}
END_TEST

/* ---- joining and scheduling ----------------------------------------- */

struct join_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[3];
    struct sleeper k[3];
};

static int join_main(ptrio_frame *fr)
{
    struct join_main *f = PTRIO_SELF(fr, struct join_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->k[0] = (struct sleeper){.name = "A", .d = PTRIO_SEC(3)};
        f->k[1] = (struct sleeper){.name = "B", .d = PTRIO_SEC(1)};
        f->k[2] = (struct sleeper){.name = "C", .d = PTRIO_SEC(2)};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], sleeper, &f->k[0]));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], sleeper, &f->k[1]));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[2], sleeper, &f->k[2]));
    }
    ev("closed", "");
    PTRIO_END(f);
}

/* Trio's tutorial (README): the block's end waits for every child. */
START_TEST(test_nursery_joins_children)
{
    static struct join_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(join_main, &m, NULL), 0);
    ck_assert_str_eq(L.buf,
                     "A+@0 B+@0 C+@0 B@1000 C@2000 A@3000 closed@3000");
    ck_assert_uint_eq(ptrio_nursery_live(&m.n), 0);
}
END_TEST

struct empty_main {
    ptrio_frame fr;
    ptrio_nursery outer, inner;
    ptrio_task t;
    struct sleeper sib;
};

static int empty_main(ptrio_frame *fr)
{
    struct empty_main *f = PTRIO_SELF(fr, struct empty_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->outer) {
        f->sib = (struct sleeper){.name = "sib", .d = 0};
        PTRIO_CHECK(f, ptrio_start_soon(&f->outer, &f->t, sleeper, &f->sib));
        PTRIO_NURSERY(f, &f->inner) {
        }
        ev("inner-closed", "");
    }
    ev("outer-closed", "");
    PTRIO_END(f);
}

/* A nursery with no children is still a checkpoint (the sibling queued
 * before it runs before the code after it). */
/* Trio test_run.py: test_trivial_yields */
START_TEST(test_empty_nursery_is_checkpoint)
{
    static struct empty_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(empty_main, &m, NULL), 0);
    ck_assert_str_eq(L.buf,
                     "sib+@0 inner-closed@0 sib@0 outer-closed@0");
}
END_TEST

struct empty_cancel_main {
    ptrio_frame fr;
    ptrio_scope sc;
    ptrio_nursery n;
};

static int empty_cancel_main(ptrio_frame *fr)
{
    struct empty_cancel_main *f = PTRIO_SELF(fr, struct empty_cancel_main);
    PTRIO_BEGIN(f);
    PTRIO_CANCEL_SCOPE(f, &f->sc) {
        ptrio_cancel(&f->sc);
        PTRIO_NURSERY(f, &f->n) {
            ev("body", "");
        }
        ev("not-reached", "");     /* reached: exit is not a cancel point */
    }
    ev("after", "");
    PTRIO_END(f);
}

/* Opening and closing an empty nursery schedules but does not check for
 * cancellation: in a cancelled scope the code after it runs, and the
 * scope catches nothing. */
/* Trio test_run.py: test_trivial_yields */
START_TEST(test_empty_nursery_checkpoint_cancelled)
{
    static struct empty_cancel_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(empty_cancel_main, &m, NULL), 0);
    ck_assert_str_eq(L.buf, "body@0 not-reached@0 after@0");
    ck_assert(ptrio_cancel_called(&m.sc));
    ck_assert(!ptrio_cancelled_caught(&m.sc));
    ck_assert(!ptrio_cancel_called(ptrio_nursery_scope(&m.n)));
}
END_TEST

struct interleave_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct looper k[2];
};

static int interleave_main(ptrio_frame *fr)
{
    struct interleave_main *f = PTRIO_SELF(fr, struct interleave_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->k[0] = (struct looper){.name = "a"};
        f->k[1] = (struct looper){.name = "b"};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], looper, &f->k[0]));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], looper, &f->k[1]));
        ev("body", "");
    }
    PTRIO_END(f);
}

/* Children run from the next batch, in start order, and interleave at
 * their checkpoints. */
/* Trio test_run.py: test_basic_interleave */
START_TEST(test_start_soon_order)
{
    static struct interleave_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(interleave_main, &m, NULL), 0);
    ck_assert_str_eq(L.buf, "body@0 a0@0 b0@0 a1@0 b1@0 a2@0 b2@0");
}
END_TEST

struct batches_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct looper k[2];
};

static int batches_main(ptrio_frame *fr)
{
    struct batches_main *f = PTRIO_SELF(fr, struct batches_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->k[0] = (struct looper){.name = "a"};
        f->k[1] = (struct looper){.name = "b"};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], looper, &f->k[0]));
        PTRIO_CHECKPOINT(f);
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], looper, &f->k[1]));
        ev("body", "");
    }
    PTRIO_END(f);
}

/* start_soon is not a checkpoint; a checkpoint goes to the back of the
 * queue; a child started later joins the following batch. */
START_TEST(test_start_soon_batches)
{
    static struct batches_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(batches_main, &m, NULL), 0);
    ck_assert_str_eq(L.buf, "a0@0 body@0 a1@0 b0@0 a2@0 b1@0 b2@0");
}
END_TEST

struct worker {
    ptrio_frame fr;
    const char *name;
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
    ev(f->name, "-closed");
    PTRIO_END(f);
}

struct nested_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct worker w;
    struct sleeper s;
};

static int nested_main(ptrio_frame *fr)
{
    struct nested_main *f = PTRIO_SELF(fr, struct nested_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->w = (struct worker){.name = "w",
            .k = {{.name = "l1", .d = PTRIO_SEC(1)},
                  {.name = "l3", .d = PTRIO_SEC(3)}}};
        f->s = (struct sleeper){.name = "s2", .d = PTRIO_SEC(2)};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], worker, &f->w));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], sleeper, &f->s));
    }
    ev("closed", "");
    PTRIO_END(f);
}

/* Nested nurseries: the inner joins its children, the outer joins the
 * task that owns the inner one. */
START_TEST(test_nested_nurseries)
{
    static struct nested_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(nested_main, &m, NULL), 0);
    ck_assert_str_eq(L.buf, "s2+@0 l1+@0 l3+@0 l1@1000 s2@2000 l3@3000 "
                            "w-closed@3000 closed@3000");
}
END_TEST

/* ---- closure, names, counts, storage ------------------------------ */

struct closure_child {
    ptrio_frame fr;
    ptrio_nursery *n;
    ptrio_task t;
    struct marker m;
    int rc;
};

static int closure_child(ptrio_frame *fr)
{
    struct closure_child *f = PTRIO_SELF(fr, struct closure_child);
    PTRIO_BEGIN(f);
    ev("child1", "");
    f->m = (struct marker){.name = "child2"};
    f->rc = ptrio_start_soon(f->n, &f->t, marker, &f->m);
    PTRIO_END(f);
}

struct closure_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t, late_t;
    struct closure_child c;
    struct marker late;
    struct start_kid sk;
    int rc_soon, rc_start;
    ptrio_time t_start;
};

static int closure_main(ptrio_frame *fr)
{
    struct closure_main *f = PTRIO_SELF(fr, struct closure_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->c = (struct closure_child){.n = &f->n, .rc = 1};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, closure_child, &f->c));
    }
    ev("closed", "");
    f->late = (struct marker){.name = "late"};
    f->rc_soon = ptrio_start_soon(&f->n, &f->late_t, marker, &f->late);
    f->t_start = ptrio_now();
    PTRIO_TRY(f, f->rc_start, ptrio_start(f, &f->n, &f->late_t, start_kid,
                                          &f->sk, NULL));
    ev("end", "");
    PTRIO_END(f);
}

/* A child may start siblings while the parent joins; once the block has
 * finished, start_soon and start fail with -PTRIO_ECLOSED at once. */
/* Trio: test_nursery_closure; test_nursery_start (closed_nursery) */
START_TEST(test_nursery_closure)
{
    static struct closure_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(closure_main, &m, NULL), 0);
    ck_assert_int_eq(m.c.rc, 0);
    ck_assert_int_eq(m.rc_soon, -PTRIO_ECLOSED);
    ck_assert_int_eq(m.rc_start, -PTRIO_ECLOSED);
    ck_assert_str_eq(L.buf, "child1@0 child2@0 closed@0 end@0");
}
END_TEST

struct namer {
    ptrio_frame fr;
    const char *seen;
};

static int namer(ptrio_frame *fr)
{
    struct namer *f = PTRIO_SELF(fr, struct namer);
    PTRIO_BEGIN(f);
    f->seen = ptrio_task_name(ptrio_current_task());
    PTRIO_END(f);
}

struct name_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct namer k[2];
    const char *root;
    const char *via_task[2];
};

static int name_main(ptrio_frame *fr)
{
    struct name_main *f = PTRIO_SELF(fr, struct name_main);
    PTRIO_BEGIN(f);
    f->root = ptrio_task_name(ptrio_current_task());
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], namer, &f->k[0]));
        PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[1], namer,
                                              &f->k[1], "custom"));
    }
    f->via_task[0] = ptrio_task_name(&f->t[0]);
    f->via_task[1] = ptrio_task_name(&f->t[1]);
    PTRIO_END(f);
}

/* A task is named after its function by default; start_soon_named sets
 * another name; the root is named too. */
/* Trio test_run.py: test_spawn_name */
START_TEST(test_spawn_name)
{
    static struct name_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(name_main, &m, NULL), 0);
    ck_assert_str_eq(m.root, "name_main");
    ck_assert_str_eq(m.k[0].seen, "namer");
    ck_assert_str_eq(m.k[1].seen, "custom");
    ck_assert_str_eq(m.via_task[0], "namer");
    ck_assert_str_eq(m.via_task[1], "custom");
}
END_TEST

/* Outside a running loop there is no task, and the clock reads 0. */
/* Trio test_run.py: test_out_of_context */
START_TEST(test_out_of_context)
{
    ck_assert_ptr_null(ptrio_current_task());
    ck_assert_ptr_null(ptrio_current_loop());
    ck_assert(ptrio_now() == 0);
}
END_TEST

struct live_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct sleeper k[2];
    unsigned live[4];
};

static int live_main(ptrio_frame *fr)
{
    struct live_main *f = PTRIO_SELF(fr, struct live_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->live[0] = ptrio_nursery_live(&f->n);
        f->k[0] = (struct sleeper){.name = "a", .d = PTRIO_SEC(1)};
        f->k[1] = (struct sleeper){.name = "b", .d = PTRIO_SEC(2)};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], sleeper, &f->k[0]));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], sleeper, &f->k[1]));
        f->live[1] = ptrio_nursery_live(&f->n);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1500)));
        f->live[2] = ptrio_nursery_live(&f->n);
    }
    f->live[3] = ptrio_nursery_live(&f->n);
    ev("closed", "");
    PTRIO_END(f);
}

/* ptrio_nursery_live counts the children still running. */
START_TEST(test_nursery_live)
{
    static struct live_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(live_main, &m, NULL), 0);
    ck_assert_uint_eq(m.live[0], 0);
    ck_assert_uint_eq(m.live[1], 2);
    ck_assert_uint_eq(m.live[2], 1);
    ck_assert_uint_eq(m.live[3], 0);
    ck_assert_str_eq(L.buf, "a+@0 b+@0 a@1000 b@2000 closed@2000");
}
END_TEST

struct busy_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t, t2;
    struct sleeper k, k2;
    int rc_task, rc_frame, rc_reuse;
};

static int busy_main(ptrio_frame *fr)
{
    struct busy_main *f = PTRIO_SELF(fr, struct busy_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->k = (struct sleeper){.name = "a", .d = PTRIO_SEC(1)};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, sleeper, &f->k));
        /* the task storage is in use, and so is the frame */
        f->k2 = (struct sleeper){.name = "x", .d = 0};
        f->rc_task = ptrio_start_soon(&f->n, &f->t, sleeper, &f->k2);
        f->rc_frame = ptrio_start_soon(&f->n, &f->t2, sleeper, &f->k);
    }
    /* once finished, both can be used again */
    PTRIO_NURSERY(f, &f->n) {
        f->k = (struct sleeper){.name = "b", .d = PTRIO_SEC(1)};
        f->rc_reuse = ptrio_start_soon(&f->n, &f->t, sleeper, &f->k);
    }
    ev("closed", "");
    PTRIO_END(f);
}

/* Starting a task or frame that still runs is -PTRIO_EBUSY; after it
 * finished, the same storage (and the same nursery) can be reused. */
START_TEST(test_start_soon_busy_and_reuse)
{
    static struct busy_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(busy_main, &m, NULL), 0);
    ck_assert_int_eq(m.rc_task, -PTRIO_EBUSY);
    ck_assert_int_eq(m.rc_frame, -PTRIO_EBUSY);
    ck_assert_int_eq(m.rc_reuse, 0);
    ck_assert_str_eq(L.buf, "a+@0 a@1000 b+@1000 b@2000 closed@2000");
}
END_TEST

/* ---- leaving the block: return, break, values -------------------- */

struct ret_sub {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct sleeper k;
};

static int ret_sub(ptrio_frame *fr)
{
    struct ret_sub *f = PTRIO_SELF(fr, struct ret_sub);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->k = (struct sleeper){.name = "a", .d = PTRIO_SEC(1)};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, sleeper, &f->k));
        PTRIO_RETURN(f, 42);
    }
    ev("not-reached", "");
    PTRIO_END(f);
}

struct ret_main {
    ptrio_frame fr;
    struct ret_sub sub;
    int rc;
};

static int ret_main(ptrio_frame *fr)
{
    struct ret_main *f = PTRIO_SELF(fr, struct ret_main);
    PTRIO_BEGIN(f);
    PTRIO_TRY(f, f->rc, ptrio_call(f, &f->sub, ret_sub));
    ev("returned", "");
    PTRIO_END(f);
}

/* PTRIO_RETURN inside a nursery block waits for the children, then the
 * caller receives the value. */
START_TEST(test_return_inside_nursery)
{
    static struct ret_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(ret_main, &m, NULL), 0);
    ck_assert_int_eq(m.rc, 42);
    ck_assert_str_eq(L.buf, "a+@0 a@1000 returned@1000");
}
END_TEST

struct break_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct sleeper k;
    int go;
};

static int break_main(ptrio_frame *fr)
{
    struct break_main *f = PTRIO_SELF(fr, struct break_main);
    PTRIO_BEGIN(f);
    f->go = 1;
    PTRIO_NURSERY(f, &f->n) {
        f->k = (struct sleeper){.name = "a", .d = PTRIO_SEC(1)};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, sleeper, &f->k));
        if (f->go)
            break;
        ev("skipped", "");
    }
    ev("after", "");
    PTRIO_END(f);
}

/* `break` leaves a nursery block normally: the children are still
 * joined. */
START_TEST(test_break_leaves_nursery)
{
    static struct break_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(break_main, &m, NULL), 0);
    ck_assert_str_eq(L.buf, "a+@0 a@1000 after@1000");
}
END_TEST

struct valued {
    ptrio_frame fr;
};

static int valued(ptrio_frame *fr)
{
    struct valued *f = PTRIO_SELF(fr, struct valued);
    PTRIO_BEGIN(f);
    PTRIO_CHECKPOINT(f);
    PTRIO_RETURN(f, 7);
    PTRIO_END(f);
}

struct valued_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct valued k[2];
};

static int valued_main(ptrio_frame *fr)
{
    struct valued_main *f = PTRIO_SELF(fr, struct valued_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], valued, &f->k[0]));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], valued, &f->k[1]));
    }
    ev("closed", "");
    PTRIO_RETURN(f, 3);
    PTRIO_END(f);
}

/* Children returning values are not failures; the main task's value is
 * what ptrio_loop_run returns. */
/* Trio test_run.py: test_basic */
START_TEST(test_children_return_values)
{
    static struct valued_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(valued_main, &m, NULL), 3);
    ck_assert_str_eq(L.buf, "closed@0");
}
END_TEST

/* ---- nursery_cancel and the nursery's scope ----------------------- */

struct ncancel_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct sleeper k[2];
};

static int ncancel_main(ptrio_frame *fr)
{
    struct ncancel_main *f = PTRIO_SELF(fr, struct ncancel_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->k[0] = (struct sleeper){.name = "a", .d = PTRIO_TIME_INF};
        f->k[1] = (struct sleeper){.name = "b", .d = PTRIO_SEC(10)};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], sleeper, &f->k[0]));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], sleeper, &f->k[1]));
        ptrio_nursery_cancel(&f->n);
        ev("body", "");
    }
    ev("after", "");
    PTRIO_END(f);
}

/* Children started into a cancelled nursery begin running, fail at their
 * first checkpoint; the nursery absorbs their -ECANCELED and its block
 * ends normally. */
/* Trio test_run.py: test_precancelled_task */
START_TEST(test_nursery_cancel_precancelled)
{
    static struct ncancel_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(ncancel_main, &m, NULL), 0);
    ck_assert_str_eq(L.buf, "body@0 a+@0 a!PTRIO_ECANCELED@0 b+@0 "
                            "b!PTRIO_ECANCELED@0 after@0");
    ck_assert(ptrio_cancel_called(ptrio_nursery_scope(&m.n)));
    ck_assert(ptrio_cancelled_caught(ptrio_nursery_scope(&m.n)));
}
END_TEST

struct ncancel2_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct sleeper k[2];
};

static int ncancel2_main(ptrio_frame *fr)
{
    struct ncancel2_main *f = PTRIO_SELF(fr, struct ncancel2_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->k[0] = (struct sleeper){.name = "a", .d = PTRIO_TIME_INF};
        f->k[1] = (struct sleeper){.name = "b", .d = PTRIO_SEC(10)};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], sleeper, &f->k[0]));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], sleeper, &f->k[1]));
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));
        ptrio_nursery_cancel(&f->n);
        ev("body", "");
    }
    ev("after", "");
    PTRIO_END(f);
}

/* nursery.cancel_scope.cancel(): parked children wake at once with
 * -ECANCELED; it is absorbed and the block ends normally. */
START_TEST(test_nursery_cancel_wakes_children)
{
    static struct ncancel2_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(ncancel2_main, &m, NULL), 0);
    ck_assert_str_eq(L.buf, "a+@0 b+@0 body@1000 a!PTRIO_ECANCELED@1000 "
                            "b!PTRIO_ECANCELED@1000 after@1000");
    ck_assert(ptrio_cancelled_caught(ptrio_nursery_scope(&m.n)));
}
END_TEST

struct ndeadline_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct sleeper k[2];
    ptrio_time dl;
};

static int ndeadline_main(ptrio_frame *fr)
{
    struct ndeadline_main *f = PTRIO_SELF(fr, struct ndeadline_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_CHECK(f, ptrio_scope_set_timeout(ptrio_nursery_scope(&f->n),
                                               PTRIO_SEC(2)));
        f->dl = ptrio_scope_deadline(ptrio_nursery_scope(&f->n));
        f->k[0] = (struct sleeper){.name = "a", .d = PTRIO_TIME_INF};
        f->k[1] = (struct sleeper){.name = "b", .d = PTRIO_SEC(1)};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], sleeper, &f->k[0]));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], sleeper, &f->k[1]));
    }
    ev("after", "");
    PTRIO_END(f);
}

/* The nursery's own scope takes a deadline: it cancels the children that
 * are still running when it fires, and the block ends normally. */
START_TEST(test_nursery_scope_deadline)
{
    static struct ndeadline_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(ndeadline_main, &m, NULL), 0);
    ck_assert(m.dl == PTRIO_SEC(2));
    ck_assert_str_eq(L.buf, "a+@0 b+@0 b@1000 a!PTRIO_ECANCELED@2000 after@2000");
    ck_assert(ptrio_cancel_called(ptrio_nursery_scope(&m.n)));
    ck_assert(ptrio_cancelled_caught(ptrio_nursery_scope(&m.n)));
}
END_TEST

/* ---- ptrio_start ---------------------------------------------------- */

struct start_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct start_kid k;
    void *value;
    int i;
    unsigned live[2];
    void *vals[2];
};

static int start_main(ptrio_frame *fr)
{
    struct start_main *f = PTRIO_SELF(fr, struct start_main);
    PTRIO_BEGIN(f);
    for (f->i = 0; f->i < 2; f->i++) {
        PTRIO_NURSERY(f, &f->n) {
            f->k = (struct start_kid){.before = PTRIO_SEC(f->i + 1),
                                      .after = PTRIO_SEC(f->i + 1)};
            f->value = NULL;
            PTRIO_AWAIT(f, ptrio_start(f, &f->n, &f->t, start_kid, &f->k,
                                       &f->value));
            ev("started", "");
            f->live[f->i] = ptrio_nursery_live(&f->n);
            f->vals[f->i] = f->value;
        }
        ev("closed", "");
    }
    PTRIO_END(f);
}

/* Start waits for started(), passes its value back, then the nursery waits
 * for the child. */
/* Trio test_run.py: test_nursery_start (happy path) */
START_TEST(test_start_value)
{
    static struct start_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(start_main, &m, NULL), 0);
    ck_assert_str_eq(L.buf,
                     "started@1000 closed@2000 started@4000 closed@6000");
    ck_assert_uint_eq(m.live[0], 1);
    ck_assert_uint_eq(m.live[1], 1);
    ck_assert_ptr_eq(m.vals[0], &m.k.tag);
    ck_assert_ptr_eq(m.vals[1], &m.k.tag);
}
END_TEST

struct raise_before {
    ptrio_frame fr;
};

static int raise_before(ptrio_frame *fr)
{
    struct raise_before *f = PTRIO_SELF(fr, struct raise_before);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));
    PTRIO_RAISE(f, -PTRIO_EIO, "oops");
    PTRIO_END(f);
}

struct sfail_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t, sib_t;
    struct raise_before k;
    struct sleeper sib;
    void *value;
    int rc, frc;
    ptrio_failure fail;
};

static int sfail_main(ptrio_frame *fr)
{
    struct sfail_main *f = PTRIO_SELF(fr, struct sfail_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->sib = (struct sleeper){.name = "sib", .d = PTRIO_SEC(3)};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->sib_t, sleeper, &f->sib));
        f->value = &f->value;
        PTRIO_TRY(f, f->rc, ptrio_start(f, &f->n, &f->t, raise_before, &f->k,
                                        &f->value));
        f->frc = ptrio_failure_last(f->rc, &f->fail);
        ev("start-failed", "");
    }
    ev("closed", "");
    PTRIO_END(f);
}

/* A child failing before started() fails the start with its error; the
 * target nursery is not cancelled. */
/* Trio test_run.py: test_nursery_start (raise_keyerror) */
START_TEST(test_start_error_before_started)
{
    static struct sfail_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(sfail_main, &m, NULL), 0);
    ck_assert_int_eq(m.rc, -PTRIO_EIO);
    ck_assert_int_eq(m.frc, 0);
    ck_assert_int_eq(m.fail.code, -PTRIO_EIO);
    ck_assert_str_eq(m.fail.msg, "oops");
    ck_assert_str_eq(m.fail.task, "raise_before");
    ck_assert_ptr_eq(m.value, &m.value);   /* untouched */
    ck_assert_str_eq(L.buf, "sib+@0 start-failed@1000 sib@3000 closed@3000");
    ck_assert(!ptrio_cancel_called(ptrio_nursery_scope(&m.n)));
}
END_TEST

struct nothing {
    ptrio_frame fr;
};

static int nothing(ptrio_frame *fr)
{
    struct nothing *f = PTRIO_SELF(fr, struct nothing);
    PTRIO_BEGIN(f);
    PTRIO_END(f);
}

struct nostart_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct nothing k;
    int rc;
};

static int nostart_main(ptrio_frame *fr)
{
    struct nostart_main *f = PTRIO_SELF(fr, struct nostart_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_TRY(f, f->rc, ptrio_start(f, &f->n, &f->t, nothing, &f->k,
                                        NULL));
        ev("start-failed", "");
    }
    ev("closed", "");
    PTRIO_END(f);
}

/* A child returning without started() fails the start with
 * -PTRIO_ENOSTART. */
/* Trio test_run.py: test_nursery_start (nothing) */
START_TEST(test_start_enostart)
{
    static struct nostart_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(nostart_main, &m, NULL), 0);
    ck_assert_int_eq(m.rc, -PTRIO_ENOSTART);
    ck_assert_str_eq(L.buf, "start-failed@0 closed@0");
}
END_TEST

struct scancel_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_scope cs;
    ptrio_task t, ct;
    struct start_kid k;
    struct canceller c;
};

static int scancel_main(ptrio_frame *fr)
{
    struct scancel_main *f = PTRIO_SELF(fr, struct scancel_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->c = (struct canceller){.name = "cancel", .d = PTRIO_SEC(2),
                                  .target = &f->cs};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->ct, canceller, &f->c));
        PTRIO_CANCEL_SCOPE(f, &f->cs) {
            f->k = (struct start_kid){.name = "slow", .before = PTRIO_SEC(10),
                                      .after = PTRIO_SEC(10)};
            PTRIO_AWAIT(f, ptrio_start(f, &f->n, &f->t, start_kid, &f->k,
                                       NULL));
            ev("not-reached", "");     /* reached: exit is not a cancel point */
        }
        ev("after-cs", "");
    }
    ev("closed", "");
    PTRIO_END(f);
}

/* Cancelling the starter's scope while it waits cancels the child (still
 * under the starter); the start fails with -ECANCELED, caught by that
 * scope; the nursery is not cancelled. */
START_TEST(test_start_cancel_starter)
{
    static struct scancel_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(scancel_main, &m, NULL), 0);
    ck_assert_str_eq(L.buf, "slow+@0 cancel@2000 slow!PTRIO_ECANCELED@2000 "
                            "after-cs@2000 closed@2000");
    ck_assert(ptrio_cancelled_caught(&m.cs));
    ck_assert(!ptrio_cancel_called(ptrio_nursery_scope(&m.n)));
}
END_TEST

/* The same cancellation, seen three ways: PTRIO_TRY's variable, the
 * frame's PTRIO_RESULT after it, and a step function written by hand
 * (no macros) that returns the status its ptrio_start woke with. Each is
 * -PTRIO_ECANCELED, never a ptrio marker; raised, the scope catches it. */
struct hand_starter {
    ptrio_frame fr;
    int state, seen;
    ptrio_nursery *n;
    ptrio_task *t;
    struct start_kid *k;
};

static int hand_starter(ptrio_frame *fr)
{
    struct hand_starter *h = PTRIO_SELF(fr, struct hand_starter);
    if (h->state == 0) {
        h->state = 1;
        return ptrio_start(fr, h->n, h->t, start_kid, h->k, NULL);
    }
    h->seen = fr->result;
    return fr->result;
}

struct sresult_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_scope cs[2];
    ptrio_task ct[2], t[2];
    struct start_kid k[2];
    struct canceller c[2];
    struct hand_starter h;
    int rc, result;
};

static int sresult_main(ptrio_frame *fr)
{
    struct sresult_main *f = PTRIO_SELF(fr, struct sresult_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->c[0] = (struct canceller){.name = "c0", .d = PTRIO_SEC(2),
                                     .target = &f->cs[0]};
        f->c[1] = (struct canceller){.name = "c1", .d = PTRIO_SEC(3),
                                     .target = &f->cs[1]};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->ct[0], canceller,
                                        &f->c[0]));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->ct[1], canceller,
                                        &f->c[1]));
        PTRIO_CANCEL_SCOPE(f, &f->cs[0]) {
            f->k[0] = (struct start_kid){.before = PTRIO_SEC(10)};
            PTRIO_TRY(f, f->rc, ptrio_start(f, &f->n, &f->t[0], start_kid,
                                            &f->k[0], NULL));
            f->result = PTRIO_RESULT(f);
        }
        PTRIO_CANCEL_SCOPE(f, &f->cs[1]) {
            f->k[1] = (struct start_kid){.before = PTRIO_SEC(10)};
            f->h = (struct hand_starter){.n = &f->n, .t = &f->t[1],
                                         .k = &f->k[1]};
            PTRIO_AWAIT(f, ptrio_call(f, &f->h, hand_starter));
        }
    }
    PTRIO_END(f);
}

START_TEST(test_start_cancelled_status_everywhere)
{
    static struct sresult_main m;
    tlog_clear(&L);
    memset(&m, 0, sizeof m);
    ck_assert_int_eq(run_virtual(sresult_main, &m, NULL), 0);
    ck_assert_int_eq(m.rc, -PTRIO_ECANCELED);
    ck_assert_int_eq(m.result, -PTRIO_ECANCELED);
    ck_assert_int_eq(m.h.seen, -PTRIO_ECANCELED);
    ck_assert(!ptrio_cancelled_caught(&m.cs[0]));   /* TRY caught it */
    ck_assert(ptrio_cancelled_caught(&m.cs[1]));
}
END_TEST

struct sprecancel_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_scope cs;
    ptrio_task t;
    struct start_kid k;
};

static int sprecancel_main(ptrio_frame *fr)
{
    struct sprecancel_main *f = PTRIO_SELF(fr, struct sprecancel_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_CANCEL_SCOPE(f, &f->cs) {
            ptrio_cancel(&f->cs);
            ev("pre", "");
            f->k = (struct start_kid){.name = "kid", .before = PTRIO_SEC(1),
                                      .after = PTRIO_SEC(1)};
            PTRIO_AWAIT(f, ptrio_start(f, &f->n, &f->t, start_kid, &f->k,
                                       NULL));
            ev("not-reached", "");     /* reached: exit is not a cancel point */
        }
        ev("after", "");
    }
    PTRIO_END(f);
}

/* Start in an already-cancelled scope still starts the child, which fails
 * at its first checkpoint; the start raises -ECANCELED, caught by the
 * cancelled scope. */
/* Trio test_run.py: test_nursery_start (cancelled cs) */
START_TEST(test_start_when_already_cancelled)
{
    static struct sprecancel_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(sprecancel_main, &m, NULL), 0);
    ck_assert_str_eq(L.buf, "pre@0 kid+@0 kid!PTRIO_ECANCELED@0 after@0");
    ck_assert(ptrio_cancelled_caught(&m.cs));
}
END_TEST

struct double_started {
    ptrio_frame fr;
    int rc1, rc2;
};

static int double_started(ptrio_frame *fr)
{
    struct double_started *f = PTRIO_SELF(fr, struct double_started);
    PTRIO_BEGIN(f);
    f->rc1 = ptrio_started(f, NULL);
    f->rc2 = ptrio_started(f, NULL);
    PTRIO_END(f);
}

struct twice_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct double_started k;
    int rc;
};

static int twice_main(ptrio_frame *fr)
{
    struct twice_main *f = PTRIO_SELF(fr, struct twice_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->k = (struct double_started){.rc1 = 1, .rc2 = 1};
        PTRIO_TRY(f, f->rc, ptrio_start(f, &f->n, &f->t, double_started,
                                        &f->k, NULL));
    }
    PTRIO_END(f);
}

/* A second started() is -PTRIO_EMISUSE; the start itself succeeded. */
/* Trio test_run.py: test_nursery_start (double_started) */
START_TEST(test_started_twice)
{
    static struct twice_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(twice_main, &m, NULL), 0);
    ck_assert_int_eq(m.rc, 0);
    ck_assert_int_eq(m.k.rc1, 0);
    ck_assert_int_eq(m.k.rc2, -PTRIO_EMISUSE);
}
END_TEST

struct plain_started {
    ptrio_frame fr;
    int rc;
};

static int plain_started(ptrio_frame *fr)
{
    struct plain_started *f = PTRIO_SELF(fr, struct plain_started);
    PTRIO_BEGIN(f);
    f->rc = ptrio_started(f, NULL);
    PTRIO_CHECKPOINT(f);
    PTRIO_END(f);
}

struct ignored_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct plain_started k;
    int rc_root;
};

static int ignored_main(ptrio_frame *fr)
{
    struct ignored_main *f = PTRIO_SELF(fr, struct ignored_main);
    PTRIO_BEGIN(f);
    f->rc_root = ptrio_started(f, NULL);
    PTRIO_NURSERY(f, &f->n) {
        f->k = (struct plain_started){.rc = 1};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, plain_started, &f->k));
    }
    PTRIO_END(f);
}

/* started() in a task that was not started by ptrio_start is a no-op
 * returning 0. */
/* Trio test_run.py: test_nursery_start (TASK_STATUS_IGNORED) */
START_TEST(test_started_ignored)
{
    static struct ignored_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(ignored_main, &m, NULL), 0);
    ck_assert_int_eq(m.rc_root, 0);
    ck_assert_int_eq(m.k.rc, 0);
}
END_TEST

struct starter {
    ptrio_frame fr;
    ptrio_nursery *target;
    ptrio_task t;
    struct start_kid k;
    struct raise_before rb;
    int crash;
    int rc;
};

static int starter(ptrio_frame *fr)
{
    struct starter *f = PTRIO_SELF(fr, struct starter);
    PTRIO_BEGIN(f);
    if (f->crash)
        PTRIO_TRY(f, f->rc, ptrio_start(f, f->target, &f->t, raise_before,
                                        &f->rb, NULL));
    else
        PTRIO_TRY(f, f->rc, ptrio_start(f, f->target, &f->t, start_kid,
                                        &f->k, NULL));
    PTRIO_END(f);
}

struct keepopen_main {
    ptrio_frame fr;
    ptrio_nursery n1, n2;
    ptrio_task st[2];
    struct starter s[2];
};

static int keepopen_main(ptrio_frame *fr)
{
    struct keepopen_main *f = PTRIO_SELF(fr, struct keepopen_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n1) {
        PTRIO_NURSERY(f, &f->n2) {
            f->s[0] = (struct starter){.target = &f->n2, .rc = 1,
                .k = {.before = PTRIO_SEC(2), .after = PTRIO_SEC(3)}};
            PTRIO_CHECK(f, ptrio_start_soon(&f->n1, &f->st[0], starter,
                                            &f->s[0]));
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));
            f->s[1] = (struct starter){.target = &f->n2, .rc = 1,
                .k = {.before = PTRIO_SEC(2), .after = PTRIO_SEC(3)}};
            PTRIO_CHECK(f, ptrio_start_soon(&f->n1, &f->st[1], starter,
                                            &f->s[1]));
        }
        ev("n2-closed", "");
    }
    ev("n1-closed", "");
    PTRIO_END(f);
}

/* Pending starts keep the target nursery open although it has no child
 * yet. */
/* Trio test_run.py: test_nursery_start_keeps_nursery_open */
START_TEST(test_start_keeps_nursery_open)
{
    static struct keepopen_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(keepopen_main, &m, NULL), 0);
    ck_assert_str_eq(L.buf, "n2-closed@6000 n1-closed@6000");
    ck_assert_int_eq(m.s[0].rc, 0);
    ck_assert_int_eq(m.s[1].rc, 0);
}
END_TEST

struct keepopen2_main {
    ptrio_frame fr;
    ptrio_nursery n1, n2;
    ptrio_task st;
    struct starter s;
};

static int keepopen2_main(ptrio_frame *fr)
{
    struct keepopen2_main *f = PTRIO_SELF(fr, struct keepopen2_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n1) {
        PTRIO_NURSERY(f, &f->n2) {
            f->s = (struct starter){.target = &f->n2, .crash = 1, .rc = 1};
            PTRIO_CHECK(f, ptrio_start_soon(&f->n1, &f->st, starter, &f->s));
            PTRIO_CHECKPOINT(f);    /* let the start begin */
        }
        ev("n2-closed", "");
    }
    ev("n1-closed", "");
    PTRIO_END(f);
}

/* The pending start keeps the target open until the child fails before
 * started(); the failure goes to the starter, not to the target nursery. */
/* Trio: test_nursery_start_keeps_nursery_open (sleep_then_crash) */
START_TEST(test_start_keeps_nursery_open_crash)
{
    static struct keepopen2_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(keepopen2_main, &m, NULL), 0);
    ck_assert_int_eq(m.s.rc, -PTRIO_EIO);
    ck_assert_str_eq(L.buf, "n2-closed@1000 n1-closed@1000");
    ck_assert(!ptrio_cancel_called(ptrio_nursery_scope(&m.n2)));
}
END_TEST

struct sub_after_started {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t, sib_t;
    struct start_kid k;
    struct sleeper sib;
};

static int sub_after_started(ptrio_frame *fr)
{
    struct sub_after_started *f = PTRIO_SELF(fr, struct sub_after_started);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->sib = (struct sleeper){.name = "sib", .d = PTRIO_TIME_INF};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->sib_t, sleeper, &f->sib));
        f->k = (struct start_kid){.before = 0, .after = PTRIO_SEC(1),
                                  .code = -PTRIO_EIO};
        PTRIO_AWAIT(f, ptrio_start(f, &f->n, &f->t, start_kid, &f->k, NULL));
        ev("started", "");
    }
    ev("not-reached", "");
    PTRIO_END(f);
}

struct astarted_main {
    ptrio_frame fr;
    struct sub_after_started sub;
    int rc, frc;
    ptrio_failure fail;
};

static int astarted_main(ptrio_frame *fr)
{
    struct astarted_main *f = PTRIO_SELF(fr, struct astarted_main);
    PTRIO_BEGIN(f);
    PTRIO_TRY(f, f->rc, ptrio_call(f, &f->sub, sub_after_started));
    f->frc = ptrio_failure_last(f->rc, &f->fail);
    ev("caught", "");
    PTRIO_END(f);
}

/* After started() the child belongs to the nursery: its failure cancels
 * the nursery (the sibling) and is raised at the block's end. */
START_TEST(test_start_failure_after_started)
{
    static struct astarted_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(astarted_main, &m, NULL), 0);
    ck_assert_int_eq(m.rc, -PTRIO_EIO);
    ck_assert_int_eq(m.frc, 0);
    ck_assert_str_eq(m.fail.task, "start_kid");
    ck_assert_str_eq(m.fail.msg, "late");
    ck_assert_ptr_eq(m.fail.via, &m.sub.n);
    ck_assert_str_eq(L.buf,
                     "sib+@0 started@0 sib!PTRIO_ECANCELED@1000 caught@1000");
}
END_TEST

struct scancelled_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct start_kid k;
};

static int scancelled_main(ptrio_frame *fr)
{
    struct scancelled_main *f = PTRIO_SELF(fr, struct scancelled_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->k = (struct start_kid){.name = "kid", .before = PTRIO_SEC(1),
                                  .after = PTRIO_TIME_INF};
        PTRIO_AWAIT(f, ptrio_start(f, &f->n, &f->t, start_kid, &f->k, NULL));
        ev("started", "");
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));
        ptrio_nursery_cancel(&f->n);
    }
    ev("closed", "");
    PTRIO_END(f);
}

/* After started() the nursery's cancellation reaches the child. */
START_TEST(test_start_nursery_cancel_reaches_started)
{
    static struct scancelled_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(scancelled_main, &m, NULL), 0);
    ck_assert_str_eq(L.buf, "kid+@0 started@1000 kid!PTRIO_ECANCELED@2000 "
                            "closed@2000");
}
END_TEST

/* Opens a nursery, hands it to its starter through started(), sleeps. */
struct setup_nursery {
    ptrio_frame fr;
    ptrio_nursery n;
};

static int setup_nursery(ptrio_frame *fr)
{
    struct setup_nursery *f = PTRIO_SELF(fr, struct setup_nursery);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_CHECK(f, ptrio_started(f, &f->n));
        PTRIO_AWAIT(f, ptrio_sleep_forever(f));
    }
    PTRIO_END(f);
}

/* Two children asleep; then (optionally) cancels `cancel_first` and calls
 * started(): it moves, with its sleeping children, into that nursery. */
struct sleeping_children {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct sleeper k[2];
    ptrio_nursery *cancel_first;
};

static int sleeping_children(ptrio_frame *fr)
{
    struct sleeping_children *f = PTRIO_SELF(fr, struct sleeping_children);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->k[0] = (struct sleeper){.name = "c1", .d = PTRIO_TIME_INF};
        f->k[1] = (struct sleeper){.name = "c2", .d = PTRIO_TIME_INF};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], sleeper, &f->k[0]));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], sleeper, &f->k[1]));
        PTRIO_CHECKPOINT(f);
        PTRIO_CHECKPOINT(f);        /* both children are parked now */
        ev("moving", "");
        if (f->cancel_first)
            ptrio_nursery_cancel(f->cancel_first);
        PTRIO_CHECK(f, ptrio_started(f, NULL));
    }
    PTRIO_END(f);
}

struct cancelled_target_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct setup_nursery setup;
    struct sleeping_children sc;
    void *target;
    int after;
};

static int cancelled_target_main(ptrio_frame *fr)
{
    struct cancelled_target_main *f =
        PTRIO_SELF(fr, struct cancelled_target_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_AWAIT(f, ptrio_start(f, &f->n, &f->t[0], setup_nursery,
                                   &f->setup, &f->target));
        f->sc = (struct sleeping_children){
            .cancel_first = f->after ? NULL : f->target};
        PTRIO_AWAIT(f, ptrio_start(f, f->target, &f->t[1], sleeping_children,
                                   &f->sc, NULL));
        ev("started", "");
        if (f->after)
            ptrio_nursery_cancel(f->target);
    }
    ev("done", "");
    PTRIO_END(f);
}

/* A task moved by started() into a nursery cancelled just before: its
 * parked children learn of the cancellation at once (no deadlock). */
/* Trio test_run.py: test_nursery_start_with_cancelled_nursery */
START_TEST(test_start_into_cancelled_nursery)
{
    static struct cancelled_target_main m;
    tlog_clear(&L);
    m.after = 0;
    ck_assert_int_eq(run_virtual(cancelled_target_main, &m, NULL), 0);
    ck_assert_ptr_eq(m.target, &m.setup.n);
    ck_assert_str_eq(L.buf, "c1+@0 c2+@0 moving@0 started@0 "
                            "c1!PTRIO_ECANCELED@0 c2!PTRIO_ECANCELED@0 done@0");
    ck_assert(ptrio_cancelled_caught(ptrio_nursery_scope(&m.setup.n)));
}
END_TEST

/* The same nursery cancelled just after started(): the moved task's
 * children are cancelled through it. */
/* Trio test_run.py: test_nursery_start_with_cancelled_nursery */
START_TEST(test_start_then_cancel_target)
{
    static struct cancelled_target_main m;
    tlog_clear(&L);
    m.after = 1;
    ck_assert_int_eq(run_virtual(cancelled_target_main, &m, NULL), 0);
    ck_assert_str_eq(L.buf, "c1+@0 c2+@0 moving@0 started@0 "
                            "c1!PTRIO_ECANCELED@0 c2!PTRIO_ECANCELED@0 done@0");
    ck_assert(ptrio_cancelled_caught(ptrio_nursery_scope(&m.setup.n)));
}
END_TEST

/* Raises `code` ("fail") at once, with no checkpoint. */
struct failer {
    ptrio_frame fr;
    int code;
};

static int failer(ptrio_frame *fr)
{
    struct failer *f = PTRIO_SELF(fr, struct failer);
    PTRIO_BEGIN(f);
    PTRIO_RAISE(f, f->code, "fail");
    PTRIO_END(f);
}

/* For ptrio_start: calls started() first if `after`; with `group`, a
 * nursery of two failing children (-EGROUP) fails it, else it raises
 * -EIO; never a checkpoint before the failure. */
struct sraiser {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct failer k[2];
    int after, group;
};

static int sraiser(ptrio_frame *fr)
{
    struct sraiser *f = PTRIO_SELF(fr, struct sraiser);
    PTRIO_BEGIN(f);
    if (f->after)
        PTRIO_CHECK(f, ptrio_started(f, NULL));
    if (f->group) {
        PTRIO_NURSERY(f, &f->n) {
            f->k[0].code = -PTRIO_ENOENT;
            f->k[1].code = -PTRIO_EINVAL;
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], failer,
                                            &f->k[0]));
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], failer,
                                            &f->k[1]));
        }
    }
    PTRIO_RAISE(f, -PTRIO_EIO, "raiser");
    PTRIO_END(f);
}

struct start_raiser {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct sraiser k;
};

static int start_raiser(ptrio_frame *fr)
{
    struct start_raiser *f = PTRIO_SELF(fr, struct start_raiser);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_AWAIT(f, ptrio_start(f, &f->n, &f->t, sraiser, &f->k, NULL));
        ev("started", "");
    }
    ev("not-reached", "");
    PTRIO_END(f);
}

/* A child failing before or after started(), with one error or with a
 * group of its own: the failure comes out of the start (before) or of
 * the nursery (after) as itself, never wrapped in a group, and ends the
 * run. After started() the start returns although the child failed in
 * the same step (Trio logs "started" too). */
/* Trio test_run.py: test_trio_run_strict_before_started (non-strict) */
START_TEST(test_start_raiser_not_wrapped)
{
    static struct start_raiser m;
    static const char *const logs[] = {"", "", "started@0", "started@0"};
    int i;
    for (i = 0; i < 4; i++) {
        tlog_clear(&L);
        memset(&m, 0, sizeof m);
        m.k.after = i >= 2;
        m.k.group = i & 1;
        ck_assert_int_eq(run_virtual(start_raiser, &m, NULL),
                         m.k.group ? -PTRIO_EGROUP : -PTRIO_EIO);
        ck_assert_str_eq(L.buf, logs[i]);
    }
}
END_TEST

/* For ptrio_start: reads its effective deadline, sleeps 500 ms, calls
 * started(), reads it again and sleeps 2 s. */
struct dl_kid {
    ptrio_frame fr;
    ptrio_time before, after;
};

static int dl_kid(ptrio_frame *fr)
{
    struct dl_kid *f = PTRIO_SELF(fr, struct dl_kid);
    PTRIO_BEGIN(f);
    f->before = ptrio_current_effective_deadline();
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(500)));
    PTRIO_CHECK(f, ptrio_started(f, NULL));
    f->after = ptrio_current_effective_deadline();
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(2)));
    ev("kid", "");
    PTRIO_FINALLY(f);
    if (PTRIO_FINALLY_ERROR(f))
        ev_err("kid", PTRIO_FINALLY_ERROR(f));
    PTRIO_END(f);
}

struct dlmove_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_scope sc;
    ptrio_task t;
    struct dl_kid k;
    ptrio_time nd;
};

static int dlmove_main(ptrio_frame *fr)
{
    struct dlmove_main *f = PTRIO_SELF(fr, struct dlmove_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->nd = PTRIO_SEC(4);
        ptrio_scope_set_deadline(ptrio_nursery_scope(&f->n), f->nd);
        PTRIO_MOVE_ON_AFTER(f, &f->sc, PTRIO_SEC(1)) {
            PTRIO_AWAIT(f, ptrio_start(f, &f->n, &f->t, dl_kid, &f->k, NULL));
            ev("started", "");
            PTRIO_AWAIT(f, ptrio_sleep_forever(f));
        }
        ev("moved-on", "");
    }
    ev("closed", "");
    PTRIO_END(f);
}

/* Until started() the child runs under its starter's scopes (their
 * deadline); then under the target nursery's only: the starter's
 * deadline, firing later, no longer reaches it. */
/* Trio: test_nursery_start (the child runs under start() until started) */
START_TEST(test_start_child_deadline_moves)
{
    static struct dlmove_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(dlmove_main, &m, NULL), 0);
    ck_assert(m.k.before == PTRIO_SEC(1));
    ck_assert(m.k.after == PTRIO_SEC(4));
    ck_assert(ptrio_cancelled_caught(&m.sc));
    ck_assert(!ptrio_cancel_called(ptrio_nursery_scope(&m.n)));
    ck_assert_str_eq(L.buf, "started@500 moved-on@1000 kid@2500 "
                            "closed@2500");
}
END_TEST

/* The run's tree as "<depth>:<what>" words: a task's name ("*" while it
 * is being started), a scope as "n" (the nursery `n`), "cs" or "s". */
static void put(char *out, size_t cap, size_t *len, const char *s)
{
    while (*s && *len + 1 < cap)
        out[(*len)++] = *s++;
    out[*len] = '\0';
}

static void walk_tree(char *out, size_t cap, ptrio_nursery *n,
                      const ptrio_scope *cs)
{
    ptrio_tree_node node;
    ptrio_task_info ti;
    size_t len = 0;
    char depth[2] = {0, 0};
    out[0] = '\0';
    if (ptrio_tree_first(&node) != 0)
        return;
    do {
        const char *what = "s";
        if (node.task) {
            ptrio_task_info_get(node.task, &ti);
            what = ti.name;
        } else if (node.scope == cs) {
            what = "cs";
        } else if (node.scope == ptrio_nursery_scope(n)) {
            what = "n";
        }
        if (len)
            put(out, cap, &len, " ");
        depth[0] = (char)('0' + node.depth % 10);
        put(out, cap, &len, depth);
        put(out, cap, &len, ":");
        put(out, cap, &len, what);
        if (node.task && ti.being_started)
            put(out, cap, &len, "*");
    } while (ptrio_tree_next(&node) == 1);
}

struct intro_main;

/* Walks the tree before and after its started(). */
struct intro_kid {
    ptrio_frame fr;
    struct intro_main *m;
};

struct intro_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_scope cs;
    ptrio_task t;
    struct intro_kid k;
    char before[48], after[48], done[48];
};

static int intro_kid(ptrio_frame *fr)
{
    struct intro_kid *f = PTRIO_SELF(fr, struct intro_kid);
    PTRIO_BEGIN(f);
    walk_tree(f->m->before, sizeof f->m->before, &f->m->n, &f->m->cs);
    PTRIO_CHECK(f, ptrio_started(f, NULL));
    walk_tree(f->m->after, sizeof f->m->after, &f->m->n, &f->m->cs);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));
    PTRIO_END(f);
}

static int intro_main(ptrio_frame *fr)
{
    struct intro_main *f = PTRIO_SELF(fr, struct intro_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_CANCEL_SCOPE(f, &f->cs) {
            f->k.m = f;
            PTRIO_AWAIT(f, ptrio_start(f, &f->n, &f->t, intro_kid, &f->k,
                                       NULL));
            walk_tree(f->done, sizeof f->done, &f->n, &f->cs);
        }
    }
    PTRIO_END(f);
}

/* Until started() the child hangs under its starter's innermost scope,
 * flagged as being started (Trio: parent_nursery is start()'s own,
 * eventual_parent_nursery the target); then it is a child of the target
 * nursery, and stays there once the start returned. */
/* Trio test_run.py: test_task_tree_introspection */
START_TEST(test_task_tree_introspection)
{
    static struct intro_main m;
    memset(&m, 0, sizeof m);
    ck_assert_int_eq(run_virtual(intro_main, &m, NULL), 0);
    ck_assert_str_eq(m.before, "0:s 1:intro_main 2:n 3:cs 4:intro_kid*");
    ck_assert_str_eq(m.after, "0:s 1:intro_main 2:n 3:cs 3:intro_kid");
    ck_assert_str_eq(m.done, "0:s 1:intro_main 2:n 3:cs 3:intro_kid");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nursery");
    TCase *tc = tcase_create("nursery");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_nursery_joins_children);
    tcase_add_test(tc, test_empty_nursery_is_checkpoint);
    tcase_add_test(tc, test_empty_nursery_checkpoint_cancelled);
    tcase_add_test(tc, test_start_soon_order);
    tcase_add_test(tc, test_start_soon_batches);
    tcase_add_test(tc, test_nested_nurseries);
    tcase_add_misuse_test(tc, test_nursery_closure);
    tcase_add_test(tc, test_spawn_name);
    tcase_add_test(tc, test_out_of_context);
    tcase_add_test(tc, test_nursery_live);
    tcase_add_misuse_test(tc, test_start_soon_busy_and_reuse);
    tcase_add_test(tc, test_return_inside_nursery);
    tcase_add_test(tc, test_break_leaves_nursery);
    tcase_add_test(tc, test_children_return_values);
    tcase_add_test(tc, test_nursery_cancel_precancelled);
    tcase_add_test(tc, test_nursery_cancel_wakes_children);
    tcase_add_test(tc, test_nursery_scope_deadline);
    tcase_add_test(tc, test_start_value);
    tcase_add_test(tc, test_start_error_before_started);
    tcase_add_test(tc, test_start_enostart);
    tcase_add_test(tc, test_start_just_started_cancelled);
    tcase_add_test(tc, test_start_started_no_checkpoint_cancelled);
    tcase_add_test(tc, test_start_cancel_starter);
    tcase_add_test(tc, test_start_cancelled_status_everywhere);
    tcase_add_test(tc, test_start_when_already_cancelled);
    tcase_add_misuse_test(tc, test_started_twice);
    tcase_add_test(tc, test_started_ignored);
    tcase_add_test(tc, test_start_keeps_nursery_open);
    tcase_add_test(tc, test_start_keeps_nursery_open_crash);
    tcase_add_test(tc, test_start_failure_after_started);
    tcase_add_test(tc, test_start_nursery_cancel_reaches_started);
    tcase_add_test(tc, test_start_into_cancelled_nursery);
    tcase_add_test(tc, test_start_then_cancel_target);
    tcase_add_test(tc, test_start_raiser_not_wrapped);
    tcase_add_test(tc, test_start_child_deadline_moves);
    tcase_add_test(tc, test_task_tree_introspection);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
