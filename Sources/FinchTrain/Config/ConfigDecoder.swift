import Foundation

/// Runs a `ConfigSection`'s synthesized `init(from:)` against one YAML mapping: each property
/// asks for its backing wrapper, and the decoder answers with the default instance's wrapper
/// after it has read its key from the `ConfigReader`. Nothing else is decodable here.
struct ConfigDecoder: Decoder {
    let reader: ConfigReader
    /// The default instance's stored properties by name (`_batchSize`: its `ConfigKey`).
    let defaults: [String: Any]
    var codingPath: [CodingKey] = []
    var userInfo: [CodingUserInfoKey: Any] = [:]

    init<S: ConfigSection>(reader: ConfigReader, defaults instance: S) {
        self.reader = reader
        var d: [String: Any] = [:]
        for child in Mirror(reflecting: instance).children { if let label = child.label { d[label] = child.value } }
        defaults = d
    }

    func container<K: CodingKey>(keyedBy type: K.Type) throws -> KeyedDecodingContainer<K> {
        KeyedDecodingContainer(Fields<K>(decoder: self))
    }

    func unkeyedContainer() throws -> UnkeyedDecodingContainer { throw Self.unsupported(codingPath) }
    func singleValueContainer() throws -> SingleValueDecodingContainer { throw Self.unsupported(codingPath) }

    static func unsupported(_ path: [CodingKey]) -> DecodingError {
        DecodingError.dataCorrupted(.init(codingPath: path, debugDescription: "config sections are read by ConfigDecoder, through their declared keys"))
    }

    /// The value of the property `key`: its declaration read from the file, or, for a property
    /// that is no key, its initial value.
    func field<T>(_ type: T.Type, _ key: CodingKey) throws -> T {
        guard let initial = defaults["_" + key.stringValue] else { throw Self.unsupported(codingPath + [key]) }
        let value = try (initial as? any ConfigField)?.read(from: reader) ?? initial
        guard let typed = value as? T else { throw Self.unsupported(codingPath + [key]) }
        return typed
    }

    struct Fields<K: CodingKey>: KeyedDecodingContainerProtocol {
        let decoder: ConfigDecoder
        var codingPath: [CodingKey] { decoder.codingPath }
        var allKeys: [K] { [] }
        func contains(_ key: K) -> Bool { true }
        func decodeNil(forKey key: K) throws -> Bool { false }
        func decode<T: Decodable>(_ type: T.Type, forKey key: K) throws -> T { try decoder.field(type, key) }
        func decode(_ type: Bool.Type, forKey key: K) throws -> Bool { try decoder.field(type, key) }
        func decode(_ type: String.Type, forKey key: K) throws -> String { try decoder.field(type, key) }
        func decode(_ type: Double.Type, forKey key: K) throws -> Double { try decoder.field(type, key) }
        func decode(_ type: Float.Type, forKey key: K) throws -> Float { try decoder.field(type, key) }
        func decode(_ type: Int.Type, forKey key: K) throws -> Int { try decoder.field(type, key) }
        func decode(_ type: Int8.Type, forKey key: K) throws -> Int8 { try decoder.field(type, key) }
        func decode(_ type: Int16.Type, forKey key: K) throws -> Int16 { try decoder.field(type, key) }
        func decode(_ type: Int32.Type, forKey key: K) throws -> Int32 { try decoder.field(type, key) }
        func decode(_ type: Int64.Type, forKey key: K) throws -> Int64 { try decoder.field(type, key) }
        func decode(_ type: UInt.Type, forKey key: K) throws -> UInt { try decoder.field(type, key) }
        func decode(_ type: UInt8.Type, forKey key: K) throws -> UInt8 { try decoder.field(type, key) }
        func decode(_ type: UInt16.Type, forKey key: K) throws -> UInt16 { try decoder.field(type, key) }
        func decode(_ type: UInt32.Type, forKey key: K) throws -> UInt32 { try decoder.field(type, key) }
        func decode(_ type: UInt64.Type, forKey key: K) throws -> UInt64 { try decoder.field(type, key) }
        func nestedContainer<N: CodingKey>(keyedBy type: N.Type, forKey key: K) throws -> KeyedDecodingContainer<N> {
            throw ConfigDecoder.unsupported(codingPath + [key])
        }
        func nestedUnkeyedContainer(forKey key: K) throws -> UnkeyedDecodingContainer { throw ConfigDecoder.unsupported(codingPath + [key]) }
        func superDecoder() throws -> Decoder { throw ConfigDecoder.unsupported(codingPath) }
        func superDecoder(forKey key: K) throws -> Decoder { throw ConfigDecoder.unsupported(codingPath + [key]) }
    }
}
