/* src/core/frame.c: where a raise, a return and the end of a frame go.
 *
 * A raise jumps to the close step of the innermost open block of the frame
 * (nursery or scope), else to FINALLY, else (already in FINALLY) to the end;
 * the frame then hands its status to its caller.
 *
 * Every error carries its origin: the site (file:line, message) where it
 * was raised, the child task whose failure it is, or the nursery whose
 * group it is. The origin travels with the error: in the frame
 * (fr->origin) while the frame carries it in `pending` (through FINALLY),
 * and from one holder to the next through the task's one-slot channel
 * (task->origin with T_ARMED): whoever hands an error on (a finished
 * frame to its caller, a nursery to its owner, a start's child to its
 * starter, a raise to a block's close) puts its origin there, and the
 * receiving raise or catch takes it at once. So a cleanup that catches or
 * opens nurseries of its own never touches the error it is cleaning up
 * after, and a new error is always a new record.
 */
#include "internal.h"

void ptrio__note_origin(ptrio_task *t, int rc, const void *origin)
{
    t->origin = origin;
    t->err = ERR_TAG(rc);
    t->state |= T_ARMED;
}

const void *ptrio__take_origin(ptrio_task *t, int rc, const void *site)
{
    if (t && (t->state & T_ARMED)) {
        t->state &= (uint8_t)~T_ARMED;
        if (t->err == ERR_TAG(rc))
            return t->origin;
    }
    return site;
}

static ptrio_task *running(void)
{
    return ptrio__loop ? ptrio__loop->current : NULL;
}

static uintptr_t route(ptrio_frame *fr, ptrio_task *t, int rc,
                       const void *origin)
{
    ptrio_scope *sc = t ? t->scope : NULL;

    if (sc && sc->frame == fr && (sc->flags & PTRIO__SCOPE_OPEN)) {
        sc->pending = rc;
        if (!IS_MARKER(rc))
            ptrio__note_origin(t, rc, origin);  /* for the close step */
        return sc->exit;
    }
    if (t && ptrio__frame_failing(fr))
        ptrio__absorbed_moved(t->scope, fr->origin, NULL);  /* replaced */
    if (IS_MARKER(rc)) {            /* PTRIO_RETURN left the last block */
        fr->pending = fr->result;   /* the value it stashed */
        return rc == PTRIO__UNWIND_BODY ? PTRIO__FINALLY : PTRIO__END;
    }
    fr->origin = origin;
    if (fr->pending == PTRIO__IN_BODY) {
        fr->pending = rc;
        return PTRIO__FINALLY;
    }
    fr->pending = rc;               /* raised in FINALLY: replaces */
    return PTRIO__END;
}

static const ptrio_site pending_site = {
    NULL, 0, "PTRIO_PENDING raised (an awaitable inside PTRIO_CHECK?)"
};
static const ptrio_site cancel_site = {
    NULL, 0, "PTRIO_ECANCELED raised outside a cancelled scope"
};

/* AWAIT, TRY and CHECK: raise the status an expression returned. */
uintptr_t ptrio__raise(ptrio_frame *fr, int rc, const ptrio_site *site)
{
    ptrio_task *t = running();

    if (rc < PTRIO_ERRMIN) {
        /* PTRIO_PENDING (or a marker) is never an error: the expression
         * was an awaitable. Its wait is undone, so the task is not left
         * parked while its frame carries on. */
        MISUSE("PTRIO_PENDING raised: an awaitable inside PTRIO_CHECK?");
        if (t && rc == PTRIO_PENDING)
            ptrio__undo_wait(ptrio__loop, t);
        ptrio__take_origin(t, rc, NULL);
        return route(fr, t, -PTRIO_EMISUSE, &pending_site);
    }
    return route(fr, t, rc, ptrio__take_origin(t, rc, site));
}

/* A block's close step raises: the error the body raised (its origin was
 * handed to the close), a marker of PTRIO_RETURN, or its own. */
uintptr_t ptrio__reraise(ptrio_frame *fr, int rc, const ptrio_site *site)
{
    ptrio_task *t = running();

    if (IS_MARKER(rc))
        return route(fr, t, rc, NULL);
    return route(fr, t, rc, ptrio__take_origin(t, rc, site));
}

