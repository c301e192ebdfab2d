/* tests/check_port.c: the Cortex-M port's counter clock, on QEMU (a port
 * build only). A fake 32-bit counter at 1 MHz (1 count = 1000 ns) stands
 * in for the part's: the 64-bit extension across many wraps, and the beat
 * that keeps the clock read at least every 2^31 counts. */
#include <stdlib.h>

#include <check.h>

#include <ptrio.h>

#include <ptrio/port.h>

#define WRAP ((int64_t)1 << 32)
#define BEAT 0x80000000u

static uint32_t fake, step, alarm_at;
static int alarms, late;

/* Each read advances the counter by `step` first (0: it stands still). */
static uint32_t fake_read(void)
{
    fake += step;
    return fake;
}

/* With `late` set, the next arming takes so long that its time passes. */
static void fake_alarm(uint32_t at)
{
    alarm_at = at;
    alarms++;
    if (late) {
        late = 0;
        fake = at + 10u;
    }
}

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

int main(void)
{
    Suite *s = suite_create("port");
    TCase *tc = tcase_create("port");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_counter_wraps);
    tcase_add_test(tc, test_beat_keeps_the_clock);
    tcase_add_test(tc, test_alarm_isr_without_alarm);
    tcase_add_test(tc, test_passed_alarm_rearms_the_beat);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
