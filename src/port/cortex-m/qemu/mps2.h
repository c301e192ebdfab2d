/* src/port/cortex-m/qemu/mps2.h: what differs between QEMU's MPS2 boards,
 * for the board file (mps2.c) and for programs that drive the board's
 * timers themselves (tests/qemu/latency.c). All have ARM's CMSDK APB
 * timers and dual timer, clocked with the core; the board is chosen at
 * build time (configure's --with-qemu-board defines it; none is AN385):
 *
 *   board        define           core          clock   timers   IRQs
 *   mps2-an385   (none)           Cortex-M3     25 MHz  0x4000_  8 9 10
 *   mps2-an386   QEMU_MPS2_AN386  Cortex-M4(F)  25 MHz  0x4000_  8 9 10
 *   mps2-an500   QEMU_MPS2_AN500  Cortex-M7(F)  25 MHz  0x4000_  8 9 10
 *   mps2-an505   QEMU_MPS2_AN505  Cortex-M33    20 MHz  0x5000_  3 4 5
 *
 * (timers: where timer 0, timer 1 and the dual timer start, 0x1000 apart;
 * IRQs: theirs, in that order; their handlers are the names startup.c's
 * vector table gives those interrupts, IRQn_Handler). AN505 is ARM's IoT subsystem, ARMv8-M
 * with TrustZone: the core leaves reset in the Secure state, and these
 * are the timers' Secure addresses (0x4000_ would be Non-secure, which
 * the subsystem's peripheral protection refuses until Secure code
 * configures it). The memory maps differ too: each board has its own
 * linker script (AN386 shares AN385's). */
#ifndef PTRIO_QEMU_MPS2_H
#define PTRIO_QEMU_MPS2_H

#if defined(QEMU_MPS2_AN505)
#define MPS2_NAME "mps2-an505"
#define MPS2_HZ 20000000u
#define MPS2_APB 0x50000000u
#define MPS2_TIMER0_IRQ 3
#define MPS2_TIMER1_IRQ 4
#define MPS2_DUAL_IRQ 5
#define MPS2_TIMER0_HANDLER IRQ3_Handler
#define MPS2_TIMER1_HANDLER IRQ4_Handler
#define MPS2_DUAL_HANDLER IRQ5_Handler
#else
#if defined(QEMU_MPS2_AN500)
#define MPS2_NAME "mps2-an500"
#elif defined(QEMU_MPS2_AN386)
#define MPS2_NAME "mps2-an386"
#else
#define MPS2_NAME "mps2-an385"
#endif
#define MPS2_HZ 25000000u
#define MPS2_APB 0x40000000u
#define MPS2_TIMER0_IRQ 8
#define MPS2_TIMER1_IRQ 9
#define MPS2_DUAL_IRQ 10
#define MPS2_TIMER0_HANDLER IRQ8_Handler
#define MPS2_TIMER1_HANDLER IRQ9_Handler
#define MPS2_DUAL_HANDLER IRQ10_Handler
#endif

#define MPS2_TIMER0 (MPS2_APB + 0x0000u)    /* CMSDK APB timers */
#define MPS2_TIMER1 (MPS2_APB + 0x1000u)
#define MPS2_DUAL (MPS2_APB + 0x2000u)      /* CMSDK dual timer */

#endif /* PTRIO_QEMU_MPS2_H */
