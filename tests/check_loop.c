/* tests/check_loop.c: the scheduler. FIFO batches, start order, run
 * status, task identity and names, instrument hooks, ptrio_dump, deadlock
 * detection. Portable: no POSIX calls; time is the virtual clock. */
#include <stdlib.h>

#include "testutil.h"

/* Appends "<a><b>". */
static void log2s(tlog *l, const char *a, const char *b)
{
    char buf[96];
    size_t na = strlen(a), nb = strlen(b);
    if (na > 40)
        na = 40;
    if (nb > 40)
        nb = 40;
    memcpy(buf, a, na);
    memcpy(buf + na, b, nb);
    buf[na + nb] = '\0';
    tlog_add(l, buf);
}

/* ---- a configurable worker ------------------------------------------ */

struct worker {
    ptrio_frame fr;
    const char *name;       /* log prefix */
    int n, i;               /* checkpoints to make, logging before each */
    int ret;                /* value to return */
    ptrio_time sleep;       /* slept first, if > 0 */
    /* a task to start first, into spawn_into */
    ptrio_nursery *spawn_into;
    ptrio_task *spawn_task;
    struct worker *spawn_frame;
    /* what the worker saw */
    ptrio_task *me;
    const char *myname;
    ptrio_loop *loop;
    int same_task;
};

static int worker(ptrio_frame *fr)
{
    struct worker *f = PTRIO_SELF(fr, struct worker);
    PTRIO_BEGIN(f);
    f->me = ptrio_current_task();
    f->myname = ptrio_task_name(f->me);
    f->loop = ptrio_current_loop();
    if (f->spawn_into)
        PTRIO_CHECK(f, ptrio_start_soon(f->spawn_into, f->spawn_task, worker,
                                        f->spawn_frame));
    if (f->sleep > 0)
        PTRIO_AWAIT(f, ptrio_sleep(f, f->sleep));
    for (f->i = 0; f->i < f->n; f->i++) {
        logn(&L, f->name, f->i);
        PTRIO_AWAIT(f, ptrio_checkpoint(f));
    }
    f->same_task = ptrio_current_task() == f->me;
    PTRIO_RETURN(f, f->ret);
    PTRIO_END(f);
}

/* ---- FIFO ----------------------------------------------------------- */

struct fifo_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[4];
    struct worker w[4];
    int i;
};

static int fifo_main(ptrio_frame *fr)
{
    struct fifo_main *f = PTRIO_SELF(fr, struct fifo_main);
    static const char *const names[] = {"A", "B", "C", "D"};
    PTRIO_BEGIN(f);
    tlog_add(&L, "m0");
    PTRIO_NURSERY(f, &f->n) {
        for (f->i = 0; f->i < 4; f->i++) {
            f->w[f->i] = (struct worker){.name = names[f->i], .n = 3};
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[f->i], worker,
                                            &f->w[f->i]));
        }
        tlog_add(&L, "started");
        PTRIO_CHECKPOINT(f);
        tlog_add(&L, "m1");
        PTRIO_CHECKPOINT(f);
        tlog_add(&L, "m2");
    }
    tlog_add(&L, "joined");
    PTRIO_END(f);
}

/* Ready tasks run in FIFO order: four workers and the main task that
 * alternate checkpoints interleave strictly. */
START_TEST(test_fifo_interleave)
{
    static struct fifo_main f;
    f = (struct fifo_main){0};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(fifo_main, &f, NULL), 0);
    ck_assert_str_eq(L.buf, "m0 started A0 B0 C0 D0 m1 A1 B1 C1 D1 m2 "
                            "A2 B2 C2 D2 joined");
}
END_TEST

/* Children start in start order, from the next batch: after the parent's
 * step, and a task started during a batch runs after that whole batch. */
struct batch_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[3];
    struct worker w[3];
};

static int batch_main(ptrio_frame *fr)
{
    struct batch_main *f = PTRIO_SELF(fr, struct batch_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        tlog_add(&L, "p1");
        f->w[2] = (struct worker){.name = "Z", .n = 1};
        f->w[0] = (struct worker){.name = "X", .n = 2, .spawn_into = &f->n,
                                  .spawn_task = &f->t[2],
                                  .spawn_frame = &f->w[2]};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], worker, &f->w[0]));
        tlog_add(&L, "p2");
        f->w[1] = (struct worker){.name = "Y", .n = 1};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], worker, &f->w[1]));
        PTRIO_CHECKPOINT(f);
        tlog_add(&L, "p3");
    }
    tlog_add(&L, "joined");
    PTRIO_END(f);
}

