/* tests/check_toolkit_host.c: the toolkit (issue 10) over real time: the
 * mock clock on the poll backend with real-time autojump thresholds,
 * wait_all_tasks_blocked with real cushions, the deadlock detector on
 * the poll backend (firing, and not firing for a task that a thread
 * wakes through a ptrio_source or a pipe), and two threads each running
 * a loop with its own mock clock. Host-only: POSIX threads and pipes.
 * Real time is only bounded from below by what a test asks and from
 * above by a generous limit, never compared exactly. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

/* Real time, monotonic, in ns. */
static ptrio_time real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (ptrio_time)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* The upper bound of anything a test waits for in real time: far above
 * what it asks, to stay reliable on a loaded machine. */
#define GENEROUS PTRIO_SEC(5)

/* A loop on the default (poll) backend with a mock clock; reports go to
 * `rep` (may be NULL). */
static void mock_loop(ptrio_loop *loop, ptrio_mock_clock *c, ptrio_time jump,
                      treport *rep)
{
    ptrio_loop_init(loop);
    if (rep) {
        memset(rep, 0, sizeof *rep);
        ptrio_loop_set_report(loop, treport_sink, rep);
    } else {
        ptrio_loop_set_report(loop, NULL, NULL);
    }
    ptrio_mock_clock_init(c, 0);
    ptrio_mock_clock_set_autojump(c, jump);
    ck_assert_int_eq(ptrio_loop_use_clock(loop, &c->clock), 0);
}

/* ---- the mock clock over poll ---------------------------------------- */

struct hour { ptrio_frame fr; int i, n; ptrio_time d, real[4]; };

static int hour(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct hour, f);
    for (f->i = 0; f->i < f->n; f->i++) {
        f->real[f->i] = real_ns();
        PTRIO_AWAIT(f, ptrio_sleep(f, f->d));
        f->real[f->i] = real_ns() - f->real[f->i];
    }
    PTRIO_END(f);
}

/* Trio: test_mock_clock.py::test_mock_clock_autojump, on a real backend:
 * at threshold 0 an hour of sleeps takes no noticeable real time and the
 * clock reads exactly an hour. */
START_TEST(test_poll_autojump_0)
{
    static ptrio_loop loop;
    static ptrio_mock_clock c;
    static struct hour f;
    ptrio_time t0;

    mock_loop(&loop, &c, 0, NULL);
    f = (struct hour){.n = 4, .d = PTRIO_SEC(900)};
    t0 = real_ns();
    ck_assert_int_eq(ptrio_loop_run(&loop, hour, &f), 0);
    ck_assert_int_lt(real_ns() - t0, PTRIO_SEC(1));
    ck_assert_int_eq(ptrio_mock_clock_now(&c), PTRIO_SEC(3600));
}
END_TEST

/* A threshold of 30 ms: each jump waits until every task has been
 * blocked that long in real time. */
START_TEST(test_poll_autojump_threshold)
{
    static ptrio_loop loop;
    static ptrio_mock_clock c;
    static struct hour f;
    int i;

    mock_loop(&loop, &c, PTRIO_MS(30), NULL);
    f = (struct hour){.n = 3, .d = PTRIO_SEC(3600)};
    ck_assert_int_eq(ptrio_loop_run(&loop, hour, &f), 0);
    for (i = 0; i < 3; i++) {
        ck_assert_int_ge(f.real[i], PTRIO_MS(30));
        ck_assert_int_lt(f.real[i], GENEROUS);
    }
    ck_assert_int_eq(ptrio_mock_clock_now(&c), PTRIO_SEC(3 * 3600));
}
END_TEST

struct interf {
    ptrio_frame fr;
    ptrio_mock_clock c2;
    ptrio_time t[2], v;
};

