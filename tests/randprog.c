/* tests/randprog.c: the random-program generator, its printers, the
 * reference model of Trio's semantics, the ptrio interpreter, and the
 * checker that compares them. See randprog.h for the shape of a program.
 *
 * Portable C99: no POSIX, no malloc; every pool is static. Not reentrant
 * (one program runs at a time), like the loop itself.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ptrio.h>

#include "randprog.h"

#define INF64 INT64_MAX
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- small text buffers ------------------------------------------------ */

typedef struct tbuf {
    char *s;
    size_t cap, len;
} tbuf;

static void tb_init(tbuf *b, char *s, size_t cap)
{
    b->s = s;
    b->cap = cap;
    b->len = 0;
    if (cap)
        s[0] = '\0';
}

static void tb_puts(tbuf *b, const char *s)
{
    while (*s && b->len + 1 < b->cap)
        b->s[b->len++] = *s++;
    if (b->cap)
        b->s[b->len] = '\0';
}

static void tb_printf(tbuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    tb_puts(b, tmp);
}

static void outf(rp_out_fn out, void *ctx, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    out(ctx, tmp);
}

/* ---- the random source --------------------------------------------------- */

void rp_src_seed(rp_src *s, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->state = seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
}

void rp_src_bytes(rp_src *s, const uint8_t *data, size_t len)
{
    memset(s, 0, sizeof *s);
    s->data = data;
    s->len = len;
}

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A number in [0, n). Fuzzer bytes: one per pick (two for large n). */
static unsigned pick(rp_src *s, unsigned n)
{
    unsigned v;
    if (n <= 1)
        return 0;
    if (!s->data)
        return (unsigned)((splitmix(&s->state) >> 33) % n);
    v = s->pos < s->len ? s->data[s->pos++] : 0;
    if (n > 256) {
        v = v << 8 | (s->pos < s->len ? s->data[s->pos++] : 0);
    }
    return v % n;
}

/* ---- the generator ------------------------------------------------------- */

/* Blocks a statement lives under, outside in: nurseries it may spawn into,
 * scopes it may target. Encoded func * 2 + level. */
typedef struct gctx {
    int16_t nurs[16];
    int nn;
    int16_t scopes[32];
    int ns;
} gctx;

typedef struct gen {
    rp_src *src;
    rp_prog *p;
    int ntask;
    int maxnode, maxtask, maxdepth, maxbody;
} gen;

#define ENC(f, l) ((int16_t)((f) * 2 + (l)))
#define ENC_F(e) ((e) / 2)
#define ENC_L(e) ((e) % 2)

static int chance(gen *g, unsigned pct)
{
    return pick(g->src, 100) < pct;
}

/* Durations in ms: odd spreads so that unrelated deadlines rarely tie. */
static int32_t duration(gen *g)
{
    unsigned r = pick(g->src, 100);
    if (r < 10)
        return 0;
    if (r < 40)
        return 1 + (int32_t)pick(g->src, 30);
    if (r < 75)
        return 30 + (int32_t)pick(g->src, 300);
    if (r < 95)
        return 300 + (int32_t)pick(g->src, 3000);
    return 3000 + (int32_t)pick(g->src, 20000);
}

static int new_node(gen *g, int kind)
{
    rp_prog *p = g->p;
    rp_node *n;
    if (p->n >= RP_MAXNODE)
        return -1;
    n = &p->node[p->n];
    memset(n, 0, sizeof *n);
    n->kind = (uint8_t)kind;
    n->target = n->child = n->parent = n->task = -1;
    return p->n++;
}

static int room(const gen *g, int need)
{
    return g->p->n + need < g->maxnode && g->p->nfunc + 1 < RP_MAXFUNC;
}

static int block_kind(gen *g)
{
    static const uint8_t w[RB_NKINDS] = {0, 30, 8, 10, 15, 6, 14, 6, 11};
    unsigned r = pick(g->src, 100), acc = 0;
    int k;
    for (k = 1; k < RB_NKINDS; k++) {
        acc += w[k];
        if (r < acc)
            return k;
    }
    return RB_SCOPE;
}

static int gen_func(gen *g, int role, int parent, int task, int depth,
                    const gctx *ctx, int force_blk, int in_fin);

static void append_list(gen *g, const int16_t *items, int n, uint16_t *at,
                        uint16_t *count)
{
    rp_prog *p = g->p;
    int i;
    if (p->nlist + n > RP_MAXLIST)
        n = RP_MAXLIST - p->nlist;
    *at = (uint16_t)p->nlist;
    *count = (uint16_t)n;
    for (i = 0; i < n; i++)
        p->list[p->nlist++] = items[i];
}

/* A scope to target: one the statement lives under (mostly), else any
 * block of the program, resolved once the program is complete (-2). */
static void choose_target(gen *g, rp_node *n, const gctx *ctx)
{
    if (ctx->ns && chance(g, 70)) {
        int16_t e = ctx->scopes[ctx->ns - 1 - (int)pick(g->src, (unsigned)ctx->ns)];
        n->target = (int16_t)ENC_F(e);
        n->lvl = (uint8_t)ENC_L(e);
    } else {
        n->target = -2;
    }
}

static int gen_stmt(gen *g, int fn, const gctx *ctx, int depth, int in_fin)
{
    int task = g->p->node[fn].task;
    unsigned r = pick(g->src, 100);
    int i, k;
    rp_node *n;

    /* Cleanup that fails while a cancellation unwinds is what makes
     * groups: FINALLY raises more often. */
    if (in_fin && r < 15)
        r = 31 + r % 9;

    if (r < 20) {
        i = new_node(g, RS_SLEEP);
        if (i < 0)
            return -1;
        n = &g->p->node[i];
        if (chance(g, 6)) {
            n->sub = 1;
            n->arg = RP_FOREVER;
        } else {
            n->arg = duration(g);
        }
        return i;
    }
    if (r < 28)
        return new_node(g, RS_CKPT);
    if (r < 31)
        return new_node(g, RS_YIELD);
    if (r < 40) {
        i = new_node(g, RS_RAISE);
        if (i < 0)
            return -1;
        n = &g->p->node[i];
        /* A few codes shared between raises, so that a new error with the
         * same code as a pending one must still be told apart (by its
         * message). */
        n->arg = 1001 + (int32_t)pick(g->src, 4);
        n->sub = (uint8_t)pick(g->src, 8);
        return i;
    }
    if (r < 48 || (r < 56 && r >= 53)) {
        i = new_node(g, r < 48 ? RS_CANCEL : RS_SHIELD);
        if (i < 0)
            return -1;
        n = &g->p->node[i];
        choose_target(g, n, ctx);
        if (n->kind == RS_SHIELD)
            n->arg = (int32_t)pick(g->src, 2);
        return i;
    }
    if (r < 53) {
        i = new_node(g, RS_DEADLINE);
        if (i < 0)
            return -1;
        n = &g->p->node[i];
        choose_target(g, n, ctx);
        n->sub = (uint8_t)pick(g->src, 3);
        n->arg = n->sub == 0 ? duration(g) - 15 : duration(g);
        return i;
    }
    if (r < 75 && ctx->nn && depth < g->maxdepth && g->ntask < g->maxtask &&
        room(g, 6)) {
        /* A child task, into one of the nurseries the task lives under:
         * mostly the innermost. */
        int start = r >= 68;
        int16_t e = chance(g, 70) ? ctx->nurs[ctx->nn - 1]
                                  : ctx->nurs[pick(g->src, (unsigned)ctx->nn)];
        gctx cc;
        i = new_node(g, start ? RS_START : RS_SPAWN);
        if (i < 0)
            return -1;
        g->ntask++;
        /* The child lives under that nursery and everything around it. */
        memset(&cc, 0, sizeof cc);
        for (k = 0; k < ctx->nn; k++) {
            cc.nurs[cc.nn++] = ctx->nurs[k];
            if (ctx->nurs[k] == e)
                break;
        }
        for (k = 0; k < ctx->ns; k++) {
            cc.scopes[cc.ns++] = ctx->scopes[k];
            if (ctx->scopes[k] == e)
                break;
        }
        g->p->node[i].target = (int16_t)ENC_F(e);
        g->p->node[i].lvl = (uint8_t)ENC_L(e);
        k = gen_func(g, start ? RF_START : RF_SPAWN, fn, -1, depth + 1, &cc,
                     RB_NONE, 0);
        if (k < 0)
            return -1;
        g->p->node[i].child = (int16_t)k;
        return i;
    }
    if (r < 92 && depth < g->maxdepth && room(g, 4)) {
        /* A call; in FINALLY often a shielded cleanup. */
        i = new_node(g, RS_CALL);
        if (i < 0)
            return -1;
        k = gen_func(g, RF_CALL, fn, task, depth + 1, ctx,
                     in_fin && chance(g, 40) ? RB_SHIELD : RB_NONE, in_fin);
        if (k < 0)
            return -1;
        g->p->node[i].child = (int16_t)k;
        return i;
    }
    if (r < 95)
        return new_node(g, RS_RETURN);
    i = new_node(g, RS_SLEEP);
    if (i >= 0)
        g->p->node[i].arg = duration(g);
    return i;
}

static int gen_func(gen *g, int role, int parent, int task, int depth,
                    const gctx *ctx, int force_blk, int in_fin)
{
    rp_prog *p = g->p;
    int f = new_node(g, RP_FUNC), l, k, nb, nf, st = -1;
    int16_t body[8], fin[8];
    gctx inner = *ctx;
    rp_node *fn;

    if (f < 0)
        return -1;
    fn = &p->node[f];
    fn->role = (uint8_t)role;
    fn->parent = (int16_t)parent;
    fn->task = (int16_t)(task < 0 ? f : task);
    fn->slot = (uint8_t)p->nfunc++;
    k = (int)pick(g->src, 100);
    fn->nblk = (uint8_t)(k < 30 ? 0 : k < 75 ? 1 : 2);
    if (force_blk != RB_NONE && fn->nblk == 0)
        fn->nblk = 1;
    for (l = 0; l < fn->nblk; l++) {
        fn->blk[l] = (uint8_t)(l == 0 && force_blk != RB_NONE ? force_blk
                                                              : block_kind(g));
        switch (fn->blk[l]) {
        case RB_MOVE_AFTER:
        case RB_FAIL_AFTER:
            fn->barg[l] = duration(g);
            break;
        case RB_MOVE_AT:
        case RB_FAIL_AT:
            fn->barg[l] = duration(g) - 10;
            break;
        default:
            break;
        }
        if (fn->blk[l] == RB_NURSERY && inner.nn < COUNT(inner.nurs))
            inner.nurs[inner.nn++] = ENC(f, l);
        if (fn->blk[l] != RB_TRY && inner.ns < COUNT(inner.scopes))
            inner.scopes[inner.ns++] = ENC(f, l);
    }

    nb = 1 + (int)pick(g->src, (unsigned)g->maxbody);
    /* A started child calls ptrio_started somewhere in its body, or (one
     * in six) never. */
    if (role == RF_START && !chance(g, 16))
        st = (int)pick(g->src, (unsigned)nb + 1);
    for (k = 0, l = 0; k < nb + (st >= 0) && l < COUNT(body); k++) {
        int s;
        if (k == st) {
            s = new_node(g, RS_STARTED);
            if (s >= 0)
                p->node[s].child = (int16_t)f;
        } else {
            s = gen_stmt(g, f, &inner, depth, in_fin);
        }
        if (s >= 0)
            body[l++] = (int16_t)s;
    }
    nb = l;

    /* FINALLY: its own blocks are closed by then; they may still be
     * targeted (a closed scope must ignore it), but not spawned into. */
    nf = 0;
    if (chance(g, 35)) {
        gctx fc = *ctx;
        int m = 1 + (int)pick(g->src, 3);
        for (l = 0; l < fn->nblk && fc.ns < COUNT(fc.scopes); l++)
            if (fn->blk[l] != RB_TRY)
                fc.scopes[fc.ns++] = ENC(f, l);
        for (k = 0; k < m; k++) {
            int s = gen_stmt(g, f, &fc, depth, 1);
            if (s >= 0)
                fin[nf++] = (int16_t)s;
        }
    }
    fn = &p->node[f];
    append_list(g, body, nb, &fn->body, &fn->nbody);
    append_list(g, fin, nf, &fn->fin, &fn->nfin);
    return f;
}

/* Statements aimed at "any block" get one now that all exist. */
static void resolve_targets(gen *g)
{
    rp_prog *p = g->p;
    int16_t all[2 * RP_MAXNODE];
    int na = 0, i, l;

    for (i = 0; i < p->n; i++)
        if (p->node[i].kind == RP_FUNC)
            for (l = 0; l < p->node[i].nblk; l++)
                if (p->node[i].blk[l] != RB_TRY)
                    all[na++] = ENC(i, l);
    for (i = 0; i < p->n; i++) {
        rp_node *n = &p->node[i];
        if (n->target != -2)
            continue;
        if (!na) {
            n->kind = RS_CKPT;
            n->target = -1;
            continue;
        }
        l = all[pick(g->src, (unsigned)na)];
        n->target = (int16_t)ENC_F(l);
        n->lvl = (uint8_t)ENC_L(l);
    }
}

void rp_generate(rp_prog *p, rp_src *src)
{
    gen g;
    gctx top;
    unsigned size = pick(src, 100);

    memset(p, 0, sizeof *p);
    memset(&g, 0, sizeof g);
    memset(&top, 0, sizeof top);
    g.src = src;
    g.p = p;
    /* Size classes: most programs small (fast, easy to read when they
     * fail), some large. */
    if (size < 45) {
        g.maxnode = 24;
        g.maxtask = 3;
        g.maxdepth = 3;
        g.maxbody = 3;
    } else if (size < 85) {
        g.maxnode = 60;
        g.maxtask = 7;
        g.maxdepth = 4;
        g.maxbody = 4;
    } else {
        g.maxnode = 150;
        g.maxtask = 14;
        g.maxdepth = 5;
        g.maxbody = 5;
    }
    g.ntask = 1;
    gen_func(&g, RF_MAIN, -1, -1, 0, &top, RB_NONE, 0);
    resolve_targets(&g);
}

