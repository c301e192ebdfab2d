/* src/core/error.c: error names, failure records, reports and the task
 * tree dump. Formats its own lines: the core has no stdio.
 */
#include "internal.h"

/* ---- names -------------------------------------------------------- */

/* PTRIO_CONF_ERROR_TEXT (configure --disable-error-text: 0): the names
 * only, without the descriptions (about 1 KiB on Cortex-M0). */
#ifndef PTRIO_CONF_ERROR_TEXT
#define PTRIO_CONF_ERROR_TEXT 1
#endif
#if PTRIO_CONF_ERROR_TEXT
#define ERR(code, name, text) {(code), (name), (text)}
#else
#define ERR(code, name, text) {(code), (name)}
#endif

static const struct errinfo {
    int code;
    const char *name;
#if PTRIO_CONF_ERROR_TEXT
    const char *text;
#endif
} errs[] = {
    ERR(PTRIO_EPERM, "EPERM", "operation not permitted"),
    ERR(PTRIO_ENOENT, "ENOENT", "no such file or directory"),
    ERR(PTRIO_EINTR, "EINTR", "interrupted"),
    ERR(PTRIO_EIO, "EIO", "input/output error"),
    ERR(PTRIO_EBADF, "EBADF", "bad file descriptor"),
    ERR(PTRIO_EAGAIN, "EAGAIN", "would block"),
    ERR(PTRIO_ENOMEM, "ENOMEM", "out of memory"),
    ERR(PTRIO_EACCES, "EACCES", "permission denied"),
    ERR(PTRIO_EFAULT, "EFAULT", "bad address"),
    ERR(PTRIO_EBUSY, "EBUSY", "busy: in use"),
    ERR(PTRIO_EEXIST, "EEXIST", "already exists"),
    ERR(PTRIO_EINVAL, "EINVAL", "invalid argument"),
    ERR(PTRIO_ENFILE, "ENFILE", "too many open files in the system"),
    ERR(PTRIO_EMFILE, "EMFILE", "too many open files"),
    ERR(PTRIO_ENOSPC, "ENOSPC", "no space left"),
    ERR(PTRIO_EPIPE, "EPIPE", "broken pipe"),
    ERR(PTRIO_ERANGE, "ERANGE", "out of range"),
    ERR(PTRIO_EDEADLK, "EDEADLK", "deadlock: would wait forever"),
    ERR(PTRIO_ENOSYS, "ENOSYS", "not implemented"),
    ERR(PTRIO_EOVERFLOW, "EOVERFLOW", "value overflows"),
    ERR(PTRIO_ENOTSOCK, "ENOTSOCK", "not a socket"),
    ERR(PTRIO_EMSGSIZE, "EMSGSIZE", "message too long"),
    ERR(PTRIO_ENOTSUP, "ENOTSUP", "not supported"),
    ERR(PTRIO_EAFNOSUPPORT, "EAFNOSUPPORT", "address family not supported"),
    ERR(PTRIO_EADDRINUSE, "EADDRINUSE", "address in use"),
    ERR(PTRIO_EADDRNOTAVAIL, "EADDRNOTAVAIL", "address not available"),
    ERR(PTRIO_ENETUNREACH, "ENETUNREACH", "network unreachable"),
    ERR(PTRIO_ECONNABORTED, "ECONNABORTED", "connection aborted"),
    ERR(PTRIO_ECONNRESET, "ECONNRESET", "connection reset"),
    ERR(PTRIO_ENOBUFS, "ENOBUFS", "no buffer space"),
    ERR(PTRIO_ENOTCONN, "ENOTCONN", "not connected"),
    ERR(PTRIO_ETIMEDOUT, "ETIMEDOUT", "timed out"),
    ERR(PTRIO_ECONNREFUSED, "ECONNREFUSED", "connection refused"),
    ERR(PTRIO_EHOSTUNREACH, "EHOSTUNREACH", "host unreachable"),
    ERR(PTRIO_EALREADY, "EALREADY", "already in progress"),
    ERR(PTRIO_EINPROGRESS, "EINPROGRESS", "in progress"),
    ERR(125, "ECANCELED", "operation canceled (by the system)"),
    ERR(PTRIO_EGROUP, "PTRIO_EGROUP", "several failures"),
    ERR(PTRIO_ECLOSED, "PTRIO_ECLOSED", "closed"),
    ERR(PTRIO_ENOTASK, "PTRIO_ENOTASK", "await outside its task"),
    ERR(PTRIO_ENOSTART, "PTRIO_ENOSTART", "child exited without started()"),
    ERR(PTRIO_EMISUSE, "PTRIO_EMISUSE", "API misuse"),
    ERR(PTRIO_ENOBACKEND, "PTRIO_ENOBACKEND", "the loop has no backend"),
    ERR(PTRIO_ECANCELED, "PTRIO_ECANCELED", "cancelled"),
    ERR(PTRIO_EBROKEN, "PTRIO_EBROKEN", "broken: the other side is gone"),
    ERR(PTRIO_EENDOFCHANNEL, "PTRIO_EENDOFCHANNEL", "end of channel"),
    ERR(PTRIO_EFDLIMIT, "PTRIO_EFDLIMIT", "beyond the backend's fd limit"),
    ERR(PTRIO_ERESOLVE, "PTRIO_ERESOLVE", "name resolution failed"),
};

