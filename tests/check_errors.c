/* tests/check_errors.c: bad input gets the documented code, and the error
 * name and description tables. Portable: no POSIX calls; the errno
 * comparison only runs on Linux, where the codes are errno's. */
#include <limits.h>
#include <stdlib.h>

#include "testutil.h"

#if defined(__linux__)
#include <errno.h>
#endif


/* ---- small coroutines ------------------------------------------------ */

struct plain { ptrio_frame fr; int v; };

static int plain_value(ptrio_frame *fr)
{
    struct plain *f = PTRIO_SELF(fr, struct plain);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_checkpoint(f));
    PTRIO_RETURN(f, f->v);
    PTRIO_END(f);
}

static int plain_sleep(ptrio_frame *fr)
{
    struct plain *f = PTRIO_SELF(fr, struct plain);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(f->v)));
    PTRIO_END(f);
}

/* ---- outside any loop --------------------------------------------- */

/* Every awaitable and task call refuses to run outside a loop, and leaves
 * the frames alone. */
START_TEST(test_outside_loop)
{
    static struct plain f, sub, fr2;
    static ptrio_nursery n;
    static ptrio_task t;
    static ptrio_failure out;
    static treport rep;
    void *value = NULL;

    f = (struct plain){0};
    sub = (struct plain){0};
    fr2 = (struct plain){0};
    memset(&n, 0, sizeof n);
    memset(&t, 0, sizeof t);
    memset(&rep, 0, sizeof rep);

    ck_assert_int_eq(ptrio_sleep(&f, PTRIO_MS(1)), -PTRIO_ENOTASK);
    ck_assert_int_eq(ptrio_sleep(&f, 0), -PTRIO_ENOTASK);
    ck_assert_int_eq(ptrio_sleep_until(&f, PTRIO_MS(1)), -PTRIO_ENOTASK);
    ck_assert_int_eq(ptrio_sleep_forever(&f), -PTRIO_ENOTASK);
    ck_assert_int_eq(ptrio_checkpoint(&f), -PTRIO_ENOTASK);
    ck_assert_int_eq(ptrio_yield(&f), -PTRIO_ENOTASK);
    ck_assert_int_eq(ptrio_checkpoint_if_cancelled(&f), -PTRIO_ENOTASK);
    ck_assert_int_eq(ptrio_call(&f, &sub, plain_value), -PTRIO_ENOTASK);
    ck_assert_int_eq(ptrio_started(&f, NULL), -PTRIO_ENOTASK);
    ck_assert_int_eq(ptrio_start(&f, &n, &t, plain_value, &fr2, &value),
                     -PTRIO_ENOTASK);
    ck_assert_int_eq(ptrio_start_soon(&n, &t, plain_value, &fr2),
                     -PTRIO_ENOTASK);
    ck_assert_int_eq(ptrio_wait_readable(&f, 0), -PTRIO_ENOTASK);
    ck_assert_int_eq(ptrio_wait_writable(&f, 0), -PTRIO_ENOTASK);
    ck_assert_int_eq(ptrio_failure_last(-PTRIO_EIO, &out), -PTRIO_ENOTASK);
    ck_assert_int_eq(ptrio_dump(treport_sink, &rep), -PTRIO_ENOTASK);
    ck_assert_int_eq(rep.count, 0);
    /* a NULL self too */
    ck_assert_int_eq(ptrio_checkpoint(NULL), -PTRIO_ENOTASK);
    ck_assert_int_eq(ptrio_sleep(NULL, 0), -PTRIO_ENOTASK);
    ck_assert_int_eq(ptrio_call(NULL, &sub, plain_value), -PTRIO_ENOTASK);

    ck_assert(ptrio_frame_idle(&f.fr));
    ck_assert(ptrio_frame_idle(&sub.fr));
    ck_assert(ptrio_frame_idle(&fr2.fr));
    ck_assert_ptr_null(value);
    ck_assert_ptr_null(ptrio_current_task());
    ck_assert(ptrio_now() == 0);
    ck_assert_int_eq(ptrio_notify_closing(0), 0);
}
END_TEST

/* ---- the wrong frame ------------------------------------------------ */

enum { W_CHECKPOINT, W_YIELD, W_SLEEP, W_SLEEP_UNTIL, W_FOREVER, W_IFCANCEL,
       W_CALL, W_STARTED, W_READABLE, W_N };

/* Calls one awaitable with `self` as the frame. */
static int with_self(void *self, int which, struct plain *sub)
{
    switch (which) {
    case W_CHECKPOINT:
        return ptrio_checkpoint(self);
    case W_YIELD:
        return ptrio_yield(self);
    case W_SLEEP:
        return ptrio_sleep(self, PTRIO_MS(1));
    case W_SLEEP_UNTIL:
        return ptrio_sleep_until(self, PTRIO_MS(1));
    case W_FOREVER:
        return ptrio_sleep_forever(self);
    case W_IFCANCEL:
        return ptrio_checkpoint_if_cancelled(self);
    case W_CALL:
        return ptrio_call(self, sub, plain_value);
    case W_STARTED:
        return ptrio_started(self, NULL);
    default:
        return ptrio_wait_readable(self, 0);
    }
}

/* Tries every awaitable with `self`, records the codes. */
struct wrong_inner {
    ptrio_frame fr;
    void *self;             /* the frame to pass */
    struct plain sub;
    int i, rc[W_N];
};

