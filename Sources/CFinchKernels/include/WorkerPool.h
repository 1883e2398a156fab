// The persistent worker threads behind Parallel.forEach (WorkerPool.c).

#ifndef FINCH_WORKER_POOL_H
#define FINCH_WORKER_POOL_H

#include <stddef.h>
#include <stdint.h>

/// One part of a parallel loop: `part` in 0 ..< parts of the call that started it.
typedef void (*finch_pool_task)(void *context, long part);
/// Runs fn(context, 0 ..< parts) on the calling thread and up to `workers` persistent workers, each
/// taking the next part until none are left; returns 1 when all are done. Without running anything it returns 0 when called from inside a part (a
/// nested loop, which the caller runs serially) and −1 while another thread's loop holds the pool
/// or if no worker could start.
int finch_pool_run(long parts, long workers, void *context, finch_pool_task fn);
/// How long an idle worker polls for the next loop before it sleeps (default 200 µs).
void finch_pool_set_spin_ns(long nanoseconds);


/// What the pool did since stats were enabled (finch_pool_enable_stats), for finding idle time:
/// loops run through the pool, their parts and how many of those the workers took, the calling
/// thread's time inside loops, waiting at their end for the workers' last parts (join) and between
/// loops (serial work, including loops too small to split), the workers' time running parts, and
/// how often a worker gave up polling and slept. Times are wall-clock nanoseconds. Uneven loops have
/// a part count that is not a multiple of the threads taking part (3 parts on 2 threads: one thread
/// runs two while the other waits), with their time inside the loop.
typedef struct {
    unsigned long loops, parts, worker_parts, sleeps, uneven_loops;
    long loop_ns, join_ns, serial_ns, worker_busy_ns, uneven_ns;
} finch_pool_stats_t;
/// Starts (1) or stops (0) counting; counts are kept across calls (take differences).
void finch_pool_enable_stats(int on);
void finch_pool_stats(finch_pool_stats_t *out);

#endif
