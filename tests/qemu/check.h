/* tests/qemu/check.h: the part of Check's API the suites use, for targets
 * without an operating system (the QEMU boards). The suites compile
 * unchanged against it: tests/qemu comes first on the include path.
 *
 * Tests run in-process, one after another (Check's CK_NOFORK): a failed
 * assertion longjmps back to the runner. A trap (__builtin_trap, a fault)
 * becomes the signal a test added with tcase_add_test_raise_signal
 * expects, SIGILL or SIGSEGV; anywhere else it is an error.
 * srunner_ntests_failed gives the number of failed tests, and the suites'
 * main turns it into the exit status (EXIT_FAILURE when any failed), as
 * on the host.
 *
 * Differences from Check: no fork, so no per-test timeout (tcase_set_timeout
 * is recorded but the QEMU run has one time limit for the whole program),
 * no exit tests, no log or XML files; failures are printed as they happen,
 * in Check's "file:line:F:tcase:test:iteration: message" form, then the
 * summary. No allocation: suites, cases and tests come from static pools
 * (CK_MAX_TESTS tests, CK_MAX_TCASES cases; -D to change them).
 */
#ifndef PTRIO_QEMU_CHECK_H
#define PTRIO_QEMU_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef CK_MAX_TESTS
#define CK_MAX_TESTS 192
#endif
#ifndef CK_OUT_BUF
#define CK_OUT_BUF 128     /* console line buffer */
#endif
#ifndef CK_MAX_TCASES
#define CK_MAX_TCASES 16
#endif

#define CHECK_MAJOR_VERSION 0
#define CHECK_MINOR_VERSION 15
#define CHECK_MICRO_VERSION 2
#define CK_ATTRIBUTE_UNUSED __attribute__((__unused__))
#define CK_ATTRIBUTE_NORETURN __attribute__((__noreturn__))

typedef struct Suite Suite;
typedef struct TCase TCase;
typedef struct SRunner SRunner;
typedef void (*TFun)(int);
typedef void (*SFun)(void);

typedef struct TTest {
    const char *name;
    TFun fn;
    const char *file;
    int line;
} TTest;

enum print_output { CK_SILENT, CK_MINIMAL, CK_NORMAL, CK_VERBOSE, CK_ENV,
                    CK_SUBUNIT, CK_LAST };
enum fork_status { CK_FORK_GETENV, CK_FORK, CK_NOFORK };

#define START_TEST(name)                                                    \
    static void name##_fn(int _i CK_ATTRIBUTE_UNUSED);                      \
    static const TTest name##_ttest = {#name, name##_fn, __FILE__, __LINE__};\
    static const TTest *name = &name##_ttest;                               \
    static void name##_fn(int _i CK_ATTRIBUTE_UNUSED)
#define END_TEST

Suite *suite_create(const char *name);
void suite_add_tcase(Suite *s, TCase *tc);
TCase *tcase_create(const char *name);
void tcase_set_timeout(TCase *tc, double timeout);
void tcase_add_checked_fixture(TCase *tc, SFun setup, SFun teardown);
void tcase_add_unchecked_fixture(TCase *tc, SFun setup, SFun teardown);
void ck__tcase_add(TCase *tc, const TTest *t, int sig, int start, int end);
#define tcase_add_test(tc, t) ck__tcase_add((tc), (t), 0, 0, 1)
#define tcase_add_test_raise_signal(tc, t, sig) \
    ck__tcase_add((tc), (t), (sig), 0, 1)
#define tcase_add_loop_test(tc, t, s, e) ck__tcase_add((tc), (t), 0, (s), (e))
#define tcase_add_loop_test_raise_signal(tc, t, sig, s, e) \
    ck__tcase_add((tc), (t), (sig), (s), (e))

SRunner *srunner_create(Suite *s);
void srunner_add_suite(SRunner *sr, Suite *s);
void srunner_set_fork_status(SRunner *sr, enum fork_status fstat);
void srunner_run_all(SRunner *sr, enum print_output mode);
int srunner_ntests_failed(SRunner *sr);
int srunner_ntests_run(SRunner *sr);
void srunner_free(SRunner *sr);

/* ---- assertions ----------------------------------------------------- */

void ck__fail(const char *file, int line, const char *fmt, ...)
    CK_ATTRIBUTE_NORETURN;
void ck__mark(const char *file, int line);

