/* tests/check_port_riscv.c: the RISC-V port's clock and wait, on QEMU's
 * virt machine (a port build only). mtime is the CLINT's, at 10 MHz; the
 * tests move it forward (QEMU's CLINT takes writes to mtime) to put a read
 * or a deadline across the carry from its low word to its high word,
 * where RV32 reads mtime and writes mtimecmp in two halves. They never
 * move it back: the other tests' clocks stay monotonic.
 *
 * Time here is QEMU's virtual time (-icount: it follows the instructions
 * run and warps over a WFI). Every upper bound is loose (a second), there
 * to catch a wait that sleeps a whole wrap of the low word (429 s) or
 * forever, not to time the port. */
#include <stdlib.h>

#include <check.h>

#include <ptrio.h>

#include <ptrio/port.h>

#include "board.h"

#define CLINT 0x02000000u
#define MTIME ((volatile uint32_t *)(uintptr_t)(CLINT + 0xBFF8u))
#define MTIMECMP0 (CLINT + 0x4000u)
#define HZ 10000000u
#define TICK_NS 100                     /* at 10 MHz */
#define LOOSE PTRIO_SEC(1)

static uint64_t mtime(void)
{
    uint32_t hi, lo;
    do {
        hi = MTIME[1];
        lo = MTIME[0];
    } while (MTIME[1] != hi);
    return (uint64_t)hi << 32 | lo;
}

/* Moves mtime forward to `ticks_to_carry` ticks before its low word
 * next carries into the high word (at least one carry ahead of now), and
 * returns the value set. */
static uint64_t before_carry(uint32_t ticks_to_carry)
{
    uint32_t hi = (uint32_t)(mtime() >> 32) + 1u;

    MTIME[0] = 0u;                      /* no carry while the high is set */
    MTIME[1] = hi;
    MTIME[0] = 0u - ticks_to_carry;
    return (uint64_t)hi << 32 | (0u - ticks_to_carry);
}

static void use_clint(void)
{
    ck_assert_int_eq(ptrio_riscv_use_clint((uintptr_t)MTIME, MTIMECMP0, HZ),
                     0);
}

/* Zero addresses, 0 Hz and more than 1 GHz are refused; the clock in use
 * stays. */
START_TEST(test_use_clint_refuses_bad_arguments)
{
    ck_assert_int_eq(ptrio_riscv_use_clint(0u, MTIMECMP0, HZ), -PTRIO_EINVAL);
    ck_assert_int_eq(ptrio_riscv_use_clint((uintptr_t)MTIME, 0u, HZ),
                     -PTRIO_EINVAL);
    ck_assert_int_eq(ptrio_riscv_use_clint((uintptr_t)MTIME, MTIMECMP0, 0u),
                     -PTRIO_EINVAL);
    ck_assert_int_eq(ptrio_riscv_use_clint((uintptr_t)MTIME, MTIMECMP0,
                                           1000000001u), -PTRIO_EINVAL);
    ck_assert(ptrio_riscv_now() > 0);
    use_clint();
}
END_TEST

/* The clock is mtime in nanoseconds: 100 ns a tick. */
START_TEST(test_now_is_mtime_in_ns)
{
    uint64_t before, after;
    int64_t now;

    use_clint();
    before = mtime();
    now = ptrio_riscv_now();
    after = mtime();
    ck_assert(now >= (int64_t)before * TICK_NS);
    ck_assert(now <= (int64_t)after * TICK_NS);
}
END_TEST

/* Back-to-back reads across the carry of mtime's low word: never
 * backwards, never a jump of a whole low word (a low word read after the
 * carry with the high word from before it, or the reverse). */
START_TEST(test_reads_across_the_carry)
{
    int64_t first, prev, now;
    long reads = 0;

    use_clint();
    before_carry(20000u);               /* 2 ms */
    first = prev = ptrio_riscv_now();
    do {
        now = ptrio_riscv_now();
        ck_assert_msg(now >= prev, "back by %ld ns after %ld reads",
                      (long)(prev - now), reads);
        ck_assert_msg(now - prev < LOOSE, "a jump of %ld ms",
                      (long)((now - prev) / 1000000));
        prev = now;
        reads++;
    } while (now - first < PTRIO_MS(4) && reads < 10000000L);
    ck_assert((uint32_t)(mtime() >> 32) > (uint32_t)((uint64_t)first /
                                                     TICK_NS >> 32));
}
END_TEST

/* Reads a few ticks before the carry, again and again: each is at least
 * the value mtime was set to, and close to it. A read of the high word
 * from before the carry with the low word from after it would be a low
 * word's wrap early. */
START_TEST(test_reads_at_the_carry)
{
    int64_t set, now;
    int i;

    use_clint();
    for (i = 0; i < 200; i++) {
        set = (int64_t)before_carry(1u + (uint32_t)i % 4u);
        now = ptrio_riscv_now();
        ck_assert_msg(now >= set * TICK_NS, "trial %d: %ld ms early", i,
                      (long)((set * TICK_NS - now) / 1000000));
        ck_assert(now - set * TICK_NS < LOOSE);
    }
}
END_TEST

/* A wait until a deadline sleeps until it, not past it by more than the
 * loose bound; a deadline already passed, or PTRIO_TIME_NINF (a poll),
 * returns at once. */
