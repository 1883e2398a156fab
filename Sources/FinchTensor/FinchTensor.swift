// FinchTensor: Float32 N-d tensors, kernels, reverse-mode autodiff and a seeded RNG.
