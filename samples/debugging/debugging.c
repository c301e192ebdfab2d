/* samples/debugging: what ptrio tells you when a program hangs, and why a
 * task was cancelled.
 *
 * 1. A handshake written wrong: the sender waits for the receiver's
 *    "ready" before it sends, the receiver waits for the data before it
 *    says "ready". Both wait forever. On the default (poll) backend,
 *    ptrio sees at once that nothing can ever wake either task (nothing
 *    is ready, no deadline, no fd, no source), reports the deadlock once
 *    with the task tree (where each task waits, file:line and function),
 *    cancels everything, and the run returns -PTRIO_EDEADLK. Each task's
 *    cleanup reads why it was cancelled.
 * 2. A fetch under a 50 ms FAIL_AFTER that takes too long: its failure
 *    cancels its sibling, whose cleanup prints the reason (which task,
 *    which error, where); then a worker cancelled with a reason of ours.
 *
 * The program checks its own output (the report's lines, the reasons)
 * and exits 0 when everything is as described; it ends in well under a
 * second. */
#include <stdio.h>
#include <string.h>

#include <ptrio.h>

/* ---- the report sink: print each line, and keep them to check ------- */

static char report[4096];
static int report_lines;

static void sink(void *ctx, const char *line)
{
    (void)ctx;
    printf("  | %s\n", line);
    if (strlen(report) + strlen(line) + 2 < sizeof report) {
        strcat(report, line);
        strcat(report, "\n");
    }
    report_lines++;
}

static int failures;

static void expect(int ok, const char *what)
{
    if (!ok) {
        printf("UNEXPECTED: %s\n", what);
        failures++;
    }
}

/* A library built with --disable-deadlock-dump reports a deadlock's
 * headline without the task tree. */
#if defined(PTRIO_CONF_DEADLOCK_DUMP) && !PTRIO_CONF_DEADLOCK_DUMP
#define TREE_IN_REPORTS 0
#else
#define TREE_IN_REPORTS 1

/* Whether the report has a line containing `a` and then "<file>:<line>". */
static int reported(const char *a, int line)
{
    char want[512];
    snprintf(want, sizeof want, "%s at %s:%d", a, __FILE__, line);
    return strstr(report, want) != NULL;
}
#endif

/* ---- 1. the handshake that hangs -------------------------------------- */

struct handshake {
    ptrio_event ready, data;
};

struct side {
    ptrio_frame fr;
    struct handshake *h;
    int line;                       /* where it waits */
    char why[160];
};

/* Prints why the calling frame's task is cancelled, and keeps it. */
static void say_why(void *self, const char *who, char *buf, int n)
{
    ptrio_cancel_info info;

    if (ptrio_cancel_source(self, &info) == 0)
        ptrio_cancel_text(&info, buf, n);
    else
        snprintf(buf, (size_t)n, "not cancelled");
    printf("%s: %s\n", who, buf);
}

static int sender(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct side, s);
    /* Bug: waits for the receiver before sending. */
    s->line = __LINE__; PTRIO_AWAIT(s, ptrio_event_wait(s, &s->h->ready));
    ptrio_event_set(&s->h->data);
    PTRIO_FINALLY(s);
    if (PTRIO_FINALLY_ERROR(s))
        say_why(s, "sender", s->why, (int)sizeof s->why);
    PTRIO_END(s);
}

static int receiver(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct side, s);
    s->line = __LINE__; PTRIO_AWAIT(s, ptrio_event_wait(s, &s->h->data));
    ptrio_event_set(&s->h->ready);
    PTRIO_FINALLY(s);
    if (PTRIO_FINALLY_ERROR(s))
        say_why(s, "receiver", s->why, (int)sizeof s->why);
    PTRIO_END(s);
}

struct hang {
    ptrio_frame fr;
    struct handshake h;
    ptrio_nursery n;
    ptrio_task t[2];
    struct side s[2];
    int nline;
};

static int hang(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct hang, f);
    f->nline = __LINE__; PTRIO_NURSERY(f, &f->n) {
        f->s[0].h = f->s[1].h = &f->h;
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], sender, &f->s[0]));
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], receiver, &f->s[1]));
    }
    PTRIO_END(f);
}

