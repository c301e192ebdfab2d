/* tests/check_failure.c: failures in nurseries: a child's failure cancels
 * its siblings and the body, one failure is raised as itself, several as
 * -PTRIO_EGROUP (walked in order, nested as a tree), failure records, and
 * the report of an uncaught failure. Where a test has a twin in Python
 * Trio (trio/_core/_tests/test_run.py) the comment above it names it.
 * Portable: no POSIX calls; all time is on the virtual clock. */
#include <stdlib.h>

#define TESTUTIL_EVENTS
#include "testutil.h"

/* ---- shared helpers ------------------------------------------------ */

/* "file:line" into buf. */
static const char *site(char *buf, size_t cap, const char *file, int line)
{
    char d[16];
    size_t n = 0;
    int k = 0;
    while (*file && n + 1 < cap)
        buf[n++] = *file++;
    if (n + 1 < cap)
        buf[n++] = ':';
    do {
        d[k++] = (char)('0' + line % 10);
        line /= 10;
    } while (line && k < 15);
    while (k && n + 1 < cap)
        buf[n++] = d[--k];
    buf[n] = '\0';
    return buf;
}

/* " at file:line" / " via nursery at file:line" into buf. */
static const char *at_site(char *buf, size_t cap, const char *prefix,
                           const char *file, int line)
{
    size_t n = strlen(prefix);
    if (n >= cap)
        n = cap - 1;
    memcpy(buf, prefix, n);
    buf[n] = '\0';
    site(buf + n, cap - n, file, line);
    return buf;
}

/* Line i (from 0) of a report, or NULL. */
static const char *rline(const treport *r, int i, char *out, size_t cap)
{
    const char *p = r->lines.buf;
    int k = 0;
    for (;;) {
        const char *e = strstr(p, " |");
        size_t n;
        if (!e)
            return NULL;
        if (k == i) {
            n = (size_t)(e - p);
            if (n >= cap)
                n = cap - 1;
            memcpy(out, p, n);
            out[n] = '\0';
            return out;
        }
        p = e + 2;
        if (*p == ' ')
            p++;
        k++;
    }
}

/* Spaces after the "ptrio: " prefix. */
static int indent_of(const char *line)
{
    int k = 0;
    ck_assert_msg(strncmp(line, "ptrio: ", 7) == 0, "line: %s", line);
    line += 7;
    while (line[k] == ' ')
        k++;
    return k;
}

/* A group as a string: "task:ERR:msg ..." with nested groups as
 * "task:PTRIO_EGROUP[...]"; counts members whose via is not the group.
 * Call it inside the run: a body member's task is the loop's. */
static char G[1024];
static int via_bad;

static void gcat(const char *s)
{
    size_t n = strlen(G);
    while (s && *s && n < sizeof G - 1)
        G[n++] = *s++;
    G[n] = '\0';
}

static void walk(const struct ptrio_nursery *g)
{
    const void *cur = NULL;
    ptrio_failure m;
    int first = 1, count = 0;
    while ((cur = ptrio_group_next(g, cur, &m))) {
        count++;
        if (!first)
            gcat(" ");
        first = 0;
        gcat(m.task ? m.task : "?");
        gcat(":");
        gcat(ptrio_errname(m.code));
        if (m.via != g)
            via_bad++;
        if (m.group) {
            ck_assert_int_eq(m.code, -PTRIO_EGROUP);
            gcat("[");
            walk(m.group);
            gcat("]");
        } else {
            gcat(":");
            gcat(m.msg ? m.msg : "-");
        }
    }
    ck_assert_int_eq(count, ptrio_group_size(g));
}

static const char *group_str(const struct ptrio_nursery *g)
{
    G[0] = '\0';
    via_bad = 0;
    walk(g);
    return G;
}

/* Sleeps `d` (0: no checkpoint at all), logs "<name>:raise", raises
 * `code` with the message "crash". */
static int crasher_line;

struct crasher {
    ptrio_frame fr;
    const char *name;
    ptrio_time d;
    int code;
};

static int crasher(ptrio_frame *fr)
{
    struct crasher *f = PTRIO_SELF(fr, struct crasher);
    PTRIO_BEGIN(f);
    if (f->d > 0)
        PTRIO_AWAIT(f, ptrio_sleep(f, f->d));
    ev(f->name, ":raise");
    crasher_line = __LINE__ + 1;
    PTRIO_RAISE(f, f->code, "crash");
    PTRIO_END(f);
}

/* Raises -EIO "uh oh" at once. */
static int erroring_line;

struct erroring {
    ptrio_frame fr;
};

static int erroring(ptrio_frame *fr)
{
    struct erroring *f = PTRIO_SELF(fr, struct erroring);
    PTRIO_BEGIN(f);
    erroring_line = __LINE__ + 1;
    PTRIO_RAISE(f, -PTRIO_EIO, "uh oh");
    PTRIO_END(f);
}

/* A nursery holding one `erroring` child, as a sub-coroutine. */
struct err_sub {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct erroring k;
};

static int err_sub(ptrio_frame *fr)
{
    struct err_sub *f = PTRIO_SELF(fr, struct err_sub);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, erroring, &f->k));
    }
    ev("not-reached", "");
    PTRIO_END(f);
}

/* Catches what a nursery sub-coroutine raises, and its record. */
#define CATCHER_FIELDS                                                      \
    ptrio_frame fr;                                                         \
    int rc, frc;                                                            \
    ptrio_failure fail

/* ---- one failure -------------------------------------------------- */

struct basic_main {
    CATCHER_FIELDS;
    struct err_sub sub;
};

static int basic_main(ptrio_frame *fr)
{
    struct basic_main *f = PTRIO_SELF(fr, struct basic_main);
    PTRIO_BEGIN(f);
    PTRIO_TRY(f, f->rc, ptrio_call(f, &f->sub, err_sub));
    f->frc = ptrio_failure_last(f->rc, &f->fail);
    ev("caught", "");
    PTRIO_END(f);
}

/* The child's failure comes out of the nursery as itself; its record names
 * the task, message, site and nursery. */
/* Trio test_run.py: test_child_crash_basic */
START_TEST(test_child_crash_basic)
{
    static struct basic_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(basic_main, &m, NULL), 0);
    ck_assert_int_eq(m.rc, -PTRIO_EIO);
    ck_assert_int_eq(m.frc, 0);
    ck_assert_int_eq(m.fail.code, -PTRIO_EIO);
    ck_assert_str_eq(m.fail.msg, "uh oh");
    ck_assert_str_eq(m.fail.task, "erroring");
    ck_assert_str_eq(m.fail.file, __FILE__);
    ck_assert_int_eq(m.fail.line, erroring_line);
    ck_assert_ptr_eq(m.fail.via, &m.sub.n);
    ck_assert_ptr_null(m.fail.group);
    ck_assert_str_eq(L.buf, "caught@0");
}
END_TEST

static int block_line;

struct block_sub {
    ptrio_frame fr;
    ptrio_nursery n;
};

static int block_sub(ptrio_frame *fr)
{
    struct block_sub *f = PTRIO_SELF(fr, struct block_sub);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        block_line = __LINE__ + 1;
        PTRIO_RAISE(f, -PTRIO_EIO, "whoops");
    }
    PTRIO_END(f);
}

struct block_main {
    CATCHER_FIELDS;
    struct block_sub sub;
};

static int block_main(ptrio_frame *fr)
{
    struct block_main *f = PTRIO_SELF(fr, struct block_main);
    PTRIO_BEGIN(f);
    PTRIO_TRY(f, f->rc, ptrio_call(f, &f->sub, block_sub));
    f->frc = ptrio_failure_last(f->rc, &f->fail);
    PTRIO_END(f);
}

/* The body's own failure is raised as itself. */
/* Trio test_run.py: test_nursery_main_block_error_basic */
START_TEST(test_body_error_basic)
{
    static struct block_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(block_main, &m, NULL), 0);
    ck_assert_int_eq(m.rc, -PTRIO_EIO);
    ck_assert_int_eq(m.frc, 0);
    ck_assert_str_eq(m.fail.msg, "whoops");
    ck_assert_str_eq(m.fail.task, "block_main");
    ck_assert_str_eq(m.fail.file, __FILE__);
    ck_assert_int_eq(m.fail.line, block_line);
    ck_assert_ptr_null(m.fail.group);
}
END_TEST

struct forever_looper {
    ptrio_frame fr;
};

static int forever_looper(ptrio_frame *fr)
{
    struct forever_looper *f = PTRIO_SELF(fr, struct forever_looper);
    PTRIO_BEGIN(f);
    for (;;)
        PTRIO_CHECKPOINT(f);
    PTRIO_FINALLY(f);
    ev_err("looper", PTRIO_FINALLY_ERROR(f));
    PTRIO_END(f);
}

struct prop_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct forever_looper lo;
    struct crasher c;
};

static int prop_main(ptrio_frame *fr)
{
    struct prop_main *f = PTRIO_SELF(fr, struct prop_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->c = (struct crasher){.name = "crasher", .code = -PTRIO_EIO};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], forever_looper,
                                        &f->lo));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], crasher, &f->c));
    }
    PTRIO_END(f);
}

/* A sibling looping on checkpoints is cancelled; the crash is what the run
 * returns. */
/* Trio test_run.py: test_task_crash_propagation */
START_TEST(test_task_crash_propagation)
{
    static struct prop_main m;
    static treport rep;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(prop_main, &m, &rep), -PTRIO_EIO);
    ck_assert_str_eq(L.buf, "crasher:raise@0 looper!PTRIO_ECANCELED@0");
    ck_assert_int_eq(rep.count, 1);
}
END_TEST

struct sib_sub {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[3];
    struct sleeper s[2];
    struct crasher c;
    struct sleeper body;
};

