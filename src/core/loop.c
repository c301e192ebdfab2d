/* src/core/loop.c: the scheduler, task steps, calls, checkpoints, sleep and
 * ptrio_run.
 *
 * The run queue is a FIFO list threaded through the tasks, processed in
 * batches: a task made ready during a batch runs in the next one. Between
 * batches expired deadlines fire, and when nothing is ready the backend
 * waits until the earliest deadline. A step resumes the task's innermost
 * frame directly; when a frame finishes its status goes to its caller in
 * the same step, so resuming costs the same at any call depth.
 */
#include "internal.h"

/* A hot function with its callees inlined into it, and one inlined into
 * its callers (at -Os too). */
#if defined(__GNUC__) || defined(__clang__)
#define FLATTEN __attribute__((__flatten__))
#define ALWAYS_INLINE inline __attribute__((__always_inline__))
#else
#define FLATTEN
#define ALWAYS_INLINE inline
#endif

PTRIO__TLS ptrio_loop *ptrio__loop;
PTRIO__TLS ptrio_frame *ptrio__awaiter = NOBODY;

/* The wait with a clock or idle waiters: what uses one of them points
 * loop->wait_full at it, so that only then is it linked. */
static int wait_full(ptrio_loop *l);

ptrio_loop *ptrio_current_loop(void) { return ptrio__loop; }

ptrio_task *ptrio_current_task(void)
{
    return ptrio__loop ? ptrio__loop->current : NULL;
}

const char *ptrio_task_name(const ptrio_task *t)
{
    return t && t->name ? t->name : "?";
}

/* The fast paths' permission for the running task `t` (see internal.h). */
static void permit(ptrio_loop *l, ptrio_task *t)
{
    ptrio__awaiter = l->ncalled || TSTATE(t) != T_RUNNING ? NOBODY : t->frame;
}

NOINLINE ptrio_task *ptrio__self_slow(void *self)
{
    ptrio_loop *l = ptrio__loop;
    ptrio_task *t = l ? l->current : NULL;

    if (!t || !self || t->frame != (ptrio_frame *)self) {
        MISUSE("await outside the running task's innermost frame");
        return NULL;
    }
    return t;
}

void ptrio__report(ptrio_loop *l, const char *line)
{
    if (l && l->report)
        l->report(l->report_ctx, line);
}

void ptrio__ready(ptrio_loop *l, ptrio_task *t)
{
    INVARIANT(TSTATE(t) != T_READY, "a task queued twice");
    INVARIANT(TSTATE(t) != T_DONE, "a finished task queued");
    if (t == l->current)
        ptrio__awaiter = NOBODY;
    TSET(t, T_READY);
    ptrio__enqueue(l, t);
}

void ptrio__park(ptrio_task *t, int wait)
{
    ptrio__park_now(t, wait);
}

void ptrio__wake(ptrio_loop *l, ptrio_task *t, int rc)
{
    ptrio__wake_now(l, t, rc);
}

/* ---- loop setup --------------------------------------------------- */

int ptrio_loop_init(ptrio_loop *loop)
{
    if (!loop)
        return -PTRIO_EINVAL;
    /* Only the loop running on this thread can be told from garbage: a
     * loop on the stack starts out as anything, `running` included. */
    if (loop == ptrio__loop) {
        MISUSE("ptrio_loop_init of the loop that is running");
        return -PTRIO_EBUSY;
    }
    memset(loop, 0, sizeof *loop);
    loop->backend = ptrio_default_backend();
    loop->report = ptrio__default_sink();
    loop->reporter = ptrio__default_reporter();
    return 0;
}

int ptrio_loop_use_backend(ptrio_loop *loop, const ptrio_backend *backend)
{
    if (!loop || !backend || !backend->now || !backend->wait)
        return -PTRIO_EINVAL;
    if (loop->running)
        return -PTRIO_EBUSY;
    loop->backend = backend;
    return 0;
}

void ptrio_loop_set_report(ptrio_loop *loop, ptrio_report_fn fn, void *ctx)
{
    if (!loop) {
        MISUSE("a report sink for a NULL loop");
        return;
    }
    loop->report = fn;
    loop->report_ctx = ctx;
    loop->reporter = fn ? &ptrio__reporting : NULL;
}

static const ptrio__instrumenting instrumenting;

/* Instruments change the count that stops batches running back to back
 * (loop->between) and the one that makes the scheduler call them; the
 * code calling them is linked only with them (loop->instr). */
static void instruments_changed(ptrio_loop *l, int delta)
{
    l->ninstruments = (uint32_t)((int)l->ninstruments + delta);
    l->between = (uint32_t)((int)l->between + delta);
    l->instr = &instrumenting;
}

void ptrio_loop_set_hooks(ptrio_loop *loop, const ptrio_hooks *hooks,
                          void *ctx)
{
    if (!loop) {
        MISUSE("hooks for a NULL loop");
        return;
    }
    if (!loop->hooks != !hooks)
        instruments_changed(loop, hooks ? 1 : -1);
    loop->hooks = hooks;
    loop->hooks_ctx = ctx;
}

/* Whether `inst` is in the list of loop `l`. */
static int instrument_listed(const ptrio_loop *l, const ptrio_instrument *inst)
{
    const ptrio_instrument *i;

    for (i = l->instruments; i; i = i->next)
        if (i == inst)
            return 1;
    return 0;
}

int ptrio_loop_add_instrument(ptrio_loop *loop, ptrio_instrument *inst,
                              const ptrio_hooks *hooks, void *ctx)
{
    ptrio_instrument **p;

    if (!loop || !inst || !hooks)
        return -PTRIO_EINVAL;
    /* In another loop: relinking it would cut that loop's list after it
     * (remove it there first). In this one: added twice. A loop
     * re-initialised since has forgotten it (its list no longer has it):
     * it may come back, or go to another loop. */
    if (inst->loop && inst->loop != loop &&
        instrument_listed(inst->loop, inst))
        return -PTRIO_EBUSY;
    for (p = &loop->instruments; *p; p = &(*p)->next)
        if (*p == inst)
            return -PTRIO_EBUSY;
    inst->hooks = hooks;
    inst->ctx = ctx;
    inst->next = NULL;
    inst->loop = loop;
    *p = inst;
    instruments_changed(loop, 1);
    return 0;
}

