/* src/sync/signal.c: ptrio_signal, raised from outside the loop's thread.
 *
 * A raise may come from an interrupt, a signal handler or a thread, so it
 * touches two words only: it increments `count` and, if a task waits,
 * reads `loop` to wake it. Everything else runs on the loop's thread: the
 * waiting task parks with an abort hook and adds the signal as a source;
 * the loop polls the source after each wait, and the poll takes the count
 * and wakes the task.
 *
 * No raise is lost: the waiter publishes `loop` before it tests `count`,
 * and a raise increments `count` before it reads `loop` (both sequentially
 * consistent), so either the waiter sees the raise or the raise sees the
 * waiter and wakes its loop, whose next wait then returns at once.
 *
 * No raise touches a loop whose wait has ended: a raiser on another thread
 * could read `loop` just before the wait ends, and the loop could then end
 * and its storage be reused. So there a raiser claims the loop, taking
 * `loop` and leaving NULL (one atomic exchange): one raiser per wait wakes
 * the loop, later ones only count, and the claimer sets `woke` once its
 * wake has returned. The wait's end takes `loop` the same way: getting
 * NULL, it knows a claimer exists and waits for its `woke` (a few
 * instructions and one wake, whatever other raisers do meanwhile). A
 * raiser preempted between its count and its claim may claim a later wait
 * than the one its count ended: that wait's poll, finding no count and
 * `loop` taken, publishes its loop again (loop_reclaim), or the raises
 * after it would only count.
 *
 * One task waits at a time, and loops on other threads may try too: a
 * wait takes the `waiter` slot before it parks (an atomic compare-exchange
 * where raisers claim), and its end gives the slot back only after its
 * loop and its source are done with the signal, so the next waiter, on any
 * loop, starts on a signal the last one has left.
 *
 * On a port the raiser is an interrupt of the loop's own core (ptrio/port.h:
 * one core), which sees the loop's stores in program order and runs whole
 * between two of its instructions: keeping that order needs only the
 * compiler's (a signal fence), not the barriers between cores that
 * sequential consistency costs.
 */
#ifdef PTRIO_CONF_HOSTED
#define _POSIX_C_SOURCE 200809L     /* sched_yield */
#include <sched.h>
#endif
#include <limits.h>
#include <stddef.h>

#include <ptrio/backend.h>
#include <ptrio/port.h>
#include <ptrio/signal.h>

#include "../core/internal.h"

/* ---- the two shared words -------------------------------------------- */

/* The take is on the path from an interrupt to its task: inlined even at
 * -Os, where three callers would keep it out of line. */
#if defined(__GNUC__) || defined(__clang__)
#define TAKE_INLINE inline __attribute__((__always_inline__))
#else
#define TAKE_INLINE inline
#endif

/* The atomic operations, in one of two spellings: C11's <stdatomic.h>
 * (PTRIO_CONF_STDATOMIC, ptrio/signal.h: the shared fields are _Atomic),
 * or the GCC/Clang builtins, which give the same memory model in C99.
 * INT_LOCK_FREE and PTR_LOCK_FREE say which the part has lock-free. */
#if PTRIO_CONF_STDATOMIC
#include <stdatomic.h>
#if defined(ATOMIC_INT_LOCK_FREE) && ATOMIC_INT_LOCK_FREE == 2
#define INT_LOCK_FREE 1
#else
#define INT_LOCK_FREE 0
#endif
#if defined(ATOMIC_POINTER_LOCK_FREE) && ATOMIC_POINTER_LOCK_FREE == 2
#define PTR_LOCK_FREE 1
#else
#define PTR_LOCK_FREE 0
#endif
#define MO_RELAXED memory_order_relaxed
#define MO_ACQUIRE memory_order_acquire
#define MO_RELEASE memory_order_release
#define MO_SEQ_CST memory_order_seq_cst
#define A_ADD(p, v, mo) atomic_fetch_add_explicit((p), (v), (mo))
#define A_XCHG(p, v, mo) atomic_exchange_explicit((p), (v), (mo))
#define A_LOAD(p, mo) atomic_load_explicit((p), (mo))
#define A_STORE(p, v, mo) atomic_store_explicit((p), (v), (mo))
#define A_CAS(p, e, d, ok, no) \
    atomic_compare_exchange_strong_explicit((p), (e), (d), (ok), (no))