static int sib_sub(ptrio_frame *fr)
{
    struct sib_sub *f = PTRIO_SELF(fr, struct sib_sub);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->s[0] = (struct sleeper){.name = "s1", .d = PTRIO_SEC(10)};
        f->s[1] = (struct sleeper){.name = "s2", .d = PTRIO_TIME_INF};
        f->c = (struct crasher){.name = "crasher", .d = PTRIO_SEC(1),
                                .code = -PTRIO_EIO};
        f->body = (struct sleeper){.name = "body", .d = PTRIO_SEC(5)};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], sleeper, &f->s[0]));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], sleeper, &f->s[1]));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[2], crasher, &f->c));
        PTRIO_CALL(f, sleeper, &f->body);
        ev("body-not-reached", "");
    }
    PTRIO_END(f);
}

struct sib_main {
    CATCHER_FIELDS;
    struct sib_sub sub;
};

static int sib_main(ptrio_frame *fr)
{
    struct sib_main *f = PTRIO_SELF(fr, struct sib_main);
    PTRIO_BEGIN(f);
    PTRIO_TRY(f, f->rc, ptrio_call(f, &f->sub, sib_sub));
    f->frc = ptrio_failure_last(f->rc, &f->fail);
    ev("caught", "");
    PTRIO_END(f);
}

/* A child failing cancels its siblings and the body at once (each sees
 * -ECANCELED at the failure's time); the nursery waits for them, then
 * raises the failure. */
START_TEST(test_crash_cancels_siblings_and_body)
{
    static struct sib_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(sib_main, &m, NULL), 0);
    ck_assert_int_eq(m.rc, -PTRIO_EIO);
    ck_assert_str_eq(L.buf,
                     "body+@0 s1+@0 s2+@0 crasher:raise@1000 "
                     "s1!PTRIO_ECANCELED@1000 s2!PTRIO_ECANCELED@1000 "
                     "body!PTRIO_ECANCELED@1000 caught@1000");
    ck_assert_str_eq(m.fail.task, "crasher");
    ck_assert_str_eq(m.fail.msg, "crash");
    ck_assert_int_eq(m.fail.line, crasher_line);
    ck_assert_ptr_eq(m.fail.via, &m.sub.n);
}
END_TEST

struct wake_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct crasher c;
    struct sleeper body;
};

static int wake_main(ptrio_frame *fr)
{
    struct wake_main *f = PTRIO_SELF(fr, struct wake_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->c = (struct crasher){.name = "crasher", .code = -PTRIO_EIO};
        f->body = (struct sleeper){.name = "body", .d = PTRIO_TIME_INF};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, crasher, &f->c));
        PTRIO_CALL(f, sleeper, &f->body);
    }
    PTRIO_END(f);
}

/* A body sleeping forever is woken by the child's failure. */
/* Trio test_run.py: test_child_crash_wakes_parent */
START_TEST(test_child_crash_wakes_parent)
{
    static struct wake_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(wake_main, &m, NULL), -PTRIO_EIO);
    ck_assert_str_eq(L.buf, "body+@0 crasher:raise@0 body!PTRIO_ECANCELED@0");
}
END_TEST

/* ---- groups ---------------------------------------------------------- */

struct two_sub {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct crasher c[2];
};

static int two_sub(ptrio_frame *fr)
{
    struct two_sub *f = PTRIO_SELF(fr, struct two_sub);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->c[0] = (struct crasher){.name = "a", .code = -PTRIO_EIO};
        f->c[1] = (struct crasher){.name = "b", .code = -PTRIO_EPIPE};
        PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[0], crasher,
                                              &f->c[0], "a"));
        PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[1], crasher,
                                              &f->c[1], "b"));
    }
    PTRIO_END(f);
}

struct two_main {
    CATCHER_FIELDS;
    struct two_sub sub;
};

static int two_main(ptrio_frame *fr)
{
    struct two_main *f = PTRIO_SELF(fr, struct two_main);
    PTRIO_BEGIN(f);
    PTRIO_TRY(f, f->rc, ptrio_call(f, &f->sub, two_sub));
    f->frc = ptrio_failure_last(-PTRIO_EGROUP, &f->fail);
    if (f->frc == 0)
        group_str(f->fail.group);   /* while the loop lives */
    PTRIO_END(f);
}

/* Two failures make -PTRIO_EGROUP; its members are the children in the
 * order they failed. */
/* Trio test_run.py: test_two_child_crashes */
START_TEST(test_two_child_crashes)
{
    static struct two_main m;
    ptrio_failure mem;
    const void *cur;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(two_main, &m, NULL), 0);
    ck_assert_int_eq(m.rc, -PTRIO_EGROUP);
    ck_assert_int_eq(m.frc, 0);
    ck_assert_int_eq(m.fail.code, -PTRIO_EGROUP);
    ck_assert_ptr_eq(m.fail.group, &m.sub.n);
    ck_assert_int_eq(ptrio_group_size(m.fail.group), 2);
    ck_assert_str_eq(G, "a:EIO:crash b:EPIPE:crash");
    ck_assert_int_eq(via_bad, 0);
    /* the walk by hand: file and line of each member, then the end */
    cur = ptrio_group_next(m.fail.group, NULL, &mem);
    ck_assert_ptr_nonnull(cur);
    ck_assert_str_eq(mem.file, __FILE__);
    ck_assert_int_eq(mem.line, crasher_line);
    ck_assert_ptr_null(mem.group);
    cur = ptrio_group_next(m.fail.group, cur, &mem);
    ck_assert_ptr_nonnull(cur);
    ck_assert_str_eq(mem.task, "b");
    ck_assert_ptr_null(ptrio_group_next(m.fail.group, cur, &mem));
    ck_assert_str_eq(L.buf, "a:raise@0 b:raise@0");
}
END_TEST

struct cleanup_fail {
    ptrio_frame fr;
    int rc;
};

static int cleanup_fail(ptrio_frame *fr)
{
    struct cleanup_fail *f = PTRIO_SELF(fr, struct cleanup_fail);
    PTRIO_BEGIN(f);
    PTRIO_TRY(f, f->rc, ptrio_sleep_forever(f));
    ev_err("cleanup", f->rc);
    PTRIO_RAISE(f, -PTRIO_EPIPE, "cleanup failed");
    PTRIO_END(f);
}

struct after_sub {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct cleanup_fail b;
    struct crasher a;
};

static int after_sub(ptrio_frame *fr)
{
    struct after_sub *f = PTRIO_SELF(fr, struct after_sub);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->a = (struct crasher){.name = "a", .code = -PTRIO_EIO};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], cleanup_fail,
                                        &f->b));
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));
        PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[1], crasher,
                                              &f->a, "a"));
    }
    PTRIO_END(f);
}

struct after_main {
    CATCHER_FIELDS;
    struct after_sub sub;
};

static int after_main(ptrio_frame *fr)
{
    struct after_main *f = PTRIO_SELF(fr, struct after_main);
    PTRIO_BEGIN(f);
    PTRIO_TRY(f, f->rc, ptrio_call(f, &f->sub, after_sub));
    f->frc = ptrio_failure_last(f->rc, &f->fail);
    if (f->frc == 0)
        group_str(f->fail.group);   /* while the loop lives */
    PTRIO_END(f);
}

/* A child that fails while handling its cancellation is a failure too;
 * members come in the order of failure, not of start. */
START_TEST(test_failure_after_cancel)
{
    static struct after_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(after_main, &m, NULL), 0);
    ck_assert_int_eq(m.rc, -PTRIO_EGROUP);
    ck_assert_int_eq(m.frc, 0);
    ck_assert_str_eq(L.buf, "a:raise@1000 cleanup!PTRIO_ECANCELED@1000");
    ck_assert_int_eq(ptrio_group_size(m.fail.group), 2);
    ck_assert_str_eq(G,
                     "a:EIO:crash cleanup_fail:EPIPE:cleanup failed");
    ck_assert_int_eq(via_bad, 0);
}
END_TEST

struct both_sub {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct crasher k;
    int yield_first;
};

static int both_sub(ptrio_frame *fr)
{
    struct both_sub *f = PTRIO_SELF(fr, struct both_sub);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->k = (struct crasher){.name = "kid", .code = -PTRIO_EIO};
        PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t, crasher, &f->k,
                                              "kid"));
        if (f->yield_first)
            PTRIO_YIELD(f);     /* the kid fails first; no cancel point */
        ev("body", ":raise");
        PTRIO_RAISE(f, -PTRIO_EPIPE, "body");
    }
    PTRIO_END(f);
}

struct both_main {
    CATCHER_FIELDS;
    struct both_sub sub;
    int yield_first;
};

static int both_main(ptrio_frame *fr)
{
    struct both_main *f = PTRIO_SELF(fr, struct both_main);
    PTRIO_BEGIN(f);
    f->sub.yield_first = f->yield_first;
    PTRIO_TRY(f, f->rc, ptrio_call(f, &f->sub, both_sub));
    f->frc = ptrio_failure_last(f->rc, &f->fail);
    if (f->frc == 0)
        group_str(f->fail.group);   /* while the loop lives */
    PTRIO_END(f);
}

/* The body's failure and a child's make a group; the body's comes first
 * although the child failed first. */
/* Trio test_run.py: test_main_and_task_both_crash */
START_TEST(test_main_and_task_both_crash)
{
    static struct both_main m;
    tlog_clear(&L);
    m.yield_first = 1;
    ck_assert_int_eq(run_virtual(both_main, &m, NULL), 0);
    ck_assert_int_eq(m.rc, -PTRIO_EGROUP);
    ck_assert_int_eq(m.frc, 0);
    ck_assert_str_eq(L.buf, "kid:raise@0 body:raise@0");
    ck_assert_str_eq(G,
                     "both_main:EPIPE:body kid:EIO:crash");
    ck_assert_int_eq(via_bad, 0);
}
END_TEST

/* The body raises first, then the child (which does not checkpoint) fails
 * as well: (body, child). */
/* Trio test_run.py: test_nursery_stop_iteration */
START_TEST(test_body_raises_then_child)
{
    static struct both_main m;
    tlog_clear(&L);
    m.yield_first = 0;
    ck_assert_int_eq(run_virtual(both_main, &m, NULL), 0);
    ck_assert_int_eq(m.rc, -PTRIO_EGROUP);
    ck_assert_str_eq(L.buf, "body:raise@0 kid:raise@0");
    ck_assert_int_eq(ptrio_group_size(m.fail.group), 2);
    ck_assert_str_eq(G,
                     "both_main:EPIPE:body kid:EIO:crash");
}
END_TEST

