/* src/backend/default_host.c: defaults of a POSIX host build: the backend
 * configure chose (--with-backend: epoll on Linux, else poll), backends by
 * name, and failure reports on stderr. */
#include <stdio.h>
#include <string.h>

#include "../core/internal.h"

#if defined(PTRIO_DEFAULT_BACKEND_select)
#define DEFAULT_BACKEND ptrio_backend_select
#elif defined(PTRIO_DEFAULT_BACKEND_epoll)
#define DEFAULT_BACKEND ptrio_backend_epoll
#else
#define DEFAULT_BACKEND ptrio_backend_poll
#endif

const ptrio_backend *ptrio_default_backend(void) { return &DEFAULT_BACKEND; }

const ptrio_backend *ptrio_backend_named(const char *name)
{
    if (!name)
        return NULL;
#ifdef HAVE_SYS_EPOLL_H
    if (strcmp(name, "epoll") == 0)
        return &ptrio_backend_epoll;
#endif
    if (strcmp(name, "poll") == 0)
        return &ptrio_backend_poll;
    if (strcmp(name, "select") == 0)
        return &ptrio_backend_select;
    if (strcmp(name, "virtual") == 0)
        return &ptrio_backend_virtual;
    return NULL;
}

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
