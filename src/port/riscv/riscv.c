/* src/port/riscv/riscv.c: the RISC-V port (machine mode, RV32 or RV64).
 *
 * The clock is the CLINT's mtime, 64 bits wide: it does not wrap for
 * 58,000 years at 10 MHz, so there is nothing to extend. The wait is
 * tickless: it programs mtimecmp for the next deadline and sleeps in WFI
 * with mstatus.MIE clear around the "woken? deadline passed?" test. WFI
 * resumes when an interrupt enabled in mie is pending, whatever MIE says,
 * and the handler runs once MIE is set again after it: an interrupt that
 * arrives after the test still ends the sleep, so no wake-up is lost.
 *
 * The wake flag lives in loop->be[0]: set by wake() (from any interrupt),
 * read and cleared by wait() (see the wait).
 */
#include <stddef.h>

#include <ptrio/port.h>

#include "../clock.h"
#include "csr.h"

#define MSTATUS_MIE 0x8u
#define MIE_MTIE 0x80u

/* One clock per hart: the machine timer interrupt has no context. */
static struct rv_clock {
    volatile uint32_t *mtime;       /* low word first */
    volatile uint32_t *mtimecmp;
    ptrio__rate to_ns;              /* ticks -> ns */
    ptrio__rate to_ticks;           /* ns -> ticks */
    uint8_t ready;
} rv;

ptrio_irqstate ptrio_port_critical_enter(void)
{
    uintptr_t mstatus;
    __asm__ volatile(PTRIO_CSR("csrrci %0, mstatus, %1") : "=r"(mstatus)
                     : "i"(MSTATUS_MIE) : "memory");
    return mstatus & MSTATUS_MIE;
}

void ptrio_port_critical_exit(ptrio_irqstate state)
{
    if ((state & MSTATUS_MIE) != 0u) {
        __asm__ volatile(PTRIO_CSR("csrsi mstatus, %0")
                         :: "i"(MSTATUS_MIE) : "memory");
    }
}

/* ---- the clock ----------------------------------------------------- */

/* mtime as two 32-bit halves: read high, low, high again until the high
 * word did not change (the low word wrapped in between otherwise). */
static uint64_t mtime_read(void)
{
#if __riscv_xlen == 64
    return *(volatile uint64_t *)rv.mtime;
#else
    uint32_t hi;
    uint32_t lo;
    do {
        hi = rv.mtime[1];
        lo = rv.mtime[0];
    } while (rv.mtime[1] != hi);
    return ((uint64_t)hi << 32) | lo;
#endif
}

/* On RV32 the low word is set to its maximum first, so that no value
 * between the old and the new one can match and fire early. */
static void mtimecmp_write(uint64_t v)
{
#if __riscv_xlen == 64
    *(volatile uint64_t *)rv.mtimecmp = v;
#else
    rv.mtimecmp[0] = 0xFFFFFFFFu;
    rv.mtimecmp[1] = (uint32_t)(v >> 32);
    rv.mtimecmp[0] = (uint32_t)v;
#endif
}

int ptrio_riscv_use_clint(uintptr_t mtime, uintptr_t mtimecmp, uint32_t hz)
{
    if ((mtime == 0u) || (mtimecmp == 0u) || (hz == 0u) ||
        (hz > 1000000000u)) {
        return -PTRIO_EINVAL;
    }
    rv.mtime = (volatile uint32_t *)mtime;
    rv.mtimecmp = (volatile uint32_t *)mtimecmp;
    rv.to_ns = ptrio__rate_of(1000000000u, hz);
    rv.to_ticks = ptrio__rate_of(hz, 1000000000u);
    mtimecmp_write(UINT64_MAX);
    __asm__ volatile(PTRIO_CSR("csrs mie, %0") :: "r"(MIE_MTIE) : "memory");
    rv.ready = 1u;
    return 0;
}

void ptrio_riscv_timer_isr(void)
{
    mtimecmp_write(UINT64_MAX);     /* clears the pending interrupt */
}

int64_t ptrio_riscv_now(void)
{
    int64_t ns = 0;

    if (rv.ready != 0u) {
        ns = (int64_t)ptrio__rate_apply(mtime_read(), rv.to_ns);
    }
    return ns;
}

/* ---- the backend --------------------------------------------------- */

#define WOKEN(l) (*(volatile intptr_t *)&(l)->be[0].word)

static int rv_open(ptrio_loop *l)
{
    if (rv.ready == 0u) {
        return -PTRIO_ENOBACKEND;   /* the board did not set a clock up */
    }
    WOKEN(l) = 0;
    return 0;
}

static ptrio_time rv_now(ptrio_loop *l)
{
    (void)l;
    return ptrio_riscv_now();
}

/* mtimecmp for `deadline`: the first tick at which now() reads it (never
 * early). A deadline past the range of mtime (or PTRIO_TIME_INF) disarms
 * the timer. */
static void arm(uint64_t ticks, ptrio_time now, ptrio_time deadline)
{
    uint64_t ahead = ptrio__counts_until(ticks, (uint64_t)now,
                                         (uint64_t)deadline, rv.to_ticks,
                                         rv.to_ns);
    mtimecmp_write((ahead > (UINT64_MAX - ticks)) ? UINT64_MAX
                                                  : (ticks + ahead));
}

/* Interrupts are masked from the test to the WFI; the handler of the
 * interrupt that ended the WFI runs at the exit of the critical section.
 * If it woke the loop, the wait returns at once: the flag is cleared
 * unmasked, since a wake that falls between its read and its clear comes
 * after its raiser's state changed, which the loop polls next anyway.
 * Otherwise the test runs again. PTRIO_TIME_NINF polls: it never sleeps. */
static int rv_wait(ptrio_loop *l, ptrio_time deadline)
{
    for (;;) {
        ptrio_irqstate s = ptrio_port_critical_enter();
        uint64_t ticks;
        ptrio_time now;

        if ((WOKEN(l) != 0) || (deadline == PTRIO_TIME_NINF)) {
            WOKEN(l) = 0;
            ptrio_port_critical_exit(s);
            return 0;
        }
        ticks = mtime_read();
        now = (ptrio_time)ptrio__rate_apply(ticks, rv.to_ns);
        if (now >= deadline) {
            ptrio_port_critical_exit(s);
            return 0;
        }
        if (deadline == PTRIO_TIME_INF) {
            mtimecmp_write(UINT64_MAX);
        } else {
            arm(ticks, now, deadline);
        }
        __asm__ volatile("wfi" ::: "memory");
        ptrio_port_critical_exit(s);
        if (WOKEN(l) != 0) {
            WOKEN(l) = 0;
            return 0;
        }
    }
}

/* From any interrupt: one store. The wait reads it with interrupts
 * masked before it sleeps; after a sleep it reads and clears it unmasked
 * (a wake in between comes after its raiser's change, which the loop polls
 * next anyway). */
static void rv_wake(ptrio_loop *l)
{
    WOKEN(l) = 1;
}

const ptrio_backend ptrio_backend_riscv = {
    "riscv", rv_open, NULL, rv_now, rv_wait, NULL, NULL, rv_wake
};
