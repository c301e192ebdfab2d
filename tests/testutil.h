/* tests/testutil.h: what every suite shares. Portable: no POSIX calls, so
 * the portable suites can run under a small Check-compatible runner on a
 * microcontroller. Only Check's registration and assertion macros.
 *
 * A suite that defines TESTUTIL_EVENTS before including this header also
 * gets the "<who><what>@<ms>" event helpers (ev, ev_err) and the small
 * coroutines that log through them (sleeper, marker, canceller). */
#ifndef PTRIO_TESTUTIL_H
#define PTRIO_TESTUTIL_H

#include <check.h>
#include <string.h>

#include <ptrio.h>

/* A test that passes bad input on purpose. A debug build (PTRIO_DEBUG)
 * turns misuse into a trap at its first instance, so there the test checks
 * that the trap fires (SIGILL: __builtin_trap); elsewhere it checks the
 * error codes. */
#ifdef PTRIO_DEBUG
#include <signal.h>
#define tcase_add_misuse_test(tc, fn) tcase_add_test_raise_signal(tc, fn, SIGILL)
#else
#define tcase_add_misuse_test(tc, fn) tcase_add_test(tc, fn)
#endif

/* An event log: tests append short strings and compare the whole. */
#ifndef TEST_CONF_TLOG_MAX
#define TEST_CONF_TLOG_MAX 4096   /* small targets: -DTEST_CONF_TLOG_MAX=n */
#endif
#define TLOG_MAX TEST_CONF_TLOG_MAX

/* Whether a deadlock report lists the task tree (configure
 * --disable-deadlock-dump leaves it out: only the headline is reported). */
#ifndef PTRIO_CONF_DEADLOCK_DUMP
#define PTRIO_CONF_DEADLOCK_DUMP 1
#endif
/* Whether codes have descriptions (configure --disable-error-text: only
 * their names; reports then print no "(timed out)"). */
#ifndef PTRIO_CONF_ERROR_TEXT
#define PTRIO_CONF_ERROR_TEXT 1
#endif
#define DEADLOCK_HEADLINE_ONLY                                              \
    "ptrio: deadlock: every task waits, and nothing can wake one; every "  \
    "task is cancelled (built without the task tree: ptrio_dump shows it)"
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

/* The suite's event log. */
static tlog L;

