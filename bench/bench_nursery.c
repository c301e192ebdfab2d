/* bench/bench_nursery: the cost of nurseries, cancel scopes and
 * cancellation, against the hand-written limit (bench/hand.h), in ns and
 * in instructions (see bench/bench.h).
 *
 * spawn_join          n trivial tasks started into one nursery and joined:
 *                     per task. Baseline: hand-written protothreads in an
 *                     array, queued on the run queue by a parent that
 *                     counts them and waits until the last one is done.
 *                     Target: ratio <= 2.5.
 * move_on_after       a PTRIO_MOVE_ON_AFTER(5 s) block whose body does not
 *                     block: per block. Baseline: what a hand-written
 *                     timeout does when nothing blocks: deadline = the
 *                     loop's cached now + d, saturated; push the scope on
 *                     the task's scope list; the body; pop it, test
 *                     whether it fired, clear the deadline. Target: ratio
 *                     <= 4.
 * scope_enter_exit    the same with PTRIO_CANCEL_SCOPE (no deadline);
 *                     baseline: the hand-written push and pop.
 * cancel_fanout_100k  a nursery of 100,000 tasks parked in
 *                     ptrio_sleep_forever, cancelled with
 *                     ptrio_nursery_cancel: per task, from the cancel call
 *                     until the block's end returns. Baseline: the same
 *                     with 1,000 tasks (rounds of them): cancellation
 *                     should cost the same per task at any size. Target:
 *                     ratio <= 1.5.
 *
 * With Python Trio's figures (bench/trio_baseline.py, $BENCH_TRIO),
 * spawn_join, move_on_after and scope_enter_exit also get a *_vs_trio
 * line: ptrio's ns against Trio's.
 */
#include "bench.h"
#include "bench_ptrio.h"
#include "hand.h"

#include <ptrio.h>

#define NTASKS 100000L           /* spawn_join, cancel_fanout_100k */
#define NSMALL 1000L             /* cancel_fanout's baseline */

/* ---- the tasks -------------------------------------------------------- */

struct kid {
    ptrio_frame fr;
};

static ptrio_task tasks[NTASKS + 1];
static struct kid kids[NTASKS + 1];

static int trivial(ptrio_frame *fr)
{
    struct kid *k = PTRIO_SELF(fr, struct kid);
    PTRIO_BEGIN(k);
    PTRIO_END(k);
}

static int sleeper(ptrio_frame *fr)
{
    struct kid *k = PTRIO_SELF(fr, struct kid);
    PTRIO_BEGIN(k);
    PTRIO_AWAIT(k, ptrio_sleep_forever(k));
    PTRIO_END(k);
}

/* Started after the sleepers, it runs in the same batch, after every one
 * of them has parked (batches run in FIFO order): it starts the measure
 * and cancels the nursery. */
struct canceller {
    ptrio_frame fr;
    ptrio_nursery *n;
};

static int canceller(ptrio_frame *fr)
{
    struct canceller *c = PTRIO_SELF(fr, struct canceller);
    PTRIO_BEGIN(c);
    bench_resume();
    ptrio_nursery_cancel(c->n);
    PTRIO_END(c);
}

/* ---- the parents -------------------------------------------------------- */

enum { SPAWN_JOIN, FANOUT, MOVE_ON, SCOPES };

struct parent {
    ptrio_frame fr;
    int what;
    long count, i, sum;
    ptrio_nursery n;
    ptrio_scope sc;
    struct canceller canceller;
};

static int parent(ptrio_frame *fr)
{
    struct parent *p = PTRIO_SELF(fr, struct parent);
    PTRIO_BEGIN(p);
    if (p->what == SPAWN_JOIN) {
        PTRIO_NURSERY(p, &p->n) {
            for (p->i = 0; p->i < p->count; p->i++)
                PTRIO_CHECK(p, ptrio_start_soon(&p->n, &tasks[p->i], trivial,
                                                &kids[p->i]));
        }
    } else if (p->what == FANOUT) {
        PTRIO_NURSERY(p, &p->n) {
            for (p->i = 0; p->i < p->count; p->i++)
                PTRIO_CHECK(p, ptrio_start_soon(&p->n, &tasks[p->i], sleeper,
                                                &kids[p->i]));
            p->canceller.n = &p->n;
            PTRIO_CHECK(p, ptrio_start_soon(&p->n, &tasks[p->count],
                                            canceller, &p->canceller));
        }
        bench_pause();
    } else if (p->what == MOVE_ON) {
        for (p->i = 0; p->i < p->count; p->i++) {
            PTRIO_MOVE_ON_AFTER(p, &p->sc, PTRIO_SEC(5)) {
                bench_opaque();
                p->sum++;
            }
        }
    } else {
        for (p->i = 0; p->i < p->count; p->i++) {
            PTRIO_CANCEL_SCOPE(p, &p->sc) {
                bench_opaque();
                p->sum++;
            }
        }
    }
    PTRIO_END(p);
}

