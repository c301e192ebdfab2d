/* ptrio/core.h: the run loop, tasks, nurseries, cancel scopes and time.
 *
 * Every object here is caller-owned and may be static; ptrio never
 * allocates. Objects start zeroed (static storage or `= {0}`). Fields of
 * the structs are private: use the functions and macros.
 */
#ifndef PTRIO_CORE_H
#define PTRIO_CORE_H

#include <stdbool.h>
#include <stdint.h>

#include "coro.h"
#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- time --------------------------------------------------------- */

/* Nanoseconds on the loop's clock. */
typedef int64_t ptrio_time;

#define PTRIO_TIME_INF  INT64_MAX   /* no deadline */
#define PTRIO_TIME_NINF INT64_MIN   /* effective deadline when cancelled */
/* Durations: the argument may be an integer or a floating value
 * (PTRIO_SEC(1.5) is 1.5 s); the product is taken before the conversion. */
#define PTRIO_NS(n)  ((ptrio_time)(n))
#define PTRIO_US(n)  ((ptrio_time)((n) * INT64_C(1000)))
#define PTRIO_MS(n)  ((ptrio_time)((n) * INT64_C(1000000)))
#define PTRIO_SEC(n) ((ptrio_time)((n) * INT64_C(1000000000)))

/* ---- private storage types ---------------------------------------- */

/* A node of the deadline tree (a red-black tree ordered by deadline, then
 * by insertion; with PTRIO_CONF_TIMER_LIST a sorted list in that order),
 * embedded in sleeping tasks and in scopes. */
typedef struct ptrio__tnode {
    struct ptrio__tnode *child[2];  /* left, right */
    uintptr_t parent;               /* parent | red bit | scope bit */
    uint32_t key_lo, key_hi;        /* deadline, order-preserving */
} ptrio__tnode;

typedef struct ptrio_task ptrio_task;
typedef struct ptrio_scope ptrio_scope;
typedef struct ptrio_nursery ptrio_nursery;
typedef struct ptrio_loop ptrio_loop;

/* Called when a task parked with ptrio_park_hook is cancelled. Returns 0
 * when the wait is undone (the task then wakes with -PTRIO_ECANCELED), or
 * anything else when it cannot be: the task stays parked until the owner of
 * the wait calls ptrio_wake (in a deadlocked run, where nothing can, the
 * refusal is overruled: misuse, and the task wakes with -PTRIO_ECANCELED).
 * It may be called again on a later change of cancellation, so it must be
 * idempotent. Runs on the loop's thread. */
typedef int (*ptrio_abort_fn)(ptrio_task *t, void *data);

/* A parking lot: the FIFO wait queue under every blocking primitive. One
 * pointer; zeroed means empty. See "parking" below. */
typedef struct ptrio_lot {
    ptrio_task *head;               /* first parked; head->prev is the last */
} ptrio_lot;

struct ptrio_task {
    union {                         /* what the task is doing now */
        ptrio_task *next;           /* ready: run-queue link */
        ptrio__tnode timer;         /* sleeping */
        struct {                    /* parked in a lot, or with a hook */
            ptrio_task *next, *prev;        /* the lot's (or hook owner's) */
            union { ptrio_lot *lot; ptrio_abort_fn abort; } on;
            void *data;                     /* rides with the wait */
        } park;
        struct { ptrio_task *child; void **value; } start;
        struct { ptrio_task *next; int code; } done;
    } w;
    union {
        struct { ptrio_task *next, *prev; } sib;      /* nursery children */
        struct { ptrio_task *starter; ptrio_nursery *target; } starting;
    } n;
    ptrio_frame *frame;             /* innermost frame: resumed directly */
    ptrio_scope *scope;             /* innermost cancel scope */
    const char *name;
    const void *origin;             /* site (or group) of the last error */
    int16_t err;                    /* the code `origin` belongs to
                                       (below -32767: INT16_MIN) */
    uint8_t state;
    uint8_t wait;
};

struct ptrio_scope {
    ptrio__tnode timer;             /* deadline, while registered */
    ptrio_scope *parent;            /* enclosing scope, maybe another task's */
    ptrio_task *task;               /* task that opened it */
    ptrio_frame *frame;             /* frame whose block it is */
    uintptr_t exit;                 /* resume point of the block's close */
    const void *why;                /* what cancelled it (kind in flags) */
    int pending;                    /* what ended the body; TRY_BLOCK's catch */
    uint32_t flags;
    const void *absorbed;           /* ABSORBED: the origin of the failure
                                       that carries the cancellation */
};

struct ptrio_nursery {
    ptrio_scope scope;              /* the nursery's own cancel scope */
    ptrio_task *children;           /* running children */
    ptrio_task *failed, *failed_tail;   /* failed children, in order */
    ptrio_site site;                /* where the block is */
    const void *body_origin;        /* the body's own failure */
    int body_err;
    uint32_t live;                  /* running children + pending starts */
    uint8_t state;
};

/* ---- the loop ----------------------------------------------------- */

typedef struct ptrio_backend ptrio_backend;

/* Buckets of a loop's fd-wait registry (src/io/fd.c), a power of two: a
 * wait, a wake and a cancel cost O(1 + waiters / buckets). A build-time
 * setting because it sizes struct ptrio_loop: ptrio and the programs using
 * it must agree (configure --with-fd-buckets=N puts it in ptrio.pc). */
#ifndef PTRIO_CONF_FD_BUCKETS
#if defined(__unix__) || defined(__APPLE__)
#define PTRIO_CONF_FD_BUCKETS 1024
#else
#define PTRIO_CONF_FD_BUCKETS 1     /* microcontrollers: one chain */
#endif
#endif

/* Receives one report line (no newline). */
typedef void (*ptrio_report_fn)(void *ctx, const char *line);

/* Instrument hooks (Trio's trio.abc.Instrument): any member may be NULL.
 * They run on the loop's thread and must not await or start tasks. */