static int wrong_inner(ptrio_frame *fr)
{
    struct wrong_inner *f = PTRIO_SELF(fr, struct wrong_inner);
    PTRIO_BEGIN(f);
    for (f->i = 0; f->i < W_N; f->i++) {
        f->sub = (struct plain){0};
        PTRIO_TRY(f, f->rc[f->i], with_self(f->self, f->i, &f->sub));
    }
    /* the task still works */
    PTRIO_AWAIT(f, ptrio_checkpoint(f));
    tlog_add(&L, "inner-ok");
    PTRIO_END(f);
}

/* Parks in a sleep for 5 ms: another task's innermost frame. */
struct other_task { ptrio_frame fr; };

static int other_task(ptrio_frame *fr)
{
    struct other_task *f = PTRIO_SELF(fr, struct other_task);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(5)));
    tlog_at(&L, "other-ok");
    PTRIO_END(f);
}

struct wrong_main {
    ptrio_frame fr;
    struct plain idle;              /* never run */
    struct wrong_inner stranger;    /* self = idle, called from main */
    struct wrong_inner outer;       /* self = main (the caller) */
    struct wrong_inner nul;         /* self = NULL */
    struct wrong_inner cross;       /* self = the other task's frame */
    ptrio_nursery n;
    ptrio_task t;
    struct other_task o;
};

static int wrong_main(ptrio_frame *fr)
{
    struct wrong_main *f = PTRIO_SELF(fr, struct wrong_main);
    PTRIO_BEGIN(f);
    f->stranger.self = &f->idle;
    PTRIO_CALL(f, wrong_inner, &f->stranger);
    f->outer.self = f;
    PTRIO_CALL(f, wrong_inner, &f->outer);
    f->nul.self = NULL;
    PTRIO_CALL(f, wrong_inner, &f->nul);
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, other_task, &f->o));
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        f->cross.self = &f->o;
        PTRIO_CALL(f, wrong_inner, &f->cross);
    }
    PTRIO_END(f);
}

/* ptrio_sleep, checkpoint, call... with a `self` that is not the running
 * task's innermost frame: -PTRIO_ENOTASK, and nothing is disturbed. */
START_TEST(test_wrong_self)
{
    static struct wrong_main f;
    int i;
    f = (struct wrong_main){0};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(wrong_main, &f, NULL), 0);
    for (i = 0; i < W_N; i++) {
        ck_assert_int_eq(f.stranger.rc[i], -PTRIO_ENOTASK);
        ck_assert_int_eq(f.outer.rc[i], -PTRIO_ENOTASK);
        ck_assert_int_eq(f.nul.rc[i], -PTRIO_ENOTASK);
        ck_assert_int_eq(f.cross.rc[i], -PTRIO_ENOTASK);
    }
    ck_assert(ptrio_frame_idle(&f.idle.fr));
    ck_assert_str_eq(L.buf, "inner-ok inner-ok inner-ok inner-ok other-ok@5");
}
END_TEST

/* ---- ptrio_call ------------------------------------------------------- */

/* Holds its sub-frame running for 10 ms. */
struct holder { ptrio_frame fr; struct plain *sub; };

static int holder(ptrio_frame *fr)
{
    struct holder *f = PTRIO_SELF(fr, struct holder);
    PTRIO_BEGIN(f);
    PTRIO_CALL(f, plain_sleep, f->sub);
    PTRIO_END(f);
}

struct call_main {
    ptrio_frame fr;
    struct plain sub, held, root;
    struct holder h;
    ptrio_nursery n;
    ptrio_task t[2];
    int rc[8];
};

static int call_main(ptrio_frame *fr)
{
    struct call_main *f = PTRIO_SELF(fr, struct call_main);
    PTRIO_BEGIN(f);
    PTRIO_TRY(f, f->rc[0], ptrio_call(f, NULL, plain_value));
    PTRIO_TRY(f, f->rc[1], ptrio_call(f, &f->sub, NULL));
    PTRIO_TRY(f, f->rc[2], ptrio_call(f, f, plain_value));
    PTRIO_NURSERY(f, &f->n) {
        f->held.v = 10;
        f->h.sub = &f->held;
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], holder, &f->h));
        f->root.v = 10;
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], plain_sleep,
                                        &f->root));
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        /* a sub-frame another task is running */
        PTRIO_TRY(f, f->rc[3], ptrio_call(f, &f->held, plain_value));
        /* another task's root frame */
        PTRIO_TRY(f, f->rc[4], ptrio_call(f, &f->root, plain_value));
        /* the holder's own frame */
        PTRIO_TRY(f, f->rc[5], ptrio_call(f, &f->h, plain_value));
    }
    /* all finished: every one of them may be called now */
    f->held.v = 1;
    PTRIO_TRY(f, f->rc[6], ptrio_call(f, &f->held, plain_value));
    f->sub.v = 2;
    PTRIO_TRY(f, f->rc[7], ptrio_call(f, &f->sub, plain_value));
    tlog_at(&L, "end");
    PTRIO_END(f);
}

/* ptrio_call: NULL sub or fn -> -PTRIO_EINVAL; a sub-frame that is still
 * running (the caller itself, another task's frames) -> -PTRIO_EBUSY. */
