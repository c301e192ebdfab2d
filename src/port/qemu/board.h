/* src/port/qemu/board.h: what the QEMU boards offer the programs they run
 * (the test suites, the samples, the firmware sample). Copy a board's
 * files to start a real one: the vector table or trap vector, the reset
 * code, the linker script, the clock set-up and a console.
 *
 *   src/port/cortex-m/qemu/  the MPS2 boards mps2-an385, -an386, -an500 and
 *                            -an505 (Cortex-M3, M4, M7, M33: mps2.c, dual
 *                            timer tickless) and microbit (Cortex-M0,
 *                            nRF51 TIMER0, tickless)
 *   src/port/riscv/qemu/     virt (RV32/RV64, CLINT, tickless)
 *
 * Output and the exit status go through semihosting (QEMU's
 * -semihosting-config enable=on,target=native): stdout is line-buffered
 * into SYS_WRITE, and the status of main becomes QEMU's exit status.
 */
#ifndef PTRIO_QEMU_BOARD_H
#define PTRIO_QEMU_BOARD_H

#include <stddef.h>
#include <stdint.h>

/* The board's name ("mps2-an385", "mps2-an505", "microbit", "virt"...). */
extern const char qemu_board_name[];

/* Writes `n` bytes to the console (unbuffered; stdout is buffered). */
void qemu_console_write(const char *s, size_t n);

/* Flushes stdout and ends QEMU with `status`. */
void qemu_exit(int status) __attribute__((__noreturn__));

/* Calls `fn` from an interrupt handler `us` microseconds from now, once
 * (the "button" of the samples and tests: an interrupt independent of the
 * port's clock). Returns 0, or -1 while an alarm is pending. */
int qemu_alarm(uint32_t us, void (*fn)(void));

/* Set: a trap in thread code (__builtin_trap, an undefined instruction,
 * a fault) calls it, in thread mode, with SIGILL or SIGSEGV, instead of
 * ending the program; it must not return (the test runner longjmps). */
extern void (*volatile qemu_trap_hook)(int sig);

/* Where the last trap happened (its pc). */
extern volatile uintptr_t qemu_trap_pc;

/* Lowest address the stack has reached since qemu_stack_paint (the stack
 * is painted at reset): the high-water mark, for footprint figures. */
void qemu_stack_paint(void);
size_t qemu_stack_used(void);

/* For the boards' own files. */
long qemu_semihost(long op, void *arg);     /* the arch's trap */
void qemu_board_init(void);                 /* clock, timers, console */
void qemu_trapped(int sig, uintptr_t pc);   /* from a fault handler */

#endif /* PTRIO_QEMU_BOARD_H */
