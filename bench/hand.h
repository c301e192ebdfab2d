/* bench/hand.h: the hand-written limit the core figures are compared
 * with. What a minimal scheduler of stackless tasks must do, and nothing
 * else: protothreads (a step function that switches on its saved resume
 * point), an intrusive FIFO run queue, a parent counting its live
 * children, and a binary heap of deadlines on a virtual clock. No
 * cancellation, no errors, no checks: the floor ptrio's figures stand on.
 *
 * The scheduler and the heap are out of line (HAND_NOINLINE), as ptrio's
 * are in the library: the compiler cannot fold a benchmark's loop into
 * them. Every step is called through its task's function pointer, as
 * ptrio's are.
 */
#ifndef PTRIO_BENCH_HAND_H
#define PTRIO_BENCH_HAND_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define HAND_NOINLINE __attribute__((__noinline__, __unused__))
#else
#define HAND_NOINLINE
#endif

enum { HAND_DONE, HAND_YIELD, HAND_WAIT };

typedef struct hand_task hand_task;
struct hand_task {
    hand_task *next;                /* run-queue link */
    int (*step)(hand_task *t);      /* returns HAND_DONE/YIELD/WAIT */
    unsigned resume;                /* resume point (0: start) */
    hand_task *parent;              /* woken when its last child is done */
    long live;                      /* children not yet done */
};

/* A heap entry keeps its deadline beside the task, so that sifting
 * compares keys in the array without touching the tasks. */
typedef struct hand_timer {
    int64_t deadline;
    hand_task *t;
} hand_timer;

typedef struct hand_sched {
    hand_task *head, *tail;         /* run queue */
    hand_timer *heap;               /* deadlines: a binary min-heap */
    size_t nheap;
    int64_t now;                    /* the virtual clock */
} hand_sched;

/* Protothread resume points (the switch form of ptrio's coroutines). */
#define HAND_BEGIN(t) switch ((t)->resume) { case 0:
#define HAND_YIELD_POINT(t, kind)                                          \
    do {                                                                    \
        (t)->resume = __LINE__;                                             \
        return (kind);                                                      \
    case __LINE__:;                                                         \
    } while (0)
#define HAND_END(t) } (t)->resume = 0; return HAND_DONE

static inline void hand_ready(hand_sched *s, hand_task *t)
{
    t->next = NULL;
    if (s->tail)
        s->tail->next = t;
    else
        s->head = t;
    s->tail = t;
}

/* Starts `t` as a child of `parent` (may be NULL): queued to run. */
static inline void hand_spawn(hand_sched *s, hand_task *t,
                              int (*step)(hand_task *), hand_task *parent)
{
    t->step = step;
    t->resume = 0;
    t->parent = parent;
    t->live = 0;
    if (parent)
        parent->live++;
    hand_ready(s, t);
}

/* ---- the deadline heap -------------------------------------------------- */

static HAND_NOINLINE void hand_heap_push(hand_sched *s, hand_task *t,
                                        int64_t deadline)
{
    size_t i = s->nheap++, up;

    while (i > 0 && s->heap[up = (i - 1) / 2].deadline > deadline) {
        s->heap[i] = s->heap[up];
        i = up;
    }
    s->heap[i].deadline = deadline;
    s->heap[i].t = t;
}

static HAND_NOINLINE hand_task *hand_heap_pop(hand_sched *s)
{
    hand_task *top = s->heap[0].t;
    hand_timer last = s->heap[--s->nheap];
    size_t i = 0, c, n = s->nheap;

    while ((c = 2 * i + 1) < n) {
        if (c + 1 < n && s->heap[c + 1].deadline < s->heap[c].deadline)
            c++;
        if (s->heap[c].deadline >= last.deadline)
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (n)
        s->heap[i] = last;
    return top;
}

/* Parks the running task until now + d (the step then returns
 * HAND_WAIT). */
static inline void hand_sleep(hand_sched *s, hand_task *t, int64_t d)
{
    hand_heap_push(s, t, s->now + d);
}

/* ---- the scheduler ------------------------------------------------------ */

/* Runs until nothing is ready and no deadline is left; when nothing is
 * ready, the virtual clock jumps to the earliest deadline. */
static HAND_NOINLINE void hand_run(hand_sched *s)
{
    hand_task *t;

    for (;;) {
        while ((t = s->head)) {
            if (!(s->head = t->next))
                s->tail = NULL;
            switch (t->step(t)) {
            case HAND_YIELD:
                hand_ready(s, t);
                break;
            case HAND_DONE:
                if (t->parent && --t->parent->live == 0)
                    hand_ready(s, t->parent);
                break;
            default:                /* HAND_WAIT: someone else wakes it */
                break;
            }
        }
        if (!s->nheap)
            return;
        s->now = s->heap[0].deadline;
        while (s->nheap && s->heap[0].deadline <= s->now)
            hand_ready(s, hand_heap_pop(s));
    }
}

#endif /* PTRIO_BENCH_HAND_H */
