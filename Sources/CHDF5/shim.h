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
