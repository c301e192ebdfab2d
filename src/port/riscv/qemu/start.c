/* src/port/riscv/qemu/start.c: reset code, trap handler and semihosting
 * of the RISC-V QEMU board (machine mode, hart 0). The trap handler
 * dispatches the machine timer interrupt to the port, external interrupts
 * to qemu_external_irq (the board's PLIC code), and turns exceptions
 * (ebreak from __builtin_trap, illegal instructions, access faults) into
 * qemu_trapped.
 *
 * The linker script provides __stack_top, __stack_limit, __data_load,
 * __data_start, __data_end, __bss_start, __bss_end, __global_pointer$.
 */
#include <signal.h>
#include <stdint.h>
#include <string.h>

#include <ptrio/port.h>

#include "../../qemu/board.h"
#include "../csr.h"

/* Programs define main either way; this calls it with a program name and
 * no arguments, as a host would (crt0 practice). */
int main(int argc, char **argv);
static char prog_name[] = "qemu";
static char *prog_argv[] = {prog_name, NULL};
void qemu__reset(void);
void qemu_external_irq(void);

extern uint32_t __data_load[], __data_start[], __data_end[];
extern uint32_t __bss_start[], __bss_end[];
extern char __tls_base[];
void _set_tls(void *tls);      /* picolibc's: the thread pointer */

__asm__(
    ".section .text.qemu.entry, \"ax\"\n"
    ".globl _start\n"
    "_start:\n"
    ".option push\n"
    ".option norelax\n"
    "    la gp, __global_pointer$\n"
    ".option pop\n"
    "    la sp, __stack_top\n"
    "    call qemu__reset\n"
    "1:  j 1b\n"
    ".text\n");

static volatile uintptr_t trap_pc;
static volatile int trap_sig;

static void trap_entry(void)
{
    qemu_trapped(trap_sig, trap_pc);
}

#define MCAUSE_IRQ ((uintptr_t)1 << (__riscv_xlen - 1))
#define IRQ_M_TIMER 7
#define IRQ_M_EXT 11
#define EXC_ILLEGAL 2
#define EXC_BREAKPOINT 3

__attribute__((__interrupt__("machine"), __aligned__(4)))
static void trap(void)
{
    uintptr_t cause, pc;

    __asm__ volatile(PTRIO_CSR("csrr %0, mcause") : "=r"(cause));
    if (cause & MCAUSE_IRQ) {
        cause &= ~MCAUSE_IRQ;
        if (cause == IRQ_M_TIMER)
            ptrio_riscv_timer_isr();
        else if (cause == IRQ_M_EXT)
            qemu_external_irq();
        return;
    }
    /* An exception: resume in trap_entry instead (machine mode all
     * along, so mret lands there with the caller's stack). */
    __asm__ volatile(PTRIO_CSR("csrr %0, mepc") : "=r"(pc));
    trap_pc = pc;
    trap_sig = cause == EXC_ILLEGAL || cause == EXC_BREAKPOINT ? SIGILL
                                                               : SIGSEGV;
    __asm__ volatile(PTRIO_CSR("csrw mepc, %0") :: "r"((uintptr_t)trap_entry));
}

/* mstatus.FS: the floating-point unit is off at reset, so the first
 * floating-point instruction traps, and with an F or D target that is
 * the trap handler's own register saves: a hang. "Initial" turns it on. */
#define MSTATUS_FS_INITIAL 0x2000u

void qemu__reset(void)
{
    size_t n = (size_t)((char *)__data_end - (char *)__data_start);

#ifdef __riscv_flen
    __asm__ volatile(PTRIO_CSR("csrs mstatus, %0")
                     :: "r"((uintptr_t)MSTATUS_FS_INITIAL) : "memory");
#endif
    if (n && (uintptr_t)__data_load != (uintptr_t)__data_start)
        memcpy(__data_start, __data_load, n);
    memset(__bss_start, 0, (size_t)((char *)__bss_end - (char *)__bss_start));
    _set_tls(__tls_base);
    qemu_stack_paint();
    __asm__ volatile(PTRIO_CSR("csrw mtvec, %0") :: "r"((uintptr_t)trap));
    qemu_board_init();
    __asm__ volatile(PTRIO_CSR("csrsi mstatus, 8") ::: "memory");     /* MIE */
    qemu_exit(main(1, prog_argv));
}

/* The semihosting trap: an ebreak between two marker instructions, all
 * uncompressed and within one 16-byte block (QEMU checks both), as a
 * function of its own: op in a0, the argument block in a1, the result in
 * a0. */
__asm__(
    ".section .text.qemu_semihost, \"ax\", @progbits\n"
    ".balign 16\n"
    ".globl qemu_semihost\n"
    "qemu_semihost:\n"
    ".option push\n"
    ".option norvc\n"
    "    slli zero, zero, 0x1f\n"
    "    ebreak\n"
    "    srai zero, zero, 7\n"
    ".option pop\n"
    "    ret\n"
    ".text\n");
