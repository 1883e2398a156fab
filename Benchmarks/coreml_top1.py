"""Top-1 of exported Core ML packages on the inputs Finch evaluated, run by the MIL interpreter.

    finch evaluate --checkpoint C --data Datasets/flowers --save-outputs val.safetensors
    finch export --checkpoint C --format coreml --input tensor --precision float32 --output F32.mlpackage
    finch export --checkpoint C --format coreml --input tensor --precision float16 --output F16.mlpackage
    python3 Benchmarks/coreml_top1.py val.safetensors F32.mlpackage F16.mlpackage

The float16 package computes in float16 (the interpreter rounds each op's result to the program's
type), so this is the delta a device would show, unlike `finch export --data`, which rounds only the
weights. Tensor-input packages take Finch's own preprocessed inputs, so both sides see the same pixels.
"""
import os, sys
import numpy as np
from safetensors.numpy import load_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Tools"))
import mil_interpreter  # noqa: E402


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    saved = load_file(sys.argv[1])
    x, labels, finch = saved["input"], saved["labels"], saved["logits"]
    print(f"Finch: top-1 {(finch.argmax(1) == labels).mean():.4f} over {len(labels)} images")
    for path in sys.argv[2:]:
        rows = []
        for i in range(len(x)):
            out = mil_interpreter.run_package(path, {"input": x[i:i + 1]})
            rows.append(np.asarray(out["logits"]).reshape(1, -1))
            if (i + 1) % 100 == 0:
                print(f"  {path}: {i + 1}/{len(x)}", file=sys.stderr, flush=True)
        logits = np.concatenate(rows)
        print(f"{path}: top-1 {(logits.argmax(1) == labels).mean():.4f}, max|Δ| vs Finch {np.abs(logits - finch).max():.3g}, "
              f"top-1 differs from Finch on {int((logits.argmax(1) != finch.argmax(1)).sum())} images", flush=True)


if __name__ == "__main__":
    main()