void ptrio_loop_remove_instrument(ptrio_loop *loop, ptrio_instrument *inst)
{
    ptrio_instrument **p;

    for (p = loop ? &loop->instruments : NULL; p && *p; p = &(*p)->next)
        if (*p == inst) {
            /* inst->next stays: a hook walk that is at inst (one that
             * removes itself) goes on to the next instrument. */
            *p = inst->next;
            inst->loop = NULL;
            instruments_changed(loop, -1);
            return;
        }
}

/* The hook of kind `which` in `h`. */
static void (*task_hook(const ptrio_hooks *h, int which))(void *,
                                                         const ptrio_task *)
{
    switch (which) {
    case I_SPAWNED: return h->task_spawned;
    case I_BEFORE_STEP: return h->before_task_step;
    case I_AFTER_STEP: return h->after_task_step;
    default: return h->task_scheduled;
    }
}

static void instr_task(ptrio_loop *l, int which, const ptrio_task *t)
{
    void (*fn)(void *, const ptrio_task *);
    ptrio_instrument *i;

    if (l->hooks && (fn = task_hook(l->hooks, which)))
        fn(l->hooks_ctx, t);
    for (i = l->instruments; i; i = i->next)
        if ((fn = task_hook(i->hooks, which)))
            fn(i->ctx, t);
}

static void (*run_hook(const ptrio_hooks *h, int which))(void *)
{
    return which == I_BEFORE_RUN ? h->before_run
         : which == I_AFTER_RUN ? h->after_run : h->after_io_wait;
}

static void instr_run(ptrio_loop *l, int which)
{
    void (*fn)(void *);
    ptrio_instrument *i;

    if (l->hooks && (fn = run_hook(l->hooks, which)))
        fn(l->hooks_ctx);
    for (i = l->instruments; i; i = i->next)
        if ((fn = run_hook(i->hooks, which)))
            fn(i->ctx);
}

/* In the exiting task's context, as Trio's task_exited. */
static void instr_exited(ptrio_loop *l, ptrio_task *t, int status)
{
    ptrio_instrument *i;
    ptrio_task *was = l->current;

    l->current = t;
    if (l->hooks && l->hooks->task_exited)
        l->hooks->task_exited(l->hooks_ctx, t, status);
    for (i = l->instruments; i; i = i->next)
        if (i->hooks->task_exited)
            i->hooks->task_exited(i->ctx, t, status);
    l->current = was;
}

static void instr_wait(ptrio_loop *l, ptrio_time deadline)
{
    ptrio_instrument *i;

    if (l->hooks && l->hooks->before_io_wait)
        l->hooks->before_io_wait(l->hooks_ctx, deadline);
    for (i = l->instruments; i; i = i->next)
        if (i->hooks->before_io_wait)
            i->hooks->before_io_wait(i->ctx, deadline);
}

static const ptrio__instrumenting instrumenting = {
    instr_task, instr_run, instr_exited, instr_wait
};

int ptrio_source_add(ptrio_source *src, void (*poll)(ptrio_source *src))
{
    ptrio_loop *l = ptrio__loop;

    if (!src || !poll)
        return -PTRIO_EINVAL;
    if (!l)
        return -PTRIO_ENOTASK;
    if (src->next) {
        MISUSE("adding a source that is already added");
        return -PTRIO_EBUSY;
    }
    src->poll = poll;
    src->prev = NULL;
    BETWEEN_ADD(l);
    src->next = l->sources ? l->sources : src;  /* non-NULL: added */
    if (l->sources)
        l->sources->prev = src;
    l->sources = src;
    return 0;
}

void ptrio_source_remove(ptrio_source *src)
{
    ptrio_loop *l = ptrio__loop;

    if (src && src->next && l)
        ptrio__source_unlink(l, src);
}

/* A check failed (or `src` is not added): ptrio_wake reports a failure
 * and fails as it does. */
static NOINLINE int source_wake_slow(ptrio_source *src, ptrio_task *t,
                                     int value)
{
    ptrio_source_remove(src);
    return ptrio_wake(t, value);
}

/* The checks are ptrio_wake's. Flattened: the unlink, the wake and the
 * enqueue inline, on the way from an interrupt to its task. */
FLATTEN int ptrio_source_wake(ptrio_source *src, ptrio_task *t, int value)
{
    ptrio_loop *l = ptrio__loop;

    if (!l || !t || TSTATE(t) != T_PARKED || t->wait != W_HOOK ||
        value <= PTRIO__UNWIND_FIN || !src || !src->next)
        return source_wake_slow(src, t, value);
    ptrio__source_unlink(l, src);
    ptrio__wake_now(l, t, value);
    return 0;
}

/* Polls every source from `s` on; a poll may remove its own source, no
 * other. */
static NOINLINE void poll_from(ptrio_source *s)
{
    ptrio_source *next;

    while ((next = s->next) != s) {
        s->poll(s);
        s = next;
    }
    s->poll(s);
}

/* Polls every source (its callers test that one is added): one source,
 * an interrupt's, is polled inline, on the way from the wait to its task. */
static inline void poll_sources(ptrio_loop *l)
{
    ptrio_source *s = l->sources;

    if (s->next == s)
        s->poll(s);
    else
        poll_from(s);
}

/* Sources still added when the run ends are dropped: none outlives it. */
static void drop_sources(ptrio_loop *l)
{
    while (l->sources)
        ptrio_source_remove(l->sources);
}

