import Logging
import Synchronization

/// FinchTrain's records, on the `finch.train` logger: epoch summaries and `log_interval` step
/// lines (`.info`), housekeeping a user should hear of (`.notice`), trouble that does not stop the
/// run (`.warning`). The library writes to no stream itself: the executables install
/// `ConsoleOutput`, which prints these as the command line always has; an app embedding the
/// library bootstraps its own handler, or replaces this logger.
public enum TrainLog {
    public static let label = "finch.train"

    /// Made from the bootstrapped `LoggingSystem` when read, unless set: an assignment (a test's
    /// capturing handler, a level for this subsystem alone) holds for the whole process.
    public static var logger: Logger {
        get { replacement.withLock { $0 } ?? Logger(label: label) }
        set { replacement.withLock { $0 = newValue } }
    }

    // Callbacks may run on another thread than the one that assigns it.
    private static let replacement = Mutex<Logger?>(nil)
}
