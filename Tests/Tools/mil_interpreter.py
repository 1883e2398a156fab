#!/usr/bin/env python3
"""A NumPy interpreter of Core ML ML Programs (MIL), so Core ML packages can be run on Linux, where Core
ML's runtime does not exist (issue 22, verification 2).

It reads an `.mlpackage` (Manifest.json -> the protobuf `Model` parsed with coremltools.proto ->
the `main` function of its MIL program; weights from the package's blob storage files, read here from
the documented format) and evaluates the program op by op. Every float op is computed in float64 and
its result rounded to the dtype the program declares for it, so a float32 program is evaluated as an
ideal float32 device would, and a float16 program in float16-rounded arithmetic (each op exact, then
rounded to fp16). Each result is checked against the shape the program declares for it.

Inputs: a tensor input is given as its array; an image input (ImageType) as float32 [N,C,H,W] pixel
values 0-255 in RGB order (BGR images get their channels swapped, as Core ML would feed them; the
ImageType's scale and bias are ops inside ML Programs, not applied here). A classifier's outputs are
the top label (a 0-d array of the label) and a dict label -> probability.

Proved against coremltools' own conversions of timm models: Tests/Tools/check_mil_interpreter.py with
the fixtures made by Tests/Fixtures/tools/make_coreml_reference.py.

API:  run_package(path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray | dict]
CLI:  python3 mil_interpreter.py PACKAGE --input NAME=FILE.npy ... --out OUT.npz
      (a probability dict is written as NAME = probabilities in class order, NAME.labels = the labels)
"""
import argparse
import importlib
import importlib.util
import json
import math
import os
import struct
import sys

import numpy as np


class MILError(Exception):
    """A package the interpreter cannot read or run, with what and where."""


# ---------------------------------------------------------------------------------------------------
# Reading the package

_PROTO_ALIAS = "_mil_interpreter_coreml_proto"


def _proto():
    """coremltools' generated protobuf classes. `import coremltools` first loads its converters (and
    torch, when installed: 10+ s), so unless coremltools is already loaded, its proto folder is loaded
    on its own; protobuf shares the message classes between both loads."""
    if "coremltools.proto.Model_pb2" in sys.modules:
        from coremltools.proto import Model_pb2, MIL_pb2
        return Model_pb2, MIL_pb2
    if _PROTO_ALIAS not in sys.modules:
        spec = importlib.util.find_spec("coremltools")
        if spec is None or spec.origin is None:
            raise MILError("coremltools is needed for the Core ML protobuf classes (pip install coremltools)")
        folder = os.path.join(os.path.dirname(spec.origin), "proto")
        if not os.path.isfile(os.path.join(folder, "Model_pb2.py")):
            raise MILError(f"coremltools at {os.path.dirname(spec.origin)} has no proto/Model_pb2.py (pip install coremltools)")
        package_spec = importlib.util.spec_from_file_location(
            _PROTO_ALIAS, os.path.join(folder, "__init__.py"), submodule_search_locations=[folder])
        package = importlib.util.module_from_spec(package_spec)
        sys.modules[_PROTO_ALIAS] = package
        package_spec.loader.exec_module(package)
    return (importlib.import_module(_PROTO_ALIAS + ".Model_pb2"), importlib.import_module(_PROTO_ALIAS + ".MIL_pb2"))


_NUMPY_DTYPE = {
    "BOOL": np.bool_, "STRING": object,
    "FLOAT16": np.float16, "FLOAT32": np.float32, "FLOAT64": np.float64,
    "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
    "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
}
# Blob storage's own data type codes (MILBlob BlobDataType); 14/15 are the 32-bit integers.
_BLOB_DTYPE = {1: np.float16, 2: np.float32, 3: np.uint8, 4: np.int8, 6: np.int16, 7: np.uint16,
               14: np.int32, 15: np.uint32}
_BLOB_SENTINEL = 0xDEADBEEF
_DTYPE_NAMES = {"fp16": np.float16, "fp32": np.float32, "fp64": np.float64, "int8": np.int8,
                "int16": np.int16, "int32": np.int32, "int64": np.int64, "uint8": np.uint8,
                "uint16": np.uint16, "bool": np.bool_}


class BlobFile:
    """Core ML blob storage: a 64-byte header (count, version 2), then per blob a 64-byte metadata
    record (sentinel 0xDEADBEEF, data type, size, data offset) and the 64-byte-aligned data."""

    def __init__(self, path):
        self.path = path
        try:
            with open(path, "rb") as f:
                self.data = f.read()
        except OSError as e:
            raise MILError(f"{path}: cannot read weight file: {e}")
        if len(self.data) < 64:
            raise MILError(f"{path}: {len(self.data)} bytes, shorter than the 64-byte storage header")
        self.count, self.version = struct.unpack_from("<II", self.data, 0)
        if self.version != 2:
            raise MILError(f"{path}: storage version {self.version}, expected 2")

    def read(self, offset, dtype, shape, where):
        if offset % 64 != 0 or offset + 64 > len(self.data):
            raise MILError(f"{where}: blob offset {offset} in {self.path} is not a 64-aligned metadata record")
        sentinel, code, size, data_offset = struct.unpack_from("<IIQQ", self.data, offset)
        if sentinel != _BLOB_SENTINEL:
            raise MILError(f"{where}: blob at offset {offset} in {self.path} has sentinel {sentinel:#x}, expected 0xdeadbeef")
        blob_dtype = _BLOB_DTYPE.get(code)
        if blob_dtype is None:
            raise MILError(f"{where}: blob at offset {offset} has unsupported data type code {code}")
        if np.dtype(blob_dtype) != np.dtype(dtype):
            raise MILError(f"{where}: blob at offset {offset} holds {np.dtype(blob_dtype)}, the program declares {np.dtype(dtype)}")
        if data_offset % 64 != 0 or data_offset + size > len(self.data):
            raise MILError(f"{where}: blob data [{data_offset}, +{size}) is unaligned or past the end of {self.path}")
        count = int(np.prod(shape, dtype=np.int64))
        if size != count * np.dtype(dtype).itemsize:
            raise MILError(f"{where}: blob holds {size} bytes, shape {list(shape)} of {np.dtype(dtype)} needs "
                           f"{count * np.dtype(dtype).itemsize}")
        return np.frombuffer(self.data, dtype=np.dtype(dtype).newbyteorder("<"), count=count,
                             offset=data_offset).astype(dtype).reshape(shape)


