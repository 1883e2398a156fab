#include <mpi.h>
// Open MPI's handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, MPI_IN_PLACE…) are macros over the
// addresses of its globals, which Swift cannot import.
static inline MPI_Comm finch_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype finch_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype finch_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype finch_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Datatype finch_mpi_int64(void) { return MPI_INT64_T; }
static inline MPI_Op finch_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op finch_mpi_max(void) { return MPI_MAX; }
static inline MPI_Op finch_mpi_min(void) { return MPI_MIN; }
static inline void *finch_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline int finch_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline int finch_mpi_success(void) { return MPI_SUCCESS; }
static inline int finch_mpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
/// MPI_Finalize as an atexit handler: an MPI process that exits without it makes mpirun report
/// the job as failed.
static inline void finch_mpi_finalize_at_exit(void) {
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (initialized && !finalized) MPI_Finalize();
}
static inline int finch_mpi_thread_single(void) { return MPI_THREAD_SINGLE; }
static inline MPI_Request finch_mpi_request_null(void) { return MPI_REQUEST_NULL; }
/// Nonblocking collectives: whether every request of `requests` has completed (driving
/// Open MPI's progress engine), and the wait for all of them; statuses are not needed.
static inline int finch_mpi_testall(int count, MPI_Request *requests) {
    int done = 0;
    MPI_Testall(count, requests, &done, MPI_STATUSES_IGNORE);
    return done;
}
static inline void finch_mpi_waitall(int count, MPI_Request *requests) {
    MPI_Waitall(count, requests, MPI_STATUSES_IGNORE);
}
