// Persistent worker threads for Parallel.forEach.
//
// A training step of a small model runs thousands of parallel loops of a few microseconds each.
// Waking a sleeping thread for each costs a futex round trip and a context switch (MobileViT-XXS
// training made 7 context switches per millisecond with libdispatch and kept only 1.6 of 2 CPUs
// busy). Here a worker that finishes a loop keeps polling for the next one for a short while
// before it sleeps, as OpenMP runtimes do, so back-to-back loops start without the kernel.
//
// The caller runs parts itself too; parts are claimed from one atomic word that also holds the
// loop's generation and part count, so a worker that wakes late cannot take a part of a later loop
// with the previous loop's function.

#define _GNU_SOURCE
#include "WorkerPool.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#endif
#if defined(__x86_64__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

enum { MAX_WORKERS = 63 };

// claim = generation << 32 | parts << 16 | next part.
static _Atomic uint64_t claim;
static _Atomic uint32_t generation;
static _Atomic long remaining;
static _Atomic(finch_pool_task) task_fn;
static _Atomic(void *) task_ctx;
static _Atomic int sleepers;
// Workers with an index at or past this sit the loop out (the thread count was lowered).
static _Atomic long active_workers;
static _Atomic int busy;
static _Atomic long spin_ns = 200000;
// Changed only by the thread holding `busy`.
static int started_workers;
static _Thread_local int inside_pool;

// Counters for finch_pool_stats, kept only while enabled so the default path pays one relaxed load
// per loop. The caller's fields are written by the thread holding `busy` alone.
static _Atomic int stats_on;
static finch_pool_stats_t stats;
static _Atomic unsigned long stat_worker_parts, stat_sleeps;
static _Atomic long stat_worker_busy_ns;
static long stat_last_end_ns;

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000000000L + t.tv_nsec;
}

static void wait_for_change(_Atomic uint32_t *word, uint32_t seen) {
#if defined(__linux__)
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
#else
    while (atomic_load(word) == seen) sched_yield();
#endif
}

static void wake_all(_Atomic uint32_t *word) {
#if defined(__linux__)
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#else
    (void)word;
#endif
}

// Takes and runs parts of generation `gen` until none are left; returns at once if the loop
// has already moved on.
static void run_parts(uint32_t gen, finch_pool_task fn, void *ctx, int timed) {
    uint64_t word = atomic_load_explicit(&claim, memory_order_acquire);
    for (;;) {
        uint32_t g = (uint32_t)(word >> 32);
        long parts = (long)((word >> 16) & 0xFFFF), next = (long)(word & 0xFFFF);
        if (g != gen || next >= parts) return;
        if (!atomic_compare_exchange_weak_explicit(&claim, &word, word + 1, memory_order_acq_rel,
                                                   memory_order_acquire)) continue;
        if (timed) {
            long t0 = now_ns();
            fn(ctx, next);
            atomic_fetch_add_explicit(&stat_worker_busy_ns, now_ns() - t0, memory_order_relaxed);
            atomic_fetch_add_explicit(&stat_worker_parts, 1, memory_order_relaxed);
        } else {
            fn(ctx, next);
        }
        atomic_fetch_sub_explicit(&remaining, 1, memory_order_acq_rel);
        word = atomic_load_explicit(&claim, memory_order_acquire);
    }
}

static void *worker_main(void *index_bits) {
    const long index = (long)(intptr_t)index_bits;
    inside_pool = 1;
    uint32_t seen = atomic_load(&generation);
    for (;;) {
        uint32_t gen = atomic_load_explicit(&generation, memory_order_acquire);
        if (gen == seen) {
            long deadline = now_ns() + atomic_load_explicit(&spin_ns, memory_order_relaxed);
            for (int i = 1; (gen = atomic_load_explicit(&generation, memory_order_acquire)) == seen; i++) {
                CPU_RELAX();
                if ((i & 63) == 0 && now_ns() > deadline) {
                    atomic_fetch_add(&sleepers, 1);
                    if (atomic_load_explicit(&stats_on, memory_order_relaxed))
                        atomic_fetch_add_explicit(&stat_sleeps, 1, memory_order_relaxed);
                    wait_for_change(&generation, seen);
                    atomic_fetch_sub(&sleepers, 1);
                }
            }
        }
        seen = gen;
        if (index >= atomic_load_explicit(&active_workers, memory_order_acquire)) continue;
        // Loaded before claiming: a successful claim proves they belong to generation `gen`.
        finch_pool_task fn = atomic_load_explicit(&task_fn, memory_order_acquire);
        void *ctx = atomic_load_explicit(&task_ctx, memory_order_acquire);
        run_parts(gen, fn, ctx, atomic_load_explicit(&stats_on, memory_order_relaxed));
    }
    return NULL;
}

