/* tests/check_signal.c: ptrio_signal. On the virtual clock: coalescing,
 * the count, cancellation, one waiter, bad input. On the default backend
 * (poll, or the port's): a raise between the last poll and the wait.
 * Raised from outside the loop: on a host by a thread and by a POSIX
 * signal handler (poll backend), and by a thread while two loops on two
 * threads take turns waiting; on QEMU (TEST_QEMU) by a timer interrupt of
 * the board (the port's backend). */
#ifndef TEST_QEMU
#define _POSIX_C_SOURCE 200809L
#endif
#include <limits.h>
#include <stdlib.h>

#define TESTUTIL_EVENTS
#include "testutil.h"

#include <ptrio/signal.h>

#ifdef TEST_QEMU
#include "board.h"
#else
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

static ptrio_signal S;

/* Waits once, logs "<name><count>@<ms>" or "<name>!<ERR>@<ms>". */
struct waiter {
    ptrio_frame fr;
    const char *name;
    int rc;
};

static int waiter(ptrio_frame *fr)
{
    struct waiter *f = PTRIO_SELF(fr, struct waiter);
    PTRIO_BEGIN(f);
    PTRIO_TRY(f, f->rc, ptrio_signal_wait(f, &S));
    if (f->rc < 0)
        ev_err(f->name, f->rc);
    else
        logn_at(&L, f->name, f->rc);
    PTRIO_END(f);
}

/* Raises `n` times, then checkpoints (or sleeps `d` first when d > 0). */
struct raiser {
    ptrio_frame fr;
    int n;
    ptrio_time d;
};

static int raiser(ptrio_frame *fr)
{
    struct raiser *f = PTRIO_SELF(fr, struct raiser);
    int i;
    PTRIO_BEGIN(f);
    if (f->d > 0)
        PTRIO_AWAIT(f, ptrio_sleep(f, f->d));
    for (i = 0; i < f->n; i++)
        ptrio_signal_raise(&S);
    ev("raised", "");
    PTRIO_CHECKPOINT(f);
    PTRIO_END(f);
}

static void reset(void)
{
    memset(&S, 0, sizeof S);
    tlog_clear(&L);
}

/* ---- on the virtual clock ----------------------------------------------- */

struct pair {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[2];
    struct waiter w;
    struct raiser r;
};

static int pair_main(ptrio_frame *fr)
{
    struct pair *f = PTRIO_SELF(fr, struct pair);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], waiter, &f->w));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], raiser, &f->r));
    }
    PTRIO_END(f);
}

/* Three raises while the task waits wake it once, with the count 3, in
 * the batch after the raiser's. */
START_TEST(test_raises_coalesce)
{
    static struct pair f;
    reset();
    f = (struct pair){.w = {.name = "w"}, .r = {.n = 3, .d = PTRIO_MS(5)}};
    ck_assert_int_eq(run_virtual(pair_main, &f, NULL), 0);
    ck_assert_str_eq(L.buf, "raised@5 w3@5");
    ck_assert_int_eq(ptrio_signal_take(&S), 0);
    ck_assert_ptr_null(S.waiter);
    ck_assert_ptr_null(S.loop);
}
END_TEST

/* Raised before anyone waits: the wait takes the count at once, and is
 * still a checkpoint (a schedule point: the task started after it runs
 * first). */
struct early {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct marker m;
    int rc;
};

static int early_main(ptrio_frame *fr)
{
    struct early *f = PTRIO_SELF(fr, struct early);
    PTRIO_BEGIN(f);
    ptrio_signal_raise(&S);
    ptrio_signal_raise(&S);
    PTRIO_NURSERY(f, &f->n) {
        f->m.name = "m";
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, marker, &f->m));
        PTRIO_AWAIT(f, ptrio_signal_wait(f, &S));
        logn_at(&L, "main", PTRIO_RESULT(f));
    }
    PTRIO_END(f);
}

START_TEST(test_raised_before_wait)
{
    static struct early f;
    reset();
    f = (struct early){0};
    ck_assert_int_eq(run_virtual(early_main, &f, NULL), 0);
    ck_assert_str_eq(L.buf, "m@0 main2@0");
}
END_TEST

/* A cancelled wait: -ECANCELED (caught by its scope), the signal is
 * released, a later raise only counts, and the next wait takes it. */
