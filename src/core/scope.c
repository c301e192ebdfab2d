/* src/core/scope.c: cancel scopes, deadlines, shields and the delivery of
 * cancellation.
 *
 * Scopes form a tree through `parent`: a task's scopes are a stack, and a
 * child task's outermost scope hangs under its nursery's scope. A task is
 * cancelled when a scope on its path to the root is cancelled with no
 * shield in between; that is computed when it reaches a checkpoint.
 * Cancelling a scope also wakes, at once, every task parked inside it:
 * the scope's owner, and the children of the nurseries opened inside it,
 * recursively, stopping at shields. The walk visits each affected task
 * once: O(tasks inside).
 */
#include "internal.h"

/* The scope `t` runs in when none of its own is open: its nursery's, or
 * its starter's while ptrio_start runs it. */
const ptrio_scope *ptrio__home(const ptrio_task *t)
{
    const ptrio_scope *s = t->scope;

    while (s && s->task == t)
        s = s->parent;
    return s;
}

/* The task cancelled by ptrio_task_cancel that a walk up the scopes
 * meets as it leaves the region of task `t` for scope `next`. Before
 * started(), a child runs under its starter, whose region is empty when
 * the starter has no scope of its own open: the starter's cancellation
 * reaches the child all the same (and so on up a chain of starts). */
static const ptrio_task *leaving(const ptrio_task *t, const ptrio_scope *next)
{
    for (; t; t = t->n.starting.starter) {
        if (t->state & T_CANCELLED)
            return t;
        if (!(t->state & T_STARTING) ||
            (next && next->task == t->n.starting.starter))
            return NULL;
    }
    return NULL;
}

/* The scope whose cancellation reaches code at `sc`, in the region of
 * task `owner` (the task whose scopes come first on the way up): the
 * first cancelled scope on the way to the root with no shield before it.
 * A task cancelled by ptrio_task_cancel counts where the walk leaves its
 * region, so shields inside the task hold against it: then NULL, with
 * *task set to it. */
static const ptrio_scope *source_of(const ptrio_task *owner,
                                    const ptrio_scope *sc,
                                    const ptrio_task **task)
{
    *task = NULL;
    for (; sc; sc = sc->parent) {
        if (sc->task != owner) {
            *task = leaving(owner, sc);
            if (*task)
                return NULL;
            owner = sc->task;
        }
        if (sc->flags & PTRIO__SCOPE_CALLED)
            return sc;
        if (sc->flags & PTRIO__SCOPE_SHIELD)
            return NULL;
    }
    *task = leaving(owner, NULL);
    return NULL;
}

/* Whether code at scope `sc`, in the region of task `owner`, is
 * cancelled (see source_of). */
int ptrio__chain_cancelled(const ptrio_task *owner, const ptrio_scope *sc)
{
    const ptrio_task *task;

    return source_of(owner, sc, &task) || task;
}

/* Checkpoints ask this all the time; while no open scope is cancelled
 * (the usual case) the answer needs no walk. */
int ptrio__cancelled(const ptrio_task *t)
{
    return ptrio__loop->ncalled && ptrio__chain_cancelled(t, t->scope);
}

/* A scope leaves the tree of open scopes, and its deadline the deadline
 * tree: nothing of a closed scope stays linked into the loop. */
void ptrio__scope_closed(ptrio_scope *sc)
{
    ptrio__drop_timer(sc);
    if ((sc->flags & (PTRIO__SCOPE_OPEN | PTRIO__SCOPE_CALLED)) ==
        (PTRIO__SCOPE_OPEN | PTRIO__SCOPE_CALLED))
        ptrio__loop->ncalled--;
    sc->flags &= (uint32_t)~PTRIO__SCOPE_OPEN;
}

/* Whether a frame of `t` holds a failure whose origin is `o` pending in
 * its FINALLY: a failure with that origin caught now is another one (the
 * same frame storage failed again), not that one. */
static int held_in_finally(const ptrio_task *t, const void *o)
{
    const ptrio_frame *fr;

    for (fr = t->frame; fr; fr = CALLER_OF(fr))
        if (ptrio__frame_failing(fr) && fr->origin == o)
            return 1;
    return 0;
}

