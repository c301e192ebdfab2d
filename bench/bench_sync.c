/* bench/bench_sync: the cost of channels and locks, against hand-written
 * limits (bench/hand.h), in ns and in instructions (see bench/bench.h).
 *
 * chan_pingpong  two tasks bouncing an int over two capacity-0 channels
 *                (a rendezvous each way): per round trip, i.e. two sends
 *                and two receives. Baseline: two hand-written protothreads
 *                doing the same over two hand-written rendezvous slots (a
 *                waiting task and where its value goes): a send finding
 *                the receiver waiting copies and wakes it, else waits. The
 *                baseline has no checkpoint semantics; ptrio's send and
 *                receive are Trio checkpoints (a cancel check, and a
 *                schedule point even when the other side was waiting), so
 *                ptrio resumes a task four times per round trip where the
 *                baseline resumes one twice. Target: ratio <= 2.5.
 * lock_handoff   100 tasks taking a lock in turn, each acquiring and
 *                releasing it in a loop: per acquire/release. Every
 *                release hands the lock to the next waiter (FIFO), so each
 *                cycle is one park, one hand-off and one resume. Baseline:
 *                100 hand-written protothreads over a hand-written FIFO
 *                lock (owner, and a queue of waiters).
 * sizeof_*       sizes of the objects, in bytes: sizeof_chan is a channel
 *                with both its ends (no element storage).
 *
 * With a Trio baseline (bench/trio_sync_baseline.py, written to
 * bench-trio-sync.txt by `make bench`) each figure also gets a *_vs_trio
 * line: ptrio's ns against Python Trio's.
 */
#include "bench.h"
#include "bench_ptrio.h"
#include "hand.h"

#include <ptrio.h>

#define LOCK_TASKS 100

/* ---- chan_pingpong: ptrio ----------------------------------------------- */

struct pinger {
    ptrio_frame fr;
    ptrio_chan_tx *tx;
    ptrio_chan_rx *rx;
    long i, n;
    int v;
};

static int pinger(ptrio_frame *fr)
{
    struct pinger *p = PTRIO_SELF(fr, struct pinger);
    PTRIO_BEGIN(p);
    for (p->i = 0; p->i < p->n; p->i++) {
        p->v = (int)p->i;
        PTRIO_AWAIT(p, ptrio_chan_send(p, p->tx, &p->v));
        PTRIO_AWAIT(p, ptrio_chan_recv(p, p->rx, &p->v));
    }
    PTRIO_FINALLY(p);
    ptrio_chan_tx_close(p->tx);
    PTRIO_END(p);
}

/* Sends back what it receives, plus one, until the end of the channel. */
static int ponger(ptrio_frame *fr)
{
    struct pinger *p = PTRIO_SELF(fr, struct pinger);
    PTRIO_BEGIN(p);
    PTRIO_CHAN_FOR(p, p->rx, &p->v) {
        p->v++;
        PTRIO_AWAIT(p, ptrio_chan_send(p, p->tx, &p->v));
    }
    PTRIO_END(p);
}

struct pingpong {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct pinger ping, pong;
    ptrio_chan ch[2];
    ptrio_chan_tx tx[2];
    ptrio_chan_rx rx[2];
    long count;
};

static int pingpong(ptrio_frame *fr)
{
    struct pingpong *m = PTRIO_SELF(fr, struct pingpong);
    PTRIO_BEGIN(m);
    PTRIO_CHECK(m, ptrio_chan_open(&m->ch[0], &m->tx[0], &m->rx[0],
                                   sizeof(int), 0, NULL));
    PTRIO_CHECK(m, ptrio_chan_open(&m->ch[1], &m->tx[1], &m->rx[1],
                                   sizeof(int), 0, NULL));
    m->ping = (struct pinger){.tx = &m->tx[0], .rx = &m->rx[1],
                              .n = m->count};
    m->pong = (struct pinger){.tx = &m->tx[1], .rx = &m->rx[0]};
    PTRIO_NURSERY(m, &m->n) {
        PTRIO_CHECK(m, ptrio_start_soon(&m->n, &m->t[0], pinger, &m->ping));
        PTRIO_CHECK(m, ptrio_start_soon(&m->n, &m->t[1], ponger, &m->pong));
    }
    PTRIO_END(m);
}

