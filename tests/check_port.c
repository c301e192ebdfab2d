/* tests/check_port.c: the Cortex-M port's clocks, on QEMU (a port build
 * only). SysTick: its 24-bit wraps counted once each, by whichever of a
 * reader and the handler notices first. A fake 32-bit counter at 1 MHz
 * (1 count = 1000 ns) stands in for the part's: the 64-bit extension
 * across many wraps, and the beat that keeps the clock read at least every
 * 2^31 counts. */
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include <ptrio.h>

#include <ptrio/port.h>

#define WRAP ((int64_t)1 << 32)
#define BEAT 0x80000000u

static uint32_t fake, step, alarm_at;
static int alarms, late;
static volatile int fires;

/* Each read advances the counter by `step` first (0: it stands still). */
static uint32_t fake_read(void)
{
    fake += step;
    return fake;
}

#define ICSR (*(volatile uint32_t *)0xE000ED04u)
#define ICSR_PENDSVSET (1u << 28)

/* With `late` set, the next arming takes so long that its time passes.
 * With `fires` set (a count), the alarm fires: PendSV stands for its
 * interrupt. A beat (an alarm a half wrap ahead) never fires here. */
static void fake_alarm(uint32_t at)
{
    alarm_at = at;
    alarms++;
    if (late) {
        late = 0;
        fake = at + 10u;
    }
    if (fires && at - fake != BEAT)
        ICSR = ICSR_PENDSVSET;
}

/* The alarm's interrupt: the counter has reached the alarm. */
void PendSV_Handler(void);
__attribute__((__weak__)) void PendSV_Handler(void)
{
    fake = alarm_at;
    fires--;
    ptrio_cortex_m_alarm_isr();
}

/* ---- SysTick ------------------------------------------------------------ */

#define CPU_HZ 16000000u
#define TICK_NS 1000000         /* 1 kHz */

/* The microbit board clocks the port from TIMER0 and leaves SysTick's
 * vector alone; the MPS2 boards' own handler (mps2.c) overrides this one. */
void SysTick_Handler(void);
__attribute__((__weak__)) void SysTick_Handler(void)
{
    ptrio_cortex_m_systick_isr();
}

/* Back-to-back reads across many ticks: never backwards, never a jump of
 * a whole tick (a wrap counted twice, or a value from before a wrap read
 * with the count after it). */
START_TEST(test_systick_reads_are_monotonic)
{
    int64_t first, prev, now;
    long reads = 0;

    ck_assert_int_eq(ptrio_cortex_m_use_systick(CPU_HZ, 1000u), 0);
    first = prev = ptrio_cortex_m_now();
    do {
        now = ptrio_cortex_m_now();
        ck_assert_msg(now >= prev, "back by %ld ns after %ld reads",
                      (long)(prev - now), reads);
        ck_assert_msg(now - prev < TICK_NS / 2, "a jump of %ld ns",
                      (long)(now - prev));
        prev = now;
        reads++;
    } while (now - first < 20 * (int64_t)TICK_NS && reads < 10000000L);
    ck_assert(now - first >= 20 * (int64_t)TICK_NS);
}
END_TEST

/* A reader with interrupts masked across a wrap counts it (COUNTFLAG);
 * the handler that then runs finds nothing left to count. */
START_TEST(test_systick_masked_reader_counts_the_wrap)
{
    ptrio_irqstate st;
    int64_t start, now, after;

    ck_assert_int_eq(ptrio_cortex_m_use_systick(CPU_HZ, 1000u), 0);
    st = ptrio_port_critical_enter();
    start = ptrio_cortex_m_now();
    do {
        now = ptrio_cortex_m_now();
    } while (now - start < TICK_NS / 2 * 3);
    ptrio_port_critical_exit(st);     /* the SysTick handler runs */
    after = ptrio_cortex_m_now();
    ck_assert(after >= now);
    ck_assert_msg(after - now < TICK_NS / 4, "the wrap counted twice: %ld ns",
                  (long)(after - now));
}
END_TEST

