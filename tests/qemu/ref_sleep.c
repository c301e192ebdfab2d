/* tests/qemu/ref_sleep.c: footprint reference 1, "coroutines + sleep":
 * a task that calls a sub-coroutine which sleeps, three times, on the
 * port's clock through ptrio_run. No nursery, scope, sink or report of its
 * own: what ptrio links for the smallest useful program. Exits 0. */
#include <ptrio.h>

struct nap {
    ptrio_frame fr;
    ptrio_time d;
};

static int nap(ptrio_frame *fr)
{
    struct nap *f = PTRIO_SELF(fr, struct nap);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_sleep(f, f->d));
    PTRIO_END(f);
}

struct blink {
    ptrio_frame fr;
    struct nap nap;
    int i;
};

static int blink(ptrio_frame *fr)
{
    struct blink *f = PTRIO_SELF(fr, struct blink);
    PTRIO_BEGIN(f);
    for (f->i = 0; f->i < 3; f->i++) {
        f->nap.d = PTRIO_MS(10);
        PTRIO_CALL(f, nap, &f->nap);
    }
    PTRIO_END(f);
}

int main(void)
{
    static struct blink f;
    return ptrio_run(blink, &f) != 0;
}