START_TEST(test_call_errors)
{
    static struct call_main f;
    f = (struct call_main){0};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(call_main, &f, NULL), 0);
    ck_assert_int_eq(f.rc[0], -PTRIO_EINVAL);
    ck_assert_int_eq(f.rc[1], -PTRIO_EINVAL);
    ck_assert_int_eq(f.rc[2], -PTRIO_EBUSY);
    ck_assert_int_eq(f.rc[3], -PTRIO_EBUSY);
    ck_assert_int_eq(f.rc[4], -PTRIO_EBUSY);
    ck_assert_int_eq(f.rc[5], -PTRIO_EBUSY);
    ck_assert_int_eq(f.rc[6], 1);
    ck_assert_int_eq(f.rc[7], 2);
    ck_assert_str_eq(L.buf, "end@10");
}
END_TEST

/* A frame deeper in the chain calls an ancestor: -PTRIO_EBUSY. */
struct anc_inner { ptrio_frame fr; void *a, *b; int ra, rb; };

static int anc_inner(ptrio_frame *fr)
{
    struct anc_inner *f = PTRIO_SELF(fr, struct anc_inner);
    PTRIO_BEGIN(f);
    PTRIO_TRY(f, f->ra, ptrio_call(f, f->a, plain_value));
    PTRIO_TRY(f, f->rb, ptrio_call(f, f->b, plain_value));
    PTRIO_END(f);
}

struct anc_mid { ptrio_frame fr; struct anc_inner in; };

static int anc_mid(ptrio_frame *fr)
{
    struct anc_mid *f = PTRIO_SELF(fr, struct anc_mid);
    PTRIO_BEGIN(f);
    f->in.b = f;
    PTRIO_CALL(f, anc_inner, &f->in);
    PTRIO_END(f);
}

struct anc_main { ptrio_frame fr; struct anc_mid mid; };

static int anc_main(ptrio_frame *fr)
{
    struct anc_main *f = PTRIO_SELF(fr, struct anc_main);
    PTRIO_BEGIN(f);
    f->mid.in.a = f;
    PTRIO_CALL(f, anc_mid, &f->mid);
    PTRIO_END(f);
}

START_TEST(test_call_ancestor)
{
    static struct anc_main f;
    f = (struct anc_main){0};
    ck_assert_int_eq(run_virtual(anc_main, &f, NULL), 0);
    ck_assert_int_eq(f.mid.in.ra, -PTRIO_EBUSY);
    ck_assert_int_eq(f.mid.in.rb, -PTRIO_EBUSY);
}
END_TEST

/* ---- ptrio_start_soon ------------------------------------------------- */

struct spawn_main {
    ptrio_frame fr;
    ptrio_nursery n, closed;
    ptrio_task t[3];
    struct plain a, b, c;
    struct holder h;
    int rc[16];
};

static int spawn_main(ptrio_frame *fr)
{
    struct spawn_main *f = PTRIO_SELF(fr, struct spawn_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->closed) {
        f->c.v = 1;
        PTRIO_CHECK(f, ptrio_start_soon(&f->closed, &f->t[2], plain_sleep,
                                        &f->c));
    }
    PTRIO_NURSERY(f, &f->n) {
        f->a.v = 5;
        f->rc[0] = ptrio_start_soon_named(NULL, &f->t[0], plain_sleep, &f->a,
                                          "x");
        f->rc[1] = ptrio_start_soon_named(&f->n, NULL, plain_sleep, &f->a,
                                          "x");
        f->rc[2] = ptrio_start_soon_named(&f->n, &f->t[0], NULL, &f->a, "x");
        f->rc[3] = ptrio_start_soon_named(&f->n, &f->t[0], plain_sleep, NULL,
                                          "x");
        /* t[0] runs a; both are busy until it ends at 5 ms */
        f->rc[4] = ptrio_start_soon(&f->n, &f->t[0], plain_sleep, &f->a);
        f->rc[5] = ptrio_start_soon(&f->n, &f->t[0], plain_sleep, &f->b);
        f->rc[6] = ptrio_start_soon(&f->n, &f->t[1], plain_sleep, &f->a);
        /* the main task's own frame, and the main task itself */
        f->rc[7] = ptrio_start_soon(&f->n, &f->t[1], plain_sleep, f);
        f->rc[8] = ptrio_start_soon(&f->n, ptrio_current_task(), plain_sleep,
                                    &f->b);
        /* a frame running as a sub-frame of another task */
        f->h.sub = &f->c;
        f->c.v = 3;
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[2], holder, &f->h));
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        f->rc[9] = ptrio_start_soon(&f->n, &f->t[1], plain_sleep, &f->c);
        /* after it ended, the task and its frame may start again */
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(5)));
        f->a.v = 2;
        f->rc[10] = ptrio_start_soon(&f->n, &f->t[0], plain_sleep, &f->a);
        /* a ptrio_start into the nursery refuses a busy task too */
        f->b.v = 1;
        PTRIO_TRY(f, f->rc[11], ptrio_start(f, &f->n, &f->t[0], plain_sleep,
                                            &f->b, NULL));
    }
    tlog_at(&L, "joined");
    /* the nurseries are closed now */
    f->b.v = 1;
    f->rc[12] = ptrio_start_soon(&f->n, &f->t[1], plain_sleep, &f->b);
    f->rc[13] = ptrio_start_soon(&f->closed, &f->t[1], plain_sleep, &f->b);
    PTRIO_END(f);
}