/* The wait restores the interrupt mask it found: called with interrupts
 * masked (a caller's critical section) it polls, sleeps until a deadline
 * (WFI still wakes on the pending tick, and the clock counts the wraps the
 * masked handler cannot) and returns with them still masked. A wake that
 * came before the wait began ends it at once. */
START_TEST(test_wait_keeps_the_mask)
{
    static ptrio_loop loop;
    const ptrio_backend *be = &ptrio_backend_cortex_m;
    ptrio_irqstate st, inner;
    ptrio_time deadline, end;
    int rc0, rc1;

    ck_assert_int_eq(ptrio_cortex_m_use_systick(CPU_HZ, 1000u), 0);
    ptrio_loop_init(&loop);
    ck_assert_int_eq(be->open(&loop), 0);
    st = ptrio_port_critical_enter();
    rc0 = be->wait(&loop, PTRIO_TIME_NINF);
    deadline = be->now(&loop) + 3 * TICK_NS;
    rc1 = be->wait(&loop, deadline);
    end = be->now(&loop);
    inner = ptrio_port_critical_enter();        /* still masked? */
    ptrio_port_critical_exit(inner);
    ptrio_port_critical_exit(st);
    ck_assert_int_eq(rc0, 0);
    ck_assert_int_eq(rc1, 0);
    ck_assert_uint_ne(inner, 0);
    ck_assert(end >= deadline);
    ck_assert(end - deadline < 2 * TICK_NS);

    be->wake(&loop);
    deadline = be->now(&loop) + PTRIO_SEC(1);
    ck_assert_int_eq(be->wait(&loop, deadline), 0);
    ck_assert(be->now(&loop) < deadline - PTRIO_MS(900));
}
END_TEST

/* Sleeping tasks on the ticking clock (the QEMU boards clock the port
 * from a counter, tickless): each wakes in deadline order, never before
 * its deadline, and by the tick after it. */
struct ticker {
    ptrio_frame fr;
    int ms;
    ptrio_time deadline;
};

static int order[3], woken;
static ptrio_time late_by[3];

static int ticker(ptrio_frame *fr)
{
    struct ticker *f = PTRIO_SELF(fr, struct ticker);
    PTRIO_BEGIN(f);
    f->deadline = ptrio_now() + PTRIO_MS(f->ms);
    PTRIO_AWAIT(f, ptrio_sleep_until(f, f->deadline));
    late_by[woken] = ptrio_now() - f->deadline;
    order[woken++] = f->ms;
    PTRIO_END(f);
}

struct tickers {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[3];
    struct ticker k[3];
};

static int tickers(ptrio_frame *fr)
{
    struct tickers *f = PTRIO_SELF(fr, struct tickers);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], ticker, &f->k[0]));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], ticker, &f->k[1]));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[2], ticker, &f->k[2]));
    }
    PTRIO_END(f);
}

START_TEST(test_systick_sleeps)
{
    static struct tickers f;
    int i;

    ck_assert_int_eq(ptrio_cortex_m_use_systick(CPU_HZ, 1000u), 0);
    memset(&f, 0, sizeof f);
    f.k[0].ms = 5;
    f.k[1].ms = 1;
    f.k[2].ms = 3;
    woken = 0;
    ck_assert_int_eq(ptrio_run(tickers, &f), 0);
    ck_assert_int_eq(woken, 3);
    ck_assert_int_eq(order[0], 1);
    ck_assert_int_eq(order[1], 3);
    ck_assert_int_eq(order[2], 5);
    for (i = 0; i < 3; i++) {
        ck_assert(late_by[i] >= 0);
        ck_assert_msg(late_by[i] < 2 * TICK_NS, "%d ms sleep woke %ld ns late",
                      order[i], (long)late_by[i]);
    }
}
END_TEST

/* ---- a counter of the part's ---------------------------------------------- */