START_TEST(test_start_order_and_batches)
{
    static struct batch_main f;
    f = (struct batch_main){0};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(batch_main, &f, NULL), 0);
    ck_assert_str_eq(L.buf, "p1 p2 X0 Y0 p3 Z0 X1 joined");
}
END_TEST

/* 1000 tasks, three rounds of checkpoints: every round runs in start
 * order. */
#ifndef TEST_CONF_LOOP_MANY
#define TEST_CONF_LOOP_MANY 1000  /* small targets: -DTEST_CONF_LOOP_MANY=n */
#endif
#define MANY TEST_CONF_LOOP_MANY
static ptrio_task many_t[MANY];
static struct mw { ptrio_frame fr; int id, i; } many_w[MANY];
static int many_log[3 * MANY], many_len;

static int many_worker(ptrio_frame *fr)
{
    struct mw *f = PTRIO_SELF(fr, struct mw);
    PTRIO_BEGIN(f);
    for (f->i = 0; f->i < 3; f->i++) {
        if (many_len < 3 * MANY)
            many_log[many_len++] = f->id;
        PTRIO_AWAIT(f, ptrio_checkpoint(f));
    }
    PTRIO_END(f);
}

struct many_main { ptrio_frame fr; ptrio_nursery n; int i; };

static int many_main(ptrio_frame *fr)
{
    struct many_main *f = PTRIO_SELF(fr, struct many_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        for (f->i = 0; f->i < MANY; f->i++) {
            many_w[f->i].id = f->i;
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &many_t[f->i], many_worker,
                                            &many_w[f->i]));
        }
        if (ptrio_nursery_live(&f->n) != MANY)
            PTRIO_RAISE(f, -PTRIO_ERANGE, "live");
    }
    if (ptrio_nursery_live(&f->n) != 0)
        PTRIO_RAISE(f, -PTRIO_ERANGE, "live after");
    PTRIO_END(f);
}

START_TEST(test_many_tasks_fifo)
{
    static struct many_main f;
    int i;
    f = (struct many_main){0};
    memset(many_t, 0, sizeof many_t);
    memset(many_w, 0, sizeof many_w);
    many_len = 0;
    ck_assert_int_eq(run_virtual(many_main, &f, NULL), 0);
    ck_assert_int_eq(many_len, 3 * MANY);
    for (i = 0; i < 3 * MANY; i++)
        ck_assert_int_eq(many_log[i], i % MANY);
}
END_TEST

/* ---- run status --------------------------------------------------- */

struct status_main { ptrio_frame fr; int line; };

static int returns_42(ptrio_frame *fr)
{
    struct status_main *f = PTRIO_SELF(fr, struct status_main);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_checkpoint(f));
    PTRIO_RETURN(f, 42);
    PTRIO_END(f);
}

static int main_fails(ptrio_frame *fr)
{
    struct status_main *f = PTRIO_SELF(fr, struct status_main);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(3)));
    f->line = __LINE__; PTRIO_RAISE(f, -PTRIO_EIO, "boom");
    PTRIO_END(f);
}

static int ends_plainly(ptrio_frame *fr)
{
    struct status_main *f = PTRIO_SELF(fr, struct status_main);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_checkpoint(f));
    PTRIO_END(f);
}

/* Builds "ptrio: task '<task>' failed: <name> (<msg>) at <file>:<line>
 * in <task>()" (the traceback: a task's one frame, named as the task's
 * function); tlog_add would put spaces between the pieces. */
static void failure_line(tlog *out, const char *task, const char *name,
                         const char *msg, int line)
{
    char b[32];
    strcpy(out->buf, "ptrio: task '");
    strcat(out->buf, task);
    strcat(out->buf, "' failed: ");
    strcat(out->buf, name);
    strcat(out->buf, " (");
    strcat(out->buf, msg);
    strcat(out->buf, ") at ");
    strcat(out->buf, __FILE__);
    fmt(b, ":", line);
    strcat(out->buf, b);
    strcat(out->buf, " in ");
    strcat(out->buf, task);
    strcat(out->buf, "()");
    out->len = strlen(out->buf);
}

/* ptrio_loop_run returns the main task's value or its failure, which it
 * reports; a plain end is 0. */
