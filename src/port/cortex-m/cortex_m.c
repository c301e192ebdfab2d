/* src/port/cortex-m/cortex_m.c: the Cortex-M port (ARMv6-M and up).
 *
 * The clock is SysTick or a 32-bit counter of the user's, extended to 64
 * bits; it runs from set-up on, across loops. The wait sleeps in WFI with
 * PRIMASK set around the "woken? deadline passed?" test (the QP/C
 * QV_onIdle pattern): an interrupt that arrives after the test still ends
 * the WFI, because WFI wakes on a pending interrupt even while PRIMASK
 * masks it; the handler runs when PRIMASK is cleared after the WFI. So no
 * wake-up is lost between the test and the sleep.
 *
 * The wake flag lives in loop->be[0]: set by wake() (from any interrupt),
 * read and cleared by wait() (see the wait).
 */
#include <stddef.h>

#include <ptrio/port.h>

#include "../clock.h"

#define REG(a) (*(volatile uint32_t *)(uintptr_t)(a))
#define SYST_CSR REG(0xE000E010u)
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)
#define CSR_ENABLE    0x1u
#define CSR_TICKINT   0x2u
#define CSR_CLKSOURCE 0x4u          /* the processor clock */
#define CSR_COUNTFLAG (1u << 16)    /* reached 0 since CSR was last read */

/* One clock per core: SysTick has one interrupt and no context. */
static struct cm_clock {
    uint64_t (*counts)(uint32_t *raw);  /* the source's reader (NULL: none) */
    int (*arm)(uint64_t c, uint32_t raw, ptrio_time now, ptrio_time deadline);
    const ptrio_cortex_m_counter *ctr;  /* NULL: SysTick */
    ptrio__rate to_ns;              /* counts -> ns */
    ptrio__rate to_counts;          /* ns -> counts (counter mode) */
    uint64_t base;                  /* SysTick: counts at the last wrap;
                                       counter: the high word << 32 */
    uint32_t period;                /* SysTick: counts per tick */
    uint32_t last;                  /* counter: last value read */
    uint32_t max_sleep;             /* counter: ns an alarm may be ahead */
    uint8_t ready;
} cm;

/* The two sources, and the tickless alarm (below). */
static uint64_t systick_counts(uint32_t *raw);
static uint64_t counter_counts(uint32_t *raw);
static int arm_alarm(uint64_t c, uint32_t raw, ptrio_time now,
                     ptrio_time deadline);

ptrio_irqstate ptrio_port_critical_enter(void)
{
    uint32_t primask;
    __asm__ volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)
                     :: "memory");
    return primask;
}

void ptrio_port_critical_exit(ptrio_irqstate state)
{
    __asm__ volatile("msr primask, %0" :: "r"((uint32_t)state) : "memory");
}

/* ---- the clock ----------------------------------------------------- */

int ptrio_cortex_m_use_systick(uint32_t cpu_hz, uint32_t tick_hz)
{
    uint32_t period;
    ptrio_irqstate s;

    if ((cpu_hz == 0u) || (tick_hz == 0u) || (cpu_hz > 1000000000u) ||
        (tick_hz > cpu_hz)) {
        return -PTRIO_EINVAL;
    }
    period = cpu_hz / tick_hz;
    if ((period < 2u) || ((period - 1u) > 0xFFFFFFu)) {
        return -PTRIO_EINVAL;
    }
    /* masked: an interrupt of the clock being replaced must not see it
     * half set up */
    s = ptrio_port_critical_enter();
    SYST_CSR = 0u;
    cm.arm = NULL;                  /* ticking: the tick ends each sleep */
    cm.ctr = NULL;
    cm.counts = systick_counts;
    cm.period = period;
    cm.base = 0u;
    cm.to_ns = ptrio__rate_of(1000000000u, cpu_hz);
    SYST_RVR = period - 1u;
    SYST_CVR = 0u;                  /* reloads on the next count */
    SYST_CSR = CSR_ENABLE | CSR_TICKINT | CSR_CLKSOURCE;
    cm.ready = 1u;
    ptrio_port_critical_exit(s);
    return 0;
}

