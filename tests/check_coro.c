/* tests/check_coro.c: the coroutine macros. Resume points across many
 * awaits and in loops, nested calls and results, RETURN, FINALLY, TRY,
 * RAISE, CHECK, frame reuse and YIELD. Portable: no POSIX calls; every
 * test runs on the virtual clock. */
#include <stdlib.h>

#include "testutil.h"

/* ---- helpers: small coroutines ------------------------------------ */

/* Returns its `v` without suspending. */
struct value { ptrio_frame fr; int v; };

static int value_now(ptrio_frame *fr)
{
    struct value *f = PTRIO_SELF(fr, struct value);
    PTRIO_BEGIN(f);
    PTRIO_RETURN(f, f->v);
    PTRIO_END(f);
}

/* Returns its `v` after a checkpoint. */
static int value_later(ptrio_frame *fr)
{
    struct value *f = PTRIO_SELF(fr, struct value);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_checkpoint(f));
    PTRIO_RETURN(f, f->v);
    PTRIO_END(f);
}

/* Raises `v` (negative) after a checkpoint. */
static int fail_later(ptrio_frame *fr)
{
    struct value *f = PTRIO_SELF(fr, struct value);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_checkpoint(f));
    PTRIO_RAISE(f, f->v, "fail_later");
    PTRIO_END(f);
}

/* Raises `v` (negative) without suspending. */
static int fail_now(ptrio_frame *fr)
{
    struct value *f = PTRIO_SELF(fr, struct value);
    PTRIO_BEGIN(f);
    PTRIO_RAISE(f, f->v, "fail_now");
    PTRIO_END(f);
}

/* ---- resume points ------------------------------------------------ */

struct fifty {
    ptrio_frame fr;
    int n, bad, entries;
    struct value sub;
};

/* One of five kinds of await, by k % 5. */
static int fifty_await(struct fifty *f, int k)
{
    switch (k % 5) {
    case 0:
        return ptrio_checkpoint(f);
    case 1:
        return ptrio_yield(f);
    case 2:
        return ptrio_sleep(f, 0);
    case 3:
        return ptrio_sleep(f, PTRIO_MS(1));
    default:
        f->sub.v = 1000 + k;
        return ptrio_call(f, &f->sub, value_now);
    }
}

static void fifty_check(struct fifty *f, int k)
{
    int want = k % 5 == 4 ? 1000 + k : 0;
    if (f->n != k || PTRIO_RESULT(f) != want)
        f->bad++;
    f->n++;
}

#define FIFTY(f, k)                                                         \
    PTRIO_AWAIT(f, fifty_await(f, k));                                      \
    fifty_check(f, k)

static int fifty(ptrio_frame *fr)
{
    struct fifty *f = PTRIO_SELF(fr, struct fifty);
    f->entries++;
    PTRIO_BEGIN(f);
    FIFTY(f, 0);
    FIFTY(f, 1);
    FIFTY(f, 2);
    FIFTY(f, 3);
    FIFTY(f, 4);
    FIFTY(f, 5);
    FIFTY(f, 6);
    FIFTY(f, 7);
    FIFTY(f, 8);
    FIFTY(f, 9);
    FIFTY(f, 10);
    FIFTY(f, 11);
    FIFTY(f, 12);
    FIFTY(f, 13);
    FIFTY(f, 14);
    FIFTY(f, 15);
    FIFTY(f, 16);
    FIFTY(f, 17);
    FIFTY(f, 18);
    FIFTY(f, 19);
    FIFTY(f, 20);
    FIFTY(f, 21);
    FIFTY(f, 22);
    FIFTY(f, 23);
    FIFTY(f, 24);
    FIFTY(f, 25);
    FIFTY(f, 26);
    FIFTY(f, 27);
    FIFTY(f, 28);
    FIFTY(f, 29);
    FIFTY(f, 30);
    FIFTY(f, 31);
    FIFTY(f, 32);
    FIFTY(f, 33);
    FIFTY(f, 34);
    FIFTY(f, 35);
    FIFTY(f, 36);
    FIFTY(f, 37);
    FIFTY(f, 38);
    FIFTY(f, 39);
    FIFTY(f, 40);
    FIFTY(f, 41);
    FIFTY(f, 42);
    FIFTY(f, 43);
    FIFTY(f, 44);
    FIFTY(f, 45);
    FIFTY(f, 46);
    FIFTY(f, 47);
    FIFTY(f, 48);
    FIFTY(f, 49);
    tlog_at(&L, "done");
    PTRIO_RETURN(f, f->n);
    PTRIO_END(f);
}

/* 50 sequential awaits of five kinds: each resumes at the right point with
 * the frame's counter intact; the 40 that suspend re-enter the step once
 * each; the ten 1 ms sleeps make 10 ms. */
START_TEST(test_fifty_sequential_awaits)
{
    static struct fifty f;
    f = (struct fifty){0};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(fifty, &f, NULL), 50);
    ck_assert_int_eq(f.n, 50);
    ck_assert_int_eq(f.bad, 0);
    ck_assert_int_eq(f.entries, 41);
    ck_assert_str_eq(L.buf, "done@10");
    ck_assert(ptrio_frame_idle(&f.fr));
}
END_TEST

/* Returns 0 + 1 + ... + (v - 1), one checkpoint per term. */
struct sumto { ptrio_frame fr; int v, i, sum; };

static int sumto(ptrio_frame *fr)
{
    struct sumto *f = PTRIO_SELF(fr, struct sumto);
    PTRIO_BEGIN(f);
    f->sum = 0;
    for (f->i = 0; f->i < f->v; f->i++) {
        PTRIO_AWAIT(f, ptrio_checkpoint(f));
        f->sum += f->i;
    }
    PTRIO_RETURN(f, f->sum);
    PTRIO_END(f);
}

struct loops {
    ptrio_frame fr;
    int i, j, k, sum, awaits, calls;
    struct sumto sub;
};

