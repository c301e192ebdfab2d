/* tests/check_chan.c: memory channels: buffered and rendezvous hand-off,
 * *_nowait, Trio's checkpoint rules, FIFO among senders and among
 * receivers, cancellation that never loses nor duplicates a value, close
 * semantics for every combination of clones, statistics, the receive loop,
 * misuse, results from children (the README's patterns), and a stress
 * test: 4 producers and 4 consumers moving 1,000,000 numbered values
 * through a capacity-8 channel under random cancellations. Where a test
 * has a twin in Python Trio (trio/_tests/test_channel.py) the comment
 * above it names it. Portable: no POSIX calls; all time is on the virtual
 * clock. */
#include "synctest.h"

/* ---- tasks that send and receive ------------------------------------------ */

/* Sends `v` on `tx` in its own cancel scope; logs "<name>>" before and its
 * status after. */
struct sender {
    ptrio_frame fr;
    const char *name;
    ptrio_chan_tx *tx;
    int v;
    ptrio_scope sc;
    int rc;
};

static int sender(ptrio_frame *fr)
{
    struct sender *f = PTRIO_SELF(fr, struct sender);
    PTRIO_BEGIN(f);
    PTRIO_CANCEL_SCOPE(f, &f->sc) {
        ev(f->name, ">");
        PTRIO_TRY(f, f->rc, ptrio_chan_send(f, f->tx, &f->v));
        ev_rc(f->name, f->rc);
    }
    PTRIO_END(f);
}

/* Receives into `v` from `rx` in its own cancel scope; logs "<name><"
 * before, and the value (or error) after. */
struct receiver {
    ptrio_frame fr;
    const char *name;
    ptrio_chan_rx *rx;
    int v;
    ptrio_scope sc;
    int rc;
};

static int receiver(ptrio_frame *fr)
{
    struct receiver *f = PTRIO_SELF(fr, struct receiver);
    PTRIO_BEGIN(f);
    PTRIO_CANCEL_SCOPE(f, &f->sc) {
        ev(f->name, "<");
        f->v = -1;
        PTRIO_TRY(f, f->rc, ptrio_chan_recv(f, f->rx, &f->v));
        ev_rc(f->name, f->rc < 0 ? f->rc : f->v);
    }
    PTRIO_END(f);
}

#define NT 6

/* A main task with a channel, two clones of each end, and helpers. */
struct chan_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[NT];
    struct sender s[NT];
    struct receiver r[NT];
    struct marker mk;
    ptrio_chan ch;
    ptrio_chan_tx tx, tx2, tx3;
    ptrio_chan_rx rx, rx2, rx3;
    int buf[16];
    ptrio_chan_stats st;
    ptrio_scope sc;
    int i, v, rc, mode;
};

static void start_sender(struct chan_main *f, int i, ptrio_chan_tx *tx,
                         int v)
{
    f->s[i] = (struct sender){.name = names[i], .tx = tx, .v = v};
    EXPECT(ptrio_start_soon(&f->n, &f->t[i], sender, &f->s[i]) == 0);
}

static void start_receiver(struct chan_main *f, int i, ptrio_chan_rx *rx)
{
    f->r[i] = (struct receiver){.name = names[i], .rx = rx};
    EXPECT(ptrio_start_soon(&f->n, &f->t[i], receiver, &f->r[i]) == 0);
}

/* A fresh channel and ends (the last test's may still be open). */
static int open_chan(struct chan_main *f, size_t cap)
{
    memset(&f->ch, 0, sizeof f->ch);
    memset(&f->tx, 0, sizeof f->tx);
    memset(&f->rx, 0, sizeof f->rx);
    return ptrio_chan_open(&f->ch, &f->tx, &f->rx, sizeof(int), cap, f->buf);
}

/* ---- basics ------------------------------------------------------------------ */

static int basic_main(ptrio_frame *fr)
{
    struct chan_main *f = PTRIO_SELF(fr, struct chan_main);
    PTRIO_BEGIN(f);
    PTRIO_CHECK(f, open_chan(f, 2));
    f->v = 1;
    EXPECT(ptrio_chan_send_nowait(&f->tx, &f->v) == 0);
    f->v = 2;
    PTRIO_AWAIT(f, ptrio_chan_send(f, &f->tx, &f->v));
    EXPECT(ptrio_chan_send_nowait(&f->tx, &f->v) == -PTRIO_EWOULDBLOCK);
    f->v = 0;
    PTRIO_AWAIT(f, ptrio_chan_recv(f, &f->rx, &f->v));
    EXPECT(f->v == 1);
    EXPECT(ptrio_chan_recv_nowait(&f->rx, &f->v) == 0 && f->v == 2);
    EXPECT(ptrio_chan_recv_nowait(&f->rx, &f->v) == -PTRIO_EWOULDBLOCK);
    f->v = 3;
    EXPECT(ptrio_chan_send_nowait(&f->tx, &f->v) == 0);
    EXPECT(ptrio_chan_tx_close(&f->tx) == 0);
    PTRIO_TRY(f, f->rc, ptrio_chan_send(f, &f->tx, &f->v));
    EXPECT(f->rc == -PTRIO_ECLOSED);
    EXPECT(ptrio_chan_send_nowait(&f->tx, &f->v) == -PTRIO_ECLOSED);
    EXPECT(ptrio_chan_tx_clone(&f->tx, &f->tx2) == -PTRIO_ECLOSED);
    EXPECT(ptrio_chan_tx_close(&f->tx) == 0);
    f->v = 0;
    EXPECT(ptrio_chan_recv_nowait(&f->rx, &f->v) == 0 && f->v == 3);
    PTRIO_TRY(f, f->rc, ptrio_chan_recv(f, &f->rx, &f->v));
    EXPECT(f->rc == -PTRIO_EENDOFCHANNEL);
    EXPECT(ptrio_chan_recv_nowait(&f->rx, &f->v) == -PTRIO_EENDOFCHANNEL);
    EXPECT(ptrio_chan_rx_close(&f->rx) == 0);
    PTRIO_TRY(f, f->rc, ptrio_chan_recv(f, &f->rx, &f->v));
    EXPECT(f->rc == -PTRIO_ECLOSED);
    EXPECT(ptrio_chan_recv_nowait(&f->rx, &f->v) == -PTRIO_ECLOSED);
    EXPECT(ptrio_chan_rx_clone(&f->rx, &f->rx2) == -PTRIO_ECLOSED);
    EXPECT(ptrio_chan_rx_close(&f->rx) == 0);
    /* Every end closed: the channel may be opened again. */
    EXPECT(ptrio_chan_open(&f->ch, &f->tx, &f->rx, sizeof(int), 2,
                           f->buf) == 0);
    EXPECT(ptrio_chan_recv_nowait(&f->rx, &f->v) == -PTRIO_EWOULDBLOCK);
    PTRIO_END(f);
}

/* Trio test_channel.py: test_channel */
START_TEST(test_channel)
{
    static struct chan_main m;
    RUN_MAIN(basic_main, m, 0);
}
END_TEST

static int t553_main(ptrio_frame *fr)
{
    struct chan_main *f = PTRIO_SELF(fr, struct chan_main);
    PTRIO_BEGIN(f);
    PTRIO_CHECK(f, open_chan(f, 1));
    PTRIO_MOVE_ON_AFTER(f, &f->sc, PTRIO_SEC(10)) {
        PTRIO_AWAIT(f, ptrio_chan_recv(f, &f->rx, &f->v));
    }
    EXPECT(ptrio_cancelled_caught(&f->sc));
    ev("timeout", "");
    f->v = 553;
    PTRIO_AWAIT(f, ptrio_chan_send(f, &f->tx, &f->v));
    f->v = 0;
    EXPECT(ptrio_chan_recv_nowait(&f->rx, &f->v) == 0 && f->v == 553);
    PTRIO_END(f);
}

/* A receive that timed out leaves nothing behind: the next send buffers.
 * Trio test_channel.py: test_553 */
START_TEST(test_553)
{
    static struct chan_main m;
    RUN_MAIN(t553_main, m, 0);
    ck_assert_str_eq(L.buf, "timeout@10000");
}
END_TEST

/* ---- checkpoint rules --------------------------------------------------------- */

