/* ptrio/coro.h: stackless coroutines.
 *
 * A coroutine is a step function over a frame struct whose first member is
 * a ptrio_frame named `fr`. Everything that must survive an await lives in
 * that struct; C locals do not survive an await.
 *
 *     struct child { ptrio_frame fr; int secs; };
 *
 *     static int child(ptrio_frame *fr)
 *     {
 *         struct child *c = PTRIO_SELF(fr, struct child);
 *         PTRIO_BEGIN(c);
 *         PTRIO_AWAIT(c, ptrio_sleep(c, PTRIO_SEC(c->secs)));
 *         PTRIO_END(c);
 *     }
 *
 * Resume points are `case __LINE__` labels of one switch (portable C99), or
 * label addresses when built with PTRIO_COMPUTED_GOTO (GCC/Clang), which
 * lifts the one restriction of the switch form: no await inside a switch
 * statement of your own (ptrio notices one at run time: -PTRIO_EMISUSE). In
 * both forms: one await or block per line, and no C `return` inside the
 * body (use PTRIO_RETURN; a C return inside a block still closes the block,
 * then fails the frame with -PTRIO_EMISUSE). The headers compile as C++.
 */
#ifndef PTRIO_CORO_H
#define PTRIO_CORO_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Returned by a step or an awaitable: "suspended, resume me later". Never
 * an error: raising or returning it is misuse (-PTRIO_EMISUSE). */
#define PTRIO_PENDING INT_MIN

/* Error codes are the negative values from PTRIO_ERRMIN to -1; the few
 * values below are ptrio's own markers and never errors. */
#define PTRIO_ERRMIN (INT_MIN + 16)

typedef struct ptrio_frame ptrio_frame;

/* A coroutine's step function. Returns PTRIO_PENDING, or its final status:
 * a non-negative value on success, a negative error code on failure. */
typedef int (*ptrio_fn)(ptrio_frame *fr);

/* The header of every frame. Zero it before first use (static storage,
 * `= {0}` or a compound literal); ptrio keeps it consistent afterwards.
 * Never zero or reassign a frame while it runs: ptrio_start_soon and
 * ptrio_call refuse a running frame (-PTRIO_EBUSY), and a task whose frame
 * was re-initialised under it fails with -PTRIO_EMISUSE. */
struct ptrio_frame {
    ptrio_fn fn;          /* step function */
    ptrio_frame *caller;  /* frame awaiting this one; a task's root frame
                             holds its task instead, tagged (internal) */
    uintptr_t resume;     /* resume point; 0 while the frame is idle */
    int result;           /* status of the last await */
    int pending;          /* error or return value carried into FINALLY */
    const void *origin;   /* where the error in `pending` came from */
#ifdef PTRIO_COMPUTED_GOTO
    int line;             /* source line of `resume` (a label address) */
#endif
};

/* Where an error was raised: kept in static storage, never allocated. */
typedef struct ptrio_site {
    const char *file;
    int line;
    const char *msg;      /* PTRIO_RAISE's message, or NULL */
} ptrio_site;

/* The frame struct that embeds `fr` as its first member. */
#define PTRIO_SELF(fr, type) ((type *)(void *)(fr))

/* ---- internals the macros expand to (not API) ---------------------- */



/* Resume points besides the awaits' lines (or label addresses): lines 1
 * to 6 of a file cannot hold an await (PTRIO__LABEL refuses to compile
 * one there), and no label lives at such an address, so one compare tells
 * them apart. 0 and DONE are idle frames:
 * never run (or ended without END), and ended through END. */
#define PTRIO__DONE     ((uintptr_t)1)        /* ended through PTRIO_END */
#define PTRIO__START    ((uintptr_t)2)        /* first step */
#define PTRIO__END      ((uintptr_t)3)        /* straight to the end */
#define PTRIO__FINALLY  ((uintptr_t)4)        /* the FINALLY section */
#define PTRIO__DESCRIBE ((uintptr_t)5)        /* say where you are: file, func */
#define PTRIO__BODY     ((uintptr_t)6)        /* in the first step's body: a
                                                 C return there is seen (a
                                                 step by hand stays START) */
#define PTRIO__SPECIAL  ((uintptr_t)7)        /* values below are not labels */

/* Whether a frame runs no step now: never started, or finished. A frame
 * that is not idle must not be re-initialised (set its fields instead).
 * Public API, though it sits among the internals (it uses their values). */