#define COMPILER_FENCE() atomic_signal_fence(memory_order_seq_cst)
/* Under the critical section: single loads and stores, never a call. */
#define PLAIN_LOAD(p) atomic_load_explicit((p), memory_order_relaxed)
#define PLAIN_STORE(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)
#else
#if defined(__GCC_ATOMIC_INT_LOCK_FREE) && __GCC_ATOMIC_INT_LOCK_FREE == 2
#define INT_LOCK_FREE 1
#else
#define INT_LOCK_FREE 0
#endif
#if defined(__GCC_ATOMIC_POINTER_LOCK_FREE) && \
    __GCC_ATOMIC_POINTER_LOCK_FREE == 2
#define PTR_LOCK_FREE 1
#else
#define PTR_LOCK_FREE 0
#endif
#define MO_RELAXED __ATOMIC_RELAXED
#define MO_ACQUIRE __ATOMIC_ACQUIRE
#define MO_RELEASE __ATOMIC_RELEASE
#define MO_SEQ_CST __ATOMIC_SEQ_CST
#define A_ADD(p, v, mo) __atomic_fetch_add((p), (v), (mo))
#define A_XCHG(p, v, mo) __atomic_exchange_n((p), (v), (mo))
#define A_LOAD(p, mo) __atomic_load_n((p), (mo))
#define A_STORE(p, v, mo) __atomic_store_n((p), (v), (mo))
#define A_CAS(p, e, d, ok, no) \
    __atomic_compare_exchange_n((p), (e), (d), 0, (ok), (no))
#define COMPILER_FENCE() __atomic_signal_fence(__ATOMIC_SEQ_CST)
#define PLAIN_LOAD(p) (*(p))
#define PLAIN_STORE(p, v) (*(p) = (v))
#endif

/* PTRIO_CONF_SINGLE_CORE (set by configure --with-port): every raiser runs
 * on the loop's core. */
#if INT_LOCK_FREE && defined(PTRIO_CONF_SINGLE_CORE) && PTRIO_CONF_SINGLE_CORE

/* A port with atomics: the count's read-modify-writes stay atomic (a
 * nested interrupt may raise too); the order is the compiler's only. */
static uint32_t count_add(ptrio_signal *s)
{
    uint32_t c = A_ADD(&s->count, 1u, MO_RELAXED);
    COMPILER_FENCE();
    return c;
}

static TAKE_INLINE uint32_t count_take(ptrio_signal *s)
{
    uint32_t c;
    COMPILER_FENCE();
    c = A_XCHG(&s->count, 0u, MO_RELAXED);
    COMPILER_FENCE();
    return c;
}

static ptrio_loop *loop_get(ptrio_signal *s)
{
    return PLAIN_LOAD(&s->loop);    /* one aligned word: a single load */
}

static inline void loop_set(ptrio_signal *s, ptrio_loop *l)
{
    COMPILER_FENCE();
    PLAIN_STORE(&s->loop, l);       /* one aligned word: a single store */
    COMPILER_FENCE();
}

#define SIGNAL_CLAIMS 0   /* claiming is reading (below) */

#elif INT_LOCK_FREE && PTR_LOCK_FREE

/* Hosts and multi-core parts: sequentially consistent atomics. */
static uint32_t count_add(ptrio_signal *s)
{
    return A_ADD(&s->count, 1u, MO_SEQ_CST);
}

static TAKE_INLINE uint32_t count_take(ptrio_signal *s)
{
    return A_XCHG(&s->count, 0u, MO_SEQ_CST);
}

static inline void loop_set(ptrio_signal *s, ptrio_loop *l)
{
    A_STORE(&s->loop, l, MO_SEQ_CST);
}

/* A raiser takes the loop it wakes, leaving NULL for the next raisers and
 * for the wait's end (loop_clear), which then waits for raise_done. */
#define SIGNAL_CLAIMS 1
static inline ptrio_loop *loop_claim(ptrio_signal *s)
{
    return A_XCHG(&s->loop, NULL, MO_SEQ_CST);
}

/* The claimer's wake has returned: its release orders the claimer's use of
 * the loop before whatever the loop does next. */
static inline void raise_done(ptrio_signal *s)
{
    A_STORE(&s->woke, 1u, MO_RELEASE);
}

/* Ends the wait's publication of its loop. Taking NULL means a raiser
 * claimed it: wait until that one raise is done (its few instructions and
 * one wake; a claimer that is a signal handler on this thread is done
 * before this resumes). On a host the spin yields the processor now and
 * then, for a claimer that was preempted mid-raise. Loop's thread, only
 * while `loop` was set. */
static void claimer_wait(ptrio_signal *s)
{
    unsigned spins = 0;

    while (A_LOAD(&s->woke, MO_ACQUIRE) == 0u) {
        if (++spins == 64u) {
            spins = 0;
#ifdef PTRIO_CONF_HOSTED
            (void)sched_yield();
#endif
        }
    }
    A_STORE(&s->woke, 0u, MO_RELAXED);
}

