/* bench/bench_ptrio.h: what the ptrio side of the benchmarks shares. */
#ifndef PTRIO_BENCH_PTRIO_H
#define PTRIO_BENCH_PTRIO_H

#include <ptrio.h>

#include "bench.h"

/* Static: a loop is large (its fd registry), and every run reuses it. */
static ptrio_loop bench_loop;

/* Runs `fn` over `frame` as the main task of a fresh default loop; a run
 * that fails fails the benchmark. */
static void run_main(ptrio_fn fn, void *frame, const char *what)
{
    int rc;

    ptrio_loop_init(&bench_loop);
    rc = ptrio_loop_run_named(&bench_loop, fn, frame, what);
    if (rc < 0)
        bench_fail(what, ptrio_errname(rc));
}

#endif /* PTRIO_BENCH_PTRIO_H */
