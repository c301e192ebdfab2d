/* src/core/internal.h: what the core's files share. Never installed. */
#ifndef PTRIO_INTERNAL_H
#define PTRIO_INTERNAL_H

#include <stddef.h>
#include <string.h>

#include <ptrio/backend.h>
#include <ptrio/core.h>

/* The one global: the loop running on this thread. Thread-local on hosted
 * builds (one loop per thread); freestanding builds have one thread. The
 * initial-exec model keeps a TLS read one instruction, shared library
 * included. */
#if defined(PTRIO_CONF_HOSTED) && (defined(__GNUC__) || defined(__clang__))
#define PTRIO__TLS __thread __attribute__((__tls_model__("initial-exec")))
#else
#define PTRIO__TLS
#endif
extern PTRIO__TLS ptrio_loop *ptrio__loop;

/* The hot paths' permission, one compare: the frame that may await by the
 * fast paths now. It is the running task's innermost frame while that
 * task waits on nothing and no open scope is cancelled (loop->ncalled is
 * 0); NOBODY otherwise (never NULL: a NULL self must not match), and
 * YIELDED right after a fast checkpoint (the scheduler then queues the
 * task). Both are small integers no frame can sit at (frames hold
 * pointers, so they are aligned): storing one is a single instruction.
 * Anything that parks the running task, cancels a scope or changes the
 * innermost frame updates it; the slow paths behind it check everything. */
extern PTRIO__TLS ptrio_frame *ptrio__awaiter;
#define NOBODY ((ptrio_frame *)(uintptr_t)1)
#define YIELDED ((ptrio_frame *)(uintptr_t)2)

/* Task states (low bits of task->state) and flags (high bits). */
enum {
    T_IDLE = 0,         /* never started, or finished (DONE keeps its record) */
    T_READY = 1,        /* in the run queue */
    T_RUNNING = 2,
    T_PARKED = 3,
    T_DONE = 4,
    T_STATE = 0x07,
    T_STATE_LIVE = 0x03,    /* READY, RUNNING, PARKED: a bit of these */
    T_STARTING = 0x08,  /* ptrio_start's child before started() */
    T_STARTED = 0x10,   /* started() was called */
    T_ARMED = 0x20,     /* err/origin describe an error still propagating */
    T_LISTED = 0x40,    /* in the failure list of a nursery still open */
    T_CANCELLED = 0x80  /* ptrio_task_cancel: its outermost region is */
};
#define TSTATE(t) ((t)->state & T_STATE)
#define TSET(t, s) ((t)->state = (uint8_t)(((t)->state & ~T_STATE) | (s)))
/* Hot paths: `t` is known to be in state `from`; one xor moves it. */
#define TMOVE(t, from, to) ((t)->state ^= (uint8_t)((from) ^ (to)))

/* What a task waits on (task->wait). */
enum {
    W_NONE = 0,
    W_YIELD,            /* ready after a checkpoint: abort sets -ECANCELED */
    W_TIMER,            /* sleeping: w.timer in the deadline tree */
    W_FOREVER,          /* sleep_forever */
    W_IDLE,             /* in loop->idle: wait_all_tasks_blocked */
    W_LOT,              /* in the lot w.park.on.lot */
    W_HOOK,             /* parked with the abort hook w.park.on.abort */
    W_JOIN,             /* nursery close waiting for children */
    W_START,            /* ptrio_start waiting for started() */
    W_START_CANCELLED   /* ready: its start's child was cancelled before
                           started(); -ENOSTART unless, as it resumes, a
                           cancellation is visible to it (step, loop.c) */
};

/* Nursery states and flags. */
enum {
    N_IDLE = 0,         /* closed (or never opened) */
    N_OPEN = 1,
    N_CLOSING = 2,      /* body done, joining */
    N_STATE = 0x03,
    N_CANCELLED = 0x10  /* an -ECANCELED ended the body or a child */
};

/* Markers routed through blocks by PTRIO_RETURN: below PTRIO_ERRMIN, so
 * never an error code, and distinct from PTRIO_PENDING and IN_BODY. */