static void ensure_workers(int count) {
    if (count > MAX_WORKERS) count = MAX_WORKERS;
    while (started_workers < count) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, worker_main, (void *)(intptr_t)started_workers) != 0) {
            pthread_attr_destroy(&attr);
            break;
        }
        pthread_attr_destroy(&attr);
        started_workers++;
    }
}

void finch_pool_set_spin_ns(long ns) { atomic_store(&spin_ns, ns < 0 ? 0 : ns); }

int finch_pool_run(long parts, long workers, void *ctx, finch_pool_task fn) {
    if (inside_pool) return 0;
    if (parts <= 1 || parts > 0xFFFF || workers < 1) return -1;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&busy, &expected, 1)) return -1;
    ensure_workers((int)(workers < parts - 1 ? workers : parts - 1));
    if (started_workers == 0) {
        atomic_store(&busy, 0);
        return -1;
    }
    const int timed = atomic_load_explicit(&stats_on, memory_order_relaxed);
    long start = 0;
    if (timed) {
        start = now_ns();
        if (stat_last_end_ns > 0) stats.serial_ns += start - stat_last_end_ns;
        stats.loops += 1;
        stats.parts += (unsigned long)parts;
        if (parts % (workers + 1) != 0) stats.uneven_loops += 1;
    }
    atomic_store_explicit(&active_workers, workers, memory_order_relaxed);
    atomic_store_explicit(&remaining, parts, memory_order_relaxed);
    atomic_store_explicit(&task_fn, fn, memory_order_release);
    atomic_store_explicit(&task_ctx, ctx, memory_order_release);
    uint32_t gen = atomic_load_explicit(&generation, memory_order_relaxed) + 1;
    atomic_store_explicit(&claim, (uint64_t)gen << 32 | (uint64_t)parts << 16, memory_order_release);
    atomic_store(&generation, gen);
    if (atomic_load(&sleepers) > 0) wake_all(&generation);

    inside_pool = 1;
    run_parts(gen, fn, ctx, 0);
    inside_pool = 0;
    long joined = timed ? now_ns() : 0;
    // The last parts are running on workers; they take microseconds, so poll, then yield.
    for (int i = 0; atomic_load_explicit(&remaining, memory_order_acquire) > 0; i++) {
        if (i < 4096) CPU_RELAX(); else sched_yield();
    }
    if (timed) {
        stat_last_end_ns = now_ns();
        stats.join_ns += stat_last_end_ns - joined;
        stats.loop_ns += stat_last_end_ns - start;
        if (parts % (workers + 1) != 0) stats.uneven_ns += stat_last_end_ns - start;
    }
    atomic_store_explicit(&busy, 0, memory_order_release);
    return 1;
}

void finch_pool_enable_stats(int on) {
    if (inside_pool) return;
    int expected = 0;
    // Taken like a loop so no loop is half counted.
    while (!atomic_compare_exchange_weak(&busy, &expected, 1)) { expected = 0; sched_yield(); }
    stat_last_end_ns = 0;
    atomic_store(&stats_on, on ? 1 : 0);
    atomic_store(&busy, 0);
}

void finch_pool_stats(finch_pool_stats_t *out) {
    if (inside_pool) return;  // a part cannot wait for its own loop to end
    int expected = 0;
    while (!atomic_compare_exchange_weak(&busy, &expected, 1)) { expected = 0; sched_yield(); }
    *out = stats;
    out->worker_parts = atomic_load(&stat_worker_parts);
    out->worker_busy_ns = atomic_load(&stat_worker_busy_ns);
    out->sleeps = atomic_load(&stat_sleeps);
    atomic_store(&busy, 0);
}
