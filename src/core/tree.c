/* src/core/tree.c: walking the task tree in O(1) memory.
 *
 * The tree: the loop's system nursery holds the main task; a task holds
 * the nurseries it has open (outermost first) and, while it waits in
 * ptrio_start, the child being started; a nursery holds its children. The
 * walk is pre-order and keeps no stack: every node finds its parent and
 * its next sibling from the links the scheduler keeps anyway, so the dump,
 * the failure report and the run's last-resort abort use bounded stack
 * however deep the program nests.
 */
#include "internal.h"

/* The scope of the nursery `t` runs in, or NULL for a task being started
 * (it runs under its starter's scopes, not in a nursery yet). */
static ptrio_nursery *home_of(const ptrio_task *t)
{
    const ptrio_scope *s = t->scope;

    if (t->state & T_STARTING)
        return NULL;
    while (s && s->task == t)
        s = s->parent;
    return s ? NURSERY_OF(s) : NULL;
}

/* The child `t` is starting, if it waits in ptrio_start. */
static ptrio_task *starting_child(const ptrio_task *t)
{
    return TSTATE(t) == T_PARKED && t->wait == W_START ? t->w.start.child
                                                        : NULL;
}

/* The nursery of `t` just inside `outer` (NULL: the outermost one), or
 * NULL when there is none. */
static ptrio_nursery *nursery_inside(const ptrio_task *t,
                                     const ptrio_nursery *outer)
{
    ptrio_scope *s;
    ptrio_nursery *found = NULL;

    for (s = t->scope; s && s->task == t; s = s->parent) {
        if (outer && s == &outer->scope)
            return found;
        if (s->flags & PTRIO__SCOPE_NURSERY)
            found = NURSERY_OF(s);
    }
    return outer ? NULL : found;
}

static int down(ptrio__node *w)
{
    if (w->nursery) {
        if (!w->nursery->children)
            return 0;
        w->task = w->nursery->children;
        w->nursery = NULL;
    } else {
        ptrio_nursery *n = nursery_inside(w->task, NULL);
        ptrio_task *c = starting_child(w->task);
        if (n) {
            w->nursery = n;
        } else if (c) {
            w->task = c;
        } else {
            return 0;
        }
    }
    w->depth++;
    return 1;
}

static int right(ptrio__node *w)
{
    if (w->nursery) {
        ptrio_task *owner = w->nursery->scope.task;
        ptrio_nursery *n;
        ptrio_task *c;

        if (!owner)
            return 0;
        if ((n = nursery_inside(owner, w->nursery))) {
            w->nursery = n;
            return 1;
        }
        if ((c = starting_child(owner))) {
            w->nursery = NULL;
            w->task = c;
            return 1;
        }
        return 0;
    } else {
        ptrio_nursery *home = home_of(w->task);
        if (!home || w->task->n.sib.next == home->children)
            return 0;
        w->task = w->task->n.sib.next;
        return 1;
    }
}

static int up(ptrio__node *w)
{
    if (w->nursery) {
        if (!w->nursery->scope.task)
            return 0;
        w->task = w->nursery->scope.task;
        w->nursery = NULL;
    } else if (w->task->state & T_STARTING) {
        w->task = w->task->n.starting.starter;
    } else {
        ptrio_nursery *home = home_of(w->task);
        if (!home)
            return 0;
        w->nursery = home;
    }
    w->depth--;
    return 1;
}

void ptrio__walk_first(ptrio_loop *l, ptrio__node *w)
{
    w->nursery = &l->system;
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