/* A worker whose nursery holds two crashing children k1 (EIO), k2
 * (EPIPE): it fails with a group. */
static int wgroup_line;

struct wgroup {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct crasher k[2];
};

static int wgroup(ptrio_frame *fr)
{
    struct wgroup *f = PTRIO_SELF(fr, struct wgroup);
    PTRIO_BEGIN(f);
    wgroup_line = __LINE__ + 1;
    PTRIO_NURSERY(f, &f->n) {
        f->k[0] = (struct crasher){.name = "k1", .code = -PTRIO_EIO};
        f->k[1] = (struct crasher){.name = "k2", .code = -PTRIO_EPIPE};
        PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[0], crasher,
                                              &f->k[0], "k1"));
        PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[1], crasher,
                                              &f->k[1], "k2"));
    }
    PTRIO_END(f);
}

static int nested_line;

struct nested_sub {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct wgroup w;
    struct crasher c;
};

static int nested_sub(ptrio_frame *fr)
{
    struct nested_sub *f = PTRIO_SELF(fr, struct nested_sub);
    PTRIO_BEGIN(f);
    nested_line = __LINE__ + 1;
    PTRIO_NURSERY(f, &f->n) {
        f->c = (struct crasher){.name = "c", .code = -PTRIO_EIO};
        PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[0], wgroup,
                                              &f->w, "w"));
        PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[1], crasher,
                                              &f->c, "c"));
    }
    PTRIO_END(f);
}

struct nested_main {
    CATCHER_FIELDS;
    struct nested_sub sub;
};

static int nested_main(ptrio_frame *fr)
{
    struct nested_main *f = PTRIO_SELF(fr, struct nested_main);
    PTRIO_BEGIN(f);
    PTRIO_TRY(f, f->rc, ptrio_call(f, &f->sub, nested_sub));
    f->frc = ptrio_failure_last(f->rc, &f->fail);
    if (f->frc == 0)
        group_str(f->fail.group);   /* while the loop lives */
    PTRIO_END(f);
}

/* Nested groups form a tree: a member that is itself a group has code
 * -PTRIO_EGROUP and its own members. */
START_TEST(test_nested_groups)
{
    static struct nested_main m;
    ptrio_failure mem;
    const void *cur;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(nested_main, &m, NULL), 0);
    ck_assert_int_eq(m.rc, -PTRIO_EGROUP);
    ck_assert_int_eq(m.frc, 0);
    ck_assert_ptr_eq(m.fail.group, &m.sub.n);
    ck_assert_int_eq(ptrio_group_size(&m.sub.n), 2);
    ck_assert_int_eq(ptrio_group_size(&m.sub.w.n), 2);
    ck_assert_str_eq(G,
                     "c:EIO:crash "
                     "w:PTRIO_EGROUP[k1:EIO:crash k2:EPIPE:crash]");
    ck_assert_int_eq(via_bad, 0);
    cur = ptrio_group_next(m.fail.group, NULL, &mem);
    cur = ptrio_group_next(m.fail.group, cur, &mem);
    ck_assert_ptr_nonnull(cur);
    ck_assert_ptr_eq(mem.group, &m.sub.w.n);
    ck_assert_str_eq(L.buf, "c:raise@0 k1:raise@0 k2:raise@0");
}
END_TEST

/* A cancelled scope around a nursery that raises a group of real
 * failures, none of them a cancellation. */
struct nocancel_sub {
    ptrio_frame fr;
    ptrio_scope sc;
    struct wgroup w;
};

static int nocancel_sub(ptrio_frame *fr)
{
    struct nocancel_sub *f = PTRIO_SELF(fr, struct nocancel_sub);
    PTRIO_BEGIN(f);
    PTRIO_CANCEL_SCOPE(f, &f->sc) {
        ptrio_cancel(&f->sc);
        PTRIO_CALL(f, wgroup, &f->w);
    }
    ev("not-reached", "");
    PTRIO_END(f);
}

struct nocancel_main {
    CATCHER_FIELDS;
    struct nocancel_sub sub;
};

static int nocancel_main(ptrio_frame *fr)
{
    struct nocancel_main *f = PTRIO_SELF(fr, struct nocancel_main);
    PTRIO_BEGIN(f);
    PTRIO_TRY(f, f->rc, ptrio_call(f, &f->sub, nocancel_sub));
    f->frc = ptrio_failure_last(f->rc, &f->fail);
    if (f->frc == 0)
        group_str(f->fail.group);   /* while the loop lives */
    PTRIO_END(f);
}

/* The group passes the cancelled scope, which catches nothing: there was
 * no cancellation in it. */
/* Trio test_run.py: test_cancel_scope_no_cancellederror */
START_TEST(test_cancel_scope_no_cancellederror)
{
    static struct nocancel_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(nocancel_main, &m, NULL), 0);
    ck_assert_int_eq(m.rc, -PTRIO_EGROUP);
    ck_assert_int_eq(m.frc, 0);
    ck_assert_str_eq(G, "k1:EIO:crash k2:EPIPE:crash");
    ck_assert(ptrio_cancel_called(&m.sub.sc));
    ck_assert(!ptrio_cancelled_caught(&m.sub.sc));
    ck_assert_str_eq(L.buf, "k1:raise@0 k2:raise@0");
}
END_TEST

/* A nursery whose children are a sleeper and a crasher (EIO), around a
 * nested one of the same kind (EPIPE) whose body cancels the outer. */
struct collapse_sub {
    ptrio_frame fr;
    ptrio_nursery n, n2;
    ptrio_task t[4];
    struct sleeper s[2];
    struct crasher c[2];
};

static int collapse_sub(ptrio_frame *fr)
{
    struct collapse_sub *f = PTRIO_SELF(fr, struct collapse_sub);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->s[0] = (struct sleeper){.name = "s1", .d = PTRIO_TIME_INF};
        f->c[0] = (struct crasher){.name = "e1", .code = -PTRIO_EIO};
        PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[0], sleeper,
                                              &f->s[0], "s1"));
        PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[1], crasher,
                                              &f->c[0], "e1"));
        PTRIO_NURSERY(f, &f->n2) {
            f->s[1] = (struct sleeper){.name = "s2", .d = PTRIO_TIME_INF};
            f->c[1] = (struct crasher){.name = "e2", .code = -PTRIO_EPIPE};
            PTRIO_CHECK(f, ptrio_start_soon_named(&f->n2, &f->t[2], sleeper,
                                                  &f->s[1], "s2"));
            PTRIO_CHECK(f, ptrio_start_soon_named(&f->n2, &f->t[3], crasher,
                                                  &f->c[1], "e2"));
            ptrio_nursery_cancel(&f->n);
        }
    }
    ev("not-reached", "");
    PTRIO_END(f);
}

struct collapse_main {
    CATCHER_FIELDS;
    struct collapse_sub sub;
};

static int collapse_main(ptrio_frame *fr)
{
    struct collapse_main *f = PTRIO_SELF(fr, struct collapse_main);
    PTRIO_BEGIN(f);
    PTRIO_TRY(f, f->rc, ptrio_call(f, &f->sub, collapse_sub));
    f->frc = ptrio_failure_last(f->rc, &f->fail);
    if (f->frc == 0)
        group_str(f->fail.group);   /* while the loop lives */
    PTRIO_END(f);
}

/* The inner nursery's cancellations are stripped and its one failure is
 * raised as itself (Trio's strict_exception_groups=False case: ptrio's
 * nurseries are loose); the outer raises a group of the inner's failure
 * (its body's) and its own child's. The outer scope, the one cancelled,
 * caught the cancellations; the inner, under it, did not. */
/* Trio test_run.py: test_nursery_collapse (strict=False) */
START_TEST(test_nursery_collapse)
{
    static struct collapse_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(collapse_main, &m, NULL), 0);
    ck_assert_int_eq(m.rc, -PTRIO_EGROUP);
    ck_assert_int_eq(m.frc, 0);
    ck_assert_ptr_eq(m.fail.group, &m.sub.n);
    ck_assert_str_eq(G, "e2:EPIPE:crash e1:EIO:crash");  /* body first */
    ck_assert(ptrio_cancelled_caught(ptrio_nursery_scope(&m.sub.n)));
    ck_assert(!ptrio_cancelled_caught(ptrio_nursery_scope(&m.sub.n2)));
    ck_assert_str_eq(L.buf, "s1+@0 s1!PTRIO_ECANCELED@0 e1:raise@0 "
                            "s2+@0 s2!PTRIO_ECANCELED@0 e2:raise@0");
}
END_TEST

/* A worker whose nursery holds one crashing child "kid". */
static int wone_line;

struct wone {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct crasher k;
};

static int wone(ptrio_frame *fr)
{
    struct wone *f = PTRIO_SELF(fr, struct wone);
    PTRIO_BEGIN(f);
    wone_line = __LINE__ + 1;
    PTRIO_NURSERY(f, &f->n) {
        f->k = (struct crasher){.name = "kid", .d = PTRIO_SEC(1),
                                .code = -PTRIO_EIO};
        PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t, crasher, &f->k,
                                              "kid"));
    }
    PTRIO_END(f);
}

static int single_line;

struct single_sub {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct wone w;
    struct sleeper s;
};

static int single_sub(ptrio_frame *fr)
{
    struct single_sub *f = PTRIO_SELF(fr, struct single_sub);
    PTRIO_BEGIN(f);
    single_line = __LINE__ + 1;
    PTRIO_NURSERY(f, &f->n) {
        f->s = (struct sleeper){.name = "s", .d = PTRIO_TIME_INF};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], wone, &f->w));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], sleeper, &f->s));
    }
    PTRIO_END(f);
}

struct single_main {
    CATCHER_FIELDS;
    struct single_sub sub;
};

static int single_main(ptrio_frame *fr)
{
    struct single_main *f = PTRIO_SELF(fr, struct single_main);
    PTRIO_BEGIN(f);
    PTRIO_TRY(f, f->rc, ptrio_call(f, &f->sub, single_sub));
    f->frc = ptrio_failure_last(f->rc, &f->fail);
    ev("caught", "");
    PTRIO_END(f);
}

