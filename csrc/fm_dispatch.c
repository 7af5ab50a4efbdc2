/*
 * fm_dispatch.c - picks the kernel set once, from the CPU's features or FASTMLP_ARCH.
 *
 * Contract: the kernel table is the engine's only mutable global. It starts as the generic
 * set, so the engine is usable before fm_arch_init(); fm_arch_init() and the test hook
 * fm_arch_set() replace it with a set the running CPU supports and this build holds
 * (fm_arch_built()), never with one it lacks.
 */
#include "fm_internal.h"

#include <stdlib.h>
#include <string.h>
#if defined(_WIN32)
#include <windows.h>
#else
#include <time.h>
#endif

static const fm_kernels fm_kernels_generic = {FM_ARCH_GENERIC, &fm_sgemm_generic,
                                              &fm_dgemm_generic, &fm_sew_generic,
                                              &fm_dew_generic};
#ifdef FM_HAVE_AVX2
static const fm_kernels fm_kernels_avx2 = {FM_ARCH_AVX2, &fm_sgemm_avx2, &fm_dgemm_avx2,
                                           &fm_sew_avx2, &fm_dew_avx2};
#endif
#ifdef FM_HAVE_AVX512
static const fm_kernels fm_kernels_avx512 = {FM_ARCH_AVX512, &fm_sgemm_avx512,
                                             &fm_dgemm_avx512, &fm_sew_avx512,
                                             &fm_dew_avx512};
#endif

static const fm_kernels *fm_current = &fm_kernels_generic;

const fm_kernels *fm_kernels_get(void) { return fm_current; }

const fm_kernels *fm_kernels_of(int arch) {
    switch (arch) {
    case FM_ARCH_GENERIC: return &fm_kernels_generic;
#ifdef FM_HAVE_AVX2
    case FM_ARCH_AVX2: return &fm_kernels_avx2;
#endif
#ifdef FM_HAVE_AVX512
    case FM_ARCH_AVX512: return &fm_kernels_avx512;
#endif
    default: return NULL;
    }
}

int fm_cpu_features(void) {
    int f = 0;
#ifdef FM_X86
    __builtin_cpu_init();
    f |= __builtin_cpu_supports("sse2") ? FM_CPU_SSE2 : 0;
    f |= __builtin_cpu_supports("avx") ? FM_CPU_AVX : 0;
    f |= __builtin_cpu_supports("fma") ? FM_CPU_FMA : 0;
    f |= __builtin_cpu_supports("avx2") ? FM_CPU_AVX2 : 0;
    f |= __builtin_cpu_supports("avx512f") ? FM_CPU_AVX512F : 0;
    f |= __builtin_cpu_supports("avx512dq") ? FM_CPU_AVX512DQ : 0;
    f |= __builtin_cpu_supports("avx512vl") ? FM_CPU_AVX512VL : 0;
    f |= __builtin_cpu_supports("avx512bw") ? FM_CPU_AVX512BW : 0;
#endif
    return f;
}

const char *fm_arch_name(int arch) {
    switch (arch) {
    case FM_ARCH_GENERIC: return "generic";
    case FM_ARCH_AVX2: return "avx2";
    case FM_ARCH_AVX512: return "avx512";
    default: return "unknown";
    }
}

int fm_cpu_supports(int arch) {
    const int f = fm_cpu_features();
    (void)f;
    switch (arch) {
    case FM_ARCH_GENERIC: return 1;
#ifdef FM_X86
    case FM_ARCH_AVX2: return (f & FM_CPU_AVX2) && (f & FM_CPU_FMA);
    case FM_ARCH_AVX512:
        return (f & FM_CPU_AVX512F) && (f & FM_CPU_AVX512VL) && (f & FM_CPU_AVX512DQ) &&
               (f & FM_CPU_AVX2) && (f & FM_CPU_FMA);
#endif
    default: return 0;
    }
}

/* Whether this build holds the kernel set (FM_NO_<SET> at build time leaves one out). */
int fm_arch_built(int arch) {
    switch (arch) {
    case FM_ARCH_GENERIC: return 1;
#ifdef FM_HAVE_AVX2
    case FM_ARCH_AVX2: return 1;
#endif
#ifdef FM_HAVE_AVX512
    case FM_ARCH_AVX512: return 1;
#endif
    default: return 0;
    }
}

int fm_arch_set(int arch) {
    if (arch < FM_ARCH_GENERIC || arch > FM_ARCH_AVX512) return FM_ERR_BADARG;
    if (!fm_arch_built(arch) || !fm_cpu_supports(arch)) return FM_ERR_ARCH;
    switch (arch) {
#ifdef FM_HAVE_AVX2
    case FM_ARCH_AVX2: fm_current = &fm_kernels_avx2; break;
#endif
#ifdef FM_HAVE_AVX512
    case FM_ARCH_AVX512: fm_current = &fm_kernels_avx512; break;
#endif
    default: fm_current = &fm_kernels_generic; break;
    }
    return FM_OK;
}

int fm_arch_init(void) {
    const char *env = getenv("FASTMLP_ARCH");
    if (env != NULL && env[0] != '\0') {
        for (int arch = FM_ARCH_GENERIC; arch <= FM_ARCH_AVX512; arch++)
            if (strcmp(env, fm_arch_name(arch)) == 0) return fm_arch_set(arch);
        return FM_ERR_BADARG;
    }
    for (int arch = FM_ARCH_AVX512; arch > FM_ARCH_GENERIC; arch--)
        if (fm_arch_built(arch) && fm_cpu_supports(arch)) return fm_arch_set(arch);
    return fm_arch_set(FM_ARCH_GENERIC);
}

int fm_arch_selected(void) { return fm_current->arch; }

int fm_has_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int fm_default_num_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

double fm_seconds(void) {
#if defined(_WIN32)
    LARGE_INTEGER freq, count;
    QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&count);
    return (double)count.QuadPart / (double)freq.QuadPart;
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
#endif
}

const char *fm_strerror(int status) {
    switch (status) {
    case FM_OK: return "success";
    case FM_ERR_BADARG: return "invalid argument";
    case FM_ERR_NOMEM: return "out of memory";
    case FM_ERR_NONFINITE: return "the loss became NaN or infinite";
    case FM_ERR_ARCH: return "the requested instruction set is not supported by this CPU";
    default: return "unknown error";
    }
}
