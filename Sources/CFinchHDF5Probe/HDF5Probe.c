// Reads a whole HDF5 file in a disposable child, so a libhdf5 crash or hang on a crafted file
// ends that child instead of the caller (issue 20: libhdf5 1.10.8 itself crashes and loops on
// some inputs, inside calls Finch cannot check around). After fork only the calling thread
// exists and locks other threads held stay held, so the child calls libc and libhdf5 only
// (glibc's malloc is reset for the child by fork) and leaves by _exit: exit would run the
// parent's atexit handlers and libhdf5's shutdown, which could flush the parent's files.

#define _GNU_SOURCE
#include "finch_hdf5_probe.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/// The child's exit status when libhdf5 returned an error (0 is success; 1 is what sanitizers
/// exit with, so a report of theirs counts as a crash, not as a refusal).
enum { REFUSED_STATUS = 86 };

/// Compression can make a dataset larger than its file, never more than deflate's best ratio
/// (HDF5Group.maxCompressionRatio).
enum { MAX_COMPRESSION_RATIO = 1032 };

/// Present when the caller runs under a sanitizer or libFuzzer: its death callback would write
/// the child's crash up as the caller's finding.
extern void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

typedef struct {
    /// The largest buffer one attribute or dataset may take in the child.
    int64_t buffer_limit;
    /// What HDF5File accepts for one uncompressed dataset: the file's size.
    int64_t file_size;
    int failed;
} walk_state;

/// Reads `count` elements of `type` through `read` into a fresh buffer, then frees it and any
/// variable-length memory libhdf5 allocated for it. Objects larger than the in-process reader
/// accepts are skipped: it refuses them before asking libhdf5 for their bytes.
static int read_all(hid_t type, hid_t space, int64_t limit, herr_t (*read)(hid_t, hid_t, void *), hid_t object) {
    hid_t memory = H5Tget_native_type(type, H5T_DIR_DEFAULT);
    if (memory < 0) memory = H5Tcopy(type);  // a class without a native form: read as stored
    if (memory < 0) return -1;
    int status = 0;
    hssize_t count = H5Sget_simple_extent_npoints(space);
    size_t element = H5Tget_size(memory);
    if (count < 0 || element == 0) {
        status = -1;
    } else if (count > 0 && (uint64_t)count <= (uint64_t)limit / element) {
        void *buffer = calloc((size_t)count, element);
        if (!buffer) {
            status = -1;
        } else {
            if (read(object, memory, buffer) < 0) {
                status = -1;
            } else if (H5Tdetect_class(memory, H5T_VLEN) > 0 || H5Tdetect_class(memory, H5T_STRING) > 0) {
                if (H5Dvlen_reclaim(memory, space, H5P_DEFAULT, buffer) < 0) status = -1;
            }
            free(buffer);
        }
    }
    H5Tclose(memory);
    return status;
}

static herr_t attribute_read(hid_t attribute, hid_t memory, void *buffer) { return H5Aread(attribute, memory, buffer); }
static herr_t dataset_read(hid_t dataset, hid_t memory, void *buffer) {
    return H5Dread(dataset, memory, H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer);
}

static herr_t visit_attribute(hid_t object, const char *name, const H5A_info_t *info, void *data) {
    (void)info;
    walk_state *state = data;
    hid_t attribute = H5Aopen(object, name, H5P_DEFAULT);
    if (attribute < 0) {
        state->failed = 1;
        return 0;
    }
    hid_t type = H5Aget_type(attribute), space = H5Aget_space(attribute);
    int64_t limit = state->file_size < state->buffer_limit ? state->file_size : state->buffer_limit;
    int status = type >= 0 && space >= 0 ? read_all(type, space, limit, attribute_read, attribute) : -1;
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    if (H5Aclose(attribute) < 0) status = -1;
    if (status < 0) state->failed = 1;
    return 0;
}

static int read_dataset(hid_t dataset, const walk_state *state) {
    hid_t type = H5Dget_type(dataset), space = H5Dget_space(dataset), properties = H5Dget_create_plist(dataset);
    int status = -1;
    if (type >= 0 && space >= 0 && properties >= 0) {
        int filters = H5Pget_nfilters(properties);
        int64_t limit = state->file_size;
        if (filters > 0) limit = limit > INT64_MAX / MAX_COMPRESSION_RATIO ? INT64_MAX : limit * MAX_COMPRESSION_RATIO;
        if (limit > state->buffer_limit) limit = state->buffer_limit;
        status = filters < 0 ? -1 : read_all(type, space, limit, dataset_read, dataset);
    }
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    if (properties >= 0) H5Pclose(properties);
    return status;
}

/// H5Ovisit follows hard links only (soft and external links are not objects of this file)
/// and visits each object once. An error is noted and the walk goes on: what matters is
/// whether libhdf5 survives every object, and the caller's own reader names what is wrong.
static herr_t visit_object(hid_t root, const char *name, const H5O_info_t *info, void *data) {
    walk_state *state = data;
    hid_t object = H5Oopen(root, name, H5P_DEFAULT);
    if (object < 0) {
        state->failed = 1;
        return 0;
    }
    if (H5Aiterate2(object, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, visit_attribute, state) < 0) state->failed = 1;
    if (info->type == H5O_TYPE_DATASET && read_dataset(object, state) < 0) state->failed = 1;
    if (H5Oclose(object) < 0) state->failed = 1;
    return 0;
}