#define PTRIO__UNWIND_BODY (INT_MIN + 1)
#define PTRIO__UNWIND_FIN  (INT_MIN + 2)
#define IS_MARKER(rc) ((rc) == PTRIO__UNWIND_BODY || (rc) == PTRIO__UNWIND_FIN)

/* A task's root frame holds its task in `caller`, tagged: a task resuming
 * a root frame that another task has since taken (the frame re-initialised
 * and started again under it) finds someone else's tag. */
#define ROOT_TAG ((uintptr_t)1)
#define ROOT_OF(t) ((ptrio_frame *)(void *)((uintptr_t)(t) + ROOT_TAG))
#define IS_ROOT(fr) (((uintptr_t)(fr)->caller & ROOT_TAG) != 0)
#define CALLER_OF(fr) (IS_ROOT(fr) ? NULL : (fr)->caller)

/* task->origin is a tagged pointer: a site, a failed child task whose
 * error was forwarded, a nursery (the group), or a frame the error left
 * through (its own origin leads on: the chain of them is the traceback). */
enum { O_SITE = 0, O_TASK = 1, O_GROUP = 2, O_FRAME = 3 };
/* The 16 bits of an error code that a task keeps with its origin (the
 * code the record belongs to): codes below -32767 all keep INT16_MIN, so
 * that none is taken for a small code with the same low bits. */
#define ERR_TAG(rc) ((int16_t)((rc) < -32767 ? INT16_MIN : (rc)))

#define OTAG(o) ((unsigned)((uintptr_t)(o) & 3u))
#define OPTR(o) ((const void *)((uintptr_t)(o) & ~(uintptr_t)3))
#define OMAKE(p, tag) ((const void *)((uintptr_t)(p) | (tag)))

/* Keeps a rare path out of a hot leaf function. */
#if defined(__GNUC__) || defined(__clang__)
#define NOINLINE __attribute__((__noinline__))
#else
#define NOINLINE
#endif

#define CONTAINER(ptr, type, member)                                        \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))
#define NURSERY_OF(sc) CONTAINER(sc, ptrio_nursery, scope)

/* Misuse: an assertion with file:line in debug builds, else the caller
 * returns an error code. */
#ifdef PTRIO_DEBUG
void ptrio__misuse(const char *what, const char *file, int line);
#define MISUSE(what) ptrio__misuse((what), __FILE__, __LINE__)
#else
#define MISUSE(what) ((void)0)
#endif

/* Internal invariants: checked in debug builds only. */
#ifdef PTRIO_DEBUG
#define INVARIANT(cond, what)                                               \
    ((cond) ? (void)0 : ptrio__misuse("invariant broken: " what,           \
                                      __FILE__, __LINE__))
#else
#define INVARIANT(cond, what) ((void)0)
#endif

/* loop->between counts what must run between two batches (deadlines in
 * the tree, relative deadlines to arm, fd waits, sources, instrument
 * hooks): the scheduler tests one word to know it may go straight on. */
#define BETWEEN_ADD(l) ((l)->between++)
#define BETWEEN_DEL(l) ((l)->between--)

/* Instruments: every hook of one kind, the loop's own then the others.
 * Called only while loop->ninstruments is not 0, through loop->instr,
 * which installing one sets: a program with none does not link them. */
enum { I_SPAWNED, I_BEFORE_STEP, I_AFTER_STEP, I_SCHEDULED, I_BEFORE_RUN,
       I_AFTER_RUN, I_AFTER_WAIT };
typedef struct ptrio__instrumenting {
    void (*task)(ptrio_loop *l, int which, const ptrio_task *t);
    void (*run)(ptrio_loop *l, int which);
    void (*exited)(ptrio_loop *l, ptrio_task *t, int status);
    void (*wait)(ptrio_loop *l, ptrio_time deadline);
} ptrio__instrumenting;

static inline void ptrio__instr_task(ptrio_loop *l, int which,
                                     const ptrio_task *t)
{
    INVARIANT(l->instr, "instruments counted but their callers not set");
    l->instr->task(l, which, t);
}