/* A failure caught by task `t` (PTRIO_TRY, PTRIO_TRY_BLOCK), whose origin
 * is `o`, no longer carries anything anywhere. */
void ptrio__absorbed_caught(const ptrio_task *t, const ptrio_scope *from,
                            const void *o)
{
    if (o && ptrio__loop && ptrio__loop->ncalled && !held_in_finally(t, o))
        ptrio__absorbed_moved(from, o, NULL);
}

/* A failure that carries cancellations absorbed for a scope
 * (ptrio__absorbed_leave, below) is known there by its origin, kept
 * current as the failure travels: its origin changed from `was` to `now`
 * (it left a frame, a child's start, a nursery's group), or it stopped
 * (`now` NULL: caught, or replaced in a FINALLY), and the marks from
 * `from` up follow.
 * Only identities are compared, never followed: storage the failure came
 * through may hold something else by now. A mark lives on a cancelled
 * open scope: with none, there is none to look for. */
void ptrio__absorbed_moved(const ptrio_scope *from, const void *was,
                           const void *now)
{
    ptrio_scope *sc;

    if (!was || !ptrio__loop || !ptrio__loop->ncalled)
        return;
    for (sc = (ptrio_scope *)from; sc; sc = sc->parent) {
        if (!(sc->flags & PTRIO__SCOPE_ABSORBED) || sc->absorbed != was)
            continue;
        if (now)
            sc->absorbed = now;
        else
            sc->flags &= ~(uint32_t)PTRIO__SCOPE_ABSORBED;
    }
}

/* A failure whose origin is `origin` carries cancellations that a
 * nursery absorbed, and leaves scope `sc` (closing). In Trio they travel
 * with it, in a group, to the scope that splits them out: the first one
 * from `sc` up that catches a cancellation now (the outermost cancelled
 * scope visible; ptrio__scope_catches), before any shield. `sc` itself
 * has caught them at once; a scope further out is marked, and catches
 * them if that failure gets there (not if it is caught or replaced on the
 * way). */
void ptrio__absorbed_leave(ptrio_scope *sc, const void *origin)
{
    ptrio_scope *s;

    for (s = sc; s; s = s->parent) {
        if (ptrio__scope_catches(s)) {
            if (s == sc) {
                s->flags |= PTRIO__SCOPE_CAUGHT;
            } else if ((s->flags & PTRIO__SCOPE_ABSORBED) &&
                       s->absorbed != origin) {
                /* Marked for another failure too: one mark cannot tell
                 * which arrives, so whichever does counts (ABSORBED_ANY,
                 * which no catch clears). */
                s->absorbed = ABSORBED_ANY(s);
            } else {
                s->flags |= PTRIO__SCOPE_ABSORBED;
                s->absorbed = origin;
            }
            return;
        }
        if (s->flags & PTRIO__SCOPE_SHIELD)
            return;
    }
}

/* The scope closes with `rc`, which task `t` raised to its close. If it
 * is the failure that a nursery inside raised with cancellations it
 * absorbed for this scope, the scope catches them, unless a cancellation
 * outside it became visible meanwhile: then they go on out. */
static void absorbed_arrives(const ptrio_task *t, ptrio_scope *sc, int rc)
{
    if ((sc->flags & PTRIO__SCOPE_ABSORBED) && rc < 0 && !IS_MARKER(rc) &&
        (t->state & T_ARMED) && t->err == ERR_TAG(rc) &&
        (t->origin == sc->absorbed || sc->absorbed == ABSORBED_ANY(sc)))
        ptrio__absorbed_leave(sc, t->origin);   /* never marks sc itself */
    sc->flags &= ~(uint32_t)PTRIO__SCOPE_ABSORBED;
}

/* Trio's rule: a cancelled scope catches the -ECANCELED at its end only
 * when no cancellation outside it is visible; otherwise the outermost
 * cancelled scope catches it. */
int ptrio__scope_catches(const ptrio_scope *sc)
{
    return (sc->flags & PTRIO__SCOPE_CALLED) &&
           ((sc->flags & PTRIO__SCOPE_SHIELD) ||
            !ptrio__chain_cancelled(sc->task, sc->parent));
}

/* Ends the wait of a parked task with -ECANCELED, as its wait allows: the
 * core's own waits here, every primitive's through its lot or hook
 * (lot.c). */
