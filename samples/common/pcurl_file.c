/* samples/common/pcurl_file.c: see pcurl_file.h. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pcurl_file.h"

/* curl's write callback: local files take writes at once, so a plain
 * write is fine here (a slow disk would want a worker thread). */
static size_t on_data(char *data, size_t size, size_t n, void *userp)
{
    pcurl_file *f = userp;
    size_t len = size * n, off = 0;
    while (off < len) {
        ssize_t k = write(f->fd, data + off, len - off);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return 0;       /* curl fails the transfer: CURLE_WRITE_ERROR */
        }
        off += (size_t)k;
    }
    f->bytes += (long)len;
    return len;
}

static int on_progress(void *userp, curl_off_t dltotal, curl_off_t dlnow,
                       curl_off_t ultotal, curl_off_t ulnow)
{
    pcurl_file *f = userp;
    (void)dlnow, (void)ultotal, (void)ulnow;
    if (dltotal > 0)
        f->total = (long)dltotal;
    return 0;
}

/* On a worker: fsync may take a while on a real disk. */
static void *sync_file(void *arg)
{
    int fd = (int)(intptr_t)arg;
    return (void *)(intptr_t)(fsync(fd) < 0 ? -errno : 0);
}

static int get_step(ptrio_frame *fr)
{
    pcurl_file *f = PTRIO_SELF(fr, pcurl_file);

    PTRIO_BEGIN(f);
    f->fd = -1;
    f->bytes = 0;
    f->total = -1;
    f->http_status = 0;
    if (snprintf(f->part, sizeof f->part, "%s.part", f->path) >=
        (int)sizeof f->part)
        PTRIO_RAISE(f, -PTRIO_EINVAL, "path too long");
    f->fd = open(f->part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f->fd < 0)
        PTRIO_CHECK(f, -errno);
    if (!(f->easy = curl_easy_init()))
        PTRIO_RAISE(f, -PTRIO_ENOMEM, "curl_easy_init failed");
    curl_easy_setopt(f->easy, CURLOPT_URL, f->url);
    curl_easy_setopt(f->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(f->easy, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(f->easy, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(f->easy, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(f->easy, CURLOPT_XFERINFODATA, f);
    curl_easy_setopt(f->easy, CURLOPT_NOPROGRESS, 0L);
    if (f->max_speed > 0)
        curl_easy_setopt(f->easy, CURLOPT_MAX_RECV_SPEED_LARGE,
                         (curl_off_t)f->max_speed);
    PTRIO_AWAIT(f, pcurl_perform(f, f->pc, &f->x, f->easy));
    curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &f->http_status);
    if (f->http_status != 200)
        PTRIO_RAISE(f, -PTRIO_EIO, "the server did not answer 200");
    if (f->total >= 0 && f->bytes != f->total)
        PTRIO_RAISE(f, -PTRIO_EIO, "short body");
    /* On disk before the rename: complete or not at all. */
    PTRIO_AWAIT(f, ptrio_run_in_thread(f, &f->job, sync_file,
                                       (void *)(intptr_t)f->fd, &f->sync_rc));
    PTRIO_CHECK(f, (int)(intptr_t)f->sync_rc);
    PTRIO_CHECK(f, close(f->fd) < 0 ? -errno : 0);
    f->fd = -1;
    if (rename(f->part, f->path) < 0)
        PTRIO_CHECK(f, -errno);
    f->part[0] = '\0';
    PTRIO_FINALLY(f);
    if (f->easy)
        curl_easy_cleanup(f->easy);     /* removed from the multi already */
    f->easy = NULL;
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    if (f->part[0])
        unlink(f->part);                /* failed or cancelled */
    PTRIO_END(f);
}

int pcurl_file_get(void *self, pcurl_file *f, pcurl *pc, const char *url,
                   const char *path)
{
    if (!f || !pc || !url || !path)
        return -PTRIO_EINVAL;
    f->pc = pc;
    f->url = url;
    f->path = path;
    f->easy = NULL;
    f->part[0] = '\0';
    return ptrio_call(self, f, get_step);
}
