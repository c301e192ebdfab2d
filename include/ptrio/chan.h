/* ptrio/chan.h: memory channels (Trio's open_memory_channel).
 *
 * A channel moves fixed-size values between tasks through a ring buffer
 * you provide (element size and capacity; capacity 0 is a rendezvous: a
 * send completes only when a receiver takes the value). It has send ends
 * and receive ends, each cloneable and closed on its own:
 *
 *     static int storage[8];
 *     static ptrio_chan ch;
 *     static ptrio_chan_tx tx;
 *     static ptrio_chan_rx rx;
 *     ptrio_chan_open(&ch, &tx, &rx, sizeof(int), 8, storage);
 *     PTRIO_AWAIT(f, ptrio_chan_send(f, &tx, &f->value));
 *     PTRIO_AWAIT(f, ptrio_chan_recv(f, &rx, &f->value));
 *
 * Semantics are Trio's: values arrive in order, exactly once, also under
 * cancellation (a cancelled receive never takes a value, a cancelled send
 * never half-sends). Senders are served FIFO, and so are receivers. After
 * every send end is closed, receivers drain the buffer and then get
 * -PTRIO_EENDOFCHANNEL; after every receive end is closed, senders get
 * -PTRIO_EBROKEN and the buffer is dropped; an end you closed gives
 * -PTRIO_ECLOSED. Closing an end wakes the tasks blocked on that very end
 * with -PTRIO_ECLOSED; closing the last one of a side wakes the other side
 * as above. send and recv are checkpoints even when they need not block;
 * the *_nowait calls, clone and close never are.
 *
 * The value pointers given to send and recv must stay valid until the
 * await returns: point into the frame. Ends must not be copied (clone
 * them); none may be moved while a task waits on it.
 */
#ifndef PTRIO_CHAN_H
#define PTRIO_CHAN_H

#include <stddef.h>
#include <stdint.h>

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Sizes and counts: 16 bits on 32-bit targets, 32 on 64-bit hosts. */
#if UINTPTR_MAX > 0xFFFFFFFFu
typedef uint32_t ptrio__chan_n;
#define PTRIO_CHAN_MAX 0xFFFFFFFFu
#else
typedef uint16_t ptrio__chan_n;
#define PTRIO_CHAN_MAX 0xFFFFu
#endif

/* The channel's shared state. */
typedef struct ptrio_chan {
    ptrio_lot senders;          /* blocked senders; data: their value */
    ptrio_lot receivers;        /* blocked receivers; data: where to */
    unsigned char *buf;
    ptrio__chan_n size;         /* element size */
    ptrio__chan_n cap, head, count, peak;
    ptrio__chan_n ntx, nrx;     /* open ends */
} ptrio_chan;

/* A send end and a receive end: one pointer each (to their side's lot;
 * the low bit says closed), and the key their waiters park through. */
typedef struct ptrio_chan_tx {
    ptrio_lot *side;
} ptrio_chan_tx;

typedef struct ptrio_chan_rx {
    ptrio_lot *side;
} ptrio_chan_rx;

/* Opens `ch` over `storage` (size * capacity bytes, suitably aligned; may
 * be NULL when that is 0) and its first two ends, which must be zeroed or
 * closed. Returns 0, or -PTRIO_EINVAL (NULL, size or capacity over
 * PTRIO_CHAN_MAX, no storage), -PTRIO_EBUSY (an end of `ch` is still
 * open, or `tx` or `rx` is an open end). */
int ptrio_chan_open(ptrio_chan *ch, ptrio_chan_tx *tx, ptrio_chan_rx *rx,
                    size_t size, size_t capacity, void *storage);

/* Sends the value at `value` (size bytes are copied): awaitable
 * checkpoint. Hands it to the first blocked receiver, or buffers it, or
 * waits for either. Errors: -PTRIO_ECANCELED (nothing sent),
 * -PTRIO_EBROKEN (no receive end is open), -PTRIO_ECLOSED (this end is
 * closed, maybe while waiting), -PTRIO_EINVAL (NULL or never-opened end,
 * NULL value with a nonzero size), -PTRIO_ENOTASK. */
PTRIO_NODISCARD int ptrio_chan_send(void *self, ptrio_chan_tx *tx,
                                    const void *value);

