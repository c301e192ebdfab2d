/* src/port/qemu/ungetc.c: an interrupt-safe ungetc for picolibc.
 *
 * picolibc 1.8's ungetc (Debian bookworm's) stores the pushed-back byte
 * with a single load-exclusive/store-exclusive attempt and no retry. An
 * interrupt between the two clears the exclusive monitor, the store
 * fails, ungetc reports EOF, and sscanf misreads its input (on Cortex-M3
 * under a 1 kHz SysTick, about one sscanf in 5,000). This one masks
 * interrupts around the update instead. The boards link it in place of
 * picolibc's (-Wl,-u,ungetc); a firmware on picolibc 1.8 that scans
 * strings with interrupts enabled needs the same. */
#include <stdio.h>

#include <ptrio/port.h>

#include "board.h"

int ungetc(int c, FILE *f)
{
    int rc = EOF;

    if (c != EOF && (f->flags & __SRD)) {
        ptrio_irqstate s = ptrio_port_critical_enter();
        if (f->unget == 0) {
            f->unget = (__ungetc_t)((unsigned char)c | 0x100u);
            f->flags &= (uint8_t)~__SEOF;
            rc = (unsigned char)c;
        }
        ptrio_port_critical_exit(s);
    }
    return rc;
}