static inline int ptrio_frame_idle(const void *frame)
{
    return ((const ptrio_frame *)frame)->resume <= PTRIO__DONE;
}
#define PTRIO__IN_BODY (INT_MIN + 3)          /* fr->pending before FINALLY */

uintptr_t ptrio__raise(ptrio_frame *fr, int rc, const ptrio_site *site);
uintptr_t ptrio__raise_new(ptrio_frame *fr, int rc, const ptrio_site *site);
uintptr_t ptrio__reraise(ptrio_frame *fr, int rc, const ptrio_site *site);
uintptr_t ptrio__return(ptrio_frame *fr, int value, const ptrio_site *site);
uintptr_t ptrio__stray(ptrio_frame *fr);
int ptrio__describe(const char *file, const char *func);
int ptrio__caught(int rc);

/* Debug builds note the user's file:line at every macro, so that a misuse
 * trap names the line that misused ptrio. */
void ptrio__at(const char *file, int line);
#ifdef PTRIO_DEBUG
#define PTRIO__WHERE() ptrio__at(__FILE__, __LINE__)
#else
#define PTRIO__WHERE() ((void)0)
#endif

/* PTRIO_END: the frame is done; resume DONE tells the scheduler it ended
 * through END (not by a C return), and that it can describe itself. */
static inline int ptrio__end(ptrio_frame *fr)
{
    fr->resume = PTRIO__DONE;
    return fr->pending == PTRIO__IN_BODY ? 0 : fr->pending;
}

#define PTRIO__CAT2(a, b) a##b
#define PTRIO__CAT(a, b) PTRIO__CAT2(a, b)

/* PTRIO_NODISCARD (public): marks an awaitable, whose result must not be
 * dropped (PTRIO_PENDING must reach the scheduler); GCC and Clang warn.
 * Mark your own awaitables with it too. */
#if defined(__GNUC__) || defined(__clang__)
#define PTRIO__FALLTHROUGH __attribute__((__fallthrough__))
#define PTRIO_NODISCARD __attribute__((__warn_unused_result__))
#else
#define PTRIO__FALLTHROUGH ((void)0)
#define PTRIO_NODISCARD
#endif

#ifdef PTRIO_COMPUTED_GOTO
#define PTRIO__POINT(n) (__extension__(uintptr_t) && PTRIO__CAT(ptrio__L, n))
#define PTRIO__LABEL(n) PTRIO__CAT(ptrio__L, n)
#define PTRIO__SET_LINE(n) (ptrio__fr->line = (n))
/* (void)&&: clang wants a label address in any function with goto *.
 * Resume point 0 (a frame zeroed under its task) is never jumped to: the
 * switch sends it to END's misuse case. */
#define PTRIO__JUMP_TO_LABEL()                                              \
    (void)(__extension__ && ptrio__dispatch);                               \
    _Pragma("GCC diagnostic push")                                          \
    _Pragma("GCC diagnostic ignored \"-Wpedantic\"")                        \
    if (ptrio__fr->resume >= PTRIO__SPECIAL)                                \
        goto *(void *)ptrio__fr->resume;                                    \
    _Pragma("GCC diagnostic pop")
#else
#define PTRIO__POINT(n) ((uintptr_t)(n))
/* An await's `case __LINE__`. On lines 1 to 6 of a file, whose numbers
 * are the special resume points, it does not compile ("size of array is
 * negative"): there it would re-enter the body. */
#define PTRIO__LABEL(n)                                                     \
    case (n) + 0 * (int)sizeof(char[(n) >= (int)PTRIO__SPECIAL ? 1 : -1])
#define PTRIO__SET_LINE(n) ((void)0)
#define PTRIO__JUMP_TO_LABEL()
#endif

/* Re-enter the dispatch at the point `raise` chose. */
#define PTRIO__GO(point)                                                    \
    do {                                                                    \
        ptrio__fr->resume = (point);                                        \
        goto ptrio__dispatch;                                               \
    } while (0)

#define PTRIO__RAISE_RC(rc)                                                 \
    do {                                                                    \
        static const ptrio_site ptrio__site = {__FILE__, __LINE__, NULL};   \
        PTRIO__GO(ptrio__raise(ptrio__fr, (rc), &ptrio__site));             \
    } while (0)

/* ---- the coroutine body ------------------------------------------- */

