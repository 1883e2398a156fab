import Logging
import Synchronization

/// Where FinchData reports what it does not stop for (an unreadable image skipped by policy), as
/// records of the `finch.data` logger rather than text on a stream: an app embedding the library
/// decides where they go (`LoggingSystem.bootstrap`), or replaces this logger outright.
public enum DataLog {
    public static let label = "finch.data"

    /// Made from the bootstrapped `LoggingSystem` when read, unless set: an assignment (a test's
    /// capturing handler, a level for this subsystem alone) holds for the whole process.
    public static var logger: Logger {
        get { replacement.withLock { $0 } ?? Logger(label: label) }
        set { replacement.withLock { $0 = newValue } }
    }

    // Read on the loader's background queue while the app may assign it.
    private static let replacement = Mutex<Logger?>(nil)
}
