/* bench/bench.h: what the benchmarks share: measuring a figure against
 * its hand-written baseline, in nanoseconds and (under callgrind) in
 * instructions, and the lines they print. Header only; hosted (POSIX).
 *
 * A figure is a pair of functions that each do `n` iterations of the same
 * work: ptrio's code and the hand-written limit, in the same program. The
 * cost of one iteration is (cost(n) - cost(0)) / n, so whatever a run does
 * besides its iterations (loop setup, spawning the main task, teardown) is
 * subtracted the same way on both sides. n = 0 must be valid: the empty
 * run.
 *
 *     #include "bench.h"          (first: it sets _POSIX_C_SOURCE)
 *
 *     static void pingpong_ptrio(long n) { ... n round trips, ptrio ... }
 *     static void pingpong_hand(long n)  { ... the same, by hand ...    }
 *
 *     static const bench_figure pingpong = {
 *         "chan_pingpong", pingpong_ptrio, pingpong_hand,
 *         1000000,        iterations per timed round
 *         1000,           iterations under callgrind (~50x slower)
 *         2.0,            target ratio, printed, never enforced (0: none)
 *         0,              target instructions per iteration (0: none)
 *     };
 *
 *     int main(int argc, char **argv)
 *     {
 *         bench_init(argc, argv);
 *         bench_run(&pingpong);
 *         return bench_done();
 *     }
 *
 * prints, for each figure (the ns value is the fastest of BENCH_ROUNDS
 * rounds, ptrio and baseline alternating):
 *
 *     BENCH name=chan_pingpong value=41.20 unit=ns baseline=20.10 ratio=2.050
 *     # target chan_pingpong ratio <= 2.0: missed (2.050)
 *     BENCH name=chan_pingpong value=212.0 unit=instructions baseline=96.0 ratio=2.208
 *     # target chan_pingpong instructions ratio <= 2.0: missed (2.208)
 *
 * Instruction lines appear when the environment names valgrind
 * (BENCH_VALGRIND=/usr/bin/valgrind, which `make bench` sets when configure
 * found it) and the program was built with <valgrind/callgrind.h>: the
 * program then runs itself once under `valgrind --tool=callgrind`, where
 * each figure counts the instructions of run(0) and run(n_instr) (client
 * requests toggle collection around each call and dump the count), and
 * prints those lines next to its timings. Instruction counts do not depend
 * on the load of the machine; timings do.
 *
 * Arguments: names (substrings) select figures; --ns skips the
 * instruction counts; --instructions prints only them (valgrind from
 * BENCH_VALGRIND, else "valgrind" on PATH). With BENCH_CALLGRIND_KEEP=<dir>
 * the callgrind pass keeps its dumps there, <figure>.<ptrio|base>.<n>.cg,
 * for `callgrind_annotate`. The exit status is 0 whatever the figures; 1
 * when a run or the callgrind pass failed.
 *
 * A run may exclude part of its work (e.g. spawning before the measured
 * part) with bench_pause() ... bench_resume(); the parts add up. Put
 * bench_opaque() where the hand-written code would otherwise be folded
 * away by the compiler (ptrio's side calls into the library there).
 * bench/hand.h has a hand-written scheduler to build baselines on.
 *
 * In Makefile.am, a program joins `make bench` and `make
 * bench-instructions` with:
 *
 *     BENCHMARKS += bench/bench_x
 *     bench_bench_x_SOURCES = bench/bench_x.c
 *     bench_bench_x_LDFLAGS = $(BENCH_LINK_FLAGS)
 */
#ifndef PTRIO_BENCH_H
#define PTRIO_BENCH_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#elif _POSIX_C_SOURCE < 200809L
#error "bench.h needs _POSIX_C_SOURCE 200809L (mkdtemp): include it first"
#endif

#include <dirent.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_VALGRIND_CALLGRIND_H
#include <valgrind/callgrind.h>
#define BENCH__CALLGRIND 1
#else
#define BENCH__CALLGRIND 0
#endif

#ifndef BENCH_ROUNDS
#define BENCH_ROUNDS 7
#endif

