"""Writes python_written.safetensors, the fixture FinchIOTests reads to check interop.

Values are arange-based or listed literally so the Swift test can hard-code them; every
floating value is exactly representable in its dtype, except the F64 entries, which check
that narrowing to Float32 rounds to nearest (and overflows/underflows like numpy/PyTorch).
Run from this directory: python3 make_python_written.py  (needs torch and safetensors).
Reruns give the same tensors and data bytes; only the order of the metadata keys in the
header may change, since the reference writer keeps metadata in a hash map.
"""
import math

import torch
from safetensors.torch import save_file

tensors = {
    "conv.weight": (torch.arange(24, dtype=torch.float32) * 0.25 - 3).reshape(2, 3, 2, 2),
    "head.bias": torch.tensor([0.0, -0.0, 1.0, -2.5, 65504.0, 2.0**-24, 2.0**-14,
                               math.inf, -math.inf, math.nan], dtype=torch.float16).reshape(2, 5),
    "head.weight": (torch.arange(8, dtype=torch.float32) * 1.5 - 3).reshape(2, 4).to(torch.bfloat16),
    "stats.f64": torch.tensor([0.1, 1 / 3, -2.5, 1e300, 1e-50, 16777217.0], dtype=torch.float64),
    "bn.num_batches_tracked": torch.tensor(123456789012345, dtype=torch.int64),
    "bn.offsets": torch.arange(-3, 3, dtype=torch.int64).reshape(2, 3),
    "bn.extremes": torch.tensor([-(2**63), 2**63 - 1], dtype=torch.int64),
    "ids.i32": torch.tensor([-(2**31), 0, 2**31 - 1], dtype=torch.int32),
    "ids.u8": torch.arange(4, dtype=torch.uint8),
    "mask": torch.tensor([True, False, True]),
    "f8.e4m3": torch.tensor([0.0, 0.5, -1.75, 448.0, 2.0**-9, math.nan], dtype=torch.float8_e4m3fn),
    "f8.e5m2": torch.tensor([0.0, 1.5, -57344.0, 2.0**-16, math.inf], dtype=torch.float8_e5m2),
    "empty": torch.zeros(2, 0),
    "scalar": torch.tensor(7.5),
}
metadata = {
    "format": "pt",
    "model": "tiny",
    "classes": '["daisy", "rose", "tulip"]',
    "note": "naïve ✓ \"quoted\"",
}
save_file(tensors, "python_written.safetensors", metadata=metadata)
