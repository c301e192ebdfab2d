/* src/sync/chan.c: memory channels on two parking lots.
 *
 * Blocked senders park in ch->senders with their value's address as the
 * wait's data, blocked receivers in ch->receivers with their destination.
 * A value moves in one step, by whoever finds the other side waiting: a
 * send with a receiver blocked copies straight into its destination and
 * wakes it; a receive with a sender blocked takes the buffer's head (or,
 * unbuffered, the sender's value) and moves the sender's value in behind
 * it. A woken task cannot be cancelled out of its wait any more, so a value
 * is never both delivered and lost; a cancelled waiter is only taken out of
 * its lot, having touched nothing.
 *
 * Invariants: senders wait only while the buffer is full, receivers only
 * while it is empty; never both.
 *
 * Each end is one pointer to its side's lot, and its waiters park through
 * it as a key (ptrio_park_key): closing one clone finds its own waiters in
 * the shared lot, which keeps FIFO order across clones. Closed ends keep
 * the pointer with the low bit set.
 */
#include <string.h>

#include <ptrio.h>

#include "misuse.h"

#define CLOSED ((uintptr_t)1)

#define CHAN_OF(side, member)                                               \
    ((ptrio_chan *)(void *)((char *)(side) - offsetof(ptrio_chan, member)))

static int end_closed(ptrio_lot *side)
{
    return ((uintptr_t)side & CLOSED) != 0;
}

/* An end's side of its channel, or NULL with *rc set: closed or never
 * opened. */
static ptrio_lot *open_side(ptrio_lot *side, int *rc)
{
    if (!side) {
        SYNC_MISUSE("a channel end that was never opened");
        *rc = -PTRIO_EINVAL;
        return NULL;
    }
    if (end_closed(side)) {
        *rc = -PTRIO_ECLOSED;
        return NULL;
    }
    return side;
}

/* An end's channel, or NULL with *rc set. */
static ptrio_chan *tx_chan(const ptrio_chan_tx *tx, int *rc)
{
    ptrio_lot *side = open_side(tx ? tx->side : NULL, rc);
    return side ? CHAN_OF(side, senders) : NULL;
}

static ptrio_chan *rx_chan(const ptrio_chan_rx *rx, int *rc)
{
    ptrio_lot *side = open_side(rx ? rx->side : NULL, rc);
    return side ? CHAN_OF(side, receivers) : NULL;
}

/* Slot `i` of the ring. Zero-sized elements may have no storage at all,
 * and NULL + 0 is undefined in C: those all live at `buf`. */
static unsigned char *slot(ptrio_chan *ch, size_t i)
{
    return ch->size ? ch->buf + i * ch->size : ch->buf;
}

/* Copies a value (nothing into NULL: a dropped value). The usual sizes
 * are a load and a store. */
static void copy(void *dst, const void *src, size_t n)
{
    if (!dst)
        return;
    switch (n) {
    case 0:
        break;
    case 4:
        memcpy(dst, src, 4);
        break;
    case 8:
        memcpy(dst, src, 8);
        break;
    default:
        memcpy(dst, src, n);
        break;
    }
}

/* ---- the ring buffer ------------------------------------------------ */

static void push(ptrio_chan *ch, const void *value)
{
    size_t tail = (size_t)ch->head + ch->count;

    if (tail >= ch->cap)
        tail -= ch->cap;
    copy(slot(ch, tail), value, ch->size);
    if (++ch->count > ch->peak)
        ch->peak = ch->count;
}

static void pop(ptrio_chan *ch, void *dst)
{
    copy(dst, slot(ch, ch->head), ch->size);
    if (++ch->head == ch->cap)
        ch->head = 0;
    ch->count--;
}

/* ---- open ----------------------------------------------------------- */

/* Whether an end is open on some channel: open and clone take only ends
 * that are zeroed or closed, since overwriting an open one would leave its
 * channel counting an end that nobody can close. */
static int end_in_use(ptrio_lot *const *end)
{
    return *end && !end_closed(*end);
}