/* Opens the body of a step function; `f` is the frame struct pointer.
 * Code before it runs at every step of the frame, and when ptrio asks the
 * frame where it is (dumps, reports): keep it free of side effects. */
#define PTRIO_BEGIN(f)                                                      \
    ptrio_frame *const ptrio__fr = &(f)->fr;                                \
    ptrio__dispatch:                                                        \
    PTRIO__JUMP_TO_LABEL()                                                  \
    switch (ptrio__fr->resume) {                                            \
    case PTRIO__START:                                                      \
        ptrio__fr->resume = PTRIO__BODY

/* The one-line prologue of a step function whose parameter is named `fr`:
 * declares `f`, its frame struct of type `type`, and opens the body.
 *     static int child(ptrio_frame *fr)
 *     {
 *         PTRIO_BEGIN_AS(struct child, c);
 *         ...
 *         PTRIO_END(c);
 *     }
 */
#define PTRIO_BEGIN_AS(type, f)                                             \
    type *const f = PTRIO_SELF(fr, type);                                   \
    PTRIO_BEGIN(f)

/* Closes the body: returns the frame's value (0, PTRIO_RETURN's value,
 * or the error that is propagating). A resume point that reaches the
 * default case is none of this frame's: an await inside a switch of the
 * user's (switch resume points), or a frame zeroed while it ran. The frame
 * then fails as if it raised -PTRIO_EMISUSE there: its blocks close and
 * FINALLY runs. */
#define PTRIO_END(f)                                                        \
        break;                                                              \
    default: /* END, FINALLY in a frame without one, DESCRIBE, strays */    \
        if (ptrio__fr->resume == PTRIO__DESCRIBE)                           \
            return ptrio__describe(__FILE__, __func__);                     \
        if (ptrio__fr->resume - PTRIO__END > PTRIO__FINALLY - PTRIO__END) { \
            uintptr_t ptrio__p = ptrio__stray(ptrio__fr);                   \
            if (!ptrio__p)                                                  \
                return PTRIO_PENDING;                                       \
            PTRIO__GO(ptrio__p);                                            \
        }                                                                   \
    }                                                                       \
    if (0)                                                                  \
        goto ptrio__dispatch;                                               \
    return ptrio__end(&(f)->fr)

/* Evaluates an awaitable into ptrio__r and the frame's result; if it
 * suspended, returns to the scheduler, and the resume lands here with the
 * status it woke with (already in the result). ptrio__r is declared first
 * and assigned after: a resume jumps past the declaration, never past an
 * initialisation (C++ forbids that). */
#define PTRIO__AWAIT_INTO(expr)                                             \
    int ptrio__r;                                                           \
    PTRIO__WHERE();                                                         \
    ptrio__r = (expr);                                                      \
    if (ptrio__r == PTRIO_PENDING) {                                        \
        ptrio__fr->resume = PTRIO__POINT(__LINE__);                         \
        PTRIO__SET_LINE(__LINE__);                                          \
        return PTRIO_PENDING;                                               \
        PTRIO__LABEL(__LINE__):                                             \
        ptrio__r = ptrio__fr->result;                                       \
    } else                                                                  \
        ptrio__fr->result = ptrio__r;

/* Awaits `expr` (an awaitable returning a status or PTRIO_PENDING). A
 * negative status is raised: the rest of the block is skipped. The status
 * is then available as PTRIO_RESULT(f). */
#define PTRIO_AWAIT(f, expr)                                                \
    do {                                                                    \
        PTRIO__AWAIT_INTO(expr)                                             \
        (void)(f);                                                          \
        if (ptrio__r < 0)                                                   \
            PTRIO__RAISE_RC(ptrio__r);                                      \
    } while (0)

/* Awaits `expr` and stores its status in `var` instead of raising: the
 * error becomes a value (it is caught). */
#define PTRIO_TRY(f, var, expr)                                             \
    do {                                                                    \
        PTRIO__AWAIT_INTO(expr)                                             \
        (void)(f);                                                          \
        (var) = ptrio__r < 0 ? ptrio__caught(ptrio__r) : ptrio__r;          \
    } while (0)

/* The status of the last await (or block entry) in this frame. */
#define PTRIO_RESULT(f) ((f)->fr.result)