typedef struct bench_figure {
    const char *name;
    void (*run)(long n);        /* ptrio: n iterations */
    void (*base)(long n);       /* the baseline: n iterations, or NULL */
    long n;                     /* iterations per timed round */
    long n_instr;               /* iterations under callgrind */
    double target;              /* ratio target (0: none) */
    double max_instructions;    /* per iteration (0: none) */
} bench_figure;

/* What bench_run measured: per iteration, in bench_unit(). */
typedef struct bench_result {
    double value, baseline;     /* baseline 0: none */
} bench_result;

/* ---- the clock and the lines ---------------------------------------- */

/* The monotonic clock, in nanoseconds. */
static inline double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static inline double min2(double a, double b) { return a < b ? a : b; }

/* An empty asm that may read and write any memory: the hand-written
 * baselines put it where ptrio's code would call into the library, so that
 * the compiler cannot fold their loops away. */
#define bench_opaque() __asm__ __volatile__("" ::: "memory")

enum { BENCH__TIME, BENCH__COUNT, BENCH__ONLY_COUNTS };

static struct {
    int mode;                   /* BENCH__* */
    int argc;
    char **argv;                /* the figure filters */
    int failed;
    /* measuring */
    int active;                 /* inside a measured part */
    double t0, elapsed;         /* BENCH__TIME */
    const char *prefix;         /* BENCH__COUNT: callgrind's out file */
    int dumps;
    /* the callgrind pass's lines, printed next to the timings */
    char lines[128][256];
    int nlines;
    unsigned char shown[128];
} bench__;

/* Whether this process prints what is not a counted figure (sizes, Trio
 * comparisons): only the timing pass does. */
static inline int bench_timing(void) { return bench__.mode == BENCH__TIME; }

/* "ns" or "instructions": the unit of what bench_run measures here. */
static inline const char *bench_unit(void)
{
    return bench__.mode == BENCH__TIME ? "ns" : "instructions";
}

/* "BENCH name=<name> value=<v> unit=<unit> [baseline=<b> ratio=<r>]". */
static inline void bench_line(const char *name, double value,
                              const char *unit, double baseline)
{
    int counts = !strcmp(unit, "instructions");
    int prec = counts || value >= 100 ? 1 : 2;
    double ratio = baseline > 0 ? value / baseline : 0;

    if (baseline > 0)   /* three digits, also for ptrio against Trio */
        printf("BENCH name=%s value=%.*f unit=%s baseline=%.*f "
               "ratio=%.*f\n", name, prec, value, unit,
               counts || baseline >= 100 ? 1 : 2, baseline,
               ratio >= 0.1 ? 3 : ratio >= 0.001 ? 5 : 7, ratio);
    else
        printf("BENCH name=%s value=%.*f unit=%s\n", name, prec, value,
               unit);
    fflush(stdout);
}

/* "BENCH name=<name> value=<bytes> unit=bytes" (timing pass only). */
static inline void size_line(const char *name, size_t bytes)
{
    if (!bench_timing())
        return;
    printf("BENCH name=%s value=%zu unit=bytes\n", name, bytes);
    fflush(stdout);
}

/* "# target <name> <what> <= <target>: met|missed (<measured>)", or with
 * ">=" when the figure must reach the target (bench_target_min). The
 * measurement has three decimals, or six when three would round a miss
 * onto the target ("missed (1.500)" for 1.5004 against 1.5). */
static inline void bench__target(const char *name, const char *what,
                                 double measured, double target, int min)
{
    int met = min ? measured >= target : measured <= target;
    char three[64];
    double shown;
    int digits;

    snprintf(three, sizeof three, "%.3f", measured);
    shown = strtod(three, NULL);
    digits = !met && (min ? shown >= target : shown <= target) ? 6 : 3;
    printf("# target %s %s %s %g: %s (%.*f)\n", name, what,
           min ? ">=" : "<=", target, met ? "met" : "missed", digits,
           measured);
    fflush(stdout);
}

static inline void bench_target(const char *name, const char *what,
                                double measured, double target)
{
    bench__target(name, what, measured, target, 0);
}

static inline void bench_target_min(const char *name, const char *what,
                                    double measured, double target)
{
    bench__target(name, what, measured, target, 1);
}

