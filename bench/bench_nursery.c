/* bench/bench_nursery: the cost of nurseries, cancel scopes and
 * cancellation.
 *
 * Every figure is one line:
 *
 *   BENCH name=<id> value=<number> unit=<unit> [baseline=<number> ratio=<r>]
 *
 * spawn_join          100,000 trivial tasks started into one nursery and
 *                     joined: ns per task, from the first start_soon until
 *                     the block's end returns.
 * scope_enter_exit    1M PTRIO_MOVE_ON_AFTER(5 s) blocks whose body does not
 *                     block: ns per block.
 * cancel_fanout_1k    a nursery of 1,000 tasks parked in
 * cancel_fanout_100k  ptrio_sleep_forever, cancelled with
 *                     ptrio_nursery_cancel: ns per task from the cancel
 *                     call until the block's end returns. The 100k figure
 *                     has the 1k figure as baseline: cancellation should
 *                     cost the same per task at any size. Target: ratio
 *                     <= 1.5.
 * sizeof_nursery, sizeof_scope   in bytes.
 *
 * With a file argument (written by bench/trio_baseline.py) holding lines
 * "TRIO spawn_join_ns=<n>" and "TRIO scope_enter_exit_ns=<n>", spawn_join
 * and scope_enter_exit get Python Trio's figure, measured on this machine
 * just before, as baseline (ratio = ptrio / Trio).
 *
 * The 1k and 100k fan-out rounds alternate in this process; each figure
 * is the fastest of its rounds (the least disturbed by the rest of the
 * machine). A missed target prints a "# target ... missed" line; the exit
 * status is 0 whatever the figures.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <ptrio.h>

#include "bench.h"

#define ROUNDS 7
#define NTASKS 100000L           /* spawn_join, cancel_fanout_100k */
#define NSMALL 1000L             /* cancel_fanout_1k */
#define SMALL_REPEAT 10          /* 1k rounds per 100k round */
#define NSCOPES 1000000L

static void bench_line(const char *name, double value, const char *unit,
                       double baseline)
{
    if (baseline > 0)
        printf("BENCH name=%s value=%.2f unit=%s baseline=%.2f ratio=%.4g\n",
               name, value, unit, baseline, value / baseline);
    else
        printf("BENCH name=%s value=%.2f unit=%s\n", name, value, unit);
    fflush(stdout);
}

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
 * of them has parked (batches run in FIFO order): it starts the clock and
 * cancels the nursery. */
struct canceller {
    ptrio_frame fr;
    ptrio_nursery *n;
    double t0;
};

static int canceller(ptrio_frame *fr)
{
    struct canceller *c = PTRIO_SELF(fr, struct canceller);
    PTRIO_BEGIN(c);
    c->t0 = now_ns();
    ptrio_nursery_cancel(c->n);
    PTRIO_END(c);
}

/* ---- the parents -------------------------------------------------------- */

enum { SPAWN_JOIN, FANOUT, SCOPES };

struct parent {
    ptrio_frame fr;
    int what;
    long count, i, sum;
    ptrio_nursery n;
    ptrio_scope sc;
    struct canceller canceller;
    double t0, ns;
};

static int parent(ptrio_frame *fr)
{
    struct parent *p = PTRIO_SELF(fr, struct parent);
    PTRIO_BEGIN(p);
    if (p->what == SPAWN_JOIN) {
        p->t0 = now_ns();
        PTRIO_NURSERY(p, &p->n) {
            for (p->i = 0; p->i < p->count; p->i++)
                PTRIO_CHECK(p, ptrio_start_soon(&p->n, &tasks[p->i], trivial,
                                                &kids[p->i]));
        }
        p->ns = (now_ns() - p->t0) / (double)p->count;
    } else if (p->what == FANOUT) {
        PTRIO_NURSERY(p, &p->n) {
            for (p->i = 0; p->i < p->count; p->i++)
                PTRIO_CHECK(p, ptrio_start_soon(&p->n, &tasks[p->i], sleeper,
                                                &kids[p->i]));
            p->canceller.n = &p->n;
            PTRIO_CHECK(p, ptrio_start_soon(&p->n, &tasks[p->count],
                                            canceller, &p->canceller));
        }
        p->ns = (now_ns() - p->canceller.t0) / (double)p->count;
    } else {
        p->t0 = now_ns();
        for (p->i = 0; p->i < p->count; p->i++) {
            PTRIO_MOVE_ON_AFTER(p, &p->sc, PTRIO_SEC(5)) {
                p->sum++;
            }
        }
        p->ns = (now_ns() - p->t0) / (double)p->count;
    }
    PTRIO_END(p);
}

static ptrio_loop loop;

static double round_of(int what, long count)
{
    static struct parent p;
    int rc;

    p.what = what;
    p.count = count;
    ptrio_loop_init(&loop);
    rc = ptrio_loop_run(&loop, parent, &p);
    if (rc < 0) {
        fprintf(stderr, "bench_nursery: round %d/%ld failed: %s\n", what,
                count, ptrio_errname(rc));
        return 1e300;
    }
    return p.ns;
}

/* ---- the Trio baseline file ------------------------------------------- */

static void read_trio(const char *path, double *spawn, double *scope)
{
    char line[256];
    FILE *fp = fopen(path, "r");
    double v;

    if (!fp) {
        printf("# cannot read %s: no Trio baseline\n", path);
        return;
    }
    while (fgets(line, sizeof line, fp)) {
        if (sscanf(line, "TRIO spawn_join_ns=%lf", &v) == 1 && v > 0)
            *spawn = v;
        else if (sscanf(line, "TRIO scope_enter_exit_ns=%lf", &v) == 1 &&
                 v > 0)
            *scope = v;
    }
    fclose(fp);
}

int main(int argc, char **argv)
{
    double trio_spawn = 0, trio_scope = 0;
    double spawn = 1e300, scopes = 1e300, small = 1e300, big = 1e300;
    int r, k;

    if (argc > 1)
        read_trio(argv[1], &trio_spawn, &trio_scope);

    for (r = 0; r < ROUNDS; r++)
        spawn = min2(spawn, round_of(SPAWN_JOIN, NTASKS));
    bench_line("spawn_join", spawn, "ns", trio_spawn);

    for (r = 0; r < ROUNDS; r++)
        scopes = min2(scopes, round_of(SCOPES, NSCOPES));
    bench_line("scope_enter_exit", scopes, "ns", trio_scope);

    for (r = 0; r < ROUNDS; r++) {
        for (k = 0; k < SMALL_REPEAT; k++)
            small = min2(small, round_of(FANOUT, NSMALL));
        big = min2(big, round_of(FANOUT, NTASKS));
    }
    bench_line("cancel_fanout_1k", small, "ns", 0);
    bench_line("cancel_fanout_100k", big, "ns", small);
    target_line("cancel_fanout_100k", big / small, 1.5);

    size_line("sizeof_nursery", sizeof(ptrio_nursery));
    size_line("sizeof_scope", sizeof(ptrio_scope));
    return 0;
}