static int cp_main(ptrio_frame *fr)
{
    struct chan_main *f = PTRIO_SELF(fr, struct chan_main);
    PTRIO_BEGIN(f);
    /* Send with room, receive with a buffered value: schedule points. */
    PTRIO_CHECK(f, open_chan(f, 1));
    PTRIO_NURSERY(f, &f->n) {
        f->mk = (struct marker){.name = "m"};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], marker, &f->mk));
        ev("send", "");
        f->v = 5;
        PTRIO_AWAIT(f, ptrio_chan_send(f, &f->tx, &f->v));
        ev("sent", "");
    }
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[0], marker, &f->mk));
        ev("recv", "");
        PTRIO_AWAIT(f, ptrio_chan_recv(f, &f->rx, &f->v));
        ev("got", "");
    }
    /* Cancelled: no effect. */
    PTRIO_CANCEL_SCOPE(f, &f->sc) {
        ptrio_cancel(&f->sc);
        PTRIO_TRY(f, f->rc, ptrio_chan_send(f, &f->tx, &f->v));
        EXPECT(f->rc == -PTRIO_ECANCELED);
        ptrio_chan_statistics(&f->ch, &f->st);
        EXPECT(f->st.used == 0);
        /* Never a checkpoint: the nowait calls work in here. */
        EXPECT(ptrio_chan_send_nowait(&f->tx, &f->v) == 0);
        PTRIO_TRY(f, f->rc, ptrio_chan_recv(f, &f->rx, &f->v));
        EXPECT(f->rc == -PTRIO_ECANCELED);
        ptrio_chan_statistics(&f->ch, &f->st);
        EXPECT(f->st.used == 1);
        EXPECT(ptrio_chan_recv_nowait(&f->rx, &f->v) == 0 && f->v == 5);
    }
    /* With the other side waiting (a rendezvous). */
    PTRIO_CHECK(f, open_chan(f, 0));
    PTRIO_NURSERY(f, &f->n) {
        start_receiver(f, 0, &f->rx);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        PTRIO_CANCEL_SCOPE(f, &f->sc) {
            ptrio_cancel(&f->sc);
            f->v = 6;
            PTRIO_TRY(f, f->rc, ptrio_chan_send(f, &f->tx, &f->v));
            EXPECT(f->rc == -PTRIO_ECANCELED);
        }
        ptrio_chan_statistics(&f->ch, &f->st);
        EXPECT(f->st.waiting_recv == 1);
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], marker, &f->mk));
        ev("send", "");
        f->v = 7;
        PTRIO_AWAIT(f, ptrio_chan_send(f, &f->tx, &f->v));
        ev("sent", "");
    }
    PTRIO_NURSERY(f, &f->n) {
        start_sender(f, 0, &f->tx, 8);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        PTRIO_CANCEL_SCOPE(f, &f->sc) {
            ptrio_cancel(&f->sc);
            PTRIO_TRY(f, f->rc, ptrio_chan_recv(f, &f->rx, &f->v));
            EXPECT(f->rc == -PTRIO_ECANCELED);
        }
        ptrio_chan_statistics(&f->ch, &f->st);
        EXPECT(f->st.waiting_send == 1);
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[1], marker, &f->mk));
        ev("recv", "");
        PTRIO_AWAIT(f, ptrio_chan_recv(f, &f->rx, &f->v));
        logn_at(&L, "got", f->v);
    }
    PTRIO_END(f);
}

/* send and recv are checkpoints even when they need not block: other
 * tasks run, and cancelled they have no effect (the value stays where it
 * was, the other side keeps waiting).
 * Trio test_channel.py: the assert_checkpoints() blocks of test_channel and
 * test_unbuffered */
START_TEST(test_chan_checkpoints)
{
    static struct chan_main m;
    RUN_MAIN(cp_main, m, 0);
    ck_assert_str_eq(L.buf,
        "send@0 m@0 sent@0 recv@0 m@0 got@0 "
        "p0<@0 send@1 m@1 p0=7@1 sent@1 "
        "p0>@1 recv@2 m@2 p0=0@2 got8@2");
}
END_TEST

/* A send or receive that is done is a cancel-shielded schedule point: a
 * cancellation arriving while it waits its turn does not undo it. Each
 * helper finishes its operation at once and is cancelled during the
 * schedule point that follows: its status is 0, the value moved.
 * Trio: MemorySendChannel.send and receive use cancel_shielded_checkpoint
 * after a successful *_nowait. */
static int done_main(ptrio_frame *fr)
{
    struct chan_main *f = PTRIO_SELF(fr, struct chan_main);
    PTRIO_BEGIN(f);
    PTRIO_CHECK(f, open_chan(f, 1));
    PTRIO_NURSERY(f, &f->n) {
        start_sender(f, 0, &f->tx, 9);
        PTRIO_YIELD(f);                 /* p0 sends, and waits its turn */
        ptrio_cancel(&f->s[0].sc);
    }
    ptrio_chan_statistics(&f->ch, &f->st);
    EXPECT(f->s[0].rc == 0 && f->st.used == 1);
    PTRIO_NURSERY(f, &f->n) {
        start_receiver(f, 1, &f->rx);
        PTRIO_YIELD(f);                 /* p1 receives, and waits its turn */
        ptrio_cancel(&f->r[1].sc);
    }
    ptrio_chan_statistics(&f->ch, &f->st);
    EXPECT(f->r[1].rc == 0 && f->r[1].v == 9 && f->st.used == 0);
    PTRIO_END(f);
}

START_TEST(test_chan_done_is_shielded)
{
    static struct chan_main m;
    RUN_MAIN(done_main, m, 0);
    ck_assert_str_eq(L.buf, "p0>@0 p0=0@0 p1<@0 p1=9@0");
}
END_TEST

/* ---- rendezvous and fairness ------------------------------------------------- */

static int unbuffered_main(ptrio_frame *fr)
{
    struct chan_main *f = PTRIO_SELF(fr, struct chan_main);
    PTRIO_BEGIN(f);
    PTRIO_CHECK(f, open_chan(f, 0));
    EXPECT(ptrio_chan_recv_nowait(&f->rx, &f->v) == -PTRIO_EWOULDBLOCK);
    f->v = 1;
    EXPECT(ptrio_chan_send_nowait(&f->tx, &f->v) == -PTRIO_EWOULDBLOCK);
    PTRIO_NURSERY(f, &f->n) {
        /* Senders queue in order; each send completes only when its
         * value is taken. */
        for (f->i = 0; f->i < 3; f->i++)
            start_sender(f, f->i, &f->tx, 10 + f->i);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        for (f->i = 0; f->i < 3; f->i++) {
            PTRIO_AWAIT(f, ptrio_chan_recv(f, &f->rx, &f->v));
            logn_at(&L, "got", f->v);
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        }
    }
    EXPECT(ptrio_chan_recv_nowait(&f->rx, &f->v) == -PTRIO_EWOULDBLOCK);
    PTRIO_NURSERY(f, &f->n) {
        /* Receivers queue in order too. */
        for (f->i = 0; f->i < 3; f->i++)
            start_receiver(f, f->i, &f->rx);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        for (f->i = 0; f->i < 3; f->i++) {
            f->v = 20 + f->i;
            EXPECT(ptrio_chan_send_nowait(&f->tx, &f->v) == 0);
        }
        EXPECT(ptrio_chan_send_nowait(&f->tx, &f->v) == -PTRIO_EWOULDBLOCK);
    }
    PTRIO_END(f);
}

/* Trio test_channel.py: test_unbuffered */
START_TEST(test_unbuffered)
{
    static struct chan_main m;
    RUN_MAIN(unbuffered_main, m, 0);
    ck_assert_str_eq(L.buf,
        "p0>@0 p1>@0 p2>@0 p0=0@1 got10@1 p1=0@2 got11@2 p2=0@3 got12@3 "
        "p0<@4 p1<@4 p2<@4 p0=20@5 p1=21@5 p2=22@5");
}
END_TEST

