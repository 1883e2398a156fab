#include <hdf5.h>
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
