/* tests/check_thread.c: ptrio_run_in_thread (Trio: to_thread.run_sync),
 * built once per backend. Workers block on pipes the tests control, so
 * nothing depends on timing but the short bounds on real time. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "iotest.h"

/* A gate: a worker blocks in gate_wait until the test opens it. */
static int gate[2];

static void gate_open(void)
{
    if (write(gate[1], "g", 1) != 1)
        abort();
}

static void gate_wait(void)
{
    char c;
    if (read(gate[0], &c, 1) != 1)
        abort();
}

static int calls, discards;

static void setup(void)
{
    tlog_clear(&L);
    ck_assert_int_eq(pipe(gate), 0);
    __atomic_store_n(&calls, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&discards, 0, __ATOMIC_SEQ_CST);
}

static void teardown(void)
{
    close(gate[0]);
    close(gate[1]);
}

static void *twice(void *arg)
{
    __atomic_add_fetch(&calls, 1, __ATOMIC_SEQ_CST);
    return (void *)((intptr_t)arg * 2);
}

static void *gated(void *arg)
{
    __atomic_add_fetch(&calls, 1, __ATOMIC_SEQ_CST);
    gate_wait();
    return arg;
}

static void count_discard(void *arg, void *result)
{
    (void)arg, (void)result;
    __atomic_add_fetch(&discards, 1, __ATOMIC_SEQ_CST);
}

/* ---- results, and the loop running meanwhile ------------------------ */

struct ticker {
    ptrio_frame fr;
    int ticks;
};

static int ticker(ptrio_frame *fr)
{
    struct ticker *t = PTRIO_SELF(fr, struct ticker);
    PTRIO_BEGIN(t);
    for (t->ticks = 0; t->ticks < 3; t->ticks++)
        PTRIO_AWAIT(t, ptrio_sleep(t, PTRIO_MS(5)));
    gate_open();        /* only now may the worker return */
    PTRIO_END(t);
}

struct basic {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct ticker tk;
    ptrio_thread_job job;
    void *res;
    int rc;
};

static int basic(ptrio_frame *fr)
{
    struct basic *b = PTRIO_SELF(fr, struct basic);
    PTRIO_BEGIN(b);
    PTRIO_NURSERY(b, &b->n) {
        PTRIO_CHECK(b, ptrio_start_soon(&b->n, &b->t, ticker, &b->tk));
        PTRIO_TRY(b, b->rc, ptrio_run_in_thread(b, &b->job, gated,
                                                (void *)(intptr_t)42,
                                                &b->res));
        tlog_add(&L, b->tk.ticks == 3 ? "ticked" : "blocked");
    }
    /* The job is reusable once the call returned. */
    PTRIO_AWAIT(b, ptrio_run_in_thread(b, &b->job, twice, (void *)(intptr_t)21,
                                       &b->res));
    PTRIO_END(b);
}

/* The worker blocks until another task has run three sleeps: the loop
 * runs while the call waits; the call returns fn's result. */
START_TEST(test_result_and_loop_runs)
{
    static struct basic B;
    ck_assert_int_eq(run_io(basic, &B), 0);
    ck_assert_int_eq(B.rc, 0);
    ck_assert_str_eq(L.buf, "ticked");
    ck_assert_ptr_eq(B.res, (void *)(intptr_t)42);
    ck_assert_int_eq(calls, 2);
}
END_TEST

/* ---- more calls than workers ------------------------------------------ */

#define NCALLS 40

struct fan {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[NCALLS];
    struct caller {
        ptrio_frame fr;
        ptrio_thread_job job;
        intptr_t in;
        void *out;
    } c[NCALLS];
    unsigned max_workers;
};

static int caller(ptrio_frame *fr)
{
    struct caller *c = PTRIO_SELF(fr, struct caller);
    PTRIO_BEGIN(c);
    PTRIO_AWAIT(c, ptrio_run_in_thread(c, &c->job, twice, (void *)c->in,
                                       &c->out));
    PTRIO_END(c);
}