static inline void ptrio__instr_run(ptrio_loop *l, int which)
{
    l->instr->run(l, which);
}

static inline void ptrio__instr_exited(ptrio_loop *l, ptrio_task *t,
                                       int status)
{
    l->instr->exited(l, t, status);
}

static inline void ptrio__instr_wait(ptrio_loop *l, ptrio_time deadline)
{
    l->instr->wait(l, deadline);
}

/* Appends `t` to the run queue, linked through w.next. The scheduler
 * pops tasks off its head without touching the tail: the tail is only
 * meaningful while the queue is not empty. */
static inline void ptrio__enqueue_quiet(ptrio_loop *l, ptrio_task *t)
{
    t->w.next = NULL;
    if (l->runq)
        l->runq_tail->w.next = t;
    else
        l->runq = t;
    l->runq_tail = t;
}

/* The same, telling the instruments (task_scheduled). */
static inline void ptrio__enqueue(ptrio_loop *l, ptrio_task *t)
{
    ptrio__enqueue_quiet(l, t);
    if (l->ninstruments)
        ptrio__instr_task(l, I_SCHEDULED, t);
}

/* The three moves of a task's wait, inline for the hot paths (the
 * out-of-line ptrio__wake and ptrio__park are these). */

/* Makes the parked `t` ready; `rc` becomes the status of its await. */
static inline void ptrio__wake_now(ptrio_loop *l, ptrio_task *t, int rc)
{
    INVARIANT(TSTATE(t) == T_PARKED, "waking a task that is not parked");
    t->wait = W_NONE;
    t->frame->result = rc;
    TMOVE(t, T_PARKED, T_READY);
    ptrio__enqueue(l, t);
}

/* Parks the running `t`, waiting on `wait`. */
static inline void ptrio__park_now(ptrio_task *t, int wait)
{
    INVARIANT(TSTATE(t) == T_RUNNING, "parking a task that is not running");
    ptrio__awaiter = NOBODY;
    TMOVE(t, T_RUNNING, T_PARKED);
    t->wait = (uint8_t)wait;
}

/* The running `t`'s operation is done with status rc: a cancel-shielded
 * schedule point that delivers it. Returns PTRIO_PENDING. */
static inline int ptrio__done_yield(ptrio_loop *l, ptrio_task *t, int rc)
{
    INVARIANT(TSTATE(t) == T_RUNNING, "yielding a task that is not running");
    t->frame->result = rc;
    ptrio__awaiter = NOBODY;
    TMOVE(t, T_RUNNING, T_READY);
    t->wait = W_NONE;
    ptrio__enqueue(l, t);
    return PTRIO_PENDING;
}

/* Unlinks `src`, added to `l`. */
static inline void ptrio__source_unlink(ptrio_loop *l, ptrio_source *src)
{
    ptrio_source *next;

    BETWEEN_DEL(l);
    next = src->next == src ? NULL : src->next;    /* the last points home */
    if (src->prev)
        src->prev->next = next ? next : src->prev;
    else
        l->sources = next;
    if (next)
        next->prev = src->prev;
    src->next = src->prev = NULL;
}

/* A frame about to run its first step. Its origin is written before it
 * is read (when an error reaches FINALLY or END). */
static inline void ptrio__frame_init(ptrio_frame *fr, ptrio_fn fn,
                                     ptrio_frame *caller)
{
    fr->fn = fn;
    fr->caller = caller;
    fr->resume = PTRIO__START;
    fr->result = 0;
    fr->pending = PTRIO__IN_BODY;
}

/* Whether `fr` carries a failure through its FINALLY (fr->origin is
 * then that failure's origin). */
static inline int ptrio__frame_failing(const ptrio_frame *fr)
{
    return fr->pending != PTRIO__IN_BODY && fr->pending < 0;
}

/* The loop's clock; the last reading is kept, for a relative deadline
 * that ends before it was armed (scope.c). */