/* start_soon: NULL arguments -> -PTRIO_EINVAL; a task or frame still
 * running -> -PTRIO_EBUSY; a closed nursery -> -PTRIO_ECLOSED. */
START_TEST(test_start_soon_errors)
{
    static struct spawn_main f;
    int i;
    f = (struct spawn_main){0};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(spawn_main, &f, NULL), 0);
    for (i = 0; i < 4; i++)
        ck_assert_int_eq(f.rc[i], -PTRIO_EINVAL);
    ck_assert_int_eq(f.rc[4], 0);
    ck_assert_int_eq(f.rc[5], -PTRIO_EBUSY);
    ck_assert_int_eq(f.rc[6], -PTRIO_EBUSY);
    ck_assert_int_eq(f.rc[7], -PTRIO_EBUSY);
    ck_assert_int_eq(f.rc[8], -PTRIO_EBUSY);
    ck_assert_int_eq(f.rc[9], -PTRIO_EBUSY);
    ck_assert_int_eq(f.rc[10], 0);
    ck_assert_int_eq(f.rc[11], -PTRIO_EBUSY);
    ck_assert_int_eq(f.rc[12], -PTRIO_ECLOSED);
    ck_assert_int_eq(f.rc[13], -PTRIO_ECLOSED);
    /* the first nursery took 1 ms; a ran 1..6 ms, then again 7..9 ms */
    ck_assert_str_eq(L.buf, "joined@9");
}
END_TEST

/* ---- ptrio_start / started ---------------------------------------- */

struct starter_child { ptrio_frame fr; int twice, rc1, rc2; };

static int starter_child(ptrio_frame *fr)
{
    struct starter_child *f = PTRIO_SELF(fr, struct starter_child);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_checkpoint(f));
    f->rc1 = ptrio_started(f, NULL);
    if (f->twice)
        f->rc2 = ptrio_started(f, NULL);
    PTRIO_AWAIT(f, ptrio_checkpoint(f));
    PTRIO_END(f);
}

static int never_started(ptrio_frame *fr)
{
    struct starter_child *f = PTRIO_SELF(fr, struct starter_child);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_checkpoint(f));
    PTRIO_END(f);
}

struct start_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[3];
    struct starter_child c[3];
    int rc[4];
};

static int start_main(ptrio_frame *fr)
{
    struct start_main *f = PTRIO_SELF(fr, struct start_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        /* started twice: -PTRIO_EMISUSE the second time */
        f->c[0].twice = 1;
        PTRIO_TRY(f, f->rc[0], ptrio_start(f, &f->n, &f->t[0], starter_child,
                                           &f->c[0], NULL));
        /* returns without started: -PTRIO_ENOSTART */
        PTRIO_TRY(f, f->rc[1], ptrio_start(f, &f->n, &f->t[1], never_started,
                                           &f->c[1], NULL));
        /* started() in a task that start_soon started: 0 */
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[2], starter_child,
                                        &f->c[2]));
        /* a task starting itself */
        PTRIO_TRY(f, f->rc[2], ptrio_start(f, &f->n, ptrio_current_task(),
                                           never_started, &f->c[1], NULL));
        /* NULL arguments */
        PTRIO_TRY(f, f->rc[3], ptrio_start(f, NULL, &f->t[1], never_started,
                                           &f->c[1], NULL));
    }
    PTRIO_END(f);
}

START_TEST(test_start_errors)
{
    static struct start_main f;
    f = (struct start_main){0};
    ck_assert_int_eq(run_virtual(start_main, &f, NULL), 0);
    ck_assert_int_eq(f.rc[0], 0);
    ck_assert_int_eq(f.c[0].rc1, 0);
    ck_assert_int_eq(f.c[0].rc2, -PTRIO_EMISUSE);
    ck_assert_int_eq(f.rc[1], -PTRIO_ENOSTART);
    ck_assert_int_eq(f.c[2].rc1, 0);
    ck_assert_int_eq(f.rc[2], -PTRIO_EBUSY);
    ck_assert_int_eq(f.rc[3], -PTRIO_EINVAL);
}
END_TEST

/* ---- loops and backends --------------------------------------------- */

static ptrio_loop the_loop;

struct nested_main { ptrio_frame fr; struct plain other; int rc[4]; };

static int nested_main(ptrio_frame *fr)
{
    struct nested_main *f = PTRIO_SELF(fr, struct nested_main);
    PTRIO_BEGIN(f);
    f->rc[0] = ptrio_loop_run(&the_loop, plain_value, &f->other);
    f->rc[1] = ptrio_loop_use_backend(&the_loop, &ptrio_backend_virtual);
    f->rc[3] = ptrio_loop_init(&the_loop);  /* refused: it would wipe it */
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
    f->rc[2] = ptrio_loop_run(&the_loop, nested_main, f);
    PTRIO_RETURN(f, 5);
    PTRIO_END(f);
}

/* ptrio_loop_run: NULL arguments -> -PTRIO_EINVAL; the loop already
 * running -> -PTRIO_EBUSY; use_backend and init while it runs ->
 * -PTRIO_EBUSY, and it runs on unharmed (init used to wipe it, and the
 * next sleep crashed); init of NULL -> -PTRIO_EINVAL. */
