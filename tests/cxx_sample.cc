// tests/cxx_sample.cc: the public headers used from C++ (CI compiles this
// with g++ -std=c++17 -Wall -Wextra -Wpedantic -Werror, in both resume
// point variants, and runs it). Every macro that suspends is used here: a
// resume must never jump over an initialisation, which C++ rejects.
#include <cstdio>

#include <ptrio.h>

struct kid {
    ptrio_frame fr;
    int secs;
    int done;
};

static int kid_fn(ptrio_frame *fr)
{
    kid *k = PTRIO_SELF(fr, kid);
    PTRIO_BEGIN(k);
    PTRIO_AWAIT(k, ptrio_sleep(k, PTRIO_SEC(k->secs)));
    k->done = 1;
    PTRIO_RETURN(k, k->secs);
    PTRIO_END(k);
}

struct parent {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_scope sc, tb;
    ptrio_task t[2];
    kid k[2], sub;
    int rc, cleaned;
};

static int parent_fn(ptrio_frame *fr)
{
    parent *p = PTRIO_SELF(fr, parent);
    PTRIO_BEGIN(p);
    PTRIO_NURSERY(p, &p->n) {
        for (int i = 0; i < 2; i++) {
            p->k[i].secs = i + 1;
            PTRIO_CHECK(p, ptrio_start_soon(&p->n, &p->t[i], kid_fn, &p->k[i]));
        }
    }
    PTRIO_MOVE_ON_AFTER(p, &p->sc, PTRIO_MS(500)) {
        PTRIO_AWAIT(p, ptrio_sleep_forever(p));
    }
    p->sub.secs = 1;
    PTRIO_TRY(p, p->rc, ptrio_call(p, &p->sub, kid_fn));
    PTRIO_TRY_BLOCK(p, &p->tb) {
        PTRIO_RAISE(p, -PTRIO_EIO, "caught");
    }
    PTRIO_CHECKPOINT(p);
    PTRIO_FINALLY(p);
    p->cleaned = 1;
    PTRIO_END(p);
}

int main()
{
    static parent p;
    static ptrio_loop loop;
    int rc;

    ptrio_loop_init(&loop);
    if (ptrio_loop_use_backend(&loop, &ptrio_backend_virtual) < 0)
        return 2;
    rc = ptrio_loop_run(&loop, parent_fn, &p);
    std::printf("cxx_sample: rc=%d kids=%d%d sub=%d caught=%s cleaned=%d\n", rc,
                p.k[0].done, p.k[1].done, p.rc,
                ptrio_errname(ptrio_scope_error(&p.tb)), p.cleaned);
    return rc == 0 && p.k[0].done && p.k[1].done && p.rc == 1 &&
                   ptrio_scope_error(&p.tb) == -PTRIO_EIO && p.cleaned
               ? 0
               : 1;
}