/* The figure `key` from the Python Trio baseline: a line
 * "TRIO <key>=<value>" in the file named by $BENCH_TRIO (written by
 * bench/trio_baseline.py). 0 when there is none. */
static inline double bench_trio(const char *key)
{
    const char *path = getenv("BENCH_TRIO");
    char line[256];
    size_t k = strlen(key);
    double v = 0;
    FILE *fp;

    if (!path || !*path || !(fp = fopen(path, "r")))
        return 0;
    while (fgets(line, sizeof line, fp))
        if (!strncmp(line, "TRIO ", 5) && !strncmp(line + 5, key, k) &&
            line[5 + k] == '=')
            v = atof(line + 6 + k);
    fclose(fp);
    return v;
}

/* "BENCH name=<name>_vs_trio value=<ptrio ns> unit=ns baseline=<Trio ns>
 * ratio=<r>", from the Trio figure `key` (see bench_trio), in the timing
 * pass, when there is one. */
static inline void bench_vs_trio(const char *name, const char *key,
                                 bench_result r)
{
    char full[128];
    double trio;

    if (!bench_timing() || r.value <= 0 || (trio = bench_trio(key)) <= 0)
        return;
    snprintf(full, sizeof full, "%s_vs_trio", name);
    bench_line(full, r.value, "ns", trio);
}

/* A benchmark run failed: says so on stderr; bench_done returns 1. */
static inline void bench_fail(const char *what, const char *why)
{
    fprintf(stderr, "bench: %s: %s\n", what, why);
    bench__.failed = 1;
}

/* ---- measured parts ------------------------------------------------- */

/* Stops measuring (until bench_resume); no effect when stopped. */
static inline void bench_pause(void)
{
    if (!bench__.active)
        return;
    bench__.active = 0;
#if BENCH__CALLGRIND
    if (bench__.mode == BENCH__COUNT) {
        CALLGRIND_TOGGLE_COLLECT;
        return;
    }
#endif
    bench__.elapsed += now_ns() - bench__.t0;
}

/* Measures again; no effect when measuring. */
static inline void bench_resume(void)
{
    if (bench__.active)
        return;
    bench__.active = 1;
#if BENCH__CALLGRIND
    if (bench__.mode == BENCH__COUNT) {
        CALLGRIND_TOGGLE_COLLECT;
        return;
    }
#endif
    bench__.t0 = now_ns();
}

/* ---- counting instructions (the callgrind pass) ---------------------- */

/* The total of the dump callgrind just wrote: its "totals:" line. -1
 * when it cannot be read. The dump is removed, or kept in
 * $BENCH_CALLGRIND_KEEP as <tag>.cg (for callgrind_annotate). */
static inline double bench__read_dump(const char *tag)
{
    const char *keep = getenv("BENCH_CALLGRIND_KEEP");
    char path[512], kept[512], line[256];
    double total = -1;
    FILE *fp;

    snprintf(path, sizeof path, "%s.%ld.%d", bench__.prefix,
             (long)getpid(), bench__.dumps);
    if (!(fp = fopen(path, "r")))
        return -1;
    while (fgets(line, sizeof line, fp))
        if (!strncmp(line, "totals:", 7) || !strncmp(line, "summary:", 8))
            total = atof(strchr(line, ':') + 1);
    fclose(fp);
    snprintf(kept, sizeof kept, "%s/%s.cg", keep ? keep : "", tag);
    if (!keep || !*keep || rename(path, kept) != 0)
        remove(path);
    return total;
}

/* One measured call of fn(n): ns (timing pass) or instructions. `side`
 * names it in the dump: "<figure>.<side>.<n>". */
