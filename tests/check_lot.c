/* tests/check_lot.c: parking lots, the public low-level API under every
 * primitive: FIFO park and unpark (one, n, all, a given task), values and
 * data riding with a wait, repark, keyed parks, breaking, owned lots that
 * break when their owner exits, abort hooks, and an awaitable written by a
 * user (the README's counter). Where a test has a twin in Python Trio
 * (trio/_core/_tests/test_parking_lot.py) the comment above it names it.
 * Portable: no POSIX calls; all time is on the virtual clock. */
#include "synctest.h"

/* ---- a task that parks ------------------------------------------------ */

/* Parks in `lot` (through `key` when set) inside its own cancel scope;
 * logs "<name>+" when it parks and its status when it wakes. */
struct parker {
    ptrio_frame fr;
    const char *name;
    ptrio_lot *lot;
    ptrio_lot *const *key;
    void *data;
    ptrio_scope sc;
    int rc;
};

static int parker(ptrio_frame *fr)
{
    struct parker *f = PTRIO_SELF(fr, struct parker);
    PTRIO_BEGIN(f);
    PTRIO_CANCEL_SCOPE(f, &f->sc) {
        ev(f->name, "+");
        if (f->key)
            PTRIO_TRY(f, f->rc, ptrio_park_key(f, f->key, f->data));
        else
            PTRIO_TRY(f, f->rc, ptrio_park(f, f->lot, f->data));
        ev_rc(f->name, f->rc);
    }
    PTRIO_END(f);
}

#define NPARK 6

/* A main task with parkers to start and two lots. */
struct lots_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[NPARK];
    struct parker p[NPARK];
    ptrio_lot lot, lot2;
    ptrio_lot *key1, *key2;
    int i, rc;
    unsigned u;
};

/* Starts parker i on `lot`, then lets it park (wait_all_tasks_blocked). */
static int start_parker(struct lots_main *f, int i, ptrio_lot *lot)
{
    f->p[i] = (struct parker){.name = names[i], .lot = lot};
    return ptrio_start_soon(&f->n, &f->t[i], parker, &f->p[i]);
}

/* ---- basics -------------------------------------------------------------- */

static int basic_main(ptrio_frame *fr)
{
    struct lots_main *f = PTRIO_SELF(fr, struct lots_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        EXPECT(ptrio_lot_empty(&f->lot));
        EXPECT(ptrio_lot_count(&f->lot) == 0);
        for (f->i = 0; f->i < 3; f->i++)
            PTRIO_CHECK(f, start_parker(f, f->i, &f->lot));
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(!ptrio_lot_empty(&f->lot));
        EXPECT(ptrio_lot_count(&f->lot) == 3);
        EXPECT(ptrio_lot_unpark_all(&f->lot, 0) == 3);
        EXPECT(ptrio_lot_count(&f->lot) == 0);
    }
    ev("all", "");
    /* One at a time: strict FIFO. */
    PTRIO_NURSERY(f, &f->n) {
        for (f->i = 0; f->i < 3; f->i++) {
            PTRIO_CHECK(f, start_parker(f, f->i, &f->lot));
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        }
        for (f->i = 0; f->i < 3; f->i++) {
            EXPECT(ptrio_lot_unpark(&f->lot, 0) == &f->t[f->i]);
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        }
    }
    ev("fifo", "");
    /* Unparking an empty lot is a no-op. */
    EXPECT(ptrio_lot_unpark(&f->lot, 0) == NULL);
    EXPECT(ptrio_lot_unpark_n(&f->lot, 1, 0) == 0);
    EXPECT(ptrio_lot_unpark_n(&f->lot, 100, 0) == 0);
    /* unpark_n wakes the first n. */
    PTRIO_NURSERY(f, &f->n) {
        for (f->i = 0; f->i < 3; f->i++) {
            PTRIO_CHECK(f, start_parker(f, f->i, &f->lot));
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        }
        EXPECT(ptrio_lot_unpark_n(&f->lot, 2, 0) == 2);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(ptrio_lot_count(&f->lot) == 1);
        ptrio_lot_unpark_all(&f->lot, 0);
    }
    PTRIO_END(f);
}

/* Trio test_parking_lot.py: test_parking_lot_basic */
START_TEST(test_parking_lot_basic)
{
    static struct lots_main m;
    reset();
    memset(&m, 0, sizeof m);
    ck_assert_int_eq(run_virtual(basic_main, &m, NULL), 0);
    ck_expect_ok();
    ck_assert_str_eq(L.buf,
        "p0+@0 p1+@0 p2+@0 p0=0@1 p1=0@1 p2=0@1 all@1 "
        "p0+@1 p1+@2 p2+@3 p0=0@4 p1=0@5 p2=0@6 fifo@7 "
        "p0+@7 p1+@8 p2+@9 p0=0@10 p1=0@10 p2=0@11");
}
END_TEST

static int cancel_main(ptrio_frame *fr)
{
    struct lots_main *f = PTRIO_SELF(fr, struct lots_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        for (f->i = 0; f->i < 3; f->i++) {
            PTRIO_CHECK(f, start_parker(f, f->i, &f->lot));
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        }
        ptrio_cancel(&f->p[1].sc);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(ptrio_lot_count(&f->lot) == 2);
        EXPECT(ptrio_lot_first(&f->lot) == &f->t[0]);
        EXPECT(ptrio_lot_next(&f->lot, &f->t[0]) == &f->t[2]);
        EXPECT(ptrio_lot_next(&f->lot, &f->t[2]) == NULL);
        EXPECT(ptrio_lot_unpark_all(&f->lot, 0) == 2);
    }
    PTRIO_END(f);
}

/* A cancelled parker leaves the lot at once; the others keep their order.
 * Trio test_parking_lot.py: test_parking_lot_cancel */
START_TEST(test_parking_lot_cancel)
{
    static struct lots_main m;
    reset();
    memset(&m, 0, sizeof m);
    ck_assert_int_eq(run_virtual(cancel_main, &m, NULL), 0);
    ck_expect_ok();
    ck_assert_str_eq(L.buf, "p0+@0 p1+@1 p2+@2 p1!PTRIO_ECANCELED@3 "
                            "p0=0@4 p2=0@4");
}
END_TEST