/* One failure through two nurseries stays itself; its record names the
 * task that raised it and the nursery it came through first. */
START_TEST(test_single_failure_through_nested)
{
    static struct single_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(single_main, &m, NULL), 0);
    ck_assert_int_eq(m.rc, -PTRIO_EIO);
    ck_assert_int_eq(m.frc, 0);
    ck_assert_str_eq(m.fail.task, "kid");
    ck_assert_str_eq(m.fail.msg, "crash");
    ck_assert_ptr_eq(m.fail.via, &m.sub.w.n);
    ck_assert_ptr_null(m.fail.group);
    ck_assert_str_eq(L.buf, "s+@0 kid:raise@1000 s!PTRIO_ECANCELED@1000 "
                            "caught@1000");
}
END_TEST

/* ---- reports of uncaught failures ----------------------------------- */

static int rsingle_nline, disk_line;

struct disk_kid {
    ptrio_frame fr;
};

static int disk_kid(ptrio_frame *fr)
{
    struct disk_kid *f = PTRIO_SELF(fr, struct disk_kid);
    PTRIO_BEGIN(f);
    PTRIO_CHECKPOINT(f);
    disk_line = __LINE__ + 1;
    PTRIO_RAISE(f, -PTRIO_EIO, "disk gone");
    PTRIO_END(f);
}

struct rsingle_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct disk_kid k;
};

static int rsingle_main(ptrio_frame *fr)
{
    struct rsingle_main *f = PTRIO_SELF(fr, struct rsingle_main);
    PTRIO_BEGIN(f);
    rsingle_nline = __LINE__ + 1;
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, disk_kid, &f->k));
    }
    PTRIO_END(f);
}

/* An uncaught failure is the run's status and is reported on one line. */
/* Trio test_run.py: test_initial_task_error (through a nursery) */
START_TEST(test_report_single)
{
    static struct rsingle_main m;
    static treport rep;
    char line[512], s1[256], s2[256];
    ck_assert_int_eq(run_virtual(rsingle_main, &m, &rep), -PTRIO_EIO);
    ck_assert_int_eq(rep.count, 1);
    ck_assert_ptr_nonnull(rline(&rep, 0, line, sizeof line));
    ck_assert_int_eq(strncmp(line, "ptrio: ", 7), 0);
    ck_assert_ptr_nonnull(strstr(line, "task 'disk_kid'"));
    ck_assert_ptr_nonnull(strstr(line, "EIO"));
    ck_assert_ptr_nonnull(strstr(line, "disk gone"));
    at_site(s1, sizeof s1, " at ", __FILE__, disk_line);
    ck_assert_ptr_nonnull(strstr(line, s1));
    at_site(s2, sizeof s2, " via nursery at ", __FILE__, rsingle_nline);
    ck_assert_ptr_nonnull(strstr(line, s2));
    ck_assert_int_eq(count_of(line, " via nursery at "), 1);
}
END_TEST

static int rgroup_nline;

struct rgroup_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct crasher c[2];
};

static int rgroup_main(ptrio_frame *fr)
{
    struct rgroup_main *f = PTRIO_SELF(fr, struct rgroup_main);
    PTRIO_BEGIN(f);
    rgroup_nline = __LINE__ + 1;
    PTRIO_NURSERY(f, &f->n) {
        f->c[0] = (struct crasher){.name = "a", .code = -PTRIO_EIO};
        f->c[1] = (struct crasher){.name = "b", .d = PTRIO_SEC(2),
                                   .code = -PTRIO_ETIMEDOUT};
        PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[0], crasher,
                                              &f->c[0], "a"));
        PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[1], crasher,
                                              &f->c[1], "b"));
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));
    }
    PTRIO_END(f);
}

/* The siblings that the failure cancelled (b, the body) are not failures:
 * one line, for a. */
/* Trio test_run.py: test_task_crash_propagation (report) */
START_TEST(test_report_cancelled_not_reported)
{
    static struct rgroup_main m;
    static treport rep;
    char line[512], s[256];
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(rgroup_main, &m, &rep), -PTRIO_EIO);
    ck_assert_int_eq(rep.count, 1);
    ck_assert_ptr_nonnull(rline(&rep, 0, line, sizeof line));
    ck_assert_ptr_nonnull(strstr(line, "task 'a'"));
    at_site(s, sizeof s, " via nursery at ", __FILE__, rgroup_nline);
    ck_assert_ptr_nonnull(strstr(line, s));
    ck_assert_str_eq(L.buf, "a:raise@0");
}
END_TEST

static int rgroup2_nline;

struct rgroup2_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct crasher c[2];
};

static int rgroup2_main(ptrio_frame *fr)
{
    struct rgroup2_main *f = PTRIO_SELF(fr, struct rgroup2_main);
    PTRIO_BEGIN(f);
    rgroup2_nline = __LINE__ + 1;
    PTRIO_NURSERY(f, &f->n) {
        f->c[0] = (struct crasher){.name = "a", .code = -PTRIO_EIO};
        f->c[1] = (struct crasher){.name = "b", .code = -PTRIO_ETIMEDOUT};
        PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[0], crasher,
                                              &f->c[0], "a"));
        PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[1], crasher,
                                              &f->c[1], "b"));
    }
    PTRIO_END(f);
}

/* A group is reported as a header line, then one indented line per member,
 * in order. */
/* Trio test_run.py: test_two_child_crashes (report) */
START_TEST(test_report_group)
{
    static struct rgroup2_main m;
    static treport rep;
    char line[512], s1[256], s2[256], s3[256];
    ck_assert_int_eq(run_virtual(rgroup2_main, &m, &rep), -PTRIO_EGROUP);
    ck_assert_int_eq(rep.count, 3);
    site(s3, sizeof s3, __FILE__, rgroup2_nline);
    at_site(s1, sizeof s1, " at ", __FILE__, crasher_line);
    at_site(s2, sizeof s2, " via nursery at ", __FILE__, rgroup2_nline);

    ck_assert_ptr_nonnull(rline(&rep, 0, line, sizeof line));
    ck_assert_int_eq(indent_of(line), 0);
    ck_assert_ptr_nonnull(strstr(line, "task 'rgroup2_main'"));
    ck_assert_ptr_nonnull(strstr(line, "PTRIO_EGROUP"));
    ck_assert_ptr_nonnull(strstr(line, s3));

    ck_assert_ptr_nonnull(rline(&rep, 1, line, sizeof line));
    ck_assert_int_gt(indent_of(line), 0);
    ck_assert_ptr_nonnull(strstr(line, "task 'a'"));
    ck_assert_ptr_nonnull(strstr(line, "EIO"));
    ck_assert_ptr_nonnull(strstr(line, "crash"));
    ck_assert_ptr_nonnull(strstr(line, s1));
    ck_assert_ptr_nonnull(strstr(line, s2));

    ck_assert_ptr_nonnull(rline(&rep, 2, line, sizeof line));
    ck_assert_int_gt(indent_of(line), 0);
    ck_assert_ptr_nonnull(strstr(line, "task 'b'"));
    ck_assert_ptr_nonnull(strstr(line, "ETIMEDOUT"));
    ck_assert_ptr_nonnull(strstr(line, s1));
    ck_assert_ptr_nonnull(strstr(line, s2));
}
END_TEST

struct rnested_main {
    ptrio_frame fr;
    struct nested_sub sub;
};

static int rnested_main(ptrio_frame *fr)
{
    struct rnested_main *f = PTRIO_SELF(fr, struct rnested_main);
    PTRIO_BEGIN(f);
    PTRIO_CALL(f, nested_sub, &f->sub);
    PTRIO_END(f);
}

/* A nested group is reported as a tree: the inner group's members are
 * indented below its own line. */
START_TEST(test_report_nested_group)
{
    static struct rnested_main m;
    static treport rep;
    char line[512], s[256];
    int w_indent;
    ck_assert_int_eq(run_virtual(rnested_main, &m, &rep), -PTRIO_EGROUP);
    ck_assert_int_eq(rep.count, 5);

    ck_assert_ptr_nonnull(rline(&rep, 0, line, sizeof line));
    ck_assert_int_eq(indent_of(line), 0);
    ck_assert_ptr_nonnull(strstr(line, "task 'rnested_main'"));
    ck_assert_ptr_nonnull(strstr(line, "PTRIO_EGROUP"));

    ck_assert_ptr_nonnull(rline(&rep, 1, line, sizeof line));
    ck_assert_int_gt(indent_of(line), 0);
    ck_assert_ptr_nonnull(strstr(line, "task 'c'"));
    ck_assert_ptr_nonnull(strstr(line, "EIO"));

    ck_assert_ptr_nonnull(rline(&rep, 2, line, sizeof line));
    w_indent = indent_of(line);
    ck_assert_int_gt(w_indent, 0);
    ck_assert_ptr_nonnull(strstr(line, "task 'w'"));
    ck_assert_ptr_nonnull(strstr(line, "PTRIO_EGROUP"));

    at_site(s, sizeof s, " via nursery at ", __FILE__, wgroup_line);
    ck_assert_ptr_nonnull(rline(&rep, 3, line, sizeof line));
    ck_assert_int_gt(indent_of(line), w_indent);
    ck_assert_ptr_nonnull(strstr(line, "task 'k1'"));
    ck_assert_ptr_nonnull(strstr(line, "EIO"));
    ck_assert_ptr_nonnull(strstr(line, s));

    ck_assert_ptr_nonnull(rline(&rep, 4, line, sizeof line));
    ck_assert_int_gt(indent_of(line), w_indent);
    ck_assert_ptr_nonnull(strstr(line, "task 'k2'"));
    ck_assert_ptr_nonnull(strstr(line, "EPIPE"));
    ck_assert_ptr_nonnull(strstr(line, s));
}
END_TEST

struct rthrough_main {
    ptrio_frame fr;
    struct single_sub sub;
};

