import Foundation

/// One tensor's header entry after validation: its bytes are known to lie in the data
/// buffer and to match its dtype and shape exactly.
struct SafeTensorsEntry: Sendable {
    let name: String
    let dtype: SafeTensorsDType
    let shape: [Int]
    /// Byte range relative to the start of the data buffer.
    let begin: Int
    let end: Int
    var count: Int { shape.contains(0) ? 0 : shape.reduce(1, *) }
}

/// The parsed and validated header of a mapped file.
///
/// Validation follows what the reference implementation accepts, so a file Finch opens is one
/// Python opens too: offsets must tile the data buffer exactly (no overlaps, holes or trailing
/// bytes), and every entry's byte count must equal its element count times the dtype size.
struct SafeTensorsHeader: Sendable {
    /// Same cap as the reference: checked before any allocation, so a corrupt length field
    /// cannot make us allocate or parse gigabytes.
    static let maxLength = 100_000_000

    /// Parsing costs memory per JSON item (JSONSerialization: about 370 bytes each, 70 times
    /// the header's size for a header of small entries), so the items are counted first. Any
    /// file may hold `baseItems` (about 5,000 tensors); more need a data byte each (a tensor
    /// takes about 12 items and at least one byte per element), up to `maxItems` (about 40,000
    /// tensors; 47,000 entries measured 90 MB and 2 s in a debug build). Real headers stay far below: timm's largest models
    /// have under 1,000 tensors per file.
    static let baseItems = 1 << 16
    static let maxItems = 1 << 19
    /// Deeper than any safetensors header (3 levels) by a margin; JSONSerialization recurses.
    static let maxDepth = 64

    static func itemBudget(dataSize: Int) -> Int { min(maxItems, baseItems + min(dataSize, maxItems)) }

    let metadata: [String: String]
    let entries: [String: SafeTensorsEntry]
    /// File offset of the data buffer (8 + header length).
    let dataStart: Int
    let dataSize: Int

    init(file: MappedFile, path: String) throws {
        guard file.size >= 8 else { throw SafeTensorsError.fileTooShort(file: path, size: file.size) }
        let lengthBytes = file.bytes(0..<8)
        let length = UInt64(littleEndian: lengthBytes.loadUnaligned(as: UInt64.self))
        guard length <= UInt64(Self.maxLength) else {
            throw SafeTensorsError.headerTooLarge(file: path, length: length, limit: Self.maxLength)
        }
        guard Int(length) <= file.size - 8 else {
            throw SafeTensorsError.headerPastEnd(file: path, length: length, fileSize: file.size)
        }
        dataStart = 8 + Int(length)
        dataSize = file.size - dataStart

        let object = try Self.parseJSONObject(file.bytes(8..<dataStart), budget: Self.itemBudget(dataSize: dataSize), dataSize: dataSize, path: path)

        var metadata: [String: String] = [:]
        var entries: [String: SafeTensorsEntry] = [:]
        entries.reserveCapacity(object.count)
        // Sorted so that, of several faults, the same one is reported on every run.
        for key in object.keys.sorted() {
            let value = object[key]!
            if key == "__metadata__" {
                metadata = try Self.parseMetadata(value, path: path)
            } else {
                entries[key] = try Self.parseEntry(key, value, dataSize: dataSize, path: path)
            }
        }
        try Self.checkTiling(entries.values, dataSize: dataSize, path: path)
        self.metadata = metadata
        self.entries = entries
    }

    // MARK: JSON