static int repark_main(ptrio_frame *fr)
{
    struct lots_main *f = PTRIO_SELF(fr, struct lots_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        for (f->i = 0; f->i < 3; f->i++) {
            PTRIO_CHECK(f, start_parker(f, f->i, &f->lot));
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        }
        EXPECT(ptrio_lot_repark(&f->lot, &f->lot2, 1) == 1);
        EXPECT(ptrio_lot_count(&f->lot) == 2);
        EXPECT(ptrio_lot_count(&f->lot2) == 1);
        ptrio_lot_unpark_all(&f->lot2, 0);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        ev("woke1", "");
        EXPECT(ptrio_lot_repark(&f->lot, &f->lot2, UINT_MAX) == 2);
        EXPECT(ptrio_lot_count(&f->lot) == 0);
        EXPECT(ptrio_lot_count(&f->lot2) == 2);
        /* A reparked task is cancelled out of its new lot. */
        ptrio_cancel(&f->p[1].sc);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(ptrio_lot_count(&f->lot2) == 1);
        EXPECT(ptrio_lot_first(&f->lot2) == &f->t[2]);
        ptrio_lot_unpark_all(&f->lot2, 0);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        /* Repark onto itself, or from an empty lot, moves nothing. */
        EXPECT(ptrio_lot_repark(&f->lot, &f->lot, 5) == 0);
        EXPECT(ptrio_lot_repark(&f->lot, &f->lot2, 5) == 0);
        /* With a count: the first n, in order. */
        for (f->i = 0; f->i < 3; f->i++) {
            PTRIO_CHECK(f, start_parker(f, f->i, &f->lot));
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        }
        EXPECT(ptrio_lot_repark(&f->lot, &f->lot2, 2) == 2);
        EXPECT(ptrio_lot_count(&f->lot) == 1);
        while (!ptrio_lot_empty(&f->lot2)) {
            ptrio_lot_unpark(&f->lot2, 0);
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        }
        ev("two", "");
        ptrio_lot_unpark_all(&f->lot, 0);
    }
    PTRIO_END(f);
}

/* Trio test_parking_lot.py: test_parking_lot_repark,
 * test_parking_lot_repark_with_count */
START_TEST(test_parking_lot_repark)
{
    static struct lots_main m;
    reset();
    memset(&m, 0, sizeof m);
    ck_assert_int_eq(run_virtual(repark_main, &m, NULL), 0);
    ck_expect_ok();
    ck_assert_str_eq(L.buf,
        "p0+@0 p1+@1 p2+@2 p0=0@3 woke1@4 p1!PTRIO_ECANCELED@4 p2=0@5 "
        "p0+@6 p1+@7 p2+@8 p0=0@9 p1=0@10 two@11 p2=0@11");
}
END_TEST

/* Reparking a lot onto itself moves its first n to its end, as Trio's
 * repark does (it pops them, then appends them): a rotation. All of them,
 * or more, keep the order. */
static int repark_self_main(ptrio_frame *fr)
{
    struct lots_main *f = PTRIO_SELF(fr, struct lots_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        for (f->i = 0; f->i < 3; f->i++) {
            PTRIO_CHECK(f, start_parker(f, f->i, &f->lot));
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        }
        EXPECT(ptrio_lot_repark(&f->lot, &f->lot, 1) == 1);
        EXPECT(ptrio_lot_first(&f->lot) == &f->t[1]);
        EXPECT(ptrio_lot_repark(&f->lot, &f->lot, 5) == 3);
        EXPECT(ptrio_lot_count(&f->lot) == 3);
        EXPECT(ptrio_lot_first(&f->lot) == &f->t[1]);
        while (!ptrio_lot_empty(&f->lot)) {
            ptrio_lot_unpark(&f->lot, 0);
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        }
        ptrio_lot_break(&f->lot);
        EXPECT(ptrio_lot_repark(&f->lot, &f->lot, 5) == 0);
    }
    PTRIO_END(f);
}

/* Trio test_parking_lot.py: test_parking_lot_repark (repark with
 * new_lot the lot itself: Trio pops, then appends) */
START_TEST(test_lot_repark_onto_itself)
{
    static struct lots_main m;
    reset();
    memset(&m, 0, sizeof m);
    ck_assert_int_eq(run_virtual(repark_self_main, &m, NULL), 0);
    ck_expect_ok();
    ck_assert_str_eq(L.buf, "p0+@0 p1+@1 p2+@2 p1=0@3 p2=0@4 p0=0@5");
}
END_TEST

/* ---- values, data, checkpoints ---------------------------------------- */

static int values_main(ptrio_frame *fr)
{
    struct lots_main *f = PTRIO_SELF(fr, struct lots_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        for (f->i = 0; f->i < 4; f->i++) {
            f->p[f->i] = (struct parker){.name = names[f->i], .lot = &f->lot,
                                         .data = &f->p[f->i]};
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[f->i], parker,
                                            &f->p[f->i]));
        }
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        for (f->i = 0; f->i < 4; f->i++)
            EXPECT(ptrio_wait_data(&f->t[f->i]) == &f->p[f->i]);
        EXPECT(ptrio_wait_key(&f->t[0]) == NULL);
        EXPECT(ptrio_wait_data(ptrio_current_task()) == NULL);
        /* The value becomes the await's status, positive or an error. */
        EXPECT(ptrio_lot_unpark(&f->lot, 7) == &f->t[0]);
        EXPECT(ptrio_lot_unpark_n(&f->lot, 1, -PTRIO_EPIPE) == 1);
        /* Any task of the lot, by name. */
        EXPECT(ptrio_lot_unpark_task(&f->lot, &f->t[3], 3) == 0);
        EXPECT(ptrio_lot_first(&f->lot) == &f->t[2]);
        EXPECT(ptrio_lot_next(&f->lot, &f->t[2]) == NULL);
        /* Woken is final: a cancellation before it runs changes nothing. */
        ptrio_cancel(&f->p[0].sc);
        ptrio_lot_unpark_all(&f->lot, 2);
        EXPECT(ptrio_wait_data(&f->t[2]) == NULL);
    }
    PTRIO_END(f);
}

START_TEST(test_unpark_values_and_data)
{
    static struct lots_main m;
    reset();
    memset(&m, 0, sizeof m);
    ck_assert_int_eq(run_virtual(values_main, &m, NULL), 0);
    ck_expect_ok();
    ck_assert_str_eq(L.buf, "p0+@0 p1+@0 p2+@0 p3+@0 "
                            "p0=7@1 p1!EPIPE@1 p3=3@1 p2=2@1");
}
END_TEST

struct cp_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct marker mk;
    ptrio_scope sc;
    ptrio_lot lot;
    int rc, rc2;
};

static int cp_main(ptrio_frame *fr)
{
    struct cp_main *f = PTRIO_SELF(fr, struct cp_main);
    PTRIO_BEGIN(f);
    PTRIO_CANCEL_SCOPE(f, &f->sc) {
        ptrio_cancel(&f->sc);
        PTRIO_TRY(f, f->rc, ptrio_park(f, &f->lot, NULL));
        EXPECT(ptrio_lot_empty(&f->lot));
        PTRIO_TRY(f, f->rc2, ptrio_park_key(f, &(ptrio_lot *const){&f->lot},
                                            NULL));
        EXPECT(ptrio_lot_empty(&f->lot));
    }
    PTRIO_END(f);
}

/* Parking in a cancelled scope fails at once and leaves the lot empty. */
START_TEST(test_park_is_a_cancel_point)
{
    static struct cp_main m;
    reset();
    memset(&m, 0, sizeof m);
    ck_assert_int_eq(run_virtual(cp_main, &m, NULL), 0);
    ck_expect_ok();
    ck_assert_int_eq(m.rc, -PTRIO_ECANCELED);
    ck_assert_int_eq(m.rc2, -PTRIO_ECANCELED);
    ck_assert(!ptrio_cancelled_caught(&m.sc));
}
END_TEST