class TensorType:
    """A MIL tensor type: numpy dtype and shape, with None for a dimension that is not constant."""

    def __init__(self, dtype, shape):
        self.dtype = dtype
        self.shape = shape

    def __repr__(self):
        return f"{np.dtype(self.dtype).name}{self.shape}"


def _value_type(vt, mil, where):
    kind = vt.WhichOneof("type")
    if kind == "tensorType":
        t = vt.tensorType
        name = mil.DataType.Name(t.dataType)
        if name not in _NUMPY_DTYPE:
            raise MILError(f"{where}: unsupported data type {name}")
        shape = []
        for d in t.dimensions:
            shape.append(d.constant.size if d.WhichOneof("dimension") == "constant" else None)
        if t.rank != len(shape) and t.rank >= 0 and len(shape) > 0:
            raise MILError(f"{where}: rank {t.rank} but {len(shape)} dimensions")
        return TensorType(_NUMPY_DTYPE[name], tuple(shape))
    if kind in ("listType", "dictionaryType", "tupleType"):
        return kind
    raise MILError(f"{where}: unsupported value type {kind}")


class Package:
    def __init__(self, path):
        self.path = path
        self.model_pb2, self.mil = _proto()
        manifest_path = os.path.join(path, "Manifest.json")
        try:
            with open(manifest_path) as f:
                manifest = json.load(f)
        except (OSError, ValueError) as e:
            raise MILError(f"{manifest_path}: {e}")
        entries = manifest.get("itemInfoEntries", {})
        root = manifest.get("rootModelIdentifier")
        if root not in entries or "path" not in entries[root]:
            raise MILError(f"{manifest_path}: rootModelIdentifier {root!r} names no item with a path")
        self.data_dir = os.path.join(path, "Data")
        model_path = os.path.join(self.data_dir, entries[root]["path"])
        self.model = self.model_pb2.Model()
        try:
            with open(model_path, "rb") as f:
                self.model.ParseFromString(f.read())
        except (OSError, Exception) as e:
            raise MILError(f"{model_path}: cannot parse the Model protobuf: {e}")
        if self.model.WhichOneof("Type") != "mlProgram":
            raise MILError(f"{model_path}: model type {self.model.WhichOneof('Type')}, expected mlProgram")
        self.model_dir = os.path.dirname(model_path)
        self.blobs = {}

    def blob(self, file_name, where):
        prefix = "@model_path/"
        if not file_name.startswith(prefix):
            raise MILError(f"{where}: blob file {file_name!r} is not under @model_path/")
        rel = file_name[len(prefix):]
        if os.path.isabs(rel) or ".." in rel.split("/"):
            raise MILError(f"{where}: blob file {file_name!r} leaves the package")
        if rel not in self.blobs:
            self.blobs[rel] = BlobFile(os.path.join(self.model_dir, rel))
        return self.blobs[rel]


def _immediate(package, value, declared, where):
    mil = package.mil
    kind = value.WhichOneof("value")
    if kind == "blobFileValue":
        if not isinstance(declared, TensorType) or None in declared.shape:
            raise MILError(f"{where}: blob value needs a tensor type with constant shape, got {declared}")
        b = value.blobFileValue
        return package.blob(b.fileName, where).read(b.offset, declared.dtype, declared.shape, where)
    if kind != "immediateValue":
        raise MILError(f"{where}: value has neither an immediate nor a blob value")
    iv = value.immediateValue
    which = iv.WhichOneof("value")
    if which == "list":
        return [_immediate(package, v, _value_type(v.type, mil, where), where) for v in iv.list.values]
    if which == "tuple":
        return tuple(_immediate(package, v, _value_type(v.type, mil, where), where) for v in iv.tuple.values)
    if which != "tensor":
        raise MILError(f"{where}: unsupported immediate value {which}")
    if not isinstance(declared, TensorType):
        declared = _value_type(value.type, mil, where)
    t = iv.tensor
    field = t.WhichOneof("value")
    if field is None:
        flat = np.zeros(0, dtype=declared.dtype)
    elif field == "bytes":
        flat = np.frombuffer(t.bytes.values, dtype=np.dtype(declared.dtype).newbyteorder("<")).astype(declared.dtype)
    elif field == "strings":
        flat = np.array(list(t.strings.values), dtype=object)
    else:
        flat = np.array(list(getattr(t, field).values)).astype(declared.dtype)
    shape = declared.shape
    if None in shape:
        raise MILError(f"{where}: immediate value with non-constant shape {shape}")
    if flat.size != int(np.prod(shape, dtype=np.int64)):
        raise MILError(f"{where}: immediate value has {flat.size} elements, type says shape {list(shape)}")
    return flat.reshape(shape)


# ---------------------------------------------------------------------------------------------------
# Ops. Each gets an `Args` view of its bound inputs and returns one value or a tuple of values.

class Args:
    def __init__(self, op_type, where, bound):
        self.op_type, self.where, self.bound = op_type, where, bound

    def has(self, name):
        return name in self.bound

    def get(self, name, default=None):
        if name not in self.bound:
            if default is None:
                raise MILError(f"{self.where}: op {self.op_type} lacks required input {name!r}")
            return default
        values = self.bound[name]
        if len(values) != 1:
            raise MILError(f"{self.where}: op {self.op_type} input {name!r} has {len(values)} bindings, expected 1")
        return values[0]

    def opt(self, name):
        return self.bound[name][0] if name in self.bound else None

    def many(self, name):
        if name not in self.bound:
            raise MILError(f"{self.where}: op {self.op_type} lacks required input {name!r}")
        return self.bound[name]

    def f(self, name, default=None):
        """A float input, computed in float64."""
        return _f64(self.get(name, default))

    def scalar(self, name, default=None):
        v = np.asarray(self.get(name, default))
        if v.size != 1:
            raise MILError(f"{self.where}: op {self.op_type} input {name!r} must be a scalar, got shape {v.shape}")
        return v.reshape(()).item()

    def ints(self, name, default=None):
        return [int(v) for v in np.asarray(self.get(name, default)).reshape(-1)]

    def string(self, name, default=None):
        v = np.asarray(self.get(name, default), dtype=object)
        return str(v.reshape(()).item())

    def fail(self, message):
        raise MILError(f"{self.where}: op {self.op_type}: {message}")


