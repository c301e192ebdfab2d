/* tests/qemu/latency.c: instructions from an interrupt to the task it
 * wakes, on QEMU's MPS2 boards (src/port/cortex-m/qemu/mps2.h: a
 * Cortex-M3, M4, M7 or M33) under -icount, where virtual time advances
 * 2^shift ns per instruction. SysTick counts the core clock in that
 * virtual time: the counts between two points over the counts per
 * instruction (calibrated on a run of NOPs) are the instructions between
 * them.
 *
 *   ptrio      CMSDK timer 1's interrupt raises a ptrio_signal; a task
 *              parked in ptrio_signal_wait reads SysTick when it resumes
 *   baseline   the hand-written equivalent: the interrupt sets a flag
 *              that a bare main loop tests with interrupts masked before
 *              each WFI
 *
 * Both measure from the handler's first read of SysTick. The smallest of
 * 16 runs is kept (a tick interrupt can fall in between). BENCH lines. */
#include <stdint.h>
#include <string.h>

#include <ptrio.h>

#include "board.h"
#include "mps2.h"

/* The figure's name says the core (configure defines the board). */
#if defined(QEMU_MPS2_AN505)
#define LATENCY_FIGURE "irq_to_task_m33"
#elif defined(QEMU_MPS2_AN500)
#define LATENCY_FIGURE "irq_to_task_m7"
#elif defined(QEMU_MPS2_AN386)
#define LATENCY_FIGURE "irq_to_task_m4"
#else
#define LATENCY_FIGURE "irq_to_task_m3"
#endif

#define REG(a) (*(volatile uint32_t *)(uintptr_t)(a))
#define SYST_CVR REG(0xE000E018u)
#define NVIC_ISER REG(0xE000E100u)
#define T1 MPS2_TIMER1
#define T1_CTRL REG(T1 + 0x00u)
#define T1_VALUE REG(T1 + 0x04u)
#define T1_RELOAD REG(T1 + 0x08u)
#define T1_INTCLEAR REG(T1 + 0x0Cu)
#define TICK_HZ 10u                 /* SysTick at 10 Hz: few ticks */
#define RUNS 16

static ptrio_signal sig;
static volatile uint32_t t_irq, t_irq_end;
static volatile int flag, bare;

void MPS2_TIMER1_HANDLER(void);
void MPS2_TIMER1_HANDLER(void)
{
    t_irq = SYST_CVR;
    T1_CTRL = 0;
    T1_INTCLEAR = 1;
    if (bare)
        flag = 1;
    else
        ptrio_signal_raise(&sig);
    t_irq_end = SYST_CVR;
}

static void arm_timer(void)
{
    T1_INTCLEAR = 1;
    T1_RELOAD = 0xFFFFFFFFu;
    T1_VALUE = MPS2_HZ / 1000u;     /* 1 ms */
    T1_CTRL = 0x9;                  /* enable, interrupt */
}

/* Down-counter counts from a to b, or ~0 when SysTick wrapped between. */
static uint32_t counts(uint32_t a, uint32_t b)
{
    return a >= b ? a - b : 0xFFFFFFFFu;
}

static uint32_t min_u(uint32_t a, uint32_t b) { return a < b ? a : b; }

/* SysTick counts per 1000 instructions: NOP runs of 1000 and of 0. */
static uint32_t calibrate(void)
{
    uint32_t a, b, c, d;
    a = SYST_CVR;
    __asm__ volatile(".rept 1000\n\tnop\n\t.endr" ::: "memory");
    b = SYST_CVR;
    c = SYST_CVR;
    d = SYST_CVR;
    return counts(a, b) - counts(c, d);
}

struct waiter {
    ptrio_frame fr;
    int i;
    uint32_t best, isr;
};

static int waiter(ptrio_frame *fr)
{
    struct waiter *f = PTRIO_SELF(fr, struct waiter);
    PTRIO_BEGIN(f);
    f->best = f->isr = 0xFFFFFFFFu;
    for (f->i = 0; f->i < RUNS; f->i++) {
        arm_timer();
        PTRIO_AWAIT(f, ptrio_signal_wait(f, &sig));
        {
            uint32_t now = SYST_CVR;
            f->best = min_u(f->best, counts(t_irq, now));
            f->isr = min_u(f->isr, counts(t_irq, t_irq_end));
        }
    }
    PTRIO_END(f);
}

static uint32_t bare_loop(void)
{
    uint32_t best = 0xFFFFFFFFu, now;
    int i;
    bare = 1;
    for (i = 0; i < RUNS; i++) {
        flag = 0;
        arm_timer();
        for (;;) {
            __asm__ volatile("cpsid i" ::: "memory");
            if (flag)
                break;
            __asm__ volatile("wfi\n\tcpsie i\n\tisb" ::: "memory");
        }
        now = SYST_CVR;
        __asm__ volatile("cpsie i" ::: "memory");
        best = min_u(best, counts(t_irq, now));
    }
    bare = 0;
    return best;
}

static void put_u(unsigned long v)
{
    char b[24];
    int k = 0;
    do {
        b[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (k) {
        char c = b[--k];
        qemu_console_write(&c, 1);
    }
}

static void put(const char *s) { qemu_console_write(s, strlen(s)); }

/* value and baseline in instructions, to one decimal. */
static void bench(const char *name, uint32_t c, uint32_t base, uint32_t cal)
{
    unsigned long v10 = (unsigned long)((uint64_t)c * 10000u / cal);
    unsigned long b10 = (unsigned long)((uint64_t)base * 10000u / cal);
    put("BENCH name=");
    put(name);
    put(" value=");
    put_u(v10 / 10), put("."), put_u(v10 % 10);
    put(" unit=instructions baseline=");
    put_u(b10 / 10), put("."), put_u(b10 % 10);
    put(" ratio=");
    if (b10) {
        unsigned long r = v10 * 100 / b10;
        put_u(r / 100), put("."), put_u(r / 10 % 10), put_u(r % 10);
    } else {
        put("0");
    }
    put("\n");
}

int main(void)
{
    static struct waiter w;
    uint32_t cal, base;
    int rc;

    (void)ptrio_cortex_m_use_systick(MPS2_HZ, TICK_HZ);
    NVIC_ISER = 1u << MPS2_TIMER1_IRQ;
    cal = calibrate();
    if (cal < 1000) {
        put("latency: SysTick counts fewer than one per instruction: run "
            "with -icount shift=10\n");
        return 1;
    }
    base = bare_loop();
    rc = ptrio_run(waiter, &w);
    bench(LATENCY_FIGURE, w.best, base, cal);
    /* The handler's own share: the raise, against setting a flag. */
    put("latency: of which in the handler (ptrio_signal_raise and the "
        "wake): ");
    put_u((unsigned long)((uint64_t)w.isr * 1000u / cal));
    put(" instructions\n");
    return rc != 0;
}
