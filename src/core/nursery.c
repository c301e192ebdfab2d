/* src/core/nursery.c: nurseries, starting tasks, and collecting failures.
 *
 * A nursery is a cancel scope, a circular list of running children, and a
 * list of failed children threaded through the finished tasks themselves.
 * Its block's close step records the body's error, waits until no child
 * runs (nor is being started), then raises: nothing, the one failure as
 * itself, or -PTRIO_EGROUP whose members are walked in error.c. An
 * -ECANCELED that ended the body or a child is not a failure: the nursery's
 * own scope absorbs it when it was the one cancelled, otherwise one
 * -ECANCELED goes on to the scope that was.
 */
#include "internal.h"

static void link_child(ptrio_nursery *n, ptrio_task *t)
{
    ptrio_task *head = n->children;
    if (!head) {
        t->n.sib.next = t->n.sib.prev = t;
        n->children = t;
        return;
    }
    t->n.sib.next = head;
    t->n.sib.prev = head->n.sib.prev;
    head->n.sib.prev->n.sib.next = t;
    head->n.sib.prev = t;
}

static void unlink_child(ptrio_nursery *n, ptrio_task *t)
{
    if (t->n.sib.next == t) {
        n->children = NULL;
    } else {
        t->n.sib.prev->n.sib.next = t->n.sib.next;
        t->n.sib.next->n.sib.prev = t->n.sib.prev;
        if (n->children == t)
            n->children = t->n.sib.next;
    }
}

/* Whether start_soon may add a child: Trio closes a nursery to new
 * arrivals once its body is done and nothing runs in it. */
static int accepting(const ptrio_nursery *n)
{
    int st = n->state & N_STATE;
    return st == N_OPEN || (st == N_CLOSING && n->live);
}

static void wake_owner_if_joined(ptrio_nursery *n)
{
    ptrio_task *owner = n->scope.task;
    if (!n->live && owner && TSTATE(owner) == T_PARKED &&
        owner->wait == W_JOIN && owner->scope == &n->scope) {
        owner->wait = W_NONE;
        ptrio__ready(ptrio__loop, owner);   /* close re-runs: no result */
    }
}

/* Moves a task that ptrio_start ran under its starter into the target
 * nursery, under the nursery's scope: its own scopes (the outermost of
 * them) hang there instead of under the starter's, whatever the starter's
 * innermost scope is by now (a start whose PTRIO_PENDING was dropped is
 * undone after the scope it began in has closed). */
static void move_into(ptrio_nursery *n, ptrio_task *t)
{
    ptrio_scope *s, *outer = NULL;

    for (s = t->scope; s && s->task == t; s = s->parent)
        outer = s;
    if (outer)
        outer->parent = &n->scope;
    else
        t->scope = &n->scope;
    t->state &= (uint8_t)~T_STARTING;
    link_child(n, t);
}

/* Prepares task and frame; checks what start_soon and start share. */
static int prepare(ptrio_nursery *n, ptrio_task *t, ptrio_fn fn,
                   ptrio_frame *fr, const char *name)
{
    ptrio_loop *l = ptrio__loop;

    if (!n || !t || !fn || !fr)
        return -PTRIO_EINVAL;
    if (!l)
        return -PTRIO_ENOTASK;
    if (!accepting(n)) {
        MISUSE("starting a task in a closed nursery");
        return -PTRIO_ECLOSED;
    }
    /* READY, RUNNING and PARKED have one of the low bits; IDLE and DONE
     * have neither (a done task still listed in a failed nursery is
     * busy: its record is in use). */
    if ((t->state & (T_STATE_LIVE | T_LISTED)) || fr->resume > PTRIO__DONE) {
        MISUSE("starting a task or frame that is still running");
        return -PTRIO_EBUSY;
    }
    t->frame = fr;
    t->name = name;
    t->state = T_READY;
    t->wait = W_NONE;
    ptrio__frame_init(fr, fn, ROOT_OF(t));
    n->live++;
    l->ntasks++;
    return 0;
}

/* The task prepared joins the run queue (never the running one). */
static NOINLINE void spawned_instrumented(ptrio_loop *l, ptrio_task *t)
{
    ptrio__instr_task(l, I_SPAWNED, t);  /* spawned, then scheduled: Trio */
    ptrio__enqueue(l, t);
}

static void spawned(ptrio_loop *l, ptrio_task *t)
{
    if (l->ninstruments)
        spawned_instrumented(l, t);
    else
        ptrio__enqueue_quiet(l, t);
}

int ptrio_start_soon_named(ptrio_nursery *n, ptrio_task *t, ptrio_fn fn,
                           void *frame, const char *name)
{
    int rc = prepare(n, t, fn, frame, name);
    if (rc < 0)
        return rc;
    t->scope = &n->scope;
    link_child(n, t);
    spawned(ptrio__loop, t);
    return 0;
}

