/* ptrio/backend.h: the port interface. A backend supplies the clock and the
 * wait step of a loop; one file per backend (src/backend/), chosen at build
 * time or per loop with ptrio_loop_use_backend. A backend keeps its state in
 * loop->be[] (zeroed by ptrio_loop_init: store fd + 1, so that 0 is "none").
 *
 * fd waits. The loop keeps the registry of tasks waiting on fds (which
 * task waits on which fd for which direction); a backend only hears about
 * changes of interest per fd, and reports readiness per fd:
 *
 *   - watch(loop, fd, old, events): the directions the loop's tasks wait
 *     for on `fd` change from `old` to `events` (masks of PTRIO_READABLE
 *     and PTRIO_WRITABLE; old 0: fd is new, events 0: nobody waits any
 *     more). Called once per change, on the loop's thread. When interest
 *     grows it is called before the registry changes, and an error fails
 *     the wait with that code, nothing changed. When it shrinks (a wake, a
 *     cancellation) its result is ignored. A backend with watch == NULL has
 *     no fd waits: they fail with -PTRIO_ENOTSUP (microcontroller ports).
 *   - wait(loop, deadline) reports every ready fd with ptrio_backend_ready
 *     (the tasks it wakes leave the registry; watch() hears of it).
 *     Readiness that nobody waits for any more is ignored, so a backend may
 *     report an fd late or twice.
 *   - unwatch(loop, fd): fd is about to be closed (ptrio_notify_closing),
 *     its waiters are gone: forget everything about it. May be NULL; then
 *     watch(fd, old, 0) is called instead, when old != 0.
 *   - poll and select rebuild their sets on each wait from the registry
 *     with ptrio_backend_next_fd.
 */
#ifndef PTRIO_BACKEND_H
#define PTRIO_BACKEND_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Directions of an fd wait (masks; ptrio_wait_readable's status). */
#define PTRIO_READABLE 0x1u
#define PTRIO_WRITABLE 0x4u

struct ptrio_backend {
    const char *name;
    /* Acquires what the backend needs (a wake fd...). 0 or an error. */
    int (*open)(ptrio_loop *loop);
    /* Releases it. After close, wake() is a no-op. */
    void (*close)(ptrio_loop *loop);
    /* The clock, in nanoseconds, monotonic. */
    ptrio_time (*now)(ptrio_loop *loop);
    /* Blocks until `deadline` (PTRIO_TIME_INF: no deadline; in the past:
     * only polls), a watched fd is ready (report it with
     * ptrio_backend_ready) or wake() is called; may return early. EINTR is
     * not an error (return 0). 0, or an error that ends the run. */
    int (*wait)(ptrio_loop *loop, ptrio_time deadline);
    /* Interest in `fd` changes from `old` to `events` (see above). 0 or an
     * error (e.g. -PTRIO_EFDLIMIT). NULL: no fd waits. */
    int (*watch)(ptrio_loop *loop, int fd, unsigned old, unsigned events);
    /* `fd` is about to be closed: drop it. May be NULL. */
    void (*unwatch)(ptrio_loop *loop, int fd);
    /* Makes a wait() in progress (or the next one) return at once. Safe
     * from a signal handler, an interrupt and another thread; a no-op on a
     * loop that is not open (never opened, or closed). NULL marks a
     * simulation, as the virtual backend: its time moves only when it
     * waits, so the loop takes idle cushions and autojump thresholds as
     * passed at once instead of waiting them out. */
    void (*wake)(ptrio_loop *loop);
};

/* Called by a backend's wait: `fd` is ready for `status` (a mask of
 * PTRIO_READABLE / PTRIO_WRITABLE; an error or hang-up: both), or failed
 * (status < 0, e.g. -PTRIO_EBADF for a closed fd: every waiter on fd wakes
 * with it). Wakes the tasks waiting for those directions, which then leave
 * the registry. */
void ptrio_backend_ready(ptrio_loop *loop, int fd, int status);

/* A cursor over the registry; start it zeroed. */
typedef struct ptrio_fd_iter {
    unsigned bucket;
    const ptrio_task *next;
} ptrio_fd_iter;

/* The next fd tasks wait on, with the directions in `*events`; -1 after
 * the last. Each fd comes once. Do not change the registry meanwhile
 * (report readiness after the walk). */
int ptrio_backend_next_fd(ptrio_loop *loop, ptrio_fd_iter *it,
                          unsigned *events);

/* The directions tasks wait for on `fd` (0: none). */
unsigned ptrio_backend_interest(ptrio_loop *loop, int fd);

/* poll(2): POSIX. At most PTRIO_CONF_POLL_MAX distinct fds waited on at
 * once (default 16384: 8 bytes of stack each during a wait); beyond, the
 * wait fails with -PTRIO_EFDLIMIT. O(fds waited on) per wait. */
extern const ptrio_backend ptrio_backend_poll;

/* select(2): POSIX. fds at or above FD_SETSIZE (1024 on Linux) cannot be
 * waited on: -PTRIO_EFDLIMIT. O(fds waited on) per wait. */
extern const ptrio_backend ptrio_backend_select;

/* epoll(7), Linux: O(1) per wait (one epoll_ctl), no limit but the
 * process's fds. Where configure found no epoll, its open() fails with
 * -PTRIO_ENOSYS (and ptrio_backend_named("epoll") is NULL). */
extern const ptrio_backend ptrio_backend_epoll;

/* A virtual clock that starts at 0 and, when every task is parked, jumps to
 * the next deadline: a test that sleeps an hour takes microseconds. No fd
 * waits. wait() with no deadline fails with -PTRIO_EDEADLK. */
extern const ptrio_backend ptrio_backend_virtual;

/* The build's default backend (NULL when the build has none): epoll on
 * Linux, poll on other POSIX hosts, unless configure --with-backend=...
 * chose another. */
const ptrio_backend *ptrio_default_backend(void);

/* A backend by name ("epoll", "poll", "select", "virtual"), or NULL when
 * this build has none of that name. POSIX hosts only. */
const ptrio_backend *ptrio_backend_named(const char *name);

#ifdef __cplusplus
}
#endif

#endif /* PTRIO_BACKEND_H */