static void abort_parked(ptrio_loop *l, ptrio_task *t)
{
    switch (t->wait) {
    case W_TIMER:
        ptrio__timer_del(l, &t->w.timer);
        ptrio__wake(l, t, -PTRIO_ECANCELED);
        break;
    case W_IDLE:
        ptrio__idle_remove(l, t);
        ptrio__wake(l, t, -PTRIO_ECANCELED);
        break;
    case W_FOREVER:
        ptrio__wake(l, t, -PTRIO_ECANCELED);
        break;
    case W_LOT:
    case W_HOOK:
        ptrio__abort_wait(l, t);
        break;
    case W_JOIN:
        break;      /* keeps waiting: the children get the cancellation */
    case W_START:
        /* The child still runs under the starter: it gets the cancel. */
        ptrio__deliver_task(t->w.start.child, t->scope);
        break;
    default:
        break;
    }
}

/* A cancellation reached `t`: a parked task's wait ends. (A task queued
 * by a checkpoint learns it when it resumes: step.) */
static void abort_task(ptrio_task *t)
{
    if (TSTATE(t) == T_PARKED)
        abort_parked(ptrio__loop, t);
}

static void deliver_children(ptrio_nursery *n)
{
    ptrio_task *c = n->children;
    if (!c)
        return;
    do {
        ptrio__deliver_task(c, &n->scope);
        c = c->n.sib.next;
    } while (c != n->children);
}

/* Delivers a cancellation of `top` (or of a scope above it) to task `t`,
 * whose scope path reaches `top`: to the children of the nurseries `t`
 * opened below `top` and to `t` itself, except under a shield. */
void ptrio__deliver_task(ptrio_task *t, ptrio_scope *top)
{
    ptrio_scope *s, *from = t->scope;

    for (s = t->scope; s && s != top; s = s->parent)
        if ((s->flags & PTRIO__SCOPE_SHIELD) && !ptrio__loop->teardown)
            from = s->parent;
    for (s = from; s && s != top; s = s->parent)
        if (s->flags & PTRIO__SCOPE_NURSERY)
            deliver_children(NURSERY_OF(s));
    if (from == t->scope)
        abort_task(t);
}

static void deliver(ptrio_scope *sc)
{
    if (sc->flags & PTRIO__SCOPE_NURSERY)
        deliver_children(NURSERY_OF(sc));
    if (sc->task)
        ptrio__deliver_task(sc->task, sc);
}

/* The run's last resort, after its cancellation left tasks blocked with
 * nothing that can wake them: every wait ends with -ECANCELED, shields
 * or not. The walk is a cancellation's delivery, through every shield.
 * `level` TEARDOWN_FORCE: nothing at all can wake a task any more, so an
 * abort hook that refuses is overruled (lot.c, ptrio__abort_wait). */
void ptrio__abort_all(ptrio_loop *l, uint8_t level)
{
    l->teardown = level;
    deliver(&l->system.scope);
    l->teardown = 0;
}

/* ---- lazy relative deadlines --------------------------------------
 *
 * A relative deadline (MOVE_ON_AFTER, FAIL_AFTER) is armed when its task
 * first suspends inside the block, not at entry: a block that never blocks
 * costs no clock read and no tree insertion. Deadlines only fire between
 * batches, so the only difference is that the deadline counts from the
 * first suspension: never earlier than asked, later by the CPU time the
 * step spent before its first checkpoint. Until armed, the scope holds the
 * duration as its key and the loop counts such scopes; they all belong to
 * the running task (the end of its step arms them), so arming walks its
 * scope stack. A loop with a clock of the program's own
 * (ptrio_loop_use_clock, which can jump inside a step) arms at entry.
 */

/* `sc` stops waiting to be armed: LAZY gives way to `now` (TIMER,
 * RELATIVE or nothing), and the loop counts one lazy deadline less. */
static void lazy_forget(ptrio_loop *l, ptrio_scope *sc, uint32_t now)
{
    sc->flags = (sc->flags & ~(uint32_t)PTRIO__SCOPE_LAZY) | now;
    l->nlazy--;
    BETWEEN_DEL(l);
}

