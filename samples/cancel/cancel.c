/* samples/cancel: cancelling a running task through its nursery, and the
 * cleanup that runs during cancellation. Its Python twin is cancel.py; both
 * print the same lines.
 *
 * The task prints "Still running..." at 0, 1, 2 and 3 s. The parent cancels
 * the nursery's scope at 3.5 s, halfway between two prints, so that no
 * wake-up ties with the cancel (ties would make the order of the two
 * depend on the scheduler: Trio runs a batch in a random order). The
 * task's sleep fails with -PTRIO_ECANCELED, and its FINALLY section prints
 * "Task was cancelled!" before the error goes on to the nursery, which
 * absorbs it: the nursery caused it. Exits 0. */
#include <stdio.h>

#include <ptrio.h>

struct worker {
    ptrio_frame fr;
};

static int long_running_task(ptrio_frame *fr)
{
    struct worker *w = PTRIO_SELF(fr, struct worker);
    PTRIO_BEGIN(w);
    for (;;) {
        puts("Still running...");
        fflush(stdout);
        PTRIO_AWAIT(w, ptrio_sleep(w, PTRIO_SEC(1)));
    }
    PTRIO_FINALLY(w);                           /* finally: */
    if (PTRIO_FINALLY_ERROR(w) == -PTRIO_ECANCELED) {
        puts("Task was cancelled!");
        fflush(stdout);
    }
    PTRIO_END(w);                   /* the -ECANCELED carries on from here */
}

struct parent {
    ptrio_frame fr;
    ptrio_nursery nursery;
    ptrio_task task;
    struct worker worker;
};

static int parent(ptrio_frame *fr)
{
    struct parent *p = PTRIO_SELF(fr, struct parent);
    PTRIO_BEGIN(p);
    PTRIO_NURSERY(p, &p->nursery) {
        PTRIO_CHECK(p, ptrio_start_soon(&p->nursery, &p->task,
                                        long_running_task, &p->worker));
        PTRIO_AWAIT(p, ptrio_sleep(p, PTRIO_MS(3500)));
        puts("Parent: cancelling the task.");
        fflush(stdout);
        ptrio_nursery_cancel(&p->nursery);  /* nursery.cancel_scope.cancel() */
    }
    puts("Nursery is closed: the task is gone.");
    fflush(stdout);
    PTRIO_END(p);
}

int main(void)
{
    static struct parent p;
    return ptrio_run(parent, &p) < 0;
}