uintptr_t ptrio__raise_new(ptrio_frame *fr, int rc, const ptrio_site *site)
{
    ptrio_task *t = running();

    ptrio__take_origin(t, rc, NULL);
    if (rc < PTRIO_ERRMIN) {
        MISUSE("PTRIO_RAISE of PTRIO_PENDING or of a ptrio marker");
        return route(fr, t, -PTRIO_EMISUSE, site);
    }
    if (rc >= 0) {
        MISUSE("PTRIO_RAISE needs a negative error code");
        return route(fr, t, -PTRIO_EINVAL, site);
    }
    /* Only the scheduler cancels: a task may re-raise a cancellation it
     * caught while it is still cancelled, nothing else. */
    if (rc == -PTRIO_ECANCELED && !(t && ptrio__cancelled(t))) {
        MISUSE("PTRIO_RAISE of -PTRIO_ECANCELED outside a cancelled scope");
        return route(fr, t, -PTRIO_EMISUSE, &cancel_site);
    }
    return route(fr, t, rc, site);
}

uintptr_t ptrio__return(ptrio_frame *fr, int value, const ptrio_site *site)
{
    ptrio_task *t = running();

    if (value < 0)
        return ptrio__raise(fr, value, site);
    fr->result = value;
    return route(fr, t, fr->pending == PTRIO__IN_BODY ? PTRIO__UNWIND_BODY
                                                      : PTRIO__UNWIND_FIN,
                 NULL);
}

static const ptrio_site stray_site = {
    NULL, 0, "resumed at a point that is not this frame's (an await inside "
             "a switch of yours, or a frame zeroed while it ran)"
};

/* A frame asked where it is answers from PTRIO_BEGIN: see
 * ptrio__frame_where. */
static PTRIO__TLS ptrio_frame_info *describing;

int ptrio__describe(const char *file, const char *func)
{
    if (describing) {
        describing->file = file;
        describing->func = func;
    }
    return PTRIO__DESCRIBED;
}

/* Where frame `fr` is: its source file and function, from its own
 * PTRIO_BEGIN (a step written without the macros cannot say, nor can a
 * frame that never ran), and the line it is suspended at. Returns 1 if it
 * could say, else 0 with NULLs. */
int ptrio__frame_where(const ptrio_frame *fr, ptrio_frame_info *out)
{
    ptrio_frame *m = (ptrio_frame *)fr;     /* resume is put back */
    uintptr_t resume = fr->resume;
    ptrio_frame_info *outer = describing;

    out->file = out->func = NULL;
    out->line = ptrio__frame_line(fr);
    /* START may be a step written by hand (the macros never leave it
     * there once run): calling it would run its body */
    if (!fr->fn || resume == 0 || resume == PTRIO__START ||
        resume == PTRIO__DESCRIBE)
        return 0;
    describing = out;
    m->resume = PTRIO__DESCRIBE;
    (void)fr->fn(m);
    m->resume = resume;
    describing = outer;
    return out->file != NULL;
}

/* A resume point reached END's default case: the frame raises
 * -PTRIO_EMISUSE from there. When the raise's own target, a block's close
 * step, is unreachable too (the block sits inside the user's switch), the
 * core runs that close step itself, waiting with it as long as it waits
 * (a nursery joining); the raise then goes on to the next block, FINALLY
 * or the end. Returns where the frame goes on, or 0 when it must wait. */
uintptr_t ptrio__stray(ptrio_frame *fr)
{
    ptrio_task *t = running();
    ptrio_scope *sc = t ? t->scope : NULL;
    int rc;

    if (!sc || sc->frame != fr || !(sc->flags & PTRIO__SCOPE_OPEN) ||
        sc->exit != fr->resume) {
        MISUSE("resume point not in this frame: an await inside a switch "
               "of yours, or a frame zeroed while its task ran");
        return ptrio__raise_new(fr, -PTRIO_EMISUSE, &stray_site);
    }
    /* a nursery's close through the loop: linked only with nurseries */
    INVARIANT(!(sc->flags & PTRIO__SCOPE_NURSERY) ||
                  ptrio__loop->nursery_close,
              "a nursery open without its close set");
    rc = (sc->flags & PTRIO__SCOPE_NURSERY)
             ? ptrio__loop->nursery_close(fr, NURSERY_OF(sc))
             : ptrio__scope_close(fr, sc);
    if (rc == PTRIO_PENDING)
        return 0;
    return ptrio__raise_new(fr, -PTRIO_EMISUSE, &stray_site);
}

/* TRY caught `rc` (negative); returns what it caught. */
int ptrio__caught(int rc)
{
    ptrio_task *t = running();
    const void *origin = ptrio__take_origin(t, rc, NULL);

    if (t) {
        /* The error caught last, for ptrio_failure_last: with its origin
         * when it was handed on, none when an awaitable returned it. */
        t->origin = origin;
        t->err = ERR_TAG(rc);
        ptrio__absorbed_caught(t, t->scope, origin);
    }
    return rc;
}