static int fairness_main(ptrio_frame *fr)
{
    struct chan_main *f = PTRIO_SELF(fr, struct chan_main);
    PTRIO_BEGIN(f);
    PTRIO_CHECK(f, open_chan(f, 1));
    f->v = 1;
    EXPECT(ptrio_chan_send_nowait(&f->tx, &f->v) == 0);
    EXPECT(ptrio_chan_recv_nowait(&f->rx, &f->v) == 0 && f->v == 1);
    f->v = 2;
    EXPECT(ptrio_chan_send_nowait(&f->tx, &f->v) == 0);
    EXPECT(ptrio_chan_recv_nowait(&f->rx, &f->v) == 0 && f->v == 2);
    /* A waiting receiver owns the value we send: we cannot take it back. */
    PTRIO_NURSERY(f, &f->n) {
        start_receiver(f, 0, &f->rx);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        f->v = 2;
        EXPECT(ptrio_chan_send_nowait(&f->tx, &f->v) == 0);
        EXPECT(ptrio_chan_recv_nowait(&f->rx, &f->v) == -PTRIO_EWOULDBLOCK);
    }
    EXPECT(f->r[0].v == 2);
    /* A waiting sender owns the room we free: we cannot fill it. */
    PTRIO_CHECK(f, open_chan(f, 1));
    f->v = 1;
    EXPECT(ptrio_chan_send_nowait(&f->tx, &f->v) == 0);
    EXPECT(ptrio_chan_send_nowait(&f->tx, &f->v) == -PTRIO_EWOULDBLOCK);
    PTRIO_NURSERY(f, &f->n) {
        start_sender(f, 0, &f->tx, 2);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(ptrio_chan_recv_nowait(&f->rx, &f->v) == 0 && f->v == 1);
        f->v = 3;
        EXPECT(ptrio_chan_send_nowait(&f->tx, &f->v) == -PTRIO_EWOULDBLOCK);
        PTRIO_AWAIT(f, ptrio_chan_recv(f, &f->rx, &f->v));
        EXPECT(f->v == 2);
    }
    PTRIO_END(f);
}

/* Trio test_channel.py: test_channel_fairness */
START_TEST(test_channel_fairness)
{
    static struct chan_main m;
    RUN_MAIN(fairness_main, m, 0);
    ck_assert_str_eq(L.buf, "p0<@0 p0=2@1 p0>@1 p0=0@2");
}
END_TEST

/* ---- cancellation never loses nor duplicates --------------------------------- */

static int cancel_main(ptrio_frame *fr)
{
    struct chan_main *f = PTRIO_SELF(fr, struct chan_main);
    PTRIO_BEGIN(f);
    PTRIO_CHECK(f, open_chan(f, 1));
    PTRIO_NURSERY(f, &f->n) {
        /* Three senders block behind a full buffer; the middle one is
         * cancelled: its value never enters the channel. */
        f->v = 100;
        EXPECT(ptrio_chan_send_nowait(&f->tx, &f->v) == 0);
        for (f->i = 0; f->i < 3; f->i++)
            start_sender(f, f->i, &f->tx, f->i);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        ptrio_cancel(&f->s[1].sc);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        for (f->i = 0; f->i < 3; f->i++) {
            PTRIO_AWAIT(f, ptrio_chan_recv(f, &f->rx, &f->v));
            logn_at(&L, "got", f->v);
        }
        EXPECT(ptrio_chan_recv_nowait(&f->rx, &f->v) == -PTRIO_EWOULDBLOCK);
    }
    PTRIO_NURSERY(f, &f->n) {
        /* Three receivers block; the middle one is cancelled: it takes
         * nothing, and the two values go to the others, in order. */
        for (f->i = 0; f->i < 3; f->i++)
            start_receiver(f, f->i, &f->rx);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        ptrio_cancel(&f->r[1].sc);
        f->v = 7;
        EXPECT(ptrio_chan_send_nowait(&f->tx, &f->v) == 0);
        f->v = 8;
        EXPECT(ptrio_chan_send_nowait(&f->tx, &f->v) == 0);
        /* Woken with a value, a receiver keeps it even if cancelled now. */
        ptrio_cancel(&f->r[2].sc);
        EXPECT(ptrio_chan_recv_nowait(&f->rx, &f->v) == -PTRIO_EWOULDBLOCK);
    }
    PTRIO_END(f);
}

START_TEST(test_cancel_never_loses)
{
    static struct chan_main m;
    RUN_MAIN(cancel_main, m, 0);
    ck_assert_str_eq(L.buf,
        "p0>@0 p1>@0 p2>@0 p1!PTRIO_ECANCELED@1 p0=0@2 got100@2 p2=0@2 "
        "got0@2 got2@2 p0<@2 p1<@2 p2<@2 p1!PTRIO_ECANCELED@3 p0=7@3 "
        "p2=8@3");
}
END_TEST

/* ---- closing -------------------------------------------------------------------- */

static int close_main(ptrio_frame *fr)
{
    struct chan_main *f = PTRIO_SELF(fr, struct chan_main);
    PTRIO_BEGIN(f);
    /* Closing the send end: its blocked sender gets ECLOSED, for good;
     * receivers get EndOfChannel. */
    PTRIO_CHECK(f, open_chan(f, 0));
    PTRIO_NURSERY(f, &f->n) {
        start_sender(f, 0, &f->tx, 1);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(ptrio_chan_tx_close(&f->tx) == 0);
    }
    EXPECT(ptrio_chan_send_nowait(&f->tx, &f->v) == -PTRIO_ECLOSED);
    PTRIO_TRY(f, f->rc, ptrio_chan_send(f, &f->tx, &f->v));
    EXPECT(f->rc == -PTRIO_ECLOSED);
    EXPECT(ptrio_chan_recv_nowait(&f->rx, &f->v) == -PTRIO_EENDOFCHANNEL);
    PTRIO_TRY(f, f->rc, ptrio_chan_recv(f, &f->rx, &f->v));
    EXPECT(f->rc == -PTRIO_EENDOFCHANNEL);
    EXPECT(ptrio_chan_rx_close(&f->rx) == 0);
    /* Closing the receive end: the blocked sender gets EBROKEN, for good. */
    PTRIO_CHECK(f, open_chan(f, 0));
    PTRIO_NURSERY(f, &f->n) {
        start_sender(f, 1, &f->tx, 1);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(ptrio_chan_rx_close(&f->rx) == 0);
    }
    EXPECT(ptrio_chan_send_nowait(&f->tx, &f->v) == -PTRIO_EBROKEN);
    PTRIO_TRY(f, f->rc, ptrio_chan_send(f, &f->tx, &f->v));
    EXPECT(f->rc == -PTRIO_EBROKEN);
    EXPECT(ptrio_chan_tx_close(&f->tx) == 0);
    /* Closing the receive end: its blocked receiver gets ECLOSED. */
    PTRIO_CHECK(f, open_chan(f, 0));
    PTRIO_NURSERY(f, &f->n) {
        start_receiver(f, 2, &f->rx);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(ptrio_chan_rx_close(&f->rx) == 0);
    }
    EXPECT(ptrio_chan_recv_nowait(&f->rx, &f->v) == -PTRIO_ECLOSED);
    PTRIO_TRY(f, f->rc, ptrio_chan_recv(f, &f->rx, &f->v));
    EXPECT(f->rc == -PTRIO_ECLOSED);
    /* Closing the send end wakes blocked receivers with EndOfChannel. */
    PTRIO_CHECK(f, ptrio_chan_tx_close(&f->tx));
    PTRIO_CHECK(f, open_chan(f, 0));
    PTRIO_NURSERY(f, &f->n) {
        start_receiver(f, 3, &f->rx);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(ptrio_chan_tx_close(&f->tx) == 0);
    }
    EXPECT(ptrio_chan_rx_close(&f->rx) == 0);
    PTRIO_END(f);
}

/* Trio test_channel.py: test_close_basics, test_close_sync */
START_TEST(test_close_basics)
{
    static struct chan_main m;
    RUN_MAIN(close_main, m, 0);
    ck_assert_str_eq(L.buf,
        "p0>@0 p0!PTRIO_ECLOSED@1 p1>@1 p1!PTRIO_EBROKEN@2 "
        "p2<@2 p2!PTRIO_ECLOSED@3 p3<@3 p3!PTRIO_EENDOFCHANNEL@4");
}
END_TEST

static int rx_clone_main(ptrio_frame *fr)
{
    struct chan_main *f = PTRIO_SELF(fr, struct chan_main);
    PTRIO_BEGIN(f);
    PTRIO_CHECK(f, open_chan(f, 10));
    EXPECT(ptrio_chan_rx_clone(&f->rx, &f->rx2) == 0);
    EXPECT(ptrio_chan_rx_clone(&f->rx, &f->rx3) == 0);
    f->v = 1;
    EXPECT(ptrio_chan_send_nowait(&f->tx, &f->v) == 0);
    EXPECT(ptrio_chan_rx_close(&f->rx) == 0);
    EXPECT(ptrio_chan_rx_close(&f->rx2) == 0);
    EXPECT(ptrio_chan_rx_clone(&f->rx, &f->rx2) == -PTRIO_ECLOSED);
    EXPECT(ptrio_chan_rx_clone(&f->rx2, &f->rx) == -PTRIO_ECLOSED);
    /* rx3 is still open: sending works, and the buffer is kept. */
    EXPECT(ptrio_chan_send_nowait(&f->tx, &f->v) == 0);
    ptrio_chan_statistics(&f->ch, &f->st);
    EXPECT(f->st.used == 2 && f->st.open_rx == 1);
    EXPECT(ptrio_chan_rx_close(&f->rx3) == 0);
    /* Now it is really closed, and the buffer is gone. */
    EXPECT(ptrio_chan_send_nowait(&f->tx, &f->v) == -PTRIO_EBROKEN);
    ptrio_chan_statistics(&f->ch, &f->st);
    EXPECT(f->st.used == 0 && f->st.open_rx == 0);
    PTRIO_END(f);
}