static int loops(ptrio_frame *fr)
{
    struct loops *f = PTRIO_SELF(fr, struct loops);
    PTRIO_BEGIN(f);
    /* nested for loops, an await at each level */
    for (f->i = 0; f->i < 10; f->i++) {
        PTRIO_AWAIT(f, ptrio_checkpoint(f));
        f->awaits++;
        for (f->j = 0; f->j < f->i; f->j++) {
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
            f->awaits++;
            f->sum += f->j;
        }
    }
    logn_at(&L, "for", f->sum);
    /* while loop */
    f->k = 0;
    while (f->k < 7) {
        PTRIO_AWAIT(f, ptrio_yield(f));
        f->k++;
    }
    logn(&L, "while", f->k);
    /* do-while loop, the await in the condition's body */
    f->k = 0;
    do {
        PTRIO_AWAIT(f, ptrio_sleep(f, 0));
        f->k += 2;
    } while (f->k < 9);
    logn(&L, "do", f->k);
    /* a loop of calls, each looping with awaits of its own */
    f->sum = 0;
    for (f->i = 0; f->i <= 12; f->i++) {
        f->sub = (struct sumto){.v = f->i};
        PTRIO_CALL(f, sumto, &f->sub);
        f->calls++;
        f->sum += PTRIO_RESULT(f);
    }
    logn(&L, "calls", f->sum);
    PTRIO_END(f);
}

/* Awaits inside for, while and do-while loops, and calls in a loop. */
START_TEST(test_awaits_in_loops)
{
    static struct loops f;
    f = (struct loops){0};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(loops, &f, NULL), 0);
    /* sum over i<10 of (0 + ... + i-1) = 120; 45 sleeps of 1 ms */
    /* sum over v<=12 of v(v-1)/2 = 286 */
    ck_assert_str_eq(L.buf, "for120@45 while7 do10 calls286");
    ck_assert_int_eq(f.awaits, 10 + 45);
    ck_assert_int_eq(f.calls, 13);
}
END_TEST

/* Three tasks run the same step function over their own frames: each
 * keeps its own state through the interleaving. */
struct counter { ptrio_frame fr; int id, n, i, acc; };

static int counter(ptrio_frame *fr)
{
    struct counter *f = PTRIO_SELF(fr, struct counter);
    PTRIO_BEGIN(f);
    for (f->i = 0; f->i < f->n; f->i++) {
        f->acc += f->id * 100 + f->i;
        PTRIO_AWAIT(f, ptrio_checkpoint(f));
    }
    logn(&L, "c", f->id);
    PTRIO_RETURN(f, f->acc);
    PTRIO_END(f);
}

struct frames_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[3];
    struct counter c[3];
    int i;
};

static int frames_main(ptrio_frame *fr)
{
    struct frames_main *f = PTRIO_SELF(fr, struct frames_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        for (f->i = 0; f->i < 3; f->i++) {
            f->c[f->i] = (struct counter){.id = f->i + 1, .n = 3 - f->i};
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[f->i], counter,
                                            &f->c[f->i]));
        }
    }
    PTRIO_END(f);
}

START_TEST(test_frames_are_independent)
{
    static struct frames_main f;
    f = (struct frames_main){0};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(frames_main, &f, NULL), 0);
    ck_assert_str_eq(L.buf, "c3 c2 c1");
    ck_assert_int_eq(f.c[0].acc, 100 + 101 + 102);
    ck_assert_int_eq(f.c[1].acc, 200 + 201);
    ck_assert_int_eq(f.c[2].acc, 300);
}
END_TEST

/* ---- nested calls --------------------------------------------------- */

#define DEPTH 32

/* Level idx calls level idx+1; the deepest suspends, then returns 1;
 * every level returns its child's value + 1. */
struct lvl { ptrio_frame fr; int idx; };
static struct lvl lv[DEPTH + 1];
static int lv_bad;

static int level(ptrio_frame *fr)
{
    struct lvl *f = PTRIO_SELF(fr, struct lvl);
    PTRIO_BEGIN(f);
    if (f->idx == DEPTH) {
        PTRIO_AWAIT(f, ptrio_checkpoint(f));
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(3)));
        PTRIO_RETURN(f, 1);
    }
    lv[f->idx + 1].idx = f->idx + 1;
    PTRIO_CALL(f, level, &lv[f->idx + 1]);
    if (PTRIO_RESULT(f) != DEPTH - f->idx)
        lv_bad++;
    PTRIO_RETURN(f, PTRIO_RESULT(f) + 1);
    PTRIO_END(f);
}

struct nest_root { ptrio_frame fr; int got, again; };

static int nest_root(ptrio_frame *fr)
{
    struct nest_root *f = PTRIO_SELF(fr, struct nest_root);
    PTRIO_BEGIN(f);
    lv[1].idx = 1;
    PTRIO_CALL(f, level, &lv[1]);
    f->got = PTRIO_RESULT(f);
    tlog_at(&L, "root");
    /* the same 32 frames, reused now that they finished */
    PTRIO_AWAIT(f, ptrio_call(f, &lv[1], level));
    f->again = PTRIO_RESULT(f);
    tlog_at(&L, "again");
    PTRIO_RETURN(f, f->got);
    PTRIO_END(f);
}

START_TEST(test_nested_calls_32_deep)
{
    static struct nest_root f;
    int i;
    f = (struct nest_root){0};
    memset(lv, 0, sizeof lv);
    lv_bad = 0;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(nest_root, &f, NULL), DEPTH);
    ck_assert_int_eq(f.got, DEPTH);
    ck_assert_int_eq(f.again, DEPTH);
    ck_assert_int_eq(lv_bad, 0);
    ck_assert_str_eq(L.buf, "root@3 again@6");
    for (i = 1; i <= DEPTH; i++)
        ck_assert(ptrio_frame_idle(&lv[i].fr));
}
END_TEST

/* The deepest level raises; every level's FINALLY runs, innermost first,
 * sees the error, and the error goes on to the root's TRY. Every eighth
 * level sleeps 1 ms inside its FINALLY. */
struct elvl { ptrio_frame fr; int idx; };
static struct elvl ev[DEPTH + 1];
static int ev_raise_line, ev_bad;