#define mark_point() ck__mark(__FILE__, __LINE__)
#define ck_abort() ck__fail(__FILE__, __LINE__, "Failed")
#define ck_abort_msg(...) ck__fail(__FILE__, __LINE__, __VA_ARGS__)
#define ck_assert(expr)                                                     \
    ((expr) ? (void)0                                                       \
            : ck__fail(__FILE__, __LINE__, "Assertion '%s' failed", #expr))
#define ck_assert_msg(expr, ...)                                            \
    ((expr) ? (void)0 : ck__fail(__FILE__, __LINE__, __VA_ARGS__))
#define fail_unless(expr, ...) ck_assert_msg((expr), "" __VA_ARGS__)
#define fail_if(expr, ...) ck_assert_msg(!(expr), "" __VA_ARGS__)
#define fail(...) ck__fail(__FILE__, __LINE__, "" __VA_ARGS__)

#define ck__cmp(T, fmt, X, OP, Y)                                           \
    do {                                                                    \
        T ck__x = (X), ck__y = (Y);                                         \
        if (!(ck__x OP ck__y))                                              \
            ck__fail(__FILE__, __LINE__,                                    \
                     "Assertion '%s' failed: %s == " fmt ", %s == " fmt,    \
                     #X " " #OP " " #Y, #X, ck__x, #Y, ck__y);      \
    } while (0)

#define ck_assert_int_eq(X, Y) ck__cmp(intmax_t, "%jd", X, ==, Y)
#define ck_assert_int_ne(X, Y) ck__cmp(intmax_t, "%jd", X, !=, Y)
#define ck_assert_int_lt(X, Y) ck__cmp(intmax_t, "%jd", X, <, Y)
#define ck_assert_int_le(X, Y) ck__cmp(intmax_t, "%jd", X, <=, Y)
#define ck_assert_int_gt(X, Y) ck__cmp(intmax_t, "%jd", X, >, Y)
#define ck_assert_int_ge(X, Y) ck__cmp(intmax_t, "%jd", X, >=, Y)
#define ck_assert_uint_eq(X, Y) ck__cmp(uintmax_t, "%ju", X, ==, Y)
#define ck_assert_uint_ne(X, Y) ck__cmp(uintmax_t, "%ju", X, !=, Y)
#define ck_assert_uint_lt(X, Y) ck__cmp(uintmax_t, "%ju", X, <, Y)
#define ck_assert_uint_le(X, Y) ck__cmp(uintmax_t, "%ju", X, <=, Y)
#define ck_assert_uint_gt(X, Y) ck__cmp(uintmax_t, "%ju", X, >, Y)
#define ck_assert_uint_ge(X, Y) ck__cmp(uintmax_t, "%ju", X, >=, Y)

#define ck__ptr(X, OP, Y)                                                   \
    do {                                                                    \
        const void *ck__x = (X), *ck__y = (Y);                              \
        if (!(ck__x OP ck__y))                                              \
            ck__fail(__FILE__, __LINE__,                                    \
                     "Assertion '%s' failed: %s == %p, %s == %p",           \
                     #X " " #OP " " #Y, #X, ck__x, #Y, ck__y);              \
    } while (0)
#define ck_assert_ptr_eq(X, Y) ck__ptr(X, ==, Y)
#define ck_assert_ptr_ne(X, Y) ck__ptr(X, !=, Y)
#define ck_assert_ptr_null(X) ck__ptr(X, ==, NULL)
#define ck_assert_ptr_nonnull(X) ck__ptr(X, !=, NULL)

/* NULL strings compare as in Check: never equal to anything. */
#define ck__str(X, OP, Y, nullok)                                           \
    do {                                                                    \
        const char *ck__x = (X), *ck__y = (Y);                              \
        if (!(((nullok) || (ck__x && ck__y)) &&                             \
              ck__strcmp(ck__x, ck__y) OP 0))                               \
            ck__fail(__FILE__, __LINE__,                                    \
                     "Assertion '%s' failed: %s == \"%s\", %s == \"%s\"",   \
                     #X " " #OP " " #Y, #X, ck__x ? ck__x : "(null)", #Y,   \
                     ck__y ? ck__y : "(null)");                             \
    } while (0)
int ck__strcmp(const char *a, const char *b);
#define ck_assert_str_eq(X, Y) ck__str(X, ==, Y, 0)
#define ck_assert_str_ne(X, Y) ck__str(X, !=, Y, 0)
#define ck_assert_str_lt(X, Y) ck__str(X, <, Y, 0)
#define ck_assert_str_le(X, Y) ck__str(X, <=, Y, 0)
#define ck_assert_str_gt(X, Y) ck__str(X, >, Y, 0)
#define ck_assert_str_ge(X, Y) ck__str(X, >=, Y, 0)
#define ck_assert_pstr_eq(X, Y) ck__str(X, ==, Y, 1)
#define ck_assert_pstr_ne(X, Y) ck__str(X, !=, Y, 1)

#define ck_assert_mem_eq(X, Y, L)                                           \
    ck_assert_msg(memcmp((X), (Y), (L)) == 0,                               \
                  "Assertion '%s' failed", #X " == " #Y)
#define ck_assert_mem_ne(X, Y, L)                                           \
    ck_assert_msg(memcmp((X), (Y), (L)) != 0,                               \
                  "Assertion '%s' failed", #X " != " #Y)

#ifdef __cplusplus
}
#endif

#endif /* PTRIO_QEMU_CHECK_H */