START_TEST(test_run_status)
{
    static struct status_main f;
    static tlog want;
    treport rep;

    f = (struct status_main){0};
    ck_assert_int_eq(run_virtual(returns_42, &f, &rep), 42);
    ck_assert_int_eq(rep.count, 0);

    f = (struct status_main){0};
    ck_assert_int_eq(run_virtual(ends_plainly, &f, &rep), 0);
    ck_assert_int_eq(rep.count, 0);

    f = (struct status_main){0};
    ck_assert_int_eq(run_virtual(main_fails, &f, &rep), -PTRIO_EIO);
    ck_assert_int_eq(rep.count, 1);
    failure_line(&want, "main_fails", "EIO", "boom", f.line);
    tlog_add(&want, "|");
    ck_assert_str_eq(rep.lines.buf, want.buf);
}
END_TEST

/* ptrio_run: the same on the build's default loop (a freestanding build
 * has no default backend: -PTRIO_ENOBACKEND). */
START_TEST(test_ptrio_run_default_loop)
{
    static struct status_main f;
    f = (struct status_main){0};
    if (ptrio_default_backend())
        ck_assert_int_eq(ptrio_run(returns_42, &f), 42);
    else
        ck_assert_int_eq(ptrio_run(returns_42, &f), -PTRIO_ENOBACKEND);
    ck_assert_ptr_null(ptrio_current_loop());
    ck_assert_ptr_null(ptrio_current_task());
}
END_TEST

/* A child's failure goes through the nursery to the run, which reports
 * the task, the site and the nursery. */
static int failer(ptrio_frame *fr)
{
    struct status_main *f = PTRIO_SELF(fr, struct status_main);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(2)));
    f->line = __LINE__; PTRIO_RAISE(f, -PTRIO_EPIPE, "broken");
    PTRIO_END(f);
}

struct child_fail_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct status_main c;
    struct worker w;
    int nline;
};

static int child_fail_main(ptrio_frame *fr)
{
    struct child_fail_main *f = PTRIO_SELF(fr, struct child_fail_main);
    PTRIO_BEGIN(f);
    f->nline = __LINE__; PTRIO_NURSERY(f, &f->n) {
        f->w = (struct worker){.name = "w", .sleep = PTRIO_SEC(10)};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], worker, &f->w));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], failer, &f->c));
    }
    tlog_add(&L, "unreached");
    PTRIO_FINALLY(f);
    logn_at(&L, "fin", PTRIO_FINALLY_ERROR(f));
    PTRIO_RETURN(f, 1);
    PTRIO_END(f);
}

/* A RETURN inside FINALLY replaces the error (as in Python): nothing is
 * reported. */
START_TEST(test_child_failure_status)
{
    static struct child_fail_main f;
    treport rep;

    f = (struct child_fail_main){0};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(child_fail_main, &f, &rep), 1);
    ck_assert_int_eq(rep.count, 0);
    /* the sleeping sibling was cancelled at 2 ms, not left for 10 s */
    ck_assert_str_eq(L.buf, "fin-32@2");
}
END_TEST

/* Same, with the error left to propagate. */
struct child_fail_main2 {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct status_main c;
    struct worker w;
    int nline;
};

static int child_fails_uncaught(ptrio_frame *fr)
{
    struct child_fail_main2 *f = PTRIO_SELF(fr, struct child_fail_main2);
    PTRIO_BEGIN(f);
    f->nline = __LINE__; PTRIO_NURSERY(f, &f->n) {
        f->w = (struct worker){.name = "w", .sleep = PTRIO_SEC(10)};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], worker, &f->w));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], failer, &f->c));
    }
    tlog_add(&L, "unreached");
    PTRIO_FINALLY(f);
    logn_at(&L, "fin", PTRIO_FINALLY_ERROR(f));
    PTRIO_END(f);
}

START_TEST(test_child_failure_reported)
{
    static struct child_fail_main2 f;
    static tlog want;
    char b[32];
    treport rep;

    f = (struct child_fail_main2){0};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(child_fails_uncaught, &f, &rep), -PTRIO_EPIPE);
    /* the sleeping sibling was cancelled at 2 ms, not left for 10 s */
    ck_assert_str_eq(L.buf, "fin-32@2");
    ck_assert_int_eq(rep.count, 1);
    failure_line(&want, "failer", "EPIPE", "broken", f.c.line);
    strcat(want.buf, " via nursery at ");
    strcat(want.buf, __FILE__);
    fmt(b, ":", f.nline);
    strcat(want.buf, b);
    strcat(want.buf, " |");
    ck_assert_str_eq(rep.lines.buf, want.buf);
}
END_TEST

