/* samples/fetch: the Trio guide's concurrent web fetch. Several GETs at
 * once, each under its own timeout; "Fetched <url>: <status>" per URL.
 * Its Python twin is fetch.py; both print the same lines (but for the
 * port).
 *
 * The HTTP client is libcurl's multi-socket interface driven by ptrio
 * (samples/common/ptrio_curl.c): each fetch is a task, curl's sockets
 * are waited on with ptrio's fd waits and its timer is a ptrio deadline;
 * the timeout that cancels a fetch removes its easy handle from curl. The
 * server is samples/common/httpd.c on ptrio's serve_tcp, started in the
 * same nursery on 127.0.0.1: "/" and "/about" answer at once and after
 * 50 ms, "/missing" with a 404 after 100 ms, "/slow" only after 5 s,
 * beyond its 1 s timeout. About 1 s in all. */
#include <stdio.h>
#include <string.h>

#include "../common/httpd.h"
#include "../common/ptrio_curl.h"

static const httpd_route routes[] = {
    {"/", 200, 0, "Hello from ptrio's httpd\n", 0, 0, 0},
    {"/about", 200, PTRIO_MS(50), "ptrio: Trio's structured concurrency "
                                  "for C\n", 0, 0, 0},
    {"/missing", 404, PTRIO_MS(100), "no such page\n", 0, 0, 0},
    {"/slow", 200, PTRIO_SEC(5), "finally\n", 0, 0, 0},
    {NULL, 0, 0, NULL, 0, 0, 0}
};

#define NURLS 4
#define TIMEOUT PTRIO_SEC(1)

static pcurl pc;

static size_t discard(char *data, size_t size, size_t n, void *userp)
{
    (void)data, (void)userp;
    return size * n;
}

/* async def fetch(url): with move_on_after(TIMEOUT): get; print */
struct fetch {
    ptrio_frame fr;
    ptrio_scope timeout;
    pcurl_xfer x;
    CURL *easy;
    char url[64];
    long status;
};

static int fetch(ptrio_frame *fr)
{
    struct fetch *f = PTRIO_SELF(fr, struct fetch);
    PTRIO_BEGIN(f);
    if (!(f->easy = curl_easy_init()))
        PTRIO_RAISE(f, -PTRIO_ENOMEM, "curl_easy_init failed");
    curl_easy_setopt(f->easy, CURLOPT_URL, f->url);
    curl_easy_setopt(f->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(f->easy, CURLOPT_WRITEFUNCTION, discard);
    PTRIO_MOVE_ON_AFTER(f, &f->timeout, TIMEOUT) {
        PTRIO_AWAIT(f, pcurl_perform(f, &pc, &f->x, f->easy));
        curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &f->status);
        printf("Fetched %s: %ld\n", f->url, f->status);
        fflush(stdout);
    }
    if (ptrio_cancelled_caught(&f->timeout)) {
        printf("Timed out after 1 s: %s\n", f->url);
        fflush(stdout);
    }
    PTRIO_FINALLY(f);
    if (f->easy)
        curl_easy_cleanup(f->easy);
    f->easy = NULL;
    PTRIO_END(f);
}

struct main_frame {
    ptrio_frame fr;
    ptrio_nursery services, fetches;
    ptrio_task server_task, driver_task, fetch_task[NURLS];
    struct fetch fetch[NURLS];
};

static int main_task(ptrio_frame *fr)
{
    struct main_frame *m = PTRIO_SELF(fr, struct main_frame);
    int i, port;
    PTRIO_BEGIN(m);
    PTRIO_CHECK(m, httpd_init(routes));
    PTRIO_CHECK(m, pcurl_init(&pc));
    PTRIO_NURSERY(m, &m->services) {
        PTRIO_AWAIT(m, ptrio_start(m, &m->services, &m->server_task,
                                   ptrio_serve_tcp, httpd_server(), NULL));
        PTRIO_CHECK(m, ptrio_start_soon(&m->services, &m->driver_task,
                                        pcurl_drive, &pc));
        port = ptrio_server_port(httpd_server());
        PTRIO_NURSERY(m, &m->fetches) {
            for (i = 0; i < NURLS; i++) {
                snprintf(m->fetch[i].url, sizeof m->fetch[i].url,
                         "http://127.0.0.1:%d%s", port, routes[i].path);
                PTRIO_CHECK(m, ptrio_start_soon(&m->fetches,
                                                &m->fetch_task[i], fetch,
                                                &m->fetch[i]));
            }
        }
        puts("All fetches done; stopping the server.");
        ptrio_nursery_cancel(&m->services);
    }
    PTRIO_FINALLY(m);
    pcurl_cleanup(&pc);
    PTRIO_END(m);
}

int main(void)
{
    static struct main_frame m;
    int rc;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    rc = ptrio_run(main_task, &m);
    curl_global_cleanup();
    return rc < 0;
}
