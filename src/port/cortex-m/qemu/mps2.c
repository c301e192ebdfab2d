/* src/port/cortex-m/qemu/mps2.c: QEMU's MPS2 boards (ARM's MPS2 FPGA
 * board): mps2-an385 (Cortex-M3), mps2-an386 (Cortex-M4), mps2-an500
 * (Cortex-M7) and mps2-an505 (Cortex-M33); mps2.h has what differs between
 * them, and startup.c turns a Cortex-M4F's or M7F's FPU on for -mfpu. The
 * port's clock is the CMSDK dual timer, tickless: its timer 1 runs free as
 * the 32-bit counter (it counts down, so the port reads its complement),
 * and one-shot timer 2 is the alarm (the combined interrupt). The counter
 * wraps every 171 s at 25 MHz (215 s at 20), which the port extends to 64
 * bits. CMSDK APB timer 0 is the alarm interrupt of qemu_alarm. SysTick is
 * left to the program: its handler is here, for a program that switches
 * the port to it with ptrio_cortex_m_use_systick (the port's tests, the
 * latency figure).
 *
 * Why not SysTick as the board's clock: QEMU (7.2) delivers one SysTick
 * interrupt when its virtual clock jumps over several ticks (over a WFI,
 * under -icount), and SysTick has no count of them, so the clock fell
 * behind the CMSDK timers; the firmware sample then printed a button press
 * before a reading that came first. A free-running counter loses nothing,
 * and with -icount sleep=off a run is the same at any host load.
 *
 *   qemu-system-arm -M mps2-an385 -nographic \
 *       -semihosting-config enable=on,target=native -kernel prog.elf
 */
#include <ptrio/port.h>

#include "../../qemu/board.h"
#include "mps2.h"

#define REG(a) (*(volatile uint32_t *)(uintptr_t)(a))
#define NVIC_ISER REG(0xE000E100u)

#define TIMER0 MPS2_TIMER0          /* CMSDK APB timer: qemu_alarm */
#define TIMER_CTRL(t) REG((t) + 0x00u)
#define TIMER_VALUE(t) REG((t) + 0x04u)
#define TIMER_RELOAD(t) REG((t) + 0x08u)
#define TIMER_INTCLEAR(t) REG((t) + 0x0Cu)
#define CTRL_EN 0x1u
#define CTRL_IRQEN 0x8u

#define DUAL1 MPS2_DUAL             /* CMSDK dual timer: the port's clock */
#define DUAL2 (MPS2_DUAL + 0x20u)
#define DUAL_LOAD(t) REG((t) + 0x00u)
#define DUAL_VALUE(t) REG((t) + 0x04u)
#define DUAL_CTRL(t) REG((t) + 0x08u)
#define DUAL_INTCLR(t) REG((t) + 0x0Cu)
#define DUAL_ONESHOT 0x01u
#define DUAL_32BIT 0x02u
#define DUAL_INTEN 0x20u
#define DUAL_EN 0x80u               /* mode bit 6 clear: free-running */

const char qemu_board_name[] = MPS2_NAME;

static uint32_t counter_read(void)
{
    return ~DUAL_VALUE(DUAL1);
}

/* A compare match at `at`, from a one-shot down-counter: it fires after
 * at - now counts (a whole wrap when `at` is now, as a compare would). */
static void counter_alarm(uint32_t at)
{
    uint32_t ahead = at - counter_read();

    DUAL_CTRL(DUAL2) = 0u;
    DUAL_INTCLR(DUAL2) = 1u;
    DUAL_LOAD(DUAL2) = (ahead != 0u) ? ahead : 0xFFFFFFFFu;
    DUAL_CTRL(DUAL2) = DUAL_EN | DUAL_32BIT | DUAL_ONESHOT | DUAL_INTEN;
}

/* The alarm ends the WFI, and keeps the port's beat (its clock read at
 * least every 2^31 counts, a run going on or not). */
void MPS2_DUAL_HANDLER(void)
{
    DUAL_INTCLR(DUAL2) = 1u;
    ptrio_cortex_m_alarm_isr();
}

void SysTick_Handler(void)
{
    ptrio_cortex_m_systick_isr();
}

static void (*volatile alarm_fn)(void);

void MPS2_TIMER0_HANDLER(void)
{
    void (*fn)(void) = alarm_fn;

    TIMER_CTRL(TIMER0) = 0;
    TIMER_INTCLEAR(TIMER0) = 1;
    alarm_fn = 0;
    if (fn)
        fn();
}

int qemu_alarm(uint32_t us, void (*fn)(void))
{
    if (alarm_fn || !fn)
        return -1;
    alarm_fn = fn;
    TIMER_CTRL(TIMER0) = 0;
    TIMER_INTCLEAR(TIMER0) = 1;
    TIMER_RELOAD(TIMER0) = 0xFFFFFFFFu;
    TIMER_VALUE(TIMER0) = us ? us * (MPS2_HZ / 1000000u) : 1u;
    TIMER_CTRL(TIMER0) = CTRL_EN | CTRL_IRQEN;
    return 0;
}

void qemu_board_init(void)
{
    static const ptrio_cortex_m_counter counter = {
        MPS2_HZ, counter_read, counter_alarm
    };

    DUAL_CTRL(DUAL1) = 0u;
    DUAL_LOAD(DUAL1) = 0xFFFFFFFFu;
    DUAL_CTRL(DUAL1) = DUAL_EN | DUAL_32BIT;
    DUAL_CTRL(DUAL2) = 0u;
    NVIC_ISER = (1u << MPS2_TIMER0_IRQ) | (1u << MPS2_DUAL_IRQ);
    (void)ptrio_cortex_m_use_counter(&counter);
}