static int fan(ptrio_frame *fr)
{
    struct fan *f = PTRIO_SELF(fr, struct fan);
    int i;
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        for (i = 0; i < NCALLS; i++) {
            f->c[i].in = i;
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[i], caller, &f->c[i]));
        }
        PTRIO_AWAIT(f, ptrio_yield(f));
        f->max_workers = ptrio_thread_workers(NULL);
    }
    PTRIO_END(f);
}

/* 40 calls at once on a pool of at most 8 workers: all complete with
 * their own result; the rest queue. */
START_TEST(test_more_calls_than_workers)
{
    static struct fan F;
    int i;
    ck_assert_int_eq(run_io(fan, &F), 0);
    for (i = 0; i < NCALLS; i++)
        ck_assert_ptr_eq(F.c[i].out, (void *)(intptr_t)(2 * i));
    ck_assert_int_eq(calls, NCALLS);
    ck_assert_uint_le(F.max_workers, 8);
    ck_assert_uint_ge(F.max_workers, 1);
    /* The run's end joined the idle workers: no thread left behind. */
    ck_assert_uint_eq(ptrio_thread_workers(NULL), 0);
    usleep(20000);  /* its last instructions (a detached thread's exit) */
}
END_TEST

/* ---- cancellation mid-call ------------------------------------------- */

/* Cancels `sc` once the worker has picked the call up (a call cancelled
 * while still queued never runs: see test_cancel_while_queued), polling
 * every millisecond for at most 5 s. */
struct picked {
    ptrio_frame fr;
    ptrio_scope *sc;
    int polls;
};

static int cancel_when_picked(ptrio_frame *fr)
{
    struct picked *p = PTRIO_SELF(fr, struct picked);
    PTRIO_BEGIN(p);
    while (__atomic_load_n(&calls, __ATOMIC_SEQ_CST) == 0) {
        if (++p->polls > 5000)
            PTRIO_RAISE(p, -PTRIO_ETIMEDOUT, "the worker never started");
        PTRIO_AWAIT(p, ptrio_sleep(p, PTRIO_MS(1)));
    }
    ptrio_cancel(p->sc);
    PTRIO_END(p);
}

struct midcall {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task tp;
    struct picked p;
    ptrio_scope sc;
    ptrio_thread_job job;
    char arg[32];
    void *res;
    int rc;
    long long ms;
};

static void *scribble(void *arg)
{
    char *a = arg;
    __atomic_add_fetch(&calls, 1, __ATOMIC_SEQ_CST);
    gate_wait();
    memcpy(a, "written by the worker", 22);
    return a;
}

static int midcall(ptrio_frame *fr)
{
    struct midcall *m = PTRIO_SELF(fr, struct midcall);
    PTRIO_BEGIN(m);
    m->ms = mono_ms();
    PTRIO_CHECK(m, ptrio_thread_job_init(&m->job, sizeof m->arg,
                                         count_discard));
    m->res = (void *)&m->res;   /* a cancelled call leaves it alone */
    strcpy(m->arg, "caller's");
    PTRIO_NURSERY(m, &m->n) {
        m->p.sc = &m->sc;
        PTRIO_CHECK(m, ptrio_start_soon(&m->n, &m->tp, cancel_when_picked,
                                        &m->p));
        PTRIO_CANCEL_SCOPE(m, &m->sc) {
            PTRIO_TRY(m, m->rc, ptrio_run_in_thread(m, &m->job, scribble,
                                                    m->arg, &m->res));
        }
    }
    m->ms = mono_ms() - m->ms;
    PTRIO_END(m);
}

/* Trio: test_threads.py::test_run_in_worker_thread_cancellation (with
 * abandon_on_cancel): the call returns at once with -ECANCELED while the
 * worker still runs; the frame is then freed, and the worker's late
 * result touches neither it (ASan would see) nor the caller's argument:
 * it goes to discard. */