static inline ptrio_time ptrio__now(ptrio_loop *l)
{
    return l->last_now = l->clock ? l->clock->now(l->clock)
                                  : l->backend->now(l);
}

/* loop.c */
ptrio_task *ptrio__self_slow(void *self);
int ptrio__dropped_wait(ptrio_loop *l, ptrio_task *t, const char *what);
/* Callers go through DROPPED_WAIT: `what` is only ever shown by a debug
 * build's misuse trap, so elsewhere it passes NULL and the messages are
 * not linked. */
#ifdef PTRIO_DEBUG
#define DROPPED_WAIT(l, t, what) ptrio__dropped_wait((l), (t), (what))
#else
#define DROPPED_WAIT(l, t, what) ptrio__dropped_wait((l), (t), NULL)
#endif
extern const ptrio_site ptrio__dropped_site;

/* The running task, if `self` is its innermost frame: the frame that may
 * await now (one compare while the fast paths are allowed). Anything else
 * is an await outside its task: NULL. */
static inline ptrio_task *ptrio__self(void *self)
{
    if (self == ptrio__awaiter)
        return ptrio__loop->current;
    return ptrio__self_slow(self);
}
int ptrio__await_check(void *self, ptrio_task **out);
void ptrio__undo_wait(ptrio_loop *l, ptrio_task *t);
void ptrio__idle_remove(ptrio_loop *l, ptrio_task *t);

void ptrio__ready(ptrio_loop *l, ptrio_task *t);
void ptrio__wake(ptrio_loop *l, ptrio_task *t, int rc);
void ptrio__park(ptrio_task *t, int wait);
/* Durations beyond 2^62 ns (146 years) are taken for overflow bugs. */
#define TIME_HUGE (PTRIO_TIME_INF / 2 + 1)
int ptrio__after(ptrio_time now, ptrio_time d, ptrio_time *out);
ptrio_time ptrio__add_time(ptrio_time now, ptrio_time d);
void ptrio__report(ptrio_loop *l, const char *line);

/* timer.c: a red-black tree, or with PTRIO_CONF_TIMER_LIST a sorted list
 * (configure --enable-timer-list): the same order either way. */
#ifndef PTRIO_CONF_TIMER_LIST
#define PTRIO_CONF_TIMER_LIST 0
#endif
void ptrio__timer_add(ptrio_loop *l, ptrio__tnode *n, ptrio_time when,
                      int is_scope);
void ptrio__timer_del(ptrio_loop *l, ptrio__tnode *n);
/* A node's key: the deadline, order-preserving as an unsigned number. */
#define FLIP (UINT64_C(1) << 63)
static inline void ptrio__timer_set_when(ptrio__tnode *n, ptrio_time when)
{
    uint64_t k = (uint64_t)when ^ FLIP;
    n->key_lo = (uint32_t)k;
    n->key_hi = (uint32_t)(k >> 32);
}

static inline ptrio_time ptrio__timer_when(const ptrio__tnode *n)
{
    uint64_t k = (((uint64_t)n->key_hi << 32) | n->key_lo) ^ FLIP;
    return k <= (uint64_t)INT64_MAX ? (ptrio_time)k : -(ptrio_time)(~k) - 1;
}
/* Whether a tree node is a scope's deadline (else a sleeping task's). */
static inline int ptrio__timer_is_scope(const ptrio__tnode *n)
{
    return (n->parent & 2u) != 0;
}

/* scope.c */
int ptrio__cancelled(const ptrio_task *t);
int ptrio__chain_cancelled(const ptrio_task *owner, const ptrio_scope *sc);
void ptrio__cancel_why(ptrio_scope *sc, unsigned kind, const void *why);
const ptrio_scope *ptrio__home(const ptrio_task *t);
int ptrio__scope_catches(const ptrio_scope *sc);
void ptrio__deliver_task(ptrio_task *t, ptrio_scope *top);
void ptrio__scope_expired(ptrio_scope *sc);
void ptrio__arm_lazy(ptrio_loop *l);
void ptrio__drop_timer(ptrio_scope *sc);
ptrio_time ptrio__relative_when(const ptrio_scope *sc);
void ptrio__scope_closed(ptrio_scope *sc);
void ptrio__scope_push(ptrio_task *t, ptrio_frame *fr, ptrio_scope *sc,
                       uintptr_t exit, unsigned flags);