int ptrio_start_named(void *self, ptrio_nursery *n, ptrio_task *t,
                      ptrio_fn fn, void *frame, void **value,
                      const char *name)
{
    ptrio_task *st;
    int rc = ptrio__await_check(self, &st);

    if (rc < 0)
        return rc;
    if (t == st)
        return -PTRIO_EBUSY;
    rc = prepare(n, t, fn, frame, name);
    if (rc < 0)
        return rc;
    /* Until started(), the child runs under the starter's scopes. */
    t->scope = st->scope;
    t->state = T_READY | T_STARTING;
    t->n.starting.starter = st;
    t->n.starting.target = n;
    spawned(ptrio__loop, t);
    st->w.start.child = t;
    st->w.start.value = value;
    ptrio__park(st, W_START);
    return PTRIO_PENDING;
}

int ptrio_started(void *self, void *value)
{
    ptrio_task *t = ptrio__self(self), *st;
    ptrio_nursery *n;

    if (!t)
        return -PTRIO_ENOTASK;
    if (t->state & T_STARTED) {
        MISUSE("ptrio_started called twice");
        return -PTRIO_EMISUSE;
    }
    if (!(t->state & T_STARTING))
        return 0;
    t->state |= T_STARTED;
    st = t->n.starting.starter;
    n = t->n.starting.target;
    if (st->w.start.value)
        *st->w.start.value = value;
    /* Trio: if the starter is cancelled, the child stays where it is and
     * its cancellation ends the start; it is not moved into the nursery. */
    if (ptrio__chain_cancelled(st, st->scope))
        return 0;
    move_into(n, t);
    ptrio__wake(ptrio__loop, st, 0);
    /* Moved into a cancelled nursery: its parked descendants learn now. */
    if (ptrio__chain_cancelled(n->scope.task, &n->scope))
        ptrio__deliver_task(t, &n->scope);
    return 0;
}

const ptrio_site ptrio__enostart_site = {
    NULL, 0, "child exited without calling ptrio_started"
};

/* The child of a ptrio_start finished before it was moved. */
static void start_finished(ptrio_loop *l, ptrio_task *t, int rc)
{
    ptrio_task *st = t->n.starting.starter;
    ptrio_nursery *n = t->n.starting.target;

    n->live--;
    wake_owner_if_joined(n);
    /* Trio runs the child in a hidden nursery under the starter, which a
     * Cancelled ending the child cancels (_add_exc): with no cancellation
     * visible to the starter, that hidden scope catches it, and the start
     * goes on as if the child had returned. Before started(), Trio decides
     * that when the starter resumes: so does ptrio (step, loop.c). */
    if (rc == -PTRIO_ECANCELED && !(t->state & T_STARTED)) {
        /* -ENOSTART, the hidden scope's catch, unless the starter sees a
         * cancellation as it resumes (W_START_CANCELLED: loop.c, step) */
        ptrio__note_origin(st, -PTRIO_ENOSTART, &ptrio__enostart_site);
        ptrio__wake(l, st, -PTRIO_ENOSTART);
        st->wait = W_START_CANCELLED;
        return;
    }
    if (rc == -PTRIO_ECANCELED && !ptrio__chain_cancelled(st, st->scope))
        rc = 0;
    if (rc < 0) {
        ptrio__absorbed_moved(st->scope, t->origin, OMAKE(t, O_TASK));
        ptrio__note_origin(st, rc, OMAKE(t, O_TASK));
        ptrio__wake(l, st, rc);
    } else if (t->state & T_STARTED) {
        /* started() in a cancelled starter moved nothing; the child then
         * returned without a checkpoint: the start succeeds, as in Trio
         * (test_nursery_start: started_with_no_checkpoint). */
        ptrio__wake(l, st, 0);
    } else {
        ptrio__note_origin(st, -PTRIO_ENOSTART, &ptrio__enostart_site);
        ptrio__wake(l, st, -PTRIO_ENOSTART);
    }
}

/* The starter's frame ended while its start was pending (ptrio_start's
 * PTRIO_PENDING dropped, misuse): the child can no longer report to it,
 * so it becomes the nursery's child at once, as if started. */
void ptrio__start_undone(ptrio_task *st)
{
    ptrio_task *t = st->w.start.child;
    ptrio_nursery *n = t->n.starting.target;

    move_into(n, t);            /* its started() then does nothing */
}

/* A task finished with an error, while being started, with lots to break
 * or instruments to call: everything task_finished does. */
