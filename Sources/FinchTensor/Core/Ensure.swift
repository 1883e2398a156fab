/// Misuse of the library (a shape that does not fit an op, an axis out of range) stops the
/// process with a message naming the op and the values. Swift's `precondition` drops its
/// message in optimised builds (only "precondition failure" and an address remain), and the
/// release build is what people run, so Finch's checks go through here: `fatalError` keeps its
/// message at every optimisation level. The condition costs what `precondition`'s does; the
/// message is built only on failure.
///
/// Input from outside (files, configs, the command line) never reaches these: it is validated
/// where it enters and refused with a thrown error.
@inline(__always)
public func ensure(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String = String(),
                   file: StaticString = #fileID, line: UInt = #line) {
    if _slowPath(!condition()) { ensureFailed(message(), file: file, line: line) }
}

@inline(never)
public func ensureFailed(_ message: String, file: StaticString = #fileID, line: UInt = #line) -> Never {
    fatalError(message.isEmpty ? "Finch: a check failed" : message, file: file, line: line)
}