START_TEST(test_cancel_mid_call)
{
    struct midcall *m = calloc(1, sizeof *m);
    int i;

    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(run_io(midcall, m), 0);
    ck_assert_int_eq(m->rc, -PTRIO_ECANCELED);
    ck_assert_ptr_eq(m->res, (void *)&m->res);
    ck_assert_str_eq(m->arg, "caller's");
    ck_assert_int_lt(m->ms, 6000);
    ck_assert_int_eq(__atomic_load_n(&calls, __ATOMIC_SEQ_CST), 1);
    free(m);                    /* the caller's frame is gone */
    gate_open();                /* now the worker returns */
    for (i = 0; i < 2000 && !__atomic_load_n(&discards, __ATOMIC_SEQ_CST); i++)
        usleep(1000);
    ck_assert_int_eq(discards, 1);
    /* The abandoned worker ends by itself once its call returned. */
    for (i = 0; i < 2000 && ptrio_thread_workers(NULL); i++)
        usleep(1000);
    ck_assert_uint_eq(ptrio_thread_workers(NULL), 0);
    usleep(20000);  /* its last instructions (a detached thread's exit) */
}
END_TEST

/* ---- cancellation while queued ---------------------------------------- */

struct queued {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[9];
    struct caller c[9];
    ptrio_scope sc;
    ptrio_thread_job job;
    int rc;
};

static int blocker(ptrio_frame *fr)
{
    struct caller *c = PTRIO_SELF(fr, struct caller);
    PTRIO_BEGIN(c);
    PTRIO_AWAIT(c, ptrio_run_in_thread(c, &c->job, gated, NULL, &c->out));
    PTRIO_END(c);
}

static int queued(ptrio_frame *fr)
{
    struct queued *q = PTRIO_SELF(fr, struct queued);
    int i;
    PTRIO_BEGIN(q);
    PTRIO_NURSERY(q, &q->n) {
        for (i = 0; i < 8; i++)
            PTRIO_CHECK(q, ptrio_start_soon(&q->n, &q->t[i], blocker, &q->c[i]));
        /* Until all 8 workers are inside `gated`. */
        while (__atomic_load_n(&calls, __ATOMIC_SEQ_CST) < 8)
            PTRIO_AWAIT(q, ptrio_sleep(q, PTRIO_MS(1)));
        PTRIO_MOVE_ON_AFTER(q, &q->sc, PTRIO_MS(20)) {
            PTRIO_TRY(q, q->rc, ptrio_run_in_thread(q, &q->job, twice, NULL,
                                                    NULL));
        }
        tlog_add(&L, q->rc == -PTRIO_ECANCELED ? "cancelled" : "ran");
        for (i = 0; i < 8; i++)
            gate_open();
    }
    PTRIO_END(q);
}

/* A call cancelled while it waits for a worker never runs. */
START_TEST(test_cancel_while_queued)
{
    static struct queued Q;
    ck_assert_int_eq(run_io(queued, &Q), 0);
    ck_assert_str_eq(L.buf, "cancelled");
    ck_assert_int_eq(calls, 8);     /* twice() never ran */
}
END_TEST

/* ---- a result that is already in when the cancel comes ----------------- */

struct late {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct caller c;
    struct spin {
        ptrio_frame fr;
        struct late *l;
    } s;
    ptrio_scope sc;
    int rc;
};

static int late_call(ptrio_frame *fr)
{
    struct late *l = (struct late *)(void *)((char *)fr - offsetof(struct late, c));
    struct caller *c = &l->c;
    PTRIO_BEGIN(c);
    PTRIO_CANCEL_SCOPE(c, &l->sc) {
        PTRIO_TRY(c, l->rc, ptrio_run_in_thread(c, &c->job, twice,
                                                (void *)(intptr_t)5, &c->out));
    }
    PTRIO_END(c);
}

/* Spins in one step until the worker is done, then cancels the call
 * before the loop could deliver the result. */