typedef struct ptrio_hooks {
    /* A task was created (start_soon, start), before it first runs. */
    void (*task_spawned)(void *ctx, const ptrio_task *t);
    /* A step of the task is about to run. */
    void (*before_task_step)(void *ctx, const ptrio_task *t);
    /* The task finished with `status`. */
    void (*task_exited)(void *ctx, const ptrio_task *t, int status);
    /* The backend is about to wait until `deadline` (its own clock;
     * PTRIO_TIME_NINF: poll without blocking), and has waited. */
    void (*before_io_wait)(void *ctx, ptrio_time deadline);
    void (*after_io_wait)(void *ctx);
    /* The run starts (before the main task runs) and ends (every task
     * done, before ptrio_loop_run returns). */
    void (*before_run)(void *ctx);
    void (*after_run)(void *ctx);
    /* The task was made runnable: woken, or queued by a checkpoint (Trio's
     * task_scheduled; a new task's first is task_spawned). */
    void (*task_scheduled)(void *ctx, const ptrio_task *t);
    /* The task's step ended (it waits, or finished just before). */
    void (*after_task_step)(void *ctx, const ptrio_task *t);
} ptrio_hooks;

/* One instrument among several: its hooks and their context, linked into
 * the loop (caller-owned; zero it before its first add). */
typedef struct ptrio_instrument {
    const ptrio_hooks *hooks;
    void *ctx;
    struct ptrio_instrument *next;
    struct ptrio_loop *loop;        /* the loop it is added to, or NULL */
} ptrio_instrument;

struct ptrio_loop {
    const ptrio_backend *backend;
    union { int64_t i64; void *ptr; intptr_t word; } be[4];  /* backend's */
    ptrio_task *runq, *runq_tail;   /* the next batch */
    ptrio__tnode *timers, *first;   /* deadline tree (the list: its
                                       latest node), its earliest node */
    ptrio_time last_now;            /* the clock's last reading */
    struct ptrio_clock *clock;      /* the loop's clock, if not the backend's */
    ptrio_task *idle;               /* in wait_all_tasks_blocked, by cushion */
    ptrio_time idle_from;           /* backend time since which no task ran
                                       (while idle_set) */
    int (*wait_full)(struct ptrio_loop *l);  /* the wait with a clock or
                                       idle waiters: set by what uses them
                                       (src/core/loop.c) */
    int (*nursery_close)(ptrio_frame *fr, ptrio_nursery *n);   /* set by
                                       opening one (src/core/frame.c) */
    uint32_t nlazy;                 /* relative deadlines not yet armed */
    uint32_t between;               /* reasons to stop between batches:
                                       timers, lazy deadlines, fd waits,
                                       sources, hooks (one count) */
    ptrio_task *current;            /* running task */
    uint32_t nwatch;                /* tasks waiting on fds (src/io) */
    uint32_t nfd;                   /* distinct fds they wait on */
    ptrio_task *fdtab[PTRIO_CONF_FD_BUCKETS];   /* those tasks, by fd */
    struct ptrio_source *sources;   /* external wake sources, polled */
    struct ptrio_owned_lot *lot_owners; /* lots that break when their
                                       owner task exits (src/core/lot.c) */
    ptrio_nursery system;           /* holds the main task */
    ptrio_task main;
    ptrio_report_fn report;
    void *report_ctx;
    const struct ptrio__reporter *reporter; /* the formatting code: linked
                                               only with a sink */
    const ptrio_hooks *hooks;       /* ptrio_loop_set_hooks' instrument */
    void *hooks_ctx;
    ptrio_instrument *instruments;  /* and the others */
    uint32_t ninstruments;          /* both counted */
    const struct ptrio__instrumenting *instr;   /* the code calling them:
                                       linked only with them */
    uint32_t ntasks;                /* live tasks */
    uint32_t ncalled;               /* open scopes with cancel_called */
    int fatal;                      /* backend failure that ends the run */
    uint8_t teardown;               /* while every wait is aborted,
                                       shields or not (src/core/scope.c) */
    uint8_t idle_set;               /* idle_from holds since no task ran */
    const char *where_file;         /* debug builds: the user's last macro */
    int where_line;
    uint8_t running;
};

/* Prepares a loop with the build's default backend (epoll on Linux, poll
 * on other POSIX hosts, the port's with --with-port) and the default
 * report sink (stderr on hosts, none when freestanding). Returns 0,
 * -PTRIO_EINVAL (NULL), -PTRIO_EBUSY (the loop running on this thread,
 * left as it is). */
int ptrio_loop_init(ptrio_loop *loop);

/* Selects the backend. Returns 0, -PTRIO_EINVAL (NULL, or a backend
 * without now or wait), -PTRIO_EBUSY while the loop runs. */
int ptrio_loop_use_backend(ptrio_loop *loop, const ptrio_backend *backend);

/* Replaces the sink of failure reports and misuse messages (NULL: none). */
void ptrio_loop_set_report(ptrio_loop *loop, ptrio_report_fn fn, void *ctx);

/* Adds an instrument (its hooks, their ctx) to the loop, after those it
 * has; several may be installed at once. Returns 0, -PTRIO_EINVAL (NULL,
 * no hooks), -PTRIO_EBUSY (added already to this loop, or in another one:
 * remove it there first; ptrio_loop_init forgets a loop's instruments,
 * which may then go anywhere). The loop it was last added to must still
 * exist, or the instrument be zeroed again.
 * Takes effect at once, also inside a batch (the next hook called is its
 * too). */
int ptrio_loop_add_instrument(ptrio_loop *loop, ptrio_instrument *inst,
                              const ptrio_hooks *hooks, void *ctx);

/* Removes an instrument (no effect if it is not in this loop). */
void ptrio_loop_remove_instrument(ptrio_loop *loop, ptrio_instrument *inst);

/* Installs the loop's own instrument (NULL removes it); the others of
 * ptrio_loop_add_instrument run after it. */
void ptrio_loop_set_hooks(ptrio_loop *loop, const ptrio_hooks *hooks,
                          void *ctx);

