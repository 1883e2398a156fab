#!/usr/bin/env bash
# Regenerates Sources/FinchTrain/Output/TensorBoard/*.pb.swift (the Event and Summary messages of
# TensorBoard's event files, and the tensor/histogram/type messages they import) from the
# descriptors compiled into the `tensorboard` Python package (it ships *_pb2.py, not .proto files).
# Run once after a TensorBoard upgrade; the result is committed so builds never need protoc or the
# swift-protobuf plugin.
# Needs: apt-get install protobuf-compiler; pip install tensorboard; protoc-gen-swift built from
# swift-protobuf at the version Package.resolved pins.
# The schema is TensorFlow's, Apache License 2.0 (Copyright The TensorFlow Authors); that notice
# is put at the top of each generated file.
set -euo pipefail
plugin=${PROTOC_GEN_SWIFT:?set PROTOC_GEN_SWIFT to the protoc-gen-swift binary}
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../../../../Sources/FinchTrain/Output/TensorBoard"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# event.proto and everything it imports, dependencies first, as one FileDescriptorSet.
python3 - "$tmp/set.pb" <<'PY'
import sys
from google.protobuf import descriptor_pb2
from tensorboard.compat.proto import event_pb2
ordered, seen = [], set()
def visit(fd):
    if fd.name in seen: return
    seen.add(fd.name)
    for d in fd.dependencies: visit(d)
    proto = descriptor_pb2.FileDescriptorProto()
    fd.CopyToProto(proto)
    ordered.append(proto)
visit(event_pb2.DESCRIPTOR)
s = descriptor_pb2.FileDescriptorSet(file=ordered)
open(sys.argv[1], "wb").write(s.SerializeToString())
print("\n".join(p.name for p in ordered))
PY
names=$(python3 -c "
from google.protobuf import descriptor_pb2
s = descriptor_pb2.FileDescriptorSet(); s.ParseFromString(open('$tmp/set.pb','rb').read())
print(' '.join(f.name for f in s.file))")
mkdir -p "$tmp/out"
protoc --descriptor_set_in="$tmp/set.pb" --plugin=protoc-gen-swift="$plugin" --swift_out="$tmp/out" \
    --swift_opt=Visibility=Internal --swift_opt=FileNaming=DropPath $names
for f in "$tmp"/out/*.pb.swift; do
    { printf '%s\n' \
        "// Generated from TensorBoard's protobuf schema (tensorboard $(python3 -c 'import tensorboard; print(tensorboard.__version__)')) by" \
        "// Tests/Fixtures/tools/tensorboard/generate.sh. The schema: Copyright The TensorFlow Authors," \
        "// Licensed under the Apache License, Version 2.0 (http://www.apache.org/licenses/LICENSE-2.0)." \
        ""
      cat "$f"; } > "$out/$(basename "$f")"
done
echo "wrote $(ls "$tmp"/out | tr '\n' ' ')to $out"