void ptrio__arm_lazy(ptrio_loop *l)
{
    ptrio_task *t = l->current;
    ptrio_time now;
    ptrio_scope *sc;

    if (!t)
        return;
    now = ptrio__now(l);
    for (sc = t->scope; sc && sc->task == t && l->nlazy; sc = sc->parent) {
        if (!(sc->flags & PTRIO__SCOPE_LAZY))
            continue;
        lazy_forget(l, sc, PTRIO__SCOPE_TIMER);
        ptrio__timer_add(l, &sc->timer,
                         ptrio__add_time(now, ptrio__timer_when(&sc->timer)),
                         1);
    }
}

/* A relative deadline dropped before it was armed (its block ended or
 * was cancelled before its first suspension) counts from the clock's last
 * reading: what the clock read when the block began, on the virtual clock
 * exactly; no clock read, so leaving a non-blocking block stays cheap.
 * The base waits in the node's child links (unused off the tree) until
 * ptrio_scope_deadline adds it. */
static void lazy_dropped(ptrio_loop *l, ptrio_scope *sc)
{
    lazy_forget(l, sc, PTRIO__SCOPE_RELATIVE);
    memcpy(sc->timer.child, &l->last_now, sizeof l->last_now);
}

/* The deadline of a scope whose relative deadline ended unarmed
 * (lazy_dropped): its base plus its duration. */
ptrio_time ptrio__relative_when(const ptrio_scope *sc)
{
    ptrio_time base;

    memcpy(&base, sc->timer.child, sizeof base);
    return ptrio__add_time(base, ptrio__timer_when(&sc->timer));
}

/* The same deadline, made absolute. */
static void relative_to_absolute(ptrio_scope *sc)
{
    ptrio_time when = ptrio__relative_when(sc);

    sc->flags &= (uint32_t)~PTRIO__SCOPE_RELATIVE;
    ptrio__timer_set_when(&sc->timer, when);
}

void ptrio__drop_timer(ptrio_scope *sc)
{
    if (sc->flags & PTRIO__SCOPE_LAZY) {
        lazy_dropped(ptrio__loop, sc);
    } else if (sc->flags & PTRIO__SCOPE_TIMER) {
        ptrio__timer_del(ptrio__loop, &sc->timer);
        sc->flags &= (uint32_t)~PTRIO__SCOPE_TIMER;
    }
}

static unsigned why_kind(const ptrio_scope *sc)
{
    return (sc->flags & PTRIO__SCOPE_WHY) >> PTRIO__SCOPE_WHY_SHIFT;
}

static void set_why(ptrio_scope *sc, unsigned kind, const void *why)
{
    sc->flags = (uint32_t)((sc->flags & ~PTRIO__SCOPE_WHY) |
                           (kind << PTRIO__SCOPE_WHY_SHIFT));
    sc->why = why;
}

/* An open scope belongs to the loop running on its thread: changed from
 * a thread with no loop (a worker, a signal handler's raiser thread), it
 * would race the loop's own writes and lose the change. Refused there. */
static int off_loop(const ptrio_scope *sc)
{
    if (!(sc->flags & PTRIO__SCOPE_OPEN) || ptrio__loop)
        return 0;
    MISUSE("changing an open scope off its loop's thread (wake the loop "
           "and change it from one of its tasks)");
    return 1;
}

/* Cancels `sc` for a reason: the first one stays. A scope cancelled
 * inside a region already cancelled takes that region's reason, as Trio's
 * inner scopes inherit theirs: the cancellation its tasks see came first
 * from there. */
void ptrio__cancel_why(ptrio_scope *sc, unsigned kind, const void *why)
{
    const ptrio_scope *from;
    const ptrio_task *task;

    if (!sc || (sc->flags & PTRIO__SCOPE_CALLED) || off_loop(sc))
        return;
    sc->flags |= PTRIO__SCOPE_CALLED;
    set_why(sc, kind, why);
    if (!(sc->flags & PTRIO__SCOPE_OPEN) || !ptrio__loop)
        return;
    ptrio__loop->ncalled++;
    ptrio__awaiter = NOBODY;      /* the fast paths skip cancel checks */
    ptrio__drop_timer(sc);
    /* Already inside a cancelled region: everyone inside was told. */
    if (!(sc->flags & PTRIO__SCOPE_SHIELD)) {
        if ((from = source_of(sc->task, sc->parent, &task))) {
            set_why(sc, why_kind(from), from->why);
            return;
        }
        if (task) {
            set_why(sc, PTRIO_CANCEL_TASK, task);
            return;
        }
    }
    deliver(sc);
}

