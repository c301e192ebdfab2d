/* tests/fuzz_random.c: a libFuzzer target over the random-program tester.
 * The fuzzer's bytes are the generator's random source (tests/randprog.c),
 * so its mutations steer the program's shape; each program runs on ptrio
 * and on the model of Trio's semantics, and any disagreement or broken
 * invariant aborts with the program printed. Built by configure
 * --enable-fuzz (clang); run as
 *
 *   tests/fuzz_random -max_total_time=60
 */
#include <stdio.h>
#include <stdlib.h>

#include "randprog.h"

static void out_stderr(void *ctx, const char *s)
{
    (void)ctx;
    fputs(s, stderr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static rp_prog p;
    rp_verdict v;
    rp_src src;

    rp_src_bytes(&src, data, size);
    rp_generate(&p, &src);
    if (!rp_check(&p, 4, &v)) {
        fprintf(stderr, "random program failed: %s: %s\n", v.kind, v.why);
        rp_print(&p, out_stderr, NULL);
        fprintf(stderr, " model (Trio's semantics):\n");
        rp_print_result(&p, rp_last_model(), out_stderr, NULL);
        fprintf(stderr, " ptrio:\n");
        rp_print_result(&p, rp_last_ptrio(), out_stderr, NULL);
        abort();
    }
    return 0;
}