static int interf(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct interf, f);
    ptrio_mock_clock_init(&f->c2, 0);
    ptrio_mock_clock_set_autojump(&f->c2, PTRIO_MS(10));
    f->t[0] = real_ns();
    PTRIO_AWAIT(f, ptrio_wait_all_tasks_blocked(f, PTRIO_MS(15)));
    f->t[0] = real_ns() - f->t[0];
    f->v = ptrio_now();
    f->t[1] = real_ns();
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(100000)));
    f->t[1] = real_ns() - f->t[1];
    PTRIO_END(f);
}

/* Trio: test_mock_clock.py::test_mock_clock_autojump_interference, in
 * real time: the 15 ms cushion passes before the 20 ms threshold (the
 * clock did not move), then the threshold applies to the sleep. */
START_TEST(test_poll_autojump_interference)
{
    static ptrio_loop loop;
    static ptrio_mock_clock c;
    static struct interf f;

    mock_loop(&loop, &c, PTRIO_MS(20), NULL);
    f = (struct interf){0};
    ck_assert_int_eq(ptrio_loop_run(&loop, interf, &f), 0);
    ck_assert_int_ge(f.t[0], PTRIO_MS(15));
    ck_assert_int_lt(f.t[0], GENEROUS);
    ck_assert_int_eq(f.v, 0);
    ck_assert_int_ge(f.t[1], PTRIO_MS(20));
    ck_assert_int_lt(f.t[1], GENEROUS);
    ck_assert_int_eq(ptrio_mock_clock_now(&c), PTRIO_SEC(100000));
}
END_TEST

/* ---- a thread, a pipe, a source ------------------------------------- */

/* A thread that sleeps, then writes a byte into a pipe or raises a
 * flag and wakes a loop. */
struct later {
    pthread_t th;
    int ms;
    int fd;                 /* >= 0: write a byte there */
    ptrio_loop *loop;       /* else: raise `flag`, wake this loop */
    pthread_mutex_t mu;
    int flag;
};

static void *later_main(void *arg)
{
    struct later *w = arg;
    char b = 'x';

    sleep_ms(w->ms);
    if (w->fd >= 0) {
        if (write(w->fd, &b, 1) != 1)
            abort();
    } else {
        /* The wake goes out before the loop can see the flag (its poll
         * takes the mutex): the loop cannot end, and close its wake
         * pipe, under a wake still being written. */
        pthread_mutex_lock(&w->mu);
        w->flag = 1;
        ptrio_loop_wake(w->loop);
        pthread_mutex_unlock(&w->mu);
    }
    return NULL;
}

static void later_start(struct later *w, int ms, int fd, ptrio_loop *loop)
{
    w->ms = ms;
    w->fd = fd;
    w->loop = loop;
    w->flag = 0;
    pthread_mutex_init(&w->mu, NULL);
    ck_assert_int_eq(pthread_create(&w->th, NULL, later_main, w), 0);
}

static void later_join(struct later *w)
{
    pthread_join(w->th, NULL);
    pthread_mutex_destroy(&w->mu);
}

/* The source's poll, on the loop's thread: the flag, once, sets the
 * event. Its container holds the source first. */
struct thread_source {
    ptrio_source src;
    struct later *w;
    ptrio_event ev;
};

static void thread_poll(ptrio_source *src)
{
    struct thread_source *ts = (struct thread_source *)(void *)src;
    int raised;

    pthread_mutex_lock(&ts->w->mu);
    raised = ts->w->flag;
    ts->w->flag = 0;
    pthread_mutex_unlock(&ts->w->mu);
    if (raised) {
        ptrio_event_set(&ts->ev);
        ptrio_source_remove(src);
    }
}

struct src_main {
    ptrio_frame fr;
    struct thread_source ts;
    ptrio_nursery n;
    ptrio_task t;
    struct hour sleeper;
    int with_sleeper;
    ptrio_time woke_real, woke_virtual;
};