static void limit_resource(int resource, rlim_t value, rlim_t hard) {
    struct rlimit limit = {value, hard};
    setrlimit(resource, &limit);
}

static void child(const char *path, int64_t file_size, int64_t address_space_now, int cpu_seconds,
                  finch_hdf5_probe_mode mode) {
    // Crashes end the child by their signal, which the parent reports; the caller's handlers
    // (Swift's backtracer, a sanitizer's, libFuzzer's) would report them as the caller's own.
    static const int fatal[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS, SIGTRAP, SIGXCPU, SIGXFSZ};
    struct sigaction default_action;
    memset(&default_action, 0, sizeof default_action);
    default_action.sa_handler = SIG_DFL;
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++) sigaction(fatal[i], &default_action, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(NULL);
    // Whatever the child prints (a sanitizer's report) is not the caller's output.
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
    }

    // Budgets: one buffer of at most twice the file plus 256 MiB (a filtered chunk is read
    // into a buffer of its own before it is copied out), under an address space of four times
    // the file plus 512 MiB beyond what the caller had mapped.
    int64_t slack = (int64_t)512 << 20;
    int64_t budget = file_size > (INT64_MAX - slack) / 4 ? INT64_MAX - slack : 4 * file_size + slack;
    limit_resource(RLIMIT_CORE, 0, 0);
    limit_resource(RLIMIT_CPU, (rlim_t)cpu_seconds, (rlim_t)cpu_seconds + 1);
    if (address_space_now > 0 && address_space_now < INT64_MAX - budget) {
        limit_resource(RLIMIT_AS, (rlim_t)(address_space_now + budget), (rlim_t)(address_space_now + budget));
    }

    // Freed and fresh heap memory gets a junk pattern, so libhdf5's use of either (the crashes
    // seen so far) depends less on what the caller's heap happened to hold.
    mallopt(M_PERTURB, 0x5a);

    if (mode == FINCH_HDF5_PROBE_MODE_SEGFAULT) raise(SIGSEGV);
    if (mode == FINCH_HDF5_PROBE_MODE_SPIN) for (volatile int spin = 0;; spin++) {}

    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    walk_state state = {budget / 2, file_size, 0};
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) _exit(REFUSED_STATUS);
    if (H5Ovisit2(file, H5_INDEX_NAME, H5_ITER_NATIVE, visit_object, &state, H5O_INFO_BASIC) < 0) state.failed = 1;
    if (H5Fclose(file) < 0) state.failed = 1;
    _exit(state.failed ? REFUSED_STATUS : 0);
}

/// The caller's mapped address space in bytes (0 when /proc cannot tell): the child's limit is
/// set above it, since a process's threads, allocator arenas and sanitizer shadow are
/// already mapped before the child reads a byte.
static int64_t address_space(void) {
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char text[64];
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0) return 0;
    text[n] = 0;
    long long pages = strtoll(text, NULL, 10);
    long page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0 || pages > INT64_MAX / page) return 0;
    return (int64_t)pages * page;
}

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

finch_hdf5_probe_result finch_hdf5_probe(const char *path, int64_t file_size, double timeout_seconds,
                                         finch_hdf5_probe_mode mode) {
    finch_hdf5_probe_result result = {FINCH_HDF5_PROBE_UNAVAILABLE, 0};
    if (file_size < 0) file_size = 0;
    if (!(timeout_seconds > 0)) timeout_seconds = 1;
    int cpu_seconds = timeout_seconds > 3600 ? 3600 : (int)timeout_seconds + 1;
    int64_t mapped = address_space();
    double deadline = now_seconds() + timeout_seconds;

    pid_t pid = fork();
    if (pid < 0) {
        result.detail = errno;
        return result;
    }
    if (pid == 0) child(path, file_size, mapped, cpu_seconds, mode);

    int status = 0, killed = 0;
    struct timespec pause = {0, 1000000};  // 1 ms, growing to 20 ms: most files take a few ms
    for (;;) {
        pid_t done = waitpid(pid, &status, WNOHANG);
        if (done == pid) break;
        if (done < 0 && errno != EINTR) {
            result.detail = errno;
            kill(pid, SIGKILL);
            return result;
        }
        if (now_seconds() >= deadline) {
            kill(pid, SIGKILL);
            killed = 1;
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
            break;
        }
        nanosleep(&pause, NULL);
        if (pause.tv_nsec < 20000000) pause.tv_nsec *= 2;
    }

    if (killed) {
        result.verdict = FINCH_HDF5_PROBE_HUNG;
    } else if (WIFEXITED(status)) {
        int code = WEXITSTATUS(status);
        result.verdict = code == 0 ? FINCH_HDF5_PROBE_OK : code == REFUSED_STATUS ? FINCH_HDF5_PROBE_REFUSED : FINCH_HDF5_PROBE_CRASHED;
        result.detail = code == 0 || code == REFUSED_STATUS ? 0 : -code;
    } else if (WIFSIGNALED(status)) {
        int signal = WTERMSIG(status);
        result.detail = signal;
        result.verdict = signal == SIGXCPU ? FINCH_HDF5_PROBE_HUNG
                       : signal == SIGKILL ? FINCH_HDF5_PROBE_OUT_OF_MEMORY  // not ours: the system's
                       : FINCH_HDF5_PROBE_CRASHED;
    } else {
        result.verdict = FINCH_HDF5_PROBE_CRASHED;
    }
    return result;
}