static int elevel(ptrio_frame *fr)
{
    struct elvl *f = PTRIO_SELF(fr, struct elvl);
    PTRIO_BEGIN(f);
    if (f->idx == DEPTH) {
        PTRIO_AWAIT(f, ptrio_checkpoint(f));
        ev_raise_line = __LINE__; PTRIO_RAISE(f, -PTRIO_EIO, "deep");
        logn(&L, "unreached", f->idx);
    }
    ev[f->idx + 1].idx = f->idx + 1;
    PTRIO_CALL(f, elevel, &ev[f->idx + 1]);
    logn(&L, "after", f->idx);
    PTRIO_FINALLY(f);
    if (f->idx % 8 == 0)
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
    if (PTRIO_FINALLY_ERROR(f) != -PTRIO_EIO)
        ev_bad++;
    logn_at(&L, "F", f->idx);
    PTRIO_END(f);
}

struct eroot {
    ptrio_frame fr;
    int rc, frc;
    ptrio_failure fail;
};

static int eroot(ptrio_frame *fr)
{
    struct eroot *f = PTRIO_SELF(fr, struct eroot);
    PTRIO_BEGIN(f);
    ev[1].idx = 1;
    PTRIO_TRY(f, f->rc, ptrio_call(f, &ev[1], elevel));
    f->frc = ptrio_failure_last(f->rc, &f->fail);
    tlog_at(&L, "caught");
    PTRIO_END(f);
}

START_TEST(test_error_through_32_finally)
{
    static struct eroot f;
    static tlog want;
    treport rep;
    int i;

    f = (struct eroot){0};
    memset(ev, 0, sizeof ev);
    ev_bad = 0;
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(eroot, &f, &rep), 0);
    ck_assert_int_eq(rep.count, 0);
    ck_assert_int_eq(f.rc, -PTRIO_EIO);
    ck_assert_int_eq(ev_bad, 0);

    /* F32@1 F31@1 ... F25@1 F24@2 ... F17@2 F16@3 ... F8@4 ... F1@4 */
    tlog_clear(&want);
    for (i = DEPTH; i >= 1; i--) {
        char b[64];
        fmt(fmt(b, "F", i), "@", (DEPTH - i) / 8 + 1);
        tlog_add(&want, b);
    }
    tlog_add(&want, "caught@4");
    ck_assert_str_eq(L.buf, want.buf);

    ck_assert_int_eq(f.frc, 0);
    ck_assert_int_eq(f.fail.code, -PTRIO_EIO);
    ck_assert_ptr_nonnull(f.fail.msg);
    ck_assert_str_eq(f.fail.msg, "deep");
    ck_assert_ptr_nonnull(f.fail.file);
    ck_assert_str_eq(f.fail.file, __FILE__);
    ck_assert_int_eq(f.fail.line, ev_raise_line);
    ck_assert_ptr_nonnull(f.fail.task);
    ck_assert_str_eq(f.fail.task, "eroot");
    for (i = 1; i <= DEPTH; i++)
        ck_assert(ptrio_frame_idle(&ev[i].fr));
}
END_TEST

/* ---- RETURN ---------------------------------------------------------- */

struct ret { ptrio_frame fr; int i; };

static int ret_seven(ptrio_frame *fr)
{
    struct ret *f = PTRIO_SELF(fr, struct ret);
    PTRIO_BEGIN(f);
    tlog_add(&L, "a");
    PTRIO_AWAIT(f, ptrio_checkpoint(f));
    tlog_add(&L, "b");
    PTRIO_RETURN(f, 7);
    tlog_add(&L, "unreached");
    PTRIO_AWAIT(f, ptrio_checkpoint(f));
    tlog_add(&L, "unreached2");
    PTRIO_FINALLY(f);
    tlog_add(&L, PTRIO_FINALLY_ERROR(f) == 0 ? "fin" : "fin-err");
    PTRIO_END(f);
}

/* Returns from inside a loop, after five awaits. */
static int ret_in_loop(ptrio_frame *fr)
{
    struct ret *f = PTRIO_SELF(fr, struct ret);
    PTRIO_BEGIN(f);
    for (f->i = 0;; f->i++) {
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(2)));
        if (f->i == 4)
            PTRIO_RETURN(f, 100 + f->i);
    }
    PTRIO_END(f);
}

struct ret_main {
    ptrio_frame fr;
    struct ret sub;
    int a, b;
};

static int ret_main(ptrio_frame *fr)
{
    struct ret_main *f = PTRIO_SELF(fr, struct ret_main);
    PTRIO_BEGIN(f);
    PTRIO_CALL(f, ret_seven, &f->sub);
    f->a = PTRIO_RESULT(f);
    tlog_add(&L, "caller");
    f->sub = (struct ret){0};
    PTRIO_CALL(f, ret_in_loop, &f->sub);
    f->b = PTRIO_RESULT(f);
    tlog_at(&L, "loop");
    PTRIO_RETURN(f, f->a + f->b);
    PTRIO_END(f);
}

/* PTRIO_RETURN's value is the await's status and the task's status; the
 * rest of the body is skipped; FINALLY runs with no error. */
START_TEST(test_return_value_and_skip)
{
    static struct ret_main f;
    f = (struct ret_main){0};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(ret_main, &f, NULL), 7 + 104);
    ck_assert_int_eq(f.a, 7);
    ck_assert_int_eq(f.b, 104);
    ck_assert_int_eq(f.sub.i, 4);
    ck_assert_str_eq(L.buf, "a b fin caller loop@10");
}
END_TEST

/* PTRIO_RETURN with a negative value raises it. */
static int ret_negative(ptrio_frame *fr)
{
    struct ret *f = PTRIO_SELF(fr, struct ret);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_checkpoint(f));
    PTRIO_RETURN(f, -PTRIO_ERANGE);
    tlog_add(&L, "unreached");
    PTRIO_FINALLY(f);
    logn(&L, "fin", PTRIO_FINALLY_ERROR(f));
    PTRIO_END(f);
}

struct retneg_main { ptrio_frame fr; struct ret sub; int rc; };

static int retneg_main(ptrio_frame *fr)
{
    struct retneg_main *f = PTRIO_SELF(fr, struct retneg_main);
    PTRIO_BEGIN(f);
    PTRIO_TRY(f, f->rc, ptrio_call(f, &f->sub, ret_negative));
    logn(&L, "rc", f->rc);
    PTRIO_END(f);
}

START_TEST(test_return_negative_raises)
{
    static struct retneg_main f;
    f = (struct retneg_main){0};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(retneg_main, &f, NULL), 0);
    ck_assert_int_eq(f.rc, -PTRIO_ERANGE);
    ck_assert_str_eq(L.buf, "fin-34 rc-34");
}
END_TEST

