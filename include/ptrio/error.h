/* ptrio/error.h: error codes, their names, and failure records.
 *
 * Errors are negative ints. The errno-style codes carry Linux's errno
 * numbers, so on Linux -PTRIO_ETIMEDOUT == -ETIMEDOUT; ptrio's own codes sit
 * above every errno value. The core needs no <errno.h>.
 */
#ifndef PTRIO_ERROR_H
#define PTRIO_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

#define PTRIO_EPERM          1
#define PTRIO_ENOENT         2
#define PTRIO_EINTR          4
#define PTRIO_EIO            5
#define PTRIO_EBADF          9
#define PTRIO_EAGAIN        11  /* also EWOULDBLOCK: a *_nowait call would block */
#define PTRIO_EWOULDBLOCK   PTRIO_EAGAIN
#define PTRIO_ENOMEM        12
#define PTRIO_EACCES        13
#define PTRIO_EFAULT        14
#define PTRIO_EBUSY         16
#define PTRIO_EEXIST        17
#define PTRIO_EINVAL        22
#define PTRIO_ENFILE        23
#define PTRIO_EMFILE        24
#define PTRIO_ENOSPC        28
#define PTRIO_EPIPE         32
#define PTRIO_ERANGE        34
#define PTRIO_EDEADLK       35
#define PTRIO_ENOSYS        38
#define PTRIO_EOVERFLOW     75
#define PTRIO_ENOTSOCK      88
#define PTRIO_EMSGSIZE      90
#define PTRIO_ENOTSUP       95
#define PTRIO_EAFNOSUPPORT  97
#define PTRIO_EADDRINUSE    98
#define PTRIO_EADDRNOTAVAIL 99
#define PTRIO_ENETUNREACH  101
#define PTRIO_ECONNABORTED 103
#define PTRIO_ECONNRESET   104
#define PTRIO_ENOBUFS      105
#define PTRIO_ENOTCONN     107
#define PTRIO_ETIMEDOUT    110
#define PTRIO_ECONNREFUSED 111
#define PTRIO_EHOSTUNREACH 113
#define PTRIO_EALREADY     114
#define PTRIO_EINPROGRESS  115
/* Linux's ECANCELED (125) is an I/O error like any other (aio, io_uring and
 * timerfd return it): it is not ptrio's cancellation, PTRIO_ECANCELED. */

#define PTRIO_ERRBASE   9000
#define PTRIO_EGROUP    (PTRIO_ERRBASE + 1) /* several failures: walk the group */
#define PTRIO_ECLOSED   (PTRIO_ERRBASE + 2) /* closed: a nursery to arrivals, a
                                               resource you closed (Trio's
                                               ClosedResourceError) */
#define PTRIO_ENOTASK   (PTRIO_ERRBASE + 3) /* await outside a task or frame */
#define PTRIO_ENOSTART  (PTRIO_ERRBASE + 4) /* child exited without started() */
#define PTRIO_EMISUSE   (PTRIO_ERRBASE + 5) /* API misuse (see the message) */
#define PTRIO_ENOBACKEND (PTRIO_ERRBASE + 6) /* loop has no backend */
#define PTRIO_ECANCELED (PTRIO_ERRBASE + 7) /* cancelled by a cancel scope:
                                               only the scheduler makes it */
#define PTRIO_EBROKEN   (PTRIO_ERRBASE + 8) /* the other side is gone (Trio's
                                               BrokenResourceError) */
#define PTRIO_EENDOFCHANNEL (PTRIO_ERRBASE + 9) /* every sender closed and
                                               nothing is left (EndOfChannel) */
/* PTRIO_ERRBASE + 32 and up: codes of the I/O layer (ptrio/io.h). */
#define PTRIO_EFDLIMIT  (PTRIO_ERRBASE + 32) /* beyond the backend's fd limit:
                                               select's FD_SETSIZE, poll's
                                               PTRIO_CONF_POLL_MAX */
#define PTRIO_ERESOLVE  (PTRIO_ERRBASE + 33) /* name resolution failed (no
                                               such host, or the resolver's
                                               error: Python's gaierror) */

/* The symbolic name of a code ("ETIMEDOUT", "PTRIO_EGROUP"); sign ignored.
 * Never NULL: 0 gives "OK", unknown codes "E?". */
const char *ptrio_errname(int code);

/* A short description of a code ("timed out"); sign ignored. Never NULL:
 * 0 gives "success", unknown codes "unknown error". A library built with
 * --disable-error-text gives the name instead. */
const char *ptrio_strerror(int code);

struct ptrio_nursery;

/* One failure as ptrio recorded it: no allocation, it points into the
 * task, nursery and static site records, valid until they are reused. */
typedef struct ptrio_failure {
    int code;
    const char *msg;                    /* PTRIO_RAISE message, or NULL */
    const char *file;                   /* where it was raised, or NULL */
    int line;
    const char *task;                   /* the task that failed */
    const struct ptrio_nursery *via;    /* the nursery it came through */
    const struct ptrio_nursery *group;  /* code == -PTRIO_EGROUP: members */
    const void *trace;                  /* its frames: ptrio_failure_frames */
} ptrio_failure;

struct ptrio_frame_info;

/* The traceback of a failure: the frames of its task that it left
 * through, outermost first (main's, then the one it called, ... down to
 * the one that raised it). Pass cursor NULL first, then what it returned;
 * fills `out` (file and function name; line 0: a frame that ended has no
 * line of its own). Returns NULL after the last. */
const void *ptrio_failure_frames(const ptrio_failure *f, const void *cursor,
                                 struct ptrio_frame_info *out);

/* Describes the error the calling frame carries in its FINALLY section
 * (PTRIO_FINALLY_ERROR): its record, whatever the cleanup raised or
 * caught meanwhile. Returns 0, -PTRIO_EINVAL when it carries none (or
 * `out` is NULL), -PTRIO_ENOTASK outside the running frame. */
int ptrio_failure_pending(void *self, ptrio_failure *out);

/* Describes the error the calling task raised or caught last, whose code
 * is `code`. Returns 0, or -PTRIO_ENOTASK outside a task, -PTRIO_EINVAL if
 * `code` is not that error (or `out` is NULL). The task keeps 16 bits of
 * the code: codes below -32767 are not told apart from each other. */
int ptrio_failure_last(int code, ptrio_failure *out);

/* Walks a group: pass cursor NULL first, then what it returned. Returns the
 * next cursor and fills `out`, or returns NULL when no member is left. */
const void *ptrio_group_next(const struct ptrio_nursery *group,
                             const void *cursor, ptrio_failure *out);

/* Number of members of a group (0 for NULL). */
int ptrio_group_size(const struct ptrio_nursery *group);

#ifdef __cplusplus
}
#endif

#endif /* PTRIO_ERROR_H */
