/* tests/qemu/sleepers.c: how many sleeping tasks fit the board's RAM.
 *
 * The RAM no section uses (__free_start up to the stack, whose size the
 * link fixes with --defsym=__stack_size) becomes an array of task +
 * frame slots: as many tasks as fit, all sleeping at once, each until its
 * own deadline (100 ms on, a permutation of N milliseconds, so every wake
 * is checked for time and order). Then a second run fails on purpose, with a failure
 * report to a sink, and the stack's high-water mark is read after each
 * run: the stack a run needs, and what the report adds.
 *
 * Prints one line per figure; exits 0 when every task woke at its
 * deadline, in order, and the stack stayed within its reservation. */
#include <stdint.h>
#include <string.h>

#include <ptrio.h>

#include "board.h"

extern char __free_start[], __stack_limit[], __stack_top[];

struct sleeper {
    ptrio_frame fr;
    uint16_t i;
};

struct slot {
    ptrio_task t;
    struct sleeper s;
};

static struct slot *slots;
static unsigned n, woken, late, disorder;
static ptrio_time last;

/* Deadlines from 100 ms on, after every task has started sleeping (so
 * that none is already due when armed), one per millisecond. */
static ptrio_time base;

static ptrio_time deadline_of(unsigned i)
{
    return base + PTRIO_MS((unsigned long)i * 7919u % n);    /* 7919: prime */
}

static int sleeper(ptrio_frame *fr)
{
    struct sleeper *f = PTRIO_SELF(fr, struct sleeper);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_sleep_until(f, deadline_of(f->i)));
    if (ptrio_now() < deadline_of(f->i))
        late++;                     /* early, in fact: never allowed */
    if (deadline_of(f->i) < last)
        disorder++;
    last = deadline_of(f->i);
    woken++;
    PTRIO_END(f);
}

struct herd {
    ptrio_frame fr;
    ptrio_nursery nursery;
    unsigned i;
};

static int herd(ptrio_frame *fr)
{
    struct herd *f = PTRIO_SELF(fr, struct herd);
    PTRIO_BEGIN(f);
    base = ptrio_now() + PTRIO_MS(100);
    PTRIO_NURSERY(f, &f->nursery) {
        for (f->i = 0; f->i < n; f->i++) {
            slots[f->i].s.i = (uint16_t)f->i;
            PTRIO_CHECK(f, ptrio_start_soon(&f->nursery, &slots[f->i].t,
                                            sleeper, &slots[f->i].s));
        }
    }
    PTRIO_END(f);
}

/* Two children fail at the same deadline (both wake in one batch): the
 * report is a group with two members. */
static ptrio_time fail_at;

static int failing(ptrio_frame *fr)
{
    struct sleeper *f = PTRIO_SELF(fr, struct sleeper);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_sleep_until(f, fail_at));
    PTRIO_RAISE(f, -PTRIO_EIO, "sensor gone");
    PTRIO_END(f);
}

struct boom {
    ptrio_frame fr;
    ptrio_nursery nursery;
};

static int boom(ptrio_frame *fr)
{
    struct boom *f = PTRIO_SELF(fr, struct boom);
    PTRIO_BEGIN(f);
    fail_at = ptrio_now() + PTRIO_MS(1);
    PTRIO_NURSERY(f, &f->nursery) {
        PTRIO_CHECK(f, ptrio_start_soon(&f->nursery, &slots[0].t, failing,
                                        &slots[0].s));
        PTRIO_CHECK(f, ptrio_start_soon(&f->nursery, &slots[1].t, failing,
                                        &slots[1].s));
    }
    PTRIO_END(f);
}

static unsigned lines;

static void sink(void *ctx, const char *line)
{
    (void)ctx, (void)line;
    lines++;
}

static void say(const char *what, unsigned long v, const char *unit)
{
    char b[24];
    int k = 0;
    qemu_console_write(what, strlen(what));
    do {
        b[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (k) {
        char c = b[--k];
        qemu_console_write(&c, 1);
    }
    qemu_console_write(unit, strlen(unit));
    qemu_console_write("\n", 1);
}

int main(void)
{
    static ptrio_loop loop;
    static struct herd h;
    static struct boom b;
    uintptr_t start = ((uintptr_t)__free_start + 7u) & ~(uintptr_t)7u;
    size_t room = (size_t)((uintptr_t)__stack_limit - start);
    size_t reserved = (size_t)(__stack_top - __stack_limit);
    size_t run_stack, report_stack;
    int rc, rc2, ok;

    slots = (struct slot *)start;
    n = (unsigned)(room / sizeof *slots);
    if (n > 65535)
        n = 65535;                  /* the index is 16 bits */
    memset(slots, 0, n * sizeof *slots);

    ptrio_loop_init(&loop);
    ptrio_loop_set_report(&loop, sink, NULL);
    qemu_stack_paint();
    rc = ptrio_loop_run(&loop, herd, &h);
    run_stack = qemu_stack_used();

    memset(slots, 0, 2 * sizeof *slots);
    qemu_stack_paint();
    rc2 = ptrio_loop_run(&loop, boom, &b);
    ok = rc2 == -PTRIO_EGROUP && lines == 3;
    report_stack = qemu_stack_used();

    say("sleepers: tasks = ", n, "");
    say("sleepers: bytes per task = ", (unsigned long)sizeof *slots,
        " (ptrio_task + a frame of ptrio_frame and an index)");
    say("sleepers: woken at their deadline, in order = ", woken, "");
    say("sleepers: stack high-water, sleeping run = ", run_stack, " B");
    say("sleepers: stack high-water, run ending in a reported group = ",
        report_stack, " B");
    say("sleepers: stack reserved = ", reserved, " B");
    if (rc != 0 || late || disorder)
        say("sleepers: the sleeping run went wrong: early wakes = ", late,
            rc != 0 ? " (the run failed)" : "");
    if (disorder)
        say("sleepers: wakes out of deadline order = ", disorder, "");
    if (!ok)
        say("sleepers: the reported run went wrong: report lines = ", lines,
            rc2 == -PTRIO_EGROUP ? " (status EGROUP)" : " (status not EGROUP)");
    return !(rc == 0 && woken == n && !late && !disorder && ok &&
             run_stack < reserved && report_stack < reserved);
}
