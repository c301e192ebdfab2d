/* src/port/riscv/qemu/virt.c: QEMU's virt machine (RV32 or RV64, machine
 * mode, no firmware: -bios none). The port's clock is the CLINT at 10 MHz,
 * tickless. The Goldfish RTC's alarm (IRQ 11 through the PLIC) is the
 * alarm interrupt of qemu_alarm.
 *
 *   qemu-system-riscv32 -M virt -bios none -nographic -rtc clock=vm \
 *       -semihosting-config enable=on,target=native -kernel prog.elf
 */
#include <ptrio/port.h>

#include "../../qemu/board.h"
#include "../csr.h"

#define REG(a) (*(volatile uint32_t *)(uintptr_t)(a))
#define CLINT 0x02000000u
#define CLINT_MTIMECMP0 (CLINT + 0x4000u)
#define CLINT_MTIME (CLINT + 0xBFF8u)
#define CLINT_HZ 10000000u

#define PLIC 0x0C000000u
#define PLIC_PRIORITY(irq) REG(PLIC + 4u * (irq))
#define PLIC_ENABLE0 REG(PLIC + 0x2000u)        /* hart 0, M mode */
#define PLIC_THRESHOLD0 REG(PLIC + 0x200000u)
#define PLIC_CLAIM0 REG(PLIC + 0x200004u)

#define RTC 0x00101000u
#define RTC_TIME_LOW REG(RTC + 0x00u)
#define RTC_TIME_HIGH REG(RTC + 0x04u)
#define RTC_ALARM_LOW REG(RTC + 0x08u)
#define RTC_ALARM_HIGH REG(RTC + 0x0Cu)
#define RTC_IRQ_ENABLED REG(RTC + 0x10u)
#define RTC_CLEAR_ALARM REG(RTC + 0x14u)
#define RTC_CLEAR_INTERRUPT REG(RTC + 0x1Cu)
#define RTC_IRQ 11u

#define MIE_MEIE 0x800u

const char qemu_board_name[] = "virt";

static void (*volatile alarm_fn)(void);

void qemu_external_irq(void);
void qemu_external_irq(void)
{
    uint32_t irq = PLIC_CLAIM0;

    if (irq == RTC_IRQ) {
        void (*fn)(void) = alarm_fn;
        RTC_CLEAR_INTERRUPT = 1;
        alarm_fn = 0;
        if (fn)
            fn();
    }
    if (irq)
        PLIC_CLAIM0 = irq;          /* complete */
}

int qemu_alarm(uint32_t us, void (*fn)(void))
{
    uint64_t now, at;
    uint32_t lo;

    if (alarm_fn || !fn)
        return -1;
    alarm_fn = fn;
    lo = RTC_TIME_LOW;              /* latches the high word */
    now = (uint64_t)RTC_TIME_HIGH << 32 | lo;
    at = now + (uint64_t)(us ? us : 1u) * 1000u;
    RTC_ALARM_HIGH = (uint32_t)(at >> 32);
    RTC_ALARM_LOW = (uint32_t)at;   /* arms it */
    return 0;
}

void qemu_board_init(void)
{
    (void)ptrio_riscv_use_clint(CLINT_MTIME, CLINT_MTIMECMP0, CLINT_HZ);
    PLIC_PRIORITY(RTC_IRQ) = 1;
    PLIC_THRESHOLD0 = 0;
    PLIC_ENABLE0 = 1u << RTC_IRQ;
    RTC_CLEAR_ALARM = 1;
    RTC_IRQ_ENABLED = 1;
    __asm__ volatile(PTRIO_CSR("csrs mie, %0") :: "r"((uintptr_t)MIE_MEIE));
}