static int rthrough_main(ptrio_frame *fr)
{
    struct rthrough_main *f = PTRIO_SELF(fr, struct rthrough_main);
    PTRIO_BEGIN(f);
    PTRIO_CALL(f, single_sub, &f->sub);
    PTRIO_END(f);
}

/* One failure through two nurseries: one line naming both nurseries,
 * the inner one first. */
START_TEST(test_report_through_nested)
{
    static struct rthrough_main m;
    static treport rep;
    char line[512], s1[256], s2[256], s3[256];
    const char *inner, *outer;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(rthrough_main, &m, &rep), -PTRIO_EIO);
    ck_assert_int_eq(rep.count, 1);
    ck_assert_ptr_nonnull(rline(&rep, 0, line, sizeof line));
    ck_assert_int_eq(strncmp(line, "ptrio: ", 7), 0);
    ck_assert_ptr_nonnull(strstr(line, "task 'kid'"));
    ck_assert_ptr_nonnull(strstr(line, "EIO"));
    at_site(s3, sizeof s3, " at ", __FILE__, crasher_line);
    ck_assert_ptr_nonnull(strstr(line, s3));
    ck_assert_int_eq(count_of(line, " via nursery at "), 2);
    at_site(s1, sizeof s1, " via nursery at ", __FILE__, wone_line);
    at_site(s2, sizeof s2, " via nursery at ", __FILE__, single_line);
    inner = strstr(line, s1);
    outer = strstr(line, s2);
    ck_assert_ptr_nonnull(inner);
    ck_assert_ptr_nonnull(outer);
    ck_assert(inner < outer);
}
END_TEST

static int root_line;

struct root_raises {
    ptrio_frame fr;
};

static int root_raises(ptrio_frame *fr)
{
    struct root_raises *f = PTRIO_SELF(fr, struct root_raises);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));
    root_line = __LINE__ + 1;
    PTRIO_RAISE(f, -PTRIO_EIO, "boom");
    PTRIO_END(f);
}

/* The main task's own failure: one line, no nursery. */
/* Trio test_run.py: test_initial_task_error */
START_TEST(test_report_root_failure)
{
    static struct root_raises m;
    static treport rep;
    char line[512], s[256];
    ck_assert_int_eq(run_virtual(root_raises, &m, &rep), -PTRIO_EIO);
    ck_assert_int_eq(rep.count, 1);
    ck_assert_ptr_nonnull(rline(&rep, 0, line, sizeof line));
    ck_assert_int_eq(strncmp(line, "ptrio: ", 7), 0);
    ck_assert_ptr_nonnull(strstr(line, "task 'root_raises'"));
    ck_assert_ptr_nonnull(strstr(line, "EIO"));
    ck_assert_ptr_nonnull(strstr(line, "boom"));
    at_site(s, sizeof s, " at ", __FILE__, root_line);
    ck_assert_ptr_nonnull(strstr(line, s));
    ck_assert_ptr_null(strstr(line, "via nursery"));
}
END_TEST

struct ok_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct sleeper s;
    struct err_sub sub;
    int rc;
};

static int ok_main(ptrio_frame *fr)
{
    struct ok_main *f = PTRIO_SELF(fr, struct ok_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->s = (struct sleeper){.name = "s", .d = PTRIO_SEC(1)};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, sleeper, &f->s));
    }
    PTRIO_TRY(f, f->rc, ptrio_call(f, &f->sub, err_sub));  /* caught */
    PTRIO_END(f);
}

/* A successful run (even one that caught a failure) reports nothing. */
/* Trio test_run.py: test_basic */
START_TEST(test_report_nothing_on_success)
{
    static struct ok_main m;
    static treport rep;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(ok_main, &m, &rep), 0);
    ck_assert_int_eq(m.rc, -PTRIO_EIO);
    ck_assert_int_eq(rep.count, 0);
    ck_assert_str_eq(L.buf, "s+@0 s@1000");
}
END_TEST

/* ---- catching ------------------------------------------------------- */

struct tb_main {
    ptrio_frame fr;
    ptrio_scope tb;
    ptrio_nursery n;
    ptrio_task t[2];
    struct erroring e;
    struct sleeper s;
    int err, frc;
    ptrio_failure fail;
};

static int tb_main(ptrio_frame *fr)
{
    struct tb_main *f = PTRIO_SELF(fr, struct tb_main);
    PTRIO_BEGIN(f);
    PTRIO_TRY_BLOCK(f, &f->tb) {
        PTRIO_NURSERY(f, &f->n) {
            f->s = (struct sleeper){.name = "s", .d = PTRIO_TIME_INF};
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], erroring, &f->e));
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], sleeper, &f->s));
        }
        ev("not-reached", "");
    }
    f->err = ptrio_scope_error(&f->tb);
    f->frc = ptrio_failure_last(f->err, &f->fail);
    ev("after", "");
    PTRIO_END(f);
}

/* README's errors example (Trio's try/except around a nursery):
 * TRY_BLOCK catches the child's failure; execution continues after it. */
START_TEST(test_try_block_catches_child_failure)
{
    static struct tb_main m;
    static treport rep;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(tb_main, &m, &rep), 0);
    ck_assert_int_eq(rep.count, 0);
    ck_assert_int_eq(m.err, -PTRIO_EIO);
    ck_assert_int_eq(m.frc, 0);
    ck_assert_str_eq(m.fail.task, "erroring");
    ck_assert_str_eq(m.fail.msg, "uh oh");
    ck_assert_ptr_eq(m.fail.via, &m.n);
    ck_assert_str_eq(L.buf, "s+@0 s!PTRIO_ECANCELED@0 after@0");
}
END_TEST

struct tbc_main {
    ptrio_frame fr;
    ptrio_scope cs, tb;
    int err_inside;
};

static int tbc_main(ptrio_frame *fr)
{
    struct tbc_main *f = PTRIO_SELF(fr, struct tbc_main);
    PTRIO_BEGIN(f);
    PTRIO_CANCEL_SCOPE(f, &f->cs) {
        PTRIO_TRY_BLOCK(f, &f->tb) {
            ptrio_cancel(&f->cs);
            PTRIO_CHECKPOINT(f);
            ev("not-reached", "");
        }
        f->err_inside = 1;
        ev("not-reached-either", "");
    }
    ev("after", "");
    PTRIO_END(f);
}

/* README (differences): TRY_BLOCK never swallows -ECANCELED; it goes on
 * to the scope that was cancelled. */
START_TEST(test_try_block_passes_cancel)
{
    static struct tbc_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(tbc_main, &m, NULL), 0);
    ck_assert_int_eq(m.err_inside, 0);
    ck_assert_int_eq(ptrio_scope_error(&m.tb), 0);
    ck_assert(ptrio_cancelled_caught(&m.cs));
    ck_assert_str_eq(L.buf, "after@0");
}
END_TEST

struct clean_shield {
    ptrio_frame fr;
    ptrio_scope sh;
};

static int clean_shield(ptrio_frame *fr)
{
    struct clean_shield *f = PTRIO_SELF(fr, struct clean_shield);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_sleep_forever(f));
    PTRIO_FINALLY(f);
    ev_err("k1", PTRIO_FINALLY_ERROR(f));
    PTRIO_SHIELD(f, &f->sh) {
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));
    }
    ev("k1", "-cleaned");
    PTRIO_END(f);
}

struct clean_retry {
    ptrio_frame fr;
    int rc;
};

static int clean_retry(ptrio_frame *fr)
{
    struct clean_retry *f = PTRIO_SELF(fr, struct clean_retry);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_sleep_forever(f));
    PTRIO_FINALLY(f);
    ev_err("k2", PTRIO_FINALLY_ERROR(f));
    PTRIO_TRY(f, f->rc, ptrio_sleep(f, PTRIO_SEC(1)));
    ev_err("k2-retry", f->rc);
    PTRIO_END(f);
}

struct fin_sub {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[3];
    struct clean_shield k1;
    struct clean_retry k2;
    struct crasher c;
};

static int fin_sub(ptrio_frame *fr)
{
    struct fin_sub *f = PTRIO_SELF(fr, struct fin_sub);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->c = (struct crasher){.name = "crasher", .d = PTRIO_SEC(1),
                                .code = -PTRIO_EIO};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], clean_shield,
                                        &f->k1));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], clean_retry,
                                        &f->k2));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[2], crasher, &f->c));
    }
    PTRIO_END(f);
}

struct fin_main {
    CATCHER_FIELDS;
    struct fin_sub sub;
};

static int fin_main(ptrio_frame *fr)
{
    struct fin_main *f = PTRIO_SELF(fr, struct fin_main);
    PTRIO_BEGIN(f);
    PTRIO_TRY(f, f->rc, ptrio_call(f, &f->sub, fin_sub));
    ev_err("caught", f->rc);
    PTRIO_END(f);
}

/* README (samples/cancel): FINALLY runs in the cancelled children; an
 * await there fails again unless shielded; the nursery waits for the
 * shielded cleanup before raising. */
START_TEST(test_finally_runs_in_cancelled_children)
{
    static struct fin_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(fin_main, &m, NULL), 0);
    ck_assert_int_eq(m.rc, -PTRIO_EIO);
    ck_assert_str_eq(L.buf,
                     "crasher:raise@1000 k1!PTRIO_ECANCELED@1000 k2!PTRIO_ECANCELED@1000 "
                     "k2-retry!PTRIO_ECANCELED@1000 k1-cleaned@2000 "
                     "caught!EIO@2000");
}
END_TEST

struct shbody_sub {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_scope sh;
    ptrio_task t;
    struct crasher c;
};

static int shbody_sub(ptrio_frame *fr)
{
    struct shbody_sub *f = PTRIO_SELF(fr, struct shbody_sub);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->c = (struct crasher){.name = "crasher", .d = PTRIO_SEC(1),
                                .code = -PTRIO_EIO};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, crasher, &f->c));
        PTRIO_SHIELD(f, &f->sh) {
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(2)));
        }
        ev("shield-done", "");
        PTRIO_CHECKPOINT(f);
        ev("not-reached", "");
    }
    PTRIO_END(f);
}