struct cancelled {
    ptrio_frame fr;
    ptrio_scope sc;
    int rc2;
};

static int cancelled_main(ptrio_frame *fr)
{
    struct cancelled *f = PTRIO_SELF(fr, struct cancelled);
    PTRIO_BEGIN(f);
    PTRIO_MOVE_ON_AFTER(f, &f->sc, PTRIO_MS(10)) {
        PTRIO_AWAIT(f, ptrio_signal_wait(f, &S));
        ev("woken", "");
    }
    if (ptrio_cancelled_caught(&f->sc))
        ev("timed-out", "");
    if (S.waiter || S.loop)
        ev("still-bound", "");
    ptrio_signal_raise(&S);
    PTRIO_TRY(f, f->rc2, ptrio_signal_wait(f, &S));
    logn_at(&L, "again", f->rc2);
    PTRIO_END(f);
}

START_TEST(test_wait_is_cancellable)
{
    static struct cancelled f;
    reset();
    f = (struct cancelled){0};
    ck_assert_int_eq(run_virtual(cancelled_main, &f, NULL), 0);
    ck_assert_str_eq(L.buf, "timed-out@10 again1@10");
}
END_TEST

/* In a cancelled scope the wait fails at once, even with raises
 * pending, and leaves them for the next wait. */
struct precancel {
    ptrio_frame fr;
    ptrio_scope sc;
    int rc;
};

static int precancel_main(ptrio_frame *fr)
{
    struct precancel *f = PTRIO_SELF(fr, struct precancel);
    PTRIO_BEGIN(f);
    ptrio_signal_raise(&S);
    PTRIO_CANCEL_SCOPE(f, &f->sc) {
        ptrio_cancel(&f->sc);
        PTRIO_TRY(f, f->rc, ptrio_signal_wait(f, &S));
        ev_err("wait", f->rc);
    }
    logn_at(&L, "left", ptrio_signal_take(&S));
    PTRIO_END(f);
}

START_TEST(test_wait_when_cancelled)
{
    static struct precancel f;
    reset();
    f = (struct precancel){0};
    ck_assert_int_eq(run_virtual(precancel_main, &f, NULL), 0);
    ck_assert_str_eq(L.buf, "wait!PTRIO_ECANCELED@0 left1@0");
}
END_TEST

/* One waiter at a time: a second one gets -EBUSY; cancelling the first
 * frees the signal. */
struct two {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct waiter w;
    int rc;
};

static int two_main(ptrio_frame *fr)
{
    struct two *f = PTRIO_SELF(fr, struct two);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        f->w.name = "w";
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, waiter, &f->w));
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        PTRIO_TRY(f, f->rc, ptrio_signal_wait(f, &S));
        ev_err("second", f->rc);
        ptrio_nursery_cancel(&f->n);
    }
    ck_assert_ptr_null(S.waiter);
    PTRIO_END(f);
}

START_TEST(test_one_waiter)
{
    static struct two f;
    reset();
    f = (struct two){0};
    ck_assert_int_eq(run_virtual(two_main, &f, NULL), 0);
    ck_assert_str_eq(L.buf, "second!EBUSY@1 w!PTRIO_ECANCELED@1");
}
END_TEST

/* take: the count so far, without waiting; clamped to INT_MAX. */
START_TEST(test_take)
{
    reset();
    ck_assert_int_eq(ptrio_signal_take(&S), 0);
    ptrio_signal_raise(&S);
    ptrio_signal_raise(&S);
    ck_assert_int_eq(ptrio_signal_take(&S), 2);
    ck_assert_int_eq(ptrio_signal_take(&S), 0);
    S.count = (uint32_t)INT_MAX + 5u;
    ck_assert_int_eq(ptrio_signal_take(&S), INT_MAX);
    ck_assert_int_eq(ptrio_signal_take(NULL), 0);
    ptrio_signal_raise(NULL);       /* no effect */
}
END_TEST

/* Bad input: NULL signal, a frame that is not the running one, outside a
 * loop. */
struct bad {
    ptrio_frame fr;
    struct bad *other;
    int rc[2];
};

