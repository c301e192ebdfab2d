/* samples/timeout: move_on_after and fail_after around a slow call. Its
 * Python twin is timeout.py; both print the same lines.
 *
 * slow_network_call() would take 10 s. Under a 5 s move_on_after it is
 * cancelled at 5 s and execution carries on after the block (the fallback);
 * under a 1 s fail_after the block raises -PTRIO_ETIMEDOUT (Trio's
 * TooSlowError), which a TRY_BLOCK catches. About 6 s in all. Exits 0. */
#include <stdio.h>

#include <ptrio.h>

struct slow_call {
    ptrio_frame fr;
};

static int slow_network_call(ptrio_frame *fr)
{
    struct slow_call *s = PTRIO_SELF(fr, struct slow_call);
    PTRIO_BEGIN(s);
    PTRIO_AWAIT(s, ptrio_sleep(s, PTRIO_SEC(10)));
    puts("Got a response (never printed)");
    fflush(stdout);
    PTRIO_END(s);
}

struct main_frame {
    ptrio_frame fr;
    ptrio_scope move_on, fail, catcher;
    struct slow_call call;
};

static int main_task(ptrio_frame *fr)
{
    struct main_frame *f = PTRIO_SELF(fr, struct main_frame);
    PTRIO_BEGIN(f);

    puts("Calling the slow service, giving up after 5 s...");
    fflush(stdout);
    PTRIO_MOVE_ON_AFTER(f, &f->move_on, PTRIO_SEC(5)) {
        PTRIO_CALL(f, slow_network_call, &f->call);
    }
    if (ptrio_cancelled_caught(&f->move_on)) {
        puts("Timed out, using fallback");
        fflush(stdout);
    }

    puts("Calling it again, failing after 1 s...");
    fflush(stdout);
    PTRIO_TRY_BLOCK(f, &f->catcher) {                  /* try: */
        PTRIO_FAIL_AFTER(f, &f->fail, PTRIO_SEC(1)) {
            PTRIO_CALL(f, slow_network_call, &f->call);
        }
    }
    if (ptrio_scope_error(&f->catcher) == -PTRIO_ETIMEDOUT) {  /* except */
        puts("fail_after raised a timeout error (C: -PTRIO_ETIMEDOUT, "
             "Trio: TooSlowError)");
        fflush(stdout);
    }
    PTRIO_END(f);
}

int main(void)
{
    static struct main_frame f;
    return ptrio_run(main_task, &f) < 0;
}
