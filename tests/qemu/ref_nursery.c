/* tests/qemu/ref_nursery.c: footprint reference 2, "nurseries + scopes +
 * reports": a nursery of two children, one timing out of a move_on_after
 * (caught), one failing a fail_after; the nursery raises -ETIMEDOUT and
 * ptrio_run reports it to the sink (the board's console). Exits 0 when the
 * run fails with exactly that. */
#include <string.h>

#include <ptrio.h>

#include "board.h"

struct kid {
    ptrio_frame fr;
    ptrio_scope sc;
    int fail;
};

static int kid(ptrio_frame *fr)
{
    struct kid *k = PTRIO_SELF(fr, struct kid);
    PTRIO_BEGIN(k);
    if (k->fail) {
        PTRIO_FAIL_AFTER(k, &k->sc, PTRIO_MS(20)) {
            PTRIO_AWAIT(k, ptrio_sleep(k, PTRIO_MS(50)));
        }
    } else {
        PTRIO_MOVE_ON_AFTER(k, &k->sc, PTRIO_MS(5)) {
            PTRIO_AWAIT(k, ptrio_sleep(k, PTRIO_MS(10)));
        }
    }
    PTRIO_END(k);
}

struct parent {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct kid k[2];
};

static int parent(ptrio_frame *fr)
{
    struct parent *p = PTRIO_SELF(fr, struct parent);
    PTRIO_BEGIN(p);
    PTRIO_NURSERY(p, &p->n) {
        p->k[1].fail = 1;
        PTRIO_CHECK(p, ptrio_start_soon(&p->n, &p->t[0], kid, &p->k[0]));
        PTRIO_CHECK(p, ptrio_start_soon(&p->n, &p->t[1], kid, &p->k[1]));
    }
    PTRIO_END(p);
}

static void sink(void *ctx, const char *line)
{
    (void)ctx;
    qemu_console_write(line, strlen(line));
    qemu_console_write("\n", 1);
}

int main(void)
{
    static ptrio_loop loop;
    static struct parent p;
    ptrio_loop_init(&loop);
    ptrio_loop_set_report(&loop, sink, NULL);
    return ptrio_loop_run(&loop, parent, &p) != -PTRIO_ETIMEDOUT;
}