/* ---- task identity ----------------------------------------------- */

struct names_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[3];
    struct worker w[3];
    ptrio_task *me;
    const char *myname;
    ptrio_loop *loop;
    int same;
};

static int names_main(ptrio_frame *fr)
{
    struct names_main *f = PTRIO_SELF(fr, struct names_main);
    PTRIO_BEGIN(f);
    f->me = ptrio_current_task();
    f->myname = ptrio_task_name(f->me);
    f->loop = ptrio_current_loop();
    PTRIO_NURSERY(f, &f->n) {
        f->w[0] = (struct worker){.name = "a", .n = 2};
        f->w[1] = (struct worker){.name = "b", .n = 2};
        f->w[2] = (struct worker){.name = "c", .n = 2};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], worker, &f->w[0]));
        PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[1], worker,
                                              &f->w[1], "custom"));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[2], worker, &f->w[2]));
        PTRIO_CHECKPOINT(f);
    }
    f->same = ptrio_current_task() == f->me;
    PTRIO_END(f);
}

/* ptrio_current_task is the task's own storage, stable across awaits; its
 * default name is the function's name; run_virtual names the main task
 * after its function. Outside a loop there is no task nor loop. */
START_TEST(test_current_task_and_names)
{
    static struct names_main f;
    int i;
    f = (struct names_main){0};
    tlog_clear(&L);
    ck_assert_ptr_null(ptrio_current_task());
    ck_assert_ptr_null(ptrio_current_loop());
    ck_assert_int_eq(run_virtual(names_main, &f, NULL), 0);
    ck_assert_ptr_nonnull(f.me);
    ck_assert_str_eq(f.myname, "names_main");
    ck_assert_ptr_nonnull(f.loop);
    ck_assert_int_eq(f.same, 1);
    for (i = 0; i < 3; i++) {
        ck_assert_ptr_eq(f.w[i].me, &f.t[i]);
        ck_assert_ptr_eq(f.w[i].loop, f.loop);
        ck_assert_int_eq(f.w[i].same_task, 1);
    }
    ck_assert_str_eq(f.w[0].myname, "worker");
    ck_assert_str_eq(f.w[1].myname, "custom");
    ck_assert_str_eq(f.w[2].myname, "worker");
    ck_assert_str_eq(ptrio_task_name(&f.t[1]), "custom");
    ck_assert_str_eq(L.buf, "a0 b0 c0 a1 b1 c1");
    ck_assert_ptr_null(ptrio_current_task());
    ck_assert_ptr_null(ptrio_current_loop());
}
END_TEST

/* ptrio_loop_run_named names the main task; ptrio_current_loop is the
 * loop given. */
START_TEST(test_loop_run_named)
{
    static ptrio_loop loop;
    static struct names_main f;
    f = (struct names_main){0};
    tlog_clear(&L);
    ptrio_loop_init(&loop);
    ck_assert_int_eq(ptrio_loop_use_backend(&loop, &ptrio_backend_virtual), 0);
    ptrio_loop_set_report(&loop, NULL, NULL);
    ck_assert_int_eq(ptrio_loop_run_named(&loop, names_main, &f, "boss"), 0);
    ck_assert_str_eq(f.myname, "boss");
    ck_assert_ptr_eq(f.loop, &loop);
    ck_assert_ptr_eq(f.w[0].loop, &loop);
    ck_assert_ptr_null(ptrio_current_loop());
}
END_TEST

/* Tasks and frames are reusable once finished; a loop too, and the
 * virtual clock starts again at 0. */
struct reuse_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct worker w[2];
    int round;
};

static int reuse_main(ptrio_frame *fr)
{
    struct reuse_main *f = PTRIO_SELF(fr, struct reuse_main);
    PTRIO_BEGIN(f);
    for (f->round = 0; f->round < 2; f->round++) {
        PTRIO_NURSERY(f, &f->n) {
            f->w[0] = (struct worker){.name = f->round ? "P" : "p", .n = 1,
                                      .sleep = PTRIO_MS(2)};
            f->w[1] = (struct worker){.name = f->round ? "Q" : "q", .n = 1,
                                      .sleep = PTRIO_MS(1)};
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], worker, &f->w[0]));
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], worker, &f->w[1]));
        }
        tlog_at(&L, "round");
    }
    PTRIO_END(f);
}

