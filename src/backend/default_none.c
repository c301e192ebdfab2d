/* src/backend/default_none.c: defaults of a freestanding build: no
 * backend until the port installs one (ptrio_loop_use_backend), and no
 * report sink until the application sets one. */
#include "../core/internal.h"

const ptrio_backend *ptrio_default_backend(void) { return NULL; }

ptrio_report_fn ptrio__default_sink(void) { return NULL; }

/* The formatting code is linked only if the application sets a sink. */
const ptrio__reporter *ptrio__default_reporter(void) { return NULL; }
