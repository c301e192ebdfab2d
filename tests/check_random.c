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
 *   check_random --file PROG.txt       a program in the printed form
 *   check_random --file-python PROG.txt  its Trio twin
 *   check_random --known               the known programs, in full
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

/* A fixed set of seeds: the same 7500 programs on every run and machine,
 * in three tests of THIRD. TEST_CONF_RANDOM_N (programs per test, THIRD)
 * runs the first of each third only: CI's variant port builds, which
 * repeat a build that runs them all, take 250 (the 7500 take 80 s of QEMU
 * on a Cortex-M3). */
#define THIRD 2500u
#ifndef TEST_CONF_RANDOM_N
#define TEST_CONF_RANDOM_N THIRD
#endif

static void run_third(unsigned k)
{
    char name[48];
    uint32_t from = 1u + k * THIRD;
    uint32_t n = TEST_CONF_RANDOM_N < THIRD ? TEST_CONF_RANDOM_N : THIRD;

    snprintf(name, sizeof name, "seeds %u-%u", (unsigned)from,
             (unsigned)(from + n - 1));
    run_test(name, from, n);
}

START_TEST(random_programs_a)
{
    run_third(0);
}
END_TEST

START_TEST(random_programs_b)
{
    run_third(1);
}
END_TEST

START_TEST(random_programs_c)
{
    run_third(2);
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

/* The readable form reads back to the same program. */
typedef struct sbuf {
    char s[16384];
    size_t n;
} sbuf;

static void out_sbuf(void *ctx, const char *s)
{
    sbuf *b = ctx;
    size_t k = strlen(s);
    if (b->n + k >= sizeof b->s)
        k = sizeof b->s - 1 - b->n;
    memcpy(b->s + b->n, s, k);
    b->n += k;
    b->s[b->n] = '\0';
}

START_TEST(random_print_parse)
{
    static sbuf a, b;
    static rp_prog q;
    char err[128];
    uint32_t s;
    for (s = 1; s <= 300; s++) {
        rp_generate_seed(&P, s);
        a.n = b.n = 0;
        rp_print(&P, out_sbuf, &a);
        ck_assert_msg(rp_parse(a.s, &q, err, sizeof err) == 0,
                      "seed %u: %s", (unsigned)s, err);
        q.seed = s;
        rp_print(&q, out_sbuf, &b);
        ck_assert_str_eq(a.s, b.s);
    }
}
END_TEST

/* Programs written (or minimized) by hand: each is a bug the random
 * programs found, or a semantic detail of Trio's they pinned down. */
static const struct known {
    const char *name, *text;
} known[] = {
#include "randprog_known.h"
};

static int check_text(const char *name, const char *text, int verbose)
{
    rp_verdict v;
    char err[128];
    if (rp_parse(text, &P, err, sizeof err) != 0) {
        printf("known program '%s' does not parse: %s\n", name, err);
        return 0;
    }
    rp_check(&P, 24, &v);
    if (!v.ok || verbose) {
        printf("\n%s known program '%s'%s%s%s\n", v.ok ? "ok" : "FAIL", name,
               v.ok ? "" : ": ", v.kind, v.ok ? "" : "");
        if (!v.ok)
            printf("  %s\n", v.why);
        rp_print(&P, out_stdout, NULL);
        printf(" model (Trio's semantics)%s:\n", v.racy ? ", racy" : "");
        rp_print_result(&P, rp_last_model(), out_stdout, NULL);
        printf(" ptrio:\n");
        rp_print_result(&P, rp_last_ptrio(), out_stdout, NULL);
    }
    return v.ok;
}

START_TEST(random_programs_known)
{
    int i, failed = 0;
    for (i = 0; i < (int)(sizeof known / sizeof known[0]); i++)
        failed += !check_text(known[i].name, known[i].text, 0);
    fflush(stdout);
    ck_assert_msg(failed == 0, "%d of %d known programs failed", failed,
                  (int)(sizeof known / sizeof known[0]));
}
END_TEST

static Suite *random_suite(void)
{
    Suite *s = suite_create("random");
    TCase *tc = tcase_create("programs");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, random_print_parse);
    tcase_add_test(tc, random_programs_known);
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

    if (!strcmp(cmd, "--file") || !strcmp(cmd, "--file-python")) {
        static char text[16384];
        FILE *fp = argc > 2 ? fopen(argv[2], "r") : NULL;
        size_t n;
        char err[128];
        if (!fp) {
            fprintf(stderr, "cannot read %s\n", argc > 2 ? argv[2] : "?");
            return 2;
        }
        n = fread(text, 1, sizeof text - 1, fp);
        fclose(fp);
        text[n] = '\0';
        if (!strcmp(cmd, "--file"))
            return !check_text(argv[2], text, 1);
        if (rp_parse(text, &P, err, sizeof err) != 0) {
            fprintf(stderr, "%s: %s\n", argv[2], err);
            return 2;
        }
        rp_emit_python_prelude(out_stdout, NULL);
        rp_emit_python(&P, out_stdout, NULL);
        printf("logs, out = prog_0()\n");
        printf("for k in sorted(logs): print('  task f%%d: %%s' %% "
               "(k, ' '.join(logs[k])))\n");
        printf("print('  outcome', out)\n");
        return 0;
    }
    if (!strcmp(cmd, "--known")) {
        int i;
        for (i = 0; i < (int)(sizeof known / sizeof known[0]); i++)
            bad += !check_text(known[i].name, known[i].text, 1);
        return bad != 0;
    }
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
