"""Checks Finch's exports with the engines' own libraries. Reads a JSON manifest of jobs:
  {"onnx": [{"model": M.onnx, "input": IN.safetensors, "output": OUT.safetensors}, ...],
   "safetensors": [F.safetensors, ...], "hdf5": [F.h5, ...], "report": REPORT.json}
ONNX: onnx.checker (full_check) then ONNX Runtime on `input`, logits saved to `output`.
safetensors (safetensors.numpy) and HDF5 (h5py): per tensor its dtype, shape, float64 sum and two
bit fingerprints of its raw little-endian bytes (XOR and wrapping sum of the 32-bit words, 16-bit
words for float16), plus the metadata, written to `report` for the Swift test to compare."""
import json, sys
import numpy as np


def fingerprint(a):
    a = np.asarray(a)
    shape = list(a.shape)  # before ascontiguousarray, which turns 0-d scalars into shape [1]
    a = np.ascontiguousarray(a)
    if a.dtype == np.float16:
        w = a.view(np.uint16).astype(np.uint64).ravel()
    elif a.dtype == np.int64:
        w = a.view(np.uint32).astype(np.uint64).ravel()
    else:
        w = a.astype(np.float32).view(np.uint32).astype(np.uint64).ravel()
    x = int(np.bitwise_xor.reduce(w)) if w.size else 0
    s = int(w.sum(dtype=np.uint64)) if w.size else 0  # numpy wraps modulo 2^64, as Swift's &+ does
    return {"dtype": str(a.dtype), "shape": shape, "sum": float(a.astype(np.float64).sum()), "xor": x, "wsum": s}


def main():
    job = json.load(open(sys.argv[1]))
    report = {"onnx": [], "safetensors": {}, "hdf5": {}}
    if job.get("onnx"):
        import onnx, onnxruntime as ort
        from safetensors.numpy import load_file, save_file
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 2
        for j in job["onnx"]:
            m = onnx.load(j["model"])
            onnx.checker.check_model(m, full_check=True)
            sess = ort.InferenceSession(j["model"], opts, providers=["CPUExecutionProvider"])
            x = load_file(j["input"])["input"]
            (logits,) = sess.run(["logits"], {"input": x})
            save_file({"logits": np.ascontiguousarray(logits.astype(np.float32))}, j["output"])
            ins = [(i.name, [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]) for i in m.graph.input]
            report["onnx"].append({"model": j["model"], "opset": m.opset_import[0].version, "inputs": ins,
                                   "metadata": {p.key: p.value for p in m.metadata_props}})
    if job.get("safetensors"):
        from safetensors import safe_open
        for f in job["safetensors"]:
            with safe_open(f, framework="numpy") as st:
                report["safetensors"][f] = {"metadata": st.metadata(),
                                            "tensors": {k: fingerprint(st.get_tensor(k)) for k in st.keys()}}
    if job.get("hdf5"):
        import h5py
        for f in job["hdf5"]:
            with h5py.File(f, "r") as h:
                g = h["model"]
                report["hdf5"][f] = {"metadata": {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in h.attrs.items()},
                                     "tensors": {k: fingerprint(g[k][()]) for k in g.keys()}}
    json.dump(report, open(job["report"], "w"))
    print("ok")


if __name__ == "__main__":
    main()