static inline double bench__once(const char *name, const char *side,
                                 void (*fn)(long), long n)
{
    bench__.elapsed = 0;
#if BENCH__CALLGRIND
    if (bench__.mode == BENCH__COUNT)
        CALLGRIND_ZERO_STATS;
#endif
    bench_resume();
    fn(n);
    bench_pause();
#if BENCH__CALLGRIND
    if (bench__.mode == BENCH__COUNT) {
        char tag[160];
        double c;

        snprintf(tag, sizeof tag, "%s.%s.%ld", name, side, n);
        CALLGRIND_DUMP_STATS_AT(tag);
        bench__.dumps++;
        if ((c = bench__read_dump(tag)) < 0) {
            fprintf(stderr, "bench: cannot read callgrind's dump %d under "
                    "%s\n", bench__.dumps, bench__.prefix);
            bench__.failed = 1;
            return 0;
        }
        return c;
    }
#else
    (void)name;
    (void)side;
#endif
    return bench__.elapsed;
}

/* Cost per iteration of fn: (cost(n) - cost(0)) / n; timings are the
 * fastest of `rounds`. */
typedef struct bench__side {
    double zero, full;
} bench__side;

static inline double bench__per(const bench__side *s, long n)
{
    return n > 0 ? (s->full - s->zero) / (double)n : s->full;
}

/* ---- the figure ------------------------------------------------------ */

static inline int bench__selected(const char *name)
{
    int i, any = 0;

    for (i = 0; i < bench__.argc; i++) {
        if (bench__.argv[i][0] == '-')
            continue;
        any = 1;
        if (strstr(name, bench__.argv[i]))
            return 1;
    }
    return !any;
}

/* The name a line of the callgrind pass belongs to: "BENCH name=<x> " or
 * "# target <x> ". */
static inline int bench__line_is(const char *line, const char *name)
{
    size_t k = strlen(name);
    const char *p = NULL;

    if (!strncmp(line, "BENCH name=", 11))
        p = line + 11;
    else if (!strncmp(line, "# target ", 9))
        p = line + 9;
    return p && !strncmp(p, name, k) && (p[k] == ' ' || p[k] == '\n');
}

/* Prints the callgrind pass's lines about `name` (NULL: all not shown). */
static inline void bench__show(const char *name)
{
    int i;

    for (i = 0; i < bench__.nlines; i++)
        if (!bench__.shown[i] &&
            (!name || bench__line_is(bench__.lines[i], name))) {
            fputs(bench__.lines[i], stdout);
            bench__.shown[i] = 1;
        }
    fflush(stdout);
}

/* Measures one figure and prints its line (and target lines); in the
 * timing pass, also the callgrind pass's lines for it. Skipped (result 0)
 * when the arguments do not select it. */
static inline bench_result bench_run(const bench_figure *f)
{
    bench_result res = {0, 0};
    bench__side run = {1e300, 1e300}, base = {1e300, 1e300};
    int counting = bench__.mode == BENCH__COUNT;
    int r, rounds = counting ? 1 : BENCH_ROUNDS;
    long n = counting ? f->n_instr : f->n;

    if (bench__.mode == BENCH__ONLY_COUNTS || !bench__selected(f->name))
        return res;
    /* A first call outside the measure: lazy first-time work (libc,
     * page faults of static arrays) is nobody's cost. */
    f->run(n < 1 ? n : 1);
    if (f->base)
        f->base(n < 1 ? n : 1);
    for (r = 0; r < rounds; r++) {
        run.zero = min2(run.zero, bench__once(f->name, "ptrio", f->run, 0));
        run.full = min2(run.full, bench__once(f->name, "ptrio", f->run, n));
        if (!f->base)
            continue;
        base.zero = min2(base.zero, bench__once(f->name, "base", f->base, 0));
        base.full = min2(base.full, bench__once(f->name, "base", f->base, n));
    }
    res.value = bench__per(&run, n);
    res.baseline = f->base ? bench__per(&base, n) : 0;
    bench_line(f->name, res.value, bench_unit(), res.baseline);
    if (f->target > 0 && res.baseline > 0)
        bench_target(f->name, counting ? "instructions ratio" : "ratio",
                     res.value / res.baseline, f->target);
    if (counting && f->max_instructions > 0)
        bench_target(f->name, "instructions", res.value,
                     f->max_instructions);
    if (!counting)
        bench__show(f->name);
    return res;
}

/* ---- the passes ------------------------------------------------------- */

/* Runs this program again under callgrind, its output in `dir`; keeps the
 * lines it printed. Returns its exit status (-1: did not run). */
