/* src/backend/virtual.c: a virtual clock with autojump, for tests. Time
 * starts at 0 and only moves when every task is parked: it jumps to the
 * next deadline. Waiting with no deadline can never end: -PTRIO_EDEADLK. */
#include "../core/internal.h"

static int vopen(ptrio_loop *l)
{
    l->be[0].i64 = 0;
    return 0;
}

static ptrio_time vnow(ptrio_loop *l) { return l->be[0].i64; }

static int vwait(ptrio_loop *l, ptrio_time deadline)
{
    if (deadline == PTRIO_TIME_INF)
        return -PTRIO_EDEADLK;
    if (deadline > l->be[0].i64)
        l->be[0].i64 = deadline;
    return 0;
}

const ptrio_backend ptrio_backend_virtual = {
    "virtual", vopen, NULL, vnow, vwait, NULL, NULL, NULL
};
