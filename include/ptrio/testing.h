/* ptrio/testing.h: for your own test suites. A mock clock you drive,
 * virtual time with autojump, and a one-call virtual run, as Trio's
 * trio.testing.MockClock; ptrio_wait_all_tasks_blocked is in core.h.
 *
 *     static ptrio_mock_clock clock;
 *     static ptrio_loop loop;
 *     ptrio_loop_init(&loop);                    (a real backend: epoll)
 *     ptrio_mock_clock_init(&clock, 0);
 *     ptrio_mock_clock_set_autojump(&clock, PTRIO_MS(10));
 *     ptrio_loop_use_clock(&loop, &clock.clock);
 *     rc = ptrio_loop_run(&loop, my_test, &frame);
 *
 * A test that sleeps an hour then takes 10 ms of real time per jump, and
 * real I/O (sockets, pipes) still works. ptrio_run_virtual runs on the
 * virtual backend instead: no real time at all.
 */
#ifndef PTRIO_TESTING_H
#define PTRIO_TESTING_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A clock that only moves when told (jump), with autojump, or at a rate
 * of the backend's (real) time. Caller-owned; fields are private. */
typedef struct ptrio_mock_clock {
    ptrio_clock clock;              /* give &clock to ptrio_loop_use_clock */
    ptrio_time base;                /* the time at `real_base` */
    ptrio_time real_base;           /* the backend's time at that moment */
    ptrio_time real_last;           /* its time when last read */
    uint32_t rate;                  /* per mille of the backend's time */
    ptrio_loop *loop;               /* the loop it was last read in */
} ptrio_mock_clock;

/* Prepares a clock reading `start`, frozen (rate 0), without autojump. */
void ptrio_mock_clock_init(ptrio_mock_clock *c, ptrio_time start);

/* Moves the clock forward by `d` (>= 0): deadlines that pass fire between
 * the next batches. Call it on the loop's thread. Returns 0, or
 * -PTRIO_EINVAL for d < 0. */
int ptrio_mock_clock_jump(ptrio_mock_clock *c, ptrio_time d);

/* Autojump: once every task has been blocked for `threshold` of the
 * backend's (real) time, the clock jumps to the next deadline; 0 jumps at
 * once (as does a negative one), PTRIO_TIME_INF never (the default).
 * Trio's autojump_threshold;
 * unlike Trio, with no deadline at all the loop simply waits (for I/O, a
 * source or a deadlock) instead of spinning. */
void ptrio_mock_clock_set_autojump(ptrio_mock_clock *c, ptrio_time threshold);

/* The clock runs at `per_mille`/1000 of the backend's time (0: frozen, the
 * default; 1000: real time). Trio's rate. Real time is read from the
 * backend of the loop running where the clock is read: between runs it
 * stands still (also between two runs of one loop: its start hook), so
 * a clock carries on from one run to the next. */
void ptrio_mock_clock_set_rate(ptrio_mock_clock *c, uint32_t per_mille);

/* The clock's reading (also ptrio_now() inside its loop's run). */
ptrio_time ptrio_mock_clock_now(ptrio_mock_clock *c);

/* Runs `fn` over `frame` on a fresh loop with the virtual backend (time
 * starts at 0 and jumps to the next deadline whenever every task is
 * blocked) and no report sink. Returns what ptrio_loop_run returns. */
int ptrio_run_virtual_named(ptrio_fn fn, void *frame, const char *name);
#define ptrio_run_virtual(fn, frame)                                        \
    ptrio_run_virtual_named((fn), (frame), #fn)

#ifdef __cplusplus
}
#endif

#endif /* PTRIO_TESTING_H */
