/* src/sync/event.c: Trio's Event on a parking lot. */
#include <ptrio.h>

#include "misuse.h"

void ptrio_event_set(ptrio_event *e)
{
    if (!e || e->set)
        return;
    e->set = true;
    ptrio_lot_unpark_all(&e->waiters, 0);
}

int ptrio_event_wait(void *self, ptrio_event *e)
{
    if (!e) {
        SYNC_MISUSE("waiting on a NULL event");
        return -PTRIO_EINVAL;
    }
    if (e->set)
        return ptrio_checkpoint(self);
    return ptrio_park(self, &e->waiters, NULL);
}

unsigned ptrio_event_waiting(const ptrio_event *e)
{
    return e ? ptrio_lot_count(&e->waiters) : 0;
}
