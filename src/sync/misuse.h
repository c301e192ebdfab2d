/* src/sync/misuse.h: the primitives' misuse trap. The primitives use the
 * public API only; in --enable-debug builds they report misuse through the
 * same path as the core (a report line with file:line, then a trap). */
#ifndef PTRIO_SYNC_MISUSE_H
#define PTRIO_SYNC_MISUSE_H

#ifdef PTRIO_DEBUG
void ptrio__misuse(const char *what, const char *file, int line);
#define SYNC_MISUSE(what) ptrio__misuse((what), __FILE__, __LINE__)
#else
#define SYNC_MISUSE(what) ((void)0)
#endif

#endif /* PTRIO_SYNC_MISUSE_H */
