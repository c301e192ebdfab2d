/* tests/check_http.c: the fetch and download code (samples/common:
 * libcurl driven by ptrio) against a real HTTP server nobody here wrote:
 * `python3 -m http.server` on 127.0.0.1, port 0 (the port is read back
 * from its first line), serving a fresh temporary folder. Every body is
 * compared byte for byte. Built once per backend; skipped, with a
 * message, where python3 cannot run http.server. Bounded: 20 s. */
#define _GNU_SOURCE
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "iotest.h"
#include "../samples/common/pcurl_file.h"

#define NFILES 4
static const char *const names[NFILES] = {"empty.txt", "small.txt",
                                          "medium.bin", "large.bin"};
static const long sizes[NFILES] = {0, 13, 100 * 1024, 3 * 1024 * 1024};

static char served[64], fetched[64];
static unsigned char *content[NFILES];
static int http_port;
static pid_t server_pid;

static void write_file(const char *dir, const char *name,
                       const unsigned char *data, long n)
{
    char path[256];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ck_assert_ptr_nonnull(f = fopen(path, "wb"));
    ck_assert_int_eq((long)fwrite(data, 1, (size_t)n, f), n);
    fclose(f);
}

/* Starts python3 -m http.server; 0 when python3 could not. */
static int start_server(void)
{
    int p[2], port;
    char line[256];
    FILE *out;

    ck_assert_int_eq(pipe(p), 0);
    server_pid = fork();
    ck_assert_int_ge(server_pid, 0);
    if (server_pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(p[1], 1);
        dup2(null, 2);
        close(p[0]);
        execlp("python3", "python3", "-u", "-m", "http.server", "0",
               "--bind", "127.0.0.1", "--directory", served, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    out = fdopen(p[0], "r");
    /* "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..." */
    if (!fgets(line, sizeof line, out) ||
        sscanf(line, "Serving HTTP on %*s port %d", &port) != 1) {
        fclose(out);
        waitpid(server_pid, NULL, 0);
        server_pid = 0;
        return 0;
    }
    fclose(out);
    http_port = port;
    return 1;
}

static void setup(void)
{
    unsigned state = 12345;
    long i;
    int k;

    strcpy(served, "/tmp/ptrio-http-served-XXXXXX");
    strcpy(fetched, "/tmp/ptrio-http-fetched-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(served));
    ck_assert_ptr_nonnull(mkdtemp(fetched));
    for (k = 0; k < NFILES; k++) {
        content[k] = malloc((size_t)sizes[k] + 1);
        for (i = 0; i < sizes[k]; i++) {
            state = state * 1103515245u + 12345u;
            content[k][i] = (unsigned char)(state >> 16);
        }
        if (k == 1)
            memcpy(content[k], "hello, world\n", 13);
        write_file(served, names[k], content[k], sizes[k]);
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    tlog_clear(&L);
}

static void rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    if (!d)
        return;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    closedir(d);
    rmdir(dir);
}

static void teardown(void)
{
    int k;
    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        waitpid(server_pid, NULL, 0);
    }
    rm_dir(served);
    rm_dir(fetched);
    for (k = 0; k < NFILES; k++)
        free(content[k]);
    curl_global_cleanup();
}

/* Whether `path` holds exactly `n` bytes of `data`. */
static int same_file(const char *path, const unsigned char *data, long n)
{
    unsigned char buf[65536];
    long off = 0;
    ssize_t r;
    int fd = open(path, O_RDONLY), same = 1;
    if (fd < 0)
        return 0;
    while ((r = read(fd, buf, sizeof buf)) > 0) {
        if (off + r > n || memcmp(buf, data + off, (size_t)r) != 0)
            same = 0;
        off += r;
    }
    close(fd);
    return same && off == n;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- fetch to memory --------------------------------------------------- */

static pcurl pc;

struct mem {
    ptrio_frame fr;
    pcurl_xfer x;
    CURL *easy;
    char url[128];
    unsigned char *buf;
    long len, cap, status;
    int rc;
};

static size_t to_mem(char *data, size_t size, size_t n, void *userp)
{
    struct mem *m = userp;
    size_t len = size * n;
    if (m->len + (long)len > m->cap)
        return 0;
    memcpy(m->buf + m->len, data, len);
    m->len += (long)len;
    return len;
}

static int fetch_mem(ptrio_frame *fr)
{
    struct mem *m = PTRIO_SELF(fr, struct mem);
    PTRIO_BEGIN(m);
    ck_assert_ptr_nonnull(m->easy = curl_easy_init());
    curl_easy_setopt(m->easy, CURLOPT_URL, m->url);
    curl_easy_setopt(m->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(m->easy, CURLOPT_WRITEFUNCTION, to_mem);
    curl_easy_setopt(m->easy, CURLOPT_WRITEDATA, m);
    PTRIO_TRY(m, m->rc, pcurl_perform(m, &pc, &m->x, m->easy));
    curl_easy_getinfo(m->easy, CURLINFO_RESPONSE_CODE, &m->status);
    PTRIO_FINALLY(m);
    curl_easy_cleanup(m->easy);
    PTRIO_END(m);
}

/* Runs `body` with the curl driver beside it, under a 20 s deadline. */
struct with_driver {
    ptrio_frame fr;
    ptrio_scope deadline;
    ptrio_nursery n;
    ptrio_task driver;
    ptrio_fn body;
    ptrio_frame *frame;
};

static int with_driver(ptrio_frame *fr)
{
    struct with_driver *w = PTRIO_SELF(fr, struct with_driver);
    PTRIO_BEGIN(w);
    PTRIO_CHECK(w, pcurl_init(&pc));
    PTRIO_FAIL_AFTER(w, &w->deadline, PTRIO_SEC(20)) {
        PTRIO_NURSERY(w, &w->n) {
            PTRIO_CHECK(w, ptrio_start_soon(&w->n, &w->driver, pcurl_drive,
                                            &pc));
            PTRIO_CALL(w, w->body, w->frame);
            ptrio_nursery_cancel(&w->n);
        }
    }
    PTRIO_FINALLY(w);
    pcurl_cleanup(&pc);
    PTRIO_END(w);
}

static int run_with_driver(ptrio_fn body, void *frame)
{
    static struct with_driver W;
    memset(&W, 0, sizeof W);
    W.body = body;
    W.frame = frame;
    return run_io(with_driver, &W);
}

struct fetch_all {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[NFILES + 1];
    struct mem m[NFILES + 1];
};

static int fetch_all(ptrio_frame *fr)
{
    struct fetch_all *a = PTRIO_SELF(fr, struct fetch_all);
    int k;
    PTRIO_BEGIN(a);
    PTRIO_NURSERY(a, &a->n) {
        for (k = 0; k <= NFILES; k++) {
            snprintf(a->m[k].url, sizeof a->m[k].url,
                     "http://127.0.0.1:%d/%s", http_port,
                     k < NFILES ? names[k] : "no-such-file");
            a->m[k].cap = k < NFILES ? sizes[k] : 4096;
            a->m[k].buf = malloc((size_t)a->m[k].cap + 1);
            PTRIO_CHECK(a, ptrio_start_soon(&a->n, &a->t[k], fetch_mem,
                                            &a->m[k]));
        }
    }
    PTRIO_END(a);
}

/* Every file at once into memory: all bytes equal; an unknown path gets
 * the server's 404. */
START_TEST(test_fetch_from_python_http_server)
{
    static struct fetch_all A;
    int k;
    if (!start_server()) {
        puts("check_http: python3 -m http.server unavailable: skipped");
        return;
    }
    memset(&A, 0, sizeof A);
    ck_assert_int_eq(run_with_driver(fetch_all, &A), 0);
    for (k = 0; k < NFILES; k++) {
        ck_assert_msg(A.m[k].rc == 0, "%s: %d", names[k], A.m[k].rc);
        ck_assert_int_eq(A.m[k].status, 200);
        ck_assert_int_eq(A.m[k].len, sizes[k]);
        ck_assert(memcmp(A.m[k].buf, content[k], (size_t)sizes[k]) == 0);
    }
    ck_assert_int_eq(A.m[NFILES].rc, 0);
    ck_assert_int_eq(A.m[NFILES].status, 404);
    ck_assert_uint_eq(io_loop.nwatch, 0);
    for (k = 0; k <= NFILES; k++)
        free(A.m[k].buf);
}
END_TEST

/* ---- downloads to disk -------------------------------------------------- */

struct dl {
    ptrio_frame fr;
    pcurl_file f;
    char url[128], path[256];
    int rc;
};

static int dl(ptrio_frame *fr)
{
    struct dl *d = PTRIO_SELF(fr, struct dl);
    PTRIO_BEGIN(d);
    PTRIO_TRY(d, d->rc, pcurl_file_get(d, &d->f, &pc, d->url, d->path));
    PTRIO_END(d);
}

struct dl_all {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t[NFILES + 1];
    struct dl d[NFILES + 1];
};

static int dl_all(ptrio_frame *fr)
{
    struct dl_all *a = PTRIO_SELF(fr, struct dl_all);
    int k;
    PTRIO_BEGIN(a);
    PTRIO_NURSERY(a, &a->n) {
        for (k = 0; k <= NFILES; k++) {
            const char *name = k < NFILES ? names[k] : "missing.bin";
            snprintf(a->d[k].url, sizeof a->d[k].url,
                     "http://127.0.0.1:%d/%s", http_port, name);
            snprintf(a->d[k].path, sizeof a->d[k].path, "%s/%s", fetched,
                     name);
            PTRIO_CHECK(a, ptrio_start_soon(&a->n, &a->t[k], dl, &a->d[k]));
        }
    }
    PTRIO_END(a);
}

/* Every file to disk at once, through .part + fsync + rename: the same
 * bytes; the 404 leaves nothing (no file, no .part). */
START_TEST(test_download_from_python_http_server)
{
    static struct dl_all A;
    char part[300];
    int k;
    if (!start_server()) {
        puts("check_http: python3 -m http.server unavailable: skipped");
        return;
    }
    memset(&A, 0, sizeof A);
    ck_assert_int_eq(run_with_driver(dl_all, &A), 0);
    for (k = 0; k < NFILES; k++) {
        ck_assert_msg(A.d[k].rc == 0, "%s: %d", names[k], A.d[k].rc);
        ck_assert_msg(same_file(A.d[k].path, content[k], sizes[k]), "%s",
                      names[k]);
        snprintf(part, sizeof part, "%s.part", A.d[k].path);
        ck_assert(!exists(part));
    }
    ck_assert_int_eq(A.d[NFILES].rc, -PTRIO_EIO);
    ck_assert_int_eq(A.d[NFILES].f.http_status, 404);
    ck_assert(!exists(A.d[NFILES].path));
    snprintf(part, sizeof part, "%s.part", A.d[NFILES].path);
    ck_assert(!exists(part));
}
END_TEST

/* ---- cancellation mid-transfer ----------------------------------------- */

struct cut {
    ptrio_frame fr;
    ptrio_nursery n;
    ptrio_task t;
    struct dl d;
    long bytes_at_cancel;
    int running, i;
};

/* Starts a download throttled to 512 KB/s (large.bin: 6 s), cancels it
 * once some bytes are on disk, then asks curl how many transfers it
 * still has. */
static int cut(ptrio_frame *fr)
{
    struct cut *c = PTRIO_SELF(fr, struct cut);
    PTRIO_BEGIN(c);
    snprintf(c->d.url, sizeof c->d.url, "http://127.0.0.1:%d/%s", http_port,
             names[3]);
    snprintf(c->d.path, sizeof c->d.path, "%s/%s", fetched, names[3]);
    c->d.f.max_speed = 512 * 1024;
    PTRIO_NURSERY(c, &c->n) {
        PTRIO_CHECK(c, ptrio_start_soon(&c->n, &c->t, dl, &c->d));
        for (c->i = 0; c->i < 5000 && c->d.f.bytes == 0; c->i++)
            PTRIO_AWAIT(c, ptrio_sleep(c, PTRIO_MS(1)));
        c->bytes_at_cancel = c->d.f.bytes;
        ptrio_nursery_cancel(&c->n);
    }
    curl_multi_socket_action(pc.multi, CURL_SOCKET_TIMEOUT, 0, &c->running);
    PTRIO_END(c);
}

/* Cancelling a transfer mid-way removes its easy handle from curl, and
 * the half-written .part file; no file appears, no fd stays registered. */
START_TEST(test_download_cancelled_midway)
{
    static struct cut C;
    char part[300];
    if (!start_server()) {
        puts("check_http: python3 -m http.server unavailable: skipped");
        return;
    }
    memset(&C, 0, sizeof C);
    ck_assert_int_eq(run_with_driver(cut, &C), 0);
    ck_assert_int_gt(C.bytes_at_cancel, 0);
    ck_assert_int_lt(C.bytes_at_cancel, sizes[3]);
    ck_assert_int_eq(C.d.rc, -PTRIO_ECANCELED);
    ck_assert_int_eq(C.running, 0);
    ck_assert(!exists(C.d.path));
    snprintf(part, sizeof part, "%s.part", C.d.path);
    ck_assert(!exists(part));
    ck_assert_uint_eq(io_loop.nwatch, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("http/" TEST_BACKEND_NAME);
    TCase *tc = tcase_create("http");

    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_fetch_from_python_http_server);
    tcase_add_test(tc, test_download_from_python_http_server);
    tcase_add_test(tc, test_download_cancelled_midway);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
