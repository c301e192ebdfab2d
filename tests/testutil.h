/* tests/testutil.h: what every suite shares. Portable: no POSIX calls, so
 * the portable suites can run under a small Check-compatible runner on a
 * microcontroller. Only Check's registration and assertion macros. */
#ifndef PTRIO_TESTUTIL_H
#define PTRIO_TESTUTIL_H

#include <check.h>
#include <string.h>

#include <ptrio.h>

/* An event log: tests append short strings and compare the whole. */
#define TLOG_MAX 4096
typedef struct tlog {
    char buf[TLOG_MAX];
    size_t len;
} tlog;

static inline void tlog_clear(tlog *l)
{
    l->len = 0;
    l->buf[0] = '\0';
}

/* Appends `s`, separated from the previous entry by a space. */
static inline void tlog_add(tlog *l, const char *s)
{
    size_t n = strlen(s);
    if (l->len && l->len + 1 < TLOG_MAX)
        l->buf[l->len++] = ' ';
    if (l->len + n >= TLOG_MAX)
        n = TLOG_MAX - 1 - l->len;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
    l->buf[l->len] = '\0';
}

/* Appends "s@<ms>" with the virtual time in whole milliseconds. */
static inline void tlog_at(tlog *l, const char *s)
{
    char tmp[64];
    long long ms = (long long)(ptrio_now() / 1000000);
    size_t i = 0, n = strlen(s);
    char digits[24];
    int d = 0;
    if (n > 40)
        n = 40;
    memcpy(tmp, s, n);
    i = n;
    tmp[i++] = '@';
    if (ms < 0) {
        tmp[i++] = '-';
        ms = -ms;
    }
    do {
        digits[d++] = (char)('0' + ms % 10);
        ms /= 10;
    } while (ms);
    while (d)
        tmp[i++] = digits[--d];
    tmp[i] = '\0';
    tlog_add(l, tmp);
}

/* Collects report lines, to assert on what ptrio_run reports. */
typedef struct treport {
    tlog lines;
    int count;
} treport;

static inline void treport_sink(void *ctx, const char *line)
{
    treport *r = ctx;
    r->count++;
    tlog_add(&r->lines, line);
    tlog_add(&r->lines, "|");
}

/* Runs `fn` over `frame` on a fresh loop with the virtual clock; reports
 * go to `rep` (may be NULL: discarded). Returns ptrio_loop_run's status. */
static inline int run_virtual_named(ptrio_fn fn, void *frame, const char *name,
                                    treport *rep)
{
    ptrio_loop loop;
    ptrio_loop_init(&loop);
    ck_assert_int_eq(ptrio_loop_use_backend(&loop, &ptrio_backend_virtual), 0);
    if (rep) {
        memset(rep, 0, sizeof *rep);
        ptrio_loop_set_report(&loop, treport_sink, rep);
    } else {
        ptrio_loop_set_report(&loop, NULL, NULL);
    }
    return ptrio_loop_run_named(&loop, fn, frame, name);
}
#define run_virtual(fn, frame, rep) run_virtual_named((fn), (frame), #fn, (rep))

#endif /* PTRIO_TESTUTIL_H */
