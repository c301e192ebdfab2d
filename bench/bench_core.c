/* bench/bench_core: the cost of ptrio's scheduling primitives.
 *
 * Every figure is one line:
 *
 *   BENCH name=<id> value=<number> unit=<unit> [baseline=<number> ratio=<r>]
 *
 * checkpoint_roundtrip  one task awaiting ptrio_checkpoint 10M times on a
 *                       default loop (poll backend, no fds, no timers): ns
 *                       per checkpoint. Baseline: a hand-written
 *                       protothread (a switch-based step function) driven
 *                       by a ring of task pointers, doing the same 10M
 *                       yields. Target: ratio <= 2.0.
 * resume_depth32        the same checkpoints from a frame 32 PTRIO_CALLs
 *                       below the task's root; baseline: depth 1. Resuming
 *                       goes straight to the innermost frame, so the depth
 *                       should not matter. Target: ratio <= 1.1.
 * sizeof_*              sizes of the public objects, in bytes.
 *
 * Measured and baseline rounds alternate in this process; each figure is
 * the fastest of ROUNDS rounds (the least disturbed by the rest of the
 * machine). A missed target prints a "# target ... missed" line; the exit
 * status is 0 whatever the figures.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <time.h>

#include <ptrio.h>

#include "bench.h"

#define ROUNDS 7
#define YIELDS 10000000L        /* per round */
#define DEPTH 32

static void bench_line(const char *name, double value, const char *unit,
                       double baseline)
{
    if (baseline > 0)
        printf("BENCH name=%s value=%.2f unit=%s baseline=%.2f ratio=%.3f\n",
               name, value, unit, baseline, value / baseline);
    else
        printf("BENCH name=%s value=%.2f unit=%s\n", name, value, unit);
    fflush(stdout);
}

/* ---- the hand-written baseline ------------------------------------- */

/* A protothread written by hand: a step function switching on its saved
 * state, driven by a run queue that is a ring of task pointers. */
struct hw_task {
    int (*step)(struct hw_task *t);   /* 1: yielded (requeue), 0: done */
    unsigned state;
    long i, n;
};

#define HW_RING 8u               /* a power of two */
static struct hw_task *hw_ring[HW_RING];
static unsigned hw_head, hw_tail;

static int hw_yielder(struct hw_task *t)
{
    switch (t->state) {
    case 0:
        for (t->i = 0; t->i < t->n; t->i++) {
            t->state = 1;
            return 1;                   /* yield */
    case 1:;
        }
    }
    t->state = 0;
    return 0;
}

static void hw_run(void)
{
    while (hw_head != hw_tail) {
        struct hw_task *t = hw_ring[hw_head++ % HW_RING];
        if (t->step(t))
            hw_ring[hw_tail++ % HW_RING] = t;
    }
}

static double hw_round(void)
{
    static struct hw_task t;
    double t0;

    t.step = hw_yielder;
    t.state = 0;
    t.n = YIELDS;
    hw_head = hw_tail = 0;
    hw_ring[hw_tail++ % HW_RING] = &t;
    t0 = now_ns();
    hw_run();
    return (now_ns() - t0) / (double)YIELDS;
}

/* ---- ptrio: checkpoints --------------------------------------------- */

struct yielder {
    ptrio_frame fr;
    long i, n;
    double t0, ns;
};

static int yielder(ptrio_frame *fr)
{
    struct yielder *y = PTRIO_SELF(fr, struct yielder);
    PTRIO_BEGIN(y);
    y->t0 = now_ns();
    for (y->i = 0; y->i < y->n; y->i++)
        PTRIO_CHECKPOINT(y);
    y->ns = (now_ns() - y->t0) / (double)y->n;
    PTRIO_END(y);
}

static ptrio_loop loop;

static double ptrio_round(void)
{
    static struct yielder y;
    int rc;

    y.n = YIELDS;
    ptrio_loop_init(&loop);
    rc = ptrio_loop_run(&loop, yielder, &y);
    if (rc < 0) {
        fprintf(stderr, "bench_core: checkpoint round failed: %s\n",
                ptrio_errname(rc));
        return -1;
    }
    return y.ns;
}

/* ---- ptrio: resuming at depth ---------------------------------------- */

/* Frame k awaits frame k+1 until `depth` calls are stacked; the innermost
 * frame does the checkpoints. */
struct deep {
    ptrio_frame fr;
    int depth;
    long i, n;
    double t0, ns;
};

static struct deep chain[DEPTH + 1];

static int deep(ptrio_frame *fr)
{
    struct deep *d = PTRIO_SELF(fr, struct deep);
    PTRIO_BEGIN(d);
    if (d->depth > 0) {
        d[1].depth = d->depth - 1;      /* chain[] is contiguous */
        d[1].n = d->n;
        PTRIO_CALL(d, deep, &d[1]);
        d->ns = d[1].ns;
    } else {
        d->t0 = now_ns();
        for (d->i = 0; d->i < d->n; d->i++)
            PTRIO_CHECKPOINT(d);
        d->ns = (now_ns() - d->t0) / (double)d->n;
    }
    PTRIO_END(d);
}

static double depth_round(int depth)
{
    int rc;

    chain[0].depth = depth;
    chain[0].n = YIELDS;
    ptrio_loop_init(&loop);
    rc = ptrio_loop_run(&loop, deep, &chain[0]);
    if (rc < 0) {
        fprintf(stderr, "bench_core: depth round failed: %s\n",
                ptrio_errname(rc));
        return -1;
    }
    return chain[0].ns;
}

int main(void)
{
    double hw = 1e300, pt = 1e300, d1 = 1e300, d32 = 1e300;
    int r;

    for (r = 0; r < ROUNDS; r++) {
        hw = min2(hw, hw_round());
        pt = min2(pt, ptrio_round());
    }
    bench_line("checkpoint_roundtrip", pt, "ns", hw);
    target_line("checkpoint_roundtrip", pt / hw, 2.0);

    for (r = 0; r < ROUNDS; r++) {
        d1 = min2(d1, depth_round(1));
        d32 = min2(d32, depth_round(DEPTH));
    }
    bench_line("resume_depth1", d1, "ns", 0);
    bench_line("resume_depth32", d32, "ns", d1);
    target_line("resume_depth32", d32 / d1, 1.1);

    size_line("sizeof_task", sizeof(ptrio_task));
    size_line("sizeof_frame", sizeof(ptrio_frame));
    size_line("sizeof_loop", sizeof(ptrio_loop));
    size_line("sizeof_scope", sizeof(ptrio_scope));
    size_line("sizeof_nursery", sizeof(ptrio_nursery));
    return 0;
}