static void round_of(int what, long count)
{
    static struct parent p;

    memset(&p, 0, sizeof p);
    p.what = what;
    p.count = count;
    run_main(parent, &p, "parent");
}

static void spawn_ptrio(long n) { round_of(SPAWN_JOIN, n); }
static void move_on_ptrio(long n) { round_of(MOVE_ON, n); }
static void scopes_ptrio(long n) { round_of(SCOPES, n); }

/* The spawning is not measured: bench_resume() in the canceller. */
static void fanout_ptrio(long n)
{
    bench_pause();
    round_of(FANOUT, n);
}

/* Rounds of NSMALL tasks (n a multiple of it). */
static void fanout_small(long n)
{
    long r;

    bench_pause();
    for (r = 0; r < n / NSMALL; r++)
        round_of(FANOUT, NSMALL);
}

/* ---- hand-written: spawn and join ---------------------------------------- */

static hand_task hkids[NTASKS];

static HAND_NOINLINE int hand_trivial(hand_task *t)
{
    HAND_BEGIN(t);
    HAND_END(t);
}

struct hand_parent {
    hand_task t;
    hand_sched *s;
    long i, n;
};

/* Spawns n children, then waits until the last one is done (hand_run
 * wakes it). */
static HAND_NOINLINE int hand_spawner(hand_task *t)
{
    struct hand_parent *p = (struct hand_parent *)t;
    HAND_BEGIN(t);
    for (p->i = 0; p->i < p->n; p->i++)
        hand_spawn(p->s, &hkids[p->i], hand_trivial, t);
    if (t->live)
        HAND_YIELD_POINT(t, HAND_WAIT);
    HAND_END(t);
}

static void spawn_hand(long n)
{
    static struct hand_parent p;
    hand_sched s = {0};

    p.s = &s;
    p.n = n;
    hand_spawn(&s, &p.t, hand_spawner, NULL);
    hand_run(&s);
}

/* ---- hand-written: scopes ------------------------------------------------- */

typedef struct hand_scope hand_scope;
struct hand_scope {
    hand_scope *parent;
    int64_t deadline;
    int fired;
};

static struct {
    int64_t now;                /* the loop's clock, read once per batch */
    hand_scope *scope;          /* the running task's innermost scope */
    long sum;
} hand;

static inline void hand_scope_enter(hand_scope *sc, int64_t d)
{
    sc->deadline = d > INT64_MAX - hand.now ? INT64_MAX : hand.now + d;
    sc->fired = 0;
    sc->parent = hand.scope;
    hand.scope = sc;
}

static inline int hand_scope_leave(hand_scope *sc)
{
    hand.scope = sc->parent;
    sc->deadline = INT64_MAX;
    return sc->fired;
}

static HAND_NOINLINE void move_on_hand(long n)
{
    hand_scope sc;
    long i;

    for (i = 0; i < n; i++) {
        hand_scope_enter(&sc, PTRIO_SEC(5));
        bench_opaque();
        hand.sum++;
        if (hand_scope_leave(&sc))
            hand.sum--;
    }
}

static HAND_NOINLINE void scopes_hand(long n)
{
    hand_scope sc;
    long i;

    for (i = 0; i < n; i++) {
        sc.parent = hand.scope;
        hand.scope = &sc;
        bench_opaque();
        hand.sum++;
        hand.scope = sc.parent;
    }
}

/* ---- main ------------------------------------------------------------------- */

static const bench_figure spawn_join = {
    "spawn_join", spawn_ptrio, spawn_hand, NTASKS, 20000, 2.5, 0
};
static const bench_figure move_on_after = {
    "move_on_after", move_on_ptrio, move_on_hand, 1000000, 20000, 4.0, 0
};
static const bench_figure scope_enter_exit = {
    "scope_enter_exit", scopes_ptrio, scopes_hand, 1000000, 20000, 0, 0
};
static const bench_figure fanout = {
    "cancel_fanout_100k", fanout_ptrio, fanout_small, NTASKS, NTASKS, 1.5, 0
};

int main(int argc, char **argv)
{
    bench_result r;

    bench_init(argc, argv);
    r = bench_run(&spawn_join);
    bench_vs_trio("spawn_join", "spawn_join_ns", r);
    r = bench_run(&move_on_after);
    bench_vs_trio("move_on_after", "move_on_after_ns", r);
    r = bench_run(&scope_enter_exit);
    bench_vs_trio("scope_enter_exit", "cancel_scope_ns", r);
    bench_run(&fanout);
    return bench_done();
}
