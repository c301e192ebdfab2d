/* tests/qemu/check.c: the runner behind tests/qemu/check.h, for the QEMU
 * boards. Output goes to the board's console; no stdio, no allocation.
 *
 * A test runs under setjmp: a failed assertion (ck__fail) and a trap (the
 * board's qemu_trap_hook) longjmp back here. A test that fails inside a
 * running loop leaves that loop behind half-run, as Check's CK_NOFORK mode
 * does on a host; the runner forgets it (the core's current-loop pointer)
 * so that the next test can start a loop of its own.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "../../src/core/internal.h"        /* ptrio__loop */
#include "../../src/port/qemu/board.h"

struct TTestNode {
    const TTest *t;
    int sig, start, end;
};

struct TCase {
    const char *name;
    SFun setup, teardown;           /* checked: around each test */
    SFun usetup, uteardown;         /* unchecked: around the case */
    struct TCase *next;
    unsigned first, n;              /* its tests in the pool */
};

struct Suite {
    const char *name;
    TCase *cases, *last;
    Suite *next;
};

struct SRunner {
    Suite *suites;
    int run, failed, errors;
};

static struct TTestNode tests[CK_MAX_TESTS];
static unsigned ntests;
static TCase tcases[CK_MAX_TCASES];
static unsigned ntcases;
static Suite suites[4];
static unsigned nsuites;
static SRunner runner;

/* The test running now, for failure lines. */
static struct {
    const TCase *tc;
    const TTest *t;
    int iter;
    jmp_buf env;
    int active;
    const char *file;               /* last mark_point */
    int line;
} cur;

/* ---- output ---------------------------------------------------------- */

static char out[CK_OUT_BUF];
static size_t outn;

static void flush(void)
{
    if (outn)
        qemu_console_write(out, outn);
    outn = 0;
}

static void putch(char c)
{
    if (outn == sizeof out)
        flush();
    out[outn++] = c;
}

static void puts_(const char *s)
{
    if (!s)
        s = "(null)";
    while (*s)
        putch(*s++);
}

