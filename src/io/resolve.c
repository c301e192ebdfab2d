/* src/io/resolve.c: getaddrinfo without blocking the loop.
 *
 * A numeric host is resolved at once (AI_NUMERICHOST: no lookup, no file,
 * no thread, no custom resolver), as Trio's getaddrinfo does. Anything
 * else runs on a worker
 * (ptrio_run_in_thread) over a copy of the request: the worker never reads
 * the caller's frame after a cancellation, and a result that comes after
 * one is freed by the job's discard hook on the worker.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>

#include <ptrio/net.h>

#include "../core/internal.h"

void ptrio_resolve_set_resolver(ptrio_resolve *r, ptrio_resolver_fn resolve,
                                ptrio_freeres_fn freeres)
{
    if (!r)
        return;
    r->req.resolve = resolve;
    r->req.freeres = freeres;
}

static int lookup(ptrio__gai_req *q, int extra_flags)
{
    struct addrinfo hints;
    ptrio_resolver_fn fn = q->resolve ? q->resolve : getaddrinfo;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = q->family;
    hints.ai_socktype = q->socktype;
    hints.ai_protocol = q->protocol;
    hints.ai_flags = q->flags | extra_flags;
    q->res = NULL;
    return fn(q->host[0] ? q->host : NULL, q->service[0] ? q->service : NULL,
              &hints, &q->res);
}

/* On the worker, over the worker's copy of the request. */
static void *gai_thread(void *arg)
{
    ptrio__gai_req *q = arg;
    q->rc = lookup(q, 0);
    q->err = q->rc == EAI_SYSTEM ? errno : 0;
    return NULL;
}

/* getaddrinfo's lists go to freeaddrinfo, a custom resolver's to its
 * freeres: with a custom resolver, only a numeric host's list, the last
 * one (`numeric`), is getaddrinfo's. */
static void free_res(ptrio__gai_req *q, struct addrinfo *res)
{
    if (!res)
        return;
    if (q->resolve && res != q->numeric) {
        if (q->freeres)
            q->freeres(res);
        return;
    }
    if (res == q->numeric)
        q->numeric = NULL;
    freeaddrinfo(res);
}

/* A cancelled lookup finished: free what it found. */
static void gai_discard(void *arg, void *result)
{
    ptrio__gai_req *q = arg;
    (void)result;
    if (q->rc == 0)
        free_res(q, q->res);
}

static int status_of(ptrio_resolve *r)
{
    int rc = r->req.rc;
    r->gai_error = rc;
    if (rc == 0)
        return 0;
    if (rc == EAI_MEMORY)
        return -PTRIO_ENOMEM;
    if (rc == EAI_SYSTEM && r->req.err)
        return -r->req.err;
    return -PTRIO_ERESOLVE;
}

static int gai_step(ptrio_frame *fr)
{
    ptrio_resolve *r = PTRIO_SELF(fr, ptrio_resolve);

    PTRIO_BEGIN(r);
    PTRIO_CHECK(r, ptrio_checkpoint_if_cancelled(r));
    {
        /* Numeric host and service: never the custom resolver's, as in
         * Trio; a named service is a lookup (/etc/services, NSS) that
         * goes to the thread, or to the custom resolver. */
        ptrio_resolver_fn custom = r->req.resolve;
        r->req.resolve = NULL;
        r->req.rc = lookup(&r->req, AI_NUMERICHOST | AI_NUMERICSERV);
        r->req.resolve = custom;
        if (r->req.rc == 0)
            r->req.numeric = r->req.res;
    }
    if (r->req.rc == EAI_NONAME) {
        PTRIO_CHECK(r, ptrio_thread_job_init(&r->job, sizeof r->req,
                                             gai_discard));
        PTRIO_AWAIT(r, ptrio_run_in_thread(r, &r->job, gai_thread, &r->req,
                                           NULL));
    } else {
        PTRIO_YIELD(r);             /* a checkpoint even without a thread */
    }
    PTRIO_CHECK(r, status_of(r));
    *r->out = r->req.res;
    PTRIO_END(r);
}

int ptrio_getaddrinfo(void *self, ptrio_resolve *r, const char *host,
                      const char *service, int family, int socktype,
                      int flags, struct addrinfo **res)
{
    size_t hl = host ? strlen(host) : 0, sl = service ? strlen(service) : 0;

    if (!r || !res || (!host && !service))
        return -PTRIO_EINVAL;
    if (hl >= sizeof r->req.host || sl >= sizeof r->req.service)
        return -PTRIO_EINVAL;
    if (!ptrio_frame_idle(r))
        return -PTRIO_EBUSY;
    *res = NULL;
    memcpy(r->req.host, host ? host : "", hl + 1);
    memcpy(r->req.service, service ? service : "", sl + 1);
    r->req.family = family;
    r->req.socktype = socktype;
    r->req.protocol = 0;
    r->req.flags = flags;
    r->req.res = NULL;
    r->req.rc = 0;
    r->req.err = 0;
    r->out = res;
    return ptrio_call(self, r, gai_step);
}

void ptrio_freeaddrinfo(ptrio_resolve *r, struct addrinfo *res)
{
    if (r)
        free_res(&r->req, res);     /* a worker has a copy of its own */
}

const char *ptrio_resolve_strerror(const ptrio_resolve *r)
{
    if (!r || !r->gai_error)
        return "no error";
    if (r->gai_error == EAI_SYSTEM && r->req.err)
        return strerror(r->req.err);
    return gai_strerror(r->gai_error);
}
