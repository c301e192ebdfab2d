/* tests/synctest.h: what the lot, sync and chan suites share, on top of
 * testutil.h (with its event helpers). Portable: no POSIX calls. */
#ifndef PTRIO_SYNCTEST_H
#define PTRIO_SYNCTEST_H

#include <stdlib.h>

#define TESTUTIL_EVENTS
#include "testutil.h"

/* Checks made inside a run are recorded, not asserted: a failed ck_assert
 * would leave the loop running (and CK_FORK=no has no process to throw
 * away). Each test asserts ck_expect_ok() after its run. */
static int expect_fails;
static char expect_what[160];

static inline void expect_at(int ok, const char *what, int line)
{
    if (ok || expect_fails++)
        return;
    fmt(expect_what, "line ", line);
    strncat(expect_what, ": ", sizeof expect_what - strlen(expect_what) - 1);
    strncat(expect_what, what, sizeof expect_what - strlen(expect_what) - 1);
}
#define EXPECT(cond) expect_at((cond) != 0, #cond, __LINE__)
#define ck_expect_ok() ck_assert_msg(expect_fails == 0, "%s", expect_what)

/* Clears the log and the recorded checks. */
static inline void reset(void)
{
    tlog_clear(&L);
    expect_fails = 0;
    expect_what[0] = '\0';
}

/* Logs "<who>=<v>@<ms>" for a status >= 0, "<who>!<ERR>@<ms>" otherwise. */
static inline void ev_rc(const char *who, int rc)
{
    char b[48];
    if (rc < 0) {
        ev_err(who, rc);
        return;
    }
    fmt(b, "=", rc);
    ev(who, b);
}

static const char *const names[] = {"p0", "p1", "p2", "p3", "p4", "p5",
                                    "p6", "p7", "p8", "p9"};

/* A test that runs `fn` as its main task and checks it ended with `rc`
 * and no failed EXPECT. */
#define RUN_MAIN(fn, m, rc)                                                 \
    do {                                                                    \
        reset();                                                            \
        memset(&(m), 0, sizeof(m));                                         \
        ck_assert_int_eq(run_virtual(fn, &(m), NULL), (rc));                \
        ck_expect_ok();                                                     \
    } while (0)

#endif /* PTRIO_SYNCTEST_H */