START_TEST(test_loop_run_errors)
{
    static struct nested_main f;
    static struct plain p;

    f = (struct nested_main){0};
    p = (struct plain){0};
    ck_assert_int_eq(ptrio_loop_init(&the_loop), 0);
    ck_assert_int_eq(ptrio_loop_use_backend(&the_loop, &ptrio_backend_virtual),
                     0);
    ptrio_loop_set_report(&the_loop, NULL, NULL);
    ck_assert_int_eq(ptrio_loop_run_named(NULL, plain_value, &p, "x"),
                     -PTRIO_EINVAL);
    ck_assert_int_eq(ptrio_loop_run_named(&the_loop, NULL, &p, "x"),
                     -PTRIO_EINVAL);
    ck_assert_int_eq(ptrio_loop_run_named(&the_loop, plain_value, NULL, "x"),
                     -PTRIO_EINVAL);
    ck_assert_int_eq(ptrio_run_named(NULL, &p, "x"), -PTRIO_EINVAL);
    ck_assert_int_eq(ptrio_run_named(plain_value, NULL, "x"), -PTRIO_EINVAL);
    ck_assert(ptrio_frame_idle(&p.fr));

    ck_assert_int_eq(ptrio_loop_run(&the_loop, nested_main, &f), 5);
    ck_assert_int_eq(f.rc[0], -PTRIO_EBUSY);
    ck_assert_int_eq(f.rc[1], -PTRIO_EBUSY);
    ck_assert_int_eq(f.rc[2], -PTRIO_EBUSY);
    ck_assert_int_eq(f.rc[3], -PTRIO_EBUSY);
    ck_assert_int_eq(ptrio_loop_init(NULL), -PTRIO_EINVAL);
    ck_assert(ptrio_frame_idle(&f.other.fr));

    /* the loop is usable again */
    p = (struct plain){.v = 9};
    ck_assert_int_eq(ptrio_loop_run(&the_loop, plain_value, &p), 9);
}
END_TEST

/* Sleeps v ms, then stores the clock in ms into v. */
static int now_after_sleep(ptrio_frame *fr)
{
    struct plain *f = PTRIO_SELF(fr, struct plain);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(f->v)));
    f->v = (int)(ptrio_now() / PTRIO_MS(1));
    PTRIO_END(f);
}

/* use_backend: NULL -> -PTRIO_EINVAL, and the loop keeps its backend. */
START_TEST(test_use_backend_errors)
{
    static ptrio_loop loop;
    static struct plain p;
    p = (struct plain){.v = 250};
    ptrio_loop_init(&loop);
    ck_assert_int_eq(ptrio_loop_use_backend(&loop, &ptrio_backend_virtual), 0);
    ck_assert_int_eq(ptrio_loop_use_backend(&loop, NULL), -PTRIO_EINVAL);
    ck_assert_int_eq(ptrio_loop_use_backend(NULL, &ptrio_backend_virtual),
                     -PTRIO_EINVAL);
    ptrio_loop_set_report(&loop, NULL, NULL);
    tlog_clear(&L);
    /* still the virtual clock: it reads exactly 250 ms after the sleep */
    ck_assert_int_eq(ptrio_loop_run(&loop, now_after_sleep, &p), 0);
    ck_assert_int_eq(p.v, 250);
}
END_TEST

/* A zeroed loop has no backend: -PTRIO_ENOBACKEND. */
START_TEST(test_no_backend)
{
    static ptrio_loop loop;
    static struct plain p;
    memset(&loop, 0, sizeof loop);
    p = (struct plain){0};
    ck_assert_int_eq(ptrio_loop_run(&loop, plain_value, &p), -PTRIO_ENOBACKEND);
    ck_assert(ptrio_frame_idle(&p.fr));
    ck_assert_ptr_null(ptrio_current_loop());
}
END_TEST

/* ---- durations and deadlines ---------------------------------------- */

struct time_errors {
    ptrio_frame fr;
    ptrio_scope sc, tb;
    int rc[10];
    ptrio_time dl[3];
};

static int time_errors(ptrio_frame *fr)
{
    struct time_errors *f = PTRIO_SELF(fr, struct time_errors);
    PTRIO_BEGIN(f);
    PTRIO_TRY(f, f->rc[0], ptrio_sleep(f, -1));
    PTRIO_TRY(f, f->rc[1], ptrio_sleep(f, PTRIO_TIME_NINF));
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
    PTRIO_TRY(f, f->rc[2], ptrio_sleep(f, PTRIO_TIME_INF - 1));
    PTRIO_CANCEL_SCOPE(f, &f->sc) {
        f->rc[3] = ptrio_scope_set_timeout(&f->sc, -1);
        f->dl[0] = ptrio_scope_deadline(&f->sc);
        f->rc[4] = ptrio_scope_set_timeout(&f->sc, PTRIO_TIME_INF - 1);
        f->dl[1] = ptrio_scope_deadline(&f->sc);
        f->rc[5] = ptrio_scope_set_timeout(&f->sc, PTRIO_MS(5));
        f->dl[2] = ptrio_scope_deadline(&f->sc);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(2)));
    }
    /* a block whose duration is negative does not open: it raises */
    PTRIO_TRY_BLOCK(f, &f->tb) {
        PTRIO_MOVE_ON_AFTER(f, &f->sc, -1) {
            tlog_add(&L, "unreached");
        }
    }
    f->rc[6] = ptrio_scope_error(&f->tb);
    PTRIO_TRY_BLOCK(f, &f->tb) {
        PTRIO_FAIL_AFTER(f, &f->sc, PTRIO_TIME_NINF) {
            tlog_add(&L, "unreached2");
        }
    }
    f->rc[7] = ptrio_scope_error(&f->tb);
    tlog_at(&L, "end");
    PTRIO_END(f);
}