static int src_main(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct src_main, f);
    PTRIO_CHECK(f, ptrio_source_add(&f->ts.src, thread_poll));
    PTRIO_NURSERY(f, &f->n) {
        if (f->with_sleeper) {
            f->sleeper = (struct hour){.n = 1, .d = PTRIO_SEC(3600)};
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, hour, &f->sleeper));
        }
        PTRIO_AWAIT(f, ptrio_event_wait(f, &f->ts.ev));
        f->woke_real = real_ns();
        f->woke_virtual = ptrio_now();
    }
    PTRIO_END(f);
}

/* A task waiting for what a thread raises through a ptrio_source (with
 * nothing else in the loop that could wake anyone) is not a deadlock:
 * the source may still fire. It wakes after the thread's 30 ms. With a
 * mock clock at threshold 0 and a task asleep for an hour beside it, the
 * sleeper's hour jumps by at once, and the source still wakes the other. */
START_TEST(test_source_from_thread_not_deadlock)
{
    static ptrio_loop loop;
    static ptrio_mock_clock c;
    static struct src_main f;
    static struct later w;
    treport rep;
    ptrio_time t0;
    int pass;

    for (pass = 0; pass < 2; pass++) {
        if (pass == 0) {
            ptrio_loop_init(&loop);
            memset(&rep, 0, sizeof rep);
            ptrio_loop_set_report(&loop, treport_sink, &rep);
        } else {
            mock_loop(&loop, &c, 0, &rep);
        }
        f = (struct src_main){.with_sleeper = pass};
        f.ts.w = &w;
        t0 = real_ns();
        later_start(&w, 30, -1, &loop);
        ck_assert_int_eq(ptrio_loop_run(&loop, src_main, &f), 0);
        later_join(&w);
        ck_assert_int_eq(rep.count, 0);
        ck_assert_int_ge(f.woke_real - t0, PTRIO_MS(30));
        ck_assert_int_lt(f.woke_real - t0, GENEROUS);
        if (pass) {
            ck_assert_int_eq(f.woke_virtual, PTRIO_SEC(3600));
            ck_assert_int_lt(f.sleeper.real[0], PTRIO_MS(30));
        }
    }
}
END_TEST

/* A clock that autojumps, with no deadline to jump to: the loop waits
 * for what can still come (the thread's source), it does not spin on
 * zero-length waits: a handful of backend waits over the thread's 50 ms,
 * not thousands. */
static int io_waits;

static void count_wait(void *ctx, ptrio_time deadline)
{
    (void)ctx;
    (void)deadline;
    io_waits++;
}

START_TEST(test_autojump_nothing_to_jump_to)
{
    static const ptrio_hooks hooks = {.before_io_wait = count_wait};
    static ptrio_loop loop;
    static ptrio_mock_clock c;
    static struct src_main f;
    static struct later w;
    static ptrio_instrument inst;
    treport rep;

    mock_loop(&loop, &c, 0, &rep);
    ck_assert_int_eq(ptrio_loop_add_instrument(&loop, &inst, &hooks, NULL),
                     0);
    io_waits = 0;
    f = (struct src_main){0};
    f.ts.w = &w;
    later_start(&w, 50, -1, &loop);
    ck_assert_int_eq(ptrio_loop_run(&loop, src_main, &f), 0);
    later_join(&w);
    ck_assert_int_eq(rep.count, 0);
    ck_assert_int_le(io_waits, 3);
}
END_TEST

/* ---- an early return of the backend's wait --------------------------- */

/* The first wait with a deadline returns at once: a wake, as from a
 * thread or a signal handler (a backend's wait may return early). */
static int early_wakes;

static void wake_once(void *ctx, ptrio_time deadline)
{
    if (early_wakes == 0 && deadline != PTRIO_TIME_NINF) {
        early_wakes++;
        ptrio_loop_wake(ctx);
    }
}

struct blocked_for { ptrio_frame fr; ptrio_time cushion, sleep, real; };

static int blocked_for(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct blocked_for, f);
    f->real = real_ns();
    if (f->cushion > 0)
        PTRIO_AWAIT(f, ptrio_wait_all_tasks_blocked(f, f->cushion));
    else
        PTRIO_AWAIT(f, ptrio_sleep(f, f->sleep));
    f->real = real_ns() - f->real;
    PTRIO_END(f);
}

