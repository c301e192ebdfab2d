/* src/core/tree.c: walking the task tree in O(1) memory.
 *
 * The tree: the loop's system nursery holds the main task. A task holds
 * its outermost open scope; a scope holds the task's next scope inside it,
 * then (for the innermost) the child the task is starting with ptrio_start,
 * then, for a nursery, its children. Nurseries are scopes with children.
 * The walk is pre-order and keeps no stack: every node finds its parent
 * and its next sibling from the links the scheduler keeps anyway (O(depth
 * of one task's scopes) a step), so the dump and the reports use bounded
 * stack however deep the program nests.
 */
#include "internal.h"

/* The child `t` is starting, if it waits in ptrio_start. */
static ptrio_task *starting_child(const ptrio_task *t)
{
    return TSTATE(t) == T_PARKED && t->wait == W_START ? t->w.start.child
                                                        : NULL;
}

/* The innermost scope `t` opened, or NULL. */
static ptrio_scope *innermost(const ptrio_task *t)
{
    return t->scope && t->scope->task == t ? t->scope : NULL;
}

/* Its outermost, or NULL. */
static ptrio_scope *outermost(const ptrio_task *t)
{
    ptrio_scope *s, *found = NULL;

    for (s = t->scope; s && s->task == t; s = s->parent)
        found = s;
    return found;
}

/* The scope of `t` just inside `outer`, or NULL. */
static ptrio_scope *inside(const ptrio_task *t, const ptrio_scope *outer)
{
    ptrio_scope *s, *prev = NULL;

    for (s = t->scope; s && s != outer; s = s->parent)
        prev = s;
    return s ? prev : NULL;
}

/* The scope holding `s` in the tree: the same task's next scope out, or
 * NULL when `s` is its task's outermost. */
static ptrio_scope *outside(const ptrio_scope *s)
{
    return s->parent && s->parent->task == s->task ? s->parent : NULL;
}

static ptrio_task *first_child(const ptrio_scope *s)
{
    return (s->flags & PTRIO__SCOPE_NURSERY) ? NURSERY_OF(s)->children
                                             : NULL;
}

/* The tree node holding task `c`: its starter's innermost scope (or the
 * starter) while being started, else its nursery's scope. */
static void parent_of_task(const ptrio_task *c, ptrio__node *w)
{
    if (c->state & T_STARTING) {
        ptrio_task *st = c->n.starting.starter;
        w->scope = innermost(st);
        w->task = w->scope ? NULL : st;
    } else {
        w->scope = (ptrio_scope *)ptrio__home(c);
        w->task = NULL;
    }
}

static int set(ptrio__node *w, ptrio_task *t, ptrio_scope *s)
{
    if (!t && !s)
        return 0;
    w->task = t;
    w->scope = s;
    return 1;
}

static int down(ptrio__node *w)
{
    ptrio_task *t = w->task, *c;
    ptrio_scope *s = w->scope;
    int ok;

    if (t) {
        s = outermost(t);
        ok = s ? set(w, NULL, s) : set(w, starting_child(t), NULL);
    } else {
        ptrio_scope *in = s->task ? inside(s->task, s) : NULL;
        if (in)
            ok = set(w, NULL, in);
        else if (s->task && s == innermost(s->task) &&
                 (c = starting_child(s->task)))
            ok = set(w, c, NULL);
        else
            ok = set(w, first_child(s), NULL);
    }
    w->depth += ok;
    return ok;
}

/* The children of a scope come in order: its task's next scope in, the
 * child being started (under the innermost), the nursery's children. A
 * task's one child is its outermost scope, or the child it starts. */
static int right(ptrio__node *w)
{
    ptrio_task *c = w->task;
    ptrio__node up;

    if (c && (c->state & T_STARTING)) {
        parent_of_task(c, &up);
        return up.scope && set(w, first_child(up.scope), NULL);
    }
    if (c) {
        const ptrio_scope *home = ptrio__home(c);
        ptrio_task *next = c->n.sib.next;
        return home && next != first_child(home) && set(w, next, NULL);
    }
    /* A scope held by its task's next scope out: the nursery children of
     * that one come next. Held by its task: nothing. */
    up.scope = w->scope->task ? outside(w->scope) : NULL;
    return up.scope && set(w, first_child(up.scope), NULL);
}

