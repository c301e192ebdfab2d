/* samples/common/httpd.c: see httpd.h. */
#include <stdio.h>
#include <string.h>

#include "httpd.h"

struct conn {
    ptrio_frame fr;
    ptrio_conn conn;
    const httpd_route *route;
    char head[2048];
    size_t got;
    char body[16384];
    long sent, total, chunk;
    int n;
};

static struct conn conns[32];
static ptrio_server server;
static const httpd_route *table;

static const httpd_route not_found = {NULL, 404, 0, "not found\n", 0, 0, 0};

unsigned char httpd_byte(const char *path, long offset)
{
    unsigned h = 2166136261u;
    while (*path)
        h = (h ^ (unsigned char)*path++) * 16777619u;
    return (unsigned char)((h >> 8) + (unsigned long)offset * 131u +
                           ((unsigned long)offset >> 9));
}

static const char *reason(int status)
{
    return status == 200 ? "OK" : status == 404 ? "Not Found" : "Error";
}

/* The route of "GET <path> HTTP/1.x". */
static const httpd_route *route_of(char *head)
{
    char *path, *end;
    const httpd_route *r;

    if (strncmp(head, "GET ", 4) != 0)
        return &not_found;
    path = head + 4;
    if (!(end = strchr(path, ' ')))
        return &not_found;
    *end = '\0';
    for (r = table; r->path; r++)
        if (strcmp(r->path, path) == 0)
            return r;
    return &not_found;
}

static int handle(ptrio_frame *fr)
{
    struct conn *c = PTRIO_SELF(fr, struct conn);
    long k;

    PTRIO_BEGIN(c);
    /* The request head, up to the blank line. */
    while (c->got < sizeof c->head - 1) {
        PTRIO_AWAIT(c, ptrio_stream_receive_some(c, &c->conn.stream,
                                                 c->head + c->got,
                                                 sizeof c->head - 1 - c->got));
        if ((c->n = PTRIO_RESULT(c)) == 0)
            PTRIO_RETURN(c, 0);         /* gone before asking */
        c->got += (size_t)c->n;
        c->head[c->got] = '\0';
        if (strstr(c->head, "\r\n\r\n"))
            break;
    }
    c->route = route_of(c->head);
    if (c->route->delay)
        PTRIO_AWAIT(c, ptrio_sleep(c, c->route->delay));
    c->total = c->route->text ? (long)strlen(c->route->text) : c->route->size;
    c->n = snprintf(c->body, sizeof c->body,
                    "HTTP/1.1 %d %s\r\nContent-Length: %ld\r\n"
                    "Content-Type: application/octet-stream\r\n"
                    "Connection: close\r\n\r\n",
                    c->route->status, reason(c->route->status), c->total);
    PTRIO_AWAIT(c, ptrio_stream_send_all(c, &c->conn.stream, c->body,
                                         (size_t)c->n));
    for (c->sent = 0; c->sent < c->total; c->sent += c->chunk) {
        c->chunk = c->total - c->sent;
        if (c->chunk > (long)sizeof c->body)
            c->chunk = (long)sizeof c->body;
        if (c->route->cut > 0 && c->sent + c->chunk > c->route->cut)
            c->chunk = c->route->cut - c->sent;
        if (c->chunk <= 0)
            break;                      /* the broken route: cut short */
        if (c->route->text)
            memcpy(c->body, c->route->text + c->sent, (size_t)c->chunk);
        else
            for (k = 0; k < c->chunk; k++)
                c->body[k] = (char)httpd_byte(c->route->path, c->sent + k);
        PTRIO_AWAIT(c, ptrio_stream_send_all(c, &c->conn.stream, c->body,
                                             (size_t)c->chunk));
        if (c->route->pace)
            PTRIO_AWAIT(c, ptrio_sleep(c, c->route->pace));
    }
    PTRIO_END(c);
}

int httpd_init(const httpd_route *routes)
{
    table = routes;
    return ptrio_server_init(&server, "127.0.0.1", 0, handle,
                             PTRIO_SERVER_SLOTS(conns, conn));
}

ptrio_server *httpd_server(void) { return &server; }
