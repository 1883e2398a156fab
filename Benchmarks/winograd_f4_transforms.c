// Release micro-benchmark of the five Winograd F(4×4, 3×3) transforms (Benchmarks/WinogradRounding.md):
// ResNet layer1-like data, 64 channels and 16 samples of 32×32, best of `repeats` per transform.
//
//   K=Sources/CFinchKernels; clang -O2 -I$K/include -I$K -o /tmp/wino4 Benchmarks/winograd_f4_transforms.c \
//     $K/WinogradF4Transforms.c $K/WinogradF4TransformsAVX2.c $K/KernelDispatch.c
//   /tmp/wino4 avx512 40; /tmp/wino4 avx2 40
//   valgrind --tool=callgrind /tmp/wino4 avx2 1   # instruction counts (valgrind has no AVX-512)
#include "WinogradF4Transforms.h"
#include "KernelDispatch.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "avx512";
    int reps = argc > 2 ? atoi(argv[2]) : 20;
    if (!finch_kernels_use(path)) { fprintf(stderr, "no %s\n", path); return 1; }
    long n = 16, c = 64, h = 32, w = 32, th = 8, tw = 8, tiles = n * th * tw;
    float *x = malloc(sizeof(float) * n * c * h * w), *v = malloc(sizeof(float) * 36 * c * tiles);
    float *y = malloc(sizeof(float) * n * c * h * w), *dw = malloc(sizeof(float) * c * c * 9);
    float *wt = malloc(sizeof(float) * c * c * 9), *u = malloc(sizeof(float) * 36 * c * c);
    for (long i = 0; i < n * c * h * w; i++) x[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    for (long i = 0; i < c * c * 9; i++) wt[i] = (float)((i * 104729) % 1000) / 1000.0f - 0.5f;
    double best[5] = {1e9, 1e9, 1e9, 1e9, 1e9};
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        for (long ci = 0; ci < c; ci++)
            for (long s = 0; s < n; s++)
                finch_winograd4_input_transform(x + (s * c + ci) * h * w, c * h * w, 1, h, w, 1, 1, th, tw,
                                                v + ci * tiles + s * th * tw, c * tiles);
        double t1 = now();
        for (long co = 0; co < c; co++)
            for (long s = 0; s < n; s++)
                finch_winograd4_output_transform(v + co * tiles + s * th * tw, c * tiles, 1, th, tw, h, w, c * h * w,
                                                 0.5f, y + (s * c + co) * h * w);
        double t2 = now();
        for (long co = 0; co < c; co++)
            for (long s = 0; s < n; s++)
                finch_winograd4_gradient_transform(x + (s * c + co) * h * w, c * h * w, 1, h, w, th, tw,
                                                   v + co * tiles + s * th * tw, c * tiles);
        double t3 = now();
        finch_winograd4_weight_transform(wt, c * c, u, 0, c * c);
        double t4 = now();
        finch_winograd4_weight_gradient(u, c * c, dw, 0, c * c);
        double t5 = now();
        double d[5] = {t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4};
        for (int k = 0; k < 5; k++) if (d[k] < best[k]) best[k] = d[k];
    }
    printf("%s best of %d (ms): input %.3f output %.3f gradient %.3f weights %.3f weight-gradient %.3f  (check %g)\n",
           path, reps, 1e3 * best[0], 1e3 * best[1], 1e3 * best[2], 1e3 * best[3], 1e3 * best[4], (double)y[12345] + dw[77]);
    return 0;
}
