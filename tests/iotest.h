/* tests/iotest.h: what the I/O suites share (hosted only). Each suite is
 * built once per backend with -DTEST_BACKEND=epoll|poll|select; run_io
 * runs a main task on a fresh loop with that backend. Real time is used
 * (sockets cannot run on the virtual clock): every wait in these suites is
 * bounded by a FAIL_AFTER, and real sleeps are a few tens of ms. */
#ifndef PTRIO_IOTEST_H
#define PTRIO_IOTEST_H

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#define IO_CAT2(a, b) a##b
#define IO_CAT(a, b) IO_CAT2(a, b)
#define IO_STR2(a) #a
#define IO_STR(a) IO_STR2(a)

#ifndef TEST_BACKEND
#define TEST_BACKEND poll
#endif
#define TEST_BACKEND_OPS IO_CAT(ptrio_backend_, TEST_BACKEND)
#define TEST_BACKEND_NAME IO_STR(TEST_BACKEND)

/* Which backend this build of the suite tests. */
#define IO_EPOLL (TEST_BACKEND_NAME[0] == 'e')
#define IO_SELECT (TEST_BACKEND_NAME[0] == 's')
#define IO_POLL (TEST_BACKEND_NAME[0] == 'p')

static ptrio_loop io_loop;
static treport io_rep;

/* Runs `fn` over `frame` on a fresh loop with the suite's backend; reports
 * go to io_rep. */
static inline int run_io_named(ptrio_fn fn, void *frame, const char *name)
{
    loop_setup(&io_loop, &TEST_BACKEND_OPS, &io_rep);
    return ptrio_loop_run_named(&io_loop, fn, frame, name);
}
#define run_io(fn, frame) run_io_named((fn), (frame), #fn)

/* The monotonic clock in ms, for bounds on real time. */
static inline long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    ck_assert_int_ge(fl, 0);
    ck_assert_int_eq(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

/* Raises the soft fd limit to `n` (at most the hard limit). */
static inline void want_fds(rlim_t n)
{
    struct rlimit rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < n) {
        rl.rlim_cur = n < rl.rlim_max ? n : rl.rlim_max;
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
}

/* Adds the suite's name with the backend: "io/epoll". */
static inline int run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif /* PTRIO_IOTEST_H */
