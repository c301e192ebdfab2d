/* ptrio/io.h: waiting for file descriptors (Trio's trio.lowlevel
 * wait_readable, wait_writable and notify_closing).
 *
 * Portable: on a POSIX host the backend is epoll, poll or select; a port
 * without fds (watch == NULL in its backend) makes these fail with
 * -PTRIO_ENOTSUP. Sockets and streams built on them: ptrio/net.h. */
#ifndef PTRIO_IO_H
#define PTRIO_IO_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Waits until `fd` is readable / writable. Awaitable checkpoint. Returns
 * the direction that became ready (PTRIO_READABLE / PTRIO_WRITABLE). An
 * error or hang-up on the fd counts as ready (the next read or write
 * reports it); an fd found closed (poll, select) fails with -PTRIO_EBADF.
 * Errors: -PTRIO_EBADF (fd < 0), -PTRIO_EBUSY (another task waits on fd
 * for the same direction: Trio's BusyResourceError), -PTRIO_EFDLIMIT
 * (beyond the backend's limit), -PTRIO_ENOTSUP (the backend has no fd
 * waits), -PTRIO_ECLOSED (ptrio_notify_closing), -PTRIO_ECANCELED,
 * -PTRIO_ENOTASK, or the backend's registration error (-EPERM: epoll
 * cannot wait on regular files). */
PTRIO_NODISCARD int ptrio_wait_readable(void *self, int fd);
PTRIO_NODISCARD int ptrio_wait_writable(void *self, int fd);

/* Call before closing `fd`: every task waiting on it wakes with
 * -PTRIO_ECLOSED, and the backend forgets fd. Returns how many were woken
 * (0 outside a loop). Closing an fd someone waits on without it is an
 * error: poll and select wake the waiter with -PTRIO_EBADF, epoll never
 * wakes it (the kernel drops the fd silently). */
int ptrio_notify_closing(int fd);

/* Tasks of the running loop waiting on fds (0 outside a loop): a debugging
 * aid, and how tests check that cancelled waits left nothing behind. */
unsigned ptrio_fd_waiters(void);

/* ---- thread offload (POSIX hosts: Trio's to_thread.run_sync) --------
 *
 * A blocking C function (getaddrinfo, fsync, a database call) runs on a
 * small pool of worker threads while the task waits; the loop keeps
 * running. The pool is the process's: at most PTRIO_CONF_THREADS workers
 * (default 8), started when needed, each ending after 10 s idle; calls
 * beyond wait in FIFO order for a worker.
 *
 * Cancellation returns at once (Trio's abandon_on_cancel=True): the task
 * wakes with -PTRIO_ECANCELED while `fn` goes on running on its thread;
 * when it returns, its result is discarded and nothing of the call's task,
 * frame or loop is touched any more. So `arg` must outlive `fn`, not the
 * frame: point it at memory fn owns, or let ptrio copy it (copy_size
 * below), and free what a discarded result holds with `discard`. A run
 * never ends while a call is attached to one of its tasks (the task is
 * still waiting), so a worker never sees a loop that is gone. */

typedef void *(*ptrio_thread_fn)(void *arg);

/* One call's record: caller-owned (in the frame), zeroed before first use,
 * reusable once the call returned. Fields are private. */
typedef struct ptrio_thread_job {
    ptrio_thread_fn fn;
    void *arg, *value, **result;
    void (*discard)(void *arg, void *result);
    struct ptrio_thread_job *next;  /* the pool's queue */
    ptrio_task *task;
    ptrio_loop *loop;
    void *worker;
    ptrio_source src;               /* polled for the result */
    unsigned copy_size;
    int state;
} ptrio_thread_job;

/* Largest `copy_size` (bytes of argument a worker copies). */
#define PTRIO_THREAD_COPY_MAX 512

/* Options of the job's calls (they stay set). copy_size > 0: the worker
 * runs fn on its own copy of the first copy_size bytes at `arg`, copied in
 * when it starts and back into `arg` when it finishes (while the call is
 * still awaited); a cancelled call never touches `arg` again. discard (may
 * be NULL): called on the worker, with fn's argument and result, when a
 * cancelled call's fn returns. Returns 0, -PTRIO_EMSGSIZE (copy_size over
 * PTRIO_THREAD_COPY_MAX), -PTRIO_EBUSY (the job is in a call),
 * -PTRIO_EINVAL (NULL job). */
int ptrio_thread_job_init(ptrio_thread_job *job, unsigned copy_size,
                          void (*discard)(void *arg, void *result));

/* Runs fn(arg) on a worker thread and waits for it: awaitable checkpoint.
 * On success `*result` (may be NULL) receives fn's return value and the
 * status is 0. Errors: -PTRIO_ECANCELED (at once, see above),
 * -PTRIO_EINVAL (NULL job or fn), -PTRIO_EBUSY (job in a call),
 * -PTRIO_ENOTSUP (a backend without wake, such as the virtual clock),
 * -PTRIO_EAGAIN (no worker could be started), -PTRIO_ENOTASK. */
PTRIO_NODISCARD int ptrio_run_in_thread(void *self, ptrio_thread_job *job,
                                        ptrio_thread_fn fn, void *arg,
                                        void **result);

/* Returns the workers alive now, and stores in `*idle` (may be NULL)
 * those waiting for work (tests, debugging). */
unsigned ptrio_thread_workers(unsigned *idle);

#ifdef __cplusplus
}
#endif

#endif /* PTRIO_IO_H */