void rp_generate_seed(rp_prog *p, uint32_t seed)
{
    rp_src s;
    rp_src_seed(&s, seed);
    rp_generate(p, &s);
    p->seed = seed;
}

/* ---- the readable form ---------------------------------------------------- */

static const char *const block_names[RB_NKINDS] = {
    "-", "nursery", "cancel_scope", "shield", "move_on_after",
    "move_on_at(now+)", "fail_after", "fail_at(now+)", "try"
};

static const char *const role_names[] = {"main", "task", "started task",
                                         "call"};

static void indent(rp_out_fn out, void *ctx, int d)
{
    static const char sp[] = "                                        ";
    int n = 2 * d;
    if (n > (int)sizeof sp - 1)
        n = (int)sizeof sp - 1;
    out(ctx, sp + (sizeof sp - 1 - (size_t)n));
}

static void print_func(const rp_prog *p, int f, int d, rp_out_fn out,
                       void *ctx);

static void print_list(const rp_prog *p, int at, int count, int d,
                       rp_out_fn out, void *ctx)
{
    int k;
    for (k = 0; k < count; k++) {
        int i = p->list[at + k];
        const rp_node *n = &p->node[i];
        indent(out, ctx, d);
        switch (n->kind) {
        case RS_SLEEP:
            if (n->sub)
                outf(out, ctx, "[%d] sleep_forever\n", i);
            else
                outf(out, ctx, "[%d] sleep %d\n", i, (int)n->arg);
            break;
        case RS_CKPT:
            outf(out, ctx, "[%d] checkpoint\n", i);
            break;
        case RS_YIELD:
            outf(out, ctx, "[%d] yield (cancel-shielded)\n", i);
            break;
        case RS_RAISE:
            outf(out, ctx, "[%d] raise %d \"m%d\"\n", i, (int)n->arg, n->sub);
            break;
        case RS_CANCEL:
            outf(out, ctx, "[%d] cancel f%d.%d\n", i, n->target, n->lvl);
            break;
        case RS_DEADLINE:
            if (n->sub == 0)
                outf(out, ctx, "[%d] deadline f%d.%d = now%+d\n", i, n->target,
                     n->lvl, (int)n->arg);
            else if (n->sub == 1)
                outf(out, ctx, "[%d] timeout f%d.%d = %d\n", i, n->target,
                     n->lvl, (int)n->arg);
            else
                outf(out, ctx, "[%d] deadline f%d.%d = inf\n", i, n->target,
                     n->lvl);
            break;
        case RS_SHIELD:
            outf(out, ctx, "[%d] shield f%d.%d = %d\n", i, n->target, n->lvl,
                 (int)n->arg);
            break;
        case RS_SPAWN:
        case RS_START:
            outf(out, ctx, "[%d] %s into f%d.%d:\n", i,
                 n->kind == RS_SPAWN ? "start_soon" : "start", n->target,
                 n->lvl);
            print_func(p, n->child, d + 1, out, ctx);
            break;
        case RS_STARTED:
            outf(out, ctx, "[%d] started(%d)\n", i, n->child);
            break;
        case RS_CALL:
            outf(out, ctx, "[%d] call:\n", i);
            print_func(p, n->child, d + 1, out, ctx);
            break;
        case RS_RETURN:
            outf(out, ctx, "[%d] return %d\n", i, i);
            break;
        default:
            outf(out, ctx, "[%d] ?\n", i);
        }
    }
}

static void print_func(const rp_prog *p, int f, int d, rp_out_fn out,
                       void *ctx)
{
    const rp_node *fn = &p->node[f];
    int l;
    indent(out, ctx, d);
    outf(out, ctx, "f%d (%s) {\n", f, role_names[fn->role]);
    for (l = 0; l < fn->nblk; l++) {
        indent(out, ctx, d + 1 + l);
        if (fn->blk[l] >= RB_MOVE_AFTER && fn->blk[l] <= RB_FAIL_AT)
            outf(out, ctx, "f%d.%d %s %d {\n", f, l, block_names[fn->blk[l]],
                 (int)fn->barg[l]);
        else
            outf(out, ctx, "f%d.%d %s {\n", f, l, block_names[fn->blk[l]]);
    }
    print_list(p, fn->body, fn->nbody, d + 1 + fn->nblk, out, ctx);
    for (l = fn->nblk - 1; l >= 0; l--) {
        indent(out, ctx, d + 1 + l);
        out(ctx, "}\n");
    }
    if (fn->nfin) {
        indent(out, ctx, d);
        out(ctx, "} finally {\n");
        print_list(p, fn->fin, fn->nfin, d + 1, out, ctx);
    }
    indent(out, ctx, d);
    out(ctx, "}\n");
}

void rp_print(const rp_prog *p, rp_out_fn out, void *ctx)
{
    outf(out, ctx, "program %u (%d nodes):\n", (unsigned)p->seed, p->n);
    print_func(p, 0, 0, out, ctx);
}

/* ---- the Trio twin (Python) ----------------------------------------------
 *
 * The same program for current Trio: one async function per function
 * node, `with`/`async with` for the blocks, try/finally for FINALLY, the
 * same event strings. Used by the differential check (README, "Random
 * programs"); nothing here runs in `make check`.
 */

void rp_emit_python_prelude(rp_out_fn out, void *ctx)
{
    static const char *const lines[] = {
        "import math, sys, warnings, trio, trio.testing, trio.lowlevel",
        "warnings.filterwarnings('ignore', category=trio.TrioDeprecationWarning)",
        "class Err(Exception):",
        "    def __init__(self, code, msg):",
        "        super().__init__(code, msg)",
        "        self.code, self.msg = code, msg",
        "LOG, TID, SC, NU, DOC = {}, {}, {}, {}, []",
        "def ev(tag):",
        "    LOG[TID[trio.lowlevel.current_task()]].append(",
        "        '%s@%d' % (tag, int(trio.current_time())))",
        "def _d(e):",
        "    if isinstance(e, trio.Cancelled): return None",
        "    if isinstance(e, BaseExceptionGroup):",
        "        ms = [x for x in (_d(m) for m in e.exceptions) if x is not None]",
        "        if not ms: return None",
        "        if len(ms) == 1: return ms[0]",
        "        return 'G[' + ','.join(sorted(ms)) + ']'",
        "    if isinstance(e, Err): return '%d/m%d' % (e.code, e.msg)",
        "    if isinstance(e, trio.TooSlowError): return 'ETIMEDOUT'",
        "    if isinstance(e, RuntimeError) and 'started' in str(e):",
        "        return 'ENOSTART'",
        "    return 'OTHER:%s:%s' % (type(e).__name__, e)",
        "def desc(e):",
        "    if e is None: return '0'",
        "    d = _d(e)",
        "    return 'CANCEL' if d is None else d",
        "def cname(e):",
        "    d = desc(e)",
        "    return 'EGROUP' if d.startswith('G[') else d.split('/')[0]",
        "async def task_root(fid, fn, task_status=trio.TASK_STATUS_IGNORED):",
        "    TID[trio.lowlevel.current_task()] = fid",
        "    LOG.setdefault(fid, [])",
        "    try:",
        "        r = await fn(task_status)",
        "    except BaseException as e:",
        "        ev('E:' + cname(e))",
        "        raise",
        "    ev('E:%d' % r)",
        "    return r",
        "def run(main):",
        "    LOG.clear(); TID.clear(); SC.clear(); NU.clear(); DOC.clear()",
        "    try:",
        "        r = trio.run(task_root, 0, main,",
        "                     clock=trio.testing.MockClock(autojump_threshold=0),",
        "                     strict_exception_groups=False)",
        "        out = '%d' % r",
        "    except BaseException as e:",
        "        out = desc(e)",
        "    return dict(LOG), out",
        "",
    };
    int i;
    for (i = 0; i < COUNT(lines); i++)
        outf(out, ctx, "%s\n", lines[i]);
}

static void py_line(rp_out_fn out, void *ctx, int d, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    indent(out, ctx, d * 2);
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    outf(out, ctx, "%s\n", tmp);
}

static void py_list(const rp_prog *p, int at, int count, int d, rp_out_fn out,
                    void *ctx)
{
    unsigned s = (unsigned)p->seed;
    int k;
    if (!count)
        py_line(out, ctx, d, "pass");
    for (k = 0; k < count; k++) {
        int i = p->list[at + k];
        const rp_node *n = &p->node[i];
        switch (n->kind) {
        case RS_SLEEP:
            if (n->sub)
                py_line(out, ctx, d, "await trio.sleep_forever()");
            else
                py_line(out, ctx, d, "await trio.sleep(%d)", (int)n->arg);
            py_line(out, ctx, d, "ev('s%d')", i);
            break;
        case RS_CKPT:
            py_line(out, ctx, d, "await trio.lowlevel.checkpoint()");
            py_line(out, ctx, d, "ev('c%d')", i);
            break;
        case RS_YIELD:
            py_line(out, ctx, d,
                    "await trio.lowlevel.cancel_shielded_checkpoint()");
            py_line(out, ctx, d, "ev('y%d')", i);
            break;
        case RS_RAISE:
            py_line(out, ctx, d, "ev('r%d')", i);
            py_line(out, ctx, d, "raise Err(%d, %d)", (int)n->arg, n->sub);
            break;
        case RS_CANCEL:
            py_line(out, ctx, d, "if (%d, %d) in SC: SC[%d, %d].cancel()",
                    n->target, n->lvl, n->target, n->lvl);
            py_line(out, ctx, d, "ev('k%d')", i);
            break;
        case RS_DEADLINE:
            if (n->sub == 2)
                py_line(out, ctx, d,
                        "if (%d, %d) in SC: SC[%d, %d].deadline = math.inf",
                        n->target, n->lvl, n->target, n->lvl);
            else
                py_line(out, ctx, d,
                        "if (%d, %d) in SC: SC[%d, %d].deadline = "
                        "trio.current_time() + %d",
                        n->target, n->lvl, n->target, n->lvl, (int)n->arg);
            py_line(out, ctx, d, "ev('d%d')", i);
            break;
        case RS_SHIELD:
            py_line(out, ctx, d, "if (%d, %d) in SC: SC[%d, %d].shield = %s",
                    n->target, n->lvl, n->target, n->lvl,
                    n->arg ? "True" : "False");
            py_line(out, ctx, d, "ev('h%d')", i);
            break;
        case RS_SPAWN:
            py_line(out, ctx, d, "NU[%d, %d].start_soon(task_root, %d, p%u_f%d)",
                    n->target, n->lvl, n->child, s, n->child);
            py_line(out, ctx, d, "ev('n%d')", i);
            break;
        case RS_START:
            py_line(out, ctx, d,
                    "_v = await NU[%d, %d].start(task_root, %d, p%u_f%d)",
                    n->target, n->lvl, n->child, s, n->child);
            py_line(out, ctx, d, "ev('t%d:%%d' %% _v)", i);
            break;
        case RS_STARTED:
            py_line(out, ctx, d, "ts.started(%d)", n->child);
            py_line(out, ctx, d, "ev('o%d')", i);
            break;
        case RS_CALL:
            py_line(out, ctx, d, "_r = await p%u_f%d(ts)", s, n->child);
            py_line(out, ctx, d, "ev('l%d:%%d' %% _r)", i);
            break;
        case RS_RETURN:
            py_line(out, ctx, d, "ev('R%d')", i);
            py_line(out, ctx, d, "return %d", i);
            break;
        default:
            py_line(out, ctx, d, "pass");
        }
    }
}

static void py_blocks(const rp_prog *p, int f, int l, int d, rp_out_fn out,
                      void *ctx)
{
    const rp_node *fn = &p->node[f];
    int a = (int)fn->barg[l];
    if (l >= fn->nblk) {
        py_list(p, fn->body, fn->nbody, d, out, ctx);
        return;
    }
    switch (fn->blk[l]) {
    case RB_NURSERY:
        py_line(out, ctx, d, "async with trio.open_nursery("
                             "strict_exception_groups=False) as _n%d:", l);
        py_line(out, ctx, d + 1, "SC[%d, %d] = _n%d.cancel_scope; NU[%d, %d] = _n%d",
                f, l, l, f, l, l);
        py_blocks(p, f, l + 1, d + 1, out, ctx);
        py_line(out, ctx, d, "ev('X%d.%d:%%d' %% _n%d.cancel_scope.cancelled_caught)",
                f, l, l);
        return;
    case RB_TRY:
        py_line(out, ctx, d, "try:");
        py_blocks(p, f, l + 1, d + 1, out, ctx);
        py_line(out, ctx, d, "except Exception as _e%d:", l);
        py_line(out, ctx, d + 1, "ev('T%d.%d:' + desc(_e%d))", f, l, l);
        /* A real failure grouped with a Cancelled: Trio's `except
         * Exception` misses it, ptrio's TRY_BLOCK catches it (README,
         * "Differences from Trio"). DOC tells trio_diff.py so. */
        py_line(out, ctx, d, "except BaseExceptionGroup as _e%d:", l);
        py_line(out, ctx, d + 1, "if _d(_e%d) is not None: DOC.append('T%d.%d')",
                l, f, l);
        py_line(out, ctx, d + 1, "raise");
        py_line(out, ctx, d, "else:");
        py_line(out, ctx, d + 1, "ev('T%d.%d:0')", f, l);
        return;
    case RB_SCOPE:
        py_line(out, ctx, d, "with trio.CancelScope() as _s%d:", l);
        break;
    case RB_SHIELD:
        py_line(out, ctx, d, "with trio.CancelScope(shield=True) as _s%d:", l);
        break;
    case RB_MOVE_AFTER:
        py_line(out, ctx, d, "with trio.move_on_after(%d) as _s%d:", a, l);
        break;
    case RB_MOVE_AT:
        py_line(out, ctx, d,
                "with trio.move_on_at(trio.current_time() + %d) as _s%d:", a, l);
        break;
    case RB_FAIL_AFTER:
        py_line(out, ctx, d, "with trio.fail_after(%d) as _s%d:", a, l);
        break;
    case RB_FAIL_AT:
        py_line(out, ctx, d,
                "with trio.fail_at(trio.current_time() + %d) as _s%d:", a, l);
        break;
    default:
        break;
    }
    py_line(out, ctx, d + 1, "SC[%d, %d] = _s%d", f, l, l);
    py_blocks(p, f, l + 1, d + 1, out, ctx);
    py_line(out, ctx, d, "ev('X%d.%d:%%d' %% _s%d.cancelled_caught)", f, l, l);
}

