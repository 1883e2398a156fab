// Which path the kernels take: chosen once when the library is loaded, before any thread can call
// in, from the CPU's features and the FINCH_KERNELS environment variable, which forces a lower path
// so that one machine can run (and test) the code that CPUs without AVX-512 or AVX2 run.

#include "KernelDispatch.h"
#include "KernelSupport.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int best = FINCH_KERNELS_GENERIC, active = FINCH_KERNELS_GENERIC, requested = -1;

int finch_kernels_parse(const char *value) {
    if (value == NULL) return -1;
    if (strcmp(value, "generic") == 0) return FINCH_KERNELS_GENERIC;
    if (strcmp(value, "avx2") == 0) return FINCH_KERNELS_AVX2;
    if (strcmp(value, "avx512") == 0) return FINCH_KERNELS_AVX512;
    return -1;
}

const char *finch_kernels_name(int path) {
    return path == FINCH_KERNELS_AVX512 ? "avx512" : (path == FINCH_KERNELS_AVX2 ? "avx2" : "generic");
}

// A mistyped value would otherwise run the CPU's best path while the user believes another one
// is under test; there is no caller yet to hand an error to, so the process stops here, before
// doing anything, with the variable, its value and the values it takes.
__attribute__((constructor))
static void choose_path(void) {
#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) best = FINCH_KERNELS_AVX512;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = FINCH_KERNELS_AVX2;
#endif
    active = best;
    const char *value = getenv("FINCH_KERNELS");
    if (value == NULL || value[0] == '\0') return;
    requested = finch_kernels_parse(value);
    if (requested < 0) {
        fprintf(stderr, "error: FINCH_KERNELS=\"%s\" is not a kernel path; use generic, avx2 or avx512, or unset it "
                        "for the best this CPU has (%s)\n", value, finch_kernels_name(best));
        exit(2);
    }
    if (requested > best)
        fprintf(stderr, "note: FINCH_KERNELS=%s but this CPU has no %s; running the %s kernels\n", value, value,
                finch_kernels_name(best));
    active = requested < best ? requested : best;
}

int finch_kernels_path(void) { return active; }
int finch_kernels_best(void) { return best; }
int finch_kernels_requested(void) { return requested; }
int finch_avx512_selected(void) { return active == FINCH_KERNELS_AVX512; }
const char *finch_kernels_isa(void) { return finch_kernels_name(active); }

int finch_kernels_use(const char *isa) {
    int path = finch_kernels_parse(isa);
    if (path < 0 || path > best) return 0;
    active = path;
    return 1;
}