static int bad_main(ptrio_frame *fr)
{
    struct bad *f = PTRIO_SELF(fr, struct bad);
    PTRIO_BEGIN(f);
    PTRIO_TRY(f, f->rc[0], ptrio_signal_wait(f, NULL));
    PTRIO_TRY(f, f->rc[1], ptrio_signal_wait(f->other, &S));
    PTRIO_END(f);
}

START_TEST(test_bad_input)
{
    static struct bad f, other;
    reset();
    ck_assert_int_eq(ptrio_signal_wait(&other, &S), -PTRIO_ENOTASK);
    f = (struct bad){.other = &other};
    ck_assert_int_eq(run_virtual(bad_main, &f, NULL), 0);
    ck_assert_int_eq(f.rc[0], -PTRIO_EINVAL);
    ck_assert_int_eq(f.rc[1], -PTRIO_ENOTASK);
    ck_assert_ptr_null(S.waiter);
}
END_TEST

/* ---- raised from outside the loop --------------------------------------- */

/* Waits until `want` raises have arrived, counting wakes; gives up after
 * `limit` (a bound, never reached when the test passes). */
struct collect {
    ptrio_frame fr;
    ptrio_scope sc;
    int want, got, wakes;
    ptrio_time limit;
    void (*start)(void);
};

static int collect_main(ptrio_frame *fr)
{
    struct collect *f = PTRIO_SELF(fr, struct collect);
    PTRIO_BEGIN(f);
    PTRIO_FAIL_AFTER(f, &f->sc, f->limit) {
        f->start();
        while (f->got < f->want) {
            PTRIO_AWAIT(f, ptrio_signal_wait(f, &S));
            f->got += PTRIO_RESULT(f);
            f->wakes++;
        }
    }
    PTRIO_END(f);
}

static int run_collect(struct collect *f)
{
    ptrio_loop loop;
    loop_setup(&loop, ptrio_default_backend(), NULL);
    return ptrio_loop_run(&loop, collect_main, f);
}

/* A raise that lands after the loop polled its sources for the last time
 * and before the backend's wait sleeps (an interrupt there, simulated by
 * the before_io_wait hook) ends that wait at once: the wake is not lost
 * until the wait's deadline. */
static int late_raises;

static void raise_before_wait(void *ctx, ptrio_time deadline)
{
    (void)ctx;
    if (deadline != PTRIO_TIME_NINF && late_raises > 0) {
        late_raises--;
        ptrio_signal_raise(&S);
    }
}

static const ptrio_hooks late_hooks = {.before_io_wait = raise_before_wait};

static void no_start(void) {}

START_TEST(test_raise_just_before_the_wait)
{
    static struct collect f;
    ptrio_loop loop;
    ptrio_time t0;
    int i;

    for (i = 1; i <= 3; i++) {
        reset();
        late_raises = i;
        f = (struct collect){.want = i, .limit = PTRIO_SEC(5),
                             .start = no_start};
        loop_setup(&loop, ptrio_default_backend(), NULL);
        ptrio_loop_set_hooks(&loop, &late_hooks, NULL);
        t0 = ptrio_default_backend()->now(&loop);
        ck_assert_int_eq(ptrio_loop_run(&loop, collect_main, &f), 0);
        ck_assert_int_eq(f.got, i);
        ck_assert_int_eq(f.wakes, i);
        ck_assert(ptrio_default_backend()->now(&loop) - t0 < PTRIO_SEC(1));
    }
}
END_TEST

#ifndef TEST_QEMU
/* A raiser on another thread counts its raise, then is preempted before
 * it claims the wait's loop; the wait takes the count and ends, and the
 * next wait begins. The raiser then claims the new wait's loop and wakes
 * it, with nothing left to count. That wait must publish its loop again:
 * the next raise (from the hook, before the following backend wait) ends
 * it at once, not at its 2 s deadline. The raiser's two halves are
 * simulated on the loop's thread: the count before the first wait, the
 * claim (take `loop`, wake, done) in the hook before the second wait's
 * first sleep. */
static int stale_step;

/* The raiser's halves use the library's spelling of atomics (the fields
 * are _Atomic under PTRIO_CONF_STDATOMIC). */