static int spin(ptrio_frame *fr)
{
    struct spin *s = PTRIO_SELF(fr, struct spin);
    int i;
    PTRIO_BEGIN(s);
    /* sched_yield lets the worker run (valgrind runs one thread at a
     * time); at most about 5 s. */
    for (i = 0; i < 5000 && __atomic_load_n(&s->l->c.job.state,
                                            __ATOMIC_ACQUIRE) != 3; i++)
        if (sched_yield() != 0 || i > 100)
            usleep(1000);
    ptrio_cancel(&s->l->sc);
    PTRIO_END(s);
}

static int late(ptrio_frame *fr)
{
    struct late *l = PTRIO_SELF(fr, struct late);
    PTRIO_BEGIN(l);
    l->s.l = l;
    PTRIO_NURSERY(l, &l->n) {
        PTRIO_CHECK(l, ptrio_start_soon(&l->n, &l->t[0], late_call, &l->c));
        PTRIO_AWAIT(l, ptrio_yield(l));
        PTRIO_CHECK(l, ptrio_start_soon(&l->n, &l->t[1], spin, &l->s));
    }
    PTRIO_END(l);
}

/* A call whose worker finished before the cancellation arrived is not
 * undone: it returns its result (Trio's abandon_on_cancel=True would
 * raise Cancelled and drop the result: see README, Differences). */
START_TEST(test_cancel_after_result_delivers_it)
{
    static struct late T;
    ck_assert_int_eq(run_io(late, &T), 0);
    ck_assert_int_eq(T.rc, 0);
    ck_assert_ptr_eq(T.c.out, (void *)(intptr_t)10);
    ck_assert(ptrio_cancel_called(&T.sc));
}
END_TEST

struct precancelled {
    ptrio_frame fr;
    ptrio_scope sc;
    ptrio_thread_job job;
    void *res;
    int rc;
    unsigned workers;
};

static int precancelled(ptrio_frame *fr)
{
    struct precancelled *p = PTRIO_SELF(fr, struct precancelled);
    PTRIO_BEGIN(p);
    p->res = (void *)&p->res;
    PTRIO_CANCEL_SCOPE(p, &p->sc) {
        ptrio_cancel(&p->sc);
        p->workers = ptrio_thread_workers(NULL);
        PTRIO_AWAIT(p, ptrio_run_in_thread(p, &p->job, twice,
                                           (void *)(intptr_t)1, &p->res));
        p->rc = 1;      /* never reached */
    }
    PTRIO_END(p);
}

/* Trio: test_threads.py::test_run_in_worker_thread_cancellation (the
 * end): in a scope cancelled before the call, entering the call is the
 * cancellation point: fn never runs, no worker is started, `*result` is
 * left alone, and the scope catches the cancellation. */
START_TEST(test_cancelled_before_entry)
{
    static struct precancelled P;
    memset(&P, 0, sizeof P);
    ck_assert_int_eq(run_io(precancelled, &P), 0);
    ck_assert(ptrio_cancelled_caught(&P.sc));
    ck_assert_int_eq(P.rc, 0);
    ck_assert_ptr_eq(P.res, (void *)&P.res);
    ck_assert_int_eq(__atomic_load_n(&calls, __ATOMIC_SEQ_CST), 0);
    ck_assert_uint_eq(ptrio_thread_workers(NULL), P.workers);
}
END_TEST

/* ---- misuse and unsupported backends -------------------------------------- */

struct reuse {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct caller c;
    int rc[4];
};

static int reuse(ptrio_frame *fr)
{
    struct reuse *r = PTRIO_SELF(fr, struct reuse);
    PTRIO_BEGIN(r);
    PTRIO_NURSERY(r, &r->n) {
        PTRIO_CHECK(r, ptrio_start_soon(&r->n, &r->t, blocker, &r->c));
        PTRIO_AWAIT(r, ptrio_yield(r));
        r->rc[0] = ptrio_thread_job_init(&r->c.job, 0, NULL);
        r->rc[1] = ptrio_thread_job_init(NULL, 0, NULL);
        r->rc[2] = ptrio_thread_job_init(&r->c.job, PTRIO_THREAD_COPY_MAX + 1,
                                         NULL);
        gate_open();
        PTRIO_TRY(r, r->rc[3], ptrio_run_in_thread(r, &r->c.job, twice, NULL,
                                                   NULL));
    }
    PTRIO_END(r);
}