void ptrio_cancel(ptrio_scope *sc)
{
    ptrio__cancel_why(sc, PTRIO_CANCEL_EXPLICIT, NULL);
}

void ptrio_cancel_reason(ptrio_scope *sc, const char *reason)
{
    ptrio__cancel_why(sc, PTRIO_CANCEL_EXPLICIT, reason);
}

int ptrio_task_cancel(ptrio_task *t)
{
    ptrio_loop *l = ptrio__loop;
    const ptrio_scope *home;

    if (!l)
        return -PTRIO_ENOTASK;
    if (!t || !(t->state & T_STATE_LIVE))
        return -PTRIO_EINVAL;
    if (t->state & T_CANCELLED)
        return 0;
    t->state |= T_CANCELLED;
    l->ncalled++;                   /* until the task exits */
    ptrio__awaiter = NOBODY;
    home = ptrio__home(t);
    if (!ptrio__chain_cancelled(home ? home->task : NULL, home))
        ptrio__deliver_task(t, (ptrio_scope *)home);
    return 0;
}

/* Fills `out` from the scope or task a cancellation comes from. */
void ptrio__fill_source(const ptrio_scope *sc, const ptrio_task *task,
                        ptrio_cancel_info *out)
{
    memset(out, 0, sizeof *out);
    if (!sc) {
        out->kind = PTRIO_CANCEL_TASK;
        out->task = task;
        return;
    }
    out->scope = sc;
    out->kind = (ptrio_cancel_kind)why_kind(sc);
    switch (out->kind) {
    case PTRIO_CANCEL_EXPLICIT:
        out->reason = (const char *)sc->why;
        break;
    case PTRIO_CANCEL_FAILURE:
        ptrio__why_failure(sc->why, &out->failure);
        break;
    case PTRIO_CANCEL_RUN:
        out->failure.code = ptrio__loop ? ptrio__loop->fatal : 0;
        break;
    case PTRIO_CANCEL_TASK:
        out->scope = NULL;
        out->task = (const ptrio_task *)sc->why;
        break;
    default:
        break;
    }
}

int ptrio__task_cancel_source(const ptrio_task *t, ptrio_cancel_info *out)
{
    const ptrio_task *task;
    const ptrio_scope *sc;

    if (!ptrio__loop->ncalled)
        return -PTRIO_EINVAL;
    sc = source_of(t, t->scope, &task);
    if (!sc && !task)
        return -PTRIO_EINVAL;
    ptrio__fill_source(sc, task, out);
    return 0;
}

int ptrio_cancel_source(void *self, ptrio_cancel_info *out)
{
    ptrio_task *t = ptrio__self(self);

    if (!t)
        return -PTRIO_ENOTASK;
    if (!out)
        return -PTRIO_EINVAL;
    return ptrio__task_cancel_source(t, out);
}

void ptrio__scope_expired(ptrio_scope *sc)
{
    sc->flags &= (uint32_t)~PTRIO__SCOPE_TIMER;
    ptrio__cancel_why(sc, PTRIO_CANCEL_DEADLINE, NULL);
}

/* Registers the scope's deadline, or cancels it now if it has passed. */
static void arm(ptrio_scope *sc)
{
    ptrio_loop *l = ptrio__loop;
    ptrio_time when = ptrio__timer_when(&sc->timer);

    ptrio__drop_timer(sc);
    if (!(sc->flags & PTRIO__SCOPE_DEADLINE) ||
        (sc->flags & (PTRIO__SCOPE_CALLED | PTRIO__SCOPE_OPEN)) !=
            PTRIO__SCOPE_OPEN)
        return;
    if (when <= ptrio__now(l)) {
        ptrio__cancel_why(sc, PTRIO_CANCEL_DEADLINE, NULL);
        return;
    }
    ptrio__timer_add(l, &sc->timer, when, 1);
    sc->flags |= PTRIO__SCOPE_TIMER;
}

