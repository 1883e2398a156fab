#!/usr/bin/env python3
"""Checks Finch's Core ML packages with coremltools' own readers (CoreMLExportTests runs it).

    python3 Tests/Tools/coreml_check.py JOB.json

JOB.json is a list of packages, each {"package", "input": "image"|"tensor", "precision",
"resolution", "classes", "metadata": {key: value}, "weights": RAW, "weight_index": {const name:
[byte offset in RAW, byte count]}}. For each package:
  1. coremltools.models.MLModel(package, skip_model_load=True) loads it; the spec version, input,
     outputs, classifier labels and metadata are the ones given;
  2. coremltools' MIL front end (milproto) loads the program into its MIL Program, which type- and
     shape-checks every op against coremltools' own op definitions;
  3. libmilstoragepython's blob reader reads every weight of the program back, bit for bit equal
     to RAW's bytes (Finch's tensors in the package's precision), and every expected weight is there.
Prints one line per package; exits 1 on any failure.
"""
import json, os, sys, warnings
warnings.filterwarnings("ignore")
import numpy as np
import coremltools as ct
from coremltools import libmilstoragepython
from coremltools.converters.mil.frontend.milproto.load import load as milproto_load


def check(job):
    errors = []
    def expect(cond, msg):
        if not cond:
            errors.append(msg)
    path = job["package"]
    model = ct.models.MLModel(path, skip_model_load=True)
    spec = model.get_spec()
    expect(spec.specificationVersion == 6, f"specificationVersion {spec.specificationVersion}")
    expect(spec.WhichOneof("Type") == "mlProgram", f"model type {spec.WhichOneof('Type')}")
    desc = spec.description
    r, k = job["resolution"], len(job["classes"])
    expect(len(desc.input) == 1, f"{len(desc.input)} inputs")
    inp = desc.input[0]
    if job["input"] == "image":
        t = inp.type.imageType
        expect(inp.name == "image" and inp.type.WhichOneof("Type") == "imageType", f"input {inp}")
        expect((t.width, t.height) == (r, r), f"image size {t.width}x{t.height}")
        expect(t.colorSpace == 20, f"color space {t.colorSpace} (want RGB = 20)")
        expect([o.name for o in desc.output] == ["classLabel", "classLabel_probs"], f"outputs {[o.name for o in desc.output]}")
        expect(desc.predictedFeatureName == "classLabel" and desc.predictedProbabilitiesName == "classLabel_probs",
               "predicted feature names")
    else:
        expect(inp.name == "input" and list(inp.type.multiArrayType.shape) == [1, 3, r, r], f"input {inp}")
        expect(inp.type.multiArrayType.dataType == 65568, "input not float32")
        expect([o.name for o in desc.output] == ["logits"], f"outputs {[o.name for o in desc.output]}")
        expect(list(desc.output[0].type.multiArrayType.shape) == [1, k], f"logits shape {desc.output[0].type}")
    user = dict(desc.metadata.userDefined)
    for key, value in job["metadata"].items():
        expect(user.get(key) == value, f"metadata {key}: {user.get(key)!r} != {value!r}")
    expect(desc.metadata.shortDescription != "", "no description")

    fn = spec.mlProgram.functions["main"]
    expect(fn.opset == "CoreML5", f"opset {fn.opset}")
    block = fn.block_specializations[fn.opset]
    ops = list(block.operations)
    classify = [op for op in ops if op.type == "classify"]
    if job["input"] == "image":
        expect(len(classify) == 1, f"{len(classify)} classify ops")
        if classify:
            lv = classify[0].inputs["classes"].arguments[0].value.immediateValue.list
            labels = [v.immediateValue.tensor.strings.values[0] for v in lv.values]
            expect(labels == job["classes"], f"class labels {labels}")
    else:
        expect(not classify, "classify op in a tensor model")

    # 2. coremltools' MIL front end: builds its Program, running every op's type inference.
    weights_dir = os.path.join(path, "Data", "com.apple.CoreML", "weights")
    prog = milproto_load(spec, spec.specificationVersion, file_weights_dir=weights_dir)
    main = prog.functions["main"]
    for out_var, want in zip(main.outputs, [o.name for o in desc.output]):
        expect(out_var.name == want, f"program output {out_var.name} vs {want}")
    if job["input"] == "tensor":
        expect(list(main.outputs[0].shape) == [1, k], f"logits inferred shape {main.outputs[0].shape}")
    n_ops = len(list(main.operations))

    # 3. Every weight, bit for bit.
    raw = open(job["weights"], "rb").read()
    index = job["weight_index"]
    reader = libmilstoragepython._BlobStorageReader(os.path.join(weights_dir, "weight.bin"))
    found = set()
    for op in ops:
        if op.type != "const":
            continue
        val = op.attributes["val"]
        if val.WhichOneof("value") != "blobFileValue":
            continue
        name = op.outputs[0].name
        dtype = val.type.tensorType.dataType
        off = val.blobFileValue.offset
        if dtype == 10:
            data = np.asarray(reader.read_fp16_data(off)).astype(np.uint16).tobytes()
        elif dtype == 11:
            data = np.asarray(reader.read_float_data(off), dtype=np.float32).tobytes()
        else:
            errors.append(f"weight {name}: data type {dtype}")
            continue
        want = "float16" if job["precision"] == "float16" else "float32"
        expect((dtype == 10) == (want == "float16"), f"weight {name} stored as {dtype}, want {want}")
        if name not in index:
            if job.get("folded_ok") and name.endswith("_folded"):
                continue  # computed by the exporter from several tensors; CoreMLNumericsTests checks its effect
            errors.append(f"weight {name} not among Finch's tensors")
            continue
        start, count = index[name]
        expect(data == raw[start:start + count], f"weight {name}: bytes differ from Finch's tensor")
        found.add(name)
    missing = set(index) - found
    expect(not missing, f"weights not in the program: {sorted(missing)[:5]}")
    return errors, n_ops, len(found)


def main():
    jobs = json.load(open(sys.argv[1]))
    failed = False
    for job in jobs:
        try:
            errors, n_ops, n_weights = check(job)
        except Exception as e:  # a loader's exception is a finding about the package
            errors, n_ops, n_weights = [f"{type(e).__name__}: {e}"], 0, 0
        name = os.path.basename(job["package"])
        if errors:
            failed = True
            print(f"FAIL {name}: " + "; ".join(errors[:8]))
        else:
            print(f"ok {name}: {n_ops} MIL ops, {n_weights} weights")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
