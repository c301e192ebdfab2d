/* src/port/qemu/stdio.c: picolibc's stdout and stderr on the semihosting
 * console, line-buffered. Linked only into programs that use stdio. */
#include <stdio.h>

#include "board.h"

static char buf[80];
static size_t len;

static int flush(FILE *f)
{
    (void)f;
    if (len)
        qemu_console_write(buf, len);
    len = 0;
    return 0;
}

static int put(char c, FILE *f)
{
    buf[len++] = c;
    if (c == '\n' || len == sizeof buf)
        flush(f);
    return (unsigned char)c;
}

static FILE console = FDEV_SETUP_STREAM(put, NULL, flush, _FDEV_SETUP_WRITE);

FILE *const stdin = &console;
FILE *const stdout = &console;
FILE *const stderr = &console;

void qemu__stdout_flush(void);
void qemu__stdout_flush(void)
{
    flush(stdout);
}