START_TEST(test_reuse_tasks_and_loop)
{
    static ptrio_loop loop;
    static struct reuse_main f;
    int run;

    ptrio_loop_init(&loop);
    ck_assert_int_eq(ptrio_loop_use_backend(&loop, &ptrio_backend_virtual), 0);
    ptrio_loop_set_report(&loop, NULL, NULL);
    for (run = 0; run < 2; run++) {
        f = (struct reuse_main){0};
        tlog_clear(&L);
        ck_assert_int_eq(ptrio_loop_run(&loop, reuse_main, &f), 0);
        ck_assert_str_eq(L.buf, "q0 p0 round@2 Q0 P0 round@4");
    }
}
END_TEST

/* ---- hooks -------------------------------------------------------- */

struct hook_counts { int spawned, scheduled, exited, before, after; };
static tlog HL;

static void h_spawned(void *ctx, const ptrio_task *t)
{
    ((struct hook_counts *)ctx)->spawned++;
    log2s(&HL, "spawn:", ptrio_task_name(t));
}

static void h_scheduled(void *ctx, const ptrio_task *t)
{
    ((struct hook_counts *)ctx)->scheduled++;
    log2s(&HL, "sched:", ptrio_task_name(t));
}

static void h_exited(void *ctx, const ptrio_task *t, int status)
{
    char b[64];
    ((struct hook_counts *)ctx)->exited++;
    fmt(b, "=", status);
    log2s(&HL, "exit:", ptrio_task_name(t));
    /* glue "=status" to the entry just added */
    strcat(HL.buf, b);
    HL.len = strlen(HL.buf);
}

static void h_before(void *ctx, ptrio_time deadline)
{
    ((struct hook_counts *)ctx)->before++;
    if (deadline == PTRIO_TIME_INF)
        tlog_add(&HL, "bw:inf");
    else
        logn(&HL, "bw:", (long)(deadline / PTRIO_MS(1)));
}

static void h_after(void *ctx)
{
    ((struct hook_counts *)ctx)->after++;
    tlog_add(&HL, "aw");
}

static const ptrio_hooks all_hooks = {
    .task_spawned = h_spawned,
    .before_task_step = h_scheduled,
    .task_exited = h_exited,
    .before_io_wait = h_before,
    .after_io_wait = h_after,
};

struct hooks_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[3];
    struct worker w[3];
    int i;
};

static int hooks_main(ptrio_frame *fr)
{
    struct hooks_main *f = PTRIO_SELF(fr, struct hooks_main);
    static const char *const names[] = {"w0", "w1", "w2"};
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        for (f->i = 0; f->i < 3; f->i++) {
            f->w[f->i] = (struct worker){.name = "x", .n = 2,
                                         .ret = 10 + f->i};
            PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[f->i], worker,
                                                  &f->w[f->i],
                                                  names[f->i]));
        }
    }
    PTRIO_END(f);
}

/* Spawned, scheduled (every step) and exited (with the status), in
 * order; no backend wait happens when something is always ready. */
START_TEST(test_hooks_tasks)
{
    static struct hooks_main f;
    struct hook_counts c = {0, 0, 0, 0, 0};

    f = (struct hooks_main){0};
    tlog_clear(&L);
    tlog_clear(&HL);
    ck_assert_int_eq(run_hooked(hooks_main, &f, "main", &all_hooks, &c), 0);
    ck_assert_str_eq(HL.buf,
        "spawn:main sched:main spawn:w0 spawn:w1 spawn:w2 "
        "sched:w0 sched:w1 sched:w2 sched:w0 sched:w1 sched:w2 "
        "sched:w0 exit:w0=10 sched:w1 exit:w1=11 sched:w2 exit:w2=12 "
        "sched:main exit:main=0");
    ck_assert_int_eq(c.spawned, 4);
    ck_assert_int_eq(c.scheduled, 11);
    ck_assert_int_eq(c.exited, 4);
    ck_assert_int_eq(c.before, 0);
    ck_assert_int_eq(c.after, 0);
}
END_TEST

struct sleepy { ptrio_frame fr; };

static int sleepy(ptrio_frame *fr)
{
    struct sleepy *f = PTRIO_SELF(fr, struct sleepy);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(5)));
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(7)));
    tlog_at(&HL, "end");
    PTRIO_END(f);
}

