/* src/io/thread.c: ptrio_run_in_thread, a small pool of POSIX threads.
 *
 * The pool is static: PTRIO_CONF_THREADS worker slots, a FIFO of queued
 * jobs, one mutex and one condition variable. A job is the caller's
 * (in its frame) only while the call is awaited: everything the worker
 * needs after that (fn, its argument or a copy of it, discard) is copied
 * into its slot when it picks the job up. Completion and cancellation meet
 * under the mutex:
 *
 *   - the worker, done: if its slot still points at the job, it stores the
 *     result (copying the argument back), marks the job done and wakes the
 *     job's loop, all under the mutex;
 *   - the task, cancelled (its abort hook, on the loop's thread): under the
 *     mutex, a queued job leaves the queue, a running one is detached from
 *     its worker (slot->job = NULL); from then on the worker touches only
 *     its own slot, and its result goes to discard. A job already done is
 *     not undone: its result is delivered (Trio, with abandon_on_cancel,
 *     would raise Cancelled and drop it; here nobody would free it).
 *
 * The loop learns of a done job through the job's ptrio_source, polled
 * after each backend wait; the poll takes the mutex once, so the worker's
 * wake has returned before the task (and maybe the run) moves on.
 *
 * Workers end after 10 s idle, and when a loop closes with no call of any
 * loop in flight (ptrio__thread_quiesce, from the backends' close): the
 * idle ones are told to stop and joined, so a program's last run leaves
 * no thread behind. A worker still busy with an abandoned call detaches
 * itself and ends when its call returns.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <ptrio/io.h>

#include "../backend/host.h"

#ifndef PTRIO_CONF_THREADS
#define PTRIO_CONF_THREADS 8
#endif
#ifndef PTRIO_CONF_THREAD_IDLE_MS
#define PTRIO_CONF_THREAD_IDLE_MS 10000     /* Trio's thread cache: 10 s */
#endif

enum { J_IDLE = 0, J_QUEUED, J_RUNNING, J_DONE };

/* A worker slot's life: NONE (free), LIVE, EXITED (ended, to be joined
 * by a quiesce), JOINING (one quiesce joins it: no other may). */
enum { W_FREE = 0, W_LIVE, W_EXITED, W_JOINING };

typedef struct worker {
    ptrio_thread_job *job;      /* attached job; NULL once detached */
    pthread_t th;
    int life;
    union {                     /* the argument copy, aligned for anything */
        unsigned char bytes[PTRIO_THREAD_COPY_MAX];
        long double ld;
        void *p;
        long long ll;
    } copy;
} worker;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t work, gone;
    ptrio_thread_job *head, *tail;  /* queued jobs */
    unsigned queued, alive, idle, busy;
    unsigned attached;              /* calls queued or running, awaited */
    int stop;                       /* idle workers: end now */
    unsigned quiescing;             /* closes waiting for them to end */
    worker slot[PTRIO_CONF_THREADS];
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .work = PTHREAD_COND_INITIALIZER,
          .gone = PTHREAD_COND_INITIALIZER};

static int load_state(const ptrio_thread_job *j)
{
    return __atomic_load_n(&j->state, __ATOMIC_ACQUIRE);
}

static void store_state(ptrio_thread_job *j, int s)
{
    __atomic_store_n(&j->state, s, __ATOMIC_RELEASE);
}

/* Under the mutex: takes a queued job out (run, or cancelled before it
 * started). */
static void unqueue(ptrio_thread_job *j)
{
    ptrio_thread_job **pp = &pool.head, *prev = NULL;
    while (*pp && *pp != j) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp)
        return;
    *pp = j->next;
    if (pool.tail == j)
        pool.tail = prev;
    j->next = NULL;
    pool.queued--;
}

/* Under the mutex: the first queued job, taken out, or NULL. */
static ptrio_thread_job *dequeue(void)
{
    ptrio_thread_job *j = pool.head;
    if (j)
        unqueue(j);
    return j;
}

/* Waits for a job; NULL when idle too long (the worker then ends). Under
 * the mutex. */