static void pingpong_ptrio(long n)
{
    static struct pingpong m;

    memset(&m, 0, sizeof m);
    m.count = n;
    run_main(pingpong, &m, "chan_pingpong");
    if (m.ping.v != (int)n)
        bench_fail("chan_pingpong", "wrong value");
}

/* ---- chan_pingpong: by hand ----------------------------------------------- */

/* A rendezvous slot: the task waiting on it, and its value's address. */
struct hand_slot {
    hand_task *waiter;
    int *value;
};

/* A send: hands `v` to the waiting receiver (1), or waits (0). */
static HAND_NOINLINE int hand_send(hand_sched *s, struct hand_slot *sl,
                                   hand_task *self, int *v)
{
    if (sl->waiter) {
        *sl->value = *v;
        hand_ready(s, sl->waiter);
        sl->waiter = NULL;
        return 1;
    }
    sl->waiter = self;
    sl->value = v;
    return 0;
}

/* A receive: takes the waiting sender's value (1), or waits (0). */
static HAND_NOINLINE int hand_recv(hand_sched *s, struct hand_slot *sl,
                                   hand_task *self, int *v)
{
    if (sl->waiter) {
        *v = *sl->value;
        hand_ready(s, sl->waiter);
        sl->waiter = NULL;
        return 1;
    }
    sl->waiter = self;
    sl->value = v;
    return 0;
}

struct hand_pinger {
    hand_task t;
    hand_sched *s;
    struct hand_slot *out, *in;
    long i, n;
    int v;
};

static HAND_NOINLINE int hand_pinger(hand_task *t)
{
    struct hand_pinger *p = (struct hand_pinger *)t;
    HAND_BEGIN(t);
    for (p->i = 0; p->i < p->n; p->i++) {
        p->v = (int)p->i;
        if (!hand_send(p->s, p->out, t, &p->v))
            HAND_YIELD_POINT(t, HAND_WAIT);
        if (!hand_recv(p->s, p->in, t, &p->v))
            HAND_YIELD_POINT(t, HAND_WAIT);
    }
    HAND_END(t);
}

static HAND_NOINLINE int hand_ponger(hand_task *t)
{
    struct hand_pinger *p = (struct hand_pinger *)t;
    HAND_BEGIN(t);
    for (p->i = 0; p->i < p->n; p->i++) {
        if (!hand_recv(p->s, p->in, t, &p->v))
            HAND_YIELD_POINT(t, HAND_WAIT);
        p->v++;
        if (!hand_send(p->s, p->out, t, &p->v))
            HAND_YIELD_POINT(t, HAND_WAIT);
    }
    HAND_END(t);
}

static void pingpong_hand(long n)
{
    static struct hand_pinger ping, pong;
    static struct hand_slot slot[2];
    hand_sched s = {0};

    memset(slot, 0, sizeof slot);
    ping = (struct hand_pinger){.s = &s, .out = &slot[0], .in = &slot[1],
                                .n = n};
    pong = (struct hand_pinger){.s = &s, .out = &slot[1], .in = &slot[0],
                                .n = n};
    hand_spawn(&s, &ping.t, hand_pinger, NULL);
    hand_spawn(&s, &pong.t, hand_ponger, NULL);
    hand_run(&s);
    if (ping.v != (int)n)
        bench_fail("chan_pingpong", "wrong value (by hand)");
}

/* ---- lock_handoff: ptrio ------------------------------------------------- */

struct locker {
    ptrio_frame fr;
    ptrio_lock *lk;
    long i, n;
    long *count;
};

static int locker(ptrio_frame *fr)
{
    struct locker *k = PTRIO_SELF(fr, struct locker);
    PTRIO_BEGIN(k);
    for (k->i = 0; k->i < k->n; k->i++) {
        PTRIO_AWAIT(k, ptrio_lock_acquire(k, k->lk));
        ++*k->count;
        PTRIO_CHECK(k, ptrio_lock_release(k->lk));
    }
    PTRIO_END(k);
}

struct lockers {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[LOCK_TASKS];
    struct locker k[LOCK_TASKS];
    ptrio_lock lk;
    long per, count;
    int i;
};

static int lockers(ptrio_frame *fr)
{
    struct lockers *m = PTRIO_SELF(fr, struct lockers);
    PTRIO_BEGIN(m);
    PTRIO_NURSERY(m, &m->n) {
        for (m->i = 0; m->i < LOCK_TASKS; m->i++) {
            m->k[m->i] = (struct locker){.lk = &m->lk, .n = m->per,
                                         .count = &m->count};
            PTRIO_CHECK(m, ptrio_start_soon(&m->n, &m->t[m->i], locker,
                                            &m->k[m->i]));
        }
    }
    PTRIO_END(m);
}