/* Trio acts on a cushion or an autojump threshold only when its wait
 * timed out with nothing to do (_run.py: idle_primed with no events).
 * Here a wait woken early with nothing to run waits out the rest of it:
 * a 50 ms cushion, or threshold, lasts 50 ms of real time even when the
 * first wait is woken at once. */
START_TEST(test_early_wake_restarts_the_cushion)
{
    static const ptrio_hooks hooks = {.before_io_wait = wake_once};
    static ptrio_loop loop;
    static ptrio_mock_clock c;
    static ptrio_instrument inst;
    static struct blocked_for f;

    ptrio_loop_init(&loop);
    ck_assert_int_eq(ptrio_loop_add_instrument(&loop, &inst, &hooks, &loop),
                     0);
    early_wakes = 0;
    f = (struct blocked_for){.cushion = PTRIO_MS(50)};
    ck_assert_int_eq(ptrio_loop_run(&loop, blocked_for, &f), 0);
    ck_assert_int_eq(early_wakes, 1);
    ck_assert_int_ge(f.real, PTRIO_MS(50));
    ck_assert_int_lt(f.real, GENEROUS);
    ptrio_loop_remove_instrument(&loop, &inst);

    mock_loop(&loop, &c, PTRIO_MS(50), NULL);
    ck_assert_int_eq(ptrio_loop_add_instrument(&loop, &inst, &hooks, &loop),
                     0);
    early_wakes = 0;
    f = (struct blocked_for){.sleep = PTRIO_SEC(3600)};
    ck_assert_int_eq(ptrio_loop_run(&loop, blocked_for, &f), 0);
    ck_assert_int_eq(early_wakes, 1);
    ck_assert_int_ge(f.real, PTRIO_MS(50));
    ck_assert_int_lt(f.real, GENEROUS);
    ck_assert_int_eq(ptrio_mock_clock_now(&c), PTRIO_SEC(3600));
    ptrio_loop_remove_instrument(&loop, &inst);
}
END_TEST

/* A deadline that expires and wakes no task (a scope's, over a shielded
 * sleep) starts the threshold again, as Trio's idle_primed = None when
 * deadlines expire: two thresholds of real time, one per jump. */
struct shielded_past { ptrio_frame fr; ptrio_scope outer, sh; ptrio_time real; };

static int shielded_past(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct shielded_past, f);
    f->real = real_ns();
    PTRIO_MOVE_ON_AFTER(f, &f->outer, PTRIO_SEC(3600)) {
        PTRIO_SHIELD(f, &f->sh) {
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(7200)));
        }
    }
    f->real = real_ns() - f->real;
    PTRIO_END(f);
}

START_TEST(test_expired_deadline_restarts_the_threshold)
{
    static ptrio_loop loop;
    static ptrio_mock_clock c;
    static struct shielded_past f;

    mock_loop(&loop, &c, PTRIO_MS(40), NULL);
    f = (struct shielded_past){0};
    ck_assert_int_eq(ptrio_loop_run(&loop, shielded_past, &f), 0);
    ck_assert_int_ge(f.real, PTRIO_MS(80));
    ck_assert_int_lt(f.real, GENEROUS);
    ck_assert_int_eq(ptrio_mock_clock_now(&c), PTRIO_SEC(7200));
}
END_TEST

/* Misuse outside a running loop has no loop's sink: a debug build says
 * it on the default one (stderr) before it traps, never silently; a
 * normal build refuses the call quietly. */
