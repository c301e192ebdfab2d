/* bench/bench_timer: the cost of sleeping, against the hand-written limit
 * (bench/hand.h), in ns and in instructions (see bench/bench.h).
 *
 * sleepers_100k  100,000 tasks in one nursery, each sleeping a distinct
 *                duration (1 us to 100 ms, in a scrambled order) then
 *                returning, on the virtual clock (ptrio_backend_virtual:
 *                no real waiting): per task, the cost of one sleep and
 *                its wake (the deadline tree, the clock's jumps, the
 *                resumed step). The same 100,000 tasks returning at once
 *                are the empty run (bench.h subtracts it), so spawning
 *                and joining are not counted. Baseline: hand-written
 *                protothreads doing the same on a binary heap of
 *                deadlines driven by a virtual clock. Target: ratio <= 2.
 */
#include "bench.h"
#include "hand.h"

#include <ptrio.h>
#include <ptrio/backend.h>

#define NTASKS 100000L

/* Task i's duration: a permutation of 1..NTASKS us (48271 is prime to
 * NTASKS), the same on both sides. */
static int64_t duration(long i)
{
    return PTRIO_US((i * 48271L) % NTASKS + 1);
}

static ptrio_loop loop;

/* ---- ptrio ---------------------------------------------------------------- */

struct kid {
    ptrio_frame fr;
    ptrio_time d;               /* 0: return at once */
};

static ptrio_task tasks[NTASKS];
static struct kid kids[NTASKS];

static int kid(ptrio_frame *fr)
{
    struct kid *k = PTRIO_SELF(fr, struct kid);
    PTRIO_BEGIN(k);
    if (k->d)
        PTRIO_AWAIT(k, ptrio_sleep(k, k->d));
    PTRIO_END(k);
}

struct parent {
    ptrio_frame fr;
    ptrio_nursery n;
    long i;
};

static int parent(ptrio_frame *fr)
{
    struct parent *p = PTRIO_SELF(fr, struct parent);
    PTRIO_BEGIN(p);
    PTRIO_NURSERY(p, &p->n) {
        for (p->i = 0; p->i < NTASKS; p->i++)
            PTRIO_CHECK(p, ptrio_start_soon(&p->n, &tasks[p->i], kid,
                                            &kids[p->i]));
    }
    PTRIO_END(p);
}

/* NTASKS tasks; the first n sleep. */
static void sleepers_ptrio(long n)
{
    static struct parent p;
    long i;
    int rc;

    bench_pause();
    memset(&p, 0, sizeof p);
    memset(kids, 0, sizeof kids);
    for (i = 0; i < n; i++)
        kids[i].d = duration(i);
    ptrio_loop_init(&loop);
    ptrio_loop_use_backend(&loop, &ptrio_backend_virtual);
    bench_resume();
    rc = ptrio_loop_run(&loop, parent, &p);
    if (rc < 0)
        bench_fail("sleepers_100k", ptrio_errname(rc));
}

/* ---- hand-written ------------------------------------------------------- */

struct hand_kid {
    hand_task t;
    hand_sched *s;
    int64_t d;
};

static struct hand_kid hkids[NTASKS];
static hand_timer heap[NTASKS];

static HAND_NOINLINE int hand_kid(hand_task *t)
{
    struct hand_kid *k = (struct hand_kid *)t;
    HAND_BEGIN(t);
    if (k->d) {
        hand_sleep(k->s, t, k->d);
        HAND_YIELD_POINT(t, HAND_WAIT);
    }
    HAND_END(t);
}

struct hand_parent {
    hand_task t;
    hand_sched *s;
    long i;
};

static HAND_NOINLINE int hand_parent(hand_task *t)
{
    struct hand_parent *p = (struct hand_parent *)t;
    HAND_BEGIN(t);
    for (p->i = 0; p->i < NTASKS; p->i++)
        hand_spawn(p->s, &hkids[p->i].t, hand_kid, t);
    if (t->live)
        HAND_YIELD_POINT(t, HAND_WAIT);
    HAND_END(t);
}

static void sleepers_hand(long n)
{
    static struct hand_parent p;
    hand_sched s = {0};
    long i;

    bench_pause();
    for (i = 0; i < NTASKS; i++) {
        hkids[i].s = &s;
        hkids[i].d = i < n ? duration(i) : 0;
    }
    s.heap = heap;
    p.s = &s;
    bench_resume();
    hand_spawn(&s, &p.t, hand_parent, NULL);
    hand_run(&s);
}

/* ---- main ------------------------------------------------------------------- */

static const bench_figure sleepers = {
    "sleepers_100k", sleepers_ptrio, sleepers_hand, NTASKS, NTASKS, 2.0, 0
};

int main(int argc, char **argv)
{
    bench_result r;

    bench_init(argc, argv);
    r = bench_run(&sleepers);
    bench_vs_trio("sleepers_100k", "sleepers_ns", r);
    return bench_done();
}