/* ---- keyed parks -------------------------------------------------------- */

static int key_main(ptrio_frame *fr)
{
    struct lots_main *f = PTRIO_SELF(fr, struct lots_main);
    PTRIO_BEGIN(f);
    f->key1 = f->key2 = &f->lot;
    PTRIO_NURSERY(f, &f->n) {
        for (f->i = 0; f->i < 4; f->i++) {
            f->p[f->i] = (struct parker){
                .name = names[f->i], .key = f->i % 2 ? &f->key2 : &f->key1,
                .data = &f->p[f->i]};
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[f->i], parker,
                                            &f->p[f->i]));
        }
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        /* One lot, in arrival order, each task with its key and data. */
        EXPECT(ptrio_lot_count(&f->lot) == 4);
        EXPECT(ptrio_wait_key(&f->t[0]) == &f->key1);
        EXPECT(ptrio_wait_key(&f->t[1]) == &f->key2);
        EXPECT(ptrio_wait_data(&f->t[1]) == &f->p[1]);
        EXPECT(ptrio_lot_unpark_task(&f->lot, &f->t[1], 1) == 0);
        /* Cancelled through a key: out of the key's lot. */
        ptrio_cancel(&f->p[2].sc);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(ptrio_lot_first(&f->lot) == &f->t[0]);
        EXPECT(ptrio_lot_next(&f->lot, &f->t[0]) == &f->t[3]);
        /* Reparked: in the new lot, without its key. */
        EXPECT(ptrio_lot_repark(&f->lot, &f->lot2, 1) == 1);
        EXPECT(ptrio_wait_key(&f->t[0]) == NULL);
        EXPECT(ptrio_wait_data(&f->t[0]) == &f->p[0]);
        ptrio_cancel(&f->p[0].sc);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(ptrio_lot_empty(&f->lot2));
        EXPECT(ptrio_lot_unpark(&f->lot, 3) == &f->t[3]);
    }
    PTRIO_END(f);
}

/* Tasks parked through keys share one FIFO lot; each can be found by the
 * key it parked through. */
START_TEST(test_park_key)
{
    static struct lots_main m;
    reset();
    memset(&m, 0, sizeof m);
    ck_assert_int_eq(run_virtual(key_main, &m, NULL), 0);
    ck_expect_ok();
    ck_assert_str_eq(L.buf, "p0+@0 p1+@0 p2+@0 p3+@0 p1=1@1 "
                            "p2!PTRIO_ECANCELED@1 p0!PTRIO_ECANCELED@2 "
                            "p3=3@3");
}
END_TEST

/* ---- one blocking operation: ptrio_park_unless ------------------------- */

/* An attempt that returns what it is told, counting its calls. */
struct attempt_state {
    int calls;
    int rc;
    ptrio_task *t;
};

static int attempt(ptrio_task *t, void *obj, void *data)
{
    struct attempt_state *a = obj;
    (void)data;
    a->calls++;
    a->t = t;
    return a->rc;
}

/* Sleeps 1 ms, checks the first waiter of `lot`, unparks it with 5. */
struct unparker {
    ptrio_frame fr;
    ptrio_lot *lot;
    ptrio_lot *const *key;
    void *data;
};

static int unparker(ptrio_frame *fr)
{
    struct unparker *f = PTRIO_SELF(fr, struct unparker);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
    EXPECT(ptrio_wait_key(ptrio_lot_first(f->lot)) == f->key);
    EXPECT(ptrio_lot_first_data(f->lot) == f->data);
    EXPECT(ptrio_lot_unpark(f->lot, 5) != NULL);
    PTRIO_END(f);
}

struct unless_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct marker mk;
    struct unparker up;
    ptrio_scope sc;
    ptrio_lot lot, *key;
    struct attempt_state a;
    int rc[6];
};

static int unless_main(ptrio_frame *fr)
{
    struct unless_main *f = PTRIO_SELF(fr, struct unless_main);
    PTRIO_BEGIN(f);
    f->key = &f->lot;
    f->mk = (struct marker){.name = "m"};
    /* Done at once: its status, after a schedule point. */
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, marker, &f->mk));
        f->a.rc = 7;
        ev("a", "<");
        PTRIO_TRY(f, f->rc[0], ptrio_park_unless(f, &f->lot, attempt, &f->a,
                                                 NULL));
        ev("a", ">");
        EXPECT(f->a.t == ptrio_current_task());
    }
    /* An error: at once, no schedule point. */
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, marker, &f->mk));
        f->a.rc = -PTRIO_EPIPE;
        ev("b", "<");
        PTRIO_TRY(f, f->rc[1], ptrio_park_key_unless(f, &f->key, attempt,
                                                     &f->a, NULL));
        ev("b", ">");
    }
    /* Cancelled: fails before the attempt. */
    PTRIO_CANCEL_SCOPE(f, &f->sc) {
        ptrio_cancel(&f->sc);
        f->a.calls = 0;
        PTRIO_TRY(f, f->rc[2], ptrio_park_unless(f, &f->lot, attempt, &f->a,
                                                 NULL));
        PTRIO_TRY(f, f->rc[3], ptrio_park_key_unless(f, &f->key, attempt,
                                                     &f->a, NULL));
        EXPECT(f->a.calls == 0);
    }
    /* Would block: parks (through the key, with its data) until an
     * unpark, whose value it returns. */
    PTRIO_NURSERY(f, &f->n) {
        f->a.rc = -PTRIO_EWOULDBLOCK;
        f->up = (struct unparker){.lot = &f->lot, .key = &f->key,
                                  .data = &f->a};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, unparker, &f->up));
        PTRIO_TRY(f, f->rc[4], ptrio_park_key_unless(f, &f->key, attempt,
                                                     &f->a, &f->a));
        ev("c", "");
    }
    PTRIO_END(f);
}

/* The one-call form of a blocking operation keeps Trio's rules: done is a
 * schedule point, an error is not, cancelled never attempts, blocked
 * parks. */
START_TEST(test_park_unless)
{
    static struct unless_main m;
    RUN_MAIN(unless_main, m, 0);
    ck_assert_int_eq(m.rc[0], 7);
    ck_assert_int_eq(m.rc[1], -PTRIO_EPIPE);
    ck_assert_int_eq(m.rc[2], -PTRIO_ECANCELED);
    ck_assert_int_eq(m.rc[3], -PTRIO_ECANCELED);
    ck_assert_int_eq(m.rc[4], 5);
    ck_assert_str_eq(L.buf, "a<@0 m@0 a>@0 b<@0 b>@0 m@0 c@1");
}
END_TEST

static int unless_bad(ptrio_frame *fr)
{
    struct lots_main *f = PTRIO_SELF(fr, struct lots_main);
    PTRIO_BEGIN(f);
    f->rc = ptrio_park_unless(f, &f->lot, NULL, NULL, NULL);
    PTRIO_END(f);
}

