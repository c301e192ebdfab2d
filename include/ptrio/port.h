/* ptrio/port.h: what a microcontroller port supplies besides its backend
 * (see README, "Porting"), and the ports in the tree.
 *
 * A port is a backend (ptrio/backend.h) whose clock is a hardware counter
 * and whose wait sleeps the core (WFI) until an interrupt. Configured with
 * --with-port=cortex-m or --with-port=riscv, it is the build's default
 * backend: ptrio_run works unchanged. Its state is the hardware's: one
 * clock per core, set up once by the board's start-up code (the
 * ptrio_*_use_* calls below) before the first loop runs; a loop run
 * before that fails with -PTRIO_ENOBACKEND (the backend's open).
 */
#ifndef PTRIO_PORT_H
#define PTRIO_PORT_H

#include <stdint.h>

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- critical sections ----------------------------------------------
 *
 * ptrio_signal is lock-free where the compiler has lock-free atomics
 * (Cortex-M3 and up, RISC-V with the A extension, every POSIX host).
 * Elsewhere (Cortex-M0/M0+, RISC-V without A) it brackets its few loads
 * and stores with these two functions. The ports define them (PRIMASK on
 * Cortex-M, mstatus.MIE on RISC-V); a build for such a part without a port
 * must define them (the library's weak stand-ins trap at the first raise
 * or wait). Contract: enter masks every interrupt that may call
 * into ptrio and returns the previous state; exit restores exactly that
 * state; both nest, are callable from any context, and take a few
 * instructions (they also guard the ports' 64-bit clock reads). */
typedef uintptr_t ptrio_irqstate;
ptrio_irqstate ptrio_port_critical_enter(void);
void ptrio_port_critical_exit(ptrio_irqstate state);

/* ---- Cortex-M (src/port/cortex-m) -------------------------------------
 *
 * The clock is SysTick, or a 32-bit counter of yours. Sleeping is WFI
 * with interrupts masked (PRIMASK) around the "is anything ready?" test,
 * so an interrupt between the test and the WFI still ends the sleep.
 * ptrio_loop_wake (the backend's wake: one store) may be called from any
 * interrupt; ptrio_signal_raise and the clock from any but an NMI or a
 * fault, which PRIMASK (the port's critical section) does not mask.
 * Single core: a loop and the interrupts that wake it run on one core. */
extern const ptrio_backend ptrio_backend_cortex_m;

/* Clocks SysTick from the core clock (`cpu_hz`, at most 1 GHz) with an
 * interrupt `tick_hz` times a second (cpu_hz / tick_hz - 1 must fit 24
 * bits). Your SysTick vector must call ptrio_cortex_m_systick_isr. The
 * clock reads SysTick's current value between ticks, so it has the core
 * clock's resolution; sleeps end on the first tick at or after their
 * deadline. Interrupts must never stay masked for a whole tick, nor may a
 * higher-priority handler hold the SysTick handler off that long; and
 * nothing else may read SYST_CSR (a vendor delay routine, a debugger's
 * register view): reading clears COUNTFLAG, and a wrap would go uncounted.
 * Returns 0, or -PTRIO_EINVAL for bad rates. */
int ptrio_cortex_m_use_systick(uint32_t cpu_hz, uint32_t tick_hz);

/* The SysTick interrupt of the clock above: counts one tick. */
void ptrio_cortex_m_systick_isr(void);

/* A free-running 32-bit up-counter of your part, extended to 64 bits by
 * noticing each wrap, which needs reads less than 2^32 counts apart (268 s
 * at 16 MHz). `set_alarm` (tickless mode) arms an interrupt for when the
 * counter reaches `at`: the port re-reads the counter after arming and
 * does not sleep if `at` has passed, so the part only has to fire for an
 * `at` still ahead when the arming write completes. Its handler clears
 * the event and calls ptrio_cortex_m_alarm_isr. The port then keeps an
 * alarm armed at most 2^31 counts after its last read at all times (a
 * sleep's, at most 2^30 ahead and on the first count whose time is its
 * deadline; or a beat's), so the clock stays right whatever the program
 * does: sleeping, running tasks that never sleep, or no loop at all, as
 * long as interrupts are never masked for 2^31 counts. Without set_alarm
 * (NULL), call ptrio_cortex_m_now from an interrupt of your own at least
 * once per 2^31 counts; not from the counter's overflow interrupt alone,
 * whose reads are a whole wrap apart and see none. Nothing then wakes a
 * sleep at its deadline: it ends at the first interrupt after it, so an
 * interrupt of yours is the sleeps' tick (its period, their resolution). */
typedef struct ptrio_cortex_m_counter {
    uint32_t hz;                        /* counts per second, <= 1 GHz */
    uint32_t (*read)(void);
    void (*set_alarm)(uint32_t at);
} ptrio_cortex_m_counter;

/* Uses `c` (caller-owned, static) as the clock; with set_alarm, arms the
 * first beat. 0, or -PTRIO_EINVAL. */
int ptrio_cortex_m_use_counter(const ptrio_cortex_m_counter *c);

/* The counter's alarm interrupt (call it from the alarm's handler, after
 * clearing its event): reads the clock and arms the next beat, 2^31
 * counts ahead. Harmless without a counter clock. */
void ptrio_cortex_m_alarm_isr(void);

/* The port's clock, in ns: since SysTick was set up, or since the
 * counter's zero (0 before either). Callable from an interrupt. */
int64_t ptrio_cortex_m_now(void);

/* ---- RISC-V (src/port/riscv) --------------------------------------------
 *
 * The clock is the CLINT's 64-bit mtime (it never wraps in practice); the
 * wait is tickless: it programs mtimecmp for the next deadline and sleeps
 * in WFI with mstatus.MIE clear around the "is anything ready?" test.
 * Machine mode, one hart. ptrio_loop_wake may be called from any
 * interrupt. */
extern const ptrio_backend ptrio_backend_riscv;

/* Uses the CLINT whose mtime register is at `mtime` and this hart's
 * mtimecmp at `mtimecmp`, counting `hz` times a second (<= 1 GHz); enables
 * the machine timer interrupt (mie.MTIE). Your trap handler must call
 * ptrio_riscv_timer_isr on a machine timer interrupt. 0 or -PTRIO_EINVAL. */
int ptrio_riscv_use_clint(uintptr_t mtime, uintptr_t mtimecmp, uint32_t hz);

/* The machine timer interrupt: disarms mtimecmp (the wait re-arms it). */
void ptrio_riscv_timer_isr(void);

/* The port's clock, in ns since mtime read 0. Callable from an interrupt. */
int64_t ptrio_riscv_now(void);

#ifdef __cplusplus
}
#endif

#endif /* PTRIO_PORT_H */