static NOINLINE void task_finished_slow(ptrio_loop *l, ptrio_task *t, int rc)
{
    ptrio_nursery *n;

    if (t->state & T_CANCELLED) {
        /* ptrio_task_cancel's cancellation ends here, at the task, unless
         * a cancellation from outside it reached it too (its starter's
         * included: the walk starts in the task's own, empty, region). */
        t->state &= (uint8_t)~T_CANCELLED;
        l->ncalled--;
        if (rc == -PTRIO_ECANCELED &&
            !ptrio__chain_cancelled(t, ptrio__home(t))) {
            t->state &= (uint8_t)~T_ARMED;
            rc = 0;
        }
    }
    if (rc < 0 && !((t->state & T_ARMED) && t->err == ERR_TAG(rc)))
        ptrio__note_origin(t, rc, NULL);    /* e.g. a C `return -E;` */
    TSET(t, T_DONE);
    t->w.done.next = NULL;
    t->w.done.code = rc;
    if (l->lot_owners)
        ptrio__lot_task_exited(l, t);
    if (l->ninstruments)
        ptrio__instr_exited(l, t, rc);
    if (t->state & T_STARTING) {
        start_finished(l, t, rc);
        return;
    }
    n = NURSERY_OF(t->scope);
    unlink_child(n, t);
    if (rc == -PTRIO_ECANCELED) {
        /* Trio's _add_exc: whatever ends a child, Cancelled included,
         * cancels the nursery. */
        n->state |= N_CANCELLED;
        ptrio__cancel_why(&n->scope, PTRIO_CANCEL_FAILURE, OMAKE(t, O_TASK));
    } else if (rc < 0) {
        if (n->failed_tail)
            n->failed_tail->w.done.next = t;
        else
            n->failed = t;
        n->failed_tail = t;
        t->state |= T_LISTED;
        ptrio__cancel_why(&n->scope, PTRIO_CANCEL_FAILURE, OMAKE(t, O_TASK));
    }
    n->live--;
    wake_owner_if_joined(n);
}

void ptrio__task_finished(ptrio_loop *l, ptrio_task *t, int rc)
{
    ptrio_nursery *n;

    INVARIANT(TSTATE(t) != T_DONE && TSTATE(t) != T_IDLE,
              "a task exiting twice");
    l->ntasks--;
    if (rc < 0 || (t->state & (T_STARTING | T_CANCELLED)) || l->lot_owners ||
        l->ninstruments) {
        task_finished_slow(l, t, rc);
        return;
    }
    TSET(t, T_DONE);
    t->w.done.code = rc;
    n = NURSERY_OF(t->scope);
    unlink_child(n, t);
    if (!--n->live)
        wake_owner_if_joined(n);
}

int ptrio__nursery_open(ptrio_frame *fr, ptrio_nursery *n, uintptr_t exit,
                        const char *file, int line)
{
    ptrio_task *t;
    int rc = ptrio__await_check(fr, &t);  /* its close may wait */

    if (rc < 0)
        return rc;
    if (!n)
        return -PTRIO_EINVAL;
    if (n->state & N_STATE) {
        MISUSE("opening a nursery that is already open");
        return -PTRIO_EBUSY;
    }
    if (n->scope.flags & PTRIO__SCOPE_OPEN) {
        /* Its scope is open as a block: clearing it would unlink it. */
        MISUSE("opening a nursery whose scope is open as a cancel scope");
        return -PTRIO_EBUSY;
    }
    memset(n, 0, sizeof *n);
    ptrio__loop->nursery_close = ptrio__nursery_close;  /* for strays */
    n->state = N_OPEN;
    n->site.file = file;
    n->site.line = line;
    ptrio__scope_push(t, fr, &n->scope, exit, PTRIO__SCOPE_NURSERY);
    return 0;
}

static int count_failures(const ptrio_nursery *n)
{
    const ptrio_task *c;
    int k = n->body_err < 0;
    for (c = n->failed; c; c = c->w.done.next)
        k++;
    return k;
}

/* Whether `origin` is that of a failure the nursery collected: its
 * body's or a child's. */
static int collected(const ptrio_nursery *n, const void *origin)
{
    const ptrio_task *c;

    if (n->body_err < 0 && n->body_origin == origin)
        return 1;
    for (c = n->failed; c; c = c->w.done.next)
        if (c->origin == origin)
            return 1;
    return 0;
}

/* The nursery's own scope closes: a failure it collected, from its body
 * or inside a child's, may carry cancellations absorbed further in for
 * this scope, which catches them now unless a cancellation outside it
 * has become visible since (scope.c, ptrio__absorbed_leave). Marks for
 * scopes further out now travel with what the nursery raises (`origin`),
 * as Trio's group holds the group it came in. */