START_TEST(test_park_unless_misuse)
{
    static struct lots_main m;
    reset();
    memset(&m, 0, sizeof m);
    ck_assert_int_eq(run_virtual(unless_bad, &m, NULL), 0);
    ck_assert_int_eq(m.rc, -PTRIO_EINVAL);
}
END_TEST

/* ---- breaking ----------------------------------------------------------- */

static int break_main(ptrio_frame *fr)
{
    struct lots_main *f = PTRIO_SELF(fr, struct lots_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        for (f->i = 0; f->i < 2; f->i++)
            PTRIO_CHECK(f, start_parker(f, f->i, &f->lot));
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(!ptrio_lot_broken(&f->lot));
        ptrio_lot_break(&f->lot);
        EXPECT(ptrio_lot_broken(&f->lot));
        ptrio_lot_break(&f->lot);
        EXPECT(ptrio_lot_broken(&f->lot));
        EXPECT(ptrio_lot_empty(&f->lot));
        EXPECT(ptrio_lot_count(&f->lot) == 0);
        EXPECT(ptrio_lot_first(&f->lot) == NULL);
        EXPECT(ptrio_lot_unpark(&f->lot, 0) == NULL);
        EXPECT(ptrio_lot_unpark_all(&f->lot, 0) == 0);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        /* Parking in a broken lot fails at once. */
        PTRIO_CHECK(f, start_parker(f, 2, &f->lot));
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        /* Reparked into a broken lot: woken broken. */
        PTRIO_CHECK(f, start_parker(f, 3, &f->lot2));
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(ptrio_lot_repark(&f->lot2, &f->lot, 1) == 1);
        EXPECT(ptrio_lot_empty(&f->lot2));
        /* Repark from a broken lot moves nothing. */
        EXPECT(ptrio_lot_repark(&f->lot, &f->lot2, 1) == 0);
    }
    PTRIO_END(f);
}

/* Trio test_parking_lot.py: test_parking_lot_breaker_basic */
START_TEST(test_break_lot)
{
    static struct lots_main m;
    reset();
    memset(&m, 0, sizeof m);
    ck_assert_int_eq(run_virtual(break_main, &m, NULL), 0);
    ck_expect_ok();
    ck_assert_str_eq(L.buf, "p0+@0 p1+@0 p0!PTRIO_EBROKEN@1 "
                            "p1!PTRIO_EBROKEN@1 p2+@2 p2!PTRIO_EBROKEN@2 "
                            "p3+@3 p3!PTRIO_EBROKEN@4");
}
END_TEST

/* ---- owned lots --------------------------------------------------------- */

/* Owns `lots` (n of them) and sleeps `d`, logging its status. */
struct owner {
    ptrio_frame fr;
    const char *name;
    ptrio_owned_lot *lots[3];
    int nlots;
    ptrio_time d;
    int i, rc;
};

static int owner(ptrio_frame *fr)
{
    struct owner *f = PTRIO_SELF(fr, struct owner);
    PTRIO_BEGIN(f);
    for (f->i = 0; f->i < f->nlots; f->i++)
        PTRIO_CHECK(f, ptrio_lot_set_owner(f->lots[f->i],
                                           ptrio_current_task()));
    ev(f->name, "+");
    PTRIO_AWAIT(f, ptrio_sleep(f, f->d));
    ev(f->name, "-");
    PTRIO_END(f);
}

struct owned_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[6];
    struct owner o[2];
    struct parker p[4];
    ptrio_owned_lot ol[4];
    ptrio_task *gone;
    int rc;
};

static int owned_main(ptrio_frame *fr)
{
    struct owned_main *f = PTRIO_SELF(fr, struct owned_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        /* o0 owns lots 0, 1, 2 and exits at 5 ms; o1 owns lot 3 and
         * exits at 10 ms. */
        f->o[0] = (struct owner){.name = "o0", .nlots = 3,
                                 .lots = {&f->ol[0], &f->ol[1], &f->ol[2]},
                                 .d = PTRIO_MS(5)};
        f->o[1] = (struct owner){.name = "o1", .nlots = 1,
                                 .lots = {&f->ol[3]}, .d = PTRIO_MS(10)};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], owner, &f->o[0]));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], owner, &f->o[1]));
        f->p[0] = (struct parker){.name = "p0", .lot = &f->ol[0].lot};
        f->p[1] = (struct parker){.name = "p1", .lot = &f->ol[2].lot};
        f->p[2] = (struct parker){.name = "p2", .lot = &f->ol[3].lot};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[2], parker, &f->p[0]));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[3], parker, &f->p[1]));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[4], parker, &f->p[2]));
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(ptrio_lot_owner(&f->ol[0]) == &f->t[0]);
        EXPECT(ptrio_lot_owner(&f->ol[3]) == &f->t[1]);
        /* o0 gives lot 1 up (not the last it took): it will not break. */
        EXPECT(ptrio_lot_set_owner(&f->ol[1], NULL) == 0);
        EXPECT(ptrio_lot_owner(&f->ol[1]) == NULL);
        /* Lot 2 is handed over to this task: it breaks when we exit, not
         * when o0 does. */
        EXPECT(ptrio_lot_set_owner(&f->ol[2], ptrio_current_task()) == 0);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(5)));
        EXPECT(ptrio_lot_broken(&f->ol[0].lot));
        EXPECT(ptrio_lot_owner(&f->ol[0]) == NULL);
        EXPECT(!ptrio_lot_broken(&f->ol[1].lot));
        EXPECT(!ptrio_lot_broken(&f->ol[2].lot));
        EXPECT(!ptrio_lot_broken(&f->ol[3].lot));
        /* An exited task cannot own a lot. */
        EXPECT(ptrio_lot_set_owner(&f->ol[1], &f->t[0]) == -PTRIO_EBROKEN);
        EXPECT(ptrio_lot_owner(&f->ol[1]) == NULL);
        EXPECT(ptrio_lot_set_owner(&f->ol[2], NULL) == 0);
        ptrio_lot_unpark_all(&f->ol[2].lot, 2);
    }
    EXPECT(ptrio_lot_broken(&f->ol[3].lot));
    EXPECT(ptrio_current_loop()->lot_owners == NULL);
    PTRIO_END(f);
}

/* A task's exit breaks the lots it owns and no other; giving a lot up or
 * handing it over moves the breaking with it.
 * Trio test_parking_lot.py: test_parking_lot_break_parking_tasks,
 * test_parking_lot_breaker_register_exited_task,
 * test_parking_lot_multiple_breakers_exit (one owner per lot here) */
START_TEST(test_owned_lots)
{
    static struct owned_main m;
    reset();
    memset(&m, 0, sizeof m);
    ck_assert_int_eq(run_virtual(owned_main, &m, NULL), 0);
    ck_expect_ok();
    ck_assert_str_eq(L.buf, "o0+@0 o1+@0 p0+@0 p1+@0 p2+@0 o0-@5 "
                            "p0!PTRIO_EBROKEN@5 p1=2@6 o1-@10 "
                            "p2!PTRIO_EBROKEN@10");
}
END_TEST

