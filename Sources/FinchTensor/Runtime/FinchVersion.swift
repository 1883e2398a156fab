/// The release of Finch this build is. One constant, so `finch --version`, checkpoints and exported
/// models all name the same version; bump it with the CHANGELOG when tagging.
public enum FinchVersion {
    public static let string = "0.1.0"
}