/* A job in a call cannot be reused or reconfigured: -EBUSY (a trap in
 * debug builds). */
START_TEST(test_job_in_use)
{
    static struct reuse R;
    ck_assert_int_eq(run_io(reuse, &R), 0);
    ck_assert_int_eq(R.rc[0], -PTRIO_EBUSY);
    ck_assert_int_eq(R.rc[1], -PTRIO_EINVAL);
    ck_assert_int_eq(R.rc[2], -PTRIO_EBUSY);
    ck_assert_int_eq(R.rc[3], -PTRIO_EBUSY);
}
END_TEST

struct novirt {
    ptrio_frame fr;
    ptrio_thread_job job;
    int rc[2];
};

static int novirt(ptrio_frame *fr)
{
    struct novirt *v = PTRIO_SELF(fr, struct novirt);
    PTRIO_BEGIN(v);
    PTRIO_TRY(v, v->rc[0], ptrio_run_in_thread(v, &v->job, twice, NULL, NULL));
    PTRIO_TRY(v, v->rc[1], ptrio_run_in_thread(v, &v->job, NULL, NULL, NULL));
    PTRIO_END(v);
}

/* The virtual clock has no wake: -ENOTSUP rather than a deadlock. */
START_TEST(test_virtual_clock_unsupported)
{
    static struct novirt V;
    ck_assert_int_eq(run_virtual(novirt, &V, NULL), 0);
    ck_assert_int_eq(V.rc[0], -PTRIO_ENOTSUP);
    ck_assert_int_eq(V.rc[1], -PTRIO_EINVAL);
    ck_assert_int_eq(calls, 0);
}
END_TEST

/* ---- a loop closing while another thread's loop calls ---------------- */

struct one_call {
    ptrio_frame fr;
    ptrio_thread_job job;
    void *res;
    int n;
};

/* `n` calls, one after another (n < 0: until `other_stop`). */
static int other_stop;

static int calls_in_turn(ptrio_frame *fr)
{
    struct one_call *c = PTRIO_SELF(fr, struct one_call);
    PTRIO_BEGIN(c);
    while (c->n < 0 ? !__atomic_load_n(&other_stop, __ATOMIC_SEQ_CST)
                    : c->n-- > 0)
        PTRIO_AWAIT(c, ptrio_run_in_thread(c, &c->job, twice,
                                           (void *)(intptr_t)1, &c->res));
    PTRIO_END(c);
}

static void *other_loop(void *arg)
{
    static struct one_call c;
    (void)arg;
    c = (struct one_call){.n = -1};
    return (void *)(intptr_t)ptrio_run(calls_in_turn, &c);
}

/* A loop that closes with no call in flight stops the idle workers and
 * waits for them to end. A call of another loop (on another thread) that
 * comes meanwhile keeps the pool alive: the close must stop waiting then,
 * not until the idle workers' 10 s timeout. Each run below makes one call
 * and closes; none may take 5 s. */
START_TEST(test_close_while_another_loop_calls)
{
    static struct one_call c;
    pthread_t th;
    long long t0, longest = 0;
    void *orc;
    int i;

    __atomic_store_n(&other_stop, 0, __ATOMIC_SEQ_CST);
    ck_assert_int_eq(pthread_create(&th, NULL, other_loop, NULL), 0);
    for (i = 0; i < 300; i++) {
        c = (struct one_call){.n = 1};
        t0 = mono_ms();
        ck_assert_int_eq(ptrio_run(calls_in_turn, &c), 0);
        if (mono_ms() - t0 > longest)
            longest = mono_ms() - t0;
        if (longest > 5000)
            break;
    }
    __atomic_store_n(&other_stop, 1, __ATOMIC_SEQ_CST);
    ck_assert_int_eq(pthread_join(th, &orc), 0);
    ck_assert_int_eq((int)(intptr_t)orc, 0);
    ck_assert_msg(longest <= 5000, "a run took %lld ms to close", longest);
}
END_TEST

