/* samples/pipeline: a producer feeds jobs to three workers over a channel;
 * a capacity limiter lets at most two of them work at once; a collector
 * gathers their results from a second channel. Its Python twin is
 * pipeline.py; both print the same lines, in about 2 s.
 *
 * Shutdown is by closing channels, as in Trio: each worker and the
 * collector loop with PTRIO_CHAN_FOR until the end of their channel. The
 * producer closes the jobs channel when it has handed every job out, which
 * ends the workers' loops; each worker closes its clone of the results
 * channel on the way out (in FINALLY, so also on an error), and the last
 * one to close ends the collector's loop. Every object is in the frames:
 * nothing allocates. Exits 0. */
#include <stdio.h>

#include <ptrio.h>

struct job {
    int id, ms;
};

struct result {
    int job, value;
    char worker;
};

static const struct job jobs[] = {
    {1, 600}, {2, 200}, {3, 1000}, {4, 400}, {5, 800}, {6, 200},
};
#define NJOBS (int)(sizeof jobs / sizeof jobs[0])
#define NWORKERS 3

/* ---- producer ------------------------------------------------------ */

struct producer {
    ptrio_frame fr;
    ptrio_chan_tx *tx;
    struct job job;
    int i;
};

static int producer(ptrio_frame *fr)
{
    struct producer *p = PTRIO_SELF(fr, struct producer);
    PTRIO_BEGIN(p);
    for (p->i = 0; p->i < NJOBS; p->i++) {
        p->job = jobs[p->i];
        PTRIO_AWAIT(p, ptrio_chan_send(p, p->tx, &p->job));
    }
    printf("producer: all %d jobs handed out, closing\n", NJOBS);
    fflush(stdout);
    PTRIO_FINALLY(p);
    ptrio_chan_tx_close(p->tx);
    PTRIO_END(p);
}

/* ---- workers --------------------------------------------------------- */

struct worker {
    ptrio_frame fr;
    char name;
    ptrio_chan_rx jobs;
    ptrio_chan_tx results;
    ptrio_limiter *limiter;
    ptrio_limiter_token token;      /* while it holds one */
    struct job job;
    struct result res;
};

static int worker(ptrio_frame *fr)
{
    struct worker *w = PTRIO_SELF(fr, struct worker);
    PTRIO_BEGIN(w);
    PTRIO_CHAN_FOR(w, &w->jobs, &w->job) {
        /* async with limiter: */
        PTRIO_AWAIT(w, ptrio_limiter_acquire(w, w->limiter, &w->token));
        printf("worker %c: job %d (%d ms)\n", w->name, w->job.id,
               w->job.ms);
        fflush(stdout);
        PTRIO_AWAIT(w, ptrio_sleep(w, PTRIO_MS(w->job.ms)));
        ptrio_limiter_release(w->limiter, &w->token);
        w->res = (struct result){w->job.id, w->job.id * w->job.id, w->name};
        PTRIO_AWAIT(w, ptrio_chan_send(w, &w->results, &w->res));
    }
    PTRIO_FINALLY(w);
    if (w->token.limiter)           /* an error while working */
        ptrio_limiter_release(w->limiter, &w->token);
    ptrio_chan_rx_close(&w->jobs);
    ptrio_chan_tx_close(&w->results);
    PTRIO_END(w);
}

/* ---- collector ------------------------------------------------------- */

struct collector {
    ptrio_frame fr;
    ptrio_chan_rx *rx;
    struct result res;
    int total;
};

static int collector(ptrio_frame *fr)
{
    struct collector *c = PTRIO_SELF(fr, struct collector);
    PTRIO_BEGIN(c);
    PTRIO_CHAN_FOR(c, c->rx, &c->res) {
        PTRIO_AWAIT(c, ptrio_sleep(c, PTRIO_MS(100)));
        printf("collector: job %d = %d (worker %c)\n", c->res.job,
               c->res.value, c->res.worker);
        fflush(stdout);
        c->total += c->res.value;
    }
    printf("collector: every worker is done, total %d\n", c->total);
    fflush(stdout);
    PTRIO_FINALLY(c);
    ptrio_chan_rx_close(c->rx);
    PTRIO_END(c);
}

/* ---- the pipeline ---------------------------------------------------- */

struct pipeline {
    ptrio_frame fr;
    ptrio_nursery nursery;
    ptrio_task task[NWORKERS + 2];
    struct producer prod;
    struct worker work[NWORKERS];
    struct collector coll;
    ptrio_chan jobs_ch, results_ch;     /* capacity 0: no storage */
    ptrio_chan_tx jobs_tx, results_tx;
    ptrio_chan_rx jobs_rx, results_rx;
    ptrio_limiter limiter;
    int i;
};

static int pipeline(ptrio_frame *fr)
{
    struct pipeline *p = PTRIO_SELF(fr, struct pipeline);
    PTRIO_BEGIN(p);
    printf("pipeline: %d jobs, %d workers, at most 2 at work\n", NJOBS,
           NWORKERS);
    fflush(stdout);
    PTRIO_CHECK(p, ptrio_chan_open(&p->jobs_ch, &p->jobs_tx, &p->jobs_rx,
                                   sizeof(struct job), 0, NULL));
    PTRIO_CHECK(p, ptrio_chan_open(&p->results_ch, &p->results_tx,
                                   &p->results_rx, sizeof(struct result), 0,
                                   NULL));
    ptrio_limiter_init(&p->limiter, 2);
    PTRIO_NURSERY(p, &p->nursery) {
        p->coll.rx = &p->results_rx;    /* the collector closes this end */
        PTRIO_CHECK(p, ptrio_start_soon(&p->nursery, &p->task[0], collector,
                                        &p->coll));
        /* Each worker gets clones; the originals close once handed out. */
        for (p->i = 0; p->i < NWORKERS; p->i++) {
            p->work[p->i].name = (char)('A' + p->i);
            p->work[p->i].limiter = &p->limiter;
            PTRIO_CHECK(p, ptrio_chan_rx_clone(&p->jobs_rx,
                                               &p->work[p->i].jobs));
            PTRIO_CHECK(p, ptrio_chan_tx_clone(&p->results_tx,
                                               &p->work[p->i].results));
            PTRIO_CHECK(p, ptrio_start_soon(&p->nursery, &p->task[1 + p->i],
                                            worker, &p->work[p->i]));
            /* They queue in order A, B, C. */
            PTRIO_AWAIT(p, ptrio_sleep(p, PTRIO_MS(20)));
        }
        ptrio_chan_rx_close(&p->jobs_rx);
        ptrio_chan_tx_close(&p->results_tx);
        p->prod.tx = &p->jobs_tx;       /* the producer closes this end */
        PTRIO_CHECK(p, ptrio_start_soon(&p->nursery, &p->task[NWORKERS + 1],
                                        producer, &p->prod));
    }
    puts("pipeline: done, every channel closed");
    PTRIO_END(p);
}

int main(void)
{
    static struct pipeline p;
    return ptrio_run(pipeline, &p) < 0;
}