struct self_break {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct parker p;
    ptrio_owned_lot ol;
    ptrio_lot *lot;
};

static int self_break(ptrio_frame *fr)
{
    struct self_break *f = PTRIO_SELF(fr, struct self_break);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->p = (struct parker){.name = "p", .lot = &f->ol.lot};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, parker, &f->p));
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        /* The parked task owns the lot it waits in: breaking it by hand
         * wakes it; its exit later breaks nothing more. */
        EXPECT(ptrio_lot_set_owner(&f->ol, &f->t) == 0);
        ptrio_lot_break(&f->ol.lot);
    }
    EXPECT(ptrio_lot_owner(&f->ol) == NULL);
    EXPECT(ptrio_current_loop()->lot_owners == NULL);
    PTRIO_END(f);
}

/* Trio test_parking_lot.py: test_parking_lot_break_itself */
START_TEST(test_owned_lot_break_itself)
{
    static struct self_break m;
    reset();
    memset(&m, 0, sizeof m);
    ck_assert_int_eq(run_virtual(self_break, &m, NULL), 0);
    ck_expect_ok();
    ck_assert_str_eq(L.buf, "p+@0 p!PTRIO_EBROKEN@1");
}
END_TEST

struct breaker_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[1];
    struct owner o;
    ptrio_owned_lot ol;
    int rc;
};

static int registration_main(ptrio_frame *fr)
{
    struct breaker_main *f = PTRIO_SELF(fr, struct breaker_main);
    PTRIO_BEGIN(f);
    /* Giving up a lot nobody owns does nothing (Trio: RuntimeError). */
    EXPECT(ptrio_lot_set_owner(&f->ol, NULL) == 0);
    EXPECT(ptrio_lot_owner(&f->ol) == NULL);
    EXPECT(ptrio_current_loop()->lot_owners == NULL);
    /* Owning it twice is owning it once: one give-up ends it. */
    EXPECT(ptrio_lot_set_owner(&f->ol, ptrio_current_task()) == 0);
    EXPECT(ptrio_lot_set_owner(&f->ol, ptrio_current_task()) == 0);
    EXPECT(ptrio_current_loop()->lot_owners == &f->ol);
    EXPECT(f->ol.next == NULL);
    EXPECT(ptrio_lot_set_owner(&f->ol, NULL) == 0);
    EXPECT(ptrio_lot_owner(&f->ol) == NULL);
    EXPECT(ptrio_current_loop()->lot_owners == NULL);
    EXPECT(ptrio_lot_set_owner(&f->ol, NULL) == 0);
    EXPECT(!ptrio_lot_broken(&f->ol.lot));
    /* A broken lot may take an owner; the owner's exit leaves it broken,
     * with no owner. */
    ptrio_lot_break(&f->ol.lot);
    PTRIO_NURSERY(f, &f->n) {
        f->o = (struct owner){.name = "o", .nlots = 1, .lots = {&f->ol},
                              .d = PTRIO_TIME_INF};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], owner, &f->o));
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(ptrio_lot_owner(&f->ol) == &f->t[0]);
        EXPECT(ptrio_current_loop()->lot_owners == &f->ol);
        EXPECT(ptrio_lot_broken(&f->ol.lot));
        ptrio_nursery_cancel(&f->n);
    }
    EXPECT(ptrio_lot_broken(&f->ol.lot));
    EXPECT(ptrio_lot_owner(&f->ol) == NULL);
    EXPECT(ptrio_current_loop()->lot_owners == NULL);
    PTRIO_TRY(f, f->rc, ptrio_park(f, &f->ol.lot, NULL));
    EXPECT(f->rc == -PTRIO_EBROKEN);
    PTRIO_END(f);
}

/* Trio test_parking_lot.py: test_parking_lot_breaker_registration (one
 * owner per lot, and no error for giving up a lot one does not own; Trio's
 * break_lot(task) of an exited task has no twin: ptrio_lot_break names no
 * task) */
START_TEST(test_parking_lot_breaker_registration)
{
    static struct breaker_main m;
    reset();
    memset(&m, 0, sizeof m);
    ck_assert_int_eq(run_virtual(registration_main, &m, NULL), 0);
    ck_expect_ok();
    ck_assert_str_eq(L.buf, "o+@0");
}
END_TEST

/* Breaks `lot` from a task of its own, and logs. */
struct rebreaker {
    ptrio_frame fr;
    ptrio_lot *lot;
};

static int rebreaker(ptrio_frame *fr)
{
    struct rebreaker *f = PTRIO_SELF(fr, struct rebreaker);
    PTRIO_BEGIN(f);
    ptrio_lot_break(f->lot);
    ev("rebreak", "");
    PTRIO_END(f);
}

struct rebreak_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct rebreaker b;
    struct parker p;
    ptrio_lot lot;
};

static int rebreak_main(ptrio_frame *fr)
{
    struct rebreak_main *f = PTRIO_SELF(fr, struct rebreak_main);
    PTRIO_BEGIN(f);
    ptrio_lot_break(&f->lot);
    /* Another task breaks the broken lot again: allowed, still broken. */
    PTRIO_NURSERY(f, &f->n) {
        f->b = (struct rebreaker){.lot = &f->lot};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], rebreaker, &f->b));
    }
    EXPECT(ptrio_lot_broken(&f->lot));
    EXPECT(ptrio_lot_empty(&f->lot));
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
    /* ...and parking in it fails at once. */
    PTRIO_NURSERY(f, &f->n) {
        f->p = (struct parker){.name = "p", .lot = &f->lot};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], parker, &f->p));
    }
    EXPECT(ptrio_lot_broken(&f->lot));
    PTRIO_END(f);
}

/* Trio test_parking_lot.py: test_parking_lot_breaker_rebreak (no
 * broken_by list: breaking again changes nothing) */
START_TEST(test_parking_lot_breaker_rebreak)
{
    static struct rebreak_main m;
    reset();
    memset(&m, 0, sizeof m);
    ck_assert_int_eq(run_virtual(rebreak_main, &m, NULL), 0);
    ck_expect_ok();
    ck_assert_str_eq(L.buf, "rebreak@0 p+@1 p!PTRIO_EBROKEN@1");
}
END_TEST

/* ---- abort hooks -------------------------------------------------------- */

/* The hook's owner records what the hook saw; `refuse` makes it say the
 * wait cannot be undone. */
struct hook_state {
    int calls;
    int refuse;
    void *data;
};

static int test_abort(ptrio_task *t, void *data)
{
    struct hook_state *h = data;
    (void)t;
    h->calls++;
    h->data = data;
    return h->refuse;
}

struct hooked {
    ptrio_frame fr;
    const char *name;
    struct hook_state *h;
    ptrio_scope sc;
    int rc;
};

