/* src/core/timer.c: the deadline tree.
 *
 * An intrusive red-black tree keyed by deadline; equal deadlines go right,
 * so in-order is deadline order and, among equals, insertion order: timers
 * armed for the same instant fire in the order they were armed, which a
 * binary heap would not guarantee. Insert and removal are O(log n) worst
 * case, the earliest node is cached. Nodes live in tasks and scopes: no
 * allocation, no capacity. The parent word also holds the colour bit and a
 * bit telling scope nodes from task nodes. PTRIO_CONF_TIMER_LIST builds a
 * sorted list instead, in the same order (below).
 */
#include "internal.h"

#define RED   1u
#define SCOPE 2u

typedef ptrio__tnode node;

static uint64_t key(const node *n)
{
    return ((uint64_t)n->key_hi << 32) | n->key_lo;
}

#if PTRIO_CONF_TIMER_LIST
/* The small variant (configure --enable-timer-list): the same order in a
 * sorted list, child[0] the previous node and child[1] the next, the
 * earliest node l->first and the latest l->timers. An insert searches
 * from the latest node, O(n) (a new deadline is often the latest); a
 * removal is O(1). A fraction of the tree's code, for parts with few
 * deadlines at once. */
void ptrio__timer_add(ptrio_loop *l, node *z, ptrio_time when, int is_scope)
{
    node *p = l->timers;
    uint64_t k;

    ptrio__timer_set_when(z, when);
    BETWEEN_ADD(l);
    k = key(z);
    while (p && key(p) > k)     /* equal keys stay behind: insertion order */
        p = p->child[0];
    z->parent = is_scope ? SCOPE : 0u;
    z->child[0] = p;
    z->child[1] = p ? p->child[1] : l->first;
    if (z->child[1])
        z->child[1]->child[0] = z;
    else
        l->timers = z;
    if (p)
        p->child[1] = z;
    else
        l->first = z;
}

void ptrio__timer_del(ptrio_loop *l, node *z)
{
    BETWEEN_DEL(l);
    if (z->child[0])
        z->child[0]->child[1] = z->child[1];
    else
        l->first = z->child[1];
    if (z->child[1])
        z->child[1]->child[0] = z->child[0];
    else
        l->timers = z->child[0];
    z->child[0] = z->child[1] = NULL;
}
#else

static node *parent_of(const node *n)
{
    return (node *)(n->parent & ~(uintptr_t)3);
}

static void set_parent(node *n, node *p)
{
    n->parent = (uintptr_t)p | (n->parent & 3u);
}

static int is_red(const node *n) { return n && (n->parent & RED); }
static void set_red(node *n) { n->parent |= RED; }
static void set_black(node *n) { n->parent &= ~(uintptr_t)RED; }

/* Puts `c` where `old` hung below `p` (or at the root). */
static void replace_child(ptrio_loop *l, node *p, node *old, node *c)
{
    if (!p)
        l->timers = c;
    else
        p->child[p->child[1] == old] = c;
}

/* Rotates `x` down towards side `dir`; its other child takes its place.
 * Indexing children by side lets one path serve both mirror cases. */
static void rotate(ptrio_loop *l, node *x, int dir)
{
    node *y = x->child[!dir], *p = parent_of(x);
    x->child[!dir] = y->child[dir];
    if (y->child[dir])
        set_parent(y->child[dir], x);
    set_parent(y, p);
    replace_child(l, p, x, y);
    y->child[dir] = x;
    set_parent(x, y);
}

static void insert_fixup(ptrio_loop *l, node *z)
{
    node *p, *g, *u;
    int dir;

    while ((p = parent_of(z)) && is_red(p)) {
        g = parent_of(p);
        dir = p == g->child[1];
        u = g->child[!dir];
        if (is_red(u)) {
            set_black(p), set_black(u), set_red(g);
            z = g;
            continue;
        }
        if (z == p->child[!dir]) {
            rotate(l, p, dir);
            z = p;
            p = parent_of(z);
        }
        set_black(p), set_red(g);
        rotate(l, g, !dir);
    }
    set_black(l->timers);
}

void ptrio__timer_add(ptrio_loop *l, node *z, ptrio_time when, int is_scope)
{
    node *y = NULL, *x = l->timers;
    uint64_t k;
    int leftmost = 1, right = 0;

    ptrio__timer_set_when(z, when);
    BETWEEN_ADD(l);
    k = key(z);
    while (x) {
        y = x;
        right = k >= key(x);    /* equal keys go right: insertion order */
        leftmost &= !right;
        x = x->child[right];
    }
    z->child[0] = z->child[1] = NULL;
    z->parent = (uintptr_t)y | RED | (is_scope ? SCOPE : 0u);
    if (!y)
        l->timers = z;
    else
        y->child[right] = z;
    if (leftmost)
        l->first = z;
    insert_fixup(l, z);
}

static node *next_of(const node *n)
{
    node *p;
    if (n->child[1]) {
        n = n->child[1];
        while (n->child[0])
            n = n->child[0];
        return (node *)n;
    }
    while ((p = parent_of(n)) && n == p->child[1])
        n = p;
    return p;
}

/* `x` (maybe NULL) below `xp` lacks one black: restore the balance. */
static void erase_fixup(ptrio_loop *l, node *x, node *xp)
{
    node *w;
    int dir;

    while (x != l->timers && !is_red(x)) {
        dir = x != xp->child[0];
        w = xp->child[!dir];
        if (is_red(w)) {
            set_black(w), set_red(xp);
            rotate(l, xp, dir);
            w = xp->child[!dir];
        }
        if (!is_red(w->child[0]) && !is_red(w->child[1])) {
            set_red(w);
            x = xp;
            xp = parent_of(x);
            continue;
        }
        if (!is_red(w->child[!dir])) {
            set_black(w->child[dir]), set_red(w);
            rotate(l, w, !dir);
            w = xp->child[!dir];
        }
        w->parent = (w->parent & ~(uintptr_t)RED) | (xp->parent & RED);
        set_black(xp), set_black(w->child[!dir]);
        rotate(l, xp, dir);
        x = l->timers;
    }
    if (x)
        set_black(x);
}

void ptrio__timer_del(ptrio_loop *l, node *z)
{
    node *x, *xp, *y;
    int removed_red = is_red(z);

    BETWEEN_DEL(l);
    if (l->first == z)
        l->first = next_of(z);
    if (!z->child[0] || !z->child[1]) {
        x = z->child[0] ? z->child[0] : z->child[1];
        xp = parent_of(z);
        replace_child(l, xp, z, x);
        if (x)
            set_parent(x, xp);
    } else {
        y = z->child[1];        /* z's successor takes its place */
        while (y->child[0])
            y = y->child[0];
        removed_red = is_red(y);
        x = y->child[1];
        if (parent_of(y) == z) {
            xp = y;
        } else {
            xp = parent_of(y);
            xp->child[0] = x;
            if (x)
                set_parent(x, xp);
            y->child[1] = z->child[1];
            set_parent(y->child[1], y);
        }
        replace_child(l, parent_of(z), z, y);
        set_parent(y, parent_of(z));
        y->child[0] = z->child[0];
        set_parent(y->child[0], y);
        y->parent = (y->parent & ~(uintptr_t)RED) | (z->parent & RED);
    }
    if (!removed_red)
        erase_fixup(l, x, xp);
    z->child[0] = z->child[1] = NULL;
    z->parent &= SCOPE;
}
#endif /* PTRIO_CONF_TIMER_LIST */
