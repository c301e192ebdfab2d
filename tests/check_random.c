/* tests/check_random.c: thousands of random structured-concurrency
 * programs (tests/randprog.c), each run on ptrio and on a reference model
 * of current Trio, and compared: every spawned task exits once, no nursery
 * ends with a live child, every FINALLY runs once, sleeps and deadlines
 * fire exactly on time, and every race-free program logs exactly what the
 * model predicts, task by task, and returns the failure it predicts, with
 * its record.
 *
 * PTRIO_RANDOM_SEED=<n> also runs the programs from seed n
 * (PTRIO_RANDOM_COUNT of them, default 1) and prints every failing one in
 * full. Without the suite:
 *
 *   check_random --print SEED          the program, readable
 *   check_random --check SEED [COUNT]  run, print verdicts and results
 *   check_random --min SEED [COUNT]    the failing ones, minimized
 *   check_random --min-python SEED     the minimized one's Trio twin
 *   check_random --python SEED [COUNT] the Trio twin (differential check)
 *   check_random --results SEED COUNT  model and ptrio results, for diffing
 *
 * Portable: C99, Check and stdio; passes with CK_FORK=no. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include "randprog.h"

#define SCHEDULES 6     /* model runs that decide a program is race-free */
#define KINDS 24
#define SHOW 6          /* failing programs printed in full per test */

static void out_stdout(void *ctx, const char *s)
{
    (void)ctx;
    fputs(s, stdout);
}

typedef struct tally {
    int total, failed, racy, deadlock, limit, shown;
    int nk;
    char kind[KINDS][64];
    int count[KINDS];
    uint32_t seed[KINDS][6];
} tally;

static rp_prog P;

static void show_failure(const rp_verdict *v, int full)
{
    printf("\nFAIL seed %u: %s: %s\n", (unsigned)P.seed, v->kind, v->why);
    if (!full)
        return;
    rp_print(&P, out_stdout, NULL);
    printf(" model (Trio's semantics)%s:\n", v->racy ? ", racy" : "");
    rp_print_result(&P, rp_last_model(), out_stdout, NULL);
    printf(" ptrio:\n");
    rp_print_result(&P, rp_last_ptrio(), out_stdout, NULL);
    printf(" replay: PTRIO_RANDOM_SEED=%u tests/check_random\n",
           (unsigned)P.seed);
}

static void note(tally *t, const rp_verdict *v, int verbose)
{
    int k;
    for (k = 0; k < t->nk; k++)
        if (!strcmp(t->kind[k], v->kind))
            break;
    if (k == t->nk && t->nk < KINDS) {
        snprintf(t->kind[t->nk], sizeof t->kind[0], "%s", v->kind);
        t->count[t->nk++] = 0;
    }
    if (k < KINDS) {
        if (t->count[k] < 6)
            t->seed[k][t->count[k]] = P.seed;
        /* The first program of each class in full. */
        if (verbose || (t->count[k] == 0 && t->shown < SHOW)) {
            show_failure(v, 1);
            t->shown++;
        }
        t->count[k]++;
    }
}

static void run_range(uint32_t from, uint32_t count, tally *t, int verbose)
{
    uint32_t s;
    rp_verdict v;
    for (s = from; s < from + count; s++) {
        rp_generate_seed(&P, s);
        t->total++;
        if (!rp_check(&P, SCHEDULES, &v)) {
            t->failed++;
            note(t, &v, verbose);
        }
        t->racy += v.racy;
        t->deadlock += v.deadlock;
        t->limit += !strcmp(v.kind, "model limit");
    }
}

static void summary(const char *name, const tally *t)
{
    int k, i;
    printf("%s: %d programs, %d racy (invariants only), %d deadlocked, "
           "%d over the model's limits, %d failed\n",
           name, t->total, t->racy, t->deadlock, t->limit, t->failed);
    for (k = 0; k < t->nk; k++) {
        printf("  %4d  %-28s seeds", t->count[k], t->kind[k]);
        for (i = 0; i < t->count[k] && i < 6; i++)
            printf(" %u", (unsigned)t->seed[k][i]);
        printf("\n");
    }
    fflush(stdout);
}

static void run_test(const char *name, uint32_t from, uint32_t count)
{
    static tally t;
    memset(&t, 0, sizeof t);
    run_range(from, count, &t, 0);
    summary(name, &t);
    ck_assert_msg(t.failed == 0, "%s: %d of %d random programs failed "
                  "(first: seed %u, %s); see the log above", name, t.failed,
                  t.total, t.nk ? (unsigned)t.seed[0][0] : 0u,
                  t.nk ? t.kind[0] : "");
}

/* A fixed set of seeds: the same 7500 programs on every run and machine. */
START_TEST(random_programs_a)
{
    run_test("seeds 1-2500", 1, 2500);
}
END_TEST