/* Trio test_channel.py: test_receive_channel_clone_and_close */
START_TEST(test_receive_channel_clone_and_close)
{
    static struct chan_main m;
    RUN_MAIN(rx_clone_main, m, 0);
}
END_TEST

static int multi_close_main(ptrio_frame *fr)
{
    struct chan_main *f = PTRIO_SELF(fr, struct chan_main);
    PTRIO_BEGIN(f);
    /* Closing one send clone wakes only the senders on that clone. */
    PTRIO_CHECK(f, open_chan(f, 0));
    PTRIO_CHECK(f, ptrio_chan_tx_clone(&f->tx, &f->tx2));
    PTRIO_NURSERY(f, &f->n) {
        start_sender(f, 0, &f->tx, 1);      /* will be closed */
        start_sender(f, 1, &f->tx2, 2);     /* will succeed */
        start_sender(f, 2, &f->tx, 3);      /* will be closed */
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(ptrio_chan_tx_close(&f->tx) == 0);
        PTRIO_AWAIT(f, ptrio_chan_recv(f, &f->rx, &f->v));
        logn_at(&L, "got", f->v);
    }
    EXPECT(ptrio_chan_tx_close(&f->tx2) == 0);
    EXPECT(ptrio_chan_rx_close(&f->rx) == 0);
    /* Closing one receive clone wakes only the receivers on that clone. */
    PTRIO_CHECK(f, open_chan(f, 0));
    PTRIO_CHECK(f, ptrio_chan_rx_clone(&f->rx, &f->rx2));
    PTRIO_NURSERY(f, &f->n) {
        start_receiver(f, 3, &f->rx);       /* will be closed */
        start_receiver(f, 4, &f->rx2);      /* will succeed */
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(ptrio_chan_rx_close(&f->rx) == 0);
        f->v = 9;
        PTRIO_AWAIT(f, ptrio_chan_send(f, &f->tx, &f->v));
    }
    PTRIO_END(f);
}

/* Trio test_channel.py: test_close_multiple_send_handles,
 * test_close_multiple_receive_handles */
START_TEST(test_close_multiple_handles)
{
    static struct chan_main m;
    RUN_MAIN(multi_close_main, m, 0);
    ck_assert_str_eq(L.buf,
        "p0>@0 p1>@0 p2>@0 p0!PTRIO_ECLOSED@1 p2!PTRIO_ECLOSED@1 p1=0@1 "
        "got2@1 p3<@1 p4<@1 p3!PTRIO_ECLOSED@2 p4=9@2");
}
END_TEST

/* Every combination: two send ends and two receive ends, a blocked task on
 * each end of the blocked side, a buffered value; close ends one at a
 * time in every order and check who wakes with what, and what the others
 * still see. Modes: bit 0 = which send end closes first, bit 1 = which
 * receive end closes first, bit 2 = close the receive side first. */
static int combo_main(ptrio_frame *fr)
{
    struct chan_main *f = PTRIO_SELF(fr, struct chan_main);
    ptrio_chan_tx *tx_first, *tx_last;
    ptrio_chan_rx *rx_first, *rx_last;
    int rx_side = f->mode & 4;

    tx_first = f->mode & 1 ? &f->tx2 : &f->tx;
    tx_last = f->mode & 1 ? &f->tx : &f->tx2;
    rx_first = f->mode & 2 ? &f->rx2 : &f->rx;
    rx_last = f->mode & 2 ? &f->rx : &f->rx2;
    PTRIO_BEGIN(f);
    PTRIO_CHECK(f, open_chan(f, 1));
    PTRIO_CHECK(f, ptrio_chan_tx_clone(&f->tx, &f->tx2));
    PTRIO_CHECK(f, ptrio_chan_rx_clone(&f->rx, &f->rx2));
    PTRIO_NURSERY(f, &f->n) {
        if (rx_side) {
            /* Receivers block on each receive end. */
            start_receiver(f, 0, &f->rx);
            start_receiver(f, 1, &f->rx2);
        } else {
            /* The buffer is full; senders block on each send end. */
            f->v = 50;
            EXPECT(ptrio_chan_send_nowait(&f->tx, &f->v) == 0);
            start_sender(f, 0, &f->tx, 60);
            start_sender(f, 1, &f->tx2, 61);
        }
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        if (rx_side) {
            /* One receive end closes: only its receiver wakes (ECLOSED). */
            EXPECT(ptrio_chan_rx_close(rx_first) == 0);
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
            /* A send end closes: the other keeps the channel going. */
            EXPECT(ptrio_chan_tx_close(tx_first) == 0);
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
            ptrio_chan_statistics(&f->ch, &f->st);
            EXPECT(f->st.waiting_recv == 1 && f->st.open_tx == 1);
            /* The last send end closes: the receiver gets EndOfChannel. */
            EXPECT(ptrio_chan_tx_close(tx_last) == 0);
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
            EXPECT(ptrio_chan_recv_nowait(rx_last, &f->v) ==
                   -PTRIO_EENDOFCHANNEL);
            EXPECT(ptrio_chan_recv_nowait(rx_first, &f->v) ==
                   -PTRIO_ECLOSED);
            EXPECT(ptrio_chan_rx_close(rx_last) == 0);
        } else {
            /* One send end closes: only its sender wakes (ECLOSED). */
            EXPECT(ptrio_chan_tx_close(tx_first) == 0);
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
            /* A receive end closes: the other keeps the channel going. */
            EXPECT(ptrio_chan_rx_close(rx_first) == 0);
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
            ptrio_chan_statistics(&f->ch, &f->st);
            EXPECT(f->st.waiting_send == 1 && f->st.used == 1);
            /* The last send end closes: its sender wakes (ECLOSED); the
             * buffered value is still received, then EndOfChannel. */
            EXPECT(ptrio_chan_tx_close(tx_last) == 0);
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
            f->v = 0;
            EXPECT(ptrio_chan_recv_nowait(rx_last, &f->v) == 0 &&
                   f->v == 50);
            EXPECT(ptrio_chan_recv_nowait(rx_last, &f->v) ==
                   -PTRIO_EENDOFCHANNEL);
            EXPECT(ptrio_chan_send_nowait(tx_first, &f->v) ==
                   -PTRIO_ECLOSED);
            EXPECT(ptrio_chan_rx_close(rx_last) == 0);
        }
    }
    ptrio_chan_statistics(&f->ch, &f->st);
    EXPECT(f->st.open_tx == 0 && f->st.open_rx == 0);
    EXPECT(f->st.waiting_send == 0 && f->st.waiting_recv == 0);
    PTRIO_END(f);
}

START_TEST(test_close_combinations)
{
    static struct chan_main m;
    static const char *const expect[8] = {
        "p0>@0 p1>@0 p0!PTRIO_ECLOSED@1 p1!PTRIO_ECLOSED@3",
        "p0>@0 p1>@0 p1!PTRIO_ECLOSED@1 p0!PTRIO_ECLOSED@3",
        "p0>@0 p1>@0 p0!PTRIO_ECLOSED@1 p1!PTRIO_ECLOSED@3",
        "p0>@0 p1>@0 p1!PTRIO_ECLOSED@1 p0!PTRIO_ECLOSED@3",
        "p0<@0 p1<@0 p0!PTRIO_ECLOSED@1 p1!PTRIO_EENDOFCHANNEL@3",
        "p0<@0 p1<@0 p0!PTRIO_ECLOSED@1 p1!PTRIO_EENDOFCHANNEL@3",
        "p0<@0 p1<@0 p1!PTRIO_ECLOSED@1 p0!PTRIO_EENDOFCHANNEL@3",
        "p0<@0 p1<@0 p1!PTRIO_ECLOSED@1 p0!PTRIO_EENDOFCHANNEL@3",
    };
    reset();
    memset(&m, 0, sizeof m);
    m.mode = _i;
    ck_assert_int_eq(run_virtual(combo_main, &m, NULL), 0);
    ck_expect_ok();
    ck_assert_str_eq(L.buf, expect[_i]);
}
END_TEST