int ptrio_scope_set_deadline(ptrio_scope *sc, ptrio_time deadline)
{
    if (!sc)
        return -PTRIO_EINVAL;
    if (off_loop(sc))
        return -PTRIO_ENOTASK;
    if (sc->flags & PTRIO__SCOPE_LAZY)
        lazy_forget(ptrio__loop, sc, 0);
    sc->flags &= (uint32_t)~PTRIO__SCOPE_RELATIVE;
    if (deadline == PTRIO_TIME_INF) {
        sc->flags &= (uint32_t)~PTRIO__SCOPE_DEADLINE;
    } else {
        sc->flags |= PTRIO__SCOPE_DEADLINE;
        ptrio__timer_set_when(&sc->timer, deadline);
    }
    if (sc->flags & PTRIO__SCOPE_OPEN)
        arm(sc);
    return 0;
}

int ptrio_scope_set_timeout(ptrio_scope *sc, ptrio_time d)
{
    ptrio_time when;
    int rc = ptrio__after(ptrio_now(), d, &when);
    return rc < 0 ? rc : ptrio_scope_set_deadline(sc, when);
}

ptrio_time ptrio_scope_deadline(const ptrio_scope *sc)
{

    if (!sc || !(sc->flags & PTRIO__SCOPE_DEADLINE))
        return PTRIO_TIME_INF;
    if (sc->flags & PTRIO__SCOPE_LAZY) {
        if (off_loop(sc))
            return PTRIO_TIME_INF;      /* only its loop can arm it */
        ptrio__arm_lazy(ptrio__loop);
    }
    if (sc->flags & PTRIO__SCOPE_RELATIVE)
        relative_to_absolute((ptrio_scope *)sc);    /* not a visible change */
    return ptrio__timer_when(&sc->timer);
}

void ptrio_scope_set_shield(ptrio_scope *sc, bool shield)
{
    if (!sc || off_loop(sc))
        return;
    if (shield) {
        sc->flags |= PTRIO__SCOPE_SHIELD;
        return;
    }
    if (!(sc->flags & PTRIO__SCOPE_SHIELD))
        return;
    sc->flags &= (uint32_t)~PTRIO__SCOPE_SHIELD;
    /* What the shield held back now reaches inside. */
    if ((sc->flags & PTRIO__SCOPE_OPEN) && ptrio__loop &&
        !(sc->flags & PTRIO__SCOPE_CALLED) &&
        ptrio__chain_cancelled(sc->task, sc->parent))
        deliver(sc);
}

bool ptrio_scope_shield(const ptrio_scope *sc)
{
    return sc && (sc->flags & PTRIO__SCOPE_SHIELD);
}

/* An open scope whose deadline the clock has passed is cancelled when
 * its task asks, as in Trio, before the loop's next pass fires it: code
 * that polls cancel_called between checkpoints sees its deadline. */
static NOINLINE void deadline_passed(ptrio_scope *sc)
{
    if (ptrio_scope_deadline(sc) <= ptrio__now(ptrio__loop))
        ptrio__cancel_why(sc, PTRIO_CANCEL_DEADLINE, NULL);
}

bool ptrio_cancel_called(const ptrio_scope *sc)
{
    if (!sc)
        return false;
    /* Only the task that opened it asks its own loop's clock: a scope of
     * another loop (another thread's) must not be cancelled from here. */
    if ((sc->flags & (PTRIO__SCOPE_OPEN | PTRIO__SCOPE_DEADLINE |
                      PTRIO__SCOPE_CALLED)) ==
            (PTRIO__SCOPE_OPEN | PTRIO__SCOPE_DEADLINE) &&
        ptrio__loop && sc->task == ptrio__loop->current)
        deadline_passed((ptrio_scope *)sc);
    return (sc->flags & PTRIO__SCOPE_CALLED) != 0;
}

bool ptrio_cancelled_caught(const ptrio_scope *sc)
{
    return sc && (sc->flags & PTRIO__SCOPE_CAUGHT);
}

int ptrio_scope_error(const ptrio_scope *sc)
{
    return sc && (sc->flags & PTRIO__SCOPE_CATCH) && sc->pending < 0
               ? sc->pending : 0;
}

