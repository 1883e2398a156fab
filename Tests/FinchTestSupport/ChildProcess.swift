import Foundation

/// Runs a program to completion with stdout and stderr captured together (the tests read what a
/// user would see). A program that cannot be started reports status −1 and the reason.
public enum ChildProcess {
    public static func run(_ executable: URL, _ args: [String], in directory: URL? = nil) -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = executable
        p.arguments = args
        if let directory { p.currentDirectoryURL = directory }
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        do { try p.run() } catch { return (-1, "\(error)") }
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, out)
    }
}