static int hooked(ptrio_frame *fr)
{
    struct hooked *f = PTRIO_SELF(fr, struct hooked);
    PTRIO_BEGIN(f);
    PTRIO_CANCEL_SCOPE(f, &f->sc) {
        ev(f->name, "+");
        PTRIO_TRY(f, f->rc, ptrio_park_hook(f, test_abort, f->h));
        ev_rc(f->name, f->rc);
    }
    PTRIO_END(f);
}

struct hook_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct hooked k[2];
    struct hook_state h[2];
};

static int hook_main(ptrio_frame *fr)
{
    struct hook_main *f = PTRIO_SELF(fr, struct hook_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->h[1].refuse = 1;
        f->k[0] = (struct hooked){.name = "h0", .h = &f->h[0]};
        f->k[1] = (struct hooked){.name = "h1", .h = &f->h[1]};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], hooked, &f->k[0]));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], hooked, &f->k[1]));
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(ptrio_wait_data(&f->t[0]) == &f->h[0]);
        ptrio_cancel(&f->k[0].sc);
        ptrio_cancel(&f->k[1].sc);
        EXPECT(f->h[0].calls == 1 && f->h[0].data == &f->h[0]);
        EXPECT(f->h[1].calls == 1);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        /* h1's hook refused: it waits until its owner wakes it. */
        ev("wake", "");
        EXPECT(ptrio_wake(&f->t[1], 5) == 0);
    }
    PTRIO_END(f);
}

/* Trio's wait_task_rescheduled: the hook decides whether a cancelled wait
 * ends now (-ECANCELED) or when its owner reschedules it. */
START_TEST(test_park_hook)
{
    static struct hook_main m;
    reset();
    memset(&m, 0, sizeof m);
    ck_assert_int_eq(run_virtual(hook_main, &m, NULL), 0);
    ck_expect_ok();
    ck_assert_str_eq(L.buf, "h0+@0 h1+@0 h0!PTRIO_ECANCELED@1 wake@2 "
                            "h1=5@2");
}
END_TEST

/* A hook that always refuses, in a run where nothing else can wake its
 * task: the run is deadlocked, cancelled, and its abort of every wait is
 * refused again. Rather than spin for ever on that, the run wakes the
 * task with -ECANCELED all the same (misuse: a debug build traps there),
 * so that it ends, with every task joined, returning -PTRIO_EDEADLK.
 * (No report sink: the micro:bit build has no stack to spare for one.) */
START_TEST(test_abort_hook_refusing_in_deadlock)
{
    static struct hooked k;
    static struct hook_state h;

    reset();
    h = (struct hook_state){.refuse = 1};
    k = (struct hooked){.name = "h", .h = &h};
    ck_assert_int_eq(run_virtual(hooked, &k, NULL), -PTRIO_EDEADLK);
    ck_assert_int_eq(k.rc, -PTRIO_ECANCELED);
    ck_assert_int_eq(h.calls, 2);
    ck_assert_str_eq(L.buf, "h+@0 h!PTRIO_ECANCELED@0");
}
END_TEST

/* A hook that cannot undo its wait at once: it notes the call and leaves
 * the task parked, for its owner to wake later. */
static int slow_abort(ptrio_task *t, void *data)
{
    struct hook_state *h = data;
    (void)t;
    if (!h->calls++)
        ev("abort-called", "");
    return 1;
}

struct slow_aborter {
    ptrio_frame fr;
    struct hook_state *h;
    int rc, rc2;
};

static int slow_aborter(ptrio_frame *fr)
{
    struct slow_aborter *f = PTRIO_SELF(fr, struct slow_aborter);
    PTRIO_BEGIN(f);
    ev("sleeping", "");
    PTRIO_TRY(f, f->rc, ptrio_park_hook(f, slow_abort, f->h));
    ev_rc("woken", f->rc);
    PTRIO_TRY(f, f->rc2, ptrio_checkpoint(f));  /* shielded by now */
    ev_rc("done", f->rc2);
    PTRIO_END(f);
}

struct slow_main {
    ptrio_frame fr;
    ptrio_scope outer1, outer2;
    ptrio_nursery n;
    ptrio_task t;
    struct slow_aborter k;
    struct hook_state h;
};

static int slow_main(ptrio_frame *fr)
{
    struct slow_main *f = PTRIO_SELF(fr, struct slow_main);
    PTRIO_BEGIN(f);
    PTRIO_CANCEL_SCOPE(f, &f->outer1) {
        PTRIO_CANCEL_SCOPE(f, &f->outer2) {
            PTRIO_NURSERY(f, &f->n) {
                f->k = (struct slow_aborter){.h = &f->h};
                PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, slow_aborter,
                                                &f->k));
                PTRIO_AWAIT(f, ptrio_wait_all_tasks_blocked(f, 0));
                ptrio_cancel(&f->outer1);
                EXPECT(f->h.calls == 1);
                /* A second cancellation above it asks the hook nothing. */
                ptrio_cancel(&f->outer2);
                EXPECT(f->h.calls == 1);
                /* Shielded before the owner finishes the abort: the
                 * cancellation it delivers arrives all the same. */
                ptrio_scope_set_shield(ptrio_nursery_scope(&f->n), true);
                EXPECT(ptrio_wake(&f->t, -PTRIO_ECANCELED) == 0);
                EXPECT(f->h.calls == 1);
            }
            ev("joined", "");
        }
    }
    PTRIO_END(f);
}

/* Trio test_run.py: test_slow_abort_edge_cases */
START_TEST(test_slow_abort_edge_cases)
{
    static struct slow_main m;
    reset();
    memset(&m, 0, sizeof m);
    ck_assert_int_eq(run_virtual(slow_main, &m, NULL), 0);
    ck_expect_ok();
    ck_assert_int_eq(m.k.rc, -PTRIO_ECANCELED);
    ck_assert_int_eq(m.k.rc2, 0);
    ck_assert(!ptrio_cancelled_caught(&m.outer1));
    ck_assert_str_eq(L.buf, "sleeping@0 abort-called@0 "
                            "woken!PTRIO_ECANCELED@0 done=0@0 joined@0");
}
END_TEST

/* ---- a source's wake: ptrio_source_wake ------------------------------- */

/* A source whose poll, once `go` is set, removes itself and wakes `t`
 * (parked with a hook) in one call, as ptrio_signal's does. */
struct src_wake {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct hooked k;
    struct hook_state h;
    ptrio_source src;
    ptrio_task *target;         /* whom the poll wakes */
    int go, rc, polls;
};

static struct src_wake *src_wake_of;

static void src_wake_poll(ptrio_source *src)
{
    struct src_wake *f = src_wake_of;

    f->polls++;
    if (f->go)
        f->rc = ptrio_source_wake(src, f->target, 7);
}

static int src_wake_main(ptrio_frame *fr)
{
    struct src_wake *f = PTRIO_SELF(fr, struct src_wake);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->k = (struct hooked){.name = "k", .h = &f->h};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, hooked, &f->k));
        PTRIO_CHECK(f, ptrio_source_add(&f->src, src_wake_poll));
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        f->go = 1;
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(!ptrio_source_added(&f->src));
        EXPECT(f->rc == 0);
        EXPECT(f->h.calls == 0);            /* woken, not aborted */
    }
    PTRIO_END(f);
}

