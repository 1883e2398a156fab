// Hot kernels with AVX-512 (and, for the exponentials, AVX2) code paths chosen at run time.
//
// Swift has no per-function target features, so a portable Swift build runs its SIMD types on
// SSE2: four lanes, no FMA. These kernels carry their own wide variants and pick one from the
// CPU they run on, so one binary stays portable and still uses the vector units it finds.
// Every element goes through the same arithmetic wherever it sits in the buffer (tails are
// masked or padded, not handled by a scalar loop), so results do not depend on how work is split.
// The exponentials have a generic C path; the other kernels return 0 without AVX-512 and their
// Swift callers run their own code instead. FINCH_KERNELS=generic|avx2|avx512 forces a lower path
// than the CPU's best (KernelDispatch.h), so one machine tests them all.

#ifndef FINCH_KERNELS_H
#define FINCH_KERNELS_H

// One header per kernel file; this one includes them all, for C callers (Swift sees them all
// through the module).
#include "KernelDispatch.h"
#include "Exponentials.h"
#include "SoftmaxRows.h"
#include "SelfAttention.h"
#include "WorkerPool.h"
#include "DepthwiseConvKernels.h"
#include "MaxPool3x3s2.h"
#include "BatchNormActivation.h"
#include "BatchNormTraining.h"
#include "FewChannelConv.h"
#include "SmallPlanePointwise.h"
#include "WinogradTransforms.h"
#include "WinogradF4Transforms.h"

#endif