static inline int bench__callgrind_pass(const char *valgrind, char *self,
                                        const char *dir)
{
    char prefix[300], outfile[340], out[300], line[256];
    char *args[64];
    int a = 0, i, status;
    pid_t pid;
    FILE *fp;

    snprintf(prefix, sizeof prefix, "%s/cg", dir);
    snprintf(outfile, sizeof outfile, "--callgrind-out-file=%s.%%p", prefix);
    snprintf(out, sizeof out, "%s/lines", dir);
    args[a++] = (char *)valgrind;
    args[a++] = (char *)"--tool=callgrind";
    args[a++] = (char *)"-q";
    args[a++] = (char *)"--collect-atstart=no";
    args[a++] = outfile;
    args[a++] = self;
    for (i = 0; i < bench__.argc && a < 62; i++)
        if (bench__.argv[i][0] != '-')
            args[a++] = bench__.argv[i];
    args[a] = NULL;

    fflush(stdout);
    if ((pid = fork()) < 0)
        return -1;
    if (pid == 0) {
        if (!freopen(out, "w", stdout))
            _exit(126);
        setenv("BENCH_CALLGRIND", prefix, 1);
        execvp(valgrind, args);
        fprintf(stderr, "bench: cannot run %s\n", valgrind);
        _exit(127);
    }
    if (waitpid(pid, &status, 0) < 0)
        return -1;
    if ((fp = fopen(out, "r"))) {
        while (bench__.nlines < 128 && fgets(line, sizeof line, fp))
            strcpy(bench__.lines[bench__.nlines++], line);
        fclose(fp);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static inline void bench__rmdir(const char *dir)
{
    struct dirent *e;
    char path[300 + sizeof e->d_name];
    DIR *d = opendir(dir);

    if (d) {
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
                remove(path);
            }
        closedir(d);
    }
    rmdir(dir);
}

/* The instruction counts: the callgrind pass, when valgrind is named and
 * the program can talk to it. */
static inline void bench__count(char *self, int asked)
{
    const char *vg = getenv("BENCH_VALGRIND");
    const char *tmp = getenv("TMPDIR");
    char dir[256];
    int rc;

    if (!vg || !*vg || !strcmp(vg, ":") || !strcmp(vg, "no")) {
        if (!asked)
            return;
        vg = "valgrind";
    }
    if (!BENCH__CALLGRIND) {
        printf("# no instruction counts: built without "
               "<valgrind/callgrind.h>\n");
        return;
    }
    snprintf(dir, sizeof dir, "%s/ptrio-bench.XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("bench: mkdtemp");
        bench__.failed = 1;
        return;
    }
    rc = bench__callgrind_pass(vg, self, dir);
    bench__rmdir(dir);
    if (rc != 0) {
        printf("# the callgrind pass (%s) failed (status %d): no "
               "instruction counts\n", vg, rc);
        bench__.failed = 1;
    }
}

/* Reads the arguments and, unless --ns, runs the callgrind pass first
 * (see the top of this file). */
static inline void bench_init(int argc, char **argv)
{
    const char *prefix = getenv("BENCH_CALLGRIND");
    int i, only = 0, ns = 0;

    bench__.argc = argc - 1;
    bench__.argv = argv + 1;
    for (i = 1; i < argc; i++) {
        only |= !strcmp(argv[i], "--instructions");
        ns |= !strcmp(argv[i], "--ns");
    }
#if BENCH__CALLGRIND
    if (prefix && *prefix && RUNNING_ON_VALGRIND) {
        bench__.mode = BENCH__COUNT;
        bench__.prefix = prefix;
        return;
    }
#else
    (void)prefix;
#endif
    bench__.mode = only ? BENCH__ONLY_COUNTS : BENCH__TIME;
    if (!ns)
        bench__count(argv[0], only);
    if (only)
        bench__show(NULL);
}

/* Prints what the callgrind pass printed and no figure claimed. Returns
 * the exit status for main. */
static inline int bench_done(void)
{
    if (bench__.mode == BENCH__TIME)
        bench__show(NULL);
    fflush(stdout);
    return bench__.failed;
}

#endif /* PTRIO_BENCH_H */
