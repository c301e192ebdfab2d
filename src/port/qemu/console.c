/* src/port/qemu/console.c: the QEMU boards' console, exit status, trap
 * reports and stack high-water mark, over semihosting. Shared by every
 * board; the arch supplies qemu_semihost (its trap instruction). */
#include <signal.h>
#include <string.h>

#include "board.h"

enum {
    SYS_OPEN = 0x01,
    SYS_WRITE = 0x05,
    SYS_EXIT = 0x18,
    SYS_EXIT_EXTENDED = 0x20,   /* 32-bit targets: an exit status */
    ADP_APPLICATION_EXIT = 0x20026
};

void (*volatile qemu_trap_hook)(int sig);
volatile uintptr_t qemu_trap_pc;

static long console = -1;       /* semihosting handle of ":tt" */

void qemu_console_write(const char *s, size_t n)
{
    uintptr_t a[3];

    if (console < 0) {
        a[0] = (uintptr_t)":tt";
        a[1] = 4;               /* "w" */
        a[2] = 3;
        console = qemu_semihost(SYS_OPEN, a);
    }
    a[0] = (uintptr_t)console;
    a[1] = (uintptr_t)s;
    a[2] = n;
    (void)qemu_semihost(SYS_WRITE, a);
}

/* stdio.c defines it when the program uses stdout. */
void qemu__stdout_flush(void) __attribute__((__weak__));

void qemu_exit(int status)
{
    uintptr_t a[2];

    if (qemu__stdout_flush)
        qemu__stdout_flush();
    a[0] = ADP_APPLICATION_EXIT;
    a[1] = (uintptr_t)(unsigned)status;
    for (;;)
        (void)qemu_semihost(SYS_EXIT_EXTENDED, a);
}

/* picolibc's exit() and abort() end here. */
void _exit(int status);
void _exit(int status)
{
    qemu_exit(status);
}

static void put_hex(char *b, uintptr_t v)
{
    int i;
    for (i = (int)sizeof v * 2 - 1; i >= 0; i--, v >>= 4)
        b[i] = "0123456789abcdef"[v & 15];
}

void qemu_trapped(int sig, uintptr_t pc)
{
    char msg[48] = "qemu: trap SIGILL at pc 0x";
    size_t n = strlen(msg);

    qemu_trap_pc = pc;
    if (qemu_trap_hook)
        qemu_trap_hook(sig);
    if (sig != SIGILL)
        memcpy(msg + 11, "FAULT ", 6);
    put_hex(msg + n, pc);
    n += sizeof pc * 2;
    msg[n++] = '\n';
    qemu_console_write(msg, n);
    qemu_exit(128 + sig);
}

/* ---- stack high-water mark -------------------------------------------- */

extern uint32_t __stack_limit[], __stack_top[];
#define PAINT 0xa5a5a5a5u

void qemu_stack_paint(void)
{
    volatile uint32_t *p = __stack_limit;
    uint32_t *here = (uint32_t *)__builtin_frame_address(0) - 32;

    while (p < here)
        *p++ = PAINT;
}

size_t qemu_stack_used(void)
{
    const uint32_t *p = __stack_limit;

    while (p < __stack_top && *p == PAINT)
        p++;
    return (size_t)((const char *)__stack_top - (const char *)p);
}
