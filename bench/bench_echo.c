/* bench/bench_echo.c: echo_rt_c100, echo_rt_c1000.
 *
 * 64-byte ping-pong round trips over loopback TCP with 100 and 1,000
 * connections: round trips per second, and the server's CPU time per
 * round trip. Servers: ptrio's serve_tcp echo on the epoll, poll and
 * select backends, and the baseline, a hand-written level-triggered epoll
 * echo server in C. Each server runs in a child process (its CPU clock is
 * read from here, clock_getcpuclockid); the same load client, a
 * hand-written epoll loop in this process, drives every one, and the
 * servers take turns, three rounds: each figure is the best round.
 * Python Trio's serve_tcp echo (bench/trio_echo.py) is measured the same
 * way when BENCH_TRIO_ECHO names that script and python3 imports trio.
 *
 *   bench_echo [seconds per measurement, default 1]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ptrio.h>

#include "bench.h"

#define MSG 64
#define MAXCONN 1000
#define ROUNDS 3

static void die(const char *what)
{
    perror(what);
    exit(2);
}

static int listen_any(void)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    if (fd < 0)
        die("socket");
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 4096) < 0)
        die("bind/listen");
    return fd;
}

static int port_of(int fd)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    return ntohs(a.sin_port);
}

/* ---- the baseline: a hand-written epoll echo server --------------------- */

static void hand_epoll_server(int report)
{
    struct epoll_event ev, evs[256];
    char buf[4096];
    int lfd = listen_any(), ep = epoll_create1(0), port = port_of(lfd), n, i;

    ev.events = EPOLLIN;
    ev.data.fd = lfd;
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    if (write(report, &port, sizeof port) != sizeof port)
        die("write");
    for (;;) {
        n = epoll_wait(ep, evs, 256, -1);
        for (i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                int c, one = 1;
                while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    ev.events = EPOLLIN;
                    ev.data.fd = c;
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
                }
                continue;
            }
            ssize_t k = read(fd, buf, sizeof buf);
            if (k <= 0) {
                if (k == 0 || errno != EAGAIN)
                    close(fd);
                continue;
            }
            if (write(fd, buf, (size_t)k) != k)
                close(fd);  /* 64-byte echoes never fill the buffer */
        }
    }
}

/* ---- ptrio's serve_tcp echo -------------------------------------------- */

struct client {
    ptrio_frame fr;
    ptrio_conn conn;
    char buf[4096];
    int n;
};

static struct client clients[MAXCONN + 16];
static ptrio_server server;
static int report_fd;

static int echo(ptrio_frame *fr)
{
    struct client *c = PTRIO_SELF(fr, struct client);
    PTRIO_BEGIN(c);
    for (;;) {
        PTRIO_AWAIT(c, ptrio_stream_receive_some(c, &c->conn.stream, c->buf,
                                                 sizeof c->buf));
        if ((c->n = PTRIO_RESULT(c)) == 0)
            break;
        PTRIO_AWAIT(c, ptrio_stream_send_all(c, &c->conn.stream, c->buf,
                                             (size_t)c->n));
    }
    PTRIO_END(c);
}

struct srv_main {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
};

static int srv_main(ptrio_frame *fr)
{
    struct srv_main *m = PTRIO_SELF(fr, struct srv_main);
    int port;
    PTRIO_BEGIN(m);
    PTRIO_CHECK(m, ptrio_server_init(&server, "127.0.0.1", 0, echo,
                                     PTRIO_SERVER_SLOTS(clients, conn)));
    PTRIO_NURSERY(m, &m->n) {
        PTRIO_AWAIT(m, ptrio_start(m, &m->n, &m->t, ptrio_serve_tcp, &server,
                                   NULL));
        port = ptrio_server_port(&server);
        if (write(report_fd, &port, sizeof port) != sizeof port)
            die("write");
    }
    PTRIO_END(m);
}

static void ptrio_server_run(const ptrio_backend *be, int report)
{
    static ptrio_loop loop;
    static struct srv_main m;
    report_fd = report;
    ptrio_loop_init(&loop);
    if (ptrio_loop_use_backend(&loop, be) < 0)
        die("backend");
    exit(ptrio_loop_run(&loop, srv_main, &m) < 0 ? 1 : 0);
}

/* ---- the load client ------------------------------------------------- */

static const char *python3 = "python3", *trio_script;

static int fds[MAXCONN];
static int got[MAXCONN];

static int dial(int port)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (fd < 0)
        die("socket");
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
        die("connect");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* Ping-pong on every connection until `until` (monotonic ns); returns
 * the round trips done. */
static long pingpong(int ep, double until)
{
    static const char ping[MSG];
    struct epoll_event evs[256];
    char buf[4096];
    long rts = 0;
    int n, i;

    while (now_ns() < until) {
        n = epoll_wait(ep, evs, 256, 100);
        for (i = 0; i < n; i++) {
            int k = evs[i].data.u32;
            ssize_t r = read(fds[k], buf, sizeof buf);
            if (r <= 0)
                die("client read");
            got[k] += (int)r;
            while (got[k] >= MSG) {
                got[k] -= MSG;
                rts++;
                if (write(fds[k], ping, MSG) != MSG)
                    die("client write");
            }
        }
    }
    return rts;
}

struct result {
    double rts;         /* round trips per second */
    double cpu_ns;      /* server CPU per round trip */
};