/* Loops on two threads, each making one call and closing, 200 times at
 * once: closes that run together each join the workers they stopped, and
 * no worker is joined twice (undefined behaviour: a crash or a hang). */
static void *close_often(void *arg)
{
    static struct one_call c[2];
    struct one_call *me = &c[(intptr_t)arg];
    int i, bad = 0;

    for (i = 0; i < 200; i++) {
        *me = (struct one_call){.n = 1};
        bad += ptrio_run(calls_in_turn, me) != 0;
    }
    return (void *)(intptr_t)bad;
}

START_TEST(test_two_loops_close_at_once)
{
    pthread_t th[2];
    void *bad[2];
    intptr_t i;

    for (i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, close_often,
                                        (void *)i), 0);
    for (i = 0; i < 2; i++) {
        ck_assert_int_eq(pthread_join(th[i], &bad[i]), 0);
        ck_assert_int_eq((int)(intptr_t)bad[i], 0);
    }
}
END_TEST

/* ---- a scope changed from a thread with no loop --------------------- */

struct offloop {
    ptrio_frame fr;
    ptrio_scope sc;
    int rc_deadline, slept_rc, shielded;
};

static void *change_scope(void *arg)
{
    struct offloop *o = arg;
    ptrio_cancel(&o->sc);
    o->rc_deadline = ptrio_scope_set_deadline(&o->sc, 0);
    ptrio_scope_set_shield(&o->sc, true);
    return NULL;
}

static int offloop(ptrio_frame *fr)
{
    struct offloop *o = PTRIO_SELF(fr, struct offloop);
    pthread_t th;
    PTRIO_BEGIN(o);
    PTRIO_MOVE_ON_AFTER(o, &o->sc, PTRIO_MS(200)) {
        ck_assert_int_eq(pthread_create(&th, NULL, change_scope, o), 0);
        ck_assert_int_eq(pthread_join(th, NULL), 0);
        o->shielded = ptrio_scope_shield(&o->sc);
        PTRIO_TRY(o, o->slept_rc, ptrio_sleep(o, PTRIO_MS(5)));
    }
    PTRIO_END(o);
}

/* An open scope belongs to its loop's thread: cancelling it, moving its
 * deadline or shielding it from a thread with no loop is refused (the
 * scope is unchanged, the deadline call says -PTRIO_ENOTASK; a trap in
 * debug builds), where it used to race the loop and lose the cancel. */
START_TEST(test_scope_changed_off_the_loop_thread)
{
    static struct offloop o;
    memset(&o, 0, sizeof o);
    ck_assert_int_eq(run_io(offloop, &o), 0);
    ck_assert_int_eq(o.rc_deadline, -PTRIO_ENOTASK);
    ck_assert(!o.shielded);
    ck_assert_int_eq(o.slept_rc, 0);            /* not cancelled */
    ck_assert(!ptrio_cancel_called(&o.sc));
}
END_TEST

/* ---- the pool's limit ---------------------------------------------------- */

#define NLIMIT 16       /* twice the pool's 8 workers */

static int running, high_water;

/* Counts the calls inside at once, then blocks at the gate. */
static void *counted(void *arg)
{
    int now = __atomic_add_fetch(&running, 1, __ATOMIC_SEQ_CST), hw;
    __atomic_add_fetch(&calls, 1, __ATOMIC_SEQ_CST);
    hw = __atomic_load_n(&high_water, __ATOMIC_SEQ_CST);
    while (now > hw && !__atomic_compare_exchange_n(&high_water, &hw, now, 0,
                                                    __ATOMIC_SEQ_CST,
                                                    __ATOMIC_SEQ_CST))
        ;
    gate_wait();
    __atomic_sub_fetch(&running, 1, __ATOMIC_SEQ_CST);
    return arg;
}

