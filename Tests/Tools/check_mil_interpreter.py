#!/usr/bin/env python3
"""Proves Tests/Tools/mil_interpreter.py before it judges Finch's Core ML packages (issue 22, verification 2).

Runs the interpreter on each of coremltools' own conversions of tiny timm models committed under
Tests/Fixtures/coreml (made by Tests/Fixtures/tools/make_coreml_reference.py) and requires:
  float32 programs   max |logits - timm float32 logits| <= 1e-4
  float16 programs   top-1 identical to timm's float64 logits and max |delta| <= FLOAT16_BOUND
  image classifier   the label is timm's top-1, and each class probability within 1e-4 of softmax(timm)
Then it checks that the checks can fail: an unknown op and a broken blob are errors naming them, and
one perturbed weight moves the logits past the float32 bound. Needs numpy and coremltools (no torch).
Exit status 0 when everything holds; prints one line per case with the measured max |delta|.

Ops these conversions exercise (each against timm/torch): add, avg_pool, batch_norm, cast, classify, clip,
concat, const, conv (groups, dilation, custom/valid pads, non-square kernels), elu, exp, expand_dims, gather,
gelu (exact, tanh), layer_norm, leaky_relu, linear, log, matmul, max_pool, maximum, minimum, mul, pad
(constant, reflect), pow, real_div, reduce_log_sum_exp, reduce_max, reduce_mean, reduce_sum, relu, relu6,
reshape, resize_bilinear, rsqrt, sigmoid, sigmoid_hard, silu, slice_by_index, softmax, softplus, split,
sqrt, squeeze, stack, sub, tanh, thresholded_relu, tile, transpose, upsample_bilinear,
upsample_nearest_neighbor.
It prints the ops the references exercise, and when Tests/Tools/coreml_ops.txt (the ops Finch's Core ML
exporter emits, one per line) exists, requires every op listed there to be among them.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mil_interpreter  # noqa: E402

FIXTURES = os.path.join(HERE, "..", "Fixtures", "coreml")
FLOAT32_BOUND = 1e-4
# Every logit of the references is scaled so that max |logit| = 4; float16 keeps ~3 decimal digits per op,
# measured max |delta| 0.0039 (tf_efficientnet_lite0) and 0.0129 (mobilevit_xxs): 0.05 is 1.25% of the range.
FLOAT16_BOUND = 5e-2
PROBABILITY_BOUND = 1e-4
# Every zoo family, both precisions, the image/classifier path and the extra ops must stay covered.
REQUIRED = {
    "tf_efficientnet_lite0_float32", "tf_efficientnet_lite0_float16", "mobilenetv3_small_100_float32",
    "mobilenetv3_large_100_float32", "mobilevit_xxs_float32", "mobilevit_xxs_float16", "resnet18_float32",
    "resnet50_float32", "op_zoo_float32", "resize_bilinear_float32", "resnet18_image_classifier",
    "resnet18_flexible_batch_float32",
}


def model_path(package):
    return os.path.join(package, "Data", "com.apple.CoreML", "model.mlmodel")


def check_case(case, failures):
    name = case["name"]
    package = os.path.join(FIXTURES, name + ".mlpackage")
    ref = np.load(os.path.join(FIXTURES, name + ".npz"))
    outputs = mil_interpreter.run_package(package, {case["input"]: ref["input"]})
    if case["kind"] == "image_classifier":
        probs = outputs[case["output"]]
        label = str(np.asarray(outputs[case["label_output"]]).reshape(()).item())
        if list(probs.keys()) != case["labels"]:
            failures.append(f"{name}: classes {list(probs.keys())}, expected {case['labels']}")
            return
        got = np.array([probs[k] for k in case["labels"]])
        delta = float(np.abs(got - ref["probs64"].reshape(-1)).max())
        want = case["labels"][int(np.argmax(ref["logits64"]))]
        ok = delta <= PROBABILITY_BOUND and label == want
        print(f"{name:32s} probabilities max|d| vs timm {delta:.2e} (bound {PROBABILITY_BOUND:g}); "
              f"label {label!r}, timm {want!r}  {'ok' if ok else 'FAIL'}")
        if not ok:
            failures.append(f"{name}: probabilities max|d| {delta:.3e}, label {label!r} vs {want!r}")
        return
    logits = np.asarray(outputs[case["output"]], dtype=np.float64)
    if logits.shape != ref["logits64"].shape:
        failures.append(f"{name}: output shape {logits.shape}, timm's {ref['logits64'].shape}")
        return
    d32 = float(np.abs(logits - ref["logits32"]).max())
    d64 = float(np.abs(logits - ref["logits64"]).max())
    top1, want = np.argmax(logits, axis=-1).reshape(-1), np.argmax(ref["logits64"], axis=-1).reshape(-1)
    if case["precision"] == "float32":
        ok = d32 <= FLOAT32_BOUND
        bound = FLOAT32_BOUND
    else:
        ok = d64 <= FLOAT16_BOUND and np.array_equal(top1, want)
        bound = FLOAT16_BOUND
    print(f"{name:32s} max|d| vs timm float32 {d32:.2e}, float64 {d64:.2e} (bound {bound:g}; "
          f"top-1 {top1.tolist()} vs {want.tolist()})  {'ok' if ok else 'FAIL'}")
    if not ok:
        failures.append(f"{name}: max|d| {d32:.3e} (float32) {d64:.3e} (float64), bound {bound:g}")


def exercised_ops(cases):
    Model_pb2, _ = mil_interpreter._proto()
    ops = set()
    for case in cases:
        model = Model_pb2.Model()
        with open(model_path(os.path.join(FIXTURES, case["name"] + ".mlpackage")), "rb") as f:
            model.ParseFromString(f.read())
        fn = model.mlProgram.functions["main"]
        ops |= {op.type for op in fn.block_specializations[fn.opset].operations}
    return ops


def check_op_coverage(cases, failures):
    ops = exercised_ops(cases)
    print(f"ops checked against timm/torch ({len(ops)}): {' '.join(sorted(ops))}")
    unproved = sorted(set(mil_interpreter.OPS) - ops)
    print(f"ops the interpreter knows but no reference exercises ({len(unproved)}): {' '.join(unproved)}")
    emitted = os.path.join(HERE, "coreml_ops.txt")
    if os.path.exists(emitted):
        with open(emitted) as f:
            finch = {line.strip() for line in f if line.strip() and not line.startswith("#")}
        missing = sorted(finch - ops)
        print(f"ops Finch's exporter emits (coreml_ops.txt): {len(finch)}, not proved here: {missing or 'none'}")
        if missing:
            failures.append(f"coreml_ops.txt lists ops no coremltools reference exercises: {missing}")


def copy_package(tmp, name):
    dst = os.path.join(tempfile.mkdtemp(dir=tmp), name + ".mlpackage")
    shutil.copytree(os.path.join(FIXTURES, name + ".mlpackage"), dst)
    return dst


def check_failures_are_seen(failures):
    """The interpreter and this check must be able to say no."""
    Model_pb2, _ = mil_interpreter._proto()
    name = "resnet18_float32"
    ref = np.load(os.path.join(FIXTURES, name + ".npz"))
    with tempfile.TemporaryDirectory() as tmp:
        # An op the interpreter does not know is an error naming it.
        pkg = copy_package(tmp, name)
        model = Model_pb2.Model()
        with open(model_path(pkg), "rb") as f:
            model.ParseFromString(f.read())
        fn = model.mlProgram.functions["main"]
        block = fn.block_specializations[fn.opset]
        relu = next(op for op in block.operations if op.type == "relu")
        relu.type = "frobnicate"
        with open(model_path(pkg), "wb") as f:
            f.write(model.SerializeToString())
        expect_error(pkg, ref, "frobnicate", failures)

        # A blob whose metadata sentinel is wrong is an error naming the sentinel.
        pkg = copy_package(tmp, name)
        weights = os.path.join(pkg, "Data", "com.apple.CoreML", "weights", "weight.bin")
        with open(weights, "r+b") as f:
            f.seek(64)
            f.write(b"\0\0\0\0")
        expect_error(pkg, ref, "sentinel", failures)

        # The first weight tensor scaled by 1.001 moves the logits past the bound: the comparison can fail.
        pkg = copy_package(tmp, name)
        weights = os.path.join(pkg, "Data", "com.apple.CoreML", "weights", "weight.bin")
        with open(weights, "r+b") as f:
            f.seek(64)  # the first metadata record: sentinel u32, dtype u32 (2 = fp32), size u64, data offset u64
            _, dtype, size, data_offset = np.frombuffer(f.read(24), dtype=np.dtype([("s", "<u4"), ("t", "<u4"), ("n", "<u8"), ("o", "<u8")]))[0]
            if dtype != 2:
                failures.append(f"{name}: first blob has data type {dtype}, expected fp32 (2)")
            f.seek(int(data_offset))
            w = np.frombuffer(f.read(int(size)), dtype="<f4")
            f.seek(int(data_offset))
            f.write((w * np.float32(1.001)).astype("<f4").tobytes())
        out = mil_interpreter.run_package(pkg, {"input": ref["input"]})
        delta = float(np.abs(next(iter(out.values())) - ref["logits32"]).max())
        if delta <= FLOAT32_BOUND:
            failures.append(f"weights scaled by 1.001 moved the logits only {delta:.3e}: the comparison cannot fail")
        print(f"{'weights x 1.001':32s} max|d| {delta:.2e} > {FLOAT32_BOUND:g}  {'ok' if delta > FLOAT32_BOUND else 'FAIL'}")

        # The command line gives what the API gives.
        np.save(os.path.join(tmp, "input.npy"), ref["input"])
        out_npz = os.path.join(tmp, "out.npz")
        r = subprocess.run([sys.executable, os.path.join(HERE, "mil_interpreter.py"),
                            os.path.join(FIXTURES, name + ".mlpackage"), "--input",
                            "input=" + os.path.join(tmp, "input.npy"), "--out", out_npz],
                           capture_output=True, text=True)
        if r.returncode != 0:
            failures.append(f"mil_interpreter.py CLI failed: {r.stderr.strip()}")
        else:
            cli = np.load(out_npz)
            delta = max(float(np.abs(cli[k] - ref["logits32"]).max()) for k in cli.files)
            ok = len(cli.files) == 1 and delta <= FLOAT32_BOUND
            print(f"{'command line':32s} {cli.files} max|d| {delta:.2e}  {'ok' if ok else 'FAIL'}")
            if not ok:
                failures.append(f"CLI output {cli.files} max|d| {delta:.3e}")


def expect_error(pkg, ref, word, failures):
    try:
        mil_interpreter.run_package(pkg, {"input": ref["input"]})
    except mil_interpreter.MILError as e:
        ok = word in str(e)
        print(f"{'error naming ' + word:32s} {str(e)[:90]}...  {'ok' if ok else 'FAIL'}")
        if not ok:
            failures.append(f"error for {word} does not name it: {e}")
        return
    failures.append(f"a package with a broken {word} ran without an error")


def main():
    with open(os.path.join(FIXTURES, "cases.json")) as f:
        cases = json.load(f)
    failures = []
    missing = REQUIRED - {c["name"] for c in cases}
    if missing:
        failures.append(f"cases.json lacks {sorted(missing)}")
    for case in cases:
        try:
            check_case(case, failures)
        except mil_interpreter.MILError as e:
            failures.append(f"{case['name']}: {e}")
            print(f"{case['name']:32s} ERROR {e}")
    check_op_coverage(cases, failures)
    check_failures_are_seen(failures)
    if failures:
        print("\n".join(["FAILED:"] + failures), file=sys.stderr)
        return 1
    print(f"mil_interpreter agrees with timm on {len(cases)} coremltools conversions")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except mil_interpreter.MILError as e:
        print(f"check_mil_interpreter: {e}", file=sys.stderr)
        sys.exit(1)