struct shbody_main {
    CATCHER_FIELDS;
    struct shbody_sub sub;
};

static int shbody_main(ptrio_frame *fr)
{
    struct shbody_main *f = PTRIO_SELF(fr, struct shbody_main);
    PTRIO_BEGIN(f);
    PTRIO_TRY(f, f->rc, ptrio_call(f, &f->sub, shbody_sub));
    ev_err("caught", f->rc);
    PTRIO_END(f);
}

/* The failure waits for a body that is shielded; the body's next
 * checkpoint after the shield fails; then the failure is raised. */
START_TEST(test_failure_waits_for_shielded_body)
{
    static struct shbody_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(shbody_main, &m, NULL), 0);
    ck_assert_int_eq(m.rc, -PTRIO_EIO);
    ck_assert_str_eq(L.buf, "crasher:raise@1000 shield-done@2000 "
                            "caught!EIO@2000");
}
END_TEST

struct filter_main {
    ptrio_frame fr;
    ptrio_scope tb, outer, sh;
    ptrio_nursery n;
    ptrio_task t[4];
    struct sleeper s[3];
    struct crasher c;
    int frc;
    ptrio_failure fail;
};

static int filter_main(ptrio_frame *fr)
{
    struct filter_main *f = PTRIO_SELF(fr, struct filter_main);
    PTRIO_BEGIN(f);
    PTRIO_TRY_BLOCK(f, &f->tb) {
        PTRIO_CANCEL_SCOPE(f, &f->outer) {
            PTRIO_NURSERY(f, &f->n) {
                f->s[0] = (struct sleeper){.name = "t1", .d = PTRIO_TIME_INF};
                f->s[1] = (struct sleeper){.name = "t2", .d = PTRIO_TIME_INF};
                f->s[2] = (struct sleeper){.name = "t3", .d = PTRIO_TIME_INF};
                f->c = (struct crasher){.name = "c", .code = -PTRIO_EIO};
                PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], sleeper,
                                                &f->s[0]));
                PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], sleeper,
                                                &f->s[1]));
                ptrio_nursery_cancel(&f->n);
                PTRIO_SHIELD(f, &f->sh) {
                    PTRIO_CHECKPOINT(f);
                }
                PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[2], sleeper,
                                                &f->s[2]));
                ptrio_cancel(&f->outer);
                PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[3],
                                                      crasher, &f->c, "c"));
            }
        }
    }
    f->frc = ptrio_failure_last(ptrio_scope_error(&f->tb), &f->fail);
    ev("after", "");
    PTRIO_END(f);
}

/* A failure 200 calls deep keeps its site and message: the record
 * follows it through every frame (it used to give up after 64). Trio's
 * traceback has no depth limit either. */
#define DEEP 200
struct deep { ptrio_frame fr; int depth; };
static struct deep deep_frames[DEEP + 1];

static int deep(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct deep, k);
    if (k->depth == DEEP)
        PTRIO_RAISE(k, -PTRIO_EIO, "bottom");
    k[1].depth = k->depth + 1;
    PTRIO_CALL(k, deep, &k[1]);
    PTRIO_END(k);
}

struct deep_main { ptrio_frame fr; ptrio_scope tb; ptrio_failure fail; int rc; };

static int deep_main(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct deep_main, f);
    PTRIO_TRY_BLOCK(f, &f->tb) {
        PTRIO_CALL(f, deep, &deep_frames[0]);
    }
    f->rc = ptrio_scope_failure(&f->tb, &f->fail);
    PTRIO_END(f);
}

START_TEST(test_deep_failure_keeps_its_site)
{
    static struct deep_main m;
    memset(&m, 0, sizeof m);
    memset(deep_frames, 0, sizeof deep_frames);
    ck_assert_int_eq(run_virtual(deep_main, &m, NULL), 0);
    ck_assert_int_eq(m.rc, 0);
    ck_assert_int_eq(m.fail.code, -PTRIO_EIO);
    ck_assert_ptr_nonnull(m.fail.msg);
    ck_assert_str_eq(m.fail.msg, "bottom");
    ck_assert_ptr_nonnull(strstr(m.fail.file, "check_failure.c"));
}
END_TEST

/* ptrio_failure_last describes the error caught last: after a raise
 * caught by a TRY block, an -EIO that an awaitable returns (no site: it
 * was not raised) and PTRIO_TRY catches is a new error, not the old
 * record of the same code. */
static int fails_eio(ptrio_task *t, void *obj, void *data)
{
    (void)t, (void)obj, (void)data;
    return -PTRIO_EIO;
}

struct last_main {
    ptrio_frame fr;
    ptrio_scope tb;
    ptrio_lot lot;
    ptrio_failure first, second;
    int rc[3];
};

static int last_main(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct last_main, f);
    PTRIO_TRY_BLOCK(f, &f->tb) {
        PTRIO_RAISE(f, -PTRIO_EIO, "first");
    }
    f->rc[0] = ptrio_failure_last(-PTRIO_EIO, &f->first);
    PTRIO_TRY(f, f->rc[1], ptrio_park_unless(f, &f->lot, fails_eio, NULL,
                                             NULL));
    f->rc[2] = ptrio_failure_last(-PTRIO_EIO, &f->second);
    PTRIO_END(f);
}

START_TEST(test_failure_last_is_the_last)
{
    static struct last_main m;
    memset(&m, 0, sizeof m);
    ck_assert_int_eq(run_virtual(last_main, &m, NULL), 0);
    ck_assert_int_eq(m.rc[0], 0);
    ck_assert_str_eq(m.first.msg, "first");
    ck_assert_int_eq(m.rc[1], -PTRIO_EIO);
    ck_assert_int_eq(m.rc[2], 0);
    ck_assert_int_eq(m.second.code, -PTRIO_EIO);
    ck_assert_ptr_null(m.second.msg);
    ck_assert_int_eq(m.second.line, 0);
}
END_TEST

/* A step written by hand that drops a sub-call's failure: the record
 * that failure handed on is not left for the next error of the same
 * code (here an attempt's -EIO, which has none) once the task has
 * suspended since. */
struct raises_stale { ptrio_frame fr; };

static int raises_stale(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct raises_stale, f);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
    PTRIO_RAISE(f, -PTRIO_EIO, "stale");
    PTRIO_END(f);
}

struct done_at_once { ptrio_frame fr; };

static int done_at_once(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct done_at_once, f);
    PTRIO_END(f);
}

/* Drops the sub-call's -EIO, then (own) calls a sub that ends at once
 * and returns its own -EIO, or sleeps. */
struct by_hand {
    ptrio_frame fr;
    int stage, own;
    struct raises_stale sub;
    struct done_at_once ok;
};

static int by_hand(ptrio_frame *fr)
{
    struct by_hand *h = PTRIO_SELF(fr, struct by_hand);
    int rc;

    switch (h->stage++) {
    case 0:
        return ptrio_call(h, &h->sub, raises_stale);
    case 1:                         /* fr->result: -EIO, dropped */
        if (!h->own)
            return ptrio_sleep(h, PTRIO_MS(1));
        rc = ptrio_call(h, &h->ok, done_at_once);
        return rc ? rc : -PTRIO_EIO;
    default:
        return 0;
    }
}

struct stale_main {
    ptrio_frame fr;
    struct by_hand h;
    ptrio_lot lot;
    ptrio_failure f;
    int rc[3];
};

static int stale_main(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct stale_main, f);
    PTRIO_TRY(f, f->rc[0], ptrio_call(f, &f->h, by_hand));
    if (!f->h.own)
        PTRIO_TRY(f, f->rc[1], ptrio_park_unless(f, &f->lot, fails_eio,
                                                 NULL, NULL));
    f->rc[2] = ptrio_failure_last(-PTRIO_EIO, &f->f);
    PTRIO_END(f);
}

/* Variant 1: the step then calls a sub that ends at once (no
 * suspension) and returns an -EIO of its own: that one has no record
 * either, not the dropped one's. */
START_TEST(test_dropped_failure_record_not_reused)
{
    static struct stale_main m;
    memset(&m, 0, sizeof m);
    m.h.own = _i;
    ck_assert_int_eq(run_virtual(stale_main, &m, NULL), 0);
    ck_assert_int_eq(m.rc[0], _i ? -PTRIO_EIO : 0);
    ck_assert_int_eq(m.rc[1], _i ? 0 : -PTRIO_EIO);
    ck_assert_int_eq(m.rc[2], 0);
    ck_assert_ptr_null(m.f.msg);
    ck_assert_int_eq(m.f.line, 0);
}
END_TEST

/* A nursery's failure carries the cancellations it absorbed to the
 * scope that catches them (S here), which then has caught a cancellation
 * once the failure arrives. Caught on the way by a TRY block, it never
 * arrives: a later, unrelated failure raised in S with no checkpoint in
 * between does not make S's cancelled_caught true (Trio sets it only
 * when a Cancelled reaches the scope). */
struct cleanup_fails { ptrio_frame fr; };

static int cleanup_fails(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct cleanup_fails, k);
    PTRIO_AWAIT(k, ptrio_sleep_forever(k));
    PTRIO_FINALLY(k);
    if (PTRIO_FINALLY_ERROR(k) == -PTRIO_ECANCELED)
        PTRIO_RAISE(k, -PTRIO_EIO, "cleanup failed");
    PTRIO_END(k);
}

struct absorbed_main {
    ptrio_frame fr;
    ptrio_scope u, s, t;
    ptrio_nursery n;
    ptrio_task kt;
    struct cleanup_fails k;
};

static int absorbed_main(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct absorbed_main, f);
    PTRIO_TRY_BLOCK(f, &f->u) {
        PTRIO_CANCEL_SCOPE(f, &f->s) {
            PTRIO_TRY_BLOCK(f, &f->t) {
                PTRIO_NURSERY(f, &f->n) {
                    PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->kt,
                                                    cleanup_fails, &f->k));
                    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
                    ptrio_cancel(&f->s);
                    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
                }
            }
            PTRIO_RAISE(f, -PTRIO_EINVAL, "unrelated");
        }
    }
    PTRIO_END(f);
}

