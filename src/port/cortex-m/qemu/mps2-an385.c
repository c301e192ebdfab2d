/* src/port/cortex-m/qemu/mps2-an385.c: QEMU's mps2-an385 (ARM's MPS2 FPGA
 * board with a Cortex-M3 at 25 MHz). The port's clock is SysTick at 1 kHz;
 * CMSDK APB timer 0 (IRQ 8) is the alarm interrupt of qemu_alarm.
 *
 *   qemu-system-arm -M mps2-an385 -nographic \
 *       -semihosting-config enable=on,target=native -kernel prog.elf
 */
#include <ptrio/port.h>

#include "../../qemu/board.h"

#define CPU_HZ 25000000u
#define TICK_HZ 1000u

#define REG(a) (*(volatile uint32_t *)(uintptr_t)(a))
#define NVIC_ISER REG(0xE000E100u)
#define TIMER0 0x40000000u
#define TIMER_CTRL(t) REG((t) + 0x00u)
#define TIMER_VALUE(t) REG((t) + 0x04u)
#define TIMER_RELOAD(t) REG((t) + 0x08u)
#define TIMER_INTCLEAR(t) REG((t) + 0x0Cu)
#define CTRL_EN 0x1u
#define CTRL_IRQEN 0x8u
#define TIMER0_IRQ 8

const char qemu_board_name[] = "mps2-an385";

static void (*volatile alarm_fn)(void);

void SysTick_Handler(void)
{
    ptrio_cortex_m_systick_isr();
}

void IRQ8_Handler(void)
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
    TIMER_VALUE(TIMER0) = us ? us * (CPU_HZ / 1000000u) : 1u;
    TIMER_CTRL(TIMER0) = CTRL_EN | CTRL_IRQEN;
    return 0;
}

void qemu_board_init(void)
{
    (void)ptrio_cortex_m_use_systick(CPU_HZ, TICK_HZ);
    NVIC_ISER = 1u << TIMER0_IRQ;
}