START_TEST(test_wait_until_a_deadline)
{
    static ptrio_loop loop;
    const ptrio_backend *be = &ptrio_backend_riscv;
    ptrio_time deadline, end;

    use_clint();
    ptrio_loop_init(&loop);
    ck_assert_int_eq(be->open(&loop), 0);
    deadline = be->now(&loop) + PTRIO_MS(3);
    ck_assert_int_eq(be->wait(&loop, deadline), 0);
    end = be->now(&loop);
    ck_assert(end >= deadline);
    ck_assert(end - deadline < LOOSE);

    deadline = be->now(&loop) - 1;
    ck_assert_int_eq(be->wait(&loop, deadline), 0);
    ck_assert_int_eq(be->wait(&loop, PTRIO_TIME_NINF), 0);
    ck_assert(be->now(&loop) - end < LOOSE);
}
END_TEST

/* A deadline across the carry: both halves of mtimecmp are written (a
 * compare armed in the low word alone would come a low word's wrap late,
 * or never), and the wait ends at the deadline. (The order of the writes,
 * which keeps a value between the old and the new compare from matching,
 * is not seen here: an early match would only wake the wait to re-arm.) */
START_TEST(test_wait_across_the_carry)
{
    static ptrio_loop loop;
    const ptrio_backend *be = &ptrio_backend_riscv;
    ptrio_time deadline, end;
    uint32_t hi;

    use_clint();
    ptrio_loop_init(&loop);
    ck_assert_int_eq(be->open(&loop), 0);
    hi = (uint32_t)(before_carry(10000u) >> 32);   /* 1 ms before */
    deadline = be->now(&loop) + PTRIO_MS(2);
    ck_assert_int_eq(be->wait(&loop, deadline), 0);
    end = be->now(&loop);
    ck_assert(end >= deadline);
    ck_assert(end - deadline < LOOSE);
    ck_assert_uint_eq(MTIME[1], hi + 1u);
}
END_TEST

/* Called masked (a caller's critical section), the wait sleeps until its
 * deadline (WFI wakes on the pending timer interrupt whatever MIE says)
 * and returns still masked; the handler runs once the caller unmasks. */
START_TEST(test_wait_keeps_the_mask)
{
    static ptrio_loop loop;
    const ptrio_backend *be = &ptrio_backend_riscv;
    ptrio_irqstate st, inner;
    ptrio_time deadline, end;
    int rc;

    use_clint();
    ptrio_loop_init(&loop);
    ck_assert_int_eq(be->open(&loop), 0);
    st = ptrio_port_critical_enter();
    deadline = be->now(&loop) + PTRIO_MS(2);
    rc = be->wait(&loop, deadline);
    end = be->now(&loop);
    inner = ptrio_port_critical_enter();        /* still masked? */
    ptrio_port_critical_exit(inner);
    ptrio_port_critical_exit(st);
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_eq(inner, 0);                /* MIE was already clear */
    ck_assert(end >= deadline);
    ck_assert(end - deadline < LOOSE);
}
END_TEST

static ptrio_loop alarmed;

static void wake_alarmed(void)
{
    ptrio_backend_riscv.wake(&alarmed);
}

/* A wake that came before the wait ends it at once; one from an
 * interrupt ends a wait with no deadline (mtimecmp disarmed). */
START_TEST(test_wake_ends_the_wait)
{
    const ptrio_backend *be = &ptrio_backend_riscv;
    ptrio_time start;

    use_clint();
    ptrio_loop_init(&alarmed);
    ck_assert_int_eq(be->open(&alarmed), 0);
    be->wake(&alarmed);
    start = be->now(&alarmed);
    ck_assert_int_eq(be->wait(&alarmed, start + PTRIO_SEC(2)), 0);
    ck_assert(be->now(&alarmed) - start < LOOSE);

    ck_assert_int_eq(qemu_alarm(2000u, wake_alarmed), 0);
    start = be->now(&alarmed);
    ck_assert_int_eq(be->wait(&alarmed, PTRIO_TIME_INF), 0);
    ck_assert(be->now(&alarmed) - start >= PTRIO_MS(1));
    ck_assert(be->now(&alarmed) - start < LOOSE);
}
END_TEST

struct nap {
    ptrio_frame fr;
    ptrio_time start, end;
};

static int nap(ptrio_frame *fr)
{
    struct nap *f = PTRIO_SELF(fr, struct nap);
    PTRIO_BEGIN(f);
    f->start = ptrio_now();
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(5)));
    f->end = ptrio_now();
    PTRIO_END(f);
}

/* ptrio_run on the port, the default backend: a sleep across the carry
 * wakes at its deadline. */
START_TEST(test_run_sleeps_across_the_carry)
{
    static struct nap f;

    use_clint();
    before_carry(20000u);               /* 2 ms */
    ck_assert_int_eq(ptrio_run(nap, &f), 0);
    ck_assert(f.end - f.start >= PTRIO_MS(5));
    ck_assert(f.end - f.start < PTRIO_MS(5) + LOOSE);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("port_riscv");
    TCase *tc = tcase_create("port_riscv");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_use_clint_refuses_bad_arguments);
    tcase_add_test(tc, test_now_is_mtime_in_ns);
    tcase_add_test(tc, test_reads_across_the_carry);
    tcase_add_test(tc, test_reads_at_the_carry);
    tcase_add_test(tc, test_wait_until_a_deadline);
    tcase_add_test(tc, test_wait_across_the_carry);
    tcase_add_test(tc, test_wait_keeps_the_mask);
    tcase_add_test(tc, test_wake_ends_the_wait);
    tcase_add_test(tc, test_run_sleeps_across_the_carry);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