START_TEST(test_misuse_outside_a_loop_is_said)
{
    int p[2], status;
    char buf[512];
    ssize_t n, got = 0;
    pid_t pid;

    ck_assert_int_eq(pipe(p), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(p[1], 2);
        close(p[0]);
        ptrio_loop_set_hooks(NULL, NULL, NULL);
        _exit(0);
    }
    close(p[1]);
    while ((n = read(p[0], buf + got, sizeof buf - 1 - (size_t)got)) > 0)
        got += n;
    buf[got] = '\0';
    close(p[0]);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
#ifdef PTRIO_DEBUG
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGILL);
    ck_assert_ptr_nonnull(strstr(buf, "misuse: hooks for a NULL loop"));
#else
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_str_eq(buf, "");
#endif
}
END_TEST

static int nonblocking_pipe(int p[2])
{
    if (pipe(p) < 0)
        return -1;
    return fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
}

/* Waits for a byte on `fd`, then sets the event the other waits on. */
struct reader {
    ptrio_frame fr;
    int fd, rc;
    ptrio_event *then_set;
};

static int reader(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct reader, f);
    PTRIO_AWAIT(f, ptrio_wait_readable(f, f->fd));
    {
        char b;
        f->rc = (int)read(f->fd, &b, 1);
    }
    ptrio_event_set(f->then_set);
    PTRIO_END(f);
}

struct waiter { ptrio_frame fr; ptrio_event *e; ptrio_time cushion; int woke; };

static int waiter(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct waiter, f);
    if (f->cushion >= 0)
        PTRIO_AWAIT(f, ptrio_wait_all_tasks_blocked(f, f->cushion));
    else
        PTRIO_AWAIT(f, ptrio_event_wait(f, f->e));
    f->woke = 1;
    PTRIO_END(f);
}

struct fd_main {
    ptrio_frame fr;
    ptrio_event e;
    ptrio_nursery n;
    ptrio_task t[3];
    struct reader r;
    struct waiter w, idle;
    ptrio_time idle_real;
};

static int fd_main(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct fd_main, f);
    PTRIO_NURSERY(f, &f->n) {
        f->r.then_set = f->w.e = &f->e;
        f->w.cushion = -1;
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], reader, &f->r));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], waiter, &f->w));
        if (f->idle.cushion > 0)
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[2], waiter,
                                            &f->idle));
        f->idle_real = real_ns();
    }
    PTRIO_END(f);
}

/* A task in an fd wait is not a deadlock, even when every other task
 * waits on it: the fd may become ready (a thread writes after 30 ms).
 * And a task waiting in an fd wait counts as blocked for
 * wait_all_tasks_blocked: a 10 ms cushion passes while the reader
 * waits. */
START_TEST(test_fd_wait_not_deadlock)
{
    static ptrio_loop loop;
    static struct fd_main f;
    static struct later w;
    treport rep;
    ptrio_time t0;
    int p[2];

    ck_assert_int_eq(nonblocking_pipe(p), 0);
    ptrio_loop_init(&loop);
    memset(&rep, 0, sizeof rep);
    ptrio_loop_set_report(&loop, treport_sink, &rep);
    f = (struct fd_main){0};
    f.r.fd = p[0];
    f.idle.cushion = PTRIO_MS(10);
    t0 = real_ns();
    later_start(&w, 30, p[1], &loop);
    ck_assert_int_eq(ptrio_loop_run(&loop, fd_main, &f), 0);
    later_join(&w);
    ck_assert_int_eq(rep.count, 0);
    ck_assert_int_eq(f.r.rc, 1);
    ck_assert_int_eq(f.w.woke, 1);
    ck_assert_int_eq(f.idle.woke, 1);
    ck_assert_int_ge(real_ns() - t0, PTRIO_MS(30));
    close(p[0]);
    close(p[1]);
}
END_TEST

/* ---- the deadlock detector on poll ----------------------------------- */

struct each_other { ptrio_frame fr; ptrio_event *wait_for, *then_set; };

static int each_other(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct each_other, f);
    PTRIO_AWAIT(f, ptrio_event_wait(f, f->wait_for));
    ptrio_event_set(f->then_set);
    PTRIO_END(f);
}