/* A no-op on a loop that is not running: its backend holds nothing open. */
void ptrio_loop_wake(ptrio_loop *loop)
{
    if (loop && loop->running && loop->backend && loop->backend->wake)
        loop->backend->wake(loop);
}

ptrio_time ptrio_now(void)
{
    ptrio_loop *l = ptrio__loop;
    return l ? ptrio__now(l) : 0;
}

/* ---- waits undone --------------------------------------------------- */

static void runq_remove(ptrio_loop *l, ptrio_task *t)
{
    ptrio_task **p = &l->runq, *prev = NULL;

    while (*p && *p != t) {
        prev = *p;
        p = &(*p)->w.next;
    }
    if (!*p)
        return;
    *p = t->w.next;
    if (l->runq_tail == t && prev)
        l->runq_tail = prev;
}

/* The running task `t` waits already although it still runs: an
 * awaitable's PTRIO_PENDING was dropped. Undo that wait, so the task is in
 * no queue, tree or lot while its frame carries on (misuse, rare). */
void ptrio__undo_wait(ptrio_loop *l, ptrio_task *t)
{
    if (t == l->current && ptrio__awaiter == YIELDED) {
        ptrio__awaiter = NOBODY;      /* a fast checkpoint, not yet queued */
        return;
    }
    switch (TSTATE(t)) {
    case T_READY:
        runq_remove(l, t);
        break;
    case T_PARKED:
        switch (t->wait) {
        case W_TIMER:
            ptrio__timer_del(l, &t->w.timer);
            break;
        case W_IDLE:
            ptrio__idle_remove(l, t);
            break;
        case W_LOT:
            ptrio__lot_remove(t->w.park.on.lot, t);
            break;
        case W_HOOK:
            (void)t->w.park.on.abort(t, t->w.park.data);
            break;
        case W_START:
            ptrio__start_undone(t);
            break;
        default:
            break;
        }
        break;
    default:
        return;
    }
    TSET(t, T_RUNNING);
    t->wait = W_NONE;
}

/* Whether the running task `t` waits already although it still runs (an
 * awaitable's PTRIO_PENDING was dropped): then that wait is undone, so
 * that a second one cannot put it in two queues, and `what` is reported
 * as misuse. */
int ptrio__dropped_wait(ptrio_loop *l, ptrio_task *t, const char *what)
{
    if (TSTATE(t) == T_RUNNING && ptrio__awaiter != YIELDED)
        return 0;
    (void)what;
    MISUSE(what);
    ptrio__undo_wait(l, t);
    return 1;
}

/* What every awaitable checks first: `self` is the running task's
 * innermost frame, and the task waits on nothing yet. A task that already
 * waits has had an awaitable's PTRIO_PENDING dropped (a call without
 * PTRIO_AWAIT, or a second await in one step): a second wait would put it
 * in two queues at once, so the first is undone and this one fails. */
int ptrio__await_check(void *self, ptrio_task **out)
{
    ptrio_task *t;

    if (self == ptrio__awaiter) {
        *out = ptrio__loop->current;
        return 0;
    }
    *out = t = ptrio__self_slow(self);
    if (!t)
        return -PTRIO_ENOTASK;
    if (DROPPED_WAIT(ptrio__loop, t, "await while the task already "
                     "waits (an awaitable called without "
                     "PTRIO_AWAIT?)")) {
        /* the report names the cause, not just "API misuse" here */
        ptrio__note_origin(t, -PTRIO_EMISUSE, &ptrio__dropped_site);
        return -PTRIO_EMISUSE;
    }
    return 0;
}

/* ---- steps -------------------------------------------------------- */

const ptrio_site ptrio__dropped_site = {
    NULL, 0, "an awaitable's PTRIO_PENDING was dropped (no PTRIO_AWAIT?)"
};
static const ptrio_site c_return_site = {
    NULL, 0, "a C return inside a coroutine body (use PTRIO_RETURN)"
};

/* Frame `fr` of `t` returned `rc`: the checks of the fast path failed
 * (an error, a plain C step, a cancelled scope somewhere, or misuse).
 * Returns PTRIO_PENDING when it must run again: a C return (or goto) left
 * the body inside an open block, or skipped END, so it is re-entered
 * raising -PTRIO_EMISUSE: its blocks close (a nursery joins its children)
 * and FINALLY runs. Else the frame is done: returns its status, an
 * error's origin handed on. (rc is not passed by address: that kept the
 * scheduler's rc in memory, a store on every step.) */
static NOINLINE int frame_ended(ptrio_loop *l, ptrio_task *t,
                                ptrio_frame *fr, int rc)
{
    ptrio_scope *sc = t->scope;
    /* Through END: the error's origin. A plain C step has none of its
     * own; returning the status a sub-call handed it in this step (its
     * origin still armed), it passes that origin on. */
    const void *origin = fr->resume == PTRIO__DONE
                             ? fr->origin
                             : ptrio__take_origin(t, rc, NULL);

    if (DROPPED_WAIT(l, t, "a frame ended while its task waits (an "
                     "awaitable called without PTRIO_AWAIT?)")) {
        rc = -PTRIO_EMISUSE;
        origin = &ptrio__dropped_site;
    }
    if ((sc && sc->frame == fr && (sc->flags & PTRIO__SCOPE_OPEN)) ||
        fr->resume > PTRIO__START) {
        MISUSE("a C return inside a coroutine body (use PTRIO_RETURN)");
        fr->resume = ptrio__raise_new(fr, -PTRIO_EMISUSE, &c_return_site);
        permit(l, t);
        return PTRIO_PENDING;
    }
    if (rc < PTRIO_ERRMIN) {
        MISUSE("a step returned a ptrio marker");
        rc = -PTRIO_EMISUSE;
        origin = NULL;
    }
    /* An error leaving a frame through END names the frame: the frames it
     * left through, each pointing on to the next, are its traceback. */
    if (rc < 0) {
        const void *now = fr->resume == PTRIO__DONE && origin == fr->origin
                              ? OMAKE(fr, O_FRAME) : origin;
        if (now != origin)
            ptrio__absorbed_moved(t->scope, origin, now);
        ptrio__note_origin(t, rc, now);
    }
    if (fr->resume != PTRIO__DONE)
        fr->resume = 0;
    return rc;
}