static const struct errinfo *lookup(int code)
{
    size_t i;
    if (code == INT_MIN)
        return NULL;
    if (code < 0)
        code = -code;
    for (i = 0; i < sizeof errs / sizeof errs[0]; i++)
        if (errs[i].code == code)
            return &errs[i];
    return NULL;
}

const char *ptrio_errname(int code)
{
    const struct errinfo *e = lookup(code);
    return e ? e->name : code == 0 ? "OK" : "E?";
}

/* Without the descriptions, the name stands in. */
const char *ptrio_strerror(int code)
{
    const struct errinfo *e = lookup(code);
#if PTRIO_CONF_ERROR_TEXT
    return e ? e->text : code == 0 ? "success" : "unknown error";
#else
    return e ? e->name : code == 0 ? "OK" : "E?";
#endif
}

/* ---- failure records ---------------------------------------------- */

/* An origin chain has one hop per frame or nursery the error came
 * through: far below this, unless reused storage made a cycle, which the
 * bound keeps from looping for ever. */
#define MAX_HOPS 32767

static const ptrio_nursery *nursery_of_task(const ptrio_task *c)
{
    if (!(c->state & T_STARTING) && c->scope &&
        (c->scope->flags & PTRIO__SCOPE_NURSERY))
        return NURSERY_OF(c->scope);
    return NULL;
}

/* Follows an origin to where the error was raised, noting the nurseries
 * it came through (innermost last) in `via` when given. */
static int describe(int code, const void *origin, const char *task,
                    const ptrio_nursery *via0, ptrio_failure *out,
                    const ptrio_nursery **via, int nvia)
{
    int hops, k = 0;

    memset(out, 0, sizeof *out);
    out->code = code;
    out->task = task;
    out->via = via0;
    if (via0 && via && k < nvia)
        via[k++] = via0;
    for (hops = 0; hops < MAX_HOPS; hops++) {
        const void *p = OPTR(origin);
        if (OTAG(origin) == O_TASK && p) {
            const ptrio_task *c = p;
            const ptrio_nursery *n = nursery_of_task(c);
            out->task = ptrio_task_name(c);
            out->trace = NULL;      /* the frames of the failing task */
            if (n && n != out->via) {
                out->via = n;
                if (via && k < nvia)
                    via[k++] = n;
            }
            origin = c->origin;
        } else if (OTAG(origin) == O_FRAME && p) {
            if (!out->trace)
                out->trace = origin;
            origin = ((const ptrio_frame *)p)->origin;
        } else if (OTAG(origin) == O_GROUP && p) {
            const ptrio_nursery *g = p;
            out->group = g;
            out->file = g->site.file;
            out->line = g->site.line;
            break;
        } else {
            const ptrio_site *s = p;
            if (s) {
                out->file = s->file;
                out->line = s->line;
                out->msg = s->msg;
            }
            break;
        }
    }
    return k;
}

/* The failure behind a nursery's cancellation: a failed child (tagged
 * O_TASK), or the nursery's body (O_GROUP: the nursery itself). */
void ptrio__why_failure(const void *why, ptrio_failure *out)
{
    const void *p = OPTR(why);

    if (OTAG(why) == O_TASK) {
        const ptrio_task *c = p;
        describe(c->w.done.code, OMAKE(c, O_TASK), ptrio_task_name(c), NULL,
                 out, NULL, 0);
    } else {
        const ptrio_nursery *n = p;     /* its body: failed, or cancelled */
        describe(n->body_err ? n->body_err : -PTRIO_ECANCELED,
                 n->body_err ? n->body_origin : NULL,
                 ptrio_task_name(n->scope.task), NULL, out, NULL, 0);
    }
}

