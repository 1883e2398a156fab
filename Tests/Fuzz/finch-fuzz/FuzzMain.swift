import Foundation
import FinchFuzzTargets

// Two builds of one file. The fuzz build (`.ci/fuzz`: `-Xswiftc -sanitize=fuzzer,address
// -Xswiftc -DFINCH_LIBFUZZER`) exports libFuzzer's entry point and lets libFuzzer's main take
// the command line; the target comes from FINCH_FUZZ_TARGET. The normal build, which needs no
// fuzzer runtime, replays files: `finch-fuzz <target> <file|folder>...` exits 0 when every
// input was read or refused with an error, and dies the way the reader dies otherwise.

#if FINCH_LIBFUZZER

private let selectedTarget: FuzzTarget = {
    let name = ProcessInfo.processInfo.environment["FINCH_FUZZ_TARGET"] ?? ""
    guard let t = FuzzTarget(rawValue: name) else {
        let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
        FileHandle.standardError.write(Data("finch-fuzz: set FINCH_FUZZ_TARGET to one of \(names)\n".utf8))
        exit(2)
    }
    return t
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func finchFuzzTestOneInput(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let data = bytes.map { Data(bytes: $0, count: count) } ?? Data()
    do { try selectedTarget.run(data) } catch {}
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ test: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

// SwiftPM links an executable with `main` defined as `<module>_main`, so libFuzzer's own main is
// never pulled in; this is that symbol, handing the command line to libFuzzer's driver.
@_cdecl("finch_fuzz_main")
public func finchFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    _ = selectedTarget
    return LLVMFuzzerRunDriver(&argc, &argv, finchFuzzTestOneInput)
}

#else

@main
struct FuzzReplay {
    static func main() {
        let args = Array(CommandLine.arguments.dropFirst())
        guard let first = args.first, let target = FuzzTarget(rawValue: first), args.count > 1 else {
            let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: "|")
            FileHandle.standardError.write(Data("usage: finch-fuzz <\(names)> <file|folder>...\n".utf8))
            exit(2)
        }
        let verbose = ProcessInfo.processInfo.environment["FINCH_FUZZ_VERBOSE"] != nil
        for path in args.dropFirst() {
            for file in inputs(path) {
                // Announced first, so a crash names the input that caused it.
                FileHandle.standardError.write(Data("replay \(target.rawValue) \(file)\n".utf8))
                guard let data = FileManager.default.contents(atPath: file) else {
                    FileHandle.standardError.write(Data("finch-fuzz: cannot read \(file)\n".utf8))
                    exit(2)
                }
                do { try target.run(data) } catch {
                    if verbose { FileHandle.standardError.write(Data("  refused: \(error)\n".utf8)) }
                }
            }
        }
    }

    static func inputs(_ path: String) -> [String] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else { return [path] }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { (path as NSString).appendingPathComponent($0) }
    }
}

#endif