/* The backend wait is bracketed by before_wait (with the deadline it waits
 * for) and after_wait. */
START_TEST(test_hooks_wait)
{
    static struct sleepy f;
    struct hook_counts c = {0, 0, 0, 0, 0};

    f = (struct sleepy){0};
    tlog_clear(&HL);
    ck_assert_int_eq(run_hooked(sleepy, &f, "s", &all_hooks, &c), 0);
    ck_assert_str_eq(HL.buf, "spawn:s sched:s bw:5 aw sched:s bw:12 aw "
                             "sched:s end@12 exit:s=0");
    ck_assert_int_eq(c.before, 2);
    ck_assert_int_eq(c.after, 2);
}
END_TEST

/* Members may be NULL; NULL hooks remove them. */
START_TEST(test_hooks_partial_and_none)
{
    static const ptrio_hooks only_exit = {.task_exited = h_exited};
    static struct hooks_main f;
    struct hook_counts c = {0, 0, 0, 0, 0};

    f = (struct hooks_main){0};
    tlog_clear(&HL);
    ck_assert_int_eq(run_hooked(hooks_main, &f, "main", &only_exit, &c), 0);
    ck_assert_str_eq(HL.buf, "exit:w0=10 exit:w1=11 exit:w2=12 exit:main=0");
    ck_assert_int_eq(c.exited, 4);
    ck_assert_int_eq(c.spawned + c.scheduled + c.before + c.after, 0);

    f = (struct hooks_main){0};
    tlog_clear(&HL);
    ck_assert_int_eq(run_hooked(hooks_main, &f, "main", NULL, &c), 0);
    ck_assert_str_eq(HL.buf, "");
    ck_assert_int_eq(c.exited, 4);
}
END_TEST

/* ---- ptrio_dump ---------------------------------------------------- */

static treport dump_rep, dump_after;

static void dump_sink(void *ctx, const char *line)
{
    treport_sink(ctx, line);
}

struct dump_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[3];
    struct worker w[3];
    int i, in_body, after, lines_body;
};

static int dump_main(ptrio_frame *fr)
{
    struct dump_main *f = PTRIO_SELF(fr, struct dump_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        for (f->i = 0; f->i < 3; f->i++) {
            f->w[f->i] = (struct worker){.name = "w",
                                         .sleep = PTRIO_MS(10 + f->i)};
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[f->i], worker,
                                            &f->w[f->i]));
        }
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        memset(&dump_rep, 0, sizeof dump_rep);
        f->in_body = ptrio_dump(dump_sink, &dump_rep);
        f->lines_body = dump_rep.count;
    }
    memset(&dump_after, 0, sizeof dump_after);
    f->after = ptrio_dump(dump_sink, &dump_after);
    PTRIO_END(f);
}

/* Inside a running loop ptrio_dump writes the tree and returns the number
 * of tasks; outside it returns -PTRIO_ENOTASK and writes nothing. */
START_TEST(test_dump)
{
    static struct dump_main f;
    treport outside;

    f = (struct dump_main){0};
    ck_assert_int_eq(run_virtual(dump_main, &f, NULL), 0);
    ck_assert_int_eq(f.in_body, 4);
    ck_assert_int_ge(f.lines_body, 4);
    ck_assert_int_eq(count_of(dump_rep.lines.buf, "'worker'"), 3);
    ck_assert_int_eq(count_of(dump_rep.lines.buf, "'dump_main'"), 1);
    ck_assert_int_eq(f.after, 1);
    ck_assert_int_eq(count_of(dump_after.lines.buf, "'worker'"), 0);
    ck_assert_int_eq(count_of(dump_after.lines.buf, "'dump_main'"), 1);

    memset(&outside, 0, sizeof outside);
    ck_assert_int_eq(ptrio_dump(dump_sink, &outside), -PTRIO_ENOTASK);
    ck_assert_int_eq(outside.count, 0);
}
END_TEST

/* A task dumped from its FINALLY, reached by a raise: it has no resume
 * line there, and the dump says where it is instead of "at ?". */
static treport fin_rep;

static int dump_in_finally(ptrio_frame *fr)
{
    struct dump_main *f = PTRIO_SELF(fr, struct dump_main);
    PTRIO_BEGIN(f);
    PTRIO_RAISE(f, -PTRIO_EIO, "dumped from FINALLY");
    PTRIO_FINALLY(f);
    f->in_body = ptrio_dump(dump_sink, &fin_rep);
    PTRIO_END(f);
}

