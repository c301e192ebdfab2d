/* samples/happy_eyeballs: open_tcp_stream to a name with three addresses
 * where the first two never answer. Its Python twin is happy_eyeballs.py;
 * both print the same lines (but for the measured times).
 *
 * "eyeballs.example" resolves (through a custom resolver: Trio's
 * set_custom_hostname_resolver) to 127.0.0.2, 127.0.0.3 and 127.0.0.1.
 * The first two are listeners that never accept and whose queue is full,
 * so a SYN to them is dropped and a connect hangs; the third is a live
 * echo server. Attempts start 250 ms apart (RFC 8305): the third wins at
 * about 0.5 s, and the two hanging attempts are cancelled and closed.
 * All on 127.0.0.x: loopback on Linux. About 0.5 s. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ptrio.h>

static const char *const ips[3] = {"127.0.0.2", "127.0.0.3", "127.0.0.1"};
static ptrio_listener listeners[3];
static int fillers[2][2];

/* The resolver: runs on a worker thread, over static storage. */
static struct addrinfo ai[3];
static struct sockaddr_in sa[3];

static int resolve(const char *host, const char *service,
                   const struct addrinfo *hints, struct addrinfo **res)
{
    (void)service, (void)hints;
    if (!host || strcmp(host, "eyeballs.example") != 0)
        return EAI_NONAME;
    *res = &ai[0];
    return 0;
}

static void add_address(int i, int port)
{
    sa[i].sin_family = AF_INET;
    sa[i].sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, ips[i], &sa[i].sin_addr);
    ai[i].ai_family = AF_INET;
    ai[i].ai_socktype = SOCK_STREAM;
    ai[i].ai_addr = (struct sockaddr *)&sa[i];
    ai[i].ai_addrlen = sizeof sa[i];
    ai[i].ai_next = i < 2 ? &ai[i + 1] : NULL;
}

/* A listener on `ip` that never accepts, its queue filled by two
 * connections nobody accepts: further SYNs are dropped. */
static int dead_listener(int i)
{
    int k, rc = ptrio_tcp_listen(&listeners[i], ips[i], 0, 1);
    if (rc < 0)
        return rc;
    add_address(i, ptrio_listener_port(&listeners[i]));
    for (k = 0; k < 2; k++) {
        fillers[i][k] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        (void)connect(fillers[i][k], (struct sockaddr *)&sa[i], sizeof sa[i]);
    }
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The live server: accepts one connection and says hello. */
struct live {
    ptrio_frame fr;
    ptrio_stream s;
};

static int live_server(ptrio_frame *fr)
{
    struct live *l = PTRIO_SELF(fr, struct live);
    PTRIO_BEGIN(l);
    PTRIO_AWAIT(l, ptrio_listener_accept(l, &listeners[2], &l->s));
    PTRIO_AWAIT(l, ptrio_stream_send_all(l, &l->s, "hello", 5));
    PTRIO_FINALLY(l);
    ptrio_stream_close(&l->s);
    PTRIO_END(l);
}

struct main_frame {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task server;
    struct live live;
    ptrio_tcp_connect connect;
    ptrio_stream s;
    struct sockaddr_in peer;
    char buf[16];
    double t0;
};

static int main_task(ptrio_frame *fr)
{
    struct main_frame *f = PTRIO_SELF(fr, struct main_frame);
    socklen_t len = sizeof f->peer;
    char ip[INET_ADDRSTRLEN];
    int i;

    PTRIO_BEGIN(f);
    for (i = 0; i < 2; i++)
        PTRIO_CHECK(f, dead_listener(i));
    PTRIO_CHECK(f, ptrio_tcp_listen(&listeners[2], ips[2], 0, 0));
    add_address(2, ptrio_listener_port(&listeners[2]));
    puts("eyeballs.example resolves to 127.0.0.2, 127.0.0.3, 127.0.0.1;");
    puts("the first two never answer, the third is a live server.");
    PTRIO_NURSERY(f, &f->n) {
        PTRIO_CHECK(f, ptrio_start_soon(&f->n, &f->server, live_server,
                                        &f->live));
        ptrio_resolve_set_resolver(&f->connect.resolve, resolve, NULL);
        f->t0 = now_s();
        PTRIO_AWAIT(f, ptrio_open_tcp_stream(f, &f->connect, &f->s,
                                             "eyeballs.example", 9));
        getpeername(ptrio_stream_fd(&f->s), (struct sockaddr *)&f->peer, &len);
        inet_ntop(AF_INET, &f->peer.sin_addr, ip, sizeof ip);
        printf("Connected to %s after %.2f s (%d attempts, 250 ms apart); "
               "the others were cancelled.\n", ip, now_s() - f->t0,
               ptrio_tcp_connect_attempts(&f->connect));
        PTRIO_AWAIT(f, ptrio_stream_receive_some(f, &f->s, f->buf,
                                                 sizeof f->buf - 1));
        f->buf[PTRIO_RESULT(f)] = '\0';
        printf("The server says: %s\n", f->buf);
    }
    PTRIO_FINALLY(f);
    ptrio_stream_close(&f->s);
    for (i = 0; i < 3; i++)
        ptrio_listener_close(&listeners[i]);
    for (i = 0; i < 4; i++)
        if (fillers[i / 2][i % 2] > 0)
            close(fillers[i / 2][i % 2]);
    PTRIO_END(f);
}

int main(void)
{
    static struct main_frame m;
    return ptrio_run(main_task, &m) < 0;
}