    private static func parseJSONObject(_ bytes: UnsafeRawBufferPointer, budget: Int, dataSize: Int, path: String) throws -> [String: Any] {
        // JSONSerialization guesses UTF-16/32 from zero bytes and skips byte-order marks; the
        // format is UTF-8 only, and a raw NUL is never valid JSON, so settle both up front.
        if bytes.contains(0) { throw SafeTensorsError.headerNotJSON(file: path, reason: "contains a NUL byte") }
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) {
            throw SafeTensorsError.headerNotJSON(file: path, reason: "starts with a byte-order mark")
        }
        try checkComplexity(bytes, budget: budget, dataSize: dataSize, path: path)
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw SafeTensorsError.headerNotUTF8(file: path)
        }
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
        } catch {
            let detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String
            throw SafeTensorsError.headerNotJSON(file: path, reason: detail ?? error.localizedDescription)
        }
        guard let object = parsed as? [String: Any] else { throw SafeTensorsError.headerNotObject(file: path) }
        return object
    }

    /// Counts JSON items without building any: every container opened, every `:` and `,`
    /// outside strings (an object of n members has n colons and n - 1 commas). Stops at the
    /// first item past `budget` or level past `maxDepth`; malformed JSON is left to the parser.
    static func checkComplexity(_ bytes: UnsafeRawBufferPointer, budget: Int, dataSize: Int, path: String) throws {
        var items = 0, depth = 0
        var inString = false, escaped = false
        for b in bytes {
            if inString {
                if escaped { escaped = false } else if b == UInt8(ascii: "\\") { escaped = true } else if b == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch b {
            case UInt8(ascii: "\""):
                inString = true
                continue
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                guard depth <= maxDepth else {
                    throw SafeTensorsError.headerNotJSON(file: path, reason: "nested more than \(maxDepth) levels deep")
                }
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
                continue
            case UInt8(ascii: ":"), UInt8(ascii: ","):
                break
            default:
                continue
            }
            items += 1
            guard items <= budget else { throw SafeTensorsError.headerTooComplex(file: path, limit: budget, dataSize: dataSize) }
        }
    }

    private static func parseMetadata(_ value: Any, path: String) throws -> [String: String] {
        if value is NSNull { return [:] }
        guard let object = value as? [String: Any] else {
            throw SafeTensorsError.invalidMetadata(file: path, key: nil,
                                                   reason: "is \(describe(value)), not an object of strings")
        }
        var metadata: [String: String] = [:]
        for (key, entry) in object {
            guard let text = entry as? String else {
                throw SafeTensorsError.invalidMetadata(file: path, key: key,
                                                       reason: "value is \(describe(entry)), not a string")
            }
            metadata[key] = text
        }
        return metadata
    }

    private static func parseEntry(_ key: String, _ value: Any, dataSize: Int, path: String) throws -> SafeTensorsEntry {
        func invalid(_ reason: String) -> SafeTensorsError {
            SafeTensorsError.invalidEntry(file: path, key: key, reason: reason)
        }
        guard let object = value as? [String: Any] else {
            throw invalid("entry is \(describe(value)), not an object with dtype, shape and data_offsets")
        }

        guard let rawDType = object["dtype"] else { throw invalid("missing \"dtype\"") }
        guard let dtypeName = rawDType as? String else { throw invalid("\"dtype\" is \(describe(rawDType)), not a string") }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            throw SafeTensorsError.unknownDType(file: path, key: key, dtype: dtypeName)
        }

        guard let rawShape = object["shape"] else { throw invalid("missing \"shape\"") }
        guard let shapeList = rawShape as? [Any] else { throw invalid("\"shape\" is \(describe(rawShape)), not a list") }
        var shape: [Int] = []
        shape.reserveCapacity(shapeList.count)
        for (axis, item) in shapeList.enumerated() {
            shape.append(try nonNegativeInteger(item) { invalid("shape dimension \(axis) is \($0)") })
        }

        guard let rawOffsets = object["data_offsets"] else { throw invalid("missing \"data_offsets\"") }
        guard let offsetList = rawOffsets as? [Any], offsetList.count == 2 else {
            throw invalid("\"data_offsets\" is \(describe(rawOffsets)), not a [begin, end] pair")
        }
        let begin = try nonNegativeInteger(offsetList[0]) { invalid("data_offsets begin is \($0)") }
        let end = try nonNegativeInteger(offsetList[1]) { invalid("data_offsets end is \($0)") }
        guard begin <= end else { throw invalid("data_offsets [\(begin), \(end)] ends before it begins") }
        guard end <= dataSize else {
            throw SafeTensorsError.dataPastEnd(file: path, key: key, end: end, bufferSize: dataSize)
        }

        // Bounding the product of the non-zero dimensions keeps every later shape product
        // (Tensor's own included, whatever the axis order) free of overflow traps.
        var product = 1
        for d in shape where d != 0 {
            let (p, overflow) = product.multipliedReportingOverflow(by: d)
            if overflow { throw invalid("shape \(shape) has more elements than can be addressed") }
            product = p
        }
        let count = shape.contains(0) ? 0 : product
        let (expected, overflow) = count.multipliedReportingOverflow(by: dtype.size)
        guard !overflow, expected == end - begin else {
            throw SafeTensorsError.byteCountMismatch(file: path, key: key, dtype: dtype, shape: shape,
                                                     expected: overflow ? Int.max : expected, actual: end - begin)
        }
        return SafeTensorsEntry(name: key, dtype: dtype, shape: shape, begin: begin, end: end)
    }

    /// The reference accepts only entries whose ranges, ordered by offset, follow one another
    /// without overlap or hole and end exactly at the end of the file.
    private static func checkTiling(_ entries: Dictionary<String, SafeTensorsEntry>.Values, dataSize: Int,
                                    path: String) throws {
        let ordered = entries.sorted {
            ($0.begin, $0.end) != ($1.begin, $1.end) ? ($0.begin, $0.end) < ($1.begin, $1.end)
                : $0.name.utf8.lexicographicallyPrecedes($1.name.utf8)
        }
        var cursor = 0
        var previous: String?
        for entry in ordered {
            if entry.begin < cursor, let previous {
                throw SafeTensorsError.overlappingData(file: path, key: entry.name, previous: previous)
            }
            if entry.begin > cursor {
                throw SafeTensorsError.gapBeforeData(file: path, key: entry.name, begin: entry.begin, expected: cursor)
            }
            cursor = entry.end
            previous = entry.name
        }
        if cursor != dataSize { throw SafeTensorsError.trailingData(file: path, used: cursor, bufferSize: dataSize) }
    }
}

/// A JSON integer ≥ 0 that fits Int; booleans and numbers written with a fraction or exponent
/// are refused, as serde's usize does in the reference.
private func nonNegativeInteger(_ value: Any, _ failure: (String) -> SafeTensorsError) throws -> Int {
    guard let number = value as? NSNumber else { throw failure("\(describe(value)), not an integer") }
    let kind = String(cString: number.objCType)
    guard kind != "c", kind != "B" else { throw failure("a boolean, not an integer") }
    guard kind != "d", kind != "f" else { throw failure("\(number), not an integer") }
    guard let integer = value as? Int else { throw failure("\(number), too large") }
    guard integer >= 0 else { throw failure("\(integer), negative") }
    return integer
}

/// A short rendering of a JSON value for messages; containers are summarised, never printed,
/// so a megabyte of garbage does not end up in a log line.
private func describe(_ value: Any) -> String {
    switch value {
    case is NSNull: return "null"
    case let list as [Any]: return "a list of \(list.count) items"
    case let object as [String: Any]: return "an object with \(object.count) keys"
    case let text as String:
        let shown = text.count > 40 ? String(text.prefix(40)) + "…" : text
        return "a string (\"\(shown)\")"
    case let n as NSNumber: return String(cString: n.objCType) == "c" ? "a boolean" : "the number \(n)"
    default: return "an unexpected value"
    }
}
