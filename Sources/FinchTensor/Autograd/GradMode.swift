#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Whether ops record themselves on the tape. Per thread, so data-loading threads and
/// `noGrad` blocks on one thread do not affect training on another.
public enum GradMode {
    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k, nil)
        return k
    }()

    /// Stored inverted (non-nil means disabled) so a new thread starts with recording on.
    public static var isEnabled: Bool {
        get { pthread_getspecific(key) == nil }
        set { pthread_setspecific(key, newValue ? nil : UnsafeRawPointer(bitPattern: 1)) }
    }
}

/// Runs `body` without recording any op on the tape (inference, optimizer updates, EMA).
@discardableResult
public func noGrad<T>(_ body: () throws -> T) rethrows -> T {
    let previous = GradMode.isEnabled
    GradMode.isEnabled = false
    defer { GradMode.isEnabled = previous }
    return try body()
}

/// Runs `body` with recording on, even inside `noGrad`.
@discardableResult
public func enableGrad<T>(_ body: () throws -> T) rethrows -> T {
    let previous = GradMode.isEnabled
    GradMode.isEnabled = true
    defer { GradMode.isEnabled = previous }
    return try body()
}