/* Negative durations -> -PTRIO_EINVAL; now + d overflowing ->
 * -PTRIO_EOVERFLOW; a failed set_timeout leaves the deadline alone. */
START_TEST(test_time_errors)
{
    static struct time_errors f;
    f = (struct time_errors){0};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(time_errors, &f, NULL), 0);
    ck_assert_int_eq(f.rc[0], -PTRIO_EINVAL);
    ck_assert_int_eq(f.rc[1], -PTRIO_EINVAL);
    ck_assert_int_eq(f.rc[2], -PTRIO_EOVERFLOW);
    ck_assert_int_eq(f.rc[3], -PTRIO_EINVAL);
    ck_assert(f.dl[0] == PTRIO_TIME_INF);
    ck_assert_int_eq(f.rc[4], -PTRIO_EOVERFLOW);
    ck_assert(f.dl[1] == PTRIO_TIME_INF);
    ck_assert_int_eq(f.rc[5], 0);
    ck_assert(f.dl[2] == PTRIO_MS(6));
    ck_assert_int_eq(f.rc[6], -PTRIO_EINVAL);
    ck_assert_int_eq(f.rc[7], -PTRIO_EINVAL);
    ck_assert_str_eq(L.buf, "end@3");
}
END_TEST

/* ---- fd waits on a backend without them ---------------------------- */

struct fd_errors { ptrio_frame fr; int rc[4]; };

static int fd_errors(ptrio_frame *fr)
{
    struct fd_errors *f = PTRIO_SELF(fr, struct fd_errors);
    PTRIO_BEGIN(f);
    PTRIO_TRY(f, f->rc[0], ptrio_wait_readable(f, -1));
    PTRIO_TRY(f, f->rc[1], ptrio_wait_writable(f, -1));
    PTRIO_TRY(f, f->rc[2], ptrio_wait_readable(f, 0));
    PTRIO_TRY(f, f->rc[3], ptrio_wait_writable(f, 0));
    PTRIO_END(f);
}

/* fd < 0 -> -PTRIO_EBADF; the virtual backend has no fd waits ->
 * -PTRIO_ENOTSUP. */
START_TEST(test_fd_errors)
{
    static struct fd_errors f;
    f = (struct fd_errors){0};
    ck_assert_int_eq(run_virtual(fd_errors, &f, NULL), 0);
    ck_assert_int_eq(f.rc[0], -PTRIO_EBADF);
    ck_assert_int_eq(f.rc[1], -PTRIO_EBADF);
    ck_assert_int_eq(f.rc[2], -PTRIO_ENOTSUP);
    ck_assert_int_eq(f.rc[3], -PTRIO_ENOTSUP);
}
END_TEST

/* ---- failure records ------------------------------------------------ */

struct fail_errors { ptrio_frame fr; struct plain p; int rc, r[3]; ptrio_failure out; };

static int raise_eio(ptrio_frame *fr)
{
    struct plain *f = PTRIO_SELF(fr, struct plain);
    PTRIO_BEGIN(f);
    PTRIO_RAISE(f, -PTRIO_EIO, "eio");
    PTRIO_END(f);
}

static int fail_errors(ptrio_frame *fr)
{
    struct fail_errors *f = PTRIO_SELF(fr, struct fail_errors);
    PTRIO_BEGIN(f);
    PTRIO_TRY(f, f->rc, ptrio_call(f, &f->p, raise_eio));
    f->r[0] = ptrio_failure_last(-PTRIO_EPIPE, &f->out);
    f->r[1] = ptrio_failure_last(0, &f->out);
    f->r[2] = ptrio_failure_last(-PTRIO_EIO, &f->out);
    PTRIO_END(f);
}

/* ptrio_failure_last with a code that is not the last error:
 * -PTRIO_EINVAL. */
START_TEST(test_failure_last_errors)
{
    static struct fail_errors f;
    f = (struct fail_errors){0};
    ck_assert_int_eq(run_virtual(fail_errors, &f, NULL), 0);
    ck_assert_int_eq(f.rc, -PTRIO_EIO);
    ck_assert_int_eq(f.r[0], -PTRIO_EINVAL);
    ck_assert_int_eq(f.r[1], -PTRIO_EINVAL);
    ck_assert_int_eq(f.r[2], 0);
    ck_assert_str_eq(f.out.msg, "eio");
}
END_TEST

/* ---- names and descriptions ------------------------------------------ */