#if PTRIO_CONF_STDATOMIC
#include <stdatomic.h>
#define RAISER_CLAIM(s) atomic_exchange(&(s)->loop, NULL)
#define RAISER_DONE(s) atomic_store_explicit(&(s)->woke, 1u, memory_order_release)
#define RAISER_COUNT(s) ((void)atomic_fetch_add(&(s)->count, 1u))
#else
#define RAISER_CLAIM(s) __atomic_exchange_n(&(s)->loop, NULL, __ATOMIC_SEQ_CST)
#define RAISER_DONE(s) __atomic_store_n(&(s)->woke, 1u, __ATOMIC_RELEASE)
#define RAISER_COUNT(s) ((void)__atomic_fetch_add(&(s)->count, 1u, __ATOMIC_SEQ_CST))
#endif

static void stale_claim_then_raise(void *ctx, ptrio_time deadline)
{
    ptrio_loop *l;

    (void)ctx;
    if (deadline == PTRIO_TIME_NINF)
        return;
    if (stale_step == 0 && S.waiter && S.count == 0u) {
        stale_step = 1;
        l = RAISER_CLAIM(&S);
        ck_assert_ptr_nonnull(l);
        ptrio_loop_wake(l);
        RAISER_DONE(&S);
    } else if (stale_step == 1) {
        stale_step = 2;
        ptrio_signal_raise(&S);
    }
}

static const ptrio_hooks stale_hooks = {
    .before_io_wait = stale_claim_then_raise};

static void count_half_of_a_raise(void)
{
    RAISER_COUNT(&S);
}

START_TEST(test_stale_raiser_claims_the_next_wait)
{
    static struct collect f;
    ptrio_loop loop;
    ptrio_time t0;

    reset();
    stale_step = 0;
    f = (struct collect){.want = 2, .limit = PTRIO_SEC(2),
                         .start = count_half_of_a_raise};
    loop_setup(&loop, ptrio_default_backend(), NULL);
    ptrio_loop_set_hooks(&loop, &stale_hooks, NULL);
    t0 = ptrio_default_backend()->now(&loop);
    ck_assert_int_eq(ptrio_loop_run(&loop, collect_main, &f), 0);
    ck_assert_int_eq(stale_step, 2);
    ck_assert_int_eq(f.got, 2);
    ck_assert_int_eq(f.wakes, 2);
    ck_assert(ptrio_default_backend()->now(&loop) - t0 < PTRIO_SEC(1));
}
END_TEST
#endif

#ifdef TEST_QEMU

/* The board's alarm interrupt raises: once, then a storm of raises from
 * `storm` interrupts in a row, each re-arming the alarm. */
static volatile int storm;

static void alarm_isr(void)
{
    ptrio_signal_raise(&S);
    if (storm > 1) {
        storm--;
        (void)qemu_alarm(50, alarm_isr);
    }
}

static void start_one(void) { ck_assert_int_eq(qemu_alarm(2000, alarm_isr), 0); }

START_TEST(test_timer_interrupt_raises)
{
    static struct collect f;
    reset();
    storm = 0;
    f = (struct collect){.want = 1, .limit = PTRIO_SEC(5), .start = start_one};
    ck_assert_int_eq(run_collect(&f), 0);
    ck_assert_int_eq(f.got, 1);
    ck_assert_int_eq(f.wakes, 1);
}
END_TEST

static void start_storm(void)
{
    storm = 200;
    ck_assert_int_eq(qemu_alarm(100, alarm_isr), 0);
}

/* Every raise counts exactly once, however the interrupts fall between
 * the task's waits. */
START_TEST(test_interrupt_storm_counts_every_raise)
{
    static struct collect f;
    reset();
    f = (struct collect){.want = 200, .limit = PTRIO_SEC(10),
                         .start = start_storm};
    ck_assert_int_eq(run_collect(&f), 0);
    ck_assert_int_eq(f.got, 200);
    ck_assert_int_ge(f.wakes, 1);
    ck_assert_int_le(f.wakes, 200);
}
END_TEST

#else /* a POSIX host */

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static pthread_t thread;
static int thread_raises;

static void *raise_thread(void *arg)
{
    int i;
    (void)arg;
    pause_ms(20);
    for (i = 0; i < thread_raises; i++)
        ptrio_signal_raise(&S);
    return NULL;
}

