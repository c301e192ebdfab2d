/* tests/randprog.h: random structured-concurrency programs, run on ptrio
 * and on a reference model of Trio's semantics, and compared.
 *
 * A program is a tree of functions. A function may open up to two nested
 * blocks (nursery, cancel scope, shield, move_on/fail_after/at, try) around
 * a list of statements, and has a FINALLY list. Statements sleep (0, short,
 * long, forever), checkpoint, yield, raise, cancel a scope (anyone's), move
 * a deadline, toggle a shield, start_soon or start a child (into any
 * nursery the task lives under), call ptrio_started, call a function, or
 * return. Every function node runs at most once, so everything it needs
 * has a fixed slot in static pools: no malloc.
 *
 * rp_check() runs a program on ptrio and on a model, and compares:
 *   - on ptrio, interpreted by one coroutine under the virtual clock, with
 *     instrument hooks checking that every spawned task exits exactly once,
 *     that no nursery is left with a live child, that every FINALLY runs
 *     once, that a sleep that returns woke exactly at its deadline, and that
 *     nothing is left in the loop afterwards;
 *   - on the model: a direct simulation of current Trio (git main) with
 *     ptrio's documented group rule (one failure raised as itself, several
 *     as a group, like strict_exception_groups=False), under several
 *     schedules (batch order, wake order, extra yields): when they all
 *     agree, the program is race-free and its per-task event logs and the
 *     run's outcome are predicted exactly;
 *   - the two must agree on every task's event log (with virtual times),
 *     on the run's return code and on the records of the failures caught
 *     (TRY blocks) and returned (the run's outcome).
 * The model itself is checked against Trio (tests/trio_diff.py).
 *
 * Portable: C99 (stdio for text, qsort) and Check, no POSIX, so that it
 * can run on a target.
 */
#ifndef PTRIO_RANDPROG_H
#define PTRIO_RANDPROG_H

#include <stddef.h>
#include <stdint.h>

#define RP_MAXNODE 200      /* nodes of one program */
#define RP_MAXLIST 400      /* statement slots of one program */
#define RP_MAXFUNC 64       /* function nodes of one program */
#define RP_MAXTASK 24       /* task roots (main, spawned, started) */
#define RP_FOREVER INT32_MAX

/* Node kinds: a function, or a statement. */
enum {
    RP_FUNC,
    RS_SLEEP,       /* arg: ms (0: a checkpoint); sub 1: forever */
    RS_CKPT,        /* ptrio_checkpoint / trio.lowlevel.checkpoint */
    RS_YIELD,       /* ptrio_yield / cancel_shielded_checkpoint */
    RS_RAISE,       /* arg: code (raised negated); sub: message slot */
    RS_CANCEL,      /* target */
    RS_DEADLINE,    /* target; sub 0: now + arg, 1: timeout arg, 2: none */
    RS_SHIELD,      /* target; arg: 0 or 1 */
    RS_SPAWN,       /* target nursery; child function, a new task */
    RS_START,       /* target nursery; child function, a new task */
    RS_STARTED,     /* child: the task root (the value passed) */
    RS_CALL,        /* child function, same task */
    RS_RETURN,      /* returns its own node index */
    RP_NKINDS
};

/* Block kinds of a function (up to two, nested: blk[0] outside). */
enum {
    RB_NONE,
    RB_NURSERY,
    RB_SCOPE,
    RB_SHIELD,
    RB_MOVE_AFTER,  /* barg: ms */
    RB_MOVE_AT,     /* barg: ms relative to entry, may be negative */
    RB_FAIL_AFTER,
    RB_FAIL_AT,
    RB_TRY,
    RB_NKINDS
};

/* Function roles. */
enum { RF_MAIN, RF_SPAWN, RF_START, RF_CALL };

typedef struct rp_node {
    uint8_t kind;
    uint8_t sub;
    uint8_t role;           /* FUNC */
    uint8_t nblk;           /* FUNC: 0..2 */
    uint8_t blk[2];         /* FUNC: RB_* */
    uint8_t lvl;            /* target block level */
    uint8_t slot;           /* FUNC: index in the frame pools */
    int16_t target;         /* target function (its block `lvl`), or -1 */
    int16_t child;          /* SPAWN/START/CALL: function; STARTED: root */
    int16_t parent;         /* FUNC: the function whose statement runs it */
    int16_t task;           /* FUNC: root of the task it runs in */
    int32_t arg;
    int32_t barg[2];        /* FUNC: block parameters */
    uint16_t body, nbody;   /* FUNC: statements in prog.list */
    uint16_t fin, nfin;
} rp_node;

