/* tests/check_io.c: fd waits on the poll backend (hosted: uses pipes).
 * No test depends on real time: tasks wake each other through pipes. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <unistd.h>

#include "testutil.h"

static int fds[2];

static int run_poll(ptrio_fn fn, void *frame)
{
    ptrio_loop loop;
    loop_setup(&loop, &ptrio_backend_poll, NULL);
    return ptrio_loop_run_named(&loop, fn, frame, "main");
}

static void setup(void)
{
    tlog_clear(&L);
    ck_assert_int_eq(pipe(fds), 0);
}

static void teardown(void)
{
    close(fds[0]);
    close(fds[1]);
}

struct reader {
    ptrio_frame fr;
    int rc;
};

static int reader(ptrio_frame *fr)
{
    struct reader *r = PTRIO_SELF(fr, struct reader);
    PTRIO_BEGIN(r);
    tlog_add(&L, "wait");
    PTRIO_TRY(r, r->rc, ptrio_wait_readable(r, fds[0]));
    tlog_add(&L, r->rc == PTRIO_READABLE ? "readable"
               : r->rc == -PTRIO_ECLOSED ? "closed"
               : r->rc == -PTRIO_ECANCELED ? "cancelled" : "other");
    PTRIO_END(r);
}

struct writer {
    ptrio_frame fr;
    int rc;
};

static int writer(ptrio_frame *fr)
{
    struct writer *w = PTRIO_SELF(fr, struct writer);
    PTRIO_BEGIN(w);
    PTRIO_AWAIT(w, ptrio_wait_writable(w, fds[1]));
    tlog_add(&L, "write");
    ck_assert_int_eq(write(fds[1], "x", 1), 1);
    PTRIO_END(w);
}

struct pair {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[3];
    struct reader r[2];
    struct writer w;
    int mode, rc;
};

static int pair(ptrio_frame *fr)
{
    struct pair *p = PTRIO_SELF(fr, struct pair);
    PTRIO_BEGIN(p);
    PTRIO_NURSERY(p, &p->n) {
        PTRIO_CHECK(p, ptrio_start_soon(&p->n, &p->t[0], reader, &p->r[0]));
        PTRIO_AWAIT(p, ptrio_checkpoint(p));    /* the reader parks first */
        if (p->mode == 0) {
            PTRIO_CHECK(p, ptrio_start_soon(&p->n, &p->t[1], writer, &p->w));
        } else if (p->mode == 1) {
            p->rc = ptrio_notify_closing(fds[0]);
        } else {
            ptrio_nursery_cancel(&p->n);
        }
    }
    PTRIO_END(p);
}

static struct pair P;

/* A reader parked on a pipe wakes when a writer writes. */
START_TEST(test_pipe_wakes_reader)
{
    P = (struct pair){.mode = 0};
    ck_assert_int_eq(run_poll(pair, &P), 0);
    ck_assert_str_eq(L.buf, "wait write readable");
}
END_TEST

/* Trio's notify_closing: waiters wake with ClosedResourceError. */
START_TEST(test_notify_closing_wakes_waiter)
{
    P = (struct pair){.mode = 1};
    ck_assert_int_eq(run_poll(pair, &P), 0);
    ck_assert_int_eq(P.rc, 1);
    ck_assert_str_eq(L.buf, "wait closed");
}
END_TEST

/* A task parked on an fd is cancellable like any other wait. */
START_TEST(test_fd_wait_is_cancellable)
{
    P = (struct pair){.mode = 2};
    ck_assert_int_eq(run_poll(pair, &P), 0);
    ck_assert_str_eq(L.buf, "wait cancelled");
}
END_TEST

struct twice {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct reader r;
    int rc[4];
};

static int twice(ptrio_frame *fr)
{
    struct twice *w = PTRIO_SELF(fr, struct twice);
    PTRIO_BEGIN(w);
    PTRIO_NURSERY(w, &w->n) {
        PTRIO_CHECK(w, ptrio_start_soon(&w->n, &w->t, reader, &w->r));
        PTRIO_AWAIT(w, ptrio_checkpoint(w));
        PTRIO_TRY(w, w->rc[0], ptrio_wait_readable(w, fds[0]));
        PTRIO_TRY(w, w->rc[1], ptrio_wait_readable(w, -1));
        w->rc[2] = ptrio_notify_closing(fds[0]);
        w->rc[3] = ptrio_notify_closing(fds[0]);
    }
    PTRIO_END(w);
}

/* Two tasks waiting on one fd for the same direction: the second gets
 * -EBUSY (Trio's BusyResourceError); a negative fd is -EBADF. */
START_TEST(test_second_waiter_and_bad_fd)
{
    static struct twice W;
    ck_assert_int_eq(run_poll(twice, &W), 0);
    ck_assert_int_eq(W.rc[0], -PTRIO_EBUSY);
    ck_assert_int_eq(W.rc[1], -PTRIO_EBADF);
    ck_assert_int_eq(W.rc[2], 1);
    ck_assert_int_eq(W.rc[3], 0);
    ck_assert_str_eq(L.buf, "wait closed");
}
END_TEST

struct lone {
    ptrio_frame fr;
    int rc;
};

static int lone(ptrio_frame *fr)
{
    struct lone *o = PTRIO_SELF(fr, struct lone);
    PTRIO_BEGIN(o);
    PTRIO_TRY(o, o->rc, ptrio_wait_readable(o, fds[0]));
    PTRIO_END(o);
}

/* The virtual clock has no fd waits: -ENOTSUP, not a hang. Outside a
 * task, an fd wait is -PTRIO_ENOTASK. */
START_TEST(test_virtual_has_no_fd_waits)
{
    static struct lone O;
    ck_assert_int_eq(run_virtual(lone, &O, NULL), 0);
    ck_assert_int_eq(O.rc, -PTRIO_ENOTSUP);
    ck_assert_int_eq(ptrio_wait_readable(&O, fds[0]), -PTRIO_ENOTASK);
    ck_assert_int_eq(ptrio_notify_closing(fds[0]), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("io");
    TCase *tc = tcase_create("io");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_pipe_wakes_reader);
    tcase_add_test(tc, test_notify_closing_wakes_waiter);
    tcase_add_test(tc, test_fd_wait_is_cancellable);
    tcase_add_test(tc, test_second_waiter_and_bad_fd);
    tcase_add_misuse_test(tc, test_virtual_has_no_fd_waits);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