def _f64(v):
    a = np.asarray(v)
    if a.dtype.kind == "f":
        return a.astype(np.float64)
    return a


OPS = {}


def op(*names):
    def register(fn):
        for n in names:
            OPS[n] = fn
        return fn
    return register


def _axis(axis, rank, a):
    if not -rank <= axis < max(rank, 1):
        a.fail(f"axis {axis} out of range for rank {rank}")
    return axis % rank if rank > 0 else 0


_BINARY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "real_div": np.divide, "pow": np.power,
    "maximum": np.maximum, "minimum": np.minimum, "floor_div": np.floor_divide, "mod": np.mod,
    "equal": np.equal, "not_equal": np.not_equal, "less": np.less, "less_equal": np.less_equal,
    "greater": np.greater, "greater_equal": np.greater_equal,
    "logical_and": np.logical_and, "logical_or": np.logical_or, "logical_xor": np.logical_xor,
}


def _binary(fn):
    def run(a):
        x, y = a.f("x"), a.f("y")
        try:
            np.broadcast_shapes(np.shape(x), np.shape(y))
        except ValueError:
            a.fail(f"shapes {np.shape(x)} and {np.shape(y)} do not broadcast")
        return fn(x, y)
    return run


for _name, _fn in _BINARY.items():
    OPS[_name] = _binary(_fn)

_erf = np.vectorize(math.erf, otypes=[np.float64])
_UNARY = {
    "abs": np.abs, "acos": np.arccos, "asin": np.arcsin, "atan": np.arctan, "atanh": np.arctanh,
    "ceil": np.ceil, "cos": np.cos, "cosh": np.cosh, "erf": _erf, "exp": np.exp, "exp2": np.exp2,
    "floor": np.floor, "logical_not": np.logical_not, "round": np.round, "sign": np.sign, "sin": np.sin,
    "sinh": np.sinh, "sqrt": np.sqrt, "square": np.square, "tan": np.tan, "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0), "relu6": lambda x: np.clip(x, 0, 6),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)), "silu": lambda x: x / (1 + np.exp(-x)),
    "softsign": lambda x: x / (1 + np.abs(x)), "softplus": lambda x: np.logaddexp(0, x),
    "identity": lambda x: x,
}
for _name, _fn in _UNARY.items():
    OPS[_name] = (lambda fn: lambda a: fn(a.f("x")))(_fn)


@op("inverse")
def _inverse(a):
    return 1 / (a.f("x") + a.scalar("epsilon", 1e-4))


@op("log")
def _log(a):
    return np.log(a.f("x") + a.scalar("epsilon", 1e-45))


@op("rsqrt")
def _rsqrt(a):
    return 1 / np.sqrt(a.f("x") + a.scalar("epsilon", 1e-12))


@op("clip")
def _clip(a):
    return np.minimum(np.maximum(a.f("x"), a.scalar("alpha")), a.scalar("beta"))


@op("threshold")
def _threshold(a):
    return np.maximum(a.f("x"), a.scalar("alpha"))


@op("thresholded_relu")
def _thresholded_relu(a):
    x = a.f("x")
    return np.where(x >= a.scalar("alpha", 1.0), x, 0.0)


@op("sigmoid_hard")
def _sigmoid_hard(a):
    return np.clip(a.scalar("alpha", 0.2) * a.f("x") + a.scalar("beta", 0.5), 0, 1)


@op("clamped_relu")
def _clamped_relu(a):
    x = a.f("x")
    return np.minimum(np.where(x >= 0, x, a.scalar("alpha") * x), a.scalar("beta"))


@op("leaky_relu")
def _leaky_relu(a):
    x = a.f("x")
    return np.where(x >= 0, x, a.scalar("alpha", 0.01) * x)


@op("elu")
def _elu(a):
    x = a.f("x")
    return np.where(x > 0, x, a.scalar("alpha", 1.0) * (np.exp(x) - 1))


@op("linear_activation")
def _linear_activation(a):
    return a.scalar("alpha") * a.f("x") + a.scalar("beta", 0.0)


@op("scaled_tanh")
def _scaled_tanh(a):
    return a.scalar("alpha", 1.0) * np.tanh(a.scalar("beta", 1.0) * a.f("x"))


@op("prelu")
def _prelu(a):
    x, alpha = a.f("x"), a.f("alpha")
    shape = [1] * x.ndim
    shape[1] = -1
    return np.where(x >= 0, x, alpha.reshape(shape) * x)


@op("gelu")
def _gelu(a):
    x = a.f("x")
    mode = a.string("mode", "EXACT")
    if mode == "EXACT":
        return 0.5 * x * (1 + _erf(x / math.sqrt(2)))
    if mode == "TANH_APPROXIMATION":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    if mode == "SIGMOID_APPROXIMATION":
        return x / (1 + np.exp(-1.702 * x))
    a.fail(f"unknown mode {mode!r}")


@op("softmax")
def _softmax(a):
    x = a.f("x")
    axis = _axis(a.scalar("axis", -1), x.ndim, a)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


@op("cast")
def _cast(a):
    name = a.string("dtype")
    if name not in _DTYPE_NAMES:
        a.fail(f"unsupported dtype {name!r}")
    x = np.asarray(a.get("x"))
    return x.astype(_DTYPE_NAMES[name])


# --- linear algebra