/* Whether the fast path may take a finished frame: it ended through END
 * with a status, and its task neither waits nor runs in a cancelled
 * region (the permission was still this frame's). */
#define ENDED_CLEANLY(fr, rc)                                               \
    (ptrio__awaiter == (fr) && (fr)->resume == PTRIO__DONE && (rc) >= 0)

/* Returned PTRIO_PENDING without waiting on anything: it would never run
 * again. Make its await fail instead. */
static NOINLINE void lost_step(ptrio_loop *l, ptrio_task *t)
{
    MISUSE("a step returned PTRIO_PENDING without waiting");
    t->frame->result = -PTRIO_EMISUSE;
    ptrio__ready(l, t);
}

/* The frame `t` would resume was re-initialised while `t` ran: zeroed, or
 * started again by another task. `t` must not run it: it ends with
 * -PTRIO_EMISUSE. */
static NOINLINE void frame_taken(ptrio_loop *l, ptrio_task *t)
{
    static const ptrio_site taken_site = {
        NULL, 0, "this task's frame was re-initialised and started again"
    };
    MISUSE("a task's frame was re-initialised while it ran");
    l->current = NULL;
    ptrio__note_origin(t, -PTRIO_EMISUSE, &taken_site);
    ptrio__task_finished(l, t, -PTRIO_EMISUSE);
}

/* The after_task_step hooks, with `t` the current task even when it has
 * just finished (Trio's hooks run in the task's context). */
static NOINLINE void after_step(ptrio_loop *l, ptrio_task *t)
{
    ptrio_task *was = l->current;

    l->current = t;
    ptrio__instr_task(l, I_AFTER_STEP, t);
    l->current = was;
}

/* One step of `t`: its innermost frame runs until it waits; a finished
 * frame hands its status to its caller, which runs on in the same step. */
static void step(ptrio_loop *l, ptrio_task *t, uint32_t instrumented)
{
    ptrio_frame *fr = t->frame;
    int rc;

    l->current = t;
    TMOVE(t, T_READY, T_RUNNING);   /* t->wait keeps what woke it */
    if (instrumented)
        ptrio__instr_task(l, I_BEFORE_STEP, t);
    if (fr->caller != ROOT_OF(t) &&
        (IS_ROOT(fr) || !fr->caller || !fr->fn)) {
        frame_taken(l, t);
        return;
    }
    ptrio__awaiter = fr;
    if (l->ncalled) {
        ptrio__awaiter = NOBODY;
        /* A checkpoint's cancel point comes after its schedule point, as
         * in Trio: whether it fails is decided now, as the task resumes,
         * so a shield set meanwhile holds. So is a start whose child was
         * cancelled before started(): Trio's hidden nursery catches that
         * cancellation (-ENOSTART, the status it woke with) unless one is
         * visible to the starter. With no scope cancelled none is. */
        if (t->wait == W_YIELD)
            fr->result = ptrio__cancelled(t) ? -PTRIO_ECANCELED : 0;
        else if (t->wait == W_START_CANCELLED && ptrio__cancelled(t))
            fr->result = -PTRIO_ECANCELED;
    }
    for (;;) {
        rc = fr->fn(fr);
        if (rc == PTRIO_PENDING) {
            /* An error handed on in this step was taken at once, or
             * dropped (a step written by hand may ignore a sub-call's
             * status): its origin must not go to a later error of the
             * same code. Handed on while the task waits, it is noted
             * after this (a start's child to its starter). */
            if (t->state & T_ARMED)     /* rare: a test, no store */
                t->state &= (uint8_t)~T_ARMED;
            if (ptrio__awaiter != YIELDED)
                break;
            /* A fast checkpoint. Alone, with nothing to do between
             * batches, the task is the whole next batch: run it on. */
            fr = t->frame;
            if (!l->between) {
                if (!l->runq) {
                    ptrio__awaiter = fr;
                    continue;
                }
            } else if (l->nlazy) {
                ptrio__arm_lazy(l);
            }
            ptrio__awaiter = NOBODY;
            TMOVE(t, T_RUNNING, T_READY);
            t->wait = W_YIELD;
            ptrio__enqueue_quiet(l, t);
            if (l->ninstruments)
                ptrio__instr_task(l, I_SCHEDULED, t);
            return;
        }
        if (!ENDED_CLEANLY(fr, rc)) {
            rc = frame_ended(l, t, fr, rc);
            if (rc == PTRIO_PENDING)
                continue;           /* re-entered: run it again */
        }
        if (IS_ROOT(fr)) {
            ptrio__awaiter = NOBODY;
            l->current = NULL;
            ptrio__task_finished(l, t, rc);
            return;
        }
        fr = fr->caller;
        t->frame = fr;
        if (!fr->fn) {              /* the caller's frame was zeroed */
            ptrio__awaiter = NOBODY;
            frame_taken(l, t);
            return;
        }
        fr->result = rc;
        ptrio__awaiter = fr;
        if (l->ncalled)
            ptrio__awaiter = NOBODY;
    }
    if (l->nlazy)
        ptrio__arm_lazy(l);
    if (TSTATE(t) == T_RUNNING)
        lost_step(l, t);
}

/* Runs the tasks ready now, one batch after another while nothing must
 * happen between batches: a batch is what the queue holds when it starts,
 * and a task made ready during it joins the queue behind it, in the next
 * batch. Tasks are taken off the head of the queue one by one, so a task
 * knows it is alone when the queue is empty. Instruments apply from the
 * moment they are added, as in Trio. Called with a task ready. */