static const ptrio_cortex_m_counter tickless = {1000000u, fake_read,
                                                fake_alarm};
static const ptrio_cortex_m_counter plain = {1000000u, fake_read, NULL};

static void use(const ptrio_cortex_m_counter *c, uint32_t start)
{
    fake = start;
    step = 0;
    alarms = 0;
    ck_assert_int_eq(ptrio_cortex_m_use_counter(c), 0);
}

/* Reads up to 2^32 - 1 counts apart each notice their wrap: the clock is
 * the counter's count since its zero, in 64 bits, over five wraps. */
START_TEST(test_counter_wraps)
{
    static const uint32_t gaps[] = {0x7FFFFFFFu, 0xFFFFFFFFu, 1u,
                                    0x80000001u, 0xFFFFFFF0u, 12345u,
                                    0xFFFFFFFFu, 0x40000000u};
    int64_t counts = 0xF0000000;
    size_t i;

    use(&plain, 0xF0000000u);
    ck_assert(ptrio_cortex_m_now() == counts * 1000);
    for (i = 0; i < sizeof gaps / sizeof gaps[0]; i++) {
        fake += gaps[i];
        counts += gaps[i];
        ck_assert(ptrio_cortex_m_now() == counts * 1000);
    }
    ck_assert(counts > 5 * WRAP);
}
END_TEST

/* Tickless: setting the clock up arms the first beat 2^31 counts ahead;
 * each alarm interrupt reads the clock and arms the next. Beats alone
 * keep it right over four wraps, with no other read (no loop running). */
START_TEST(test_beat_keeps_the_clock)
{
    int64_t counts = 0xF0000000;
    int i;

    use(&tickless, 0xF0000000u);
    ck_assert_int_eq(alarms, 1);
    ck_assert_uint_eq(alarm_at, 0xF0000000u + BEAT);
    for (i = 0; i < 8; i++) {
        fake = alarm_at;                /* the alarm fires */
        counts += BEAT;
        ptrio_cortex_m_alarm_isr();
        ck_assert_uint_eq(alarm_at, fake + BEAT);
    }
    ck_assert_int_eq(alarms, 9);
    ck_assert(ptrio_cortex_m_now() == counts * 1000);
    ck_assert(counts == 0xF0000000 + 4 * WRAP);
}
END_TEST

/* Without set_alarm the interrupt has nothing to arm: it only reads. */
START_TEST(test_alarm_isr_without_alarm)
{
    use(&plain, 100u);
    fake = 0x90000000u;
    ptrio_cortex_m_alarm_isr();
    ck_assert_int_eq(alarms, 0);
    ck_assert(ptrio_cortex_m_now() == (int64_t)0x90000000u * 1000);
}
END_TEST

struct nap {
    ptrio_frame fr;
};

static int nap(ptrio_frame *fr)
{
    struct nap *f = PTRIO_SELF(fr, struct nap);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
    PTRIO_END(f);
}

/* A sleep whose alarm has passed by the time it is armed does not sleep,
 * and arms the next beat instead: a match left behind would not come for
 * a whole wrap, and the clock would go unread that long if the tasks then
 * never slept. */
START_TEST(test_passed_alarm_rearms_the_beat)
{
    static struct nap f;
    use(&tickless, 1000u);
    late = 1;
    ck_assert_int_eq(ptrio_run(nap, &f), 0);
    ck_assert_int_eq(alarms, 3);        /* the first beat, the sleep's, a beat */
    ck_assert_uint_eq(alarm_at, fake + BEAT);
    /* the sleep's alarm: 1 ms after 1000, give or take the conversion's
     * count, then passed by 10 */
    ck_assert_uint_le(fake - 10u - 2000u, 1u);
}
END_TEST

/* A sleep across the counter's wrap, tickless: its alarm is armed past
 * the wrap (at 0 exactly: 1 ms is 1000 counts from 2^32 - 1000), not
 * taken for one already reached, fires, and the clock, read after it, has
 * counted the wrap. */