START_TEST(test_dump_in_finally)
{
    static struct dump_main f;

    f = (struct dump_main){0};
    memset(&fin_rep, 0, sizeof fin_rep);
    ck_assert_int_eq(run_virtual(dump_in_finally, &f, NULL), -PTRIO_EIO);
    ck_assert_int_eq(f.in_body, 1);
    ck_assert_int_eq(count_of(fin_rep.lines.buf, "task 'dump_in_finally' "
                              "running in the FINALLY of "
                              "dump_in_finally() ("), 1);
    ck_assert_int_eq(count_of(fin_rep.lines.buf, " at ?"), 0);
}
END_TEST

/* Dumped from its first step (no resume line yet either): it says so,
 * not "at file:0". */
static int dump_first_step(ptrio_frame *fr)
{
    struct dump_main *f = PTRIO_SELF(fr, struct dump_main);
    PTRIO_BEGIN(f);
    f->in_body = ptrio_dump(dump_sink, &fin_rep);
    PTRIO_END(f);
}

START_TEST(test_dump_in_first_step)
{
    static struct dump_main f;

    f = (struct dump_main){0};
    memset(&fin_rep, 0, sizeof fin_rep);
    ck_assert_int_eq(run_virtual(dump_first_step, &f, NULL), 0);
    ck_assert_int_eq(f.in_body, 1);
    ck_assert_int_eq(count_of(fin_rep.lines.buf, "task 'dump_first_step' "
                              "running in its first step of "
                              "dump_first_step() ("), 1);
    ck_assert_int_eq(count_of(fin_rep.lines.buf, "check_loop.c:0"), 0);
}
END_TEST

/* ---- deadlock ------------------------------------------------------ */

struct forever {
    ptrio_frame fr;
    const char *name;
    ptrio_time first;       /* sleep this long first, if > 0 */
    int inf;                /* use ptrio_sleep(PTRIO_TIME_INF) */
};

static int forever(ptrio_frame *fr)
{
    struct forever *f = PTRIO_SELF(fr, struct forever);
    PTRIO_BEGIN(f);
    if (f->first > 0)
        PTRIO_AWAIT(f, ptrio_sleep(f, f->first));
    if (f->inf)
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_TIME_INF));
    else
        PTRIO_AWAIT(f, ptrio_sleep_forever(f));
    tlog_add(&L, "unreached");
    PTRIO_FINALLY(f);
    logn_at(&L, f->name, PTRIO_FINALLY_ERROR(f));
    PTRIO_END(f);
}

struct dl_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct forever c[2];
};

static int dl_main(ptrio_frame *fr)
{
    struct dl_main *f = PTRIO_SELF(fr, struct dl_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->c[0] = (struct forever){.name = "a", .first = PTRIO_SEC(3)};
        f->c[1] = (struct forever){.name = "b", .inf = 1};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], forever, &f->c[0]));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], forever, &f->c[1]));
    }
    tlog_add(&L, "unreached");
    PTRIO_FINALLY(f);
    logn_at(&L, "main", PTRIO_FINALLY_ERROR(f));
    PTRIO_END(f);
}

/* Every task parked with no deadline: the virtual clock cancels them all
 * (at the time it noticed) and the run fails with -PTRIO_EDEADLK. */
START_TEST(test_deadlock_detected)
{
    static struct dl_main f;
    treport rep;
    f = (struct dl_main){0};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(dl_main, &f, &rep), -PTRIO_EDEADLK);
    ck_assert_str_eq(L.buf, "a-9007@3000 b-9007@3000 main-9007@3000");
    ck_assert_int_ge(rep.count, 1);
    ck_assert_ptr_nonnull(strstr(rep.lines.buf, "deadlock"));
}
END_TEST

/* The main task alone, asleep forever. */
START_TEST(test_deadlock_main_alone)
{
    static struct forever f;
    f = (struct forever){.name = "m"};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(forever, &f, NULL), -PTRIO_EDEADLK);
    ck_assert_str_eq(L.buf, "m-9007@0");
}
END_TEST

/* Not a deadlock: a task asleep forever that another task cancels. */
struct nodl_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct forever c;
};

