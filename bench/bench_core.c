/* bench/bench_core: the cost of a checkpoint, against the hand-written
 * limit (bench/hand.h), in ns and in instructions (see bench/bench.h).
 *
 * checkpoint_roundtrip  one task awaiting PTRIO_CHECKPOINT in a loop on a
 *                       default loop (epoll on Linux, no fds, no timers): per
 *                       checkpoint. Baseline: a hand-written protothread
 *                       yielding in the same loop, requeued on an
 *                       intrusive FIFO run queue (queue it, pop it, call
 *                       its step, jump to its resume point). Targets:
 *                       ratio <= 1.5 (ns and instructions), <= 48
 *                       instructions.
 * checkpoint_switch     two tasks alternating, each checkpointing in a
 *                       loop: per checkpoint, i.e. per task switch.
 *                       Baseline: two hand-written protothreads. Target:
 *                       ratio <= 1.5.
 * resume_depth32        the checkpoints of checkpoint_roundtrip from a
 *                       frame 32 PTRIO_CALLs below the task's root;
 *                       baseline: the same at depth 1. Resuming goes
 *                       straight to the innermost frame: target <= 1.1.
 * sizeof_*              sizes of the public objects, in bytes.
 */
#include "bench.h"
#include "bench_ptrio.h"
#include "hand.h"

#include <ptrio.h>

#define DEPTH 32

/* ---- checkpoint_roundtrip -------------------------------------------- */

struct yielder {
    ptrio_frame fr;
    long i, n;
};

static int yielder(ptrio_frame *fr)
{
    struct yielder *y = PTRIO_SELF(fr, struct yielder);
    PTRIO_BEGIN(y);
    for (y->i = 0; y->i < y->n; y->i++)
        PTRIO_CHECKPOINT(y);
    PTRIO_END(y);
}

static void roundtrip_ptrio(long n)
{
    static struct yielder y;

    memset(&y, 0, sizeof y);
    y.n = n;
    run_main(yielder, &y, "checkpoint_roundtrip");
}

struct hand_yielder {
    hand_task t;
    long i, n;
};

static HAND_NOINLINE int hand_yielder(hand_task *t)
{
    struct hand_yielder *y = (struct hand_yielder *)t;
    HAND_BEGIN(t);
    for (y->i = 0; y->i < y->n; y->i++)
        HAND_YIELD_POINT(t, HAND_YIELD);
    HAND_END(t);
}

static void roundtrip_hand(long n)
{
    static struct hand_yielder y;
    hand_sched s = {0};

    y.n = n;
    hand_spawn(&s, &y.t, hand_yielder, NULL);
    hand_run(&s);
}

/* ---- checkpoint_switch --------------------------------------------------- */

struct pair {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task task[2];
    struct yielder kid[2];
};

static int pair(ptrio_frame *fr)
{
    struct pair *p = PTRIO_SELF(fr, struct pair);
    PTRIO_BEGIN(p);
    PTRIO_NURSERY(p, &p->n) {
        PTRIO_CHECK(p, ptrio_start_soon(&p->n, &p->task[0], yielder,
                                        &p->kid[0]));
        PTRIO_CHECK(p, ptrio_start_soon(&p->n, &p->task[1], yielder,
                                        &p->kid[1]));
    }
    PTRIO_END(p);
}

static void switch_ptrio(long n)
{
    static struct pair p;

    memset(&p, 0, sizeof p);
    p.kid[0].n = n / 2;
    p.kid[1].n = n - n / 2;
    run_main(pair, &p, "checkpoint_switch");
}

static void switch_hand(long n)
{
    static struct hand_yielder y[2];
    hand_sched s = {0};

    y[0].n = n / 2;
    y[1].n = n - n / 2;
    hand_spawn(&s, &y[0].t, hand_yielder, NULL);
    hand_spawn(&s, &y[1].t, hand_yielder, NULL);
    hand_run(&s);
}

/* ---- resume_depth32 ------------------------------------------------------ */

/* Frame k awaits frame k+1 until `depth` calls are stacked; the innermost
 * frame does the checkpoints. */
struct deep {
    ptrio_frame fr;
    int depth;
    long i, n;
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
    } else {
        for (d->i = 0; d->i < d->n; d->i++)
            PTRIO_CHECKPOINT(d);
    }
    PTRIO_END(d);
}

static void at_depth(int depth, long n)
{
    memset(chain, 0, sizeof chain);
    chain[0].depth = depth;
    chain[0].n = n;
    run_main(deep, &chain[0], "resume_depth");
}

static void depth32(long n) { at_depth(DEPTH, n); }
static void depth1(long n) { at_depth(1, n); }

/* ---- main ----------------------------------------------------------------- */

static const bench_figure roundtrip = {
    "checkpoint_roundtrip", roundtrip_ptrio, roundtrip_hand,
    10000000, 20000, 1.5, 48
};
static const bench_figure switching = {
    "checkpoint_switch", switch_ptrio, switch_hand,
    10000000, 20000, 1.5, 0
};
static const bench_figure depth = {
    "resume_depth32", depth32, depth1, 10000000, 20000, 1.1, 0
};

int main(int argc, char **argv)
{
    bench_result r;

    bench_init(argc, argv);
    r = bench_run(&roundtrip);
    bench_vs_trio("checkpoint_roundtrip", "checkpoint_ns", r);
    bench_run(&switching);
    bench_run(&depth);

    size_line("sizeof_task", sizeof(ptrio_task));
    size_line("sizeof_frame", sizeof(ptrio_frame));
    size_line("sizeof_loop", sizeof(ptrio_loop));
    size_line("sizeof_scope", sizeof(ptrio_scope));
    size_line("sizeof_nursery", sizeof(ptrio_nursery));
    return bench_done();
}