/* Accounts for the wrap, unless a reader already did; a tick left pending
 * from before a switch to counter mode counts nothing. */
void ptrio_cortex_m_systick_isr(void)
{
    ptrio_irqstate s = ptrio_port_critical_enter();
    if (cm.counts == systick_counts) {
        (void)systick_counts(NULL);
    }
    ptrio_port_critical_exit(s);
}

/* Two reads in successive overflow interrupts are a whole wrap (plus
 * their latencies) apart and see no wrap, so the port keeps a beat of its
 * own in counter mode: an alarm is always armed at most HEARTBEAT counts
 * past a read (by a wait, or by ptrio_cortex_m_alarm_isr when one fires),
 * and each reads the clock. */
#define HEARTBEAT 0x80000000u

int ptrio_cortex_m_use_counter(const ptrio_cortex_m_counter *c)
{
    ptrio__rate to_counts;
    ptrio_irqstate s;

    if ((c == NULL) || (c->read == NULL) || (c->hz == 0u) ||
        (c->hz > 1000000000u)) {
        return -PTRIO_EINVAL;
    }
    to_counts = ptrio__rate_of(c->hz, 1000000000u);
    s = ptrio_port_critical_enter();    /* see use_systick */
    SYST_CSR = 0u;
    cm.ctr = c;
    cm.counts = counter_counts;
    cm.arm = (c->set_alarm != NULL) ? arm_alarm : NULL;
    cm.to_ns = ptrio__rate_of(1000000000u, c->hz);
    cm.to_counts = to_counts;
    /* An alarm at most 2^30 counts ahead keeps every wrap observed, and
     * stays well inside the half wrap that tells an alarm ahead from one
     * already reached (arm_alarm; at 2^31 exactly, as at 1 GHz, a capped
     * alarm read as reached, and a long sleep spun); and at most
     * 2^32 - 1 ns, so that ns -> counts stays in 64 bits. */
    {
        uint64_t quarter = ptrio__rate_apply((uint64_t)1 << 30, cm.to_ns);
        cm.max_sleep = (quarter > 0xFFFFFFFFu) ? 0xFFFFFFFFu
                                               : (uint32_t)quarter;
    }
    cm.last = c->read();
    cm.base = 0u;
    cm.ready = 1u;
    if (c->set_alarm != NULL) {
        c->set_alarm(cm.last + HEARTBEAT);      /* the first beat */
    }
    ptrio_port_critical_exit(s);
    return 0;
}

/* SysTick counts down from period - 1; reaching 0 begins a tick and sets
 * COUNTFLAG, which the next read of CSR clears. Whoever reads the flag
 * first (this reader, or the interrupt handler through here) adds the
 * period to `base`, exactly once per wrap; interrupts are masked, so the
 * two never interleave, even when a higher-priority handler reads the
 * clock while the SysTick handler is entering. A value read before the
 * flag may predate the wrap: it is read again. Elapsed in the tick:
 * (period - v) mod period. Nothing else may read SYST_CSR (that would
 * clear the flag), and a whole period must never pass with interrupts
 * masked and no clock read (two wraps would count as one). */
static uint64_t systick_counts(uint32_t *raw)
{
    uint32_t v = SYST_CVR;

    (void)raw;

    if ((SYST_CSR & CSR_COUNTFLAG) != 0u) {
        cm.base += cm.period;
        v = SYST_CVR;
    }
    return cm.base + ((v != 0u) ? (cm.period - v) : 0u);
}

/* Counter mode: a value lower than the last one read means a wrap, which
 * holds while reads are less than 2^32 counts apart (see HEARTBEAT). */
static uint64_t counter_counts(uint32_t *raw)
{
    uint32_t v = cm.ctr->read();

    if (v < cm.last) {
        cm.base += (uint64_t)1 << 32;
    }
    cm.last = v;
    if (raw != NULL) {
        *raw = v;
    }
    return cm.base | v;
}

static uint64_t counts(uint32_t *raw)
{
    ptrio_irqstate s = ptrio_port_critical_enter();
    uint64_t c = cm.counts(raw);
    ptrio_port_critical_exit(s);
    return c;
}