/* The poll's one call removes the source (it is polled no more) and
 * wakes the hooked task with the value, as ptrio_source_remove then
 * ptrio_wake would; the run ends with nothing left between batches. */
START_TEST(test_source_wake)
{
    static struct src_wake m;
    reset();
    memset(&m, 0, sizeof m);
    m.target = &m.t;
    src_wake_of = &m;
    ck_assert_int_eq(run_virtual(src_wake_main, &m, NULL), 0);
    ck_expect_ok();
    ck_assert_str_eq(L.buf, "k+@0 k=7@1");
    ck_assert_int_gt(m.polls, 0);
    ck_assert(!ptrio_source_added(&m.src));
}
END_TEST

struct src_wake_bad {
    ptrio_frame fr;
    ptrio_source src;
    struct src_wake w;
    int rc[3];
};

static int src_wake_bad_main(ptrio_frame *fr)
{
    struct src_wake_bad *f = PTRIO_SELF(fr, struct src_wake_bad);
    PTRIO_BEGIN(f);
    /* The poll wakes a task that sleeps (not parked with a hook): it
     * fails as ptrio_wake does, and its source is removed all the same. */
    f->w.target = ptrio_current_task();
    f->w.go = 1;
    PTRIO_CHECK(f, ptrio_source_add(&f->src, src_wake_poll));
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
    EXPECT(!ptrio_source_added(&f->src));
    f->rc[0] = f->w.rc;
    f->rc[1] = ptrio_source_wake(NULL, NULL, 0);
    f->rc[2] = ptrio_source_wake(&f->src, ptrio_current_task(), 0);
    PTRIO_END(f);
}

/* Bad input gets ptrio_wake's error code (a trap in debug builds), and
 * leaves nothing broken: the run ends with main's status. */
START_TEST(test_source_wake_misuse)
{
    static struct src_wake_bad m;
    reset();
    memset(&m, 0, sizeof m);
    src_wake_of = &m.w;
    ck_assert_int_eq(run_virtual(src_wake_bad_main, &m, NULL), 0);
    ck_expect_ok();
    ck_assert_int_eq(m.rc[0], -PTRIO_EINVAL);
    ck_assert_int_eq(m.rc[1], -PTRIO_EINVAL);
    ck_assert_int_eq(m.rc[2], -PTRIO_EINVAL);
    ck_assert_int_eq(m.w.polls, 1);
}
END_TEST

/* Outside a loop: no task to wake, nothing removed. */
START_TEST(test_source_wake_outside_loop)
{
    static ptrio_source src;
    static ptrio_task t;
    ck_assert_int_eq(ptrio_source_wake(&src, &t, 1), -PTRIO_EINVAL);
}
END_TEST

/* Three sources: each poll counts; the middle one (added second) removes
 * itself on its second poll, the others on their fourth. A poll removing
 * its own source does not stop the walk: every source is polled each
 * time until it goes. */
struct three_src {
    ptrio_source src;           /* first: a poll gets its own */
    int polls, last;
    char name;
};

static char three_order[16];   /* the polls, in order, by name */
static size_t three_n;

static void three_poll(ptrio_source *src)
{
    struct three_src *t = (struct three_src *)(void *)src;

    if (three_n + 1 < sizeof three_order)
        three_order[three_n++] = t->name;
    if (++t->polls == t->last)
        ptrio_source_remove(src);
}

struct three_main {
    ptrio_frame fr;
    struct three_src s[3];
    int i;
};

static int three_main(ptrio_frame *fr)
{
    struct three_main *f = PTRIO_SELF(fr, struct three_main);
    PTRIO_BEGIN(f);
    for (f->i = 0; f->i < 3; f->i++) {
        f->s[f->i].last = f->i == 1 ? 2 : 4;
        f->s[f->i].name = (char)('a' + f->i);
        PTRIO_CHECK(f, ptrio_source_add(&f->s[f->i].src, three_poll));
    }
    for (f->i = 0; f->i < 6; f->i++)
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
    PTRIO_END(f);
}

START_TEST(test_sources_remove_themselves)
{
    static struct three_main m;
    reset();
    memset(&m, 0, sizeof m);
    memset(three_order, 0, sizeof three_order);
    three_n = 0;
    ck_assert_int_eq(run_virtual(three_main, &m, NULL), 0);
    ck_expect_ok();
    /* the newest first: c b a, c b a (b goes), c a, c a (both go) */
    ck_assert_str_eq(three_order, "cbacbacaca");
    ck_assert_int_eq(m.s[0].polls, 4);
    ck_assert_int_eq(m.s[1].polls, 2);
    ck_assert_int_eq(m.s[2].polls, 4);
    ck_assert(!ptrio_source_added(&m.s[0].src));
    ck_assert(!ptrio_source_added(&m.s[1].src));
    ck_assert(!ptrio_source_added(&m.s[2].src));
}
END_TEST

/* ---- an awaitable written by a user: the README's counter -------------- */

/* A counter that tasks can wait on until it reaches a value. */
struct counter {
    unsigned value;
    ptrio_lot waiters;      /* each waiter's target rides as its data */
};

/* Awaitable: returns once c->value >= target. A checkpoint, as Trio
 * wants of every blocking call, even when there is nothing to wait for. */
static int counter_wait(void *self, struct counter *c, unsigned target)
{
    if (c->value >= target)
        return ptrio_checkpoint(self);
    return ptrio_park(self, &c->waiters, (void *)(uintptr_t)target);
}

/* Not a checkpoint: wakes the waiters whose target is reached. */
static void counter_add(struct counter *c, unsigned n)
{
    ptrio_task *t = ptrio_lot_first(&c->waiters), *next;

    c->value += n;
    for (; t; t = next) {
        next = ptrio_lot_next(&c->waiters, t);
        if ((uintptr_t)ptrio_wait_data(t) <= c->value)
            ptrio_lot_unpark_task(&c->waiters, t, 0);
    }
}

struct cwaiter {
    ptrio_frame fr;
    const char *name;
    struct counter *c;
    unsigned target;
    ptrio_time timeout;
    ptrio_scope sc;
};

static int cwaiter(ptrio_frame *fr)
{
    struct cwaiter *f = PTRIO_SELF(fr, struct cwaiter);
    PTRIO_BEGIN(f);
    PTRIO_MOVE_ON_AFTER(f, &f->sc, f->timeout) {
        PTRIO_AWAIT(f, counter_wait(f, f->c, f->target));
        logn_at(&L, f->name, (long)f->c->value);
    }
    if (ptrio_cancelled_caught(&f->sc))
        ev(f->name, "-timeout");
    PTRIO_END(f);
}

struct counter_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[4];
    struct cwaiter w[4];
    struct counter c;
    int i;
};