START_TEST(test_absorbed_caught_on_the_way)
{
    static struct absorbed_main m;
    memset(&m, 0, sizeof m);
    ck_assert_int_eq(run_virtual(absorbed_main, &m, NULL), 0);
    ck_assert_int_eq(ptrio_scope_error(&m.t), -PTRIO_EIO);
    ck_assert_int_eq(ptrio_scope_error(&m.u), -PTRIO_EINVAL);
    ck_assert(ptrio_cancel_called(&m.s));
    ck_assert(!ptrio_cancelled_caught(&m.s));
}
END_TEST

/* The same, through frames and tasks: the failure that carries the
 * absorbed cancellation is the one whose arrival counts, wherever it
 * travels. x_sub (Trio: a function whose nursery's child fails in its
 * cleanup after x_sub cancelled an outer scope) raises -EIO with the
 * cancellation absorbed.
 *  0. awaited in S: the failure arrives, S caught a cancellation;
 *  1. caught by PTRIO_TRY in S, then an unrelated failure: S caught none;
 *  2. swallowed by x_sub's FINALLY (PTRIO_RETURN), then the same;
 *  3. x_sub a child task of nursery N, cancelling N: the failure arrives
 *     at N's close inside the child's failure, and N caught a
 *     cancellation (Trio splits it out of the group there);
 *  4. as 1, then x_sub again, whose nursery body now raises -EIO from
 *     the same line before anything is cancelled in it: that failure
 *     carries nothing, and S caught none (it has the same origin as the
 *     one caught: a mark left by that one would take it for itself);
 *  5. as 0, x_sub's frame in storage its caller reuses in its FINALLY
 *     while the failure is on its way: S still caught a cancellation
 *     (marks compare origins, never follow them into that storage);
 *  6. as 0 inside scope O, which x_sub's FINALLY cancels: when the
 *     failure reaches S, O's cancellation is visible from S, so S does
 *     not catch the absorbed cancellation and O does;
 *  7. as 0, x_sub's FINALLY running a nursery whose -EINVAL also carries
 *     a cancellation absorbed for S, caught there by a TRY block: the
 *     first failure still reaches S, which caught a cancellation (two
 *     marks on one scope);
 *  8. as 0 through a frame whose FINALLY calls x_sub again in the same
 *     storage, failing at once (-EIO, nothing absorbed) and caught by
 *     PTRIO_TRY: that failure has the first one's origin, yet the first,
 *     still pending, reaches S, which caught a cancellation;
 *  9. as 0 through a step written by hand that returns the status its
 *     sub-call handed it: S caught a cancellation.
 * A Trio main twin prints True, False, False, True, False, True, False
 * then True for S and O, True, True, True. */
struct raises_einval { ptrio_frame fr; };

static int raises_einval(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct raises_einval, f);
    PTRIO_RAISE(f, -PTRIO_EINVAL, "now");
    PTRIO_END(f);
}

struct x_sub {
    ptrio_frame fr;
    ptrio_scope *outer;
    ptrio_nursery n;
    ptrio_task kt;
    struct cleanup_fails k;
    int swallow, plain, nested;
    ptrio_scope *cancels;       /* cancelled in its FINALLY */
    ptrio_scope tb;             /* nested: a TRY block in its FINALLY, */
    ptrio_nursery n3;           /* around a nursery whose child fails */
    ptrio_task t3;
    struct raises_einval k3;
};

static int x_sub(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct x_sub, x);
    PTRIO_NURSERY(x, &x->n) {
        if (x->plain)
            PTRIO_RAISE(x, -PTRIO_EIO, "plain");
        PTRIO_CHECK(x, ptrio_start_soon(&x->n, &x->kt, cleanup_fails,
                                        &x->k));
        PTRIO_AWAIT(x, ptrio_sleep(x, PTRIO_MS(1)));
        ptrio_cancel(x->outer);
        PTRIO_AWAIT(x, ptrio_sleep(x, PTRIO_MS(1)));
        PTRIO_RAISE(x, -PTRIO_EIO, "plain");
    }
    PTRIO_FINALLY(x);
    if (x->cancels)
        ptrio_cancel(x->cancels);
    if (x->nested) {
        PTRIO_TRY_BLOCK(x, &x->tb) {
            PTRIO_NURSERY(x, &x->n3) {
                PTRIO_CHECK(x, ptrio_start_soon(&x->n3, &x->t3, raises_einval,
                                                &x->k3));
                PTRIO_AWAIT(x, ptrio_sleep(x, PTRIO_MS(1)));
            }
        }
    }
    if (x->swallow)
        PTRIO_RETURN(x, 0);
    PTRIO_END(x);
}

/* Calls x_sub, then again in its FINALLY, in the same storage. */
struct again {
    ptrio_frame fr;
    ptrio_scope *outer;
    struct x_sub x;
    int rc;
};

static int again(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct again, g);
    g->x = (struct x_sub){.outer = g->outer};
    PTRIO_AWAIT(g, ptrio_call(g, &g->x, x_sub));
    PTRIO_FINALLY(g);
    g->x.plain = 1;
    PTRIO_TRY(g, g->rc, ptrio_call(g, &g->x, x_sub));
    PTRIO_END(g);
}

/* A step by hand: calls x_sub, returns the status it hands back. */
struct passes_on {
    ptrio_frame fr;
    int stage;
    struct x_sub x;
};

static int passes_on(ptrio_frame *fr)
{
    struct passes_on *p = PTRIO_SELF(fr, struct passes_on);

    if (p->stage++ == 0)
        return ptrio_call(p, &p->x, x_sub);
    return fr->result;
}

/* Calls x_sub in storage that its FINALLY then reuses. */
struct reuser {
    ptrio_frame fr;
    ptrio_scope *outer;
    union {
        struct x_sub x;
        unsigned char other[sizeof(struct x_sub)];
    } u;
};

static int reuser(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct reuser, r);
    r->u.x = (struct x_sub){.outer = r->outer};
    PTRIO_AWAIT(r, ptrio_call(r, &r->u.x, x_sub));
    PTRIO_FINALLY(r);
    memset(r->u.other, 0xA5, sizeof r->u.other);
    PTRIO_END(r);
}

struct travel_main {
    ptrio_frame fr;
    int variant, rc;
    ptrio_scope u, s, o;
    ptrio_nursery n;
    ptrio_task xt;
    struct x_sub x;
    struct reuser r;
    struct again g;
    struct passes_on p;
};

static int travel_main(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct travel_main, f);
    PTRIO_TRY_BLOCK(f, &f->u) {
        if (f->variant == 3) {
            PTRIO_NURSERY(f, &f->n) {
                f->x.outer = ptrio_nursery_scope(&f->n);
                PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->xt, x_sub, &f->x));
            }
        } else if (f->variant == 5) {
            PTRIO_CANCEL_SCOPE(f, &f->s) {
                f->r.outer = &f->s;
                PTRIO_AWAIT(f, ptrio_call(f, &f->r, reuser));
            }
        } else if (f->variant == 8) {
            PTRIO_CANCEL_SCOPE(f, &f->s) {
                f->g.outer = &f->s;
                PTRIO_AWAIT(f, ptrio_call(f, &f->g, again));
            }
        } else if (f->variant == 9) {
            PTRIO_CANCEL_SCOPE(f, &f->s) {
                f->p.x.outer = &f->s;
                PTRIO_AWAIT(f, ptrio_call(f, &f->p, passes_on));
            }
        } else if (f->variant == 6) {
            PTRIO_CANCEL_SCOPE(f, &f->o) {
                PTRIO_CANCEL_SCOPE(f, &f->s) {
                    f->x.outer = &f->s;
                    f->x.cancels = &f->o;
                    PTRIO_AWAIT(f, ptrio_call(f, &f->x, x_sub));
                }
            }
        } else {
            PTRIO_CANCEL_SCOPE(f, &f->s) {
                f->x.outer = &f->s;
                f->x.swallow = f->variant == 2;
                f->x.nested = f->variant == 7;
                if (f->variant == 0 || f->variant == 7)
                    PTRIO_AWAIT(f, ptrio_call(f, &f->x, x_sub));
                else
                    PTRIO_TRY(f, f->rc, ptrio_call(f, &f->x, x_sub));
                if (f->variant == 4) {
                    f->x.plain = 1;
                    PTRIO_AWAIT(f, ptrio_call(f, &f->x, x_sub));
                }
                PTRIO_RAISE(f, -PTRIO_EINVAL, "unrelated");
            }
        }
    }
    PTRIO_END(f);
}

START_TEST(test_absorbed_travels_with_its_failure)
{
    static struct travel_main m;
    const ptrio_scope *caught;

    memset(&m, 0, sizeof m);
    m.variant = _i;
    ck_assert_int_eq(run_virtual(travel_main, &m, NULL), 0);
    caught = _i == 3 ? ptrio_nursery_scope(&m.n) : &m.s;
    ck_assert(ptrio_cancel_called(caught));
    ck_assert_int_eq(ptrio_cancelled_caught(caught),
                     _i == 0 || _i == 3 || _i == 5 || _i >= 7);
    ck_assert_int_eq(ptrio_cancelled_caught(&m.o), _i == 6);
    ck_assert_int_eq(ptrio_scope_error(&m.u),
                     _i == 1 || _i == 2 ? -PTRIO_EINVAL : -PTRIO_EIO);
    ck_assert_int_eq(m.rc, _i == 1 || _i == 4 ? -PTRIO_EIO : 0);
}
END_TEST

/* The -ECANCELEDs are absorbed by the outer scope (Trio splits them out
 * of the group there, so it caught a cancellation); the real error passes
 * through it unchanged. */