/* Writes "<s><v>" into b (at most 40 characters of s); returns the end. */
static inline char *fmt(char *b, const char *s, long v)
{
    char d[24];
    size_t n = strlen(s);
    unsigned long u;
    int k = 0;

    if (n > 40)
        n = 40;
    memcpy(b, s, n);
    b += n;
    if (v < 0) {
        *b++ = '-';
        u = 0UL - (unsigned long)v;
    } else {
        u = (unsigned long)v;
    }
    do {
        d[k++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    while (k)
        *b++ = d[--k];
    *b = '\0';
    return b;
}

/* Appends "<s><v>" to `l`. */
static inline void logn(tlog *l, const char *s, long v)
{
    char b[64];
    fmt(b, s, v);
    tlog_add(l, b);
}

/* Same, with the virtual time: "<s><v>@<ms>". */
static inline void logn_at(tlog *l, const char *s, long v)
{
    char b[64];
    fmt(b, s, v);
    tlog_at(l, b);
}

/* Occurrences of `needle` in `hay`. */
static inline int count_of(const char *hay, const char *needle)
{
    int k = 0;
    size_t n = strlen(needle);
    while ((hay = strstr(hay, needle))) {
        k++;
        hay += n;
    }
    return k;
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

/* Initialises `loop` on `backend`; reports go to `rep` (may be NULL:
 * discarded). */
static inline void loop_setup(ptrio_loop *loop, const ptrio_backend *backend,
                              treport *rep)
{
    ptrio_loop_init(loop);
    ck_assert_int_eq(ptrio_loop_use_backend(loop, backend), 0);
    if (rep) {
        memset(rep, 0, sizeof *rep);
        ptrio_loop_set_report(loop, treport_sink, rep);
    } else {
        ptrio_loop_set_report(loop, NULL, NULL);
    }
}

/* Runs `fn` over `frame` on a fresh loop with the virtual clock; reports
 * go to `rep` (may be NULL: discarded). Returns ptrio_loop_run's status. */
static inline int run_virtual_named(ptrio_fn fn, void *frame, const char *name,
                                    treport *rep)
{
    ptrio_loop loop;
    loop_setup(&loop, &ptrio_backend_virtual, rep);
    return ptrio_loop_run_named(&loop, fn, frame, name);
}
#define run_virtual(fn, frame, rep) run_virtual_named((fn), (frame), #fn, (rep))

/* Runs `fn` as task `name` on a virtual-clock loop with `hooks` (context
 * `ctx`) set; reports are discarded. */
static inline int run_hooked(ptrio_fn fn, void *frame, const char *name,
                             const ptrio_hooks *hooks, void *ctx)
{
    static ptrio_loop loop;
    loop_setup(&loop, &ptrio_backend_virtual, NULL);
    ptrio_loop_set_hooks(&loop, hooks, ctx);
    return ptrio_loop_run_named(&loop, fn, frame, name);
}

#ifdef TESTUTIL_EVENTS

/* Logs "<who><what>@<ms>". */
static inline void ev(const char *who, const char *what)
{
    char buf[64];
    size_t n = 0;
    const char *p;
    for (p = who; p && *p && n < 30; p++)
        buf[n++] = *p;
    for (p = what; p && *p && n < 62; p++)
        buf[n++] = *p;
    buf[n] = '\0';
    tlog_at(&L, buf);
}

/* Logs "<who>!<ERRNAME>@<ms>", or "<who>-ok@<ms>" for 0. */
static inline void ev_err(const char *who, int code)
{
    char buf[32];
    const char *name = ptrio_errname(code);
    size_t n = 1;
    if (code == 0) {
        ev(who, "-ok");
        return;
    }
    buf[0] = '!';
    while (*name && n < sizeof buf - 1)
        buf[n++] = *name++;
    buf[n] = '\0';
    ev(who, buf);
}

/* Logs "<name>+" when it starts, sleeps `d` (PTRIO_TIME_INF: forever),
 * logs "<name>" when it wakes, "<name>!<ERR>" if it ends by an error. */
struct sleeper {
    ptrio_frame fr;
    const char *name;
    ptrio_time d;
};

static inline int sleeper(ptrio_frame *fr)
{
    struct sleeper *f = PTRIO_SELF(fr, struct sleeper);
    PTRIO_BEGIN(f);
    ev(f->name, "+");
    PTRIO_AWAIT(f, ptrio_sleep(f, f->d));
    ev(f->name, "");
    PTRIO_FINALLY(f);
    if (PTRIO_FINALLY_ERROR(f))
        ev_err(f->name, PTRIO_FINALLY_ERROR(f));
    PTRIO_END(f);
}

/* Logs its name and returns at once (no checkpoint). */
struct marker {
    ptrio_frame fr;
    const char *name;
};

static inline int marker(ptrio_frame *fr)
{
    struct marker *f = PTRIO_SELF(fr, struct marker);
    PTRIO_BEGIN(f);
    ev(f->name, "");
    PTRIO_END(f);
}

/* Sleeps `d`, logs "<name>", then cancels `target`. */
struct canceller {
    ptrio_frame fr;
    const char *name;
    ptrio_time d;
    ptrio_scope *target;
};

static inline int canceller(ptrio_frame *fr)
{
    struct canceller *f = PTRIO_SELF(fr, struct canceller);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_sleep(f, f->d));
    ev(f->name, "");
    ptrio_cancel(f->target);
    PTRIO_END(f);
}

#endif /* TESTUTIL_EVENTS */

#endif /* PTRIO_TESTUTIL_H */
