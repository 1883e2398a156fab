#!/usr/bin/env python3
"""Regenerates the Swift protobuf code for Core ML's model format (MLModel.pb.swift etc.).

Apple's .proto files (coremltools, mlmodel/format/, BSD-3-Clause) are compiled into the pip
package coremltools as serialized FileDescriptorProtos; this collects the ones Model.proto needs
into a FileDescriptorSet and runs protoc with swift-protobuf's plugin on it, so the generated code
matches the coremltools version installed exactly.

    python3 Tests/Fixtures/tools/generate_coreml_proto.py [PROTOC_GEN_SWIFT]   (default /work/tools/protoc-gen-swift)
"""
import os, subprocess, sys, tempfile
from google.protobuf import descriptor_pb2
from coremltools.proto import Model_pb2

NOTICE = """// Generated from Apple's Core ML model format (coremltools, mlmodel/format/%s) by
// Tests/Fixtures/tools/generate_coreml_proto.py, under coremltools' BSD 3-Clause licence:
//
// Copyright (c) 2020-2023, Apple Inc. All rights reserved.
//
// Redistribution and use in source and binary forms, with or without modification, are permitted
// provided that the following conditions are met:
//
// 1. Redistributions of source code must retain the above copyright notice, this list of
// conditions and the following disclaimer.
//
// 2. Redistributions in binary form must reproduce the above copyright notice, this list of
// conditions and the following disclaimer in the documentation and/or other materials provided
// with the distribution.
//
// 3. Neither the name of the copyright holder(s) nor the names of any contributors may be used to
// endorse or promote products derived from this software without specific prior written
// permission.
//
// THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS" AND ANY EXPRESS OR
// IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE IMPLIED WARRANTIES OF MERCHANTABILITY AND
// FITNESS FOR A PARTICULAR PURPOSE ARE DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT OWNER OR
// CONTRIBUTORS BE LIABLE FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR
// CONSEQUENTIAL DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR
// SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER CAUSED AND ON ANY
// THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY, OR TORT (INCLUDING NEGLIGENCE OR
// OTHERWISE) ARISING IN ANY WAY OUT OF THE USE OF THIS SOFTWARE, EVEN IF ADVISED OF THE
// POSSIBILITY OF SUCH DAMAGE.

"""

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../Sources/FinchIO/CoreML")
plugin = sys.argv[1] if len(sys.argv) > 1 else "/work/tools/protoc-gen-swift"

# Model.proto imports every model kind Core ML has (NeuralNetwork.proto alone is 740 kB of Swift);
# an ML Program needs only MIL.proto and FeatureTypes.proto. Model.proto is kept with the fields
# whose types live in those files; the others are left out, which protobuf's wire format allows
# (a reader skips fields it does not know, and Finch never writes them).
KEEP = ["FeatureTypes.proto", "MIL.proto", "Model.proto"]

def proto(fd):
    p = descriptor_pb2.FileDescriptorProto()
    fd.CopyToProto(p)
    return p

files = [proto(d) for d in Model_pb2.DESCRIPTOR.dependencies if d.name in KEEP] + [proto(Model_pb2.DESCRIPTOR)]
known = set()
def collect(prefix, messages, enums):
    for e in enums:
        known.add(f"{prefix}.{e.name}")
    for m in messages:
        known.add(f"{prefix}.{m.name}")
        collect(f"{prefix}.{m.name}", m.nested_type, m.enum_type)
for f in files:
    collect("." + f.package, f.message_type, f.enum_type)

def prune(messages):
    for m in messages:
        kept = [f for f in m.field if not f.type_name or f.type_name in known]
        del m.field[:]
        m.field.extend(kept)
        prune(m.nested_type)
model = files[-1]
prune(model.message_type)
kept_deps = [d for d in model.dependency if d in KEEP]
del model.dependency[:]
model.dependency.extend(kept_deps)
del model.public_dependency[:]   # indices into the old list; nothing downstream re-exports them

with tempfile.TemporaryDirectory() as tmp:
    s = descriptor_pb2.FileDescriptorSet(file=files)
    path = os.path.join(tmp, "set.pb")
    with open(path, "wb") as f:
        f.write(s.SerializeToString())
    out = os.path.join(tmp, "out")
    os.mkdir(out)
    subprocess.run(["protoc", f"--descriptor_set_in={path}", f"--plugin=protoc-gen-swift={plugin}",
                    f"--swift_out={out}", "--swift_opt=Visibility=Internal",
                    "--swift_opt=FileNaming=PathToUnderscores"] + [p.name for p in files], check=True)
    for old in os.listdir(os.path.join(here, "Proto")):
        os.remove(os.path.join(here, "Proto", old))
    for name in sorted(os.listdir(out)):
        with open(os.path.join(out, name)) as f:
            text = f.read()
        with open(os.path.join(here, "Proto", name), "w") as f:
            f.write(NOTICE % name.replace(".pb.swift", ".proto") + text)
        print(name)