static int last_rx_main(ptrio_frame *fr)
{
    struct chan_main *f = PTRIO_SELF(fr, struct chan_main);
    PTRIO_BEGIN(f);
    /* Closing the last receive end while senders block on two send
     * clones: every one of them gets EBROKEN. */
    PTRIO_CHECK(f, open_chan(f, 1));
    PTRIO_CHECK(f, ptrio_chan_tx_clone(&f->tx, &f->tx2));
    f->v = 1;
    EXPECT(ptrio_chan_send_nowait(&f->tx, &f->v) == 0);
    PTRIO_NURSERY(f, &f->n) {
        start_sender(f, 0, &f->tx, 2);
        start_sender(f, 1, &f->tx2, 3);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(ptrio_chan_rx_close(&f->rx) == 0);
    }
    /* And the last send end, while receivers block on two clones. */
    PTRIO_CHECK(f, open_chan(f, 1));
    PTRIO_CHECK(f, ptrio_chan_rx_clone(&f->rx, &f->rx2));
    PTRIO_NURSERY(f, &f->n) {
        start_receiver(f, 2, &f->rx);
        start_receiver(f, 3, &f->rx2);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        EXPECT(ptrio_chan_tx_close(&f->tx) == 0);
    }
    PTRIO_END(f);
}

/* Closing the last end of one side wakes the whole other side, on every
 * clone. */
START_TEST(test_close_last_end)
{
    static struct chan_main m;
    RUN_MAIN(last_rx_main, m, 0);
    ck_assert_str_eq(L.buf,
        "p0>@0 p1>@0 p0!PTRIO_EBROKEN@1 p1!PTRIO_EBROKEN@1 "
        "p2<@1 p3<@1 p2!PTRIO_EENDOFCHANNEL@2 p3!PTRIO_EENDOFCHANNEL@2");
}
END_TEST

static int handed_closed_main(ptrio_frame *fr)
{
    struct chan_main *f = PTRIO_SELF(fr, struct chan_main);
    PTRIO_BEGIN(f);
    /* A receiver on a clone is handed a value; before it runs, its end and
     * then every end are closed: it still returns the value. */
    PTRIO_CHECK(f, open_chan(f, 0));
    PTRIO_CHECK(f, ptrio_chan_rx_clone(&f->rx, &f->rx2));
    PTRIO_NURSERY(f, &f->n) {
        start_receiver(f, 0, &f->rx2);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        f->v = 5;
        EXPECT(ptrio_chan_send_nowait(&f->tx, &f->v) == 0);
        EXPECT(ptrio_chan_rx_close(&f->rx2) == 0);
        EXPECT(ptrio_chan_tx_close(&f->tx) == 0);
        EXPECT(ptrio_chan_rx_close(&f->rx) == 0);
        ptrio_cancel(&f->r[0].sc);
        ptrio_chan_statistics(&f->ch, &f->st);
        EXPECT(f->st.open_tx == 0 && f->st.open_rx == 0);
        EXPECT(f->st.waiting_recv == 0 && f->st.used == 0);
    }
    /* A rendezvous sender whose value was taken: its end closed, then the
     * last receive end, before it runs: it has sent (not ECLOSED nor
     * EBROKEN), and the value is the receiver's. */
    PTRIO_CHECK(f, open_chan(f, 0));
    PTRIO_CHECK(f, ptrio_chan_tx_clone(&f->tx, &f->tx2));
    PTRIO_NURSERY(f, &f->n) {
        start_sender(f, 1, &f->tx2, 6);
        start_sender(f, 2, &f->tx2, 7);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        f->v = 0;
        EXPECT(ptrio_chan_recv_nowait(&f->rx, &f->v) == 0 && f->v == 6);
        EXPECT(ptrio_chan_tx_close(&f->tx2) == 0);      /* p2: ECLOSED */
        EXPECT(ptrio_chan_rx_close(&f->rx) == 0);
        ptrio_chan_statistics(&f->ch, &f->st);
        EXPECT(f->st.open_tx == 1 && f->st.open_rx == 0);
        EXPECT(f->st.waiting_send == 0 && f->st.used == 0);
        EXPECT(ptrio_chan_send_nowait(&f->tx, &f->v) == -PTRIO_EBROKEN);
        EXPECT(ptrio_chan_tx_close(&f->tx) == 0);
    }
    PTRIO_END(f);
}

/* Closing ends after a waiter was handed its value (or had its value
 * taken), but before it resumed, does not touch it: the hand-off stands,
 * as in Trio, where close wakes only the tasks still waiting. */
START_TEST(test_handed_then_closed)
{
    static struct chan_main m;
    RUN_MAIN(handed_closed_main, m, 0);
    ck_assert_str_eq(L.buf, "p0<@0 p0=5@1 p1>@1 p2>@1 p1=0@2 "
                            "p2!PTRIO_ECLOSED@2");
}
END_TEST

/* ---- statistics ------------------------------------------------------------------ */

static int stats_main(ptrio_frame *fr)
{
    struct chan_main *f = PTRIO_SELF(fr, struct chan_main);
    PTRIO_BEGIN(f);
    PTRIO_CHECK(f, open_chan(f, 2));
    ptrio_chan_statistics(&f->ch, &f->st);
    EXPECT(f->st.used == 0 && f->st.capacity == 2 && f->st.peak == 0);
    EXPECT(f->st.open_tx == 1 && f->st.open_rx == 1);
    EXPECT(f->st.waiting_send == 0 && f->st.waiting_recv == 0);
    EXPECT(ptrio_chan_send_nowait(&f->tx, &f->v) == 0);
    ptrio_chan_statistics(&f->ch, &f->st);
    EXPECT(f->st.used == 1 && f->st.peak == 1);
    EXPECT(ptrio_chan_tx_clone(&f->tx, &f->tx2) == 0);
    ptrio_chan_statistics(&f->ch, &f->st);
    EXPECT(f->st.open_tx == 2);
    EXPECT(ptrio_chan_tx_close(&f->tx) == 0);
    ptrio_chan_statistics(&f->ch, &f->st);
    EXPECT(f->st.open_tx == 1);
    EXPECT(ptrio_chan_rx_clone(&f->rx, &f->rx2) == 0);
    ptrio_chan_statistics(&f->ch, &f->st);
    EXPECT(f->st.open_rx == 2);
    EXPECT(ptrio_chan_rx_close(&f->rx2) == 0);
    ptrio_chan_statistics(&f->ch, &f->st);
    EXPECT(f->st.open_rx == 1);
    PTRIO_NURSERY(f, &f->n) {
        EXPECT(ptrio_chan_send_nowait(&f->tx2, &f->v) == 0);
        ptrio_chan_statistics(&f->ch, &f->st);
        EXPECT(f->st.used == 2 && f->st.peak == 2);
        start_sender(f, 0, &f->tx2, 0);
        start_sender(f, 1, &f->tx2, 0);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        ptrio_chan_statistics(&f->ch, &f->st);
        EXPECT(f->st.waiting_send == 2);
        ptrio_nursery_cancel(&f->n);
    }
    ptrio_chan_statistics(&f->ch, &f->st);
    EXPECT(f->st.waiting_send == 0);
    while (ptrio_chan_recv_nowait(&f->rx, &f->v) == 0)
        ;
    /* Draining the buffer keeps the high-water mark. */
    ptrio_chan_statistics(&f->ch, &f->st);
    EXPECT(f->st.used == 0 && f->st.peak == 2);
    PTRIO_NURSERY(f, &f->n) {
        start_receiver(f, 0, &f->rx);
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        ptrio_chan_statistics(&f->ch, &f->st);
        EXPECT(f->st.waiting_recv == 1);
        ptrio_nursery_cancel(&f->n);
    }
    ptrio_chan_statistics(&f->ch, &f->st);
    EXPECT(f->st.waiting_recv == 0);
    PTRIO_END(f);
}

/* Trio test_channel.py: test_statistics */
START_TEST(test_statistics)
{
    static struct chan_main m;
    RUN_MAIN(stats_main, m, 0);
}
END_TEST

/* ---- many producers, many consumers, the receive loop ----------------------- */