/* PTRIO_RETURN inside a nursery block: the block still joins its children
 * (a child sleeping 1 s), then the value comes out after FINALLY. */
struct sleeper { ptrio_frame fr; ptrio_time d; const char *name; };

static int sleeper(ptrio_frame *fr)
{
    struct sleeper *f = PTRIO_SELF(fr, struct sleeper);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_sleep(f, f->d));
    tlog_at(&L, f->name);
    PTRIO_END(f);
}

struct ret_nursery {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct sleeper s;
    int with_child;
};

static int ret_nursery(ptrio_frame *fr)
{
    struct ret_nursery *f = PTRIO_SELF(fr, struct ret_nursery);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        if (f->with_child) {
            f->s = (struct sleeper){.d = PTRIO_SEC(1), .name = "child"};
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, sleeper, &f->s));
        }
        PTRIO_RETURN(f, 9);
        tlog_add(&L, "unreached");
    }
    tlog_add(&L, "unreached2");
    PTRIO_FINALLY(f);
    tlog_at(&L, PTRIO_FINALLY_ERROR(f) == 0 ? "fin" : "fin-err");
    PTRIO_END(f);
}

START_TEST(test_return_inside_nursery)
{
    static struct ret_nursery f;
    f = (struct ret_nursery){.with_child = 1};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(ret_nursery, &f, NULL), 9);
    ck_assert_str_eq(L.buf, "child@1000 fin@1000");

    /* no children: the block's end is still a checkpoint, and must not
     * lose the value */
    f = (struct ret_nursery){.with_child = 0};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(ret_nursery, &f, NULL), 9);
    ck_assert_str_eq(L.buf, "fin@0");
}
END_TEST

/* PTRIO_RETURN inside a cancel scope block and a TRY_BLOCK. */
struct ret_scope { ptrio_frame fr; ptrio_scope sc, tb; };

static int ret_scope(ptrio_frame *fr)
{
    struct ret_scope *f = PTRIO_SELF(fr, struct ret_scope);
    PTRIO_BEGIN(f);
    PTRIO_TRY_BLOCK(f, &f->tb) {
        PTRIO_CANCEL_SCOPE(f, &f->sc) {
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(5)));
            PTRIO_RETURN(f, 21);
            tlog_add(&L, "unreached");
        }
        tlog_add(&L, "unreached2");
    }
    tlog_add(&L, "unreached3");
    PTRIO_FINALLY(f);
    tlog_at(&L, "fin");
    PTRIO_END(f);
}

START_TEST(test_return_inside_scopes)
{
    static struct ret_scope f;
    f = (struct ret_scope){0};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(ret_scope, &f, NULL), 21);
    ck_assert_str_eq(L.buf, "fin@5");
    ck_assert_int_eq(ptrio_scope_error(&f.tb), 0);
}
END_TEST

/* ---- FINALLY ------------------------------------------------------- */

struct fin { ptrio_frame fr; int mode, err; struct value v; };

/* mode 0: ends normally; 1: returns 5; 2: an await fails with -EIO;
 * 3: PTRIO_RAISE(-EPIPE); 4: a sub-call fails with -ECONNRESET. */
static int fin_body(ptrio_frame *fr)
{
    struct fin *f = PTRIO_SELF(fr, struct fin);
    PTRIO_BEGIN(f);
    tlog_add(&L, "body");
    PTRIO_AWAIT(f, ptrio_checkpoint(f));
    if (f->mode == 1)
        PTRIO_RETURN(f, 5);
    if (f->mode == 2)
        PTRIO_AWAIT(f, -PTRIO_EIO);
    if (f->mode == 3)
        PTRIO_RAISE(f, -PTRIO_EPIPE, "pipe");
    if (f->mode == 4) {
        f->v = (struct value){.v = -PTRIO_ECONNRESET};
        PTRIO_CALL(f, fail_later, &f->v);
    }
    tlog_add(&L, "rest");
    PTRIO_FINALLY(f);
    f->err = PTRIO_FINALLY_ERROR(f);
    tlog_add(&L, "fin");
    PTRIO_END(f);
}

struct fin_main { ptrio_frame fr; struct fin sub; int rc; };

static int fin_main(ptrio_frame *fr)
{
    struct fin_main *f = PTRIO_SELF(fr, struct fin_main);
    PTRIO_BEGIN(f);
    PTRIO_TRY(f, f->rc, ptrio_call(f, &f->sub, fin_body));
    logn(&L, "rc", f->rc);
    PTRIO_END(f);
}

START_TEST(test_finally_every_exit)
{
    static struct fin_main f;
    static const struct {
        int rc;
        const char *log;
    } want[] = {
        {0, "body rest fin rc0"},
        {5, "body fin rc5"},
        {-PTRIO_EIO, "body fin rc-5"},
        {-PTRIO_EPIPE, "body fin rc-32"},
        {-PTRIO_ECONNRESET, "body fin rc-104"},
    };
    int mode;

    for (mode = 0; mode < 5; mode++) {
        f = (struct fin_main){.sub = {.mode = mode}};
        tlog_clear(&L);
        ck_assert_int_eq(run_virtual(fin_main, &f, NULL), 0);
        ck_assert_int_eq(f.rc, want[mode].rc);
        ck_assert_int_eq(f.sub.err, want[mode].rc < 0 ? want[mode].rc : 0);
        ck_assert_str_eq(L.buf, want[mode].log);
    }
}
END_TEST

/* An error that nobody catches: the root's FINALLY runs, the run returns
 * the code and reports it. */
static int fin_root_fails(ptrio_frame *fr)
{
    struct fin *f = PTRIO_SELF(fr, struct fin);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(4)));
    PTRIO_RAISE(f, -PTRIO_ENOENT, "gone");
    tlog_add(&L, "unreached");
    PTRIO_FINALLY(f);
    f->err = PTRIO_FINALLY_ERROR(f);
    tlog_at(&L, "fin");
    PTRIO_END(f);
}

