/* src/port/cortex-m/qemu/microbit.c: QEMU's microbit (nRF51822, Cortex-M0
 * at 16 MHz, 16 KiB RAM). The port's clock is TIMER0 as a free-running
 * 32-bit counter at 16 MHz, tickless: CC[0] is the alarm (IRQ 8), CC[3]
 * captures the count. It wraps every 268 s, which the port extends to 64
 * bits. TIMER1 (IRQ 9) is the alarm interrupt of qemu_alarm, set to 32
 * bits as QEMU allows; on a real nRF51 TIMER1 and TIMER2 are 16-bit only
 * (only TIMER0 has 32 bits), so a copy of qemu_alarm needs a prescaler
 * that keeps its delays under 2^16 counts.
 *
 *   qemu-system-arm -M microbit -nographic \
 *       -semihosting-config enable=on,target=native -kernel prog.elf
 */
#include <ptrio/port.h>

#include "../../qemu/board.h"

#define REG(a) (*(volatile uint32_t *)(uintptr_t)(a))
#define NVIC_ISER REG(0xE000E100u)
#define TIMER0 0x40008000u
#define TIMER1 0x40009000u
#define TASKS_START(t) REG((t) + 0x000u)
#define TASKS_STOP(t) REG((t) + 0x004u)
#define TASKS_CLEAR(t) REG((t) + 0x00Cu)
#define TASKS_CAPTURE(t, n) REG((t) + 0x040u + 4u * (n))
#define EVENTS_COMPARE(t, n) REG((t) + 0x140u + 4u * (n))
#define INTENSET(t) REG((t) + 0x304u)
#define INTENCLR(t) REG((t) + 0x308u)
#define MODE(t) REG((t) + 0x504u)
#define BITMODE(t) REG((t) + 0x508u)
#define PRESCALER(t) REG((t) + 0x510u)
#define CC(t, n) REG((t) + 0x540u + 4u * (n))
#define INT_COMPARE0 (1u << 16)
#define BITMODE_32 3u

const char qemu_board_name[] = "microbit";

static uint32_t counter_read(void)
{
    TASKS_CAPTURE(TIMER0, 3) = 1;
    return CC(TIMER0, 3);
}

static void counter_alarm(uint32_t at)
{
    CC(TIMER0, 0) = at;
}

static const ptrio_cortex_m_counter counter = {
    16000000u, counter_read, counter_alarm
};

/* The alarm ends the WFI, and keeps the port's beat (its clock read at
 * least every 2^31 counts, a run going on or not). */
void IRQ8_Handler(void)
{
    EVENTS_COMPARE(TIMER0, 0) = 0;
    ptrio_cortex_m_alarm_isr();
}

static void (*volatile alarm_fn)(void);

void IRQ9_Handler(void)
{
    void (*fn)(void) = alarm_fn;

    EVENTS_COMPARE(TIMER1, 0) = 0;
    TASKS_STOP(TIMER1) = 1;
    alarm_fn = 0;
    if (fn)
        fn();
}

int qemu_alarm(uint32_t us, void (*fn)(void))
{
    if (alarm_fn || !fn)
        return -1;
    alarm_fn = fn;
    TASKS_STOP(TIMER1) = 1;
    TASKS_CLEAR(TIMER1) = 1;
    EVENTS_COMPARE(TIMER1, 0) = 0;
    CC(TIMER1, 0) = us ? us : 1u;
    TASKS_START(TIMER1) = 1;
    return 0;
}

static void timer_setup(uint32_t t, uint32_t prescaler)
{
    TASKS_STOP(t) = 1;
    MODE(t) = 0;                    /* timer */
    BITMODE(t) = BITMODE_32;
    PRESCALER(t) = prescaler;       /* 16 MHz / 2^prescaler */
    TASKS_CLEAR(t) = 1;
    EVENTS_COMPARE(t, 0) = 0;
    INTENSET(t) = INT_COMPARE0;
}

void qemu_board_init(void)
{
    timer_setup(TIMER0, 0);
    TASKS_START(TIMER0) = 1;
    timer_setup(TIMER1, 4);         /* 1 MHz: CC in microseconds */
    NVIC_ISER = (1u << 8) | (1u << 9);
    (void)ptrio_cortex_m_use_counter(&counter);
}