static int counter_main(ptrio_frame *fr)
{
    struct counter_main *f = PTRIO_SELF(fr, struct counter_main);
    static const unsigned targets[] = {3, 1, 5, 2};
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        for (f->i = 0; f->i < 4; f->i++) {
            f->w[f->i] = (struct cwaiter){
                .name = names[f->i], .c = &f->c, .target = targets[f->i],
                .timeout = f->i == 2 ? PTRIO_MS(25) : PTRIO_TIME_INF};
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[f->i], cwaiter,
                                            &f->w[f->i]));
        }
        for (f->i = 0; f->i < 3; f->i++) {
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(10)));
            counter_add(&f->c, 1);
        }
    }
    /* Already reached: returns at once, but is still a checkpoint. */
    PTRIO_AWAIT(f, counter_wait(f, &f->c, 2));
    ev("done", "");
    PTRIO_END(f);
}

/* Waiters with different targets wake when theirs is reached, in FIFO
 * order among those that are; a timeout takes one out cleanly. */
START_TEST(test_user_awaitable_counter)
{
    static struct counter_main m;
    reset();
    memset(&m, 0, sizeof m);
    ck_assert_int_eq(run_virtual(counter_main, &m, NULL), 0);
    ck_expect_ok();
    ck_assert_str_eq(L.buf, "p11@10 p32@20 p2-timeout@25 p03@30 done@30");
    ck_assert(ptrio_lot_empty(&m.c.waiters));
}
END_TEST

/* ---- misuse ------------------------------------------------------------- */

struct misuse_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct parker p;
    ptrio_lot lot, other;
    int rc[6];
};

static int misuse_main(ptrio_frame *fr)
{
    struct misuse_main *f = PTRIO_SELF(fr, struct misuse_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->p = (struct parker){.name = "p", .lot = &f->lot};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, parker, &f->p));
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        f->rc[0] = ptrio_lot_unpark_task(&f->other, &f->t, 0);
        f->rc[1] = ptrio_wake(&f->t, 0);
        f->rc[2] = ptrio_park(f, NULL, NULL);
        f->rc[3] = ptrio_park(&f->p, &f->lot, NULL);   /* not our frame */
        f->rc[4] = ptrio_park_hook(f, NULL, NULL);
        EXPECT(ptrio_lot_next(&f->other, &f->t) == NULL);
        /* PTRIO_PENDING is no status: the waiter fails instead. */
        EXPECT(ptrio_lot_unpark(&f->lot, PTRIO_PENDING) == &f->t);
    }
    PTRIO_END(f);
}

/* Bad input gets an error code (a trap in debug builds). */
START_TEST(test_lot_misuse)
{
    static struct misuse_main m;
    reset();
    memset(&m, 0, sizeof m);
    ck_assert_int_eq(run_virtual(misuse_main, &m, NULL), 0);
    ck_expect_ok();
    ck_assert_int_eq(m.rc[0], -PTRIO_EINVAL);
    ck_assert_int_eq(m.rc[1], -PTRIO_EINVAL);
    ck_assert_int_eq(m.rc[2], -PTRIO_EINVAL);
    ck_assert_int_eq(m.rc[3], -PTRIO_ENOTASK);
    ck_assert_int_eq(m.rc[4], -PTRIO_EINVAL);
    ck_assert_str_eq(L.buf, "p+@0 p!PTRIO_EMISUSE@1");
    ck_assert_int_eq(ptrio_lot_set_owner(NULL, NULL), -PTRIO_EINVAL);
}
END_TEST

/* Outside a loop there is no task to park or to own a lot. */
START_TEST(test_lot_outside_loop)
{
    static ptrio_lot lot;
    static ptrio_owned_lot ol;
    static ptrio_task t;
    ck_assert_int_eq(ptrio_lot_set_owner(&ol, &t), -PTRIO_ENOTASK);
    ck_assert_ptr_null(ptrio_lot_unpark(&lot, 0));
    ck_assert_uint_eq(ptrio_lot_count(&lot), 0);
    ck_assert_ptr_null(ptrio_lot_first(NULL));
    ck_assert(!ptrio_lot_broken(NULL));
}
END_TEST

struct dropped {
    ptrio_frame fr;
    ptrio_lot lot, *key;
    int rc, rc2;
    unsigned count;
};

static int dropped_main(ptrio_frame *fr)
{
    struct dropped *f = PTRIO_SELF(fr, struct dropped);
    PTRIO_BEGIN(f);
    f->key = &f->lot;
    /* A park whose PTRIO_PENDING is dropped (no PTRIO_AWAIT): the next
     * await refuses, and undoes the park (here, a keyed one). */
    f->rc = ptrio_park_key(f, &f->key, NULL);
    PTRIO_TRY(f, f->rc2, ptrio_checkpoint(f));
    f->count = ptrio_lot_count(&f->lot);
    PTRIO_END(f);
}

START_TEST(test_dropped_park_is_undone)
{
    static struct dropped m;
    reset();
    memset(&m, 0, sizeof m);
    ck_assert_int_eq(run_virtual(dropped_main, &m, NULL), 0);
    ck_assert_int_eq(m.rc, PTRIO_PENDING);
    ck_assert_int_eq(m.rc2, -PTRIO_EMISUSE);
    ck_assert_uint_eq(m.count, 0);
    ck_assert_ptr_null(m.lot.head);
}
END_TEST

START_TEST(test_park_outside_loop)
{
    static ptrio_lot lot;
    static ptrio_frame fr;
    ck_assert_int_eq(ptrio_park(&fr, &lot, NULL), -PTRIO_ENOTASK);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("lot");
    TCase *tc = tcase_create("lot");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_parking_lot_basic);
    tcase_add_test(tc, test_parking_lot_cancel);
    tcase_add_test(tc, test_parking_lot_repark);
    tcase_add_test(tc, test_lot_repark_onto_itself);
    tcase_add_test(tc, test_unpark_values_and_data);
    tcase_add_test(tc, test_park_is_a_cancel_point);
    tcase_add_test(tc, test_park_key);
    tcase_add_test(tc, test_park_unless);
    tcase_add_misuse_test(tc, test_park_unless_misuse);
    tcase_add_test(tc, test_break_lot);
    tcase_add_test(tc, test_owned_lots);
    tcase_add_test(tc, test_owned_lot_break_itself);
    tcase_add_test(tc, test_parking_lot_breaker_registration);
    tcase_add_test(tc, test_parking_lot_breaker_rebreak);
    tcase_add_test(tc, test_park_hook);
    tcase_add_test(tc, test_slow_abort_edge_cases);
    tcase_add_misuse_test(tc, test_abort_hook_refusing_in_deadlock);
    tcase_add_test(tc, test_source_wake);
    tcase_add_test(tc, test_sources_remove_themselves);
    tcase_add_misuse_test(tc, test_source_wake_misuse);
    tcase_add_misuse_test(tc, test_source_wake_outside_loop);
    tcase_add_test(tc, test_user_awaitable_counter);
    tcase_add_misuse_test(tc, test_lot_misuse);
    tcase_add_test(tc, test_lot_outside_loop);
    tcase_add_misuse_test(tc, test_park_outside_loop);
    tcase_add_misuse_test(tc, test_dropped_park_is_undone);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