/* Sends 3*i .. 3*i+2 on its own clone, then closes it. */
struct producer {
    ptrio_frame fr;
    ptrio_chan_tx tx;
    int i, v;
};

static int producer(ptrio_frame *fr)
{
    struct producer *f = PTRIO_SELF(fr, struct producer);
    PTRIO_BEGIN(f);
    for (f->v = 3 * f->i; f->v < 3 * (f->i + 1); f->v++)
        PTRIO_AWAIT(f, ptrio_chan_send(f, &f->tx, &f->v));
    PTRIO_FINALLY(f);
    ptrio_chan_tx_close(&f->tx);
    PTRIO_END(f);
}

struct mp_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[10];
    struct producer p[10];
    ptrio_chan ch;
    ptrio_chan_tx tx;
    ptrio_chan_rx rx;
    int v, i, got[30], ngot;
};

static int mp_main(ptrio_frame *fr)
{
    struct mp_main *f = PTRIO_SELF(fr, struct mp_main);
    PTRIO_BEGIN(f);
    PTRIO_CHECK(f, ptrio_chan_open(&f->ch, &f->tx, &f->rx, sizeof(int), 0,
                                   NULL));
    PTRIO_NURSERY(f, &f->n) {
        for (f->i = 0; f->i < 10; f->i++) {
            f->p[f->i].i = f->i;
            PTRIO_CHECK(f, ptrio_chan_tx_clone(&f->tx, &f->p[f->i].tx));
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[f->i], producer,
                                            &f->p[f->i]));
        }
        PTRIO_CHECK(f, ptrio_chan_tx_close(&f->tx));
        PTRIO_CHAN_FOR(f, &f->rx, &f->v) {
            if (f->ngot < 30)
                f->got[f->ngot] = f->v;
            f->ngot++;
        }
    }
    PTRIO_END(f);
}

/* Trio test_channel.py: test_channel_multiple_producers. Each producer's
 * values arrive in its order; ptrio serves the senders FIFO, so the
 * interleaving is exact too. */
START_TEST(test_channel_multiple_producers)
{
    static struct mp_main m;
    int i;
    RUN_MAIN(mp_main, m, 0);
    ck_assert_int_eq(m.ngot, 30);
    for (i = 0; i < 30; i++)    /* round robin: 0 3 6 ... 27 1 4 ... */
        ck_assert_int_eq(m.got[i], (i % 10) * 3 + i / 10);
}
END_TEST

/* Receives with PTRIO_CHAN_FOR on a shared receive end; records who got
 * what; skips odd values with `continue`, stops at 100 with `break`. */
struct consumer {
    ptrio_frame fr;
    int id, v;
    ptrio_chan_rx *rx;
    int *owner;             /* owner[v] = id + 1 */
    int count;
};

static int consumer(ptrio_frame *fr)
{
    struct consumer *f = PTRIO_SELF(fr, struct consumer);
    PTRIO_BEGIN(f);
    PTRIO_CHAN_FOR(f, f->rx, &f->v) {
        if (f->v == 100)
            break;
        f->owner[f->v] = f->id + 1;
        if (f->v % 2)
            continue;
        f->count++;
        PTRIO_CHECKPOINT(f);
    }
    ev("stop", "");
    PTRIO_END(f);
}

struct mc_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[5];
    struct consumer c[5];
    ptrio_chan ch;
    ptrio_chan_tx tx;
    ptrio_chan_rx rx;
    int buf[1];
    int owner[10];
    int v, i;
};

static int mc_main(ptrio_frame *fr)
{
    struct mc_main *f = PTRIO_SELF(fr, struct mc_main);
    PTRIO_BEGIN(f);
    PTRIO_CHECK(f, ptrio_chan_open(&f->ch, &f->tx, &f->rx, sizeof(int), 1,
                                   f->buf));
    PTRIO_NURSERY(f, &f->n) {
        for (f->i = 0; f->i < 5; f->i++) {
            f->c[f->i] = (struct consumer){.id = f->i, .rx = &f->rx,
                                           .owner = f->owner};
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[f->i], consumer,
                                            &f->c[f->i]));
        }
        PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
        for (f->v = 0; f->v < 10; f->v++)
            PTRIO_AWAIT(f, ptrio_chan_send(f, &f->tx, &f->v));
        /* One consumer stops at 100; the others at the end. */
        f->v = 100;
        PTRIO_AWAIT(f, ptrio_chan_send(f, &f->tx, &f->v));
        PTRIO_CHECK(f, ptrio_chan_tx_close(&f->tx));
    }
    PTRIO_END(f);
}

/* Trio test_channel.py: test_channel_multiple_consumers. Several tasks
 * share one receive end; each value goes to exactly one. */
START_TEST(test_channel_multiple_consumers)
{
    static struct mc_main m;
    int i, seen = 0, count = 0;
    RUN_MAIN(mc_main, m, 0);
    for (i = 0; i < 10; i++) {
        ck_assert_int_ne(m.owner[i], 0);
        seen |= 1 << (m.owner[i] - 1);
    }
    ck_assert_int_eq(seen, 0x1f);       /* every consumer got some */
    for (i = 0; i < 5; i++)
        count += m.c[i].count;
    ck_assert_int_eq(count, 5);         /* the even values */
    ck_assert_int_eq(count_of(L.buf, "stop@1"), 5);
}
END_TEST

/* Receives in PTRIO_CHAN_FOR until its end is closed under it: the loop
 * raises -PTRIO_ECLOSED. */
struct for_closed {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct consumer c;
    ptrio_chan ch;
    ptrio_chan_tx tx;
    ptrio_chan_rx rx;
    int owner[4], buf[1];
    ptrio_scope sc;
};

static int for_closed_main(ptrio_frame *fr)
{
    struct for_closed *f = PTRIO_SELF(fr, struct for_closed);
    PTRIO_BEGIN(f);
    PTRIO_CHECK(f, ptrio_chan_open(&f->ch, &f->tx, &f->rx, sizeof(int), 1,
                                   f->buf));
    PTRIO_TRY_BLOCK(f, &f->sc) {
        PTRIO_NURSERY(f, &f->n) {
            f->c = (struct consumer){.rx = &f->rx, .owner = f->owner};
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t, consumer, &f->c));
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(1)));
            PTRIO_CHECK(f, ptrio_chan_rx_close(&f->rx));
        }
    }
    EXPECT(ptrio_scope_error(&f->sc) == -PTRIO_ECLOSED);
    PTRIO_END(f);
}

START_TEST(test_chan_for_raises)
{
    static struct for_closed m;
    RUN_MAIN(for_closed_main, m, 0);
    ck_assert_str_eq(L.buf, "");
}
END_TEST

/* ---- results from children: the README's patterns ----------------------------- */

/* A child computes its result into its own frame. */
struct square {
    ptrio_frame fr;
    int n;
    int result;         /* read by the parent after the join */
};

static int square(ptrio_frame *fr)
{
    struct square *f = PTRIO_SELF(fr, struct square);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(10 * (5 - f->n))));
    f->result = f->n * f->n;
    PTRIO_END(f);
}

struct fan_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[5];
    struct square kid[5];
    int i, sum;
};

static int fan_main(ptrio_frame *fr)
{
    struct fan_main *f = PTRIO_SELF(fr, struct fan_main);
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->n) {
        for (f->i = 0; f->i < 5; f->i++) {
            f->kid[f->i] = (struct square){.n = f->i};
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[f->i], square,
                                            &f->kid[f->i]));
        }
    }
    /* Joined: every child's result is in its frame. */
    for (f->i = 0; f->i < 5; f->i++)
        f->sum += f->kid[f->i].result;
    PTRIO_END(f);
}

/* Fan-out/fan-in: children leave their results in their frames. */
START_TEST(test_results_in_frames)
{
    static struct fan_main m;
    RUN_MAIN(fan_main, m, 0);
    ck_assert_int_eq(m.sum, 0 + 1 + 4 + 9 + 16);
}
END_TEST

/* The channel variant: each child sends (index, result) as it finishes,
 * then closes its clone; the parent collects until the end of channel. */
struct result {
    int index, value;
};

struct csquare {
    ptrio_frame fr;
    int n;
    ptrio_chan_tx tx;
    struct result r;
};

static int csquare(ptrio_frame *fr)
{
    struct csquare *f = PTRIO_SELF(fr, struct csquare);
    PTRIO_BEGIN(f);
    PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(10 * (5 - f->n))));
    f->r = (struct result){f->n, f->n * f->n};
    PTRIO_AWAIT(f, ptrio_chan_send(f, &f->tx, &f->r));
    PTRIO_FINALLY(f);
    ptrio_chan_tx_close(&f->tx);
    PTRIO_END(f);
}

