"""Runs an ONNX model with ONNX Runtime on the `input` tensor of a safetensors file and writes
`logits` to another safetensors file, after onnx.checker.check_model(full_check=True).
Usage: python onnx_run.py MODEL.onnx IN.safetensors OUT.safetensors"""
import sys
import numpy as np
import onnx
import onnxruntime as ort
from safetensors.numpy import load_file, save_file

model_path, in_path, out_path = sys.argv[1:4]
onnx.checker.check_model(onnx.load(model_path), full_check=True)
x = load_file(in_path)["input"]
opts = ort.SessionOptions()
opts.intra_op_num_threads = 2
sess = ort.InferenceSession(model_path, opts, providers=["CPUExecutionProvider"])
(logits,) = sess.run(["logits"], {"input": x})
save_file({"logits": np.ascontiguousarray(logits.astype(np.float32))}, out_path)
print("ok", logits.shape)