const void *ptrio_failure_frames(const ptrio_failure *f, const void *cursor,
                                 ptrio_frame_info *out)
{
    const void *o = cursor ? ((const ptrio_frame *)OPTR(cursor))->origin
                           : f ? f->trace : NULL;

    if (!o || OTAG(o) != O_FRAME)
        return NULL;
    if (out) {
        ptrio__frame_where(OPTR(o), out);
        out->line = 0;
    }
    return o;
}

int ptrio_failure_pending(void *self, ptrio_failure *out)
{
    ptrio_task *t = ptrio__self(self);
    ptrio_frame *fr = self;

    if (!t)
        return -PTRIO_ENOTASK;
    if (!out || fr->pending >= 0 || fr->pending < PTRIO_ERRMIN)
        return -PTRIO_EINVAL;
    describe(fr->pending, fr->origin, ptrio_task_name(t), NULL, out, NULL, 0);
    return 0;
}

int ptrio_scope_failure(const ptrio_scope *sc, ptrio_failure *out)
{
    int code = ptrio_scope_error(sc);

    if (!code || !out)
        return -PTRIO_EINVAL;
    describe(code, (const void *)sc->exit, ptrio_task_name(sc->task), NULL,
             out, NULL, 0);
    return 0;
}

int ptrio_failure_last(int code, ptrio_failure *out)
{
    ptrio_task *t = ptrio_current_task();
    if (!t)
        return -PTRIO_ENOTASK;
    if (!out || code >= 0 || t->err != ERR_TAG(code))
        return -PTRIO_EINVAL;
    describe(code, t->origin, ptrio_task_name(t), NULL, out, NULL, 0);
    return 0;
}

static const void *member(const ptrio_nursery *g, const void *cursor,
                          ptrio_failure *out, const ptrio_nursery **via,
                          int nvia, int *k)
{
    const ptrio_task *c;

    if (!g)
        return NULL;
    if (!cursor && g->body_err < 0) {
        *k = describe(g->body_err, g->body_origin,
                      ptrio_task_name(g->scope.task), g, out, via, nvia);
        return &g->body_err;
    }
    if (!cursor || cursor == (const void *)&g->body_err)
        c = g->failed;
    else
        c = ((const ptrio_task *)cursor)->w.done.next;
    if (!c)
        return NULL;
    *k = describe(c->w.done.code, OMAKE(c, O_TASK), ptrio_task_name(c), g,
                  out, via, nvia);
    return c;
}

const void *ptrio_group_next(const ptrio_nursery *group, const void *cursor,
                             ptrio_failure *out)
{
    ptrio_failure tmp;
    int k;
    return member(group, cursor, out ? out : &tmp, NULL, 0, &k);
}

int ptrio_group_size(const ptrio_nursery *group)
{
    const ptrio_task *c;
    int k;
    if (!group)
        return 0;
    k = group->body_err < 0;
    for (c = group->failed; c; c = c->w.done.next)
        k++;
    return k;
}

/* ---- reports ------------------------------------------------------ */

/* A report or dump line is built in a buffer on the stack, cut (ending in
 * "...") when longer: PTRIO_CONF_REPORT_LINE bytes, 96 on freestanding
 * builds so that a report fits a small stack. */
#ifndef PTRIO_CONF_REPORT_LINE
#ifdef PTRIO_CONF_HOSTED
#define PTRIO_CONF_REPORT_LINE 320
#else
#define PTRIO_CONF_REPORT_LINE 96
#endif
#endif

typedef struct line {
    char buf[PTRIO_CONF_REPORT_LINE];
    size_t n;
} line;

static void put(line *b, const char *s)
{
    while (s && *s && b->n + 1 < sizeof b->buf)
        b->buf[b->n++] = *s++;
    b->buf[b->n] = '\0';
    if (s && *s)        /* cut: say so */
        memcpy(b->buf + sizeof b->buf - 4, "...", 4);
}