static void absorbed_arrive(ptrio_nursery *n, const void *origin)
{
    ptrio_scope *sc = &n->scope;

    if ((sc->flags & PTRIO__SCOPE_ABSORBED) && origin &&
        (sc->absorbed == ABSORBED_ANY(sc) || collected(n, sc->absorbed)))
        ptrio__absorbed_leave(sc, origin);      /* never marks sc itself */
    sc->flags &= ~(uint32_t)PTRIO__SCOPE_ABSORBED;
    if (!origin)
        return;
    for (sc = sc->parent; sc; sc = sc->parent)
        if ((sc->flags & PTRIO__SCOPE_ABSORBED) && collected(n, sc->absorbed))
            sc->absorbed = origin;
}

/* The body ended: record its error (first pass), join, then decide what
 * to raise. Never a cancel point, as in current Trio: with no child it is
 * a cancel-shielded schedule point; with children the owner waits until
 * they are done, and an outer cancellation reaches them through the scope
 * tree, not through the owner's wait. */
int ptrio__nursery_close(ptrio_frame *fr, ptrio_nursery *n)
{
    ptrio_task *t = ptrio__loop ? ptrio__loop->current : NULL, *c;
    const void *origin = NULL;
    int rc, k;

    (void)fr;
    if (!t || t->scope != &n->scope) {
        MISUSE("closing a nursery that is not the innermost block");
        return -PTRIO_EMISUSE;
    }
    if ((n->state & N_STATE) == N_OPEN) {
        n->state = (uint8_t)((n->state & ~N_STATE) | N_CLOSING);
        rc = n->scope.pending;
        /* An awaitable's PTRIO_PENDING dropped just before the end of
         * the body: the join must not wait on top of that wait. */
        if (DROPPED_WAIT(ptrio__loop, t, "a nursery block ends while "
                         "its task waits (an awaitable called "
                         "without PTRIO_AWAIT?)") &&
            (rc >= 0 || IS_MARKER(rc))) {
            rc = -PTRIO_EMISUSE;
            ptrio__note_origin(t, rc, &ptrio__dropped_site);
        }
        if (rc == -PTRIO_ECANCELED) {
            n->state |= N_CANCELLED;
            ptrio__cancel_why(&n->scope, PTRIO_CANCEL_FAILURE,
                              OMAKE(n, O_GROUP));
        } else if (rc < 0 && !IS_MARKER(rc)) {
            n->body_err = rc;
            n->body_origin = ptrio__take_origin(t, rc, NULL);
            ptrio__cancel_why(&n->scope, PTRIO_CANCEL_FAILURE,
                              OMAKE(n, O_GROUP));
        }
        t->state &= (uint8_t)~T_ARMED;
        if (!n->live) {
            /* fr->result may hold PTRIO_RETURN's value: untouched */
            ptrio__ready(ptrio__loop, t);
            t->wait = W_NONE;
            return PTRIO_PENDING;
        }
    }
    if (n->live) {
        ptrio__park(t, W_JOIN);
        return PTRIO_PENDING;
    }

    /* Joined. The failure records stay readable; the tasks are free. */
    INVARIANT(!n->children, "a nursery closing with live children");
    for (c = n->failed; c; c = c->w.done.next)
        c->state &= (uint8_t)~T_LISTED;
    t->scope = n->scope.parent;
    ptrio__scope_closed(&n->scope);
    n->state = (uint8_t)(n->state & ~N_STATE);
    k = count_failures(n);
    rc = 0;                         /* k == 0: what it raises comes below */
    if (k > 1) {
        rc = -PTRIO_EGROUP;
        origin = OMAKE(n, O_GROUP);
    } else if (n->body_err < 0) {
        rc = n->body_err;
        origin = n->body_origin;
    } else if (k) {
        rc = n->failed->w.done.code;
        origin = OMAKE(n->failed, O_TASK);
    }
    absorbed_arrive(n, origin);
    if (k == 0) {
        if (!(n->state & N_CANCELLED))
            return n->scope.pending;    /* 0, or PTRIO_RETURN unwinding */
        if (ptrio__scope_catches(&n->scope)) {
            n->scope.flags |= PTRIO__SCOPE_CAUGHT;
            return IS_MARKER(n->scope.pending) ? n->scope.pending : 0;
        }
        return -PTRIO_ECANCELED;
    }
    /* The cancellations it absorbed travel with its failure (Trio: in
     * its group) to the scope that catches them. */
    if (n->state & N_CANCELLED)
        ptrio__absorbed_leave(&n->scope, origin);
    ptrio__note_origin(t, rc, origin);
    return rc;
}

void ptrio_nursery_cancel(ptrio_nursery *n)
{
    if (n)
        ptrio_cancel(&n->scope);
}

ptrio_scope *ptrio_nursery_scope(ptrio_nursery *n)
{
    return n ? &n->scope : NULL;
}

unsigned ptrio_nursery_live(const ptrio_nursery *n)
{
    return n ? n->live : 0;
}