void rp_emit_python(const rp_prog *p, rp_out_fn out, void *ctx)
{
    unsigned s = (unsigned)p->seed;
    int f;
    for (f = p->n - 1; f >= 0; f--) {
        const rp_node *fn = &p->node[f];
        if (fn->kind != RP_FUNC)
            continue;
        py_line(out, ctx, 0, "async def p%u_f%d(ts):", s, f);
        py_line(out, ctx, 1, "ev('F%d')", f);
        py_line(out, ctx, 1, "_p = None");
        py_line(out, ctx, 1, "try:");
        py_blocks(p, f, 0, 2, out, ctx);
        py_line(out, ctx, 1, "except BaseException as _e:");
        py_line(out, ctx, 2, "_p = _e");
        py_line(out, ctx, 2, "raise");
        py_line(out, ctx, 1, "finally:");
        py_line(out, ctx, 2, "ev('Z%d:' + cname(_p))", f);
        py_list(p, fn->fin, fn->nfin, 2, out, ctx);
        py_line(out, ctx, 1, "return 0");
    }
    py_line(out, ctx, 0, "def prog_%u():", s);
    py_line(out, ctx, 1, "return run(p%u_f0)", s);
    out(ctx, "\n");
}

/* ---- results ---------------------------------------------------------------- */

static char *result_log(rp_result *r, int root)
{
    int i;
    for (i = 0; i < r->ntask; i++)
        if (r->task_root[i] == root)
            return r->log[i];
    if (r->ntask >= RP_MAXTASK)
        return NULL;
    r->task_root[r->ntask] = (int16_t)root;
    r->log[r->ntask][0] = '\0';
    return r->log[r->ntask++];
}

static void result_event(rp_result *r, int root, long long ms, const char *ev)
{
    char *l = result_log(r, root);
    tbuf b;
    size_t n;
    if (!l)
        return;
    n = strlen(l);
    tb_init(&b, l + n, RP_LOGCAP - n);
    tb_printf(&b, "%s%s@%lld", n ? " " : "", ev, ms);
}

static void result_init(rp_result *r)
{
    r->rc = 0;
    r->outcome[0] = '\0';
    r->ntask = 0;
    r->deadlock = r->broken = 0;
}

