/* samples/nursery: the parent/child program of Trio's tutorial, in C.
 * Its Python twin is nursery.py; both print the same lines in the same
 * order: the three "going to sleep" lines (A, B, C), B, C and A waking at
 * 1, 2 and 3 s, then the parent's last line at 3 s. */
#include <stdio.h>

#include <ptrio.h>

struct child {                  /* a coroutine's frame: its state */
    ptrio_frame fr;             /* first member, named fr */
    const char *name;
    int secs;
};

static int child(ptrio_frame *fr)
{
    struct child *c = PTRIO_SELF(fr, struct child);
    PTRIO_BEGIN(c);
    printf("Child %s is going to sleep for %ds.\n", c->name, c->secs);
    fflush(stdout);
    PTRIO_AWAIT(c, ptrio_sleep(c, PTRIO_SEC(c->secs)));   /* a checkpoint */
    printf("Child %s is awake!\n", c->name);
    fflush(stdout);
    PTRIO_END(c);
}

struct parent {
    ptrio_frame fr;
    ptrio_nursery nursery;
    ptrio_task task[3];         /* task storage: yours, no malloc */
    struct child kid[3];
};

static int parent(ptrio_frame *fr)
{
    struct parent *p = PTRIO_SELF(fr, struct parent);
    static const char *const names[] = {"A", "B", "C"};
    static const int secs[] = {3, 1, 2};
    PTRIO_BEGIN(p);
    puts("Parent is starting a nursery.");
    fflush(stdout);
    PTRIO_NURSERY(p, &p->nursery) {
        for (int i = 0; i < 3; i++) {
            p->kid[i].name = names[i];     /* set the fields: never */
            p->kid[i].secs = secs[i];      /* re-initialise a frame */
            PTRIO_CHECK(p, ptrio_start_soon(&p->nursery, &p->task[i],
                                            child, &p->kid[i]));
        }
    }                           /* the block's end joins every child */
    puts("Nursery is closed. All children are accounted for.");
    fflush(stdout);
    PTRIO_END(p);
}

int main(void)
{
    static struct parent p;     /* ptrio objects start zeroed */
    return ptrio_run(parent, &p) < 0;
}