/* Raises `code` (negative) with a static message, recording file:line.
 * Misuse raises instead: a code >= 0 -PTRIO_EINVAL, PTRIO_PENDING
 * -PTRIO_EMISUSE, -PTRIO_ECANCELED outside a cancelled scope
 * -PTRIO_EMISUSE (only the scheduler cancels). */
#define PTRIO_RAISE(f, code, message)                                       \
    do {                                                                    \
        static const ptrio_site ptrio__site = {__FILE__, __LINE__, message};\
        (void)(f);                                                          \
        PTRIO__WHERE();                                                     \
        PTRIO__GO(ptrio__raise_new(ptrio__fr, (code), &ptrio__site));       \
    } while (0)

/* Raises if the (non-awaitable) expression returns a negative status.
 * Around an awaitable it is misuse: PTRIO_PENDING is never raised; the
 * frame fails with -PTRIO_EMISUSE and the wait is undone. */
#define PTRIO_CHECK(f, expr)                                                \
    do {                                                                    \
        PTRIO__WHERE();                                                     \
        if (((f)->fr.result = (expr)) < 0)                                  \
            PTRIO__RAISE_RC(ptrio__fr->result);                             \
    } while (0)

/* Finishes the frame with `value` (>= 0), after closing the open blocks
 * and running FINALLY; a negative value is raised instead, PTRIO_PENDING
 * is misuse (-PTRIO_EMISUSE). */
#define PTRIO_RETURN(f, value)                                              \
    do {                                                                    \
        static const ptrio_site ptrio__site = {__FILE__, __LINE__, NULL};   \
        (void)(f);                                                          \
        PTRIO__WHERE();                                                     \
        PTRIO__GO(ptrio__return(ptrio__fr, (value), &ptrio__site));         \
    } while (0)

/* Starts the cleanup section: runs after the body ends, whether it ended
 * normally, by PTRIO_RETURN or by an error; the error (or value) carries on
 * after it. At most one per function, outside any block. */
#define PTRIO_FINALLY(f)                                                    \
    (f)->fr.pending = 0;                                                    \
    PTRIO__FALLTHROUGH;                                                     \
    case PTRIO__FINALLY:

/* Inside FINALLY: the error being propagated (0 when none). */
#define PTRIO_FINALLY_ERROR(f) ((f)->fr.pending < 0 ? (f)->fr.pending : 0)

/* ---- blocks ------------------------------------------------------- */

/* A block runs its body once, then its close step (which may suspend: a
 * nursery joins there). A raise inside the body jumps to the close step of
 * the innermost open block of the frame. `break` and `continue` inside a
 * block leave the block normally. Only the first pass tests OPEN's status:
 * a resume jumps into the body past it, and later passes test the scope's
 * flags, never a C local. One statement, so it nests like `for`. */
#define PTRIO__BLOCK(sc, OPEN, CLOSE)                                       \
    if ((PTRIO__WHERE(), ptrio__fr->result = (OPEN)) < 0) {                 \
        PTRIO__RAISE_RC(ptrio__fr->result);                                 \
    } else                                                                  \
        for (;;)                                                            \
            if ((sc)->flags & PTRIO__SCOPE_ENTERED) {                       \
                int ptrio__rc;                                              \
                PTRIO__LABEL(__LINE__):                                     \
                ptrio__rc = (CLOSE);                                        \
                if (ptrio__rc == PTRIO_PENDING) {                           \
                    ptrio__fr->resume = PTRIO__POINT(__LINE__);             \
                    PTRIO__SET_LINE(__LINE__);                              \
                    return PTRIO_PENDING;                                   \
                }                                                           \
                if (ptrio__rc < 0) {                                        \
                    static const ptrio_site ptrio__site =                   \
                        {__FILE__, __LINE__, NULL};                         \
                    PTRIO__GO(ptrio__reraise(ptrio__fr, ptrio__rc,          \
                                             &ptrio__site));                \
                }                                                           \
                break;                                                      \
            } else                                                          \
                for ((sc)->flags |= PTRIO__SCOPE_ENTERED;                   \
                     (sc)->flags & PTRIO__SCOPE_BODY;                       \
                     (sc)->flags &= (uint32_t)~PTRIO__SCOPE_BODY)

#define PTRIO__SCOPE_ENTERED 0x0001u  /* body started: next pass closes */
#define PTRIO__SCOPE_BODY    0x0002u  /* body not yet run */

#ifdef __cplusplus
}
#endif

#endif /* PTRIO_CORO_H */
