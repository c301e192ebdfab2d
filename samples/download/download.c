/* samples/download: concurrent downloads of several files to disk, each
 * written completely or not at all, at most three at a time. Its Python
 * twin is download.py; both print the same lines (off a terminal), two
 * downloads that end close together maybe swapped.
 *
 * Each download is a task (samples/common/pcurl_file.c: libcurl driven by
 * ptrio, the body into "<name>.part", fsync on a worker thread, then
 * rename); a CapacityLimiter of 3 (ptrio_limiter) bounds how many run
 * at once. On a terminal a progress line per file is redrawn every 100 ms.
 * The server
 * (samples/common/httpd.c, in the same nursery) sends 16 KB every 10 ms;
 * "broken.bin" is cut off midway: its .part file is removed and no
 * broken.bin appears. The files go to a fresh directory under /tmp, are
 * checked byte for byte, then removed (DOWNLOAD_KEEP=1 keeps them).
 * About 1.5 s. */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/httpd.h"
#include "../common/pcurl_file.h"

char *mkdtemp(char *tmpl);      /* POSIX 2008; glibc hides it in c99 mode */

#define KB 1024L
#define NFILES 6
#define LIMIT 3

static const httpd_route routes[] = {
    {"/files/a.bin", 200, 0, NULL, 256 * KB, 0, PTRIO_MS(10)},
    {"/files/b.bin", 200, 0, NULL, 512 * KB, 0, PTRIO_MS(10)},
    {"/files/broken.bin", 200, 0, NULL, 512 * KB, 200 * KB, PTRIO_MS(10)},
    {"/files/c.bin", 200, 0, NULL, 384 * KB, 0, PTRIO_MS(10)},
    {"/files/d.bin", 200, 0, NULL, 640 * KB, 0, PTRIO_MS(10)},
    {"/files/e.bin", 200, 0, NULL, 128 * KB, 0, PTRIO_MS(10)},
    {NULL, 0, 0, NULL, 0, 0, 0}
};

static pcurl pc;
static char dir[64];
static int tty;

/* async with limiter: at most LIMIT downloads at once (Trio's
 * CapacityLimiter, ptrio/sync.h). */
static ptrio_limiter limit = PTRIO_LIMITER_INIT(LIMIT);

/* ---- one download ------------------------------------------------------ */

enum { WAITING, RUNNING, DONE, FAILED };

struct download {
    ptrio_frame fr;
    ptrio_limiter_token token;
    pcurl_file file;
    char url[96], path[128];
    const char *name;
    int state, rc, holds;
};

static int download(ptrio_frame *fr)
{
    struct download *d = PTRIO_SELF(fr, struct download);
    PTRIO_BEGIN(d);
    PTRIO_AWAIT(d, ptrio_limiter_acquire(d, &limit, &d->token));
    d->holds = 1;
    d->state = RUNNING;
    PTRIO_TRY(d, d->rc, pcurl_file_get(d, &d->file, &pc, d->url, d->path));
    d->state = d->rc == 0 ? DONE : FAILED;
    if (!tty) {
        if (d->rc == 0)
            printf("%s: done (%ld bytes)\n", d->name, d->file.bytes);
        else
            printf("%s: failed (%s); nothing was written\n", d->name,
                   d->file.x.result != CURLE_OK
                       ? curl_easy_strerror(d->file.x.result)
                       : ptrio_strerror(d->rc));
        fflush(stdout);
    }
    PTRIO_FINALLY(d);
    if (d->holds)
        (void)ptrio_limiter_release(&limit, &d->token);
    d->holds = 0;
    PTRIO_END(d);
}

/* ---- progress on a terminal --------------------------------------------- */

static void draw(struct download *d, int redraw)
{
    int i, k, pct, bar;
    if (redraw)
        printf("\033[%dA", NFILES);
    for (i = 0; i < NFILES; i++) {
        long total = d[i].file.total > 0 ? d[i].file.total : routes[i].size;
        pct = total ? (int)(100 * d[i].file.bytes / total) : 0;
        bar = pct / 5;
        printf("\r\033[K%-11s [", d[i].name);
        for (k = 0; k < 20; k++)
            putchar(k < bar ? '#' : ' ');
        printf("] %3d%% %4ld/%ld KB %s\n", pct, d[i].file.bytes / KB,
               total / KB,
               d[i].state == WAITING ? "waiting for a slot"
               : d[i].state == DONE ? "done"
               : d[i].state == FAILED ? "failed: nothing written" : "");
    }
    fflush(stdout);
}