/* Runs `fn` over `frame` as the main task until it and every task under it
 * finished. Returns its status (>= 0), or its failure after reporting it.
 * Errors: -PTRIO_EINVAL (NULL), -PTRIO_EBUSY (the loop runs or still holds
 * tasks, a loop already runs on this thread, or `frame` is running),
 * -PTRIO_ENOBACKEND, a backend's open error; and, when main succeeded or
 * was cancelled, the failure that ended the run: -PTRIO_EDEADLK (every
 * task waits and nothing can wake one, on any backend) or a backend's
 * wait error. */
int ptrio_loop_run_named(ptrio_loop *loop, ptrio_fn fn, void *frame,
                         const char *name);
#define ptrio_loop_run(loop, fn, frame)                                     \
    ptrio_loop_run_named((loop), (fn), (frame), #fn)

/* ptrio_loop_run on a fresh default loop. */
int ptrio_run_named(ptrio_fn fn, void *frame, const char *name);
#define ptrio_run(fn, frame) ptrio_run_named((fn), (frame), #fn)

/* Wakes the loop from a signal handler, an interrupt or another thread;
 * no effect while it is not running. A waker must be done before the run
 * ends (join your threads in the run, as ptrio_run_in_thread's pool is):
 * once the run has closed its wake fd, a late call may write to whatever
 * file reuses that number. */
void ptrio_loop_wake(ptrio_loop *loop);

/* The loop running on this thread, or NULL. */
ptrio_loop *ptrio_current_loop(void);

/* A clock for a loop, other than its backend's (Trio's abc.Clock): the
 * loop reads the time from it, and asks it how long the backend may wait
 * for a deadline. The backend still waits, in its own time, for I/O.
 * <ptrio/testing.h> has the mock clock built on it. */
typedef struct ptrio_clock ptrio_clock;
struct ptrio_clock {
    /* The time, in ns. */
    ptrio_time (*now)(ptrio_clock *c);
    /* How long (in the backend's time) until the clock reads `deadline`
     * (0: passed; PTRIO_TIME_INF: it never will by itself). */
    ptrio_time (*sleep_time)(ptrio_clock *c, ptrio_time deadline);
    /* After `autojump` of the backend's time with every task blocked, the
     * loop calls jump_to with the next deadline (PTRIO_TIME_INF: never;
     * a NULL jump_to: the clock never jumps). */
    ptrio_time autojump;
    void (*jump_to)(ptrio_clock *c, ptrio_time deadline);
    /* Called as each run of the loop starts, before its first reading
     * (may be NULL): Trio's start_clock. */
    void (*start)(ptrio_clock *c);
};

/* Makes `clock` the loop's (NULL: back to the backend's). Returns 0,
 * -PTRIO_EBUSY while the loop runs, -PTRIO_EINVAL (NULL loop, or a clock
 * without now or sleep_time). */
int ptrio_loop_use_clock(ptrio_loop *loop, ptrio_clock *clock);

/* Writes the task tree (every nursery, open scope and task, the frames
 * of each task with their file, line and function, what it waits on and
 * why it is cancelled) to `fn`, one line at a time, built on the tree API
 * below. Returns the number of tasks, or -PTRIO_ENOTASK outside a running
 * loop, -PTRIO_EINVAL (NULL fn). */
int ptrio_dump(ptrio_report_fn fn, void *ctx);


/* ---- tasks and calls ---------------------------------------------- */

/* Every awaitable (a call taking `void *self` that may return
 * PTRIO_PENDING: use it with PTRIO_AWAIT or PTRIO_TRY) also fails with
 * -PTRIO_ENOTASK when `self` is not the running task's innermost frame,
 * and with -PTRIO_EMISUSE when the task already waits (an earlier
 * awaitable's PTRIO_PENDING was dropped; that wait is undone). The error
 * lists of the headers may leave these two out. */

/* Awaits the coroutine `fn` over the frame `sub` (usually embedded in the
 * caller's frame). Returns its status, or PTRIO_PENDING. Errors: those
 * `fn` returns, -PTRIO_ENOTASK (self is not the running frame),
 * -PTRIO_EINVAL (NULL sub or fn), -PTRIO_EBUSY (sub is still running, or
 * is self), -PTRIO_EMISUSE (the task already waits). */
PTRIO_NODISCARD int ptrio_call(void *self, void *sub, ptrio_fn fn);
/* PTRIO_AWAIT of ptrio_call (note the order: fn, then sub). */
#define PTRIO_CALL(f, fn, sub) PTRIO_AWAIT(f, ptrio_call((f), (sub), (fn)))

/* The running task, or NULL. */
ptrio_task *ptrio_current_task(void);

/* A task's name. */
const char *ptrio_task_name(const ptrio_task *t);

/* Queues `fn` over `frame` as a new task in the nursery; it runs from the
 * next batch on. Returns 0, or -PTRIO_EINVAL (NULL), -PTRIO_ECLOSED (the
 * nursery is closed), -PTRIO_EBUSY (task or frame still running),
 * -PTRIO_ENOTASK (outside a running loop). Not a checkpoint. The result
 * must be used: PTRIO_CHECK(f, ptrio_start_soon(...)) raises it. */
PTRIO_NODISCARD int ptrio_start_soon_named(ptrio_nursery *n, ptrio_task *t,
                                           ptrio_fn fn, void *frame,
                                           const char *name);
#define ptrio_start_soon(n, t, fn, frame)                                   \
    ptrio_start_soon_named((n), (t), (fn), (frame), #fn)

/* Starts a task and waits until it calls ptrio_started: awaitable. Until
 * then the child runs under the caller's cancel scopes, and its failure is
 * the caller's; then it moves into the nursery. `*value` (may be NULL)
 * receives started()'s value as the child calls it, also when the start
 * then fails (its starter cancelled meanwhile). Errors: those of
 * start_soon (-PTRIO_EBUSY also when `t` is the caller's task),
 * -PTRIO_ENOSTART (child returned without calling started), the child's
 * failure, -PTRIO_ECANCELED (the caller was cancelled before the child
 * called started). */
PTRIO_NODISCARD int ptrio_start_named(void *self, ptrio_nursery *n,
                                      ptrio_task *t, ptrio_fn fn, void *frame,
                                      void **value, const char *name);
#define ptrio_start(self, n, t, fn, frame, value)                           \
    ptrio_start_named((self), (n), (t), (fn), (frame), (value), #fn)

/* Tells the ptrio_start that started this task that it is ready. Returns
 * 0 (also when the task was not started by ptrio_start), -PTRIO_EMISUSE
 * when called twice, -PTRIO_ENOTASK outside a task. Not a checkpoint. */
int ptrio_started(void *self, void *value);

/* ---- checkpoints and time ----------------------------------------- */

/* A checkpoint: fails with -PTRIO_ECANCELED if cancelled, else lets the
 * other ready tasks run; the status is 0. Awaitable. Errors:
 * -PTRIO_ECANCELED, -PTRIO_ENOTASK, -PTRIO_EMISUSE. */
PTRIO_NODISCARD int ptrio_checkpoint(void *self);
#define PTRIO_CHECKPOINT(f) PTRIO_AWAIT(f, ptrio_checkpoint(f))

/* A schedule point that ignores cancellation; the status is 0.
 * Awaitable. Errors: -PTRIO_ENOTASK, -PTRIO_EMISUSE. */
PTRIO_NODISCARD int ptrio_yield(void *self);
#define PTRIO_YIELD(f) PTRIO_AWAIT(f, ptrio_yield(f))

/* Returns -PTRIO_ECANCELED if the caller is cancelled, else 0 (no yield:
 * never PTRIO_PENDING). Errors: -PTRIO_ENOTASK, -PTRIO_EMISUSE. */
PTRIO_NODISCARD int ptrio_checkpoint_if_cancelled(void *self);

/* The loop's clock (0 outside a loop). */
ptrio_time ptrio_now(void);

/* Sleeps for `d` (>= 0; PTRIO_TIME_INF: forever). Awaitable checkpoint.
 * now + d saturates at the end of time. Errors: -PTRIO_EINVAL (d < 0),
 * -PTRIO_EOVERFLOW (d beyond 2^62 ns, taken for an overflow bug),
 * -PTRIO_ECANCELED, -PTRIO_ENOTASK, -PTRIO_EMISUSE (the task already
 * waits). */
PTRIO_NODISCARD int ptrio_sleep(void *self, ptrio_time d);

/* Sleeps until the clock reads `deadline` (passed already: a checkpoint
 * that yields; PTRIO_TIME_INF: forever). Awaitable checkpoint; the status
 * is 0. Errors: -PTRIO_ECANCELED, -PTRIO_ENOTASK, -PTRIO_EMISUSE. */
PTRIO_NODISCARD int ptrio_sleep_until(void *self, ptrio_time deadline);

/* Sleeps until cancelled. Awaitable checkpoint. Errors: -PTRIO_ECANCELED
 * (how it ends), -PTRIO_ENOTASK, -PTRIO_EMISUSE. */
PTRIO_NODISCARD int ptrio_sleep_forever(void *self);

/* Waits until every other task has been blocked for `cushion` (in the
 * backend's time: real time on a real backend; on the virtual one it
 * returns as soon as every other task is blocked, unless a deadline
 * comes within the cushion: that one fires first). Trio's
 * wait_all_tasks_blocked: while a task waits here, a clock never
 * autojumps; waiters with the smallest cushion wake first, together. Awaitable
 * checkpoint. Errors: -PTRIO_EINVAL (cushion < 0), -PTRIO_ECANCELED,
 * -PTRIO_ENOTASK, -PTRIO_EMISUSE. */
PTRIO_NODISCARD int ptrio_wait_all_tasks_blocked(void *self,
                                                 ptrio_time cushion);

/* ---- parking: the low-level API under every primitive ------------
 *
 * A blocking primitive (a lock, a channel, an fd wait, yours) either
 * completes at once or parks the running task, and later wakes it with the
 * status its await returns. Parking is where cancellation reaches a task:
 * a task parked in a lot is taken out of it and woken with
 * -PTRIO_ECANCELED; a task parked with a hook has its hook called. The core
 * knows no primitive: this is its one way to abort a wait.
 *
 * Rules, as in Trio: parking is a checkpoint. Inside a cancelled scope it
 * fails with -PTRIO_ECANCELED at once and has no effect. Waking is never a
 * checkpoint, and a woken task can no longer be cancelled out of its wait:
 * it runs with the value it was given. Everything runs on the loop's
 * thread; from an interrupt or another thread use a ptrio_source.
 *
 * A blocking operation that finds it need not block is still a checkpoint
 * in Trio, with no effect when cancelled. Compose it the same way:
 *
 *     rc = ptrio_checkpoint_if_cancelled(self);    cancelled: no effect
 *     if (rc < 0) return rc;
 *     if (can_do_it_now) { do_it(); return ptrio_yield(self); }
 *     return ptrio_park(self, &lot, data);          woken by the doer
 *
 * Each of the three calls' fast path is one compare of the caller (the
 * channels are written so). ptrio_park_unless(self, &lot, try_it, obj,
 * data) is the same in one call, the attempt passed as a function.
 *
 * A lot can break (Trio's break_lot): its parked tasks wake with
 * -PTRIO_EBROKEN and later parks fail with it at once. An owned lot breaks
 * by itself when its owner task exits (a lock whose holder died). */

/* Parks the running task at the end of `lot` until an unpark. `data` rides
 * with the wait (ptrio_wait_data), e.g. where a channel's receiver wants
 * its value. Awaitable: the status is the unpark's `value`. Errors:
 * -PTRIO_EBROKEN (the lot is broken), -PTRIO_ECANCELED, -PTRIO_ENOTASK
 * (not the running task's innermost frame), -PTRIO_EMISUSE (the task
 * already waits: an await without PTRIO_AWAIT), -PTRIO_EINVAL (NULL). */
PTRIO_NODISCARD int ptrio_park(void *self, ptrio_lot *lot, void *data);

/* Parks like ptrio_park in the lot `*key` names, filed under `key`: when
 * several handles share one queue (a channel's clones), the tasks that
 * parked through one handle are found with ptrio_wait_key. `*key` must keep
 * naming that lot while a task waits through it. Errors as ptrio_park. */
PTRIO_NODISCARD int ptrio_park_key(void *self, ptrio_lot *const *key,
                                   void *data);

/* The non-blocking attempt of a blocking operation (ptrio_park_unless):
 * returns a status >= 0 when it is done, -PTRIO_EWOULDBLOCK when the task
 * must wait, or another error. `t` is the calling task; it must not
 * await, nor unpark or cancel itself. */
typedef int (*ptrio_try_fn)(ptrio_task *t, void *obj, void *data);

/* One blocking operation with Trio's checkpoint rules, in one call: in a
 * cancelled scope it fails with -PTRIO_ECANCELED before `attempt` runs
 * (no effect); else attempt(t, obj, data) tries it: done, the await returns
 * its status after a cancel-shielded schedule point; an error is returned
 * at once (no schedule point); -PTRIO_EWOULDBLOCK parks the task at the
 * end of `lot` with `data`, until an unpark. Awaitable. Errors: those of
 * `attempt`, and of ptrio_park (-PTRIO_EINVAL also for a NULL attempt). */
PTRIO_NODISCARD int ptrio_park_unless(void *self, ptrio_lot *lot,
                                      ptrio_try_fn attempt, void *obj,
                                      void *data);

/* The same, parking through `key` as ptrio_park_key does. */
PTRIO_NODISCARD int ptrio_park_key_unless(void *self, ptrio_lot *const *key,
                                          ptrio_try_fn attempt, void *obj,
                                          void *data);

/* Parks the running task with an abort hook (Trio's
 * wait_task_rescheduled): the owner of the wait wakes it with ptrio_wake;
 * a cancellation calls `abort`. The task's w.park.next/prev links are the
 * owner's to use while it waits. Awaitable; errors as ptrio_park but
 * -PTRIO_EBROKEN. */
PTRIO_NODISCARD int ptrio_park_hook(void *self, ptrio_abort_fn abort,
                                    void *data);

/* Wakes `t`, parked with ptrio_park_hook: `value` becomes its await's
 * status. Returns 0, or -PTRIO_EINVAL when `t` is not parked with a hook. */
int ptrio_wake(ptrio_task *t, int value);

/* The first task parked in `lot` (the next to be unparked), or NULL. */
static inline ptrio_task *ptrio_lot_first(const ptrio_lot *lot)
{
    if (!lot || (const void *)lot->head == (const void *)lot)
        return NULL;
    return lot->head;
}

/* The `data` of the first task parked in `lot`, which must not be empty:
 * what the next unpark's doer hands a value to or takes one from. */
static inline void *ptrio_lot_first_data(const ptrio_lot *lot)
{
    return lot->head->w.park.data;
}

/* The task parked after `t` in `lot`, or NULL after the last (and when `t`
 * is not parked in `lot`). Read it before unparking `t`. */
ptrio_task *ptrio_lot_next(const ptrio_lot *lot, const ptrio_task *t);

/* Wakes the first parked task; `value` (>= 0, or a negative error code)
 * becomes the status of its await. Returns it, or NULL when the lot is
 * empty. Not a checkpoint, like every unpark. */
ptrio_task *ptrio_lot_unpark(ptrio_lot *lot, int value);

/* Wakes the first `n` parked tasks (all: ptrio_lot_unpark_all), in order.
 * Returns how many it woke. */
unsigned ptrio_lot_unpark_n(ptrio_lot *lot, unsigned n, int value);
unsigned ptrio_lot_unpark_all(ptrio_lot *lot, int value);

/* Wakes the parked task `t` (anywhere in `lot`) with `value`. Returns 0,
 * or -PTRIO_EINVAL when `t` is not parked in `lot`. */
int ptrio_lot_unpark_task(ptrio_lot *lot, ptrio_task *t, int value);

/* Moves the first `n` tasks of `from` to the end of `to`, in order, still
 * parked (Trio's repark; a condition hands its waiters to its lock). A
 * moved task forgets its key. Into a broken lot, they wake with
 * -PTRIO_EBROKEN instead; onto `from` itself, they go to its end (a
 * rotation, as in Trio). Returns how many moved. */
unsigned ptrio_lot_repark(ptrio_lot *from, ptrio_lot *to, unsigned n);

/* How many tasks are parked in `lot` (walks it: O(n)). */
unsigned ptrio_lot_count(const ptrio_lot *lot);

/* Whether no task is parked in `lot` (a broken lot is empty). */
static inline bool ptrio_lot_empty(const ptrio_lot *lot)
{
    return !lot->head || (const void *)lot->head == (const void *)lot;
}

/* The `data` a parked task gave ptrio_park, ptrio_park_key or
 * ptrio_park_hook (NULL when it is not parked there). */
void *ptrio_wait_data(const ptrio_task *t);

/* The key a parked task gave ptrio_park_key, or NULL (not parked through
 * a key, or reparked since). */
ptrio_lot *const *ptrio_wait_key(const ptrio_task *t);

/* Breaks `lot` (Trio's break_lot): every parked task wakes with
 * -PTRIO_EBROKEN, and every later park in it fails so. Idempotent; a
 * broken lot stays broken until zeroed again. */
void ptrio_lot_break(ptrio_lot *lot);

/* Whether `lot` is broken. */
static inline bool ptrio_lot_broken(const ptrio_lot *lot)
{
    return lot && (const void *)lot->head == (const void *)lot;
}

/* A lot with an owner task: when the owner exits, the lot breaks (Trio's
 * add_parking_lot_breaker; a lock whose holder exits without releasing
 * it). No allocation: the loop keeps the owned lots in a list threaded
 * through `next`, so an owned lot with an owner must stay where it is
 * until the owner is cleared or exits. Zeroed: no owner, not broken. */
typedef struct ptrio_owned_lot {
    ptrio_lot lot;
    ptrio_task *owner;
    struct ptrio_owned_lot *next;
} ptrio_owned_lot;

/* Makes `t` the owner of `ol` (NULL: no owner), replacing the previous
 * one; handing over from a task to another costs O(1), giving up or
 * taking ownership walks the loop's owned lots from the most recently
 * owned (O(1) when lots are released in reverse order). When the owner
 * exits, the lot breaks and has no owner. Returns 0, -PTRIO_EBROKEN when
 * `t` has exited (or never ran), -PTRIO_ENOTASK outside a running loop,
 * -PTRIO_EINVAL (NULL ol). Not a checkpoint. */
int ptrio_lot_set_owner(ptrio_owned_lot *ol, ptrio_task *t);

/* The owner of `ol`, or NULL. */
static inline ptrio_task *ptrio_lot_owner(const ptrio_owned_lot *ol)
{
    return ol->owner;
}

/* ---- external wake sources ------------------------------------------
 *
 * Something outside the loop's thread (an interrupt, a POSIX signal
 * handler, a worker thread) can only do two things safely: record what
 * happened in memory it owns (atomically), and call ptrio_loop_wake. A
 * source is how the loop then learns it: while added, its `poll` runs on
 * the loop's thread before and after every wait of the backend and
 * between batches, and may wake tasks. A loop with a source added is never deadlocked: the
 * source may still fire. Caller-owned; zero it before the first add. */
typedef struct ptrio_source ptrio_source;
struct ptrio_source {
    ptrio_source *next, *prev;
    void (*poll)(ptrio_source *src);
};

/* Adds `src` to the running loop, with its poll function. Returns 0, or
 * -PTRIO_ENOTASK outside a running loop, -PTRIO_EBUSY if already added,
 * -PTRIO_EINVAL (NULL). */
int ptrio_source_add(ptrio_source *src, void (*poll)(ptrio_source *src));

/* Removes `src` (no effect if it is not added). */
void ptrio_source_remove(ptrio_source *src);

/* What a poll does when the event its task awaits has come: removes `src`
 * (if added) and wakes `t`, parked with ptrio_park_hook, with `value`, as
 * ptrio_source_remove then ptrio_wake do, in one call (the path from an
 * interrupt to its task). Returns ptrio_wake's result: 0, or
 * -PTRIO_EINVAL when `t` is not parked with a hook. */
int ptrio_source_wake(ptrio_source *src, ptrio_task *t, int value);

/* Whether `src` is added (a run that ends removes its sources): a waiter
 * may keep its source across waits instead of adding it each time. */
static inline bool ptrio_source_added(const ptrio_source *src)
{
    return (src != NULL) && (src->next != NULL);
}

/* ---- cancel scopes ------------------------------------------------ */

#define PTRIO__SCOPE_OPEN     0x0004u
#define PTRIO__SCOPE_CALLED   0x0008u  /* cancel_called */
#define PTRIO__SCOPE_CAUGHT   0x0010u  /* cancelled_caught */
#define PTRIO__SCOPE_SHIELD   0x0020u
#define PTRIO__SCOPE_DEADLINE 0x0040u  /* has a finite deadline */
#define PTRIO__SCOPE_FAIL     0x0080u  /* fail_after: catch -> ETIMEDOUT */
#define PTRIO__SCOPE_CATCH    0x0100u  /* TRY_BLOCK: catches every error */
#define PTRIO__SCOPE_NURSERY  0x0200u
#define PTRIO__SCOPE_TIMER    0x0400u  /* deadline in the tree */
#define PTRIO__SCOPE_LAZY     0x0800u  /* relative deadline, not yet armed */
#define PTRIO__SCOPE_RELATIVE 0x1000u  /* ended unarmed: duration + base */
#define PTRIO__SCOPE_WHY      0xe000u  /* the kind of `why`: ptrio_cancel_kind */
#define PTRIO__SCOPE_WHY_SHIFT 13
#define PTRIO__SCOPE_ABSORBED 0x10000u /* a nursery inside absorbed a
                                          cancellation that this scope
                                          catches if the failure it came
                                          with (`absorbed`) reaches it */

/* Internal: what the block macros below expand to (not API). */
PTRIO_NODISCARD int ptrio__scope_open(ptrio_frame *fr, ptrio_scope *sc,
                                      uintptr_t exit, ptrio_time deadline,
                                      unsigned flags);
PTRIO_NODISCARD int ptrio__scope_open_after(ptrio_frame *fr, ptrio_scope *sc,
                                            uintptr_t exit, ptrio_time d,
                                            unsigned flags);
PTRIO_NODISCARD int ptrio__scope_close(ptrio_frame *fr, ptrio_scope *sc);

/* Entering a scope block (re)initialises the scope: a deadline, shield or
 * cancellation set on it before the block opens is dropped (enter with
 * MOVE_ON_AT, FAIL_AT or SHIELD, or set them inside). Entering raises
 * -PTRIO_ENOTASK (outside the running frame), -PTRIO_EINVAL (NULL scope),
 * -PTRIO_EBUSY (the scope is open already); the *_AFTER forms also
 * -PTRIO_EINVAL (d < 0) and -PTRIO_EOVERFLOW (d beyond 2^62 ns). */

/* A cancel scope block, without deadline or shield at entry. */
#define PTRIO_CANCEL_SCOPE(f, sc)                                           \
    PTRIO__BLOCK((sc), ptrio__scope_open(&(f)->fr, (sc),                    \
        PTRIO__POINT(__LINE__), PTRIO_TIME_INF, 0),                         \
        ptrio__scope_close(ptrio__fr, (sc)))

/* A shielded cancel scope block: outer cancellation does not reach in. */
#define PTRIO_SHIELD(f, sc)                                                 \
    PTRIO__BLOCK((sc), ptrio__scope_open(&(f)->fr, (sc),                    \
        PTRIO__POINT(__LINE__), PTRIO_TIME_INF, PTRIO__SCOPE_SHIELD),       \
        ptrio__scope_close(ptrio__fr, (sc)))

/* Cancels the block at `deadline` / after `d`; execution continues after
 * the block. Test ptrio_cancelled_caught(sc) to know whether it fired. */
#define PTRIO_MOVE_ON_AT(f, sc, deadline)                                   \
    PTRIO__BLOCK((sc), ptrio__scope_open(&(f)->fr, (sc),                    \
        PTRIO__POINT(__LINE__), (deadline), 0),                             \
        ptrio__scope_close(ptrio__fr, (sc)))
#define PTRIO_MOVE_ON_AFTER(f, sc, d)                                       \
    PTRIO__BLOCK((sc), ptrio__scope_open_after(&(f)->fr, (sc),              \
        PTRIO__POINT(__LINE__), (d), 0),                                    \
        ptrio__scope_close(ptrio__fr, (sc)))

/* Like MOVE_ON, but a deadline that fires raises -PTRIO_ETIMEDOUT. */
#define PTRIO_FAIL_AT(f, sc, deadline)                                      \
    PTRIO__BLOCK((sc), ptrio__scope_open(&(f)->fr, (sc),                    \
        PTRIO__POINT(__LINE__), (deadline), PTRIO__SCOPE_FAIL),             \
        ptrio__scope_close(ptrio__fr, (sc)))
#define PTRIO_FAIL_AFTER(f, sc, d)                                          \
    PTRIO__BLOCK((sc), ptrio__scope_open_after(&(f)->fr, (sc),              \
        PTRIO__POINT(__LINE__), (d), PTRIO__SCOPE_FAIL),                    \
        ptrio__scope_close(ptrio__fr, (sc)))

/* Catches any error raised in the block but an outer cancellation (a
 * try/except in one frame): execution continues after it;
 * ptrio_scope_error(sc) tells what it was. -PTRIO_ECANCELED from an
 * enclosing scope is not caught: it goes on to the scope that produced
 * it (cancelling `sc` itself is caught, as by any cancel scope). */
#define PTRIO_TRY_BLOCK(f, sc)                                              \
    PTRIO__BLOCK((sc), ptrio__scope_open(&(f)->fr, (sc),                    \
        PTRIO__POINT(__LINE__), PTRIO_TIME_INF, PTRIO__SCOPE_CATCH),        \
        ptrio__scope_close(ptrio__fr, (sc)))

/* Cancels a scope: every task inside it fails its next checkpoint, and a
 * task parked inside it is woken now. Idempotent (the first reason
 * stays). On a closed scope it only marks cancel_called; on a scope whose
 * block has not opened yet it is dropped when the block opens. Call it on
 * the scope's loop's thread: from a thread with no loop an open scope is
 * left as it is (a trap in debug builds); raise a ptrio_signal instead.
 * The same holds for the deadline and shield setters below. (A task of
 * another loop, on another thread, is not detected: a scope does not know
 * its loop.) */
void ptrio_cancel(ptrio_scope *sc);

/* ptrio_cancel with a reason, a static text that ptrio_cancel_source and
 * the dump show (Trio's cancel(reason=...)). */
void ptrio_cancel_reason(ptrio_scope *sc, const char *reason);

/* Where a cancellation came from. */
typedef enum ptrio_cancel_kind {
    PTRIO_CANCEL_NONE = 0,
    PTRIO_CANCEL_EXPLICIT,          /* ptrio_cancel, ptrio_cancel_reason */
    PTRIO_CANCEL_DEADLINE,          /* the scope's deadline passed */
    PTRIO_CANCEL_FAILURE,           /* a nursery's child or body failed */
    PTRIO_CANCEL_RUN,               /* the run ends: its backend failed, or
                                       every task waits forever */
    PTRIO_CANCEL_TASK               /* ptrio_task_cancel */
} ptrio_cancel_kind;

typedef struct ptrio_cancel_info {
    ptrio_cancel_kind kind;
    const char *reason;             /* EXPLICIT: the text given, or NULL */
    const ptrio_scope *scope;       /* the scope cancelled (NULL: TASK) */
    const ptrio_task *task;         /* TASK: the task cancelled */
    ptrio_failure failure;          /* FAILURE, RUN: what failed */
} ptrio_cancel_info;

/* Why the calling task is cancelled: the cancellation its checkpoints
 * fail with (the first reason given to the scope it comes from, which an
 * inner scope cancelled later inherits). Returns 0, -PTRIO_EINVAL when the
 * task is not cancelled (or `out` is NULL), -PTRIO_ENOTASK. */
int ptrio_cancel_source(void *self, ptrio_cancel_info *out);

/* Writes "cancelled because ..." for `info` into buf (at most n bytes,
 * always terminated). Returns the length it wrote. */
int ptrio_cancel_text(const ptrio_cancel_info *info, char *buf, int n);

/* Cancels the task `t` alone, as if its outermost scope were cancelled:
 * it fails its next checkpoint (its cleanup runs, shields inside it hold),
 * the children of its nurseries and the child it is starting are
 * cancelled with it, and the cancellation ends at the task: it is not a failure of its
 * nursery, and its siblings go on. Returns 0, -PTRIO_EINVAL when `t` is
 * not running (NULL, never started or done), -PTRIO_ENOTASK outside a
 * running loop. Not a checkpoint. */
int ptrio_task_cancel(ptrio_task *t);

/* Moves the deadline (absolute). Earlier fires at the new time (now, if
 * passed), later postpones, PTRIO_TIME_INF clears. Returns 0, or
 * -PTRIO_EINVAL (NULL), -PTRIO_ENOTASK (an open scope, from a thread with
 * no loop). */
int ptrio_scope_set_deadline(ptrio_scope *sc, ptrio_time deadline);

/* Sets the deadline to now + d (saturating; PTRIO_TIME_INF clears it).
 * Returns 0. Errors: -PTRIO_EINVAL (d < 0, NULL), -PTRIO_EOVERFLOW (d
 * beyond 2^62 ns), -PTRIO_ENOTASK (as ptrio_scope_set_deadline). */
int ptrio_scope_set_timeout(ptrio_scope *sc, ptrio_time d);

/* The scope's deadline (PTRIO_TIME_INF: none; also for an open relative
 * deadline not armed yet, read from a thread with no loop). */
ptrio_time ptrio_scope_deadline(const ptrio_scope *sc);

/* Shields (or unshields) the scope from outer cancellation, also while
 * inside; unshielding delivers a pending outer cancellation. */
void ptrio_scope_set_shield(ptrio_scope *sc, bool shield);
/* Whether the scope is shielded. */
bool ptrio_scope_shield(const ptrio_scope *sc);

/* Whether the scope was cancelled (by ptrio_cancel or its deadline). Asked
 * by the task that opened it, an open scope whose deadline the clock has
 * passed is cancelled by the call, as in Trio, before the loop would fire
 * the deadline. */
bool ptrio_cancel_called(const ptrio_scope *sc);

/* Whether the scope's block caught the cancellation it produced. */
bool ptrio_cancelled_caught(const ptrio_scope *sc);

/* TRY_BLOCK: the error the block caught, 0 if none. */
int ptrio_scope_error(const ptrio_scope *sc);

/* TRY_BLOCK: the record of the error the block caught (its site, message,
 * task, group, traceback), valid until the block runs again. Returns 0,
 * -PTRIO_EINVAL when it caught none. */
int ptrio_scope_failure(const ptrio_scope *sc, ptrio_failure *out);

/* The earliest deadline that applies to the caller (PTRIO_TIME_NINF when
 * it is cancelled, by a scope or ptrio_task_cancel: exactly when
 * ptrio_checkpoint_if_cancelled fails; PTRIO_TIME_INF when none). */
ptrio_time ptrio_current_effective_deadline(void);

/* ---- nurseries ---------------------------------------------------- */

/* Internal: what PTRIO_NURSERY expands to (not API). */
PTRIO_NODISCARD int ptrio__nursery_open(ptrio_frame *fr, ptrio_nursery *n,
                                        uintptr_t exit, const char *file,
                                        int line);
PTRIO_NODISCARD int ptrio__nursery_close(ptrio_frame *fr, ptrio_nursery *n);

/* Opens a nursery for the block; the block's end joins every child. When
 * a child or the body fails, the nursery cancels itself, joins, and raises:
 * the one failure as itself, several as -PTRIO_EGROUP. Entering raises
 * -PTRIO_ENOTASK, -PTRIO_EMISUSE (the task already waits), -PTRIO_EINVAL
 * (NULL), -PTRIO_EBUSY (the nursery is open already). */
#define PTRIO_NURSERY(f, n)                                                 \
    PTRIO__BLOCK(&(n)->scope, ptrio__nursery_open(&(f)->fr, (n),            \
        PTRIO__POINT(__LINE__), __FILE__, __LINE__),                        \
        ptrio__nursery_close(ptrio__fr, (n)))

/* Cancels the nursery's scope: its body and every child. */
void ptrio_nursery_cancel(ptrio_nursery *n);

/* The nursery's cancel scope (deadline, shield, cancel_called...). */
ptrio_scope *ptrio_nursery_scope(ptrio_nursery *n);

/* Children running or starting in the nursery. */
unsigned ptrio_nursery_live(const ptrio_nursery *n);

/* ---- the task tree, for debuggers and your own dumps -----------------
 *
 * The run's tree, walked in pre-order with O(1) memory and stack: the
 * run's nursery (depth 0) holds the main task; a task holds its outermost
 * open scope; a scope holds its task's next scope inside it, then (the
 * innermost) the child that task is starting with ptrio_start, then (a
 * nursery's scope) the nursery's children. Walk it on the loop's thread
 * and do not change the tree meanwhile (no await, no start, no cancel). */
typedef struct ptrio_tree_node {
    const ptrio_task *task;         /* a task, or NULL */
    const ptrio_scope *scope;       /* else a scope (a nursery's, maybe) */
    int depth;
} ptrio_tree_node;

/* The root: the run's nursery. Returns 0, -PTRIO_ENOTASK outside a
 * running loop, -PTRIO_EINVAL (NULL). */
int ptrio_tree_first(ptrio_tree_node *node);

/* Moves to the next node. Returns 1, or 0 when the walk is over. */
int ptrio_tree_next(ptrio_tree_node *node);

typedef struct ptrio_task_info {
    const char *name;
    const char *state;              /* "running", "ready", "sleeping", ... */
    ptrio_time wakes_at;            /* sleeping: its deadline, else INF */
    const void *waits_on;           /* parked in a lot: the lot; else NULL */
    bool being_started;             /* ptrio_start's child, not yet moved */
    bool cancelled;                 /* its checkpoints fail, `cancel` why */
    ptrio_cancel_info cancel;
} ptrio_task_info;

/* Describes task `t`. Returns 0, -PTRIO_EINVAL (NULL). */
int ptrio_task_info_get(const ptrio_task *t, ptrio_task_info *out);

typedef struct ptrio_frame_info {
    const char *file, *func;        /* NULL when the frame cannot say (a
                                       step without the macros) */
    int line;                       /* where it waits (0: not started) */
} ptrio_frame_info;

/* The frames of `t`, innermost first: pass NULL for the first, then the
 * frame it returned. Fills `out` and returns the frame, or returns NULL
 * after the last. */
const ptrio_frame *ptrio_task_frames(const ptrio_task *t,
                                     const ptrio_frame *prev,
                                     ptrio_frame_info *out);

typedef struct ptrio_scope_info {
    const ptrio_nursery *nursery;   /* a nursery's scope: the nursery */
    const char *file;               /* a nursery: where its block is */
    int line;
    const char *func;               /* an open scope: its frame's function
                                       (NULL: a hand-written step's) */
    unsigned live;                  /* a nursery: children running, starting */
    ptrio_time deadline;            /* PTRIO_TIME_INF: none */
    bool shield, cancel_called;
    ptrio_cancel_info cancel;       /* cancel_called: why */
} ptrio_scope_info;

/* Describes scope `sc` (open or not). Returns 0, -PTRIO_EINVAL (NULL). */
int ptrio_scope_info_get(const ptrio_scope *sc, ptrio_scope_info *out);

#ifdef __cplusplus
}
#endif

#endif /* PTRIO_CORE_H */