static void loop_clear(ptrio_signal *s)
{
    if (A_XCHG(&s->loop, NULL, MO_SEQ_CST) == NULL) {
        claimer_wait(s);
    }
}

/* The poll of a wait found no count, yet a raiser may have claimed the
 * wait's loop: one preempted between its count and its claim, whose count
 * an earlier wait took. Left so, every later raise would find `loop` NULL
 * and only count. So the wait publishes its loop again, once that raiser
 * is done, and takes the count again (a raise that found NULL meanwhile
 * only counted). Returns what it took. Loop's thread, while waiting. */
static uint32_t loop_reclaim(ptrio_signal *s, ptrio_loop *l)
{
    if (A_LOAD(&s->loop, MO_SEQ_CST) != NULL) {
        return 0u;
    }
    claimer_wait(s);
    loop_set(s, l);
    return count_take(s);
}

#else

/* No lock-free atomics (Cortex-M0, RV32 without A): the port's critical
 * section (ptrio/port.h). A raise on such parts comes from an interrupt
 * on the same core, which the critical section masks; one from another
 * core it cannot exclude. */
#if (defined(PTRIO_PORT_CORTEX_M) || defined(PTRIO_PORT_RISCV)) && \
    !(defined(PTRIO_CONF_SINGLE_CORE) && PTRIO_CONF_SINGLE_CORE)
#error "ptrio_signal: a part without atomics takes raises from its own core only: configure without --disable-single-core"
#endif
static uint32_t count_add(ptrio_signal *s)
{
    ptrio_irqstate st = ptrio_port_critical_enter();
    uint32_t c = PLAIN_LOAD(&s->count);
    PLAIN_STORE(&s->count, c + 1u);
    ptrio_port_critical_exit(st);
    return c;
}

static TAKE_INLINE uint32_t count_take(ptrio_signal *s)
{
    ptrio_irqstate st = ptrio_port_critical_enter();
    uint32_t c = PLAIN_LOAD(&s->count);
    PLAIN_STORE(&s->count, 0u);
    ptrio_port_critical_exit(st);
    return c;
}

static ptrio_loop *loop_get(ptrio_signal *s)
{
    return PLAIN_LOAD(&s->loop);    /* one aligned word: a single load */
}

#if !defined(PTRIO_PORT_CORTEX_M) && !defined(PTRIO_PORT_RISCV) && \
    (defined(__GNUC__) || defined(__clang__))
/* No port and no atomics: the application must define the hook (see
 * ptrio/port.h). These stand-ins only make a forgotten one impossible to
 * miss: the first raise or wait traps. (Without weak symbols, a forgotten
 * hook is a link error.) */
__attribute__((__weak__)) ptrio_irqstate ptrio_port_critical_enter(void)
{
    __builtin_trap();
}

__attribute__((__weak__)) void ptrio_port_critical_exit(ptrio_irqstate state)
{
    (void)state;
    __builtin_trap();
}
#endif

static inline void loop_set(ptrio_signal *s, ptrio_loop *l)
{
    PLAIN_STORE(&s->loop, l);       /* one aligned word: a single store */
}

#define SIGNAL_CLAIMS 0   /* claiming is reading (below) */

#endif

#if !SIGNAL_CLAIMS
/* Raisers are interrupts of this core, each run whole between two of the
 * loop's instructions: a raise that reads `loop` has finished its wake
 * before the loop's thread runs on, so claiming is reading. */
static inline ptrio_loop *loop_claim(ptrio_signal *s) { return loop_get(s); }
static inline void raise_done(ptrio_signal *s) { (void)s; }
static inline void loop_clear(ptrio_signal *s) { loop_set(s, NULL); }
static inline uint32_t loop_reclaim(ptrio_signal *s, ptrio_loop *l)
{
    (void)s;
    (void)l;
    return 0u;          /* a claim is a read: `loop` stays set */
}

/* One loop runs at a time (the raisers are interrupts): the waiter slot
 * is the loop's alone, tested before the task parks and set after. */
static inline int waiter_claim(ptrio_signal *s, ptrio_task **t)
{
    (void)t;
    return PLAIN_LOAD(&s->waiter) == NULL;
}

static inline ptrio_task *waiter_get(ptrio_signal *s)
{
    return PLAIN_LOAD(&s->waiter);
}