static void run_batches(ptrio_loop *l)
{
    uint32_t instrumented = l->ninstruments;
    ptrio_task *t = l->runq, *end = l->runq_tail;

    do {
        l->runq = t->w.next;
        step(l, t, instrumented);
        instrumented = l->ninstruments;     /* the step may add one */
        if (instrumented)
            after_step(l, t);
        if (t == end) {
            if (l->between)
                break;
            end = l->runq_tail;
        }
    } while ((t = l->runq));
    l->current = NULL;
}

/* A scope expired in the same pass as sleeps already woken: those inside
 * it fail with its cancellation (they were queued by this pass, in the
 * run queue from `from` on, with a sleep's status 0 still unread). */
static NOINLINE void expired_together(ptrio_loop *l, ptrio_task *from)
{
    ptrio_task *t;

    for (t = from ? from->w.next : l->runq; t; t = t->w.next)
        if (t->frame->result == 0 && ptrio__cancelled(t))
            t->frame->result = -PTRIO_ECANCELED;
}

/* Fires the deadlines that passed. All that expire in one pass expire
 * together, as in Trio (where a sleep is a cancel scope too): a sleep that
 * ends at the same time as a scope around it fails with that scope's
 * cancellation, whichever was armed first. */
static void fire_timers(ptrio_loop *l)
{
    ptrio_task *before;
    int woke = 0;
    ptrio__tnode *n;
    ptrio_time now;

    if (!l->first)
        return;
    before = l->runq ? l->runq_tail : NULL;
    now = ptrio__now(l);
    while ((n = l->first) && ptrio__timer_when(n) <= now) {
        /* A deadline passed: not idle (Trio's idle_primed = None), even
         * if it wakes no task, so cushions and thresholds start again. */
        l->idle_set = 0;
        ptrio__timer_del(l, n);
        if (ptrio__timer_is_scope(n)) {
            ptrio__scope_expired(CONTAINER(n, ptrio_scope, timer));
            if (woke)
                expired_together(l, before);
        } else {
            ptrio__wake(l, CONTAINER(n, ptrio_task, w.timer), 0);
            woke = 1;
        }
    }
}

/* ---- waiting: idle waiters, deadlock, the backend's wait ------------ */

/* wait_all_tasks_blocked's waiters: a list by cushion (their deadline
 * tree key, unused while they wait here), FIFO among equals, threaded
 * through their park links. */
void ptrio__idle_remove(ptrio_loop *l, ptrio_task *t)
{
    if (t->w.park.prev)
        t->w.park.prev->w.park.next = t->w.park.next;
    else
        l->idle = t->w.park.next;
    if (t->w.park.next)
        t->w.park.next->w.park.prev = t->w.park.prev;
    BETWEEN_DEL(l);
}

static ptrio_time cushion_of(const ptrio_task *t)
{
    return ptrio__timer_when(&t->w.timer);
}

int ptrio_wait_all_tasks_blocked(void *self, ptrio_time cushion)
{
    ptrio_loop *l = ptrio__loop;
    ptrio_task *t, *p, *prev = NULL;
    int rc = ptrio__await_check(self, &t);

    if (rc < 0)
        return rc;
    if (cushion < 0)
        return -PTRIO_EINVAL;
    if (ptrio__cancelled(t))
        return -PTRIO_ECANCELED;
    for (p = l->idle; p && cushion_of(p) <= cushion; p = p->w.park.next)
        prev = p;
    ptrio__timer_set_when(&t->w.timer, cushion);
    t->w.park.prev = prev;
    t->w.park.next = p;
    if (p)
        p->w.park.prev = t;
    if (prev)
        prev->w.park.next = t;
    else
        l->idle = t;
    BETWEEN_ADD(l);
    l->wait_full = wait_full;
    t->frame->result = 0;
    ptrio__park(t, W_IDLE);
    return PTRIO_PENDING;
}

/* Wakes the idle waiters with the smallest cushion. */
static void wake_idle(ptrio_loop *l)
{
    ptrio_time c = cushion_of(l->idle);
    ptrio_task *t;

    while ((t = l->idle) && cushion_of(t) == c) {
        ptrio__idle_remove(l, t);
        ptrio__wake(l, t, 0);
    }
}

int ptrio_loop_use_clock(ptrio_loop *loop, ptrio_clock *clock)
{
    if (!loop || (clock && (!clock->now || !clock->sleep_time)))
        return -PTRIO_EINVAL;
    if (loop->running)
        return -PTRIO_EBUSY;
    loop->clock = clock;
    if (clock)
        loop->wait_full = wait_full;
    return 0;
}

/* Whether nothing can ever make a task ready again, none being ready: no
 * deadline can come, no fd, source or idle waiter is there. Then every
 * task waits forever: a deadlock. between counts deadlines, fd waits,
 * sources and idle waiters, and instruments, which wake nothing (relative
 * deadlines are all armed between steps). */
static int nothing_can_wake(const ptrio_loop *l)
{
    return l->between == l->ninstruments;
}

/* The same on a loop with its own clock, which may never reach the
 * deadlines left by itself. */
static ptrio_time autojump_of(const ptrio_clock *c);

static int clock_cannot_wake(ptrio_loop *l)
{
    return nothing_can_wake(l) ||
           (l->clock && autojump_of(l->clock) == PTRIO_TIME_INF && l->first &&
            !l->nwatch && !l->sources && !l->idle &&
            l->clock->sleep_time(l->clock, ptrio__timer_when(l->first)) ==
                PTRIO_TIME_INF);
}

/* Reported once, with the task tree: where each task waits, and on what
 * (error.c, linked with a sink). */
static void deadlocked(ptrio_loop *l)
{
    if (!l->fatal && l->report && l->reporter)
        l->reporter->deadlock(l);
}

/* What the wait did besides waiting: its timeout was an idle cushion or
 * the clock's autojump, to act on if it passed with nothing to run. */
enum { PRIMED_NONE, PRIMED_IDLE, PRIMED_AUTOJUMP };