ptrio_time ptrio_current_effective_deadline(void)
{
    ptrio_task *t = ptrio_current_task();
    ptrio_time best = PTRIO_TIME_INF;
    const ptrio_scope *sc;

    if (!t)
        return best;
    if (ptrio__loop->nlazy)
        ptrio__arm_lazy(ptrio__loop);
    /* Cancelled as its checkpoints see it: a scope, or ptrio_task_cancel
     * of this task or of one it runs under. */
    if (ptrio__cancelled(t))
        return PTRIO_TIME_NINF;
    for (sc = t->scope; sc; sc = sc->parent) {
        if ((sc->flags & PTRIO__SCOPE_DEADLINE) &&
            ptrio__timer_when(&sc->timer) < best)
            best = ptrio__timer_when(&sc->timer);
        if (sc->flags & PTRIO__SCOPE_SHIELD)
            break;
    }
    return best;
}

/* ---- blocks ------------------------------------------------------- */

/* Pushes `sc` on the task's scope stack as the block of frame `fr`. */
void ptrio__scope_push(ptrio_task *t, ptrio_frame *fr, ptrio_scope *sc,
                       uintptr_t exit, unsigned flags)
{
    sc->flags = (uint32_t)(PTRIO__SCOPE_OPEN | PTRIO__SCOPE_BODY | flags);
    sc->parent = t->scope;
    sc->task = t;
    sc->frame = fr;
    sc->exit = exit;
    sc->pending = 0;
    t->scope = sc;
}

/* Why the task `t` cannot open `sc`, or 0. */
static int open_refused(const ptrio_task *t, const ptrio_scope *sc)
{
    if (!t)
        return -PTRIO_ENOTASK;
    if (!sc)
        return -PTRIO_EINVAL;
    if (sc->flags & PTRIO__SCOPE_OPEN) {
        MISUSE("entering a scope that is already open");
        return -PTRIO_EBUSY;
    }
    return 0;
}

static NOINLINE int open_slow(ptrio_frame *fr, ptrio_scope *sc,
                              uintptr_t exit, ptrio_time deadline,
                              unsigned flags)
{
    ptrio_task *t = ptrio__self(fr);
    int rc = open_refused(t, sc);

    if (rc < 0)
        return rc;
    ptrio__scope_push(t, fr, sc, exit, flags);
    if (deadline != PTRIO_TIME_INF) {
        sc->flags |= PTRIO__SCOPE_DEADLINE;
        ptrio__timer_set_when(&sc->timer, deadline);
        arm(sc);
    }
    return 0;
}

/* A scope block without deadline, by a task that may await: no call. */
int ptrio__scope_open(ptrio_frame *fr, ptrio_scope *sc, uintptr_t exit,
                      ptrio_time deadline, unsigned flags)
{
    if (deadline != PTRIO_TIME_INF || fr != ptrio__awaiter || !sc ||
        (sc->flags & PTRIO__SCOPE_OPEN))
        return open_slow(fr, sc, exit, deadline, flags);
    ptrio__scope_push(ptrio__loop->current, fr, sc, exit, flags);
    return 0;
}

/* Enters a lazy relative deadline's block (above). */
static void open_lazy(ptrio_loop *l, ptrio_task *t, ptrio_frame *fr,
                      ptrio_scope *sc, uintptr_t exit, ptrio_time d,
                      unsigned flags)
{
    ptrio__scope_push(t, fr, sc, exit,
                      flags | PTRIO__SCOPE_DEADLINE | PTRIO__SCOPE_LAZY);
    ptrio__timer_set_when(&sc->timer, d);
    l->nlazy++;
    BETWEEN_ADD(l);
}

/* MOVE_ON_AFTER, FAIL_AFTER when the fast path's checks fail: a cancelled
 * region, a duration of 0, PTRIO_TIME_INF or a bad one, bad arguments, a
 * clock of the program's own. */
static NOINLINE int open_after_slow(ptrio_frame *fr, ptrio_scope *sc,
                                    uintptr_t exit, ptrio_time d,
                                    unsigned flags)
{
    ptrio_time unused;
    ptrio_task *t = ptrio__self(fr);
    int rc;

    if (!t)
        return -PTRIO_ENOTASK;
    if ((rc = ptrio__after(0, d, &unused)) < 0)
        return rc;
    if (d == 0 || d == PTRIO_TIME_INF)
        return ptrio__scope_open(fr, sc, exit, d ? d : ptrio_now(), flags);
    /* A clock of the program's own (ptrio_loop_use_clock) may move
     * inside a step, where arming at the first suspension would count
     * from a later time: the deadline is fixed at entry, as in Trio. */
    if (ptrio__loop->clock)
        return ptrio__scope_open(fr, sc, exit,
                                 ptrio__add_time(ptrio_now(), d), flags);
    if ((rc = open_refused(t, sc)) < 0)
        return rc;
    open_lazy(ptrio__loop, t, fr, sc, exit, d, flags);
    return 0;
}