START_TEST(random_programs_b)
{
    run_test("seeds 2501-5000", 2501, 2500);
}
END_TEST

START_TEST(random_programs_c)
{
    run_test("seeds 5001-7500", 5001, 2500);
}
END_TEST

/* PTRIO_RANDOM_SEED: more programs, or a failing one replayed. */
START_TEST(random_programs_env)
{
    const char *s = getenv("PTRIO_RANDOM_SEED");
    const char *c = getenv("PTRIO_RANDOM_COUNT");
    static tally t;
    uint32_t seed, count;
    if (!s || !*s)
        return;
    seed = (uint32_t)strtoul(s, NULL, 0);
    count = c && *c ? (uint32_t)strtoul(c, NULL, 0) : 1;
    memset(&t, 0, sizeof t);
    run_range(seed, count, &t, 1);
    summary("PTRIO_RANDOM_SEED", &t);
    ck_assert_msg(t.failed == 0, "%d of %d programs from seed %u failed",
                  t.failed, t.total, (unsigned)seed);
}
END_TEST

static Suite *random_suite(void)
{
    Suite *s = suite_create("random");
    TCase *tc = tcase_create("programs");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, random_programs_a);
    tcase_add_test(tc, random_programs_b);
    tcase_add_test(tc, random_programs_c);
    tcase_add_test(tc, random_programs_env);
    suite_add_tcase(s, tc);
    return s;
}

/* ---- the command line (replay, the Trio twin) --------------------------- */

static int cli(int argc, char **argv)
{
    const char *cmd = argv[1];
    uint32_t seed = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 0) : 1;
    uint32_t count = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 0) : 1;
    uint32_t s;
    rp_verdict v;
    int bad = 0;

    if (!strcmp(cmd, "--print")) {
        rp_generate_seed(&P, seed);
        rp_print(&P, out_stdout, NULL);
        return 0;
    }
    if (!strcmp(cmd, "--min") || !strcmp(cmd, "--min-python")) {
        int py = !strcmp(cmd, "--min-python");
        if (py)
            rp_emit_python_prelude(out_stdout, NULL);
        for (s = seed; s < seed + count; s++) {
            rp_generate_seed(&P, s);
            if (rp_check(&P, SCHEDULES, &v))
                continue;
            rp_minimize(&P, &v);
            rp_check(&P, SCHEDULES, &v);
            if (!py) {
                show_failure(&v, 1);
                continue;
            }
            rp_emit_python(&P, out_stdout, NULL);
            printf("logs, out = prog_%u()\n", (unsigned)s);
            printf("for k in sorted(logs): print('  task f%%d: %%s' %% "
                   "(k, ' '.join(logs[k])))\n");
            printf("print('  outcome', out)\n");
        }
        return 0;
    }
    if (!strcmp(cmd, "--schedules")) {
        rp_generate_seed(&P, seed);
        printf("seed %u: %d of %u schedules disagree with the first\n",
               (unsigned)seed, rp_count_outcomes(&P, (int)count) - 1,
               (unsigned)count);
        return 0;
    }
    if (!strcmp(cmd, "--python")) {
        rp_emit_python_prelude(out_stdout, NULL);
        for (s = seed; s < seed + count; s++) {
            rp_generate_seed(&P, s);
            rp_emit_python(&P, out_stdout, NULL);
        }
        return 0;
    }
    if (!strcmp(cmd, "--check") || !strcmp(cmd, "--results")) {
        int results = !strcmp(cmd, "--results");
        for (s = seed; s < seed + count; s++) {
            rp_generate_seed(&P, s);
            rp_check(&P, SCHEDULES, &v);
            if (results) {
                printf("seed %u racy %d deadlock %d ok %d\n", (unsigned)s,
                       v.racy, v.deadlock, v.ok);
                printf(" model\n");
                rp_print_result(&P, rp_last_model(), out_stdout, NULL);
                printf(" ptrio\n");
                rp_print_result(&P, rp_last_ptrio(), out_stdout, NULL);
            } else if (!v.ok) {
                show_failure(&v, 1);
            } else {
                printf("ok seed %u%s%s\n", (unsigned)s,
                       v.racy ? " (racy: invariants only)" : "",
                       v.deadlock ? " (deadlock)" : "");
                if (count == 1) {
                    rp_print(&P, out_stdout, NULL);
                    rp_print_result(&P, rp_last_ptrio(), out_stdout, NULL);
                }
            }
            bad += !v.ok;
        }
        return bad != 0;
    }
    fprintf(stderr, "usage: %s [--print|--check|--python|--results] SEED "
                    "[COUNT]\n", argv[0]);
    return 2;
}

int main(int argc, char **argv)
{
    SRunner *sr;
    int failed;

    if (argc > 1)
        return cli(argc, argv);
    sr = srunner_create(random_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
