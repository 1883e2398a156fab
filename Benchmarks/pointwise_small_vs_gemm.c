// Release micro-benchmark for issue 25: the small-plane 1×1 kernel (SmallPlanePointwise.c) against the
// column path it replaces (gather the batch into [Cin, N·H·W], one sgemm, scatter back to NCHW), one
// thread, on the 1×1 shapes of ResNet50, EfficientNet-Lite and MobileNetV3/MobileViT at batch 32.
// Prints best-of-`repeats` milliseconds for each route and kernel ÷ column.
//
//   K=Sources/CFinchKernels; clang -O2 -I$K/include -I$K -o /tmp/pw Benchmarks/pointwise_small_vs_gemm.c \
//     $K/SmallPlanePointwise.c $K/SmallPlanePointwiseAVX2.c $K/KernelDispatch.c -lopenblas
//   OPENBLAS_NUM_THREADS=1 /tmp/pw avx512 5;  OPENBLAS_NUM_THREADS=1 OPENBLAS_CORETYPE=Zen /tmp/pw avx2 5
#include "SmallPlanePointwise.h"
#include "KernelDispatch.h"
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }

static void column_path(const float *x, const float *w, float *cols, float *buf, float *y, long n, long c, long cout,
                        long hw) {
    long ld = n * hw;
    for (long s = 0; s < n; s++)
        for (long ci = 0; ci < c; ci++) memcpy(cols + ci * ld + s * hw, x + (s * c + ci) * hw, sizeof(float) * hw);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)cout, (int)ld, (int)c, 1, w, (int)c, cols, (int)ld, 0,
                buf, (int)ld);
    for (long s = 0; s < n; s++)
        for (long co = 0; co < cout; co++) memcpy(y + (s * cout + co) * hw, buf + co * ld + s * hw, sizeof(float) * hw);
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "avx512";
    int reps = argc > 2 ? atoi(argv[2]) : 5;
    if (!finch_kernels_use(path)) { fprintf(stderr, "no %s\n", path); return 1; }
    // name, cin, cout, side
    struct { const char *name; long c, cout, side; } cases[] = {
        {"resnet50 l3 256->1024", 256, 1024, 14}, {"resnet50 l3 1024->256", 1024, 256, 14},
        {"resnet50 l4 1024->512", 1024, 512, 14}, {"resnet50 l4 512->2048", 512, 2048, 7},
        {"resnet50 l4 2048->512", 2048, 512, 7},
        {"resnet50@128 l3 256->1024", 256, 1024, 8}, {"resnet50@128 l3 1024->256", 1024, 256, 8},
        {"resnet50@128 l4 512->2048", 512, 2048, 4}, {"resnet50@128 l4 2048->512", 2048, 512, 4},
        {"lite0 1152->192 7x7", 1152, 192, 7}, {"lite0 192->1152 7x7", 192, 1152, 7},
        {"lite0 672->192 7x7", 672, 192, 7}, {"lite0 672->112 14x14", 672, 112, 14},
        {"lite0 112->672 14x14", 112, 672, 14}, {"lite0 480->112 14x14", 480, 112, 14},
        {"lite0 320->1280 7x7", 320, 1280, 7}, {"lite0 1152->320 7x7", 1152, 320, 7},
        {"lite0 480->80 14x14", 480, 80, 14}, {"lite0 80->480 14x14", 80, 480, 14},
        {"mnv3s 40->240 14x14", 40, 240, 14}, {"mnv3s 240->40 14x14", 240, 40, 14},
        {"mnv3s 48->288 14x14", 48, 288, 14}, {"mnv3s 288->48 14x14", 288, 48, 14},
        {"mnv3s 96->576 7x7", 96, 576, 7}, {"mnv3s 576->96 7x7", 576, 96, 7},
        {"mvit 320->80 4x4", 320, 80, 4}, {"mvit 64->256 8x8", 64, 256, 8},
        {"resnet18-ish 256->256 14x14", 256, 256, 14}, {"512->512 7x7", 512, 512, 7},
        {"384->384 7x7", 384, 384, 7}, {"512->256 14x14", 512, 256, 14}, {"256->512 7x7", 256, 512, 7},
    };
    long n = 32;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        long c = cases[k].c, cout = cases[k].cout, hw = cases[k].side * cases[k].side;
        float *x = malloc(sizeof(float) * n * c * hw), *w = malloc(sizeof(float) * c * cout);
        float *y = malloc(sizeof(float) * n * cout * hw), *cols = malloc(sizeof(float) * n * c * hw);
        float *buf = malloc(sizeof(float) * n * cout * hw), *packed = malloc(sizeof(float) * 16 * c);
        for (long i = 0; i < n * c * hw; i++) x[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
        for (long i = 0; i < c * cout; i++) w[i] = (float)((i * 104729) % 1000) / 1000.0f - 0.5f;
        long units = finch_pointwise_small_units(n, cout, hw);
        double best_k = 1e9, best_c = 1e9;
        for (int r = 0; r < reps; r++) {
            double t0 = now();
            finch_pointwise_small(x, w, NULL, y, n, c, cout, hw, 0, units, packed);
            double t1 = now();
            column_path(x, w, cols, buf, y, n, c, cout, hw);
            double t2 = now();
            if (t1 - t0 < best_k) best_k = t1 - t0;
            if (t2 - t1 < best_c) best_c = t2 - t1;
        }
        double gflop = 2.0 * n * c * cout * hw * 1e-9;
        printf("%-28s weights=%7ld hw=%3ld  kernel %7.2f ms (%5.1f GFLOP/s)  column %7.2f ms (%5.1f GFLOP/s)  ratio %.2f\n",
               cases[k].name, c * cout, hw, best_k * 1e3, gflop / best_k, best_c * 1e3, gflop / best_c, best_k / best_c);
        free(x); free(w); free(y); free(cols); free(buf); free(packed);
    }
    return 0;
}