@op("linear")
def _linear(a):
    x, w = a.f("x"), a.f("weight")
    if w.ndim != 2 or x.shape[-1] != w.shape[1]:
        a.fail(f"x {x.shape} and weight {w.shape} do not match")
    y = x @ w.T
    b = a.opt("bias")
    return y + _f64(b) if b is not None else y


@op("matmul")
def _matmul(a):
    x, y = a.f("x"), a.f("y")
    if a.scalar("transpose_x", False) and x.ndim >= 2:
        x = np.swapaxes(x, -1, -2)
    if a.scalar("transpose_y", False) and y.ndim >= 2:
        y = np.swapaxes(y, -1, -2)
    if x.shape[-1] != y.shape[-2 if y.ndim >= 2 else -1]:
        a.fail(f"inner dimensions of {x.shape} and {y.shape} differ")
    return np.matmul(x, y)


@op("einsum")
def _einsum(a):
    return np.einsum(a.string("equation"), *[_f64(v) for v in a.many("values")])


# --- convolution and pooling

def _same_pads(size, kernel, stride, dilation, lower):
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    small, big = total // 2, total - total // 2
    return (big, small) if lower else (small, big)


def _spatial_pads(a, spatial, kernel, strides, dilations):
    """(before, after) per spatial dimension from pad_type and pad."""
    pad_type = a.string("pad_type", "valid")
    n = len(spatial)
    if pad_type == "valid":
        return [(0, 0)] * n
    if pad_type in ("same", "same_lower"):
        return [_same_pads(spatial[i], kernel[i], strides[i], dilations[i], pad_type == "same_lower") for i in range(n)]
    if pad_type == "custom":
        pad = a.ints("pad", np.zeros(2 * n, dtype=np.int32))
        if len(pad) != 2 * n or min(pad) < 0:
            a.fail(f"custom pad {pad} for {n} spatial dimensions")
        return [(pad[2 * i], pad[2 * i + 1]) for i in range(n)]
    a.fail(f"unknown pad_type {pad_type!r}")


def _windows(x, kernel, strides, dilations):
    """[N, C, *out, *kernel] view of x's sliding windows (x already padded)."""
    n = len(kernel)
    span = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    axes = tuple(range(2, 2 + n))
    v = np.lib.stride_tricks.sliding_window_view(x, span, axis=axes)
    index = (slice(None), slice(None)) + tuple(slice(None, None, s) for s in strides) \
        + tuple(slice(None, None, d) for d in dilations)
    return v[index]


@op("conv")
def _conv(a):
    x, w = a.f("x"), a.f("weight")
    n = x.ndim - 2
    if n < 1 or w.ndim != x.ndim:
        a.fail(f"x {x.shape} and weight {w.shape}: expected [N,C,*spatial] and [Cout,Cin/groups,*kernel]")
    kernel = list(w.shape[2:])
    strides = a.ints("strides", np.ones(n, dtype=np.int32))
    dilations = a.ints("dilations", np.ones(n, dtype=np.int32))
    groups = a.scalar("groups", 1)
    channels = x.shape[1]
    if len(strides) != n or len(dilations) != n or groups < 1 or channels % groups or w.shape[0] % groups \
            or w.shape[1] * groups != channels:
        a.fail(f"x {x.shape}, weight {w.shape}, groups {groups}, strides {strides}, dilations {dilations} do not fit")
    pads = _spatial_pads(a, x.shape[2:], kernel, strides, dilations)
    x = np.pad(x, [(0, 0), (0, 0)] + list(pads))
    win = _windows(x, kernel, strides, dilations)  # [N, C, *out, *k]
    out_spatial = win.shape[2:2 + n]
    cin, cout = channels // groups, w.shape[0] // groups
    k = int(np.prod(kernel))
    win = win.reshape(x.shape[0], groups, cin, *out_spatial, k)
    wg = w.reshape(groups, cout, cin, k)
    if cin == 1:  # depthwise: no reduction over channels, avoid einsum's slow path
        y = np.einsum("ng...k,gok->ngo...", win[:, :, 0], wg[:, :, 0], optimize=True)
    else:
        y = np.einsum("ngc...k,gock->ngo...", win, wg, optimize=True)
    y = y.reshape(x.shape[0], groups * cout, *out_spatial)
    b = a.opt("bias")
    if b is not None:
        y = y + _f64(b).reshape([1, -1] + [1] * n)
    return y


