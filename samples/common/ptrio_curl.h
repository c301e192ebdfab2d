/* samples/common/ptrio_curl.h: libcurl's multi-socket interface driven by
 * ptrio. Shared by samples/fetch, samples/download and tests/check_http.
 *
 * curl does the HTTP; ptrio does the waiting:
 *   - each transfer is a task: pcurl_perform adds its easy handle to the
 *     multi handle and parks until curl says it is done; cancelling that
 *     task removes the easy handle at once (nothing of it is left in
 *     curl), so a per-URL timeout is an ordinary ptrio cancel scope;
 *   - curl's sockets are waited on with ptrio_wait_readable/writable, one
 *     small watcher task per socket and direction, started and stopped as
 *     curl's socket callback asks;
 *   - curl's timer is the deadline of a cancel scope in the driver task.
 * No curl callback ever blocks or parks: they only record what curl wants
 * and start or cancel tasks.
 *
 *     static pcurl pc;                        // zeroed, then pcurl_init
 *     PTRIO_NURSERY(f, &f->n) {
 *         ptrio_start_soon(&f->n, &f->driver_task, pcurl_drive, &pc);
 *         ... tasks that call pcurl_perform(self, &pc, &xfer, easy) ...
 *     }
 */
#ifndef PTRIO_SAMPLES_CURL_H
#define PTRIO_SAMPLES_CURL_H

#include <curl/curl.h>

#include <ptrio.h>

#define PCURL_SOCKETS 64    /* sockets curl may have open at once */

typedef struct pcurl pcurl;
typedef struct pcurl_sock pcurl_sock;

/* A watcher: waits on one direction of one of curl's sockets. */
typedef struct pcurl_watch {
    ptrio_frame fr;
    pcurl_sock *sock;
    ptrio_task task;
    ptrio_scope scope;          /* cancelled when curl stops asking */
    unsigned dir;               /* PTRIO_READABLE or PTRIO_WRITABLE */
    int want;                   /* curl wants this direction watched */
} pcurl_watch;

struct pcurl_sock {
    pcurl *pc;
    curl_socket_t fd;
    int in_use;                 /* assigned to a socket of curl's */
    pcurl_watch w[2];           /* reading, writing */
};

struct pcurl {
    ptrio_frame fr;             /* pcurl_drive runs over it */
    CURLM *multi;
    ptrio_nursery watchers;
    ptrio_scope timer;          /* its deadline is curl's timeout */
    ptrio_time deadline;
    int in_timer;               /* inside the timer scope */
    int failed;                 /* a callback could not do its job */
    pcurl_sock socks[PCURL_SOCKETS];
};

/* One transfer in flight. */
typedef struct pcurl_xfer {
    pcurl *pc;
    CURL *easy;
    ptrio_task *task;
    CURLcode result;            /* curl's code, when done */
    int state;
} pcurl_xfer;

/* Creates the multi handle and installs the callbacks. 0 or -PTRIO_ENOMEM. */
int pcurl_init(pcurl *pc);

/* Frees the multi handle (after pcurl_drive ended). */
void pcurl_cleanup(pcurl *pc);

/* The driver task's step function over `pc`: serves curl's timer and
 * sockets until cancelled. */
int pcurl_drive(ptrio_frame *fr);

/* Runs the transfer set up on `easy` to its end: awaitable checkpoint.
 * Returns 0 when curl says CURLE_OK; else x->result says why, and the
 * status is -PTRIO_ETIMEDOUT (curl's own timeouts), -PTRIO_ECONNREFUSED,
 * -PTRIO_ERESOLVE or -PTRIO_EIO. Cancellation removes the easy handle from
 * the multi handle before the task wakes with -PTRIO_ECANCELED. */
PTRIO_NODISCARD int pcurl_perform(void *self, pcurl *pc, pcurl_xfer *x,
                                  CURL *easy);

#endif /* PTRIO_SAMPLES_CURL_H */
