/* samples/errors: a child's failure cancels its siblings and reaches the
 * parent. Its Python twin is errors.py; both print the same lines.
 *
 * The problematic child fails at 1 s. The nursery cancels everything inside
 * it (the well-behaved child's 3 s sleep ends at once with -ECANCELED, so
 * it never wakes), joins, and raises the one failure as itself; the
 * parent's TRY_BLOCK catches it at about 1 s. Exits 0. */
#include <stdio.h>

#include <ptrio.h>

struct kid {
    ptrio_frame fr;
};

static int well_behaved_child(ptrio_frame *fr)
{
    struct kid *k = PTRIO_SELF(fr, struct kid);
    PTRIO_BEGIN(k);
    puts("Well-behaved child is going to sleep.");
    fflush(stdout);
    PTRIO_AWAIT(k, ptrio_sleep(k, PTRIO_SEC(3)));
    puts("Well-behaved child woke up!");       /* never printed */
    fflush(stdout);
    PTRIO_END(k);
}

static int problematic_child(ptrio_frame *fr)
{
    struct kid *k = PTRIO_SELF(fr, struct kid);
    PTRIO_BEGIN(k);
    PTRIO_AWAIT(k, ptrio_sleep(k, PTRIO_SEC(1)));
    PTRIO_RAISE(k, -PTRIO_EIO, "Oops, I tripped!");
    PTRIO_END(k);
}

struct parent {
    ptrio_frame fr;
    ptrio_scope catcher;
    ptrio_nursery nursery;
    ptrio_task task[2];
    struct kid kid[2];
};

static int parent(ptrio_frame *fr)
{
    struct parent *p = PTRIO_SELF(fr, struct parent);
    PTRIO_BEGIN(p);
    PTRIO_TRY_BLOCK(p, &p->catcher) {          /* try: */
        PTRIO_NURSERY(p, &p->nursery) {
            PTRIO_CHECK(p, ptrio_start_soon(&p->nursery, &p->task[0],
                                            well_behaved_child, &p->kid[0]));
            PTRIO_CHECK(p, ptrio_start_soon(&p->nursery, &p->task[1],
                                            problematic_child, &p->kid[1]));
        }
    }
    if (ptrio_scope_error(&p->catcher)) {      /* except: */
        ptrio_failure f;
        if (ptrio_failure_last(ptrio_scope_error(&p->catcher), &f) == 0 &&
            f.msg)
            printf("The parent caught the child's error: %s\n", f.msg);
        else
            printf("The parent caught the child's error: %s\n",
                   ptrio_strerror(ptrio_scope_error(&p->catcher)));
        fflush(stdout);
    }
    PTRIO_END(p);
}

int main(void)
{
    static struct parent p;
    return ptrio_run(parent, &p) < 0;
}