/* MOVE_ON_AFTER, FAIL_AFTER: a duration in (0, 2^62] waits to be armed
 * (lazy, above), except under a clock of the program's own; 0 is a
 * deadline already passed, PTRIO_TIME_INF none, and the rest an error, by
 * the one rule of ptrio__after. The fast path makes no call. */
int ptrio__scope_open_after(ptrio_frame *fr, ptrio_scope *sc,
                            uintptr_t exit, ptrio_time d, unsigned flags)
{
    ptrio_loop *l;

    if ((uint64_t)d - 1 >= (uint64_t)TIME_HUGE || fr != ptrio__awaiter ||
        !sc || (sc->flags & PTRIO__SCOPE_OPEN) || (l = ptrio__loop)->clock)
        return open_after_slow(fr, sc, exit, d, flags);
    open_lazy(l, l->current, fr, sc, exit, d, flags);
    return 0;
}

/* Pops the scope; says what the block raises: the cancellation it
 * caught becomes nothing (or -ETIMEDOUT for fail_after); TRY_BLOCK keeps
 * every other error to itself. */
/* The scope flags that make a close more than a pop. */
#define CLOSE_WORK (PTRIO__SCOPE_CALLED | PTRIO__SCOPE_TIMER | \
                    PTRIO__SCOPE_CATCH | PTRIO__SCOPE_ABSORBED)

/* A close with work: a deadline in the tree, a cancellation, a catch. */
static NOINLINE int close_slow(ptrio_task *t, ptrio_scope *sc, int rc)
{
    ptrio__scope_closed(sc);
    absorbed_arrives(t, sc, rc);
    if (rc == -PTRIO_ECANCELED && ptrio__scope_catches(sc)) {
        sc->flags |= PTRIO__SCOPE_CAUGHT;
        t->state &= (uint8_t)~T_ARMED;
        rc = (sc->flags & PTRIO__SCOPE_FAIL) ? -PTRIO_ETIMEDOUT : 0;
    }
    if ((sc->flags & PTRIO__SCOPE_CATCH) && rc < 0 && !IS_MARKER(rc) &&
        rc != -PTRIO_ECANCELED) {
        /* sc->pending keeps the code for ptrio_scope_error, the closed
         * block's exit word its origin for ptrio_scope_failure. */
        sc->exit = (uintptr_t)ptrio__take_origin(t, rc, NULL);
        ptrio__absorbed_caught(t, sc->parent, (const void *)sc->exit);
        return 0;
    }
    if (sc->flags & PTRIO__SCOPE_CATCH)
        sc->pending = 0;
    return rc;
}

/* The checks of a close, when the fast path's one compare failed. */
static NOINLINE int close_checked(ptrio_frame *fr, ptrio_scope *sc)
{
    ptrio_task *t = ptrio__self(fr);

    if (!t || t->scope != sc) {
        MISUSE("closing a scope that is not the innermost");
        return -PTRIO_EMISUSE;
    }
    t->scope = sc->parent;
    return close_slow(t, sc, sc->pending);
}

int ptrio__scope_close(ptrio_frame *fr, ptrio_scope *sc)
{
    ptrio_task *t;
    unsigned flags = sc->flags;
    int rc = sc->pending;

    if (fr != ptrio__awaiter || (flags & CLOSE_WORK) || rc != 0 ||
        (t = ptrio__loop->current)->scope != sc)
        return close_checked(fr, sc);
    t->scope = sc->parent;
    /* The usual close: nothing caught, nothing armed. */
    if (flags & PTRIO__SCOPE_LAZY)
        lazy_dropped(ptrio__loop, sc);
    sc->flags &= (uint32_t)~PTRIO__SCOPE_OPEN;
    return 0;
}
