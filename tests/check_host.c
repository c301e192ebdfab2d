/* tests/check_host.c: what only a hosted (POSIX) build has: the current
 * loop is per thread, and ptrio_loop_wake on a loop that is not running
 * touches no file descriptor (issue 6, sections 1 and 3).
 * Host-only: POSIX threads, pipes and dup2. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

/* ---- 17. one current loop per thread ------------------------------- */

/* Both threads' tasks wait here until the other thread's loop runs too,
 * so that the two loops are certainly running at the same time (bounded:
 * 10 s of real time, then `met` stays 0). */
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

/* A thread's program: a nursery of three sleepers (durations scaled by
 * the thread's number), one of which meets the other thread; each logs
 * into the thread's own log. */
struct tprog;

struct tkid {
    ptrio_frame fr;
    struct tprog *p;
    const char *name;
    ptrio_time d;
    int meets;
};

struct tprog {
    ptrio_frame fr;
    tlog log;
    int k;                  /* 1 or 2 */
    ptrio_nursery n;
    ptrio_task t[3];
    struct tkid kid[3];
    ptrio_loop *loop;       /* the loop the thread runs */
    ptrio_loop *seen[4];    /* ptrio_current_loop() at each step */
    int met;
    int i;
};

static int tkid(ptrio_frame *fr)
{
    struct tkid *f = PTRIO_SELF(fr, struct tkid);
    PTRIO_BEGIN(f);
    if (f->meets) {
        f->p->met = meet();
        f->p->seen[2] = ptrio_current_loop();
    }
    PTRIO_AWAIT(f, ptrio_sleep(f, f->d));
    tlog_at(&f->p->log, f->name);
    PTRIO_END(f);
}

static int tprog(ptrio_frame *fr)
{
    struct tprog *f = PTRIO_SELF(fr, struct tprog);
    static const char *const names[] = {"a", "b", "c"};
    PTRIO_BEGIN(f);
    f->seen[0] = ptrio_current_loop();
    PTRIO_NURSERY(f, &f->n) {
        for (f->i = 0; f->i < 3; f->i++) {
            f->kid[f->i] = (struct tkid){
                .p = f, .name = names[f->i],
                .d = PTRIO_SEC(3 - f->i) * f->k, .meets = f->i == 0};
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[f->i], tkid,
                                            &f->kid[f->i]));
        }
    }
    f->seen[1] = ptrio_current_loop();
    tlog_at(&f->log, "done");
    PTRIO_RETURN(f, 10 * f->k);
    PTRIO_END(f);
}

struct thread_run {
    struct tprog prog;
    ptrio_loop loop;
    int rc;
    ptrio_loop *after;
};

static void *thread_main(void *arg)
{
    struct thread_run *r = arg;

    ptrio_loop_init(&r->loop);
    if (ptrio_loop_use_backend(&r->loop, &ptrio_backend_virtual) < 0) {
        r->rc = -1000;
        return NULL;
    }
    ptrio_loop_set_report(&r->loop, NULL, NULL);
    r->prog.loop = &r->loop;
    r->rc = ptrio_loop_run(&r->loop, tprog, &r->prog);
    r->after = ptrio_current_loop();
    return NULL;
}

/* Two threads run a loop each, at the same time: each sees its own
 * current loop and gets its own results; after its run, a thread has no
 * current loop. */
START_TEST(test_loop_per_thread)
{
    static struct thread_run r[2];
    pthread_t th[2];
    int i;

    meet_count = 0;
    memset(r, 0, sizeof r);
    for (i = 0; i < 2; i++) {
        tlog_clear(&r[i].prog.log);
        r[i].prog.k = i + 1;
        ck_assert_int_eq(pthread_create(&th[i], NULL, thread_main, &r[i]), 0);
    }
    for (i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    for (i = 0; i < 2; i++) {
        ck_assert_int_eq(r[i].rc, 10 * (i + 1));
        ck_assert_int_eq(r[i].prog.met, 1);
        ck_assert_ptr_eq(r[i].prog.seen[0], &r[i].loop);
        ck_assert_ptr_eq(r[i].prog.seen[1], &r[i].loop);
        ck_assert_ptr_eq(r[i].prog.seen[2], &r[i].loop);
        ck_assert_ptr_null(r[i].after);
    }
    ck_assert_str_eq(r[0].prog.log.buf, "c@1000 b@2000 a@3000 done@3000");
    ck_assert_str_eq(r[1].prog.log.buf, "c@2000 b@4000 a@6000 done@6000");
    ck_assert_ptr_null(ptrio_current_loop());
}
END_TEST

/* ---- 18. ptrio_loop_wake on a loop that is not running --------------- */

/* Bytes waiting in the pipe read end `fd` (non-blocking). */
static int pending_bytes(int fd)
{
    char buf[16];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0)
        ck_assert_msg(errno == EAGAIN || errno == EWOULDBLOCK, "read: %d",
                      errno);
    return n < 0 ? 0 : (int)n;
}

static int nonblocking_pipe(int p[2])
{
    if (pipe(p) < 0)
        return -1;
    return fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
}

struct nop {
    ptrio_frame fr;
};

static int nop(ptrio_frame *fr)
{
    struct nop *f = PTRIO_SELF(fr, struct nop);
    PTRIO_BEGIN(f);
    PTRIO_CHECKPOINT(f);
    PTRIO_END(f);
}

/* A loop never run: its backend state is zeroed, so its wake fd "is" 0.
 * With fd 0 the write end of a pipe, no byte may arrive. */
START_TEST(test_wake_never_run)
{
    static ptrio_loop loop;
    int p[2], saved;

    ck_assert_int_eq(nonblocking_pipe(p), 0);
    saved = dup(0);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_eq(dup2(p[1], 0), 0);
    ptrio_loop_init(&loop);     /* the default (poll) backend */
    ptrio_loop_wake(&loop);
    ck_assert_int_eq(pending_bytes(p[0]), 0);
    ck_assert_int_eq(dup2(saved, 0), 0);
    close(saved);
    close(p[0]);
    close(p[1]);
}
END_TEST

/* After a run ended, its self-pipe is closed and its numbers may be
 * reused: a wake must not write to whatever now holds them (a new pipe
 * takes the lowest free numbers, the ones just closed). */
START_TEST(test_wake_after_run)
{
    static ptrio_loop loop;
    static struct nop n;
    int p[2], saved;

    ptrio_loop_init(&loop);
    ptrio_loop_set_report(&loop, NULL, NULL);
    n = (struct nop){0};
    ck_assert_int_eq(ptrio_loop_run(&loop, nop, &n), 0);
    ck_assert_int_eq(nonblocking_pipe(p), 0);
    ptrio_loop_wake(&loop);
    ck_assert_int_eq(pending_bytes(p[0]), 0);

    /* and with fd 0 the write end of that pipe */
    saved = dup(0);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_eq(dup2(p[1], 0), 0);
    ptrio_loop_wake(&loop);
    ck_assert_int_eq(pending_bytes(p[0]), 0);
    ck_assert_int_eq(dup2(saved, 0), 0);
    close(saved);
    close(p[0]);
    close(p[1]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("host");
    TCase *tc = tcase_create("host");
    SRunner *sr;
    int failed;

    tlog_clear(&L);     /* testutil's shared log: each thread keeps its own */
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_loop_per_thread);
    tcase_add_test(tc, test_wake_never_run);
    tcase_add_test(tc, test_wake_after_run);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