static void put_u(uintmax_t v, unsigned base, int width)
{
    char d[24];
    int k = 0;

    do {
        d[k++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (width-- > k)
        putch('0');
    while (k)
        putch(d[--k]);
}

static void put_i(intmax_t v)
{
    if (v < 0) {
        putch('-');
        put_u((uintmax_t)0 - (uintmax_t)v, 10, 0);
    } else {
        put_u((uintmax_t)v, 10, 0);
    }
}

/* The conversions the suites' messages use: %d %i %u %x %ld %lu %lx %lld
 * %llu %jd %ju %zu %s %c %p %%, with '#' and a width of zeros. */
static void vformat(const char *fmt, va_list ap)
{
    for (; *fmt; fmt++) {
        int alt = 0, width = 0, len = 0;
        char c;

        if (*fmt != '%') {
            putch(*fmt);
            continue;
        }
        fmt++;
        if (*fmt == '#')
            alt = 1, fmt++;
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        for (;; fmt++) {
            if (*fmt == 'l')
                len++;
            else if (*fmt == 'j')
                len = 3;
            else if (*fmt == 'z')
                len = 4;
            else
                break;
        }
        c = *fmt;
        if (c == 'd' || c == 'i') {
            intmax_t v = len == 3 ? va_arg(ap, intmax_t)
                       : len == 2 ? va_arg(ap, long long)
                       : len == 1 ? va_arg(ap, long)
                       : len == 4 ? (intmax_t)va_arg(ap, size_t)
                       : va_arg(ap, int);
            put_i(v);
        } else if (c == 'u' || c == 'x' || c == 'X') {
            uintmax_t v = len == 3 ? va_arg(ap, uintmax_t)
                        : len == 2 ? va_arg(ap, unsigned long long)
                        : len == 1 ? va_arg(ap, unsigned long)
                        : len == 4 ? va_arg(ap, size_t)
                        : va_arg(ap, unsigned);
            if (alt && c != 'u')
                puts_("0x");
            put_u(v, c == 'u' ? 10 : 16, width);
        } else if (c == 's') {
            puts_(va_arg(ap, const char *));
        } else if (c == 'c') {
            putch((char)va_arg(ap, int));
        } else if (c == 'p') {
            puts_("0x");
            put_u((uintptr_t)va_arg(ap, void *), 16, 0);
        } else if (c == '%') {
            putch('%');
        } else if (!c) {
            break;
        }
    }
}

static void format(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vformat(fmt, ap);
    va_end(ap);
}

/* ---- registration ------------------------------------------------------ */

Suite *suite_create(const char *name)
{
    Suite *s;

    if (nsuites == sizeof suites / sizeof suites[0])
        ck__fail(__FILE__, __LINE__, "too many suites");
    s = &suites[nsuites++];
    s->name = name;
    return s;
}

void suite_add_tcase(Suite *s, TCase *tc)
{
    if (!s || !tc)
        return;
    if (s->last)
        s->last->next = tc;
    else
        s->cases = tc;
    s->last = tc;
}

TCase *tcase_create(const char *name)
{
    TCase *tc;

    if (ntcases == CK_MAX_TCASES)
        ck__fail(__FILE__, __LINE__, "more than CK_MAX_TCASES test cases");
    tc = &tcases[ntcases++];
    tc->name = name;
    tc->first = ntests;
    return tc;
}

void tcase_set_timeout(TCase *tc, double timeout)
{
    (void)tc, (void)timeout;        /* one limit for the whole QEMU run */
}

void tcase_add_checked_fixture(TCase *tc, SFun setup, SFun teardown)
{
    tc->setup = setup;
    tc->teardown = teardown;
}

void tcase_add_unchecked_fixture(TCase *tc, SFun setup, SFun teardown)
{
    tc->usetup = setup;
    tc->uteardown = teardown;
}

/* A case's tests are contiguous in the pool: add to one case at a time. */
void ck__tcase_add(TCase *tc, const TTest *t, int sig, int start, int end)
{
    struct TTestNode *n;

    if (ntests == CK_MAX_TESTS)
        ck__fail(__FILE__, __LINE__, "more than CK_MAX_TESTS tests");
    if (tc->n && tc->first + tc->n != ntests)
        ck__fail(__FILE__, __LINE__, "tests added to two cases in turn");
    if (!tc->n)
        tc->first = ntests;
    n = &tests[ntests++];
    n->t = t;
    n->sig = sig;
    n->start = start;
    n->end = end;
    tc->n++;
}

SRunner *srunner_create(Suite *s)
{
    runner.suites = NULL;
    runner.run = runner.failed = runner.errors = 0;
    srunner_add_suite(&runner, s);
    return &runner;
}

void srunner_add_suite(SRunner *sr, Suite *s)
{
    Suite **p = &sr->suites;

    if (!s)
        return;
    while (*p)
        p = &(*p)->next;
    *p = s;
}

void srunner_set_fork_status(SRunner *sr, enum fork_status fstat)
{
    (void)sr, (void)fstat;          /* always in-process */
}

int srunner_ntests_failed(SRunner *sr) { return sr->failed + sr->errors; }
int srunner_ntests_run(SRunner *sr) { return sr->run; }
void srunner_free(SRunner *sr) { (void)sr; }

/* ---- running ------------------------------------------------------------ */

int ck__strcmp(const char *a, const char *b)
{
    if (!a || !b)
        return a == b ? 0 : a ? 1 : -1;
    return strcmp(a, b);
}

void ck__mark(const char *file, int line)
{
    cur.file = file;
    cur.line = line;
}

/* longjmp codes: 1 failure, 2 + signal: a trap. */
static void failure_line(const char *file, int line, char kind)
{
    format("%s:%d:%c:%s:%s:%d: ", file, line, kind, cur.tc->name,
           cur.t->name, cur.iter);
}

void ck__fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    if (!cur.active) {              /* a registration error */
        format("%s:%d: ", file, line);
        va_start(ap, fmt);
        vformat(fmt, ap);
        va_end(ap);
        putch('\n');
        flush();
        qemu_exit(99);
    }
    failure_line(file, line, 'F');
    va_start(ap, fmt);
    vformat(fmt, ap);
    va_end(ap);
    putch('\n');
    flush();
    longjmp(cur.env, 1);
}

static void trapped(int sig)
{
    longjmp(cur.env, 2 + sig);
}

static const char *signame(int sig)
{
    return sig == SIGILL ? "SIGILL" : sig == SIGSEGV ? "SIGSEGV" : "a signal";
}

/* Runs one iteration; returns 0 (passed), 1 (failed) or 2 (error). */
static int run_one(const TCase *tc, const struct TTestNode *n, int i)
{
    volatile int rc;

    cur.tc = tc;
    cur.t = n->t;
    cur.iter = i;
    cur.file = n->t->file;
    cur.line = n->t->line;
    cur.active = 1;
    qemu_trap_hook = trapped;
    rc = setjmp(cur.env);
    if (rc == 0) {
        if (tc->setup)
            tc->setup();
        n->t->fn(i);
        if (tc->teardown)
            tc->teardown();
    }
    qemu_trap_hook = NULL;
    cur.active = 0;
    if (rc)
        ptrio__loop = NULL;         /* abandoned mid-run: forget it */
    if (rc >= 2) {
        int sig = rc - 2;
        if (sig == n->sig)
            return 0;
        failure_line(cur.file, cur.line, 'E');
        format("(after this point) Received signal %d (%s) at pc %p\n", sig,
               signame(sig), (void *)qemu_trap_pc);
        return 2;
    }
    if (rc == 0 && n->sig) {
        failure_line(n->t->file, n->t->line, 'F');
        format("Test completed but should have failed with signal %d (%s)\n",
               n->sig, signame(n->sig));
        return 1;
    }
    return rc;
}

void srunner_run_all(SRunner *sr, enum print_output mode)
{
    const Suite *s;
    int checks = 0;

    puts_("Running suite(s):");
    for (s = sr->suites; s; s = s->next) {
        putch(' ');
        puts_(s->name);
    }
    format(" (%s)\n", qemu_board_name);
    flush();
    for (s = sr->suites; s; s = s->next) {
        const TCase *tc;
        for (tc = s->cases; tc; tc = tc->next) {
            unsigned k;
            if (tc->usetup)
                tc->usetup();
            for (k = 0; k < tc->n; k++) {
                const struct TTestNode *n = &tests[tc->first + k];
                int i;
                for (i = n->start; i < n->end; i++) {
                    int r = run_one(tc, n, i);
                    checks++;
                    if (r == 1)
                        sr->failed++;
                    else if (r == 2)
                        sr->errors++;
                    if (mode == CK_VERBOSE && r == 0)
                        format("%s:%d:P:%s:%s:%d: Passed\n", n->t->file,
                               n->t->line, tc->name, n->t->name, i);
                    flush();
                }
            }
            if (tc->uteardown)
                tc->uteardown();
        }
    }
    sr->run = checks;
    if (mode != CK_SILENT)
        format("%d%%: Checks: %d, Failures: %d, Errors: %d\n",
               checks ? (checks - sr->failed - sr->errors) * 100 / checks : 0,
               checks, sr->failed, sr->errors);
    flush();
}