static const struct {
    int code;
    const char *name;
} names[] = {
    {PTRIO_EPERM, "EPERM"},
    {PTRIO_ENOENT, "ENOENT"},
    {PTRIO_EINTR, "EINTR"},
    {PTRIO_EIO, "EIO"},
    {PTRIO_EBADF, "EBADF"},
    {PTRIO_EAGAIN, "EAGAIN"},
    {PTRIO_ENOMEM, "ENOMEM"},
    {PTRIO_EBUSY, "EBUSY"},
    {PTRIO_EEXIST, "EEXIST"},
    {PTRIO_EINVAL, "EINVAL"},
    {PTRIO_EMFILE, "EMFILE"},
    {PTRIO_EPIPE, "EPIPE"},
    {PTRIO_ERANGE, "ERANGE"},
    {PTRIO_EDEADLK, "EDEADLK"},
    {PTRIO_ENOSYS, "ENOSYS"},
    {PTRIO_EOVERFLOW, "EOVERFLOW"},
    {PTRIO_ENOTSUP, "ENOTSUP"},
    {PTRIO_ECONNRESET, "ECONNRESET"},
    {PTRIO_ETIMEDOUT, "ETIMEDOUT"},
    {PTRIO_ECONNREFUSED, "ECONNREFUSED"},
    {PTRIO_ECANCELED, "PTRIO_ECANCELED"},
    {PTRIO_EGROUP, "PTRIO_EGROUP"},
    {PTRIO_ECLOSED, "PTRIO_ECLOSED"},
    {PTRIO_ENOTASK, "PTRIO_ENOTASK"},
    {PTRIO_ENOSTART, "PTRIO_ENOSTART"},
    {PTRIO_EMISUSE, "PTRIO_EMISUSE"},
    {PTRIO_ENOBACKEND, "PTRIO_ENOBACKEND"},
    {PTRIO_EBROKEN, "PTRIO_EBROKEN"},
    {PTRIO_EENDOFCHANNEL, "PTRIO_EENDOFCHANNEL"},
    {PTRIO_EACCES, "EACCES"},
    {PTRIO_EFAULT, "EFAULT"},
    {PTRIO_ENFILE, "ENFILE"},
    {PTRIO_ENOSPC, "ENOSPC"},
    {PTRIO_ENOTSOCK, "ENOTSOCK"},
    {PTRIO_EMSGSIZE, "EMSGSIZE"},
    {PTRIO_EAFNOSUPPORT, "EAFNOSUPPORT"},
    {PTRIO_EADDRINUSE, "EADDRINUSE"},
    {PTRIO_EADDRNOTAVAIL, "EADDRNOTAVAIL"},
    {PTRIO_ENETUNREACH, "ENETUNREACH"},
    {PTRIO_ECONNABORTED, "ECONNABORTED"},
    {PTRIO_ENOBUFS, "ENOBUFS"},
    {PTRIO_ENOTCONN, "ENOTCONN"},
    {PTRIO_EHOSTUNREACH, "EHOSTUNREACH"},
    {PTRIO_EALREADY, "EALREADY"},
    {PTRIO_EINPROGRESS, "EINPROGRESS"},
    {125, "ECANCELED"},
};
#define NNAMES ((int)(sizeof names / sizeof names[0]))

/* Every code has its symbolic name, either sign; each description is
 * non-empty and distinct. */
START_TEST(test_errname_table)
{
    int i, j;
    for (i = 0; i < NNAMES; i++) {
        const char *s = ptrio_strerror(-names[i].code);
        ck_assert_ptr_nonnull(ptrio_errname(-names[i].code));
        ck_assert_str_eq(ptrio_errname(-names[i].code), names[i].name);
        ck_assert_str_eq(ptrio_errname(names[i].code), names[i].name);
        ck_assert_ptr_nonnull(s);
        ck_assert_int_gt((int)strlen(s), 0);
        ck_assert_str_eq(ptrio_strerror(names[i].code), s);
        for (j = 0; j < i; j++) {
            ck_assert_str_ne(ptrio_strerror(names[j].code), s);
            ck_assert_str_ne(ptrio_errname(names[j].code), names[i].name);
        }
    }
    ck_assert_str_eq(ptrio_errname(-PTRIO_ETIMEDOUT), "ETIMEDOUT");
    ck_assert_str_eq(ptrio_errname(-PTRIO_EGROUP), "PTRIO_EGROUP");
    ck_assert_str_eq(ptrio_strerror(-PTRIO_ETIMEDOUT),
                     PTRIO_CONF_ERROR_TEXT ? "timed out" : "ETIMEDOUT");
}
END_TEST

/* Unknown codes: "E?" and some description, never NULL. */
START_TEST(test_errname_unknown)
{
    static const int unknown[] = {3, -3, 6, 27, 96, -124, 126, 4095,
                                  PTRIO_ERRBASE, -PTRIO_ERRBASE,
                                  PTRIO_ERRBASE + 31, -(PTRIO_ERRBASE + 100),
                                  32767, -32768, INT_MAX, -INT_MAX};
    size_t i;
    for (i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        ck_assert_ptr_nonnull(ptrio_errname(unknown[i]));
        ck_assert_str_eq(ptrio_errname(unknown[i]), "E?");
        ck_assert_ptr_nonnull(ptrio_strerror(unknown[i]));
        ck_assert_int_gt((int)strlen(ptrio_strerror(unknown[i])), 0);
    }
    ck_assert_ptr_nonnull(ptrio_errname(0));
    ck_assert_ptr_nonnull(ptrio_strerror(0));
}
END_TEST

