#!/usr/bin/env bash
# Regenerates Sources/FinchIO/ONNX/onnx.pb.swift from the ONNX protobuf schema shipped in the
# `onnx` Python package. Run once after an ONNX upgrade; the result is committed so builds never
# need protoc or the swift-protobuf plugin (which takes minutes to compile).
# Needs: apt-get install protobuf-compiler; pip install onnx; the plugin built from
# swift-protobuf (swift build -c release --product protoc-gen-swift in any package depending on it).
set -euo pipefail
plugin=${PROTOC_GEN_SWIFT:?set PROTOC_GEN_SWIFT to the protoc-gen-swift binary}
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../../../../Sources/FinchIO/ONNX"
proto_dir=$(python3 -c 'import onnx, os; print(os.path.dirname(onnx.__file__))')
tmp=$(mktemp -d)
cp "$proto_dir/onnx.proto" "$tmp/onnx.proto"
(cd "$tmp" && protoc --plugin=protoc-gen-swift="$plugin" --swift_out="$out" --swift_opt=Visibility=Public onnx.proto)
rm -rf "$tmp"
echo "wrote $out/onnx.pb.swift (onnx $(python3 -c 'import onnx; print(onnx.__version__)'))"
