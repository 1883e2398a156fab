import Foundation
import SwiftProtobuf

/// A TensorBoard event file (`events.out.tfevents.<time>.<host>.<pid>`): TFRecord-framed `Event`
/// messages, the file version first, then scalar and text summaries. `tensorboard --logdir`
/// reads it while the run goes on.
///
/// Unlike the other run files it is appended to, not replaced: TensorBoard keeps the file open
/// and reads on from where it stopped, so a renamed replacement would never be seen. A write cut
/// short leaves a torn last record, which TensorBoard's reader stops at.
public final class TensorBoardWriter {
    public let file: URL
    private let handle: FileHandle

    /// Creates the event file now, so an unwritable folder is an error before training starts.
    public init(directory: URL, date: Date = Date()) throws {
        let name = "events.out.tfevents.\(Int(date.timeIntervalSince1970)).\(Self.hostName).\(getpid())"
        file = directory.appendingPathComponent(name)
        let fd = open(file.path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw TensorBoardError(file: file.path, reason: String(cString: strerror(errno))) }
        handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        var version = Tensorboard_Event()
        version.wallTime = date.timeIntervalSince1970
        version.fileVersion = "brain.Event:2"
        try write([version])
    }

    /// One event holding every scalar at `step` (TensorBoard stores them as float32).
    public func scalars(_ values: [(tag: String, value: Double)], step: Int, date: Date = Date()) throws {
        guard !values.isEmpty else { return }
        var summary = Tensorboard_Summary()
        summary.value = values.map { tag, value in
            var v = Tensorboard_Summary.Value()
            v.tag = tag
            v.simpleValue = Float(value)
            return v
        }
        try write([event(summary, step: step, date: date)])
    }

    /// Markdown for TensorBoard's Text tab: the text plugin's format, a scalar string tensor.
    public func text(_ tag: String, markdown: String, step: Int, date: Date = Date()) throws {
        var plugin = Tensorboard_SummaryMetadata.PluginData()
        plugin.pluginName = "text"
        var metadata = Tensorboard_SummaryMetadata()
        metadata.pluginData = plugin
        metadata.dataClass = .tensor
        var tensor = Tensorboard_TensorProto()
        tensor.dtype = .dtString
        tensor.tensorShape = Tensorboard_TensorShapeProto()
        tensor.stringVal = [Data(markdown.utf8)]
        var v = Tensorboard_Summary.Value()
        v.tag = tag
        v.metadata = metadata
        v.tensor = tensor
        var summary = Tensorboard_Summary()
        summary.value = [v]
        try write([event(summary, step: step, date: date)])
    }

    private func event(_ summary: Tensorboard_Summary, step: Int, date: Date) -> Tensorboard_Event {
        var e = Tensorboard_Event()
        e.wallTime = date.timeIntervalSince1970
        e.step = Int64(step)
        e.summary = summary
        return e
    }

    private func write(_ events: [Tensorboard_Event]) throws {
        var bytes = Data()
        for e in events { bytes.append(TFRecordFraming.frame(try e.serializedData())) }
        do { try handle.write(contentsOf: bytes) } catch {
            throw TensorBoardError(file: file.path, reason: "\(error.localizedDescription)")
        }
    }

    private static var hostName: String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        // The name becomes part of a file name: anything but a plain host-name character is replaced.
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let clean = String(name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." ? $0 : "_" })
        return clean.isEmpty ? "localhost" : clean
    }
}

public struct TensorBoardError: Error, CustomStringConvertible {
    public let file: String
    public let reason: String
    public var description: String { "cannot write the TensorBoard event file \(file): \(reason)" }
}