/* One measurement of server `kind` with `nconn` connections. */
static struct result measure(int kind, int nconn, double secs)
{
    static const char ping[MSG];
    struct epoll_event ev;
    struct timespec c0, c1;
    struct result res;
    clockid_t cpu;
    int p[2], port, ep, i, st;
    pid_t pid;
    long rts;
    double t0, t1;

    if (pipe(p) < 0)
        die("pipe");
    if ((pid = fork()) < 0)
        die("fork");
    if (pid == 0) {
        close(p[0]);
        prctl(PR_SET_PDEATHSIG, SIGKILL);   /* never outlives the bench */
        if (kind == 0)
            hand_epoll_server(p[1]);
        if (kind == 4) {
            char fd[16];
            snprintf(fd, sizeof fd, "%d", p[1]);
            execlp(python3, python3, trio_script, fd, (char *)NULL);
            _exit(127);
        }
        ptrio_server_run(kind == 1 ? &ptrio_backend_epoll
                         : kind == 2 ? &ptrio_backend_poll
                                     : &ptrio_backend_select, p[1]);
    }
    close(p[1]);
    if (read(p[0], &port, sizeof port) != sizeof port) {
        struct result none = {0, 0};
        close(p[0]);
        waitpid(pid, &st, 0);
        if (kind == 4)
            return none;    /* no python3 with trio */
        die("server start");
    }
    close(p[0]);
    ep = epoll_create1(0);
    for (i = 0; i < nconn; i++) {
        fds[i] = dial(port);
        got[i] = 0;
        ev.events = EPOLLIN;
        ev.data.u32 = (uint32_t)i;
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
        if (write(fds[i], ping, MSG) != MSG)
            die("write");
    }
    pingpong(ep, now_ns() + 0.2e9);     /* warm up */
    if (clock_getcpuclockid(pid, &cpu) != 0)
        die("clock_getcpuclockid");
    clock_gettime(cpu, &c0);
    t0 = now_ns();
    rts = pingpong(ep, t0 + secs * 1e9);
    t1 = now_ns();
    clock_gettime(cpu, &c1);
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    for (i = 0; i < nconn; i++)
        close(fds[i]);
    close(ep);
    res.rts = (double)rts / ((t1 - t0) / 1e9);
    res.cpu_ns = ((double)(c1.tv_sec - c0.tv_sec) * 1e9 +
                  (double)(c1.tv_nsec - c0.tv_nsec)) / (double)(rts ? rts : 1);
    return res;
}

int main(int argc, char **argv)
{
    static const char *const kinds[] = {"hand-epoll", "epoll", "poll",
                                        "select", "trio"};
    static const int conns[] = {100, 1000};
    double secs = argc > 1 ? atof(argv[1]) : 1.0;
    struct rlimit rl;
    int c, k, r;

    signal(SIGPIPE, SIG_IGN);
    trio_script = getenv("BENCH_TRIO_ECHO");
    if (trio_script && !*trio_script)
        trio_script = NULL;
    if (getenv("PYTHON3") && *getenv("PYTHON3") &&
        strcmp(getenv("PYTHON3"), ":") != 0)
        python3 = getenv("PYTHON3");
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < 2 * MAXCONN + 64) {
        fprintf(stderr, "bench_echo: needs %d fds (ulimit -n)\n",
                2 * MAXCONN + 64);
        return 2;
    }
    for (c = 0; c < 2; c++) {
        struct result best[5] = {{0, 1e18}, {0, 1e18}, {0, 1e18}, {0, 1e18},
                                 {0, 1e18}};
        int nk = trio_script ? 5 : 4;
        char name[64];
        for (r = 0; r < ROUNDS; r++)
            for (k = 0; k < nk; k++) {
                struct result x = measure(k, conns[c], secs);
                if (k == 4 && x.rts == 0) {
                    nk = 4;     /* no trio: leave it out */
                    continue;
                }
                if (x.rts > best[k].rts)
                    best[k].rts = x.rts;
                if (x.cpu_ns < best[k].cpu_ns)
                    best[k].cpu_ns = x.cpu_ns;
            }
        printf("# %d connections, 64-byte round trips, best of %d rounds of "
               "%.1f s; baseline: %s\n", conns[c], ROUNDS, secs, kinds[0]);
        printf("# %-10s %10.0f rt/s %8.0f ns server CPU per rt\n", kinds[0],
               best[0].rts, best[0].cpu_ns);
        for (k = 1; k < 4; k++) {
            const char *sfx = k == 1 ? "" : k == 2 ? "_poll" : "_select";
            snprintf(name, sizeof name, "echo_rt_c%d%s", conns[c], sfx);
            bench_line(name, best[k].rts, "rt/s", best[0].rts);
            snprintf(name, sizeof name, "echo_rt_c%d%s_cpu", conns[c], sfx);
            bench_line(name, best[k].cpu_ns, "ns/rt", best[0].cpu_ns);
        }
        if (nk == 5) {
            snprintf(name, sizeof name, "echo_rt_c%d_trio", conns[c]);
            bench_line(name, best[4].rts, "rt/s", best[0].rts);
            snprintf(name, sizeof name, "echo_rt_c%d_trio_cpu", conns[c]);
            bench_line(name, best[4].cpu_ns, "ns/rt", best[0].cpu_ns);
        }
        snprintf(name, sizeof name, "echo_rt_c%d_cpu", conns[c]);
        bench_target(name, "ratio", best[1].cpu_ns / best[0].cpu_ns, 1.15);
        snprintf(name, sizeof name, "echo_rt_c%d", conns[c]);
        bench_target_min(name, "ratio", best[1].rts / best[0].rts, 0.9);
    }
    return 0;
}