def _pool(a, reduce):
    x = a.f("x")
    n = x.ndim - 2
    kernel = a.ints("kernel_sizes")
    strides = a.ints("strides", np.ones(n, dtype=np.int32))
    if n < 1 or len(kernel) != n or len(strides) != n:
        a.fail(f"x {x.shape}, kernel_sizes {kernel}, strides {strides} do not fit")
    ones = [1] * n
    pads = _spatial_pads(a, x.shape[2:], kernel, strides, ones)
    if a.scalar("ceil_mode", False):
        # Extra room at the end so the last partial window counts, as long as it starts inside input + pad.
        new = []
        for i, (lo, hi) in enumerate(pads):
            size = x.shape[2 + i] + lo + hi
            out = -(-(size - kernel[i]) // strides[i]) + 1
            if (out - 1) * strides[i] >= x.shape[2 + i] + lo:
                out -= 1
            new.append((lo, max(hi, (out - 1) * strides[i] + kernel[i] - size + hi)))
        pads = new
    return x, kernel, strides, pads


@op("max_pool")
def _max_pool(a):
    x, kernel, strides, pads = _pool(a, np.max)
    xp = np.pad(x, [(0, 0), (0, 0)] + pads, constant_values=-np.inf)
    win = _windows(xp, kernel, strides, [1] * len(kernel))
    return win.max(axis=tuple(range(-len(kernel), 0)))


@op("avg_pool")
def _avg_pool(a):
    x, kernel, strides, pads = _pool(a, np.mean)
    n = len(kernel)
    declared = a.ints("pad", np.zeros(2 * n, dtype=np.int32)) if a.string("pad_type", "valid") == "custom" else None
    xp = np.pad(x, [(0, 0), (0, 0)] + pads)
    axes = tuple(range(-n, 0))
    total = _windows(xp, kernel, strides, [1] * n).sum(axis=axes)
    if a.scalar("exclude_padding_from_average", False):
        inside = np.pad(np.ones((1, 1) + x.shape[2:]), [(0, 0), (0, 0)] + pads)
    else:
        # Padding counts, but not the extra room ceil_mode added past the declared padding.
        limits = pads if declared is None else [(declared[2 * i], declared[2 * i + 1]) for i in range(n)]
        inside = np.pad(np.ones((1, 1) + tuple(s + lo + hi for s, (lo, hi) in zip(x.shape[2:], limits))),
                        [(0, 0), (0, 0)] + [(0, p[1] - l[1]) for p, l in zip(pads, limits)])
    count = _windows(inside, kernel, strides, [1] * n).sum(axis=axes)
    return total / count


# --- normalisation and reductions

@op("batch_norm")
def _batch_norm(a):
    x = a.f("x")
    shape = [1, -1] + [1] * (x.ndim - 2)
    mean, var = a.f("mean").reshape(shape), a.f("variance").reshape(shape)
    y = (x - mean) / np.sqrt(var + a.scalar("epsilon", 1e-5))
    if a.has("gamma"):
        y = y * a.f("gamma").reshape(shape)
    if a.has("beta"):
        y = y + a.f("beta").reshape(shape)
    return y


@op("instance_norm")
def _instance_norm(a):
    x = a.f("x")
    axes = tuple(range(2, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(var + a.scalar("epsilon", 1e-5))
    shape = [1, -1] + [1] * (x.ndim - 2)
    if a.has("gamma"):
        y = y * a.f("gamma").reshape(shape)
    if a.has("beta"):
        y = y + a.f("beta").reshape(shape)
    return y


@op("layer_norm")
def _layer_norm(a):
    x = a.f("x")
    axes = a.ints("axes") if a.has("axes") else list(range(x.ndim))
    axes = tuple(sorted(_axis(ax, x.ndim, a) for ax in axes))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(var + a.scalar("epsilon", 1e-5))
    norm_shape = [x.shape[i] if i in axes else 1 for i in range(x.ndim)]
    if a.has("gamma"):
        y = y * a.f("gamma").reshape(norm_shape)
    if a.has("beta"):
        y = y + a.f("beta").reshape(norm_shape)
    return y


def _reduce(fn):
    def run(a):
        x = a.f("x")
        axes = None
        if a.has("axes"):
            axes = tuple(_axis(ax, x.ndim, a) for ax in a.ints("axes"))
        return fn(x, axes, bool(a.scalar("keep_dims", False)))
    return run


_REDUCE = {
    "reduce_mean": lambda x, ax, k: np.mean(x, axis=ax, keepdims=k),
    "reduce_sum": lambda x, ax, k: np.sum(x, axis=ax, keepdims=k),
    "reduce_max": lambda x, ax, k: np.max(x, axis=ax, keepdims=k),
    "reduce_min": lambda x, ax, k: np.min(x, axis=ax, keepdims=k),
    "reduce_prod": lambda x, ax, k: np.prod(x, axis=ax, keepdims=k),
    "reduce_l1_norm": lambda x, ax, k: np.sum(np.abs(x), axis=ax, keepdims=k),
    "reduce_l2_norm": lambda x, ax, k: np.sqrt(np.sum(x * x, axis=ax, keepdims=k)),
    "reduce_sum_square": lambda x, ax, k: np.sum(x * x, axis=ax, keepdims=k),
    "reduce_log_sum": lambda x, ax, k: np.log(np.sum(x, axis=ax, keepdims=k)),
    "reduce_log_sum_exp": lambda x, ax, k: np.log(np.sum(np.exp(x), axis=ax, keepdims=k)),
}
for _name, _fn in _REDUCE.items():
    OPS[_name] = _reduce(_fn)


@op("reduce_argmax", "reduce_argmin")
def _reduce_arg(a):
    x = a.f("x")
    axis = _axis(a.scalar("axis", -1), x.ndim, a)
    fn = np.argmax if a.op_type == "reduce_argmax" else np.argmin
    y = fn(x, axis=axis)
    return np.expand_dims(y, axis) if a.scalar("keep_dims", False) else y


# --- shapes

@op("reshape")
def _reshape(a):
    x = np.asarray(a.get("x"))
    shape = a.ints("shape")
    if len(shape) == x.ndim:
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    if shape.count(-1) > 1 or any(s < -1 or s == 0 for s in shape):
        a.fail(f"shape {shape} for x {x.shape}")
    known = int(np.prod([s for s in shape if s != -1], dtype=np.int64))
    if -1 in shape:
        if known == 0 or x.size % known:
            a.fail(f"cannot infer -1 in {shape} for {x.size} elements")
        shape = [x.size // known if s == -1 else s for s in shape]
    elif known != x.size:
        a.fail(f"shape {shape} holds {known} elements, x {x.shape} has {x.size}")
    return x.reshape(shape)


@op("transpose")
def _transpose(a):
    x = np.asarray(a.get("x"))
    perm = [_axis(p, x.ndim, a) for p in a.ints("perm")]
    if sorted(perm) != list(range(x.ndim)):
        a.fail(f"perm {perm} is not a permutation of rank {x.ndim}")
    return np.transpose(x, perm)


@op("concat")
def _concat(a):
    values = [np.asarray(v) for v in a.many("values")]
    axis = _axis(a.scalar("axis"), values[0].ndim, a)
    if a.scalar("interleave", False):
        stacked = np.stack(values, axis=axis + 1)
        shape = list(values[0].shape)
        shape[axis] *= len(values)
        return stacked.reshape(shape)
    try:
        return np.concatenate(values, axis=axis)
    except ValueError as e:
        a.fail(f"shapes {[v.shape for v in values]}: {e}")


@op("stack")
def _stack(a):
    values = [np.asarray(v) for v in a.many("values")]
    return np.stack(values, axis=_axis(a.scalar("axis"), values[0].ndim + 1, a))


@op("split")
def _split(a):
    x = np.asarray(a.get("x"))
    axis = _axis(a.scalar("axis"), x.ndim, a)
    if a.has("split_sizes"):
        sizes = a.ints("split_sizes")
    else:
        count = a.scalar("num_splits")
        if count < 1 or x.shape[axis] % count:
            a.fail(f"num_splits {count} does not divide dimension {x.shape[axis]}")
        sizes = [x.shape[axis] // count] * count
    if sum(sizes) != x.shape[axis] or min(sizes) < 0:
        a.fail(f"split sizes {sizes} for dimension {x.shape[axis]}")
    return tuple(np.split(x, np.cumsum(sizes)[:-1], axis=axis))


@op("slice_by_index")
def _slice_by_index(a):
    x = np.asarray(a.get("x"))
    r = x.ndim
    begin, end = a.ints("begin"), a.ints("end")
    stride = a.ints("stride") if a.has("stride") else [1] * r
    masks = {m: ([bool(v) for v in np.asarray(a.get(m)).reshape(-1)] if a.has(m) else [False] * r)
             for m in ("begin_mask", "end_mask", "squeeze_mask")}
    if any(len(v) != r for v in [begin, end, stride] + list(masks.values())) or 0 in stride:
        a.fail(f"begin {begin}, end {end}, stride {stride} for rank {r}")
    index, squeeze = [], []
    for i in range(r):
        if masks["squeeze_mask"][i]:
            b = begin[i] + x.shape[i] if begin[i] < 0 else begin[i]
            if not 0 <= b < x.shape[i]:
                a.fail(f"squeezed index {begin[i]} out of range for dimension {i} of size {x.shape[i]}")
            index.append(slice(b, b + 1))
            squeeze.append(i)
            continue
        b = None if masks["begin_mask"][i] else begin[i]
        e = None if masks["end_mask"][i] else end[i]
        index.append(slice(b, e, stride[i]))
    y = x[tuple(index)]
    return np.squeeze(y, axis=tuple(squeeze)) if squeeze else y


@op("slice_by_size")
def _slice_by_size(a):
    x = np.asarray(a.get("x"))
    begin, size = a.ints("begin"), a.ints("size")
    if len(begin) != x.ndim or len(size) != x.ndim:
        a.fail(f"begin {begin}, size {size} for rank {x.ndim}")
    index = []
    for i in range(x.ndim):
        b = begin[i] + x.shape[i] if begin[i] < 0 else begin[i]
        e = x.shape[i] if size[i] == -1 else b + size[i]
        if not 0 <= b <= e <= x.shape[i]:
            a.fail(f"begin {begin[i]}, size {size[i]} out of range for dimension {i} of size {x.shape[i]}")
        index.append(slice(b, e))
    return x[tuple(index)]


@op("squeeze")
def _squeeze(a):
    x = np.asarray(a.get("x"))
    if not a.has("axes"):
        return np.squeeze(x)
    axes = tuple(_axis(ax, x.ndim, a) for ax in a.ints("axes"))
    if any(x.shape[ax] != 1 for ax in axes):
        a.fail(f"axes {axes} of {x.shape} are not all of size 1")
    return np.squeeze(x, axis=axes)


@op("expand_dims")
def _expand_dims(a):
    x = np.asarray(a.get("x"))
    axes = a.ints("axes")
    rank = x.ndim + len(axes)
    axes = sorted(_axis(ax, rank, a) for ax in axes)
    for ax in axes:
        x = np.expand_dims(x, ax)
    return x


@op("flatten2d")
def _flatten2d(a):
    x = np.asarray(a.get("x"))
    axis = _axis(a.scalar("axis", 1), x.ndim + 1, a)
    return x.reshape(int(np.prod(x.shape[:axis], dtype=np.int64)), -1)


@op("tile")
def _tile(a):
    return np.tile(np.asarray(a.get("x")), a.ints("reps"))


@op("pad")
def _pad(a):
    x = a.f("x")
    pad = a.ints("pad")
    n = len(pad) // 2
    if len(pad) % 2 or n > x.ndim or min(pad) < 0:
        a.fail(f"pad {pad} for rank {x.ndim}")
    widths = [(0, 0)] * (x.ndim - n) + [(pad[2 * i], pad[2 * i + 1]) for i in range(n)]
    mode = a.string("mode", "constant")
    if mode == "constant":
        return np.pad(x, widths, constant_values=a.scalar("constant_val", 0.0))
    if mode == "reflect":
        return np.pad(x, widths, mode="reflect")
    if mode == "replicate":
        return np.pad(x, widths, mode="edge")
    a.fail(f"unknown mode {mode!r}")


@op("gather")
def _gather(a):
    x = np.asarray(a.get("x"))
    indices = np.asarray(a.get("indices")).astype(np.int64)
    axis = _axis(a.scalar("axis", 0), x.ndim, a)
    if a.has("batch_dims") and a.scalar("batch_dims") != 0:
        a.fail("batch_dims other than 0 is not supported")
    if indices.size and (indices.min() < -x.shape[axis] or indices.max() >= x.shape[axis]):
        a.fail(f"indices out of range for dimension {x.shape[axis]}")
    return np.take(x, indices, axis=axis)


@op("gather_along_axis")
def _gather_along_axis(a):
    x = np.asarray(a.get("x"))
    axis = _axis(a.scalar("axis", 0), x.ndim, a)
    return np.take_along_axis(x, np.asarray(a.get("indices")).astype(np.int64), axis=axis)


@op("shape")
def _shape(a):
    return np.array(np.shape(a.get("x")), dtype=np.int32)


@op("fill")
def _fill(a):
    return np.full(a.ints("shape"), a.scalar("value", 0.0))


@op("range_1d")
def _range_1d(a):
    return np.arange(a.scalar("start"), a.scalar("end"), a.scalar("step"))


@op("select")
def _select(a):
    return np.where(np.asarray(a.get("cond")).astype(bool), _f64(a.get("a")), _f64(a.get("b")))


# --- resampling

def _grid(in_size, out_size, mode, a):
    """Sampling positions in input coordinates, per Core ML's sampling modes."""
    i = np.arange(out_size, dtype=np.float64)
    if mode in ("STRICT_ALIGN_CORNERS", "ALIGN_CORNERS"):
        if out_size == 1:
            g = np.array([(in_size - 1) / 2 if mode == "ALIGN_CORNERS" else 0.0])
        else:
            g = i * (in_size - 1) / (out_size - 1)
    elif mode == "DEFAULT":
        g = i * ((in_size - in_size / out_size) / (out_size - 1)) if out_size > 1 else np.zeros(1)
    elif mode == "OFFSET_CORNERS":
        delta = max(1, in_size - 1) / out_size
        g = 0.5 * delta + i * delta
    elif mode == "UNALIGN_CORNERS":
        spacing = in_size / out_size
        g = i * spacing + 0.5 * spacing - 0.5
    else:
        a.fail(f"unknown sampling mode {mode!r}")
    return np.clip(g, 0, in_size - 1)


def _linear_along(x, axis, grid):
    lo = np.floor(grid).astype(np.int64)
    hi = np.minimum(lo + 1, x.shape[axis] - 1)
    w = grid - lo
    shape = [1] * x.ndim
    shape[axis] = -1
    w = w.reshape(shape)
    return np.take(x, lo, axis=axis) * (1 - w) + np.take(x, hi, axis=axis) * w


def _bilinear(x, out_h, out_w, mode, a):
    if x.ndim < 3 or out_h < 1 or out_w < 1:
        a.fail(f"x {x.shape} to {out_h}x{out_w}")
    y = _linear_along(x, x.ndim - 2, _grid(x.shape[-2], out_h, mode, a))
    return _linear_along(y, x.ndim - 1, _grid(x.shape[-1], out_w, mode, a))


@op("upsample_bilinear")
def _upsample_bilinear(a):
    x = a.f("x")
    out_h = int(math.floor(a.scalar("scale_factor_height", 1) * x.shape[-2]))
    out_w = int(math.floor(a.scalar("scale_factor_width", 1) * x.shape[-1]))
    align = a.scalar("align_corners", True)
    if a.has("half_pixel_centers"):  # iOS16 form
        half = a.scalar("half_pixel_centers")
        if align and half:
            a.fail("align_corners and half_pixel_centers both true")
        mode = "STRICT_ALIGN_CORNERS" if align else ("UNALIGN_CORNERS" if half else "DEFAULT")
    else:
        mode = "STRICT_ALIGN_CORNERS" if align else "UNALIGN_CORNERS"
    return _bilinear(x, out_h, out_w, mode, a)


@op("resize_bilinear")
def _resize_bilinear(a):
    x = a.f("x")
    return _bilinear(x, a.scalar("target_size_height", 1), a.scalar("target_size_width", 1),
                     a.string("sampling_mode", "DEFAULT"), a)


def _nearest_along(x, axis, out_size):
    # Core ML's nearest upsampling by an integer or fractional factor: source index floor(i * in / out).
    idx = np.minimum(np.floor(np.arange(out_size) * x.shape[axis] / out_size).astype(np.int64), x.shape[axis] - 1)
    return np.take(x, idx, axis=axis)


@op("upsample_nearest_neighbor")
def _upsample_nearest(a):
    x = np.asarray(a.get("x"))
    out_h = int(math.floor(a.scalar("scale_factor_height", 1) * x.shape[-2]))
    out_w = int(math.floor(a.scalar("scale_factor_width", 1) * x.shape[-1]))
    return _nearest_along(_nearest_along(x, x.ndim - 2, out_h), x.ndim - 1, out_w)


@op("classify")
def _classify(a):
    probs = a.f("probabilities").reshape(-1)
    classes = a.get("classes")
    labels = [np.asarray(c).reshape(()).item() for c in classes] if isinstance(classes, (list, tuple)) \
        else list(np.asarray(classes).reshape(-1))
    if len(labels) != probs.size:
        a.fail(f"{len(labels)} classes for {probs.size} probabilities")
    return np.array(labels[int(np.argmax(probs))], dtype=object), dict(zip(labels, probs.tolist()))


# ---------------------------------------------------------------------------------------------------
# The evaluator

def _check_result(value, declared, where):
    if not isinstance(declared, TensorType):
        return value
    value = np.asarray(value)
    if declared.dtype is object:
        return value
    if np.dtype(declared.dtype).kind == "f" and value.dtype.kind == "f":
        out = value.astype(declared.dtype)
    elif np.dtype(declared.dtype).kind in "iub" and value.dtype.kind == "f" and np.dtype(declared.dtype).kind != "b":
        raise MILError(f"{where}: produced floats, the program declares {np.dtype(declared.dtype).name}")
    else:
        out = value.astype(declared.dtype)
    if len(declared.shape) != out.ndim or any(d is not None and d != s for d, s in zip(declared.shape, out.shape)):
        raise MILError(f"{where}: produced shape {list(out.shape)}, the program declares {list(declared.shape)}")
    return out


def _run_block(package, block, env, where):
    for index, operation in enumerate(block.operations):
        names = [o.name for o in operation.outputs]
        at = f"{where} op #{index} {operation.type} -> {', '.join(names)}"
        declared = [_value_type(o.type, package.mil, at) for o in operation.outputs]
        if operation.type == "const":
            if "val" not in operation.attributes:
                raise MILError(f"{at}: const without a 'val' attribute")
            results = (_immediate(package, operation.attributes["val"], declared[0], at),)
        else:
            fn = OPS.get(operation.type)
            if fn is None:
                raise MILError(f"{at}: unsupported MIL op {operation.type!r} (mil_interpreter.py knows: "
                               f"{', '.join(sorted(OPS))})")
            if len(operation.blocks):
                raise MILError(f"{at}: ops with nested blocks are not supported")
            bound = {}
            for param, argument in operation.inputs.items():
                vals = []
                for binding in argument.arguments:
                    if binding.WhichOneof("binding") == "name":
                        if binding.name not in env:
                            raise MILError(f"{at}: input {param!r} names {binding.name!r}, which is not defined before it")
                        vals.append(env[binding.name])
                    else:
                        vals.append(_immediate(package, binding.value, _value_type(binding.value.type, package.mil, at), at))
                bound[param] = vals
            with np.errstate(over="ignore", under="ignore"):
                results = fn(Args(operation.type, at, bound))
            if not isinstance(results, tuple):
                results = (results,)
        if len(results) != len(names):
            raise MILError(f"{at}: produced {len(results)} values, the program declares {len(names)} outputs")
        for name, value, t in zip(names, results, declared):
            if name in env:
                raise MILError(f"{at}: {name!r} is defined twice")
            env[name] = _check_result(value, t, at)
    missing = [o for o in block.outputs if o not in env]
    if missing:
        raise MILError(f"{where}: block outputs {missing} are never defined")
    return {o: env[o] for o in block.outputs}


def _check_array_shape(package, name, array_type, shape):
    """The shapes the model description allows: a range per dimension, an enumerated set, or the one shape."""
    which = array_type.WhichOneof("ShapeFlexibility")
    if which == "shapeRange":
        ranges = array_type.shapeRange.sizeRanges
        ok = len(ranges) == len(shape) and all(
            r.lowerBound <= s and (r.upperBound < 0 or s <= r.upperBound) for r, s in zip(ranges, shape))
        allowed = [(r.lowerBound, r.upperBound) for r in ranges]
    elif which == "enumeratedShapes":
        allowed = [tuple(s.shape) for s in array_type.enumeratedShapes.shapes]
        ok = tuple(shape) in allowed
    else:
        allowed = tuple(array_type.shape)
        ok = not allowed or tuple(shape) == allowed
    if not ok:
        raise MILError(f"{package.path}: input {name!r} has shape {list(shape)}, the model description allows {allowed}")


def _feature_inputs(package, inputs):
    """Validates the caller's inputs against the model description; images arrive as RGB 0-255."""
    description = package.model.description
    prepared = {}
    for feature in description.input:
        name = feature.name
        if name not in inputs:
            raise MILError(f"{package.path}: missing input {name!r} (inputs: {[f.name for f in description.input]})")
        x = np.asarray(inputs[name])
        kind = feature.type.WhichOneof("Type")
        if kind == "imageType":
            img = feature.type.imageType
            space = package.model_pb2.ImageFeatureType.ColorSpace.Name(img.colorSpace)
            channels = 1 if space == "GRAYSCALE" else 3
            if x.ndim != 4 or x.shape[1] != channels or x.shape[2:] != (img.height, img.width):
                raise MILError(f"{package.path}: image input {name!r} wants [N,{channels},{img.height},{img.width}] "
                               f"pixels, got {list(x.shape)}")
            if x.size and (np.min(x) < 0 or np.max(x) > 255):
                raise MILError(f"{package.path}: image input {name!r} has pixel values outside 0-255")
            x = x.astype(np.float32)
            if space == "BGR":
                x = x[:, ::-1]
            prepared[name] = x
        elif kind == "multiArrayType":
            _check_array_shape(package, name, feature.type.multiArrayType, x.shape)
            prepared[name] = x
        else:
            raise MILError(f"{package.path}: input {name!r} has unsupported feature type {kind}")
    extra = set(inputs) - {f.name for f in description.input}
    if extra:
        raise MILError(f"{package.path}: unknown inputs {sorted(extra)}")
    return prepared


def run_package(path, inputs, function="main"):
    """Runs the package's MIL function on `inputs` (name -> array); returns its outputs by name."""
    package = Package(path)
    program = package.model.mlProgram
    if function not in program.functions:
        raise MILError(f"{path}: the program has no function {function!r} (has {list(program.functions)})")
    fn = program.functions[function]
    if fn.opset not in fn.block_specializations:
        raise MILError(f"{path}: function {function!r} has no block for its opset {fn.opset!r}")
    given = _feature_inputs(package, inputs)
    env = {}
    for param in fn.inputs:
        where = f"{path}: function {function} input {param.name!r}"
        t = _value_type(param.type, package.mil, where)
        if param.name not in given:
            raise MILError(f"{where}: the model description has no such input")
        x = np.asarray(given[param.name])
        if np.dtype(t.dtype).kind == "f" and x.dtype.kind not in "fiu":
            raise MILError(f"{where}: expected numbers, got {x.dtype}")
        env[param.name] = _check_result(x.astype(t.dtype), t, where)
    outputs = _run_block(package, fn.block_specializations[fn.opset], env, f"{path}: {function}")
    result = {}
    for feature in package.model.description.output:
        if feature.name not in outputs:
            raise MILError(f"{path}: output {feature.name!r} of the model description is not an output of {function}")
        result[feature.name] = outputs[feature.name]
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run a Core ML ML Program (.mlpackage) in NumPy.")
    parser.add_argument("package")
    parser.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy")
    parser.add_argument("--out", required=True, metavar="OUT.npz")
    args = parser.parse_args(argv)
    inputs = {}
    for item in args.input:
        name, sep, file = item.partition("=")
        if not sep or not name:
            parser.error(f"--input {item!r}: expected NAME=FILE.npy")
        try:
            inputs[name] = np.load(file, allow_pickle=False)
        except (OSError, ValueError) as e:
            parser.error(f"--input {item!r}: {e}")
    try:
        outputs = run_package(args.package, inputs)
    except MILError as e:
        print(f"mil_interpreter: {e}", file=sys.stderr)
        return 1
    arrays = {}
    for name, value in outputs.items():
        if isinstance(value, dict):
            arrays[name] = np.array(list(value.values()), dtype=np.float64)
            arrays[name + ".labels"] = np.array([str(k) for k in value.keys()])
        elif np.asarray(value).dtype == object:
            arrays[name] = np.asarray(value).astype(str)
        else:
            arrays[name] = np.asarray(value)
    np.savez(args.out, **arrays)
    return 0


if __name__ == "__main__":
    sys.exit(main())