int ptrio_chan_open(ptrio_chan *ch, ptrio_chan_tx *tx, ptrio_chan_rx *rx,
                    size_t size, size_t capacity, void *storage)
{
    if (!ch || !tx || !rx || size > PTRIO_CHAN_MAX ||
        capacity > PTRIO_CHAN_MAX || (size && capacity && !storage)) {
        SYNC_MISUSE("bad arguments to ptrio_chan_open");
        return -PTRIO_EINVAL;
    }
    if (ch->ntx || ch->nrx || !ptrio_lot_empty(&ch->senders) ||
        !ptrio_lot_empty(&ch->receivers)) {
        SYNC_MISUSE("opening a channel that still has open ends");
        return -PTRIO_EBUSY;
    }
    if (end_in_use(&tx->side) || end_in_use(&rx->side)) {
        SYNC_MISUSE("opening a channel into an end that is open");
        return -PTRIO_EBUSY;
    }
    memset(ch, 0, sizeof *ch);
    ch->buf = storage;
    ch->size = (ptrio__chan_n)size;
    ch->cap = (ptrio__chan_n)capacity;
    ch->ntx = ch->nrx = 1;
    tx->side = &ch->senders;
    rx->side = &ch->receivers;
    return 0;
}

/* ---- send ----------------------------------------------------------- */

static int try_send(ptrio_chan *ch, const void *value)
{
    if (!ch->nrx)
        return -PTRIO_EBROKEN;
    if (!ptrio_lot_empty(&ch->receivers)) {
        copy(ptrio_lot_first_data(&ch->receivers), value, ch->size);
        ptrio_lot_unpark(&ch->receivers, 0);
        return 0;
    }
    if (ch->count < ch->cap) {
        push(ch, value);
        return 0;
    }
    return -PTRIO_EWOULDBLOCK;
}

/* send_nowait's whole work, inline in the blocking send too. */
static inline int send_now(ptrio_chan_tx *tx, const void *value)
{
    int rc = 0;
    ptrio_chan *ch = tx_chan(tx, &rc);

    if (!ch)
        return rc;
    if (!value && ch->size) {
        SYNC_MISUSE("sending from a NULL value");
        return -PTRIO_EINVAL;
    }
    return try_send(ch, value);
}

int ptrio_chan_send_nowait(ptrio_chan_tx *tx, const void *value)
{
    return send_now(tx, value);
}

/* A blocking operation as core.h composes it: the cancel check, then the
 * attempt (inline), then this: a schedule point when it is done, the park
 * through `key` with `data` when it must wait, else its error. Each
 * step's fast path is one compare. */
static inline int finish(void *self, ptrio_lot *const *key, void *data,
                         int rc)
{
    if (rc == -PTRIO_EWOULDBLOCK)
        return ptrio_park_key(self, key, data);
    return rc < 0 ? rc : ptrio_yield(self);
}

int ptrio_chan_send(void *self, ptrio_chan_tx *tx, const void *value)
{
    int rc;

    if (!tx) {
        SYNC_MISUSE("sending on a NULL channel end");
        return -PTRIO_EINVAL;
    }
    rc = ptrio_checkpoint_if_cancelled(self);
    if (rc < 0)
        return rc;
    /* blocked, it parks with its value as the data */
    return finish(self, &tx->side, (void *)(uintptr_t)value,
                  send_now(tx, value));
}

/* ---- receive -------------------------------------------------------- */

static int try_recv(ptrio_chan *ch, void *dst)
{
    if (!ptrio_lot_empty(&ch->senders)) {
        const void *value = ptrio_lot_first_data(&ch->senders);
        if (ch->cap) {
            pop(ch, dst);           /* full: the sender's goes in behind */
            push(ch, value);
        } else {
            copy(dst, value, ch->size);
        }
        ptrio_lot_unpark(&ch->senders, 0);
        return 0;
    }
    if (ch->count) {
        pop(ch, dst);
        return 0;
    }
    return ch->ntx ? -PTRIO_EWOULDBLOCK : -PTRIO_EENDOFCHANNEL;
}

static inline int recv_now(ptrio_chan_rx *rx, void *dst)
{
    int rc = 0;
    ptrio_chan *ch = rx_chan(rx, &rc);

    return ch ? try_recv(ch, dst) : rc;
}

