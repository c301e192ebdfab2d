/* src/backend/default_host.c: defaults of a POSIX host build: the poll
 * backend, and failure reports on stderr. */
#include <stdio.h>

#include "../core/internal.h"

const ptrio_backend *ptrio_default_backend(void) { return &ptrio_backend_poll; }

static void to_stderr(void *ctx, const char *line)
{
    (void)ctx;
    fputs(line, stderr);
    fputc('\n', stderr);
}

ptrio_report_fn ptrio__default_sink(void) { return to_stderr; }

const ptrio__reporter *ptrio__default_reporter(void)
{
    return &ptrio__reporting;
}
