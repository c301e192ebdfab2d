/* src/port/cortex-m/qemu/startup.c: vector table, reset handler, fault
 * handler and semihosting of the Cortex-M QEMU boards (ARMv6-M, ARMv7-M
 * and ARMv8-M Mainline alike). A board file defines qemu_board_init and
 * the handlers it uses (SysTick_Handler, IRQn_Handler): every other vector
 * is a handler that reports the exception and ends the program.
 *
 * The linker script provides __stack_top, __stack_limit, __data_load,
 * __data_start, __data_end, __bss_start and __bss_end.
 */
#include <signal.h>
#include <stdint.h>
#include <string.h>

#include "../../qemu/board.h"

/* Programs define main either way; this calls it with a program name and
 * no arguments, as a host would (crt0 practice). */
int main(int argc, char **argv);
static char prog_name[] = "qemu";
static char *prog_argv[] = {prog_name, NULL};

extern uint32_t __data_load[], __data_start[], __data_end[];
extern uint32_t __bss_start[], __bss_end[];
extern char __tls_base[];
void _set_tls(void *tls);      /* picolibc's: the thread pointer */
extern uint32_t __stack_top[];

void Reset_Handler(void);
void HardFault_Handler(void);
void Default_Handler(void);

#define WEAK __attribute__((__weak__, __alias__("Default_Handler")))
void NMI_Handler(void) WEAK;
void SVC_Handler(void) WEAK;
void PendSV_Handler(void) WEAK;
void SysTick_Handler(void) WEAK;
void IRQ0_Handler(void) WEAK;   void IRQ1_Handler(void) WEAK;
void IRQ2_Handler(void) WEAK;   void IRQ3_Handler(void) WEAK;
void IRQ4_Handler(void) WEAK;   void IRQ5_Handler(void) WEAK;
void IRQ6_Handler(void) WEAK;   void IRQ7_Handler(void) WEAK;
void IRQ8_Handler(void) WEAK;   void IRQ9_Handler(void) WEAK;
void IRQ10_Handler(void) WEAK;  void IRQ11_Handler(void) WEAK;
void IRQ12_Handler(void) WEAK;  void IRQ13_Handler(void) WEAK;
void IRQ14_Handler(void) WEAK;  void IRQ15_Handler(void) WEAK;

typedef union { void (*fn)(void); const void *sp; } vector;

/* ARMv7-M's MemManage, BusFault and UsageFault are left disabled: they
 * escalate to HardFault. */
__attribute__((__section__(".vectors"), __used__))
const vector qemu_vectors[16 + 16] = {
    {.sp = __stack_top}, {Reset_Handler}, {NMI_Handler}, {HardFault_Handler},
    {Default_Handler}, {Default_Handler}, {Default_Handler}, {0},
    {0}, {0}, {0}, {SVC_Handler},
    {Default_Handler}, {0}, {PendSV_Handler}, {SysTick_Handler},
    {IRQ0_Handler}, {IRQ1_Handler}, {IRQ2_Handler}, {IRQ3_Handler},
    {IRQ4_Handler}, {IRQ5_Handler}, {IRQ6_Handler}, {IRQ7_Handler},
    {IRQ8_Handler}, {IRQ9_Handler}, {IRQ10_Handler}, {IRQ11_Handler},
    {IRQ12_Handler}, {IRQ13_Handler}, {IRQ14_Handler}, {IRQ15_Handler},
};

/* CPACR: the floating-point unit (CP10, CP11) is off at reset, so with an
 * -mfpu target the first floating-point instruction faults (NOCP). Full
 * access turns it on; the barriers make the next instruction see it. */
#define CPACR (*(volatile uint32_t *)0xE000ED88u)
#define CPACR_CP10_CP11_FULL (0xFu << 20)

void Reset_Handler(void)
{
    size_t n = (size_t)((char *)__data_end - (char *)__data_start);

#ifdef __ARM_FP
    CPACR |= CPACR_CP10_CP11_FULL;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    if (n)
        memcpy(__data_start, __data_load, n);
    memset(__bss_start, 0, (size_t)((char *)__bss_end - (char *)__bss_start));
    _set_tls(__tls_base);
    qemu_stack_paint();
    qemu_board_init();
    qemu_exit(main(1, prog_argv));
}

void Default_Handler(void)
{
    uint32_t ipsr;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    qemu_trapped(SIGSEGV, 0x80000000u | ipsr);  /* pc: the exception number */
}

/* ---- faults -------------------------------------------------------------
 *
 * A fault in thread code returns, through the exception return, to
 * trap_entry in thread mode, with the stacked PC and xPSR replaced: the
 * test runner's hook can then longjmp out of the test as if a signal had
 * arrived. A fault in a handler ends the program. */

static volatile uintptr_t trap_pc;
static volatile int trap_sig;

static void trap_entry(void)
{
    qemu_trapped(trap_sig, trap_pc);
}

void qemu__fault(uint32_t *frame, uint32_t exc_return);
void qemu__fault(uint32_t *frame, uint32_t exc_return)
{
    uint32_t pc = frame[6];
    uint16_t insn = *(const volatile uint16_t *)(uintptr_t)(pc & ~1u);

    trap_pc = pc;
    trap_sig = (insn & 0xff00u) == 0xde00u ? SIGILL : SIGSEGV;  /* UDF */
    if (!(exc_return & 8u))
        qemu_trapped(trap_sig, pc);     /* in a handler: cannot resume */
    frame[6] = (uint32_t)(uintptr_t)trap_entry & ~1u;
    frame[7] = 0x01000000u | (frame[7] & 0x200u);  /* Thumb; keep the
                                                      stack-align bit */
}

/* Thumb-1 only, so that it runs on ARMv6-M too. */
__attribute__((__naked__)) void HardFault_Handler(void)
{
    __asm__ volatile(
        "movs r0, #4\n\t"
        "mov r1, lr\n\t"
        "tst r0, r1\n\t"
        "beq 1f\n\t"
        "mrs r0, psp\n\t"
        "b 2f\n"
        "1:\n\t"
        "mrs r0, msp\n"
        "2:\n\t"
        "push {r1, lr}\n\t"
        "bl qemu__fault\n\t"
        "pop {r1, pc}\n");
}

/* ---- semihosting ----------------------------------------------------------- */

long qemu_semihost(long op, void *arg)
{
    register long r0 __asm__("r0") = op;
    register void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}