/* The name of a status in the logs: a value, or an error's class. */
static void status_name(int rc, char *out, size_t cap)
{
    if (rc >= 0)
        snprintf(out, cap, "%d", rc);
    else if (rc == -PTRIO_ECANCELED)
        snprintf(out, cap, "CANCEL");
    else if (rc == -PTRIO_EGROUP)
        snprintf(out, cap, "EGROUP");
    else if (rc == -PTRIO_ETIMEDOUT)
        snprintf(out, cap, "ETIMEDOUT");
    else if (rc == -PTRIO_ENOSTART)
        snprintf(out, cap, "ENOSTART");
    else
        snprintf(out, cap, "%d", -rc);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "G[a,b,...]" from member descriptions, sorted (Trio and ptrio order
 * members differently; which failed first is not the point). */
#define GMAX 24
static void group_desc(char (*mem)[RP_DESCCAP], int n, char *out, size_t cap)
{
    const char *ptr[GMAX];
    tbuf b;
    int i;
    for (i = 0; i < n; i++)
        ptr[i] = mem[i];
    qsort(ptr, (size_t)n, sizeof ptr[0], cmp_str);
    tb_init(&b, out, cap);
    tb_puts(&b, "G[");
    for (i = 0; i < n; i++) {
        if (i)
            tb_puts(&b, ",");
        tb_puts(&b, ptr[i]);
    }
    tb_puts(&b, "]");
}

/* ---- the model -----------------------------------------------------------------
 *
 * Trio's semantics, simulated directly (Trio git main: _core/_run.py and
 * _timeouts.py), with exceptions as trees:
 *   - a cancel scope catches a Cancelled (or strips the Cancelleds of a
 *     group, collapsing a "loose" group of one) when it is effectively
 *     cancelled and no cancellation of its parent is visible to it;
 *   - checkpoint: a schedule point, then Cancelled if effectively cancelled;
 *     sleep(d) is `with move_on_at(now + d): sleep_forever()`; a wait is
 *     aborted once, when the task becomes effectively cancelled;
 *   - a nursery: the body's exception and every child's (Cancelled too)
 *     are collected and cancel the nursery; its exit waits for the
 *     children (a cancellation of the waiting parent does not abort that
 *     wait; with no children it is a cancel-shielded schedule point), then
 *     raises the one exception as itself, several as a loose group;
 *   - start: a hidden strict nursery under the caller; started() moves the
 *     child into the target nursery unless the caller is cancelled; an
 *     exception before that is the caller's, unwrapped; a child that
 *     returns without calling started fails the start (RuntimeError,
 *     ptrio's ENOSTART);
 *   - fail_after: TooSlowError when its scope caught the cancellation;
 *   - TRY is `except Exception`: it does not catch a Cancelled, nor a group
 *     of nothing else; unlike Trio, a group holding a real failure and a
 *     Cancelled is caught (ptrio's nurseries raise the failure alone).
 * A schedule (rp_sched) picks what Trio leaves open: batch order, the
 * order in which a cancellation wakes tasks, extra yields. Where Trio
 * would wait forever (every task blocked, no deadline), ptrio's virtual
 * clock reports a deadlock; the model does what ptrio documents: cancel
 * the run, then at each deadlock after that abort every blocked wait once
 * (sleeps, not joins), shields or not; the run returns main's failure if
 * it is a real one, else -PTRIO_EDEADLK.
 */

enum { X_CANCEL, X_ERR, X_TIMEOUT, X_NOSTART, X_GROUP };

typedef struct m_exc {
    uint8_t kind, note;     /* note: a loose group (collapsible) */
    int16_t n;
    int32_t code, msg;
    int16_t mem[GMAX];
} m_exc;

typedef struct m_scope {
    int16_t parent;
    uint8_t called, shield, caught, active;
    int64_t deadline;
} m_scope;

typedef struct m_nurs {
    int16_t scope, owner, nchild, pstarts, npend;
    uint8_t strict, closed, nested, waiting;
    int16_t pend[GMAX];
} m_nurs;

typedef struct m_start {
    int16_t hn, target;
    uint8_t set;
    int32_t value;
} m_start;

enum { A_FUNC, A_BLOCK, A_LIST, A_STMT };
enum { MD_ENTER, MD_NORMAL, MD_RAISE, MD_RETURN };

typedef struct m_ar {
    uint8_t kind, phase, smode;
    int16_t node, a, b;
    int32_t v;
} m_ar;

#define M_MAXAR 40
enum { MT_RUN, MT_BLOCK, MT_DONE };

typedef struct m_task {
    int16_t root, nurs, scope, start;
    uint8_t state, abortable, abort_fail;
    int16_t wexc;
    int sp;
    m_ar st[M_MAXAR];
} m_task;

#define M_MAXSCOPE 320
#define M_MAXNURS 96
#define M_MAXEXC 700

static struct model {
    const rp_prog *p;
    const rp_sched *s;
    rp_result *r;
    uint64_t rng;
    int64_t now;
    int nt, nsc, nnu, nst, nx, nrq;
    int deadlocks, main_done;
    long steps;
    m_task t[RP_MAXTASK];
    m_scope sc[M_MAXSCOPE];
    m_nurs nu[M_MAXNURS];
    m_start st[RP_MAXTASK];
    m_exc x[M_MAXEXC];
    int16_t scope_of[RP_MAXNODE][2];  /* a block's scope, once entered */
    int16_t nurs_of[RP_MAXNODE][2];   /* a nursery block's nursery */
    int16_t runq[RP_MAXTASK];
} M;

static void m_broken(void)
{
    M.r->broken = 1;
}

static int x_new(int kind)
{
    m_exc *x;
    if (M.nx >= M_MAXEXC) {
        m_broken();
        return 0;           /* the shared Cancelled */
    }
    x = &M.x[M.nx];
    memset(x, 0, sizeof *x);
    x->kind = (uint8_t)kind;
    return M.nx++;
}

/* Exceptions are immutable here: one Cancelled, one TooSlowError and one
 * "no started" serve everyone. */
#define XC_CANCEL 0
#define XC_TIMEOUT 1
#define XC_NOSTART 2

static int x_group(const int16_t *mem, int n, int note)
{
    int g = x_new(X_GROUP), i;
    if (n > GMAX) {
        m_broken();
        n = GMAX;
    }
    M.x[g].note = (uint8_t)note;
    M.x[g].n = (int16_t)n;
    for (i = 0; i < n; i++)
        M.x[g].mem[i] = mem[i];
    return g;
}

/* BaseExceptionGroup.split(Cancelled): returns whether anything matched;
 * *rest is what is left (-1: nothing), the same object if unchanged. */
static int x_split(int e, int *rest)
{
    const m_exc *x = &M.x[e];
    int16_t mem[GMAX];
    int i, n = 0, matched = 0, changed = 0;

    if (x->kind == X_CANCEL) {
        *rest = -1;
        return 1;
    }
    if (x->kind != X_GROUP) {
        *rest = e;
        return 0;
    }
    for (i = 0; i < x->n; i++) {
        int r, m = x->mem[i];
        matched |= x_split(m, &r);
        if (r != m)
            changed = 1;
        if (r >= 0)
            mem[n++] = (int16_t)r;
    }
    if (!changed)
        *rest = e;
    else if (!n)
        *rest = -1;
    else
        *rest = x_group(mem, n, M.x[e].note);   /* split keeps notes */
    return matched;
}

/* Trio's collapse_exception_group. */
static int x_collapse(int e)
{
    int16_t mem[GMAX];
    int i, n = M.x[e].n, modified = 0;
    for (i = 0; i < n; i++) {
        int m = M.x[e].mem[i];
        mem[i] = (int16_t)(M.x[m].kind == X_GROUP ? x_collapse(m) : m);
        if (mem[i] != m)
            modified = 1;
    }
    if (n == 1 && M.x[e].note)
        return mem[0];
    if (modified)
        return x_group(mem, n, 0);      /* derive() drops the notes */
    return e;
}

/* Whether `e` holds a real failure: anything but Cancelled and groups of
 * nothing else. ptrio's TRY_BLOCK catches such an exception whole, where
 * Trio's `except Exception` misses a group that holds a Cancelled too: in
 * ptrio a nursery raises the real failure alone (its cancellations are
 * absorbed, never group members; README, "Differences from Trio"), and the
 * cancellation comes back at the next checkpoint. */
static int x_has_exception(int e)
{
    const m_exc *x = &M.x[e];
    int i;
    if (x->kind == X_CANCEL)
        return 0;
    if (x->kind == X_GROUP) {
        for (i = 0; i < x->n; i++)
            if (x_has_exception(x->mem[i]))
                return 1;
        return 0;
    }
    return 1;
}

/* The description ptrio's records give: Cancelleds dropped, groups of
 * one collapsed. Returns 0 when nothing but cancellation is left. */
static int x_leaves(int e, char *out, size_t cap)
{
    const m_exc *x = &M.x[e];
    char mem[GMAX][RP_DESCCAP];
    int i, n = 0;

    switch (x->kind) {
    case X_CANCEL:
        return 0;
    case X_ERR:
        snprintf(out, cap, "%d/m%d", (int)x->code, (int)x->msg);
        return 1;
    case X_TIMEOUT:
        snprintf(out, cap, "ETIMEDOUT");
        return 1;
    case X_NOSTART:
        snprintf(out, cap, "ENOSTART");
        return 1;
    default:
        break;
    }
    for (i = 0; i < x->n; i++)
        if (x_leaves(x->mem[i], mem[n], RP_DESCCAP))
            n++;
    if (!n)
        return 0;
    if (n == 1)
        snprintf(out, cap, "%s", mem[0]);
    else
        group_desc(mem, n, out, cap);
    return 1;
}

static void x_desc(int e, char *out, size_t cap)
{
    if (e < 0)
        snprintf(out, cap, "0");
    else if (!x_leaves(e, out, cap))
        snprintf(out, cap, "CANCEL");
}

/* The code ptrio returns for it. */
static int x_code(int e)
{
    char d[RP_DESCCAP];
    x_desc(e, d, sizeof d);
    if (!strcmp(d, "CANCEL"))
        return -PTRIO_ECANCELED;
    if (!strncmp(d, "G[", 2))
        return -PTRIO_EGROUP;
    if (!strcmp(d, "ETIMEDOUT"))
        return -PTRIO_ETIMEDOUT;
    if (!strcmp(d, "ENOSTART"))
        return -PTRIO_ENOSTART;
    return -atoi(d);
}

static void m_event(int ti, const char *fmt, ...)
{
    char tmp[RP_DESCCAP + 32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    result_event(M.r, M.t[ti].root, (long long)M.now, tmp);
}

static unsigned m_rand(unsigned n)
{
    return n > 1 ? (unsigned)((splitmix(&M.rng) >> 33) % n) : 0;
}

/* Puts `order` (n entries) in the order a schedule mode asks for. */
static void m_order(int16_t *order, int n, int mode)
{
    int i;
    if (mode == 1) {
        for (i = 0; i < n / 2; i++) {
            int16_t t = order[i];
            order[i] = order[n - 1 - i];
            order[n - 1 - i] = t;
        }
    } else if (mode == 2) {
        for (i = n - 1; i > 0; i--) {
            int j = (int)m_rand((unsigned)i + 1);
            int16_t t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
    }
}

static int m_eff(int s)
{
    for (; s >= 0; s = M.sc[s].parent) {
        if (M.sc[s].called)
            return 1;
        if (M.sc[s].shield)
            return 0;
    }
    return 0;
}

static int m_parent_visible(int s)
{
    int p = M.sc[s].parent;
    return p >= 0 && !M.sc[s].shield && m_eff(p);
}

static int m_new_scope(int parent, int64_t deadline, int shield)
{
    m_scope *s;
    if (M.nsc >= M_MAXSCOPE) {
        m_broken();
        M.nsc = M_MAXSCOPE - 1;
    }
    s = &M.sc[M.nsc];
    memset(s, 0, sizeof *s);
    s->parent = (int16_t)parent;
    s->shield = (uint8_t)shield;
    s->active = 1;
    s->deadline = deadline;
    if (deadline <= M.now)
        s->called = 1;      /* entered past its deadline */
    return M.nsc++;
}

static void m_push_runq(int ti)
{
    int i;
    for (i = 0; i < M.nrq; i++)
        if (M.runq[i] == ti)
            return;
    M.runq[M.nrq++] = (int16_t)ti;
}

static void m_wake(int ti, int exc)
{
    M.t[ti].state = MT_RUN;
    M.t[ti].abortable = 0;
    M.t[ti].wexc = (int16_t)exc;
    m_push_runq(ti);
}

/* Every blocked task now effectively cancelled has its wait aborted:
 * once per wait; a join's abort fails and it keeps waiting. */
static void m_deliver(void)
{
    int16_t order[RP_MAXTASK];
    int i, n = M.nt;
    for (i = 0; i < n; i++)
        order[i] = (int16_t)i;
    m_order(order, n, M.s->wake);
    for (i = 0; i < n; i++) {
        m_task *T = &M.t[order[i]];
        if (T->state != MT_BLOCK || !T->abortable || !m_eff(T->scope))
            continue;
        T->abortable = 0;
        if (!T->abort_fail)
            m_wake(order[i], XC_CANCEL);
    }
}

/* A later deadlock: every task blocked in a sleep or a checkpoint is
 * woken with Cancelled, shields or not (joins wait for their children).
 * ptrio leaves the order of these wakes open (it aborts in the order a
 * cancellation is delivered in): the schedule picks one, as for a
 * cancellation's. */
static void m_abort_all(void)
{
    int16_t order[RP_MAXTASK];
    int i, n = M.nt;
    for (i = 0; i < n; i++)
        order[i] = (int16_t)i;
    m_order(order, n, M.s->wake);
    for (i = 0; i < n; i++)
        if (M.t[order[i]].state == MT_BLOCK && !M.t[order[i]].abort_fail)
            m_wake(order[i], XC_CANCEL);
}

static void m_cancel(int s)
{
    if (s < 0 || M.sc[s].called)
        return;
    M.sc[s].called = 1;
    if (M.sc[s].active)
        m_deliver();
}

static void m_block(int ti, int abortable, int fail)
{
    m_task *T = &M.t[ti];
    T->state = MT_BLOCK;
    T->abortable = (uint8_t)abortable;
    T->abort_fail = (uint8_t)fail;
    T->wexc = -1;
    if (abortable && m_eff(T->scope)) {
        T->abortable = 0;
        if (!fail)
            m_wake(ti, XC_CANCEL);
    }
}

static void m_yield(int ti)
{
    m_wake(ti, -1);
}

/* CancelScope._close. */
static int m_close(int s, int exc)
{
    m_scope *c = &M.sc[s];
    int rest;
    if (exc >= 0 && m_eff(s) && !m_parent_visible(s)) {
        if (M.x[exc].kind == X_CANCEL) {
            c->caught = 1;
            exc = -1;
        } else if (M.x[exc].kind == X_GROUP) {
            if (x_split(exc, &rest))
                c->caught = 1;
            exc = rest >= 0 ? x_collapse(rest) : -1;
        }
    }
    c->active = 0;
    return exc;
}

static int m_new_nurs(int owner, int scope, int strict)
{
    m_nurs *n;
    if (M.nnu >= M_MAXNURS) {
        m_broken();
        M.nnu = M_MAXNURS - 1;
    }
    n = &M.nu[M.nnu];
    memset(n, 0, sizeof *n);
    n->owner = (int16_t)owner;
    n->scope = (int16_t)scope;
    n->strict = (uint8_t)strict;
    n->nested = 1;
    return M.nnu++;
}

static void m_add_exc(int ni, int exc)
{
    m_nurs *n = &M.nu[ni];
    if (n->npend >= GMAX)
        m_broken();
    else
        n->pend[n->npend++] = (int16_t)exc;
    m_cancel(n->scope);
}

static void m_check_closed(int ni)
{
    m_nurs *n = &M.nu[ni];
    if (n->nested || n->nchild || n->pstarts || n->closed)
        return;
    n->closed = 1;
    if (n->waiting) {
        n->waiting = 0;
        m_wake(n->owner, -1);
    }
}

/* The nursery's exceptions, as its exit raises them. */
static int m_combined(int ni)
{
    m_nurs *n = &M.nu[ni];
    if (!n->npend)
        return -1;
    if (!n->strict && n->npend == 1)
        return n->pend[0];
    return x_group(n->pend, n->npend, !n->strict);
}

static int m_spawn(int root, int nurs, int scope, int start)
{
    m_task *T;
    if (M.nt >= RP_MAXTASK) {
        m_broken();
        return -1;
    }
    T = &M.t[M.nt];
    memset(T, 0, sizeof *T);
    T->root = (int16_t)root;
    T->nurs = (int16_t)nurs;
    T->scope = (int16_t)scope;
    T->start = (int16_t)start;
    T->wexc = -1;
    T->sp = 1;
    T->st[0].kind = A_FUNC;
    T->st[0].node = (int16_t)root;
    if (nurs >= 0)
        M.nu[nurs].nchild++;
    result_log(M.r, root);
    m_push_runq(M.nt);
    return M.nt++;
}

static int m_target_scope(const rp_node *n)
{
    int s = n->target >= 0 ? M.scope_of[n->target][n->lvl] : -1;
    return s >= 0 && M.sc[s].active ? s : -1;
}

static void m_task_done(int ti, int mode, int val)
{
    m_task *T = &M.t[ti];
    char name[RP_DESCCAP];
    T->state = MT_DONE;
    if (mode == MD_RAISE) {
        status_name(x_code(val), name, sizeof name);
        m_event(ti, "E:%s", name);
    } else {
        m_event(ti, "E:%d", val);
    }
    if (T->nurs >= 0) {
        M.nu[T->nurs].nchild--;
        if (mode == MD_RAISE)
            m_add_exc(T->nurs, val);
        m_check_closed(T->nurs);
    }
    if (ti == 0) {
        M.main_done = 1;
        if (mode == MD_RAISE) {
            x_desc(val, M.r->outcome, RP_DESCCAP);
            M.r->rc = x_code(val);
        } else {
            snprintf(M.r->outcome, RP_DESCCAP, "%d", val);
            M.r->rc = val;
        }
    }
}

enum { GO, STOP };

/* Pops the top record; its parent continues with (mode, val). */
static int m_pop(int ti, int *mode, int *val, int m, int v)
{
    m_task *T = &M.t[ti];
    if (--T->sp == 0) {
        m_task_done(ti, m, v);
        return STOP;
    }
    *mode = m;
    *val = v;
    return GO;
}

static int m_push(int ti, int kind, int node, int a, int *mode)
{
    m_task *T = &M.t[ti];
    m_ar *r;
    if (T->sp >= M_MAXAR) {
        m_broken();
        return STOP;
    }
    r = &T->st[T->sp++];
    memset(r, 0, sizeof *r);
    r->kind = (uint8_t)kind;
    r->node = (int16_t)node;
    r->a = (int16_t)a;
    *mode = MD_ENTER;
    return GO;
}

static int m_func(int ti, m_ar *a, int *mode, int *val)
{
    const rp_node *f = &M.p->node[a->node];
    char d[RP_DESCCAP];
    switch (a->phase) {
    case 0:
        m_event(ti, "F%d", a->node);
        a->phase = 1;
        if (f->nblk)
            return m_push(ti, A_BLOCK, a->node, 0, mode);
        return m_push(ti, A_LIST, a->node, 0, mode);
    case 1:
        a->smode = (uint8_t)*mode;
        a->v = *val;
        status_name(*mode == MD_RAISE ? x_code(*val) : 0, d, sizeof d);
        m_event(ti, "Z%d:%s", a->node, d);
        a->phase = 2;
        return m_push(ti, A_LIST, a->node, 1, mode);
    default:
        if (*mode == MD_RAISE)
            return m_pop(ti, mode, val, MD_RAISE, *val);
        if (*mode == MD_RETURN)
            return m_pop(ti, mode, val, MD_NORMAL, *val);
        if (a->smode == MD_RAISE)
            return m_pop(ti, mode, val, MD_RAISE, a->v);
        return m_pop(ti, mode, val, MD_NORMAL,
                      a->smode == MD_RETURN ? a->v : 0);
    }
}

/* A block ended with `res` (-1: nothing to raise). */
static int m_block_done(int ti, m_ar *a, int res, int *mode, int *val)
{
    const rp_node *f = &M.p->node[a->node];
    int kind = f->blk[a->a], s = a->b;
    if ((kind == RB_FAIL_AFTER || kind == RB_FAIL_AT) && res < 0 &&
        M.sc[s].caught)
        res = XC_TIMEOUT;
    if (res >= 0)
        return m_pop(ti, mode, val, MD_RAISE, res);
    if (a->smode == MD_RETURN)
        return m_pop(ti, mode, val, MD_RETURN, a->v);
    m_event(ti, "X%d.%d:%d", a->node, a->a, M.sc[s].caught);
    return m_pop(ti, mode, val, MD_NORMAL, 0);
}

static int m_blockar(int ti, m_ar *a, int *mode, int *val)
{
    m_task *T = &M.t[ti];
    const rp_node *f = &M.p->node[a->node];
    int lvl = a->a, kind = f->blk[lvl], exc, ni, res;
    int64_t dl = INF64;
    char d[RP_DESCCAP];

    if (a->phase == 0) {
        a->phase = 1;
        switch (kind) {
        case RB_NURSERY:
            a->b = (int16_t)m_new_scope(T->scope, INF64, 0);
            ni = m_new_nurs(ti, a->b, 0);
            M.nurs_of[a->node][lvl] = (int16_t)ni;
            break;
        case RB_TRY:
            a->b = -1;
            break;
        case RB_MOVE_AFTER:
        case RB_FAIL_AFTER:
        case RB_MOVE_AT:
        case RB_FAIL_AT:
            dl = M.now + f->barg[lvl];
            /* FALLTHROUGH */
        default:
            a->b = (int16_t)m_new_scope(T->scope, dl, kind == RB_SHIELD);
            break;
        }
        if (a->b >= 0) {
            M.scope_of[a->node][lvl] = a->b;
            T->scope = a->b;
        }
        if (lvl + 1 < f->nblk)
            return m_push(ti, A_BLOCK, a->node, lvl + 1, mode);
        return m_push(ti, A_LIST, a->node, 0, mode);
    }
    if (a->phase == 1) {
        exc = *mode == MD_RAISE ? *val : -1;
        a->smode = (uint8_t)*mode;
        a->v = *val;
        if (kind == RB_TRY) {
            if (exc >= 0 && !x_has_exception(exc))
                return m_pop(ti, mode, val, MD_RAISE, exc);
            if (*mode == MD_RETURN)
                return m_pop(ti, mode, val, MD_RETURN, *val);
            x_desc(exc, d, sizeof d);
            m_event(ti, "T%d.%d:%s", a->node, lvl, d);
            return m_pop(ti, mode, val, MD_NORMAL, 0);
        }
        if (kind == RB_NURSERY) {
            ni = M.nurs_of[a->node][lvl];
            if (exc >= 0)
                m_add_exc(ni, exc);
            M.nu[ni].nested = 0;
            m_check_closed(ni);
            a->phase = 2;
            if (!M.nu[ni].closed) {
                M.nu[ni].waiting = 1;
                m_block(ti, 1, 1);
            } else if (!M.s->nexit) {
                m_yield(ti);    /* a cancel-shielded schedule point */
            } else {
                return m_blockar(ti, a, mode, val);
            }
            return STOP;
        }
        res = m_close(a->b, exc);
        T->scope = M.sc[a->b].parent;
        return m_block_done(ti, a, res, mode, val);
    }
    /* phase 2: the nursery joined */
    ni = M.nurs_of[a->node][lvl];
    res = m_close(a->b, m_combined(ni));
    T->scope = M.sc[a->b].parent;
    return m_block_done(ti, a, res, mode, val);
}

/* started(): moves the task into its target nursery, unless the caller
 * of start is cancelled. */
static void m_started(int ti)
{
    m_task *T = &M.t[ti];
    m_start *rec;
    m_nurs *hn, *tn;
    int i, hs;
    if (T->start < 0)
        return;
    rec = &M.st[T->start];
    if (rec->set) {
        m_broken();         /* twice: the generator never does it */
        return;
    }
    rec->set = 1;
    rec->value = T->root;
    hn = &M.nu[rec->hn];
    hs = hn->scope;
    if (m_eff(hs))
        return;
    tn = &M.nu[rec->target];
    hn->nchild--;
    tn->nchild++;
    T->nurs = rec->target;
    for (i = 0; i < M.nsc; i++)
        if (M.sc[i].active && M.sc[i].parent == hs)
            M.sc[i].parent = tn->scope;
    if (T->scope == hs)
        T->scope = tn->scope;
    m_deliver();
    m_check_closed(rec->hn);
}

/* A statement that does not wait. Returns 1 when it raised or returned
 * (mode and val set). */
static int m_simple(int ti, int i, int *mode, int *val)
{
    const rp_node *n = &M.p->node[i];
    int s, ni;
    switch (n->kind) {
    case RS_RAISE:
        m_event(ti, "r%d", i);
        s = x_new(X_ERR);
        M.x[s].code = n->arg;
        M.x[s].msg = n->sub;
        *mode = MD_RAISE;
        *val = s;
        return 1;
    case RS_RETURN:
        m_event(ti, "R%d", i);
        *mode = MD_RETURN;
        *val = i;
        return 1;
    case RS_CANCEL:
        m_cancel(m_target_scope(n));
        m_event(ti, "k%d", i);
        return 0;
    case RS_DEADLINE:
        s = m_target_scope(n);
        if (s >= 0) {
            M.sc[s].deadline = n->sub == 2 ? INF64 : M.now + n->arg;
            if (M.s->eager && M.sc[s].deadline <= M.now)
                m_cancel(s);
        }
        m_event(ti, "d%d", i);
        return 0;
    case RS_SHIELD:
        s = m_target_scope(n);
        if (s >= 0) {
            M.sc[s].shield = (uint8_t)(n->arg != 0);
            m_deliver();
        }
        m_event(ti, "h%d", i);
        return 0;
    case RS_SPAWN:
        ni = M.nurs_of[n->target][n->lvl];
        if (ni < 0 || M.nu[ni].closed)
            m_broken();     /* the generator only spawns into live ones */
        else
            m_spawn(n->child, ni, M.nu[ni].scope, -1);
        m_event(ti, "n%d", i);
        return 0;
    case RS_STARTED:
        m_started(ti);
        m_event(ti, "o%d", i);
        return 0;
    default:
        m_broken();
        return 0;
    }
}

static int m_list(int ti, m_ar *a, int *mode, int *val)
{
    const rp_node *f = &M.p->node[a->node];
    int at = a->a ? f->fin : f->body, n = a->a ? f->nfin : f->nbody;

    if (*mode == MD_RAISE || *mode == MD_RETURN)
        return m_pop(ti, mode, val, *mode, *val);
    while (a->v < n) {
        int i = M.p->list[at + a->v++], k = M.p->node[i].kind;
        if (k == RS_SLEEP || k == RS_CKPT || k == RS_YIELD || k == RS_START ||
            k == RS_CALL)
            return m_push(ti, A_STMT, i, 0, mode);
        if (m_simple(ti, i, mode, val))
            return m_pop(ti, mode, val, *mode, *val);
    }
    return m_pop(ti, mode, val, MD_NORMAL, 0);
}

/* trio.lowlevel.checkpoint(): schedule point, then Cancelled. */
static int m_checkpoint(int ti, m_ar *a, int *mode, int *val, int tag)
{
    m_task *T = &M.t[ti];
    if (a->phase == 0) {
        if (M.s->precheck && m_eff(T->scope))
            return m_pop(ti, mode, val, MD_RAISE, XC_CANCEL);
        a->phase = 1;
        m_yield(ti);
        return STOP;
    }
    if (m_eff(T->scope) && a->phase <= M.s->extra) {
        a->phase++;
        m_yield(ti);
        return STOP;
    }
    if (m_eff(T->scope))
        return m_pop(ti, mode, val, MD_RAISE, XC_CANCEL);
    m_event(ti, "%c%d", tag, a->node);
    return m_pop(ti, mode, val, MD_NORMAL, 0);
}

static int m_stmt(int ti, m_ar *a, int *mode, int *val)
{
    m_task *T = &M.t[ti];
    const rp_node *n = &M.p->node[a->node];
    int res, ni;

    switch (n->kind) {
    case RS_CKPT:
        return m_checkpoint(ti, a, mode, val, 'c');
    case RS_YIELD:
        if (a->phase == 0) {
            a->phase = 1;
            m_yield(ti);
            return STOP;
        }
        m_event(ti, "y%d", a->node);
        return m_pop(ti, mode, val, MD_NORMAL, 0);
    case RS_SLEEP:
        if (!n->sub && n->arg == 0)
            return m_checkpoint(ti, a, mode, val, 's');
        if (a->phase == 0) {
            if (M.s->precheck && m_eff(T->scope))
                return m_pop(ti, mode, val, MD_RAISE, XC_CANCEL);
            a->phase = 1;
            if (!n->sub) {
                a->b = (int16_t)m_new_scope(T->scope, M.now + n->arg, 0);
                T->scope = a->b;
            }
            m_block(ti, 1, 0);
            return STOP;
        }
        res = T->wexc >= 0 ? T->wexc : *val;
        if (n->sub)
            return m_pop(ti, mode, val, MD_RAISE, res);
        res = m_close(a->b, res);
        T->scope = M.sc[a->b].parent;
        if (res >= 0)
            return m_pop(ti, mode, val, MD_RAISE, res);
        m_event(ti, "s%d", a->node);
        return m_pop(ti, mode, val, MD_NORMAL, 0);
    case RS_CALL:
        if (a->phase == 0) {
            a->phase = 1;
            return m_push(ti, A_FUNC, n->child, 0, mode);
        }
        if (*mode == MD_RAISE)
            return m_pop(ti, mode, val, MD_RAISE, *val);
        m_event(ti, "l%d:%d", a->node, *val);
        return m_pop(ti, mode, val, MD_NORMAL, 0);
    case RS_START:
        if (a->phase == 0) {
            int hs, rec;
            ni = M.nurs_of[n->target][n->lvl];
            if (ni < 0 || M.nu[ni].closed || M.nst >= RP_MAXTASK) {
                m_broken();
                return m_pop(ti, mode, val, MD_RAISE, XC_NOSTART);
            }
            M.nu[ni].pstarts++;
            hs = m_new_scope(T->scope, INF64, 0);
            a->b = (int16_t)m_new_nurs(ti, hs, 1);
            T->scope = (int16_t)hs;
            rec = M.nst++;
            M.st[rec].hn = a->b;
            M.st[rec].target = (int16_t)ni;
            M.st[rec].set = 0;
            a->v = rec;
            m_spawn(n->child, a->b, hs, rec);
            M.nu[a->b].nested = 0;
            m_check_closed(a->b);
            a->phase = 1;
            M.nu[a->b].waiting = 1;
            m_block(ti, 1, 1);
            return STOP;
        } else {
            m_nurs *hn = &M.nu[a->b];
            m_start *rec = &M.st[a->v];
            int hs = hn->scope;
            res = m_close(hs, hn->npend ? x_group(hn->pend, hn->npend, 0) : -1);
            T->scope = M.sc[hs].parent;
            if (res >= 0 && M.x[res].kind == X_GROUP) {
                if (M.x[res].n == 1)
                    res = M.x[res].mem[0];
                else
                    m_broken();
            }
            M.nu[rec->target].pstarts--;
            m_check_closed(rec->target);
            if (res >= 0)
                return m_pop(ti, mode, val, MD_RAISE, res);
            if (!rec->set)
                return m_pop(ti, mode, val, MD_RAISE, XC_NOSTART);
            m_event(ti, "t%d:%d", a->node, (int)rec->value);
            return m_pop(ti, mode, val, MD_NORMAL, 0);
        }
    default:
        m_broken();
        return m_pop(ti, mode, val, MD_NORMAL, 0);
    }
}

/* Runs task `ti` until it blocks, yields or ends. */
static void m_run(int ti)
{
    m_task *T = &M.t[ti];
    int mode = MD_NORMAL, val = T->wexc, act = GO;
    int guard = 0;

    while (act == GO && !M.r->broken) {
        m_ar *a = &T->st[T->sp - 1];
        if (++guard > 100000) {
            m_broken();
            return;
        }
        switch (a->kind) {
        case A_FUNC:
            act = m_func(ti, a, &mode, &val);
            break;
        case A_BLOCK:
            act = m_blockar(ti, a, &mode, &val);
            break;
        case A_LIST:
            act = m_list(ti, a, &mode, &val);
            break;
        default:
            act = m_stmt(ti, a, &mode, &val);
            break;
        }
    }
}

static int64_t m_next_deadline(void)
{
    int64_t best = INF64;
    int i;
    for (i = 0; i < M.nsc; i++)
        if (M.sc[i].active && !M.sc[i].called && M.sc[i].deadline < best)
            best = M.sc[i].deadline;
    return best;
}

static void m_expire(void)
{
    int16_t order[M_MAXSCOPE];
    int i, n = 0;
    for (i = 0; i < M.nsc; i++)
        if (M.sc[i].active && !M.sc[i].called && M.sc[i].deadline <= M.now)
            order[n++] = (int16_t)i;
    m_order(order, n, M.s->wake);
    for (i = 0; i < n; i++)
        m_cancel(order[i]);
}

void rp_model(const rp_prog *p, const rp_sched *s, rp_result *out)
{
    int16_t batch[RP_MAXTASK];
    int i, n, stuck = 0;

    memset(&M, 0, sizeof M);
    M.p = p;
    M.s = s;
    M.r = out;
    M.rng = s->seed ^ p->seed;
    result_init(out);
    memset(M.scope_of, 0xff, sizeof M.scope_of);
    memset(M.nurs_of, 0xff, sizeof M.nurs_of);
    x_new(X_CANCEL);
    x_new(X_TIMEOUT);
    x_new(X_NOSTART);
    /* The system scope: the deadlock handling cancels it. */
    m_new_scope(-1, INF64, 0);
    m_spawn(0, -1, 0, -1);

    while (!M.main_done && !out->broken) {
        if (!M.nrq) {
            int64_t next = m_next_deadline();
            if (next == INF64) {
                /* Every task blocked for good: ptrio's virtual clock
                 * reports a deadlock and cancels everything. */
                out->deadlock = 1;
                if (stuck++ > 3) {
                    m_broken();
                    break;
                }
                if (!M.deadlocks++)
                    m_cancel(0);
                else
                    m_abort_all();
                continue;
            }
            if (next > M.now)
                M.now = next;
        }
        m_expire();
        n = M.nrq;
        memcpy(batch, M.runq, sizeof batch[0] * (size_t)n);
        M.nrq = 0;
        m_order(batch, n, s->batch);
        for (i = 0; i < n; i++)
            if (M.t[batch[i]].state == MT_RUN)
                m_run(batch[i]);
        if (n)
            stuck = 0;
        if (++M.steps > 200000)
            m_broken();
    }
    if (out->deadlock && out->rc < 0 && !strcmp(out->outcome, "CANCEL"))
        out->rc = -PTRIO_EDEADLK;
    else if (out->deadlock && out->rc >= 0)
        out->rc = -PTRIO_EDEADLK;
}

/* ---- ptrio: the interpreter ------------------------------------------------
 *
 * rp_func runs one function node: its (up to two) blocks, each a ptrio
 * block macro chosen at run time, around its body, then its FINALLY. The
 * blocks are entered in one frame, nested: a block's body jumps to the
 * code of the next level (or the statement list), which jumps back into
 * the block when it is done, so that raises route through ptrio's own
 * block and FINALLY machinery exactly as in hand-written code. The
 * statement list runs inline (for the body and for FINALLY); a call, a
 * start_soon or a start uses the callee's own frame from the pool.
 */

struct rp_frame {
    ptrio_frame fr;
    int16_t self;           /* its function node */
    int16_t task;           /* root of the task it runs in */
    int16_t st;             /* the statement running */
    uint16_t at, n, pc;
    uint8_t lvl;            /* blocks around the statement list */
    uint8_t entered;        /* bit per block level entered */
    uint8_t in_fin, rmsg;
    ptrio_time t0;
    void *value;            /* what ptrio_start returned */
    union {
        ptrio_nursery n;
        ptrio_scope sc;
    } b[2];
};

struct rp_root {
    ptrio_frame fr;
    int rc;
};

#define VM_STEP_LIMIT 200000

static struct vm {
    const rp_prog *p;
    rp_result *r;
    ptrio_loop loop;
    struct rp_root root;
    struct rp_frame fr[RP_MAXFUNC];
    ptrio_task task[RP_MAXFUNC];
    int16_t slot_node[RP_MAXFUNC];
    uint8_t spawned[RP_MAXNODE], exited[RP_MAXNODE], created[RP_MAXNODE];
    uint8_t finals[RP_MAXNODE], entered[RP_MAXNODE];
    long steps;
    int reports;
    int bad;
    char why[512];
} V;

static char names[RP_MAXNODE][8];

static void out_stderr(void *ctx, const char *s)
{
    (void)ctx;
    fputs(s, stderr);
}

static void vm_bad(const char *fmt, ...)
{
    va_list ap;
    if (V.bad++)
        return;
    va_start(ap, fmt);
    vsnprintf(V.why, sizeof V.why, fmt, ap);
    va_end(ap);
}

static const rp_node *N_(int i)
{
    return &V.p->node[i];
}

static struct rp_frame *frame_of(int f)
{
    return &V.fr[V.p->node[f].slot];
}

static int task_root(const ptrio_task *t)
{
    if (t == &V.loop.main)
        return 0;
    if (t >= V.task && t < V.task + RP_MAXFUNC)
        return V.slot_node[t - V.task];
    return -1;
}

static void vm_event(int root, const char *fmt, ...)
{
    char tmp[RP_DESCCAP + 32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    result_event(V.r, root, (long long)(ptrio_now() / PTRIO_MS(1)), tmp);
}

/* What a failure record says, in the model's terms. */
static void describe(const ptrio_failure *f, char *out, size_t cap, int depth)
{
    char mem[GMAX][RP_DESCCAP];
    ptrio_failure m;
    const void *cur = NULL;
    int n = 0;

    if (f->code == -PTRIO_EGROUP) {
        if (!f->group) {
            snprintf(out, cap, "G<no record>");
            return;
        }
        if (depth > 6) {
            snprintf(out, cap, "G<too deep>");
            return;
        }
        while ((cur = ptrio_group_next(f->group, cur, &m)) && n < GMAX)
            describe(&m, mem[n++], RP_DESCCAP, depth + 1);
        group_desc(mem, n, out, cap);
    } else if (f->code == -PTRIO_ECANCELED) {
        snprintf(out, cap, "CANCEL");
    } else if (f->code == -PTRIO_ETIMEDOUT) {
        snprintf(out, cap, "ETIMEDOUT");
    } else if (f->code == -PTRIO_ENOSTART) {
        snprintf(out, cap, "ENOSTART");
    } else {
        snprintf(out, cap, "%d/%s", -f->code, f->msg ? f->msg : "?");
    }
}

/* The record of `rc`, the error the running task raised or caught last. */
static void describe_rc(int rc, char *out, size_t cap)
{
    ptrio_failure f;
    char name[32];
    if (rc >= 0) {
        snprintf(out, cap, "0");
        return;
    }
    if (ptrio_failure_last(rc, &f) < 0) {
        status_name(rc, name, sizeof name);
        snprintf(out, cap, "%s<no record>", name);
        return;
    }
    describe(&f, out, cap, 0);
}

static ptrio_scope *target_scope(const rp_node *n)
{
    struct rp_frame *t = frame_of(n->target);
    if (N_(n->target)->blk[n->lvl] == RB_NURSERY)
        return ptrio_nursery_scope(&t->b[n->lvl].n);
    return &t->b[n->lvl].sc;
}

static ptrio_nursery *target_nursery(const rp_node *n)
{
    return &frame_of(n->target)->b[n->lvl].n;
}

/* A frame about to run function `f`. */
static struct rp_frame *prepare(int f)
{
    struct rp_frame *fr = frame_of(f);
    fr->self = (int16_t)f;
    return fr;
}

static void frame_enter(struct rp_frame *f)
{
    f->task = (int16_t)task_root(ptrio_current_task());
    if (f->task != N_(f->self)->task)
        vm_bad("f%d runs in task f%d, not f%d", f->self, f->task,
               N_(f->self)->task);
    if (V.entered[f->self]++)
        vm_bad("f%d entered twice", f->self);
    vm_event(f->task, "F%d", f->self);
}

static void block_in(struct rp_frame *f, int l)
{
    f->lvl = (uint8_t)(l + 1);
    f->entered |= (uint8_t)(1u << l);
}

/* The children started into nursery (f, l) have all exited. */
static void check_joined(struct rp_frame *f, int l, const char *where)
{
    int c;
    if (ptrio_nursery_live(&f->b[l].n))
        vm_bad("nursery f%d.%d still has %u live children %s", f->self, l,
               ptrio_nursery_live(&f->b[l].n), where);
    for (c = 0; c < V.p->n; c++) {
        const rp_node *n = N_(c);
        if ((n->kind == RS_SPAWN || n->kind == RS_START) &&
            n->target == f->self && n->lvl == l && V.created[n->child] &&
            V.spawned[n->child] && !V.exited[n->child])
            vm_bad("nursery f%d.%d ended %s while its child f%d is live",
                   f->self, l, where, n->child);
    }
}

static void block_out(struct rp_frame *f, int l)
{
    const rp_node *fn = N_(f->self);
    char d[RP_DESCCAP];
    f->lvl = (uint8_t)l;
    switch (fn->blk[l]) {
    case RB_TRY:
        describe_rc(ptrio_scope_error(&f->b[l].sc), d, sizeof d);
        vm_event(f->task, "T%d.%d:%s", f->self, l, d);
        break;
    case RB_NURSERY:
        check_joined(f, l, "(after its block)");
        vm_event(f->task, "X%d.%d:%d", f->self, l,
                 ptrio_cancelled_caught(ptrio_nursery_scope(&f->b[l].n)));
        break;
    default:
        vm_event(f->task, "X%d.%d:%d", f->self, l,
                 ptrio_cancelled_caught(&f->b[l].sc));
        break;
    }
}

static void finally_enter(struct rp_frame *f)
{
    const rp_node *fn = N_(f->self);
    char d[RP_DESCCAP];
    int l;
    if (V.finals[f->self]++)
        vm_bad("FINALLY of f%d ran twice", f->self);
    for (l = 0; l < fn->nblk; l++)
        if ((f->entered & (1u << l)) && fn->blk[l] == RB_NURSERY)
            check_joined(f, l, "(at FINALLY)");
    /* Only the code: no API describes the error FINALLY cleans up after
     * (ptrio_failure_last is about the last error raised or caught, which
     * the cleanup may change). Its record is checked where it is caught. */
    status_name(PTRIO_FINALLY_ERROR(f), d, sizeof d);
    vm_event(f->task, "Z%d:%s", f->self, d);
}

static void check_sleep(struct rp_frame *f, int32_t ms)
{
    ptrio_time now = ptrio_now();
    if (now != f->t0 + PTRIO_MS(ms))
        vm_bad("sleep [%d] of %d ms from %lld ns woke at %lld ns", f->st,
               (int)ms, (long long)f->t0, (long long)now);
}

static int value_root(void *v)
{
    struct rp_frame *fr = v;
    if (fr < V.fr || fr >= V.fr + RP_MAXFUNC)
        return -1;
    return fr->self;
}

#define CUR N_(f->st)
#define BK(l) (N_(f->self)->blk[l])
#define BARG(l) (PTRIO_MS(N_(f->self)->barg[l]))

static int rp_func(ptrio_frame *fr)
{
    struct rp_frame *f = PTRIO_SELF(fr, struct rp_frame);
    PTRIO_BEGIN(f);
    frame_enter(f);
    if (N_(f->self)->nblk == 0)
        goto body;

    /* Level 0: the outer block. */
    if (BK(0) == RB_NURSERY) {
        PTRIO_NURSERY(f, &f->b[0].n) { block_in(f, 0); goto level1; back0_n:; }
    } else if (BK(0) == RB_SCOPE) {
        PTRIO_CANCEL_SCOPE(f, &f->b[0].sc) { block_in(f, 0); goto level1; back0_c:; }
    } else if (BK(0) == RB_SHIELD) {
        PTRIO_SHIELD(f, &f->b[0].sc) { block_in(f, 0); goto level1; back0_s:; }
    } else if (BK(0) == RB_MOVE_AFTER) {
        PTRIO_MOVE_ON_AFTER(f, &f->b[0].sc, BARG(0)) { block_in(f, 0); goto level1; back0_ma:; }
    } else if (BK(0) == RB_MOVE_AT) {
        PTRIO_MOVE_ON_AT(f, &f->b[0].sc, ptrio_now() + BARG(0)) { block_in(f, 0); goto level1; back0_mt:; }
    } else if (BK(0) == RB_FAIL_AFTER) {
        PTRIO_FAIL_AFTER(f, &f->b[0].sc, BARG(0)) { block_in(f, 0); goto level1; back0_fa:; }
    } else if (BK(0) == RB_FAIL_AT) {
        PTRIO_FAIL_AT(f, &f->b[0].sc, ptrio_now() + BARG(0)) { block_in(f, 0); goto level1; back0_ft:; }
    } else {
        PTRIO_TRY_BLOCK(f, &f->b[0].sc) { block_in(f, 0); goto level1; back0_t:; }
    }
    block_out(f, 0);
    goto fin;

level1:
    /* Level 1: the inner block, if any. */
    if (N_(f->self)->nblk < 2)
        goto body;
    if (BK(1) == RB_NURSERY) {
        PTRIO_NURSERY(f, &f->b[1].n) { block_in(f, 1); goto body; back1_n:; }
    } else if (BK(1) == RB_SCOPE) {
        PTRIO_CANCEL_SCOPE(f, &f->b[1].sc) { block_in(f, 1); goto body; back1_c:; }
    } else if (BK(1) == RB_SHIELD) {
        PTRIO_SHIELD(f, &f->b[1].sc) { block_in(f, 1); goto body; back1_s:; }
    } else if (BK(1) == RB_MOVE_AFTER) {
        PTRIO_MOVE_ON_AFTER(f, &f->b[1].sc, BARG(1)) { block_in(f, 1); goto body; back1_ma:; }
    } else if (BK(1) == RB_MOVE_AT) {
        PTRIO_MOVE_ON_AT(f, &f->b[1].sc, ptrio_now() + BARG(1)) { block_in(f, 1); goto body; back1_mt:; }
    } else if (BK(1) == RB_FAIL_AFTER) {
        PTRIO_FAIL_AFTER(f, &f->b[1].sc, BARG(1)) { block_in(f, 1); goto body; back1_fa:; }
    } else if (BK(1) == RB_FAIL_AT) {
        PTRIO_FAIL_AT(f, &f->b[1].sc, ptrio_now() + BARG(1)) { block_in(f, 1); goto body; back1_ft:; }
    } else {
        PTRIO_TRY_BLOCK(f, &f->b[1].sc) { block_in(f, 1); goto body; back1_t:; }
    }
    block_out(f, 1);
    goto back0;

body:
    f->in_fin = 0;
    f->at = N_(f->self)->body;
    f->n = N_(f->self)->nbody;
    f->pc = 0;
run:
    while (f->pc < f->n) {
        f->st = V.p->list[f->at + f->pc++];
        if (CUR->kind == RS_SLEEP && CUR->sub) {
            PTRIO_AWAIT(f, ptrio_sleep_forever(f));
            vm_bad("sleep_forever [%d] returned", f->st);
            vm_event(f->task, "s%d", f->st);
        } else if (CUR->kind == RS_SLEEP) {
            f->t0 = ptrio_now();
            PTRIO_AWAIT(f, ptrio_sleep(f, PTRIO_MS(CUR->arg)));
            check_sleep(f, CUR->arg);
            vm_event(f->task, "s%d", f->st);
        } else if (CUR->kind == RS_CKPT) {
            PTRIO_CHECKPOINT(f);
            vm_event(f->task, "c%d", f->st);
        } else if (CUR->kind == RS_YIELD) {
            PTRIO_YIELD(f);
            vm_event(f->task, "y%d", f->st);
        } else if (CUR->kind == RS_RAISE) {
            vm_event(f->task, "r%d", f->st);
            f->rmsg = CUR->sub;
            if (f->rmsg == 0)
                PTRIO_RAISE(f, -(int)CUR->arg, "m0");
            else if (f->rmsg == 1)
                PTRIO_RAISE(f, -(int)CUR->arg, "m1");
            else if (f->rmsg == 2)
                PTRIO_RAISE(f, -(int)CUR->arg, "m2");
            else if (f->rmsg == 3)
                PTRIO_RAISE(f, -(int)CUR->arg, "m3");
            else if (f->rmsg == 4)
                PTRIO_RAISE(f, -(int)CUR->arg, "m4");
            else if (f->rmsg == 5)
                PTRIO_RAISE(f, -(int)CUR->arg, "m5");
            else if (f->rmsg == 6)
                PTRIO_RAISE(f, -(int)CUR->arg, "m6");
            else
                PTRIO_RAISE(f, -(int)CUR->arg, "m7");
        } else if (CUR->kind == RS_CANCEL) {
            ptrio_cancel(target_scope(CUR));
            vm_event(f->task, "k%d", f->st);
        } else if (CUR->kind == RS_DEADLINE) {
            int rc;
            if (CUR->sub == 0)
                rc = ptrio_scope_set_deadline(target_scope(CUR),
                                              ptrio_now() + PTRIO_MS(CUR->arg));
            else if (CUR->sub == 1)
                rc = ptrio_scope_set_timeout(target_scope(CUR),
                                             PTRIO_MS(CUR->arg));
            else
                rc = ptrio_scope_set_deadline(target_scope(CUR),
                                              PTRIO_TIME_INF);
            if (rc != 0)
                vm_bad("deadline [%d] failed: %d", f->st, rc);
            vm_event(f->task, "d%d", f->st);
        } else if (CUR->kind == RS_SHIELD) {
            ptrio_scope_set_shield(target_scope(CUR), CUR->arg != 0);
            vm_event(f->task, "h%d", f->st);
        } else if (CUR->kind == RS_SPAWN) {
            V.created[CUR->child] = 1;
            PTRIO_CHECK(f, ptrio_start_soon_named(target_nursery(CUR),
                &V.task[N_(CUR->child)->slot], rp_func, prepare(CUR->child),
                names[CUR->child]));
            vm_event(f->task, "n%d", f->st);
        } else if (CUR->kind == RS_START) {
            V.created[CUR->child] = 1;
            f->value = NULL;
            PTRIO_AWAIT(f, ptrio_start_named(f, target_nursery(CUR),
                &V.task[N_(CUR->child)->slot], rp_func, prepare(CUR->child),
                &f->value, names[CUR->child]));
            vm_event(f->task, "t%d:%d", f->st, value_root(f->value));
        } else if (CUR->kind == RS_STARTED) {
            if (ptrio_started(f, frame_of(CUR->child)) != 0)
                vm_bad("ptrio_started [%d] failed", f->st);
            vm_event(f->task, "o%d", f->st);
        } else if (CUR->kind == RS_CALL) {
            PTRIO_CALL(f, rp_func, prepare(CUR->child));
            vm_event(f->task, "l%d:%d", f->st, PTRIO_RESULT(f));
        } else if (CUR->kind == RS_RETURN) {
            vm_event(f->task, "R%d", f->st);
            PTRIO_RETURN(f, f->st);
        }
    }
    if (f->in_fin)
        goto done;
    if (f->lvl == 2)
        goto back1;
    if (f->lvl == 1)
        goto back0;
    goto fin;

back1:
    if (BK(1) == RB_NURSERY) goto back1_n;
    if (BK(1) == RB_SCOPE) goto back1_c;
    if (BK(1) == RB_SHIELD) goto back1_s;
    if (BK(1) == RB_MOVE_AFTER) goto back1_ma;
    if (BK(1) == RB_MOVE_AT) goto back1_mt;
    if (BK(1) == RB_FAIL_AFTER) goto back1_fa;
    if (BK(1) == RB_FAIL_AT) goto back1_ft;
    goto back1_t;
back0:
    if (BK(0) == RB_NURSERY) goto back0_n;
    if (BK(0) == RB_SCOPE) goto back0_c;
    if (BK(0) == RB_SHIELD) goto back0_s;
    if (BK(0) == RB_MOVE_AFTER) goto back0_ma;
    if (BK(0) == RB_MOVE_AT) goto back0_mt;
    if (BK(0) == RB_FAIL_AFTER) goto back0_fa;
    if (BK(0) == RB_FAIL_AT) goto back0_ft;
    goto back0_t;

fin:
    PTRIO_FINALLY(f);
    finally_enter(f);
    f->in_fin = 1;
    f->at = N_(f->self)->fin;
    f->n = N_(f->self)->nfin;
    f->pc = 0;
    goto run;
done:;
    PTRIO_END(f);
}

/* The main task: runs f0, then describes what it raised. */
static int rp_root_fn(ptrio_frame *fr)
{
    struct rp_root *r = PTRIO_SELF(fr, struct rp_root);
    PTRIO_BEGIN(r);
    PTRIO_TRY(r, r->rc, ptrio_call(r, prepare(0), rp_func));
    describe_rc(r->rc, V.r->outcome, RP_DESCCAP);
    if (r->rc >= 0)
        snprintf(V.r->outcome, RP_DESCCAP, "%d", r->rc);
    PTRIO_CHECK(r, r->rc);
    PTRIO_RETURN(r, r->rc);
    PTRIO_END(r);
}

static void h_spawned(void *ctx, const ptrio_task *t)
{
    int id = task_root(t);
    (void)ctx;
    if (id < 0) {
        vm_bad("an unknown task was spawned");
        return;
    }
    if (V.spawned[id]++)
        vm_bad("task f%d spawned twice", id);
    result_log(V.r, id);
}

static void h_scheduled(void *ctx, const ptrio_task *t)
{
    int id = task_root(t);
    (void)ctx;
    if (id < 0 || !V.spawned[id])
        vm_bad("task f%d scheduled but never spawned", id);
    else if (V.exited[id])
        vm_bad("task f%d scheduled after it exited", id);
    /* No program needs this many steps: a livelock. Cancel the run (the
     * loop's system scope: white-box); if even that does not end it,
     * stop the process rather than hang, with the program printed. */
    if (++V.steps == VM_STEP_LIMIT) {
        vm_bad("more than %d task steps: livelock?", VM_STEP_LIMIT);
        ptrio_cancel(&V.loop.system.scope);
    } else if (V.steps > 2 * VM_STEP_LIMIT) {
        fprintf(stderr, "random program %u livelocks ptrio:\n",
                (unsigned)V.p->seed);
        rp_print(V.p, out_stderr, NULL);
        abort();
    }
}

static void h_exited(void *ctx, const ptrio_task *t, int status)
{
    int id = task_root(t);
    char name[32];
    (void)ctx;
    if (id < 0)
        return;
    if (!V.spawned[id])
        vm_bad("task f%d exited but never spawned", id);
    if (V.exited[id]++)
        vm_bad("task f%d exited twice", id);
    status_name(status, name, sizeof name);
    vm_event(id, "E:%s", name);
}

static const ptrio_hooks vm_hooks = {
    .task_spawned = h_spawned,
    .before_task_step = h_scheduled,
    .task_exited = h_exited,
};

static void vm_report(void *ctx, const char *line)
{
    (void)ctx;
    (void)line;
    V.reports++;
}

int rp_run_ptrio(const rp_prog *p, rp_result *out, char *why, size_t cap)
{
    int i, rc;

    if (!names[0][0])
        for (i = 0; i < RP_MAXNODE; i++)
            snprintf(names[i], sizeof names[i], "f%d", i);
    memset(&V, 0, sizeof V);
    V.p = p;
    V.r = out;
    result_init(out);
    for (i = 0; i < p->n; i++)
        if (p->node[i].kind == RP_FUNC)
            V.slot_node[p->node[i].slot] = (int16_t)i;
    ptrio_loop_init(&V.loop);
    if (ptrio_loop_use_backend(&V.loop, &ptrio_backend_virtual) != 0)
        vm_bad("ptrio_loop_use_backend failed");
    ptrio_loop_set_report(&V.loop, vm_report, NULL);
    ptrio_loop_set_hooks(&V.loop, &vm_hooks, NULL);
    rc = ptrio_loop_run_named(&V.loop, rp_root_fn, &V.root, names[0]);
    out->rc = rc;
    if (!out->outcome[0])
        status_name(rc, out->outcome, RP_DESCCAP);

    /* Everything spawned exited once; every frame entered ran FINALLY
     * once; failures were reported, successes were not. */
    for (i = 0; i < p->n; i++) {
        const rp_node *n = &p->node[i];
        if (n->kind != RP_FUNC)
            continue;
        if (V.spawned[i] != V.exited[i])
            vm_bad("task f%d spawned %d times, exited %d times", i,
                   V.spawned[i], V.exited[i]);
        if (V.entered[i] && !V.finals[i])
            vm_bad("f%d was entered but its FINALLY never ran", i);
    }
    if (!V.spawned[0] && rc != -PTRIO_EBUSY)
        vm_bad("the main task never ran (%d)", rc);
    if (rc < 0 && !V.reports)
        vm_bad("the run failed (%d) but reported nothing", rc);
    if (rc >= 0 && V.reports)
        vm_bad("the run succeeded but reported %d lines", V.reports);
    /* Nothing is left in the loop (white-box: these fields are private,
     * but a leftover timer or task is exactly the bug to catch). */
    if (V.loop.runq || V.loop.first || V.loop.timers || V.loop.nlazy ||
        V.loop.ntasks || V.loop.current || V.loop.running)
        vm_bad("left in the loop after the run: runq %p, timers %p, "
               "%u lazy deadlines, %u tasks", (void *)V.loop.runq,
               (void *)V.loop.timers, (unsigned)V.loop.nlazy,
               (unsigned)V.loop.ntasks);
    if (V.bad && why)
        snprintf(why, cap, "%s", V.why);
    return V.bad ? -1 : 0;
}

/* ---- the checker ------------------------------------------------------------ */

void rp_print_result(const rp_prog *p, const rp_result *r, rp_out_fn out,
                     void *ctx)
{
    int i;
    (void)p;
    for (i = 0; i < r->ntask; i++) {
        outf(out, ctx, "  task f%d: ", r->task_root[i]);
        out(ctx, r->log[i]);
        out(ctx, "\n");
    }
    outf(out, ctx, "  rc %d outcome %s%s%s\n", r->rc, r->outcome,
         r->deadlock ? " (deadlock)" : "", r->broken ? " (model limit)" : "");
}

/* The first event where two logs differ, and its class ("X/c": the model
 * expected an X event, ptrio logged a c event). */
static void first_diff(const char *a, const char *b, char *kind, size_t kcap,
                       char *why, size_t wcap, int root)
{
    char ea[96], eb[96], ka[8], kb[8];
    int i = 0;
    for (;;) {
        size_t na = strcspn(a, " "), nb = strcspn(b, " ");
        if (na != nb || strncmp(a, b, na) || !na) {
            snprintf(ea, sizeof ea, "%.*s", (int)(na < 95 ? na : 95), a);
            snprintf(eb, sizeof eb, "%.*s", (int)(nb < 95 ? nb : 95), b);
            break;
        }
        a += na + (a[na] == ' ');
        b += nb + (b[nb] == ' ');
        i++;
    }
    snprintf(ka, sizeof ka, "%.*s", (int)strcspn(ea, "0123456789:@"), ea);
    snprintf(kb, sizeof kb, "%.*s", (int)strcspn(eb, "0123456789:@"), eb);
    snprintf(kind, kcap, "log %s/%s", ka[0] ? ka : "end", kb[0] ? kb : "end");
    snprintf(why, wcap, "task f%d, event %d: model '%s', ptrio '%s'", root, i,
             ea[0] ? ea : "(end)", eb[0] ? eb : "(end)");
}

/* Whether two results agree; if not, says where (when kind is given). */
static int same_result(const rp_result *a, const rp_result *b, char *kind,
                       size_t kcap, char *why, size_t wcap)
{
    int i, j;
    for (i = 0; i < a->ntask; i++) {
        const char *lb = NULL;
        for (j = 0; j < b->ntask; j++)
            if (b->task_root[j] == a->task_root[i])
                lb = b->log[j];
        if (!lb)
            lb = "";
        if (strcmp(a->log[i], lb)) {
            if (kind)
                first_diff(a->log[i], lb, kind, kcap, why, wcap,
                           a->task_root[i]);
            return 0;
        }
    }
    for (j = 0; j < b->ntask; j++) {
        int found = 0;
        for (i = 0; i < a->ntask; i++)
            found |= a->task_root[i] == b->task_root[j];
        if (!found) {
            if (kind) {
                snprintf(kind, kcap, "log extra task");
                snprintf(why, wcap, "task f%d ran only on ptrio: %s",
                         b->task_root[j], b->log[j]);
            }
            return 0;
        }
    }
    if (a->rc != b->rc) {
        if (kind) {
            char na[16], nb[16];
            status_name(a->rc, na, sizeof na);
            status_name(b->rc, nb, sizeof nb);
            snprintf(kind, kcap, "rc %s/%s", na, nb);
            snprintf(why, wcap, "the run returned %d, the model says %d",
                     b->rc, a->rc);
        }
        return 0;
    }
    if (strcmp(a->outcome, b->outcome)) {
        if (kind) {
            snprintf(kind, kcap, "outcome record");
            snprintf(why, wcap, "the run's failure is '%s', the model says '%s'",
                     b->outcome, a->outcome);
        }
        return 0;
    }
    return 1;
}

/* Schedule k: 0 is ptrio's (FIFO, a cancelled checkpoint fails at once),
 * 1 is Trio's (two yields before Cancelled), the rest are shuffled. */
static void schedule(int k, rp_sched *s)
{
    uint64_t x = (uint64_t)k * 0x2545F4914F6CDD1Dull;
    memset(s, 0, sizeof *s);
    s->seed = (uint64_t)k;
    switch (k) {
    case 0:
        s->precheck = 1;
        s->eager = 1;
        return;
    case 1:
        s->extra = 1;
        return;
    case 2:
        s->batch = 1;
        s->wake = 1;
        s->precheck = 1;
        return;
    default:
        s->batch = 2;
        s->wake = 2;
        s->precheck = (uint8_t)(splitmix(&x) & 1);
        s->extra = (uint8_t)(splitmix(&x) % 3);
        s->eager = (uint8_t)(splitmix(&x) & 1);
        s->nexit = (uint8_t)(splitmix(&x) & 1);
        return;
    }
}

static rp_result R_model, R_other, R_ptrio;

int rp_check(const rp_prog *p, int schedules, rp_verdict *v)
{
    rp_sched s;
    int k, inv;

    memset(v, 0, sizeof *v);
    v->ok = 1;
    schedule(0, &s);
    rp_model(p, &s, &R_model);
    if (R_model.broken) {
        snprintf(v->kind, sizeof v->kind, "model limit");
        return 1;
    }
    v->deadlock = R_model.deadlock;
    for (k = 1; k < schedules && !v->racy; k++) {
        schedule(k, &s);
        rp_model(p, &s, &R_other);
        if (R_other.broken || !same_result(&R_model, &R_other, NULL, 0, NULL, 0))
            v->racy = 1;
    }

    inv = rp_run_ptrio(p, &R_ptrio, v->why, sizeof v->why);
    if (inv < 0) {
        v->ok = 0;
        snprintf(v->kind, sizeof v->kind, "invariant");
        return 0;
    }
    if (v->racy)
        return 1;       /* the outcome depends on the schedule */
    /* A deadlock is compared like the rest: ptrio documents what it does
     * then (the model's deadlock step), the model predicts it. */
    if (same_result(&R_model, &R_ptrio, v->kind, sizeof v->kind, v->why,
                    sizeof v->why))
        return 1;
    /* Before blaming ptrio, make sure no other schedule gives ptrio's
     * result or any other one. */
    for (k = schedules; k < schedules + 48; k++) {
        schedule(k, &s);
        rp_model(p, &s, &R_other);
        if (R_other.broken ||
            !same_result(&R_model, &R_other, NULL, 0, NULL, 0)) {
            v->racy = 1;
            v->kind[0] = v->why[0] = '\0';
            return 1;
        }
    }
    v->ok = 0;
    return 0;
}

int rp_count_outcomes(const rp_prog *p, int schedules)
{
    rp_sched s;
    int k, distinct = 1;
    schedule(0, &s);
    rp_model(p, &s, &R_model);
    for (k = 1; k < schedules; k++) {
        schedule(k, &s);
        rp_model(p, &s, &R_other);
        if (!same_result(&R_model, &R_other, NULL, 0, NULL, 0)) {
            distinct++;
            R_ptrio = R_other;
        }
    }
    return distinct;
}

const rp_result *rp_last_model(void) { return &R_model; }
const rp_result *rp_last_ptrio(void) { return &R_ptrio; }

/* ---- minimizing a failing program ------------------------------------------
 *
 * Greedy delta debugging over the tree: drop statements, inner blocks,
 * FINALLY lists, and round durations, keeping each change while the
 * program still fails the same way (same class and message, up to
 * numbers). Unreachable nodes stay in the array, unused.
 */

static void shape(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    for (; *s && n + 1 < cap; s++)
        if (*s < '0' || *s > '9')
            out[n++] = *s;
    out[n] = '\0';
}

static int same_failure(const rp_prog *p, const rp_verdict *want)
{
    rp_verdict v;
    char a[256], b[256];
    if (rp_check(p, 6, &v) || strcmp(v.kind, want->kind))
        return 0;
    shape(want->why, a, sizeof a);
    shape(v.why, b, sizeof b);
    return !strcmp(a, b);
}

static int try_change(rp_prog *p, const rp_prog *before, const rp_verdict *want)
{
    if (same_failure(p, want))
        return 1;
    *p = *before;
    return 0;
}

int rp_minimize(rp_prog *p, const rp_verdict *want)
{
    static rp_prog before;
    int changed = 1, rounds = 0, i, k;

    while (changed && rounds++ < 40) {
        changed = 0;
        for (i = 0; i < p->n; i++) {
            rp_node *n = &p->node[i];
            if (n->kind != RP_FUNC)
                continue;
            /* drop one statement of the body or FINALLY */
            for (k = 0; k < n->nbody + n->nfin; k++) {
                int fin = k >= n->nbody, at = fin ? n->fin : n->body;
                int j = fin ? k - n->nbody : k, cnt = fin ? n->nfin : n->nbody;
                before = *p;
                memmove(&p->list[at + j], &p->list[at + j + 1],
                        sizeof p->list[0] * (size_t)(cnt - j - 1));
                if (fin)
                    p->node[i].nfin--;
                else
                    p->node[i].nbody--;
                if (try_change(p, &before, want)) {
                    changed = 1;
                    k--;
                }
                n = &p->node[i];
            }
            /* drop the inner block, or the FINALLY */
            before = *p;
            if (n->nblk) {
                n->nblk--;
                if (try_change(p, &before, want))
                    changed = 1;
            }
            before = *p;
            n = &p->node[i];
            if (n->nfin) {
                n->nfin = 0;
                if (try_change(p, &before, want))
                    changed = 1;
            }
            /* a function that only calls another becomes that one */
            n = &p->node[i];
            if (!n->nblk && !n->nfin && n->nbody == 1 &&
                p->node[p->list[n->body]].kind == RS_CALL) {
                const rp_node *g = &p->node[p->node[p->list[n->body]].child];
                before = *p;
                n->nblk = g->nblk;
                memcpy(n->blk, g->blk, sizeof n->blk);
                memcpy(n->barg, g->barg, sizeof n->barg);
                n->body = g->body;
                n->nbody = g->nbody;
                n->fin = g->fin;
                n->nfin = g->nfin;
                if (try_change(p, &before, want))
                    changed = 1;
            }
            /* plainer blocks */
            for (k = 0; k < p->node[i].nblk; k++) {
                if (p->node[i].blk[k] == RB_SCOPE ||
                    p->node[i].blk[k] == RB_NURSERY)
                    continue;
                before = *p;
                p->node[i].blk[k] = RB_SCOPE;
                if (try_change(p, &before, want))
                    changed = 1;
            }
        }
        /* round durations */
        for (i = 0; i < p->n; i++) {
            rp_node *n = &p->node[i];
            int32_t *args[3];
            int na = 0;
            if (n->kind == RS_SLEEP && !n->sub)
                args[na++] = &n->arg;
            if (n->kind == RS_DEADLINE && n->sub != 2)
                args[na++] = &n->arg;
            if (n->kind == RP_FUNC) {
                args[na++] = &n->barg[0];
                args[na++] = &n->barg[1];
            }
            for (k = 0; k < na; k++) {
                int32_t v = *args[k], r;
                if (v == 0 || v % 10 == 0)
                    continue;
                r = v / 10 * 10;
                before = *p;
                *args[k] = r ? r : (v > 0 ? 10 : -10);
                if (try_change(p, &before, want))
                    changed = 1;
            }
        }
    }
    return p->n;
}

/* ---- reading the readable form back -----------------------------------------
 *
 * rp_parse reads what rp_print writes (its node numbers are the program's),
 * so a program can be written or edited by hand: the suite's known
 * programs, check_random --file. One construct per line; indentation is
 * ignored.
 */

typedef struct parser {
    const char *s;
    int line;
    rp_prog *p;
    char *err;
    size_t cap;
    int bad;
    int used[RP_MAXNODE];
} parser;

static void perr(parser *ps, const char *what)
{
    if (!ps->bad++)
        snprintf(ps->err, ps->cap, "line %d: %s", ps->line, what);
}

/* The next non-empty line, trimmed, into buf; 0 at the end. */
static int next_line(parser *ps, char *buf, size_t cap, int consume)
{
    const char *s = ps->s;
    int line = ps->line;
    for (;;) {
        const char *e;
        size_t n;
        if (!*s)
            return 0;
        e = strchr(s, '\n');
        n = e ? (size_t)(e - s) : strlen(s);
        line++;
        while (n && (*s == ' ' || *s == '\t')) {
            s++;
            n--;
        }
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\r'))
            n--;
        if (n && strncmp(s, "program ", 8)) {
            if (n >= cap)
                n = cap - 1;
            memcpy(buf, s, n);
            buf[n] = '\0';
            if (consume) {
                ps->s = e ? e + 1 : s + strlen(s);
                ps->line = line;
            }
            return 1;
        }
        s = e ? e + 1 : s + n;
    }
}

static rp_node *pnode(parser *ps, int id, int kind)
{
    rp_node *n;
    if (id < 0 || id >= RP_MAXNODE) {
        perr(ps, "node number out of range");
        return NULL;
    }
    if (ps->used[id]++) {
        perr(ps, "node number used twice");
        return NULL;
    }
    n = &ps->p->node[id];
    memset(n, 0, sizeof *n);
    n->kind = (uint8_t)kind;
    n->target = n->child = n->parent = n->task = -1;
    if (id >= ps->p->n)
        ps->p->n = id + 1;
    return n;
}

static int parse_func(parser *ps, int parent, int task, int role);

static int parse_target(parser *ps, const char *s, rp_node *n)
{
    int f, l;
    if (sscanf(s, "f%d.%d", &f, &l) != 2 || l < 0 || l > 1) {
        perr(ps, "expected a block fN.L");
        return -1;
    }
    n->target = (int16_t)f;
    n->lvl = (uint8_t)l;
    return 0;
}

static int parse_list(parser *ps, int f, uint16_t *at, uint16_t *count)
{
    int16_t items[16];
    char b[160], *s;
    int n = 0, id, v, k;

    while (!ps->bad && next_line(ps, b, sizeof b, 0) && b[0] == '[') {
        rp_node *st;
        next_line(ps, b, sizeof b, 1);
        if (sscanf(b, "[%d]%n", &id, &k) != 1) {
            perr(ps, "expected [N] statement");
            break;
        }
        s = b + k;
        while (*s == ' ')
            s++;
        if (!strncmp(s, "sleep_forever", 13)) {
            st = pnode(ps, id, RS_SLEEP);
            if (st) {
                st->sub = 1;
                st->arg = RP_FOREVER;
            }
        } else if (sscanf(s, "sleep %d", &v) == 1) {
            if ((st = pnode(ps, id, RS_SLEEP)))
                st->arg = v;
        } else if (!strncmp(s, "checkpoint", 10)) {
            st = pnode(ps, id, RS_CKPT);
        } else if (!strncmp(s, "yield", 5)) {
            st = pnode(ps, id, RS_YIELD);
        } else if (!strncmp(s, "raise ", 6)) {
            int code, m;
            if (sscanf(s, "raise %d \"m%d\"", &code, &m) != 2 || m < 0 ||
                m > 7) {
                perr(ps, "expected raise CODE \"mK\" (K 0..7)");
                break;
            }
            if ((st = pnode(ps, id, RS_RAISE))) {
                st->arg = code;
                st->sub = (uint8_t)m;
            }
        } else if (!strncmp(s, "cancel ", 7)) {
            if ((st = pnode(ps, id, RS_CANCEL)))
                parse_target(ps, s + 7, st);
        } else if (!strncmp(s, "deadline ", 9) || !strncmp(s, "timeout ", 8)) {
            const char *eq = strchr(s, '=');
            if (!eq || !(st = pnode(ps, id, RS_DEADLINE))) {
                perr(ps, "expected deadline fN.L = now+D | inf");
                break;
            }
            parse_target(ps, strchr(s, ' ') + 1, st);
            eq++;
            while (*eq == ' ')
                eq++;
            if (s[0] == 't') {
                st->sub = 1;
                st->arg = atoi(eq);
            } else if (!strncmp(eq, "inf", 3)) {
                st->sub = 2;
            } else if (!strncmp(eq, "now", 3)) {
                st->arg = atoi(eq + 3);
            } else {
                perr(ps, "expected now+D or inf");
            }
        } else if (!strncmp(s, "shield ", 7)) {
            const char *eq = strchr(s, '=');
            if ((st = pnode(ps, id, RS_SHIELD))) {
                parse_target(ps, s + 7, st);
                st->arg = eq && atoi(eq + 1) ? 1 : 0;
            }
        } else if (!strncmp(s, "start_soon into ", 16) ||
                   !strncmp(s, "start into ", 11)) {
            int soon = s[5] == '_';
            if ((st = pnode(ps, id, soon ? RS_SPAWN : RS_START))) {
                parse_target(ps, s + (soon ? 16 : 11), st);
                st->child = (int16_t)parse_func(ps, f, -1,
                                                soon ? RF_SPAWN : RF_START);
                st = &ps->p->node[id];
            }
        } else if (sscanf(s, "started(%d)", &v) == 1) {
            if ((st = pnode(ps, id, RS_STARTED)))
                st->child = (int16_t)v;
        } else if (!strncmp(s, "call", 4)) {
            if (pnode(ps, id, RS_CALL))
                ps->p->node[id].child = (int16_t)parse_func(
                    ps, f, ps->p->node[f].task, RF_CALL);
        } else if (!strncmp(s, "return", 6)) {
            pnode(ps, id, RS_RETURN);
        } else {
            perr(ps, "unknown statement");
        }
        if (n < COUNT(items))
            items[n++] = (int16_t)id;
        else
            perr(ps, "more than 16 statements in a list");
    }
    if (ps->p->nlist + n > RP_MAXLIST) {
        perr(ps, "too many statements");
        return -1;
    }
    *at = (uint16_t)ps->p->nlist;
    *count = (uint16_t)n;
    for (k = 0; k < n; k++)
        ps->p->list[ps->p->nlist++] = items[k];
    return 0;
}

static int parse_block(parser *ps, int f, const char *s)
{
    static const struct { const char *name; int kind; } kinds[] = {
        {"nursery", RB_NURSERY}, {"cancel_scope", RB_SCOPE},
        {"shield", RB_SHIELD}, {"move_on_after", RB_MOVE_AFTER},
        {"move_on_at(now+)", RB_MOVE_AT}, {"fail_after", RB_FAIL_AFTER},
        {"fail_at(now+)", RB_FAIL_AT}, {"try", RB_TRY},
    };
    rp_node *fn = &ps->p->node[f];
    int ff, l, k;
    char name[32];
    if (sscanf(s, "f%d.%d %31s", &ff, &l, name) != 3 || ff != f ||
        l != fn->nblk || l > 1) {
        perr(ps, "expected block fN.L KIND (L the next level, at most 1)");
        return -1;
    }
    for (k = 0; k < COUNT(kinds); k++)
        if (!strcmp(name, kinds[k].name))
            break;
    if (k == COUNT(kinds)) {
        perr(ps, "unknown block kind");
        return -1;
    }
    fn->blk[l] = (uint8_t)kinds[k].kind;
    if (kinds[k].kind >= RB_MOVE_AFTER && kinds[k].kind <= RB_FAIL_AT) {
        const char *a = strstr(s, name) + strlen(name);
        fn->barg[l] = atoi(a);
    }
    fn->nblk++;
    return 0;
}

static int parse_func(parser *ps, int parent, int task, int role)
{
    char b[160];
    int f, l;
    rp_node *fn;

    if (!next_line(ps, b, sizeof b, 1) || sscanf(b, "f%d (", &f) != 1 ||
        !strchr(b, '{')) {
        perr(ps, "expected fN (role) {");
        return -1;
    }
    if (!(fn = pnode(ps, f, RP_FUNC)))
        return -1;
    fn->role = (uint8_t)role;
    fn->parent = (int16_t)parent;
    fn->task = (int16_t)(task < 0 ? f : task);
    fn->slot = (uint8_t)ps->p->nfunc++;
    while (!ps->bad && next_line(ps, b, sizeof b, 0) && b[0] == 'f') {
        next_line(ps, b, sizeof b, 1);
        parse_block(ps, f, b);
    }
    parse_list(ps, f, &ps->p->node[f].body, &ps->p->node[f].nbody);
    for (l = 0; l < ps->p->node[f].nblk && !ps->bad; l++)
        if (!next_line(ps, b, sizeof b, 1) || strcmp(b, "}"))
            perr(ps, "expected } closing a block");
    if (ps->bad || !next_line(ps, b, sizeof b, 1))
        return -1;
    if (!strcmp(b, "} finally {")) {
        parse_list(ps, f, &ps->p->node[f].fin, &ps->p->node[f].nfin);
        if (!next_line(ps, b, sizeof b, 1) || strcmp(b, "}"))
            perr(ps, "expected } closing finally");
    } else if (strcmp(b, "}")) {
        perr(ps, "expected } or } finally {");
    }
    return f;
}

int rp_parse(const char *text, rp_prog *p, char *err, size_t cap)
{
    static parser ps;
    char b[32];
    int i;

    memset(&ps, 0, sizeof ps);
    memset(p, 0, sizeof *p);
    ps.s = text;
    ps.p = p;
    ps.err = err;
    ps.cap = cap;
    if (err && cap)
        err[0] = '\0';
    if (parse_func(&ps, -1, -1, RF_MAIN) != 0 && !ps.bad)
        perr(&ps, "the program must start with f0 (main)");
    if (!ps.bad && next_line(&ps, b, sizeof b, 0))
        perr(&ps, "text after the program");
    /* Unused numbers stay as idle checkpoints, never reached. */
    for (i = 0; i < p->n; i++)
        if (!ps.used[i]) {
            memset(&p->node[i], 0, sizeof p->node[i]);
            p->node[i].kind = RS_CKPT;
            p->node[i].target = p->node[i].child = -1;
        }
    /* Targets must name blocks that exist, spawns nurseries. */
    for (i = 0; i < p->n && !ps.bad; i++) {
        const rp_node *n = &p->node[i];
        const rp_node *t = n->target >= 0 && n->target < p->n
                               ? &p->node[n->target] : NULL;
        if (n->kind != RS_CANCEL && n->kind != RS_DEADLINE &&
            n->kind != RS_SHIELD && n->kind != RS_SPAWN && n->kind != RS_START)
            continue;
        if (!t || t->kind != RP_FUNC || n->lvl >= t->nblk ||
            t->blk[n->lvl] == RB_TRY ||
            ((n->kind == RS_SPAWN || n->kind == RS_START) &&
             t->blk[n->lvl] != RB_NURSERY)) {
            ps.line = 0;
            perr(&ps, "a statement targets a block that is not there");
        }
    }
    return ps.bad ? -1 : 0;
}