typedef struct rp_prog {
    uint32_t seed;
    int n, nlist, nfunc;
    rp_node node[RP_MAXNODE];
    int16_t list[RP_MAXLIST];
} rp_prog;

/* The random source: a seeded PRNG, or a fuzzer's bytes (zeros after the
 * end), so that libFuzzer's mutations steer the generator. */
typedef struct rp_src {
    uint64_t state;
    const uint8_t *data;
    size_t len, pos;
} rp_src;

void rp_src_seed(rp_src *s, uint64_t seed);
void rp_src_bytes(rp_src *s, const uint8_t *data, size_t len);

/* Builds a program from the source. */
void rp_generate(rp_prog *p, rp_src *src);

/* The program for a seed (the suite's programs, replayable). */
void rp_generate_seed(rp_prog *p, uint32_t seed);

/* A text sink: the tester prints through it (stdout in the suite). */
typedef void (*rp_out_fn)(void *ctx, const char *s);

/* Writes the program in readable form. */
void rp_print(const rp_prog *p, rp_out_fn out, void *ctx);

/* Reads the readable form back (node numbers as printed). Returns 0, or
 * -1 with `err` saying which line is wrong. The program's seed is 0. */
int rp_parse(const char *text, rp_prog *p, char *err, size_t cap);

/* Writes the equivalent Trio program as a Python function `prog_<seed>()`
 * returning (logs, outcome); rp_emit_python_prelude writes the helpers it
 * needs, once per file. */
void rp_emit_python_prelude(rp_out_fn out, void *ctx);
void rp_emit_python(const rp_prog *p, rp_out_fn out, void *ctx);

/* What a run produced: per-task event logs "<ev>@<ms> ...", the return
 * code of the run, and the record of its failure ("0" on success). */
#ifndef RP_LOGCAP
#define RP_LOGCAP 3072      /* per task: -DRP_LOGCAP=... on small targets */
#endif
#define RP_DESCCAP 256
typedef struct rp_result {
    int rc;
    char outcome[RP_DESCCAP];
    char log[RP_MAXTASK][RP_LOGCAP];
    int16_t task_root[RP_MAXTASK];  /* the function each log belongs to */
    int ntask;
    int deadlock;                   /* model: every task blocked forever */
    int broken;                     /* model: a limit was hit */
} rp_result;

/* A schedule for the model: orders and yield counts that Trio (and ptrio)
 * are free to choose. */
typedef struct rp_sched {
    uint8_t batch;          /* run order of a batch: 0 FIFO, 1 LIFO, 2 shuffled */
    uint8_t wake;           /* order cancellation wakes tasks: same */
    uint8_t precheck;       /* a cancelled checkpoint or sleep fails at once */
    uint8_t extra;          /* extra yields before a checkpoint raises */
    uint8_t eager;          /* a deadline set in the past cancels at once */
    uint8_t nexit;          /* an empty nursery's exit does not yield */
    uint64_t seed;
} rp_sched;

/* Runs the model under `s`. */
void rp_model(const rp_prog *p, const rp_sched *s, rp_result *out);

/* Runs the program on ptrio. Returns 0, or -1 with `why` filled when an
 * invariant broke (a task exiting twice, a nursery closing before its
 * child, a sleep waking at the wrong time, something left in the loop). */
int rp_run_ptrio(const rp_prog *p, rp_result *out, char *why, size_t cap);

/* The verdict of rp_check. */
typedef struct rp_verdict {
    int ok;
    int racy;               /* the model's schedules disagree */
    int deadlock;
    char kind[64];          /* a short class of the failure */
    char why[1024];         /* what differs */
} rp_verdict;

/* Runs the program on ptrio and on the model and compares. Returns 1 when
 * everything agrees. `schedules` model runs (at least 2) decide whether
 * the program is race-free. */
int rp_check(const rp_prog *p, int schedules, rp_verdict *v);

/* Shrinks a failing program while it fails the same way (`want`).
 * Returns its node count. */
int rp_minimize(rp_prog *p, const rp_verdict *want);

/* Runs the model under `schedules` schedules; returns how many of them
 * disagree with the first, plus one (1: race-free as far as seen). */
int rp_count_outcomes(const rp_prog *p, int schedules);

/* The model's and ptrio's results of the last rp_check. */
const rp_result *rp_last_model(void);
const rp_result *rp_last_ptrio(void);

/* Writes a result ("task f<N>: log" lines, then "rc" and "outcome"). */
void rp_print_result(const rp_prog *p, const rp_result *r, rp_out_fn out,
                     void *ctx);

#endif /* PTRIO_RANDPROG_H */
