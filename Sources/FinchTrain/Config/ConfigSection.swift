import Foundation

/// A struct of declared keys. Its `init()` holds every default (each property's `@ConfigKey`),
/// and its synthesized `Decodable` initializer, run by `ConfigDecoder`, reads them in
/// declaration order, which is the order of the resolved config and of "valid keys here".
protocol ConfigSection: Decodable {
    init()
}

extension ConfigSection {
    /// The section read from `r`'s mapping (the caller finishes `r`, refusing unknown keys).
    static func read(from r: ConfigReader) throws -> Self {
        try Self(from: ConfigDecoder(reader: r, defaults: Self()))
    }

    /// The declared keys and subsections, in declaration order.
    static var declaredFields: [any ConfigField] {
        Mirror(reflecting: Self()).children.compactMap { $0.value as? any ConfigField }
    }

    /// Every key below this section with its dotted path (`distill.teacher.image_size`), in
    /// declaration order; sections themselves are not listed.
    static var declaredKeys: [(path: String, key: any ConfigField)] { flattenKeys(declaredFields, prefix: "") }
}

private func flattenKeys(_ fields: [any ConfigField], prefix: String) -> [(path: String, key: any ConfigField)] {
    fields.flatMap { f -> [(path: String, key: any ConfigField)] in
        let path = prefix.isEmpty ? f.name : "\(prefix).\(f.name)"
        return f.fields.isEmpty ? [(path, f)] : flattenKeys(f.fields, prefix: path)
    }
}

/// A nested section (`data:`), or an optional one (`distill:`) that is off unless given.
@propertyWrapper
public struct ConfigSubsection<S>: Decodable, ConfigField {
    public var wrappedValue: S
    let name: String
    let doc: String
    private let reader: (ConfigReader) throws -> S
    private let declared: () -> [any ConfigField]

    public init(from decoder: Decoder) throws { throw ConfigDecoder.unsupported(decoder.codingPath) }

    func read(from r: ConfigReader) throws -> ConfigSubsection {
        var s = self
        s.wrappedValue = try reader(r)
        return s
    }

    var fields: [any ConfigField] { declared() }
    var anyValue: Any { wrappedValue }
    var choices: [String] { [] }
}

extension ConfigSubsection where S: ConfigSection {
    init(_ name: String, doc: String) {
        (wrappedValue, self.name, self.doc) = (S(), name, doc)
        reader = { try $0.section(name) { try S.read(from: $0) } }
        declared = { S.declaredFields }
    }
}

extension ConfigSubsection {
    init<T: ConfigSection>(optional name: String, doc: String) where S == T? {
        (wrappedValue, self.name, self.doc) = (nil, name, doc)
        reader = { try $0.optionalSection(name) { try T.read(from: $0) } }
        declared = { T.declaredFields }
    }
}

/// A stored property of a config that is no key (filled after reading, e.g. the resolved YAML):
/// the decoder leaves it at its initial value.
@propertyWrapper
public struct NotAConfigKey<Value>: Decodable {
    public var wrappedValue: Value
    public init(wrappedValue: Value) { self.wrappedValue = wrappedValue }
    public init(from decoder: Decoder) throws { throw ConfigDecoder.unsupported(decoder.codingPath) }
}