/* Trio test_run.py: test_cancel_scope_exceptiongroup_filtering */
START_TEST(test_error_passes_cancelled_scope)
{
    static struct filter_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(filter_main, &m, NULL), 0);
    ck_assert_int_eq(ptrio_scope_error(&m.tb), -PTRIO_EIO);
    ck_assert_int_eq(m.frc, 0);
    ck_assert_str_eq(m.fail.task, "c");
    ck_assert(ptrio_cancel_called(&m.outer));
    ck_assert(ptrio_cancelled_caught(&m.outer));
    ck_assert(ptrio_cancel_called(ptrio_nursery_scope(&m.n)));
    ck_assert(!ptrio_cancelled_caught(ptrio_nursery_scope(&m.n)));
    ck_assert_str_eq(L.buf, "t1+@0 t1!PTRIO_ECANCELED@0 t2+@0 t2!PTRIO_ECANCELED@0 "
                            "t3+@0 t3!PTRIO_ECANCELED@0 c:raise@0 after@0");
}
END_TEST

/* ---- records and names ---------------------------------------------- */

struct misuse_main {
    CATCHER_FIELDS;
    struct err_sub sub;
    int wrong, positive;
};

static int misuse_main(ptrio_frame *fr)
{
    struct misuse_main *f = PTRIO_SELF(fr, struct misuse_main);
    PTRIO_BEGIN(f);
    PTRIO_TRY(f, f->rc, ptrio_call(f, &f->sub, err_sub));
    f->wrong = ptrio_failure_last(-PTRIO_EPIPE, &f->fail);
    f->positive = ptrio_failure_last(5, &f->fail);
    f->frc = ptrio_failure_last(f->rc, &f->fail);
    PTRIO_END(f);
}

/* ptrio_failure_last: -PTRIO_EINVAL for a code that is not the last
 * error, -PTRIO_ENOTASK outside a task. */
START_TEST(test_failure_last_errors)
{
    static struct misuse_main m;
    ptrio_failure f;
    ck_assert_int_eq(ptrio_failure_last(-PTRIO_EIO, &f), -PTRIO_ENOTASK);
    ck_assert_int_eq(run_virtual(misuse_main, &m, NULL), 0);
    ck_assert_int_eq(m.rc, -PTRIO_EIO);
    ck_assert_int_eq(m.wrong, -PTRIO_EINVAL);
    ck_assert_int_eq(m.positive, -PTRIO_EINVAL);
    ck_assert_int_eq(m.frc, 0);
    ck_assert_str_eq(m.fail.task, "erroring");
}
END_TEST

/* A code below -32767 (a task keeps 16 bits of the code its record
 * belongs to): its record is found by that code, never by a small code
 * with the same low 16 bits (-70000 + 65536 = -4464), which is a code of
 * its own that was not raised. */
struct raises_big { ptrio_frame fr; };

struct big_code {
    ptrio_frame fr;
    struct raises_big sub;
    int rc[3];
    ptrio_failure f;
};

static int raises_big(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct raises_big, f);
    PTRIO_RAISE(f, -70000, "big");
    PTRIO_END(f);
}

static int big_code_main(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct big_code, f);
    PTRIO_TRY(f, f->rc[0], ptrio_call(f, &f->sub, raises_big));
    f->rc[1] = ptrio_failure_last(-4464, &f->f);
    f->rc[2] = ptrio_failure_last(-70000, &f->f);
    PTRIO_END(f);
}

START_TEST(test_failure_last_big_code)
{
    static struct big_code m;
    memset(&m, 0, sizeof m);
    ck_assert_int_eq(run_virtual(big_code_main, &m, NULL), 0);
    ck_assert_int_eq(m.rc[0], -70000);
    ck_assert_int_eq(m.rc[1], -PTRIO_EINVAL);
    ck_assert_int_eq(m.rc[2], 0);
    ck_assert_str_eq(m.f.msg, "big");
}
END_TEST

/* A step function written without the macros: it fails with a plain
 * C return. */
static int plain_fail(ptrio_frame *fr)
{
    (void)fr;
    return -PTRIO_EIO;
}

struct plain_sub {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    ptrio_frame k;
};

static int plain_sub(ptrio_frame *fr)
{
    struct plain_sub *f = PTRIO_SELF(fr, struct plain_sub);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, plain_fail, &f->k));
    }
    PTRIO_END(f);
}

struct plain_main {
    CATCHER_FIELDS;
    struct plain_sub sub;
};

static int plain_main(ptrio_frame *fr)
{
    struct plain_main *f = PTRIO_SELF(fr, struct plain_main);
    PTRIO_BEGIN(f);
    PTRIO_TRY(f, f->rc, ptrio_call(f, &f->sub, plain_sub));
    f->frc = ptrio_failure_last(f->rc, &f->fail);
    PTRIO_END(f);
}

/* A failure without a raise site still has a record: code and task. */
START_TEST(test_plain_step_failure)
{
    static struct plain_main m;
    ck_assert_int_eq(run_virtual(plain_main, &m, NULL), 0);
    ck_assert_int_eq(m.rc, -PTRIO_EIO);
    ck_assert_int_eq(m.frc, 0);
    ck_assert_int_eq(m.fail.code, -PTRIO_EIO);
    ck_assert_str_eq(m.fail.task, "plain_fail");
    ck_assert_ptr_null(m.fail.msg);
    ck_assert_ptr_eq(m.fail.via, &m.sub.n);
}
END_TEST

struct mid {
    ptrio_frame fr;
    struct err_sub sub;
};

static int mid(ptrio_frame *fr)
{
    struct mid *f = PTRIO_SELF(fr, struct mid);
    PTRIO_BEGIN(f);
    PTRIO_CALL(f, err_sub, &f->sub);
    ev("mid", "-not-reached");
    PTRIO_FINALLY(f);
    ev_err("mid-finally", PTRIO_FINALLY_ERROR(f));
    PTRIO_END(f);
}

struct chain_main {
    CATCHER_FIELDS;
    struct mid m;
};

static int chain_main(ptrio_frame *fr)
{
    struct chain_main *f = PTRIO_SELF(fr, struct chain_main);
    PTRIO_BEGIN(f);
    PTRIO_TRY(f, f->rc, ptrio_call(f, &f->m, mid));
    f->frc = ptrio_failure_last(f->rc, &f->fail);
    PTRIO_END(f);
}

/* A failure goes up a chain of calls, running each FINALLY, and keeps
 * its record. */
START_TEST(test_failure_through_call_chain)
{
    static struct chain_main m;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(chain_main, &m, NULL), 0);
    ck_assert_int_eq(m.rc, -PTRIO_EIO);
    ck_assert_int_eq(m.frc, 0);
    ck_assert_str_eq(m.fail.task, "erroring");
    ck_assert_str_eq(m.fail.msg, "uh oh");
    ck_assert_int_eq(m.fail.line, erroring_line);
    ck_assert_ptr_eq(m.fail.via, &m.m.sub.n);
    ck_assert_str_eq(L.buf, "mid-finally!EIO@0");
}
END_TEST

/* Error names and descriptions. */
START_TEST(test_errnames)
{
    ck_assert_str_eq(ptrio_errname(-PTRIO_EIO), "EIO");
    ck_assert_str_eq(ptrio_errname(PTRIO_EIO), "EIO");
    ck_assert_str_eq(ptrio_errname(-PTRIO_ETIMEDOUT), "ETIMEDOUT");
    ck_assert_str_eq(ptrio_errname(-PTRIO_ECANCELED), "PTRIO_ECANCELED");
    ck_assert_str_eq(ptrio_errname(-PTRIO_EGROUP), "PTRIO_EGROUP");
    ck_assert_str_eq(ptrio_errname(-PTRIO_ECLOSED), "PTRIO_ECLOSED");
    ck_assert_str_eq(ptrio_errname(-PTRIO_ENOSTART), "PTRIO_ENOSTART");
    ck_assert_str_eq(ptrio_errname(-PTRIO_EMISUSE), "PTRIO_EMISUSE");
    ck_assert_str_eq(ptrio_errname(-8888), "E?");
    ck_assert_str_eq(ptrio_strerror(-PTRIO_ETIMEDOUT),
                     PTRIO_CONF_ERROR_TEXT ? "timed out" : "ETIMEDOUT");
    ck_assert_ptr_nonnull(ptrio_strerror(-8888));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("failure");
    TCase *tc = tcase_create("failure");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_child_crash_basic);
    tcase_add_test(tc, test_deep_failure_keeps_its_site);
    tcase_add_test(tc, test_failure_last_is_the_last);
    tcase_add_test(tc, test_absorbed_caught_on_the_way);
    tcase_add_loop_test(tc, test_absorbed_travels_with_its_failure, 0, 10);
    tcase_add_test(tc, test_body_error_basic);
    tcase_add_test(tc, test_task_crash_propagation);
    tcase_add_test(tc, test_crash_cancels_siblings_and_body);
    tcase_add_test(tc, test_child_crash_wakes_parent);
    tcase_add_test(tc, test_two_child_crashes);
    tcase_add_test(tc, test_failure_after_cancel);
    tcase_add_test(tc, test_main_and_task_both_crash);
    tcase_add_test(tc, test_body_raises_then_child);
    tcase_add_test(tc, test_nested_groups);
    tcase_add_test(tc, test_cancel_scope_no_cancellederror);
    tcase_add_test(tc, test_nursery_collapse);
    tcase_add_test(tc, test_single_failure_through_nested);
    tcase_add_test(tc, test_report_single);
    tcase_add_test(tc, test_report_cancelled_not_reported);
    tcase_add_test(tc, test_report_group);
    tcase_add_test(tc, test_report_nested_group);
    tcase_add_test(tc, test_report_through_nested);
    tcase_add_test(tc, test_report_root_failure);
    tcase_add_test(tc, test_report_nothing_on_success);
    tcase_add_test(tc, test_try_block_catches_child_failure);
    tcase_add_test(tc, test_try_block_passes_cancel);
    tcase_add_test(tc, test_finally_runs_in_cancelled_children);
    tcase_add_test(tc, test_failure_waits_for_shielded_body);
    tcase_add_test(tc, test_error_passes_cancelled_scope);
    tcase_add_test(tc, test_failure_last_errors);
    tcase_add_test(tc, test_failure_last_big_code);
    tcase_add_loop_test(tc, test_dropped_failure_record_not_reused, 0, 2);
    tcase_add_test(tc, test_plain_step_failure);
    tcase_add_test(tc, test_failure_through_call_chain);
    tcase_add_test(tc, test_errnames);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
