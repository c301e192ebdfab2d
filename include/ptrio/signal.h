/* ptrio/signal.h: a signal an interrupt, a POSIX signal handler or another
 * thread raises, and a task awaits.
 *
 *     static ptrio_signal button;               // zeroed: not raised
 *
 *     void GPIO_IRQHandler(void) { clear_irq(); ptrio_signal_raise(&button); }
 *
 *     PTRIO_AWAIT(f, ptrio_signal_wait(f, &button));
 *     presses = PTRIO_RESULT(f);                // raises since the last wait
 *
 * Raising is lock-free where the compiler has lock-free atomics (see
 * ptrio/port.h for the critical-section hook used elsewhere): a counter
 * increment, then a wake of the waiting task's loop. Raises that
 * come before the task runs coalesce: the wait returns once, with their
 * count. One task waits at a time (as for an fd), whichever loop it runs
 * on: a task of another loop, on another thread, gets -PTRIO_EBUSY. The
 * wait is a checkpoint and cancellable like every wait; a cancelled wait
 * leaves the count for the next one.
 *
 * Raise a signal only while it is zeroed, idle or awaited in a running
 * loop, and keep the signal alive as long as something may raise it. The
 * loop need not outlive the raisers: once a wait has ended (taken,
 * cancelled or aborted by the run's end), no raise touches its loop.
 */
#ifndef PTRIO_SIGNAL_H
#define PTRIO_SIGNAL_H

#include <stdint.h>

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* PTRIO_CONF_STDATOMIC: the fields shared with raisers are C11 _Atomic
 * and signal.c uses <stdatomic.h>. The default where the compiler is C11
 * with atomics but not GCC or Clang (whose __atomic builtins are used
 * otherwise); configure --enable-stdatomic forces it. The library and the
 * programs using it must agree (ptrio.pc carries the setting). */
#ifndef PTRIO_CONF_STDATOMIC
#if !defined(__GNUC__) && !defined(__cplusplus) && \
    defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L && \
    !defined(__STDC_NO_ATOMICS__)
#define PTRIO_CONF_STDATOMIC 1
#else
#define PTRIO_CONF_STDATOMIC 0
#endif
#endif
/* A C99 or C++ program sees the plain types: the same layout where the
 * atomics are lock-free, and only signal.c touches the fields. */
#if PTRIO_CONF_STDATOMIC && !defined(__cplusplus) && \
    defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define PTRIO__SHARED(type) _Atomic(type)
#else
#define PTRIO__SHARED(type) type
#endif

typedef struct ptrio_signal {
    ptrio_source src;               /* polled by the loop while awaited */
    PTRIO__SHARED(ptrio_task *) waiter;     /* the task awaiting it */
    PTRIO__SHARED(ptrio_loop *) volatile loop;  /* raise wakes this loop */
    volatile PTRIO__SHARED(uint32_t) count; /* raises not yet taken */
    volatile PTRIO__SHARED(uint32_t) woke;  /* `loop`'s claimer is done */
} ptrio_signal;

/* Counts one raise and wakes the awaiting task's loop. Safe from an
 * interrupt, a POSIX signal handler or another thread; never blocks. A
 * port build (PTRIO_CONF_SINGLE_CORE) takes its raisers for its own
 * core's interrupts: configure --disable-single-core where another core
 * raises. */
void ptrio_signal_raise(ptrio_signal *s);

/* Waits until the signal is raised. Awaitable checkpoint: the status is
 * the number of raises taken (>= 1; INT_MAX when more), which resets the
 * count to 0. The count has 32 bits: 2^32 raises between two takes wrap
 * it (take at least once per 2^31 raises for an exact INT_MAX). Errors:
 * -PTRIO_ECANCELED (the count stays), -PTRIO_EBUSY (another task awaits
 * it), -PTRIO_EINVAL (NULL), -PTRIO_ENOTASK. */
PTRIO_NODISCARD int ptrio_signal_wait(void *self, ptrio_signal *s);

/* Takes the raises counted so far without waiting: returns their number
 * (0: none; INT_MAX when more). Not a checkpoint; loop thread only. */
int ptrio_signal_take(ptrio_signal *s);

#ifdef __cplusplus
}
#endif

#endif /* PTRIO_SIGNAL_H */
