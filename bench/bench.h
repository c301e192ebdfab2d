/* bench/bench.h: what the benchmarks share: the clock and the lines they
 * print. Include it after defining _POSIX_C_SOURCE (clock_gettime). The
 * "BENCH name=... value=..." line with a baseline is left to each
 * benchmark: they print the ratio in different formats. */
#ifndef PTRIO_BENCH_H
#define PTRIO_BENCH_H

#include <stddef.h>
#include <stdio.h>
#include <time.h>

/* The monotonic clock, in nanoseconds. */
static inline double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static inline double min2(double a, double b) { return a < b ? a : b; }

/* "BENCH name=<name> value=<bytes> unit=bytes". */
static inline void size_line(const char *name, size_t bytes)
{
    printf("BENCH name=%s value=%zu unit=bytes\n", name, bytes);
    fflush(stdout);
}

/* "# target <name> ratio <= <target>: met|missed (<ratio>)". */
static inline void target_line(const char *name, double ratio, double target)
{
    printf("# target %s ratio <= %.1f: %s (%.3f)\n", name, target,
           ratio <= target ? "met" : "missed", ratio);
    fflush(stdout);
}

#endif /* PTRIO_BENCH_H */