static ptrio_thread_job *next_job(void)
{
    struct timespec until;
    int rc = 0;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += PTRIO_CONF_THREAD_IDLE_MS / 1000;
    until.tv_nsec += (long)(PTRIO_CONF_THREAD_IDLE_MS % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pool.idle++;
    while (!pool.head && !pool.stop && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&pool.work, &pool.mu, &until);
    pool.idle--;
    return dequeue();
}

/* Under the mutex: the worker ends. A quiesce waiting for it joins it;
 * otherwise nobody will, so it detaches itself. */
static void worker_exit(worker *w)
{
    if (pool.quiescing) {
        w->life = W_EXITED;
    } else {
        pthread_detach(w->th);
        w->life = W_FREE;
    }
    pool.alive--;
    pthread_cond_broadcast(&pool.gone);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    ptrio_thread_job *j;

    pthread_mutex_lock(&pool.mu);
    while ((j = next_job())) {
        ptrio_thread_fn fn = j->fn;
        void (*discard)(void *, void *) = j->discard;
        unsigned size = j->copy_size;
        void *a = j->arg, *r;

        if (size) {
            memcpy(w->copy.bytes, j->arg, size);
            a = w->copy.bytes;
        }
        w->job = j;
        j->worker = w;
        store_state(j, J_RUNNING);
        pool.busy++;
        pthread_mutex_unlock(&pool.mu);

        r = fn(a);

        pthread_mutex_lock(&pool.mu);
        pool.busy--;
        if (w->job == j) {
            if (size)
                memcpy(j->arg, w->copy.bytes, size);
            j->value = r;
            store_state(j, J_DONE);
            ptrio_loop_wake(j->loop);   /* still under the mutex: see top */
            w->job = NULL;
            pool.attached--;
        } else if (discard) {
            pthread_mutex_unlock(&pool.mu);
            discard(a, r);              /* a: the copy, or the user's arg */
            pthread_mutex_lock(&pool.mu);
        }
    }
    worker_exit(w);
    pthread_mutex_unlock(&pool.mu);
    return NULL;
}

/* Under the mutex: starts a worker if every live one is busy. Workers
 * block every signal, so signals reach the loop's thread. 0 or -errno. */
static int maybe_spawn(void)
{
    sigset_t all, old;
    unsigned i;
    int rc;

    if (pool.idle >= pool.queued || pool.alive >= PTRIO_CONF_THREADS)
        return 0;
    for (i = 0; i < PTRIO_CONF_THREADS && pool.slot[i].life != W_FREE; i++)
        ;
    if (i == PTRIO_CONF_THREADS)
        return 0;   /* slots still being joined: the live ones will do */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&pool.slot[i].th, NULL, worker_main, &pool.slot[i]);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return -rc;
    pool.slot[i].life = W_LIVE;
    pool.alive++;
    return 0;
}

/* A loop closed. If no call of any loop is in flight, the idle workers
 * end now and are joined (the ones busy with an abandoned call end when
 * it returns). */
void ptrio__thread_quiesce(void)
{
    unsigned taken[PTRIO_CONF_THREADS];
    unsigned i, n = 0;

    pthread_mutex_lock(&pool.mu);
    if (pool.attached || pool.queued) {
        pthread_mutex_unlock(&pool.mu);
        return;
    }
    pool.stop = 1;      /* also for the busy ones, when they are done */
    pool.quiescing++;
    pthread_cond_broadcast(&pool.work);
    /* Until the idle ones (or those just started) are gone, or a call of
     * another loop came meanwhile (it reset `stop`): idle workers then
     * stay, and would keep this loop's close for their 10 s timeout. */
    while (pool.alive > pool.busy && pool.stop)
        pthread_cond_wait(&pool.gone, &pool.mu);
    pool.quiescing--;
    /* Loops closing at once each join the workers they take here, so no
     * thread is joined twice. */
    for (i = 0; i < PTRIO_CONF_THREADS; i++)
        if (pool.slot[i].life == W_EXITED) {
            pool.slot[i].life = W_JOINING;
            taken[n++] = i;
        }
    pthread_mutex_unlock(&pool.mu);
    for (i = 0; i < n; i++)
        pthread_join(pool.slot[taken[i]].th, NULL);
    pthread_mutex_lock(&pool.mu);
    for (i = 0; i < n; i++)
        pool.slot[taken[i]].life = W_FREE;
    pthread_mutex_unlock(&pool.mu);
}

