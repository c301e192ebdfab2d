/* src/backend/default_none.c: defaults of a freestanding build. With a
 * port (configure --with-port=cortex-m|riscv) the port is the default
 * backend, so ptrio_run works unchanged once the board's start-up code
 * has set the clock up; without one there is no backend until the
 * application installs its own (ptrio_loop_use_backend). No report sink
 * until the application sets one: a freestanding build has no stderr. */
#include "../core/internal.h"

#if defined(PTRIO_PORT_CORTEX_M) || defined(PTRIO_PORT_RISCV)
#include <ptrio/port.h>
#endif

const ptrio_backend *ptrio_default_backend(void)
{
#if defined(PTRIO_PORT_CORTEX_M)
    return &ptrio_backend_cortex_m;
#elif defined(PTRIO_PORT_RISCV)
    return &ptrio_backend_riscv;
#else
    return NULL;
#endif
}

ptrio_report_fn ptrio__default_sink(void) { return NULL; }

/* The formatting code is linked only if the application sets a sink. */
const ptrio__reporter *ptrio__default_reporter(void) { return NULL; }
