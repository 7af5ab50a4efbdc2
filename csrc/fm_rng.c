/*
 * fm_rng.c - the engine's own random numbers: xoshiro256** for shuffling, a counter-based
 * hash for dropout masks.
 *
 * Contract: results depend only on the seed/state passed in (no hidden state), so a run is
 * reproducible from its seed and a dropout mask element from (key, index) alone, whichever
 * thread computes it.
 */
#include "fm_internal.h"

#include <string.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void fm_rng_seed(uint64_t state[4], uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) state[i] = splitmix64(&x);
}

/* The generator's step, inlined into the shuffle (fm_rng_next, exported, is called through
 * the PLT and so never inlined). */
static inline uint64_t rng_step(uint64_t s[4]) {
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t fm_rng_next(uint64_t s[4]) { return rng_step(s); }

/* The 128-bit product a * b as its high and low halves (the same on every compiler; the
 * build can force the portable half, FASTMLP_NO_INT128=1, to test it). */
static inline uint64_t mul_128(uint64_t a, uint64_t b, uint64_t *lo) {
#if defined(__SIZEOF_INT128__) && !defined(FM_NO_INT128)
    const unsigned __int128 p = (unsigned __int128)a * b;
    *lo = (uint64_t)p;
    return (uint64_t)(p >> 64);
#else
    const uint64_t a0 = a & 0xFFFFFFFFu, a1 = a >> 32, b0 = b & 0xFFFFFFFFu, b1 = b >> 32;
    const uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    const uint64_t mid = (p00 >> 32) + (p01 & 0xFFFFFFFFu) + (p10 & 0xFFFFFFFFu);
    *lo = (mid << 32) | (p00 & 0xFFFFFFFFu);
    return p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
#endif
}

/* Uniform integer in [0, bound), bound >= 1, without modulo bias: the high half of r * bound,
 * rejecting the few r whose low half falls below 2^64 mod bound (Lemire's method: a division
 * only on the rare draw whose low half is below bound). */
static uint64_t rng_below(uint64_t s[4], uint64_t bound) {
    uint64_t lo, hi = mul_128(rng_step(s), bound, &lo);
    if (lo < bound) {
        const uint64_t threshold = (0 - bound) % bound;
        while (lo < threshold) hi = mul_128(rng_step(s), bound, &lo);
    }
    return hi;
}

int fm_shuffle(int64_t *order, int64_t n, uint64_t state[4]) {
    if (n < 0 || (n > 0 && order == NULL) || state == NULL) return FM_ERR_BADARG;
    /* a local copy of the state stays in registers: stores to order (int64_t, which may alias
     * uint64_t) would otherwise send it through memory at every step */
    uint64_t s[4] = {state[0], state[1], state[2], state[3]};
    for (int64_t i = n - 1; i > 0; i--) {
        const int64_t j = (int64_t)rng_below(s, (uint64_t)i + 1);
        const int64_t tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
    memcpy(state, s, sizeof s);
    return FM_OK;
}

double fm_hash_uniform(uint64_t key, uint64_t index) {
    uint64_t x = key ^ (index * 0xD1B54A32D192ED03ULL);
    return (double)(splitmix64(&x) >> 11) * 0x1.0p-53;
}