/* Sends without blocking. Returns 0, or -PTRIO_EWOULDBLOCK (the buffer is
 * full and no receiver waits), -PTRIO_EBROKEN, -PTRIO_ECLOSED,
 * -PTRIO_EINVAL. */
int ptrio_chan_send_nowait(ptrio_chan_tx *tx, const void *value);

/* Receives the next value into `dst` (NULL: drop it): awaitable
 * checkpoint. Errors: -PTRIO_ECANCELED (nothing taken),
 * -PTRIO_EENDOFCHANNEL (every send end is closed and nothing is left),
 * -PTRIO_ECLOSED (this end is closed, maybe while waiting),
 * -PTRIO_EINVAL (NULL or never-opened end), -PTRIO_ENOTASK. */
PTRIO_NODISCARD int ptrio_chan_recv(void *self, ptrio_chan_rx *rx,
                                    void *dst);

/* Receives without blocking. Returns 0, or -PTRIO_EWOULDBLOCK,
 * -PTRIO_EENDOFCHANNEL, -PTRIO_ECLOSED, -PTRIO_EINVAL. */
int ptrio_chan_recv_nowait(ptrio_chan_rx *rx, void *dst);

/* Makes `clone` (zeroed or closed) another end of the same channel
 * (Trio's clone). Returns 0, or -PTRIO_ECLOSED (`end` is closed),
 * -PTRIO_EBUSY (`clone` is an open end, `end` itself included),
 * -PTRIO_EOVERFLOW (too many ends), -PTRIO_EINVAL. */
int ptrio_chan_tx_clone(ptrio_chan_tx *end, ptrio_chan_tx *clone);
int ptrio_chan_rx_clone(ptrio_chan_rx *end, ptrio_chan_rx *clone);

/* Closes an end: its blocked tasks wake with -PTRIO_ECLOSED; closing the
 * last send end wakes the receivers with -PTRIO_EENDOFCHANNEL, closing the
 * last receive end wakes the senders with -PTRIO_EBROKEN and drops the
 * buffer. Idempotent, not a checkpoint; an end never opened (zeroed) is
 * left alone, so cleanup may close what setup did not open. Returns 0, or
 * -PTRIO_EINVAL (NULL). */
int ptrio_chan_tx_close(ptrio_chan_tx *end);
int ptrio_chan_rx_close(ptrio_chan_rx *end);

/* Trio's MemoryChannelStatistics. */
typedef struct ptrio_chan_stats {
    size_t used;                /* values in the buffer */
    size_t capacity;
    size_t peak;                /* most values ever in the buffer at once */
    unsigned open_tx, open_rx;  /* open ends */
    unsigned waiting_send;      /* tasks blocked in send, every clone */
    unsigned waiting_recv;      /* tasks blocked in recv, every clone */
} ptrio_chan_stats;

/* Fills `out` with the channel's statistics. */
void ptrio_chan_statistics(const ptrio_chan *ch, ptrio_chan_stats *out);

/* Receives into `dst` until every send end is closed and the buffer is
 * drained (Trio's `async for value in receive_channel`):
 *
 *     PTRIO_CHAN_FOR(f, &f->rx, &f->value) {
 *         ... use f->value, await as you like ...
 *     }
 *
 * `break` and `continue` work as in any loop. The end of the channel ends
 * the loop; any other error (-PTRIO_ECANCELED, -PTRIO_ECLOSED) is raised.
 * It awaits on its own line: put the body's awaits on other lines. */
#define PTRIO_CHAN_FOR(f, rx, dst)                                          \
    for (;;)                                                                \
        if (1) {                                                            \
            PTRIO__AWAIT_INTO(ptrio_chan_recv((f), (rx), (dst)))            \
            (f)->fr.result = ptrio__r;                                      \
            if (ptrio__r == -PTRIO_EENDOFCHANNEL) {                         \
                ptrio__caught(ptrio__r);                                    \
                break;                                                      \
            }                                                               \
            if (ptrio__r < 0)                                               \
                PTRIO__RAISE_RC(ptrio__r);                                  \
            goto PTRIO__CAT(ptrio__chan_body_, __LINE__);                   \
        } else                                                              \
            PTRIO__CAT(ptrio__chan_body_, __LINE__):

#ifdef __cplusplus
}
#endif

#endif /* PTRIO_CHAN_H */
