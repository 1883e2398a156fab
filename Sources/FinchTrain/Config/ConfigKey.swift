import Foundation

/// One declared config key: its YAML name, its default (the wrapped property's value until the
/// file says otherwise), its rule (range, choices, list length) and its doc, in one place. The
/// rule lives in `reader`, which reads the key through `ConfigReader`, so refusals, the
/// resolved config and the record of changed keys all come from this declaration.
@propertyWrapper
public struct ConfigKey<Value>: Decodable, ConfigField {
    public var wrappedValue: Value
    let name: String
    let doc: String
    /// The allowed spellings of a choice key, in the order errors list them (empty otherwise).
    let choices: [String]
    private let reader: (ConfigReader) throws -> Value

    init(name: String, default value: Value, doc: String, choices: [String] = [],
         reader: @escaping (ConfigReader) throws -> Value) {
        wrappedValue = value
        self.name = name
        self.doc = doc
        self.choices = choices
        self.reader = reader
    }

    /// Keys are filled by `ConfigDecoder` only: a general decoder would not know the key's rule.
    public init(from decoder: Decoder) throws { throw ConfigDecoder.unsupported(decoder.codingPath) }

    func read(from r: ConfigReader) throws -> ConfigKey {
        var k = self
        k.wrappedValue = try reader(r)
        return k
    }

    var fields: [any ConfigField] { [] }
    var anyValue: Any { wrappedValue }
}

/// What the decoder and the key listing need from a declaration, whatever its value type.
protocol ConfigField {
    var name: String { get }
    var doc: String { get }
    /// A copy holding the value read from `r` (the declared default when the key is absent).
    func read(from r: ConfigReader) throws -> Self
    /// The keys declared inside a section (empty for a plain key).
    var fields: [any ConfigField] { get }
    /// The value held (a section's struct, for a section).
    var anyValue: Any { get }
    /// A choice key's allowed spellings (empty for other keys and sections).
    var choices: [String] { get }
}

// MARK: Declarations by value type (each reads through the ConfigReader method of that type)

extension ConfigKey where Value == String {
    init(_ name: String, _ value: String, doc: String) {
        self.init(name: name, default: value, doc: doc) { try $0.string(name, value) }
    }

    /// A default that is the config file's own name (`experiment`), given to the reader.
    init(_ name: String, fileStemOr value: String, doc: String) {
        self.init(name: name, default: value, doc: doc) { try $0.string(name, $0.fileStem ?? value) }
    }
}

extension ConfigKey where Value == String? {
    init(_ name: String, doc: String) {
        self.init(name: name, default: nil, doc: doc) { try $0.optionalString(name) }
    }
}

extension ConfigKey where Value: RawRepresentable, Value.RawValue == String {
    /// `choices` in the order the error message lists them.
    init(_ name: String, _ value: Value, choices: [Value], doc: String) {
        self.init(name: name, default: value, doc: doc, choices: choices.map(\.rawValue)) { try $0.choice(name, value, choices) }
    }
}

extension ConfigKey where Value == Int {
    init(_ name: String, _ value: Int, min: Int, max: Int, doc: String) {
        self.init(name: name, default: value, doc: doc) { try $0.int(name, value, min: min, max: max) }
    }
}

extension ConfigKey where Value == Int? {
    init(_ name: String, min: Int, max: Int, doc: String) {
        self.init(name: name, default: nil, doc: doc) { try $0.optionalInt(name, min: min, max: max) }
    }
}

extension ConfigKey where Value == Double {
    init(_ name: String, _ value: Double, range: NumberRange, doc: String) {
        self.init(name: name, default: value, doc: doc) { try $0.double(name, value, range: range) }
    }

    init(_ name: String, _ value: Double, range: ClosedRange<Double>, doc: String) {
        self.init(name, value, range: NumberRange(range), doc: doc)
    }
}

extension ConfigKey where Value == Double? {
    init(_ name: String, range: NumberRange, doc: String) {
        self.init(name: name, default: nil, doc: doc) { try $0.optionalDouble(name, range: range) }
    }

    init(_ name: String, range: ClosedRange<Double>, doc: String) {
        self.init(name, range: NumberRange(range), doc: doc)
    }
}

extension ConfigKey where Value == Bool {
    init(_ name: String, _ value: Bool, doc: String) {
        self.init(name: name, default: value, doc: doc) { try $0.bool(name, value) }
    }
}

extension ConfigKey where Value == [Double] {
    init(_ name: String, _ value: [Double], count: Int, each: NumberRange, ordered: Bool = false, doc: String) {
        self.init(name: name, default: value, doc: doc) { try $0.doubles(name, value, count: count, each: each, ordered: ordered) }
    }
}

extension ConfigKey where Value == [Double]? {
    init(_ name: String, count: Int, each: NumberRange, ordered: Bool = false, doc: String) {
        self.init(name: name, default: nil, doc: doc) { try $0.optionalDoubles(name, count: count, each: each, ordered: ordered) }
    }
}

extension ConfigKey where Value == [Int] {
    init(_ name: String, _ value: [Int], min: Int, max: Int, doc: String) {
        self.init(name: name, default: value, doc: doc) { try $0.ints(name, value, min: min, max: max) }
    }
}

extension ConfigKey where Value == [String] {
    init(_ name: String, _ value: [String], doc: String) {
        self.init(name: name, default: value, doc: doc) { try $0.strings(name, value) }
    }
}

extension ConfigKey where Value == [(String, Double)] {
    /// Free-form names (module prefixes, class names) to numbers; empty by default.
    init(_ name: String, each: NumberRange, whole: Bool = false, doc: String) {
        self.init(name: name, default: [], doc: doc) { try $0.numberMap(name, each: each, whole: whole) }
    }
}
