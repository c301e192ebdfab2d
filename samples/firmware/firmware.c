/* samples/firmware: a small firmware for the QEMU boards (it prints
 * through semihosting; CI compares its output line for line with
 * tests/qemu/expected/firmware.out on the Cortex-M3 board).
 *
 *   sensor      reads a (simulated) sensor every 100 ms; each read waits
 *               10 ms for the conversion, under fail_after(50 ms). In its
 *               first life the 4th conversion hangs: the read times out.
 *   supervisor  runs the sensor in a nursery of its own; when it fails,
 *               backs off 200 ms and starts it again (at most 3 times).
 *   watchdog    every 100 ms, checks that a reading arrived in the last
 *               150 ms; says when the sensor goes silent and comes back.
 *   button      an interrupt (the board's alarm, standing for a GPIO
 *               edge) raises a ptrio_signal; the task reports presses and
 *               debounces 50 ms, so presses during that time coalesce.
 *
 * The main task runs all of them for one second, then cancels them.
 */
#include <stdio.h>

#include <ptrio.h>

#include "board.h"

static ptrio_signal button;
static ptrio_time last_reading = -1;    /* the watchdog's kick */

/* ---- the button interrupt --------------------------------------------- */

/* Presses at 135, 145 and 155 ms (a bounce), then one at 715 ms: each
 * event of the sample is 25 ms or more from the next, so that on a real
 * board, whose alarm timer and clock drift apart, the output keeps its
 * order. (Under QEMU with -icount sleep=off the run is exact.) */
static const uint32_t press_gap_us[] = {10000, 10000, 560000};
static volatile unsigned presses;

static void button_isr(void)
{
    ptrio_signal_raise(&button);
    if (presses < sizeof press_gap_us / sizeof press_gap_us[0])
        (void)qemu_alarm(press_gap_us[presses++], button_isr);
}

struct button_task {
    ptrio_frame fr;
};

static int button_task(ptrio_frame *fr)
{
    struct button_task *f = PTRIO_SELF(fr, struct button_task);
    PTRIO_BEGIN(f);
    for (;;) {
        PTRIO_AWAIT(f, ptrio_signal_wait(f, &button));
        printf("button: %d press%s\n", PTRIO_RESULT(f),
               PTRIO_RESULT(f) == 1 ? "" : "es");
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(50)));       /* debounce */
    }
    PTRIO_END(f);
}

/* ---- the sensor ---------------------------------------------------------- */

struct conversion {
    ptrio_frame fr;
    int hang;
    int value;
};

/* Starts a conversion and waits for it; a hung one never completes. */
static int convert(ptrio_frame *fr)
{
    struct conversion *c = PTRIO_SELF(fr, struct conversion);
    PTRIO_BEGIN(c);
    if (c->hang) {
        puts("sensor: conversion hangs");
        PTRIO_AWAIT(c, ptrio_sleep_forever(c));
    }
    PTRIO_AWAIT(c, ptrio_sleep(c, PTRIO_MS(10)));
    PTRIO_END(c);
}

struct sensor {
    ptrio_frame fr;
    ptrio_scope deadline;
    struct conversion conv;
    int life, n;
    ptrio_time next;
};

static int sensor(ptrio_frame *fr)
{
    struct sensor *s = PTRIO_SELF(fr, struct sensor);
    PTRIO_BEGIN(s);
    s->next = ptrio_now();
    for (s->n = 1;; s->n++) {
        s->conv = (struct conversion){.hang = s->life == 1 && s->n == 4};
        PTRIO_FAIL_AFTER(s, &s->deadline, PTRIO_MS(50)) {
            PTRIO_CALL(s, convert, &s->conv);
        }
        last_reading = ptrio_now();
        printf("sensor: life %d, reading %d: %d.%d C\n", s->life, s->n,
               20 + s->n / 2, s->n % 2 * 5);
        s->next += PTRIO_MS(100);
        PTRIO_AWAIT(s, ptrio_sleep_until(s, s->next));
    }
    PTRIO_END(s);
}

/* ---- the supervisor ------------------------------------------------------- */

struct supervisor {
    ptrio_frame fr;
    ptrio_scope guard;
    ptrio_nursery n;
    ptrio_task t;
    struct sensor s;
    int restarts, err;
};

static int supervisor(ptrio_frame *fr)
{
    struct supervisor *f = PTRIO_SELF(fr, struct supervisor);
    PTRIO_BEGIN(f);
    for (;;) {
        PTRIO_TRY_BLOCK(f, &f->guard) {         /* everything but cancel */
            PTRIO_NURSERY(f, &f->n) {
                f->s = (struct sensor){.life = f->restarts + 1};
                PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, sensor, &f->s));
            }
        }
        f->err = ptrio_scope_error(&f->guard);
        if (!f->err)
            break;                              /* it ended by itself */
        if (f->restarts == 3)
            PTRIO_RAISE(f, f->err, "the sensor keeps failing");
        f->restarts++;
        printf("supervisor: sensor failed (%s), restart %d in 200 ms\n",
               ptrio_errname(f->err), f->restarts);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(200)));
    }
    PTRIO_END(f);
}

/* ---- the watchdog ----------------------------------------------------------- */

struct watchdog {
    ptrio_frame fr;
    int silent;
};

static int watchdog(ptrio_frame *fr)
{
    struct watchdog *w = PTRIO_SELF(fr, struct watchdog);
    PTRIO_BEGIN(w);
    PTRIO_AWAIT(w, ptrio_sleep(w, PTRIO_MS(35)));   /* off the sensor's beat */
    for (;;) {
        int quiet = last_reading < 0 || ptrio_now() - last_reading > PTRIO_MS(150);
        if (quiet != w->silent)
            puts(quiet ? "watchdog: sensor silent" : "watchdog: sensor back");
        w->silent = quiet;
        PTRIO_AWAIT(w, ptrio_sleep(w, PTRIO_MS(100)));
    }
    PTRIO_END(w);
}

/* ---- main ------------------------------------------------------------------------ */

struct firmware {
    ptrio_frame fr;
    ptrio_scope uptime;
    ptrio_nursery n;
    ptrio_task t[3];
    struct supervisor sup;
    struct watchdog dog;
    struct button_task btn;
};

static int firmware(ptrio_frame *fr)
{
    struct firmware *f = PTRIO_SELF(fr, struct firmware);
    PTRIO_BEGIN(f);
    puts("firmware: up");
    (void)qemu_alarm(135000, button_isr);
    PTRIO_MOVE_ON_AFTER(f, &f->uptime, PTRIO_MS(1000)) {
        PTRIO_NURSERY(f, &f->n) {
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], supervisor,
                                            &f->sup));
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], watchdog,
                                            &f->dog));
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[2], button_task,
                                            &f->btn));
        }
    }
    printf("firmware: shutdown after %d sensor restart%s\n", f->sup.restarts,
           f->sup.restarts == 1 ? "" : "s");
    PTRIO_END(f);
}

static void report(void *ctx, const char *line)
{
    (void)ctx;
    puts(line);
}

int main(void)
{
    static ptrio_loop loop;
    static struct firmware f;

    ptrio_loop_init(&loop);                 /* the port: the default */
    ptrio_loop_set_report(&loop, report, NULL);
    return ptrio_loop_run(&loop, firmware, &f) < 0;
}
