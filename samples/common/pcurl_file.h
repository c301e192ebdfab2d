/* samples/common/pcurl_file.h: one download to a file, complete or not at
 * all: the body goes to "<path>.part", is flushed to disk on a worker
 * thread (fsync through ptrio_run_in_thread), and only then renamed to
 * <path>; any failure or cancellation removes the .part file. Used by
 * samples/download and tests/check_http. */
#ifndef PTRIO_SAMPLES_PCURL_FILE_H
#define PTRIO_SAMPLES_PCURL_FILE_H

#include <limits.h>

#include "ptrio_curl.h"

typedef struct pcurl_file {
    ptrio_frame fr;
    /* in */
    pcurl *pc;
    const char *url, *path;
    long max_speed;             /* bytes/s, 0: no limit (set before) */
    /* out: progress and result */
    long bytes, total;          /* total: -1 until the server says */
    long http_status;
    /* private */
    CURL *easy;
    pcurl_xfer x;
    ptrio_thread_job job;
    int fd;
    char part[PATH_MAX];
    void *sync_rc;
} pcurl_file;

/* Downloads f->url to f->path: awaitable. Returns 0, or fails with
 * pcurl_perform's errors, -PTRIO_EIO for an HTTP status other than 200 or
 * a short body, or the file system's error. */
PTRIO_NODISCARD int pcurl_file_get(void *self, pcurl_file *f, pcurl *pc,
                                   const char *url, const char *path);

#endif /* PTRIO_SAMPLES_PCURL_FILE_H */