struct dl_main {
    ptrio_frame fr;
    ptrio_event ea, eb;
    ptrio_nursery n;
    ptrio_task t[2];
    struct each_other k[2];
    struct hour h;
    ptrio_task ht;
    int with_sleeper;
};

static int dl_main(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct dl_main, f);
    PTRIO_NURSERY(f, &f->n) {
        f->k[0].wait_for = &f->eb;
        f->k[0].then_set = &f->ea;
        f->k[1].wait_for = &f->ea;
        f->k[1].then_set = &f->eb;
        PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[0], each_other,
                                              &f->k[0], "a"));
        PTRIO_CHECK(f, ptrio_start_soon_named(&f->n, &f->t[1], each_other,
                                              &f->k[1], "b"));
        if (f->with_sleeper) {
            f->h = (struct hour){.n = 1, .d = PTRIO_SEC(3600)};
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->ht, hour, &f->h));
        }
    }
    PTRIO_END(f);
}

/* On the poll backend a deadlock is found at once, not after a timeout:
 * nothing is ready, no deadline, no fd, no source. With a mock clock
 * (threshold 0) and an hour's sleeper, the hour passes first, then the
 * two are found stuck. */
START_TEST(test_deadlock_on_poll)
{
    static ptrio_loop loop;
    static ptrio_mock_clock c;
    static struct dl_main f;
    treport rep;
    ptrio_time t0;
    int pass;

    for (pass = 0; pass < 2; pass++) {
        if (pass == 0) {
            ptrio_loop_init(&loop);
            memset(&rep, 0, sizeof rep);
            ptrio_loop_set_report(&loop, treport_sink, &rep);
        } else {
            mock_loop(&loop, &c, 0, &rep);
        }
        f = (struct dl_main){.with_sleeper = pass};
        t0 = real_ns();
        ck_assert_int_eq(ptrio_loop_run(&loop, dl_main, &f), -PTRIO_EDEADLK);
        ck_assert_int_lt(real_ns() - t0, PTRIO_SEC(1));
        ck_assert_int_eq(count_of(rep.lines.buf, "ptrio: deadlock:"), 1);
        ck_assert_int_eq(count_of(rep.lines.buf, "parked in a lot"),
                         PTRIO_CONF_DEADLOCK_DUMP ? 2 : 0);
        if (pass)
            ck_assert_int_eq(ptrio_mock_clock_now(&c), PTRIO_SEC(3600));
    }
}
END_TEST

/* ---- two threads, two loops, two clocks ------------------------------- */

/* Both threads' main tasks meet here, so the two loops certainly run at
 * the same time (bounded: 10 s, then `met` stays 0). */
static pthread_mutex_t meet_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t meet_cv = PTHREAD_COND_INITIALIZER;
static int meet_count;

static int meet(void)
{
    struct timespec until;
    int ok = 1;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&meet_mu);
    meet_count++;
    pthread_cond_broadcast(&meet_cv);
    while (meet_count < 2 && ok)
        ok = pthread_cond_timedwait(&meet_cv, &meet_mu, &until) == 0 ||
             meet_count >= 2;
    pthread_mutex_unlock(&meet_mu);
    return meet_count >= 2;
}

struct thread_prog {
    ptrio_frame fr;
    int deadlocks, met;
    struct dl_main dl;
    struct hour h;
};

static int thread_prog(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct thread_prog, f);
    f->met = meet();
    if (f->deadlocks) {
        PTRIO_CALL(f, dl_main, &f->dl);
    } else {
        f->h = (struct hour){.n = 2, .d = PTRIO_SEC(50)};
        PTRIO_CALL(f, hour, &f->h);
    }
    PTRIO_END(f);
}

struct stamps { ptrio_frame fr; ptrio_time start, end; };

static int stamps(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct stamps, f);
    f->start = ptrio_now();
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(20)));
    f->end = ptrio_now();
    PTRIO_END(f);
}

/* A mock clock at real time stands still between runs, also when the
 * same loop runs again (Trio's clock starts with each run: start_clock):
 * the second run's first reading is the first run's last, give or take
 * the little real time inside the runs, not 500 ms later. */