/* ptrio__abort_all's levels (loop->teardown): through every shield; and
 * also overruling abort hooks that refuse. */
enum { TEARDOWN_SHIELDS = 1, TEARDOWN_FORCE = 2 };
void ptrio__abort_all(ptrio_loop *l, uint8_t level);

/* nursery.c */
void ptrio__task_finished(ptrio_loop *l, ptrio_task *t, int rc);
void ptrio__start_undone(ptrio_task *starter);

/* tree.c: a cursor on the task tree (ptrio_tree_node), pre-order; the
 * walk writes through its pointers' const only in tree.c's own logic. */
typedef struct ptrio__node {
    ptrio_task *task;
    ptrio_scope *scope;
    int depth;
} ptrio__node;
void ptrio__walk_first(ptrio_loop *l, ptrio__node *w);
int ptrio__walk_next(ptrio__node *w);
const char *ptrio__state_name(const ptrio_task *t);
void ptrio__fill_source(const ptrio_scope *sc, const ptrio_task *task,
                        ptrio_cancel_info *out);

/* frame.c */
#define PTRIO__DESCRIBED (INT_MIN + 5)  /* a frame answered DESCRIBE */
extern const ptrio_site ptrio__enostart_site;
int ptrio__frame_where(const ptrio_frame *fr, ptrio_frame_info *out);
/* Takes the origin handed on with `rc` (the task's armed one, if it is
 * for `rc`), or `site` when none was; disarms it. */
const void *ptrio__take_origin(ptrio_task *t, int rc, const void *site);

/* The source line a frame is suspended at (0: none). */
static inline int ptrio__frame_line(const ptrio_frame *fr)
{
#ifdef PTRIO_COMPUTED_GOTO
    return fr->resume >= PTRIO__SPECIAL ? fr->line : 0;
#else
    return fr->resume >= PTRIO__SPECIAL ? (int)fr->resume : 0;
#endif
}
void ptrio__absorbed_moved(const ptrio_scope *from, const void *was,
                           const void *now);
void ptrio__absorbed_leave(ptrio_scope *sc, const void *origin);
void ptrio__absorbed_caught(const ptrio_task *t, const ptrio_scope *from,
                            const void *o);
/* A scope's mark for two failures at once: its own address, never an
 * origin (those are sites, and tagged tasks, frames and nurseries). */
#define ABSORBED_ANY(sc) ((const void *)(sc))
void ptrio__note_origin(ptrio_task *t, int rc, const void *origin);

/* lot.c */
void ptrio__lot_remove(ptrio_lot *lot, ptrio_task *t);
void ptrio__abort_wait(ptrio_loop *l, ptrio_task *t);
void ptrio__lot_task_exited(ptrio_loop *l, ptrio_task *t);

/* error.c: what formats reports and dumps, reached through the loop so
 * that a program that never sets a sink does not link it. */
typedef struct ptrio__reporter {
    void (*failure)(ptrio_loop *l, const ptrio_task *t);
    void (*deadlock)(ptrio_loop *l);        /* with the task tree */
    void (*backend_failed)(ptrio_loop *l);
} ptrio__reporter;
extern const ptrio__reporter ptrio__reporting;

/* error.c */
void ptrio__why_failure(const void *why, ptrio_failure *out);
int ptrio__task_cancel_source(const ptrio_task *t, ptrio_cancel_info *out);
void ptrio__report_failure(ptrio_loop *l, const ptrio_task *t);

/* backend/default_*.c: the default sink, and the reporter with it (NULL
 * for none) */
ptrio_report_fn ptrio__default_sink(void);
const ptrio__reporter *ptrio__default_reporter(void);

#endif /* PTRIO_INTERNAL_H */