/* Polled on the loop's thread after each wait. */
static void job_poll(ptrio_source *src)
{
    ptrio_thread_job *j = CONTAINER(src, ptrio_thread_job, src);

    if (load_state(j) != J_DONE)
        return;
    /* The worker marked it done and woke the loop under the mutex: once
     * we hold it, the worker has let go of the job and the loop. */
    pthread_mutex_lock(&pool.mu);
    pthread_mutex_unlock(&pool.mu);
    ptrio_source_remove(src);
    if (j->result)
        *j->result = j->value;
    store_state(j, J_IDLE);
    ptrio_wake(j->task, 0);
}

/* Under the mutex: nobody waits for the job in state `st` any more. A
 * queued one leaves the queue; a running one runs on, detached (see top). */
static void detach(ptrio_thread_job *j, int st)
{
    if (st == J_QUEUED) {
        unqueue(j);
        pool.attached--;
    } else if (st == J_RUNNING && j->worker) {
        ((worker *)j->worker)->job = NULL;
        pool.attached--;
    }
}

/* Out of the mutex, after detach: the job can take a new call. */
static void job_idle(ptrio_thread_job *j)
{
    ptrio_source_remove(&j->src);
    store_state(j, J_IDLE);
}

static int job_abort(ptrio_task *t, void *data)
{
    ptrio_thread_job *j = data;
    int st;

    (void)t;
    pthread_mutex_lock(&pool.mu);
    st = load_state(j);
    detach(j, st);
    pthread_mutex_unlock(&pool.mu);
    if (st == J_DONE)
        return 1;       /* too late: job_poll delivers the result */
    job_idle(j);
    return 0;
}

int ptrio_thread_job_init(ptrio_thread_job *job, unsigned copy_size,
                          void (*discard)(void *arg, void *result))
{
    if (!job)
        return -PTRIO_EINVAL;
    if (load_state(job) != J_IDLE)
        return -PTRIO_EBUSY;
    if (copy_size > PTRIO_THREAD_COPY_MAX)
        return -PTRIO_EMSGSIZE;
    job->copy_size = copy_size;
    job->discard = discard;
    return 0;
}

int ptrio_run_in_thread(void *self, ptrio_thread_job *job, ptrio_thread_fn fn,
                        void *arg, void **result)
{
    ptrio_loop *l = ptrio__loop;
    ptrio_task *t;
    int rc = ptrio__await_check(self, &t);

    if (rc < 0)
        return rc;
    if (!job || !fn)
        return -PTRIO_EINVAL;
    if (load_state(job) != J_IDLE) {
        MISUSE("ptrio_run_in_thread with a job that is still in a call");
        return -PTRIO_EBUSY;
    }
    if (!l->backend->wake)
        return -PTRIO_ENOTSUP;
    if (ptrio__cancelled(t))
        return -PTRIO_ECANCELED;
    job->fn = fn;
    job->arg = arg;
    job->result = result;
    job->value = NULL;
    job->task = t;
    job->loop = l;
    job->worker = NULL;
    job->next = NULL;
    if ((rc = ptrio_source_add(&job->src, job_poll)) < 0)
        return rc;
    rc = ptrio_park_hook(self, job_abort, job);
    if (rc != PTRIO_PENDING) {      /* cannot happen: checked above */
        ptrio_source_remove(&job->src);
        return rc;
    }

    pthread_mutex_lock(&pool.mu);
    store_state(job, J_QUEUED);
    if (pool.quiescing)
        pthread_cond_broadcast(&pool.gone);     /* the close waits no more */
    pool.stop = 0;
    pool.attached++;
    if (pool.tail)
        pool.tail->next = job;
    else
        pool.head = job;
    pool.tail = job;
    pool.queued++;
    rc = maybe_spawn();
    if (rc < 0 && pool.alive == 0) {
        detach(job, J_QUEUED);      /* nobody will ever run it */
        pthread_mutex_unlock(&pool.mu);
        job_idle(job);
        ptrio_wake(t, -PTRIO_EAGAIN);
        return PTRIO_PENDING;
    }
    pthread_cond_signal(&pool.work);
    pthread_mutex_unlock(&pool.mu);
    return PTRIO_PENDING;
}

unsigned ptrio_thread_workers(unsigned *idle)
{
    unsigned n;
    pthread_mutex_lock(&pool.mu);
    n = pool.alive;
    if (idle)
        *idle = pool.idle;
    pthread_mutex_unlock(&pool.mu);
    return n;
}