/* A backend with no wake is a simulation (the virtual clock): time only
 * moves when it waits, so real-time cushions have always passed. */
#define SIMULATED(l) (!(l)->backend->wake)

/* wait_step's result when it polled the sources after its wait itself. */
#define SOURCES_POLLED 1

/* What follows a backend's wait that failed, or on an instrumented loop:
 * out of line, so that a wait returning 0 costs one test on the way from
 * an interrupt to its task. */
static NOINLINE int waited(ptrio_loop *l, int rc)
{
    if (rc == -PTRIO_EDEADLK)
        deadlocked(l);      /* the virtual backend cannot wait for a source */
    if (l->ninstruments)
        ptrio__instr_run(l, I_AFTER_WAIT);
    return rc;
}

/* The backend's wait until `deadline`, between the instruments' hooks;
 * `simulated`: no time passes (a primed wait on the virtual backend), the
 * hooks alone run. Inline: the plain wait is on the way from an
 * interrupt's source to its task. */
static ALWAYS_INLINE int backend_wait(ptrio_loop *l, ptrio_time deadline,
                                      int simulated)
{
    int rc;

    if (l->ninstruments)
        ptrio__instr_wait(l, deadline);
    rc = simulated ? 0 : l->backend->wait(l, deadline);
    return rc != 0 || l->ninstruments ? waited(l, rc) : 0;
}

/* What is left of a cushion or threshold `c` after `idle` of it. */
static ptrio_time left_of(ptrio_time c, ptrio_time idle)
{
    return c == PTRIO_TIME_INF ? c : c > idle ? c - idle : 0;
}

/* The clock's autojump threshold; a clock without jump_to never jumps. */
static ptrio_time autojump_of(const ptrio_clock *c)
{
    return c->jump_to ? c->autojump : PTRIO_TIME_INF;
}

/* wait_step with nothing ready (the sources polled) on a loop with a
 * clock of its own or idle waiters: until the next deadline, an idle
 * cushion or an autojump. Cushions and thresholds count from the moment
 * no task ran any more (idle_from), so a wait that returns early with
 * nothing to run (a wake, EINTR, a source with nothing for a task) waits
 * out the rest: only the backend's clock reaching the primed deadline
 * lets them act. */
static int wait_full(ptrio_loop *l)
{
    ptrio_time deadline, next, now, sleep, idle, left;
    int rc, primed = PRIMED_NONE;

    if (clock_cannot_wake(l)) {
        deadlocked(l);
        return -PTRIO_EDEADLK;
    }
    next = l->first ? ptrio__timer_when(l->first) : PTRIO_TIME_INF;
    deadline = next;
    if (l->clock || l->idle) {
        now = l->backend->now(l);
        if (!l->idle_set) {
            l->idle_from = now;
            l->idle_set = 1;
        }
        idle = now - l->idle_from;
        sleep = l->clock ? l->clock->sleep_time(l->clock, next)
              : next == PTRIO_TIME_INF ? PTRIO_TIME_INF
              : next > now ? next - now : 0;
        if (l->idle) {
            left = left_of(cushion_of(l->idle), idle);
            if (left < sleep) {
                sleep = left;
                primed = PRIMED_IDLE;
            }
        } else if (next != PTRIO_TIME_INF && l->clock) {
            /* Trio never autojumps while a task waits for idle; nor
             * here with no deadline to jump to (Trio spins then) */
            left = left_of(autojump_of(l->clock), idle);
            if (left < sleep) {
                sleep = left;
                primed = PRIMED_AUTOJUMP;
            }
        }
        if (primed && SIMULATED(l))
            sleep = 0;          /* no real time passes there */
        deadline = sleep == PTRIO_TIME_INF ? PTRIO_TIME_INF
                                           : ptrio__add_time(now, sleep);
    }
    rc = backend_wait(l, deadline, primed && SIMULATED(l));
    /* A deadline passed meanwhile (a coarse timer overshoots) is news:
     * nothing was idle, and there is nothing to jump to (Trio's
     * idle_primed = None when deadlines expire). */
    if (rc == 0 && primed && next != PTRIO_TIME_INF && next <= ptrio__now(l))
        primed = PRIMED_NONE;
    /* Woken before the cushion or threshold passed: the next wait waits
     * out the rest (Trio restarts it on the wake's event instead). */
    if (rc == 0 && primed && !SIMULATED(l) && l->backend->now(l) < deadline)
        primed = PRIMED_NONE;
    if (rc == 0 && primed && !l->runq) {
        if (l->sources)
            poll_sources(l);
        if (!l->runq) {
            if (primed == PRIMED_IDLE)
                wake_idle(l);
            else if (next != PTRIO_TIME_INF)
                l->clock->jump_to(l->clock, next);
        }
        return SOURCES_POLLED;
    }
    return rc;
}

/* The backend's wait until the next deadline; only polls fds (without
 * blocking) when tasks are ready. Returns 0, SOURCES_POLLED, or the
 * backend's error. */
static int wait_step(ptrio_loop *l)
{
    ptrio_time deadline = PTRIO_TIME_NINF;

    if (l->runq) {
        if (!l->nwatch)
            return 0;
    } else {
        if (l->sources) {
            /* what a source holds may ready a task: waiting first would
             * sleep past it (and jump a virtual clock) */
            poll_sources(l);
            if (l->runq)
                return SOURCES_POLLED;
        }
        INVARIANT(l->wait_full || (!l->clock && !l->idle),
                  "a clock or an idle waiter without the wait that serves it");
        if (l->wait_full)
            return l->wait_full(l);
        if (nothing_can_wake(l)) {
            deadlocked(l);
            return -PTRIO_EDEADLK;
        }
        deadline = l->first ? ptrio__timer_when(l->first) : PTRIO_TIME_INF;
    }
    return backend_wait(l, deadline, 0);
}