struct limited {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[NLIMIT];
    struct lcaller {
        ptrio_frame fr;
        ptrio_scope sc;
        ptrio_thread_job job;
        void *out;
        int rc;
    } c[NLIMIT];
    int cancel, i, polls, in_after_wait;
};

static int lcaller(ptrio_frame *fr)
{
    struct lcaller *c = PTRIO_SELF(fr, struct lcaller);
    PTRIO_BEGIN(c);
    PTRIO_CANCEL_SCOPE(c, &c->sc) {
        PTRIO_TRY(c, c->rc, ptrio_run_in_thread(c, &c->job, counted,
                                                (void *)c, &c->out));
    }
    PTRIO_END(c);
}

static int limited(ptrio_frame *fr)
{
    struct limited *l = PTRIO_SELF(fr, struct limited);
    PTRIO_BEGIN(l);
    PTRIO_NURSERY(l, &l->n) {
        for (l->i = 0; l->i < NLIMIT; l->i++)
            PTRIO_CHECK(l, ptrio_start_soon(&l->n, &l->t[l->i], lcaller,
                                            &l->c[l->i]));
        /* Until the pool's 8 are inside (at most about 5 s). */
        while (__atomic_load_n(&calls, __ATOMIC_SEQ_CST) < 8) {
            if (++l->polls > 5000)
                PTRIO_RAISE(l, -PTRIO_ETIMEDOUT, "the workers never started");
            PTRIO_AWAIT(l, ptrio_sleep(l, PTRIO_MS(1)));
        }
        if (l->cancel) {
            /* The 8 running calls (the first 8: the queue is FIFO) are
             * abandoned; their workers still run them. */
            for (l->i = 0; l->i < 8; l->i++)
                ptrio_cancel(&l->c[l->i].sc);
        }
        PTRIO_AWAIT(l, ptrio_sleep(l, PTRIO_MS(20)));
        /* No one got past the limit meanwhile. */
        l->in_after_wait = __atomic_load_n(&calls, __ATOMIC_SEQ_CST);
        for (l->i = 0; l->i < NLIMIT; l->i++)
            gate_open();
    }
    PTRIO_END(l);
}

/* Trio: test_threads.py::test_run_in_worker_thread_limiter (the default
 * limiter, here the pool's fixed 8, with and without cancel): of 16
 * calls, 8 run at once and the others wait; calls cancelled while they
 * run keep their worker until fn returns (Trio: they keep their token),
 * so none of the waiting ones starts early; in the end all 16 ran, never
 * more than 8 at once. */
START_TEST(test_pool_limits_concurrency)
{
    static struct limited Lm;
    int cancel, i;

    for (cancel = 0; cancel < 2; cancel++) {
        memset(&Lm, 0, sizeof Lm);
        Lm.cancel = cancel;
        __atomic_store_n(&calls, 0, __ATOMIC_SEQ_CST);
        __atomic_store_n(&high_water, 0, __ATOMIC_SEQ_CST);
        ck_assert_int_eq(run_io(limited, &Lm), 0);
        ck_assert_int_eq(Lm.in_after_wait, 8);
        for (i = 0; i < 2000 && __atomic_load_n(&calls, __ATOMIC_SEQ_CST)
                                    < NLIMIT; i++)
            usleep(1000);   /* abandoned calls: the queued ones run late */
        for (i = 0; i < 2000 && __atomic_load_n(&running, __ATOMIC_SEQ_CST);
             i++)
            usleep(1000);
        ck_assert_int_eq(calls, NLIMIT);
        ck_assert_int_eq(running, 0);
        ck_assert_int_eq(high_water, 8);
        for (i = 0; i < NLIMIT; i++) {
            int want = cancel && i < 8 ? -PTRIO_ECANCELED : 0;
            ck_assert_msg(Lm.c[i].rc == want, "cancel %d, call %d: %s",
                          cancel, i, ptrio_errname(Lm.c[i].rc));
            if (!want)
                ck_assert_ptr_eq(Lm.c[i].out, &Lm.c[i]);
        }
    }
    for (i = 0; i < 2000 && ptrio_thread_workers(NULL); i++)
        usleep(1000);
    ck_assert_uint_eq(ptrio_thread_workers(NULL), 0);
    usleep(20000);  /* their last instructions (a detached thread's exit) */
}
END_TEST