START_TEST(test_finally_in_root)
{
    static struct fin f;
    treport rep;
    f = (struct fin){0};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(fin_root_fails, &f, &rep), -PTRIO_ENOENT);
    ck_assert_int_eq(f.err, -PTRIO_ENOENT);
    ck_assert_str_eq(L.buf, "fin@4");
    ck_assert_int_eq(rep.count, 1);
    ck_assert_ptr_nonnull(strstr(rep.lines.buf, "gone"));
    ck_assert_ptr_nonnull(strstr(rep.lines.buf, "ENOENT"));
}
END_TEST

/* Awaits inside FINALLY (a sleep and a call) while an error propagates:
 * the error still reaches the caller afterwards, 5 ms later. */
struct fin_await { ptrio_frame fr; struct value v; int err, got; };

static int fin_await(ptrio_frame *fr)
{
    struct fin_await *f = PTRIO_SELF(fr, struct fin_await);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_checkpoint(f));
    PTRIO_RAISE(f, -PTRIO_EIO, "body");
    PTRIO_FINALLY(f);
    tlog_at(&L, "fin");
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(5)));
    f->v = (struct value){.v = 33};
    PTRIO_CALL(f, value_later, &f->v);
    f->got = PTRIO_RESULT(f);
    f->err = PTRIO_FINALLY_ERROR(f);
    tlog_at(&L, "fin-end");
    PTRIO_END(f);
}

struct fin_await_main { ptrio_frame fr; struct fin_await sub; int rc; };

static int fin_await_main(ptrio_frame *fr)
{
    struct fin_await_main *f = PTRIO_SELF(fr, struct fin_await_main);
    PTRIO_BEGIN(f);
    PTRIO_TRY(f, f->rc, ptrio_call(f, &f->sub, fin_await));
    tlog_at(&L, "caller");
    PTRIO_END(f);
}

START_TEST(test_finally_with_awaits)
{
    static struct fin_await_main f;
    f = (struct fin_await_main){0};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(fin_await_main, &f, NULL), 0);
    ck_assert_int_eq(f.rc, -PTRIO_EIO);
    ck_assert_int_eq(f.sub.got, 33);
    ck_assert_int_eq(f.sub.err, -PTRIO_EIO);
    ck_assert_str_eq(L.buf, "fin@0 fin-end@5 caller@5");
}
END_TEST

/* A raise inside FINALLY replaces the error that was propagating (as in
 * Python), and fails a frame that had ended normally. */
struct fin_raise { ptrio_frame fr; int body_fails; };

static int fin_raise(ptrio_frame *fr)
{
    struct fin_raise *f = PTRIO_SELF(fr, struct fin_raise);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_checkpoint(f));
    if (f->body_fails)
        PTRIO_RAISE(f, -PTRIO_EIO, "first");
    PTRIO_FINALLY(f);
    PTRIO_AWAIT(f, ptrio_checkpoint(f));
    PTRIO_RAISE(f, -PTRIO_EPIPE, "second");
    tlog_add(&L, "unreached");
    PTRIO_END(f);
}

struct fin_raise_main {
    ptrio_frame fr;
    struct fin_raise sub;
    int rc;
    ptrio_failure fail;
};

static int fin_raise_main(ptrio_frame *fr)
{
    struct fin_raise_main *f = PTRIO_SELF(fr, struct fin_raise_main);
    PTRIO_BEGIN(f);
    PTRIO_TRY(f, f->rc, ptrio_call(f, &f->sub, fin_raise));
    PTRIO_CHECK(f, ptrio_failure_last(f->rc, &f->fail));
    PTRIO_END(f);
}

START_TEST(test_raise_in_finally_replaces)
{
    static struct fin_raise_main f;
    int body;
    for (body = 0; body < 2; body++) {
        f = (struct fin_raise_main){.sub = {.body_fails = body}};
        tlog_clear(&L);
        ck_assert_int_eq(run_virtual(fin_raise_main, &f, NULL), 0);
        ck_assert_int_eq(f.rc, -PTRIO_EPIPE);
        ck_assert_str_eq(f.fail.msg, "second");
        ck_assert_str_eq(L.buf, "");
    }
}
END_TEST

/* ---- TRY, RAISE, CHECK ---------------------------------------------- */

struct try_main {
    ptrio_frame fr;
    struct value v;
    int r1, r2, r3, r4, r5;
};

static int try_main(ptrio_frame *fr)
{
    struct try_main *f = PTRIO_SELF(fr, struct try_main);
    PTRIO_BEGIN(f);
    /* an error after a suspension becomes a value */
    f->v = (struct value){.v = -PTRIO_ECONNREFUSED};
    PTRIO_TRY(f, f->r1, ptrio_call(f, &f->v, fail_later));
    logn(&L, "r1=", f->r1);
    /* ... also without a suspension */
    f->v = (struct value){.v = -PTRIO_EAGAIN};
    PTRIO_TRY(f, f->r2, ptrio_call(f, &f->v, fail_now));
    logn(&L, "r2=", f->r2);
    /* a success is the value */
    f->v = (struct value){.v = 7};
    PTRIO_TRY(f, f->r3, ptrio_call(f, &f->v, value_later));
    logn(&L, "r3=", f->r3);
    /* a failing primitive */
    PTRIO_TRY(f, f->r4, ptrio_sleep(f, -1));
    logn(&L, "r4=", f->r4);
    if (PTRIO_RESULT(f) != -PTRIO_EINVAL)
        tlog_add(&L, "bad-result");
    /* the frame goes on awaiting normally */
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(2)));
    f->v = (struct value){.v = 8};
    PTRIO_CALL(f, value_later, &f->v);
    f->r5 = PTRIO_RESULT(f);
    logn_at(&L, "r5=", f->r5);
    PTRIO_END(f);
}

/* PTRIO_TRY catches a callee's error as a value and the caller goes on;
 * nothing is reported. */
START_TEST(test_try_catches)
{
    static struct try_main f;
    treport rep;
    f = (struct try_main){0};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(try_main, &f, &rep), 0);
    ck_assert_int_eq(rep.count, 0);
    ck_assert_str_eq(L.buf, "r1=-111 r2=-11 r3=7 r4=-22 r5=8@2");
    ck_assert_int_eq(f.r1, -PTRIO_ECONNREFUSED);
    ck_assert_int_eq(f.r2, -PTRIO_EAGAIN);
    ck_assert_int_eq(f.r3, 7);
    ck_assert_int_eq(f.r4, -PTRIO_EINVAL);
    ck_assert_int_eq(f.r5, 8);
}
END_TEST