/* The backend failed (or every task waits forever: -EDEADLK): the first
 * time, everything is cancelled as the run's own cancellation; if tasks
 * still block after that (shielded cleanup that waits again), every wait
 * is aborted, shields or not: a run always ends with every task joined,
 * never with tasks left inside. When nothing at all can wake a task any
 * more (no deadline, fd or source: the virtual backend reports -EDEADLK
 * with sources too), an abort hook that refuses would keep the run
 * spinning for ever: it is overruled. */
static void backend_failed(ptrio_loop *l, int rc)
{
    if (!l->fatal) {
        l->fatal = rc;
        ptrio__cancel_why(&l->system.scope, PTRIO_CANCEL_RUN, l);
    } else {
        ptrio__abort_all(l, rc == -PTRIO_EDEADLK && nothing_can_wake(l)
                                ? TEARDOWN_FORCE : TEARDOWN_SHIELDS);
    }
}

/* Runs while any task is alive, as libuv's loop runs while anything is. */
static void run_until_done(ptrio_loop *l)
{
    int rc;

    while (l->ntasks) {
        if (l->runq) {
            l->idle_set = 0;        /* a task runs: not idle */
            run_batches(l);
            if (!l->ntasks)
                break;
        }
        rc = wait_step(l);
        if (rc < 0)
            backend_failed(l, rc);
        if (rc != SOURCES_POLLED && l->sources)
            poll_sources(l);
        fire_timers(l);
    }
}

/* What a run leaves must be nothing: the next run starts clean. */
static void run_ended(ptrio_loop *l)
{
    INVARIANT(!l->runq && !l->timers && !l->nlazy && !l->nwatch,
              "a run ended with a task queued, a deadline or an fd wait");
    drop_sources(l);
    INVARIANT(l->between == l->ninstruments, "loop->between miscounted");
    l->lot_owners = NULL;
    l->system.state = N_IDLE;
    ptrio__scope_closed(&l->system.scope);
}

/* The run's result: main's status, or the backend's failure. A deadlock
 * (or backend failure) found while a real failure was on its way out
 * returns that failure: it is what the program needs to know. */
static int run_result(ptrio_loop *l)
{
    int rc = l->main.w.done.code;

    if (l->fatal) {
        /* a deadlock was reported already */
        if (l->fatal != -PTRIO_EDEADLK && l->report && l->reporter)
            l->reporter->backend_failed(l);
        if (rc >= 0 || rc == -PTRIO_ECANCELED)
            return l->fatal;
    }
    if (rc < 0 && l->reporter)
        l->reporter->failure(l, &l->main);
    return rc;
}

int ptrio_loop_run_named(ptrio_loop *loop, ptrio_fn fn, void *frame,
                         const char *name)
{
    ptrio_frame *fr = frame;
    ptrio_nursery *sys;
    int rc;

    if (!loop || !fn || !frame)
        return -PTRIO_EINVAL;
    if (loop->running || ptrio__loop || loop->ntasks) {
        MISUSE("running a loop that runs, or still holds tasks");
        return -PTRIO_EBUSY;
    }
    if (!loop->backend)
        return -PTRIO_ENOBACKEND;
    if (fr->resume > PTRIO__DONE) {
        MISUSE("running a frame that is still running");
        return -PTRIO_EBUSY;
    }
    if (loop->backend->open && (rc = loop->backend->open(loop)) < 0)
        return rc;
    loop->running = 1;
    loop->fatal = 0;
    loop->teardown = 0;
    loop->idle_set = 0;
    loop->lot_owners = NULL;
    ptrio__loop = loop;
    ptrio__awaiter = NOBODY;
    if (loop->clock && loop->clock->start)
        loop->clock->start(loop->clock);

    /* The system nursery: an open nursery with no owner task. */
    sys = &loop->system;
    memset(sys, 0, sizeof *sys);
    sys->state = N_OPEN;
    sys->scope.flags = PTRIO__SCOPE_OPEN | PTRIO__SCOPE_NURSERY;
    loop->ncalled = 0;
    memset(&loop->main, 0, sizeof loop->main);
    if (loop->ninstruments)
        ptrio__instr_run(loop, I_BEFORE_RUN);
    rc = ptrio_start_soon_named(sys, &loop->main, fn, fr, name);
    if (rc == 0) {
        run_until_done(loop);
        rc = run_result(loop);
    }
    if (loop->ninstruments)
        ptrio__instr_run(loop, I_AFTER_RUN);
    run_ended(loop);
    ptrio__loop = NULL;
    loop->running = 0;
    if (loop->backend->close)
        loop->backend->close(loop);
    return rc;
}

int ptrio_run_named(ptrio_fn fn, void *frame, const char *name)
{
    ptrio_loop loop;
    (void)ptrio_loop_init(&loop);          /* a new loop: never refused */
    return ptrio_loop_run_named(&loop, fn, frame, name);
}

void ptrio__at(const char *file, int line)
{
    ptrio_loop *l = ptrio__loop;
    if (l) {
        l->where_file = file;
        l->where_line = line;
    }
}

/* ---- calls, checkpoints, sleep ------------------------------------- */

/* Runs the first step of `sub` at once, in the caller's step. */
int ptrio_call(void *self, void *sub, ptrio_fn fn)
{
    ptrio_task *t;
    ptrio_frame *s = sub;
    int rc = ptrio__await_check(self, &t);

    if (rc < 0)
        return rc;
    if (!sub || !fn)
        return -PTRIO_EINVAL;
    if (s->resume > PTRIO__DONE || sub == self) {
        MISUSE("ptrio_call on a frame that is still running");
        return -PTRIO_EBUSY;
    }
    ptrio__frame_init(s, fn, self);
    t->frame = s;
    /* An origin still armed was dropped (a step by hand ignoring a
     * sub-call's failure): it is not this call's to hand on. */
    t->state &= (uint8_t)~T_ARMED;
    if (ptrio__awaiter == self)
        ptrio__awaiter = s;
    do {                            /* again while frame_ended re-enters */
        if ((rc = fn(s)) == PTRIO_PENDING)
            return rc;
        if (!ENDED_CLEANLY(s, rc))
            rc = frame_ended(ptrio__loop, t, s, rc);
    } while (rc == PTRIO_PENDING);
    t->frame = self;
    permit(ptrio__loop, t);
    return rc;
}

