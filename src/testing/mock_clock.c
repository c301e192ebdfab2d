/* src/testing/mock_clock.c: the mock clock of <ptrio/testing.h>, a
 * ptrio_clock over whatever backend the loop has, and the one-call
 * virtual run. Nothing here is in the core: the core only knows clocks. */
#include <ptrio/backend.h>
#include <ptrio/testing.h>

#include <string.h>

/* The latest time a mock clock reads: the type's limit, short of "never". */
#define LATEST (PTRIO_TIME_INF - 1)

/* x * mul / div for x >= 0, without overflowing: LATEST when it would.
 * Rounded down, or up with `up` set (a sleep time never short of its
 * deadline). */
static ptrio_time scaled(ptrio_time x, ptrio_time mul, ptrio_time div,
                         int up)
{
    ptrio_time q = x / div;
    ptrio_time part = (x % div * mul + (up ? div - 1 : 0)) / div;

    if (mul && q > (LATEST - part) / mul)
        return LATEST;
    return q * mul + part;
}

static ptrio_time add_capped(ptrio_time a, ptrio_time b)
{
    return a > LATEST - b ? LATEST : a + b;
}

/* The reading at real time `real` of the backend followed. */
static ptrio_time reading_at(const ptrio_mock_clock *m, ptrio_time real)
{
    return add_capped(m->base, scaled(real - m->real_base,
                                      (ptrio_time)m->rate, 1000, 0));
}

/* Real time is the backend's of the loop running where the clock is read;
 * outside a run it stands still at the last reading (a loop that ended
 * may be gone: it is never read again). A clock read in another loop, or
 * whose backend's time went back (a new loop where the old one was), goes
 * on from its reading there. */
static ptrio_time real_now(ptrio_mock_clock *m)
{
    ptrio_loop *cur = ptrio_current_loop();
    ptrio_time real;

    if (cur) {
        real = cur->backend->now(cur);
        if (cur != m->loop || real < m->real_last) {
            m->base = reading_at(m, m->real_last);
            m->loop = cur;
            m->real_base = real;
        }
        m->real_last = real;
    }
    return m->real_last;
}

ptrio_time ptrio_mock_clock_now(ptrio_mock_clock *m)
{
    ptrio_time real = real_now(m);

    return m->rate ? reading_at(m, real) : m->base;
}

static ptrio_time mock_now(ptrio_clock *c)
{
    return ptrio_mock_clock_now((ptrio_mock_clock *)(void *)c);
}

/* Starts a new base at the current reading, so that rate changes and
 * jumps apply from now on. */
static void rebase(ptrio_mock_clock *m)
{
    m->base = ptrio_mock_clock_now(m);
    m->real_base = m->real_last;
}

static ptrio_time mock_sleep_time(ptrio_clock *c, ptrio_time deadline)
{
    ptrio_mock_clock *m = (ptrio_mock_clock *)(void *)c;
    ptrio_time now;
    ptrio_time ahead;

    if (deadline == PTRIO_TIME_INF)
        return PTRIO_TIME_INF;
    now = ptrio_mock_clock_now(m);
    if (deadline <= now)
        return 0;
    if (!m->rate)
        return PTRIO_TIME_INF;
    /* A clock below 0 and a far deadline: the distance saturates. */
    ahead = now < 0 && deadline > PTRIO_TIME_INF - 1 + now
                ? PTRIO_TIME_INF - 1 : deadline - now;
    /* Rounded up: once that much real time passed, the clock (rounded
     * down) reads the deadline. Rounded down, a remainder shorter than a
     * real nanosecond (rate > 1000) would ask for waits of 0, for ever. */
    return scaled(ahead, 1000, (ptrio_time)m->rate, 1);
}

static void mock_jump_to(ptrio_clock *c, ptrio_time deadline)
{
    ptrio_mock_clock *m = (ptrio_mock_clock *)(void *)c;

    if (deadline > ptrio_mock_clock_now(m)) {
        rebase(m);
        m->base = deadline;     /* a jump of deadline - now, which may
                                   not fit when the clock reads below 0 */
    }
}

/* A run starts: the backend's time in between, which may have passed in
 * the same loop, does not count; the next reading carries on from the
 * last (real_now rebases on a loop it did not read last). */
static void mock_start(ptrio_clock *c)
{
    ((ptrio_mock_clock *)(void *)c)->loop = NULL;
}

void ptrio_mock_clock_init(ptrio_mock_clock *m, ptrio_time start)
{
    memset(m, 0, sizeof *m);
    m->clock.now = mock_now;
    m->clock.sleep_time = mock_sleep_time;
    m->clock.jump_to = mock_jump_to;
    m->clock.start = mock_start;
    m->clock.autojump = PTRIO_TIME_INF;
    m->base = start;
}

int ptrio_mock_clock_jump(ptrio_mock_clock *m, ptrio_time d)
{
    if (d < 0)
        return -PTRIO_EINVAL;
    rebase(m);
    m->base = add_capped(m->base, d);
    return 0;
}

void ptrio_mock_clock_set_autojump(ptrio_mock_clock *m, ptrio_time threshold)
{
    m->clock.autojump = threshold < 0 ? 0 : threshold;
}

void ptrio_mock_clock_set_rate(ptrio_mock_clock *m, uint32_t per_mille)
{
    rebase(m);
    m->rate = per_mille;
}

int ptrio_run_virtual_named(ptrio_fn fn, void *frame, const char *name)
{
    ptrio_loop loop;
    int rc;

    (void)ptrio_loop_init(&loop);          /* a new loop: never refused */
    ptrio_loop_set_report(&loop, NULL, NULL);
    rc = ptrio_loop_use_backend(&loop, &ptrio_backend_virtual);
    return rc < 0 ? rc : ptrio_loop_run_named(&loop, fn, frame, name);
}
