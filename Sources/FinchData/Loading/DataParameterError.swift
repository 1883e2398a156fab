/// A data-pipeline parameter out of its range, named as timm names it (`scale`, `crop_pct`,
/// `re_count`…) so the message maps straight to the config key or command-line flag.
public struct DataParameterError: Error, CustomStringConvertible, Equatable {
    public let parameter: String
    public let value: String
    public let reason: String
    public init(parameter: String, value: String, reason: String) {
        self.parameter = parameter
        self.value = value
        self.reason = reason
    }
    public var description: String { "\(parameter) = \(value): \(reason)" }
}
