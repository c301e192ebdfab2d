/* samples/hello: two coroutines taking turns.
 *
 * "ping" prints at 0, 200, 400, 600 and 800 ms. "pong" awaits a
 * sub-coroutine, square_later(), which sleeps 100 ms and returns n * n, so
 * pong prints at 100, 300, 500, 700 and 900 ms, then sleeps its last
 * 100 ms. Both run in one nursery; main prints once they are joined, about
 * 1 s after the start. Every line is printed 100 ms away from any other,
 * so the order is fixed.
 */
#include <stdio.h>

#include <ptrio.h>

#define ROUNDS 5

/* A sub-coroutine: `await square_later(n)` returns n * n after 100 ms. */
struct square_later {
    ptrio_frame fr;
    int n;
};

static int square_later(ptrio_frame *fr)
{
    struct square_later *s = PTRIO_SELF(fr, struct square_later);
    PTRIO_BEGIN(s);
    PTRIO_AWAIT(s, ptrio_sleep(s, PTRIO_MS(100)));
    PTRIO_RETURN(s, s->n * s->n);
    PTRIO_END(s);
}

struct ping {
    ptrio_frame fr;
    int i;
};

static int ping(ptrio_frame *fr)
{
    struct ping *p = PTRIO_SELF(fr, struct ping);
    PTRIO_BEGIN(p);
    for (p->i = 1; p->i <= ROUNDS; p->i++) {
        printf("ping %d\n", p->i);
        fflush(stdout);
        PTRIO_AWAIT(p, ptrio_sleep(p, PTRIO_MS(200)));
    }
    PTRIO_END(p);
}

struct pong {
    ptrio_frame fr;
    int i;
    struct square_later sq;     /* the sub-coroutine's frame */
};

static int pong(ptrio_frame *fr)
{
    struct pong *p = PTRIO_SELF(fr, struct pong);
    PTRIO_BEGIN(p);
    for (p->i = 1; p->i <= ROUNDS; p->i++) {
        p->sq.n = p->i;
        PTRIO_CALL(p, square_later, &p->sq);
        printf("    pong %d (square_later(%d) returned %d)\n", p->i, p->i,
               PTRIO_RESULT(p));
        fflush(stdout);
        PTRIO_AWAIT(p, ptrio_sleep(p, PTRIO_MS(100)));
    }
    PTRIO_END(p);
}

struct hello {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task task[2];
    struct ping ping;
    struct pong pong;
    ptrio_time start;
};

static int hello(ptrio_frame *fr)
{
    struct hello *h = PTRIO_SELF(fr, struct hello);
    PTRIO_BEGIN(h);
    h->start = ptrio_now();
    puts("hello: starting ping and pong");
    fflush(stdout);
    PTRIO_NURSERY(h, &h->n) {
        PTRIO_CHECK(h, ptrio_start_soon(&h->n, &h->task[0], ping, &h->ping));
        PTRIO_CHECK(h, ptrio_start_soon(&h->n, &h->task[1], pong, &h->pong));
    }
    /* Rounded to a tenth of a second: 1.0 s. */
    printf("hello: both joined after %.1f s\n",
           (double)((ptrio_now() - h->start) / PTRIO_MS(100)) / 10.0);
    fflush(stdout);
    PTRIO_END(h);
}

int main(void)
{
    static struct hello h;
    return ptrio_run(hello, &h) < 0;
}