static inline void waiter_release(ptrio_signal *s)
{
    PLAIN_STORE(&s->waiter, NULL);
}
#else
/* Loops on other threads may wait on the signal too: one takes the waiter
 * slot for its running task (one compare-exchange; the others get
 * -PTRIO_EBUSY) before it parks, and its wait's end gives it back last,
 * once its loop and its source are done with the signal (release: the
 * next waiter's acquire sees them done). No task: nothing is taken, and
 * the park fails. */
static inline int waiter_claim(ptrio_signal *s, ptrio_task **t)
{
    ptrio_task *none = NULL;
    int taken = 1;

    *t = ptrio_current_task();
    if ((*t != NULL) &&
        !A_CAS(&s->waiter, &none, *t, MO_ACQUIRE, MO_RELAXED)) {
        taken = 0;
    }
    return taken;
}

/* The holder's own read: atomic only because the others' attempts are. */
static inline ptrio_task *waiter_get(ptrio_signal *s)
{
    return A_LOAD(&s->waiter, MO_RELAXED);
}

static inline void waiter_release(ptrio_signal *s)
{
    A_STORE(&s->waiter, NULL, MO_RELEASE);
}
#endif

/* ---- raising ------------------------------------------------------------ */

/* `loop` is set only while a task of that loop waits, and the wait's end
 * waits for the raise that claimed it, so the loop is running and open
 * throughout the wake: ptrio_loop_wake's test of that is left out. */
void ptrio_signal_raise(ptrio_signal *s)
{
    ptrio_loop *l;
    const ptrio_backend *be;

    if (s != NULL) {
        (void)count_add(s);
        l = loop_claim(s);
        if (l != NULL) {
            be = l->backend;
            if ((be != NULL) && (be->wake != NULL)) {
                be->wake(l);
            }
            raise_done(s);
        }
    }
}

/* ---- waiting (the loop's thread) ---------------------------------------- */

static int clamp(uint32_t n)
{
    return n > (uint32_t)INT_MAX ? INT_MAX : (int)n;
}

int ptrio_signal_take(ptrio_signal *s)
{
    return (s != NULL) ? clamp(count_take(s)) : 0;
}

/* The wait ends (taken, or aborted): later raises only count. The slot
 * is given back last (see waiter_claim). */
static ptrio_task *unwait(ptrio_signal *s)
{
    ptrio_task *t = waiter_get(s);

    loop_clear(s);
    ptrio_source_remove(&s->src);
    waiter_release(s);
    return t;
}

/* The hot half of an interrupt's wake: one take, then the source removed
 * and the task woken, inline. A waiter is always parked with sig_abort
 * (it is cleared with the source when its wait ends), so ptrio_wake's
 * checks are the debug build's invariant here. */
static void sig_poll(ptrio_source *src)
{
    ptrio_signal *s = (ptrio_signal *)(void *)src;  /* src is the first member */
    uint32_t n = count_take(s);
    ptrio_task *t = waiter_get(s);

    if (n == 0u) {
        n = loop_reclaim(s, ptrio__loop);
    }
    if (n != 0u) {
        ptrio_loop *l = ptrio__loop;
        INVARIANT((t != NULL) && (TSTATE(t) == T_PARKED) &&
                      (t->wait == W_HOOK),
                  "a signal's waiter that does not wait on it");
        loop_clear(s);
        ptrio__source_unlink(l, src);
        waiter_release(s);
        ptrio__wake_now(l, t, clamp(n));
    }
}

/* Cancelled: the count stays for the next wait. */
static int sig_abort(ptrio_task *t, void *data)
{
    (void)t;
    (void)unwait(data);
    return 0;
}

int ptrio_signal_wait(void *self, ptrio_signal *s)
{
    ptrio_task *t;
    uint32_t n;
    int rc;

    t = NULL;
    if (s == NULL) {
        rc = -PTRIO_EINVAL;
    } else if (waiter_claim(s, &t) == 0) {
        rc = -PTRIO_EBUSY;
    } else {
        rc = ptrio_park_hook(self, sig_abort, s);
        if ((rc != PTRIO_PENDING) && (t != NULL)) {
            waiter_release(s);      /* taken by waiter_claim */
        }
    }
    if (rc == PTRIO_PENDING) {
#if !SIGNAL_CLAIMS
        t = ptrio_current_task();
        PLAIN_STORE(&s->waiter, t);
#endif
        loop_set(s, ptrio_current_loop());
        n = count_take(s);
        if (n != 0u) {
            /* Raised already: the wait is a checkpoint that yields. */
            (void)ptrio_wake(unwait(s), clamp(n));
        } else {
            (void)ptrio_source_add(&s->src, sig_poll);  /* no waiter: free */
        }
    }
    return rc;
}
