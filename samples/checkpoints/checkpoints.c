/* samples/checkpoints: a CPU-bound loop can only be cancelled at its
 * checkpoints. Its Python twin is checkpoints.py.
 *
 * The job crunches numbers for 400 ms of CPU time (the loop stops when the
 * clock says so; that clock read is not a checkpoint). It runs twice under
 * move_on_after(100 ms):
 *
 *   - with a checkpoint every 1000 iterations: the deadline stops it at
 *     about 100 ms;
 *   - without checkpoints: nothing can interrupt it, so it runs to the end,
 *     overrunning the deadline by about 300 ms.
 *
 * Lines starting with "  ~" carry measurements (iterations, milliseconds)
 * that vary from run to run and differ between C and Python; every other
 * line is the same in both twins:
 *
 *     diff <(./checkpoints | grep -v '^  ~') \
 *          <(python3 checkpoints.py | grep -v '^  ~')
 *
 * About 0.5 s in all. Exits 0. */
#include <stdint.h>
#include <stdio.h>

#include <ptrio.h>

#define DEADLINE PTRIO_MS(100)
#define JOB      PTRIO_MS(400)     /* CPU time the job needs */
#define SLACK    PTRIO_MS(50)      /* "on time": within this of the deadline */
#define CHUNK    1000              /* iterations between two clock reads */

/* One unit of work: a multiplicative hash, so the sum cannot be folded. */
static uint64_t work(uint64_t i)
{
    return (i * UINT64_C(2654435761)) >> 7 & 1023u;
}

struct job {
    ptrio_frame fr;
    ptrio_scope scope;
    ptrio_time start, elapsed;
    uint64_t i, sum;
};

static double ms(ptrio_time t) { return (double)t / 1e6; }

static int with_checkpoints(ptrio_frame *fr)
{
    struct job *j = PTRIO_SELF(fr, struct job);
    PTRIO_BEGIN(j);
    puts("With a checkpoint every 1000 iterations:");
    fflush(stdout);
    j->i = j->sum = 0;
    j->start = ptrio_now();
    PTRIO_MOVE_ON_AFTER(j, &j->scope, DEADLINE) {
        while (ptrio_now() - j->start < JOB) {
            for (int k = 0; k < CHUNK; k++)
                j->sum += work(j->i++);
            PTRIO_CHECKPOINT(j);    /* the deadline can stop us here */
        }
    }
    j->elapsed = ptrio_now() - j->start;
    printf("  ~ stopped at iteration %llu after %.1f ms (sum %llu)\n",
           (unsigned long long)j->i, ms(j->elapsed),
           (unsigned long long)j->sum);
    if (ptrio_cancelled_caught(&j->scope))
        puts("  the deadline interrupted the job before it finished.");
    else
        puts("  the job finished: the deadline did not interrupt it!");
    if (j->elapsed <= DEADLINE + SLACK)
        puts("  it stopped on time.");
    else
        puts("  it stopped LATE.");
    fflush(stdout);
    PTRIO_END(j);
}

static int without_checkpoints(ptrio_frame *fr)
{
    struct job *j = PTRIO_SELF(fr, struct job);
    PTRIO_BEGIN(j);
    puts("Without checkpoints:");
    fflush(stdout);
    j->i = j->sum = 0;
    j->start = ptrio_now();
    PTRIO_MOVE_ON_AFTER(j, &j->scope, DEADLINE) {
        while (ptrio_now() - j->start < JOB) {
            for (int k = 0; k < CHUNK; k++)
                j->sum += work(j->i++);
            /* no checkpoint: nothing here can be cancelled */
        }
    }
    j->elapsed = ptrio_now() - j->start;
    printf("  ~ finished at iteration %llu after %.1f ms (sum %llu)\n",
           (unsigned long long)j->i, ms(j->elapsed),
           (unsigned long long)j->sum);
    if (ptrio_cancelled_caught(&j->scope))
        puts("  the deadline interrupted the job before it finished.");
    else
        puts("  the job ran to completion: the deadline could not "
             "interrupt it.");
    if (j->elapsed > DEADLINE) {
        puts("  it overran the deadline: a loop that never checkpoints "
             "cannot be cancelled.");
        printf("  ~ overran the deadline by %.1f ms\n",
               ms(j->elapsed - DEADLINE));
    } else {
        puts("  it finished within the deadline.");
    }
    fflush(stdout);
    PTRIO_END(j);
}

struct main_frame {
    ptrio_frame fr;
    struct job job;
};

static int main_task(ptrio_frame *fr)
{
    struct main_frame *f = PTRIO_SELF(fr, struct main_frame);
    PTRIO_BEGIN(f);
    puts("A job needing 400 ms of CPU, under move_on_after(100 ms).");
    fflush(stdout);
    PTRIO_CALL(f, with_checkpoints, &f->job);
    PTRIO_CALL(f, without_checkpoints, &f->job);
    PTRIO_END(f);
}

int main(void)
{
    static struct main_frame f;
    return ptrio_run(main_task, &f) < 0;
}