/* PTRIO_RAISE's code and message reach the caller's TRY two levels up;
 * PTRIO_CHECK raises a negative plain result and stores a positive one. */
struct raiser { ptrio_frame fr; int line; };

static int raiser(ptrio_frame *fr)
{
    struct raiser *f = PTRIO_SELF(fr, struct raiser);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
    f->line = __LINE__; PTRIO_RAISE(f, -PTRIO_ETIMEDOUT, "too slow");
    PTRIO_END(f);
}

struct middle { ptrio_frame fr; struct raiser r; };

static int middle(ptrio_frame *fr)
{
    struct middle *f = PTRIO_SELF(fr, struct middle);
    PTRIO_BEGIN(f);
    PTRIO_CALL(f, raiser, &f->r);
    tlog_add(&L, "unreached");
    PTRIO_END(f);
}

static int checker(ptrio_frame *fr)
{
    struct value *f = PTRIO_SELF(fr, struct value);
    PTRIO_BEGIN(f);
    PTRIO_CHECK(f, 5);
    logn(&L, "check", PTRIO_RESULT(f));
    PTRIO_CHECK(f, f->v);
    tlog_add(&L, "unreached");
    PTRIO_END(f);
}

struct raise_main {
    ptrio_frame fr;
    struct middle m;
    struct value c;
    int rc, rc2, frc;
    ptrio_failure fail;
};

static int raise_main(ptrio_frame *fr)
{
    struct raise_main *f = PTRIO_SELF(fr, struct raise_main);
    PTRIO_BEGIN(f);
    PTRIO_TRY(f, f->rc, ptrio_call(f, &f->m, middle));
    f->frc = ptrio_failure_last(f->rc, &f->fail);
    tlog_at(&L, "caught");
    f->c = (struct value){.v = -PTRIO_ERANGE};
    PTRIO_TRY(f, f->rc2, ptrio_call(f, &f->c, checker));
    logn(&L, "rc2", f->rc2);
    PTRIO_END(f);
}

START_TEST(test_raise_reaches_try)
{
    static struct raise_main f;
    f = (struct raise_main){0};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(raise_main, &f, NULL), 0);
    ck_assert_int_eq(f.rc, -PTRIO_ETIMEDOUT);
    ck_assert_int_eq(f.frc, 0);
    ck_assert_int_eq(f.fail.code, -PTRIO_ETIMEDOUT);
    ck_assert_str_eq(f.fail.msg, "too slow");
    ck_assert_str_eq(f.fail.file, __FILE__);
    ck_assert_int_eq(f.fail.line, f.m.r.line);
    ck_assert_int_eq(f.rc2, -PTRIO_ERANGE);
    ck_assert_str_eq(L.buf, "caught@1 check5 rc2-34");
}
END_TEST

/* An uncaught PTRIO_RAISE in the root: the run returns it and reports the
 * message. */
START_TEST(test_raise_uncaught)
{
    static struct middle f;
    treport rep;
    f = (struct middle){0};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(middle, &f, &rep), -PTRIO_ETIMEDOUT);
    ck_assert_int_eq(rep.count, 1);
    ck_assert_ptr_nonnull(strstr(rep.lines.buf, "too slow"));
    ck_assert_ptr_nonnull(strstr(rep.lines.buf, "ETIMEDOUT"));
    ck_assert_ptr_nonnull(strstr(rep.lines.buf, "'middle'"));
    ck_assert_str_eq(L.buf, "");
}
END_TEST

/* ---- frame reuse ---------------------------------------------------- */

/* Counts its own calls in a field ptrio leaves alone. */
struct tally { ptrio_frame fr; int calls; };

static int tally(ptrio_frame *fr)
{
    struct tally *f = PTRIO_SELF(fr, struct tally);
    PTRIO_BEGIN(f);
    f->calls++;
    PTRIO_AWAIT(f, ptrio_checkpoint(f));
    if (f->calls % 10 == 0)
        PTRIO_RAISE(f, -PTRIO_EAGAIN, "tenth");
    PTRIO_RETURN(f, f->calls);
    PTRIO_END(f);
}

struct reuse_main {
    ptrio_frame fr;
    struct tally t;
    int i, rc, sum, errors;
};

static int reuse_main(ptrio_frame *fr)
{
    struct reuse_main *f = PTRIO_SELF(fr, struct reuse_main);
    PTRIO_BEGIN(f);
    for (f->i = 0; f->i < 100; f->i++) {
        PTRIO_TRY(f, f->rc, ptrio_call(f, &f->t, tally));
        if (f->rc < 0)
            f->errors++;
        else
            f->sum += f->rc;
    }
    PTRIO_END(f);
}

/* A finished frame (successfully or not) may be called again. */
START_TEST(test_frame_reuse_sequential)
{
    static struct reuse_main f;
    f = (struct reuse_main){0};
    ck_assert_int_eq(run_virtual(reuse_main, &f, NULL), 0);
    ck_assert_int_eq(f.t.calls, 100);
    ck_assert_int_eq(f.errors, 10);
    /* 1 + ... + 100 minus the multiples of ten (550) */
    ck_assert_int_eq(f.sum, 5050 - 550);
    ck_assert(ptrio_frame_idle(&f.t.fr));
}
END_TEST

/* A running frame may not be called: the caller itself, an ancestor in
 * the chain, a frame another task is running. The refused calls disturb
 * nothing. */
struct busy_inner { ptrio_frame fr; void *ancestor; int self_rc, anc_rc; };

static int busy_inner(ptrio_frame *fr)
{
    struct busy_inner *f = PTRIO_SELF(fr, struct busy_inner);
    PTRIO_BEGIN(f);
    PTRIO_TRY(f, f->self_rc, ptrio_call(f, f, busy_inner));
    PTRIO_TRY(f, f->anc_rc, ptrio_call(f, f->ancestor, value_now));
    PTRIO_AWAIT(f, ptrio_checkpoint(f));
    PTRIO_RETURN(f, 3);
    PTRIO_END(f);
}