struct progress {
    ptrio_frame fr;
    struct download *d;
};

static int progress(ptrio_frame *fr)
{
    struct progress *p = PTRIO_SELF(fr, struct progress);
    PTRIO_BEGIN(p);
    draw(p->d, 0);
    for (;;) {
        PTRIO_AWAIT(p, ptrio_sleep(p, PTRIO_MS(100)));
        draw(p->d, 1);
    }
    PTRIO_END(p);
}

/* ---- checking and cleaning up ------------------------------------------ */

static int check_file(const char *path, const httpd_route *r)
{
    unsigned char buf[16384];
    long off = 0;
    ssize_t n, i;
    int fd = open(path, O_RDONLY), ok = 1;
    if (fd < 0)
        return 0;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        for (i = 0; i < n; i++)
            if (buf[i] != httpd_byte(r->path, off + i))
                ok = 0;
        off += n;
    }
    close(fd);
    return ok && off == r->size;
}

struct main_frame {
    ptrio_frame fr;
    ptrio_nursery services, downloads;
    ptrio_task server_task, driver_task, progress_task, task[NFILES];
    struct download d[NFILES];
    struct progress p;
};

static int main_task(ptrio_frame *fr)
{
    struct main_frame *m = PTRIO_SELF(fr, struct main_frame);
    int i, port, ok = 0, bad = 0;
    long bytes = 0;
    struct stat st;

    PTRIO_BEGIN(m);
    PTRIO_CHECK(m, httpd_init(routes));
    PTRIO_CHECK(m, pcurl_init(&pc));
    printf("Downloading %d files, at most %d at a time...\n", NFILES, LIMIT);
    fflush(stdout);
    PTRIO_NURSERY(m, &m->services) {
        PTRIO_AWAIT(m, ptrio_start(m, &m->services, &m->server_task,
                                   ptrio_serve_tcp, httpd_server(), NULL));
        PTRIO_CHECK(m, ptrio_start_soon(&m->services, &m->driver_task,
                                        pcurl_drive, &pc));
        port = ptrio_server_port(httpd_server());
        for (i = 0; i < NFILES; i++) {
            struct download *d = &m->d[i];
            d->name = strrchr(routes[i].path, '/') + 1;
            snprintf(d->url, sizeof d->url, "http://127.0.0.1:%d%s", port,
                     routes[i].path);
            snprintf(d->path, sizeof d->path, "%s/%s", dir, d->name);
        }
        if (tty) {
            m->p.d = m->d;
            PTRIO_CHECK(m, ptrio_start_soon(&m->services, &m->progress_task,
                                            progress, &m->p));
        }
        PTRIO_NURSERY(m, &m->downloads) {
            for (i = 0; i < NFILES; i++)
                PTRIO_CHECK(m, ptrio_start_soon(&m->downloads, &m->task[i],
                                                download, &m->d[i]));
        }
        if (tty)
            draw(m->d, 1);
        ptrio_nursery_cancel(&m->services);
    }
    for (i = 0; i < NFILES; i++) {
        if (m->d[i].state == DONE && check_file(m->d[i].path, &routes[i])) {
            ok++;
            bytes += routes[i].size;
        } else if (m->d[i].state == DONE || stat(m->d[i].path, &st) == 0 ||
                   stat(m->d[i].file.part, &st) == 0) {
            bad++;      /* a file that should not be there, or wrong */
        }
    }
    printf("%d of %d files complete and checked byte for byte (%ld KB); "
           "%d failed, leaving nothing behind.\n", ok, NFILES, bytes / KB,
           NFILES - ok - bad);
    if (bad)
        PTRIO_RAISE(m, -PTRIO_EIO, "a file is wrong or left behind");
    PTRIO_FINALLY(m);
    pcurl_cleanup(&pc);
    if (!getenv("DOWNLOAD_KEEP")) {
        for (i = 0; i < NFILES; i++)
            unlink(m->d[i].path);
        rmdir(dir);
    } else {
        printf("The files are in %s\n", dir);
    }
    PTRIO_END(m);
}

int main(void)
{
    static struct main_frame m;
    int rc;

    strcpy(dir, "/tmp/ptrio-download-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    tty = isatty(1);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    rc = ptrio_run(main_task, &m);
    curl_global_cleanup();
    return rc < 0;
}