static void part1(void)
{
    static ptrio_loop loop;
    static struct hang f;
    int rc;

    puts("1. two tasks waiting on each other:");
    ptrio_loop_init(&loop);                 /* the default backend: poll */
    ptrio_loop_set_report(&loop, sink, NULL);
    rc = ptrio_loop_run(&loop, hang, &f);
    printf("the run returned %s\n\n", ptrio_errname(rc));

    expect(rc == -PTRIO_EDEADLK, "the run ends with -PTRIO_EDEADLK");
    expect(strstr(report, "ptrio: deadlock: ") == report,
           "the report starts with the deadlock");
    expect(!strcmp(f.s[0].why, "cancelled because every task waits "
                               "forever (deadlock)") &&
           !strcmp(f.s[1].why, f.s[0].why), "each task knows why");
#if !TREE_IN_REPORTS
    /* ptrio_dump would show the tree */
    expect(report_lines == 1, "the headline alone (no task tree built in)");
#else
    expect(reported("task 'hang' joining a nursery", f.nline),
           "the main task joins its nursery");
    expect(reported("task 'sender' parked in a lot", f.s[0].line),
           "the sender's wait, file:line");
    expect(reported("task 'receiver' parked in a lot", f.s[1].line),
           "the receiver's wait, file:line");
    expect(report_lines == 6, "six lines: the header and the tree");
#endif
}

/* ---- 2. why was I cancelled? ------------------------------------------ */

struct fetch {
    ptrio_frame fr;
    ptrio_scope timeout;
    int line;
};

static int fetch(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct fetch, f);
    f->line = __LINE__; PTRIO_FAIL_AFTER(f, &f->timeout, PTRIO_MS(50)) {
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_SEC(1)));    /* a slow server */
    }
    PTRIO_END(f);
}

struct progress {
    ptrio_frame fr;
    char why[160];
};

static int progress(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct progress, p);
    for (;;)
        PTRIO_AWAIT(p, ptrio_sleep(p, PTRIO_MS(20)));
    PTRIO_FINALLY(p);
    say_why(p, "progress", p->why, (int)sizeof p->why);
    PTRIO_END(p);
}

struct worker {
    ptrio_frame fr;
    ptrio_scope sc;
    int rc;
    char why[160];
};

/* Cancelled with a reason of ours: the checkpoint inside the scope fails,
 * and the task reads why. */
static int worker(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct worker, w);
    PTRIO_CANCEL_SCOPE(w, &w->sc) {
        ptrio_cancel_reason(&w->sc, "the user pressed stop");
        PTRIO_TRY(w, w->rc, ptrio_checkpoint(w));
        say_why(w, "worker", w->why, (int)sizeof w->why);
    }
    PTRIO_END(w);
}

struct why {
    ptrio_frame fr;
    ptrio_scope catcher;
    ptrio_nursery n;
    ptrio_task t[2];
    struct fetch fe;
    struct progress pr;
    struct worker wk;
    int rc;
};

static int why(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct why, f);
    PTRIO_TRY_BLOCK(f, &f->catcher) {
        PTRIO_NURSERY(f, &f->n) {
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], fetch, &f->fe));
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], progress,
                                            &f->pr));
        }
    }
    f->rc = ptrio_scope_error(&f->catcher);
    printf("the nursery raised %s\n", ptrio_errname(f->rc));
    PTRIO_CALL(f, worker, &f->wk);
    PTRIO_END(f);
}

static void part2(void)
{
    static struct why f;
    char want[256];
    int rc;

    puts("2. why was I cancelled?");
    rc = ptrio_run(why, &f);
    expect(rc == 0, "the second run ends normally");
    expect(f.rc == -PTRIO_ETIMEDOUT, "the fetch timed out");
    snprintf(want, sizeof want, "cancelled because task 'fetch' failed with "
             "ETIMEDOUT at %s:%d", __FILE__, f.fe.line);
    expect(!strcmp(f.pr.why, want), "progress knows which task failed");
    expect(!strcmp(f.wk.why, "cancelled because the user pressed stop"),
           "the worker knows our reason");
}

int main(void)
{
    part1();
    part2();
    if (failures) {
        printf("%d unexpected results\n", failures);
        return 1;
    }
    puts("as expected");
    return 0;
}