/* ---- no thread can be started ----------------------------------------- */

static int fail_spawn;

/* The library's pthread_create binds to this one: fails with EAGAIN while
 * fail_spawn is set, else calls the real one. */
int pthread_create(pthread_t *th, const pthread_attr_t *attr,
                   void *(*fn)(void *), void *arg)
{
    static int (*real)(pthread_t *, const pthread_attr_t *,
                       void *(*)(void *), void *);
    if (__atomic_load_n(&fail_spawn, __ATOMIC_SEQ_CST))
        return EAGAIN;
    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "pthread_create");
    return real(th, attr, fn, arg);
}

struct nospawn {
    ptrio_frame fr;
    ptrio_thread_job job;
    void *res;
    int rc[2];
};

static int nospawn(ptrio_frame *fr)
{
    struct nospawn *s = PTRIO_SELF(fr, struct nospawn);
    PTRIO_BEGIN(s);
    __atomic_store_n(&fail_spawn, 1, __ATOMIC_SEQ_CST);
    s->res = (void *)&s->res;
    PTRIO_TRY(s, s->rc[0], ptrio_run_in_thread(s, &s->job, twice,
                                               (void *)(intptr_t)4, &s->res));
    __atomic_store_n(&fail_spawn, 0, __ATOMIC_SEQ_CST);
    tlog_add(&L, s->res == (void *)&s->res ? "untouched" : "written");
    /* The job is free again, and the pool works once threads start. */
    PTRIO_TRY(s, s->rc[1], ptrio_run_in_thread(s, &s->job, twice,
                                               (void *)(intptr_t)4, &s->res));
    PTRIO_END(s);
}

/* Trio: test_threads.py::test_run_in_worker_thread_fail_to_spawn: when
 * no worker can be started, the call fails (-PTRIO_EAGAIN), fn never
 * ran, and nothing is left held: the same job's next call runs. */
START_TEST(test_fail_to_spawn)
{
    static struct nospawn S;
    memset(&S, 0, sizeof S);
    ck_assert_uint_eq(ptrio_thread_workers(NULL), 0);
    ck_assert_int_eq(run_io(nospawn, &S), 0);
    ck_assert_int_eq(S.rc[0], -PTRIO_EAGAIN);
    ck_assert_str_eq(L.buf, "untouched");
    ck_assert_int_eq(S.rc[1], 0);
    ck_assert_ptr_eq(S.res, (void *)(intptr_t)8);
    ck_assert_int_eq(calls, 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("thread/" TEST_BACKEND_NAME);
    TCase *tc = tcase_create("thread");

    tcase_set_timeout(tc, 20);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_result_and_loop_runs);
    tcase_add_test(tc, test_more_calls_than_workers);
    tcase_add_test(tc, test_cancel_mid_call);
    tcase_add_test(tc, test_cancel_while_queued);
    tcase_add_test(tc, test_cancel_after_result_delivers_it);
    tcase_add_test(tc, test_cancelled_before_entry);
    tcase_add_misuse_test(tc, test_job_in_use);
    tcase_add_test(tc, test_virtual_clock_unsupported);
    tcase_add_test(tc, test_close_while_another_loop_calls);
    tcase_add_test(tc, test_two_loops_close_at_once);
    tcase_add_misuse_test(tc, test_scope_changed_off_the_loop_thread);
    tcase_add_test(tc, test_pool_limits_concurrency);
    tcase_add_test(tc, test_fail_to_spawn);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