static void put_uint(line *b, uintptr_t v, unsigned base)
{
    char d[24];
    int i = 0;
    do {
        d[i++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (i && b->n + 1 < sizeof b->buf)
        b->buf[b->n++] = d[--i];
    b->buf[b->n] = '\0';
}

static void put_int(line *b, long v)
{
    if (v < 0) {
        put(b, "-");
        put_uint(b, (uintptr_t)(-(v + 1)) + 1, 10);
    } else {
        put_uint(b, (uintptr_t)v, 10);
    }
}

static void put_site(line *b, const char *file, int lineno)
{
    put(b, file);
    put(b, ":");
    put_int(b, lineno);
}

/* "because ..." for a cancellation. */
static void put_cancel(line *b, const ptrio_cancel_info *ci)
{
    const ptrio_failure *f = &ci->failure;

    put(b, "cancelled");
    switch (ci->kind) {
    case PTRIO_CANCEL_EXPLICIT:
        if (ci->reason) {
            put(b, " because ");
            put(b, ci->reason);
        } else {
            put(b, " explicitly");
        }
        break;
    case PTRIO_CANCEL_DEADLINE:
        put(b, " because a deadline passed");
        break;
    case PTRIO_CANCEL_FAILURE:
        put(b, " because task '");
        put(b, f->task ? f->task : "?");
        put(b, "' failed with ");
        put(b, ptrio_errname(f->code));
        if (f->file) {
            put(b, " at ");
            put_site(b, f->file, f->line);
        }
        break;
    case PTRIO_CANCEL_RUN:
        put(b, f->code == -PTRIO_EDEADLK
                   ? " because every task waits forever (deadlock)"
                   : " because the backend failed with ");
        if (f->code != -PTRIO_EDEADLK)
            put(b, ptrio_errname(f->code));
        break;
    case PTRIO_CANCEL_TASK:
        put(b, " by ptrio_task_cancel");
        break;
    default:
        break;
    }
}

int ptrio_cancel_text(const ptrio_cancel_info *info, char *buf, int n)
{
    line b;
    int k;

    if (!buf || n <= 0)
        return 0;
    b.n = 0;
    b.buf[0] = '\0';
    if (info)
        put_cancel(&b, info);
    for (k = 0; k < n - 1 && b.buf[k]; k++)
        buf[k] = b.buf[k];
    buf[k] = '\0';
    return k;
}

static void start(line *b, int depth)
{
    b->n = 0;
    put(b, "ptrio: ");
    while (depth-- > 0)
        put(b, "  ");
}

/* " in main() > helper() > raiser()": the frames it left through. */
static void put_trace(line *b, const ptrio_failure *f)
{
    const void *cur = NULL;
    ptrio_frame_info fi;
    int first = 1;

    while ((cur = ptrio_failure_frames(f, cur, &fi))) {
        if (!fi.func)
            continue;
        put(b, first ? " in " : " > ");
        put(b, fi.func);
        put(b, "()");
        first = 0;
    }
}

static void report(ptrio_loop *l, int depth, const ptrio_failure *f,
                   const ptrio_nursery *const *via, int nvia)
{
    line b;
    int i;

    start(&b, depth);
    put(&b, "task '");
    put(&b, f->task);
    put(&b, "' failed: ");
    put(&b, ptrio_errname(f->code));
    if (f->group) {
        put(&b, " (");
        put_int(&b, ptrio_group_size(f->group));
        put(&b, " failures) in nursery at ");
        put_site(&b, f->file, f->line);
    } else {
        if (f->msg || PTRIO_CONF_ERROR_TEXT) {
            put(&b, " (");
            put(&b, f->msg ? f->msg : ptrio_strerror(f->code));
            put(&b, ")");
        }
        if (f->file) {
            put(&b, " at ");
            put_site(&b, f->file, f->line);
        }
        put_trace(&b, f);
    }
    for (i = nvia - 1; i >= 0; i--) {
        if (via[i] == f->group)
            continue;
        put(&b, " via nursery at ");
        put_site(&b, via[i]->site.file, via[i]->site.line);
    }
    ptrio__report(l, b.buf);
}

/* How deep a report follows nested groups, and how many nurseries one of
 * its lines names: bounds, so that a report's stack is bounded. */
#define REPORT_DEPTH 8
#define REPORT_VIAS 8

/* Reports a run's failure to the loop's sink; with no sink nothing is
 * formatted at all. */
/* One line per failure, a group's members below it, depth first, with no
 * recursion: a small stack of (group, member) cursors. */
void ptrio__report_failure(ptrio_loop *l, const ptrio_task *t)
{
    struct { const ptrio_nursery *group; const void *cur; } at[REPORT_DEPTH];
    const ptrio_nursery *via[REPORT_VIAS];
    ptrio_failure f;
    int k, depth = 0;

    if (!l->report)
        return;
    k = describe(t->w.done.code, t->origin, ptrio_task_name(t), NULL, &f,
                 via, REPORT_VIAS);
    for (;;) {
        report(l, depth, &f, via, k);
        if (f.group && depth < REPORT_DEPTH) {
            at[depth].group = f.group;
            at[depth].cur = NULL;
            depth++;
        }
        while (depth && !(at[depth - 1].cur = member(at[depth - 1].group,
                                                     at[depth - 1].cur, &f,
                                                     via, REPORT_VIAS, &k)))
            depth--;
        if (!depth)
            return;
    }
}

/* ---- the task tree ------------------------------------------------ */

const char *ptrio__state_name(const ptrio_task *t)
{
    switch (TSTATE(t)) {
    case T_RUNNING: return "running";
    case T_READY: return "ready";
    case T_DONE: return "done";
    case T_PARKED:
        switch (t->wait) {
        case W_TIMER: return "sleeping";
        case W_FOREVER: return "sleeping forever";
        case W_LOT: return "parked in a lot";
        case W_HOOK: return "waiting";
        case W_IDLE: return "waiting for every task to block";
        case W_JOIN: return "joining a nursery";
        case W_START: return "starting a task";
        default: return "parked";
        }
    default: return "idle";
    }
}

/* *n / d, returning *n % d, for d < 2^16: long division by 16-bit digits,
 * each step a 32-bit division. The core links no 64-bit division (a
 * Cortex-M0 has none, and the library routine is about 0.5 KiB). */
static uint32_t divmod_small(uint64_t *n, uint32_t d)
{
    uint64_t q = 0;
    uint32_t r = 0;
    unsigned shift = 64u;

    while (shift != 0u) {
        uint32_t cur;
        shift -= 16u;
        cur = (r << 16) | (uint32_t)((*n >> shift) & 0xFFFFu);
        q = (q << 16) | (cur / d);
        r = cur % d;
    }
    *n = q;
    return r;
}

/* A time in seconds with 3 decimals: "1.500s". */
static void put_time(line *b, ptrio_time t)
{
    char s[32], *p = s + sizeof s;
    uint64_t n = t < 0 ? (uint64_t)-(t + 1) + 1u : (uint64_t)t;
    uint32_t ms;
    int i;

    (void)divmod_small(&n, 1000u);          /* ns -> us */
    (void)divmod_small(&n, 1000u);          /* us -> ms */
    ms = divmod_small(&n, 1000u);           /* n: whole seconds */
    *--p = '\0';
    *--p = 's';
    for (i = 0; i < 3; i++, ms /= 10u)
        *--p = "0123456789"[ms % 10u];
    *--p = '.';
    do {
        *--p = "0123456789"[divmod_small(&n, 10u)];
    } while (n);
    if (t < 0)
        *--p = '-';
    put(b, p);
}

/* " at app.c:20 in child()", as much as the frame can say; a frame
 * running its FINALLY (or past its body, or its first step: described
 * from inside that step) has no resume line. */
static void put_where(line *b, const ptrio_frame *fr,
                      const ptrio_frame_info *w)
{
    int tail = !w->line && (fr->resume == PTRIO__FINALLY ||
                            fr->resume == PTRIO__END ||
                            fr->resume == PTRIO__BODY);

    if (fr->resume == PTRIO__START && !w->file) {
        put(b, " (not started)");
        return;
    }
    if (tail) {
        put(b, fr->resume == PTRIO__FINALLY ? " in the FINALLY"
               : fr->resume == PTRIO__BODY  ? " in its first step"
                                            : " past the body");
    } else {
        put(b, " at ");
        if (w->file)
            put_site(b, w->file, w->line);
        else if (w->line)
            put_int(b, w->line);
        else
            put(b, "?");
    }
    if (w->func) {
        put(b, tail ? " of " : " in ");
        put(b, w->func);
        put(b, "()");
        if (tail && w->file) {
            put(b, " (");
            put(b, w->file);
            put(b, ")");
        }
    }
}

static void put_task(line *b, const ptrio_task *t)
{
    const ptrio_frame *fr = NULL;
    ptrio_frame_info fi;
    ptrio_task_info ti;

    ptrio_task_info_get(t, &ti);
    put(b, "task '");
    put(b, ti.name);
    put(b, "' ");
    put(b, ti.state);
    if (t->state & T_STARTING)
        put(b, (t->state & T_STARTED) ? " (started, under its starter)"
                                       : " (being started)");
    if (ti.wakes_at != PTRIO_TIME_INF) {
        put(b, " until ");
        put_time(b, ti.wakes_at);
    }
    while ((fr = ptrio_task_frames(t, fr, &fi))) {
        if (fr != t->frame)
            put(b, " <-");
        put_where(b, fr, &fi);
    }
    if (ti.cancelled) {
        put(b, "; ");
        put_cancel(b, &ti.cancel);
    }
}

static void put_scope(line *b, const ptrio_scope *sc)
{
    ptrio_scope_info si;

    ptrio_scope_info_get(sc, &si);
    if (si.nursery) {
        if (ptrio__loop && si.nursery == &ptrio__loop->system) {
            put(b, "the run's nursery");
        } else {
            put(b, "nursery");
            if (si.file) {
                put(b, " at ");
                put_site(b, si.file, si.line);
            }
        }
        put(b, ", ");
        put_int(b, (long)si.live);
        put(b, " live");
    } else {
        put(b, "scope");
        if (si.func) {
            put(b, " in ");
            put(b, si.func);
            put(b, "()");
        }
    }
    if (si.deadline != PTRIO_TIME_INF) {
        put(b, ", deadline ");
        put_time(b, si.deadline);
    }
    if (si.shield)
        put(b, ", shielded");
    if (si.cancel_called) {
        put(b, "; ");
        put_cancel(b, &si.cancel);
    }
}

int ptrio_dump(ptrio_report_fn fn, void *ctx)
{
    ptrio_tree_node n;
    int count = 0, rc;
    line b;

    if ((rc = ptrio_tree_first(&n)) < 0)
        return rc;
    if (!fn)
        return -PTRIO_EINVAL;
    do {
        start(&b, n.depth);
        if (n.task) {
            count++;
            put_task(&b, n.task);
        } else {
            put_scope(&b, n.scope);
        }
        fn(ctx, b.buf);
    } while (ptrio_tree_next(&n));
    return count;
}

/* PTRIO_CONF_DEADLOCK_DUMP (configure --disable-deadlock-dump: 0): the
 * deadlock report without the task tree, which is most of this file's
 * code a reporting program links (the tree walk, task and scope info). */
#ifndef PTRIO_CONF_DEADLOCK_DUMP
#define PTRIO_CONF_DEADLOCK_DUMP 1
#endif

#if PTRIO_CONF_DEADLOCK_DUMP
static void dump_line(void *ctx, const char *line)
{
    ptrio__report(ctx, line);
}

/* The run found every task waiting, with nothing that can wake one. */
static void report_deadlock(ptrio_loop *l)
{
    ptrio__report(l, "ptrio: deadlock: every task waits, and nothing "
                     "can wake one; every task is cancelled. The tasks:");
    ptrio_dump(dump_line, l);
}
#else
static void report_deadlock(ptrio_loop *l)
{
    ptrio__report(l, "ptrio: deadlock: every task waits, and nothing "
                     "can wake one; every task is cancelled (built "
                     "without the task tree: ptrio_dump shows it)");
}
#endif

static void report_backend_failed(ptrio_loop *l)
{
    ptrio__report(l, "ptrio: the backend failed; every task was cancelled");
}

const ptrio__reporter ptrio__reporting = {
    ptrio__report_failure, report_deadlock, report_backend_failed
};

#ifdef PTRIO_DEBUG
void ptrio__misuse(const char *what, const char *file, int lineno)
{
    ptrio_loop *l = ptrio__loop;
    line b;

    start(&b, 0);
    put(&b, "misuse: ");
    put(&b, what);
    if (l && l->where_file) {
        put(&b, " (near ");
        put_site(&b, l->where_file, l->where_line);
    } else {
        put(&b, " (");
    }
    if (l && l->current) {
        put(&b, ", task '");
        put(&b, ptrio_task_name(l->current));
        put(&b, "'");
        if (l->current->frame && ptrio__frame_line(l->current->frame)) {
            put(&b, " at line ");
            put_int(&b, ptrio__frame_line(l->current->frame));
        }
    }
    put(&b, "; ptrio's check: ");
    put_site(&b, file, lineno);
    put(&b, ")");
    if (l) {
        ptrio__report(l, b.buf);
    } else {
        /* No running loop, no sink of its: the build's default says it,
         * so the trap is never silent where one exists (stderr). */
        ptrio_report_fn sink = ptrio__default_sink();
        if (sink)
            sink(NULL, b.buf);
    }
    __builtin_trap();
}
#endif