int ptrio_chan_recv_nowait(ptrio_chan_rx *rx, void *dst)
{
    return recv_now(rx, dst);
}

int ptrio_chan_recv(void *self, ptrio_chan_rx *rx, void *dst)
{
    int rc;

    if (!rx) {
        SYNC_MISUSE("receiving on a NULL channel end");
        return -PTRIO_EINVAL;
    }
    rc = ptrio_checkpoint_if_cancelled(self);
    if (rc < 0)
        return rc;
    return finish(self, &rx->side, dst, recv_now(rx, dst));
}

/* ---- clone and close ------------------------------------------------- */

static int clone_end(ptrio_lot *side, ptrio__chan_n *count, ptrio_lot **out)
{
    if (!out) {
        SYNC_MISUSE("cloning into a NULL end");
        return -PTRIO_EINVAL;
    }
    if (end_in_use(out)) {
        SYNC_MISUSE("cloning into an end that is open");
        return -PTRIO_EBUSY;
    }
    if (*count == PTRIO_CHAN_MAX)
        return -PTRIO_EOVERFLOW;
    (*count)++;
    *out = side;
    return 0;
}

int ptrio_chan_tx_clone(ptrio_chan_tx *end, ptrio_chan_tx *clone)
{
    int rc = 0;
    ptrio_chan *ch = tx_chan(end, &rc);

    return ch ? clone_end(end->side, &ch->ntx, clone ? &clone->side : NULL)
              : rc;
}

int ptrio_chan_rx_clone(ptrio_chan_rx *end, ptrio_chan_rx *clone)
{
    int rc = 0;
    ptrio_chan *ch = rx_chan(end, &rc);

    return ch ? clone_end(end->side, &ch->nrx, clone ? &clone->side : NULL)
              : rc;
}

/* Wakes with -PTRIO_ECLOSED the tasks that wait through the end `*key`,
 * then marks it closed. */
static void close_end(ptrio_lot **key)
{
    ptrio_lot *side = *key;
    ptrio_task *t = ptrio_lot_first(side), *next;

    for (; t; t = next) {
        next = ptrio_lot_next(side, t);
        if (ptrio_wait_key(t) == key)
            ptrio_lot_unpark_task(side, t, -PTRIO_ECLOSED);
    }
    *key = (ptrio_lot *)(void *)((uintptr_t)side | CLOSED);
}

/* Closing what was never opened does nothing: cleanup code (FINALLY)
 * may close ends that setup did not get to open. */
int ptrio_chan_tx_close(ptrio_chan_tx *end)
{
    ptrio_chan *ch;

    if (!end || !end->side)
        return end ? 0 : -PTRIO_EINVAL;
    if (end_closed(end->side))
        return 0;
    ch = CHAN_OF(end->side, senders);
    close_end(&end->side);
    if (--ch->ntx == 0)
        ptrio_lot_unpark_all(&ch->receivers, -PTRIO_EENDOFCHANNEL);
    return 0;
}

int ptrio_chan_rx_close(ptrio_chan_rx *end)
{
    ptrio_chan *ch;

    if (!end || !end->side)
        return end ? 0 : -PTRIO_EINVAL;
    if (end_closed(end->side))
        return 0;
    ch = CHAN_OF(end->side, receivers);
    close_end(&end->side);
    if (--ch->nrx == 0) {
        ptrio_lot_unpark_all(&ch->senders, -PTRIO_EBROKEN);
        ch->head = ch->count = 0;
    }
    return 0;
}

void ptrio_chan_statistics(const ptrio_chan *ch, ptrio_chan_stats *out)
{
    if (!ch || !out) {
        SYNC_MISUSE("channel statistics of NULL, or into NULL");
        return;
    }
    out->used = ch->count;
    out->capacity = ch->cap;
    out->peak = ch->peak;
    out->open_tx = ch->ntx;
    out->open_rx = ch->nrx;
    out->waiting_send = ptrio_lot_count(&ch->senders);
    out->waiting_recv = ptrio_lot_count(&ch->receivers);
}
