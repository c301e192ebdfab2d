/* ptrio/backend.h: the port interface. A backend supplies the clock and the
 * wait step of a loop; one file per backend (src/backend/), chosen at build
 * time or per loop with ptrio_loop_use_backend. A backend keeps its state in
 * loop->be[].
 */
#ifndef PTRIO_BACKEND_H
#define PTRIO_BACKEND_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PTRIO_READABLE 0x1u
#define PTRIO_WRITABLE 0x4u

struct ptrio_backend {
    const char *name;
    /* Acquires what the backend needs (a wake pipe...). 0 or an error. */
    int (*open)(ptrio_loop *loop);
    /* Releases it. */
    void (*close)(ptrio_loop *loop);
    /* The clock, in nanoseconds, monotonic. */
    ptrio_time (*now)(ptrio_loop *loop);
    /* Blocks until `deadline` (PTRIO_TIME_INF: no deadline), a watched fd is
     * ready (report it with ptrio_backend_ready) or wake() is called; may
     * return early. 0, or an error that ends the run. */
    int (*wait)(ptrio_loop *loop, ptrio_time deadline);
    /* Watches `fd` for `events` on behalf of the parked task `t`. NULL: fd
     * waits are not supported (-PTRIO_ENOTSUP). */
    int (*watch)(ptrio_loop *loop, ptrio_task *t, int fd, unsigned events);
    /* Stops watching for `t`. */
    void (*unwatch)(ptrio_loop *loop, ptrio_task *t);
    /* Makes a wait() in progress return; async-signal-safe. May be NULL. */
    void (*wake)(ptrio_loop *loop);
};

/* Called by a backend: the fd `t` watches is ready (status >= 0: the ready
 * events) or failed (negative). Wakes the task. */
void ptrio_backend_ready(ptrio_loop *loop, ptrio_task *t, int status);

/* poll(2): the POSIX default. */
extern const ptrio_backend ptrio_backend_poll;

/* A virtual clock that starts at 0 and, when every task is parked, jumps to
 * the next deadline: a test that sleeps an hour takes microseconds. No fd
 * waits. wait() with no deadline fails with -PTRIO_EDEADLK. */
extern const ptrio_backend ptrio_backend_virtual;

/* The build's default backend (NULL when the build has none). */
const ptrio_backend *ptrio_default_backend(void);

#ifdef __cplusplus
}
#endif

#endif /* PTRIO_BACKEND_H */
