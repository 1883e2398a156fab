#!/usr/bin/env python3
"""Runs Finch's Core ML packages through the NumPy MIL interpreter (mil_interpreter.py, itself proved
against coremltools' conversions of timm models) and compares them with Finch's own outputs.
CoreMLNumericsTests runs it.

    python3 Tests/Tools/coreml_numerics.py JOB.json REPORT.json [INTERPRETER.py]

JOB.json is a list of {"package", "input": the input's name ("image" for an image classifier), "x": RAW float32 file, "shape": [1,3,H,W],
"expected": RAW float32 file (Finch's logits, or its probabilities for an image classifier)}. The
report maps each package to {"max_abs": max |interpreter − Finch|, "top1_same": bool, "label": the
classifier's label, "seconds"}.
"""
import importlib.util, json, os, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
path = sys.argv[3] if len(sys.argv) > 3 else os.path.join(here, "mil_interpreter.py")
spec = importlib.util.spec_from_file_location("mil_interpreter", path)
mil = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mil)

report = {}
for job in json.load(open(sys.argv[1])):
    x = np.fromfile(job["x"], dtype=np.float32).reshape(job["shape"])
    want = np.fromfile(job["expected"], dtype=np.float32)
    start = time.time()
    out = mil.run_package(job["package"], {job["input"]: x})
    entry = {}
    if job["input"] != "image":
        got = np.asarray(out["logits"], dtype=np.float64).reshape(-1)
    else:
        probs = out["classLabel_probs"]
        got = np.array([probs[k] for k in job["classes"]], dtype=np.float64)
        entry["label"] = str(np.asarray(out["classLabel"]).reshape(()).item())
        entry["label_is_top1"] = entry["label"] == job["classes"][int(np.argmax(want))]
    d = float(np.max(np.abs(got - want)))
    entry["max_abs"] = d if np.isfinite(d) else None  # JSON has no NaN; a missing number fails the test
    entry["nonfinite_outputs"] = int(np.sum(~np.isfinite(got)))
    entry["scale"] = float(np.max(np.abs(want)))
    entry["top1_same"] = bool(int(np.argmax(got)) == int(np.argmax(want)))
    entry["seconds"] = round(time.time() - start, 2)
    report[job["package"]] = entry
    print(os.path.basename(job["package"]), entry, flush=True)
json.dump(report, open(sys.argv[2], "w"))