static void start_thread(void)
{
    ck_assert_int_eq(pthread_create(&thread, NULL, raise_thread, NULL), 0);
}

/* Another thread raises while the task sleeps in poll(): the wake pipe
 * ends the wait. */
START_TEST(test_thread_raises)
{
    static struct collect f;
    reset();
    thread_raises = 1;
    f = (struct collect){.want = 1, .limit = PTRIO_SEC(5),
                         .start = start_thread};
    ck_assert_int_eq(run_collect(&f), 0);
    pthread_join(thread, NULL);
    ck_assert_int_eq(f.got, 1);
    ck_assert_int_eq(f.wakes, 1);
}
END_TEST

/* 100,000 raises from a thread racing the task's waits: each counts
 * exactly once. */
START_TEST(test_thread_storm_counts_every_raise)
{
    static struct collect f;
    reset();
    thread_raises = 100000;
    f = (struct collect){.want = 100000, .limit = PTRIO_SEC(10),
                         .start = start_thread};
    ck_assert_int_eq(run_collect(&f), 0);
    pthread_join(thread, NULL);
    ck_assert_int_eq(f.got, 100000);
    ck_assert_int_ge(f.wakes, 1);
}
END_TEST

static pthread_t loop_thread;

static void on_sigusr1(int sig)
{
    (void)sig;
    ptrio_signal_raise(&S);         /* async-signal-safe */
}

static void *kill_thread(void *arg)
{
    (void)arg;
    pause_ms(20);
    pthread_kill(loop_thread, SIGUSR1);
    return NULL;
}

static void start_killer(void)
{
    ck_assert_int_eq(pthread_create(&thread, NULL, kill_thread, NULL), 0);
}

/* A POSIX signal handler raises, on the loop's thread, interrupting
 * poll(). */
START_TEST(test_signal_handler_raises)
{
    static struct collect f;
    struct sigaction sa, old;
    reset();
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigusr1;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, &old), 0);
    loop_thread = pthread_self();
    f = (struct collect){.want = 1, .limit = PTRIO_SEC(5),
                         .start = start_killer};
    ck_assert_int_eq(run_collect(&f), 0);
    pthread_join(thread, NULL);
    sigaction(SIGUSR1, &old, NULL);
    ck_assert_int_eq(f.got, 1);
    ck_assert_int_eq(f.wakes, 1);
}
END_TEST


/* A raiser thread outlives many loops: each run waits once and ends, and
 * its loop's storage is then scribbled over and reused. No raise may touch
 * a loop after its wait ended (the raise that read `loop` just before is
 * waited for): a raise reaching a scribbled loop would crash on its
 * backend pointer. */
static volatile int outlive_stop;

static void *outlive_thread(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&outlive_stop, __ATOMIC_ACQUIRE)) {
        ptrio_signal_raise(&S);
        sched_yield();      /* valgrind runs one thread at a time */
    }
    return NULL;
}

START_TEST(test_raiser_outlives_the_loop)
{
    static struct collect f;
    static ptrio_loop loop;
    int i;
    reset();
    outlive_stop = 0;
    ck_assert_int_eq(pthread_create(&thread, NULL, outlive_thread, NULL), 0);
    for (i = 0; i < 2000; i++) {
        f = (struct collect){.want = 1, .limit = PTRIO_SEC(5),
                             .start = no_start};
        loop_setup(&loop, ptrio_default_backend(), NULL);
        ck_assert_int_eq(ptrio_loop_run(&loop, collect_main, &f), 0);
        ck_assert_int_ge(f.got, 1);
        memset(&loop, 0xa5, sizeof loop);
    }
    __atomic_store_n(&outlive_stop, 1, __ATOMIC_RELEASE);
    pthread_join(thread, NULL);
}
END_TEST

/* Two loops, each on a thread of its own, wait on one signal in turn
 * (short waits, each ended by a deadline) while a third thread raises:
 * one waits at a time and the other gets -EBUSY, the end of one's wait
 * never tangles with the other's start, and every raise is counted by
 * exactly one of them. */
static int share_stop;
static int share_raises;

struct sharer {
    ptrio_frame fr;
    ptrio_scope sc;
    int rc, got, busy;
    int waits;                      /* waits that got the slot (atomic) */
    ptrio_loop loop;
};

