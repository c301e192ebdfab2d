/* samples/echo_server: Trio's echo server (serve_tcp, one task per
 * client), and three clients in the same nursery that talk to it, then
 * stop it. Its Python twin is echo_server.py; both print the same lines.
 *
 *   echo_server            the demo: server and clients, about 0.1 s
 *   echo_server PORT       only the server, on 127.0.0.1:PORT, until ^C
 *                          (try: nc 127.0.0.1 PORT)
 *
 * No malloc: the server's connection slots are a static array; a client
 * beyond them waits in the kernel's backlog until a slot frees. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ptrio.h>

/* One connection: the handler's frame, ptrio's slot, a buffer. */
struct conn {
    ptrio_frame fr;
    ptrio_conn conn;
    char buf[1024];
    int n;
};

static int echo(ptrio_frame *fr)
{
    struct conn *c = PTRIO_SELF(fr, struct conn);
    PTRIO_BEGIN(c);
    for (;;) {
        PTRIO_AWAIT(c, ptrio_stream_receive_some(c, &c->conn.stream, c->buf,
                                                 sizeof c->buf));
        if ((c->n = PTRIO_RESULT(c)) == 0)
            break;                      /* the client closed */
        PTRIO_AWAIT(c, ptrio_stream_send_all(c, &c->conn.stream, c->buf,
                                             (size_t)c->n));
    }
    PTRIO_END(c);
}

static struct conn conns[64];
static ptrio_server server;

/* A client: connect, send one line, read it back, close. */
struct client {
    ptrio_frame fr;
    ptrio_tcp_connect connect;
    ptrio_stream s;
    char line[64], back[64];
    size_t got;
    int id;
};

static int client(ptrio_frame *fr)
{
    struct client *c = PTRIO_SELF(fr, struct client);
    PTRIO_BEGIN(c);
    PTRIO_AWAIT(c, ptrio_open_tcp_stream(c, &c->connect, &c->s, "127.0.0.1",
                                         ptrio_server_port(&server)));
    snprintf(c->line, sizeof c->line, "hello from client %d", c->id);
    PTRIO_AWAIT(c, ptrio_stream_send_all(c, &c->s, c->line, strlen(c->line)));
    while (c->got < strlen(c->line)) {
        PTRIO_AWAIT(c, ptrio_stream_receive_some(c, &c->s, c->back + c->got,
                                                 sizeof c->back - 1 - c->got));
        if (PTRIO_RESULT(c) == 0)
            PTRIO_RAISE(c, -PTRIO_EBROKEN, "the server closed early");
        c->got += (size_t)PTRIO_RESULT(c);
    }
    PTRIO_FINALLY(c);
    ptrio_stream_close(&c->s);
    PTRIO_END(c);
}

struct main_frame {
    ptrio_frame fr;
    ptrio_nursery server_nursery, clients_nursery;
    ptrio_task server_task, client_task[3];
    struct client client[3];
    int serve_only;
};

static int main_task(ptrio_frame *fr)
{
    struct main_frame *f = PTRIO_SELF(fr, struct main_frame);
    int i;
    PTRIO_BEGIN(f);
    PTRIO_NURSERY(f, &f->server_nursery) {
        /* start, not start_soon: it returns once the server listens. */
        PTRIO_AWAIT(f, ptrio_start(f, &f->server_nursery, &f->server_task,
                                   ptrio_serve_tcp, &server, NULL));
        if (f->serve_only) {
            printf("Echo server listening on 127.0.0.1:%d (^C to stop)\n",
                   ptrio_server_port(&server));
            fflush(stdout);
            break;              /* leaves the body; the nursery waits */
        }
        puts("Echo server listening on 127.0.0.1");
        PTRIO_NURSERY(f, &f->clients_nursery) {
            for (i = 0; i < 3; i++) {
                f->client[i].id = i;
                PTRIO_CHECK(f, ptrio_start_soon(&f->clients_nursery,
                                                &f->client_task[i], client,
                                                &f->client[i]));
            }
        }
        for (i = 0; i < 3; i++)
            printf("client %d got back: %s\n", i, f->client[i].back);
        printf("Served %lu connections; stopping the server.\n",
               ptrio_server_stats(&server, NULL, NULL));
        ptrio_nursery_cancel(&f->server_nursery);
    }
    puts("Server stopped. All tasks are accounted for.");
    PTRIO_END(f);
}

int main(int argc, char **argv)
{
    static struct main_frame m;
    int port = argc > 1 ? atoi(argv[1]) : 0;

    m.serve_only = argc > 1;
    if (ptrio_server_init(&server, "127.0.0.1", port, echo,
                          PTRIO_SERVER_SLOTS(conns, conn)) < 0) {
        fprintf(stderr, "usage: %s [port]\n", argv[0]);
        return 2;
    }
    return ptrio_run(main_task, &m) < 0;
}
