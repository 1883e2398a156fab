// Checks every cblas_sgemm call a program makes against the same product in double precision:
// preloaded, it runs the real call, recomputes each output element in double from the same float
// inputs, and prints per call its shape and the worst |error| / Σ|a·b| in float32 ulps (2⁻²⁴).
// A float32 GEMM that sums in any valid order stays within K ulps of that bound, typically a few;
// a kernel that loses precision (long K accumulated badly, beta mishandled) shows as a call far
// above its neighbours. Used to trace issue 27's OpenBLAS Zen gap (Tests/Fixtures/parity/RATIOS.md).
//
//   gcc -O2 -shared -fPIC -o /tmp/sgemm_check.so Tests/Fixtures/tools/sgemm_check.c -ldl -lm
//   LD_PRELOAD=/tmp/sgemm_check.so OPENBLAS_CORETYPE=Zen FINCH_KERNELS=avx2 FINCH_NUM_THREADS=1
//       .build/release/finch compare --reference FILE --quiet 2> calls.txt     (one command line)
//   awk '{ print substr($9, 7), $0 }' calls.txt | sort -g -r | head            (worst calls first)
// Costs one naive double GEMM per call: seconds for a 128 px batch of 8.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int, float,
                         float *, int);
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long calls;

void cblas_sgemm(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                 const float *b, int ldb, float beta, float *c, int ldc) {
    static sgemm_fn real;
    if (!real) real = (sgemm_fn)dlsym(RTLD_NEXT, "cblas_sgemm");
    // Finch calls row-major only; C's old values are needed when beta accumulates into it.
    float *old = NULL;
    if (beta != 0) {
        old = malloc(sizeof(float) * (size_t)m * n);
        for (int i = 0; i < m; i++) memcpy(old + (size_t)i * n, c + (size_t)i * ldc, sizeof(float) * n);
    }
    real(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    int transA = ta == 112, transB = tb == 112;  // CblasTrans
    double worst = 0, maxC = 0, maxErr = 0;
    int wi = 0, wj = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0, bound = 0;
            for (int q = 0; q < k; q++) {
                double x = transA ? a[(size_t)q * lda + i] : a[(size_t)i * lda + q];
                double y = transB ? b[(size_t)j * ldb + q] : b[(size_t)q * ldb + j];
                s += x * y;
                bound += fabs(x * y);
            }
            s *= alpha;
            bound *= fabs(alpha);
            if (old) {
                s += beta * (double)old[(size_t)i * n + j];
                bound += fabs(beta * (double)old[(size_t)i * n + j]);
            }
            double e = fabs(c[(size_t)i * ldc + j] - s);
            maxC = fmax(maxC, fabs(s));
            maxErr = fmax(maxErr, e);
            if (bound > 0 && e / bound > worst) { worst = e / bound; wi = i; wj = j; }
        }
    free(old);
    pthread_mutex_lock(&lock);
    fprintf(stderr, "sgemm %ld transA=%d transB=%d M=%d N=%d K=%d beta=%g worst=%.2f ulp (at %d,%d) maxerr/maxC=%.3g\n",
            calls++, transA, transB, m, n, k, beta, worst * 16777216.0, wi, wj, maxC > 0 ? maxErr / maxC : 0);
    pthread_mutex_unlock(&lock);
}
