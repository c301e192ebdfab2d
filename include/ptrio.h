/* ptrio: Trio's structured concurrency for C, on stackless coroutines.
 * The whole public API; see README for a tour. */
#ifndef PTRIO_H
#define PTRIO_H

#include "ptrio/coro.h"
#include "ptrio/error.h"
#include "ptrio/core.h"
#include "ptrio/backend.h"
#include "ptrio/io.h"
#include "ptrio/net.h"
#include "ptrio/testing.h"
#include "ptrio/sync.h"
#include "ptrio/chan.h"

#endif /* PTRIO_H */
