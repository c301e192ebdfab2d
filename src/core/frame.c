/* src/core/frame.c: where a raise, a return and the end of a frame go.
 *
 * A raise jumps to the close step of the innermost open block of the frame
 * (nursery or scope), else to FINALLY, else (already in FINALLY) to the end;
 * the frame then hands its status to its caller. The origin of an error
 * (file:line, message, task) is recorded once, where it was first raised,
 * and kept while the same code propagates.
 */
#include "internal.h"

void ptrio__note_origin(ptrio_task *t, int rc, const void *origin)
{
    t->origin = origin;
    t->err = (int16_t)rc;
    t->state |= T_ARMED;
}

static uintptr_t route(ptrio_frame *fr, ptrio_task *t, int rc)
{
    ptrio_scope *sc = t ? t->scope : NULL;

    if (sc && sc->frame == fr && (sc->flags & PTRIO__SCOPE_OPEN)) {
        sc->pending = rc;
        return sc->exit;
    }
    if (rc == PTRIO__UNWIND_BODY || rc == PTRIO__UNWIND_FIN) {
        fr->pending = fr->result;   /* the value PTRIO_RETURN stashed */
        return rc == PTRIO__UNWIND_BODY ? PTRIO__FINALLY : PTRIO__END;
    }
    if (fr->pending == PTRIO__IN_BODY) {
        fr->pending = rc;
        return PTRIO__FINALLY;
    }
    fr->pending = rc;               /* raised in FINALLY: replaces */
    return PTRIO__END;
}

uintptr_t ptrio__raise(ptrio_frame *fr, int rc, const ptrio_site *site)
{
    ptrio_task *t = ptrio__loop ? ptrio__loop->current : NULL;

    if (t && !IS_MARKER(rc) &&
        (!(t->state & T_ARMED) || t->err != (int16_t)rc))
        ptrio__note_origin(t, rc, site);
    return route(fr, t, rc);
}

uintptr_t ptrio__raise_new(ptrio_frame *fr, int rc, const ptrio_site *site)
{
    ptrio_task *t = ptrio__loop ? ptrio__loop->current : NULL;

    if (rc >= 0 || IS_MARKER(rc)) {
        MISUSE("PTRIO_RAISE needs a negative error code");
        rc = -PTRIO_EINVAL;
    }
    if (t)
        ptrio__note_origin(t, rc, site);
    return route(fr, t, rc);
}

uintptr_t ptrio__return(ptrio_frame *fr, int value, const ptrio_site *site)
{
    ptrio_task *t = ptrio__loop ? ptrio__loop->current : NULL;

    if (value < 0 || value == PTRIO_PENDING)
        return ptrio__raise(fr, value < 0 && !IS_MARKER(value)
                                    ? value : -PTRIO_EINVAL, site);
    fr->result = value;
    return route(fr, t, fr->pending == PTRIO__IN_BODY ? PTRIO__UNWIND_BODY
                                                      : PTRIO__UNWIND_FIN);
}

int ptrio__end(ptrio_frame *fr)
{
    int v = fr->pending;
    return v == PTRIO__IN_BODY ? 0 : v;
}

void ptrio__caught(int rc)
{
    ptrio_task *t = ptrio__loop ? ptrio__loop->current : NULL;
    if (rc < 0 && t)
        t->state &= (uint8_t)~T_ARMED;
}