/* Holds a sub-frame running (asleep) for 10 ms. */
struct holder { ptrio_frame fr; struct sleeper *s; };

static struct sleeper shared_sleeper;

static int holder(ptrio_frame *fr)
{
    struct holder *f = PTRIO_SELF(fr, struct holder);
    PTRIO_BEGIN(f);
    PTRIO_CALL(f, sleeper, f->s);
    tlog_at(&L, "holder");
    PTRIO_END(f);
}

struct intruder { ptrio_frame fr; int rc, rc2; };

static int intruder(ptrio_frame *fr)
{
    struct intruder *f = PTRIO_SELF(fr, struct intruder);
    PTRIO_BEGIN(f);
    PTRIO_TRY(f, f->rc, ptrio_call(f, &shared_sleeper, sleeper));
    logn(&L, "intruder", f->rc);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(20)));
    /* finished by now: allowed */
    shared_sleeper.d = PTRIO_MS(1);
    PTRIO_TRY(f, f->rc2, ptrio_call(f, &shared_sleeper, sleeper));
    logn(&L, "again", f->rc2);
    PTRIO_END(f);
}

struct busy_main {
    ptrio_frame fr;
    struct busy_inner in;
    ptrio_nursery n;
    ptrio_task t[2];
    struct holder h;
    struct intruder x;
    int rc;
};

static int busy_main(ptrio_frame *fr)
{
    struct busy_main *f = PTRIO_SELF(fr, struct busy_main);
    PTRIO_BEGIN(f);
    f->in.ancestor = f;
    PTRIO_CALL(f, busy_inner, &f->in);
    f->rc = PTRIO_RESULT(f);
    shared_sleeper = (struct sleeper){.d = PTRIO_MS(10), .name = "shared"};
    PTRIO_NURSERY(f, &f->n) {
        f->h.s = &shared_sleeper;
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], holder, &f->h));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], intruder, &f->x));
    }
    PTRIO_END(f);
}

START_TEST(test_frame_busy_while_running)
{
    static struct busy_main f;
    f = (struct busy_main){0};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(busy_main, &f, NULL), 0);
    ck_assert_int_eq(f.in.self_rc, -PTRIO_EBUSY);
    ck_assert_int_eq(f.in.anc_rc, -PTRIO_EBUSY);
    ck_assert_int_eq(f.rc, 3);
    ck_assert_int_eq(f.x.rc, -PTRIO_EBUSY);
    ck_assert_int_eq(f.x.rc2, 0);
    ck_assert_str_eq(L.buf, "intruder-16 shared@10 holder@10 shared@21 again0");
}
END_TEST

/* ---- YIELD ---------------------------------------------------------- */

struct yielder { ptrio_frame fr; const char *name; int i; };

static int yielder(ptrio_frame *fr)
{
    struct yielder *f = PTRIO_SELF(fr, struct yielder);
    PTRIO_BEGIN(f);
    for (f->i = 0; f->i < 3; f->i++) {
        logn(&L, f->name, f->i);
        PTRIO_YIELD(f);
    }
    PTRIO_END(f);
}

struct yield_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct yielder y[2];
};

static int yield_main(ptrio_frame *fr)
{
    struct yield_main *f = PTRIO_SELF(fr, struct yield_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->y[0].name = "A";
        f->y[1].name = "B";
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], yielder, &f->y[0]));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], yielder, &f->y[1]));
    }
    tlog_add(&L, "joined");
    PTRIO_END(f);
}

/* PTRIO_YIELD lets the other ready tasks run: strict alternation. */
START_TEST(test_yield_interleaves)
{
    static struct yield_main f;
    f = (struct yield_main){0};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(yield_main, &f, NULL), 0);
    ck_assert_str_eq(L.buf, "A0 B0 A1 B1 A2 B2 joined");
}
END_TEST

/* PTRIO_YIELD ignores cancellation, ptrio_checkpoint does not. */
struct ycancel {
    ptrio_frame fr;
    ptrio_nursery n;
    int y, c, ic;
};

static int ycancel(ptrio_frame *fr)
{
    struct ycancel *f = PTRIO_SELF(fr, struct ycancel);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        ptrio_nursery_cancel(&f->n);
        f->ic = ptrio_checkpoint_if_cancelled(f);
        PTRIO_TRY(f, f->y, ptrio_yield(f));
        PTRIO_YIELD(f);
        tlog_add(&L, "yielded");
        PTRIO_TRY(f, f->c, ptrio_checkpoint(f));
        tlog_add(&L, "checkpointed");
        PTRIO_CHECKPOINT(f);
        tlog_add(&L, "unreached");
    }
    tlog_add(&L, "after");
    PTRIO_END(f);
}

START_TEST(test_yield_ignores_cancel)
{
    static struct ycancel f;
    f = (struct ycancel){0};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(ycancel, &f, NULL), 0);
    ck_assert_int_eq(f.ic, -PTRIO_ECANCELED);
    ck_assert_int_eq(f.y, 0);
    ck_assert_int_eq(f.c, -PTRIO_ECANCELED);
    ck_assert_str_eq(L.buf, "yielded checkpointed after");
    ck_assert(ptrio_cancelled_caught(ptrio_nursery_scope(&f.n)));
}
END_TEST

/* The same when the cancellation comes while the yield waits its turn
 * (the fast path: nothing was cancelled when it yielded): the yield still
 * returns 0, the next checkpoint fails. */
struct ystep {
    ptrio_frame fr;
};

struct ylate {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct ystep a, b;
    int y, c;
};

static struct ylate ylate_f;

static int ylate_yielder(ptrio_frame *fr)
{
    struct ystep *a = PTRIO_SELF(fr, struct ystep);
    PTRIO_BEGIN(a);
    tlog_add(&L, "a:yield");
    PTRIO_TRY(a, ylate_f.y, ptrio_yield(a));
    tlog_add(&L, "a:yielded");
    PTRIO_TRY(a, ylate_f.c, ptrio_checkpoint(a));
    PTRIO_END(a);
}

static int ylate_canceller(ptrio_frame *fr)
{
    struct ystep *b = PTRIO_SELF(fr, struct ystep);
    PTRIO_BEGIN(b);
    tlog_add(&L, "b:cancel");
    ptrio_nursery_cancel(&ylate_f.n);
    PTRIO_END(b);
}