/* Queues the running task behind the ready ones. `wait` W_YIELD makes it
 * a cancel point: a cancellation while queued becomes its status. */
static int yield(ptrio_task *t, int wait)
{
    t->frame->result = 0;
    ptrio__ready(ptrio__loop, t);
    t->wait = (uint8_t)wait;
    return PTRIO_PENDING;
}

/* Validation failures and cancelled scopes: out of the hot path. */
static NOINLINE int checkpoint_slow(void *self)
{
    ptrio_task *t;
    int rc = ptrio__await_check(self, &t);

    if (rc < 0)
        return rc;
    if (ptrio__cancelled(t))
        return -PTRIO_ECANCELED;
    return yield(t, W_YIELD);
}

/* The hot path of every CPU-bound loop: one compare says that `self` may
 * await, that its task waits on nothing and that no scope is cancelled;
 * the scheduler then queues the task (step). */
int ptrio_checkpoint(void *self)
{
    if (self != ptrio__awaiter)
        return checkpoint_slow(self);
    ((ptrio_frame *)self)->result = 0;
    ptrio__awaiter = YIELDED;
    return PTRIO_PENDING;
}

static NOINLINE int yield_slow(void *self)
{
    ptrio_task *t;
    int rc = ptrio__await_check(self, &t);
    return rc < 0 ? rc : yield(t, W_NONE);
}

/* The second half of every blocking operation that did not need to block
 * (checkpoint_if_cancelled, the work, then this): queued here, not by the
 * scheduler's fast checkpoint, because that one is a cancel point. */
int ptrio_yield(void *self)
{
    ptrio_loop *l;

    if (self != ptrio__awaiter)
        return yield_slow(self);
    l = ptrio__loop;
    return ptrio__done_yield(l, l->current, 0);
}

static NOINLINE int if_cancelled_slow(void *self)
{
    ptrio_task *t;
    int rc = ptrio__await_check(self, &t);

    if (rc < 0)
        return rc;
    return ptrio__cancelled(t) ? -PTRIO_ECANCELED : 0;
}

/* The first half of every blocking operation: `self` the fast paths'
 * awaiter means that no scope of its task is cancelled. */
int ptrio_checkpoint_if_cancelled(void *self)
{
    return self == ptrio__awaiter ? 0 : if_cancelled_slow(self);
}

/* The one rule for "now + d", for sleeps, timeouts and relative scope
 * deadlines: d < 0 is -PTRIO_EINVAL, PTRIO_TIME_INF means none, beyond
 * 2^62 is -PTRIO_EOVERFLOW; otherwise the sum saturates (it cannot wrap,
 * whatever the clock reads, negative included), so a finite duration
 * always gives a finite deadline. */
int ptrio__after(ptrio_time now, ptrio_time d, ptrio_time *out)
{
    if (d < 0)
        return -PTRIO_EINVAL;
    if (d == PTRIO_TIME_INF) {
        *out = PTRIO_TIME_INF;
        return 0;
    }
    if (d > TIME_HUGE)
        return -PTRIO_EOVERFLOW;
    *out = ptrio__add_time(now, d);
    return 0;
}

ptrio_time ptrio__add_time(ptrio_time now, ptrio_time d)
{
    return now > PTRIO_TIME_INF - 1 - d ? PTRIO_TIME_INF - 1 : now + d;
}

/* Parks `t` until `deadline`; a deadline already passed at `now` makes it
 * a checkpoint. */
static int sleep_task(ptrio_loop *l, ptrio_task *t, ptrio_time deadline,
                      ptrio_time now)
{
    if (ptrio__cancelled(t))
        return -PTRIO_ECANCELED;
    if (deadline == PTRIO_TIME_INF) {
        ptrio__park(t, W_FOREVER);
        return PTRIO_PENDING;
    }
    if (deadline <= now)
        return yield(t, W_YIELD);
    ptrio__timer_add(l, &t->w.timer, deadline, 0);
    ptrio__park(t, W_TIMER);
    return PTRIO_PENDING;
}

int ptrio_sleep_until(void *self, ptrio_time deadline)
{
    ptrio_loop *l = ptrio__loop;
    ptrio_task *t;
    int rc = ptrio__await_check(self, &t);

    if (rc < 0)
        return rc;
    return sleep_task(l, t, deadline, ptrio__now(l));
}

static NOINLINE int sleep_slow(void *self, ptrio_time d)
{
    ptrio_loop *l = ptrio__loop;
    ptrio_time now, deadline;
    ptrio_task *t;
    int rc = ptrio__await_check(self, &t);

    if (rc < 0)
        return rc;
    now = ptrio__now(l);
    if ((rc = ptrio__after(now, d, &deadline)) < 0)
        return rc;
    return sleep_task(l, t, deadline, now);
}

/* The fast path: a task that may await (so it is not cancelled) sleeps
 * for a duration in (0, 2^62]. */
int ptrio_sleep(void *self, ptrio_time d)
{
    ptrio_loop *l;
    ptrio_task *t;

    if (self != ptrio__awaiter || (uint64_t)d - 1 >= (uint64_t)TIME_HUGE)
        return sleep_slow(self, d);
    l = ptrio__loop;
    t = l->current;
    ptrio__timer_add(l, &t->w.timer, ptrio__add_time(ptrio__now(l), d), 0);
    ptrio__park(t, W_TIMER);
    return PTRIO_PENDING;
}

int ptrio_sleep_forever(void *self)
{
    return ptrio_sleep_until(self, PTRIO_TIME_INF);
}
