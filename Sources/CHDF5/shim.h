#include <hdf5.h>
#include <stdio.h>
// HDF5's constants are macros Swift cannot import (or imports with the wrong type).
static inline hid_t finch_h5p_default(void) { return H5P_DEFAULT; }
static inline unsigned finch_h5f_acc_trunc(void) { return H5F_ACC_TRUNC; }
static inline unsigned finch_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
static inline unsigned finch_h5f_acc_rdwr(void) { return H5F_ACC_RDWR; }
static inline hid_t finch_h5s_all(void) { return H5S_ALL; }
static inline hid_t finch_h5t_native_float(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t finch_h5t_native_double(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t finch_h5t_native_int64(void) { return H5T_NATIVE_INT64; }
static inline hid_t finch_h5t_native_uint64(void) { return H5T_NATIVE_UINT64; }
static inline hid_t finch_h5t_native_int32(void) { return H5T_NATIVE_INT32; }
static inline hid_t finch_h5t_c_s1(void) { return H5T_C_S1; }
static inline hid_t finch_h5e_default(void) { return H5E_DEFAULT; }
static inline hid_t finch_h5t_variable_string_utf8(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}
static inline size_t finch_h5t_variable(void) { return H5T_VARIABLE; }
/// Silences HDF5's own error printing: Finch reports errors itself, naming file and key.
static inline void finch_h5_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }
static inline hid_t finch_h5p_link_create_default_class(void) { return H5P_LINK_CREATE; }
static inline hid_t finch_h5p_file_access_class(void) { return H5P_FILE_ACCESS; }
static inline hid_t finch_h5p_dataset_create_class(void) { return H5P_DATASET_CREATE; }
static inline hid_t finch_h5f_obj_all(void) { return H5F_OBJ_ALL; }
/// Every object a caller opened in one file, the file itself excluded.
static inline unsigned finch_h5f_obj_open_objects(void) {
    return H5F_OBJ_DATASET | H5F_OBJ_GROUP | H5F_OBJ_DATATYPE | H5F_OBJ_ATTR | H5F_OBJ_LOCAL;
}

/// Copies the messages on libhdf5's default error stack, innermost (where the error was
/// detected) first, separated by ASCII record separators (0x1e), into `buffer`. libhdf5 keeps the stack even with printing
/// silenced; Finch puts the first message into its own errors and looks for checksum failures.
static inline herr_t finch_h5_error_walker(unsigned n, const H5E_error2_t *e, void *data) {
    char **cursor = (char **)data;
    char *out = cursor[0];
    char *end = cursor[1];
    (void)n;
    if (!e->desc || out >= end - 1) return 0;
    int written = snprintf(out, (size_t)(end - out), "%s%s", out == cursor[2] ? "" : "\x1e", e->desc);
    if (written < 0) return 0;
    cursor[0] = out + written < end ? out + written : end - 1;
    return 0;
}
static inline void finch_h5_error_messages(char *buffer, size_t size) {
    if (size == 0) return;
    buffer[0] = 0;
    char *cursor[3] = { buffer, buffer + size, buffer };
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, finch_h5_error_walker, cursor);
}
static inline unsigned finch_h5o_info_all(void) { return H5O_INFO_ALL; }
