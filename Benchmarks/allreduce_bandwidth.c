// MPI_Allreduce (float sum, in place) bandwidth: the operation Finch's data-parallel training
// runs once per gradient bucket. Build and run (README "Running on several machines"):
//   mpicc -O2 -o /tmp/allreduce_bandwidth Benchmarks/allreduce_bandwidth.c
//   mpirun -np 2 /tmp/allreduce_bandwidth                        # shared memory (vader)
//   mpirun -np 2 --mca btl tcp,self /tmp/allreduce_bandwidth     # TCP, here over loopback
// Prints, per buffer size, the fastest and the median time of an allreduce and the bus bandwidth
// 2(N−1)/N · bytes / fastest time (what each rank's link must carry, nccl-tests' convention). On
// a shared machine the fastest repeat is the one no other process interrupted.
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const size_t largest = (size_t)64 << 20;
    float *buffer = malloc(largest);
    for (size_t i = 0; i < largest / 4; i++) buffer[i] = 1e-6f * (float)(i % 1000);
    if (rank == 0) printf("%12s %10s %10s %14s\n", "bytes", "min_ms", "median_ms", "bus_GB_per_s");
    for (size_t bytes = 4096; bytes <= largest; bytes *= 4) {
        int count = (int)(bytes / 4), repeats = bytes >= ((size_t)16 << 20) ? 7 : 21;
        double times[21];
        MPI_Allreduce(MPI_IN_PLACE, buffer, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        for (int r = 0; r < repeats; r++) {
            MPI_Barrier(MPI_COMM_WORLD);
            double t = MPI_Wtime();
            MPI_Allreduce(MPI_IN_PLACE, buffer, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            times[r] = MPI_Wtime() - t;
        }
        qsort(times, repeats, sizeof(double), compare);
        double fastest = times[0], median = times[repeats / 2];
        if (rank == 0) printf("%12zu %10.3f %10.3f %14.3f\n", bytes, 1e3 * fastest, 1e3 * median,
                              2.0 * (size - 1) / size * bytes / fastest / 1e9);
    }
    free(buffer);
    MPI_Finalize();
    return 0;
}
