/* tests/check_tree.c: the deadline tree, white-box: red-black invariants
 * (or the sorted list's links, with PTRIO_CONF_TIMER_LIST), the cached
 * earliest node, and (deadline, insertion) order, under random inserts and
 * removals. Portable: no POSIX calls. */
#include <check.h>
#include <stdlib.h>

#include "../src/core/internal.h"

#ifndef TEST_CONF_TREE_N
#define TEST_CONF_TREE_N 3000  /* small targets: -DTEST_CONF_TREE_N=n */
#endif
#define N TEST_CONF_TREE_N

static ptrio__tnode nodes[N];
static int in_tree[N];
static long armed_at[N];
static ptrio_loop loop;

static ptrio__tnode *up(const ptrio__tnode *n)
{
    return (ptrio__tnode *)(n->parent & ~(uintptr_t)3);
}

static int red(const ptrio__tnode *n) { return n && (n->parent & 1u); }

/* Checks the subtree; returns its black height, counts its nodes. */
static int check(const ptrio__tnode *n, const ptrio__tnode *parent, int *count)
{
    int a, b;
    if (!n)
        return 1;
    (*count)++;
    ck_assert_ptr_eq(up(n), parent);
    ck_assert(!(red(n) && (red(n->child[0]) || red(n->child[1]))));
    if (n->child[0])
        ck_assert(ptrio__timer_when(n->child[0]) <= ptrio__timer_when(n));
    if (n->child[1])
        ck_assert(ptrio__timer_when(n->child[1]) >= ptrio__timer_when(n));
    a = check(n->child[0], n, count);
    b = check(n->child[1], n, count);
    ck_assert_int_eq(a, b);
    return a + !red(n);
}

/* The list variant (PTRIO_CONF_TIMER_LIST): linked both ways, in order,
 * from loop.first to loop.timers; counts its nodes. */
static void check_list(int *count)
{
    const ptrio__tnode *n, *prev = NULL;

    for (n = loop.first; n; prev = n, n = n->child[1]) {
        (*count)++;
        ck_assert_ptr_eq(n->child[0], prev);
        if (prev)
            ck_assert(ptrio__timer_when(prev) <= ptrio__timer_when(n));
    }
    ck_assert_ptr_eq(loop.timers, prev);
}

static int earlier(int i, int j)
{
    ptrio_time a = ptrio__timer_when(&nodes[i]), b = ptrio__timer_when(&nodes[j]);
    return a < b || (a == b && armed_at[i] < armed_at[j]);
}

static void verify(int live)
{
    int count = 0, best = -1, j;
    if (PTRIO_CONF_TIMER_LIST)
        check_list(&count);
    else
        check(loop.timers, NULL, &count);
    ck_assert_int_eq(count, live);
    ck_assert(!red(loop.timers));
    for (j = 0; j < N; j++)
        if (in_tree[j] && (best < 0 || earlier(j, best)))
            best = j;
    if (best < 0)
        ck_assert_ptr_null(loop.first);
    else
        ck_assert_ptr_eq(loop.first, &nodes[best]);
}

/* Random inserts (few distinct deadlines, so many ties, some negative)
 * and removals keep every invariant; draining gives deadline order, ties
 * in the order they were armed. */
START_TEST(test_random_operations)
{
    long seq = 0, last_seq = -1;
    ptrio_time last = PTRIO_TIME_NINF;
    int it, live = 0;

    srand(7);
    for (it = 0; it < 200000; it++) {
        int i = rand() % N;
        if (in_tree[i]) {
            ptrio__timer_del(&loop, &nodes[i]);
            in_tree[i] = 0;
            live--;
        } else {
            ptrio__timer_add(&loop, &nodes[i], rand() % 50 - 10, it & 1);
            ck_assert_int_eq(ptrio__timer_is_scope(&nodes[i]), it & 1);
            in_tree[i] = 1;
            armed_at[i] = seq++;
            live++;
        }
        if (it % 2003 == 0)
            verify(live);
    }
    verify(live);
    while (loop.first) {
        ptrio__tnode *n = loop.first;
        int j = (int)(n - nodes);
        ptrio_time w = ptrio__timer_when(n);
        ck_assert(w > last || (w == last && armed_at[j] > last_seq));
        last = w;
        last_seq = armed_at[j];
        ptrio__timer_del(&loop, n);
        live--;
    }
    ck_assert_int_eq(live, 0);
    ck_assert_ptr_null(loop.timers);
}
END_TEST

/* Deadlines keep their value across the whole int64 range. */
START_TEST(test_key_round_trip)
{
    static const ptrio_time v[] = {PTRIO_TIME_NINF, -1, 0, 1, INT64_MAX - 1,
                                   PTRIO_SEC(3600)};
    size_t i;
    for (i = 0; i < sizeof v / sizeof v[0]; i++) {
        ptrio__timer_set_when(&nodes[0], v[i]);
        ck_assert(ptrio__timer_when(&nodes[0]) == v[i]);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tree");
    TCase *tc = tcase_create("tree");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_random_operations);
    tcase_add_test(tc, test_key_round_trip);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