static int up(ptrio__node *w)
{
    ptrio_scope *s;

    if (w->task) {
        parent_of_task(w->task, w);
    } else if (!w->scope->task) {
        return 0;                   /* the system nursery: the root */
    } else if ((s = outside(w->scope))) {
        w->scope = s;
    } else {
        w->task = w->scope->task;
        w->scope = NULL;
    }
    w->depth--;
    return 1;
}

void ptrio__walk_first(ptrio_loop *l, ptrio__node *w)
{
    w->scope = &l->system.scope;
    w->task = NULL;
    w->depth = 0;
}

int ptrio__walk_next(ptrio__node *w)
{
    if (down(w))
        return 1;
    while (!right(w))
        if (!up(w))
            return 0;
    return 1;
}

int ptrio_tree_first(ptrio_tree_node *node)
{
    ptrio_loop *l = ptrio__loop;

    if (!node)
        return -PTRIO_EINVAL;
    if (!l || !l->running)
        return -PTRIO_ENOTASK;
    node->task = NULL;
    node->scope = &l->system.scope;
    node->depth = 0;
    return 0;
}

int ptrio_tree_next(ptrio_tree_node *node)
{
    ptrio__node w;
    int more;

    if (!node || (!node->task && !node->scope))
        return 0;
    w.task = (ptrio_task *)node->task;
    w.scope = (ptrio_scope *)node->scope;
    w.depth = node->depth;
    more = ptrio__walk_next(&w);
    node->task = more ? w.task : NULL;
    node->scope = more ? w.scope : NULL;
    node->depth = w.depth;
    return more;
}

int ptrio_task_info_get(const ptrio_task *t, ptrio_task_info *out)
{
    if (!t || !out)
        return -PTRIO_EINVAL;
    memset(out, 0, sizeof *out);
    out->name = ptrio_task_name(t);
    out->state = ptrio__state_name(t);
    out->wakes_at = PTRIO_TIME_INF;
    if (TSTATE(t) == T_PARKED && t->wait == W_TIMER)
        out->wakes_at = ptrio__timer_when(&t->w.timer);
    if (TSTATE(t) == T_PARKED && t->wait == W_LOT)
        out->waits_on = (const void *)((uintptr_t)t->w.park.on.lot &
                                       ~(uintptr_t)3);
    out->being_started = (t->state & T_STARTING) &&
                         TSTATE(t) != T_DONE;
    if (ptrio__loop && TSTATE(t) != T_DONE && TSTATE(t) != T_IDLE)
        out->cancelled = ptrio__task_cancel_source(t, &out->cancel) == 0;
    return 0;
}

const ptrio_frame *ptrio_task_frames(const ptrio_task *t,
                                     const ptrio_frame *prev,
                                     ptrio_frame_info *out)
{
    const ptrio_frame *fr;

    if (!t || TSTATE(t) == T_DONE || TSTATE(t) == T_IDLE)
        return NULL;
    fr = prev ? CALLER_OF(prev) : t->frame;
    if (!fr)
        return NULL;
    if (out)
        ptrio__frame_where(fr, out);
    return fr;
}

int ptrio_scope_info_get(const ptrio_scope *sc, ptrio_scope_info *out)
{
    if (!sc || !out)
        return -PTRIO_EINVAL;
    memset(out, 0, sizeof *out);
    if (sc->flags & PTRIO__SCOPE_NURSERY) {
        const ptrio_nursery *n = NURSERY_OF(sc);
        out->nursery = n;
        out->file = n->site.file;
        out->line = n->site.line;
        out->live = n->live;
    }
    /* a closed scope's frame may be gone: only an open one says */
    if ((sc->flags & PTRIO__SCOPE_OPEN) && sc->frame) {
        ptrio_frame_info fi;
        (void)ptrio__frame_where(sc->frame, &fi);
        out->func = fi.func;
    }
    out->deadline = PTRIO_TIME_INF;
    if (sc->flags & PTRIO__SCOPE_DEADLINE) {
        ptrio_time d = ptrio__timer_when(&sc->timer);
        if (sc->flags & PTRIO__SCOPE_LAZY)          /* not armed: no change */
            d = ptrio__add_time(ptrio__loop ? ptrio__loop->last_now : 0, d);
        else if (sc->flags & PTRIO__SCOPE_RELATIVE)
            d = ptrio__relative_when(sc);
        out->deadline = d;
    }
    out->shield = (sc->flags & PTRIO__SCOPE_SHIELD) != 0;
    out->cancel_called = (sc->flags & PTRIO__SCOPE_CALLED) != 0;
    if (out->cancel_called)
        ptrio__fill_source(sc, NULL, &out->cancel);
    return 0;
}