START_TEST(test_sleep_across_the_wrap)
{
    static struct nap f;
    use(&tickless, 0u - 1000u);
    fires = 1;                          /* the sleep's alarm fires, */
    ck_assert_int_eq(ptrio_run(nap, &f), 0);
    fires = 0;                          /* the next beat does not */
    ck_assert_int_eq(alarms, 3);        /* the first beat, the sleep's, a beat */
    ck_assert_uint_eq(fake, 0u);        /* the sleep's alarm, at 0 */
    ck_assert_uint_eq(alarm_at, BEAT);
    ck_assert(ptrio_cortex_m_now() == WRAP * 1000);
}
END_TEST

/* Sleeps f->d. */
struct snooze {
    ptrio_frame fr;
    ptrio_time d;
};

static int snooze(ptrio_frame *fr)
{
    struct snooze *f = PTRIO_SELF(fr, struct snooze);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_sleep(f, f->d));
    PTRIO_END(f);
}

/* Runs a sleep of `d` on counter `c` (from 0), every alarm but the beats
 * firing; returns how many fired. */
static int snooze_on(const ptrio_cortex_m_counter *c, ptrio_time d)
{
    static struct snooze f;
    int fired;

    use(c, 0u);
    f.d = d;
    fires = 100;
    ck_assert_int_eq(ptrio_run(snooze, &f), 0);
    fired = 100 - fires;
    fires = 0;
    return fired;
}

/* A counter at exactly 1 GHz, tickless: a 3 s sleep, longer than an
 * alarm may be ahead (2^30 counts), sleeps in three alarms, 2^30, 2^30
 * and the rest, each armed ahead and firing, and wakes on its deadline's
 * count. (An alarm capped at 2^31 counts used to be taken for one
 * already reached: the wait spun, never sleeping.) */
START_TEST(test_long_sleep_at_1ghz)
{
    static const ptrio_cortex_m_counter ghz = {1000000000u, fake_read,
                                               fake_alarm};

    ck_assert_int_eq(snooze_on(&ghz, PTRIO_SEC(3)), 3);
    ck_assert_uint_eq(fake, 3000000000u);
    ck_assert_int_eq(alarms, 7);    /* a beat, then 3 alarms, each + a beat */
    ck_assert(ptrio_cortex_m_now() == PTRIO_SEC(3));
}
END_TEST

/* At 48 MHz a count is 20.83 ns, and now() rounds down: count 48000
 * reads 999,999 ns. A 1 ms sleep's alarm is on count 48001, the first
 * that reads 1 ms: one alarm, no second wake to make up for an alarm one
 * count early. */
START_TEST(test_alarm_on_the_first_count_at_48mhz)
{
    static const ptrio_cortex_m_counter mhz48 = {48000000u, fake_read,
                                                 fake_alarm};

    ck_assert_int_eq(snooze_on(&mhz48, PTRIO_MS(1)), 1);
    ck_assert_uint_eq(fake, 48001u);
    ck_assert_int_eq(alarms, 3);    /* a beat, the alarm, a beat */
    ck_assert(ptrio_cortex_m_now() == 1000020);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("port");
    TCase *tc = tcase_create("port");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_systick_reads_are_monotonic);
    tcase_add_test(tc, test_systick_masked_reader_counts_the_wrap);
    tcase_add_test(tc, test_wait_keeps_the_mask);
    tcase_add_test(tc, test_systick_sleeps);
    tcase_add_test(tc, test_counter_wraps);
    tcase_add_test(tc, test_beat_keeps_the_clock);
    tcase_add_test(tc, test_alarm_isr_without_alarm);
    tcase_add_test(tc, test_passed_alarm_rearms_the_beat);
    tcase_add_test(tc, test_sleep_across_the_wrap);
    tcase_add_test(tc, test_long_sleep_at_1ghz);
    tcase_add_test(tc, test_alarm_on_the_first_count_at_48mhz);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
