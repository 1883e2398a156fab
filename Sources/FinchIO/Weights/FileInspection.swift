import Foundation
import FinchTensor
import SwiftProtobuf

/// A human-readable listing of a weights, checkpoint or ONNX file (`finch inspect`).
public enum FileInspection {
    public static func describe(_ url: URL, maxTensors: Int = 40) throws -> String {
        // `prefix` traps on a negative count; a negative limit lists nothing.
        let maxTensors = max(0, maxTensors)
        let ext = url.pathExtension.lowercased()
        if ext == "onnx" { return try describeONNX(url, maxTensors: maxTensors) }
        switch try WeightsFile.format(of: url) {
        case .hdf5: return try describeHDF5(url, maxTensors: maxTensors)
        case .safetensors: return try describeSafeTensors(url, maxTensors: maxTensors)
        case .torch: return try describeTorch(url, maxTensors: maxTensors)
        }
    }

    static func describeTorch(_ url: URL, maxTensors: Int) throws -> String {
        let tensors = try TorchCheckpoint.read(url)
        var params = 0
        for (name, v) in tensors where !name.hasSuffix("num_batches_tracked") { params += v.shape.reduce(1, *) }
        var lines = ["\(url.lastPathComponent): PyTorch state dict (torch.save), \(tensors.count) tensors, \(params) values"]
        for (name, v) in tensors.prefix(maxTensors) {
            let kind: String
            switch v { case .float: kind = "float"; case .int64: kind = "int64" }
            lines.append("  \(name)  \(kind)  \(v.shape)")
        }
        if tensors.count > maxTensors { lines.append("  … \(tensors.count - maxTensors) more") }
        return lines.joined(separator: "\n")
    }

    static func describeSafeTensors(_ url: URL, maxTensors: Int) throws -> String {
        let f = try SafeTensorsFile(contentsOf: url)
        var lines = ["\(url.lastPathComponent): safetensors, \(f.count) tensors"]
        var params = 0, buffers = 0
        for name in f.names {
            guard let i = f.info(name), i.dtype.isFloatingPoint else { continue }
            if name.hasSuffix("running_mean") || name.hasSuffix("running_var") { buffers += i.shape.reduce(1, *) }
            else { params += i.shape.reduce(1, *) }
        }
        lines.append("parameters: \(params) (plus \(buffers) running-statistics values)")
        if !f.metadata.isEmpty {
            lines.append("metadata:")
            for (k, v) in f.metadata.sorted(by: { $0.key < $1.key }) { lines.append("  \(k): \(v.prefix(200))") }
        }
        lines.append("tensors:")
        for name in f.names.prefix(maxTensors) {
            guard let i = f.info(name) else { continue }
            lines.append("  \(name)  \(i.dtype.rawValue)  \(i.shape)")
        }
        if f.count > maxTensors { lines.append("  … \(f.count - maxTensors) more") }
        return lines.joined(separator: "\n")
    }

    /// Every dataset is read once so a checksum mismatch is reported (naming the dataset)
    /// instead of a listing that looks fine; attributes without a readable value are shown as
    /// such rather than as whatever memory followed them.
    static func describeHDF5(_ url: URL, maxTensors: Int) throws -> String {
        let file = try HDF5File(reading: url)
        let r = file.root
        let checked = try r.verifyData()
        var lines: [String] = []
        let isCheckpoint = (try? r.attribute("format")) == .string("finch-checkpoint")
        lines.append("\(url.lastPathComponent): HDF5" + (isCheckpoint ? " Finch checkpoint" : ""))
        lines.append("checksums: \(checked.checksummed) of \(checked.datasets) datasets carry one, all verified"
                     + (checked.checksummed < checked.datasets ? " (the others are unprotected: empty, scalar, string or written by an older Finch)" : ""))
        for a in r.attributeNames().sorted() {
            let value: String
            do { value = render(try r.attribute(a)) } catch let e as HDF5Error {
                switch e {
                case .malformed(_, _, let reason): value = "(no value: \(reason))"
                case .wrongKind(_, _, _, let found): value = "(\(found), not shown)"
                default: throw e
                }
            }
            lines.append("  @\(printable(a)) = \(value)")
        }
        if isCheckpoint, r.isGroup("metrics") {
            let g = try r.group("metrics")
            lines.append("metrics (per epoch):")
            // Checkpoints mark percent-encoded names ("lr%2Fdecay" is the metric lr/decay); show the metric's own name.
            let percent: Bool
            if g.hasAttribute("name_encoding"), case .string("percent")? = try? g.attribute("name_encoding") { percent = true } else { percent = false }
            for n in try g.memberNames() {
                let v = try g.readDoubles(n)
                let shown = percent ? (n.removingPercentEncoding ?? n) : n
                lines.append("  \(printable(shown)): " + v.suffix(10).map { String(format: "%.4g", $0) }.joined(separator: " ") + (v.count > 10 ? " (last 10 of \(v.count))" : ""))
            }
        }
        if r.isGroup("model") {
            let g = try r.group("model")
            let names = try g.memberNames()
            // Each count is bounded by the file's size, but their sum is added with a check too.
            var params = 0
            for n in names where try g.isDataset(n) && g.datasetTypeName(n).hasPrefix("float") {
                params = params.addingReportingOverflow(try g.shape(n).reduce(1, *)).partialValue
            }
            lines.append("model: \(names.count) tensors, \(params) float elements")
            for n in names.prefix(maxTensors) {
                lines.append("  \(printable(n))  " + (g.isDataset(n) ? "\(try g.datasetTypeName(n))  \(try g.shape(n))" : "(not a dataset)"))
            }
            if names.count > maxTensors { lines.append("  … \(names.count - maxTensors) more") }
        }
        for top in try r.memberNames() where top != "model" && top != "metrics" {
            if r.isGroup(top) {
                lines.append("/\(printable(top)): \(try r.group(top).memberNames().count) members")
            } else if top == "config", isCheckpoint {
                lines.append("config:")
                for l in try r.readString("config").split(separator: "\n", omittingEmptySubsequences: false).prefix(80) {
                    lines.append("  \(printable(String(l.prefix(400))))")
                }
            } else if r.isDataset(top) {
                lines.append("/\(printable(top)): \(try r.datasetTypeName(top)) \(try r.shape(top))")
            } else {
                lines.append("/\(printable(top)): a link, not followed")
            }
        }
        return lines.joined(separator: "\n")
    }