/* INT_MIN (= PTRIO_PENDING) has no positive counterpart: still "E?". */
START_TEST(test_errname_int_min)
{
    ck_assert_ptr_nonnull(ptrio_errname(INT_MIN));
    ck_assert_str_eq(ptrio_errname(INT_MIN), "E?");
    ck_assert_ptr_nonnull(ptrio_strerror(INT_MIN));
    ck_assert_str_eq(ptrio_errname(PTRIO_PENDING), "E?");
}
END_TEST

/* ptrio's own codes sit above every errno value; the errno-style codes
 * are the small positive numbers they are on Linux. */
START_TEST(test_code_values)
{
    int i;
    for (i = 0; i < NNAMES; i++) {
        ck_assert_int_gt(names[i].code, 0);
        if (strncmp(names[i].name, "PTRIO_", 6) == 0)
            ck_assert_int_gt(names[i].code, PTRIO_ERRBASE);
        else
            ck_assert_int_lt(names[i].code, 4096);
    }
    ck_assert_int_eq(PTRIO_ETIMEDOUT, 110);
    ck_assert_int_eq(PTRIO_ECANCELED, PTRIO_ERRBASE + 7);
    ck_assert_int_eq(PTRIO_EINVAL, 22);
}
END_TEST

#if defined(__linux__)
/* On Linux the codes are errno's: -PTRIO_ETIMEDOUT == -ETIMEDOUT. */
START_TEST(test_linux_errno_values)
{
#ifdef EPERM
    ck_assert_int_eq(PTRIO_EPERM, EPERM);
#endif
#ifdef ENOENT
    ck_assert_int_eq(PTRIO_ENOENT, ENOENT);
#endif
#ifdef EINTR
    ck_assert_int_eq(PTRIO_EINTR, EINTR);
#endif
#ifdef EIO
    ck_assert_int_eq(PTRIO_EIO, EIO);
#endif
#ifdef EBADF
    ck_assert_int_eq(PTRIO_EBADF, EBADF);
#endif
#ifdef EAGAIN
    ck_assert_int_eq(PTRIO_EAGAIN, EAGAIN);
#endif
#ifdef ENOMEM
    ck_assert_int_eq(PTRIO_ENOMEM, ENOMEM);
#endif
#ifdef EBUSY
    ck_assert_int_eq(PTRIO_EBUSY, EBUSY);
#endif
#ifdef EEXIST
    ck_assert_int_eq(PTRIO_EEXIST, EEXIST);
#endif
#ifdef EINVAL
    ck_assert_int_eq(PTRIO_EINVAL, EINVAL);
#endif
#ifdef EMFILE
    ck_assert_int_eq(PTRIO_EMFILE, EMFILE);
#endif
#ifdef EPIPE
    ck_assert_int_eq(PTRIO_EPIPE, EPIPE);
#endif
#ifdef ERANGE
    ck_assert_int_eq(PTRIO_ERANGE, ERANGE);
#endif
#ifdef EDEADLK
    ck_assert_int_eq(PTRIO_EDEADLK, EDEADLK);
#endif
#ifdef ENOSYS
    ck_assert_int_eq(PTRIO_ENOSYS, ENOSYS);
#endif
#ifdef EOVERFLOW
    ck_assert_int_eq(PTRIO_EOVERFLOW, EOVERFLOW);
#endif
#ifdef ENOTSUP
    ck_assert_int_eq(PTRIO_ENOTSUP, ENOTSUP);
#endif
#ifdef ECONNRESET
    ck_assert_int_eq(PTRIO_ECONNRESET, ECONNRESET);
#endif
#ifdef ETIMEDOUT
    ck_assert_int_eq(PTRIO_ETIMEDOUT, ETIMEDOUT);
    ck_assert_int_eq(-PTRIO_ETIMEDOUT, -ETIMEDOUT);
#endif
#ifdef ECONNREFUSED
    ck_assert_int_eq(PTRIO_ECONNREFUSED, ECONNREFUSED);
#endif
#ifdef ECANCELED
    /* ptrio's cancellation is its own code: a system's ECANCELED (aio,
     * io_uring, timerfd) passed through as -errno is a plain error. */
    ck_assert_int_ne(PTRIO_ECANCELED, ECANCELED);
    ck_assert_int_gt(PTRIO_ECANCELED, PTRIO_ERRBASE);
#endif
}
END_TEST
#endif

int main(void)
{
    Suite *s = suite_create("errors");
    TCase *tc = tcase_create("errors");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 60);
    tcase_add_misuse_test(tc, test_outside_loop);
    tcase_add_misuse_test(tc, test_wrong_self);
    tcase_add_misuse_test(tc, test_call_errors);
    tcase_add_misuse_test(tc, test_call_ancestor);
    tcase_add_misuse_test(tc, test_start_soon_errors);
    tcase_add_misuse_test(tc, test_start_errors);
    tcase_add_misuse_test(tc, test_loop_run_errors);
    tcase_add_test(tc, test_use_backend_errors);
    tcase_add_test(tc, test_no_backend);
    tcase_add_test(tc, test_time_errors);
    tcase_add_test(tc, test_fd_errors);
    tcase_add_test(tc, test_failure_last_errors);
    tcase_add_test(tc, test_errname_table);
    tcase_add_test(tc, test_errname_unknown);
    tcase_add_test(tc, test_errname_int_min);
    tcase_add_test(tc, test_code_values);
#if defined(__linux__)
    tcase_add_test(tc, test_linux_errno_values);
#endif
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