struct cfan_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[5];
    struct csquare kid[5];
    ptrio_chan ch;
    ptrio_chan_tx tx;
    ptrio_chan_rx rx;
    struct result r;
    int i, order[5], count;
};

static int cfan_main(ptrio_frame *fr)
{
    struct cfan_main *f = PTRIO_SELF(fr, struct cfan_main);
    PTRIO_BEGIN(f);
    PTRIO_CHECK(f, ptrio_chan_open(&f->ch, &f->tx, &f->rx,
                                   sizeof(struct result), 0, NULL));
    PTRIO_NURSERY(f, &f->n) {
        for (f->i = 0; f->i < 5; f->i++) {
            f->kid[f->i] = (struct csquare){.n = f->i};
            PTRIO_CHECK(f, ptrio_chan_tx_clone(&f->tx, &f->kid[f->i].tx));
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[f->i], csquare,
                                            &f->kid[f->i]));
        }
        PTRIO_CHECK(f, ptrio_chan_tx_close(&f->tx));
        PTRIO_CHAN_FOR(f, &f->rx, &f->r) {
            EXPECT(f->r.value == f->r.index * f->r.index);
            f->order[f->count++] = f->r.index;
        }
    }
    PTRIO_END(f);
}

/* Results arrive as the children finish (the slowest last). */
START_TEST(test_results_through_channel)
{
    static struct cfan_main m;
    int i;
    RUN_MAIN(cfan_main, m, 0);
    ck_assert_int_eq(m.count, 5);
    for (i = 0; i < 5; i++)
        ck_assert_int_eq(m.order[i], 4 - i);
}
END_TEST

/* ---- misuse ------------------------------------------------------------------- */

START_TEST(test_open_bad_args)
{
    static ptrio_chan ch;
    static ptrio_chan_tx tx;
    static ptrio_chan_rx rx;
    ck_assert_int_eq(ptrio_chan_open(&ch, &tx, &rx, 4, 2, NULL),
                     -PTRIO_EINVAL);
}
END_TEST

START_TEST(test_open_busy)
{
    static ptrio_chan ch;
    static ptrio_chan_tx tx, tx2;
    static ptrio_chan_rx rx, rx2;
    ck_assert_int_eq(ptrio_chan_open(&ch, &tx, &rx, 0, 0, NULL), 0);
    ck_assert_int_eq(ptrio_chan_rx_close(&rx), 0);
    ck_assert_int_eq(ptrio_chan_open(&ch, &tx2, &rx2, 0, 0, NULL),
                     -PTRIO_EBUSY);
}
END_TEST

/* Open and clone fill ends that are zeroed or closed: overwriting an open
 * end would leave its channel counting an end nobody can close (its
 * receivers would never see the end of the channel). */
START_TEST(test_open_into_open_end)
{
    static ptrio_chan ch, ch2;
    static ptrio_chan_tx tx;
    static ptrio_chan_rx rx, rx2;
    ck_assert_int_eq(ptrio_chan_open(&ch, &tx, &rx, 0, 0, NULL), 0);
    ck_assert_int_eq(ptrio_chan_open(&ch2, &tx, &rx2, 0, 0, NULL),
                     -PTRIO_EBUSY);
    ck_assert_int_eq(ptrio_chan_tx_close(&tx), 0);
    ck_assert_int_eq(ptrio_chan_recv_nowait(&rx, NULL), -PTRIO_EENDOFCHANNEL);
    /* closed ends open again */
    ck_assert_int_eq(ptrio_chan_rx_close(&rx), 0);
    ck_assert_int_eq(ptrio_chan_open(&ch2, &tx, &rx, 0, 0, NULL), 0);
}
END_TEST

START_TEST(test_clone_into_open_end)
{
    static ptrio_chan ch, ch2;
    static ptrio_chan_tx tx, tx2, other;
    static ptrio_chan_rx rx, rx2;
    ck_assert_int_eq(ptrio_chan_open(&ch, &tx, &rx, 0, 0, NULL), 0);
    ck_assert_int_eq(ptrio_chan_open(&ch2, &other, &rx2, 0, 0, NULL), 0);
    ck_assert_int_eq(ptrio_chan_tx_clone(&tx, &tx), -PTRIO_EBUSY);
    ck_assert_int_eq(ptrio_chan_tx_clone(&tx, &other), -PTRIO_EBUSY);
    ck_assert_int_eq(ptrio_chan_rx_clone(&rx, &rx2), -PTRIO_EBUSY);
    ck_assert_int_eq(ptrio_chan_tx_clone(&tx, &tx2), 0);
    ck_assert_int_eq(ptrio_chan_tx_close(&tx), 0);
    ck_assert_int_eq(ptrio_chan_tx_close(&tx2), 0);
    ck_assert_int_eq(ptrio_chan_recv_nowait(&rx, NULL), -PTRIO_EENDOFCHANNEL);
    ck_assert_int_eq(ptrio_chan_tx_close(&other), 0);
    ck_assert_int_eq(ptrio_chan_recv_nowait(&rx2, NULL), -PTRIO_EENDOFCHANNEL);
    /* a closed end takes a clone */
    ck_assert_int_eq(ptrio_chan_rx_close(&rx2), 0);
    ck_assert_int_eq(ptrio_chan_rx_clone(&rx, &rx2), 0);
}
END_TEST

START_TEST(test_end_never_opened)
{
    static ptrio_chan_tx tx;
    static ptrio_chan_rx rx;
    /* Closing one is harmless (cleanup code does it). */
    ck_assert_int_eq(ptrio_chan_tx_close(&tx), 0);
    ck_assert_int_eq(ptrio_chan_rx_close(&rx), 0);
    ck_assert_int_eq(ptrio_chan_send_nowait(&tx, &tx), -PTRIO_EINVAL);
}
END_TEST

START_TEST(test_send_null_value)
{
    static ptrio_chan ch;
    static ptrio_chan_tx tx;
    static ptrio_chan_rx rx;
    static int buf[2];
    ck_assert_int_eq(ptrio_chan_open(&ch, &tx, &rx, sizeof(int), 2, buf), 0);
    ck_assert_int_eq(ptrio_chan_send_nowait(&tx, NULL), -PTRIO_EINVAL);
}
END_TEST

/* Outside a run, the nowait calls, clone and close work: no task needed. */
START_TEST(test_nowait_outside_loop)
{
    static ptrio_chan ch;
    static ptrio_chan_tx tx, tx2;
    static ptrio_chan_rx rx;
    static int buf[2];
    int v = 4;
    ck_assert_int_eq(ptrio_chan_open(&ch, &tx, &rx, sizeof(int), 2, buf), 0);
    ck_assert_int_eq(ptrio_chan_tx_clone(&tx, &tx2), 0);
    ck_assert_int_eq(ptrio_chan_send_nowait(&tx, &v), 0);
    ck_assert_int_eq(ptrio_chan_tx_close(&tx), 0);
    ck_assert_int_eq(ptrio_chan_tx_close(&tx2), 0);
    v = 0;
    ck_assert_int_eq(ptrio_chan_recv_nowait(&rx, &v), 0);
    ck_assert_int_eq(v, 4);
    ck_assert_int_eq(ptrio_chan_recv_nowait(&rx, &v), -PTRIO_EENDOFCHANNEL);
    ck_assert_int_eq(ptrio_chan_rx_close(&rx), 0);
}
END_TEST

/* ---- the stress test -------------------------------------------------------------- */

/* 4 producers each send PER numbered values (producer << 24 | seq) through
 * one capacity-8 channel to 4 consumers, while a canceller cancels random
 * sends and receives (each runs in a cancel scope of its own). A cancelled
 * send is retried with the same value, a cancelled receive just retried:
 * if either had half-happened, a value would be lost or duplicated. The
 * consumers resume in the order they took values (waking and the
 * checkpoint after a non-blocking receive both queue the task at once, and
 * neither can be cancelled), so every producer's numbers must come out
 * exactly 0, 1, 2, ... in the order the consumers see them. */
#define STRESS_TOTAL 1000000u
#define STRESS_P 4
#define STRESS_C 4
#define PER (STRESS_TOTAL / STRESS_P)