    static func describeONNX(_ url: URL, maxTensors: Int) throws -> String {
        // Protobuf messages are limited to 2 GiB, so a larger file is not a model we can parse.
        let data = Data(try InputFile.read(url.path, what: "ONNX model", limit: Int(Int32.max)))
        let m: Onnx_ModelProto
        do { m = try Onnx_ModelProto(serializedBytes: data) } catch {
            throw ONNXInspectionError.notONNX(file: url.path, reason: "\(error)")
        }
        var lines = ["\(url.lastPathComponent): ONNX ir_version \(m.irVersion), producer \(m.producerName) \(m.producerVersion)"]
        lines.append("opsets: " + m.opsetImport.map { "\($0.domain.isEmpty ? "ai.onnx" : $0.domain) \($0.version)" }.joined(separator: ", "))
        func dims(_ v: Onnx_ValueInfoProto) -> String {
            v.type.tensorType.shape.dim.map { $0.dimParam.isEmpty ? String($0.dimValue) : $0.dimParam }.joined(separator: "×")
        }
        for i in m.graph.input { lines.append("input  \(i.name) [\(dims(i))]") }
        for o in m.graph.output { lines.append("output \(o.name) [\(dims(o))]") }
        // Dims are whatever the file says: negative or overflowing products are reported, not multiplied.
        var params = 0
        for t in m.graph.initializer {
            let dims = t.dims.compactMap { Int(exactly: $0) }
            guard dims.count == t.dims.count, let n = checkedByteCount(shape: dims, elementSize: 1) else {
                throw ONNXInspectionError.notONNX(file: url.path, reason: "initializer '\(t.name.prefix(200))' has dims \(t.dims.prefix(16)), which are negative or too large")
            }
            params = params.addingReportingOverflow(n).overflow ? Int.max : params + n
        }
        lines.append("initializers: \(m.graph.initializer.count) tensors, \(params) elements")
        var ops: [String: Int] = [:]
        for n in m.graph.node { ops[n.opType, default: 0] += 1 }
        lines.append("nodes: \(m.graph.node.count) — " + ops.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: ", "))
        if !m.metadataProps.isEmpty {
            lines.append("metadata:")
            for p in m.metadataProps { lines.append("  \(p.key): \(p.value.prefix(200))") }
        }
        return lines.joined(separator: "\n")
    }

    static func render(_ v: HDF5AttributeValue) -> String {
        switch v {
        case .string(let s): return "\"\(printable(String(s.prefix(120))))\""
        case .strings(let s):
            return "[" + s.prefix(12).map { printable(String($0.prefix(120))) }.joined(separator: ", ") + (s.count > 12 ? ", … (\(s.count))" : "") + "]"
        case .double(let d): return String(d)
        case .doubles(let d): return d.prefix(12).map { String($0) }.joined(separator: ", ") + (d.count > 12 ? ", … (\(d.count))" : "")
        case .int64(let i): return String(i)
        case .int64s(let i): return i.prefix(12).map { String($0) }.joined(separator: ", ") + (i.count > 12 ? ", … (\(i.count))" : "")
        }
    }

    /// Text from a file with control characters escaped, so a crafted name cannot move the
    /// cursor or rewrite the terminal.
    static func printable(_ s: String) -> String {
        guard s.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else { return s }
        return s.unicodeScalars.map { c in
            c.properties.generalCategory == .control ? "\\u{\(String(c.value, radix: 16))}" : String(c)
        }.joined()
    }
}

public enum ONNXInspectionError: Error, CustomStringConvertible {
    case notONNX(file: String, reason: String)
    public var description: String {
        switch self { case .notONNX(let f, let r): return "\(f): not a readable ONNX model (\(r))" }
    }
}