int64_t ptrio_cortex_m_now(void)
{
    int64_t ns = 0;

    if (cm.ready != 0u) {
        ns = (int64_t)ptrio__rate_apply(counts(NULL), cm.to_ns);
    }
    return ns;
}

/* ---- the backend --------------------------------------------------- */

#define WOKEN(l) (*(volatile intptr_t *)&(l)->be[0].word)

static int cm_open(ptrio_loop *l)
{
    if (cm.ready == 0u) {
        return -PTRIO_ENOBACKEND;   /* the board did not set a clock up */
    }
    WOKEN(l) = 0;
    return 0;
}

static ptrio_time cm_now(ptrio_loop *l)
{
    (void)l;
    return ptrio_cortex_m_now();
}

/* Tickless: arms the alarm for `deadline`, on the first count at which
 * now() reads it (never early), or max_sleep ahead of `now` (the count
 * `c`, its low word `raw`) when it is further. Returns 0 when the alarm is
 * set for a time still ahead, nonzero when the counter already reached
 * it. */
static int arm_alarm(uint64_t c, uint32_t raw, ptrio_time now,
                     ptrio_time deadline)
{
    uint64_t ahead = (uint64_t)deadline - (uint64_t)now;   /* > 0 */
    uint32_t at;
    uint32_t after;

    if (ahead > cm.max_sleep) {
        at = raw + (uint32_t)ptrio__rate_apply(cm.max_sleep, cm.to_counts);
    } else {
        at = raw + (uint32_t)ptrio__counts_until(c, (uint64_t)now,
                                                 (uint64_t)deadline,
                                                 cm.to_counts, cm.to_ns);
    }
    cm.ctr->set_alarm(at);
    after = cm.ctr->read();
    if ((after - at) < 0x80000000u) {
        /* reached already: a match a whole wrap away would break the
         * beat, so the next one is armed instead */
        cm.ctr->set_alarm(after + HEARTBEAT);
        return 1;
    }
    return 0;
}

/* Counter mode's alarm interrupt: the clock read (a wrap noticed), and the
 * next beat armed. The alarm that fired was a wait's or a beat: nothing
 * later was armed, and a wait re-arms before each sleep. */
void ptrio_cortex_m_alarm_isr(void)
{
    ptrio_irqstate s = ptrio_port_critical_enter();
    uint32_t raw = 0;

    if ((cm.ready != 0u) && (cm.arm != NULL)) {
        (void)cm.counts(&raw);
        cm.ctr->set_alarm(raw + HEARTBEAT);
    }
    ptrio_port_critical_exit(s);
}

/* Interrupts are masked from the test to the WFI; the handler of the
 * interrupt that ended the WFI runs at the exit of the critical section.
 * If it woke the loop, the wait returns at once: the flag is cleared
 * unmasked, since a wake that falls between its read and its clear comes
 * after its raiser's state changed, which the loop polls next anyway.
 * Otherwise the test runs again. PTRIO_TIME_NINF polls: it never sleeps. */
static int cm_wait(ptrio_loop *l, ptrio_time deadline)
{
    for (;;) {
        ptrio_irqstate s = ptrio_port_critical_enter();
        uint32_t raw = 0;
        uint64_t c;
        ptrio_time now;

        if ((WOKEN(l) != 0) || (deadline == PTRIO_TIME_NINF)) {
            WOKEN(l) = 0;
            ptrio_port_critical_exit(s);
            return 0;
        }
        c = cm.counts(&raw);
        now = (ptrio_time)ptrio__rate_apply(c, cm.to_ns);
        if (now >= deadline) {
            ptrio_port_critical_exit(s);
            return 0;
        }
        if ((cm.arm == NULL) || (cm.arm(c, raw, now, deadline) == 0)) {
            __asm__ volatile("dsb\n\twfi" ::: "memory");
        }
        ptrio_port_critical_exit(s);
        __asm__ volatile("isb" ::: "memory");
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
static void cm_wake(ptrio_loop *l)
{
    WOKEN(l) = 1;
}

const ptrio_backend ptrio_backend_cortex_m = {
    "cortex-m", cm_open, NULL, cm_now, cm_wait, NULL, NULL, cm_wake
};