static int nodl_main(ptrio_frame *fr)
{
    struct nodl_main *f = PTRIO_SELF(fr, struct nodl_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->c = (struct forever){.name = "c"};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, forever, &f->c));
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));
        ptrio_nursery_cancel(&f->n);
    }
    tlog_at(&L, "joined");
    PTRIO_END(f);
}

START_TEST(test_no_deadlock_when_cancelled)
{
    static struct nodl_main f;
    treport rep;
    f = (struct nodl_main){0};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(nodl_main, &f, &rep), 0);
    ck_assert_int_eq(rep.count, 0);
    ck_assert_str_eq(L.buf, "c-9007@1000 joined@1000");
}
END_TEST

/* Waiting with no deadline of its own inside a scope that has one is not
 * a deadlock: the scope's deadline fires. */
struct scoped_forever { ptrio_frame fr; ptrio_scope a, b, tb; };

static int scoped_forever(ptrio_frame *fr)
{
    struct scoped_forever *f = PTRIO_SELF(fr, struct scoped_forever);
    PTRIO_BEGIN(f);
    PTRIO_MOVE_ON_AFTER(f, &f->a, PTRIO_SEC(1)) {
        PTRIO_AWAIT(f, ptrio_sleep_forever(f));
    }
    tlog_at(&L, ptrio_cancelled_caught(&f->a) ? "moved-on" : "not-caught");
    PTRIO_TRY_BLOCK(f, &f->tb) {
        PTRIO_FAIL_AT(f, &f->b, PTRIO_SEC(3)) {
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_TIME_INF));
        }
    }
    logn_at(&L, "failed", ptrio_scope_error(&f->tb));
    PTRIO_END(f);
}

START_TEST(test_no_deadlock_with_scope_deadline)
{
    static struct scoped_forever f;
    treport rep;
    f = (struct scoped_forever){0};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(scoped_forever, &f, &rep), 0);
    ck_assert_int_eq(rep.count, 0);
    ck_assert_str_eq(L.buf, "moved-on@1000 failed-110@3000");
}
END_TEST

/* A task whose cleanup blocks forever again, shielded, after the deadlock
 * cancelled it: the run still ends with -PTRIO_EDEADLK (it does not hang
 * nor loop). */
struct stubborn { ptrio_frame fr; ptrio_scope sh; };

static int stubborn(ptrio_frame *fr)
{
    struct stubborn *f = PTRIO_SELF(fr, struct stubborn);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_sleep_forever(f));
    PTRIO_FINALLY(f);
    tlog_at(&L, "fin");
    PTRIO_SHIELD(f, &f->sh) {
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(5)));
        tlog_at(&L, "shielded");
        PTRIO_AWAIT(f, ptrio_sleep_forever(f));
    }
    tlog_add(&L, "unreached");
    PTRIO_END(f);
}

START_TEST(test_deadlock_twice)
{
    static struct stubborn f;
    treport rep;
    f = (struct stubborn){0};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(stubborn, &f, &rep), -PTRIO_EDEADLK);
    ck_assert_str_eq(L.buf, "fin@0 shielded@5");
    ck_assert_ptr_null(ptrio_current_loop());
}
END_TEST

int main(void)
{
    Suite *s = suite_create("loop");
    TCase *tc = tcase_create("loop");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_fifo_interleave);
    tcase_add_test(tc, test_start_order_and_batches);
    tcase_add_test(tc, test_many_tasks_fifo);
    tcase_add_test(tc, test_run_status);
    tcase_add_test(tc, test_ptrio_run_default_loop);
    tcase_add_test(tc, test_child_failure_status);
    tcase_add_test(tc, test_child_failure_reported);
    tcase_add_test(tc, test_current_task_and_names);
    tcase_add_test(tc, test_loop_run_named);
    tcase_add_test(tc, test_reuse_tasks_and_loop);
    tcase_add_test(tc, test_hooks_tasks);
    tcase_add_test(tc, test_hooks_wait);
    tcase_add_test(tc, test_hooks_partial_and_none);
    tcase_add_test(tc, test_dump);
    tcase_add_test(tc, test_dump_in_finally);
    tcase_add_test(tc, test_dump_in_first_step);
    tcase_add_test(tc, test_deadlock_detected);
    tcase_add_test(tc, test_deadlock_main_alone);
    tcase_add_test(tc, test_no_deadlock_when_cancelled);
    tcase_add_test(tc, test_no_deadlock_with_scope_deadline);
    tcase_add_test(tc, test_deadlock_twice);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