static int sharer_main(ptrio_frame *fr)
{
    struct sharer *f = PTRIO_SELF(fr, struct sharer);
    PTRIO_BEGIN(f);
    while (!__atomic_load_n(&share_stop, __ATOMIC_ACQUIRE)) {
        f->rc = 0;
        PTRIO_MOVE_ON_AFTER(f, &f->sc, PTRIO_US(50)) {
            PTRIO_TRY(f, f->rc, ptrio_signal_wait(f, &S));
            if (f->rc > 0)
                f->got += f->rc;
            else if (f->rc == -PTRIO_EBUSY)
                f->busy++;
            else if (f->rc != -PTRIO_ECANCELED)     /* the deadline came */
                ck_abort_msg("wait: %d", f->rc);
        }
        if (f->rc == -PTRIO_EBUSY) {
            sched_yield();          /* valgrind runs one thread at a time */
            PTRIO_CHECKPOINT(f);
        }
        else
            __atomic_add_fetch(&f->waits, 1, __ATOMIC_RELAXED);
    }
    PTRIO_END(f);
}

static void *share_thread(void *arg)
{
    struct sharer *f = arg;

    ptrio_loop_init(&f->loop);      /* reports to stderr */
    if (ptrio_loop_use_backend(&f->loop, ptrio_default_backend()) == 0)
        f->rc = ptrio_loop_run(&f->loop, sharer_main, &f->fr);
    return NULL;
}

static void *share_raiser(void *arg)
{
    int i;
    (void)arg;
    for (i = 0; i < share_raises; i++) {
        ptrio_signal_raise(&S);
        if (i % 8 == 0)
            sched_yield();
    }
    return NULL;
}

START_TEST(test_two_loops_share_a_signal)
{
    static struct sharer f[2];
    struct timespec t0, t1;
    pthread_t t[2];
    int i;

    reset();
    share_stop = 0;
    share_raises = RUNNING_ON_VALGRIND ? 2000 : 50000;
    for (i = 0; i < 2; i++) {
        memset(&f[i], 0, sizeof f[i]);
        f[i].rc = -1;
        ck_assert_int_eq(pthread_create(&t[i], NULL, share_thread, &f[i]), 0);
    }
    ck_assert_int_eq(pthread_create(&thread, NULL, share_raiser, NULL), 0);
    pthread_join(thread, NULL);
    /* then waits that end by their deadline, handed from loop to loop,
     * for 2 s at most (the loops spin: a loaded host runs this late) */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        pause_ms(1);
        clock_gettime(CLOCK_MONOTONIC, &t1);
    } while ((__atomic_load_n(&f[0].waits, __ATOMIC_RELAXED) < 500 ||
              __atomic_load_n(&f[1].waits, __ATOMIC_RELAXED) < 500) &&
             t1.tv_sec - t0.tv_sec < 2);
    __atomic_store_n(&share_stop, 1, __ATOMIC_RELEASE);
    for (i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(f[i].rc, 0);
    }
    ck_assert_int_eq(f[0].got + f[1].got + ptrio_signal_take(&S),
                     share_raises);

}
END_TEST

#endif

int main(void)
{
    Suite *s = suite_create("signal");
    TCase *tc = tcase_create("signal");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_raises_coalesce);
    tcase_add_test(tc, test_raised_before_wait);
    tcase_add_test(tc, test_wait_is_cancellable);
    tcase_add_test(tc, test_wait_when_cancelled);
    tcase_add_test(tc, test_one_waiter);
    tcase_add_test(tc, test_take);
    tcase_add_misuse_test(tc, test_bad_input);
    tcase_add_test(tc, test_raise_just_before_the_wait);
#ifdef TEST_QEMU
    tcase_add_test(tc, test_timer_interrupt_raises);
    tcase_add_test(tc, test_interrupt_storm_counts_every_raise);
#else
    tcase_add_test(tc, test_thread_raises);
    tcase_add_test(tc, test_thread_storm_counts_every_raise);
    tcase_add_test(tc, test_signal_handler_raises);
    tcase_add_test(tc, test_raiser_outlives_the_loop);
    tcase_add_test(tc, test_two_loops_share_a_signal);
    tcase_add_test(tc, test_stale_raiser_claims_the_next_wait);
#endif
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
