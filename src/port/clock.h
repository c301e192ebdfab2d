/* src/port/clock.h: counter <-> nanosecond conversions the ports share.
 *
 * A rate is a 32-bit fixed-point ratio (mult / 2^shift), computed once
 * when the clock is set up, so converting is multiplies and shifts: no
 * 64-bit division anywhere (Cortex-M0 and RV32 have none in hardware, and
 * the library calls would be slow and big). The largest shift keeping
 * mult below 2^32 is chosen, so mult >= 2^31 and the relative error of a
 * conversion is below 2^-31 (0.5 ppb: 40 us a day).
 */
#ifndef PTRIO_PORT_CLOCK_H
#define PTRIO_PORT_CLOCK_H

#include <stdint.h>

typedef struct ptrio__rate {
    uint32_t mult;
    uint8_t shift;
} ptrio__rate;

/* num/den as mult / 2^shift (num, den > 0, shift <= 63), by long
 * division one bit at a time: 64-bit shifts and compares only. */
static inline ptrio__rate ptrio__rate_of(uint32_t num, uint32_t den)
{
    ptrio__rate r;
    uint32_t rem32 = num % den;
    uint64_t rem = rem32;
    uint32_t q = num / den;
    unsigned s = 0u;

    while (((q & 0x80000000u) == 0u) && (s < 63u)) {
        q <<= 1;
        rem <<= 1;
        if (rem >= den) {
            q |= 1u;
            rem -= den;
        }
        s++;
    }
    r.mult = q;
    r.shift = (uint8_t)s;
    return r;
}

/* x * mult / 2^shift, for any 64-bit x: the 96-bit product is taken in
 * two 32x32->64 halves. Exact floor when the result fits 64 bits. */
static inline uint64_t ptrio__rate_apply(uint64_t x, ptrio__rate r)
{
    uint64_t lo = (uint64_t)(uint32_t)x * r.mult;
    uint64_t hi = (uint64_t)(uint32_t)(x >> 32) * r.mult;
    uint64_t y;

    if (r.shift >= 32u) {
        y = (hi + (lo >> 32)) >> (r.shift - 32u);
    } else {
        y = (hi << (32u - r.shift)) + (lo >> r.shift);
    }
    return y;
}

/* How many counts after count `c` (whose time, converted by `to_ns` as
 * the port's now() does, is `now`) that clock first reads `deadline`
 * (later than `now`) or more: an alarm there is never early, nor late
 * (both rates round down, so the estimate through `to_counts` is never
 * past it). Within a Cortex-M alarm's reach the estimate falls short by
 * at most two counts; further out (a RISC-V deadline years ahead) by more,
 * so each step adds the shortfall's estimate. Four steps reached every
 * deadline a reviewer's billions of samples tried, up to 2^63 ns; one
 * they did not reach would wake early and arm again. */
static inline uint64_t ptrio__counts_until(uint64_t c, uint64_t now,
                                           uint64_t deadline,
                                           ptrio__rate to_counts,
                                           ptrio__rate to_ns)
{
    uint64_t k = ptrio__rate_apply(deadline - now, to_counts);
    uint64_t at;
    uint64_t more;
    unsigned i;

    for (i = 0u; i < 4u; i++) {
        at = ptrio__rate_apply(c + k, to_ns);
        if (at >= deadline) {
            break;
        }
        more = ptrio__rate_apply(deadline - at, to_counts);
        k += (more != 0u) ? more : 1u;
    }
    return k;
}

#endif /* PTRIO_PORT_CLOCK_H */