START_TEST(test_mock_clock_stands_still_between_runs)
{
    static ptrio_loop loop;
    static ptrio_mock_clock c;
    static struct stamps a, b;

    mock_loop(&loop, &c, PTRIO_TIME_INF, NULL);
    ptrio_mock_clock_set_rate(&c, 1000);
    memset(&a, 0, sizeof a);
    ck_assert_int_eq(ptrio_loop_run(&loop, stamps, &a), 0);
    ck_assert(a.end - a.start >= PTRIO_MS(20));
    sleep_ms(500);
    ck_assert(ptrio_mock_clock_now(&c) - a.end < PTRIO_MS(250));
    memset(&b, 0, sizeof b);
    ck_assert_int_eq(ptrio_loop_run(&loop, stamps, &b), 0);
    ck_assert(b.start >= a.end);
    ck_assert_msg(b.start - a.end < PTRIO_MS(250), "%ld ms between runs",
                  (long)((b.start - a.end) / 1000000));
}
END_TEST

struct thread_run {
    pthread_t th;
    ptrio_loop loop;
    ptrio_mock_clock clock;
    treport rep;
    struct thread_prog prog;
    int rc;
    ptrio_time now;
};

static void *thread_main(void *arg)
{
    struct thread_run *r = arg;

    r->rc = ptrio_loop_run(&r->loop, thread_prog, &r->prog);
    r->now = ptrio_mock_clock_now(&r->clock);
    return NULL;
}

/* Each thread's loop has its own mock clock and its own detector: one
 * thread's deadlock is reported to its own sink and ends its own run,
 * while the other's clock jumps through 100 s undisturbed. */
START_TEST(test_two_threads)
{
    static struct thread_run r[2];
    int i;

    meet_count = 0;
    for (i = 0; i < 2; i++) {
        memset(&r[i], 0, sizeof r[i]);
        mock_loop(&r[i].loop, &r[i].clock, 0, &r[i].rep);
        r[i].prog.deadlocks = i;
        ck_assert_int_eq(pthread_create(&r[i].th, NULL, thread_main, &r[i]),
                         0);
    }
    for (i = 0; i < 2; i++)
        pthread_join(r[i].th, NULL);
    ck_assert_int_eq(r[0].prog.met, 1);
    ck_assert_int_eq(r[1].prog.met, 1);
    ck_assert_int_eq(r[0].rc, 0);
    ck_assert_int_eq(r[0].rep.count, 0);
    ck_assert_int_eq(r[0].now, PTRIO_SEC(100));
    ck_assert_int_eq(r[1].rc, -PTRIO_EDEADLK);
    ck_assert_int_eq(count_of(r[1].rep.lines.buf, "ptrio: deadlock:"), 1);
    ck_assert_int_eq(r[1].now, 0);
    ck_assert_ptr_null(ptrio_current_loop());
}
END_TEST

int main(void)
{
    Suite *s = suite_create("toolkit_host");
    TCase *tc = tcase_create("toolkit_host");
    SRunner *sr;
    int failed;

    tlog_clear(&L);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_poll_autojump_0);
    tcase_add_test(tc, test_poll_autojump_threshold);
    tcase_add_test(tc, test_poll_autojump_interference);
    tcase_add_test(tc, test_source_from_thread_not_deadlock);
    tcase_add_test(tc, test_autojump_nothing_to_jump_to);
    tcase_add_test(tc, test_early_wake_restarts_the_cushion);
    tcase_add_test(tc, test_misuse_outside_a_loop_is_said);
    tcase_add_test(tc, test_expired_deadline_restarts_the_threshold);
    tcase_add_test(tc, test_fd_wait_not_deadlock);
    tcase_add_test(tc, test_deadlock_on_poll);
    tcase_add_test(tc, test_mock_clock_stands_still_between_runs);
    tcase_add_test(tc, test_two_threads);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