static void lock_ptrio(long n)
{
    static struct lockers m;

    memset(&m, 0, sizeof m);
    m.per = n / LOCK_TASKS;
    run_main(lockers, &m, "lock_handoff");
    if (m.count != m.per * LOCK_TASKS)
        bench_fail("lock_handoff", "wrong count");
}

/* ---- lock_handoff: by hand --------------------------------------------------- */

/* A FIFO lock: its owner and the queue of waiters (through hand_task's
 * run-queue link: a waiting task is in no run queue). */
struct hand_lock {
    hand_task *owner, *head, *tail;
};

/* Takes the lock (1), or queues for it (0: the release hands it over). */
static HAND_NOINLINE int hand_acquire(struct hand_lock *l, hand_task *self)
{
    if (!l->owner) {
        l->owner = self;
        return 1;
    }
    self->next = NULL;
    if (l->tail)
        l->tail->next = self;
    else
        l->head = self;
    l->tail = self;
    return 0;
}

static HAND_NOINLINE void hand_release(hand_sched *s, struct hand_lock *l)
{
    hand_task *t = l->head;

    if (t && !(l->head = t->next))
        l->tail = NULL;
    l->owner = t;
    if (t)
        hand_ready(s, t);
}

struct hand_locker {
    hand_task t;
    hand_sched *s;
    struct hand_lock *lk;
    long i, n;
    long *count;
};

static HAND_NOINLINE int hand_locker(hand_task *t)
{
    struct hand_locker *k = (struct hand_locker *)t;
    HAND_BEGIN(t);
    for (k->i = 0; k->i < k->n; k->i++) {
        if (!hand_acquire(k->lk, t))
            HAND_YIELD_POINT(t, HAND_WAIT);
        ++*k->count;
        hand_release(k->s, k->lk);
    }
    HAND_END(t);
}

static void lock_hand(long n)
{
    static struct hand_locker k[LOCK_TASKS];
    static struct hand_lock lk;
    static long count;
    hand_sched s = {0};
    int i;

    memset(&lk, 0, sizeof lk);
    count = 0;
    for (i = 0; i < LOCK_TASKS; i++) {
        k[i] = (struct hand_locker){.s = &s, .lk = &lk, .n = n / LOCK_TASKS,
                                    .count = &count};
        hand_spawn(&s, &k[i].t, hand_locker, NULL);
    }
    hand_run(&s);
    if (count != n / LOCK_TASKS * LOCK_TASKS)
        bench_fail("lock_handoff", "wrong count (by hand)");
}

/* ---- main ----------------------------------------------------------------- */

static const bench_figure chan_pingpong = {
    "chan_pingpong", pingpong_ptrio, pingpong_hand, 2000000, 10000, 2.5, 0
};
static const bench_figure lock_handoff = {
    "lock_handoff", lock_ptrio, lock_hand, 2000000, 10000, 0, 0
};

int main(int argc, char **argv)
{
    FILE *fp;
    bench_result r1, r2;

    bench_init(argc, argv);
    /* This program's Trio figures are in their own file. */
    if ((fp = fopen("bench-trio-sync.txt", "r"))) {
        fclose(fp);
        setenv("BENCH_TRIO", "bench-trio-sync.txt", 1);
    }
    r1 = bench_run(&chan_pingpong);
    bench_vs_trio("chan_pingpong", "chan_pingpong_ns", r1);
    r2 = bench_run(&lock_handoff);
    bench_vs_trio("lock_handoff", "lock_handoff_ns", r2);

    size_line("sizeof_chan", sizeof(ptrio_chan) + sizeof(ptrio_chan_tx) +
                                 sizeof(ptrio_chan_rx));
    size_line("sizeof_event", sizeof(ptrio_event));
    size_line("sizeof_lock", sizeof(ptrio_lock));
    size_line("sizeof_lot", sizeof(ptrio_lot));
    size_line("sizeof_semaphore", sizeof(ptrio_semaphore));
    size_line("sizeof_limiter", sizeof(ptrio_limiter));
    size_line("sizeof_condition", sizeof(ptrio_condition));
    size_line("sizeof_task", sizeof(ptrio_task));
    return bench_done();
}