static int ylate(ptrio_frame *fr)
{
    struct ylate *f = PTRIO_SELF(fr, struct ylate);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], ylate_yielder,
                                        &f->a));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], ylate_canceller,
                                        &f->b));
    }
    PTRIO_END(f);
}

START_TEST(test_yield_ignores_late_cancel)
{
    ylate_f = (struct ylate){0};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(ylate, &ylate_f, NULL), 0);
    ck_assert_int_eq(ylate_f.y, 0);
    ck_assert_int_eq(ylate_f.c, -PTRIO_ECANCELED);
    ck_assert_str_eq(L.buf, "a:yield b:cancel a:yielded");
}
END_TEST

/* ---- blocks resumed inside their body --------------------------------- */

/* Between the steps of the task under test, this task fills the stack
 * region step functions use with -1: a block that read state it did not
 * keep in the frame (a C local across an await) would see garbage. */
struct scrubber { ptrio_frame fr; int i, n; };

static void scrub(void)
{
    volatile int junk[512];
    int i;
    for (i = 0; i < 512; i++)
        junk[i] = -1;
    (void)junk[0];
}

static int scrubber(ptrio_frame *fr)
{
    struct scrubber *f = PTRIO_SELF(fr, struct scrubber);
    volatile int junk[256];
    int i;
    for (i = 0; i < 256; i++)
        junk[i] = -1;
    (void)junk[0];
    scrub();
    PTRIO_BEGIN(f);
    for (f->i = 0; f->i < f->n; f->i++)
        PTRIO_YIELD(f);
    PTRIO_END(f);
}

struct blocks {
    ptrio_frame fr;
    ptrio_scope sc, sh, mo, tb;
    ptrio_nursery n;
};

static int blocks(ptrio_frame *fr)
{
    struct blocks *f = PTRIO_SELF(fr, struct blocks);
    PTRIO_BEGIN(f);
    PTRIO_CANCEL_SCOPE(f, &f->sc) {
        PTRIO_AWAIT(f, ptrio_checkpoint(f));
    }
    tlog_add(&L, "scope");
    PTRIO_SHIELD(f, &f->sh) {
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
    }
    tlog_add(&L, "shield");
    PTRIO_MOVE_ON_AFTER(f, &f->mo, PTRIO_SEC(1)) {
        PTRIO_AWAIT(f, ptrio_checkpoint(f));
    }
    tlog_add(&L, "move_on");
    PTRIO_TRY_BLOCK(f, &f->tb) {
        PTRIO_AWAIT(f, ptrio_checkpoint(f));
    }
    tlog_add(&L, "try");
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_AWAIT(f, ptrio_checkpoint(f));
    }
    tlog_add(&L, "nursery");
    PTRIO_END(f);
}

struct blocks_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct scrubber s;
    struct blocks b;
    int rc;
};

static int blocks_main(ptrio_frame *fr)
{
    struct blocks_main *f = PTRIO_SELF(fr, struct blocks_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->s.n = 100;
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], scrubber, &f->s));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], blocks, &f->b));
    }
    PTRIO_END(f);
}

/* Every kind of block whose body awaits closes normally after the resume,
 * whatever the stack holds. */
START_TEST(test_blocks_resumed_in_body)
{
    static struct blocks_main f;
    treport rep;
    f = (struct blocks_main){0};
    tlog_clear(&L);
    ck_assert_int_eq(run_virtual(blocks_main, &f, &rep), 0);
    ck_assert_str_eq(L.buf, "scope shield move_on try nursery");
    ck_assert_int_eq(ptrio_scope_error(&f.b.tb), 0);
}
END_TEST

/* ---- the two call forms ---------------------------------------------- */

struct forms { ptrio_frame fr; struct value v; int a, b, c; };

static int forms(ptrio_frame *fr)
{
    struct forms *f = PTRIO_SELF(fr, struct forms);
    PTRIO_BEGIN(f);
    f->v.v = 11;
    PTRIO_CALL(f, value_later, &f->v);
    f->a = PTRIO_RESULT(f);
    f->v.v = 12;
    PTRIO_AWAIT(f, ptrio_call(f, &f->v, value_later));
    f->b = PTRIO_RESULT(f);
    f->v.v = 13;
    PTRIO_AWAIT(f, ptrio_call(f, &f->v, value_now));
    f->c = PTRIO_RESULT(f);
    PTRIO_RETURN(f, f->a + f->b + f->c);
    PTRIO_END(f);
}

START_TEST(test_call_forms)
{
    static struct forms f;
    f = (struct forms){0};
    ck_assert_int_eq(run_virtual(forms, &f, NULL), 36);
    ck_assert_int_eq(f.a, 11);
    ck_assert_int_eq(f.b, 12);
    ck_assert_int_eq(f.c, 13);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("coro");
    TCase *tc = tcase_create("coro");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_fifty_sequential_awaits);
    tcase_add_test(tc, test_awaits_in_loops);
    tcase_add_test(tc, test_frames_are_independent);
    tcase_add_test(tc, test_nested_calls_32_deep);
    tcase_add_test(tc, test_error_through_32_finally);
    tcase_add_test(tc, test_return_value_and_skip);
    tcase_add_test(tc, test_return_negative_raises);
    tcase_add_test(tc, test_return_inside_nursery);
    tcase_add_test(tc, test_return_inside_scopes);
    tcase_add_test(tc, test_finally_every_exit);
    tcase_add_test(tc, test_finally_in_root);
    tcase_add_test(tc, test_finally_with_awaits);
    tcase_add_test(tc, test_raise_in_finally_replaces);
    tcase_add_test(tc, test_try_catches);
    tcase_add_test(tc, test_raise_reaches_try);
    tcase_add_test(tc, test_raise_uncaught);
    tcase_add_test(tc, test_frame_reuse_sequential);
    tcase_add_misuse_test(tc, test_frame_busy_while_running);
    tcase_add_test(tc, test_yield_interleaves);
    tcase_add_test(tc, test_yield_ignores_cancel);
    tcase_add_test(tc, test_yield_ignores_late_cancel);
    tcase_add_test(tc, test_blocks_resumed_in_body);
    tcase_add_test(tc, test_call_forms);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
