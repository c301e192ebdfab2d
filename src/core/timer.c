/* src/core/timer.c: the deadline tree.
 *
 * An intrusive red-black tree keyed by deadline; equal deadlines go right,
 * so in-order is deadline order and, among equals, insertion order: timers
 * armed for the same instant fire in the order they were armed, which a
 * binary heap would not guarantee. Insert and removal are O(log n) worst
 * case, the earliest node is cached. Nodes live in tasks and scopes: no
 * allocation, no capacity. The parent word also holds the colour bit and a
 * bit telling scope nodes from task nodes.
 */
#include "internal.h"

#define RED   1u
#define SCOPE 2u
#define FLIP  (UINT64_C(1) << 63)   /* int64 -> order-preserving uint64 */

typedef ptrio__tnode node;

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

static uint64_t key(const node *n)
{
    return ((uint64_t)n->key_hi << 32) | n->key_lo;
}

void ptrio__timer_set_when(node *n, ptrio_time when)
{
    uint64_t k = (uint64_t)when ^ FLIP;
    n->key_lo = (uint32_t)k;
    n->key_hi = (uint32_t)(k >> 32);
}

ptrio_time ptrio__timer_when(const node *n)
{
    uint64_t k = key(n) ^ FLIP;
    return k <= (uint64_t)INT64_MAX ? (ptrio_time)k
                                    : -(ptrio_time)(~k) - 1;
}

int ptrio__timer_is_scope(const node *n) { return (n->parent & SCOPE) != 0; }

/* Puts `child` where `old` hung below `p` (or at the root). */
static void replace_child(ptrio_loop *l, node *p, node *old, node *child)
{
    if (!p)
        l->timers = child;
    else if (p->left == old)
        p->left = child;
    else
        p->right = child;
}

static void rotate_left(ptrio_loop *l, node *x)
{
    node *y = x->right, *p = parent_of(x);
    x->right = y->left;
    if (y->left)
        set_parent(y->left, x);
    set_parent(y, p);
    replace_child(l, p, x, y);
    y->left = x;
    set_parent(x, y);
}

static void rotate_right(ptrio_loop *l, node *x)
{
    node *y = x->left, *p = parent_of(x);
    x->left = y->right;
    if (y->right)
        set_parent(y->right, x);
    set_parent(y, p);
    replace_child(l, p, x, y);
    y->right = x;
    set_parent(x, y);
}

static void insert_fixup(ptrio_loop *l, node *z)
{
    node *p, *g, *u;
    while ((p = parent_of(z)) && is_red(p)) {
        g = parent_of(p);
        if (p == g->left) {
            u = g->right;
            if (is_red(u)) {
                set_black(p), set_black(u), set_red(g);
                z = g;
                continue;
            }
            if (z == p->right) {
                rotate_left(l, p);
                z = p;
                p = parent_of(z);
            }
            set_black(p), set_red(g);
            rotate_right(l, g);
        } else {
            u = g->left;
            if (is_red(u)) {
                set_black(p), set_black(u), set_red(g);
                z = g;
                continue;
            }
            if (z == p->left) {
                rotate_right(l, p);
                z = p;
                p = parent_of(z);
            }
            set_black(p), set_red(g);
            rotate_left(l, g);
        }
    }
    set_black(l->timers);
}

void ptrio__timer_add(ptrio_loop *l, node *z, ptrio_time when, int is_scope)
{
    node *y = NULL, *x = l->timers;
    uint64_t k;
    int leftmost = 1;

    ptrio__timer_set_when(z, when);
    k = key(z);
    while (x) {
        y = x;
        if (k < key(x)) {
            x = x->left;
        } else {
            x = x->right;
            leftmost = 0;
        }
    }
    z->left = z->right = NULL;
    z->parent = (uintptr_t)y | RED | (is_scope ? SCOPE : 0u);
    if (!y)
        l->timers = z;
    else if (k < key(y))
        y->left = z;
    else
        y->right = z;
    if (leftmost)
        l->first = z;
    insert_fixup(l, z);
}

static node *next_of(const node *n)
{
    node *p;
    if (n->right) {
        n = n->right;
        while (n->left)
            n = n->left;
        return (node *)n;
    }
    while ((p = parent_of(n)) && n == p->right)
        n = p;
    return p;
}

static void erase_fixup(ptrio_loop *l, node *x, node *xp)
{
    node *w;
    while (x != l->timers && !is_red(x)) {
        if (x == xp->left) {
            w = xp->right;
            if (is_red(w)) {
                set_black(w), set_red(xp);
                rotate_left(l, xp);
                w = xp->right;
            }
            if (!is_red(w->left) && !is_red(w->right)) {
                set_red(w);
                x = xp;
                xp = parent_of(x);
                continue;
            }
            if (!is_red(w->right)) {
                set_black(w->left), set_red(w);
                rotate_right(l, w);
                w = xp->right;
            }
            w->parent = (w->parent & ~(uintptr_t)RED) | (xp->parent & RED);
            set_black(xp), set_black(w->right);
            rotate_left(l, xp);
        } else {
            w = xp->left;
            if (is_red(w)) {
                set_black(w), set_red(xp);
                rotate_right(l, xp);
                w = xp->left;
            }
            if (!is_red(w->left) && !is_red(w->right)) {
                set_red(w);
                x = xp;
                xp = parent_of(x);
                continue;
            }
            if (!is_red(w->left)) {
                set_black(w->right), set_red(w);
                rotate_left(l, w);
                w = xp->left;
            }
            w->parent = (w->parent & ~(uintptr_t)RED) | (xp->parent & RED);
            set_black(xp), set_black(w->left);
            rotate_right(l, xp);
        }
        x = l->timers;
        break;
    }
    if (x)
        set_black(x);
}

void ptrio__timer_del(ptrio_loop *l, node *z)
{
    node *x, *xp, *y = z;
    int removed_red = is_red(z);

    if (l->first == z)
        l->first = next_of(z);
    if (!z->left || !z->right) {
        x = z->left ? z->left : z->right;
        xp = parent_of(z);
        replace_child(l, xp, z, x);
        if (x)
            set_parent(x, xp);
    } else {
        y = z->right;
        while (y->left)
            y = y->left;
        removed_red = is_red(y);
        x = y->right;
        if (parent_of(y) == z) {
            xp = y;
        } else {
            xp = parent_of(y);
            xp->left = x;
            if (x)
                set_parent(x, xp);
            y->right = z->right;
            set_parent(y->right, y);
        }
        replace_child(l, parent_of(z), z, y);
        set_parent(y, parent_of(z));
        y->left = z->left;
        set_parent(y->left, y);
        y->parent = (y->parent & ~(uintptr_t)RED) | (z->parent & RED);
    }
    if (!removed_red)
        erase_fixup(l, x, xp);
    z->left = z->right = NULL;
    z->parent &= SCOPE;
}