/* xorshift32: deterministic, portable. */
static uint32_t next_rand(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

/* Work between two operations: 0 to 3 checkpoints, in phases of 4096
 * values where one side works and the other does not, so that the buffer
 * keeps going from empty to full and back, and both sides block. */
static int work(uint32_t *rng, unsigned long n, int producer)
{
    if (((n >> 12) & 1) != (unsigned long)producer)
        return 0;
    return (int)(next_rand(rng) % 4);
}

struct stress;

struct sproducer {
    ptrio_frame fr;
    struct stress *s;
    uint32_t id, seq, v, rng;
    ptrio_chan_tx tx;
    ptrio_scope sc;
    int rc, k;
};

struct sconsumer {
    ptrio_frame fr;
    struct stress *s;
    uint32_t v, rng;
    ptrio_chan_rx rx;
    ptrio_scope sc;
    int rc, k;
    unsigned long got;
};

struct scanceller {
    ptrio_frame fr;
    struct stress *s;
    uint32_t rng;
};

struct stress {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[STRESS_P + STRESS_C + 1];
    struct sproducer p[STRESS_P];
    struct sconsumer c[STRESS_C];
    struct scanceller k;
    ptrio_chan ch;
    ptrio_chan_tx tx;
    ptrio_chan_rx rx;
    uint32_t buf[8];
    uint32_t next[STRESS_P];    /* the next seq expected from each */
    unsigned long received, errors, cancelled_send, cancelled_recv;
    unsigned long half;         /* a cancelled op that had an effect */
    int running;                /* producers and consumers not done */
    int i;
};

static int sproducer(ptrio_frame *fr)
{
    struct sproducer *f = PTRIO_SELF(fr, struct sproducer);
    PTRIO_BEGIN(f);
    while (f->seq < PER) {
        f->v = f->id << 24 | f->seq;
        PTRIO_CANCEL_SCOPE(f, &f->sc) {
            PTRIO_TRY(f, f->rc, ptrio_chan_send(f, &f->tx, &f->v));
        }
        if (f->rc == -PTRIO_ECANCELED) {
            f->s->cancelled_send++;
            continue;
        }
        PTRIO_CHECK(f, f->rc);
        f->seq++;
        for (f->k = work(&f->rng, f->seq, 1); f->k > 0; f->k--)
            PTRIO_CHECKPOINT(f);
    }
    PTRIO_FINALLY(f);
    ptrio_chan_tx_close(&f->tx);
    f->s->running--;
    PTRIO_END(f);
}

static int sconsumer(ptrio_frame *fr)
{
    struct sconsumer *f = PTRIO_SELF(fr, struct sconsumer);
    struct stress *s = f->s;
    uint32_t p, seq;
    PTRIO_BEGIN(f);
    for (;;) {
        f->v = 0xFFFFFFFFu;
        PTRIO_CANCEL_SCOPE(f, &f->sc) {
            PTRIO_TRY(f, f->rc, ptrio_chan_recv(f, &f->rx, &f->v));
        }
        if (f->rc == -PTRIO_EENDOFCHANNEL)
            break;
        if (f->rc == -PTRIO_ECANCELED) {
            s->cancelled_recv++;
            if (f->v != 0xFFFFFFFFu)
                s->half++;
            continue;
        }
        PTRIO_CHECK(f, f->rc);
        p = f->v >> 24;
        seq = f->v & 0xFFFFFFu;
        if (p >= STRESS_P || seq != s->next[p])
            s->errors++;
        else
            s->next[p]++;
        s->received++;
        f->got++;
        for (f->k = work(&f->rng, f->got, 0); f->k > 0; f->k--)
            PTRIO_CHECKPOINT(f);
    }
    PTRIO_FINALLY(f);
    ptrio_chan_rx_close(&f->rx);
    s->running--;
    PTRIO_END(f);
}

static int scanceller(ptrio_frame *fr)
{
    struct scanceller *f = PTRIO_SELF(fr, struct scanceller);
    uint32_t r;
    PTRIO_BEGIN(f);
    while (f->s->running) {
        r = next_rand(&f->rng);
        if (r % 8 == 0) {
            r >>= 3;
            if (r % 2)
                ptrio_cancel(&f->s->p[(r >> 1) % STRESS_P].sc);
            else
                ptrio_cancel(&f->s->c[(r >> 1) % STRESS_C].sc);
        }
        PTRIO_CHECKPOINT(f);
    }
    PTRIO_END(f);
}

static int stress_main(ptrio_frame *fr)
{
    struct stress *f = PTRIO_SELF(fr, struct stress);
    PTRIO_BEGIN(f);
    PTRIO_CHECK(f, ptrio_chan_open(&f->ch, &f->tx, &f->rx, sizeof(uint32_t),
                                   8, f->buf));
    f->running = STRESS_P + STRESS_C;
    PTRIO_NURSERY(f, &f->n) {
        for (f->i = 0; f->i < STRESS_P; f->i++) {
            f->p[f->i] = (struct sproducer){.s = f, .id = (uint32_t)f->i,
                                            .rng = 12345u + (uint32_t)f->i};
            PTRIO_CHECK(f, ptrio_chan_tx_clone(&f->tx, &f->p[f->i].tx));
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[f->i], sproducer,
                                            &f->p[f->i]));
        }
        for (f->i = 0; f->i < STRESS_C; f->i++) {
            f->c[f->i] = (struct sconsumer){.s = f,
                                            .rng = 54321u + (uint32_t)f->i};
            PTRIO_CHECK(f, ptrio_chan_rx_clone(&f->rx, &f->c[f->i].rx));
            PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[STRESS_P + f->i],
                                            sconsumer, &f->c[f->i]));
        }
        PTRIO_CHECK(f, ptrio_chan_tx_close(&f->tx));
        PTRIO_CHECK(f, ptrio_chan_rx_close(&f->rx));
        f->k = (struct scanceller){.s = f, .rng = 0x9E3779B9u};
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->t[STRESS_P + STRESS_C],
                                        scanceller, &f->k));
    }
    PTRIO_END(f);
}

START_TEST(test_stress_mpmc_cancellation)
{
    static struct stress m;
    ptrio_chan_stats st;
    int i;
    memset(&m, 0, sizeof m);
    ck_assert_int_eq(run_virtual(stress_main, &m, NULL), 0);
    ck_assert_uint_eq(m.errors, 0);
    ck_assert_uint_eq(m.half, 0);
    ck_assert_uint_eq(m.received, STRESS_TOTAL);
    for (i = 0; i < STRESS_P; i++)
        ck_assert_uint_eq(m.next[i], PER);
    for (i = 0; i < STRESS_C; i++)
        ck_assert_uint_gt(m.c[i].got, 0);
    /* The cancellations did happen, on both sides. */
    ck_assert_uint_gt(m.cancelled_send, 1000);
    ck_assert_uint_gt(m.cancelled_recv, 1000);
    ptrio_chan_statistics(&m.ch, &st);
    ck_assert_uint_eq(st.peak, 8);
    ck_assert_uint_eq(st.open_tx + st.open_rx, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("chan");
    TCase *tc = tcase_create("chan");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_channel);
    tcase_add_test(tc, test_553);
    tcase_add_test(tc, test_chan_checkpoints);
    tcase_add_test(tc, test_chan_done_is_shielded);
    tcase_add_test(tc, test_unbuffered);
    tcase_add_test(tc, test_channel_fairness);
    tcase_add_test(tc, test_cancel_never_loses);
    tcase_add_test(tc, test_close_basics);
    tcase_add_test(tc, test_receive_channel_clone_and_close);
    tcase_add_test(tc, test_close_multiple_handles);
    tcase_add_loop_test(tc, test_close_combinations, 0, 8);
    tcase_add_test(tc, test_close_last_end);
    tcase_add_test(tc, test_handed_then_closed);
    tcase_add_test(tc, test_statistics);
    tcase_add_test(tc, test_channel_multiple_producers);
    tcase_add_test(tc, test_channel_multiple_consumers);
    tcase_add_test(tc, test_chan_for_raises);
    tcase_add_test(tc, test_results_in_frames);
    tcase_add_test(tc, test_results_through_channel);
    tcase_add_misuse_test(tc, test_open_bad_args);
    tcase_add_misuse_test(tc, test_open_busy);
    tcase_add_misuse_test(tc, test_open_into_open_end);
    tcase_add_misuse_test(tc, test_clone_into_open_end);
    tcase_add_misuse_test(tc, test_end_never_opened);
    tcase_add_misuse_test(tc, test_send_null_value);
    tcase_add_test(tc, test_nowait_outside_loop);
    tcase_add_test(tc, test_stress_mpmc_cancellation);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
